// deploynet-lab-link: the network lab's links. Each link joins two network namespaces with a
// TUN device in each and moves IP packets between them in user space, because this kernel has
// no netem: per direction a capacity (a serialisation queue with a bounded backlog, tail drop),
// a one-way delay with uniform jitter (packets never overtake each other) and random loss.
//
//   deploynet-lab-link LINK...     LINK = "nsA:ifA nsB:ifB key=value..."
//     ab_mbit, ba_mbit   capacity A->B and B->A in Mbit/s (0: unlimited)
//     delay_ms           one-way delay, both directions     jitter_ms  +- uniform, both
//     loss_pct           random loss, both directions       queue_ms   backlog before tail drop
//
// Prints "ready" once every device exists (the caller then configures addresses), runs until
// SIGTERM/SIGINT or until its stdin closes (so it never outlives the lab that started it).
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Ns = std::int64_t;  // nanoseconds, CLOCK_MONOTONIC

Ns now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Ns>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "deploynet-lab-link: %s\n", msg.c_str());
  std::exit(1);
}

struct Packet {
  Ns due;
  std::vector<std::uint8_t> bytes;
};

// One direction of a link.
struct Pipe {
  int in = -1, out = -1;
  double bits_per_ns = 0;  // 0: unlimited
  Ns delay = 0, jitter = 0, queue = 0;
  double loss = 0;
  Ns link_free = 0;  // when the transmitter finishes the packets already accepted
  Ns last_due = 0;   // FIFO: no packet is delivered before the one ahead of it
  std::deque<Packet> q;
  std::uint64_t sent = 0, dropped_loss = 0, dropped_queue = 0;
};

std::mt19937_64 rng{0x5eed};

void accept_packet(Pipe& p, std::vector<std::uint8_t> bytes, Ns now) {
  if (p.loss > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < p.loss) {
    ++p.dropped_loss;
    return;
  }
  Ns depart = now;
  if (p.bits_per_ns > 0) {
    Ns start = std::max(now, p.link_free);
    if (start - now > p.queue || p.q.size() > 100'000) {  // the router's buffer is full
      ++p.dropped_queue;
      return;
    }
    depart = start + static_cast<Ns>(static_cast<double>(bytes.size() * 8) / p.bits_per_ns);
    p.link_free = depart;
  }
  Ns j = p.jitter > 0 ? std::uniform_int_distribution<Ns>(-p.jitter, p.jitter)(rng) : 0;
  Ns due = std::max({depart + p.delay + j, p.last_due, now});
  p.last_due = due;
  p.q.push_back(Packet{due, std::move(bytes)});
}

int open_tun(const std::string& ns, const std::string& name, int home_ns) {
  std::string path = "/var/run/netns/" + ns;
  int nsfd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) die("no namespace " + ns + ": " + std::strerror(errno));
  if (setns(nsfd, CLONE_NEWNET) != 0) die("setns " + ns + ": " + std::strerror(errno));
  close(nsfd);
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die(std::string("/dev/net/tun: ") + std::strerror(errno));
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (name.size() >= IFNAMSIZ) die("interface name too long: " + name);
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0)
    die("TUNSETIFF " + ns + ":" + name + ": " + std::strerror(errno));
  if (setns(home_ns, CLONE_NEWNET) != 0) die(std::string("setns back: ") + std::strerror(errno));
  return fd;
}

std::pair<std::string, std::string> split_end(const std::string& s) {
  auto c = s.find(':');
  if (c == std::string::npos || c == 0 || c + 1 == s.size()) die("expected ns:interface, got " + s);
  return {s.substr(0, c), s.substr(c + 1)};
}

