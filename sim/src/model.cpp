// The simulation itself (see model.hpp for what is modelled).

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

#include "deploynet/sim/events.hpp"
#include "deploynet/sim/model.hpp"
#include "deploynet/sim/random.hpp"
#include "deploynet/tracker.hpp"

namespace deploynet::sim {
namespace {

constexpr double kMbit = 125.0;  // bytes per ms in one Mbit/s
constexpr std::uint32_t kMaxPeers = 16;
constexpr double kTickMs = 250;  // the engine's tick: patient requests look again this often
constexpr std::uint32_t kFromOrigin = 0x10000;  // kHeld: the transfer was the origin's
constexpr double kNavigateAfterDeployS = 30;    // open tabs navigate this long after a deploy

enum Kind : std::uint32_t {
  kArrive,      // a = arrivals so far
  kViewStart,   // a = slot
  kViewEnd,     // a = slot
  kJoin,        // a = slot
  kConnect,     // a, b = slots; ea, eb = their epochs
  kRouteBatch,  //
  kNeed,        // a = slot, b = asset: a patient file the page asks for
  kHeld,        // a = slot, b = asset, eb = the visitor's serial: a transfer finished
  kPrefetch,    // a = slot
  kLoaded,      // a = slot: the load event
  kMedia,       // a = slot: the video's next chunk
  kDeploy,      //
  kNotice,      // a = slot: the deploy notice reaches the page
};

struct Visitor {
  std::uint32_t epoch = 0;   // bumped at every view start and at departure: stale events drop
  std::uint32_t serial = 0;  // which visitor holds the slot
  std::uint16_t region = 0;
  std::uint16_t node = 0;
  bool hard_nat = false;
  bool online = false;  // a page is open and its engine in the swarm (or joining it)
  std::uint8_t nconn = 0, npending = 0;
  std::uint32_t pages_left = 0;
  std::uint32_t views = 0;
  std::uint64_t have = 0;      // files held (bit i: assets[i]): the worker's or the browser's cache
  std::uint64_t fetching = 0;  // files on their way
  std::uint32_t media_chunks = 0;  // the video's chunks held, from its start
  bool media_from_origin = false;  // the last chunk came on the origin's stream
  bool first_frame = false;
  bool loaded = false;  // the page's load event has fired (prefetching may start)
  double view_start = 0;
  double play_start = -1;
  double prefetched = 0;
  double first_peer = -1;
  std::uint16_t page = 0;
  Link down, up;
  std::array<std::uint32_t, kMaxPeers> conn{};
};

struct PendingRoute {
  std::uint32_t slot, epoch;
};

class Simulation {
 public:
  Simulation(const Scenario& s, Policy policy)
      : s_(s), policy_(policy), rand_(s.seed), tracker_(tracker_config(s)) {
    if (s.client.max_peers > kMaxPeers) throw std::invalid_argument("max_peers is at most 16");
    if (s.nodes == 0) throw std::invalid_argument("nodes must be at least 1");
    origin_.rate = s.profile.origin_up_mbit * kMbit;
    info_hash_ = InfoHash::from_bytes("deploynet-sim-swarm!");
    r_.policy = policy;
    r_.origin_bytes_by_asset.assign(s.site.assets.size(), 0);
    node_bin_.assign(s.nodes, 0);
    node_total_.assign(s.nodes, 0);
    double share = 0;
    for (const auto& r : s.profile.regions) share += r.share;
    for (const auto& r : s.profile.regions)
      region_cdf_.push_back((region_cdf_.empty() ? 0 : region_cdf_.back()) + r.share / share);
    video_ = -1;
    for (std::size_t i = 0; i < site_.assets.size(); ++i)
      if (site_.assets[i].bitrate_mbit > 0) video_ = static_cast<int>(i);
  }

  Results run() {
    const auto t0 = std::chrono::steady_clock::now();
    const auto& a = s_.arrivals;
    q_.push({0, 0, kArrive, 0});
    if (a.deploy_at_s >= 0) q_.push({a.deploy_at_s * 1000, 0, kDeploy});
    const double end = a.duration_s * 1000;
    while (!q_.empty() && q_.top().at <= end) {
      Event e = q_.pop();
      now_ = e.at;
      ++r_.events;
      dispatch(e);
    }
    finish();
    r_.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r_.peak_rss_kb = peak_rss_kb();
    return r_;
  }

 private:
  static TrackerConfig tracker_config(const Scenario& s) {
    TrackerConfig c;
    c.ring.rebuild_ms = s.ring_rebuild_ms;  // as the server's default
    return c;
  }

