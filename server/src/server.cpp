#include "server.hpp"

#include <boost/asio/post.hpp>

#include "log.hpp"
#include "session.hpp"

namespace deploynet::server {

ConnSlot::~ConnSlot() {
  if (server_) server_->release_slot(ip_);
}

Server::Server(Config config)
    : config_(std::move(config)),
      tracker_(config_.tracker),
      ioc_(static_cast<int>(config_.threads)),
      acceptor_(ioc_),
      signals_(ioc_, SIGINT, SIGTERM),
      accept_retry_(ioc_),
      shutdown_timer_(ioc_) {
  set_log_level(config_.log_level);
}

Server::~Server() = default;

tcp::endpoint Server::bind() {
  boost::system::error_code ec;
  auto addr = net::ip::make_address(config_.listen_host, ec);
  if (ec) throw std::runtime_error("--listen: not an IP address: " + config_.listen_host);
  tcp::endpoint ep(addr, config_.listen_port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(ep, ec);
  if (ec) {
    throw std::runtime_error("--listen: cannot bind " + config_.listen_host + ":" +
                             std::to_string(config_.listen_port) + ": " + ec.message());
  }
  acceptor_.listen(net::socket_base::max_listen_connections);
  return acceptor_.local_endpoint();
}

void Server::run() {
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    LogLine(LogLevel::kInfo, "signal received, shutting down").kv("signal", sig);
    begin_shutdown();
  });
  do_accept();
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < config_.threads; ++i) threads.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& t : threads) t.join();
  LogLine(LogLevel::kInfo, "stopped");
}

void Server::stop() {
  net::post(ioc_, [this] { begin_shutdown(); });
}

void Server::begin_shutdown() {
  if (stopping_.exchange(true)) return;
  boost::system::error_code ec;
  acceptor_.close(ec);
  signals_.cancel(ec);
  accept_retry_.cancel();
  std::vector<std::shared_ptr<WsSession>> open;
  {
    std::lock_guard lock(sessions_mu_);
    for (auto& [id, weak] : sessions_) {
      if (auto s = weak.lock()) open.push_back(std::move(s));
    }
  }
  LogLine(LogLevel::kInfo, "closing connections").kv("count", open.size());
  if (open.empty()) {
    ioc_.stop();
    return;
  }
  for (auto& s : open) s->close_going_away();
  // Give clients a moment to receive the close frame, then end whatever is left (idle
  // keep-alive HTTP connections, clients that do not answer the close).
  shutdown_timer_.expires_after(std::chrono::seconds(2));
  shutdown_timer_.async_wait([this](const boost::system::error_code&) { ioc_.stop(); });
}

void Server::do_accept() {
  // Each connection gets its own strand: its handlers never run concurrently, while different
  // connections run on all I/O threads.
  auto strand = net::make_strand(ioc_);
  acceptor_.async_accept(strand, [this, strand](const boost::system::error_code& ec,
                                                tcp::socket socket) {
    on_accept(ec, std::move(socket), strand);
  });
}

void Server::on_accept(const boost::system::error_code& ec, tcp::socket socket, Strand strand) {
  if (ec == net::error::operation_aborted || stopping_) return;
  if (ec) {
    // Typically out of file descriptors: wait a little instead of spinning on accept.
    metrics_.accept_errors.fetch_add(1, std::memory_order_relaxed);
    LogLine(LogLevel::kWarn, "accept failed").kv("error", ec.message());
    accept_retry_.expires_after(std::chrono::milliseconds(100));
    accept_retry_.async_wait([this](const boost::system::error_code& e) {
      if (!e) do_accept();
    });
    return;
  }
  boost::system::error_code rec;
  auto remote = socket.remote_endpoint(rec);
  if (rec) {
    do_accept();
    return;
  }
  auto addr = remote.address();
  auto v6 = addr.is_v4() ? net::ip::make_address_v6(net::ip::v4_mapped, addr.to_v4()) : addr.to_v6();
  auto ip = v6.to_bytes();
  std::string key(reinterpret_cast<const char*>(ip.data()), ip.size());
  bool admitted = false;
  {
    std::lock_guard lock(slots_mu_);
    auto& n = per_ip_[key];
    if (open_slots_ >= config_.max_connections) {
      metrics_.rejected_total_cap.fetch_add(1, std::memory_order_relaxed);
    } else if (n >= config_.max_conns_per_ip) {
      metrics_.rejected_ip_cap.fetch_add(1, std::memory_order_relaxed);
    } else {
      ++n;
      ++open_slots_;
      admitted = true;
    }
    if (n == 0) per_ip_.erase(key);
  }
  if (!admitted) {
    LogLine(LogLevel::kDebug, "connection refused: cap").kv("ip", addr.to_string());
    socket.close(rec);
    do_accept();
    return;
  }
  std::array<unsigned char, 16> ip_bytes;
  std::copy(ip.begin(), ip.end(), ip_bytes.begin());
  std::make_shared<HttpSession>(std::move(socket), strand, *this, ConnSlot(this, ip_bytes))->run();
  do_accept();
}

void Server::release_slot(const std::array<unsigned char, 16>& ip) {
  std::string key(reinterpret_cast<const char*>(ip.data()), ip.size());
  std::lock_guard lock(slots_mu_);
  --open_slots_;
  auto it = per_ip_.find(key);
  if (it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
}

bool Server::origin_allowed(std::string_view origin) const {
  if (config_.allow_origins.empty()) return true;
  for (const auto& o : config_.allow_origins) {
    if (o == origin) return true;
  }
  return false;
}

std::uint64_t Server::register_session(const std::shared_ptr<WsSession>& s) {
  auto id = next_session_id_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(sessions_mu_);
    sessions_.emplace(id, s);
  }
  metrics_.connections_open.fetch_add(1, std::memory_order_relaxed);
  metrics_.connections_total.fetch_add(1, std::memory_order_relaxed);
  if (stopping_) s->close_going_away();
  return id;
}

void Server::unregister_session(std::uint64_t id) {
  bool last = false;
  {
    std::lock_guard lock(sessions_mu_);
    sessions_.erase(id);
    last = sessions_.empty();
  }
  metrics_.connections_open.fetch_sub(1, std::memory_order_relaxed);
  if (last && stopping_) net::post(ioc_, [this] { ioc_.stop(); });
}

std::string Server::render_metrics() {
  auto c = tracker_.counts();
  return metrics_.render(c.swarms, c.peers);
}

std::string Server::render_health() {
  auto c = tracker_.counts();
  return "{\"status\":\"ok\",\"connections\":" +
         std::to_string(metrics_.connections_open.load(std::memory_order_relaxed)) +
         ",\"swarms\":" + std::to_string(c.swarms) + ",\"peers\":" + std::to_string(c.peers) +
         "}\n";
}

}  // namespace deploynet::server
