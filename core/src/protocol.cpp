#include "deploynet/protocol.hpp"

#include "deploynet/manifest.hpp"
#include "deploynet/utf8.hpp"

#include <rapidjson/document.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace deploynet {
bool valid_region(std::string_view r) {
  if (r.empty() || r.size() > ParseLimits::kMaxRegion) return false;
  for (char c : r) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

// Parsing runs once per frame on every server thread; a fixed per-thread arena keeps the
// common case free of heap allocation (RapidJSON falls back to the heap past it).
constexpr std::size_t kValueArena = 16 * 1024;
constexpr std::size_t kStackArena = 4 * 1024;
thread_local char t_value_arena[kValueArena];
thread_local char t_stack_arena[kStackArena];

using Alloc = rapidjson::MemoryPoolAllocator<>;
using Doc = rapidjson::GenericDocument<rapidjson::UTF8<>, Alloc, Alloc>;
using Value = rapidjson::GenericValue<rapidjson::UTF8<>, Alloc>;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// Iterative parsing keeps the call stack flat whatever the nesting depth of hostile input. The
// text is checked to be UTF-8 before the parse (valid_utf8, which passes ASCII a word at a
// time), not by RapidJSON per character: that check was a third of the server's instructions.
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag;

std::string_view sv(const Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

template <class Id>
std::optional<Id> member_id(const Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString()) return std::nullopt;
  return Id::from_wire(sv(it->value));
}

// Relayed offers and answers are forwarded as the exact bytes the sender wrote, never
// re-serialized from the DOM: the input was validated as UTF-8, so the bytes are valid UTF-8
// JSON whatever escapes they hold (RapidJSON decodes a lone "\udc00" escape to ED B0 80, which
// is not UTF-8 and would make browsers fail the receiving connection), and no recursive writer
// ever walks a hostile nesting. `RawSpans` records where those values sit in the frame while
// the one parse builds the DOM; it also bounds the nesting depth, so deep input costs nothing.
struct Span {
  std::size_t begin = 0;
  std::size_t end = 0;  // 0: not seen
  std::string_view in(std::string_view text) const { return text.substr(begin, end - begin); }
};

struct RawSpans {
  Span answer;               // the top-level "answer" (first occurrence, as FindMember picks)
  std::vector<Span> offers;  // "offers"[i]."offer" (first "offers", first "offer" of each)
};

template <class Handler, class Stream>
class SpanRecorder {
 public:
  SpanRecorder(Handler& h, Stream& is, RawSpans& spans) : h_(h), is_(is), spans_(spans) {}

  bool Null() { return value() && h_.Null(); }
  bool Bool(bool b) { return value() && h_.Bool(b); }
  bool Int(int i) { return value() && h_.Int(i); }
  bool Uint(unsigned i) { return value() && h_.Uint(i); }
  bool Int64(std::int64_t i) { return value() && h_.Int64(i); }
  bool Uint64(std::uint64_t i) { return value() && h_.Uint64(i); }
  bool Double(double d) { return value() && h_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool c) {
    return value() && h_.RawNumber(s, n, c);
  }
  bool String(const char* s, rapidjson::SizeType n, bool c) {
    return value() && h_.String(s, n, c);
  }
  bool StartObject() { return open(true) && h_.StartObject(); }
  bool StartArray() { return open(false) && h_.StartArray(); }
  bool EndObject(rapidjson::SizeType n) { return close() && h_.EndObject(n); }
  bool EndArray(rapidjson::SizeType n) { return close() && h_.EndArray(n); }
  bool Key(const char* s, rapidjson::SizeType n, bool c) {
    auto& f = stack_.back();
    std::string_view k(s, n);
    f.next = Role::kNone;
    if (f.role == Role::kTop && k == "offers" && !seen_offers_) {
      f.next = Role::kOffers;
      seen_offers_ = true;
    } else if (f.role == Role::kTop && k == "answer" && !seen_answer_) {
      f.next = Role::kAnswer;
      seen_answer_ = true;
    } else if (f.role == Role::kOfferItem && k == "offer" && !f.seen_offer) {
      f.next = Role::kOffer;
      f.seen_offer = true;
    }
    return h_.Key(s, n, c);
  }

  bool too_deep() const { return too_deep_; }

 private:
  enum class Role : std::uint8_t { kNone, kTop, kOffers, kOfferItem, kOffer, kAnswer };
  struct Frame {
    Role role;
    Role next = Role::kNone;  // the role of the value that follows the current key
    bool seen_offer = false;
    std::size_t begin = 0;
    std::uint32_t children = 0;  // elements seen so far (the offers array)
    std::uint32_t item = 0;      // which element of the offers array this is, or is inside
  };

  // The role of the value about to start, from its parent; counts the offers array's elements.
  std::pair<Role, std::uint32_t> child() {
    if (stack_.empty()) return {Role::kTop, 0};
    auto& f = stack_.back();
    if (f.role == Role::kOffers) return {Role::kOfferItem, f.children++};
    Role r = f.next;
    f.next = Role::kNone;
    return {r, f.item};
  }
  bool value() {
    child();
    return true;
  }
  bool open(bool object) {
    if (stack_.size() >= ParseLimits::kMaxDepth) {
      too_deep_ = true;
      return false;
    }
    auto [role, item] = child();
    if (object == (role == Role::kOffers)) role = Role::kNone;  // offers: an array; rest objects
    // The iterative parser reports a container's start before consuming its bracket.
    stack_.push_back(Frame{.role = role, .begin = is_.Tell(), .item = item});
    return true;
  }
  bool close() {
    Frame f = stack_.back();
    stack_.pop_back();
    // ...and its end before consuming the closing bracket.
    Span span{f.begin, is_.Tell() + 1};
    if (f.role == Role::kAnswer) spans_.answer = span;
    if (f.role == Role::kOffer) {
      if (spans_.offers.size() <= f.item) spans_.offers.resize(f.item + 1);
      spans_.offers[f.item] = span;
    }
    return true;
  }

  Handler& h_;
  Stream& is_;
  RawSpans& spans_;
  std::vector<Frame> stack_;
  bool seen_offers_ = false;
  bool seen_answer_ = false;
  bool too_deep_ = false;
};

// The reference client sends a session description object ({type, sdp}); anything else is
// not something a browser could use, so it is refused rather than relayed.
bool is_session_description(const Value& v) {
  return v.IsObject();
}

std::optional<AnnounceEvent> parse_event(const Value& obj) {
  auto it = obj.FindMember("event");
  if (it == obj.MemberEnd() || it->value.IsNull()) return AnnounceEvent::kUpdate;
  if (!it->value.IsString()) return std::nullopt;
  auto e = sv(it->value);
  if (e == "started") return AnnounceEvent::kStarted;
  if (e == "stopped") return AnnounceEvent::kStopped;
  if (e == "completed") return AnnounceEvent::kCompleted;
  if (e == "update" || e == "empty" || e.empty()) return AnnounceEvent::kUpdate;
  if (e == "paused") return AnnounceEvent::kPaused;
  return std::nullopt;
}

// The reference server reads `left` with Number(): numbers and numeric strings count.
std::optional<std::int64_t> parse_left(const Value& obj) {
  auto it = obj.FindMember("left");
  if (it == obj.MemberEnd()) return std::nullopt;
  const Value& v = it->value;
  double d = std::numeric_limits<double>::quiet_NaN();
  if (v.IsNumber()) {
    d = v.GetDouble();
  } else if (v.IsString()) {
    auto s = std::string(sv(v));
    char* end = nullptr;
    d = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size()) d = std::numeric_limits<double>::quiet_NaN();
  }
  if (!std::isfinite(d) || d < 0) return std::nullopt;
  if (d > 9e18) return std::int64_t{9'000'000'000'000'000'000};
  return static_cast<std::int64_t>(d);
}

