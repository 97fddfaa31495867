#pragma once

// The distributions the simulator draws from, on one seeded generator so that a run is exact
// for its seed. Parameterised by their means (what a scenario states), not by textbook shapes.

#include <cmath>
#include <cstdint>
#include <random>

namespace deploynet::sim {

class Random {
 public:
  explicit Random(std::uint64_t seed) : gen_(seed) {}

  // Uniform in [0, 1).
  double uniform() { return std::generate_canonical<double, 53>(gen_); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  bool chance(double p) { return uniform() < p; }
  // 0 .. n-1
  std::uint64_t below(std::uint64_t n) { return n ? gen_() % n : 0; }

  // Exponential with this mean (inter-arrival times of a Poisson process, think times).
  double exponential(double mean) { return -mean * std::log1p(-uniform()); }

  // Pareto with this mean and tail index alpha > 1 (heavy-tailed session lengths):
  // scale x_m = mean * (alpha - 1) / alpha.
  double pareto(double mean, double alpha) {
    const double xm = mean * (alpha - 1) / alpha;
    return xm / std::pow(1 - uniform(), 1 / alpha);
  }

  // Geometric on 1, 2, ... with this mean (pages per session): P(n) = (1-p)^(n-1) p, p = 1/mean.
  std::uint32_t geometric(double mean) {
    if (mean <= 1) return 1;
    const double p = 1 / mean;
    return 1 + static_cast<std::uint32_t>(std::floor(std::log1p(-uniform()) / std::log1p(-p)));
  }

  std::mt19937_64& engine() { return gen_; }

 private:
  std::mt19937_64 gen_;
};

}  // namespace deploynet::sim
