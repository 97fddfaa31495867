#include "server.hpp"

#include <algorithm>

#include <openssl/evp.h>
#include <boost/asio/post.hpp>

#include "deploynet/deploy_notice.hpp"
#include "http_session.hpp"
#include "log.hpp"
#include "worker.hpp"
#include "ws_conn.hpp"

namespace deploynet::server {

std::uint64_t ConnSlot::net_prefix() const {
  if (!server_) return 0;
  bool v4 = std::all_of(ip_.begin(), ip_.begin() + 10, [](unsigned char b) { return b == 0; }) &&
            ip_[10] == 0xFF && ip_[11] == 0xFF;
  std::uint64_t p = 0;
  if (v4) {
    for (int i = 12; i < 15; ++i) p = (p << 8) | ip_[i];
    return p | (std::uint64_t{4} << 56);
  }
  for (int i = 0; i < 6; ++i) p = (p << 8) | ip_[i];
  return p | (std::uint64_t{6} << 56);
}

const char* ConnSlot::attribute_to(const std::array<unsigned char, 16>& client) {
  if (!server_ || !proxy_) return nullptr;
  if (auto* refusal = server_->move_slot(ip_, client)) return refusal;
  ip_ = client;
  proxy_ = false;
  return nullptr;
}

ConnSlot::~ConnSlot() {
  if (server_) server_->release_slot(ip_);
}

namespace {
constexpr const char* kRefuseFull =
    "HTTP/1.1 503 Service Unavailable\r\nServer: deploynet-signal\r\nRetry-After: 10\r\n"
    "Content-Length: 0\r\nConnection: close\r\n\r\n";
constexpr const char* kRefuseBusy =
    "HTTP/1.1 429 Too Many Requests\r\nServer: deploynet-signal\r\nRetry-After: 10\r\n"
    "Content-Length: 0\r\nConnection: close\r\n\r\n";
}  // namespace

Server::Server(Config config)
    : config_(std::move(config)),
      tracker_(config_.tracker),
      sites_(config_.max_sites),
      workers_([this] {
        std::vector<std::unique_ptr<Worker>> w;
        for (unsigned i = 0; i < config_.threads; ++i) {
          w.push_back(std::make_unique<Worker>(i, config_.threads, metrics_));
        }
        return w;
      }()),
      ctx_{config_, metrics_, tracker_, sites_},
      acceptor_(workers_[0]->ioc()),
      signals_(workers_[0]->ioc(), SIGINT, SIGTERM),
      accept_retry_(workers_[0]->ioc()),
      shutdown_timer_(workers_[0]->ioc()) {
  set_log_level(config_.log_level);
  for (auto& w : workers_) w->meet(workers_);
  if (config_.cluster) {
    metrics_.cluster_node.store(config_.cluster->node_id);
    cluster_ = std::make_unique<Cluster>(
        *config_.cluster, tracker_, metrics_, [this](std::vector<Outgoing>& out) {
          // Offers and answers from other nodes, for peers connected here.
          for (auto& o : out) {
            auto w = Worker::worker_of(o.to);
            if (w >= workers_.size()) {
              metrics_.dropped_peer_gone.fetch_add(1, std::memory_order_relaxed);
              continue;
            }
            (o.kind == OutKind::kOffer ? metrics_.sent_offer : metrics_.sent_answer)
                .fetch_add(1, std::memory_order_relaxed);
            Worker* worker = workers_[w].get();
            net::post(worker->ioc(),
                      [worker, to = o.to, payload = serialize(std::move(o.message))] {
                        worker->send_local(to, payload);
                      });
          }
        });
    tracker_.set_member_sink(
        [c = cluster_.get()](std::vector<MemberEvent>&& events) { c->publish(std::move(events)); });
    // Deploy notices another node accepted: checked again here, pushed to this node's pages.
    cluster_->set_notice_sink([this](std::string_view body) { handle_notice(body, false); });
    ctx_.cluster = cluster_.get();
  }
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
  if (cluster_) cluster_->start();
  do_accept();
  for (unsigned i = 1; i < workers_.size(); ++i) workers_[i]->start_thread();
  workers_[0]->run();
  for (auto& w : workers_) w->join();
  if (cluster_) cluster_->stop();
  LogLine(LogLevel::kInfo, "stopped");
}

void Server::begin_shutdown() {
  if (stopping_.exchange(true)) return;
  boost::system::error_code ec;
  acceptor_.close(ec);
  signals_.cancel(ec);
  accept_retry_.cancel();
  LogLine(LogLevel::kInfo, "closing connections")
      .kv("count", metrics_.connections_open.load(std::memory_order_relaxed));
  for (auto& w : workers_) {
    net::post(w->ioc(), [w = w.get()] { w->close_all(ws::CloseCode::kGoingAway); });
  }
  shutdown_started_ = std::chrono::steady_clock::now();
  await_drained();
}

// Stops every worker once all clients have taken their close frame, or after a grace time
// (clients that do not answer, idle keep-alive HTTP connections).
void Server::await_drained() {
  bool drained = metrics_.connections_open.load(std::memory_order_relaxed) == 0;
  if (drained || std::chrono::steady_clock::now() - shutdown_started_ > std::chrono::seconds(2)) {
    for (auto& w : workers_) w->stop();
    return;
  }
  shutdown_timer_.expires_after(std::chrono::milliseconds(10));
  shutdown_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) await_drained();
  });
}

