#include "config.hpp"

#include <sys/resource.h>

#include <boost/asio/ip/address.hpp>
#include <boost/program_options.hpp>

#include <algorithm>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "deploynet/deploy_notice.hpp"
#include "deploynet/manifest.hpp"

namespace deploynet::server {
namespace po = boost::program_options;

namespace {

bool split_host_port(const std::string& s, std::string& host, std::uint16_t& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  try {
    std::size_t used = 0;
    auto p = std::stoul(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1 || p > 65535) return false;
    port = static_cast<std::uint16_t>(p);
  } catch (...) {
    return false;
  }
  return true;
}

// A secret from `file` (its first line, trailing spaces and CR cut) or else from the environment
// variable `env`; empty when neither is given. False when the file cannot be read or is empty.
bool read_secret(const std::string& file, const char* env, std::string& out) {
  if (file.empty()) {
    if (const char* v = std::getenv(env)) out = v;
    return true;
  }
  std::ifstream in(file);
  if (!in) return false;
  std::getline(in, out);
  while (!out.empty() && (out.back() == '\r' || out.back() == ' ')) out.pop_back();
  return !out.empty();
}

}  // namespace

bool Cidr::contains(const std::array<unsigned char, 16>& ip) const {
  unsigned full = bits / 8, rest = bits % 8;
  if (!std::equal(addr.begin(), addr.begin() + full, ip.begin())) return false;
  if (rest == 0) return true;
  auto mask = static_cast<unsigned char>(0xFF << (8 - rest));
  return (addr[full] & mask) == (ip[full] & mask);
}

std::optional<Cidr> parse_cidr(const std::string& text) {
  auto slash = text.find('/');
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(text.substr(0, slash), ec);
  if (ec) return std::nullopt;
  bool v4 = addr.is_v4();
  unsigned max = v4 ? 32 : 128, bits = max;
  if (slash != std::string::npos) {
    try {
      std::size_t used = 0;
      auto n = std::stoul(text.substr(slash + 1), &used);
      if (used != text.size() - slash - 1 || n > max) return std::nullopt;
      bits = static_cast<unsigned>(n);
    } catch (...) {
      return std::nullopt;
    }
  }
  Cidr c;
  auto v6 = v4 ? boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, addr.to_v4())
               : addr.to_v6();
  c.addr = v6.to_bytes();
  c.bits = v4 ? bits + 96 : bits;
  return c;
}

