#include "cluster.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

#include <array>
#include <chrono>
#include <cstring>

#include "deploynet/cluster_codec.hpp"
#include "log.hpp"
#include "sharded_tracker.hpp"

namespace deploynet::server {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;
const std::string kMembersChannel = "deploynet:members";
// Deploy notices accepted by a node, as posted (signed JSON): every node checks them again.
const std::string kNoticesChannel = "deploynet:notices";
constexpr std::size_t kMaxNotice = 4096;  // the HTTP body limit of POST /deploy
const std::string kNodesKey = "deploynet:nodes";
// Messages waiting for the cluster thread; past this, relays are dropped (and counted) and
// membership is re-published whole once the backlog is gone.
constexpr std::size_t kMaxQueued = 65'536;
// Bytes hiredis may hold unsent (Redis slower than the swarms): past this, relays are dropped.
constexpr std::size_t kMaxUnsent = 64u << 20;
constexpr auto kConnectTimeout = std::chrono::seconds(3);
using cluster::MemberMessage;

std::string node_channel(std::uint32_t node) {
  return "deploynet:node:" + std::to_string(node);
}
std::string peers_key(std::uint32_t node) {
  return "deploynet:peers:" + std::to_string(node);
}
std::string alive_key(std::uint32_t node) {
  return "deploynet:alive:" + std::to_string(node);
}

}  // namespace

bool parse_redis_url(const std::string& url, ClusterConfig& cfg) {
  const std::string scheme = "redis://";
  if (url.rfind(scheme, 0) != 0) return false;
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  // A user name may come before the host (redis://user@host); a password never does (it would
  // show in the process list): --redis-password-file.
  if (auto at = rest.find('@'); at != std::string::npos) {
    cfg.redis_user = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (cfg.redis_user.empty() || cfg.redis_user.find(':') != std::string::npos) return false;
  }
  if (rest.empty() || rest.find_first_of("/@?#") != std::string::npos) return false;
  auto colon = rest.rfind(':');
  cfg.redis_port = 6379;
  if (colon != std::string::npos && rest.find(']') == std::string::npos) {
    try {
      std::size_t used = 0;
      auto p = std::stoul(rest.substr(colon + 1), &used);
      if (used != rest.size() - colon - 1 || p == 0 || p > 65535) return false;
      cfg.redis_port = static_cast<std::uint16_t>(p);
    } catch (...) {
      return false;
    }
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return false;
  cfg.redis_host = rest;
  return true;
}

// One hiredis async context driven by the cluster's io_context: its fd is watched with
// async_wait and hiredis does the reading and writing.
struct Cluster::Conn {
  struct Events : std::enable_shared_from_this<Events> {
    explicit Events(net::io_context& ioc, int fd) : sd(ioc, fd) {}
    net::posix::stream_descriptor sd;
    redisAsyncContext* ac = nullptr;
    bool want_read = false, want_write = false, read_armed = false, write_armed = false;
    std::shared_ptr<Events> self;  // held until hiredis' cleanup hook

    void arm_read() {
      if (read_armed || !ac) return;
      read_armed = true;
      sd.async_wait(net::posix::stream_descriptor::wait_read,
                    [e = shared_from_this()](const boost::system::error_code& ec) {
                      e->read_armed = false;
                      if (ec || !e->ac || !e->want_read) return;
                      redisAsyncHandleRead(e->ac);
                      if (e->ac && e->want_read) e->arm_read();
                    });
    }
    void arm_write() {
      if (write_armed || !ac) return;
      write_armed = true;
      sd.async_wait(net::posix::stream_descriptor::wait_write,
                    [e = shared_from_this()](const boost::system::error_code& ec) {
                      e->write_armed = false;
                      if (ec || !e->ac || !e->want_write) return;
                      redisAsyncHandleWrite(e->ac);
                      if (e->ac && e->want_write) e->arm_write();
                    });
    }
    static void add_read(void* p) {
      auto* e = static_cast<Events*>(p);
      e->want_read = true;
      e->arm_read();
    }
    static void del_read(void* p) { static_cast<Events*>(p)->want_read = false; }
    static void add_write(void* p) {
      auto* e = static_cast<Events*>(p);
      e->want_write = true;
      e->arm_write();
    }
    static void del_write(void* p) { static_cast<Events*>(p)->want_write = false; }
    static void cleanup(void* p) {
      auto* e = static_cast<Events*>(p);
      e->ac = nullptr;
      boost::system::error_code ignored;
      e->sd.cancel(ignored);
      e->sd.release();                 // hiredis closes the fd
      auto keep = std::move(e->self);  // the last reference may be a pending wait's
    }
  };

  Cluster* owner = nullptr;
  redisAsyncContext* ac = nullptr;
  bool connected = false;
  const char* name = "";
};

Cluster::Cluster(ClusterConfig config, ShardedTracker& tracker, Metrics& metrics,
                 std::function<void(std::vector<Outgoing>&)> deliver)
    : config_(std::move(config)),
      tracker_(tracker),
      metrics_(metrics),
      deliver_(std::move(deliver)),
      heartbeat_timer_(ioc_),
      reconnect_timer_(ioc_) {
  std::array<unsigned char, 8> raw{};
  RAND_bytes(raw.data(), static_cast<int>(raw.size()));
  auto pid = static_cast<std::uint32_t>(::getpid());
  nonce_ = std::to_string(pid) + "-";
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char b : raw) {
    nonce_ += kHex[b >> 4];
    nonce_ += kHex[b & 15];
  }
}