  // ---- identities ----
  PeerId peer_id(std::uint32_t slot) const {
    PeerId id = PeerId::from_bytes("-DN0001-");
    const Visitor& v = vis_[slot];
    std::memcpy(id.bytes.data() + 8, &slot, 4);
    std::memcpy(id.bytes.data() + 12, &v.serial, 4);
    return id;
  }
  static std::uint32_t slot_of(const PeerId& id) {
    std::uint32_t slot;
    std::memcpy(&slot, id.bytes.data() + 8, 4);
    return slot;
  }
  bool current(std::uint32_t slot, std::uint32_t epoch) const {
    return slot < vis_.size() && vis_[slot].epoch == epoch;
  }

  // ---- latencies (ms, one way) ----
  const Region& region(const Visitor& v) const { return s_.profile.regions[v.region]; }
  double origin_rtt(const Visitor& v) const {
    return 2 * (region(v).access_ms + region(v).origin_ms);
  }
  double signal_one_way(const Visitor& v) const {
    return region(v).access_ms + region(v).signal_ms;
  }
  double peer_rtt(const Visitor& a, const Visitor& b) const {
    double one = region(a).access_ms + region(b).access_ms;
    if (a.region != b.region) one += s_.profile.cross_region_ms;
    return 2 * one;
  }

  // ---- signaling accounting ----
  void count_message(std::uint16_t node, std::uint64_t n = 1) {
    const auto bin = static_cast<std::uint64_t>(now_ / 1000);
    if (bin != bin_) {
      for (auto& c : node_bin_) {
        r_.signal_peak_rate = std::max(r_.signal_peak_rate, static_cast<double>(c));
        c = 0;
      }
      bin_ = bin;
    }
    node_bin_[node] += n;
    node_total_[node] += n;
    r_.signal_messages += n;
  }

  // ---- dispatch ----
  void dispatch(const Event& e) {
    switch (e.kind) {
      case kArrive:
        return arrive(e.a);
      case kViewStart:
        if (current(e.a, e.ea)) start_view(e.a);
        return;
      case kViewEnd:
        if (current(e.a, e.ea)) end_view(e.a);
        return;
      case kJoin:
        if (current(e.a, e.ea)) join(e.a);
        return;
      case kConnect:
        return connect(e);
      case kRouteBatch:
        return route_batch();
      case kNeed:
        if (current(e.a, e.ea)) need(e.a, e.b, e.eb);
        return;
      case kHeld:
        return held(e.a, e.b & 0xffff, (e.b & kFromOrigin) != 0, e.eb);
      case kLoaded:
        if (current(e.a, e.ea)) vis_[e.a].loaded = true;
        return;
      case kPrefetch:
        if (current(e.a, e.ea)) prefetch(e.a);
        return;
      case kMedia:
        if (current(e.a, e.ea)) media_step(e.a);
        return;
      case kDeploy:
        return deploy();
      case kNotice:
        if (current(e.a, e.ea)) notice(e.a);
        return;
    }
  }
  static std::uint64_t bit(std::uint32_t asset) { return std::uint64_t{1} << asset; }
  void at(double t, std::uint32_t kind, std::uint32_t slot, std::uint32_t b = 0,
          std::uint32_t eb = 0) {
    q_.push({t, 0, kind, slot, b, vis_[slot].epoch, eb});
  }

  // ---- arrivals and page views ----
  void arrive(std::uint32_t n) {
    const auto& a = s_.arrivals;
    const double stop = a.duration_s * 800;  // arrivals stop at 80% of the run
    std::uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      slot = static_cast<std::uint32_t>(vis_.size());
      vis_.emplace_back();
    }
    Visitor& v = vis_[slot];
    const std::uint32_t epoch = v.epoch + 1;
    v = Visitor{};
    v.epoch = epoch;
    v.serial = serial_++;
    const double u = rand_.uniform();
    while (v.region + 1u < region_cdf_.size() && u > region_cdf_[v.region]) ++v.region;
    v.node = static_cast<std::uint16_t>(rand_.below(s_.nodes));
    v.hard_nat = rand_.chance(s_.profile.hard_nat_share);
    v.down.rate = region(v).down_mbit * kMbit;
    v.up.rate = region(v).up_mbit * kMbit;
    v.pages_left = a.kind == ArrivalKind::kSequential ? static_cast<std::uint32_t>(a.pages_mean)
                                                      : rand_.geometric(a.pages_mean);
    // Open tabs: one view; with a deploy, one more navigation after it has spread.
    if (a.kind == ArrivalKind::kTogether) v.pages_left = a.deploy_at_s >= 0 ? 2 : 1;
    ++r_.visitors;
    ++online_visitors_;
    r_.peak_concurrent = std::max<std::uint64_t>(r_.peak_concurrent, online_visitors_);
    start_view(slot);

