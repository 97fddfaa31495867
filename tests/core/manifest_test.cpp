#include "deploynet/manifest.hpp"
#include "deploynet/utf8.hpp"

#include <gtest/gtest.h>

namespace deploynet {
namespace {

Sha256 digest(std::uint8_t fill) {
  Sha256 d;
  d.fill(fill);
  return d;
}

Manifest sample() {
  Manifest m;
  m.origin = "https://site.example";
  m.deploy_id = std::string(32, 'a');
  m.piece_size = 1024;
  m.files.push_back({"/a b/ünïcode.css", digest(1), 1024, "text/css; charset=utf-8", {digest(1)}});
  m.files.push_back({"/empty.txt", digest(0xAB), 0, "text/plain; charset=utf-8", {}});
  m.files.push_back({"/img/big.png", digest(3), 1025, "image/png", {digest(4), digest(5)}});
  return m;
}

TEST(Manifest, RoundTripsExactly) {
  auto m = sample();
  auto text = serialize_manifest(m);
  auto parsed = parse_manifest(text);
  ASSERT_TRUE(std::holds_alternative<Manifest>(parsed)) << std::get<std::string>(parsed);
  const auto& back = std::get<Manifest>(parsed);
  EXPECT_EQ(serialize_manifest(back), text);
  ASSERT_EQ(back.files.size(), 3u);
  EXPECT_EQ(back.files[0].path, "/a b/ünïcode.css");
  EXPECT_EQ(back.files[2].pieces[1], digest(5));
}

TEST(Manifest, TextIsOneFilePerLineAndDeterministic) {
  auto text = serialize_manifest(sample());
  EXPECT_EQ(text, serialize_manifest(sample()));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5);  // head, 3 files, tail
  EXPECT_EQ(text.rfind("{\"version\":1,\"origin\":\"https://site.example\",", 0), 0u);
}

TEST(Manifest, PieceBoundaries) {
  EXPECT_EQ(piece_count(0, 1024), 0u);
  EXPECT_EQ(piece_count(1, 1024), 1u);
  EXPECT_EQ(piece_count(1024, 1024), 1u);
  EXPECT_EQ(piece_count(1025, 1024), 2u);
  EXPECT_EQ(piece_count(3 * 1024, 1024), 3u);
}

TEST(Manifest, DeployIdInputCoversContentPathAndType) {
  auto a = sample();
  auto base = deploy_id_input(a);
  auto b = sample();
  b.files[1].sha256 = digest(9);
  EXPECT_NE(deploy_id_input(b), base);
  auto c = sample();
  c.files[1].type = "text/html";
  EXPECT_NE(deploy_id_input(c), base);
  auto d = sample();
  d.origin = "https://other.example";
  EXPECT_NE(deploy_id_input(d), base);
}

TEST(Manifest, RejectsWhatABrowserCouldNotTrust) {
  auto text = serialize_manifest(sample());
  auto replace = [&](const std::string& from, const std::string& to) {
    auto t = text;
    auto at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return t.replace(at, from.size(), to);
  };
  auto error = [](const std::string& t) {
    auto r = parse_manifest(t);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : std::string();
  };
  EXPECT_NE(error("{"), "");
  EXPECT_NE(error(replace("\"version\":1", "\"version\":2")), "");
  EXPECT_NE(error(replace("\"piece_size\":1024", "\"piece_size\":10")), "");
  EXPECT_NE(error(replace("/empty.txt", "/../etc/passwd")), "");
  EXPECT_NE(error(replace("/empty.txt", "empty.txt")), "");
  EXPECT_NE(error(replace("/empty.txt", "/a//b")), "");
  EXPECT_NE(error(replace("/empty.txt", "/a\\\\b")), "");
  EXPECT_NE(error(replace("/empty.txt", "/a\\nb")), "");
  EXPECT_NE(error(replace("/empty.txt", "/zzz")), "");              // out of order
  EXPECT_NE(error(replace("\"size\":1025", "\"size\":3000")), "");  // wrong piece count
  EXPECT_NE(error(replace("\"size\":0", "\"size\":-1")), "");
  auto upper = to_hex(digest(0xAB));
  for (auto& c : upper) c = static_cast<char>(std::toupper(c));
  EXPECT_NE(error(replace(to_hex(digest(0xAB)), upper)), "");
  EXPECT_NE(error(replace(to_hex(digest(0xAB)), to_hex(digest(0xAB)).substr(1))), "");
  // Strings it could not write back as read: a lone surrogate, a NUL inside a type.
  EXPECT_NE(error(replace("\"image/png\"", "\"image/png\\udc00\"")), "");
  EXPECT_NE(error(replace("\"image/png\"", "\"image/png\\u0000x\"")), "");
  EXPECT_NE(error(replace("/empty.txt", "/a\\udc00")), "");
  // deploy_id and origin as the browser's parser checks them.
  EXPECT_NE(error(replace(std::string(32, 'a'), std::string(32, 'A'))), "");
  EXPECT_NE(error(replace(std::string(32, 'a'), std::string(31, 'a') + "g")), "");
  EXPECT_NE(error(replace("https://site.example", "ftp://site.example")), "");
  EXPECT_NE(error(replace("https://site.example", "https://site.example/path")), "");
  EXPECT_NE(error(replace("https://site.example", "https://u@site.example")), "");
  EXPECT_NE(error(replace("https://site.example", "https://site.example\\n")), "");
  EXPECT_EQ(error(replace("https://site.example", "http://127.0.0.1:8080")), "");
  EXPECT_EQ(error(replace("https://site.example", "http://[::1]:8080")), "");
}

TEST(Manifest, EverythingAcceptedWritesBackAsRead) {
  // Whatever the parser accepts, the writer reproduces: parse(serialize(parse(x))) == parse(x).
  auto text = serialize_manifest(sample());
  for (std::string variant : {text, std::string(text).insert(text.find("text/css"), "\\u00e9")}) {
    auto first = parse_manifest(variant);
    ASSERT_TRUE(std::holds_alternative<Manifest>(first)) << std::get<std::string>(first);
    auto again = serialize_manifest(std::get<Manifest>(first));
    EXPECT_TRUE(valid_utf8(again));
    auto second = parse_manifest(again);
    ASSERT_TRUE(std::holds_alternative<Manifest>(second));
    EXPECT_EQ(serialize_manifest(std::get<Manifest>(second)), again);
  }
}

TEST(Manifest, PathChecks) {
  EXPECT_FALSE(check_path("/index.html"));
  EXPECT_FALSE(check_path("/a b/c-d_e.f~g/ü"));
  EXPECT_TRUE(check_path(""));
  EXPECT_TRUE(check_path("/"));
  EXPECT_TRUE(check_path("/a/"));
  EXPECT_TRUE(check_path("/./a"));
  EXPECT_TRUE(check_path("/a\x01"));
  EXPECT_TRUE(check_path("/\xff\xfe"));
  EXPECT_TRUE(check_path("/\xc0\xaf"));      // overlong '/'
  EXPECT_TRUE(check_path("/\xed\xa0\x80"));  // surrogate
}

TEST(Manifest, MimeTypes) {
  EXPECT_EQ(mime_type_for("/index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(mime_type_for("/app.JS"), "text/javascript; charset=utf-8");
  EXPECT_EQ(mime_type_for("/f/x.woff2"), "font/woff2");
  EXPECT_EQ(mime_type_for("/img/a.webp"), "image/webp");
  EXPECT_EQ(mime_type_for("/LICENSE"), "application/octet-stream");
  EXPECT_EQ(mime_type_for("/.hidden"), "application/octet-stream");
  EXPECT_EQ(mime_type_for("/dir.d/file"), "application/octet-stream");
}

TEST(Manifest, HexRoundTrip) {
  auto d = digest(0xAB);
  EXPECT_EQ(sha256_from_hex(to_hex(d)), d);
  EXPECT_FALSE(sha256_from_hex("xyz"));
}

}  // namespace
}  // namespace deploynet
