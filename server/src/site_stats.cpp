#include "site_stats.hpp"

#include <openssl/evp.h>

#include <algorithm>
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

void SiteStats::add(const std::string& origin, const PeerId& view, const ViewCounts& counts,
                    std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  auto site = sites_.find(origin);
  if (site == sites_.end()) {
    if (sites_.size() >= max_sites_) {
      auto oldest = std::min_element(
          sites_.begin(), sites_.end(),
          [](const auto& a, const auto& b) { return a.second.last_ms < b.second.last_ms; });
      sites_.erase(oldest);
      ++evicted_sites_;
    }
    site = sites_.emplace(origin, Site{}).first;
  }
  site->second.last_ms = now_ms;

  std::string key = origin;
  key += '\n';
  key.append(reinterpret_cast<const char*>(view.bytes.data()), view.bytes.size());
  auto v = views_.find(key);
  if (v == views_.end()) {
    if (views_.size() >= kMaxViews) {
      views_.erase(view_ages_.front());
      view_ages_.pop_front();
      ++evicted_views_;
    }
    view_ages_.push_back(key);
    v = views_.emplace(std::move(key), View{now_ms, {}, std::prev(view_ages_.end())}).first;
  } else {
    view_ages_.splice(view_ages_.end(), view_ages_, v->second.age);
  }

  auto elapsed_s =
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, now_ms - v->second.first_ms) / 1000);
  std::uint64_t cap = kViewFloor + kViewBytesPerS * elapsed_s;
  bool clamped = false;
  auto grow = [&](std::uint64_t now, std::uint64_t& last) {
    if (now > cap) {
      now = cap;
      clamped = true;
    }
    std::uint64_t d = now > last ? now - last : 0;
    last = std::max(now, last);
    return d;
  };
  auto& last = v->second.last;
  auto& s = site->second.bytes;
  s.from_peers += grow(counts.from_peers, last.from_peers);
  s.from_origin += grow(counts.from_origin, last.from_origin);
  s.from_cache += grow(counts.from_cache, last.from_cache);
  s.uploaded += grow(counts.uploaded, last.uploaded);
  s.reports += 1;
  if (clamped) ++clamped_;
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
  for (const auto& [site, entry] : sites_) {
    const auto& s = entry.bytes;
    auto l = site_label(site);
    sample(o, "deploynet_site_bytes_total", l + ",source=\"peers\"", s.from_peers);
    sample(o, "deploynet_site_bytes_total", l + ",source=\"origin\"", s.from_origin);
    sample(o, "deploynet_site_bytes_total", l + ",source=\"cache\"", s.from_cache);
  }
  header(o, "deploynet_site_uploaded_bytes_total", "counter",
         "Bytes the site's visitors served to each other, as reported.");
  for (const auto& [site, entry] : sites_) {
    const auto& s = entry.bytes;
    sample(o, "deploynet_site_uploaded_bytes_total", site_label(site), s.uploaded);
  }
  header(o, "deploynet_site_offload_ratio", "gauge",
         "Share of the site's visitors' network bytes that came from peers instead of the origin.");
  for (const auto& [site, entry] : sites_) {
    const auto& s = entry.bytes;
    double total = static_cast<double>(s.from_peers) + static_cast<double>(s.from_origin);
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, "%.4f",
                  total > 0 ? static_cast<double>(s.from_peers) / total : 0.0);
    sample(o, "deploynet_site_offload_ratio", site_label(site), std::string_view(ratio));
  }
  header(o, "deploynet_site_reports_total", "counter",
         "Byte reports received from visitors, per site.");
  for (const auto& [site, entry] : sites_) {
    const auto& s = entry.bytes;
    sample(o, "deploynet_site_reports_total", site_label(site), s.reports);
  }
  prom::one(
      o, "deploynet_site_evicted_total", "counter",
      "Sites dropped from this table (the one reported least recently) to make room for another.",
      evicted_sites_);
  prom::one(
      o, "deploynet_site_views_evicted_total", "counter",
      "Page views whose last counts were forgotten to make room (a reconnect of one counts again).",
      evicted_views_);
  prom::one(o, "deploynet_site_reports_clamped_total", "counter",
            "Reports with counts beyond what a page view can have loaded in its time (cut there).",
            clamped_);
}

}  // namespace deploynet::server
