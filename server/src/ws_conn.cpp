#include "ws_conn.hpp"

#include <openssl/evp.h>

#include <boost/asio/write.hpp>

#include <chrono>
#include <cstring>

#include "log.hpp"
#include "worker.hpp"

namespace deploynet::server {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;
// Buffers above this are given back once drained, so an idle connection holds next to nothing.
constexpr std::size_t kKeepBuffer = 512;
// How long a closing connection may take to answer our close frame.
constexpr std::int64_t kCloseGraceMs = 2000;

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Whether `proof` is the secret `peer_id` derives from: its last 12 characters are the first 12
// of base64url(SHA-256(proof)) (72 bits: a live peer's id cannot be forged to match).
bool proves_peer_id(std::string_view proof, const PeerId& peer_id) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(proof.data(), proof.size(), digest, &len, EVP_sha256(), nullptr) != 1)
    return false;
  unsigned char b64[48];
  EVP_EncodeBlock(b64, digest, 9);  // 9 bytes: 12 characters
  for (auto& c : b64) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return std::memcmp(b64, peer_id.bytes.data() + 8, 12) == 0;
}

void release_if_large(std::string& s) {
  if (s.capacity() > kKeepBuffer) std::string().swap(s);
}

}  // namespace

WsConn::WsConn(Socket socket, Worker& worker, Context& ctx, ConnSlot&& slot, std::uint64_t key,
               std::string origin)
    : socket_(std::move(socket)),
      worker_(worker),
      ctx_(ctx),
      slot_(std::move(slot)),
      id_(key),
      reader_(ctx.config.max_frame_bytes),
      tokens_(static_cast<float>(ctx.config.rate_burst)),
      origin_(std::move(origin)) {}

WsConn::~WsConn() {
  teardown();
}

void WsConn::start(std::string handshake_response, std::string early_bytes,
                   std::string_view hello) {
  auto& m = ctx_.metrics;
  m.connections_open.fetch_add(1, kRelaxed);
  m.connections_total.fetch_add(1, kRelaxed);
  worker_.add(this);
  last_read_ms_ = refilled_ms_ = steady_ms();
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
  socket_.set_option(tcp::no_delay(true), ec);
  out_ = std::move(handshake_response);
  if (!hello.empty()) {
    ws::append_frame(out_, ws::Opcode::kText, hello);
    m.sent_reply.fetch_add(1, kRelaxed);
  }
  start_write();
  if (!early_bytes.empty()) consume(early_bytes);
  if (!dead_) arm_read();
}

void WsConn::arm_read() {
  socket_.async_wait(
      tcp::socket::wait_read,
      [self = shared_from_this()](const boost::system::error_code& ec) { self->on_readable(ec); });
}

void WsConn::on_readable(const boost::system::error_code& ec) {
  if (dead_) return;
  if (ec) {
    if (ec != net::error::operation_aborted) {
      LogLine(LogLevel::kDebug, "read wait failed").kv("conn", id_).kv("error", ec.message());
    }
    teardown();
    return;
  }
  auto buf = worker_.read_buffer();
  boost::system::error_code rec;
  std::size_t n = socket_.read_some(net::buffer(buf.data(), buf.size()), rec);
  if (rec == net::error::would_block || rec == net::error::try_again) {
    arm_read();
    return;
  }
  if (rec) {
    if (rec != net::error::eof && rec != net::error::connection_reset) {
      LogLine(LogLevel::kDebug, "read failed").kv("conn", id_).kv("error", rec.message());
    }
    teardown();
    return;
  }
  last_read_ms_ = steady_ms();
  ping_sent_ = false;
  if (partial_.empty()) {
    consume(buf.first(n));
  } else {
    partial_.append(buf.data(), n);
    std::string data = std::move(partial_);
    partial_.clear();
    consume(data);
  }
  if (!dead_) arm_read();
}

