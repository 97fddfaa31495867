// Routing ring lookups (Google Benchmark): our bucket-indexed ring against the textbook
// consistent hash (a binary search over the sorted points, as groupcache's consistenthash and
// most libraries do it) on the same points, for rings of 1k, 100k and 1M peers.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>

#include "deploynet/ring.hpp"

namespace {

using deploynet::ContentId;
using deploynet::PeerId;

struct Fixture {
  deploynet::Ring ring;
  std::vector<std::uint64_t> sorted;  // the anchor: the same points, binary-searched
  std::vector<std::uint32_t> owner;
  std::vector<ContentId> keys;
};

Fixture& fixture(unsigned peers) {
  static std::map<unsigned, std::unique_ptr<Fixture>> cache;
  auto& f = cache[peers];
  if (f) return *f;
  f = std::make_unique<Fixture>();
  std::mt19937_64 rng(42);
  std::vector<std::pair<std::uint64_t, std::uint32_t>> points;
  for (unsigned i = 0; i < peers; ++i) {
    PeerId p;
    for (auto& b : p.bytes) b = static_cast<std::uint8_t>(rng());
    f->ring.add(p);
    for (std::uint32_t v = 0; v < f->ring.config().vnodes; ++v) {
      points.emplace_back(deploynet::ring_point_position(p, v), i);
    }
  }
  std::sort(points.begin(), points.end());
  for (auto& [pos, o] : points) {
    f->sorted.push_back(pos);
    f->owner.push_back(o);
  }
  f->keys.resize(1 << 16);
  for (auto& k : f->keys) {
    for (auto& b : k) b = static_cast<std::uint8_t>(rng());
  }
  f->ring.route(f->keys[0], 1);  // build outside the timing
  return *f;
}

void BM_RingRoute(benchmark::State& state) {
  auto& f = fixture(static_cast<unsigned>(state.range(0)));
  auto k = static_cast<std::uint32_t>(state.range(1));
  std::size_t i = 0;
  for (auto _ : state) {
    auto got = f.ring.route(f.keys[i++ & 0xFFFF], k);
    benchmark::DoNotOptimize(got.data());
  }
  state.SetItemsProcessed(state.iterations());
}

// Batches of 256 keys (a route request's size): the pipelined search.
void BM_RingRouteBatch(benchmark::State& state) {
  auto& f = fixture(static_cast<unsigned>(state.range(0)));
  auto k = static_cast<std::uint32_t>(state.range(1));
  std::size_t i = 0, per_key = 0;
  for (auto _ : state) {
    auto got = f.ring.route_many(std::span(f.keys).subspan(i, 256), k, {}, nullptr, per_key);
    benchmark::DoNotOptimize(got.data());
    i = (i + 256) & 0xFFFF;
  }
  state.SetItemsProcessed(state.iterations() * 256);
}

// Anchor: one successor by binary search (k = 1 only; no distinct-peer walk).
void BM_BinarySearchAnchor(benchmark::State& state) {
  auto& f = fixture(static_cast<unsigned>(state.range(0)));
  std::size_t i = 0;
  for (auto _ : state) {
    auto pos = deploynet::ring_key_position(f.keys[i++ & 0xFFFF]);
    auto it = std::lower_bound(f.sorted.begin(), f.sorted.end(), pos);
    if (it == f.sorted.end()) it = f.sorted.begin();
    benchmark::DoNotOptimize(f.owner[static_cast<std::size_t>(it - f.sorted.begin())]);
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(BM_RingRoute)->ArgsProduct({{1000, 100000, 1000000}, {1, 3}})->ArgNames({"peers", "k"});
BENCHMARK(BM_RingRouteBatch)
    ->ArgsProduct({{1000, 100000, 1000000}, {1, 3}})
    ->ArgNames({"peers", "k"});
BENCHMARK(BM_BinarySearchAnchor)->Arg(1000)->Arg(100000)->Arg(1000000)->ArgName("peers");
BENCHMARK_MAIN();
