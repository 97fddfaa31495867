#pragma once

// What each site's visitors report of their bytes (DeployNet's `report` extension): from peers,
// from the origin, from their own cache, uploaded to others. Summed per site origin for
// /metrics, so a site owner sees the share its origin no longer serves. Client-reported: an
// estimate (the origin's access log is the truth), bounded in what one page view can add, in
// the page views remembered and in the sites kept.

#include <array>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "deploynet/ids.hpp"

namespace deploynet::server {

// Whether `info_hash` is DeployNet's swarm id for the site `origin`: the 20 base64 characters of
// the first 15 bytes of SHA-256(origin), as the browser client derives it. Reports name their
// site, and only the site that owns the swarm is believed.
bool swarm_of_origin(const InfoHash& info_hash, std::string_view origin);

struct SiteBytes {
  std::uint64_t from_peers = 0, from_origin = 0, from_cache = 0, uploaded = 0, reports = 0;
};

// One report: a page view's byte counts so far (they only grow within a view).
struct ViewCounts {
  std::uint64_t from_peers = 0, from_origin = 0, from_cache = 0, uploaded = 0;
};

class SiteStats {
 public:
  // `max_sites`: sites kept (their series in /metrics: six each).
  explicit SiteStats(std::size_t max_sites = 1000) : max_sites_(max_sites) {}

  // Page views whose last counts are kept, all sites together (~100 bytes each): a view that
  // reconnects, on this node, goes on from where it was instead of being counted again.
  static constexpr std::size_t kMaxViews = 100'000;
  // What a view can have loaded: 256 MiB, plus 1 Gbit/s for every second since it was first
  // reported. Counts beyond are cut there (and the cut counted).
  static constexpr std::uint64_t kViewFloor = std::uint64_t{256} << 20;
  static constexpr std::uint64_t kViewBytesPerS = 125'000'000;

  // Adds what a view's counts grew since its last report to its site. A new site takes the
  // place of the one reported least recently when the table is full (the eviction counted).
  void add(const std::string& origin, const PeerId& view, const ViewCounts& counts,
           std::int64_t now_ms);
  void render(std::string& out) const;

 private:
  struct Site {
    SiteBytes bytes;
    std::int64_t last_ms = 0;
  };
  struct View {
    std::int64_t first_ms = 0;
    ViewCounts last;
    std::list<std::string>::iterator age;  // its place in `view_ages_`
  };

  const std::size_t max_sites_;
  mutable std::mutex mu_;
  std::map<std::string, Site> sites_;
  std::unordered_map<std::string, View> views_;  // key: the site, '\n', the peer id's bytes
  std::list<std::string> view_ages_;             // least recently reported first
  std::uint64_t evicted_sites_ = 0, evicted_views_ = 0, clamped_ = 0;
};

}  // namespace deploynet::server
