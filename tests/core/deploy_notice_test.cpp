#include "deploynet/deploy_notice.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace deploynet {
namespace {

std::vector<std::uint8_t> bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(bytes("")), "");
  EXPECT_EQ(base64_encode(bytes("f")), "Zg==");
  EXPECT_EQ(base64_encode(bytes("fo")), "Zm8=");
  EXPECT_EQ(base64_encode(bytes("foo")), "Zm9v");
  EXPECT_EQ(base64_encode(bytes("foobar")), "Zm9vYmFy");
  std::array<std::uint8_t, 6> out{};
  ASSERT_TRUE(base64_decode_exact("Zm9vYmFy", out));
  EXPECT_EQ(std::string(out.begin(), out.end()), "foobar");
  std::array<std::uint8_t, 2> two{};
  ASSERT_TRUE(base64_decode_exact("Zm8=", two));
  EXPECT_EQ(std::string(two.begin(), two.end()), "fo");
}

TEST(Base64, DecodesExactlyTheLengthAskedOrNothing) {
  std::array<std::uint8_t, 3> three{};
  EXPECT_FALSE(base64_decode_exact("Zm8=", three));      // two bytes, not three
  EXPECT_FALSE(base64_decode_exact("Zm9vYmFy", three));  // six
  EXPECT_FALSE(base64_decode_exact("Zm9*", three));      // not the alphabet
  EXPECT_FALSE(base64_decode_exact("Z=9v", three));      // padding inside
  EXPECT_FALSE(base64_decode_exact("Zm9v\n", three));    // trailing bytes
  std::array<std::uint8_t, 1> one{};
  EXPECT_FALSE(base64_decode_exact("Zg=a", one));
  EXPECT_TRUE(base64_decode_exact("Zg==", one));
}

TEST(DeployNotice, SignedTextIsPinned) {
  // The CLI signs this and the server verifies this: any change breaks every deployed key's
  // notices, so it is written out here.
  EXPECT_EQ(
      deploy_notice_text("https://site.example", "0123456789abcdef0123456789abcdef", 1796532163),
      "deploynet-deploy-notice\nhttps://"
      "site.example\n0123456789abcdef0123456789abcdef\n1796532163");
}

TEST(DeployNotice, ParsesWhatItWritesAndNamesWhatIsWrong) {
  DeployNotice n;
  n.origin = "https://site.example:8443";
  n.deploy_id = "0123456789abcdef0123456789abcdef";
  n.time = 1796532163;
  for (std::size_t i = 0; i < n.signature.size(); ++i)
    n.signature[i] = static_cast<std::uint8_t>(i * 7);
  const auto text = serialize_deploy_notice(n);
  auto back = parse_deploy_notice(text);
  ASSERT_TRUE(std::holds_alternative<DeployNotice>(back)) << std::get<std::string>(back);
  const auto& m = std::get<DeployNotice>(back);
  EXPECT_EQ(m.origin, n.origin);
  EXPECT_EQ(m.deploy_id, n.deploy_id);
  EXPECT_EQ(m.time, n.time);
  EXPECT_EQ(m.signature, n.signature);
  EXPECT_EQ(
      serialize_deploy_push(n),
      R"({"action":"deploy","origin":"https://site.example:8443","deploy_id":"0123456789abcdef0123456789abcdef"})");

  auto error = [](std::string_view json) {
    auto r = parse_deploy_notice(json);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : std::string();
  };
  EXPECT_EQ(error("{"), "not a JSON object");
  EXPECT_EQ(error(text + "x"), "not a JSON object");  // nothing after the object
  EXPECT_NE(
      error(
          R"({"origin":"ftp://x","deploy_id":"0123456789abcdef0123456789abcdef","time":1,"signature":""})")
          .find("origin"),
      std::string::npos);
  std::string upper = text;
  upper.replace(upper.find("0123456789abcdef"), 16, "0123456789ABCDEF");
  EXPECT_NE(error(upper).find("deploy_id"), std::string::npos);
  std::string negative = text;
  negative.replace(negative.find("1796532163"), 10, "-5");
  EXPECT_NE(error(negative).find("time"), std::string::npos);
  std::string short_sig = text;
  short_sig.replace(short_sig.find("\"signature\":\"") + 13, 4, "");
  EXPECT_NE(error(short_sig).find("signature"), std::string::npos);
}

TEST(DeployNotice, TheKillSwitchIsADeployIdNoManifestCanHave) {
  DeployNotice n;
  n.origin = "https://site.example";
  n.deploy_id = std::string(kDisabledDeploy);
  n.time = 1796532163;
  const auto text = serialize_deploy_notice(n);
  auto back = parse_deploy_notice(text);
  ASSERT_TRUE(std::holds_alternative<DeployNotice>(back)) << std::get<std::string>(back);
  EXPECT_EQ(std::get<DeployNotice>(back).deploy_id, "disabled");
  EXPECT_EQ(deploy_notice_text(n.origin, n.deploy_id, n.time),
            "deploynet-deploy-notice\nhttps://site.example\ndisabled\n1796532163");
  EXPECT_EQ(serialize_deploy_push(n),
            R"({"action":"deploy","origin":"https://site.example","deploy_id":"disabled"})");
  // Only that word: no other text passes for a deploy id.
  for (const char* id : {"Disabled", "disable", "disabled ", "off", ""}) {
    std::string other = text;
    other.replace(other.find("disabled"), 8, id);
    EXPECT_TRUE(std::holds_alternative<std::string>(parse_deploy_notice(other))) << id;
  }
}

}  // namespace
}  // namespace deploynet