Cluster::~Cluster() {
  stop();
}

void Cluster::start() {
  net::post(ioc_, [this] { connect(); });
  thread_ = std::thread([this] {
    auto guard = net::make_work_guard(ioc_);
    ioc_.run();
  });
}

void Cluster::stop() {
  if (!thread_.joinable()) return;
  net::post(ioc_, [this] {
    stopping_ = true;
    heartbeat_timer_.cancel();
    reconnect_timer_.cancel();
    if (cmd_ && cmd_->ac && holds_id_) {
      // Our peers leave with us: the others drop them now rather than after the TTL.
      command({"DEL", peers_key(config_.node_id)});
      command({"DEL", alive_key(config_.node_id)});
      command({"PUBLISH", kMembersChannel,
               cluster::encode_member({MemberMessage::Kind::kReset, config_.node_id, {}})});
    }
    if (cmd_ && cmd_->ac) redisAsyncDisconnect(cmd_->ac);  // after the replies of what was sent
    if (sub_ && sub_->ac) redisAsyncFree(sub_->ac);
    // Give the last commands a moment, then end the loop whatever Redis does.
    heartbeat_timer_.expires_after(std::chrono::milliseconds(500));
    heartbeat_timer_.async_wait([this](const boost::system::error_code&) {
      if (cmd_ && cmd_->ac) redisAsyncFree(cmd_->ac);
      ioc_.stop();
    });
  });
  thread_.join();
}

