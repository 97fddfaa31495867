#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cluster.hpp"
#include "config.hpp"
#include "context.hpp"
#include "metrics.hpp"
#include "sharded_tracker.hpp"
#include "site_stats.hpp"

namespace deploynet::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class Server;
class Worker;

// One accepted TCP connection counted against its address's cap and the global cap; released
// when the connection (HTTP or WebSocket) is destroyed.
class ConnSlot {
 public:
  ConnSlot() = default;
  ConnSlot(Server* server, std::array<unsigned char, 16> ip, bool proxy = false)
      : server_(server), ip_(ip), proxy_(proxy) {}
  ConnSlot(ConnSlot&& o) noexcept
      : server_(std::exchange(o.server_, nullptr)), ip_(o.ip_), proxy_(o.proxy_) {}
  ConnSlot& operator=(ConnSlot&&) = delete;
  ~ConnSlot();

  // The address's network for routing proximity: IPv4 /24 or IPv6 /48, tagged by family;
  // 0 when unknown.
  std::uint64_t net_prefix() const;

  // A connection from a trusted proxy, not yet attributed to the client behind it.
  bool from_proxy() const { return proxy_; }
  // Counts this connection against the client's address (from X-Forwarded-For) instead of the
  // proxy's; the reply to send if that address is over its limits (nullptr: admitted).
  const char* attribute_to(const std::array<unsigned char, 16>& client);

 private:
  Server* server_ = nullptr;
  std::array<unsigned char, 16> ip_{};
  bool proxy_ = false;
};

class Server : public StatusPages {
 public:
  explicit Server(Config config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket (throws with a clear message on failure).
  tcp::endpoint bind();
  // Runs the I/O threads until SIGINT/SIGTERM; then closes every connection.
  void run();

  std::string render_metrics() override;
  std::string render_health() override;
  Answer deploy_notice(std::string_view body) override;
  std::string disabled_push(std::string_view origin) override;
  // A notice posted here (`relay`: then passed to the other nodes once accepted) or relayed by
  // another node (checked again: Redis is not trusted with it).
  Answer handle_notice(std::string_view body, bool relay);

 private:
  friend class ConnSlot;
  void do_accept();
  void on_accept(const boost::system::error_code& ec, tcp::socket socket, Worker& worker);
  void release_slot(const std::array<unsigned char, 16>& ip);
  void begin_shutdown();
  void await_drained();

  Config config_;
  Metrics metrics_;
  ShardedTracker tracker_;
  SiteStats sites_;
  std::vector<std::unique_ptr<Worker>> workers_;  // worker 0 accepts and handles signals
  std::unique_ptr<Cluster> cluster_;              // cluster mode only
  Context ctx_;
  unsigned next_worker_ = 0;
  tcp::acceptor acceptor_;
  net::signal_set signals_;
  net::steady_timer accept_retry_;
  net::steady_timer shutdown_timer_;
  std::atomic<bool> stopping_{false};

  bool take_conn_token(const std::string& key);  // under slots_mu_
  // Moves a connection's count from `from` to `to` if `to` is within its limits.
  const char* move_slot(const std::array<unsigned char, 16>& from,
                        const std::array<unsigned char, 16>& to);

  std::mutex notices_mu_;
  std::unordered_map<std::string, std::int64_t> notice_time_;  // per site: the last accepted
  // Sites whose last accepted notice turned DeployNet off: their push, for pages that connect
  // later (bounded by --site-key: only configured sites get here).
  std::unordered_map<std::string, std::string> disabled_sites_;

  std::mutex slots_mu_;
  std::unordered_map<std::string, std::uint32_t> per_ip_;
  struct RateBucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  static constexpr std::size_t kMaxRateEntries = 65'536;
  std::unordered_map<std::string, RateBucket> conn_rate_;  // new connections per address
  std::uint32_t open_slots_ = 0;

  std::chrono::steady_clock::time_point shutdown_started_;
};

}  // namespace deploynet::server
