#pragma once

// The shared routing test vectors (tests/fixtures/ring_vectors.json): steps that build rings
// and ask them questions, with the expected answers. The same file is replayed by the native
// build here and by the WebAssembly build in tests/integration/ring_wasm.test.mjs.
//
// Format: {"version":1,"cases":[{"name","vnodes","load_permille","steps":[...]}]}, a step is
//   {"op":"add","peer":HEX40,"region":STR,"net_prefix":HEX16}  -> "expect": bool (was new)
//   {"op":"remove","peer":HEX40}                                -> "expect": bool (was member)
//   {"op":"route","key":HEX64,"k":N,"region":STR,"net_prefix":HEX16,"exclude":HEX40|""}
//                                                               -> "expect": [HEX40...]
//   {"op":"assign","keys":[HEX64...],"k":N,"region","net_prefix","exclude"}
//                                                               -> "expect": [[HEX40...]...]

#include <string>
#include <vector>

namespace deploynet::testing {

// Replays every case. With `fill`, writes the answers into "expect" and returns the new JSON
// text in `filled`; otherwise compares and returns one line per mismatch.
std::vector<std::string> replay_ring_vectors(const std::string& json, bool fill,
                                             std::string* filled = nullptr);

// A fresh set of steps (no answers) from a fixed seed.
std::string generate_ring_vector_steps();

}  // namespace deploynet::testing