    // The next arrival.
    double next = -1;
    switch (a.kind) {
      case ArrivalKind::kSteady: {
        const double rate_per_ms = a.concurrent / (a.pages_mean * a.dwell_mean_s * 1000);
        next = now_ + rand_.exponential(1 / rate_per_ms);
        break;
      }
      case ArrivalKind::kFlash:
        if (n + 1 < a.visitors)
          next = n == 0 ? now_ + 2000 : now_ + rand_.uniform(0, 2 * a.window_s * 1000 / a.visitors);
        break;
      case ArrivalKind::kSequential:
        break;  // when this visitor has read its last page (start_view)
      case ArrivalKind::kTogether:
        if (n + 1 < a.visitors) next = now_;
        break;
    }
    if (next >= 0 && next < stop) q_.push({next, 0, kArrive, n + 1});
  }

  void start_view(std::uint32_t slot) {
    Visitor& v = vis_[slot];
    ++v.epoch;
    const bool first = v.views == 0;
    ++v.views;
    --v.pages_left;
    v.view_start = now_;
    v.nconn = v.npending = 0;
    v.first_peer = -1;
    v.prefetched = 0;
    v.play_start = -1;
    v.first_frame = false;
    v.loaded = false;
    v.media_from_origin = false;
    const bool sequential = s_.arrivals.kind == ArrivalKind::kSequential;
    if (sequential)
      v.page = static_cast<std::uint16_t>((v.views - 1) % site_.pages.size());
    else if (s_.arrivals.kind == ArrivalKind::kTogether)
      v.page = 0;  // an open tab's next navigation: the same page, reloaded
    else
      v.page = first ? 0 : static_cast<std::uint16_t>(rand_.below(site_.pages.size()));
    ++r_.views;
    if (first) ++r_.first_views;
    const bool p2p = policy_ != Policy::kPlain;
    v.online = p2p;

    // The navigation: always the origin's (DeployNet's worker uses navigation preload).
    const double rtt = origin_rtt(v);
    const double html_done =
        origin_transfer(v, site_.assets[0].bytes, now_ + (first ? 2 : 1) * rtt);
    r_.origin_bytes_by_asset[0] += static_cast<double>(site_.assets[0].bytes);
    double load = html_done;
    const bool worker = p2p && !first;  // a later view is under the worker
    for (auto a : site_.pages[v.page]) {
      const Asset& asset = site_.assets[a];
      if (!asset.urgent) {
        if (asset.bitrate_mbit > 0) {
          const double reload = first && p2p ? s_.timeline.first_visit_reload_ms : 0;
          v.play_start = html_done + reload;
          at(v.play_start, kMedia, slot);
        } else {
          at(html_done + asset.delay_ms, kNeed, slot, a, 0);
        }
        continue;
      }
      if (v.have & bit(a)) {
        r_.cache_bytes += static_cast<double>(asset.bytes);
        if (!p2p) {
          // The plain site's later views revalidate (304s): a request, no body.
          ++r_.origin_requests;
          load = std::max(load, html_done + rtt);
        }
        continue;
      }
      load = std::max(load, origin_transfer(v, asset.bytes, html_done + rtt));
      r_.origin_bytes_by_asset[a] += static_cast<double>(asset.bytes);
      v.have |= bit(a);
      ++held_[a];
    }
    load += s_.timeline.render_ms + (worker ? s_.timeline.worker_view_ms : 0);
    if (p2p) {
      // DeployNet's own files (ClientCost): after the page's, off its critical path.
      const auto& c = s_.cost;
      const std::uint64_t bytes = first ? c.first_view_bytes : c.later_view_bytes;
      const std::uint32_t requests = first ? c.first_view_requests : c.later_view_requests;
      if (requests > 0) {
        origin_transfer(v, bytes, load);
        r_.origin_requests += requests - 1;
      }
    }
    if (v.serial > 0) load_samples_.push_back(load - now_);

    const auto& a = s_.arrivals;
    if (sequential) {
      // The lab's bench: each page read for a while after its load; the last one stays open,
      // and the next visitor comes a pause after this one has read it.
      const double read = load + a.dwell_mean_s * 1000;
      if (v.pages_left > 0)
        at(read, kViewEnd, slot);
      else if (v.serial + 1 < a.visitors)
        q_.push({read + a.stagger_ms, 0, kArrive, v.serial + 1});
    } else {
      double dwell;
      if (a.kind != ArrivalKind::kTogether)
        dwell = rand_.pareto(a.dwell_mean_s * 1000, a.dwell_alpha);
      else if (v.pages_left > 0)  // the tab navigates again once the deploy has had time to spread
        dwell = (a.deploy_at_s + a.deploy_jitter_s + kNavigateAfterDeployS) * 1000 +
                rand_.uniform(0, 1000) - now_;
      else
        dwell = a.duration_s * 1000;
      at(now_ + std::max(dwell, load - now_), kViewEnd, slot);
    }
    if (p2p) {
      // The engine: after the load event on a first view (the inline bootstrap's rule), soon
      // after the page starts on later ones; then the socket (two round trips).
      const double engine = first ? load : now_ + s_.timeline.engine_later_ms;
      at(engine + 4 * signal_one_way(v), kJoin, slot);
      at(load, kLoaded, slot);
      at(load + 1000, kPrefetch, slot);
    }
  }

