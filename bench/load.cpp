// deploynet-load (make bench's load tool): real WebSocket clients on loopback against a
// WebTorrent-protocol tracker.
//
// Every client joins a swarm, then announces with offers; the server sends each announcer a
// reply and each offer to another peer. The tool counts what the clients receive, measures the
// time from an announce to its offer arriving at another peer (the send time travels inside
// the offer's SDP), and reads the server's CPU time and RSS from /proc, since the tool and the
// server share the machine's cores and raw rates alone would mislead.
//
// Modes:
//   saturate  every client keeps one announce in flight (closed loop): peak throughput
//   rate      announces at a fixed total rate (open loop): latency at a chosen load
//   idle      connect, announce once, report "ready", hold until stdin closes: memory

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/program_options.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace po = boost::program_options;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<tcp::endpoint> servers;  // clients connect to them in turn (a cluster's nodes)
  std::string mode = "saturate";
  unsigned conns = 200;
  unsigned swarm_size = 10;
  unsigned offers = 5;
  double rate = 1000;
  double warmup_s = 1;
  double duration_s = 5;
  std::vector<int> server_pids;  // their CPU time is summed (nodes, and Redis for a cluster)
  std::vector<std::string> sources;
  unsigned sdp_bytes = 400;
  std::string tag = "b";
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string random_id(std::mt19937_64& rng) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string s(20, 'x');
  for (auto& c : s) c = kAlphabet[rng() % 62];
  return s;
}

// Process CPU time (user + system) in seconds, and resident memory in bytes, from /proc.
double proc_cpu_seconds(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  auto close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15; ++i) {
    rest >> field;
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

class Bench;

class Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(net::io_context& ioc, Bench& bench, std::string info_hash, std::string peer_id)
      : ws_(ioc), bench_(bench), info_hash_(std::move(info_hash)), peer_id_(std::move(peer_id)) {}

  void start(const tcp::endpoint& server, const std::string& source);
  void send_announce(bool started);
  bool awaiting_reply() const { return awaiting_reply_; }
  bool open() const { return open_; }

 private:
  void on_connect(beast::error_code ec);
  void on_handshake(beast::error_code ec);
  void do_read();
  void on_read(beast::error_code ec, std::size_t);
  void do_write();
  void on_write(beast::error_code ec, std::size_t);

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  Bench& bench_;
  std::string info_hash_;
  std::string peer_id_;
  std::deque<std::string> queue_;
  bool writing_ = false;
  bool awaiting_reply_ = false;
  bool open_ = false;
};

class Bench {
 public:
  explicit Bench(Options o) : opt_(std::move(o)), rng_(std::random_device{}()) {}

  int run();

  // Called by connections.
  void on_open() { ++opened_; }
  void on_failed(const char* what, beast::error_code ec) {
    if (failed_++ < 5) std::cerr << "bench: " << what << ": " << ec.message() << "\n";
  }
  void on_reply(Conn& c);
  void on_offer(std::int64_t sent_ns);
  void on_other() { ++received_; }
  std::string make_announce(const std::string& ih, const std::string& pid, bool started);

 private:
  void connect_all();
  void wait_until(const std::function<bool()>& done, double timeout_s, const char* what);
  void run_for(double seconds);
  void report(double seconds, double cpu0, double cpu1);

  Options opt_;
  std::mt19937_64 rng_;
  net::io_context ioc_{1};
  std::vector<std::shared_ptr<Conn>> conns_;
  std::size_t opened_ = 0;
  std::size_t failed_ = 0;
  std::size_t joined_ = 0;
  bool joining_ = true;
  bool measuring_ = false;
  bool closed_loop_ = false;
  std::uint64_t received_ = 0;
  std::uint64_t replies_ = 0;
  std::uint64_t offers_ = 0;
  std::uint64_t sent_ = 0;
  std::vector<std::uint32_t> latencies_us_;
};

