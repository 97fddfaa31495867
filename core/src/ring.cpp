#include "deploynet/ring.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <map>
#include <numeric>

namespace deploynet {
namespace {

// SplitMix64's step: a bijective 64-bit mix with full avalanche. Portable integer arithmetic,
// so native and WebAssembly builds place every point identically.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::uint64_t load_le(const std::uint8_t* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

std::uint64_t ring_key_position(const ContentId& key) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | key[i];
  return v;
}

std::uint64_t ring_point_position(const PeerId& peer, std::uint32_t vnode) {
  const std::uint8_t* b = peer.bytes.data();
  std::uint64_t h = mix(0x6465706C6F796E74ull ^ vnode);  // "deploynt"
  h = mix(h ^ load_le(b, 8));
  h = mix(h ^ load_le(b + 8, 8));
  return mix(h ^ load_le(b + 16, 4));
}

// ---- HashRing ----

bool HashRing::add(const PeerId& peer) {
  if (index_.contains(peer)) return false;
  std::uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
    members_[slot] = peer;
    live_[slot] = true;
  } else {
    slot = static_cast<std::uint32_t>(members_.size());
    members_.push_back(peer);
    live_.push_back(true);
  }
  index_.emplace(peer, slot);
  added_.push_back(slot);
  return true;
}

bool HashRing::remove(const PeerId& peer) {
  auto it = index_.find(peer);
  if (it == index_.end()) return false;
  live_[it->second] = false;
  // The slot is reused only after its points are gone (apply_pending), so that no stale point
  // can be mistaken for a new member's.
  released_.push_back(it->second);
  removed_ = true;
  index_.erase(it);
  return true;
}

void HashRing::apply_pending() {
  if (!removed_ && added_.empty()) return;
  if (removed_) {
    std::size_t w = 0;
    for (std::size_t r = 0; r < points_.size(); ++r) {
      if (live_[points_[r].owner]) points_[w++] = points_[r];
    }
    points_.resize(w);
    removed_ = false;
  }
  if (!added_.empty()) {
    auto less = [this](const Point& a, const Point& b) {
      return a.pos != b.pos ? a.pos < b.pos : members_[a.owner] < members_[b.owner];
    };
    std::vector<Point> fresh;
    fresh.reserve(added_.size() * vnodes_);
    for (auto slot : added_) {
      if (!live_[slot]) continue;  // joined and left before the ring was needed
      for (std::uint32_t v = 0; v < vnodes_; ++v) {
        fresh.push_back({ring_point_position(members_[slot], v), slot});
      }
    }
    added_.clear();
    std::sort(fresh.begin(), fresh.end(), less);
    // Merged in place from the back: no second copy of the ring (16M points at a million
    // peers) is allocated and faulted in at every rebuild.
    std::size_t i = points_.size(), j = fresh.size();
    points_.resize(i + j);
    for (std::size_t k = points_.size(); j > 0;) {
      if (i > 0 && less(fresh[j - 1], points_[i - 1]))
        points_[--k] = points_[--i];
      else
        points_[--k] = fresh[--j];
    }
  }
  free_.insert(free_.end(), released_.begin(), released_.end());
  released_.clear();

  // About two points per bucket.
  unsigned width = static_cast<unsigned>(std::bit_width(points_.size()));
  unsigned bits = width > 2 ? width - 1 : 1;
  shift_ = 64 - bits;
  bucket_.assign(std::size_t{1} << bits, 0);
  std::size_t p = 0;
  for (std::size_t b = 0; b < bucket_.size(); ++b) {
    std::uint64_t start = static_cast<std::uint64_t>(b) << shift_;
    while (p < points_.size() && points_[p].pos < start) ++p;
    bucket_[b] = static_cast<std::uint32_t>(p);
  }
}

std::size_t HashRing::points() {
  apply_pending();
  return points_.size();
}

std::size_t HashRing::successor(std::uint64_t pos) {
  std::size_t i = bucket_[pos >> shift_];
  const std::size_t n = points_.size();
  while (i < n && points_[i].pos < pos) ++i;
  return i == n ? 0 : i;
}

bool HashRing::skipped(std::uint32_t slot, std::span<const PeerId> skip,
                       const std::vector<PeerId>& chosen, std::size_t chosen_from) const {
  if (!live_[slot]) return true;  // left since the last rebuild (a held ring)
  const PeerId& id = members_[slot];
  for (const auto& s : skip) {
    if (s == id) return true;
  }
  for (std::size_t i = chosen_from; i < chosen.size(); ++i) {
    if (chosen[i] == id) return true;
  }
  return false;
}

