#include "deploynet/ring.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "ring_vectors.hpp"

namespace deploynet {
namespace {

PeerId peer(int n) {
  std::string s = "-DN0001-" + std::to_string(1000000 + n) + "xxxxx";
  return PeerId::from_bytes(s.substr(0, 20));
}

ContentId key(std::mt19937_64& rng) {
  ContentId k;
  for (auto& b : k) b = static_cast<std::uint8_t>(rng());
  return k;
}

std::vector<ContentId> keys(int n, std::uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  std::vector<ContentId> out;
  for (int i = 0; i < n; ++i) out.push_back(key(rng));
  return out;
}

TEST(Ring, KeyPositionIsTheFirstEightBytesBigEndian) {
  ContentId k{};
  k[0] = 0x01;
  k[7] = 0xFF;
  k[8] = 0xEE;  // ignored
  EXPECT_EQ(ring_key_position(k), 0x01000000000000FFull);
}

TEST(Ring, EmptyRingAnswersNobody) {
  Ring ring;
  auto ks = keys(1);
  EXPECT_TRUE(ring.route(ks[0], 3).empty());
  auto a = ring.assign(ks, 2);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_TRUE(a[0].empty());
}

TEST(Ring, AnswersKDistinctPeersAndNeverTheExcludedOne) {
  Ring ring;
  for (int i = 0; i < 10; ++i) ring.add(peer(i));
  for (const auto& k : keys(200)) {
    PeerId me = peer(3);
    auto got = ring.route(k, 4, {}, &me);
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(std::set<PeerId>(got.begin(), got.end()).size(), 4u);
    EXPECT_EQ(std::count(got.begin(), got.end(), me), 0);
  }
  // More than there are: every other peer once.
  PeerId me = peer(0);
  EXPECT_EQ(ring.route(keys(1)[0], 50, {}, &me).size(), 9u);
}

TEST(Ring, AnswersDoNotDependOnJoinOrder) {
  Ring a, b;
  std::vector<int> order(300);
  for (int i = 0; i < 300; ++i) order[i] = i;
  for (int i : order) a.add(peer(i));
  std::shuffle(order.begin(), order.end(), std::mt19937_64(1));
  for (int i : order) b.add(peer(i));
  // Churn on one side only, ending in the same membership.
  for (int i = 300; i < 320; ++i) b.add(peer(i));
  for (int i = 300; i < 320; ++i) b.remove(peer(i));
  for (const auto& k : keys(500)) EXPECT_EQ(a.route(k, 3), b.route(k, 3));
  auto ks = keys(100);
  EXPECT_EQ(a.assign(ks, 2), b.assign(ks, 2));
}

// The consistent-hashing property, exactly: a join moves keys only to the new peer, a leave
// only from the leaving one; and about 1/n of them.
TEST(Ring, JoinAndLeaveMoveOnlyTheirOwnShare) {
  const int n = 100;
  Ring ring;
  for (int i = 0; i < n; ++i) ring.add(peer(i));
  auto ks = keys(20000);
  std::vector<PeerId> before;
  for (const auto& k : ks) before.push_back(ring.route(k, 1)[0]);

  ring.add(peer(n));
  int moved = 0;
  for (std::size_t i = 0; i < ks.size(); ++i) {
    PeerId now = ring.route(ks[i], 1)[0];
    if (now != before[i]) {
      ++moved;
      EXPECT_EQ(now, peer(n));
    }
  }
  double share = static_cast<double>(moved) / ks.size();
  EXPECT_GT(share, 0.2 / (n + 1));
  EXPECT_LT(share, 3.0 / (n + 1));

  ring.remove(peer(n));
  for (std::size_t i = 0; i < ks.size(); ++i) EXPECT_EQ(ring.route(ks[i], 1)[0], before[i]);

  ring.remove(peer(17));
  for (std::size_t i = 0; i < ks.size(); ++i) {
    if (before[i] != peer(17)) {
      EXPECT_EQ(ring.route(ks[i], 1)[0], before[i]);
    }
  }
}

TEST(Ring, ReusedSlotsCarryTheNewPeersPoints) {
  Ring fresh, reused;
  for (int i = 0; i < 20; ++i) reused.add(peer(i));
  reused.route(keys(1)[0], 1);  // builds the ring
  reused.remove(peer(5));
  reused.add(peer(99));  // may take peer 5's slot
  reused.remove(peer(6));
  reused.add(peer(6));  // leave and rejoin before the next query
  for (int i = 0; i < 20; ++i) fresh.add(peer(i == 5 ? 99 : i));
  for (const auto& k : keys(300)) EXPECT_EQ(reused.route(k, 2), fresh.route(k, 2));
}

TEST(Ring, BoundedLoadsCapEveryPeer) {
  for (std::uint32_t permille : {1000u, 1250u, 1500u}) {
    RingConfig cfg;
    cfg.load_permille = permille;
    cfg.vnodes = 4;  // few points: plain consistent hashing is badly unbalanced
    Ring ring(cfg);
    const int n = 50, m = 1000, k = 2;
    for (int i = 0; i < n; ++i) ring.add(peer(i));
    auto ks = keys(m);
    auto got = ring.assign(ks, k);
    std::map<PeerId, int> load;
    for (const auto& peers : got) {
      ASSERT_EQ(peers.size(), static_cast<std::size_t>(k));
      EXPECT_NE(peers[0], peers[1]);
      for (const auto& p : peers) ++load[p];
    }
    // max/average <= c: floor(c * m * k / n), here never below the average's ceiling.
    int cap = static_cast<int>(static_cast<std::uint64_t>(permille) * m * k / (1000 * n));
    int max = 0;
    for (auto& [p, l] : load) max = std::max(max, l);
    EXPECT_LE(max, cap) << "c=" << permille / 1000.0;

    // Without the bound the same ring is far less even.
    std::map<PeerId, int> plain;
    for (const auto& k2 : ks) {
      for (const auto& p : ring.route(k2, k)) ++plain[p];
    }
    int plain_max = 0;
    for (auto& [p, l] : plain) plain_max = std::max(plain_max, l);
    EXPECT_GT(plain_max, cap);
  }
}

TEST(Ring, AssignDependsOnTheSetOfKeysNotTheirOrder) {
  Ring ring;
  for (int i = 0; i < 30; ++i) ring.add(peer(i));
  auto ks = keys(120);
  auto a = ring.assign(ks, 2);
  auto rev = ks;
  std::reverse(rev.begin(), rev.end());
  auto b = ring.assign(rev, 2);
  for (std::size_t i = 0; i < ks.size(); ++i) EXPECT_EQ(a[i], b[ks.size() - 1 - i]);
  // A duplicate gets the same answer as its first occurrence.
  auto dup = ks;
  dup.push_back(ks[3]);
  auto c = ring.assign(dup, 2);
  EXPECT_EQ(c.back(), c[3]);
}

TEST(Ring, PrefersTheAskersRegionThenFillsFromTheGlobalRing) {
  Ring ring;
  for (int i = 0; i < 30; ++i) ring.add(peer(i), {i < 2 ? "eu" : "us", 0});
  for (const auto& k : keys(50)) {
    auto got = ring.route(k, 3, {"eu", 0});
    ASSERT_EQ(got.size(), 3u);
    std::set<PeerId> first(got.begin(), got.begin() + 2);
    EXPECT_EQ(first, (std::set<PeerId>{peer(0), peer(1)}));
    EXPECT_NE(got[2], peer(0));
    EXPECT_NE(got[2], peer(1));
  }
  // Unknown region: the global answer.
  auto k = keys(1)[0];
  EXPECT_EQ(ring.route(k, 3, {"mars", 0}), ring.route(k, 3));
  // A peer that moves region leaves the old region's ring.
  ring.add(peer(0), {"us", 0});
  auto got = ring.route(k, 2, {"eu", 0});
  EXPECT_EQ(got[0], peer(1));
}

TEST(Ring, PutsTheAskersNetworkFirstWithoutChangingTheSet) {
  Ring ring;
  for (int i = 0; i < 20; ++i) ring.add(peer(i), {"", i == 7 ? 42u : 9u});
  for (const auto& k : keys(200)) {
    auto plain = ring.route(k, 5);
    auto near = ring.route(k, 5, {"", 42});
    EXPECT_EQ(std::set<PeerId>(plain.begin(), plain.end()),
              std::set<PeerId>(near.begin(), near.end()));
    if (std::count(near.begin(), near.end(), peer(7))) {
      EXPECT_EQ(near[0], peer(7));
    }
  }
}

TEST(Ring, RouteManyEqualsRouteKeyByKey) {
  Ring ring;
  for (int i = 0; i < 200; ++i) ring.add(peer(i), {i % 5 == 0 ? "eu" : "", i % 3 == 0 ? 7u : 8u});
  auto ks = keys(1000);
  PeerId me = peer(10);
  for (const Proximity& from : {Proximity{}, Proximity{"", 7}, Proximity{"eu", 8}}) {
    for (std::uint32_t k : {1u, 3u}) {
      std::size_t per_key = 0;
      auto flat = ring.route_many(ks, k, from, &me, per_key);
      ASSERT_EQ(per_key, k);
      ASSERT_EQ(flat.size(), ks.size() * k);
      for (std::size_t i = 0; i < ks.size(); ++i) {
        std::vector<PeerId> one(flat.begin() + static_cast<long>(i * k),
                                flat.begin() + static_cast<long>((i + 1) * k));
        ASSERT_EQ(one, ring.route(ks[i], k, from, &me)) << i;
      }
    }
  }
  std::size_t per_key = 9;
  Ring empty;
  EXPECT_TRUE(empty.route_many(ks, 2, {}, nullptr, per_key).empty());
  EXPECT_EQ(per_key, 0u);
}

// Native answers equal the shared vectors (the WebAssembly build checks the same file).
TEST(Ring, SharedVectors) {
  std::ifstream in(DEPLOYNET_FIXTURES "/ring_vectors.json");
  ASSERT_TRUE(in) << "missing tests/fixtures/ring_vectors.json";
  std::stringstream ss;
  ss << in.rdbuf();
  auto bad = testing::replay_ring_vectors(ss.str(), false);
  EXPECT_TRUE(bad.empty()) << bad.size() << " mismatches, first: " << bad.front();
}

}  // namespace
}  // namespace deploynet

