#include "deploynet/protocol.hpp"
#include "deploynet/utf8.hpp"

#include <gtest/gtest.h>

#include <rapidjson/document.h>
#include <random>

namespace deploynet {
namespace {

const std::string kHash = "aaaaaaaaaaaaaaaaaaaa";
const std::string kPeer = "-WW0208-bbbbbbbbbbbb";
const std::string kOffer = "cccccccccccccccccccc";

const AnnounceRequest& as_announce(const ParseResult& r) {
  return std::get<AnnounceRequest>(std::get<InMessage>(r));
}
const ParseError& as_error(const ParseResult& r) {
  return std::get<ParseError>(r);
}

rapidjson::Document json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

TEST(Parse, AnnounceAsTheReferenceClientSendsIt) {
  std::string msg = R"({"action":"announce","info_hash":")" + kHash + R"(","peer_id":")" + kPeer +
                    R"(","numwant":2,"uploaded":0,"downloaded":0,"left":100,"event":"started",)"
                    R"("offers":[{"offer":{"type":"offer","sdp":"v=0\r\n"},"offer_id":")" +
                    kOffer + R"("}]})";
  auto r = parse_in_message(msg);
  ASSERT_TRUE(std::holds_alternative<InMessage>(r)) << as_error(r).reason;
  const auto& a = as_announce(r);
  EXPECT_EQ(a.info_hash.to_wire(), kHash);
  EXPECT_EQ(a.peer_id.to_wire(), kPeer);
  EXPECT_EQ(a.event, AnnounceEvent::kStarted);
  EXPECT_EQ(a.numwant, 2u);
  EXPECT_FALSE(a.seeder());
  ASSERT_EQ(a.offers.size(), 1u);
  EXPECT_EQ(a.offers[0].offer_id.to_wire(), kOffer);
  EXPECT_EQ(a.offers[0].offer, R"({"type":"offer","sdp":"v=0\r\n"})");
  EXPECT_FALSE(a.answer);
}

TEST(Parse, PeerProofIsPrintableAsciiUpTo64) {
  auto with = [](const std::string& proof) {
    return parse_in_message(R"({"action":"announce","info_hash":")" + kHash + R"(","peer_id":")" +
                            kPeer + R"(","peer_proof":)" + proof + "}");
  };
  auto ok = with(R"("s3cret-of-20-chars!")");
  ASSERT_TRUE(std::holds_alternative<InMessage>(ok)) << as_error(ok).reason;
  EXPECT_EQ(as_announce(ok).peer_proof, "s3cret-of-20-chars!");
  EXPECT_FALSE(as_announce(ok).peer_proved);  // only the server sets it, once checked
  for (const std::string bad : std::vector<std::string>{
           R"("")", R"("has space")", R"(7)", '"' + std::string(65, 'x') + '"', R"("é")"}) {
    auto r = with(bad);
    ASSERT_TRUE(std::holds_alternative<ParseError>(r)) << bad;
    EXPECT_NE(as_error(r).reason.find("peer_proof"), std::string::npos)
        << bad << ": " << as_error(r).reason;
  }
}

TEST(Parse, ValidDescriptionIsOneBoundedObject) {
  EXPECT_TRUE(valid_description(R"({"type":"offer","sdp":"v=0"})", 1024));
  EXPECT_FALSE(valid_description(R"(["offer"])", 1024));
  EXPECT_FALSE(valid_description(R"({"a":1} x)", 1024));
  EXPECT_FALSE(valid_description("{\"a\":\"\xff\"}", 1024));
  EXPECT_FALSE(valid_description(R"({"type":"offer","sdp":"v=0"})", 10));
  EXPECT_FALSE(valid_description(std::string(40, '{'), 1024));
  std::string deep = "{\"a\":";
  for (int i = 0; i < 40; ++i) deep += "[";
  EXPECT_FALSE(valid_description(deep, 1024));
}

