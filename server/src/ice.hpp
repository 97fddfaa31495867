#pragma once

// ICE servers handed to DeployNet clients, so that a site's operator configures STUN and TURN
// in one place: the signaling server. TURN credentials follow the TURN REST API convention
// that coturn implements with `use-auth-secret`: username = "<expiry unix time>:<tag>",
// password = base64(HMAC-SHA1(secret, username)). They expire; nothing is stored per user.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace deploynet::server {

struct IceConfig {
  std::vector<std::string> stun_urls;  // stun:host:port
  std::vector<std::string> turn_urls;  // turn:host:port?transport=udp, turns:...
  std::string turn_secret;             // shared with coturn's static-auth-secret; never logged
  std::uint32_t turn_ttl_s = 3'600;    // short: a leaked credential is worth an hour of relay
  bool relay_only = false;             // tell clients to use relayed candidates only

  bool empty() const { return stun_urls.empty() && turn_urls.empty(); }
};

// base64(HMAC-SHA1(secret, username)): coturn's `use-auth-secret` password.
std::string turn_password(std::string_view secret, std::string_view username);

// The DeployNet extension frame sent right after the WebSocket opens to a client that asked
// for it (`?deploynet` on the URL; plain WebTorrent clients never do):
// {"action":"deploynet","ice_servers":[{"urls":[..]},{"urls":[..],"username":..,"credential":..}],
//  "ice_transport_policy":"all"|"relay","expires":<unix s>}
// `user_tag` is the username's part after the expiry: one per connection (`turn_user_tag`), so
// that coturn's per-user quotas and logs tell visitors apart.
std::string ice_message(const IceConfig& config, std::int64_t now_unix_s,
                        std::string_view user_tag);

// 16 random hex characters (OpenSSL's RAND_bytes): a connection's TURN user tag.
std::string turn_user_tag();

// Whether a URL is one a browser's RTCIceServer takes for this list ("stun:"/"stuns:" or
// "turn:"/"turns:"), with no characters that would need escaping.
bool valid_ice_url(std::string_view url, bool turn);

}  // namespace deploynet::server