std::optional<Config> parse_config(int argc, char** argv, int& exit_code) {
  Config c;
  // Route answers may lag membership by a second in swarms of 50,000 peers or more, rather than
  // rebuild the ring (~130 ms at a million peers) for every route request after a join.
  c.tracker.ring.rebuild_ms = 1000;
  std::string listen = c.listen_host + ":" + std::to_string(c.listen_port);
  std::vector<std::string> origins;
  unsigned handshake_s = static_cast<unsigned>(c.handshake_timeout.count());
  unsigned idle_s = static_cast<unsigned>(c.idle_timeout.count());
  unsigned offer_ttl_s = static_cast<unsigned>(c.tracker.offer_ttl_ms / 1000);
  double load_factor = c.tracker.ring.load_permille / 1000.0;
  std::vector<std::string> stun, turn, proxies;
  std::string turn_secret_file;
  std::string metrics_token_file;
  std::vector<std::string> site_key_args;
  std::string redis_url, redis_password_file;
  std::size_t max_cluster_peers = 1'000'000;
  std::uint32_t node_id = 0;
  unsigned node_ttl_s = 15;

  po::options_description opts(
      "deploynet-signal: DeployNet signaling server and WebTorrent-compatible tracker.\n"
      "WebSocket tracker protocol, GET /health and GET /metrics on one port.\n\nOptions");
  // clang-format off
  opts.add_options()
    ("help,h", "print this help and exit")
    ("listen", po::value(&listen)->default_value(listen), "address:port to listen on (port 0: any free port, logged at start)")
    ("threads", po::value(&c.threads)->default_value(c.threads), "I/O threads (0: one per core)")
    ("trusted-proxy", po::value(&proxies)->composing(), "address or CIDR of a reverse proxy (TLS terminator) whose X-Forwarded-For gives the client's address, repeatable or comma-separated; its own connections are not held to the per-address limits")
    ("proxy-protocol", po::bool_switch(&c.proxy_protocol), "connections from --trusted-proxy addresses begin with a PROXY protocol header (v1 or v2, as nginx's stream module or HAProxy send it) naming the client; X-Forwarded-For is then ignored")
    ("allow-origin", po::value(&origins)->composing(), "allowed Origin of WebSocket clients, repeatable or comma-separated (none given: any)")
    ("max-sites", po::value(&c.max_sites)->default_value(c.max_sites), "sites whose visitors' savings reports are summed in /metrics; a new one replaces the one reported least recently")
    ("max-frame", po::value(&c.max_frame_bytes)->default_value(c.max_frame_bytes), "largest WebSocket message in bytes; larger closes with 1009")
    ("max-offers", po::value(&c.parse.max_offers)->default_value(c.parse.max_offers), "offers relayed from one announce; more are dropped")
    ("max-numwant", po::value(&c.tracker.max_numwant)->default_value(c.tracker.max_numwant), "peers one announce can reach")
    ("max-scrape", po::value(&c.parse.max_scrape_hashes)->default_value(c.parse.max_scrape_hashes), "info hashes in one scrape (and swarms in a scrape of all)")
    ("max-swarms-per-conn", po::value(&c.max_swarms_per_conn)->default_value(c.max_swarms_per_conn), "swarms one connection may join")
    ("rate", po::value(&c.rate_per_s)->default_value(c.rate_per_s), "messages per second per connection (token bucket refill)")
    ("burst", po::value(&c.rate_burst)->default_value(c.rate_burst), "token bucket size: messages a connection may send at once")
    ("max-conns-per-ip", po::value(&c.max_conns_per_ip)->default_value(c.max_conns_per_ip), "concurrent connections from one IP address")
    ("max-connections", po::value(&c.max_connections), "concurrent connections in all; more get HTTP 503 at once (default: the open-files limit less 64, at most 100000)")
    ("conn-rate-per-ip", po::value(&c.conn_rate_per_ip)->default_value(c.conn_rate_per_ip), "new connections per second from one address; more get HTTP 429")
    ("conn-burst-per-ip", po::value(&c.conn_burst_per_ip)->default_value(c.conn_burst_per_ip), "new connections one address may open at once")
    ("handshake-timeout", po::value(&handshake_s)->default_value(handshake_s), "seconds from TCP accept to an open WebSocket or an HTTP reply")
    ("idle-timeout", po::value(&idle_s)->default_value(idle_s), "seconds of silence before a connection is closed; a ping goes out at half")
    ("max-send-queue", po::value(&c.max_send_queue)->default_value(c.max_send_queue), "messages queued to one client before it is disconnected as too slow")
    ("max-send-queue-bytes", po::value(&c.max_send_queue_bytes)->default_value(c.max_send_queue_bytes), "bytes queued to one client before it is disconnected as too slow")
    ("announce-interval", po::value(&c.tracker.announce_interval_s)->default_value(c.tracker.announce_interval_s), "re-announce interval told to clients, seconds")
    ("offer-ttl", po::value(&offer_ttl_s)->default_value(offer_ttl_s), "seconds an offer may be answered")
    ("max-pending-offers", po::value(&c.tracker.max_pending_offers)->default_value(c.tracker.max_pending_offers), "unanswered offers remembered per peer")
    ("ring-vnodes", po::value(&c.tracker.ring.vnodes)->default_value(c.tracker.ring.vnodes), "points per peer on each swarm's routing ring")
    ("ring-rebuild-ms", po::value(&c.tracker.ring.rebuild_ms)->default_value(c.tracker.ring.rebuild_ms), "a swarm of --ring-rebuild-above peers or more rebuilds its routing ring at most this often (0: after every change); route answers leave out peers that joined since")
    ("ring-rebuild-above", po::value(&c.tracker.ring.rebuild_above)->default_value(c.tracker.ring.rebuild_above), "swarm size from which --ring-rebuild-ms applies")
    ("ring-load-factor", po::value(&load_factor)->default_value(load_factor, "1.25"), "c of bounded loads: no peer is named for more than c times its share of a route request")
    ("max-route-ids", po::value(&c.parse.max_route_ids)->default_value(c.parse.max_route_ids), "content ids in one route request")
    ("max-route-k", po::value(&c.parse.max_route_k)->default_value(c.parse.max_route_k), "peers per content id a route request may ask for")
    ("stun", po::value(&stun)->composing(), "STUN URL handed to DeployNet clients (stun:host:port), repeatable or comma-separated")
    ("turn", po::value(&turn)->composing(), "TURN URL handed to DeployNet clients with time-limited credentials (turn:host:port?transport=udp), repeatable or comma-separated; needs a secret")
    ("turn-secret-file", po::value(&turn_secret_file), "file holding the TURN REST API shared secret (coturn's static-auth-secret); or set DEPLOYNET_TURN_SECRET")
    ("turn-ttl", po::value(&c.ice.turn_ttl_s)->default_value(c.ice.turn_ttl_s), "seconds a TURN credential stays valid (60 to 86400); each connection gets its own username")
    ("metrics-token-file", po::value(&metrics_token_file), "file holding a token that GET /metrics must present (Authorization: Bearer <token>); or set DEPLOYNET_METRICS_TOKEN. Without one /metrics is open to anyone who reaches the port")
    ("site-key", po::value(&site_key_args)->composing(), "ORIGIN=FILE: the site at ORIGIN may announce deploys (POST /deploy), signed with the key whose public half is FILE (deploynet keygen's .pub); repeatable")
    ("notice-skew", po::value(&c.notice_skew_s)->default_value(c.notice_skew_s), "seconds a deploy notice's time may differ from this server's clock")
    ("relay-only", po::bool_switch(&c.ice.relay_only), "tell clients to connect through TURN only, so visitors never learn each other's addresses")
    ("redis", po::value(&redis_url), "cluster mode: redis://[user@]host[:port] shared by every node of the cluster (swarms span the nodes; offers for a peer on another node go through Redis)")
    ("redis-password-file", po::value(&redis_password_file), "cluster mode: file holding the Redis password (AUTH; the user, if any, in the URL: redis://user@host); or set DEPLOYNET_REDIS_PASSWORD; never logged")
    ("max-cluster-peers", po::value(&max_cluster_peers)->default_value(max_cluster_peers), "cluster mode: other nodes' peers mirrored here, at most (more are refused and counted)")
    ("node-id", po::value(&node_id), "cluster mode: this node's number, unique in the cluster (1 to 2147483647)")
    ("node-ttl", po::value(&node_ttl_s)->default_value(node_ttl_s), "cluster mode: seconds after which a silent node's peers are dropped by the others")
    ("log-level", po::value(&c.log_level)->default_value(c.log_level), "debug, info, warn or error");
  // clang-format on

  auto bad = [&](const std::string& msg) -> std::optional<Config> {
    std::cerr << "deploynet-signal: " << msg << "\n(see --help)\n";
    exit_code = 2;
    return std::nullopt;
  };

  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return bad(e.what());
  }
  if (vm.count("help")) {
    std::cout << opts << "\n";
    exit_code = 0;
    return std::nullopt;
  }
  if (!split_host_port(listen, c.listen_host, c.listen_port)) {
    return bad("--listen: expected address:port, got '" + listen + "'");
  }
  for (const auto& o : origins) {
    std::stringstream ss(o);
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (!item.empty()) c.allow_origins.push_back(item);
    }
  }
  if (c.threads == 0) c.threads = std::max(1u, std::thread::hardware_concurrency());
  if (c.threads > 256) return bad("--threads: at most 256");
  if (c.max_sites < 1 || c.max_sites > 100'000) return bad("--max-sites: 1 to 100000");
  if (c.max_frame_bytes < 1024) return bad("--max-frame: at least 1024 bytes");
  if (!(c.rate_per_s > 0)) return bad("--rate: must be positive");
  if (c.rate_burst < 1) return bad("--burst: must be at least 1");
  if (c.max_send_queue < 1) return bad("--max-send-queue: must be at least 1");
  if (c.max_send_queue_bytes < c.max_frame_bytes) {
    return bad("--max-send-queue-bytes: must be at least --max-frame");
  }
  if (handshake_s < 1) return bad("--handshake-timeout: at least 1 second");
  if (idle_s < 2) return bad("--idle-timeout: at least 2 seconds");
  if (c.max_conns_per_ip < 1) return bad("--max-conns-per-ip: at least 1");
  if (!(c.conn_rate_per_ip > 0)) return bad("--conn-rate-per-ip: must be positive");
  if (c.conn_burst_per_ip < 1) return bad("--conn-burst-per-ip: at least 1");
  // Every connection is a file descriptor: past the process's limit, accept() fails and
  // clients wait in the kernel's backlog instead of hearing "no". Raise the soft limit to
  // the hard one, keep headroom for everything else, refuse the rest ourselves.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    if (nofile.rlim_cur < nofile.rlim_max) {
      rlimit raised = nofile;
      raised.rlim_cur = nofile.rlim_max;
      if (setrlimit(RLIMIT_NOFILE, &raised) == 0) nofile = raised;
    }
    constexpr rlim_t kHeadroom = 64;
    rlim_t budget =
        nofile.rlim_cur > 2 * kHeadroom ? nofile.rlim_cur - kHeadroom : nofile.rlim_cur / 2;
    if (!vm.count("max-connections")) {
      c.max_connections = static_cast<std::uint32_t>(std::min<rlim_t>(c.max_connections, budget));
    } else if (c.max_connections > budget) {
      return bad("--max-connections: " + std::to_string(c.max_connections) +
                 " is above what the open-files limit allows (" + std::to_string(budget) + " of " +
                 std::to_string(nofile.rlim_cur) + "); raise `ulimit -n` or lower it");
    }
  }
  if (c.max_connections < 1) return bad("--max-connections: at least 1");
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
      c.log_level != "error") {
    return bad("--log-level: one of debug, info, warn, error");
  }
  if (c.tracker.ring.vnodes < 1 || c.tracker.ring.vnodes > 1024) {
    return bad("--ring-vnodes: 1 to 1024");
  }
  if (!(load_factor >= 1.0 && load_factor <= 100.0)) return bad("--ring-load-factor: 1 to 100");
  if (c.parse.max_route_ids < 1) return bad("--max-route-ids: at least 1");
  if (c.parse.max_route_k < 1 || c.parse.max_route_k > 64) return bad("--max-route-k: 1 to 64");
  auto split = [](const std::vector<std::string>& in, std::vector<std::string>& out) {
    for (const auto& v : in) {
      std::stringstream ss(v);
      std::string item;
      while (std::getline(ss, item, ',')) {
        if (!item.empty()) out.push_back(item);
      }
    }
  };
  split(stun, c.ice.stun_urls);
  std::vector<std::string> proxy_list;
  split(proxies, proxy_list);
  for (const auto& p : proxy_list) {
    auto cidr = parse_cidr(p);
    if (!cidr) return bad("--trusted-proxy: expected an address or CIDR, got '" + p + "'");
    c.trusted_proxies.push_back(*cidr);
  }
  if (c.proxy_protocol && c.trusted_proxies.empty())
    return bad("--proxy-protocol: needs --trusted-proxy (whose headers to believe)");
  split(turn, c.ice.turn_urls);
  for (const auto& u : c.ice.stun_urls) {
    if (!valid_ice_url(u, false)) return bad("--stun: expected stun:host[:port], got '" + u + "'");
  }
  for (const auto& u : c.ice.turn_urls) {
    if (!valid_ice_url(u, true))
      return bad("--turn: expected turn:host[:port][?transport=..], got '" + u + "'");
  }
  if (!read_secret(turn_secret_file, "DEPLOYNET_TURN_SECRET", c.ice.turn_secret))
    return bad("--turn-secret-file: cannot read '" + turn_secret_file + "' (or it is empty)");
  if (!c.ice.turn_urls.empty() && c.ice.turn_secret.empty()) {
    return bad("--turn: needs a shared secret (--turn-secret-file or DEPLOYNET_TURN_SECRET)");
  }
  if (c.ice.turn_ttl_s < 60 || c.ice.turn_ttl_s > 86'400)
    return bad("--turn-ttl: 60 to 86400 seconds");
  if (c.ice.relay_only && c.ice.turn_urls.empty()) return bad("--relay-only: needs --turn");
  for (const auto& arg : site_key_args) {
    auto eq = arg.find('=');
    std::string origin = arg.substr(0, eq);
    while (!origin.empty() && origin.back() == '/') origin.pop_back();
    if (eq == std::string::npos || !valid_origin(origin))
      return bad("--site-key: expected ORIGIN=FILE with ORIGIN like https://site.example, got '" +
                 arg + "'");
    std::string text;
    std::array<std::uint8_t, 32> key{};
    if (!read_secret(arg.substr(eq + 1), "", text) || !base64_decode_exact(text, key))
      return bad("--site-key: '" + arg.substr(eq + 1) +
                 "' is not a public key file from 'deploynet keygen' (base64 of 32 bytes)");
    c.site_keys[origin] = key;
  }
  if (c.notice_skew_s < 1) return bad("--notice-skew: at least 1 second");
  if (!read_secret(metrics_token_file, "DEPLOYNET_METRICS_TOKEN", c.metrics_token))
    return bad("--metrics-token-file: cannot read '" + metrics_token_file + "' (or it is empty)");
  if (!redis_url.empty()) {
    ClusterConfig cc;
    if (!parse_redis_url(redis_url, cc))
      return bad(
          "--redis: expected redis://[user@]host[:port] (the password in --redis-password-file)");
    if (!read_secret(redis_password_file, "DEPLOYNET_REDIS_PASSWORD", cc.redis_password))
      return bad("--redis-password-file: cannot read '" + redis_password_file +
                 "' (or it is empty)");
    if (max_cluster_peers < 1) return bad("--max-cluster-peers: at least 1");
    cc.max_remote_peers = max_cluster_peers;
    if (node_id < 1 || node_id > 2147483647u)
      return bad("--node-id: cluster mode needs a node number from 1 to 2147483647");
    if (node_ttl_s < 3 || node_ttl_s > 3600) return bad("--node-ttl: 3 to 3600 seconds");
    cc.node_id = node_id;
    cc.node_ttl = std::chrono::seconds(node_ttl_s);
    c.cluster = cc;
    c.tracker.record_members = true;
  } else if (vm.count("node-id") || !redis_password_file.empty()) {
    return bad(std::string(vm.count("node-id") ? "--node-id" : "--redis-password-file") +
               ": only with --redis (cluster mode)");
  }
  c.tracker.ring.load_permille = static_cast<std::uint32_t>(std::lround(load_factor * 1000));
  c.handshake_timeout = std::chrono::seconds(handshake_s);
  c.idle_timeout = std::chrono::seconds(idle_s);
  c.tracker.offer_ttl_ms = static_cast<std::int64_t>(offer_ttl_s) * 1000;
  return c;
}

bool Config::origin_allowed(std::string_view origin) const {
  if (allow_origins.empty()) return true;
  for (const auto& o : allow_origins) {
    if (o == origin) return true;
  }
  return false;
}

bool Config::trusted_proxy(const std::array<unsigned char, 16>& ip) const {
  return std::any_of(trusted_proxies.begin(), trusted_proxies.end(),
                     [&](const Cidr& c) { return c.contains(ip); });
}

}  // namespace deploynet::server