TEST(Parse, BinaryIdsWithEscapesAndHighBytes) {
  // JSON.stringify of a binary string: control bytes as \u escapes, bytes >= 0x80 as UTF-8.
  std::string msg = R"({"action":"announce","info_hash":"\u0000\u001f\"\\)" +
                    std::string("\xC2\x80\xC3\xBF") + std::string(14, 'z') + R"(","peer_id":")" +
                    kPeer + R"("})";
  auto r = parse_in_message(msg);
  ASSERT_TRUE(std::holds_alternative<InMessage>(r)) << as_error(r).reason;
  const auto& ih = as_announce(r).info_hash.bytes;
  EXPECT_EQ(ih[0], 0x00);
  EXPECT_EQ(ih[1], 0x1F);
  EXPECT_EQ(ih[2], '"');
  EXPECT_EQ(ih[3], '\\');
  EXPECT_EQ(ih[4], 0x80);
  EXPECT_EQ(ih[5], 0xFF);
}

TEST(Parse, AnswerNeedsToPeerIdAndOfferId) {
  std::string base = R"({"action":"announce","info_hash":")" + kHash + R"(","peer_id":")" + kPeer +
                     R"(","answer":{"type":"answer","sdp":"x"})";
  auto missing = parse_in_message(base + "}");
  EXPECT_EQ(as_error(missing).reason, "invalid `to_peer_id` (required with `answer`)");
  EXPECT_EQ(as_error(missing).action, "announce");
  ASSERT_TRUE(as_error(missing).info_hash);

  auto ok = parse_in_message(base + R"(,"to_peer_id":")" + kPeer + R"(","offer_id":")" + kOffer +
                             R"("})");
  ASSERT_TRUE(std::holds_alternative<InMessage>(ok)) << as_error(ok).reason;
  ASSERT_TRUE(as_announce(ok).answer);
  EXPECT_EQ(as_announce(ok).answer->answer, R"({"type":"answer","sdp":"x"})");
}

TEST(Parse, ScrapeForms) {
  auto one = parse_in_message(R"({"action":"scrape","info_hash":")" + kHash + R"("})");
  EXPECT_EQ(std::get<ScrapeRequest>(std::get<InMessage>(one)).info_hashes.size(), 1u);
  auto many = parse_in_message(R"({"action":"scrape","info_hash":[")" + kHash + R"(",")" + kPeer +
                               R"("]})");
  EXPECT_EQ(std::get<ScrapeRequest>(std::get<InMessage>(many)).info_hashes.size(), 2u);
  auto all = parse_in_message(R"({"action":"scrape"})");
  EXPECT_TRUE(std::get<ScrapeRequest>(std::get<InMessage>(all)).info_hashes.empty());
  ParseLimits limits;
  limits.max_scrape_hashes = 1;
  auto too_many = parse_in_message(
      R"({"action":"scrape","info_hash":[")" + kHash + R"(",")" + kPeer + R"("]})", limits);
  EXPECT_EQ(as_error(too_many).action, "scrape");
}

TEST(Parse, OffersBeyondTheCapAreDroppedAndCounted) {
  std::string offers;
  for (int i = 0; i < 12; ++i) {
    if (i) offers += ",";
    offers += R"({"offer":{"type":"offer","sdp":"s"},"offer_id":")" + kOffer + R"("})";
  }
  auto r = parse_in_message(R"({"action":"announce","info_hash":")" + kHash + R"(","peer_id":")" +
                            kPeer + R"(","offers":[)" + offers + "]}");
  ASSERT_TRUE(std::holds_alternative<InMessage>(r));
  EXPECT_EQ(as_announce(r).offers.size(), 10u);
  EXPECT_EQ(as_announce(r).offers_dropped, 2u);
}

