#include "deploynet/tracker.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <map>
#include <set>

namespace deploynet {
namespace {

// A swarm of clients, each with a connection key, driving one Tracker.
class TrackerTest : public ::testing::Test {
 protected:
  ConnRef connect() { return ConnRef{++conns_}; }

  // The tracker's messages relay views of the request's bytes: serialized here, while the
  // request is alive, as the server does.
  AnnounceOutcome run(Tracker& t, const ConnRef& c, const AnnounceRequest& req,
                      std::vector<Outgoing>& out) {
    auto first = out.size();
    auto outcome = t.announce(c, req, now_ms_, rng_, out);
    for (auto i = first; i < out.size(); ++i)
      out[i].message = SerializedOut{serialize(out[i].message)};
    return outcome;
  }

  static PeerId peer(int n) { return PeerId::from_bytes("peer-" + std::string(15, 'a' + n)); }
  static OfferId offer_id(int n) { return OfferId::from_bytes("offr-" + std::string(15, 'a' + n)); }
  static InfoHash swarm(int n = 0) {
    return InfoHash::from_bytes("hash-" + std::string(15, 'a' + n));
  }

  AnnounceOutcome announce(const ConnRef& c, int p, AnnounceEvent ev, int offers = 0,
                           int swarm_n = 0) {
    AnnounceRequest req;
    req.info_hash = swarm(swarm_n);
    req.peer_id = peer(p);
    req.event = ev;
    for (int i = 0; i < offers; ++i) {
      req.offers.push_back(
          {offer_id(i), R"({"type":"offer","sdp":"o)" + std::to_string(i) + "\"}", std::nullopt});
    }
    return run(tracker_, c, req, out_);
  }

  AnnounceOutcome answer(const ConnRef& c, int p, int to, int oid) {
    AnnounceRequest req;
    req.info_hash = swarm();
    req.peer_id = peer(p);
    req.answer = AnswerIn{peer(to), offer_id(oid), R"({"type":"answer","sdp":"a"})"};
    return run(tracker_, c, req, out_);
  }

  // Messages delivered to a connection, parsed, and the outbox cleared of them.
  std::vector<rapidjson::Document> take(const ConnRef& c) {
    std::vector<rapidjson::Document> got;
    std::vector<Outgoing> rest;
    for (auto& o : out_) {
      if (o.to == c.id) {
        got.emplace_back().Parse(serialize(o.message).c_str());
      } else {
        rest.push_back(std::move(o));
      }
    }
    out_ = std::move(rest);
    return got;
  }

  Tracker tracker_;
  std::mt19937_64 rng_{42};
  std::int64_t now_ms_ = 1'000'000;
  std::vector<Outgoing> out_;
  std::uint64_t conns_ = 0;
};

TEST_F(TrackerTest, AnnounceRepliesWithCountsAndInterval) {
  auto a = connect();
  auto outcome = announce(a, 0, AnnounceEvent::kStarted);
  EXPECT_TRUE(outcome.joined);
  auto msgs = take(a);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0]["incomplete"].GetUint(), 1u);
  EXPECT_EQ(msgs[0]["complete"].GetUint(), 0u);
  EXPECT_EQ(msgs[0]["interval"].GetUint(), 120u);
  EXPECT_EQ(tracker_.peer_count(), 1u);
  EXPECT_EQ(tracker_.swarm_count(), 1u);
}

TEST_F(TrackerTest, OffersGoToDistinctOtherPeersNeverSelf) {
  std::vector<ConnRef> conns;
  for (int i = 0; i < 6; ++i) {
    conns.push_back(connect());
    announce(conns.back(), i, AnnounceEvent::kStarted);
  }
  out_.clear();
  auto outcome = announce(conns[0], 0, AnnounceEvent::kUpdate, 3);
  EXPECT_EQ(outcome.offers_relayed, 3u);
  EXPECT_EQ(take(conns[0]).size(), 1u);  // its own reply only
  std::set<std::string> offer_sdps;
  int receivers = 0;
  for (int i = 1; i < 6; ++i) {
    auto msgs = take(conns[i]);
    ASSERT_LE(msgs.size(), 1u) << "a peer got two offers from one announce";
    if (msgs.empty()) continue;
    ++receivers;
    EXPECT_EQ(std::string(msgs[0]["peer_id"].GetString()), peer(0).to_wire());
    offer_sdps.insert(msgs[0]["offer"]["sdp"].GetString());
  }
  EXPECT_EQ(receivers, 3);
  EXPECT_EQ(offer_sdps, (std::set<std::string>{"o0", "o1", "o2"}));
}

