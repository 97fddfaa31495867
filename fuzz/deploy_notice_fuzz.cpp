// The deploy notice parser (POST /deploy bodies, from anyone) on any text: whatever it accepts
// writes back to text that parses to the same notice; base64 decoding never writes past its
// buffer and agrees with the encoder.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "deploynet/deploy_notice.hpp"

namespace dn = deploynet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = dn::parse_deploy_notice(text);
  if (auto* n = std::get_if<dn::DeployNotice>(&r)) {
    auto once = dn::serialize_deploy_notice(*n);
    auto back = dn::parse_deploy_notice(once);
    auto* n2 = std::get_if<dn::DeployNotice>(&back);
    if (!n2 || n2->origin != n->origin || n2->deploy_id != n->deploy_id || n2->time != n->time ||
        n2->signature != n->signature || dn::serialize_deploy_notice(*n2) != once)
      std::abort();
  }
  std::array<std::uint8_t, 32> out{};
  if (dn::base64_decode_exact(text, out) && dn::base64_encode(out) != text) std::abort();
  return 0;
}
