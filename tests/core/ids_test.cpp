#include "deploynet/ids.hpp"

#include <gtest/gtest.h>

#include <unordered_set>

namespace deploynet {
namespace {

TEST(Id20, AsciiRoundTrip) {
  auto id = PeerId::from_wire("-DN0001-abcdefghijkl");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->to_wire(), "-DN0001-abcdefghijkl");
  EXPECT_EQ(id->hex().substr(0, 4), "2d44");
}

TEST(Id20, EveryByteValueRoundTripsThroughUtf8) {
  for (int start = 0; start < 256; start += 20) {
    InfoHash id;
    for (int i = 0; i < 20; ++i) id.bytes[i] = static_cast<std::uint8_t>((start + i) & 0xFF);
    auto wire = id.to_wire();
    auto back = InfoHash::from_wire(wire);
    ASSERT_TRUE(back) << start;
    EXPECT_EQ(*back, id);
  }
}

TEST(Id20, HighBytesAreTwoByteUtf8) {
  std::string wire = "\xC3\xBF" + std::string(19, 'a');  // U+00FF then 19 ASCII
  auto id = InfoHash::from_wire(wire);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->bytes[0], 0xFF);
  EXPECT_EQ(id->bytes[1], 'a');
}

TEST(Id20, RejectsWrongLengthAndWideCodePoints) {
  EXPECT_FALSE(InfoHash::from_wire(std::string(19, 'a')));
  EXPECT_FALSE(InfoHash::from_wire(std::string(21, 'a')));
  EXPECT_FALSE(InfoHash::from_wire(""));
  // U+0100 (two bytes, but above 255) and U+20AC (three bytes) are not byte values.
  EXPECT_FALSE(InfoHash::from_wire("\xC4\x80" + std::string(19, 'a')));
  EXPECT_FALSE(InfoHash::from_wire("\xE2\x82\xAC" + std::string(19, 'a')));
  // Truncated and stray continuation bytes.
  EXPECT_FALSE(InfoHash::from_wire(std::string(19, 'a') + "\xC3"));
  EXPECT_FALSE(InfoHash::from_wire("\x80" + std::string(19, 'a')));
  // 40 hex characters are what some clients log, not what they send.
  EXPECT_FALSE(InfoHash::from_wire(std::string(40, 'f')));
}

TEST(Id20, HashSpreadsIdsThatShareAPrefix) {
  std::unordered_set<std::size_t> hashes;
  for (int i = 0; i < 1000; ++i) {
    std::string raw(20, 'x');
    raw[19] = static_cast<char>(i & 0xFF);
    raw[18] = static_cast<char>(i >> 8);
    hashes.insert(Id20Hash{}(InfoHash::from_bytes(raw)));
  }
  EXPECT_EQ(hashes.size(), 1000u);
}

}  // namespace
}  // namespace deploynet