TEST_F(TrackerTest, OfferTargetsAreSpreadOverTheSwarm) {
  std::vector<ConnRef> conns;
  for (int i = 0; i < 10; ++i) {
    conns.push_back(connect());
    announce(conns.back(), i, AnnounceEvent::kStarted);
  }
  std::map<int, int> hits;
  for (int round = 0; round < 900; ++round) {
    out_.clear();
    announce(conns[0], 0, AnnounceEvent::kUpdate, 1);
    for (int i = 1; i < 10; ++i) hits[i] += static_cast<int>(take(conns[i]).size());
  }
  for (int i = 1; i < 10; ++i) {
    EXPECT_GT(hits[i], 60) << "peer " << i;  // expected 100 each
    EXPECT_LT(hits[i], 140) << "peer " << i;
  }
}

TEST_F(TrackerTest, NumwantAndCapLimitOffers) {
  std::vector<ConnRef> conns;
  for (int i = 0; i < 8; ++i) {
    conns.push_back(connect());
    announce(conns.back(), i, AnnounceEvent::kStarted);
  }
  AnnounceRequest req;
  req.info_hash = swarm();
  req.peer_id = peer(0);
  req.numwant = 2;
  for (int i = 0; i < 5; ++i) req.offers.push_back({offer_id(i), "{}", std::nullopt});
  EXPECT_EQ(run(tracker_, conns[0], req, out_).offers_relayed, 2u);

  Tracker capped(TrackerConfig{.max_numwant = 1, .ring = {}});
  auto c0 = connect();
  auto c1 = connect();
  auto c2 = connect();
  AnnounceRequest r1 = req;
  r1.peer_id = peer(1);
  r1.offers.clear();
  run(capped, c1, r1, out_);
  r1.peer_id = peer(2);
  run(capped, c2, r1, out_);
  req.numwant.reset();
  EXPECT_EQ(run(capped, c0, req, out_).offers_relayed, 1u);
}

TEST_F(TrackerTest, AnswerIsRelayedOnlyForAnOutstandingOffer) {
  auto a = connect();
  auto b = connect();
  auto mallory = connect();
  announce(a, 0, AnnounceEvent::kStarted);
  announce(b, 1, AnnounceEvent::kStarted);
  announce(mallory, 2, AnnounceEvent::kStarted);
  out_.clear();

  // Mallory answers an offer nobody made to her.
  EXPECT_TRUE(answer(mallory, 2, 0, 0).answer_dropped);
  EXPECT_TRUE(take(a).empty());

  // B offers to one peer; whoever got it answers, and only B receives the answer, once.
  AnnounceRequest req;
  req.info_hash = swarm();
  req.peer_id = peer(1);
  req.offers.push_back({offer_id(7), R"({"type":"offer","sdp":"x"})", std::nullopt});
  run(tracker_, b, req, out_);
  take(b);
  bool a_got = !take(a).empty();
  int receiver = a_got ? 0 : 2;
  ConnRef recv_conn = a_got ? a : mallory;
  ConnRef other = a_got ? mallory : a;
  int other_peer = a_got ? 2 : 0;
  out_.clear();

  EXPECT_TRUE(answer(other, other_peer, 1, 7).answer_dropped);  // did not receive it
  EXPECT_TRUE(take(b).empty());
  auto ok = answer(recv_conn, receiver, 1, 7);
  EXPECT_TRUE(ok.answer_relayed);
  auto msgs = take(b);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_STREQ(msgs[0]["answer"]["type"].GetString(), "answer");
  EXPECT_EQ(std::string(msgs[0]["peer_id"].GetString()), peer(receiver).to_wire());
  EXPECT_EQ(std::string(msgs[0]["offer_id"].GetString()), offer_id(7).to_wire());
  EXPECT_TRUE(take(recv_conn).empty());  // no reply to an answer, as the reference server
  EXPECT_TRUE(answer(recv_conn, receiver, 1, 7).answer_dropped);  // a replay is dropped
}

TEST_F(TrackerTest, AnswerAfterTheOfferExpiredIsDropped) {
  auto a = connect();
  auto b = connect();
  announce(a, 0, AnnounceEvent::kStarted);
  announce(b, 1, AnnounceEvent::kStarted, 1);  // offer 0 goes to A, the only other peer
  now_ms_ += tracker_.config().offer_ttl_ms;
  out_.clear();
  EXPECT_TRUE(answer(a, 0, 1, 0).answer_dropped);
  EXPECT_TRUE(take(b).empty());
}

