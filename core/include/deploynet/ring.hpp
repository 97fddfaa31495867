#pragma once

// Content routing: a consistent-hash ring of a swarm's peers. For a content id it names the k
// peers responsible for it: the first asked for that content and the ones expected to keep it.
//
// - Virtual nodes: each peer owns `vnodes` points on a 64-bit ring; a key (the first 8 bytes of
//   its SHA-256, big-endian) belongs to the owners of the next points clockwise. A join or leave
//   moves only the keys next to that peer's points: about 1/n of them.
// - Bounded loads (Mirrokni, Thorup, Zadimoghaddam 2018): `assign` places a set of keys so that
//   no peer holds more than floor(c * keys * k / n) of them (at least the ceiling of the
//   average, so that everything fits); a key skips full peers clockwise.
// - Proximity: a peer may carry a region (a client hint or a GeoIP lookup) and a network prefix.
//   Each region has its own ring; an answer takes the region's responsible peers first and fills
//   up from the global ring, then puts peers of the asker's own network prefix first. Within a
//   region the assignment stays consistent, and content spreads per region like a CDN's POPs.
//
// The same code runs in the server and, compiled to WebAssembly, in the browser; the answers
// depend only on the set of (peer id, proximity) members, never on the order they joined in.
// tests/fixtures/ring_vectors.json pins them for both builds.
//
// Membership changes are batched: add/remove are O(1) and the points are rebuilt (one pass over
// the ring plus a sort of the new points) at the next query, so a swarm that never asks for a
// route never builds a ring.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "deploynet/ids.hpp"

namespace deploynet {

using ContentId = std::array<std::uint8_t, 32>;  // SHA-256 of the content

struct RingConfig {
  std::uint32_t vnodes = 16;  // points per peer; bounded loads keep the balance, not vnodes
  std::uint32_t load_permille = 1250;  // c of bounded loads, in thousandths (1.25)
  // A rebuild after membership changes is one pass over every point: ~130 ms for a swarm of a
  // million peers (16M points, its region's ring included). With `rebuild_ms` > 0, a swarm of
  // at least `rebuild_above` peers rebuilds at most that often (Ring::advance): between
  // rebuilds, answers come from the last ring, without the peers that left since and without
  // the ones that joined since (they are routable at the next rebuild). Smaller swarms, and
  // `rebuild_ms` 0, rebuild at the next query as before.
  std::int64_t rebuild_ms = 0;
  std::uint32_t rebuild_above = 50'000;
};

struct Proximity {
  std::string region;            // empty: unknown
  std::uint64_t net_prefix = 0;  // e.g. IPv4 /24 or IPv6 /48 of the peer's address; 0: unknown
};

// The ring position of a key and of a peer's virtual node. Exposed for tests and tools.
std::uint64_t ring_key_position(const ContentId& key);
std::uint64_t ring_point_position(const PeerId& peer, std::uint32_t vnode);

// One ring over one set of peers, with no notion of proximity.
class HashRing {
 public:
  explicit HashRing(std::uint32_t vnodes = RingConfig{}.vnodes) : vnodes_(vnodes ? vnodes : 1) {}

  bool add(const PeerId& peer);     // false if already a member
  bool remove(const PeerId& peer);  // false if not a member
  bool contains(const PeerId& peer) const { return index_.contains(peer); }
  std::size_t size() const { return index_.size(); }

  // Up to k distinct peers for `key`, clockwise, skipping those in `skip`. Appends to `out`.
  void lookup(const ContentId& key, std::uint32_t k, std::span<const PeerId> skip,
              std::vector<PeerId>& out);

  // lookup() for many keys: min(k, eligible peers) peers per key, key after key, appended to
  // `out`. Memory-bound at large rings, so the search is pipelined: the bucket and the point of
  // the keys a few steps ahead are prefetched while the current one is answered.
  void lookup_many(std::span<const ContentId> keys, std::uint32_t k, std::span<const PeerId> skip,
                   std::vector<PeerId>& out);

  // Bounded loads over `keys` (in ring order): want[i] more peers for keys[i], appended to
  // out[i] and never one already there or in `skip`. Capacity per peer:
  // max(floor(c * sum(want) / eligible peers), ceil(sum(want) / eligible peers)).
  void assign(std::span<const ContentId> keys, std::span<const std::uint32_t> want,
              std::uint32_t load_permille, std::span<const PeerId> skip,
              std::vector<std::vector<PeerId>>& out);

