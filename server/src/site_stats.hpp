#pragma once

// What each site's visitors report of their bytes (DeployNet's `report` extension): from peers,
// from the origin, from their own cache, uploaded to others. Summed per site origin for
// /metrics, so a site owner sees the share its origin no longer serves. Client-reported: an
// estimate (the origin's access log is the truth), bounded in the number of sites it keeps.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "deploynet/ids.hpp"

namespace deploynet::server {

// Whether `info_hash` is DeployNet's swarm id for the site `origin`: the 20 base64 characters of
// the first 15 bytes of SHA-256(origin), as the browser client derives it. Reports name their
// site, and only the site that owns the swarm is believed.
bool swarm_of_origin(const InfoHash& info_hash, std::string_view origin);

struct SiteBytes {
  std::uint64_t from_peers = 0, from_origin = 0, from_cache = 0, uploaded = 0, reports = 0;
};

class SiteStats {
 public:
  static constexpr std::size_t kMaxSites = 1000;
  // Adds one report's growth; false (and counted) when the table is full of other sites.
  bool add(const std::string& origin, const SiteBytes& delta);
  void render(std::string& out) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, SiteBytes> sites_;
  std::uint64_t dropped_ = 0;
};

}  // namespace deploynet::server