void Conn::start(const tcp::endpoint& server, const std::string& source) {
  auto& sock = beast::get_lowest_layer(ws_).socket();
  beast::error_code ec;
  sock.open(tcp::v4(), ec);
  if (!source.empty()) {
    sock.bind(tcp::endpoint(net::ip::make_address(source), 0), ec);
    if (ec) return bench_.on_failed("bind", ec);
  }
  sock.async_connect(server, beast::bind_front_handler(&Conn::on_connect, shared_from_this()));
}

void Conn::on_connect(beast::error_code ec) {
  if (ec) return bench_.on_failed("connect", ec);
  beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true));
  ws_.async_handshake("127.0.0.1", "/",
                      beast::bind_front_handler(&Conn::on_handshake, shared_from_this()));
}

void Conn::on_handshake(beast::error_code ec) {
  if (ec) return bench_.on_failed("handshake", ec);
  open_ = true;
  bench_.on_open();
  ws_.text(true);
  do_read();
  send_announce(true);
}

void Conn::send_announce(bool started) {
  awaiting_reply_ = true;
  queue_.push_back(bench_.make_announce(info_hash_, peer_id_, started));
  if (!writing_) do_write();
}

void Conn::do_write() {
  writing_ = true;
  ws_.async_write(net::buffer(queue_.front()),
                  beast::bind_front_handler(&Conn::on_write, shared_from_this()));
}

void Conn::on_write(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (ec) return bench_.on_failed("write", ec);
  queue_.pop_front();
  if (!queue_.empty()) do_write();
}

void Conn::do_read() {
  ws_.async_read(buffer_, beast::bind_front_handler(&Conn::on_read, shared_from_this()));
}

void Conn::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    open_ = false;
    if (ec != net::error::operation_aborted) bench_.on_failed("read", ec);
    return;
  }
  auto data = buffer_.cdata();
  std::string_view msg(static_cast<const char*>(data.data()), data.size());
  if (msg.find("\"offer\":") != std::string_view::npos) {
    auto at = msg.find("ts:");
    bench_.on_offer(at == std::string_view::npos ? 0 : std::atoll(msg.data() + at + 3));
  } else if (msg.find("\"complete\":") != std::string_view::npos) {
    awaiting_reply_ = false;
    bench_.on_reply(*this);
  } else {
    bench_.on_other();
  }
  buffer_.consume(buffer_.size());
  do_read();
}

std::string Bench::make_announce(const std::string& ih, const std::string& pid, bool started) {
  std::string s;
  s.reserve(200 + opt_.offers * (opt_.sdp_bytes + 80));
  s += R"({"action":"announce","info_hash":")";
  s += ih;
  s += R"(","peer_id":")";
  s += pid;
  s += R"(","numwant":)";
  s += std::to_string(started ? 0 : opt_.offers);
  s += R"(,"uploaded":0,"downloaded":0,"left":1000,"event":")";
  s += started ? "started" : "update";
  s += R"(","offers":[)";
  if (!started) {
    auto ts = std::to_string(now_ns());
    for (unsigned i = 0; i < opt_.offers; ++i) {
      if (i) s += ',';
      s += R"({"offer_id":")";
      s += random_id(rng_);
      s += R"(","offer":{"type":"offer","sdp":"v=0\r\nts:)";
      s += ts;
      s += R"(\r\na=x-pad:)";
      s.append(opt_.sdp_bytes, 'p');
      s += R"(\r\n"}})";
    }
  }
  s += "]}";
  ++sent_;
  return s;
}

void Bench::on_reply(Conn& c) {
  ++received_;
  if (joining_) {
    ++joined_;
    return;
  }
  if (measuring_) ++replies_;
  if (closed_loop_) c.send_announce(false);
}

void Bench::on_offer(std::int64_t sent_ns) {
  ++received_;
  if (!measuring_) return;
  ++offers_;
  if (sent_ns > 0 && latencies_us_.size() < 4'000'000) {
    latencies_us_.push_back(static_cast<std::uint32_t>((now_ns() - sent_ns) / 1000));
  }
}