// The swarm and the sender, which every per-swarm action starts with. On failure `err` holds
// the reason (and the info_hash once known, so the client can route the reply).
std::optional<std::pair<InfoHash, PeerId>> swarm_and_peer(const Value& obj, ParseError& err) {
  auto info_hash = member_id<InfoHash>(obj, "info_hash");
  if (!info_hash) {
    err.reason = "invalid info_hash";
    return std::nullopt;
  }
  err.info_hash = info_hash;
  auto peer_id = member_id<PeerId>(obj, "peer_id");
  if (!peer_id) {
    err.reason = "invalid peer_id";
    return std::nullopt;
  }
  return std::pair{*info_hash, *peer_id};
}

ParseResult parse_announce(const Value& obj, std::string_view text, const RawSpans& spans,
                           const ParseLimits& limits) {
  ParseError err{.reason = {}, .action = "announce", .info_hash = std::nullopt};
  auto ids = swarm_and_peer(obj, err);
  if (!ids) return err;
  auto [info_hash, peer_id] = *ids;
  auto event = parse_event(obj);
  if (!event) {
    err.reason = "invalid event";
    return err;
  }

  AnnounceRequest req;
  req.info_hash = info_hash;
  req.peer_id = peer_id;
  req.event = *event;
  req.left = parse_left(obj);

  if (auto it = obj.FindMember("numwant"); it != obj.MemberEnd() && it->value.IsNumber()) {
    double n = it->value.GetDouble();
    if (std::isfinite(n) && n >= 0) {
      req.numwant = n > 1e6 ? 1'000'000u : static_cast<std::uint32_t>(n);
    }
  }

  if (auto it = obj.FindMember("offers"); it != obj.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsArray()) {
      err.reason = "invalid offers";
      return err;
    }
    const auto& arr = it->value.GetArray();
    for (rapidjson::SizeType i = 0; i < arr.Size(); ++i) {
      const Value& o = arr[i];
      if (req.offers.size() >= limits.max_offers) {
        ++req.offers_dropped;
        continue;
      }
      if (!o.IsObject()) {
        err.reason = "invalid offer";
        return err;
      }
      auto offer_id = member_id<OfferId>(o, "offer_id");
      auto offer = o.FindMember("offer");
      if (!offer_id || offer == o.MemberEnd() || !is_session_description(offer->value) ||
          i >= spans.offers.size() || spans.offers[i].end == 0) {
        err.reason = "invalid offer";
        return err;
      }
      OfferIn in{*offer_id, std::string(spans.offers[i].in(text)), std::nullopt};
      if (auto to = o.FindMember("to_peer_id"); to != o.MemberEnd() && !to->value.IsNull()) {
        in.to_peer_id = member_id<PeerId>(o, "to_peer_id");
        if (!in.to_peer_id) {
          err.reason = "invalid offer to_peer_id";
          return err;
        }
      }
      req.offers.push_back(std::move(in));
    }
  }

  if (auto it = obj.FindMember("peer_proof"); it != obj.MemberEnd() && !it->value.IsNull()) {
    auto proof = it->value.IsString() ? sv(it->value) : std::string_view();
    bool ok = !proof.empty() && proof.size() <= 64 &&
              std::all_of(proof.begin(), proof.end(), [](char c) { return c > 0x20 && c < 0x7F; });
    if (!ok) {
      err.reason = "invalid peer_proof (1-64 printable ASCII characters)";
      return err;
    }
    req.peer_proof = std::string(proof);
  }
  if (auto it = obj.FindMember("region"); it != obj.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsString() || !valid_region(sv(it->value))) {
      err.reason = "invalid region (1-32 characters of A-Z a-z 0-9 . _ -)";
      return err;
    }
    req.region = std::string(sv(it->value));
  }

  if (auto it = obj.FindMember("answer"); it != obj.MemberEnd() && !it->value.IsNull()) {
    auto to = member_id<PeerId>(obj, "to_peer_id");
    if (!to) {
      err.reason = "invalid `to_peer_id` (required with `answer`)";
      return err;
    }
    auto offer_id = member_id<OfferId>(obj, "offer_id");
    if (!offer_id) {
      err.reason = "invalid `offer_id` (required with `answer`)";
      return err;
    }
    if (!is_session_description(it->value) || spans.answer.end == 0) {
      err.reason = "invalid answer";
      return err;
    }
    req.answer = AnswerIn{*to, *offer_id, std::string(spans.answer.in(text))};
  }
  return InMessage{std::move(req)};
}