  void end_view(std::uint32_t slot) {
    Visitor& v = vis_[slot];
    leave_swarm(slot);
    if (v.pages_left > 0) {
      start_view(slot);
      return;
    }
    ++v.epoch;
    v.online = false;
    for (std::uint32_t a = 0; a < site_.assets.size(); ++a)
      if (v.have & bit(a)) --held_[a];
    v.have = v.fetching = 0;
    v.serial = UINT32_MAX;  // transfers still under way for it find nobody
    --online_visitors_;
    free_.push_back(slot);
  }

  void leave_swarm(std::uint32_t slot) {
    Visitor& v = vis_[slot];
    if (!v.online) return;
    if (joined_.size() > slot && joined_[slot]) {
      tracker_.leave(slot + 1, info_hash_, peer_id(slot));
      joined_[slot] = false;
      count_message(v.node);
    }
    for (std::uint8_t i = 0; i < v.nconn; ++i) {
      Visitor& p = vis_[v.conn[i]];
      for (std::uint8_t j = 0; j < p.nconn; ++j)
        if (p.conn[j] == slot) {
          p.conn[j] = p.conn[--p.nconn];
          break;
        }
    }
    v.nconn = 0;
    v.online = false;
  }

  // ---- transfers ----
  double origin_transfer(Visitor& v, std::uint64_t bytes, double start) {
    r_.origin_bytes += static_cast<double>(bytes);
    ++r_.origin_requests;
    const double o = origin_.reserve(now_, start, static_cast<double>(bytes));
    const double d = v.down.reserve(now_, start, static_cast<double>(bytes));
    return std::max(o, d);
  }

  // From the connected peers in `from`, its bytes split evenly; returns the finish time.
  double peer_transfer(Visitor& v, std::span<const std::uint32_t> from, double bytes,
                       double start) {
    double done = v.down.reserve(now_, start, bytes);
    const double part = bytes / static_cast<double>(from.size());
    for (auto p : from) {
      Visitor& h = vis_[p];
      done = std::max(done, h.up.reserve(now_, start + peer_rtt(v, h) / 2, part));
      if (v.hard_nat && h.hard_nat) r_.turn_bytes += part;
    }
    r_.peer_bytes += bytes;
    return done;
  }

  // Connected peers holding asset `a` (for the video: chunk `chunk`), at most `max`.
  std::size_t holders(const Visitor& v, std::uint32_t a, std::uint32_t chunk, std::size_t max,
                      std::array<std::uint32_t, kMaxPeers>& out) const {
    std::size_t n = 0;
    for (std::uint8_t i = 0; i < v.nconn && n < max; ++i) {
      const Visitor& p = vis_[v.conn[i]];
      const bool has =
          static_cast<int>(a) == video_ ? p.media_chunks > chunk : (p.have & bit(a)) != 0;
      if (has) out[n++] = v.conn[i];
    }
    return n;
  }