TEST_F(TrackerTest, StoppedAndLeaveRemovePeersAndEmptySwarms) {
  auto a = connect();
  auto b = connect();
  announce(a, 0, AnnounceEvent::kStarted);
  announce(b, 1, AnnounceEvent::kCompleted);
  std::vector<ScrapeEntry> s;
  tracker_.scrape({}, s);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].complete, 1u);
  EXPECT_EQ(s[0].incomplete, 1u);

  EXPECT_TRUE(announce(a, 0, AnnounceEvent::kStopped).left);
  EXPECT_EQ(tracker_.peer_count(), 1u);
  EXPECT_FALSE(tracker_.leave(a.id, swarm(), peer(1)));  // not A's peer id
  EXPECT_TRUE(tracker_.leave(b.id, swarm(), peer(1)));
  EXPECT_EQ(tracker_.peer_count(), 0u);
  EXPECT_EQ(tracker_.swarm_count(), 0u);
}

TEST_F(TrackerTest, CompletedMovesALeecherToSeeders) {
  auto a = connect();
  announce(a, 0, AnnounceEvent::kStarted);
  announce(a, 0, AnnounceEvent::kCompleted);
  announce(a, 0, AnnounceEvent::kCompleted);  // twice is still one seeder
  std::vector<ScrapeEntry> s;
  tracker_.scrape(ScrapeRequest{{swarm(), swarm(5)}}, s);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].complete, 1u);
  EXPECT_EQ(s[0].incomplete, 0u);
  EXPECT_EQ(s[1].complete + s[1].incomplete, 0u);  // unknown swarm: zeros
}

TEST_F(TrackerTest, APeerIdOwnedByALiveConnectionCannotBeTakenOver) {
  auto a = connect();
  auto thief = connect();
  announce(a, 0, AnnounceEvent::kStarted);
  auto outcome = announce(thief, 0, AnnounceEvent::kStarted);
  EXPECT_FALSE(outcome.failure.empty());
  auto msgs = take(thief);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_TRUE(msgs[0].HasMember("failure reason"));
  // A stopped from the thief does not remove A either.
  EXPECT_FALSE(announce(thief, 0, AnnounceEvent::kStopped).left);
  EXPECT_EQ(tracker_.peer_count(), 1u);

  // Once A's connection has left (closing, it leaves every swarm it joined), a new connection
  // may reuse the id (a page reload), and only that connection can remove it.
  EXPECT_TRUE(tracker_.leave(a.id, swarm(), peer(0)));
  auto again = announce(thief, 0, AnnounceEvent::kStarted);
  EXPECT_TRUE(again.failure.empty());
  EXPECT_TRUE(again.joined);
  EXPECT_FALSE(tracker_.leave(a.id, swarm(), peer(0)));
  EXPECT_TRUE(tracker_.leave(thief.id, swarm(), peer(0)));
}

TEST_F(TrackerTest, PendingOffersPerPeerAreBounded) {
  auto a = connect();
  auto b = connect();
  announce(a, 0, AnnounceEvent::kStarted);
  announce(b, 1, AnnounceEvent::kStarted);
  // B sends A far more offers than A can hold; only the newest are answerable.
  for (int i = 0; i < 20; ++i) {
    AnnounceRequest req;
    req.info_hash = swarm();
    req.peer_id = peer(1);
    req.offers.push_back({offer_id(i), "{}", std::nullopt});
    run(tracker_, b, req, out_);
  }
  EXPECT_TRUE(answer(a, 0, 1, 0).answer_dropped);
  EXPECT_TRUE(answer(a, 0, 1, 19).answer_relayed);
}