TEST(Parse, LeftAcceptsNumbersAndNumericStrings) {
  auto with_left = [&](const std::string& left) {
    return parse_in_message(R"({"action":"announce","info_hash":")" + kHash + R"(","peer_id":")" +
                            kPeer + R"(","left":)" + left + "}");
  };
  EXPECT_TRUE(as_announce(with_left("0")).seeder());
  EXPECT_TRUE(as_announce(with_left("\"0\"")).seeder());
  EXPECT_FALSE(as_announce(with_left("5")).seeder());
  EXPECT_FALSE(as_announce(with_left("\"abc\"")).seeder());
  EXPECT_FALSE(as_announce(with_left("-1")).seeder());
  EXPECT_FALSE(as_announce(with_left("1e300")).seeder());
  EXPECT_EQ(*as_announce(with_left("1e300")).left, 9'000'000'000'000'000'000);
}

struct Hostile {
  const char* name;
  std::string text;
  const char* reason_prefix;
};

void PrintTo(const Hostile& h, std::ostream* os) {
  *os << h.name;
}

class ParseHostile : public ::testing::TestWithParam<Hostile> {};

TEST_P(ParseHostile, RepliesWithAFailureReason) {
  auto r = parse_in_message(GetParam().text);
  ASSERT_TRUE(std::holds_alternative<ParseError>(r));
  EXPECT_EQ(as_error(r).reason.rfind(GetParam().reason_prefix, 0), 0u) << as_error(r).reason;
}

const std::string kIds = R"("info_hash":")" + kHash + R"(","peer_id":")" + kPeer + R"(")";

INSTANTIATE_TEST_SUITE_P(
    Hostile, ParseHostile,
    ::testing::Values(
        Hostile{"empty", "", "invalid JSON"},
        Hostile{"garbage", "\x01\x02 not json", "invalid JSON"},
        Hostile{"truncated", R"({"action":"announce")", "invalid JSON"},
        Hostile{"trailing", R"({"action":"scrape"} {})", "invalid JSON"},
        Hostile{"bad_utf8", "{\"action\":\"scr\xFF\"}", "invalid JSON"},
        Hostile{"array", "[1,2,3]", "invalid request"},
        Hostile{"string", "\"announce\"", "invalid request"},
        Hostile{"no_action", R"({"info_hash":"x"})", "invalid action"},
        Hostile{"numeric_action", R"({"action":1})", "invalid action"},
        Hostile{"unknown_action", R"({"action":"connect"})",
                "invalid action in WS request: connect"},
        Hostile{"deep_nesting", std::string(100000, '[') + std::string(100000, ']'),
                "invalid JSON: nested deeper than 32"},
        Hostile{"short_hash",
                R"({"action":"announce","info_hash":"abc","peer_id":")" + kPeer + "\"}",
                "invalid info_hash"},
        Hostile{"hash_number", R"({"action":"announce","info_hash":12,"peer_id":")" + kPeer + "\"}",
                "invalid info_hash"},
        Hostile{"hex_hash",
                R"({"action":"announce","info_hash":")" + std::string(40, 'a') +
                    R"(","peer_id":")" + kPeer + "\"}",
                "invalid info_hash"},
        Hostile{"no_peer", R"({"action":"announce","info_hash":")" + kHash + "\"}",
                "invalid peer_id"},
        Hostile{"wide_peer",
                R"({"action":"announce","info_hash":")" + kHash + R"(","peer_id":"\u0100)" +
                    std::string(19, 'p') + "\"}",
                "invalid peer_id"},
        Hostile{"bad_event", "{\"action\":\"announce\"," + kIds + R"(,"event":"exploded"})",
                "invalid event"},
        Hostile{"offers_object", "{\"action\":\"announce\"," + kIds + R"(,"offers":{}})",
                "invalid offers"},
        Hostile{"offer_string", "{\"action\":\"announce\"," + kIds + R"(,"offers":["x"]})",
                "invalid offer"},
        Hostile{"offer_no_id",
                "{\"action\":\"announce\"," + kIds + R"(,"offers":[{"offer":{"sdp":"x"}}]})",
                "invalid offer"},
        Hostile{"offer_sdp_string",
                "{\"action\":\"announce\"," + kIds + R"(,"offers":[{"offer":"x","offer_id":")" +
                    kOffer + "\"}]}",
                "invalid offer"},
        Hostile{"answer_string",
                "{\"action\":\"announce\"," + kIds + R"(,"answer":"x","to_peer_id":")" + kPeer +
                    R"(","offer_id":")" + kOffer + "\"}",
                "invalid answer"},
        Hostile{"scrape_number", R"({"action":"scrape","info_hash":5})", "invalid info_hash"},
        Hostile{"scrape_bad_item", R"({"action":"scrape","info_hash":["x"]})",
                "invalid info_hash"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Parse, UnknownActionNameIsSanitizedInTheReason) {
  auto r = parse_in_message(R"({"action":"\u0001evil\n"})");
  EXPECT_EQ(as_error(r).reason, "invalid action in WS request: ?evil?");
}