void WsConn::consume(std::span<char> data) {
  using Kind = ws::MessageReader::Kind;
  while (!data.empty() && !dead_) {
    std::size_t used = 0;
    auto ev = reader_.next(data, used);
    switch (ev.kind) {
      case Kind::kNeedMore:
        // An incomplete frame: keep its bytes for the next read (bounded: the reader has
        // already refused any frame longer than the message limit).
        partial_.assign(data.data(), data.size());
        return;
      case Kind::kFragment:
        break;
      case Kind::kMessage:
        if (!close_sent_) handle_message(ev.payload);
        break;
      case Kind::kPing:
        if (!close_sent_) queue_frame(ws::Opcode::kPong, ev.payload);
        break;
      case Kind::kPong:
        break;
      case Kind::kClose: {
        // Echo the client's code as RFC 6455 asks (the reader refused invalid ones); none
        // given: 1000.
        auto code = ev.close_code;
        close(code == 1005 ? ws::CloseCode::kNormal : static_cast<ws::CloseCode>(code));
        return;
      }
      case Kind::kError:
        if (ev.close_code == 1009) {
          ctx_.metrics.frames_too_big.fetch_add(1, kRelaxed);
          LogLine(LogLevel::kDebug, "frame too big, closing 1009").kv("conn", id_);
        } else {
          ctx_.metrics.protocol_errors.fetch_add(1, kRelaxed);
          LogLine(LogLevel::kDebug, "WebSocket protocol error")
              .kv("conn", id_)
              .kv("error", ev.error);
        }
        close(static_cast<ws::CloseCode>(ev.close_code), ev.error);
        return;
    }
    data = data.subspan(used);
  }
  if (partial_.capacity() > kKeepBuffer && partial_.empty()) std::string().swap(partial_);
}

