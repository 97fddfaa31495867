#include "session.hpp"

#include "log.hpp"

namespace deploynet::server {
namespace {

constexpr std::size_t kHttpHeaderLimit = 8 * 1024;
constexpr std::size_t kHttpBodyLimit = 4 * 1024;
// Read buffers larger than this are released after each message, so that one big frame
// does not pin memory on an idle connection.
constexpr std::size_t kKeepReadBuffer = 2 * 1024;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Ends one connection's I/O error path: aborted and closed are the ordinary ends of a
// connection, anything else is logged at debug level (clients vanish all the time).
void fail(beast::error_code ec, const char* what) {
  if (ec == net::error::operation_aborted || ec == websocket::error::closed ||
      ec == http::error::end_of_stream || ec == net::error::eof) {
    return;
  }
  LogLine(LogLevel::kDebug, "connection error").kv("op", what).kv("error", ec.message());
}

}  // namespace

// ---------------------------------------------------------------- HTTP

HttpSession::HttpSession(tcp::socket&& socket, Strand strand, Server& server, ConnSlot&& slot)
    : stream_(std::move(socket)), strand_(strand), server_(server), slot_(std::move(slot)) {}

void HttpSession::run() {
  net::dispatch(strand_, beast::bind_front_handler(&HttpSession::do_read, shared_from_this()));
}

void HttpSession::do_read() {
  parser_.emplace();
  parser_->header_limit(kHttpHeaderLimit);
  parser_->body_limit(kHttpBodyLimit);
  stream_.expires_after(server_.config().handshake_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
}

void HttpSession::on_read(beast::error_code ec, std::size_t) {
  if (ec == http::error::end_of_stream) {
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    return;
  }
  if (ec) {
    if (ec != beast::error::timeout) fail(ec, "http_read");
    if (ec == http::error::header_limit || ec == http::error::body_limit) {
      reply(http::status::payload_too_large, "request too large\n", "text/plain", false);
    }
    return;
  }
  auto req = parser_->release();
  if (websocket::is_upgrade(req)) {
    auto origin_sv = req[http::field::origin];
    std::string_view origin(origin_sv.data(), origin_sv.size());
    if (!server_.origin_allowed(origin)) {
      server_.metrics().rejected_origin.fetch_add(1, std::memory_order_relaxed);
      LogLine(LogLevel::kDebug, "origin refused").kv("origin", origin);
      reply(http::status::forbidden, "origin not allowed\n", "text/plain", false);
      return;
    }
    stream_.expires_never();
    std::make_shared<WsSession>(stream_.release_socket(), strand_, server_, std::move(slot_))
        ->run(std::move(req));
    return;
  }

  server_.metrics().http_requests.fetch_add(1, std::memory_order_relaxed);
  bool keep = req.keep_alive();
  auto target = req.target();
  auto path = target.substr(0, target.find('?'));
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    reply(http::status::method_not_allowed, "method not allowed\n", "text/plain", keep);
  } else if (path == "/health") {
    reply(http::status::ok, server_.render_health(), "application/json", keep);
  } else if (path == "/metrics") {
    reply(http::status::ok, server_.render_metrics(), "text/plain; version=0.0.4", keep);
  } else if (path == "/") {
    reply(http::status::ok,
          "deploynet-signal: WebSocket tracker here; see /health and /metrics\n", "text/plain",
          keep);
  } else {
    reply(http::status::not_found, "not found\n", "text/plain", keep);
  }
}

void HttpSession::reply(http::status status, std::string body, const char* content_type,
                        bool keep_alive) {
  response_ = std::make_shared<http::response<http::string_body>>(status, 11);
  response_->set(http::field::server, "deploynet-signal");
  response_->set(http::field::content_type, content_type);
  response_->set(http::field::cache_control, "no-store");
  response_->keep_alive(keep_alive);
  response_->body() = std::move(body);
  response_->prepare_payload();
  stream_.expires_after(server_.config().handshake_timeout);
  http::async_write(stream_, *response_,
                    beast::bind_front_handler(&HttpSession::on_write, shared_from_this(),
                                              !keep_alive));
}

void HttpSession::on_write(bool close, beast::error_code ec, std::size_t) {
  response_.reset();
  if (ec) return fail(ec, "http_write");
  if (close) {
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    return;
  }
  do_read();
}

// ---------------------------------------------------------------- WebSocket

WsSession::WsSession(tcp::socket&& socket, Strand strand, Server& server, ConnSlot&& slot)
    : ws_(std::move(socket)),
      strand_(strand),
      server_(server),
      slot_(std::move(slot)),
      tokens_(server.config().rate_burst),
      refilled_(std::chrono::steady_clock::now()) {}

WsSession::~WsSession() { teardown(); }

void WsSession::run(http::request<http::string_body> req) {
  const auto& cfg = server_.config();
  websocket::stream_base::timeout t{};
  t.handshake_timeout = cfg.handshake_timeout;
  t.idle_timeout = cfg.idle_timeout;
  t.keep_alive_pings = true;
  ws_.set_option(t);
  ws_.read_message_max(cfg.max_frame_bytes);
  ws_.auto_fragment(false);
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
    res.set(http::field::server, "deploynet-signal");
  }));
  ws_.async_accept(req, beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
}

