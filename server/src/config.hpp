#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster.hpp"
#include "deploynet/protocol.hpp"
#include "deploynet/tracker.hpp"
#include "ice.hpp"

namespace deploynet::server {

// An address range, IPv4 as v4-mapped IPv6 (prefix length counted over all 128 bits).
struct Cidr {
  std::array<unsigned char, 16> addr{};
  unsigned bits = 128;
  bool contains(const std::array<unsigned char, 16>& ip) const;
};
std::optional<Cidr> parse_cidr(const std::string& text);

// Every knob of the signaling server, each with its documented default (see --help).
struct Config {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8000;
  unsigned threads = 0;  // 0: one per core

  // Limits on what one client may send.
  std::size_t max_frame_bytes = 64 * 1024;  // larger frame: close 1009 (aquatic uses 64 KiB)
  ParseLimits parse;                        // offers per announce, info hashes per scrape
  std::uint32_t max_swarms_per_conn = 64;   // swarms one socket may join
  std::uint32_t max_sites = 1000;           // sites whose reports are summed in /metrics
  double rate_per_s = 20;                   // token bucket refill, messages per second
  double rate_burst = 40;                   // token bucket size
  std::uint32_t max_conns_per_ip = 256;     // concurrent connections from one address
  std::uint32_t max_connections = 100'000;  // concurrent connections in all; by default
                                            // lowered to the open-files limit less headroom
  double conn_rate_per_ip = 20;             // new connections per second from one address
  double conn_burst_per_ip = 40;            // ... and at once

  // Timeouts and queues.
  std::chrono::seconds handshake_timeout{10};  // TCP accept to WebSocket open
  std::chrono::seconds idle_timeout{120};      // ping after half of it, close after all of it
  std::size_t max_send_queue = 256;            // messages queued to one client
  std::size_t max_send_queue_bytes = 1 << 20;  // bytes queued to one client

  TrackerConfig tracker;
  IceConfig ice;  // STUN/TURN handed to DeployNet clients (none: host candidates only)
  std::vector<std::string> allow_origins;  // empty: any Origin
  std::string metrics_token;               // empty: /metrics open; never logged
  // Sites that may announce deploys (POST /deploy): origin -> Ed25519 public key.
  std::map<std::string, std::array<std::uint8_t, 32>> site_keys;
  std::int64_t notice_skew_s = 300;  // a notice's time may be this far from ours
  // Reverse proxies (TLS terminators) whose X-Forwarded-For names the real client: limits and
  // proximity then use that address. Nobody else's header is believed.
  std::vector<Cidr> trusted_proxies;
  // Connections from trusted proxies begin with a PROXY protocol header (v1 or v2) naming the
  // client (TCP proxies: nginx stream, HAProxy); X-Forwarded-For is then never read.
  bool proxy_protocol = false;
  std::optional<ClusterConfig> cluster;  // cluster mode over Redis (none: one node alone)
  std::string log_level = "info";

  // Whether a WebSocket upgrade with this Origin header is admitted (`allow_origins`).
  bool origin_allowed(std::string_view origin) const;
  // Whether an address (IPv6 or v4-mapped) is one of `trusted_proxies`.
  bool trusted_proxy(const std::array<unsigned char, 16>& ip) const;
};

// Parses the command line. On --help prints usage and returns an empty optional with `exit_code`
// 0; on a bad setting prints what is wrong, naming the flag, and sets `exit_code` 2.
std::optional<Config> parse_config(int argc, char** argv, int& exit_code);

}  // namespace deploynet::server
