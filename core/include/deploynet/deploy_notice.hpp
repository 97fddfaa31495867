#pragma once

// A deploy notice: a site's owner tells the signaling server that the site has a new deploy,
// signed with the site's Ed25519 key (`deploynet keygen`), so that the server can push it to
// the site's open pages. Parsing and the signed text only; the signature is checked by whoever
// holds the site's public key (the server, with OpenSSL) and made by the CLI (libsodium).
//
//   POST /deploy  {"origin":"https://site.example","deploy_id":"<32 hex>","time":<unix s>,
//                  "signature":"<base64 of 64 bytes>"}
//
// The signature covers deploy_notice_text(origin, deploy_id, time): a notice cannot be
// replayed for another site or deploy, and the server refuses a time not later than the last
// it accepted for that site, or far from its own clock.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace deploynet {

// The deploy id of a notice that turns DeployNet off for the site (the kill switch): open pages
// stop using peers and their worker retires, as with a `{"disabled":true}` manifest. It can
// never be a manifest's deploy id (those are hex), so a signature over one cannot stand for the
// other. A later notice with a real deploy id turns the site on again.
inline constexpr std::string_view kDisabledDeploy = "disabled";

struct DeployNotice {
  std::string origin;
  std::string deploy_id;  // 32 lowercase hex digits, as in the manifest, or kDisabledDeploy
  std::int64_t time = 0;  // unix seconds
  std::array<std::uint8_t, 64> signature{};
};

// The exact bytes the site's key signs.
std::string deploy_notice_text(std::string_view origin, std::string_view deploy_id,
                               std::int64_t time);

// A notice as sent by `deploynet notify`; on failure, what is wrong with it.
std::variant<DeployNotice, std::string> parse_deploy_notice(std::string_view json);
std::string serialize_deploy_notice(const DeployNotice& notice);

// What the server pushes to the site's open pages: {"action":"deploy","origin":..,"deploy_id":..}
std::string serialize_deploy_push(const DeployNotice& notice);

// Standard base64 (with padding) of exactly `out.size()` bytes; false on anything else.
bool base64_decode_exact(std::string_view text, std::span<std::uint8_t> out);
std::string base64_encode(std::span<const std::uint8_t> bytes);

}  // namespace deploynet
