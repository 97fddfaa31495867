#include "deploynet/proxy_protocol.hpp"

#include <gtest/gtest.h>

#include <string>

namespace deploynet {
namespace {

using Status = ProxyHeader::Status;

std::array<unsigned char, 16> v4(unsigned a, unsigned b, unsigned c, unsigned d) {
  return {0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0xFF,
          0xFF,
          static_cast<unsigned char>(a),
          static_cast<unsigned char>(b),
          static_cast<unsigned char>(c),
          static_cast<unsigned char>(d)};
}

std::string v2(unsigned char ver_cmd, unsigned char fam, std::string addr) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h.push_back(static_cast<char>(ver_cmd));
  h.push_back(static_cast<char>(fam));
  h.push_back(static_cast<char>(addr.size() >> 8));
  h.push_back(static_cast<char>(addr.size() & 0xFF));
  return h + addr;
}

TEST(ProxyProtocol, Version1NamesTheClientAndLeavesTheStreamAfterIt) {
  std::string in = "PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n";
  auto h = parse_proxy_header(in);
  ASSERT_EQ(h.status, Status::kOk);
  EXPECT_EQ(in.substr(h.used), "GET / HTTP/1.1\r\n");
  EXPECT_EQ(*h.client, v4(203, 0, 113, 7));

  h = parse_proxy_header("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n");
  ASSERT_EQ(h.status, Status::kOk);
  EXPECT_EQ((*h.client)[0], 0x20);
  EXPECT_EQ((*h.client)[15], 1);

  h = parse_proxy_header("PROXY UNKNOWN\r\n");
  ASSERT_EQ(h.status, Status::kOk);
  EXPECT_FALSE(h.client);
}

TEST(ProxyProtocol, IncompleteHeadersWaitAndBadOnesAreRefused) {
  std::string full = "PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\n";
  EXPECT_EQ(parse_proxy_header(std::string_view()).status, Status::kNeedMore);
  for (std::size_t n = 0; n < full.size(); ++n) {
    EXPECT_EQ(parse_proxy_header(full.substr(0, n)).status, Status::kNeedMore) << n;
  }
  for (const char* bad :
       {"GET / HTTP/1.1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        "PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n", "PROXY TCP4 ::1 ::1 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"}) {
    EXPECT_EQ(parse_proxy_header(bad).status, Status::kInvalid) << bad;
  }
  // No line end within the longest v1 header: refused rather than buffered.
  EXPECT_EQ(parse_proxy_header("PROXY " + std::string(200, 'x')).status, Status::kInvalid);
}

TEST(ProxyProtocol, Version2BinaryHeaders) {
  std::string addr4("\xC6\x33\x64\x05\x0A\x00\x00\x01\x1F\x90\x01\xBB", 12);
  auto in = v2(0x21, 0x11, addr4) + "rest";
  auto h = parse_proxy_header(in);
  ASSERT_EQ(h.status, Status::kOk);
  EXPECT_EQ(*h.client, v4(198, 51, 100, 5));
  EXPECT_EQ(in.substr(h.used), "rest");
  for (std::size_t n = 0; n + 4 < in.size(); ++n) {
    EXPECT_EQ(parse_proxy_header(in.substr(0, n)).status, Status::kNeedMore) << n;
  }
  // LOCAL (a health check by the proxy itself): no client address.
  h = parse_proxy_header(v2(0x20, 0x00, ""));
  ASSERT_EQ(h.status, Status::kOk);
  EXPECT_FALSE(h.client);
  // Wrong version, unknown command, short address block, oversized TLVs.
  EXPECT_EQ(parse_proxy_header(v2(0x11, 0x11, addr4)).status, Status::kInvalid);
  EXPECT_EQ(parse_proxy_header(v2(0x22, 0x11, addr4)).status, Status::kInvalid);
  EXPECT_EQ(parse_proxy_header(v2(0x21, 0x11, addr4.substr(0, 8))).status, Status::kInvalid);
  EXPECT_EQ(parse_proxy_header(v2(0x21, 0x21, addr4)).status, Status::kInvalid);
  EXPECT_EQ(parse_proxy_header(v2(0x21, 0x11, addr4 + std::string(600, '\0'))).status,
            Status::kInvalid);
}

}  // namespace
}  // namespace deploynet
