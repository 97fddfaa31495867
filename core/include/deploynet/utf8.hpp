#pragma once

// Strict UTF-8 (RFC 3629): what a browser's WebSocket accepts in a text frame and what JSON
// text must be. No overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace deploynet {

constexpr bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    // ASCII (all of an SDP, nearly all signaling) eight bytes at a time.
    while (i + 8 <= s.size()) {
      std::uint64_t w = 0;
      for (std::size_t k = 0; k < 8; ++k) {
        w |= std::uint64_t{static_cast<unsigned char>(s[i + k])} << (8 * k);
      }
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= s.size()) break;
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : 0;
    if (n == 0 || i + n >= s.size()) return false;  // a lead byte needs n more bytes
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

}  // namespace deploynet
