// The simulator's parts and small scenarios checked against closed forms.

#include <gtest/gtest.h>

#include <cmath>

#include "deploynet/sim/events.hpp"
#include "deploynet/sim/model.hpp"
#include "deploynet/sim/random.hpp"

namespace deploynet::sim {
namespace {

TEST(EventQueue, TimeOrderThenSchedulingOrder) {
  EventQueue q;
  q.push({5, 0, 1});
  q.push({1, 0, 2});
  q.push({5, 0, 3});
  q.push({0.5, 0, 4});
  std::vector<std::uint32_t> kinds;
  while (!q.empty()) kinds.push_back(q.pop().kind);
  EXPECT_EQ(kinds, (std::vector<std::uint32_t>{4, 2, 1, 3}));
}

TEST(Link, IsAFifoServerInRequestOrder) {
  Link l{10, 0};  // 10 bytes per ms
  EXPECT_DOUBLE_EQ(l.reserve(0, 0, 100), 10);
  EXPECT_DOUBLE_EQ(l.reserve(5, 5, 100), 20);    // queued behind the first
  EXPECT_DOUBLE_EQ(l.reserve(50, 50, 100), 60);  // idle link: starts at once
  // Latency: asked at 60 to start at 100 (a round trip away), done at 110 at the earliest.
  EXPECT_DOUBLE_EQ(l.reserve(60, 100, 100), 110);
  // Asked at 61 for a start at 61: it queues behind what was asked before (done at 80 on the
  // link), not behind the start of that transfer.
  EXPECT_DOUBLE_EQ(l.reserve(61, 61, 100), 80);
  Link unlimited;
  EXPECT_DOUBLE_EQ(unlimited.reserve(0, 7, 1e9), 7);
}

TEST(Random, MeansMatchTheirParameters) {
  Random r(42);
  const int n = 400000;
  double exp = 0, par = 0, geo = 0;
  for (int i = 0; i < n; ++i) {
    exp += r.exponential(30);
    par += r.pareto(30, 3.0);  // tail index 3: the sample mean converges
    geo += r.geometric(3);
  }
  EXPECT_NEAR(exp / n, 30, 30 * 0.01);
  EXPECT_NEAR(par / n, 30, 30 * 0.02);
  EXPECT_NEAR(geo / n, 3, 3 * 0.01);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_GE(r.pareto(30, 1.5), 10 - 1e-9);  // x_m = mean (alpha - 1) / alpha
    EXPECT_GE(r.geometric(3), 1u);
  }
}

// No churn, one patient file, N visitors at once (their tabs open): with DeployNet, the ring's
// k responsible peers of each region fetch it from the origin and everyone else from peers, so
// the origin serves it regions x k times; without P2P (and with random peers, since nobody
// holds it when all ask together) N times.
Scenario one_file(std::uint64_t visitors, std::uint32_t regions, std::uint32_t k) {
  Scenario s;
  s.site = Site::by_name("one-file");
  s.profile = Profile::by_name("lan");
  s.profile.regions.clear();
  for (std::uint32_t i = 0; i < regions; ++i)
    s.profile.regions.push_back({"r" + std::to_string(i), 1, 0, 0, 0.1, 0.1, 0.1});
  s.arrivals.kind = ArrivalKind::kTogether;
  s.arrivals.visitors = visitors;
  s.arrivals.duration_s = 30;
  s.client.route_k = k;
  return s;
}

TEST(Scenario, OriginFetchesEqualRegionsTimesReplicas) {
  for (auto [regions, k] : {std::pair{1u, 1u}, std::pair{1u, 3u}, std::pair{3u, 2u}}) {
    const Scenario s = one_file(60, regions, k);
    const double file = static_cast<double>(s.site.assets[1].bytes);
    const Results dn = simulate(s, Policy::kDeployNet);
    EXPECT_EQ(dn.visitors, 60u);
    EXPECT_DOUBLE_EQ(dn.origin_bytes_by_asset[1], regions * k * file)
        << regions << " regions, k=" << k;
    // Everyone else got it from peers: (N - regions k) copies.
    EXPECT_DOUBLE_EQ(dn.peer_bytes, (60.0 - regions * k) * file);
    const Results plain = simulate(s, Policy::kPlain);
    EXPECT_DOUBLE_EQ(plain.origin_bytes_by_asset[1], 60 * file);
    EXPECT_EQ(plain.peer_bytes, 0);
  }
}

TEST(Scenario, OffloadCeilingIsNMinusOneOverN) {
  for (std::uint64_t n : {2u, 10u, 50u}) {
    const Scenario s = one_file(n, 1, 1);
    const Results dn = simulate(s, Policy::kDeployNet);
    const double file = static_cast<double>(s.site.assets[1].bytes);
    const double share = dn.peer_bytes / (dn.peer_bytes + dn.origin_bytes_by_asset[1]);
    EXPECT_NEAR(share, (static_cast<double>(n) - 1) / static_cast<double>(n), 1e-12) << n;
    EXPECT_DOUBLE_EQ(dn.origin_bytes_by_asset[1], file);
  }
}

TEST(Scenario, RandomPeersCannotHelpWhenEveryoneAsksAtOnce) {
  const Scenario s = one_file(40, 1, 1);
  const Results r = simulate(s, Policy::kRandom);
  EXPECT_DOUBLE_EQ(r.origin_bytes_by_asset[1], 40.0 * static_cast<double>(s.site.assets[1].bytes));
  EXPECT_GT(r.connections, 40u);  // they were connected: nobody held it yet
}

// Steady arrivals: Little's law (visitors on the site = arrival rate x time on the site),
// peers only with P2P, origin bytes lower with it, and a run is exact for its seed.
TEST(Scenario, SteadyArrivalsKeepTheirConcurrencyAndRepeat) {
  Scenario s;
  s.site = Site::by_name("blog");
  s.profile = Profile::by_name("broadband");
  s.arrivals.kind = ArrivalKind::kSteady;
  s.arrivals.concurrent = 300;
  s.arrivals.pages_mean = 3;
  s.arrivals.dwell_mean_s = 20;
  s.arrivals.dwell_alpha = 3;
  s.arrivals.duration_s = 600;
  const Results plain = simulate(s, Policy::kPlain);
  const Results dn = simulate(s, Policy::kDeployNet);
  EXPECT_NEAR(static_cast<double>(dn.peak_concurrent), 300, 300 * 0.3);
  EXPECT_EQ(plain.peer_bytes, 0);
  EXPECT_GT(dn.peer_share(), 0.05);
  EXPECT_LT(dn.origin_bytes, plain.origin_bytes);
  EXPECT_GT(dn.first_peer_ms.count, 100u);
  EXPECT_GT(dn.signal_messages, dn.views * 2);  // an announce and its reply per view at least
  const Results again = simulate(s, Policy::kDeployNet);
  EXPECT_EQ(again.origin_bytes, dn.origin_bytes);
  EXPECT_EQ(again.peer_bytes, dn.peer_bytes);
  EXPECT_EQ(again.events, dn.events);
}

// A deploy reaching open tabs: with DeployNet's notice the changed files spread among them,
// and the origin sends far fewer copies than the number of open pages.
TEST(Scenario, ADeployToOpenTabsIsSpreadAmongThem) {
  Scenario s;
  s.site = Site::by_name("demo");
  s.profile = Profile::by_name("broadband");
  s.arrivals.kind = ArrivalKind::kTogether;
  s.arrivals.visitors = 30;
  s.arrivals.duration_s = 90;
  s.arrivals.deploy_at_s = 20;
  s.client.patient_wait_ms = 20000;
  s.arrivals.deploy_share = 0.5;
  const Results plain = simulate(s, Policy::kPlain);
  const Results dn = simulate(s, Policy::kDeployNet);
  // Before the deploy both fetched the same first views; after it, the plain site's open tabs
  // fetch the changed files on their next navigation, each of them.
  Scenario before = s;
  before.arrivals.deploy_at_s = -1;
  const double first_views = simulate(before, Policy::kPlain).origin_bytes;
  const double plain_deploy = plain.origin_bytes - first_views;
  const double dn_deploy = dn.origin_bytes - first_views;
  // At least half the site's non-HTML bytes changed, 30 tabs took it.
  double site = 0;
  for (std::size_t i = 1; i < s.site.assets.size(); ++i)
    site += static_cast<double>(s.site.assets[i].bytes);
  EXPECT_GE(plain_deploy, 30 * 0.5 * site * 0.9);
  // With DeployNet the ring's responsible peers (k = 3) fetch it, the rest take it from peers.
  EXPECT_LT(dn_deploy, plain_deploy * 0.25);
  EXPECT_GT(dn.peer_bytes, plain_deploy * 0.5);
}

}  // namespace
}  // namespace deploynet::sim
