#pragma once

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <memory>
#include <optional>
#include <string>

#include "context.hpp"
#include "server.hpp"

namespace deploynet::server {

namespace beast = boost::beast;
namespace http = beast::http;

class Worker;

// Reads HTTP requests on a fresh connection: a WebSocket upgrade becomes a WsConn on the same
// worker; anything else gets /health, /metrics or 404 (keep-alive, bounded sizes, timeout).
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, Worker& worker, Context& ctx, StatusPages& pages,
              ConnSlot&& slot);
  void run();

 private:
  void read_proxy_header();
  void do_read();
  void on_read(beast::error_code ec, std::size_t);
  void upgrade(const http::request<http::string_body>& req);
  void reply(http::status status, std::string body, const char* content_type, bool keep_alive,
             const char* extra_header = nullptr, const char* extra_value = nullptr);
  void on_write(bool close, beast::error_code ec, std::size_t);

  beast::tcp_stream stream_;
  Worker& worker_;
  Context& ctx_;
  StatusPages& pages_;
  ConnSlot slot_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::string_body>> response_;
};

// Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2).
std::string websocket_accept(std::string_view key);

}  // namespace deploynet::server