void HashRing::successors(std::span<const std::uint64_t> pos, std::span<std::uint32_t> out) {
  // Three stages, kAhead keys apart: prefetch the bucket entry; read it and prefetch the point;
  // then scan. Independent keys keep several cache misses in flight instead of one.
  constexpr std::size_t kAhead = 8;
  const std::size_t n = pos.size();
  for (std::size_t i = 0; i < n + 2 * kAhead; ++i) {
    if (i < n) __builtin_prefetch(&bucket_[pos[i] >> shift_]);
    if (i >= kAhead && i - kAhead < n) {
      __builtin_prefetch(&points_[bucket_[pos[i - kAhead] >> shift_]]);
    }
    if (i >= 2 * kAhead) {
      std::size_t j = i - 2 * kAhead;
      out[j] = static_cast<std::uint32_t>(successor(pos[j]));
    }
  }
}

void HashRing::lookup_many(std::span<const ContentId> keys, std::uint32_t k,
                           std::span<const PeerId> skip, std::vector<PeerId>& out) {
  if (k == 0 || index_.empty() || keys.empty()) return;
  ready();
  std::vector<std::uint64_t> pos(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) pos[i] = ring_key_position(keys[i]);
  std::vector<std::uint32_t> start(keys.size());
  successors(pos, start);
  out.reserve(out.size() + keys.size() * k);
  for (std::size_t j = 0; j < keys.size(); ++j) {
    if (j + 4 < keys.size()) __builtin_prefetch(&members_[points_[start[j + 4]].owner]);
    walk(start[j], k, skip, out);
  }
}

void HashRing::walk(std::size_t i, std::uint32_t k, std::span<const PeerId> skip,
                    std::vector<PeerId>& out) const {
  const std::size_t n = points_.size();
  const std::size_t base = out.size();
  for (std::size_t walked = 0; walked < n && out.size() - base < k; ++walked) {
    std::uint32_t slot = points_[i].owner;
    if (!skipped(slot, skip, out, base)) out.push_back(members_[slot]);
    if (++i == n) i = 0;
  }
}

void HashRing::lookup(const ContentId& key, std::uint32_t k, std::span<const PeerId> skip,
                      std::vector<PeerId>& out) {
  if (k == 0 || index_.empty()) return;
  ready();
  walk(successor(ring_key_position(key)), k, skip, out);
}

void HashRing::assign(std::span<const ContentId> keys, std::span<const std::uint32_t> want,
                      std::uint32_t load_permille, std::span<const PeerId> skip,
                      std::vector<std::vector<PeerId>>& out) {
  assert(keys.size() == want.size() && keys.size() == out.size());
  if (index_.empty()) return;
  ready();
  std::size_t eligible = index_.size();
  for (const auto& s : skip) eligible -= index_.contains(s) ? 1 : 0;
  if (eligible == 0) return;

  std::uint64_t total = 0;
  for (auto w : want) total += std::min<std::size_t>(w, eligible);
  if (total == 0) return;
  // floor(c * average), so that max/average never exceeds c; but never below ceil(average),
  // or the keys would not fit.
  std::uint64_t cap = static_cast<std::uint64_t>(load_permille) * total / (1000 * eligible);
  cap = std::max<std::uint64_t>(cap, (total + eligible - 1) / eligible);

  // Keys in ring order, so the answer depends on the set of keys, not on how they were listed.
  std::vector<std::uint32_t> order(keys.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    auto pa = ring_key_position(keys[a]), pb = ring_key_position(keys[b]);
    return pa != pb ? pa < pb : keys[a] < keys[b];
  });

  std::vector<std::uint64_t> pos(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) pos[i] = ring_key_position(keys[order[i]]);
  std::vector<std::uint32_t> starts(order.size());
  successors(pos, starts);

  // Loads per member slot, in a scratch table kept between calls: only the entries this call
  // touches are reset, so a route request costs O(keys x k) at any swarm size, not a pass
  // over every member (4 MB zeroed per request in a swarm of a million).
  if (load_.size() < members_.size()) load_.resize(members_.size(), 0);
  auto& load = load_;
  const std::size_t n = points_.size();
  for (std::size_t o = 0; o < order.size(); ++o) {
    auto idx = order[o];
    auto& chosen = out[idx];
    const std::size_t goal = chosen.size() + std::min<std::size_t>(want[idx], eligible);
    std::size_t start = starts[o];
    // Second pass without the bound: only when every peer with room already holds this key.
    for (int pass = 0; pass < 2 && chosen.size() < goal; ++pass) {
      std::size_t i = start;
      for (std::size_t walked = 0; walked < n && chosen.size() < goal; ++walked) {
        std::uint32_t slot = points_[i].owner;
        if ((pass == 1 || load[slot] < cap) && !skipped(slot, skip, chosen, 0)) {
          chosen.push_back(members_[slot]);
          if (load[slot]++ == 0) loaded_.push_back(slot);
        }
        if (++i == n) i = 0;
      }
    }
  }
  for (auto slot : loaded_) load[slot] = 0;
  loaded_.clear();
}

// ---- Ring ----

