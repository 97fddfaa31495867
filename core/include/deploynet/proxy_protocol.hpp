#pragma once

// The PROXY protocol header (HAProxy's spec, versions 1 and 2) that a TCP proxy such as nginx's
// stream module or HAProxy sends before the client's bytes: it names the client's address.
// Parsing only; the server decides whom to believe (its --trusted-proxy list).

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

namespace deploynet {

struct ProxyHeader {
  enum class Status { kNeedMore, kInvalid, kOk };
  Status status = Status::kNeedMore;
  std::size_t used = 0;  // header bytes (kOk); what follows is the client's stream
  // The client's address as IPv6 (IPv4 v4-mapped); none for `LOCAL` / `UNKNOWN` (the proxy's
  // own connection, e.g. a health check).
  std::optional<std::array<unsigned char, 16>> client;
};

// Longest header we wait for: v1 is at most 107 bytes; v2 carries at most 216 address bytes
// (UNIX sockets) plus TLVs, which we accept up to this size.
inline constexpr std::size_t kMaxProxyHeader = 536;

ProxyHeader parse_proxy_header(std::string_view data);

}  // namespace deploynet
