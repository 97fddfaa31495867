#include "http_session.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <chrono>
#include <optional>

#include "deploynet/proxy_protocol.hpp"
#include "ice.hpp"
#include "log.hpp"
#include "worker.hpp"
#include "ws_conn.hpp"

namespace deploynet::server {
namespace {

// Whether an Authorization header presents `token` as a Bearer token (no token: anyone may).
// Compared in constant time.
bool bearer_allows(std::string_view header, const std::string& token) {
  if (token.empty()) return true;
  constexpr std::string_view kScheme = "Bearer ";
  if (header.size() != kScheme.size() + token.size() || header.substr(0, kScheme.size()) != kScheme)
    return false;
  return CRYPTO_memcmp(header.data() + kScheme.size(), token.data(), token.size()) == 0;
}

constexpr std::size_t kHeaderLimit = 8 * 1024;
constexpr std::size_t kBodyLimit = 4 * 1024;

bool header_has_token(std::string_view value, std::string_view token) {
  // Comma-separated, case-insensitive tokens (Connection: keep-alive, Upgrade).
  std::size_t pos = 0;
  while (pos <= value.size()) {
    auto end = value.find(',', pos);
    if (end == std::string_view::npos) end = value.size();
    auto item = value.substr(pos, end - pos);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.size() == token.size() &&
        std::equal(item.begin(), item.end(), token.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      return true;
    }
    pos = end + 1;
  }
  return false;
}

std::string_view sv(boost::string_view s) {
  return {s.data(), s.size()};
}

// Whether the query of a request target has the parameter `name` (`?a&name=1`, `?name`).
bool query_has(std::string_view target, std::string_view name) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return false;
  auto query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    auto item = query.substr(0, amp);
    if (item.substr(0, item.find('=')) == name) return true;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

// The client behind a chain of trusted proxies: X-Forwarded-For read from the right (each proxy
// appends the address it received from), skipping trusted proxies, up to the first other one.
std::optional<std::array<unsigned char, 16>> forwarded_client(std::string_view xff,
                                                              const Config& config) {
  while (!xff.empty()) {
    auto comma = xff.rfind(',');
    auto item = comma == std::string_view::npos ? xff : xff.substr(comma + 1);
    xff = comma == std::string_view::npos ? std::string_view{} : xff.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    boost::system::error_code ec;
    auto addr = net::ip::make_address(std::string(item), ec);
    if (ec) return std::nullopt;  // not an address: believe nothing further left
    auto v6 =
        addr.is_v4() ? net::ip::make_address_v6(net::ip::v4_mapped, addr.to_v4()) : addr.to_v6();
    std::array<unsigned char, 16> ip{};
    auto bytes = v6.to_bytes();
    std::copy(bytes.begin(), bytes.end(), ip.begin());
    if (!config.trusted_proxy(ip)) return ip;
  }
  return std::nullopt;
}

std::int64_t unix_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string websocket_accept(std::string_view key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input(key);
  input += kGuid;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha1(), nullptr);
  unsigned char b64[64];
  int n = EVP_EncodeBlock(b64, digest, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(b64), static_cast<std::size_t>(n));
}

HttpSession::HttpSession(tcp::socket&& socket, Worker& worker, Context& ctx, StatusPages& pages,
                         ConnSlot&& slot)
    : stream_(std::move(socket)),
      worker_(worker),
      ctx_(ctx),
      pages_(pages),
      slot_(std::move(slot)) {}

void HttpSession::run() {
  if (slot_.from_proxy() && ctx_.config.proxy_protocol) {
    stream_.expires_after(ctx_.config.handshake_timeout);
    read_proxy_header();
  } else {
    do_read();
  }
}

// A TCP proxy's PROXY protocol header comes first and names the client; the HTTP request
// follows in the same buffer.
void HttpSession::read_proxy_header() {
  auto header = parse_proxy_header(
      std::string_view(static_cast<const char*>(buffer_.cdata().data()), buffer_.size()));
  using Status = ProxyHeader::Status;
  if (header.status == Status::kOk) {
    buffer_.consume(header.used);
    if (header.client && slot_.attribute_to(*header.client)) {
      reply(http::status::too_many_requests, "too many connections from this address\n",
            "text/plain", false, "Retry-After", "10");
      return;
    }
    do_read();
    return;
  }
  if (header.status == Status::kInvalid || buffer_.size() >= kMaxProxyHeader) {
    ctx_.metrics.proxy_header_invalid.fetch_add(1, std::memory_order_relaxed);
    LogLine(LogLevel::kInfo, "connection from a trusted proxy closed")
        .kv("reason", "no valid PROXY header");
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    return;
  }
  stream_.async_read_some(buffer_.prepare(kMaxProxyHeader - buffer_.size()),
                          [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                            if (ec) return;
                            self->buffer_.commit(n);
                            self->read_proxy_header();
                          });
}

void HttpSession::do_read() {
  parser_.emplace();
  parser_->header_limit(kHeaderLimit);
  parser_->body_limit(kBodyLimit);
  stream_.expires_after(ctx_.config.handshake_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
}

void HttpSession::on_read(beast::error_code ec, std::size_t) {
  if (ec == http::error::end_of_stream) {
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    return;
  }
  if (ec) {
    if (ec == http::error::header_limit || ec == http::error::body_limit) {
      reply(http::status::payload_too_large, "request too large\n", "text/plain", false);
    } else if (ec != beast::error::timeout && ec != net::error::operation_aborted) {
      LogLine(LogLevel::kDebug, "http read failed").kv("error", ec.message());
    }
    return;
  }
  auto req = parser_->release();
  // Behind a TCP proxy (PROXY protocol) headers come from the client itself: never believed.
  if (slot_.from_proxy() && !ctx_.config.proxy_protocol) {
    // Limits and routing proximity apply to the client, not to the proxy that carries it.
    if (auto client = forwarded_client(sv(req["X-Forwarded-For"]), ctx_.config)) {
      if (slot_.attribute_to(*client)) {
        reply(http::status::too_many_requests, "too many connections from this address\n",
              "text/plain", false, "Retry-After", "10");
        return;
      }
    }
  }
  if (header_has_token(sv(req[http::field::upgrade]), "websocket")) return upgrade(req);

  ctx_.metrics.http_requests.fetch_add(1, std::memory_order_relaxed);
  bool keep = req.keep_alive();
  auto target = sv(req.target());
  auto path = target.substr(0, target.find('?'));
  if (path == "/deploy" && req.method() == http::verb::post) {
    auto answer = pages_.deploy_notice(req.body());
    reply(static_cast<http::status>(answer.status), answer.body, "application/json", keep);
  } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
    reply(http::status::method_not_allowed, "method not allowed\n", "text/plain", keep);
  } else if (path == "/health") {
    reply(http::status::ok, pages_.render_health(), "application/json", keep);
  } else if (path == "/metrics") {
    if (!bearer_allows(sv(req[http::field::authorization]), ctx_.config.metrics_token)) {
      reply(http::status::unauthorized, "/metrics needs its token (Authorization: Bearer)\n",
            "text/plain", keep, "WWW-Authenticate", "Bearer realm=\"deploynet-signal\"");
      return;
    }
    reply(http::status::ok, pages_.render_metrics(), "text/plain; version=0.0.4", keep);
  } else if (path == "/") {
    reply(http::status::ok, "deploynet-signal: WebSocket tracker here; see /health and /metrics\n",
          "text/plain", keep);
  } else {
    reply(http::status::not_found, "not found\n", "text/plain", keep);
  }
}

void HttpSession::upgrade(const http::request<http::string_body>& req) {
  auto key = sv(req[http::field::sec_websocket_key]);
  if (req.method() != http::verb::get ||
      !header_has_token(sv(req[http::field::connection]), "upgrade") || key.empty() ||
      key.size() > 64) {
    reply(http::status::bad_request, "bad WebSocket upgrade request\n", "text/plain", false);
    return;
  }
  if (sv(req[http::field::sec_websocket_version]) != "13") {
    reply(http::status::upgrade_required, "WebSocket version 13 only\n", "text/plain", false,
          "Sec-WebSocket-Version", "13");
    return;
  }
  auto origin = sv(req[http::field::origin]);
  if (!ctx_.config.origin_allowed(origin)) {
    ctx_.metrics.rejected_origin.fetch_add(1, std::memory_order_relaxed);
    LogLine(LogLevel::kDebug, "origin refused").kv("origin", origin);
    reply(http::status::forbidden, "origin not allowed\n", "text/plain", false);
    return;
  }
  std::string response =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Server: deploynet-signal\r\n"
      "Sec-WebSocket-Accept: " +
      websocket_accept(key) + "\r\n\r\n";
  // Bytes the client sent after its request (frames sent without waiting for the 101).
  auto early = buffer_.cdata();
  std::string early_bytes(static_cast<const char*>(early.data()), early.size());
  stream_.expires_never();
  auto socket = stream_.release_socket();
  boost::system::error_code ec;
  auto protocol = socket.local_endpoint(ec).protocol();
  auto fd = socket.release(ec);
  if (ec) return;
  WsConn::Socket own(worker_.ioc().get_executor(), protocol, fd);
  // DeployNet clients ask for their ICE servers on the URL, so they have them before their
  // first offer; plain WebTorrent clients never see the frame.
  std::string hello;
  if (query_has(sv(req.target()), "deploynet")) {
    hello = ice_message(ctx_.config.ice, unix_now_s(), turn_user_tag());
  }
  // Longer than any site's origin: kept as none (its reports are refused).
  std::string conn_origin = origin.size() <= 256 ? std::string(origin) : std::string();
  // A site turned off by a signed notice: its page is told at once, after the ICE frame.
  std::string off = conn_origin.empty() ? std::string() : pages_.disabled_push(conn_origin);
  auto conn = std::make_shared<WsConn>(std::move(own), worker_, ctx_, std::move(slot_),
                                       worker_.next_key(), std::move(conn_origin));
  conn->start(std::move(response), std::move(early_bytes), hello);
  if (!off.empty()) conn->send_text(off);
}

void HttpSession::reply(http::status status, std::string body, const char* content_type,
                        bool keep_alive, const char* extra_header, const char* extra_value) {
  response_ = std::make_shared<http::response<http::string_body>>(status, 11);
  response_->set(http::field::server, "deploynet-signal");
  response_->set(http::field::content_type, content_type);
  response_->set(http::field::cache_control, "no-store");
  if (extra_header) response_->set(extra_header, extra_value);
  response_->keep_alive(keep_alive);
  response_->body() = std::move(body);
  response_->prepare_payload();
  stream_.expires_after(ctx_.config.handshake_timeout);
  http::async_write(
      stream_, *response_,
      beast::bind_front_handler(&HttpSession::on_write, shared_from_this(), !keep_alive));
}

void HttpSession::on_write(bool close, beast::error_code ec, std::size_t) {
  response_.reset();
  if (ec) return;
  if (close) {
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    return;
  }
  do_read();
}

}  // namespace deploynet::server
