// The site shapes and network profiles the simulator knows, after the lab's (lab/profiles/*.json,
// examples/*). Sizes are the lab sites' own, rounded.

#include <stdexcept>

#include "deploynet/sim/model.hpp"

namespace deploynet::sim {
namespace {

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * 1024;

// A content id that depends only on the name (the simulator needs distinct, stable ids, not
// hashes of bytes): splitmix64 over the name's characters, spread over 32 bytes.
ContentId id_of(const std::string& name) {
  std::uint64_t x = 0x6a09e667f3bcc908ull;
  for (unsigned char c : name) x = (x ^ c) * 0x100000001b3ull;
  ContentId id{};
  for (std::size_t i = 0; i < id.size(); i += 8) {
    x += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    for (std::size_t b = 0; b < 8; ++b) id[i + b] = static_cast<std::uint8_t>(z >> (56 - 8 * b));
  }
  return id;
}

Asset file(const std::string& name, std::uint64_t bytes, bool urgent = true, double delay_ms = 0) {
  return Asset{name, bytes, urgent, delay_ms, 0, id_of(name)};
}

}  // namespace

std::uint64_t Site::bytes_of_page(std::size_t page) const {
  std::uint64_t n = assets[0].bytes;
  for (auto a : pages[page]) n += assets[a].bytes;
  return n;
}

Site Site::by_name(const std::string& name) {
  Site s;
  s.name = name;
  if (name == "blog") {
    // A small blog: three articles sharing a stylesheet, a script and a font; two images each,
    // the second one below the fold (lazy).
    s.assets = {file("/index.html", 24 * kKiB), file("/site.css", 40 * kKiB),
                file("/app.js", 90 * kKiB), file("/font.woff2", 60 * kKiB)};
    for (int p = 0; p < 3; ++p) {
      const std::string n = std::to_string(p);
      s.assets.push_back(file("/img/hero" + n + ".jpg", 180 * kKiB));
      s.assets.push_back(file("/img/figure" + n + ".jpg", 220 * kKiB, false, 2000));
      s.pages.push_back(
          {1, 2, 3, static_cast<std::uint16_t>(4 + 2 * p), static_cast<std::uint16_t>(5 + 2 * p)});
    }
  } else if (name == "demo") {
    // examples/demo-site as generated: three pages sharing a stylesheet, a script, a vendor
    // bundle and three fonts; eight photos, six on the index, six on the gallery (two of them
    // new), three on the about page (none new). 3.9 MiB in all, a first view 3.5 MiB.
    s.assets = {file("/index.html", 3400),
                file("/css/site.css", 2200),
                file("/js/app.js", 1600),
                file("/js/vendor.js", 572 * kKiB),
                file("/fonts/DejaVuSans.ttf", 742 * kKiB),
                file("/fonts/DejaVuSans-Bold.ttf", 692 * kKiB),
                file("/fonts/DejaVuSerif.ttf", 372 * kKiB)};
    for (int i = 0; i < 8; ++i)
      s.assets.push_back(file("/img/photo-" + std::to_string(i + 1) + ".png", 178 * kKiB));
    auto page = [](int first, int last) {
      std::vector<std::uint16_t> p = {1, 2, 3, 4, 5, 6};
      for (int i = first; i <= last; ++i) p.push_back(static_cast<std::uint16_t>(6 + i));
      return p;
    };
    s.pages = {page(1, 6), page(3, 8), page(6, 8)};
  } else if (name == "spa") {
    // examples/spa: Swagger UI (a bundle, its stylesheet, a preset) and an OpenAPI document.
    s.assets = {file("/index.html", 2 * kKiB), file("/swagger-ui-bundle.js", 1400 * kKiB),
                file("/swagger-ui.css", 150 * kKiB),
                file("/swagger-ui-standalone-preset.js", 230 * kKiB),
                file("/openapi.json", 120 * kKiB)};
    s.pages = {{1, 2, 3, 4}};
  } else if (name == "media") {
    // examples/media's video page: a 100 s 720p VP9 video at 4 Mbit/s.
    Asset video = file("/video.webm", 47 * kMiB + 512 * kKiB, false, 0);
    video.bitrate_mbit = 4;
    s.assets = {file("/video.html", 3 * kKiB), file("/media.css", 3 * kKiB), video};
    s.pages = {{1, 2}};
  } else if (name == "one-file") {
    // The closed-form case: a page and one patient file, asked for 10 s after the page.
    s.assets = {file("/index.html", 1 * kKiB), file("/data.bin", 4 * kMiB, false, 10000)};
    s.pages = {{1}};
  } else {
    throw std::invalid_argument("unknown site '" + name + "' (blog, demo, spa, media, one-file)");
  }
  if (s.assets.size() > 64) throw std::invalid_argument("a site has at most 64 files");
  return s;
}

Profile Profile::by_name(const std::string& name) {
  Profile p;
  p.name = name;
  Region home{"home", 1, 50, 10, 10, 40, 40};
  if (name == "broadband") {
    p.regions = {home};
    p.origin_up_mbit = 200;
  } else if (name == "flash-crowd") {
    p.regions = {home};
    p.origin_up_mbit = 20;
  } else if (name == "lan") {
    p.regions = {{"lan", 1, 0, 0, 0.1, 0.1, 0.1}};
    p.origin_up_mbit = 0;
    p.hard_nat_share = 0;
  } else if (name == "cdn-edge") {
    Region r = home;
    r.origin_ms = 5;
    p.regions = {r};
    p.origin_up_mbit = 1000;
  } else if (name == "world") {
    // Three regions of home broadband around one origin in the first. The origin is sized
    // for whatever it is asked (what it carries is the figure of interest at scale).
    p.regions = {{"eu", 0.4, 50, 10, 10, 15, 15},
                 {"na", 0.4, 100, 20, 10, 45, 45},
                 {"ap", 0.2, 30, 5, 15, 110, 110}};
    p.origin_up_mbit = 0;
    p.cross_region_ms = 60;
  } else {
    throw std::invalid_argument("unknown profile '" + name +
                                "' (broadband, flash-crowd, lan, cdn-edge, world)");
  }
  return p;
}

const char* policy_name(Policy p) {
  switch (p) {
    case Policy::kPlain:
      return "plain";
    case Policy::kRandom:
      return "random";
    case Policy::kDeployNet:
      return "deploynet";
  }
  return "?";
}

}  // namespace deploynet::sim