  // The first index in points_ at or after `pos` (wrapping to 0). Ring must be non-empty.
  std::size_t successor(std::uint64_t pos);
  // successor() of each position, pipelined with prefetches (see lookup_many).
  void successors(std::span<const std::uint64_t> pos, std::span<std::uint32_t> out);

  // Number of points, after applying pending changes.
  std::size_t points();

  // While held, queries answer from the points last built (skipping members that left) and
  // leave pending changes for later; a ring never built is built anyway.
  void hold(bool on) { hold_ = on; }

 private:
  void apply_pending();
  // Before a query: apply pending changes unless held.
  void ready() {
    if (!hold_ || points_.empty()) apply_pending();
  }
  // Appends up to k distinct peers, clockwise from point index i, skipping those in `skip`.
  void walk(std::size_t i, std::uint32_t k, std::span<const PeerId> skip,
            std::vector<PeerId>& out) const;
  bool skipped(std::uint32_t slot, std::span<const PeerId> skip, const std::vector<PeerId>& chosen,
               std::size_t chosen_from) const;

  std::uint32_t vnodes_;
  std::vector<PeerId> members_;  // by slot; a freed slot waits in free_
  std::vector<std::uint32_t> free_;
  std::vector<std::uint32_t> released_;  // freed slots whose points are still in points_
  std::vector<bool> live_;
  std::unordered_map<PeerId, std::uint32_t, Id20Hash> index_;
  // Sorted by (position, peer id). Position and owner side by side: a lookup's scan and the
  // owner it finds share a cache line (one miss fewer than parallel arrays at 1M peers).
  struct Point {
    std::uint64_t pos;
    std::uint32_t owner;
  };
  std::vector<Point> points_;
  // bucket_[p >> shift_] is the first point at or after p's bucket: a lookup is one table read
  // and a short scan instead of a binary search over millions of points.
  std::vector<std::uint32_t> bucket_;
  unsigned shift_ = 64;
  std::vector<std::uint32_t> added_;   // slots whose points are not in points_ yet
  std::vector<std::uint32_t> load_;    // assign(): picks per slot, zero between calls
  std::vector<std::uint32_t> loaded_;  // assign(): the slots it made non-zero
  bool removed_ = false;               // some points in points_ belong to freed slots
  bool hold_ = false;                  // hold(): queries leave pending changes alone
};

// A swarm's routing: a global ring and one ring per region.
class Ring {
 public:
  explicit Ring(RingConfig config = {}) : config_(config), global_(config.vnodes) {}

  // Adds the peer, or updates its proximity. Returns true if it was not a member.
  bool add(const PeerId& peer, const Proximity& where = {});
  bool remove(const PeerId& peer);
  std::size_t size() const { return global_.size(); }
  const RingConfig& config() const { return config_; }
  // The member's proximity, or nullptr.
  const Proximity* where(const PeerId& peer) const;

  // The clock for `rebuild_ms` (see RingConfig): called before queries with the caller's time
  // (ms, >= 0). A negative time, or no call at all: every query sees every change.
  void advance(std::int64_t now_ms);

  // The k peers responsible for `key` (never `exclude`), nearest to `from` first.
  std::vector<PeerId> route(const ContentId& key, std::uint32_t k, const Proximity& from = {},
                            const PeerId* exclude = nullptr);

  // route() for many keys, without bounded loads: `per_key` = min(k, eligible) peers for each
  // key, back to back in the result. The fast path of batch lookups.
  std::vector<PeerId> route_many(std::span<const ContentId> keys, std::uint32_t k,
                                 const Proximity& from, const PeerId* exclude,
                                 std::size_t& per_key);

  // route() for a set of keys at once, with bounded loads: no peer is named for more than
  // c times its share of (keys x k). The same set of keys gives the same answer to every asker
  // of the same region. Duplicate keys get the same answer.
  std::vector<std::vector<PeerId>> assign(std::span<const ContentId> keys, std::uint32_t k,
                                          const Proximity& from = {},
                                          const PeerId* exclude = nullptr);

 private:
  void near_first(std::span<PeerId> peers, const Proximity& from) const;

  RingConfig config_;
  std::int64_t built_ms_ = 0;
  bool built_once_ = false;
  HashRing global_;
  std::unordered_map<std::string, HashRing> regions_;
  std::unordered_map<PeerId, Proximity, Id20Hash> where_;
};

}  // namespace deploynet