TEST(Serialize, AnnounceReplyMatchesTheReferenceShape) {
  auto ih = InfoHash::from_bytes(kHash);
  auto d = json(serialize_announce_reply(ih, 3, 4, 120));
  EXPECT_STREQ(d["action"].GetString(), "announce");
  EXPECT_EQ(d["interval"].GetUint(), 120u);
  EXPECT_EQ(d["complete"].GetUint(), 3u);
  EXPECT_EQ(d["incomplete"].GetUint(), 4u);
  EXPECT_EQ(std::string(d["info_hash"].GetString()), kHash);
}

TEST(Serialize, OfferCarriesTheSdpObjectAndBinaryIds) {
  InfoHash ih;
  for (int i = 0; i < 20; ++i) ih.bytes[i] = static_cast<std::uint8_t>(i * 13);
  auto from = PeerId::from_bytes(kPeer);
  auto oid = OfferId::from_bytes(kOffer);
  auto text = serialize_offer(ih, from, oid, R"({"type":"offer","sdp":"v=0"})");
  auto d = json(text);
  EXPECT_STREQ(d["offer"]["sdp"].GetString(), "v=0");
  // The id survives a trip through JSON text as 20 code points.
  auto back = InfoHash::from_wire({d["info_hash"].GetString(), d["info_hash"].GetStringLength()});
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, ih);
  // A relayed offer is shaped like an announce: our own parser reads back the same ids.
  auto reparsed = parse_in_message(text);
  ASSERT_TRUE(std::holds_alternative<InMessage>(reparsed));
  EXPECT_EQ(as_announce(reparsed).peer_id, from);
  EXPECT_EQ(as_announce(reparsed).info_hash, ih);
}

std::string announce_with_offers(const std::string& offers_json) {
  return R"({"action":"announce","info_hash":")" + kHash + R"(","peer_id":")" + kPeer +
         R"(","offers":)" + offers_json + "}";
}

