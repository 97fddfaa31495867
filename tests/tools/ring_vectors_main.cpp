// Writes tests/fixtures/ring_vectors.json: fixed steps from a seed, answered by this build.
// Run it only when the routing algorithm changes on purpose; the file then pins the new
// answers for both the native and the WebAssembly build.
#include <fstream>
#include <iostream>

#include "../core/ring_vectors.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: ring_vectors OUT.json\n";
    return 2;
  }
  std::string filled;
  deploynet::testing::replay_ring_vectors(deploynet::testing::generate_ring_vector_steps(), true,
                                          &filled);
  std::ofstream(argv[1]) << filled;
  std::cout << "wrote " << argv[1] << " (" << filled.size() << " bytes)\n";
}