void Server::do_accept() {
  // Connections go to the workers in turn; each stays on its worker for life.
  Worker& worker = *workers_[next_worker_];
  next_worker_ = (next_worker_ + 1) % workers_.size();
  acceptor_.async_accept(worker.ioc(),
                         [this, &worker](const boost::system::error_code& ec, tcp::socket socket) {
                           on_accept(ec, std::move(socket), worker);
                         });
}

void Server::on_accept(const boost::system::error_code& ec, tcp::socket socket, Worker& worker) {
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
  auto v6 =
      addr.is_v4() ? net::ip::make_address_v6(net::ip::v4_mapped, addr.to_v4()) : addr.to_v6();
  auto ip = v6.to_bytes();
  std::string key(reinterpret_cast<const char*>(ip.data()), ip.size());
  const char* refusal = nullptr;
  std::array<unsigned char, 16> ip_bytes;
  std::copy(ip.begin(), ip.end(), ip_bytes.begin());
  // A trusted proxy carries many clients: they are counted once its X-Forwarded-For is read.
  bool proxy = config_.trusted_proxy(ip_bytes);
  {
    std::lock_guard lock(slots_mu_);
    auto& n = per_ip_[key];
    if (open_slots_ >= config_.max_connections) {
      metrics_.rejected_total_cap.fetch_add(1, std::memory_order_relaxed);
      refusal = kRefuseFull;
    } else if (!proxy && n >= config_.max_conns_per_ip) {
      metrics_.rejected_ip_cap.fetch_add(1, std::memory_order_relaxed);
      refusal = kRefuseBusy;
    } else if (!proxy && !take_conn_token(key)) {
      metrics_.rejected_ip_rate.fetch_add(1, std::memory_order_relaxed);
      refusal = kRefuseBusy;
    } else {
      ++n;
      ++open_slots_;
    }
    if (n == 0) per_ip_.erase(key);
  }
  if (refusal) {
    // A fast, explicit "no" (never a hang): one non-blocking write of a short HTTP reply.
    LogLine(LogLevel::kDebug, "connection refused").kv("ip", addr.to_string()).kv("reply", refusal);
    socket.non_blocking(true, rec);
    socket.write_some(net::buffer(std::string_view(refusal)), rec);
    socket.shutdown(tcp::socket::shutdown_both, rec);
    socket.close(rec);
    do_accept();
    return;
  }
  auto session = std::make_shared<HttpSession>(std::move(socket), worker, ctx_, *this,
                                               ConnSlot(this, ip_bytes, proxy));
  // The session's first read is started on its own worker's thread.
  net::post(worker.ioc(), [session] { session->run(); });
  do_accept();
}

