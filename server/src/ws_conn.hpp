#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "context.hpp"
#include "deploynet/protocol.hpp"
#include "deploynet/tracker.hpp"
#include "deploynet/ws_frame.hpp"
#include "server.hpp"

namespace deploynet::server {

class Worker;

// One WebSocket client after the upgrade: frames in, tracker, frames out. Lives on one worker;
// every member function runs on that worker's thread.
class WsConn : public std::enable_shared_from_this<WsConn> {
 public:
  using Socket = net::basic_stream_socket<tcp, net::io_context::executor_type>;

  // Its key (`Worker::next_key`) addresses it in the tracker and in deliveries. `origin`: the
  // upgrade request's Origin header (empty when it had none), the only site it may report for.
  WsConn(Socket socket, Worker& worker, Context& ctx, ConnSlot&& slot, std::uint64_t key,
         std::string origin);
  ~WsConn();

  // Starts with the 101 response to write and any bytes the client sent after its request.
  // `hello`: a first text frame to send right after the handshake (empty: none).
  void start(std::string handshake_response, std::string early_bytes, std::string_view hello = {});
  void send_text(std::string_view payload);
  // The upgrade's Origin header (empty when it had none or an overlong one).
  const std::string& origin() const { return origin_; }
  // Sends a close frame, then ends the connection once it is written (or after a grace time).
  void close(ws::CloseCode code, std::string_view reason = {});
  // Periodic check from the worker: pings, idle timeout, close grace time.
  void on_sweep(std::int64_t now_ms);
  // Writes the frames gathered since the last write.
  void start_write();
  bool dead() const { return dead_; }
  std::uint64_t key() const { return id_; }

  std::size_t worker_slot = 0;  // position in the worker's list, kept by the worker

 private:
  void arm_read();
  void on_readable(const boost::system::error_code& ec);
  void consume(std::span<char> data);
  void handle_message(std::string_view text);
  void handle_announce(AnnounceRequest& req);
  void handle_report(const ReportRequest& req);
  void reply_failure(std::string_view reason, std::string_view action, const InfoHash* ih);
  bool take_token(std::int64_t now_ms);
  void queue_frame(ws::Opcode opcode, std::string_view payload);
  void on_written(const boost::system::error_code& ec);
  void teardown();

  Socket socket_;
  Worker& worker_;
  Context& ctx_;
  ConnSlot slot_;
  std::uint64_t id_;
  ws::MessageReader reader_;
  std::string partial_;  // an incomplete frame carried to the next read
  std::string out_;      // frames gathered for the next write
  std::string writing_;  // frames being written
  std::uint32_t out_frames_ = 0;

  std::vector<std::pair<InfoHash, PeerId>> joined_;  // left when the connection ends

  std::int64_t last_read_ms_ = 0;
  std::int64_t close_sent_ms_ = 0;
  std::int64_t refilled_ms_ = 0;
  float tokens_ = 0;
  std::string origin_;  // the upgrade's Origin header
  std::uint32_t limited_in_row_ = 0;
  bool writing_now_ = false;
  bool dirty_ = false;
  bool close_sent_ = false;
  bool ping_sent_ = false;
  bool dead_ = false;
  friend class Worker;
};

}  // namespace deploynet::server
