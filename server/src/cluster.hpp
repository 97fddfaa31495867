#pragma once

// Cluster mode: several deploynet-signal nodes behind a load balancer share their swarms
// through Redis.
//
// - Membership: each node keeps its own peers in the hash `deploynet:peers:<node>` (field: info
//   hash + peer id, value: seeder flag, network prefix, region), with a TTL it refreshes while
//   alive, and announces every join and leave on the channel `deploynet:members`. Every node
//   mirrors the others' peers into its tracker, so announce counts, scrapes, offers to random
//   peers and route answers (the ring) are cluster-wide and computed locally, without a Redis
//   round trip on the request path.
// - Relay: an offer or answer for a peer on another node goes to that node's channel
//   `deploynet:node:<id>`; that node delivers it (and, for an offer, accepts the answer).
// - Failure: a node that stops refreshing `deploynet:alive:<id>` is dropped by the others (and
//   its peers' hash expires). When Redis is unreachable, a node forgets the other nodes' peers and
//   serves its own clients alone (local mode, shown in /health and /metrics); when Redis is back
//   it re-publishes its peers and reloads the others'.
//
// Everything Redis runs on one thread of its own (hiredis' async API driven by an Asio loop):
// I/O threads only queue messages for it, never wait on Redis.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "deploynet/tracker.hpp"
#include "metrics.hpp"

struct redisAsyncContext;
struct redisReply;

namespace deploynet::server {

namespace net = boost::asio;
class ShardedTracker;

struct ClusterConfig {
  std::string redis_host;
  std::uint16_t redis_port = 6379;
  std::uint32_t node_id = 0;                 // 1 .. 2^31; unique within the cluster
  std::chrono::seconds node_ttl{15};         // a node silent this long is dropped by the others
  std::string redis_user, redis_password;    // AUTH, when Redis asks for it; never logged
  std::size_t max_remote_peers = 1'000'000;  // other nodes' peers mirrored here, at most
};

// "redis://[user@]host[:port]" (port defaults to 6379) into `cfg`; false if malformed.
bool parse_redis_url(const std::string& url, ClusterConfig& cfg);

class Cluster {
 public:
  // `deliver` hands messages for local peers (offers and answers relayed from other nodes) to
  // their connections; it is called on the cluster thread.
  Cluster(ClusterConfig config, ShardedTracker& tracker, Metrics& metrics,
          std::function<void(std::vector<Outgoing>&)> deliver);
  ~Cluster();

  void start();
  void stop();

  // From any thread. An offer or answer for a peer on another node (Outgoing::node set).
  void relay(Outgoing&& message);
  // From any thread, in the order they happened for each swarm: this node's membership changes.
  void publish(std::vector<MemberEvent>&& events);
  // From any thread: a deploy notice this node accepted, for the other nodes' open pages. They
  // check its signature themselves (Redis is not trusted with it): `notice_sink` gets what
  // arrives, on the cluster thread. Set before start().
  void publish_notice(std::string body);
  void set_notice_sink(std::function<void(std::string_view)> sink) {
    notice_sink_ = std::move(sink);
  }

  bool up() const { return up_.load(std::memory_order_relaxed); }
  std::uint32_t node_id() const { return config_.node_id; }

 private:
  struct Conn;
  void connect();
  void on_context_gone(Conn* which);
  void go_down(const char* why);
  void on_redis_error(std::string_view error);
  void claimed();
  void schedule_reconnect();
  void on_subscribed();
  void resync();
  void heartbeat();
  void flush();
  void on_message(const char* data, std::size_t len);
  bool mirror(std::uint32_t node, const MemberEvent& e);
  void reload_node(std::uint32_t node);
  void command(const std::vector<std::string>& args, std::function<void(redisReply*)> done = {});
  static void on_sub_reply(redisAsyncContext* ac, void* reply, void* privdata);

  ClusterConfig config_;
  ShardedTracker& tracker_;
  Metrics& metrics_;
  std::function<void(std::vector<Outgoing>&)> deliver_;
  std::function<void(std::string_view)> notice_sink_;

  net::io_context ioc_{1};
  std::thread thread_;
  net::steady_timer heartbeat_timer_;
  net::steady_timer reconnect_timer_;
  std::unique_ptr<Conn> cmd_;
  std::unique_ptr<Conn> sub_;
  std::atomic<bool> up_{false};
  bool stopping_ = false;
  bool subscribed_ = false;
  std::uint32_t failed_connects_ = 0;
  std::uint64_t generation_ = 0;  // connection attempts; stale replies are ignored
  std::uint32_t heartbeats_unanswered_ = 0;
  std::set<std::uint32_t> known_nodes_;  // nodes whose peers are mirrored here
  std::size_t remote_estimate_ = 0;      // other nodes' peers mirrored (at least this many)
  std::string nonce_;                    // this process's mark on its node id in Redis
  bool holds_id_ = false;                // the node id was claimed (and its keys are ours)
  std::chrono::milliseconds backoff_{250};

  // Queued by I/O threads, drained by the cluster thread.
  std::mutex mu_;
  std::vector<Outgoing> relays_;
  std::vector<MemberEvent> events_;
  bool flush_posted_ = false;
  bool resync_needed_ = false;  // events were dropped: publish the whole state again
};

}  // namespace deploynet::server