const char* Server::move_slot(const std::array<unsigned char, 16>& from,
                              const std::array<unsigned char, 16>& to) {
  std::string fk(reinterpret_cast<const char*>(from.data()), from.size());
  std::string tk(reinterpret_cast<const char*>(to.data()), to.size());
  std::lock_guard lock(slots_mu_);
  auto& n = per_ip_[tk];
  const char* refusal = nullptr;
  if (n >= config_.max_conns_per_ip) {
    metrics_.rejected_ip_cap.fetch_add(1, std::memory_order_relaxed);
    refusal = kRefuseBusy;
  } else if (!take_conn_token(tk)) {
    metrics_.rejected_ip_rate.fetch_add(1, std::memory_order_relaxed);
    refusal = kRefuseBusy;
  }
  if (refusal) {
    if (n == 0) per_ip_.erase(tk);
    return refusal;
  }
  ++n;
  auto it = per_ip_.find(fk);
  if (it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
  return nullptr;
}

bool Server::take_conn_token(const std::string& key) {
  auto now = std::chrono::steady_clock::now();
  // Bounded: past the cap, addresses whose bucket has refilled are forgotten (they lose
  // nothing); if that is not enough, all are (the limit fails open, never the server).
  if (conn_rate_.size() >= kMaxRateEntries && !conn_rate_.contains(key)) {
    std::erase_if(conn_rate_, [&](const auto& e) {
      return std::chrono::duration<double>(now - e.second.last).count() * config_.conn_rate_per_ip +
                 e.second.tokens >=
             config_.conn_burst_per_ip;
    });
    if (conn_rate_.size() >= kMaxRateEntries) conn_rate_.clear();
  }
  auto [it, fresh] = conn_rate_.try_emplace(key, RateBucket{config_.conn_burst_per_ip, now});
  auto& b = it->second;
  if (!fresh) {
    double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(config_.conn_burst_per_ip, b.tokens + elapsed * config_.conn_rate_per_ip);
    b.last = now;
  }
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

void Server::release_slot(const std::array<unsigned char, 16>& ip) {
  std::string key(reinterpret_cast<const char*>(ip.data()), ip.size());
  std::lock_guard lock(slots_mu_);
  --open_slots_;
  auto it = per_ip_.find(key);
  if (it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
}

std::string Server::render_metrics() {
  auto c = tracker_.counts();
  auto text = metrics_.render(c.swarms, c.peers, c.remote_peers);
  sites_.render(text);
  return text;
}

namespace {

bool ed25519_verify(const std::array<std::uint8_t, 32>& key, std::string_view message,
                    const std::array<std::uint8_t, 64>& signature) {
  EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.data(), key.size());
  if (!pkey) return false;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  const bool ok =
      md && EVP_DigestVerifyInit(md, nullptr, nullptr, nullptr, pkey) == 1 &&
      EVP_DigestVerify(md, signature.data(), signature.size(),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(pkey);
  return ok;
}

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out + '"';
}

}  // namespace

StatusPages::Answer Server::deploy_notice(std::string_view body) {
  return handle_notice(body, true);
}

StatusPages::Answer Server::handle_notice(std::string_view body, bool relay) {
  auto refuse = [&](unsigned status, const std::string& reason, std::string_view origin = {}) {
    metrics_.deploy_notices_refused.fetch_add(1, std::memory_order_relaxed);
    LogLine(LogLevel::kInfo, "deploy notice refused").kv("origin", origin).kv("reason", reason);
    return Answer{status, "{\"error\":" + json_quote(reason) + "}\n"};
  };
  auto parsed = parse_deploy_notice(body);
  if (auto* err = std::get_if<std::string>(&parsed)) return refuse(400, *err);
  const auto& notice = std::get<DeployNotice>(parsed);
  auto key = config_.site_keys.find(notice.origin);
  if (key == config_.site_keys.end())
    return refuse(403, "no key for this site here (--site-key)", notice.origin);
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  if (notice.time > now + config_.notice_skew_s || notice.time < now - config_.notice_skew_s)
    return refuse(400, "time: more than --notice-skew from the server's clock", notice.origin);
  if (!ed25519_verify(key->second, deploy_notice_text(notice.origin, notice.deploy_id, notice.time),
                      notice.signature))
    return refuse(403, "signature: not this site's key", notice.origin);
  {
    std::lock_guard lock(notices_mu_);
    auto& last = notice_time_[notice.origin];
    if (notice.time <= last)
      return refuse(409, "replayed: not later than the last notice for this site", notice.origin);
    last = notice.time;
    if (notice.deploy_id == kDisabledDeploy)
      disabled_sites_[notice.origin] = serialize_deploy_push(notice);
    else
      disabled_sites_.erase(notice.origin);
  }
  metrics_.deploy_notices.fetch_add(1, std::memory_order_relaxed);
  LogLine(LogLevel::kInfo, "deploy notice")
      .kv("origin", notice.origin)
      .kv("deploy", notice.deploy_id);
  if (relay && cluster_) cluster_->publish_notice(std::string(body));
  auto payload = std::make_shared<const std::string>(serialize_deploy_push(notice));
  for (auto& w : workers_) {
    net::post(w->ioc(), [this, worker = w.get(), origin = notice.origin, payload] {
      metrics_.deploy_pushes.fetch_add(worker->send_to_origin(origin, *payload),
                                       std::memory_order_relaxed);
    });
  }
  return Answer{202, "{\"accepted\":true,\"deploy_id\":" + json_quote(notice.deploy_id) + "}\n"};
}

std::string Server::disabled_push(std::string_view origin) {
  std::lock_guard lock(notices_mu_);
  if (disabled_sites_.empty()) return {};
  auto it = disabled_sites_.find(std::string(origin));
  return it == disabled_sites_.end() ? std::string() : it->second;
}

std::string Server::render_health() {
  auto c = tracker_.counts();
  return "{\"status\":\"ok\",\"connections\":" +
         std::to_string(metrics_.connections_open.load(std::memory_order_relaxed)) +
         ",\"swarms\":" + std::to_string(c.swarms) + ",\"peers\":" + std::to_string(c.peers) +
         (cluster_ ? ",\"cluster\":{\"node\":" + std::to_string(cluster_->node_id()) +
                         ",\"redis\":\"" + (cluster_->up() ? "up" : "down") + "\",\"mode\":\"" +
                         (cluster_->up() ? "cluster" : "local") +
                         "\",\"remote_peers\":" + std::to_string(c.remote_peers) + "}"
                   : std::string()) +
         "}\n";
}

}  // namespace deploynet::server
