#include "deploynet/sim/plot.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace deploynet::sim {
namespace {

const char* color_of(Policy p) {
  switch (p) {
    case Policy::kPlain:
      return "#888888";
    case Policy::kRandom:
      return "#d95f02";
    case Policy::kDeployNet:
      return "#1b9e77";
  }
  return "#000000";
}

// One panel: y against log10(x), a line per policy.
void panel(std::ostream& out, double x0, double y0, double w, double h, const std::string& label,
           double ymax, const std::vector<SweepPoint>& points,
           double (*value)(const Results&, const Results*)) {
  double lo = 1e300, hi = 0;
  for (const auto& p : points) {
    lo = std::min(lo, std::log10(std::max(p.concurrent, 1.0)));
    hi = std::max(hi, std::log10(std::max(p.concurrent, 1.0)));
  }
  if (hi <= lo) hi = lo + 1;
  auto px = [&](double c) { return x0 + w * (std::log10(std::max(c, 1.0)) - lo) / (hi - lo); };
  auto py = [&](double v) { return y0 + h - h * std::clamp(v / ymax, 0.0, 1.0); };
  out << "<rect x='" << x0 << "' y='" << y0 << "' width='" << w << "' height='" << h
      << "' fill='none' stroke='#ccc'/>\n";
  out << "<text x='" << x0 << "' y='" << y0 - 8 << "' font-size='13'>" << label << "</text>\n";
  for (int i = 0; i <= 4; ++i) {
    const double v = ymax * i / 4;
    out << "<text x='" << x0 - 6 << "' y='" << py(v) + 4 << "' font-size='10' text-anchor='end'>"
        << v << "</text>\n";
  }
  for (const auto& p : points)
    out << "<text x='" << px(p.concurrent) << "' y='" << y0 + h + 14
        << "' font-size='10' text-anchor='middle'>" << p.concurrent << "</text>\n";
  std::map<Policy, std::string> lines;
  for (const auto& p : points) {
    const Results* plain = nullptr;
    for (const auto& r : p.results)
      if (r.policy == Policy::kPlain) plain = &r;
    for (const auto& r : p.results) {
      const double v = value(r, plain);
      if (!std::isfinite(v)) continue;
      std::ostringstream pt;
      pt << px(p.concurrent) << ',' << py(v) << ' ';
      lines[r.policy] += pt.str();
    }
  }
  for (const auto& [policy, pts] : lines)
    out << "<polyline fill='none' stroke-width='2' stroke='" << color_of(policy) << "' points='"
        << pts << "'/>\n";
}

}  // namespace

void write_sweep_svg(const std::string& path, const std::string& title,
                     const std::vector<SweepPoint>& points) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write " + path);
  out << "<svg xmlns='http://www.w3.org/2000/svg' width='1000' height='330' "
         "font-family='sans-serif'>\n<rect width='100%' height='100%' fill='white'/>\n";
  out << "<text x='20' y='22' font-size='15'>" << title
      << ": concurrent visitors (log scale)</text>\n";
  panel(out, 50, 60, 270, 210, "origin bytes, x the plain site", 1.2, points,
        [](const Results& r, const Results* plain) {
          return plain && plain->origin_bytes > 0 ? r.origin_bytes / plain->origin_bytes : NAN;
        });
  panel(out, 375, 60, 270, 210, "share of bytes from peers", 1.0, points,
        [](const Results& r, const Results*) { return r.peer_share(); });
  panel(out, 700, 60, 270, 210, "page load, median, x the plain site", 2.0, points,
        [](const Results& r, const Results* plain) {
          return plain && plain->page_load_ms.median > 0
                     ? r.page_load_ms.median / plain->page_load_ms.median
                     : NAN;
        });
  double x = 60;
  for (Policy p : {Policy::kPlain, Policy::kRandom, Policy::kDeployNet}) {
    out << "<rect x='" << x << "' y='305' width='14' height='4' fill='" << color_of(p) << "'/>"
        << "<text x='" << x + 20 << "' y='311' font-size='11'>" << policy_name(p) << "</text>\n";
    x += 110;
  }
  out << "</svg>\n";
}

}  // namespace deploynet::sim