ParseResult parse_route(const Value& obj, const ParseLimits& limits) {
  ParseError err{.reason = {}, .action = "route", .info_hash = std::nullopt};
  auto ids = swarm_and_peer(obj, err);
  if (!ids) return err;
  RouteRequest req;
  req.info_hash = ids->first;
  req.peer_id = ids->second;
  if (auto it = obj.FindMember("k"); it != obj.MemberEnd()) {
    if (!it->value.IsUint() || it->value.GetUint() < 1 ||
        it->value.GetUint() > limits.max_route_k) {
      err.reason = "invalid k (1.." + std::to_string(limits.max_route_k) + ")";
      return err;
    }
    req.k = it->value.GetUint();
  }
  req.k = std::min(req.k, limits.max_route_k);
  auto it = obj.FindMember("content_ids");
  if (it == obj.MemberEnd() || !it->value.IsArray() || it->value.Empty()) {
    err.reason = "invalid content_ids (a non-empty array of 64-digit hex SHA-256)";
    return err;
  }
  if (it->value.Size() > limits.max_route_ids) {
    err.reason = "too many content_ids in one route request (max " +
                 std::to_string(limits.max_route_ids) + ")";
    return err;
  }
  for (const auto& v : it->value.GetArray()) {
    auto id = v.IsString() ? from_hex<32>(sv(v)) : std::nullopt;
    if (!id) {
      err.reason = "invalid content_ids (a non-empty array of 64-digit hex SHA-256)";
      return err;
    }
    req.content_ids.push_back(*id);
  }
  return InMessage{std::move(req)};
}

