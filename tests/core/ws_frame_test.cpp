#include "deploynet/ws_frame.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace deploynet::ws {
namespace {

// A client frame as a browser sends it: masked with a 4-byte key.
std::string client_frame(std::uint8_t first_byte, std::string_view payload,
                         std::uint32_t key = 0x37fa213d) {
  std::string f;
  f.push_back(static_cast<char>(first_byte));
  std::size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xFFFF) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xFF));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int s = 56; s >= 0; s -= 8) f.push_back(static_cast<char>((std::uint64_t{n} >> s) & 0xFF));
  }
  char mask[4] = {static_cast<char>(key >> 24), static_cast<char>(key >> 16),
                  static_cast<char>(key >> 8), static_cast<char>(key)};
  f.append(mask, 4);
  for (std::size_t i = 0; i < n; ++i) f.push_back(static_cast<char>(payload[i] ^ mask[i & 3]));
  return f;
}

using Kind = MessageReader::Kind;

TEST(WsFrame, ServerFramesUseTheShortestLength) {
  std::string out;
  append_frame(out, Opcode::kText, "hi");
  EXPECT_EQ(out, std::string("\x81\x02hi", 4));
  out.clear();
  append_frame(out, Opcode::kText, std::string(126, 'x'));
  EXPECT_EQ(out.substr(0, 4), std::string("\x81\x7e\x00\x7e", 4));
  EXPECT_EQ(out.size(), 4u + 126);
  out.clear();
  append_frame(out, Opcode::kBinary, std::string(70000, 'x'));
  EXPECT_EQ(out.substr(0, 10), std::string("\x82\x7f\x00\x00\x00\x00\x00\x01\x11\x70", 10));
  out.clear();
  append_close(out, CloseCode::kTooBig, "too big");
  EXPECT_EQ(out, std::string("\x88\x09\x03\xf1too big", 11));
}

TEST(WsFrame, ReadsMaskedMessagesOfEveryLengthForm) {
  for (std::size_t n : {0u, 1u, 125u, 126u, 65535u, 65536u, 100000u}) {
    std::string payload(n, 'a');
    for (std::size_t i = 0; i < n; ++i) payload[i] = static_cast<char>('a' + i % 26);
    auto frame = client_frame(0x81, payload);
    MessageReader r(200000);
    std::size_t used = 0;
    auto ev = r.next(frame, used);
    ASSERT_EQ(ev.kind, Kind::kMessage) << n;
    EXPECT_EQ(ev.payload, payload);
    EXPECT_EQ(used, frame.size());
  }
}

TEST(WsFrame, EveryPrefixOfAFrameNeedsMore) {
  auto frame = client_frame(0x81, std::string(300, 'z'));
  for (std::size_t cut = 0; cut < frame.size(); ++cut) {
    MessageReader r(1000);
    std::string part = frame.substr(0, cut);
    std::size_t used = 0;
    EXPECT_EQ(r.next(part, used).kind, Kind::kNeedMore) << cut;
  }
}

TEST(WsFrame, TwoFramesInOneBuffer) {
  auto buf = client_frame(0x81, "first") + client_frame(0x81, "second", 0x01020304);
  MessageReader r(1000);
  std::size_t used = 0;
  auto ev = r.next(buf, used);
  ASSERT_EQ(ev.kind, Kind::kMessage);
  EXPECT_EQ(ev.payload, "first");
  std::span<char> rest(buf.data() + used, buf.size() - used);
  ev = r.next(rest, used);
  ASSERT_EQ(ev.kind, Kind::kMessage);
  EXPECT_EQ(ev.payload, "second");
}

TEST(WsFrame, FragmentsAssembleWithControlFramesBetween) {
  auto buf = client_frame(0x01, "hel") + client_frame(0x89, "p") + client_frame(0x80, "lo");
  MessageReader r(1000);
  std::size_t used = 0;
  std::span<char> s(buf);
  auto ev = r.next(s, used);
  EXPECT_EQ(ev.kind, Kind::kFragment);
  s = s.subspan(used);
  ev = r.next(s, used);
  ASSERT_EQ(ev.kind, Kind::kPing);
  EXPECT_EQ(ev.payload, "p");
  s = s.subspan(used);
  ev = r.next(s, used);
  ASSERT_EQ(ev.kind, Kind::kMessage);
  EXPECT_EQ(ev.payload, "hello");
  EXPECT_EQ(used, s.size());
}

TEST(WsFrame, SizeLimitCountsFragmentsAndIsCheckedFromTheHeader) {
  MessageReader r(10);
  auto big = client_frame(0x81, std::string(11, 'x'));
  std::string header_only = big.substr(0, 2);
  std::size_t used = 0;
  auto ev = r.next(header_only, used);  // refused before the payload arrives
  EXPECT_EQ(ev.kind, Kind::kError);
  EXPECT_EQ(ev.close_code, 1009);

  MessageReader f(10);
  auto buf = client_frame(0x01, "123456") + client_frame(0x80, "78901");
  std::span<char> s(buf);
  EXPECT_EQ(f.next(s, used).kind, Kind::kFragment);
  s = s.subspan(used);
  ev = f.next(s, used);
  EXPECT_EQ(ev.kind, Kind::kError);
  EXPECT_EQ(ev.close_code, 1009);
}

