#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config.hpp"
#include "metrics.hpp"
#include "sharded_tracker.hpp"

namespace deploynet::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Strand = net::strand<net::io_context::executor_type>;

class Server;
class WsSession;

// One accepted TCP connection counted against its address's cap and the global cap; released
// when the connection (HTTP or WebSocket) is destroyed.
class ConnSlot {
 public:
  ConnSlot() = default;
  ConnSlot(Server* server, std::array<unsigned char, 16> ip) : server_(server), ip_(ip) {}
  ConnSlot(ConnSlot&& o) noexcept : server_(std::exchange(o.server_, nullptr)), ip_(o.ip_) {}
  ConnSlot& operator=(ConnSlot&&) = delete;
  ~ConnSlot();

 private:
  Server* server_ = nullptr;
  std::array<unsigned char, 16> ip_{};
};

class Server {
 public:
  explicit Server(Config config);
  ~Server();

  // Binds the listening socket (throws with a clear message on failure).
  tcp::endpoint bind();
  // Runs the I/O threads until SIGINT/SIGTERM or stop(); then closes every connection.
  void run();
  void stop();

  // Shared state for sessions.
  const Config& config() const { return config_; }
  Metrics& metrics() { return metrics_; }
  ShardedTracker& tracker() { return tracker_; }
  bool origin_allowed(std::string_view origin) const;
  std::uint64_t register_session(const std::shared_ptr<WsSession>& s);
  void unregister_session(std::uint64_t id);
  std::string render_metrics();
  std::string render_health();

 private:
  friend class ConnSlot;
  void do_accept();
  void on_accept(const boost::system::error_code& ec, tcp::socket socket, Strand strand);
  void release_slot(const std::array<unsigned char, 16>& ip);
  void begin_shutdown();

  Config config_;
  Metrics metrics_;
  ShardedTracker tracker_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  net::signal_set signals_;
  net::steady_timer accept_retry_;
  net::steady_timer shutdown_timer_;
  std::atomic<bool> stopping_{false};

  std::mutex slots_mu_;
  std::unordered_map<std::string, std::uint32_t> per_ip_;
  std::uint32_t open_slots_ = 0;

  std::mutex sessions_mu_;
  std::unordered_map<std::uint64_t, std::weak_ptr<WsSession>> sessions_;
  std::atomic<std::uint64_t> next_session_id_{1};
};

}  // namespace deploynet::server