bool Ring::add(const PeerId& peer, const Proximity& where) {
  auto it = where_.find(peer);
  if (it != where_.end()) {
    if (it->second.region != where.region) {
      if (!it->second.region.empty()) {
        auto rit = regions_.find(it->second.region);
        rit->second.remove(peer);
        if (rit->second.size() == 0) regions_.erase(rit);
      }
      if (!where.region.empty()) {
        regions_.try_emplace(where.region, config_.vnodes).first->second.add(peer);
      }
    }
    it->second = where;
    return false;
  }
  global_.add(peer);
  if (!where.region.empty()) {
    regions_.try_emplace(where.region, config_.vnodes).first->second.add(peer);
  }
  where_.emplace(peer, where);
  return true;
}

bool Ring::remove(const PeerId& peer) {
  auto it = where_.find(peer);
  if (it == where_.end()) return false;
  global_.remove(peer);
  if (!it->second.region.empty()) {
    auto rit = regions_.find(it->second.region);
    rit->second.remove(peer);
    if (rit->second.size() == 0) regions_.erase(rit);
  }
  where_.erase(it);
  return true;
}

const Proximity* Ring::where(const PeerId& peer) const {
  auto it = where_.find(peer);
  return it == where_.end() ? nullptr : &it->second;
}

void Ring::near_first(std::span<PeerId> peers, const Proximity& from) const {
  if (from.net_prefix == 0) return;
  std::stable_partition(peers.begin(), peers.end(), [&](const PeerId& p) {
    auto it = where_.find(p);
    return it != where_.end() && it->second.net_prefix == from.net_prefix;
  });
}

void Ring::advance(std::int64_t now_ms) {
  const bool due = now_ms < 0 || !built_once_ || now_ms - built_ms_ >= config_.rebuild_ms;
  const bool hold = config_.rebuild_ms > 0 && size() >= config_.rebuild_above && !due;
  if (!hold && now_ms >= 0) {
    built_ms_ = now_ms;
    built_once_ = true;
  }
  global_.hold(hold);
  for (auto& [name, ring] : regions_) ring.hold(hold);
}

std::vector<PeerId> Ring::route(const ContentId& key, std::uint32_t k, const Proximity& from,
                                const PeerId* exclude) {
  std::vector<PeerId> out;
  std::vector<PeerId> skip;
  if (exclude) skip.push_back(*exclude);
  if (!from.region.empty()) {
    if (auto rit = regions_.find(from.region); rit != regions_.end()) {
      rit->second.lookup(key, k, skip, out);
    }
  }
  if (out.size() < k) {
    skip.insert(skip.end(), out.begin(), out.end());
    global_.lookup(key, k - static_cast<std::uint32_t>(out.size()), skip, out);
  }
  near_first(out, from);
  return out;
}

std::vector<PeerId> Ring::route_many(std::span<const ContentId> keys, std::uint32_t k,
                                     const Proximity& from, const PeerId* exclude,
                                     std::size_t& per_key) {
  std::vector<PeerId> out;
  std::vector<PeerId> skip;
  if (exclude) skip.push_back(*exclude);
  std::size_t eligible = size() - (exclude && where_.contains(*exclude) ? 1 : 0);
  per_key = std::min<std::size_t>(k, eligible);
  if (per_key == 0 || keys.empty()) return out;
  bool regional = !from.region.empty() && regions_.contains(from.region);
  if (!regional) {
    global_.lookup_many(keys, k, skip, out);
  } else {
    out.reserve(keys.size() * per_key);
    for (const auto& key : keys) {
      auto one = route(key, k, from, exclude);
      out.insert(out.end(), one.begin(), one.end());
    }
    return out;  // route() put near peers first already
  }
  for (std::size_t i = 0; from.net_prefix != 0 && i < out.size(); i += per_key) {
    near_first(std::span(out).subspan(i, per_key), from);
  }
  return out;
}

std::vector<std::vector<PeerId>> Ring::assign(std::span<const ContentId> keys, std::uint32_t k,
                                              const Proximity& from, const PeerId* exclude) {
  // Duplicates share one answer.
  std::vector<ContentId> unique;
  std::vector<std::uint32_t> which(keys.size());
  std::map<ContentId, std::uint32_t> seen;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto [it, fresh] = seen.try_emplace(keys[i], static_cast<std::uint32_t>(unique.size()));
    if (fresh) unique.push_back(keys[i]);
    which[i] = it->second;
  }
  std::vector<std::vector<PeerId>> answers(unique.size());
  std::vector<PeerId> skip;
  if (exclude) skip.push_back(*exclude);
  std::vector<std::uint32_t> want(unique.size(), k);
  if (!from.region.empty()) {
    if (auto rit = regions_.find(from.region); rit != regions_.end()) {
      rit->second.assign(unique, want, config_.load_permille, skip, answers);
    }
  }
  bool more = false;
  for (std::size_t i = 0; i < unique.size(); ++i) {
    want[i] = k - static_cast<std::uint32_t>(answers[i].size());
    more = more || want[i] > 0;
  }
  if (more) global_.assign(unique, want, config_.load_permille, skip, answers);

  std::vector<std::vector<PeerId>> out(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    out[i] = answers[which[i]];
    near_first(out[i], from);
  }
  return out;
}

}  // namespace deploynet
