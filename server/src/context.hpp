#pragma once

#include "cluster.hpp"
#include "config.hpp"
#include "metrics.hpp"
#include "sharded_tracker.hpp"
#include "site_stats.hpp"

namespace deploynet::server {

// What a WebSocket connection needs of the server: its settings and counters, the swarms, the
// sites' savings and the cluster link. Connections hold this, not the Server, which owns the
// threads, the acceptor, the connection slots and the HTTP endpoints.
struct Context {
  const Config& config;
  Metrics& metrics;
  ShardedTracker& tracker;
  SiteStats& sites;
  Cluster* cluster = nullptr;  // cluster mode only
};

}  // namespace deploynet::server