ParseResult parse_report(const Value& obj) {
  ParseError err{.reason = {}, .action = "report", .info_hash = std::nullopt};
  auto ids = swarm_and_peer(obj, err);
  if (!ids) return err;
  ReportRequest req;
  req.info_hash = ids->first;
  req.peer_id = ids->second;
  // Byte counts: non-negative integers below 2^53 (what a browser's number holds exactly).
  constexpr std::uint64_t kMax = (std::uint64_t{1} << 53) - 1;
  for (auto [name, field] :
       {std::pair{"from_peers", &req.from_peers}, std::pair{"from_origin", &req.from_origin},
        std::pair{"from_cache", &req.from_cache}, std::pair{"uploaded", &req.uploaded}}) {
    auto it = obj.FindMember(name);
    if (it == obj.MemberEnd()) continue;
    if (!it->value.IsUint64() || it->value.GetUint64() > kMax) {
      err.reason = std::string("invalid ") + name + " (a byte count)";
      return err;
    }
    *field = it->value.GetUint64();
  }
  auto it = obj.FindMember("origin");
  if (it == obj.MemberEnd() || !it->value.IsString() || it->value.GetStringLength() > 256 ||
      !valid_origin(sv(it->value))) {
    err.reason = "invalid origin (the site whose swarm this is)";
    return err;
  }
  req.origin = std::string(sv(it->value));
  return InMessage{std::move(req)};
}

ParseResult parse_scrape(const Value& obj, const ParseLimits& limits) {
  ParseError err{.reason = "invalid info_hash", .action = "scrape", .info_hash = std::nullopt};
  ScrapeRequest req;
  auto it = obj.FindMember("info_hash");
  if (it == obj.MemberEnd() || it->value.IsNull()) return InMessage{std::move(req)};
  if (it->value.IsString()) {
    auto id = InfoHash::from_wire(sv(it->value));
    if (!id) return err;
    req.info_hashes.push_back(*id);
  } else if (it->value.IsArray()) {
    const auto& arr = it->value.GetArray();
    if (arr.Size() > limits.max_scrape_hashes) {
      err.reason = "too many info_hash values in one scrape";
      return err;
    }
    for (const auto& v : arr) {
      if (!v.IsString()) return err;
      auto id = InfoHash::from_wire(sv(v));
      if (!id) return err;
      req.info_hashes.push_back(*id);
    }
  } else {
    return err;
  }
  return InMessage{std::move(req)};
}

