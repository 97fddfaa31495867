#include "deploynet/ids.hpp"

#include <random>

namespace deploynet {

std::uint64_t id_hash_seed() noexcept {
  static const std::uint64_t seed = [] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }();
  return seed;
}

}  // namespace deploynet
