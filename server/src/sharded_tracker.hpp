#pragma once

// The core Tracker, split into shards by info hash so that I/O threads working on different
// swarms do not contend for one lock. Every swarm lives in exactly one shard.

#include <array>
#include <functional>
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
  bool route(const ConnRef& conn, const RouteRequest& req, std::int64_t now_ms,
             std::vector<Outgoing>& out);
  // The scrape reply; a scrape of all swarms lists at most `max_entries` of them.
  std::string scrape(const ScrapeRequest& req, std::size_t max_entries);
  void leave(std::uint64_t conn_id, const InfoHash& info_hash, const PeerId& peer_id);

  // Cluster mode (see Tracker): the mirror of other nodes' peers, and this node's own changes
  // handed to `sink` under the swarm's lock, so that they leave in the order they happened.
  void set_member_sink(std::function<void(std::vector<MemberEvent>&&)> sink) {
    sink_ = std::move(sink);
  }
  void remote_join(std::uint32_t node, const InfoHash& ih, const PeerId& peer, bool seeder,
                   const Proximity& where);
  void remote_leave(std::uint32_t node, const InfoHash& ih, const PeerId& peer);
  std::size_t drop_node(std::uint32_t node);
  bool deliver_remote_offer(const InfoHash& ih, const PeerId& from, const PeerId& to,
                            const OfferId& offer_id, std::string payload, std::int64_t now_ms,
                            std::vector<Outgoing>& out);
  bool deliver_remote_answer(const InfoHash& ih, const PeerId& to, std::string payload,
                             std::vector<Outgoing>& out);
  void local_members(std::vector<MemberEvent>& out);

  struct Counts {
    std::size_t swarms = 0;
    std::size_t peers = 0;
    std::size_t remote_peers = 0;
  };
  Counts counts();

 private:
  static constexpr std::size_t kShards = 64;
  struct alignas(64) Shard {
    std::mutex mu;
    Tracker tracker;
  };
  Shard& shard_for(const InfoHash& ih);
  void drain_members(Shard& s);  // under s.mu

  std::array<Shard, kShards> shards_;
  std::uint32_t interval_s_;
  std::function<void(std::vector<MemberEvent>&&)> sink_;
};

}  // namespace deploynet::server