void Cluster::connect() {
  if (stopping_) return;
  ++generation_;
  heartbeats_unanswered_ = 0;
  subscribed_ = false;
  auto open = [this](std::unique_ptr<Conn>& slot, const char* name) {
    slot = std::make_unique<Conn>();
    slot->owner = this;
    slot->name = name;
    redisAsyncContext* ac = redisAsyncConnect(config_.redis_host.c_str(), config_.redis_port);
    if (!ac || ac->err) {
      LogLine(LogLevel::kWarn, "redis connect failed")
          .kv("redis", config_.redis_host + ":" + std::to_string(config_.redis_port))
          .kv("error", ac ? ac->errstr : "out of memory");
      if (ac) redisAsyncFree(ac);
      return false;
    }
    slot->ac = ac;
    ac->data = slot.get();
    auto ev = std::make_shared<Conn::Events>(ioc_, ac->c.fd);
    ev->ac = ac;
    ev->self = ev;
    ac->ev.data = ev.get();
    ac->ev.addRead = Conn::Events::add_read;
    ac->ev.delRead = Conn::Events::del_read;
    ac->ev.addWrite = Conn::Events::add_write;
    ac->ev.delWrite = Conn::Events::del_write;
    ac->ev.cleanup = Conn::Events::cleanup;
    redisAsyncSetConnectCallback(ac, [](const redisAsyncContext* c, int status) {
      auto* conn = static_cast<Conn*>(c->data);
      if (status != REDIS_OK) {
        // Once per outage at warn level; the retries (every few seconds) at debug.
        LogLine(conn->owner->failed_connects_++ < 2 ? LogLevel::kWarn : LogLevel::kDebug,
                "redis connect failed")
            .kv("conn", conn->name)
            .kv("error", c->errstr);
        conn->ac = nullptr;  // hiredis frees it after this callback
        conn->owner->on_context_gone(conn);
        return;
      }
      conn->connected = true;
      if (conn == conn->owner->cmd_.get() && conn->owner->subscribed_) conn->owner->on_subscribed();
    });
    redisAsyncSetDisconnectCallback(ac, [](const redisAsyncContext* c, int) {
      auto* conn = static_cast<Conn*>(c->data);
      conn->ac = nullptr;
      conn->owner->on_context_gone(conn);
    });
    return true;
  };
  if (!open(cmd_, "command") || !open(sub_, "subscribe")) {
    go_down("cannot connect");
    return;
  }
  // With a password, AUTH goes first on both connections (commands run in order on each).
  if (!config_.redis_password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!config_.redis_user.empty()) auth.push_back(config_.redis_user);
    auth.push_back(config_.redis_password);
    std::vector<const char*> av;
    std::vector<std::size_t> al;
    for (const auto& a : auth) {
      av.push_back(a.data());
      al.push_back(a.size());
    }
    redisAsyncCommandArgv(sub_->ac, &Cluster::on_sub_reply, this, static_cast<int>(av.size()),
                          av.data(), al.data());
    command(auth, {});  // a refusal is an error reply: on_redis_error below
  }
  // A Redis that wants a password we lack answers this with NOAUTH (the subscription's error
  // replies never reach a callback in hiredis).
  command({"PING"}, {});
  // The subscription is the first thing on its connection after AUTH; once confirmed, the state
  // sync runs.
  std::string members = kMembersChannel, mine = node_channel(config_.node_id),
              notices = kNoticesChannel;
  const char* argv[] = {"SUBSCRIBE", members.c_str(), mine.c_str(), notices.c_str()};
  std::size_t lens[] = {9, members.size(), mine.size(), notices.size()};
  redisAsyncCommandArgv(sub_->ac, &Cluster::on_sub_reply, this, 4, argv, lens);
  // A Redis that accepts nothing (a black hole) must not leave us waiting forever.
  auto gen = generation_;
  reconnect_timer_.expires_after(kConnectTimeout);
  reconnect_timer_.async_wait([this, gen](const boost::system::error_code& ec) {
    if (ec || gen != generation_ || up_.load(kRelaxed)) return;
    go_down("connect timeout");
  });
}