void write_id(Writer& w, const char* key, const auto& id) {
  w.Key(key);
  auto wire = id.to_wire();
  w.String(wire.data(), static_cast<rapidjson::SizeType>(wire.size()));
}

void write_str(Writer& w, const char* key, std::string_view value) {
  w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

std::string finish(rapidjson::StringBuffer& buf) {
  return {buf.GetString(), buf.GetSize()};
}

std::string serialize_relay(const char* kind, const InfoHash& info_hash, const PeerId& from,
                            const OfferId& offer_id, std::string_view json) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  write_str(w, "action", "announce");
  w.Key(kind);
  w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
  write_id(w, "offer_id", offer_id);
  write_id(w, "peer_id", from);
  write_id(w, "info_hash", info_hash);
  w.EndObject();
  return finish(buf);
}

}  // namespace

ParseResult parse_in_message(std::string_view text, const ParseLimits& limits) {
  // What we forward must be valid UTF-8 JSON (a text frame already is; other callers too).
  if (!valid_utf8(text)) return ParseError{"invalid JSON: not UTF-8", {}, std::nullopt};
  Alloc value_alloc(t_value_arena, kValueArena);
  Alloc stack_alloc(t_stack_arena, kStackArena);
  Doc doc(&value_alloc, 1024, &stack_alloc);
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> is(ms);
  RawSpans spans;
  rapidjson::ParseResult parsed;
  bool too_deep = false;
  auto parse = [&](Doc& handler) {
    rapidjson::GenericReader<rapidjson::UTF8<>, rapidjson::UTF8<>, Alloc> reader(&stack_alloc);
    SpanRecorder recorder(handler, is, spans);
    parsed = reader.Parse<kParseFlags>(is, recorder);
    too_deep = recorder.too_deep();
    return !parsed.IsError();
  };
  doc.Populate(parse);
  if (too_deep) {
    return ParseError{"invalid JSON: nested deeper than " + std::to_string(ParseLimits::kMaxDepth),
                      {},
                      std::nullopt};
  }
  if (parsed.IsError()) {
    return ParseError{std::string("invalid JSON: ") + rapidjson::GetParseError_En(parsed.Code()),
                      {},
                      std::nullopt};
  }
  if (!doc.IsObject()) return ParseError{"invalid request: not a JSON object", {}, std::nullopt};
  auto action = doc.FindMember("action");
  if (action == doc.MemberEnd() || !action->value.IsString()) {
    return ParseError{"invalid action in WS request: missing", {}, std::nullopt};
  }
  auto name = sv(action->value);
  if (name == "announce") return parse_announce(doc, text, spans, limits);
  if (name == "scrape") return parse_scrape(doc, limits);
  if (name == "route") return parse_route(doc, limits);
  if (name == "report") return parse_report(doc);
  std::string shown(name.substr(0, 32));
  for (auto& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) c = '?';
  }
  return ParseError{"invalid action in WS request: " + shown, {}, std::nullopt};
}

bool valid_description(std::string_view json, std::size_t max_bytes) {
  if (json.size() > max_bytes || json.empty() || json.front() != '{' || !valid_utf8(json))
    return false;
  // Depth only: everything else of JSON the reader checks itself.
  struct Depth : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Depth> {
    std::size_t depth = 0;
    bool StartObject() { return ++depth <= ParseLimits::kMaxDepth; }
    bool EndObject(rapidjson::SizeType) {
      --depth;
      return true;
    }
    bool StartArray() { return ++depth <= ParseLimits::kMaxDepth; }
    bool EndArray(rapidjson::SizeType) {
      --depth;
      return true;
    }
  } handler;
  rapidjson::MemoryStream ms(json.data(), json.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> is(ms);
  rapidjson::Reader reader;
  return !reader.Parse<kParseFlags | rapidjson::kParseValidateEncodingFlag>(is, handler).IsError();
}

const char* to_string(AnnounceEvent event) {
  switch (event) {
    case AnnounceEvent::kUpdate:
      return "update";
    case AnnounceEvent::kStarted:
      return "started";
    case AnnounceEvent::kStopped:
      return "stopped";
    case AnnounceEvent::kCompleted:
      return "completed";
    case AnnounceEvent::kPaused:
      return "paused";
  }
  return "update";
}

std::string serialize_announce_reply(const InfoHash& info_hash, std::uint32_t complete,
                                     std::uint32_t incomplete, std::uint32_t interval_s) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  write_str(w, "action", "announce");
  w.Key("interval");
  w.Uint(interval_s);
  write_id(w, "info_hash", info_hash);
  w.Key("complete");
  w.Uint(complete);
  w.Key("incomplete");
  w.Uint(incomplete);
  w.EndObject();
  return finish(buf);
}

