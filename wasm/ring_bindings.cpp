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

bool peer_of(const std::string& hex, PeerId& p) {
  auto bytes = deploynet::from_hex<20>(hex);
  if (bytes) p.bytes = *bytes;
  return bytes.has_value();
}

Proximity proximity(const std::string& region, const std::string& prefix_hex) {
  Proximity p;
  p.region = region;
  if (auto b = deploynet::from_hex<8>(prefix_hex)) {
    for (auto x : *b) p.net_prefix = (p.net_prefix << 8) | x;
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
    auto key = deploynet::from_hex<32>(key_hex);
    if (!key) return {};
    PeerId ex;
    bool has_ex = peer_of(exclude_hex, ex);
    std::string out;
    append_list(out, ring_.route(*key, k, proximity(region, prefix), has_ex ? &ex : nullptr));
    return out;
  }

  // keys: 64-digit hex ids back to back. Answer: one list per key, separated by ';'.
  std::string assign(const std::string& keys_hex, unsigned k, const std::string& region,
                     const std::string& prefix, const std::string& exclude_hex) {
    if (keys_hex.size() % 64 != 0) return {};
    std::vector<ContentId> keys(keys_hex.size() / 64);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      auto key = deploynet::from_hex<32>(std::string_view(keys_hex).substr(64 * i, 64));
      if (!key) return {};
      keys[i] = *key;
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