TEST(Relay, LoneSurrogateEscapeIsForwardedAsTheSendersBytes) {
  // RapidJSON decodes "\udc00" to ED B0 80, which is not UTF-8; re-serializing it made the
  // relayed frame invalid and browsers failed the receiving peer's connection.
  const std::string offer = R"({"type":"offer", "sdp":"v=0\udc00x\udfff"})";
  auto r = parse_in_message(
      announce_with_offers(R"([{"offer_id":")" + kOffer + R"(","offer":)" + offer + "}]"));
  ASSERT_TRUE(std::holds_alternative<InMessage>(r)) << as_error(r).reason;
  ASSERT_EQ(as_announce(r).offers.size(), 1u);
  EXPECT_EQ(as_announce(r).offers[0].offer, offer);
  auto out = serialize_offer(InfoHash::from_bytes(kHash), PeerId::from_bytes(kPeer),
                             OfferId::from_bytes(kOffer), as_announce(r).offers[0].offer);
  EXPECT_TRUE(valid_utf8(out)) << out;
  EXPECT_TRUE(std::holds_alternative<InMessage>(parse_in_message(out)));

  const std::string answer = R"({"type":"answer","sdp":"\udfff"})";
  auto a = parse_in_message(R"({"action":"announce","info_hash":")" + kHash + R"(","peer_id":")" +
                            kPeer + R"(","to_peer_id":")" + kPeer + R"(","offer_id":")" + kOffer +
                            R"(","answer":)" + answer + "}");
  ASSERT_TRUE(std::holds_alternative<InMessage>(a)) << as_error(a).reason;
  EXPECT_EQ(as_announce(a).answer->answer, answer);
  EXPECT_TRUE(valid_utf8(serialize_answer(InfoHash::from_bytes(kHash), PeerId::from_bytes(kPeer),
                                          OfferId::from_bytes(kOffer), answer)));
}

TEST(Relay, EachOfferGetsItsOwnBytesWhateverTheLayout) {
  // Whitespace, keys in any order, nested objects inside an offer, a second "offer" key (the
  // first one counts, as for every other member), and a second "offers" array (ignored).
  std::string msg = announce_with_offers(
      R"([ {"offer" : {"type":"offer","sdp":"A","x":{"y":[1,{"z":"}"}]}}, "offer":{"sdp":"no"},)"
      R"( "offer_id":")" +
      kOffer +
      R"("} ,)"
      R"({"offer_id":")" +
      kOffer + R"(","offer":{"sdp":"B\"}"}} ],"offers":[{"offer":{}}])");
  auto r = parse_in_message(msg);
  ASSERT_TRUE(std::holds_alternative<InMessage>(r)) << as_error(r).reason;
  const auto& offers = as_announce(r).offers;
  ASSERT_EQ(offers.size(), 2u);
  EXPECT_EQ(offers[0].offer, R"({"type":"offer","sdp":"A","x":{"y":[1,{"z":"}"}]}})");
  EXPECT_EQ(offers[1].offer, R"({"sdp":"B\"}"})");
}

