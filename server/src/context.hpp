#pragma once

#include <string>

#include "cluster.hpp"
#include "config.hpp"
#include "metrics.hpp"
#include "sharded_tracker.hpp"
#include "site_stats.hpp"

namespace deploynet::server {

// What a connection needs of the server: its settings and counters, the swarms, the sites'
// savings and the cluster link. Connections hold this, not the Server, which owns the threads,
// the acceptor and the connection slots.
struct Context {
  const Config& config;
  Metrics& metrics;
  ShardedTracker& tracker;
  SiteStats& sites;
  Cluster* cluster = nullptr;  // cluster mode only
};

// The status pages an HTTP session serves, rendered by the one who sees every worker and the
// cluster (the Server).
class StatusPages {
 public:
  struct Answer {
    unsigned status;
    std::string body;  // application/json
  };
  virtual std::string render_health() = 0;
  virtual std::string render_metrics() = 0;
  // POST /deploy: a site's signed deploy notice, pushed to its open pages when it holds.
  virtual Answer deploy_notice(std::string_view body) = 0;
  // The push for a page of `origin` that connects while its site is turned off by a signed
  // notice (the kill switch); empty when the site is on.
  virtual std::string disabled_push(std::string_view origin) = 0;

 protected:
  ~StatusPages() = default;
};

}  // namespace deploynet::server
