// The manifest parser on any text: whatever it accepts, the writer writes back as valid UTF-8
// that parses to the same manifest (parse(serialize(m)) == m, byte for byte once written).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "deploynet/manifest.hpp"
#include "deploynet/utf8.hpp"

namespace dn = deploynet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = dn::parse_manifest(text);
  auto* m = std::get_if<dn::Manifest>(&r);
  if (!m) return 0;
  auto once = dn::serialize_manifest(*m);
  if (!dn::valid_utf8(once)) std::abort();
  auto back = dn::parse_manifest(once);
  auto* m2 = std::get_if<dn::Manifest>(&back);
  if (!m2) std::abort();
  if (dn::serialize_manifest(*m2) != once) std::abort();
  return 0;
}
