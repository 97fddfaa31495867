#pragma once

// The swarm simulator's model: one site, its visitors and their links, the join timeline, the
// delivery policy, and the signaling cluster. Membership, offers and routes go through the real
// `core/` Tracker (its limits, its random peer choice, the Ring with bounded loads), not a copy.
//
// What is modelled, and how coarsely:
// - Visitors arrive (steady Poisson, a flash crowd, one after the other as in the lab, or all
//   at once with their tabs left open for a deploy), view pages (geometric count), and stay
//   on each page a heavy-tailed time (Pareto). Each page view is a new engine: it joins the
//   swarm, and leaves it when the page goes.
// - Links are FIFO servers (events.hpp): the origin's uplink, each visitor's down- and uplink.
//   A transfer from several peers splits its bytes over them. Latency: round trips to the
//   origin and the signaling server per region, between visitors per pair of regions.
// - NAT: a share of visitors is behind a NAT that cannot reach another of its kind directly;
//   such pairs connect through TURN (its bytes counted) or not at all.
// - The join: engine start (after the load event on a first view), socket open (two round
//   trips), announce, offers relayed to random members by the Tracker (and, for DeployNet, to
//   the peers its routes name), the answering side's gathering, ICE/DTLS/SCTP.
// - Delivery: a first view's render-blocking files come from the origin unless a connected peer
//   holds them; later views from the worker's cache (at a fixed cost per view: the worker's
//   own, measured in the lab); patient files (lazy images, a deploy's changed files) and media
//   wait briefly for peers; video is fetched in chunks ahead of the playback position.
// - Policies compared in the same run on the same arrivals: `plain` (the site without P2P),
//   `random` (WebTorrent's choice: random peers only, no routes) and `deploynet` (routes from
//   the ring: connections to the responsible peers, which fetch patient files first).

#include <cstdint>
#include <string>
#include <vector>

#include "deploynet/ring.hpp"

namespace deploynet::sim {

struct Asset {
  std::string name;
  std::uint64_t bytes = 0;
  bool urgent = true;       // render-blocking; false: lazy (requested after `delay_ms`)
  double delay_ms = 0;      // when the page asks for it, after its HTML
  double bitrate_mbit = 0;  // > 0: a video, streamed as it plays
  ContentId id{};
};

struct Site {
  std::string name;
  std::vector<Asset> assets;                      // assets[0] is every page's HTML (navigations)
  std::vector<std::vector<std::uint16_t>> pages;  // per page, the assets it loads (not the HTML)

  static Site by_name(const std::string& name);  // blog, spa, demo, media, one-file
  std::uint64_t bytes_of_page(std::size_t page) const;
};

struct Region {
  std::string name;
  double share = 1;       // of visitors
  double down_mbit = 50;  // access link
  double up_mbit = 10;
  double access_ms = 10;  // one way, visitor to the core
  double origin_ms = 40;  // one way, core to the origin
  double signal_ms = 40;  // one way, core to the signaling server
};

struct Profile {
  std::string name;
  std::vector<Region> regions;
  double origin_up_mbit = 200;  // the origin's uplink, shared by all visitors (0: unlimited)
  double cross_region_ms = 60;  // one way, added between visitors of different regions
  double hard_nat_share = 0.1;  // visitors that cannot reach each other directly
  bool turn = true;             // pairs of them connect through TURN

