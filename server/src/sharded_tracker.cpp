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
  return s.tracker.announce(conn, req, now_ms, thread_rng(), out);
}

bool ShardedTracker::route(const ConnRef& conn, const RouteRequest& req,
                           std::vector<Outgoing>& out) {
  Shard& s = shard_for(req.info_hash);
  std::lock_guard lock(s.mu);
  return s.tracker.route(conn, req, out);
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
}

ShardedTracker::Counts ShardedTracker::counts() {
  Counts c;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    c.swarms += s.tracker.swarm_count();
    c.peers += s.tracker.peer_count();
  }
  return c;
}

}  // namespace deploynet::server
