#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "deploynet/hex.hpp"

namespace deploynet {

// A 20-byte identifier as the WebTorrent tracker protocol carries it: a JSON string of 20
// characters, each one byte (code points U+0000..U+00FF). The tag makes InfoHash, PeerId and
// OfferId distinct types so they cannot be swapped by accident.
template <class Tag>
struct Id20 {
  static constexpr std::size_t kSize = 20;
  std::array<std::uint8_t, kSize> bytes{};

  // Decodes the UTF-8 text of a JSON string: exactly 20 code points, each at most U+00FF.
  // Browsers send bytes >= 0x80 as two-byte UTF-8 sequences (JSON.stringify of a binary
  // string); anything else (longer sequences, malformed UTF-8, wrong length) is rejected.
  static std::optional<Id20> from_wire(std::string_view utf8) {
    Id20 id;
    std::size_t n = 0;
    for (std::size_t i = 0; i < utf8.size();) {
      if (n == kSize) return std::nullopt;
      auto c = static_cast<std::uint8_t>(utf8[i]);
      if (c < 0x80) {
        id.bytes[n++] = c;
        i += 1;
      } else if ((c == 0xC2 || c == 0xC3) && i + 1 < utf8.size() &&
                 (static_cast<std::uint8_t>(utf8[i + 1]) & 0xC0) == 0x80) {
        id.bytes[n++] = static_cast<std::uint8_t>(((c & 0x1F) << 6) |
                                                  (static_cast<std::uint8_t>(utf8[i + 1]) & 0x3F));
        i += 2;
      } else {
        return std::nullopt;
      }
    }
    if (n != kSize) return std::nullopt;
    return id;
  }

  // Builds an id from 20 raw bytes (tests, tools).
  static Id20 from_bytes(std::string_view raw) {
    Id20 id;
    std::memcpy(id.bytes.data(), raw.data(), raw.size() < kSize ? raw.size() : kSize);
    return id;
  }

  // The UTF-8 text that, as a JSON string, stands for these 20 bytes.
  std::string to_wire() const {
    std::string out;
    out.reserve(kSize * 2);
    for (auto b : bytes) {
      if (b < 0x80) {
        out.push_back(static_cast<char>(b));
      } else {
        out.push_back(static_cast<char>(0xC0 | (b >> 6)));
        out.push_back(static_cast<char>(0x80 | (b & 0x3F)));
      }
    }
    return out;
  }

  std::string hex() const { return to_hex(bytes); }

  friend bool operator==(const Id20&, const Id20&) = default;
  // Byte order. Written out because older standard libraries (emscripten's libc++) lack
  // std::array's operator<=>.
  friend std::strong_ordering operator<=>(const Id20& a, const Id20& b) {
    int c = std::memcmp(a.bytes.data(), b.bytes.data(), kSize);
    return c < 0   ? std::strong_ordering::less
           : c > 0 ? std::strong_ordering::greater
                   : std::strong_ordering::equal;
  }
};

struct InfoHashTag;
struct PeerIdTag;
struct OfferIdTag;
using InfoHash = Id20<InfoHashTag>;
using PeerId = Id20<PeerIdTag>;
using OfferId = Id20<OfferIdTag>;

// Clients choose ids freely, so a plain prefix hash would let one flood a hash table with
// colliding keys. All 20 bytes are mixed with a per-process random seed.
std::uint64_t id_hash_seed() noexcept;

struct Id20Hash {
  template <class Tag>
  std::size_t operator()(const Id20<Tag>& id) const noexcept {
    std::uint64_t w[3] = {0, 0, 0};
    std::memcpy(w, id.bytes.data(), Id20<Tag>::kSize);
    std::uint64_t h = id_hash_seed();
    for (auto x : w) {
      h ^= x;
      h *= 0x9E3779B97F4A7C15ull;
      h ^= h >> 32;
    }
    return static_cast<std::size_t>(h);
  }
};

}  // namespace deploynet
