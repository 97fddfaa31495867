#pragma once

// A sweep's curves as an SVG: offload (share of bytes from peers) and page load against the
// plain site, one line per policy, against concurrent visitors on a log scale.

#include <string>
#include <vector>

#include "deploynet/sim/model.hpp"

namespace deploynet::sim {

struct SweepPoint {
  double concurrent = 0;
  std::vector<Results> results;  // one per policy, the plain site's first when it ran
};

void write_sweep_svg(const std::string& path, const std::string& title,
                     const std::vector<SweepPoint>& points);

}  // namespace deploynet::sim