  // A patient file: from connected peers that hold it; DeployNet waits while the peers its
  // routes name are fetching it (one per region does, for everyone); else from the origin.
  void need(std::uint32_t slot, std::uint32_t a, std::uint32_t waited) {
    Visitor& v = vis_[slot];
    const Asset& asset = site_.assets[a];
    if (v.have & bit(a)) {
      r_.cache_bytes += static_cast<double>(asset.bytes);
      return;
    }
    if (v.fetching & bit(a)) return;
    if (v.online) {
      std::array<std::uint32_t, kMaxPeers> from;
      const std::size_t n = holders(v, a, 0, 4, from);
      if (n > 0) {
        fetch_from_peers(slot, a, std::span(from.data(), n));
        return;
      }
      if (policy_ == Policy::kDeployNet && joined(slot) && waited == 0 && ask_responsible(slot, a))
        return;  // this visitor is one of them: it fetches it for the others
      if (policy_ == Policy::kDeployNet && waited * kTickMs < s_.client.patient_wait_ms &&
          (in_flight_[a] > 0 || held_[a] > 0 || !joined(slot))) {
        at(now_ + kTickMs, kNeed, slot, a, waited + 1);
        return;
      }
    }
    fetch_from_origin(slot, a);
  }

  // A patient file no connected peer holds: the ring's k peers for it in this region (the
  // asker included, if it is one) fetch it from the origin unless they hold it or are fetching
  // it, and the asker offers a connection to those it lacks. Returns whether the asker is one.
  bool ask_responsible(std::uint32_t slot, std::uint32_t a) {
    Visitor& v = vis_[slot];
    const PeerId me = peer_id(slot);
    const auto responsible =
        tracker_.ring(info_hash_)->route(site_.assets[a].id, s_.client.route_k, where_of(v));
    bool mine = false;
    std::array<PeerId, kMaxPeers> want;
    std::size_t nwant = 0;
    const std::uint32_t room = s_.client.max_peers - v.nconn - v.npending;
    for (const auto& p : responsible) {
      const std::uint32_t t = slot_of(p);
      if (p == me) {
        mine = true;
      } else {
        count_message(v.node);  // the ask, over the data channel or the signaling server
        if (nwant < room && !connected(v, t)) want[nwant++] = p;
      }
      Visitor& r = vis_[t];
      if (r.online && !((r.have | r.fetching) & bit(a))) fetch_from_origin(t, a);
    }
    offer_to(slot, std::span(want.data(), nwant));
    return mine;
  }

  // File `a` from these connected holders; the visitor holds it when the transfer is done.
  void fetch_from_peers(std::uint32_t slot, std::uint32_t a, std::span<const std::uint32_t> from) {
    Visitor& v = vis_[slot];
    const double done = peer_transfer(v, from, static_cast<double>(site_.assets[a].bytes), now_);
    v.fetching |= bit(a);
    at(done, kHeld, slot, a, v.serial);
  }

  void fetch_from_origin(std::uint32_t slot, std::uint32_t a) {
    Visitor& v = vis_[slot];
    const double done = origin_transfer(v, site_.assets[a].bytes, now_ + origin_rtt(v));
    v.fetching |= bit(a);
    ++in_flight_[a];
    r_.origin_bytes_by_asset[a] += static_cast<double>(site_.assets[a].bytes);
    at(done, kHeld, slot, a | kFromOrigin, v.serial);
  }

  // A transfer finished: the file is in the visitor's cache, if the visitor is still there.
  void held(std::uint32_t slot, std::uint32_t a, bool from_origin, std::uint32_t serial) {
    if (from_origin && in_flight_[a] > 0) --in_flight_[a];
    if (slot >= vis_.size() || vis_[slot].serial != serial || !(vis_[slot].fetching & bit(a)))
      return;
    Visitor& v = vis_[slot];
    v.fetching &= ~bit(a);
    if (!(v.have & bit(a))) {
      v.have |= bit(a);
      ++held_[a];
    }
  }

  // After the load event, every second: other pages' files that connected peers hold.
  void prefetch(std::uint32_t slot) {
    Visitor& v = vis_[slot];
    int running = 0;
    for (std::uint32_t a = 1; a < site_.assets.size() && running < 2; ++a) {
      const Asset& asset = site_.assets[a];
      if ((v.have | v.fetching) & bit(a) || asset.bitrate_mbit > 0) continue;
      if (v.prefetched + static_cast<double>(asset.bytes) > s_.client.prefetch_bytes) continue;
      std::array<std::uint32_t, kMaxPeers> from;
      const std::size_t n = holders(v, a, 0, 4, from);
      if (n == 0) continue;
      v.prefetched += static_cast<double>(asset.bytes);
      fetch_from_peers(slot, a, std::span(from.data(), n));
      ++running;
    }
    // The engine looks every second; here it looks again only while it found something (two
    // at a time) or when a new peer connects (connect()): nothing else changes what it finds
    // often enough to matter, and a million idle ticks a second would be most of the run.
    if (running > 0 && v.prefetched < s_.client.prefetch_bytes) at(now_ + 1000, kPrefetch, slot);
  }