void WsSession::on_accept(beast::error_code ec) {
  if (ec) return fail(ec, "ws_accept");
  id_ = server_.register_session(shared_from_this());
  do_read();
}

void WsSession::do_read() {
  ws_.async_read(buffer_, beast::bind_front_handler(&WsSession::on_read, shared_from_this()));
}

void WsSession::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    if (ec == websocket::error::message_too_big) {
      server_.metrics().frames_too_big.fetch_add(1, std::memory_order_relaxed);
      LogLine(LogLevel::kDebug, "frame too big, closed 1009").kv("conn", id_);
    } else {
      fail(ec, "ws_read");
    }
    teardown();
    return;
  }
  auto start = std::chrono::steady_clock::now();
  auto data = buffer_.cdata();
  std::string_view text(static_cast<const char*>(data.data()), data.size());

  if (take_token()) {
    limited_in_row_ = 0;
    handle(text);
  } else {
    auto& m = server_.metrics();
    m.rate_limited.fetch_add(1, std::memory_order_relaxed);
    if (++limited_in_row_ == 1) {
      reply_failure("rate limit exceeded: slow down", {}, nullptr);
    } else if (limited_in_row_ > static_cast<std::uint32_t>(server_.config().rate_burst)) {
      // A client that keeps sending into an empty bucket is not a browser that lost count.
      m.rate_limit_closed.fetch_add(1, std::memory_order_relaxed);
      LogLine(LogLevel::kInfo, "closing connection over rate limit").kv("conn", id_);
      closing_ = true;
      ws_.async_close(websocket::close_reason(websocket::close_code::policy_error, "rate limit"),
                      [self = shared_from_this()](beast::error_code) {});
      buffer_.consume(buffer_.size());
      return;
    }
  }
  buffer_.consume(buffer_.size());
  if (buffer_.capacity() > kKeepReadBuffer) buffer_.shrink_to_fit();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::steady_clock::now() - start)
                .count();
  server_.metrics().handle_latency.observe_us(static_cast<std::uint64_t>(us));
  if (!closing_) do_read();
}

bool WsSession::take_token() {
  const auto& cfg = server_.config();
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - refilled_).count();
  refilled_ = now;
  tokens_ = std::min(cfg.rate_burst, tokens_ + elapsed * cfg.rate_per_s);
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

void WsSession::handle(std::string_view text) {
  auto& m = server_.metrics();
  auto parsed = parse_in_message(text, server_.config().parse);
  if (auto* err = std::get_if<ParseError>(&parsed)) {
    m.recv_invalid.fetch_add(1, std::memory_order_relaxed);
    LogLine(LogLevel::kDebug, "bad client message").kv("conn", id_).kv("reason", err->reason);
    reply_failure(err->reason, err->action, err->info_hash ? &*err->info_hash : nullptr);
    return;
  }
  auto& msg = std::get<InMessage>(parsed);
  if (auto* announce = std::get_if<AnnounceRequest>(&msg)) {
    m.recv_announce.fetch_add(1, std::memory_order_relaxed);
    handle_announce(*announce);
  } else {
    m.recv_scrape.fetch_add(1, std::memory_order_relaxed);
    auto reply = server_.tracker().scrape(std::get<ScrapeRequest>(msg),
                                          server_.config().parse.max_scrape_hashes);
    m.sent_reply.fetch_add(1, std::memory_order_relaxed);
    enqueue(std::make_shared<const std::string>(std::move(reply)));
  }
}

