#include "site_stats.hpp"

#include <openssl/evp.h>

#include <cstdio>
#include <cstring>

#include "metrics.hpp"

namespace deploynet::server {

bool swarm_of_origin(const InfoHash& info_hash, std::string_view origin) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(origin.data(), origin.size(), digest, &len, EVP_sha256(), nullptr) != 1)
    return false;
  unsigned char b64[32];
  EVP_EncodeBlock(b64, digest, 15);  // 15 bytes: 20 characters, no padding
  return std::memcmp(b64, info_hash.bytes.data(), 20) == 0;
}

bool SiteStats::add(const std::string& origin, const SiteBytes& d) {
  std::lock_guard lock(mu_);
  auto it = sites_.find(origin);
  if (it == sites_.end()) {
    if (sites_.size() >= kMaxSites) {
      ++dropped_;
      return false;
    }
    it = sites_.emplace(origin, SiteBytes{}).first;
  }
  auto& s = it->second;
  s.from_peers += d.from_peers;
  s.from_origin += d.from_origin;
  s.from_cache += d.from_cache;
  s.uploaded += d.uploaded;
  s.reports += 1;
  return true;
}

void SiteStats::render(std::string& o) const {
  using prom::header;
  using prom::sample;
  std::lock_guard lock(mu_);
  auto site_label = [](const std::string& site) {
    std::string v = "site=\"";
    for (char c : site) {
      if (c == '\\' || c == '"') v += '\\';
      if (c == '\n') {
        v += "\\n";
        continue;
      }
      v += c;
    }
    return v + '"';
  };
  header(o, "deploynet_site_bytes_total", "counter",
         "Bytes the site's DeployNet visitors loaded, by source, as their clients report them.");
  for (const auto& [site, s] : sites_) {
    auto l = site_label(site);
    sample(o, "deploynet_site_bytes_total", l + ",source=\"peers\"", s.from_peers);
    sample(o, "deploynet_site_bytes_total", l + ",source=\"origin\"", s.from_origin);
    sample(o, "deploynet_site_bytes_total", l + ",source=\"cache\"", s.from_cache);
  }
  header(o, "deploynet_site_uploaded_bytes_total", "counter",
         "Bytes the site's visitors served to each other, as reported.");
  for (const auto& [site, s] : sites_) {
    sample(o, "deploynet_site_uploaded_bytes_total", site_label(site), s.uploaded);
  }
  header(o, "deploynet_site_offload_ratio", "gauge",
         "Share of the site's visitors' network bytes that came from peers instead of the origin.");
  for (const auto& [site, s] : sites_) {
    double total = static_cast<double>(s.from_peers) + static_cast<double>(s.from_origin);
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, "%.4f",
                  total > 0 ? static_cast<double>(s.from_peers) / total : 0.0);
    sample(o, "deploynet_site_offload_ratio", site_label(site), std::string_view(ratio));
  }
  header(o, "deploynet_site_reports_total", "counter",
         "Byte reports received from visitors, per site.");
  for (const auto& [site, s] : sites_) {
    sample(o, "deploynet_site_reports_total", site_label(site), s.reports);
  }
  prom::one(o, "deploynet_site_reports_dropped_total", "counter",
            "Reports not counted: the table of sites was full.", dropped_);
}

}  // namespace deploynet::server
