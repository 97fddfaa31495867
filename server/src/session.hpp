#pragma once

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "deploynet/tracker.hpp"
#include "server.hpp"

namespace deploynet::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

// Reads one HTTP request: a WebSocket upgrade becomes a WsSession, anything else gets
// /health, /metrics or 404 (keep-alive, bounded header and body sizes).
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, Strand strand, Server& server, ConnSlot&& slot);
  void run();

 private:
  void do_read();
  void on_read(beast::error_code ec, std::size_t);
  void reply(http::status status, std::string body, const char* content_type, bool keep_alive);
  void on_write(bool close, beast::error_code ec, std::size_t);

  beast::tcp_stream stream_;
  Strand strand_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Server& server_;
  ConnSlot slot_;
  std::shared_ptr<http::response<http::string_body>> response_;
};

// One WebSocket client: reads frames, hands them to the tracker, writes what it is sent.
class WsSession : public PeerLink, public std::enable_shared_from_this<WsSession> {
 public:
  using Message = std::shared_ptr<const std::string>;

  WsSession(tcp::socket&& socket, Strand strand, Server& server, ConnSlot&& slot);
  ~WsSession() override;

  void run(http::request<http::string_body> req);
  // Queues a text message; callable from any thread.
  void send(Message msg);
  // Closes with 1001 (server going away); callable from any thread.
  void close_going_away();

 private:
  void on_accept(beast::error_code ec);
  void do_read();
  void on_read(beast::error_code ec, std::size_t bytes);
  bool take_token();
  void handle(std::string_view text);
  void handle_announce(const AnnounceRequest& req);
  void deliver(std::vector<Outgoing>& out);
  void reply_failure(std::string_view reason, std::string_view action, const InfoHash* ih);
  void enqueue(Message msg);
  void do_write();
  void on_write(beast::error_code ec, std::size_t);
  void teardown();

  websocket::stream<beast::tcp_stream> ws_;
  Strand strand_;
  beast::flat_buffer buffer_;
  Server& server_;
  ConnSlot slot_;
  std::uint64_t id_ = 0;  // 0 until the WebSocket is open

  std::vector<Message> queue_;
  std::size_t queue_head_ = 0;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;

  // Swarms this connection announced in, left when it closes.
  std::vector<std::pair<InfoHash, PeerId>> joined_;

  double tokens_;
  std::chrono::steady_clock::time_point refilled_;
  std::uint32_t limited_in_row_ = 0;
};

}  // namespace deploynet::server