  // The video, one chunk at a time, no further ahead than the player's buffer.
  void media_step(std::uint32_t slot) {
    Visitor& v = vis_[slot];
    const Asset& video = site_.assets[video_];
    const double chunk = s_.client.chunk_bytes;
    const auto chunks =
        static_cast<std::uint32_t>(std::ceil(static_cast<double>(video.bytes) / chunk));
    if (v.media_chunks >= chunks) {
      v.have |= bit(video_);
      return;
    }
    const double rate = video.bitrate_mbit * kMbit;
    if (!v.first_frame && v.media_chunks * chunk >= s_.client.startup_bytes) {
      v.first_frame = true;
      frame_samples_.push_back(now_ + s_.timeline.decoder_ms - v.view_start);
      v.play_start = now_;
    }
    const double played = v.first_frame ? (now_ - v.play_start) * rate : 0;
    if (v.media_chunks * chunk >= played + s_.client.read_ahead_bytes) {
      at(now_ + chunk / rate, kMedia, slot);
      return;
    }
    const double bytes = std::min(chunk, static_cast<double>(video.bytes) - v.media_chunks * chunk);
    std::array<std::uint32_t, kMaxPeers> from;
    const std::size_t n = v.online ? holders(v, video_, v.media_chunks, 4, from) : 0;
    double done;
    if (n > 0) {
      done = peer_transfer(v, std::span(from.data(), n), bytes, now_);
      r_.media_peer_bytes += bytes;
      v.media_from_origin = false;
    } else {
      // The origin's stream: one request, then bytes as the links allow. The engine's (not
      // the plain player's) asks in windows of `origin_window_bytes`, a request each.
      const bool windowed = policy_ != Policy::kPlain;
      const auto per_window =
          static_cast<std::uint32_t>(std::max(1.0, s_.client.origin_window_bytes / chunk));
      const bool new_request =
          !v.media_from_origin || (windowed && v.media_chunks % per_window == 0);
      const double start = new_request ? now_ + origin_rtt(v) : now_;
      if (new_request) ++r_.origin_requests;
      r_.origin_bytes += bytes;
      r_.media_origin_bytes += bytes;
      done = std::max(origin_.reserve(now_, start, bytes), v.down.reserve(now_, start, bytes));
      v.media_from_origin = true;
    }
    ++v.media_chunks;
    at(done, kMedia, slot);
  }

  // ---- the swarm ----
  bool joined(std::uint32_t slot) const { return joined_.size() > slot && joined_[slot]; }

  void join(std::uint32_t slot) {
    Visitor& v = vis_[slot];
    if (!v.online) return;
    if (joined_.size() <= slot) joined_.resize(vis_.size(), false);
    AnnounceRequest req;
    req.info_hash = info_hash_;
    req.peer_id = peer_id(slot);
    req.event = AnnounceEvent::kStarted;
    req.left = 1;
    req.region = region(v).name;
    const std::uint32_t room = s_.client.max_peers - v.nconn - v.npending;
    add_offers(req, std::min(room, s_.client.offers), nullptr, 0);
    send_announce(slot, req);
    joined_[slot] = true;
    if (policy_ == Policy::kDeployNet) ask_routes(slot);
  }

  void add_offers(AnnounceRequest& req, std::uint32_t n, const PeerId* to, std::size_t nto) {
    for (std::uint32_t i = 0; i < n; ++i) {
      OfferIn o;
      const std::uint64_t id = ++offer_seq_;
      std::memcpy(o.offer_id.bytes.data(), &id, 8);
      o.offer = "{}";
      if (to && i < nto) o.to_peer_id = to[i];
      req.offers.push_back(std::move(o));
    }
  }

  // Offers to these peers by name (the ring named them), in one announce.
  void offer_to(std::uint32_t slot, std::span<const PeerId> peers) {
    if (peers.empty()) return;
    AnnounceRequest ar;
    ar.info_hash = info_hash_;
    ar.peer_id = peer_id(slot);
    ar.left = 1;
    add_offers(ar, static_cast<std::uint32_t>(peers.size()), peers.data(), peers.size());
    send_announce(slot, ar);
  }

