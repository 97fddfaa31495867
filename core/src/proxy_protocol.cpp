#include "deploynet/proxy_protocol.hpp"

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>

#include <arpa/inet.h>

namespace deploynet {
namespace {

constexpr std::string_view kV1 = "PROXY ";
constexpr char kV2[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
constexpr std::size_t kV1Max = 107;

using Status = ProxyHeader::Status;

ProxyHeader invalid() {
  return {Status::kInvalid, 0, std::nullopt};
}

std::array<unsigned char, 16> v4_mapped(const unsigned char* four) {
  std::array<unsigned char, 16> ip{};
  ip[10] = ip[11] = 0xFF;
  std::memcpy(ip.data() + 12, four, 4);
  return ip;
}

bool port_ok(std::string_view s) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && v <= 65535;
}

ProxyHeader parse_v1(std::string_view data) {
  auto end = data.find("\r\n");
  if (end == std::string_view::npos) {
    return data.size() >= kV1Max ? invalid() : ProxyHeader{};
  }
  if (end + 2 > kV1Max) return invalid();
  std::string_view line = data.substr(kV1.size(), end - kV1.size());
  ProxyHeader h{Status::kOk, end + 2, std::nullopt};
  if (line == "UNKNOWN" || line.rfind("UNKNOWN ", 0) == 0) return h;
  // "TCP4 src dst sport dport" with single spaces.
  std::string_view parts[5];
  for (int i = 0; i < 5; ++i) {
    auto sp = line.find(' ');
    if ((sp == std::string_view::npos) != (i == 4)) return invalid();
    parts[i] = line.substr(0, sp);
    line = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
  }
  if (!port_ok(parts[3]) || !port_ok(parts[4])) return invalid();
  std::string src(parts[1]), dst(parts[2]);
  unsigned char buf[16];
  if (parts[0] == "TCP4") {
    if (inet_pton(AF_INET, dst.c_str(), buf) != 1 || inet_pton(AF_INET, src.c_str(), buf) != 1) {
      return invalid();
    }
    h.client = v4_mapped(buf);
  } else if (parts[0] == "TCP6") {
    if (inet_pton(AF_INET6, dst.c_str(), buf) != 1 || inet_pton(AF_INET6, src.c_str(), buf) != 1) {
      return invalid();
    }
    std::array<unsigned char, 16> ip{};
    std::memcpy(ip.data(), buf, 16);
    h.client = ip;
  } else {
    return invalid();
  }
  return h;
}

ProxyHeader parse_v2(std::string_view data) {
  if (data.size() < 16) return {};
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  if ((p[12] >> 4) != 2) return invalid();
  unsigned command = p[12] & 0x0F;
  std::size_t len = (std::size_t{p[14]} << 8) | p[15];
  if (16 + len > kMaxProxyHeader) return invalid();
  if (data.size() < 16 + len) return {};
  ProxyHeader h{Status::kOk, 16 + len, std::nullopt};
  if (command == 0) return h;  // LOCAL: the proxy's own connection
  if (command != 1) return invalid();
  unsigned family = p[13] >> 4;
  const unsigned char* addr = p + 16;
  if (family == 1) {  // AF_INET: src, dst, ports
    if (len < 12) return invalid();
    h.client = v4_mapped(addr);
  } else if (family == 2) {  // AF_INET6
    if (len < 36) return invalid();
    std::array<unsigned char, 16> ip{};
    std::memcpy(ip.data(), addr, 16);
    h.client = ip;
  } else if (family != 0 && family != 3) {
    return invalid();
  }  // UNSPEC or UNIX: no address we can use
  return h;
}

}  // namespace

ProxyHeader parse_proxy_header(std::string_view data) {
  if (data.empty()) return {};
  // Decide the version as soon as the bytes allow; anything else is not a PROXY header.
  std::size_t n = std::min(data.size(), sizeof kV2);
  if (std::memcmp(data.data(), kV2, n) == 0) {
    return n == sizeof kV2 ? parse_v2(data) : ProxyHeader{};
  }
  n = std::min(data.size(), kV1.size());
  if (data.substr(0, n) == kV1.substr(0, n)) {
    return n == kV1.size() ? parse_v1(data) : ProxyHeader{};
  }
  return invalid();
}

}  // namespace deploynet