// DeployNet's targeted offers: each goes to the peer it names; the untargeted ones to random
// other peers, never to a targeted one again, never to the sender.
TEST_F(TrackerTest, TargetedOffersGoToTheNamedPeer) {
  std::vector<ConnRef> conns;
  for (int i = 0; i < 6; ++i) {
    conns.push_back(connect());
    announce(conns.back(), i, AnnounceEvent::kStarted);
  }
  out_.clear();
  for (int round = 0; round < 50; ++round) {
    AnnounceRequest req;
    req.info_hash = swarm();
    req.peer_id = peer(0);
    req.offers.push_back({offer_id(1), R"({"type":"offer","sdp":"t"})", peer(4)});
    req.offers.push_back({offer_id(2), R"({"type":"offer","sdp":"r"})", std::nullopt});
    req.offers.push_back({offer_id(3), R"({"type":"offer","sdp":"r"})", std::nullopt});
    req.offers.push_back({offer_id(4), R"({"type":"offer","sdp":"x"})", peer(0)});   // self
    req.offers.push_back({offer_id(5), R"({"type":"offer","sdp":"x"})", peer(19)});  // absent
    req.offers.push_back({offer_id(6), R"({"type":"offer","sdp":"x"})", peer(4)});   // again
    auto outcome = run(tracker_, conns[0], req, out_);
    EXPECT_EQ(outcome.offers_relayed, 3u);
    EXPECT_EQ(outcome.offers_targeted, 1u);
    EXPECT_EQ(outcome.offers_unroutable, 3u);
    auto to4 = take(conns[4]);
    ASSERT_EQ(to4.size(), 1u);
    EXPECT_EQ(std::string(to4[0]["offer_id"].GetString()), offer_id(1).to_wire());
    EXPECT_TRUE(take(conns[0]).size() == 1);  // the announce reply only
    int others = 0;
    for (int i : {1, 2, 3, 5}) {
      auto got = take(conns[i]);
      EXPECT_LE(got.size(), 1u);
      others += static_cast<int>(got.size());
    }
    EXPECT_EQ(others, 2);
  }
}

TEST_F(TrackerTest, RouteNamesResponsiblePeersExcludingTheAsker) {
  std::vector<ConnRef> conns;
  for (int i = 0; i < 8; ++i) {
    conns.push_back(connect());
    announce(conns.back(), i, AnnounceEvent::kStarted);
  }
  out_.clear();
  RouteRequest req;
  req.info_hash = swarm();
  req.peer_id = peer(2);
  req.k = 3;
  req.content_ids.resize(4);
  for (std::size_t i = 0; i < 4; ++i)
    req.content_ids[i].fill(static_cast<std::uint8_t>(0x11 * (i + 1)));
  ASSERT_TRUE(tracker_.route(conns[2], req, out_));
  auto msgs = take(conns[2]);
  ASSERT_EQ(msgs.size(), 1u);
  auto& m = msgs[0];
  EXPECT_STREQ(m["action"].GetString(), "route");
  EXPECT_EQ(m["peers"].GetUint(), 8u);
  ASSERT_EQ(m["routes"].Size(), 4u);

  // The same answer as a ring of the other members gives.
  Ring ring;
  for (int i = 0; i < 8; ++i) ring.add(peer(i));
  auto expect = ring.assign(req.content_ids, 3, {}, &req.peer_id);
  for (std::size_t i = 0; i < 4; ++i) {
    const auto& r = m["routes"][static_cast<rapidjson::SizeType>(i)];
    EXPECT_EQ(std::string(r["content_id"].GetString()), std::string(64, "123456789abcdef"[i]));
    ASSERT_EQ(r["peers"].Size(), 3u);
    for (rapidjson::SizeType j = 0; j < 3; ++j) {
      EXPECT_EQ(std::string(r["peers"][j].GetString()), expect[i][j].to_wire());
      EXPECT_NE(std::string(r["peers"][j].GetString()), peer(2).to_wire());
    }
  }

  // A peer that left is no longer named.
  tracker_.leave(conns[5].id, swarm(), peer(5));
  ASSERT_TRUE(tracker_.route(conns[2], req, out_));
  msgs = take(conns[2]);
  for (auto& r : msgs[0]["routes"].GetArray()) {
    for (auto& p : r["peers"].GetArray()) EXPECT_NE(std::string(p.GetString()), peer(5).to_wire());
  }
}

TEST_F(TrackerTest, RouteRefusesAnAskerOutsideTheSwarm) {
  auto a = connect(), b = connect();
  announce(a, 0, AnnounceEvent::kStarted);
  out_.clear();
  RouteRequest req;
  req.info_hash = swarm();
  req.peer_id = peer(0);  // a's peer id, asked from b's connection
  req.content_ids.resize(1);
  EXPECT_FALSE(tracker_.route(b, req, out_));
  auto msgs = take(b);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_TRUE(msgs[0].HasMember("failure reason"));
  EXPECT_STREQ(msgs[0]["action"].GetString(), "route");
  req.info_hash = swarm(3);
  EXPECT_FALSE(tracker_.route(a, req, out_));
}

