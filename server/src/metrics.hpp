#pragma once

// Counters for /metrics (Prometheus text format). Plain relaxed atomics: each is bumped on a
// hot path and read only when scraped.

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace deploynet::server {

using Counter = std::atomic<std::uint64_t>;

// The Prometheus text format: a metric's HELP and TYPE lines, one sample, or both.
namespace prom {
void header(std::string& out, const char* name, const char* type, const char* help);
void sample(std::string& out, std::string_view name, std::string_view labels, std::uint64_t v);
void sample(std::string& out, std::string_view name, std::string_view labels,
            std::string_view value);
void one(std::string& out, const char* name, const char* type, const char* help, std::uint64_t v);
}  // namespace prom

// A fixed-bucket latency histogram in microseconds, exported in seconds.
class LatencyHistogram {
 public:
  static constexpr std::array<std::uint32_t, 12> kBoundsUs = {5,   10,   25,   50,   100,   250,
                                                              500, 1000, 2500, 5000, 10000, 50000};
  void observe_us(std::uint64_t us);
  void render(std::string& out, const char* name, const char* help) const;

 private:
  std::array<Counter, kBoundsUs.size() + 1> buckets_{};
  Counter sum_us_{0};
  Counter count_{0};
};

struct Metrics {
  Counter connections_open{0};  // gauge: WebSocket connections now
  Counter connections_total{0};
  Counter http_requests{0};
  Counter rejected_ip_cap{0};
  Counter rejected_total_cap{0};
  Counter rejected_ip_rate{0};
  Counter rejected_origin{0};
  Counter accept_errors{0};

  Counter recv_announce{0};
  Counter recv_scrape{0};
  Counter recv_route{0};
  Counter recv_report{0};
  Counter reports_refused{0};  // for a site other than the connection's Origin
  Counter route_ids{0};        // content ids answered in route replies
  Counter recv_invalid{0};
  Counter sent_reply{0};
  Counter sent_offer{0};
  Counter sent_answer{0};
  Counter sent_failure{0};
  Counter socket_writes{0};  // write calls: frames / writes is the batching factor

  Counter offers_relayed{0};
  Counter offers_targeted{0};
  Counter offers_unroutable{0};
  Counter answers_relayed{0};
  Counter answers_dropped{0};
  Counter offers_over_cap{0};

  Counter deploy_notices{0};          // accepted and pushed
  Counter deploy_notices_refused{0};  // unknown site, stale, replayed, bad signature or JSON
  Counter deploy_pushes{0};           // open pages (connections) the notices reached

  Counter dropped_peer_gone{0};
  Counter dropped_send_queue{0};
  Counter slow_readers_closed{0};
  Counter rate_limited{0};
  Counter rate_limit_closed{0};
  Counter frames_too_big{0};
  Counter protocol_errors{0};
  Counter idle_closed{0};
  Counter swarm_cap_hits{0};
  Counter proxy_header_invalid{0};

  LatencyHistogram handle_latency;

  // Cluster mode (rendered only when cluster_node is set).
  std::atomic<std::uint32_t> cluster_node{0};
  Counter cluster_up{0};  // gauge: 1 while Redis is reachable
  Counter cluster_relays_out{0};
  Counter cluster_relays_in{0};
  Counter cluster_relays_dropped{0};
  Counter cluster_members_out{0};
  Counter cluster_members_in{0};
  Counter cluster_bytes_out{0};
  Counter cluster_bytes_in{0};
  Counter cluster_resyncs{0};
  Counter cluster_nodes_expired{0};
  Counter cluster_invalid_in{0};       // relays from other nodes that failed their check
  Counter cluster_members_refused{0};  // member records refused (invalid, or past the cap)
  Counter cluster_node_id_clash{0};    // gauge: 1 while another live node holds our node id

  // Renders everything; swarm and peer counts come from the caller (they live in the tracker).
  std::string render(std::size_t swarms, std::size_t peers, std::size_t remote_peers = 0) const;
};

}  // namespace deploynet::server
