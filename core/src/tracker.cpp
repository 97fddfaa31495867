#include "deploynet/tracker.hpp"

#include <algorithm>
#include <cassert>

namespace deploynet {

AnnounceOutcome Tracker::announce(const ConnRef& conn, const AnnounceRequest& req,
                                  std::int64_t now_ms, std::mt19937_64& rng,
                                  std::vector<Outgoing>& out) {
  AnnounceOutcome outcome;
  auto sit = swarms_.find(req.info_hash);

  if (req.event == AnnounceEvent::kStopped) {
    if (sit != swarms_.end()) {
      auto pit = sit->second.index.find(req.peer_id);
      if (pit != sit->second.index.end() && sit->second.peers[pit->second].conn_id == conn.id) {
        record(false, req.info_hash, sit->second.peers[pit->second], sit->second);
        remove_peer(sit->second, pit->second);
        outcome.left = true;
      }
    }
    std::uint32_t complete = 0, incomplete = 0;
    if (sit != swarms_.end()) {
      complete = sit->second.complete;
      incomplete = sit->second.incomplete;
      if (sit->second.peers.empty()) swarms_.erase(sit);
    }
    out.push_back(
        {conn.id, OutKind::kReply,
         AnnounceReplyOut{req.info_hash, complete, incomplete, config_.announce_interval_s}});
    return outcome;
  }

  Swarm& swarm = sit != swarms_.end() ? sit->second : swarm_for(req.info_hash);
  bool changed = false;  // membership the other nodes of a cluster must learn

  std::uint32_t self;
  if (auto pit = swarm.index.find(req.peer_id); pit != swarm.index.end()) {
    self = pit->second;
    Peer& peer = swarm.peers[self];
    const bool takeover = peer.conn_id != conn.id;
    if (takeover) {
      // Another connection here owns this peer id (it is live: a closed one has left): taking
      // it over would let anyone intercept a peer's offers and answers.
      // Another node's record: only its owner, who proves the id, moves it here (a peer that
      // failed over); anyone else would intercept that peer's offers across the cluster.
      if (peer.node == 0 || !req.peer_proved) {
        outcome.failure = "peer_id already in use in this swarm";
        out.push_back(
            {conn.id, OutKind::kReply, FailureOut{outcome.failure, "announce", req.info_hash}});
        return outcome;
      }
      // It was connected to another node and came here, with its proof: the record is this
      // connection's now.
      peer.conn_id = conn.id;
      peer.pending.clear();
      peer.node = 0;
      --remote_peers_;
      outcome.joined = true;
      changed = true;
    }
    // A new connection (its network) or a new region hint moves the peer on the ring; an
    // announce without a hint keeps the region it had. Plain re-announces skip the lookup.
    if (takeover || !req.region.empty()) {
      const Proximity* was = swarm.ring.where(req.peer_id);
      Proximity now{req.region.empty() && was ? was->region : req.region, conn.net_prefix};
      if (!was || was->region != now.region || was->net_prefix != now.net_prefix) {
        swarm.ring.add(req.peer_id, now);
        changed = true;
      }
    }
    if (!peer.seeder && (req.seeder() || req.event == AnnounceEvent::kCompleted)) {
      peer.seeder = true;
      ++swarm.complete;
      --swarm.incomplete;
      changed = true;
    }
  } else {
    self = static_cast<std::uint32_t>(swarm.peers.size());
    bool seeder = req.seeder() || req.event == AnnounceEvent::kCompleted;
    swarm.peers.push_back(Peer{req.peer_id, conn.id, seeder, {}});
    swarm.index.emplace(req.peer_id, self);
    swarm.ring.add(req.peer_id, {req.region, conn.net_prefix});
    ++(seeder ? swarm.complete : swarm.incomplete);
    ++peers_;
    outcome.joined = true;
    changed = true;
  }
  if (changed) record(true, req.info_hash, swarm.peers[self], swarm);

  // The reference server answers every announce except one that carries an answer.
  if (!req.answer) {
    out.push_back({conn.id, OutKind::kReply,
                   AnnounceReplyOut{req.info_hash, swarm.complete, swarm.incomplete,
                                    config_.announce_interval_s}});
  }
  if (!req.offers.empty()) relay_offers(swarm, self, req, now_ms, rng, out, outcome);
  if (req.answer) relay_answer(swarm, self, req, now_ms, out, outcome);
  return outcome;
}

void Tracker::relay_offers(Swarm& swarm, std::uint32_t self, const AnnounceRequest& req,
                           std::int64_t now_ms, std::mt19937_64& rng, std::vector<Outgoing>& out,
                           AnnounceOutcome& outcome) {
  std::uint32_t budget = config_.max_numwant;
  if (req.numwant) budget = std::min(budget, *req.numwant);

  auto deliver = [&](std::uint32_t pos, const OfferIn& offer) {
    Peer& to = swarm.peers[pos];
    ++outcome.offers_relayed;
    if (to.node != 0) {  // its node remembers the offer when it delivers it
      out.push_back({{},
                     OutKind::kOffer,
                     RelayOut{false, req.info_hash, req.peer_id, offer.offer_id, offer.offer},
                     to.node,
                     req.info_hash,
                     to.id,
                     req.peer_id,
                     offer.offer_id});
      return;
    }
    remember_offer(to, offer.offer_id, req.peer_id, now_ms);
    out.push_back({to.conn_id, OutKind::kOffer,
                   RelayOut{false, req.info_hash, req.peer_id, offer.offer_id, offer.offer}});
  };

  // DeployNet's targeted offers first: each to the peer it names, once per peer.
  std::vector<std::uint32_t> targeted;
  std::vector<const OfferIn*> untargeted;
  for (const auto& offer : req.offers) {
    if (!offer.to_peer_id) {
      untargeted.push_back(&offer);
      continue;
    }
    auto it = swarm.index.find(*offer.to_peer_id);
    if (it == swarm.index.end() || it->second == self || budget == 0 ||
        std::find(targeted.begin(), targeted.end(), it->second) != targeted.end()) {
      ++outcome.offers_unroutable;
      continue;
    }
    deliver(it->second, offer);
    targeted.push_back(it->second);
    ++outcome.offers_targeted;
    --budget;
  }

  auto others = static_cast<std::uint32_t>(swarm.peers.size() - 1 - targeted.size());
  std::uint32_t want =
      std::min<std::uint32_t>(static_cast<std::uint32_t>(untargeted.size()), budget);
  want = std::min(want, others);
  if (want == 0) return;

  // Floyd's sampling of `want` distinct peers among the others (indices with `self` and the
  // targeted peers skipped): O(want) picks, uniform, no allocation beyond the small result list.
  std::vector<std::uint32_t> skip = targeted;
  skip.push_back(self);
  std::sort(skip.begin(), skip.end());
  std::vector<std::uint32_t> chosen;
  chosen.reserve(want);
  for (std::uint32_t j = others - want; j < others; ++j) {
    std::uint32_t t = std::uniform_int_distribution<std::uint32_t>(0, j)(rng);
    if (std::find(chosen.begin(), chosen.end(), t) != chosen.end()) t = j;
    chosen.push_back(t);
  }
  std::shuffle(chosen.begin(), chosen.end(), rng);

  for (std::uint32_t i = 0; i < want; ++i) {
    // The chosen rank among the others, mapped past each skipped index at or below it.
    std::uint32_t pos = chosen[i];
    for (auto s : skip) {
      if (s <= pos) ++pos;
    }
    deliver(pos, *untargeted[i]);
  }
}

bool Tracker::route(const ConnRef& conn, const RouteRequest& req, std::vector<Outgoing>& out) {
  return route(conn, req, -1, out);
}

bool Tracker::route(const ConnRef& conn, const RouteRequest& req, std::int64_t now_ms,
                    std::vector<Outgoing>& out) {
  auto sit = swarms_.find(req.info_hash);
  bool member = false;
  if (sit != swarms_.end()) {
    auto pit = sit->second.index.find(req.peer_id);
    member = pit != sit->second.index.end() && sit->second.peers[pit->second].conn_id == conn.id;
  }
  if (!member) {
    out.push_back({conn.id, OutKind::kReply,
                   FailureOut{"route: announce in this swarm first", "route", req.info_hash}});
    return false;
  }
  Swarm& swarm = sit->second;
  Ring& ring = swarm.ring;
  ring.advance(now_ms);
  Proximity from;
  if (const Proximity* p = ring.where(req.peer_id)) from = *p;
  auto answers = ring.assign(req.content_ids, req.k, from, &req.peer_id);
  std::vector<RouteEntry> routes(req.content_ids.size());
  for (std::size_t i = 0; i < routes.size(); ++i) {
    routes[i].content_id = req.content_ids[i];
    routes[i].peers = std::move(answers[i]);
  }
  out.push_back({conn.id, OutKind::kReply,
                 RouteReplyOut{req.info_hash, std::move(routes),
                               static_cast<std::uint32_t>(swarm.peers.size())}});
  return true;
}

void Tracker::relay_answer(Swarm& swarm, std::uint32_t self, const AnnounceRequest& req,
                           std::int64_t now_ms, std::vector<Outgoing>& out,
                           AnnounceOutcome& outcome) {
  const AnswerIn& answer = *req.answer;
  auto tit = swarm.index.find(answer.to_peer_id);
  auto& pending = swarm.peers[self].pending;
  // Only an answer to an offer this peer really received, recently, from that peer is relayed:
  // otherwise anyone could push answers at arbitrary peers.
  auto it = std::find_if(pending.begin(), pending.end(), [&](const PendingOffer& p) {
    return p.offer_id == answer.offer_id && p.from == answer.to_peer_id;
  });
  if (tit == swarm.index.end() || it == pending.end() || it->expires_ms <= now_ms) {
    if (it != pending.end() && it->expires_ms <= now_ms) pending.erase(it);
    outcome.answer_dropped = true;
    return;
  }
  pending.erase(it);
  const Peer& to = swarm.peers[tit->second];
  out.push_back({to.conn_id, OutKind::kAnswer,
                 RelayOut{true, req.info_hash, req.peer_id, answer.offer_id, answer.answer},
                 to.node, req.info_hash, to.id, req.peer_id, answer.offer_id});
  outcome.answer_relayed = true;
}

void Tracker::remove_peer(Swarm& swarm, std::uint32_t pos) {
  assert(pos < swarm.peers.size());
  Peer& peer = swarm.peers[pos];
  --(peer.seeder ? swarm.complete : swarm.incomplete);
  if (peer.node != 0) --remote_peers_;
  swarm.index.erase(peer.id);
  swarm.ring.remove(peer.id);
  if (pos + 1 != swarm.peers.size()) {
    peer = std::move(swarm.peers.back());
    swarm.index[peer.id] = pos;
  }
  swarm.peers.pop_back();
  --peers_;
}

bool Tracker::leave(std::uint64_t conn_id, const InfoHash& info_hash, const PeerId& peer_id) {
  auto sit = swarms_.find(info_hash);
  if (conn_id == 0 || sit == swarms_.end()) return false;
  auto pit = sit->second.index.find(peer_id);
  if (pit == sit->second.index.end() || sit->second.peers[pit->second].conn_id != conn_id) {
    return false;
  }
  record(false, info_hash, sit->second.peers[pit->second], sit->second);
  remove_peer(sit->second, pit->second);
  if (sit->second.peers.empty()) swarms_.erase(sit);
  return true;
}

void Tracker::scrape(const ScrapeRequest& req, std::vector<ScrapeEntry>& out) const {
  auto entry = [](const InfoHash& ih, const Swarm* s) {
    ScrapeEntry e{ih, 0, 0, 0};
    if (s) {
      e.complete = s->complete;
      e.incomplete = s->incomplete;
      e.downloaded = s->complete;  // a lower bound, as in the reference server
    }
    return e;
  };
  if (req.info_hashes.empty()) {
    for (const auto& [ih, s] : swarms_) out.push_back(entry(ih, &s));
    return;
  }
  for (const auto& ih : req.info_hashes) {
    auto it = swarms_.find(ih);
    out.push_back(entry(ih, it == swarms_.end() ? nullptr : &it->second));
  }
}

Ring* Tracker::ring(const InfoHash& info_hash) {
  auto it = swarms_.find(info_hash);
  return it == swarms_.end() ? nullptr : &it->second.ring;
}

Tracker::Swarm& Tracker::swarm_for(const InfoHash& ih) {
  auto it = swarms_.find(ih);
  if (it == swarms_.end())
    it = swarms_.try_emplace(ih, Swarm{{}, {}, 0, 0, Ring(config_.ring)}).first;
  return it->second;
}

void Tracker::record(bool joined, const InfoHash& ih, const Peer& peer, const Swarm& swarm) {
  if (!config_.record_members || peer.node != 0) return;
  MemberEvent e{joined, ih, peer.id, peer.seeder, {}};
  if (joined) {
    if (const Proximity* p = swarm.ring.where(peer.id)) e.where = *p;
  }
  events_.push_back(std::move(e));
}

void Tracker::take_member_events(std::vector<MemberEvent>& out) {
  if (out.empty()) {
    out.swap(events_);
  } else {
    out.insert(out.end(), std::make_move_iterator(events_.begin()),
               std::make_move_iterator(events_.end()));
  }
  events_.clear();
}

void Tracker::local_members(std::vector<MemberEvent>& out) const {
  for (const auto& [ih, swarm] : swarms_) {
    for (const auto& peer : swarm.peers) {
      if (peer.node != 0) continue;
      MemberEvent e{true, ih, peer.id, peer.seeder, {}};
      if (const Proximity* p = swarm.ring.where(peer.id)) e.where = *p;
      out.push_back(std::move(e));
    }
  }
}

void Tracker::remote_join(std::uint32_t node, const InfoHash& info_hash, const PeerId& peer_id,
                          bool seeder, const Proximity& where) {
  if (node == 0) return;
  Swarm& swarm = swarm_for(info_hash);
  if (auto pit = swarm.index.find(peer_id); pit != swarm.index.end()) {
    Peer& peer = swarm.peers[pit->second];
    if (peer.node == 0) return;  // connected here: ours wins
    peer.node = node;
    peer.pending.clear();
    if (peer.seeder != seeder) {
      peer.seeder = seeder;
      if (seeder) {
        ++swarm.complete;
        --swarm.incomplete;
      } else {
        --swarm.complete;
        ++swarm.incomplete;
      }
    }
    const Proximity* was = swarm.ring.where(peer_id);
    if (!was || was->region != where.region || was->net_prefix != where.net_prefix) {
      swarm.ring.add(peer_id, where);
    }
    return;
  }
  auto self = static_cast<std::uint32_t>(swarm.peers.size());
  swarm.peers.push_back(Peer{peer_id, 0, seeder, {}, node});
  swarm.index.emplace(peer_id, self);
  swarm.ring.add(peer_id, where);
  ++(seeder ? swarm.complete : swarm.incomplete);
  ++peers_;
  ++remote_peers_;
}

void Tracker::remote_leave(std::uint32_t node, const InfoHash& info_hash, const PeerId& peer_id) {
  auto sit = swarms_.find(info_hash);
  if (sit == swarms_.end()) return;
  auto pit = sit->second.index.find(peer_id);
  if (pit == sit->second.index.end() || sit->second.peers[pit->second].node != node || node == 0) {
    return;
  }
  remove_peer(sit->second, pit->second);
  if (sit->second.peers.empty()) swarms_.erase(sit);
}

std::size_t Tracker::drop_node(std::uint32_t node) {
  std::size_t dropped = 0;
  for (auto sit = swarms_.begin(); sit != swarms_.end();) {
    auto& swarm = sit->second;
    for (std::uint32_t pos = 0; pos < swarm.peers.size();) {
      auto n = swarm.peers[pos].node;
      if (n != 0 && (node == 0 || n == node)) {
        remove_peer(swarm, pos);  // moves the last peer into `pos`
        ++dropped;
      } else {
        ++pos;
      }
    }
    if (swarm.peers.empty()) {
      sit = swarms_.erase(sit);
    } else {
      ++sit;
    }
  }
  return dropped;
}

void Tracker::remember_offer(Peer& to, const OfferId& offer_id, const PeerId& from,
                             std::int64_t now_ms) {
  auto& pending = to.pending;
  std::erase_if(pending, [&](const PendingOffer& p) { return p.expires_ms <= now_ms; });
  if (pending.size() >= config_.max_pending_offers) pending.erase(pending.begin());
  pending.push_back({offer_id, from, now_ms + config_.offer_ttl_ms});
}

Tracker::Peer* Tracker::local_peer(const InfoHash& info_hash, const PeerId& id) {
  auto sit = swarms_.find(info_hash);
  if (sit == swarms_.end()) return nullptr;
  auto pit = sit->second.index.find(id);
  if (pit == sit->second.index.end()) return nullptr;
  Peer& peer = sit->second.peers[pit->second];
  return peer.node == 0 ? &peer : nullptr;
}

bool Tracker::deliver_remote_offer(const InfoHash& info_hash, const PeerId& from, const PeerId& to,
                                   const OfferId& offer_id, std::string payload,
                                   std::int64_t now_ms, std::vector<Outgoing>& out) {
  Peer* peer = local_peer(info_hash, to);
  if (!peer) return false;
  remember_offer(*peer, offer_id, from, now_ms);
  out.push_back({peer->conn_id, OutKind::kOffer, SerializedOut{std::move(payload)}});
  return true;
}

bool Tracker::deliver_remote_answer(const InfoHash& info_hash, const PeerId& to,
                                    std::string payload, std::vector<Outgoing>& out) {
  const Peer* peer = local_peer(info_hash, to);
  if (!peer) return false;
  out.push_back({peer->conn_id, OutKind::kAnswer, SerializedOut{std::move(payload)}});
  return true;
}

}  // namespace deploynet