void Cluster::on_sub_reply(redisAsyncContext* ac, void* r, void* privdata) {
  auto* self = static_cast<Cluster*>(privdata);
  auto* reply = static_cast<redisReply*>(r);
  if (!reply || self->stopping_ || !self->sub_ || ac != self->sub_->ac) return;
  if (reply->type == REDIS_REPLY_ERROR) {
    self->on_redis_error(std::string_view(reply->str, reply->len));
    return;
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
  const redisReply* kind = reply->element[0];
  if (kind->type != REDIS_REPLY_STRING) return;
  std::string_view k(kind->str, kind->len);
  if (k == "subscribe") {
    // Every channel confirmed (the count is the last): the command connection syncs.
    if (reply->element[2]->integer == 3) {
      self->subscribed_ = true;
      if (self->cmd_ && self->cmd_->connected) self->on_subscribed();
    }
  } else if (k == "message" && reply->element[2]->type == REDIS_REPLY_STRING) {
    const redisReply* channel = reply->element[1];
    if (channel->type == REDIS_REPLY_STRING &&
        std::string_view(channel->str, channel->len) == kNoticesChannel) {
      if (reply->element[2]->len <= kMaxNotice && self->notice_sink_)
        self->notice_sink_(std::string_view(reply->element[2]->str, reply->element[2]->len));
      return;
    }
    self->on_message(reply->element[2]->str, reply->element[2]->len);
  }
}

void Cluster::on_subscribed() {
  if (up_.load(kRelaxed) || stopping_) return;
  resync();
}

// Publishes this node's peers whole and reloads every other node's.
void Cluster::resync() {
  if (!cmd_ || !cmd_->ac) return;
  // The node id first: claimed with this process's nonce, or already ours (a reconnect). Held
  // by another live node, this one stays out of the cluster (two nodes with one id would
  // overwrite each other's peers), says so, and tries again later: the id frees up when the
  // other node stops refreshing it.
  auto gen = generation_;
  const auto ttl = std::to_string(config_.node_ttl.count());
  command({"SET", alive_key(config_.node_id), nonce_, "NX", "EX", ttl}, [this, gen](redisReply* r) {
    if (!r || gen != generation_ || stopping_) return;
    if (r->type == REDIS_REPLY_STATUS) {
      claimed();
      return;
    }
    command({"GET", alive_key(config_.node_id)}, [this, gen](redisReply* held) {
      if (!held || gen != generation_ || stopping_) return;
      if (held->type == REDIS_REPLY_STRING && std::string_view(held->str, held->len) == nonce_) {
        claimed();
        return;
      }
      if (held->type == REDIS_REPLY_NIL) {  // expired meanwhile: claim it again
        resync();
        return;
      }
      metrics_.cluster_node_id_clash.store(1, kRelaxed);
      LogLine(LogLevel::kError,
              "cluster: another live node (or this node's previous run, until --node-ttl) has this "
              "--node-id; this node stays out of the cluster until it is free")
          .kv("node", config_.node_id);
      go_down("node id in use");
    });
  });
}

// The node id is ours: publish this node's peers whole and load every other node's.
void Cluster::claimed() {
  holds_id_ = true;
  metrics_.cluster_node_id_clash.store(0, kRelaxed);
  std::vector<MemberEvent> mine;
  tracker_.local_members(mine);
  {
    std::lock_guard lock(mu_);
    events_.clear();  // the snapshot includes them
    resync_needed_ = false;
  }
  const auto node = config_.node_id;
  const auto ttl = std::to_string(config_.node_ttl.count());
  command({"SADD", kNodesKey, std::to_string(node)});
  command({"DEL", peers_key(node)});
  for (std::size_t i = 0; i < mine.size(); i += 512) {
    std::vector<std::string> args{"HSET", peers_key(node)};
    for (std::size_t j = i; j < std::min(mine.size(), i + 512); ++j) {
      args.push_back(cluster::member_field(mine[j]));
      args.push_back(cluster::member_value(mine[j]));
    }
    command(args);
  }
  command({"EXPIRE", peers_key(node), ttl});
  command({"PUBLISH", kMembersChannel,
           cluster::encode_member({MemberMessage::Kind::kReset, node, {}})});
  metrics_.cluster_resyncs.fetch_add(1, kRelaxed);

  // The others: drop what we mirrored and load each live node's hash.
  auto gen = generation_;
  command({"SMEMBERS", kNodesKey}, [this, gen](redisReply* r) {
    if (!r || gen != generation_ || r->type != REDIS_REPLY_ARRAY) return;
    for (std::size_t i = 0; i < r->elements; ++i) {
      std::uint32_t other = 0;
      try {
        other = static_cast<std::uint32_t>(
            std::stoul(std::string(r->element[i]->str, r->element[i]->len)));
      } catch (...) {
        continue;
      }
      if (other == config_.node_id || other == 0) continue;
      reload_node(other);
    }
  });
  // The nodes set answers once everything above has been sent: Redis is there.
  command({"PING"}, [this, gen](redisReply* r) {
    if (!r || gen != generation_ || stopping_) return;
    if (!up_.exchange(true)) {
      backoff_ = std::chrono::milliseconds(250);
      failed_connects_ = 0;
      metrics_.cluster_up.store(1, kRelaxed);
      LogLine(LogLevel::kInfo, "cluster: connected to redis")
          .kv("node", config_.node_id)
          .kv("redis", config_.redis_host + ":" + std::to_string(config_.redis_port));
    }
    reconnect_timer_.cancel();
    heartbeat();
    flush();
  });
}

void Cluster::heartbeat() {
  auto gen = generation_;
  heartbeat_timer_.expires_after(config_.node_ttl / 3);
  heartbeat_timer_.async_wait([this, gen](const boost::system::error_code& ec) {
    if (ec || gen != generation_ || stopping_ || !cmd_ || !cmd_->ac) return;
    if (++heartbeats_unanswered_ > 2) {
      go_down("redis stopped answering");
      return;
    }
    const auto ttl = std::to_string(config_.node_ttl.count());
    // Refreshed with this process's nonce; the value it replaced says whether another node
    // wrote the same id meanwhile (both started at once): said loudly, on both.
    command({"SET", alive_key(config_.node_id), nonce_, "EX", ttl, "GET"},
            [this, gen](redisReply* r) {
              if (!r || gen != generation_) return;
              heartbeats_unanswered_ = 0;
              if (r->type == REDIS_REPLY_STRING && std::string_view(r->str, r->len) != nonce_) {
                metrics_.cluster_node_id_clash.store(1, kRelaxed);
                LogLine(LogLevel::kError, "cluster: another node writes this --node-id")
                    .kv("node", config_.node_id);
              }
            });
    command({"EXPIRE", peers_key(config_.node_id), ttl});
    // Which mirrored nodes went silent?
    for (auto other : known_nodes_) {
      command({"EXISTS", alive_key(other)}, [this, gen, other](redisReply* r) {
        if (!r || gen != generation_ || r->type != REDIS_REPLY_INTEGER || r->integer != 0) return;
        if (!known_nodes_.erase(other)) return;
        auto n = tracker_.drop_node(other);
        remote_estimate_ -= std::min(remote_estimate_, n);
        metrics_.cluster_nodes_expired.fetch_add(1, kRelaxed);
        command({"SREM", kNodesKey, std::to_string(other)});
        LogLine(LogLevel::kWarn, "cluster: node expired, its peers dropped")
            .kv("node", other)
            .kv("peers", n);
      });
    }
    bool again;
    {
      std::lock_guard lock(mu_);
      again = resync_needed_;
    }
    if (again) resync();
    heartbeat();
  });
}

void Cluster::go_down(const char* why) {
  ++generation_;
  heartbeat_timer_.cancel();
  bool was_up = up_.exchange(false);
  metrics_.cluster_up.store(0, kRelaxed);
  // Local mode: only this node's own peers, until Redis is back.
  auto dropped = tracker_.drop_node(0);
  remote_estimate_ = 0;
  known_nodes_.clear();
  if (was_up || dropped) {
    LogLine(LogLevel::kWarn, "cluster: redis unreachable, serving this node's peers alone")
        .kv("node", config_.node_id)
        .kv("reason", why)
        .kv("remote_peers_dropped", dropped);
  }
  // Free the contexts outside any hiredis callback.
  net::post(ioc_, [this] {
    for (auto* slot : {&cmd_, &sub_}) {
      if (*slot && (*slot)->ac) {
        auto* ac = (*slot)->ac;
        (*slot)->ac = nullptr;
        ac->data = nullptr;
        ac->onDisconnect = nullptr;
        redisAsyncFree(ac);
      }
    }
    {
      std::lock_guard lock(mu_);
      metrics_.cluster_relays_dropped.fetch_add(relays_.size(), kRelaxed);
      relays_.clear();
      events_.clear();  // the resync publishes the state whole
    }
    schedule_reconnect();
  });
}

void Cluster::on_context_gone(Conn* which) {
  which->connected = false;
  if (stopping_) return;
  go_down(which == sub_.get() ? "subscription connection lost" : "command connection lost");
}

void Cluster::schedule_reconnect() {
  if (stopping_) return;
  auto gen = generation_;
  reconnect_timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(4000));
  reconnect_timer_.async_wait([this, gen](const boost::system::error_code& ec) {
    if (ec || gen != generation_ || stopping_) return;
    connect();
  });
}

