#pragma once

// Hex text for ids and digests, and its strict inverse. Header-only and dependency-free: the
// WebAssembly build of the ring uses it too.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace deploynet {

// Lower case, two digits per byte.
inline std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xF];
  }
  return out;
}

enum class HexCase : std::uint8_t {
  kLower,  // one spelling per value, where text must be deterministic (the manifest)
  kAny,    // what clients may send
};

// Exactly 2N hex digits, or nothing.
template <std::size_t N>
std::optional<std::array<std::uint8_t, N>> from_hex(std::string_view hex,
                                                    HexCase accept = HexCase::kAny) {
  if (hex.size() != 2 * N) return std::nullopt;
  auto nibble = [accept](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (accept == HexCase::kAny && c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::array<std::uint8_t, N> out{};
  for (std::size_t i = 0; i < N; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return out;
}

}  // namespace deploynet