bool WsConn::take_token(std::int64_t now_ms) {
  const auto& cfg = ctx_.config;
  auto elapsed = static_cast<double>(now_ms - refilled_ms_) / 1000.0;
  refilled_ms_ = now_ms;
  tokens_ = static_cast<float>(std::min(cfg.rate_burst, tokens_ + elapsed * cfg.rate_per_s));
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

void WsConn::handle_message(std::string_view text) {
  auto start = std::chrono::steady_clock::now();
  auto& m = ctx_.metrics;
  if (!take_token(last_read_ms_)) {
    m.rate_limited.fetch_add(1, kRelaxed);
    if (++limited_in_row_ == 1) {
      reply_failure("rate limit exceeded: slow down", {}, nullptr);
    } else if (limited_in_row_ > static_cast<std::uint32_t>(ctx_.config.rate_burst)) {
      // A client that keeps sending into an empty bucket is not a browser that lost count.
      m.rate_limit_closed.fetch_add(1, kRelaxed);
      LogLine(LogLevel::kInfo, "closing connection over rate limit").kv("conn", id_);
      close(ws::CloseCode::kPolicyViolation, "rate limit");
    }
    return;
  }
  limited_in_row_ = 0;

  auto parsed = parse_in_message(text, ctx_.config.parse);
  if (auto* err = std::get_if<ParseError>(&parsed)) {
    m.recv_invalid.fetch_add(1, kRelaxed);
    LogLine(LogLevel::kDebug, "bad client message").kv("conn", id_).kv("reason", err->reason);
    reply_failure(err->reason, err->action, err->info_hash ? &*err->info_hash : nullptr);
  } else if (auto* announce = std::get_if<AnnounceRequest>(&std::get<InMessage>(parsed))) {
    m.recv_announce.fetch_add(1, kRelaxed);
    handle_announce(*announce);
  } else if (auto* route = std::get_if<RouteRequest>(&std::get<InMessage>(parsed))) {
    m.recv_route.fetch_add(1, kRelaxed);
    std::vector<Outgoing> out;
    if (ctx_.tracker.route(ConnRef{id_, slot_.net_prefix()}, *route, steady_ms(), out)) {
      m.route_ids.fetch_add(route->content_ids.size(), kRelaxed);
      m.sent_reply.fetch_add(1, kRelaxed);
    } else {
      m.sent_failure.fetch_add(1, kRelaxed);
    }
    for (auto& o : out) send_text(serialize(std::move(o.message)));
  } else if (auto* report = std::get_if<ReportRequest>(&std::get<InMessage>(parsed))) {
    m.recv_report.fetch_add(1, kRelaxed);
    handle_report(*report);
  } else {
    m.recv_scrape.fetch_add(1, kRelaxed);
    auto reply = ctx_.tracker.scrape(std::get<ScrapeRequest>(std::get<InMessage>(parsed)),
                                     ctx_.config.parse.max_scrape_hashes);
    m.sent_reply.fetch_add(1, kRelaxed);
    send_text(reply);
  }
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  m.handle_latency.observe_us(static_cast<std::uint64_t>(us));
}

void WsConn::handle_announce(AnnounceRequest& req) {
  auto& m = ctx_.metrics;
  if (!req.peer_proof.empty()) req.peer_proved = proves_peer_id(req.peer_proof, req.peer_id);
  bool member = std::find(joined_.begin(), joined_.end(), std::pair{req.info_hash, req.peer_id}) !=
                joined_.end();
  if (req.event != AnnounceEvent::kStopped && !member &&
      joined_.size() >= ctx_.config.max_swarms_per_conn) {
    m.swarm_cap_hits.fetch_add(1, kRelaxed);
    reply_failure("too many swarms on one connection", "announce", &req.info_hash);
    return;
  }
  if (req.offers_dropped) m.offers_over_cap.fetch_add(req.offers_dropped, kRelaxed);

  std::vector<Outgoing> out;
  auto outcome = ctx_.tracker.announce(ConnRef{id_, slot_.net_prefix()}, req, last_read_ms_, out);
  if (outcome.joined) joined_.emplace_back(req.info_hash, req.peer_id);
  if (outcome.left) std::erase(joined_, std::pair{req.info_hash, req.peer_id});
  if (outcome.offers_relayed) m.offers_relayed.fetch_add(outcome.offers_relayed, kRelaxed);
  if (outcome.offers_targeted) m.offers_targeted.fetch_add(outcome.offers_targeted, kRelaxed);
  if (outcome.offers_unroutable) {
    m.offers_unroutable.fetch_add(outcome.offers_unroutable, kRelaxed);
  }
  if (outcome.answer_relayed) m.answers_relayed.fetch_add(1, kRelaxed);
  if (outcome.answer_dropped) {
    m.answers_dropped.fetch_add(1, kRelaxed);
    LogLine(LogLevel::kDebug, "answer without a matching offer dropped").kv("conn", id_);
  }
  if (!outcome.failure.empty()) m.sent_failure.fetch_add(1, kRelaxed);

  // Serialized here, after the tracker's lock, while `req` (whose bytes relays view) is alive.
  for (auto& o : out) {
    if (o.node != 0) {  // a peer on another node of the cluster
      if (auto* cluster = ctx_.cluster) {
        // Only the session description crosses: the other node builds the message around it.
        o.message = SerializedOut{std::string(std::get<RelayOut>(o.message).sdp)};
        cluster->relay(std::move(o));
      }
      continue;
    }
    switch (o.kind) {
      case OutKind::kReply:
        m.sent_reply.fetch_add(1, kRelaxed);
        break;
      case OutKind::kOffer:
        m.sent_offer.fetch_add(1, kRelaxed);
        break;
      case OutKind::kAnswer:
        m.sent_answer.fetch_add(1, kRelaxed);
        break;
    }
    if (o.to == id_) {
      send_text(serialize(std::move(o.message)));
    } else {
      worker_.deliver(o.to, serialize(std::move(o.message)));
    }
  }
}

// A member's byte counts for its page view so far: what grew since its view's last report (on
// any connection) is added to its site's totals. Only a member of the swarm, only for the site
// that owns the swarm id and that the connection's Origin names.
void WsConn::handle_report(const ReportRequest& req) {
  bool member = std::find(joined_.begin(), joined_.end(), std::pair{req.info_hash, req.peer_id}) !=
                joined_.end();
  if (!member) {
    reply_failure("report: announce in this swarm first", "report", &req.info_hash);
    return;
  }
  if (!swarm_of_origin(req.info_hash, req.origin)) {
    reply_failure("report: origin does not own this swarm", "report", &req.info_hash);
    return;
  }
  // A page reports for the site it was loaded from, and its browser names that site in the
  // Origin header of the socket: a report for any other site is refused.
  if (req.origin != origin_) {
    ctx_.metrics.reports_refused.fetch_add(1, kRelaxed);
    reply_failure("report: origin is not the connection's Origin", "report", &req.info_hash);
    return;
  }
  ctx_.sites.add(req.origin, req.peer_id,
                 ViewCounts{req.from_peers, req.from_origin, req.from_cache, req.uploaded},
                 steady_ms());
}

void WsConn::reply_failure(std::string_view reason, std::string_view action, const InfoHash* ih) {
  ctx_.metrics.sent_failure.fetch_add(1, kRelaxed);
  send_text(serialize_failure(reason, action, ih));
}

void WsConn::send_text(std::string_view payload) {
  if (close_sent_ || dead_) return;
  queue_frame(ws::Opcode::kText, payload);
}

void WsConn::queue_frame(ws::Opcode opcode, std::string_view payload) {
  if (dead_) return;
  const auto& cfg = ctx_.config;
  if (out_frames_ >= cfg.max_send_queue ||
      out_.size() + writing_.size() + payload.size() > cfg.max_send_queue_bytes) {
    // The client reads slower than it is sent to: disconnect it rather than buffer without
    // bound. It can reconnect and announce again.
    auto& m = ctx_.metrics;
    m.dropped_send_queue.fetch_add(1, kRelaxed);
    m.slow_readers_closed.fetch_add(1, kRelaxed);
    LogLine(LogLevel::kInfo, "closing slow reader")
        .kv("conn", id_)
        .kv("queued_bytes", out_.size() + writing_.size());
    teardown();
    return;
  }
  ws::append_frame(out_, opcode, payload);
  ++out_frames_;
  if (!dirty_ && !writing_now_) {
    dirty_ = true;
    worker_.mark_dirty(shared_from_this());
  }
}

void WsConn::close(ws::CloseCode code, std::string_view reason) {
  if (close_sent_ || dead_) return;
  ws::append_close(out_, code, reason);
  close_sent_ = true;
  close_sent_ms_ = steady_ms();
  if (!dirty_ && !writing_now_) {
    dirty_ = true;
    worker_.mark_dirty(shared_from_this());
  }
}

void WsConn::start_write() {
  dirty_ = false;
  if (writing_now_ || dead_ || out_.empty()) return;
  writing_now_ = true;
  ctx_.metrics.socket_writes.fetch_add(1, kRelaxed);
  std::swap(out_, writing_);
  out_frames_ = 0;
  net::async_write(socket_, net::buffer(writing_),
                   [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                     self->on_written(ec);
                   });
}

void WsConn::on_written(const boost::system::error_code& ec) {
  writing_now_ = false;
  if (dead_) return;
  if (ec) {
    teardown();
    return;
  }
  writing_.clear();
  release_if_large(writing_);
  if (!out_.empty()) {
    start_write();
    return;
  }
  release_if_large(out_);
  if (close_sent_) {
    // Our close frame is out: half-close, and let the client's close or EOF end the read side.
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
  }
}

void WsConn::on_sweep(std::int64_t now_ms) {
  if (dead_) return;
  if (close_sent_) {
    if (now_ms - close_sent_ms_ > kCloseGraceMs) teardown();
    return;
  }
  auto idle =
      std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.config.idle_timeout).count();
  auto silent = now_ms - last_read_ms_;
  if (silent > idle) {
    ctx_.metrics.idle_closed.fetch_add(1, kRelaxed);
    LogLine(LogLevel::kDebug, "idle timeout").kv("conn", id_);
    close(ws::CloseCode::kGoingAway, "idle timeout");
  } else if (silent > idle / 2 && !ping_sent_) {
    ping_sent_ = true;
    queue_frame(ws::Opcode::kPing, {});
  }
}

void WsConn::teardown() {
  if (dead_) return;
  dead_ = true;
  for (const auto& [ih, peer] : joined_) ctx_.tracker.leave(id_, ih, peer);
  joined_.clear();
  worker_.remove(this);
  boost::system::error_code ignored;
  socket_.close(ignored);
  ctx_.metrics.connections_open.fetch_sub(1, kRelaxed);
}

}  // namespace deploynet::server