TEST(WsFrame, CloseCarriesItsCode) {
  std::string body("\x03\xe8", 2);
  auto frame = client_frame(0x88, body);
  MessageReader r(100);
  std::size_t used = 0;
  auto ev = r.next(frame, used);
  ASSERT_EQ(ev.kind, Kind::kClose);
  EXPECT_EQ(ev.close_code, 1000);
  auto empty = client_frame(0x88, "");
  EXPECT_EQ(r.next(empty, used).close_code, 1005);
}

TEST(WsFrame, InvalidCloseCodesAndNonUtf8TextAreErrors) {
  struct Case {
    std::string frame;
    std::uint16_t code;
    const char* what;
  };
  std::vector<Case> cases = {
      {client_frame(0x88, std::string("\x03\xe7", 2)), 1002, "close code 999"},
      {client_frame(0x88, std::string("\x03\xed", 2)), 1002, "close code 1005"},
      {client_frame(0x88, std::string("\x03\xee", 2)), 1002, "close code 1006"},
      {client_frame(0x88, std::string("\x03\xf7", 2)), 1002, "close code 1015"},
      {client_frame(0x88, std::string("\x07\xd0", 2)), 1002, "close code 2000"},
      {client_frame(0x88, std::string("\x03\xe8\xff", 3)), 1007, "close reason not UTF-8"},
      {client_frame(0x81, "{\xed\xb0\x80}"), 1007, "a surrogate in a text frame"},
      {client_frame(0x81, "\xc0\xaf"), 1007, "an overlong form"},
      {client_frame(0x81, "\xe2\x82"), 1007, "a truncated sequence"},
  };
  for (auto& c : cases) {
    MessageReader r(1 << 20);
    std::size_t used = 0;
    auto ev = r.next(c.frame, used);
    EXPECT_EQ(ev.kind, Kind::kError) << c.what;
    EXPECT_EQ(ev.close_code, c.code) << c.what;
  }
  // A code point split across fragments is fine; binary frames are not UTF-8 checked.
  MessageReader r(100);
  auto buf =
      client_frame(0x01, "\xe2\x82") + client_frame(0x80, "\xac!") + client_frame(0x82, "\xff");
  std::span<char> s(buf);
  std::size_t used = 0;
  EXPECT_EQ(r.next(s, used).kind, Kind::kFragment);
  s = s.subspan(used);
  auto ev = r.next(s, used);
  ASSERT_EQ(ev.kind, Kind::kMessage);
  EXPECT_EQ(ev.payload, "\xe2\x82\xac!");
  s = s.subspan(used);
  EXPECT_EQ(r.next(s, used).kind, Kind::kMessage);
  // Valid codes are reported as sent.
  auto ok = client_frame(0x88, std::string("\x0f\xa0ok", 4));
  MessageReader r2(100);
  EXPECT_EQ(r2.next(ok, used).close_code, 4000);
}

TEST(WsFrame, ProtocolViolationsAreErrors) {
  struct Case {
    std::string frame;
    const char* what;
  };
  std::string unmasked("\x81\x02hi", 4);
  std::string huge_len("\x81\xff\x80\x00\x00\x00\x00\x00\x00\x00", 10);
  std::vector<Case> cases = {
      {unmasked, "unmasked"},
      {client_frame(0xC1, "x"), "rsv1 (compression) not negotiated"},
      {client_frame(0x83, "x"), "reserved data opcode"},
      {client_frame(0x8B, "x"), "reserved control opcode"},
      {client_frame(0x09, "x"), "fragmented ping"},
      {client_frame(0x89, std::string(126, 'x')), "long ping"},
      {client_frame(0x80, "x"), "continuation first"},
      {client_frame(0x88, "x"), "one-byte close"},
      {huge_len, "64-bit length with the top bit"},
  };
  for (auto& c : cases) {
    MessageReader r(1 << 20);
    std::size_t used = 0;
    auto ev = r.next(c.frame, used);
    EXPECT_EQ(ev.kind, Kind::kError) << c.what;
    EXPECT_EQ(ev.close_code, 1002) << c.what;
  }
  MessageReader r(100);
  auto buf = client_frame(0x01, "a") + client_frame(0x81, "b");
  std::size_t used = 0;
  std::span<char> s(buf);
  r.next(s, used);
  EXPECT_EQ(r.next(s.subspan(used), used).kind, Kind::kError);  // new message mid-fragment
}

TEST(WsFrame, RandomBytesNeverCrashAndNeverOverrun) {
  // A cheap stand-in for the fuzzer on every test run (ASan watches the reads).
  std::mt19937 rng(7);
  for (int round = 0; round < 20000; ++round) {
    std::vector<char> bytes(rng() % 64);
    for (auto& b : bytes) b = static_cast<char>(rng());
    if (!bytes.empty() && (rng() & 1)) bytes[0] = static_cast<char>(0x80 | (rng() & 0x0F));
    if (bytes.size() > 1 && (rng() & 1)) bytes[1] = static_cast<char>(0x80 | (rng() % 130));
    MessageReader r(32);
    std::span<char> s(bytes);
    for (int i = 0; i < 8 && !s.empty(); ++i) {
      std::size_t used = 0;
      auto ev = r.next(s, used);
      if (ev.kind == Kind::kNeedMore || ev.kind == Kind::kError) break;
      ASSERT_LE(used, s.size());
      ASSERT_GT(used, 0u);
      s = s.subspan(used);
    }
  }
}

}  // namespace
}  // namespace deploynet::ws