  // An announce through the real tracker; the offers it relays become connections after the
  // answering side's gathering, the answer's way back, and ICE/DTLS/SCTP.
  void send_announce(std::uint32_t slot, const AnnounceRequest& req) {
    Visitor& v = vis_[slot];
    out_.clear();
    tracker_.announce({slot + 1, 0}, req, static_cast<std::int64_t>(now_), rand_.engine(), out_);
    count_message(v.node);
    for (const auto& o : out_) {
      if (o.kind != OutKind::kOffer) {
        count_message(v.node);
        continue;
      }
      const std::uint32_t t = static_cast<std::uint32_t>(o.to - 1);
      Visitor& w = vis_[t];
      count_message(w.node);
      if (w.node != v.node) ++r_.cluster_relays;
      if (v.hard_nat && w.hard_nat && !s_.profile.turn) {
        ++r_.failed_pairs;
        continue;
      }
      if (w.nconn + w.npending >= s_.client.max_peers ||
          v.nconn + v.npending >= s_.client.max_peers || connected(v, t))
        continue;  // the answering engine is full: it ignores the offer
      // Its answer, through the tracker (which checks it matches the offer it relayed).
      AnnounceRequest ans;
      ans.info_hash = info_hash_;
      ans.peer_id = peer_id(t);
      ans.answer = AnswerIn{req.peer_id, std::get<RelayOut>(o.message).offer_id, "{}"};
      answers_.clear();
      tracker_.announce({t + 1, 0}, ans, static_cast<std::int64_t>(now_), rand_.engine(), answers_);
      count_message(w.node, 1);
      count_message(v.node, 1);
      if (w.node != v.node) ++r_.cluster_relays;
      ++v.npending;
      ++w.npending;
      const double when = now_ + 2 * signal_one_way(v) + 2 * signal_one_way(w) +
                          s_.timeline.gather_ms + s_.timeline.connect_ms;
      q_.push({when, 0, kConnect, slot, t, v.epoch, w.epoch});
    }
  }

  Proximity where_of(const Visitor& v) const { return Proximity{region(v).name, 0}; }

  bool connected(const Visitor& v, std::uint32_t t) const {
    for (std::uint8_t i = 0; i < v.nconn; ++i)
      if (v.conn[i] == t) return true;
    return false;
  }

  void connect(const Event& e) {
    const bool a_ok = current(e.a, e.ea), b_ok = current(e.b, e.eb);
    if (a_ok && vis_[e.a].npending) --vis_[e.a].npending;
    if (b_ok && vis_[e.b].npending) --vis_[e.b].npending;
    if (!a_ok || !b_ok) return;
    Visitor& a = vis_[e.a];
    Visitor& b = vis_[e.b];
    if (!a.online || !b.online || connected(a, e.b) || a.nconn >= s_.client.max_peers ||
        b.nconn >= s_.client.max_peers)
      return;
    a.conn[a.nconn++] = e.b;
    b.conn[b.nconn++] = e.a;
    ++r_.connections;
    for (Visitor* x : {&a, &b})
      if (x->first_peer < 0) {
        x->first_peer = now_;
        peer_samples_.push_back(now_ - x->view_start);
      }
    for (std::uint32_t slot : {e.a, e.b})
      if (vis_[slot].loaded && vis_[slot].prefetched < s_.client.prefetch_bytes)
        at(now_ + 1000, kPrefetch, slot);
  }

  void ask_routes(std::uint32_t slot) {
    routes_.push_back({slot, vis_[slot].epoch});
    if (!route_batch_scheduled_) {
      route_batch_scheduled_ = true;
      q_.push({now_ + s_.route_batch_ms, 0, kRouteBatch});
    }
  }

  // Route requests answered together: the ring is rebuilt once per batch, not per join.
  void route_batch() {
    route_batch_scheduled_ = false;
    std::vector<PendingRoute> batch;
    batch.swap(routes_);
    RouteRequest req;
    req.info_hash = info_hash_;
    req.k = s_.client.route_k;
    for (const auto& a : site_.assets) req.content_ids.push_back(a.id);
    for (const auto& [slot, epoch] : batch) {
      if (!current(slot, epoch) || !joined(slot)) continue;
      Visitor& v = vis_[slot];
      req.peer_id = peer_id(slot);
      out_.clear();
      if (!tracker_.route({slot + 1, 0}, req, static_cast<std::int64_t>(now_), out_)) continue;
      count_message(v.node, 2);
      const auto& routes = std::get<RouteReplyOut>(out_[0].message).routes;
      std::array<PeerId, kMaxPeers> want;
      std::size_t nwant = 0;
      const std::uint32_t room = s_.client.max_peers - v.nconn - v.npending;
      for (const auto& route : routes) {
        for (const auto& p : route.peers) {
          const std::uint32_t t = slot_of(p);
          if (nwant < room && !connected(v, t) &&
              std::find(want.begin(), want.begin() + nwant, p) == want.begin() + nwant)
            want[nwant++] = p;
        }
      }
      offer_to(slot, std::span(want.data(), nwant));
    }
    if (!routes_.empty() && !route_batch_scheduled_) {
      route_batch_scheduled_ = true;
      q_.push({now_ + s_.route_batch_ms, 0, kRouteBatch});
    }
  }