void Cluster::relay(Outgoing&& message) {
  std::lock_guard lock(mu_);
  if (!up_.load(kRelaxed) || relays_.size() >= kMaxQueued) {
    metrics_.cluster_relays_dropped.fetch_add(1, kRelaxed);
    return;
  }
  relays_.push_back(std::move(message));
  if (!flush_posted_) {
    flush_posted_ = true;
    net::post(ioc_, [this] { flush(); });
  }
}

void Cluster::publish_notice(std::string body) {
  if (body.size() > kMaxNotice) return;
  net::post(ioc_, [this, body = std::move(body)]() mutable {
    if (!up_.load(kRelaxed) || stopping_) return;
    command({"PUBLISH", kNoticesChannel, std::move(body)});
  });
}

void Cluster::publish(std::vector<MemberEvent>&& events) {
  std::lock_guard lock(mu_);
  if (!up_.load(kRelaxed)) return;  // the resync on reconnect publishes the state
  if (events_.size() + events.size() > kMaxQueued) {
    resync_needed_ = true;
    events_.clear();
    return;
  }
  events_.insert(events_.end(), std::make_move_iterator(events.begin()),
                 std::make_move_iterator(events.end()));
  if (!flush_posted_) {
    flush_posted_ = true;
    net::post(ioc_, [this] { flush(); });
  }
}

