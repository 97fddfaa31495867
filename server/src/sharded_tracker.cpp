#include "sharded_tracker.hpp"

#include <random>

namespace deploynet::server {
namespace {
std::mt19937_64& thread_rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}
}  // namespace

ShardedTracker::ShardedTracker(const TrackerConfig& config)
    : interval_s_(config.announce_interval_s) {
  for (auto& s : shards_) s.tracker = Tracker(config);
}

ShardedTracker::Shard& ShardedTracker::shard_for(const InfoHash& ih) {
  return shards_[Id20Hash{}(ih) % kShards];
}

AnnounceOutcome ShardedTracker::announce(const ConnRef& conn, const AnnounceRequest& req,
                                         std::int64_t now_ms, std::vector<Outgoing>& out) {
  auto& s = shard_for(req.info_hash);
  std::lock_guard lock(s.mu);
  auto outcome = s.tracker.announce(conn, req, now_ms, thread_rng(), out);
  drain_members(s);
  return outcome;
}

void ShardedTracker::drain_members(Shard& s) {
  if (!sink_) return;
  std::vector<MemberEvent> events;
  s.tracker.take_member_events(events);
  if (!events.empty()) sink_(std::move(events));
}

bool ShardedTracker::route(const ConnRef& conn, const RouteRequest& req, std::int64_t now_ms,
                           std::vector<Outgoing>& out) {
  Shard& s = shard_for(req.info_hash);
  std::lock_guard lock(s.mu);
  return s.tracker.route(conn, req, now_ms, out);
}

std::string ShardedTracker::scrape(const ScrapeRequest& req, std::size_t max_entries) {
  std::vector<ScrapeEntry> entries;
  if (req.info_hashes.empty()) {
    for (auto& s : shards_) {
      std::lock_guard lock(s.mu);
      s.tracker.scrape(req, entries);
      if (entries.size() >= max_entries) break;
    }
    if (entries.size() > max_entries) entries.resize(max_entries);
  } else {
    for (const auto& ih : req.info_hashes) {
      auto& s = shard_for(ih);
      std::lock_guard lock(s.mu);
      s.tracker.scrape(ScrapeRequest{{ih}}, entries);
    }
  }
  return serialize_scrape_reply(entries, interval_s_);
}

void ShardedTracker::leave(std::uint64_t conn_id, const InfoHash& info_hash,
                           const PeerId& peer_id) {
  auto& s = shard_for(info_hash);
  std::lock_guard lock(s.mu);
  s.tracker.leave(conn_id, info_hash, peer_id);
  drain_members(s);
}

void ShardedTracker::remote_join(std::uint32_t node, const InfoHash& ih, const PeerId& peer,
                                 bool seeder, const Proximity& where) {
  auto& s = shard_for(ih);
  std::lock_guard lock(s.mu);
  s.tracker.remote_join(node, ih, peer, seeder, where);
}

void ShardedTracker::remote_leave(std::uint32_t node, const InfoHash& ih, const PeerId& peer) {
  auto& s = shard_for(ih);
  std::lock_guard lock(s.mu);
  s.tracker.remote_leave(node, ih, peer);
}

std::size_t ShardedTracker::drop_node(std::uint32_t node) {
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.tracker.drop_node(node);
  }
  return n;
}

bool ShardedTracker::deliver_remote_offer(const InfoHash& ih, const PeerId& from, const PeerId& to,
                                          const OfferId& offer_id, std::string payload,
                                          std::int64_t now_ms, std::vector<Outgoing>& out) {
  auto& s = shard_for(ih);
  std::lock_guard lock(s.mu);
  return s.tracker.deliver_remote_offer(ih, from, to, offer_id, std::move(payload), now_ms, out);
}

bool ShardedTracker::deliver_remote_answer(const InfoHash& ih, const PeerId& to,
                                           std::string payload, std::vector<Outgoing>& out) {
  auto& s = shard_for(ih);
  std::lock_guard lock(s.mu);
  return s.tracker.deliver_remote_answer(ih, to, std::move(payload), out);
}

void ShardedTracker::local_members(std::vector<MemberEvent>& out) {
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    s.tracker.local_members(out);
  }
}

ShardedTracker::Counts ShardedTracker::counts() {
  Counts c;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    c.swarms += s.tracker.swarm_count();
    c.peers += s.tracker.peer_count();
    c.remote_peers += s.tracker.remote_peer_count();
  }
  return c;
}

}  // namespace deploynet::server