TEST(Relay, DeepNestingIsRefusedWithoutRecursion) {
  // 120,000 levels once crashed the server re-serializing the offer recursively.
  std::string deep(120'000, '[');
  std::string msg = announce_with_offers(R"([{"offer_id":")" + kOffer + R"(","offer":{"a":)" +
                                         deep + std::string(120'000, ']') + "}}]");
  auto r = parse_in_message(msg);
  ASSERT_TRUE(std::holds_alternative<ParseError>(r));
  EXPECT_EQ(as_error(r).reason, "invalid JSON: nested deeper than 32");
  // Within the bound, nesting is relayed as sent.
  std::string ok = R"({"sdp":"x","a":)" + std::string(27, '[') + std::string(27, ']') + "}";
  auto fine = parse_in_message(
      announce_with_offers(R"([{"offer_id":")" + kOffer + R"(","offer":)" + ok + "}]"));
  ASSERT_TRUE(std::holds_alternative<InMessage>(fine)) << as_error(fine).reason;
  EXPECT_EQ(as_announce(fine).offers[0].offer, ok);
}

TEST(Serialize, ScrapeAndFailure) {
  std::vector<ScrapeEntry> files{{InfoHash::from_bytes(kHash), 1, 2, 1}};
  auto d = json(serialize_scrape_reply(files, 600));
  EXPECT_STREQ(d["action"].GetString(), "scrape");
  EXPECT_EQ(d["files"][kHash.c_str()]["incomplete"].GetUint(), 2u);
  EXPECT_EQ(d["flags"]["min_request_interval"].GetUint(), 600u);

  auto ih = InfoHash::from_bytes(kHash);
  auto f = json(serialize_failure("bad \"thing\"", "announce", &ih));
  EXPECT_STREQ(f["failure reason"].GetString(), "bad \"thing\"");
  EXPECT_STREQ(f["action"].GetString(), "announce");
  auto bare = json(serialize_failure("nope"));
  EXPECT_FALSE(bare.HasMember("action"));
}

TEST(Parse, DeployNetExtensions) {
  const std::string hex(64, 'a');
  std::string route = R"({"action":"route","info_hash":")" + kHash + R"(","peer_id":")" + kPeer +
                      R"(","k":4,"content_ids":[")" + hex + R"(",")" + std::string(64, 'F') +
                      R"("]})";
  auto r = parse_in_message(route);
  const auto& req = std::get<RouteRequest>(std::get<InMessage>(r));
  EXPECT_EQ(req.k, 4u);
  ASSERT_EQ(req.content_ids.size(), 2u);
  EXPECT_EQ(req.content_ids[0][0], 0xAA);
  EXPECT_EQ(req.content_ids[1][31], 0xFF);

  auto bad = [&](const std::string& body) {
    auto res = parse_in_message(R"({"action":"route","info_hash":")" + kHash + R"(","peer_id":")" +
                                kPeer + "\"" + body + "}");
    EXPECT_TRUE(std::holds_alternative<ParseError>(res)) << body;
    if (auto* e = std::get_if<ParseError>(&res)) {
      EXPECT_EQ(e->action, "route");
    }
  };
  bad("");
  bad(R"(,"content_ids":[])");
  bad(R"(,"content_ids":["abc"])");
  bad(R"(,"content_ids":[")" + std::string(63, 'a') + "g\"]");
  bad(R"(,"content_ids":[1])");
  bad(R"(,"content_ids":[")" + hex + R"("],"k":0)");
  bad(R"(,"content_ids":[")" + hex + R"("],"k":9)");
  bad(R"(,"content_ids":[")" + hex + R"("],"k":"3")");
  std::string many = R"(,"content_ids":[)";
  for (int i = 0; i < 257; ++i) many += (i ? ",\"" : "\"") + hex + "\"";
  bad(many + "]");

  std::string base =
      R"({"action":"announce","info_hash":")" + kHash + R"(","peer_id":")" + kPeer + "\"";
  auto ok = parse_in_message(base + R"(,"region":"eu-west.1","offers":[{"offer_id":")" + kOffer +
                             R"(","offer":{"type":"offer","sdp":"x"},"to_peer_id":")" + kPeer +
                             R"("}]})");
  const auto& a = as_announce(ok);
  EXPECT_EQ(a.region, "eu-west.1");
  ASSERT_TRUE(a.offers[0].to_peer_id);
  EXPECT_EQ(a.offers[0].to_peer_id->to_wire(), kPeer);
  EXPECT_EQ(as_error(parse_in_message(base + R"(,"region":"a b"})")).action, "announce");
  EXPECT_TRUE(std::holds_alternative<ParseError>(
      parse_in_message(base + R"(,"region":")" + std::string(33, 'x') + "\"}")));
  EXPECT_TRUE(std::holds_alternative<ParseError>(
      parse_in_message(base + R"(,"offers":[{"offer_id":")" + kOffer +
                       R"(","offer":{"type":"offer","sdp":"x"},"to_peer_id":"short"}]})")));
}

TEST(Serialize, RouteReply) {
  RouteEntry e;
  e.content_id.fill(0xAB);
  e.peers.push_back(PeerId::from_bytes(kPeer));
  auto text = serialize_route_reply(InfoHash::from_bytes(kHash), std::span(&e, 1), 7);
  auto d = json(text);
  EXPECT_STREQ(d["action"].GetString(), "route");
  EXPECT_EQ(d["peers"].GetUint(), 7u);
  std::string abab;
  for (int i = 0; i < 32; ++i) abab += "ab";
  EXPECT_EQ(std::string(d["routes"][0]["content_id"].GetString()), abab);
  EXPECT_EQ(std::string(d["routes"][0]["peers"][0].GetString()), kPeer);
}

