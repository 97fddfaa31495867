// The PROXY protocol header parser on any bytes: a complete header never claims more bytes
// than it was given or than the longest header, every prefix of an accepted header waits for
// more (so a header split over reads is never misjudged), and it never reads out of bounds.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "deploynet/proxy_protocol.hpp"

using deploynet::ProxyHeader;
using Status = ProxyHeader::Status;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto h = deploynet::parse_proxy_header(in);
  if (h.status != Status::kOk) return 0;
  if (h.used == 0 || h.used > size || h.used > deploynet::kMaxProxyHeader) std::abort();
  for (std::size_t n = 0; n < h.used; ++n) {
    if (deploynet::parse_proxy_header(in.substr(0, n)).status != Status::kNeedMore) std::abort();
  }
  // The header alone parses the same as with the stream after it.
  auto alone = deploynet::parse_proxy_header(in.substr(0, h.used));
  if (alone.status != Status::kOk || alone.used != h.used || alone.client != h.client) std::abort();
  return 0;
}
