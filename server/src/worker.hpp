#pragma once

// One I/O thread with its own io_context. A connection lives on one worker for its whole life,
// so its handlers never run concurrently and need no strand. Workers batch what they send:
// frames for a connection gather in its buffer until the end of the current loop turn and go
// out in one write; messages for connections on other workers go over in one post per worker.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "deploynet/ws_frame.hpp"

namespace deploynet::server {

namespace net = boost::asio;

class WsConn;

class Worker {
 public:
  Worker(unsigned index, unsigned workers);

  net::io_context& ioc() { return ioc_; }
  unsigned index() const { return index_; }
  void start_thread();
  // Runs the loop on the calling thread until stop().
  void run();
  void stop();
  void join();

  // The rest runs on this worker's thread only.
  void add(WsConn* conn);
  void remove(WsConn* conn);
  // Scratch space every read on this worker goes through (one per thread, not per connection).
  std::span<char> read_buffer() { return read_buffer_; }
  // Queues a text message to `to`, wherever it lives.
  void deliver(std::shared_ptr<WsConn> to, std::string payload);
  // Asks for `conn`'s pending frames to be written at the end of this loop turn.
  void mark_dirty(std::shared_ptr<WsConn> conn) { dirty_.push_back(std::move(conn)); }
  void close_all(ws::CloseCode code);

 private:
  struct Delivery {
    std::shared_ptr<WsConn> to;
    std::string payload;
  };
  void schedule_sweep();
  void sweep();
  void flush_dirty();
  void flush_outboxes();

  unsigned index_;
  net::io_context ioc_{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::thread thread_;
  net::steady_timer sweep_timer_;
  std::vector<WsConn*> conns_;
  std::vector<std::vector<Delivery>> outboxes_;  // by the target worker's index
  std::vector<Worker*> targets_;                 // those workers, as first delivered to
  std::vector<std::shared_ptr<WsConn>> dirty_;
  std::vector<char> read_buffer_;
};

}  // namespace deploynet::server