TEST_F(TrackerTest, RegionHintsRouteWithinTheRegionFirst) {
  std::vector<ConnRef> conns;
  for (int i = 0; i < 12; ++i) {
    conns.push_back(connect());
    AnnounceRequest req;
    req.info_hash = swarm();
    req.peer_id = peer(i);
    req.event = AnnounceEvent::kStarted;
    req.region = i < 3 ? "eu" : "us";
    run(tracker_, conns.back(), req, out_);
  }
  out_.clear();
  RouteRequest req;
  req.info_hash = swarm();
  req.peer_id = peer(0);
  req.k = 2;
  req.content_ids.resize(20);
  for (std::size_t i = 0; i < 20; ++i) req.content_ids[i].fill(static_cast<std::uint8_t>(i * 13));
  ASSERT_TRUE(tracker_.route(conns[0], req, out_));
  auto msgs = take(conns[0]);
  for (auto& r : msgs[0]["routes"].GetArray()) {
    std::set<std::string> got{r["peers"][0].GetString(), r["peers"][1].GetString()};
    EXPECT_EQ(got, (std::set<std::string>{peer(1).to_wire(), peer(2).to_wire()}));
  }
}

// Cluster mode: peers of other nodes are members; what is for them leaves addressed to their node.
TEST_F(TrackerTest, RemotePeersCountReceiveOffersThroughTheirNodeAndAnswerBack) {
  TrackerConfig cfg;
  cfg.record_members = true;
  tracker_ = Tracker(cfg);
  tracker_.remote_join(7, swarm(), peer(1), true, {"eu", 42});
  auto a = connect();
  announce(a, 0, AnnounceEvent::kStarted, 1);
  auto reply = take(a);
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_EQ(reply[0]["complete"].GetUint(), 1u);    // the remote seeder counts
  EXPECT_EQ(reply[0]["incomplete"].GetUint(), 1u);  // and so does the announcer
  ASSERT_EQ(out_.size(), 1u);                       // the offer, for node 7
  EXPECT_EQ(out_[0].node, 7u);
  EXPECT_EQ(out_[0].to, 0u);
  EXPECT_EQ(out_[0].to_peer, peer(1));
  EXPECT_EQ(out_[0].from_peer, peer(0));
  EXPECT_EQ(out_[0].offer_id, offer_id(0));
  out_.clear();

  // The local join was recorded for the other nodes, once.
  std::vector<MemberEvent> events;
  tracker_.take_member_events(events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].joined);
  EXPECT_EQ(events[0].peer_id, peer(0));

  // Node 7 relays its peer's offer to our peer: delivered, and its answer goes back to node 7.
  ASSERT_TRUE(tracker_.deliver_remote_offer(swarm(), peer(1), peer(0), offer_id(5), "offer-bytes",
                                            now_ms_, out_));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(serialize(out_[0].message), "offer-bytes");
  out_.clear();
  auto outcome = answer(a, 0, 1, 5);
  EXPECT_TRUE(outcome.answer_relayed);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].node, 7u);
  EXPECT_EQ(out_[0].to_peer, peer(1));
  out_.clear();
  // An answer to an offer never delivered here is still refused.
  EXPECT_TRUE(answer(a, 0, 1, 6).answer_dropped);
  // Nothing is delivered for a remote or absent peer.
  EXPECT_FALSE(
      tracker_.deliver_remote_offer(swarm(), peer(0), peer(1), offer_id(1), "x", now_ms_, out_));
  EXPECT_FALSE(tracker_.deliver_remote_answer(swarm(), peer(3), "x", out_));
  EXPECT_TRUE(out_.empty());
}

