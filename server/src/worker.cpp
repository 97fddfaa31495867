#include "worker.hpp"

#include <boost/asio/post.hpp>

#include <chrono>

#include "metrics.hpp"
#include "ws_conn.hpp"

namespace deploynet::server {
namespace {
// Pings, idle timeouts and close grace times are checked this often, for all connections of a
// worker at once: one timer per thread instead of one per connection.
constexpr auto kSweepPeriod = std::chrono::milliseconds(500);
// Handlers run back to back before the gathered writes go out: more frames per write under
// load, while a flush is never more than this many handlers away.
constexpr int kBurst = 512;
// Large enough for a whole maximal frame in one read most of the time.
constexpr std::size_t kReadBuffer = 64 * 1024 + 16;
}  // namespace

Worker::Worker(unsigned index, unsigned workers, Metrics& metrics)
    : index_(index),
      metrics_(metrics),
      work_(net::make_work_guard(ioc_)),
      sweep_timer_(ioc_),
      outboxes_(workers),
      targets_(workers, nullptr),
      read_buffer_(kReadBuffer) {
  schedule_sweep();
}

void Worker::meet(const std::vector<std::unique_ptr<Worker>>& all) {
  targets_.assign(outboxes_.size(), nullptr);
  for (std::size_t i = 0; i < all.size() && i < targets_.size(); ++i) targets_[i] = all[i].get();
}

void Worker::start_thread() {
  thread_ = std::thread([this] { run(); });
}

void Worker::run() {
  // The loop "corks" writes: it runs what is ready (reads, deliveries from other workers),
  // then writes each touched connection once and hands each other worker one batch.
  while (!ioc_.stopped()) {
    if (ioc_.run_one() == 0) break;
    for (int i = 0; i < kBurst && ioc_.poll_one(); ++i) {
    }
    flush_outboxes();
    flush_dirty();
  }
}

void Worker::stop() {
  work_.reset();
  ioc_.stop();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::add(WsConn* conn) {
  conn->worker_slot = conns_.size();
  conns_.push_back(conn);
  by_key_.emplace(conn->key(), conn);
}

void Worker::remove(WsConn* conn) {
  auto slot = conn->worker_slot;
  if (slot >= conns_.size() || conns_[slot] != conn) return;
  conns_[slot] = conns_.back();
  conns_[slot]->worker_slot = slot;
  conns_.pop_back();
  by_key_.erase(conn->key());
}

WsConn* Worker::find(std::uint64_t key) const {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : it->second;
}

void Worker::send_local(std::uint64_t to, std::string_view payload) {
  if (auto* conn = find(to)) {
    conn->send_text(payload);
  } else {
    metrics_.dropped_peer_gone.fetch_add(1, std::memory_order_relaxed);
  }
}

void Worker::deliver(std::uint64_t to, std::string payload) {
  auto target = worker_of(to);
  if (target == index_) {
    send_local(to, payload);
    return;
  }
  if (target >= outboxes_.size() || !targets_[target]) {
    metrics_.dropped_peer_gone.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  outboxes_[target].push_back({to, std::move(payload)});
}

void Worker::flush_outboxes() {
  for (unsigned i = 0; i < outboxes_.size(); ++i) {
    auto& box = outboxes_[i];
    if (box.empty()) continue;
    Worker* target = targets_[i];
    net::post(target->ioc(), [target, batch = std::move(box)]() {
      for (const auto& d : batch) target->send_local(d.to, d.payload);
    });
    box = {};
  }
}

void Worker::flush_dirty() {
  if (dirty_.empty()) return;
  auto batch = std::move(dirty_);
  dirty_.clear();
  for (auto& c : batch) c->start_write();
  // Keep the list's memory for the next turn unless a burst made it large.
  if (dirty_.capacity() < batch.capacity() && batch.capacity() <= 4096) {
    batch.clear();
    dirty_.swap(batch);
  }
}

std::size_t Worker::send_to_origin(std::string_view origin, std::string_view payload) {
  std::size_t n = 0;
  for (auto* c : conns_) {
    if (c->origin() != origin) continue;
    c->send_text(payload);
    ++n;
  }
  return n;
}

void Worker::close_all(ws::CloseCode code) {
  auto conns = conns_;  // closing may end some at once
  for (auto* c : conns) c->close(code, "server shutting down");
}

void Worker::schedule_sweep() {
  sweep_timer_.expires_after(kSweepPeriod);
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    sweep();
    schedule_sweep();
  });
}

void Worker::sweep() {
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
  // on_sweep may remove the connection from conns_ (swap with the last): walk backwards.
  for (std::size_t i = conns_.size(); i-- > 0;) {
    if (i < conns_.size()) conns_[i]->on_sweep(now);
  }
}

}  // namespace deploynet::server
