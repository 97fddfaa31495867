#pragma once

// The lookup loop `make bench` runs natively and, compiled into the WebAssembly module, in
// Node: the same code on both sides, so the ratio compares the two builds, nothing else.

#include <chrono>
#include <random>
#include <vector>

#include "deploynet/ring.hpp"

namespace deploynet::bench {

// A ring of `peers` members with ids from a fixed seed, then `lookups` routes of random keys.
// Returns lookups per second (ring construction not timed).
inline double ring_lookups_per_second(unsigned peers, unsigned lookups, unsigned k) {
  Ring ring;
  std::mt19937_64 rng(42);
  for (unsigned i = 0; i < peers; ++i) {
    PeerId p;
    for (auto& b : p.bytes) b = static_cast<std::uint8_t>(rng());
    ring.add(p);
  }
  std::vector<ContentId> keys(4096);
  for (auto& key : keys) {
    for (auto& b : key) b = static_cast<std::uint8_t>(rng());
  }
  ring.route(keys[0], k);  // builds the ring outside the timed loop
  std::size_t sink = 0;
  auto start = std::chrono::steady_clock::now();
  for (unsigned i = 0; i < lookups; ++i) sink += ring.route(keys[i & 4095], k).size();
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  return sink ? lookups / took.count() : 0;
}

}  // namespace deploynet::bench