volatile sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::printf(
        "usage: deploynet-lab-link \"nsA:ifA nsB:ifB [ab_mbit=N] [ba_mbit=N] [delay_ms=N]\n"
        "         [jitter_ms=N] [loss_pct=N] [queue_ms=N]\" ...\n"
        "Joins namespaces with TUN links of a capacity, delay, jitter and loss per direction.\n");
    return argc < 2 ? 2 : 0;
  }
  int home_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home_ns < 0) die("cannot open own network namespace");
  std::vector<Pipe> pipes;
  pipes.reserve(2 * static_cast<std::size_t>(argc));
  for (int i = 1; i < argc; ++i) {
    std::istringstream spec(argv[i]);
    std::string a, b, kv;
    spec >> a >> b;
    auto [ns_a, if_a] = split_end(a);
    auto [ns_b, if_b] = split_end(b);
    double ab = 0, ba = 0, delay = 0, jitter = 0, loss = 0, queue = 200;
    while (spec >> kv) {
      auto eq = kv.find('=');
      if (eq == std::string::npos) die("expected key=value, got " + kv);
      auto key = kv.substr(0, eq);
      char* end = nullptr;
      double v = std::strtod(kv.c_str() + eq + 1, &end);
      if (*end != '\0' || v < 0) die("bad value in " + kv);
      if (key == "ab_mbit")
        ab = v;
      else if (key == "ba_mbit")
        ba = v;
      else if (key == "delay_ms")
        delay = v;
      else if (key == "jitter_ms")
        jitter = v;
      else if (key == "loss_pct")
        loss = v;
      else if (key == "queue_ms")
        queue = v;
      else
        die("unknown key " + key);
    }
    int fa = open_tun(ns_a, if_a, home_ns);
    int fb = open_tun(ns_b, if_b, home_ns);
    auto make = [&](int in, int out, double mbit) {
      Pipe p;
      p.in = in;
      p.out = out;
      p.bits_per_ns = mbit * 1e6 / 1e9;
      p.delay = static_cast<Ns>(delay * 1e6);
      p.jitter = static_cast<Ns>(jitter * 1e6);
      p.queue = static_cast<Ns>(queue * 1e6);
      p.loss = loss / 100.0;
      return p;
    };
    pipes.push_back(make(fa, fb, ab));
    pipes.push_back(make(fb, fa, ba));
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::printf("ready\n");
  std::fflush(stdout);

  std::vector<pollfd> fds(pipes.size() + 1);
  fds.back() = pollfd{STDIN_FILENO, POLLIN, 0};
  std::vector<std::uint8_t> buf(65536);
  while (!g_stop) {
    Ns now = now_ns();
    Ns next = now + 1'000'000'000;
    for (auto& p : pipes) {
      while (!p.q.empty() && p.q.front().due <= now) {
        auto& pkt = p.q.front();
        if (write(p.out, pkt.bytes.data(), pkt.bytes.size()) > 0) ++p.sent;
        p.q.pop_front();
      }
      if (!p.q.empty()) next = std::min(next, p.q.front().due);
    }
    for (std::size_t i = 0; i < pipes.size(); ++i) fds[i] = pollfd{pipes[i].in, POLLIN, 0};
    Ns wait = std::max<Ns>(0, next - now);
    timespec ts{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
    int n = ppoll(fds.data(), fds.size(), &ts, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      die(std::string("ppoll: ") + std::strerror(errno));
    }
    if (fds.back().revents) {
      char c;
      if (read(STDIN_FILENO, &c, 1) <= 0) break;  // the lab is gone
    }
    now = now_ns();
    for (std::size_t i = 0; i < pipes.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      for (int k = 0; k < 256; ++k) {  // bounded, so one busy link cannot starve the others
        ssize_t r = read(pipes[i].in, buf.data(), buf.size());
        if (r <= 0) break;
        accept_packet(pipes[i], std::vector<std::uint8_t>(buf.begin(), buf.begin() + r), now);
      }
    }
  }
  for (std::size_t i = 0; i < pipes.size(); i += 2) {
    std::fprintf(
        stderr, "link %zu: sent %llu/%llu, lost %llu/%llu, queue drops %llu/%llu\n", i / 2,
        (unsigned long long)pipes[i].sent, (unsigned long long)pipes[i + 1].sent,
        (unsigned long long)pipes[i].dropped_loss, (unsigned long long)pipes[i + 1].dropped_loss,
        (unsigned long long)pipes[i].dropped_queue, (unsigned long long)pipes[i + 1].dropped_queue);
  }
  return 0;
}