TEST_F(TrackerTest, ANodeLeavingTakesOnlyItsPeersAndLocalPeersWin) {
  tracker_.remote_join(7, swarm(), peer(1), false, {});
  tracker_.remote_join(7, swarm(1), peer(2), false, {});
  tracker_.remote_join(8, swarm(), peer(3), false, {});
  auto a = connect();
  announce(a, 0, AnnounceEvent::kStarted);
  // A remote record of a peer connected here is ignored.
  tracker_.remote_join(8, swarm(), peer(0), true, {});
  EXPECT_EQ(tracker_.peer_count(), 4u);
  EXPECT_EQ(tracker_.remote_peer_count(), 3u);
  // Another node's peer id is not taken without the proof the server checked (anyone could
  // then intercept that peer's offers across the cluster)...
  auto b = connect();
  auto hijack = announce(b, 3, AnnounceEvent::kStarted);
  EXPECT_EQ(hijack.failure, "peer_id already in use in this swarm");
  EXPECT_FALSE(hijack.joined);
  EXPECT_EQ(tracker_.remote_peer_count(), 3u);
  // ...and with it, the peer that reconnects here from another node takes its record over:
  // joined on this connection (which leaves it when it closes).
  AnnounceRequest proved;
  proved.info_hash = swarm();
  proved.peer_id = peer(3);
  proved.event = AnnounceEvent::kStarted;
  proved.peer_proved = true;
  auto moved = run(tracker_, b, proved, out_);
  EXPECT_TRUE(moved.failure.empty());
  EXPECT_TRUE(moved.joined);
  EXPECT_EQ(tracker_.remote_peer_count(), 2u);
  EXPECT_EQ(tracker_.drop_node(7), 2u);
  EXPECT_EQ(tracker_.swarm_count(), 1u);  // swarm(1) had only node 7's peer
  EXPECT_EQ(tracker_.peer_count(), 2u);
  tracker_.remote_join(9, swarm(), peer(4), false, {});
  tracker_.remote_leave(8, swarm(), peer(4));  // not node 8's: stays
  EXPECT_EQ(tracker_.peer_count(), 3u);
  tracker_.remote_leave(9, swarm(), peer(4));
  EXPECT_EQ(tracker_.peer_count(), 2u);
  tracker_.remote_join(9, swarm(), peer(4), false, {});
  EXPECT_EQ(tracker_.drop_node(0), 1u);  // every remote peer
  EXPECT_EQ(tracker_.remote_peer_count(), 0u);
  std::vector<MemberEvent> all;
  tracker_.local_members(all);
  EXPECT_EQ(all.size(), 2u);
}

TEST_F(TrackerTest, RouteAnswersAreTheSameWithRemotePeers) {
  // Node A holds peer 0 and mirrors 1..3; node B holds 1..3 and mirrors 0: same ring.
  Tracker b_side;
  auto a = connect();
  announce(a, 0, AnnounceEvent::kStarted);
  std::vector<ConnRef> bs;
  std::vector<Outgoing> b_out;
  for (int p = 1; p <= 3; ++p) {
    tracker_.remote_join(2, swarm(), peer(p), false, {});
    bs.push_back(connect());
    AnnounceRequest req;
    req.info_hash = swarm();
    req.peer_id = peer(p);
    run(b_side, bs.back(), req, b_out);
  }
  b_side.remote_join(1, swarm(), peer(0), false, {});
  RouteRequest rq;
  rq.info_hash = swarm();
  for (int i = 0; i < 20; ++i) {
    std::array<std::uint8_t, 32> id{};
    id[0] = static_cast<std::uint8_t>(i * 13);
    id[31] = static_cast<std::uint8_t>(i);
    rq.content_ids.push_back(id);
  }
  rq.k = 8;  // everyone but the asker, in ring order
  rq.peer_id = peer(0);
  ASSERT_TRUE(tracker_.route(a, rq, out_));
  std::string from_a = serialize(out_.back().message);
  rq.peer_id = peer(1);
  b_out.clear();
  ASSERT_TRUE(b_side.route(bs[0], rq, b_out));
  // Both see the one cluster-wide swarm and ring: the same order of the peers neither asked.
  rapidjson::Document da, db;
  da.Parse(from_a.c_str());
  db.Parse(serialize(b_out.back().message).c_str());
  ASSERT_TRUE(da.IsObject() && db.IsObject());
  EXPECT_EQ(da["peers"].GetUint(), 4u);
  EXPECT_EQ(db["peers"].GetUint(), 4u);
  auto others = [](const rapidjson::Value& route, const PeerId& skip) {
    std::vector<std::string> names;
    for (const auto& p : route["peers"].GetArray()) {
      std::string wire(p.GetString(), p.GetStringLength());
      if (wire != skip.to_wire()) names.push_back(wire);
    }
    return names;
  };
  ASSERT_EQ(da["routes"].Size(), 20u);
  for (rapidjson::SizeType i = 0; i < 20; ++i) {
    auto from_a_side = others(da["routes"][i], peer(1));
    EXPECT_EQ(from_a_side.size(), 2u);
    EXPECT_EQ(from_a_side, others(db["routes"][i], peer(0))) << "content " << i;
  }
}
}  // namespace
}  // namespace deploynet
