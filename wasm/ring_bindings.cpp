// The routing ring for the browser: deploynet::Ring behind a small embind class. Ids cross the
// boundary as lower-case hex (peer ids 40 digits, content ids 64), lists as comma-separated
// text: byte-exact for binary ids, and one string per call instead of a JS array per peer.
// client/src/ring.ts wraps this in typed methods.

#include <emscripten/bind.h>

#include <string>

#include "../bench/ring_lookup_loop.hpp"
#include "deploynet/ring.hpp"

namespace {

using deploynet::ContentId;
using deploynet::PeerId;
using deploynet::Proximity;

int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

template <std::size_t N>
bool unhex(const std::string& s, std::size_t at, std::array<std::uint8_t, N>& out) {
  if (s.size() < at + 2 * N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    int hi = nibble(s[at + 2 * i]), lo = nibble(s[at + 2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return true;
}

bool peer_of(const std::string& hex, PeerId& p) {
  return hex.size() == 40 && unhex<20>(hex, 0, p.bytes);
}

Proximity proximity(const std::string& region, const std::string& prefix_hex) {
  Proximity p;
  p.region = region;
  std::array<std::uint8_t, 8> b{};
  if (prefix_hex.size() == 16 && unhex<8>(prefix_hex, 0, b)) {
    for (auto x : b) p.net_prefix = (p.net_prefix << 8) | x;
  }
  return p;
}

void append_list(std::string& out, const std::vector<PeerId>& peers) {
  for (std::size_t i = 0; i < peers.size(); ++i) {
    if (i) out.push_back(',');
    out += peers[i].hex();
  }
}

class WasmRing {
 public:
  WasmRing(unsigned vnodes, unsigned load_permille)
      : ring_(deploynet::RingConfig{vnodes, load_permille}) {}

  // Returns 1 if added, 0 if it was a member (proximity updated), -1 for a malformed id.
  int add(const std::string& peer_hex, const std::string& region, const std::string& prefix) {
    PeerId p;
    if (!peer_of(peer_hex, p)) return -1;
    return ring_.add(p, proximity(region, prefix)) ? 1 : 0;
  }

  int remove(const std::string& peer_hex) {
    PeerId p;
    if (!peer_of(peer_hex, p)) return -1;
    return ring_.remove(p) ? 1 : 0;
  }

  unsigned size() const { return static_cast<unsigned>(ring_.size()); }

  // "hex,hex,..." or "" (also for a malformed key).
  std::string route(const std::string& key_hex, unsigned k, const std::string& region,
                    const std::string& prefix, const std::string& exclude_hex) {
    ContentId key;
    if (key_hex.size() != 64 || !unhex<32>(key_hex, 0, key)) return {};
    PeerId ex;
    bool has_ex = peer_of(exclude_hex, ex);
    std::string out;
    append_list(out, ring_.route(key, k, proximity(region, prefix), has_ex ? &ex : nullptr));
    return out;
  }

  // keys: 64-digit hex ids back to back. Answer: one list per key, separated by ';'.
  std::string assign(const std::string& keys_hex, unsigned k, const std::string& region,
                     const std::string& prefix, const std::string& exclude_hex) {
    if (keys_hex.size() % 64 != 0) return {};
    std::vector<ContentId> keys(keys_hex.size() / 64);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (!unhex<32>(keys_hex, 64 * i, keys[i])) return {};
    }
    PeerId ex;
    bool has_ex = peer_of(exclude_hex, ex);
    std::string out;
    auto answers = ring_.assign(keys, k, proximity(region, prefix), has_ex ? &ex : nullptr);
    for (std::size_t i = 0; i < answers.size(); ++i) {
      if (i) out.push_back(';');
      append_list(out, answers[i]);
    }
    return out;
  }

 private:
  deploynet::Ring ring_;
};

}  // namespace

EMSCRIPTEN_BINDINGS(deploynet_ring) {
  emscripten::class_<WasmRing>("Ring")
      .constructor<unsigned, unsigned>()
      .function("add", &WasmRing::add)
      .function("remove", &WasmRing::remove)
      .function("size", &WasmRing::size)
      .function("route", &WasmRing::route)
      .function("assign", &WasmRing::assign);
  // `make bench`: the same loop as the native figure it is compared with.
  emscripten::function("benchLookups", &deploynet::bench::ring_lookups_per_second);
}
