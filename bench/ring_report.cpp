// Routing figures that are counts, not times: keys moved per join and leave against the ideal
// 1/n, max/average load with and without bounded loads, regional answers; and the native
// lookup rate of the loop the WebAssembly build also runs (bench/ring_lookup_loop.hpp).
// Usage: ring_report [lookups-per-second PEERS LOOKUPS K]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>

#include "ring_lookup_loop.hpp"

using namespace deploynet;

namespace {

PeerId random_peer(std::mt19937_64& rng) {
  PeerId p;
  for (auto& b : p.bytes) b = static_cast<std::uint8_t>(rng());
  return p;
}

std::vector<ContentId> random_keys(std::mt19937_64& rng, int n) {
  std::vector<ContentId> keys(static_cast<std::size_t>(n));
  for (auto& k : keys) {
    for (auto& b : k) b = static_cast<std::uint8_t>(rng());
  }
  return keys;
}

void movement(int n, int m) {
  std::mt19937_64 rng(n);
  Ring ring;
  std::vector<PeerId> peers;
  for (int i = 0; i < n; ++i) ring.add(peers.emplace_back(random_peer(rng)));
  auto keys = random_keys(rng, m);
  auto owners = [&] {
    std::vector<PeerId> o;
    for (const auto& k : keys) o.push_back(ring.route(k, 1)[0]);
    return o;
  };
  auto before = owners();
  double join = 0, leave = 0;
  const int trials = 5;
  for (int t = 0; t < trials; ++t) {
    PeerId fresh = random_peer(rng);
    ring.add(fresh);
    auto after = owners();
    int moved = 0;
    for (int i = 0; i < m; ++i) moved += after[i] != before[i];
    join += static_cast<double>(moved) / m;
    ring.remove(fresh);
    // A member leaves (and comes back, so each trial starts from the same ring).
    PeerId old = peers[static_cast<std::size_t>(rng() % peers.size())];
    ring.remove(old);
    after = owners();
    moved = 0;
    for (int i = 0; i < m; ++i) moved += after[i] != before[i];
    leave += static_cast<double>(moved) / m;
    ring.add(old);
  }
  std::printf("  n=%-6d join moves %.5f of keys, leave %.5f; ideal 1/n = %.5f (ratio %.2f, %.2f)\n",
              n, join / trials, leave / trials, 1.0 / (n + 1), join / trials * (n + 1),
              leave / trials * n);
}

void loads(int n, int m, unsigned k) {
  std::mt19937_64 rng(7);
  Ring ring;
  for (int i = 0; i < n; ++i) ring.add(random_peer(rng));
  auto keys = random_keys(rng, m);
  auto summarize = [&](const std::map<PeerId, int>& load) {
    int max = 0;
    for (auto& [p, l] : load) max = std::max(max, l);
    return max / (static_cast<double>(m) * k / n);
  };
  std::map<PeerId, int> plain, bounded;
  for (const auto& key : keys) {
    for (const auto& p : ring.route(key, k)) ++plain[p];
  }
  for (const auto& peers : ring.assign(keys, k)) {
    for (const auto& p : peers) ++bounded[p];
  }
  std::printf("  n=%-5d keys=%-6d k=%u  max/avg load: plain %.2f, bounded (c=1.25) %.2f\n", n, m, k,
              summarize(plain), summarize(bounded));
}

void regions() {
  std::mt19937_64 rng(3);
  Ring ring;
  const char* names[] = {"eu", "us", "ap", "sa"};
  for (int i = 0; i < 400; ++i) ring.add(random_peer(rng), {names[i % 4], 0});
  auto keys = random_keys(rng, 2000);
  int same = 0, total = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto got = ring.route(keys[i], 3, {names[i % 4], 0});
    for (const auto& p : got) {
      same += ring.where(p)->region == names[i % 4];
      ++total;
    }
  }
  std::printf(
      "  400 peers in 4 regions, k=3: %.1f%% of named peers in the asker's region "
      "(25%% for a region-blind ring)\n",
      100.0 * same / total);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "lookups-per-second") == 0) {
    std::printf("%.0f\n",
                bench::ring_lookups_per_second(static_cast<unsigned>(std::atoi(argv[2])),
                                               static_cast<unsigned>(std::atoi(argv[3])),
                                               static_cast<unsigned>(std::atoi(argv[4]))));
    return 0;
  }
  std::printf("Keys moved per join / leave (k=1, 16 vnodes, 20000 keys, mean of 5):\n");
  for (int n : {10, 100, 1000}) movement(n, 20000);
  std::printf("Load balance (16 vnodes):\n");
  for (unsigned k : {1u, 3u}) {
    loads(100, 10000, k);
    loads(1000, 10000, k);
  }
  std::printf("Proximity:\n");
  regions();
}