std::string serialize_offer(const InfoHash& info_hash, const PeerId& from, const OfferId& offer_id,
                            std::string_view offer_json) {
  return serialize_relay("offer", info_hash, from, offer_id, offer_json);
}

std::string serialize_answer(const InfoHash& info_hash, const PeerId& from, const OfferId& offer_id,
                             std::string_view answer_json) {
  return serialize_relay("answer", info_hash, from, offer_id, answer_json);
}

std::string serialize_scrape_reply(std::span<const ScrapeEntry> files, std::uint32_t interval_s) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  write_str(w, "action", "scrape");
  w.Key("files");
  w.StartObject();
  for (const auto& f : files) {
    auto wire = f.info_hash.to_wire();
    w.Key(wire.data(), static_cast<rapidjson::SizeType>(wire.size()));
    w.StartObject();
    w.Key("complete");
    w.Uint(f.complete);
    w.Key("incomplete");
    w.Uint(f.incomplete);
    w.Key("downloaded");
    w.Uint(f.downloaded);
    w.EndObject();
  }
  w.EndObject();
  w.Key("flags");
  w.StartObject();
  w.Key("min_request_interval");
  w.Uint(interval_s);
  w.EndObject();
  w.EndObject();
  return finish(buf);
}

std::string serialize_route_reply(const InfoHash& info_hash, std::span<const RouteEntry> routes,
                                  std::uint32_t swarm_peers) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  write_str(w, "action", "route");
  write_id(w, "info_hash", info_hash);
  w.Key("peers");
  w.Uint(swarm_peers);
  w.Key("routes");
  w.StartArray();
  for (const auto& r : routes) {
    w.StartObject();
    write_str(w, "content_id", to_hex(r.content_id));
    w.Key("peers");
    w.StartArray();
    for (const auto& p : r.peers) {
      auto wire = p.to_wire();
      w.String(wire.data(), static_cast<rapidjson::SizeType>(wire.size()));
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return finish(buf);
}

std::string serialize_failure(std::string_view reason, std::string_view action,
                              const InfoHash* info_hash) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  if (!action.empty()) write_str(w, "action", action);
  write_str(w, "failure reason", reason);
  if (info_hash) write_id(w, "info_hash", *info_hash);
  w.EndObject();
  return finish(buf);
}

std::string serialize(const OutMessage& message) {
  struct Visitor {
    std::string operator()(const AnnounceReplyOut& m) const {
      return serialize_announce_reply(m.info_hash, m.complete, m.incomplete, m.interval_s);
    }
    std::string operator()(const RelayOut& m) const {
      return serialize_relay(m.answer ? "answer" : "offer", m.info_hash, m.from, m.offer_id, m.sdp);
    }
    std::string operator()(const RouteReplyOut& m) const {
      return serialize_route_reply(m.info_hash, m.routes, m.swarm_peers);
    }
    std::string operator()(const FailureOut& m) const {
      return serialize_failure(m.reason, m.action, m.info_hash ? &*m.info_hash : nullptr);
    }
    std::string operator()(const SerializedOut& m) const { return m.text; }
  };
  return std::visit(Visitor{}, message);
}

std::string serialize(OutMessage&& message) {
  if (auto* done = std::get_if<SerializedOut>(&message)) return std::move(done->text);
  return serialize(static_cast<const OutMessage&>(message));
}

}  // namespace deploynet
