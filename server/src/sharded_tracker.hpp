#pragma once

// The core Tracker, split into shards by info hash so that I/O threads working on different
// swarms do not contend for one lock. Every swarm lives in exactly one shard.

#include <array>
#include <mutex>
#include <string>
#include <vector>

#include "deploynet/tracker.hpp"

namespace deploynet::server {

class ShardedTracker {
 public:
  explicit ShardedTracker(const TrackerConfig& config);

  AnnounceOutcome announce(const ConnRef& conn, const AnnounceRequest& req, std::int64_t now_ms,
                           std::vector<Outgoing>& out);
  bool route(const ConnRef& conn, const RouteRequest& req, std::vector<Outgoing>& out);
  // The scrape reply; a scrape of all swarms lists at most `max_entries` of them.
  std::string scrape(const ScrapeRequest& req, std::size_t max_entries);
  void leave(std::uint64_t conn_id, const InfoHash& info_hash, const PeerId& peer_id);

  struct Counts {
    std::size_t swarms = 0;
    std::size_t peers = 0;
  };
  Counts counts();

 private:
  static constexpr std::size_t kShards = 64;
  struct alignas(64) Shard {
    std::mutex mu;
    Tracker tracker;
  };
  Shard& shard_for(const InfoHash& ih);

  std::array<Shard, kShards> shards_;
  std::uint32_t interval_s_;
};

}  // namespace deploynet::server