// The typed messages the tracker hands out serialize exactly as the functions they replace;
// a relay's bytes are the sender's (a lone surrogate escape stays an escape).
TEST(Serialize, TypedOutMessages) {
  const auto ih = InfoHash::from_bytes(kHash);
  const auto from = PeerId::from_bytes(kPeer);
  const auto oid = OfferId::from_bytes(kOffer);
  const std::string sdp = R"({"type":"offer","sdp":"v=0\udc00"})";
  EXPECT_EQ(serialize(OutMessage{RelayOut{false, ih, from, oid, sdp}}),
            serialize_offer(ih, from, oid, sdp));
  EXPECT_EQ(serialize(OutMessage{RelayOut{true, ih, from, oid, sdp}}),
            serialize_answer(ih, from, oid, sdp));
  EXPECT_NE(serialize(OutMessage{RelayOut{false, ih, from, oid, sdp}}).find(R"(\udc00)"),
            std::string::npos);
  EXPECT_EQ(serialize(OutMessage{AnnounceReplyOut{ih, 3, 4, 120}}),
            serialize_announce_reply(ih, 3, 4, 120));
  EXPECT_EQ(serialize(OutMessage{FailureOut{"no", "route", ih}}),
            serialize_failure("no", "route", &ih));
  EXPECT_EQ(serialize(OutMessage{FailureOut{"no", {}, std::nullopt}}), serialize_failure("no"));
  RouteEntry e;
  e.content_id.fill(1);
  e.peers.push_back(from);
  EXPECT_EQ(serialize(OutMessage{RouteReplyOut{ih, {e}, 2}}),
            serialize_route_reply(ih, std::span(&e, 1), 2));
  OutMessage done = SerializedOut{"as sent"};
  EXPECT_EQ(serialize(done), "as sent");
  EXPECT_EQ(serialize(std::move(done)), "as sent");
}

}  // namespace
}  // namespace deploynet

namespace deploynet {
namespace {

// The per-byte definition valid_utf8's word-at-a-time ASCII path must agree with.
bool valid_utf8_bytewise(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : 0;
    if (n == 0 || i + n >= s.size()) return false;
    std::uint32_t cp = c & (0x3Fu >> n);
    for (std::size_t k = 1; k <= n; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 0x2) return false;
      cp = (cp << 6) | (d & 0x3Fu);
    }
    constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

TEST(Utf8, WordAtATimeAsciiAgreesWithTheBytewiseDefinitionAtEveryOffset) {
  const std::string tails[] = {
      "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xC3", "\xED\xA0\x80",
      "\xC0\xAF", "\xFF",         "\xF4\x90\x80\x80", "\x80", ""};
  int checked = 0;
  for (std::size_t before = 0; before <= 17; ++before) {
    for (const auto& t : tails) {
      for (std::size_t after = 0; after <= 9; ++after) {
        std::string s = std::string(before, 'a') + t + std::string(after, 'z');
        EXPECT_EQ(valid_utf8(s), valid_utf8_bytewise(s)) << before << "/" << after;
        ++checked;
      }
    }
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 40, 'x');
    for (auto& ch : s) {
      ch = static_cast<char>(rng() % 4 == 0 ? 0x80 + rng() % 0x80 : 0x20 + rng() % 0x5F);
    }
    EXPECT_EQ(valid_utf8(s), valid_utf8_bytewise(s));
    ++checked;
  }
  EXPECT_GT(checked, 20000);
  EXPECT_TRUE(valid_utf8(std::string(100, 'a') + "\xE2\x82\xAC"));
  EXPECT_FALSE(valid_utf8(std::string(100, 'a') + "\xFF" + std::string(7, 'b')));
}

}  // namespace
}  // namespace deploynet
