#pragma once

// Swarm membership and signaling relay: the behaviour of a WebTorrent tracker, as plain data
// and functions. The caller owns threads, sockets and the clock; every call takes `now_ms`
// and a random generator so tests are exact.

#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "deploynet/ids.hpp"
#include "deploynet/protocol.hpp"
#include "deploynet/ring.hpp"

namespace deploynet {

// One connection as the tracker sees it. Messages for it are addressed by its key: the
// tracker never holds a connection, only the caller maps keys to sockets. A local peer record
// exists exactly while its connection has not left (the caller calls `leave` for every swarm a
// closing connection joined), so a key in the tracker is always a live connection's.
struct ConnRef {
  std::uint64_t id = 0;          // non-zero, unique among the caller's open connections
  std::uint64_t net_prefix = 0;  // of the client's address (routing proximity); 0: unknown
};

enum class OutKind : std::uint8_t { kReply, kOffer, kAnswer };

// A message to deliver, typed: the caller serializes it (serialize()) once it has left any
// lock it holds, and before the request that produced it is gone (a relay views its bytes).
struct Outgoing {
  std::uint64_t to = 0;  // the connection's key (0: for another node, below)
  OutKind kind;
  OutMessage message;
  // Cluster mode: an offer or answer for a peer connected to another signaling node (`node`
  // non-zero, `to` 0), with what that node needs to deliver it and, for an offer, to
  // accept the answer that comes back.
  std::uint32_t node = 0;
  InfoHash info_hash{};
  PeerId to_peer{};
  PeerId from_peer{};
  OfferId offer_id{};
};

// Cluster mode: a change of this node's own membership, for the other nodes to mirror.
struct MemberEvent {
  bool joined = true;  // false: left
  InfoHash info_hash;
  PeerId peer_id;
  bool seeder = false;
  Proximity where;
};

struct TrackerConfig {
  std::uint32_t announce_interval_s = 120;  // what the reference server tells WebSocket peers
  std::uint32_t max_numwant = 82;           // peers one announce may reach (reference: 82)
  std::int64_t offer_ttl_ms = 120'000;      // an answer must match an offer younger than this
  std::uint32_t max_pending_offers = 16;    // offers awaiting an answer, per receiving peer
  RingConfig ring;                          // content routing within each swarm
  bool record_members = false;              // cluster mode: keep MemberEvents for the mirror
};

struct AnnounceOutcome {
  bool joined = false;  // the peer was added to the swarm by this announce
  bool left = false;    // the peer was removed from the swarm by this announce
  std::uint32_t offers_relayed = 0;
  std::uint32_t offers_targeted = 0;    // of those, sent to the peer the offer named
  std::uint32_t offers_unroutable = 0;  // named a peer not in the swarm (or the sender)
  bool answer_relayed = false;
  bool answer_dropped = false;  // no such peer, or no outstanding offer matching it
  std::string failure;          // non-empty: the announce was refused (reply already queued)
};

class Tracker {
 public:
  explicit Tracker(TrackerConfig config = {}) : config_(config) {}

  AnnounceOutcome announce(const ConnRef& conn, const AnnounceRequest& req, std::int64_t now_ms,
                           std::mt19937_64& rng, std::vector<Outgoing>& out);

  // Answers a route request (the responsible peers for each content id, bounded loads, the
  // asker excluded and its region first). Returns false, with a failure reply queued, when the
  // asker is not a member of the swarm on this connection.
  bool route(const ConnRef& conn, const RouteRequest& req, std::vector<Outgoing>& out);
  // The same at `now_ms`: the swarm's ring rebuilds no more often than `ring.rebuild_ms`
  // (RingConfig); the overload above always sees every membership change.
  bool route(const ConnRef& conn, const RouteRequest& req, std::int64_t now_ms,
             std::vector<Outgoing>& out);

  // Counts for each requested swarm (unknown ones as zeros); with an empty list, every swarm.
  void scrape(const ScrapeRequest& req, std::vector<ScrapeEntry>& out) const;

