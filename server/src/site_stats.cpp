#include "site_stats.hpp"

#include <openssl/evp.h>

#include <cstdio>
#include <cstring>

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
  std::lock_guard lock(mu_);
  auto label = [](const std::string& site) {
    std::string v;
    for (char c : site) {
      if (c == '\\' || c == '"') v += '\\';
      if (c == '\n') {
        v += "\\n";
        continue;
      }
      v += c;
    }
    return v;
  };
  auto line = [&](const char* name, const std::string& labels, std::uint64_t v) {
    o += name;
    o += '{';
    o += labels;
    o += "} ";
    o += std::to_string(v);
    o += '\n';
  };
  o += "# HELP deploynet_site_bytes_total Bytes the site's DeployNet visitors loaded, by source, "
       "as their clients report them.\n";
  o += "# TYPE deploynet_site_bytes_total counter\n";
  for (const auto& [site, s] : sites_) {
    auto l = "site=\"" + label(site) + "\"";
    line("deploynet_site_bytes_total", l + ",source=\"peers\"", s.from_peers);
    line("deploynet_site_bytes_total", l + ",source=\"origin\"", s.from_origin);
    line("deploynet_site_bytes_total", l + ",source=\"cache\"", s.from_cache);
  }
  o += "# HELP deploynet_site_uploaded_bytes_total Bytes the site's visitors served to each other, "
       "as reported.\n";
  o += "# TYPE deploynet_site_uploaded_bytes_total counter\n";
  for (const auto& [site, s] : sites_)
    line("deploynet_site_uploaded_bytes_total", "site=\"" + label(site) + "\"", s.uploaded);
  o += "# HELP deploynet_site_offload_ratio Share of the site's visitors' network bytes that came "
       "from peers instead of the origin.\n";
  o += "# TYPE deploynet_site_offload_ratio gauge\n";
  for (const auto& [site, s] : sites_) {
    double total = static_cast<double>(s.from_peers) + static_cast<double>(s.from_origin);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4f",
                  total > 0 ? static_cast<double>(s.from_peers) / total : 0.0);
    o += "deploynet_site_offload_ratio{site=\"" + label(site) + "\"} " + buf + "\n";
  }
  o += "# HELP deploynet_site_reports_total Byte reports received from visitors, per site.\n";
  o += "# TYPE deploynet_site_reports_total counter\n";
  for (const auto& [site, s] : sites_)
    line("deploynet_site_reports_total", "site=\"" + label(site) + "\"", s.reports);
  o += "# HELP deploynet_site_reports_dropped_total Reports not counted: the table of sites was "
       "full.\n";
  o += "# TYPE deploynet_site_reports_dropped_total counter\n";
  o += "deploynet_site_reports_dropped_total " + std::to_string(dropped_) + "\n";
}

}  // namespace deploynet::server