  // ---- deploys ----
  void deploy() {
    // The changed files: the largest first, up to the deploy's share of the site's bytes.
    std::uint64_t total = 0;
    for (std::size_t i = 1; i < site_.assets.size(); ++i) total += site_.assets[i].bytes;
    std::vector<std::uint32_t> order;
    for (std::uint32_t i = 1; i < site_.assets.size(); ++i) order.push_back(i);
    std::sort(order.begin(), order.end(),
              [&](auto x, auto y) { return site_.assets[x].bytes > site_.assets[y].bytes; });
    std::uint64_t changed = 0, mask = 0;
    for (auto i : order) {
      if (changed >= s_.arrivals.deploy_share * static_cast<double>(total)) break;
      changed += site_.assets[i].bytes;
      mask |= bit(i);
      site_.assets[i].id[0] ^= 0x5a;   // a new version: a new content id
      site_.assets[i].urgent = false;  // open pages fill it in the background
    }
    changed_ = mask;
    for (std::uint32_t a = 0; a < site_.assets.size(); ++a)
      if (mask & bit(a)) held_[a] = in_flight_[a] = 0;
    for (std::uint32_t slot = 0; slot < vis_.size(); ++slot) {
      Visitor& v = vis_[slot];
      v.have &= ~mask;
      v.fetching &= ~mask;
      if (v.online && policy_ == Policy::kDeployNet)
        at(now_ + rand_.uniform(0, s_.arrivals.deploy_jitter_s * 1000), kNotice, slot);
    }
  }

  // The deploy notice: routes for the new files, then each changed file as a patient request.
  void notice(std::uint32_t slot) {
    count_message(vis_[slot].node);
    ask_routes(slot);
    for (std::uint32_t a = 1; a < site_.assets.size(); ++a)
      if (changed_ & bit(a))
        at(now_ + s_.route_batch_ms + 4 * signal_one_way(vis_[slot]), kNeed, slot, a, 0);
  }

  void finish() {
    for (auto& c : node_bin_)
      r_.signal_peak_rate = std::max(r_.signal_peak_rate, static_cast<double>(c));
    for (auto c : node_total_) r_.signal_peak_node = std::max(r_.signal_peak_node, c);
    r_.page_load_ms = summarize(load_samples_);
    r_.first_frame_ms = summarize(frame_samples_);
    r_.first_peer_ms = summarize(peer_samples_);
  }

  const Scenario& s_;
  Site site_ = s_.site;
  Policy policy_;
  Random rand_;
  Tracker tracker_;
  EventQueue q_;
  Results r_;
  double now_ = 0;
  InfoHash info_hash_;
  Link origin_;
  std::vector<Visitor> vis_;
  std::vector<std::uint32_t> free_;
  std::vector<bool> joined_;
  std::vector<double> region_cdf_;
  std::uint32_t serial_ = 0;
  std::uint64_t online_visitors_ = 0;
  int video_ = -1;
  std::uint64_t offer_seq_ = 0;
  std::vector<Outgoing> out_, answers_;
  std::vector<PendingRoute> routes_;
  bool route_batch_scheduled_ = false;
  std::array<std::uint32_t, 64> in_flight_{};  // origin fetches under way, per file
  std::array<std::uint32_t, 64> held_{};       // visitors on the site holding each file
  std::uint64_t changed_ = 0;
  std::vector<double> load_samples_, frame_samples_, peer_samples_;
  std::vector<std::uint64_t> node_bin_, node_total_;
  std::uint64_t bin_ = 0;
};

}  // namespace

Summary summarize(std::vector<double>& samples) {
  Summary s;
  s.count = samples.size();
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  auto pick = [&](double q) {
    const double pos = q * static_cast<double>(samples.size() - 1);
    const auto lo = static_cast<std::size_t>(pos);
    const std::size_t hi = std::min(lo + 1, samples.size() - 1);
    return samples[lo] + (samples[hi] - samples[lo]) * (pos - static_cast<double>(lo));
  };
  s.median = pick(0.5);
  s.p90 = pick(0.9);
  return s;
}

std::uint64_t peak_rss_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

Results simulate(const Scenario& scenario, Policy policy) {
  return Simulation(scenario, policy).run();
}

}  // namespace deploynet::sim
