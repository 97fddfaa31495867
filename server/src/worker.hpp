#pragma once

// One I/O thread with its own io_context. A connection lives on one worker for its whole life,
// so its handlers never run concurrently and need no strand. Workers batch what they send:
// frames for a connection gather in its buffer until the end of the current loop turn and go
// out in one write; messages for connections on other workers go over in one post per worker.
// Connections are addressed by a plain key (the tracker's connection id), which names the worker
// the connection lives on; only that worker maps keys to connections.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "deploynet/ws_frame.hpp"

namespace deploynet::server {

namespace net = boost::asio;

class WsConn;
struct Metrics;

class Worker {
 public:
  Worker(unsigned index, unsigned workers, Metrics& metrics);

  // The worker a connection key belongs to.
  static unsigned worker_of(std::uint64_t key) { return static_cast<unsigned>(key >> kSeqBits); }

  // Every worker of the server, by index (before any thread runs).
  void meet(const std::vector<std::unique_ptr<Worker>>& all);
  net::io_context& ioc() { return ioc_; }
  unsigned index() const { return index_; }
  void start_thread();
  // Runs the loop on the calling thread until stop().
  void run();
  void stop();
  void join();

  // The rest runs on this worker's thread only.
  // A new key for a connection on this worker (never 0, never reused).
  std::uint64_t next_key() { return (std::uint64_t{index_} << kSeqBits) | ++seq_; }
  void add(WsConn* conn);
  void remove(WsConn* conn);
  // The connection with this key, if it is on this worker and open; nullptr otherwise.
  WsConn* find(std::uint64_t key) const;
  // Scratch space every read on this worker goes through (one per thread, not per connection).
  std::span<char> read_buffer() { return read_buffer_; }
  // Queues a text message to the connection with key `to`, wherever it lives (a connection
  // gone by the time it arrives is counted and the message dropped).
  void deliver(std::uint64_t to, std::string payload);
  // Sends to a connection of this worker, now.
  void send_local(std::uint64_t to, std::string_view payload);
  // Asks for `conn`'s pending frames to be written at the end of this loop turn.
  void mark_dirty(std::shared_ptr<WsConn> conn) { dirty_.push_back(std::move(conn)); }
  void close_all(ws::CloseCode code);
  // Sends `payload` to every connection of this worker whose upgrade came with this Origin
  // (the site's open pages); returns how many.
  std::size_t send_to_origin(std::string_view origin, std::string_view payload);

 private:
  static constexpr int kSeqBits = 48;
  struct Delivery {
    std::uint64_t to;
    std::string payload;
  };
  void schedule_sweep();
  void sweep();
  void flush_dirty();
  void flush_outboxes();

  unsigned index_;
  Metrics& metrics_;
  std::uint64_t seq_ = 0;
  net::io_context ioc_{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::thread thread_;
  net::steady_timer sweep_timer_;
  std::vector<WsConn*> conns_;
  std::unordered_map<std::uint64_t, WsConn*> by_key_;
  std::vector<std::vector<Delivery>> outboxes_;  // by the target worker's index
  std::vector<Worker*> targets_;                 // those workers
  std::vector<std::shared_ptr<WsConn>> dirty_;
  std::vector<char> read_buffer_;
};

}  // namespace deploynet::server