void Cluster::flush() {
  std::vector<Outgoing> relays;
  std::vector<MemberEvent> events;
  {
    std::lock_guard lock(mu_);
    flush_posted_ = false;
    relays.swap(relays_);
    events.swap(events_);
  }
  if (!up_.load(kRelaxed) || !cmd_ || !cmd_->ac) {
    metrics_.cluster_relays_dropped.fetch_add(relays.size(), kRelaxed);
    return;
  }
  const auto node = config_.node_id;
  for (const auto& e : events) {
    auto msg = cluster::encode_member(
        {e.joined ? MemberMessage::Kind::kJoin : MemberMessage::Kind::kLeave, node, e});
    auto field = cluster::member_field(e);
    if (e.joined) {
      command({"HSET", peers_key(node), field, cluster::member_value(e)});
    } else {
      command({"HDEL", peers_key(node), field});
    }
    metrics_.cluster_bytes_out.fetch_add(msg.size(), kRelaxed);
    command({"PUBLISH", kMembersChannel, std::move(msg)});
    metrics_.cluster_members_out.fetch_add(1, kRelaxed);
  }
  for (auto& o : relays) {
    if (sdslen(cmd_->ac->c.obuf) > kMaxUnsent) {
      metrics_.cluster_relays_dropped.fetch_add(1, kRelaxed);
      continue;
    }
    // The description only (serialized before it was queued): the receiving node checks it and
    // builds its visitor's message around it.
    auto msg =
        cluster::encode_relay({o.kind != OutKind::kOffer, o.info_hash, o.from_peer, o.to_peer,
                               o.offer_id, std::get<SerializedOut>(o.message).text});
    metrics_.cluster_bytes_out.fetch_add(msg.size(), kRelaxed);
    metrics_.cluster_relays_out.fetch_add(1, kRelaxed);
    command({"PUBLISH", node_channel(o.node), std::move(msg)});
  }
}

void Cluster::on_message(const char* data, std::size_t len) {
  if (len < 1) return;
  metrics_.cluster_bytes_in.fetch_add(len, kRelaxed);
  const std::string_view message(data, len);
  if (data[0] == 'O' || data[0] == 'A') {
    // Checked (cluster_codec.hpp) and rebuilt here: nothing published on a node's channel
    // reaches a visitor verbatim.
    auto r = cluster::decode_relay(message);
    if (!r) {
      metrics_.cluster_invalid_in.fetch_add(1, kRelaxed);
      return;
    }
    std::string payload = r->answer
                              ? serialize_answer(r->info_hash, r->from, r->offer_id, r->description)
                              : serialize_offer(r->info_hash, r->from, r->offer_id, r->description);
    std::vector<Outgoing> out;
    bool ok = r->answer
                  ? tracker_.deliver_remote_answer(r->info_hash, r->to, std::move(payload), out)
                  : tracker_.deliver_remote_offer(
                        r->info_hash, r->from, r->to, r->offer_id, std::move(payload),
                        std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count(),
                        out);
    metrics_.cluster_relays_in.fetch_add(1, kRelaxed);
    if (!ok) {
      metrics_.dropped_peer_gone.fetch_add(1, kRelaxed);
      return;
    }
    deliver_(out);
    return;
  }
  auto m = cluster::decode_member(message);
  if (!m) {
    metrics_.cluster_members_refused.fetch_add(1, kRelaxed);
    return;
  }
  if (m->node == config_.node_id) return;
  metrics_.cluster_members_in.fetch_add(1, kRelaxed);
  switch (m->kind) {
    case MemberMessage::Kind::kReset:  // that node restarted or resynced: reload its peers
      tracker_.drop_node(m->node);
      known_nodes_.erase(m->node);
      reload_node(m->node);
      break;
    case MemberMessage::Kind::kJoin:
      mirror(m->node, m->event);
      break;
    case MemberMessage::Kind::kLeave:
      tracker_.remote_leave(m->node, m->event.info_hash, m->event.peer_id);
      break;
  }
}

