#include "deploynet/cluster_codec.hpp"

#include <gtest/gtest.h>

namespace deploynet::cluster {
namespace {

InfoHash ih() {
  return InfoHash::from_bytes(std::string(20, 'i'));
}
PeerId peer(char c) {
  return PeerId::from_bytes(std::string(20, c));
}

TEST(ClusterCodec, RelaysRoundTripAndOnlyAnObjectCrosses) {
  Relay r{true,
          ih(),
          peer('a'),
          peer('b'),
          OfferId::from_bytes(std::string(20, 'o')),
          R"({"type":"answer","sdp":"v=0"})"};
  auto bytes = encode_relay(r);
  auto back = decode_relay(bytes);
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->answer);
  EXPECT_EQ(back->to, peer('b'));
  EXPECT_EQ(back->description, r.description);
  EXPECT_EQ(encode_relay(*back), bytes);
  auto head = bytes.substr(0, 81);
  for (std::string bad :
       {std::string("not json"), std::string(R"(["x"])"), std::string("{\"a\":\"\xff\"}"),
        std::string(R"({"a":1} trailing)"), std::string()}) {
    EXPECT_FALSE(decode_relay(head + bad)) << bad;
  }
  EXPECT_FALSE(decode_relay(head.substr(0, 80)));
  EXPECT_FALSE(decode_relay("X" + bytes.substr(1)));
}

TEST(ClusterCodec, MemberMessagesRoundTripAndAreChecked) {
  MemberEvent e;
  e.info_hash = ih();
  e.peer_id = peer('a');
  e.seeder = true;
  e.where = Proximity{"eu-west", 0xc0a80100};
  for (auto kind :
       {MemberMessage::Kind::kJoin, MemberMessage::Kind::kLeave, MemberMessage::Kind::kReset}) {
    MemberMessage m{kind, 7, e};
    auto bytes = encode_member(m);
    auto back = decode_member(bytes);
    ASSERT_TRUE(back) << static_cast<char>(kind);
    EXPECT_EQ(back->kind, kind);
    EXPECT_EQ(back->node, 7u);
    EXPECT_EQ(encode_member(*back), bytes);
    if (kind == MemberMessage::Kind::kJoin) {
      EXPECT_EQ(back->event.where.region, "eu-west");
      EXPECT_EQ(back->event.where.net_prefix, 0xc0a80100u);
      EXPECT_TRUE(back->event.seeder);
    }
  }
  auto join = encode_member({MemberMessage::Kind::kJoin, 7, e});
  EXPECT_FALSE(decode_member(join + std::string(1 << 20, 'x')));  // a region of 1 MiB
  auto flag = join;
  flag[5 + kFieldLen] = 7;
  EXPECT_FALSE(decode_member(flag));
  EXPECT_FALSE(decode_member(encode_member({MemberMessage::Kind::kReset, 0, {}})));  // node 0
  EXPECT_FALSE(decode_member(encode_member({MemberMessage::Kind::kReset, 7, {}}) + "x"));
  EXPECT_FALSE(decode_member(encode_member({MemberMessage::Kind::kLeave, 7, e}) + "x"));
}

TEST(ClusterCodec, RecordsAreChecked) {
  MemberEvent e;
  e.info_hash = ih();
  e.peer_id = peer('z');
  auto got = decode_record(member_field(e), member_value(e));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->peer_id, peer('z'));
  EXPECT_FALSE(decode_record(member_field(e).substr(1), member_value(e)));
  EXPECT_FALSE(decode_record(member_field(e), member_value(e).substr(0, 8)));
  EXPECT_FALSE(decode_record(member_field(e), member_value(e) + "bad region!"));
}

}  // namespace
}  // namespace deploynet::cluster