namespace deploynet {
namespace {

// --ring-rebuild-ms: a large swarm's ring rebuilds at most every rebuild_ms; in between, a
// peer that left is never named and one that joined is not named yet; a small swarm sees
// every change at once.
TEST(Ring, RebuildIntervalHoldsChangesForLargeSwarmsOnly) {
  RingConfig config;
  config.rebuild_ms = 1000;
  config.rebuild_above = 20;
  const auto ks = keys(400);
  auto named = [&](Ring& ring, const PeerId& who) {
    for (const auto& k : ks)
      for (const auto& p : ring.route(k, 3, {"eu", 0}))
        if (p == who) return true;
    return false;
  };

  Ring big(config);
  for (int i = 0; i < 30; ++i) big.add(peer(i), {"eu", 0});
  big.advance(0);
  ASSERT_TRUE(named(big, peer(3)));
  big.remove(peer(3));
  big.add(peer(100), {"eu", 0});
  big.advance(500);                     // within the interval: held
  EXPECT_FALSE(named(big, peer(3)));    // gone at once
  EXPECT_FALSE(named(big, peer(100)));  // not routable yet
  for (const auto& k : ks) EXPECT_EQ(big.route(k, 3, {"eu", 0}).size(), 3u);
  big.advance(1000);  // due: rebuilt at the next query
  EXPECT_TRUE(named(big, peer(100)));
  EXPECT_FALSE(named(big, peer(3)));

  Ring small(config);
  for (int i = 0; i < 10; ++i) small.add(peer(i), {"eu", 0});
  small.advance(0);
  small.add(peer(100), {"eu", 0});
  small.advance(1);  // below rebuild_above: every change at once
  EXPECT_TRUE(named(small, peer(100)));

  // No clock (a negative time, or no advance at all): every change at once, also when big.
  big.add(peer(101), {"eu", 0});
  big.advance(-1);
  EXPECT_TRUE(named(big, peer(101)));
}

// Held or not, the answer of a held ring is the answer the full rebuild gave for the peers
// still there: a held ring never invents a placement.
TEST(Ring, HeldAnswersAreTheLastBuildsMinusLeavers) {
  RingConfig config;
  config.rebuild_ms = 1000;
  config.rebuild_above = 1;
  Ring ring(config);
  for (int i = 0; i < 50; ++i) ring.add(peer(i));
  ring.advance(0);
  const auto ks = keys(200);
  std::vector<std::vector<PeerId>> before;
  for (const auto& k : ks) before.push_back(ring.route(k, 4));
  ring.remove(peer(7));
  ring.add(peer(77));
  ring.advance(10);
  for (std::size_t i = 0; i < ks.size(); ++i) {
    auto now = ring.route(ks[i], 3);
    std::vector<PeerId> expect;
    for (const auto& p : before[i])
      if (p != peer(7) && expect.size() < 3) expect.push_back(p);
    EXPECT_EQ(now, expect) << i;
  }
}

}  // namespace
}  // namespace deploynet