// One member of `node` (from its hash in Redis or from its join message), decoded and checked;
// mirrored here unless the cap is reached.
bool Cluster::mirror(std::uint32_t node, const MemberEvent& e) {
  // Bounded: past the cap, recounted exactly (the estimate only grows between recounts).
  if (++remote_estimate_ > config_.max_remote_peers) {
    remote_estimate_ = tracker_.counts().remote_peers;
    if (remote_estimate_ >= config_.max_remote_peers) {
      metrics_.cluster_members_refused.fetch_add(1, kRelaxed);
      return false;
    }
    ++remote_estimate_;
  }
  tracker_.remote_join(node, e.info_hash, e.peer_id, e.seeder, e.where);
  known_nodes_.insert(node);
  return true;
}

// Replaces what is mirrored of `node` with its hash in Redis.
void Cluster::reload_node(std::uint32_t node) {
  auto gen = generation_;
  command({"HGETALL", peers_key(node)}, [this, gen, node](redisReply* h) {
    if (!h || gen != generation_ || h->type != REDIS_REPLY_ARRAY) return;
    auto dropped = tracker_.drop_node(node);
    remote_estimate_ -= std::min(remote_estimate_, dropped);
    std::size_t loaded = 0;
    for (std::size_t j = 0; j + 1 < h->elements; j += 2) {
      const redisReply* f = h->element[j];
      const redisReply* v = h->element[j + 1];
      auto e = cluster::decode_record(std::string_view(f->str, f->len),
                                      std::string_view(v->str, v->len));
      if (!e) {
        metrics_.cluster_members_refused.fetch_add(1, kRelaxed);
        continue;
      }
      loaded += mirror(node, *e);
    }
    metrics_.cluster_members_in.fetch_add(loaded, kRelaxed);
  });
}

void Cluster::command(const std::vector<std::string>& args, std::function<void(redisReply*)> done) {
  if (!cmd_ || !cmd_->ac) {
    if (done) done(nullptr);
    return;
  }
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* cb = new std::function<void(redisReply*)>(std::move(done));
  int rc = redisAsyncCommandArgv(
      cmd_->ac,
      [](redisAsyncContext* ac, void* reply, void* privdata) {
        std::unique_ptr<std::function<void(redisReply*)>> fn(
            static_cast<std::function<void(redisReply*)>*>(privdata));
        auto* r = static_cast<redisReply*>(reply);
        if (r && r->type == REDIS_REPLY_ERROR) {
          static_cast<Conn*>(ac->data)->owner->on_redis_error(std::string_view(r->str, r->len));
        }
        if (*fn) (*fn)(r);
      },
      cb, static_cast<int>(argv.size()), argv.data(), lens.data());
  if (rc != REDIS_OK) {
    std::unique_ptr<std::function<void(redisReply*)>> fn(cb);
    if (*fn) (*fn)(nullptr);
  }
}

// An error reply. Authentication errors (a wrong or missing password, NOAUTH, WRONGPASS) mean
// the cluster cannot work at all: this node goes local and says why, once per outage; it tries
// again later like after any outage. Others are logged.
void Cluster::on_redis_error(std::string_view error) {
  bool auth = error.rfind("NOAUTH", 0) == 0 || error.rfind("WRONGPASS", 0) == 0 ||
              error.find("AUTH") != std::string_view::npos ||
              error.find("password") != std::string_view::npos;
  if (!auth) {
    LogLine(LogLevel::kWarn, "redis error").kv("error", std::string(error.substr(0, 200)));
    return;
  }
  LogLine(failed_connects_++ < 2 ? LogLevel::kError : LogLevel::kDebug,
          "cluster: redis refused this node's authentication; check --redis-password-file")
      .kv("error", std::string(error.substr(0, 200)));
  auto gen = generation_;
  net::post(ioc_, [this, gen] {
    if (gen == generation_ && !stopping_) go_down("authentication refused");
  });
}

}  // namespace deploynet::server