void WsSession::handle_announce(const AnnounceRequest& req) {
  auto& m = server_.metrics();
  auto in_swarm = [&](const InfoHash& ih, const PeerId& p) {
    return std::find(joined_.begin(), joined_.end(), std::pair{ih, p}) != joined_.end();
  };
  if (req.event != AnnounceEvent::kStopped && !in_swarm(req.info_hash, req.peer_id) &&
      joined_.size() >= server_.config().max_swarms_per_conn) {
    m.swarm_cap_hits.fetch_add(1, std::memory_order_relaxed);
    reply_failure("too many swarms on one connection", "announce", &req.info_hash);
    return;
  }
  if (req.offers_dropped) m.offers_over_cap.fetch_add(req.offers_dropped, std::memory_order_relaxed);

  std::vector<Outgoing> out;
  auto outcome = server_.tracker().announce(ConnRef{id_, weak_from_this()}, req, now_ms(), out);
  if (outcome.joined) joined_.emplace_back(req.info_hash, req.peer_id);
  if (outcome.left) std::erase(joined_, std::pair{req.info_hash, req.peer_id});
  if (outcome.offers_relayed) {
    m.offers_relayed.fetch_add(outcome.offers_relayed, std::memory_order_relaxed);
  }
  if (outcome.answer_relayed) m.answers_relayed.fetch_add(1, std::memory_order_relaxed);
  if (outcome.answer_dropped) {
    m.answers_dropped.fetch_add(1, std::memory_order_relaxed);
    LogLine(LogLevel::kDebug, "answer without a matching offer dropped").kv("conn", id_);
  }
  if (!outcome.failure.empty()) m.sent_failure.fetch_add(1, std::memory_order_relaxed);
  deliver(out);
}

void WsSession::deliver(std::vector<Outgoing>& out) {
  auto& m = server_.metrics();
  for (auto& o : out) {
    auto link = o.to.lock();
    if (!link) {
      m.dropped_peer_gone.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    switch (o.kind) {
      case OutKind::kReply: m.sent_reply.fetch_add(1, std::memory_order_relaxed); break;
      case OutKind::kOffer: m.sent_offer.fetch_add(1, std::memory_order_relaxed); break;
      case OutKind::kAnswer: m.sent_answer.fetch_add(1, std::memory_order_relaxed); break;
    }
    auto msg = std::make_shared<const std::string>(std::move(o.payload));
    // Every link the tracker holds is a WsSession: it is the only PeerLink this server makes.
    static_cast<WsSession*>(link.get())->send(std::move(msg));
  }
}

void WsSession::reply_failure(std::string_view reason, std::string_view action,
                              const InfoHash* ih) {
  server_.metrics().sent_failure.fetch_add(1, std::memory_order_relaxed);
  enqueue(std::make_shared<const std::string>(serialize_failure(reason, action, ih)));
}

void WsSession::send(Message msg) {
  if (strand_.running_in_this_thread()) {
    enqueue(std::move(msg));
    return;
  }
  net::post(strand_, [self = shared_from_this(), msg = std::move(msg)]() mutable {
    self->enqueue(std::move(msg));
  });
}

void WsSession::close_going_away() {
  net::post(strand_, [self = shared_from_this()] {
    if (self->closing_) return;
    self->closing_ = true;
    self->ws_.async_close(websocket::close_code::going_away, [self](beast::error_code) {});
  });
}

void WsSession::enqueue(Message msg) {
  if (closing_ || id_ == 0) return;
  const auto& cfg = server_.config();
  if (queue_.size() - queue_head_ >= cfg.max_send_queue ||
      queued_bytes_ + msg->size() > cfg.max_send_queue_bytes) {
    // The client does not read as fast as it is sent to: disconnect it rather than buffer
    // without bound. It can reconnect and re-announce.
    auto& m = server_.metrics();
    m.dropped_send_queue.fetch_add(1, std::memory_order_relaxed);
    m.slow_readers_closed.fetch_add(1, std::memory_order_relaxed);
    LogLine(LogLevel::kInfo, "closing slow reader").kv("conn", id_).kv("queued_bytes", queued_bytes_);
    closing_ = true;
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).socket().close(ignored);
    return;
  }
  queued_bytes_ += msg->size();
  queue_.push_back(std::move(msg));
  if (!writing_) do_write();
}

void WsSession::do_write() {
  writing_ = true;
  const auto& msg = queue_[queue_head_];
  ws_.text(true);
  ws_.async_write(net::buffer(*msg),
                  beast::bind_front_handler(&WsSession::on_write, shared_from_this()));
}

void WsSession::on_write(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (ec) return fail(ec, "ws_write");  // the pending read fails too and tears down
  queued_bytes_ -= queue_[queue_head_]->size();
  queue_[queue_head_].reset();
  if (++queue_head_ == queue_.size()) {
    queue_.clear();
    queue_head_ = 0;
    if (queue_.capacity() > 16) queue_.shrink_to_fit();
    return;
  }
  if (!closing_) do_write();
}

void WsSession::teardown() {
  for (const auto& [ih, peer] : joined_) server_.tracker().leave(id_, ih, peer);
  joined_.clear();
  if (id_ != 0) {
    server_.unregister_session(id_);
    id_ = 0;
  }
}

}  // namespace deploynet::server