void Bench::wait_until(const std::function<bool()>& done, double timeout_s, const char* what) {
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (!done()) {
    if (Clock::now() > deadline) {
      std::cerr << "bench: timed out: " << what << "\n";
      std::exit(1);
    }
    ioc_.run_for(std::chrono::milliseconds(10));
  }
}

void Bench::connect_all() {
  unsigned swarms = std::max(1u, opt_.conns / std::max(1u, opt_.swarm_size));
  for (unsigned i = 0; i < opt_.conns; ++i) {
    // Swarm ids: the tag keeps processes apart or together, as the caller chooses.
    std::string ih = opt_.tag + "-swarm-" + std::to_string(i % swarms);
    ih.resize(20, '.');
    auto c = std::make_shared<Conn>(ioc_, *this, ih, random_id(rng_));
    conns_.push_back(c);
    c->start(opt_.servers[i % opt_.servers.size()],
             opt_.sources.empty() ? "" : opt_.sources[i % opt_.sources.size()]);
    // Pace connection setup so the listen backlog never overflows.
    if (i % 500 == 499) ioc_.run_for(std::chrono::milliseconds(20));
  }
  wait_until([&] { return opened_ + failed_ >= opt_.conns; }, 120, "connections");
  if (failed_) {
    std::cerr << "bench: " << failed_ << " of " << opt_.conns << " connections failed\n";
    std::exit(1);
  }
  wait_until([&] { return joined_ >= opt_.conns; }, 120, "first announces");
  joining_ = false;
}

void Bench::run_for(double seconds) {
  auto end = Clock::now() + std::chrono::duration<double>(seconds);
  if (opt_.mode == "saturate") {
    while (Clock::now() < end) ioc_.run_for(std::chrono::milliseconds(5));
    return;
  }
  // Open loop at a fixed total rate, clients in turn.
  auto start = Clock::now();
  std::uint64_t issued = 0;
  std::size_t next = 0;
  while (Clock::now() < end) {
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    auto due = static_cast<std::uint64_t>(elapsed * opt_.rate);
    while (issued < due) {
      conns_[next]->send_announce(false);
      next = (next + 1) % conns_.size();
      ++issued;
    }
    ioc_.run_for(std::chrono::microseconds(500));
  }
}

int Bench::run() {
  connect_all();
  if (opt_.mode == "idle") {
    std::cout << "ready conns=" << opened_ << std::endl;
    std::thread io([&] {
      auto guard = net::make_work_guard(ioc_);
      ioc_.run();
    });
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    std::_Exit(0);  // sockets close with the process; nothing else to clean
  }
  closed_loop_ = opt_.mode == "saturate";
  if (closed_loop_) {
    for (auto& c : conns_) c->send_announce(false);
  }
  run_for(opt_.warmup_s);
  auto servers_cpu = [&] {
    double sum = 0;
    for (int pid : opt_.server_pids) sum += proc_cpu_seconds(pid);
    return sum;
  };
  double cpu0 = servers_cpu();
  auto t0 = Clock::now();
  measuring_ = true;
  auto received0 = received_;
  run_for(opt_.duration_s);
  measuring_ = false;
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu1 = servers_cpu();
  received_ = received_ - received0;
  report(secs, cpu0, cpu1);
  return 0;
}

