#include "metrics.hpp"

#include <cstdio>

namespace deploynet::server {
namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
}  // namespace

namespace prom {

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, std::string_view name, std::string_view labels, std::uint64_t v) {
  sample(out, name, labels, std::to_string(v));
}

void sample(std::string& out, std::string_view name, std::string_view labels,
            std::string_view value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

void one(std::string& out, const char* name, const char* type, const char* help, std::uint64_t v) {
  header(out, name, type, help);
  sample(out, name, {}, v);
}

}  // namespace prom

using namespace prom;

void LatencyHistogram::observe_us(std::uint64_t us) {
  std::size_t i = 0;
  while (i < kBoundsUs.size() && us > kBoundsUs[i]) ++i;
  buckets_[i].fetch_add(1, kRelaxed);
  sum_us_.fetch_add(us, kRelaxed);
  count_.fetch_add(1, kRelaxed);
}

void LatencyHistogram::render(std::string& out, const char* name, const char* help) const {
  header(out, name, "histogram", help);
  std::uint64_t cumulative = 0;
  char label[64];
  for (std::size_t i = 0; i < kBoundsUs.size(); ++i) {
    cumulative += buckets_[i].load(kRelaxed);
    std::snprintf(label, sizeof label, "le=\"%g\"", kBoundsUs[i] / 1e6);
    out += name;
    out += "_bucket";
    sample(out, "", label, cumulative);
  }
  cumulative += buckets_[kBoundsUs.size()].load(kRelaxed);
  out += name;
  out += "_bucket";
  sample(out, "", "le=\"+Inf\"", cumulative);
  char sum[64];
  std::snprintf(sum, sizeof sum, "%.6f", sum_us_.load(kRelaxed) / 1e6);
  out += name;
  out += "_sum ";
  out += sum;
  out += '\n';
  out += name;
  out += "_count ";
  out += std::to_string(count_.load(kRelaxed));
  out += '\n';
}