  static Profile by_name(const std::string& name);  // broadband, flash-crowd, lan, cdn-edge, world
};

enum class ArrivalKind : std::uint8_t {
  kSteady,      // Poisson, at a rate that keeps `concurrent` visitors on the site
  kFlash,       // `visitors` arrive within `window_s` after one that came first
  kSequential,  // the lab's bench: one after the other, each `stagger_ms` after the last loaded
  kTogether,    // `visitors` all at t=0, tabs kept open (a deploy reaches open pages)
};

struct Arrivals {
  ArrivalKind kind = ArrivalKind::kSequential;
  std::uint64_t visitors = 5;  // kFlash, kSequential, kTogether
  double concurrent = 0;       // kSteady
  double window_s = 10;        // kFlash
  double stagger_ms = 1000;    // kSequential
  double pages_mean = 3;       // page views per visit (geometric); kSequential: exactly this
  double dwell_mean_s = 30;    // per page (Pareto; kSequential: exactly this)
  double dwell_alpha = 1.5;
  double duration_s = 120;  // simulated time; arrivals stop at 80% of it
  double deploy_at_s = -1;  // >= 0: a deploy changes `deploy_share` of the bytes then
  double deploy_share = 0.5;
  double deploy_jitter_s = 5;  // open pages fetch the change within this window
};

enum class Policy : std::uint8_t { kPlain, kRandom, kDeployNet };
const char* policy_name(Policy p);

// The join and the client's costs, calibrated from the lab's `stats().timeline` (broadband,
// docs/benchmarks.md): engine start, socket, gathering, ICE/DTLS/SCTP, the worker's cost.
struct Timeline {
  double engine_later_ms = 215;  // engine start after the page starts, later views
  double gather_ms = 130;        // the answering side's ICE gathering
  double connect_ms = 260;       // ICE, DTLS and SCTP once both descriptions are in
  // What a controlling worker adds to a later view. Fitted: the lab's later views took
  // 443-719 ms with DeployNet against 351-459 ms for the plain site, which also revalidates.
  double worker_view_ms = 300;
  double first_visit_reload_ms = 0;  // media: a first view reloaded to come under the worker
  double render_ms = 150;            // parse, layout and paint after the last blocking byte
  // A video's first frame after its first bytes (the media pipeline's start; fitted to the
  // lab's plain first frame, 1,057 ms).
  double decoder_ms = 450;
};

// DeployNet's own requests to the origin, beside the site's: on a first view the engine, the
// worker and the manifest; on later views the manifest, revalidated by the navigation.
struct ClientCost {
  std::uint32_t first_view_requests = 3;
  std::uint64_t first_view_bytes = 86 * 1024 + 24 * 1024 + 2 * 1024;
  std::uint32_t later_view_requests = 1;
  std::uint64_t later_view_bytes = 2 * 1024;
};

struct ClientConfig {
  std::uint32_t max_peers = 8;
  std::uint32_t offers = 4;
  std::uint32_t route_k = 3;
  double patient_wait_ms = 3000;  // a patient file waits this long for a peer to hold it
  double prefetch_bytes = 16.0 * 1024 * 1024;      // other pages' files from peers, after load
  double chunk_bytes = 1024.0 * 1024;              // media transfers
  double read_ahead_bytes = 28.0 * 1024 * 1024;    // a player's buffer (what Chromium read)
  double origin_window_bytes = 4.0 * 1024 * 1024;  // the engine's origin requests (readAhead)
  double startup_bytes = 1024.0 * 1024;            // before the first frame
};

struct Scenario {
  Site site;
  Profile profile;
  Arrivals arrivals;
  Timeline timeline;
  ClientConfig client;
  ClientCost cost;
  std::uint32_t nodes = 1;              // signaling nodes
  double route_batch_ms = 250;          // routes are answered in batches this far apart
  std::int64_t ring_rebuild_ms = 1000;  // the server's --ring-rebuild-ms
  std::uint64_t seed = 1;
};

struct Summary {
  double median = 0, p90 = 0;
  std::uint64_t count = 0;
};

struct Results {
  Policy policy = Policy::kPlain;
  std::uint64_t visitors = 0, views = 0, first_views = 0;
  double origin_bytes = 0;
  std::uint64_t origin_requests = 0;
  double peer_bytes = 0, cache_bytes = 0, turn_bytes = 0;
  double media_origin_bytes = 0, media_peer_bytes = 0;
  std::vector<double> origin_bytes_by_asset;  // per file of the site (the video's excluded)
  Summary page_load_ms;                       // views after the first visitor's
  Summary first_frame_ms;                     // media views
  Summary first_peer_ms;  // page start to the first data channel, views that had one
  std::uint64_t connections = 0, failed_pairs = 0;
  std::uint64_t signal_messages = 0;   // in and out, all nodes
  std::uint64_t signal_peak_node = 0;  // the busiest node's messages
  double signal_peak_rate = 0;         // the busiest node's messages per second (1 s bins)
  std::uint64_t cluster_relays = 0;    // offers and answers between nodes
  std::uint64_t peak_concurrent = 0;
  std::uint64_t events = 0;
  double wall_s = 0;
  std::uint64_t peak_rss_kb = 0;

  double peer_share() const {
    const double all = origin_bytes + peer_bytes;
    return all > 0 ? peer_bytes / all : 0;
  }
};

Results simulate(const Scenario& scenario, Policy policy);

// Percentiles of a sample (sorted in place).
Summary summarize(std::vector<double>& samples);

// The process's peak resident set (VmHWM), kB; 0 where unknown.
std::uint64_t peak_rss_kb();

}  // namespace deploynet::sim