void Bench::report(double seconds, double cpu0, double cpu1) {
  std::sort(latencies_us_.begin(), latencies_us_.end());
  auto pct = [&](double p) {
    if (latencies_us_.empty()) return 0.0;
    auto i = static_cast<std::size_t>(p * static_cast<double>(latencies_us_.size() - 1));
    return latencies_us_[i] / 1000.0;
  };
  double cpu = cpu1 - cpu0;
  std::printf("mode=%s conns=%u swarm_size=%u offers=%u seconds=%.2f\n", opt_.mode.c_str(),
              opt_.conns, opt_.swarm_size, opt_.offers, seconds);
  std::printf("announces_per_s=%.0f\n", static_cast<double>(replies_) / seconds);
  std::printf("messages_per_s=%.0f\n", static_cast<double>(received_) / seconds);
  std::printf("offers_per_s=%.0f\n", static_cast<double>(offers_) / seconds);
  std::printf("server_cpu_s=%.2f\n", cpu);
  std::printf("messages_per_server_cpu_s=%.0f\n",
              cpu > 0 ? static_cast<double>(received_) / cpu : 0.0);
  std::printf("latency_p50_ms=%.3f\nlatency_p99_ms=%.3f\nlatency_samples=%zu\n", pct(0.50),
              pct(0.99), latencies_us_.size());
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::vector<std::string> urls;
  std::string sources;
  po::options_description opts(
      "deploynet-load: load a WebTorrent-protocol tracker with real WebSocket clients on\n"
      "loopback and report throughput, server CPU efficiency, discovery latency and memory.\n\n"
      "Options");
  // clang-format off
  opts.add_options()
    ("help,h", "print this help")
    ("url", po::value(&urls)->composing(), "tracker to load (ws://HOST:PORT, loopback only; default ws://127.0.0.1:8000); repeatable: clients spread over the nodes of a cluster")
    ("mode", po::value(&o.mode)->default_value(o.mode), "saturate, rate or idle")
    ("conns", po::value(&o.conns)->default_value(o.conns), "client connections")
    ("swarm-size", po::value(&o.swarm_size)->default_value(o.swarm_size), "peers per swarm")
    ("offers", po::value(&o.offers)->default_value(o.offers), "offers per announce (the WebTorrent client sends up to 5)")
    ("sdp-bytes", po::value(&o.sdp_bytes)->default_value(o.sdp_bytes), "padding in each offer's SDP")
    ("rate", po::value(&o.rate)->default_value(o.rate), "announces per second in all (mode rate)")
    ("warmup", po::value(&o.warmup_s)->default_value(o.warmup_s), "seconds before measuring")
    ("duration", po::value(&o.duration_s)->default_value(o.duration_s), "seconds measured")
    ("server-pid", po::value(&o.server_pids)->composing(), "server process, for its CPU time; repeatable (summed)")
    ("sources", po::value(&sources), "comma-separated local addresses to connect from (127.0.0.x)")
    ("tag", po::value(&o.tag)->default_value(o.tag), "prefix of swarm ids (processes with one tag share swarms)");
  // clang-format on
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "deploynet-load: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << opts << "\n";
    return 0;
  }
  if (urls.empty()) urls.push_back("ws://127.0.0.1:8000");
  for (const auto& url : urls) {
    auto colon = url.rfind(':');
    if (url.rfind("ws://", 0) != 0 || colon == std::string::npos || colon < 5) {
      std::cerr << "deploynet-load: --url: expected ws://HOST:PORT\n";
      return 2;
    }
    beast::error_code ec;
    auto addr = net::ip::make_address(url.substr(5, colon - 5), ec);
    if (ec || !addr.is_loopback()) {
      std::cerr << "deploynet-load: --url: only loopback addresses are loaded\n";
      return 2;
    }
    o.servers.emplace_back(addr, static_cast<std::uint16_t>(std::atoi(url.c_str() + colon + 1)));
  }
  std::stringstream ss(sources);
  for (std::string s; std::getline(ss, s, ',');) {
    if (!s.empty()) o.sources.push_back(s);
  }
  if (o.mode != "saturate" && o.mode != "rate" && o.mode != "idle") {
    std::cerr << "deploynet-load: --mode: saturate, rate or idle\n";
    return 2;
  }
  if (o.conns == 0 || o.swarm_size < 2 || o.offers == 0 || o.rate <= 0 || o.duration_s <= 0) {
    std::cerr << "deploynet-load: --conns, --offers, --rate, --duration must be positive and "
                 "--swarm-size at least 2\n";
    return 2;
  }
  return Bench(std::move(o)).run();
}