  // The connection closed: a `stopped` for this peer in this swarm, if it is still the
  // connection that owns that peer id there. Returns whether a peer was removed.
  bool leave(std::uint64_t conn_id, const InfoHash& info_hash, const PeerId& peer_id);

  // Cluster mode. Peers connected to other nodes are members like local ones (they count,
  // hold ring positions, receive offers) but their messages leave as Outgoing with `node` set.
  // A local peer always wins over a remote record of the same id.
  void remote_join(std::uint32_t node, const InfoHash& info_hash, const PeerId& peer_id,
                   bool seeder, const Proximity& where);
  void remote_leave(std::uint32_t node, const InfoHash& info_hash, const PeerId& peer_id);
  // Forgets every remote peer of `node` (node 0: of every node). Returns how many.
  std::size_t drop_node(std::uint32_t node);
  // An offer relayed by another node to a local peer: delivered and remembered so that its
  // answer is accepted. False when the peer is not here.
  bool deliver_remote_offer(const InfoHash& info_hash, const PeerId& from, const PeerId& to,
                            const OfferId& offer_id, std::string payload, std::int64_t now_ms,
                            std::vector<Outgoing>& out);
  // An answer relayed by another node (validated there) to a local peer.
  bool deliver_remote_answer(const InfoHash& info_hash, const PeerId& to, std::string payload,
                             std::vector<Outgoing>& out);
  // Local membership changes since the last call (with record_members).
  void take_member_events(std::vector<MemberEvent>& out);
  // Every local peer, as join events (a node re-publishing its state).
  void local_members(std::vector<MemberEvent>& out) const;

  // The swarm's routing ring (nullptr: no such swarm), for tools that ask it directly (the
  // simulator's "is this peer responsible?", which route() cannot say: it excludes the asker).
  Ring* ring(const InfoHash& info_hash);

  std::size_t swarm_count() const { return swarms_.size(); }
  std::size_t peer_count() const { return peers_; }
  std::size_t remote_peer_count() const { return remote_peers_; }
  const TrackerConfig& config() const { return config_; }

 private:
  struct PendingOffer {
    OfferId offer_id;
    PeerId from;
    std::int64_t expires_ms;
  };
  struct Peer {
    PeerId id;
    std::uint64_t conn_id;  // 0 for a peer connected to another node
    bool seeder;
    std::vector<PendingOffer> pending;  // offers delivered to this peer, awaiting its answer
    std::uint32_t node = 0;             // cluster mode: the node it is connected to (0: here)
  };
  struct Swarm {
    std::vector<Peer> peers;  // dense, so that random sampling is O(1) per pick
    std::unordered_map<PeerId, std::uint32_t, Id20Hash> index;
    std::uint32_t complete = 0;
    std::uint32_t incomplete = 0;
    Ring ring;
  };

  void remove_peer(Swarm& swarm, std::uint32_t pos);
  // Remembers an offer delivered to `to`, so that its answer is accepted (bounded, expiring).
  void remember_offer(Peer& to, const OfferId& offer_id, const PeerId& from, std::int64_t now_ms);
  // A peer connected to this node (not a remote record); nullptr if none.
  Peer* local_peer(const InfoHash& info_hash, const PeerId& id);
  void record(bool joined, const InfoHash& ih, const Peer& peer, const Swarm& swarm);
  Swarm& swarm_for(const InfoHash& ih);
  void relay_offers(Swarm& swarm, std::uint32_t self, const AnnounceRequest& req,
                    std::int64_t now_ms, std::mt19937_64& rng, std::vector<Outgoing>& out,
                    AnnounceOutcome& outcome);
  void relay_answer(Swarm& swarm, std::uint32_t self, const AnnounceRequest& req,
                    std::int64_t now_ms, std::vector<Outgoing>& out, AnnounceOutcome& outcome);

  TrackerConfig config_;
  std::unordered_map<InfoHash, Swarm, Id20Hash> swarms_;
  std::size_t peers_ = 0;
  std::size_t remote_peers_ = 0;
  std::vector<MemberEvent> events_;
};

}  // namespace deploynet