std::string Metrics::render(std::size_t swarms, std::size_t peers, std::size_t remote_peers) const {
  std::string o;
  o.reserve(4096);
  one(o, "deploynet_connections", "gauge", "Open WebSocket connections.",
      connections_open.load(kRelaxed));
  one(o, "deploynet_connections_total", "counter", "WebSocket connections accepted.",
      connections_total.load(kRelaxed));
  one(o, "deploynet_swarms", "gauge", "Swarms with at least one peer.", swarms);
  one(o, "deploynet_peers", "gauge", "Peers in all swarms.", peers);
  one(o, "deploynet_http_requests_total", "counter", "Plain HTTP requests served.",
      http_requests.load(kRelaxed));

  header(o, "deploynet_connections_rejected_total", "counter", "Connections refused, by reason.");
  sample(o, "deploynet_connections_rejected_total", "reason=\"ip_cap\"",
         rejected_ip_cap.load(kRelaxed));
  sample(o, "deploynet_connections_rejected_total", "reason=\"total_cap\"",
         rejected_total_cap.load(kRelaxed));
  sample(o, "deploynet_connections_rejected_total", "reason=\"ip_rate\"",
         rejected_ip_rate.load(kRelaxed));
  sample(o, "deploynet_connections_rejected_total", "reason=\"origin\"",
         rejected_origin.load(kRelaxed));
  sample(o, "deploynet_connections_rejected_total", "reason=\"accept_error\"",
         accept_errors.load(kRelaxed));

  header(o, "deploynet_messages_received_total", "counter", "Client messages, by type.");
  sample(o, "deploynet_messages_received_total", "type=\"announce\"", recv_announce.load(kRelaxed));
  sample(o, "deploynet_messages_received_total", "type=\"scrape\"", recv_scrape.load(kRelaxed));
  sample(o, "deploynet_messages_received_total", "type=\"route\"", recv_route.load(kRelaxed));
  sample(o, "deploynet_messages_received_total", "type=\"report\"", recv_report.load(kRelaxed));
  sample(o, "deploynet_messages_received_total", "type=\"invalid\"", recv_invalid.load(kRelaxed));
  one(o, "deploynet_reports_refused_total", "counter",
      "Savings reports for a site other than the one the connection's Origin header names.",
      reports_refused.load(kRelaxed));

  header(o, "deploynet_messages_sent_total", "counter", "Messages queued to clients, by type.");
  sample(o, "deploynet_messages_sent_total", "type=\"reply\"", sent_reply.load(kRelaxed));
  sample(o, "deploynet_messages_sent_total", "type=\"offer\"", sent_offer.load(kRelaxed));
  sample(o, "deploynet_messages_sent_total", "type=\"answer\"", sent_answer.load(kRelaxed));
  sample(o, "deploynet_messages_sent_total", "type=\"failure\"", sent_failure.load(kRelaxed));

  one(o, "deploynet_socket_writes_total", "counter",
      "Socket writes; messages sent divided by this is how many frames one write carries.",
      socket_writes.load(kRelaxed));
  one(o, "deploynet_offers_relayed_total", "counter", "Offers relayed to another peer.",
      offers_relayed.load(kRelaxed));
  one(o, "deploynet_offers_targeted_total", "counter",
      "Offers relayed to the peer they named (DeployNet's to_peer_id).",
      offers_targeted.load(kRelaxed));
  one(o, "deploynet_route_content_ids_total", "counter", "Content ids answered in route replies.",
      route_ids.load(kRelaxed));
  one(o, "deploynet_answers_relayed_total", "counter", "Answers relayed to the offering peer.",
      answers_relayed.load(kRelaxed));

  header(o, "deploynet_dropped_total", "counter", "Messages not delivered, by reason.");
  sample(o, "deploynet_dropped_total", "reason=\"answer_unmatched\"",
         answers_dropped.load(kRelaxed));
  sample(o, "deploynet_dropped_total", "reason=\"offers_over_cap\"",
         offers_over_cap.load(kRelaxed));
  sample(o, "deploynet_dropped_total", "reason=\"offer_target_absent\"",
         offers_unroutable.load(kRelaxed));
  sample(o, "deploynet_dropped_total", "reason=\"peer_gone\"", dropped_peer_gone.load(kRelaxed));
  sample(o, "deploynet_dropped_total", "reason=\"send_queue_full\"",
         dropped_send_queue.load(kRelaxed));

  header(o, "deploynet_deploy_notices_total", "counter",
         "Deploy notices (POST /deploy), by result.");
  sample(o, "deploynet_deploy_notices_total", "result=\"accepted\"", deploy_notices.load(kRelaxed));
  sample(o, "deploynet_deploy_notices_total", "result=\"refused\"",
         deploy_notices_refused.load(kRelaxed));
  one(o, "deploynet_deploy_pushes_total", "counter",
      "Open pages (connections) that accepted deploy notices were pushed to.",
      deploy_pushes.load(kRelaxed));

  one(o, "deploynet_rate_limited_total", "counter",
      "Messages refused by the per-connection rate limit.", rate_limited.load(kRelaxed));
  header(o, "deploynet_closed_total", "counter", "Connections closed by the server, by reason.");
  sample(o, "deploynet_closed_total", "reason=\"slow_reader\"", slow_readers_closed.load(kRelaxed));
  sample(o, "deploynet_closed_total", "reason=\"rate_limit\"", rate_limit_closed.load(kRelaxed));
  sample(o, "deploynet_closed_total", "reason=\"frame_too_big\"", frames_too_big.load(kRelaxed));
  sample(o, "deploynet_closed_total", "reason=\"protocol_error\"", protocol_errors.load(kRelaxed));
  sample(o, "deploynet_closed_total", "reason=\"idle\"", idle_closed.load(kRelaxed));
  sample(o, "deploynet_closed_total", "reason=\"proxy_header\"",
         proxy_header_invalid.load(kRelaxed));
  one(o, "deploynet_swarm_cap_hits_total", "counter",
      "Announces refused: too many swarms on one connection.", swarm_cap_hits.load(kRelaxed));

  handle_latency.render(o, "deploynet_handle_seconds",
                        "Time from a message read to all its replies and relays queued.");

  if (cluster_node.load(kRelaxed) != 0) {
    one(o, "deploynet_cluster_up", "gauge",
        "1 while Redis is reachable; 0: local mode (this node's peers only).",
        cluster_up.load(kRelaxed));
    one(o, "deploynet_cluster_remote_peers", "gauge", "Peers of other nodes mirrored here.",
        remote_peers);
    one(o, "deploynet_cluster_relays_sent_total", "counter",
        "Offers and answers sent to peers on other nodes.", cluster_relays_out.load(kRelaxed));
    one(o, "deploynet_cluster_relays_received_total", "counter",
        "Offers and answers received from other nodes.", cluster_relays_in.load(kRelaxed));
    one(o, "deploynet_cluster_relays_dropped_total", "counter",
        "Relays for other nodes not sent (Redis unreachable or backlogged).",
        cluster_relays_dropped.load(kRelaxed));
    one(o, "deploynet_cluster_member_events_sent_total", "counter",
        "Joins and leaves of this node's peers published.", cluster_members_out.load(kRelaxed));
    one(o, "deploynet_cluster_member_events_received_total", "counter",
        "Joins, leaves and reloads of other nodes' peers applied.",
        cluster_members_in.load(kRelaxed));
    one(o, "deploynet_cluster_bytes_sent_total", "counter", "Bytes published to other nodes.",
        cluster_bytes_out.load(kRelaxed));
    one(o, "deploynet_cluster_bytes_received_total", "counter", "Bytes received from other nodes.",
        cluster_bytes_in.load(kRelaxed));
    one(o, "deploynet_cluster_resyncs_total", "counter",
        "Times this node published its peers whole (each connection to Redis).",
        cluster_resyncs.load(kRelaxed));
    one(o, "deploynet_cluster_nodes_expired_total", "counter",
        "Other nodes dropped after going silent.", cluster_nodes_expired.load(kRelaxed));
    one(o, "deploynet_cluster_relays_refused_total", "counter",
        "Offers and answers from other nodes not delivered: not one JSON object of valid UTF-8.",
        cluster_invalid_in.load(kRelaxed));
    one(o, "deploynet_cluster_members_refused_total", "counter",
        "Other nodes' member records not mirrored: malformed, or past --max-cluster-peers.",
        cluster_members_refused.load(kRelaxed));
    one(o, "deploynet_cluster_node_id_clash", "gauge",
        "1 while another live node holds this node's --node-id (this one stays out of the "
        "cluster).",
        cluster_node_id_clash.load(kRelaxed));
  }
  return o;
}

}  // namespace deploynet::server
