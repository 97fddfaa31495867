// The cluster's Redis codec on any bytes (what anyone who can publish on Redis can send): a
// message or member record it accepts re-encodes to exactly the same bytes, a relay's
// description is one valid JSON object, and it never reads out of bounds.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "deploynet/cluster_codec.hpp"
#include "deploynet/protocol.hpp"

namespace cluster = deploynet::cluster;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto r = cluster::decode_relay(in)) {
    if (cluster::encode_relay(*r) != in) std::abort();
    if (!deploynet::valid_description(r->description, cluster::kMaxDescription)) std::abort();
  }
  if (auto m = cluster::decode_member(in)) {
    if (m->node == 0 || cluster::encode_member(*m) != in) std::abort();
  }
  if (size >= cluster::kFieldLen) {
    auto field = in.substr(0, cluster::kFieldLen);
    auto value = in.substr(cluster::kFieldLen);
    if (auto e = cluster::decode_record(field, value)) {
      if (cluster::member_field(*e) != field || cluster::member_value(*e) != value) std::abort();
    }
  }
  return 0;
}
