#pragma once

// The WebTorrent tracker WebSocket protocol, as spoken by the `bittorrent-tracker` server and
// clients (and p2p-media-loader): JSON text frames, ids as 20-character binary strings.
// Parsing and serialization only; no I/O.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "deploynet/ids.hpp"

namespace deploynet {

enum class AnnounceEvent : std::uint8_t { kUpdate, kStarted, kStopped, kCompleted, kPaused };

// An SDP offer the announcing peer wants delivered to another peer of the swarm.
struct OfferIn {
  OfferId offer_id;
  std::string
      offer;  // the RTCSessionDescriptionInit object: the sender's exact bytes (valid UTF-8)
  // DeployNet extension: deliver this offer to that peer (one the ring named) instead of a
  // random one. Plain WebTorrent clients never send it.
  std::optional<PeerId> to_peer_id;
};

// An answer to an offer received earlier, to be relayed back to the offering peer.
struct AnswerIn {
  PeerId to_peer_id;
  OfferId offer_id;
  std::string answer;  // the RTCSessionDescriptionInit object: the sender's exact bytes
};

struct AnnounceRequest {
  InfoHash info_hash;
  PeerId peer_id;
  AnnounceEvent event = AnnounceEvent::kUpdate;
  // Bytes left to download; 0 means a seeder ("complete"). Absent or not a number: leecher.
  std::optional<std::int64_t> left;
  // How many peers should receive an offer: the reference server sends one offer to each of
  // min(offers.size(), 82) random peers; `numwant`, when sent, can only lower that.
  std::optional<std::uint32_t> numwant;
  std::vector<OfferIn> offers;
  std::optional<AnswerIn> answer;
  // Offers beyond ParseLimits::max_offers are dropped, not rejected; this counts them.
  std::uint32_t offers_dropped = 0;
  // DeployNet extension: the peer's region hint for routing ("" when absent).
  std::string region;
  // DeployNet extension: the secret the peer id derives from (`peer_proof`, up to 64 printable
  // ASCII characters; "" when absent): the peer id's last 12 characters are the first 12 of
  // base64url(SHA-256(peer_proof)). Only the server sees it. `peer_proved` is set by the server
  // once checked: a peer that moves to another node of a cluster takes its record over only
  // with it.
  std::string peer_proof;
  bool peer_proved = false;

  bool seeder() const { return left && *left == 0; }
};

struct ScrapeRequest {
  std::vector<InfoHash> info_hashes;  // empty: every swarm (as the reference server does)
};

// DeployNet extension (`"action":"route"`): which peers of the swarm are responsible for these
// content ids. The asker must be a member of the swarm on this connection.
struct RouteRequest {
  InfoHash info_hash;
  PeerId peer_id;
  std::vector<std::array<std::uint8_t, 32>> content_ids;  // SHA-256, sent as 64 hex digits
  std::uint32_t k = 3;                                    // peers per content id
};

// DeployNet extension (`"action":"report"`): a member's byte counts for this page view so far
// (cumulative; the server adds what grew since the member's last report). What a site owner
// sees of its savings in /metrics.
struct ReportRequest {
  InfoHash info_hash;
  PeerId peer_id;
  std::uint64_t from_peers = 0;
  std::uint64_t from_origin = 0;
  std::uint64_t from_cache = 0;
  std::uint64_t uploaded = 0;
  std::string origin;  // the site (scheme://host[:port]); the server checks it owns the swarm
};

using InMessage = std::variant<AnnounceRequest, ScrapeRequest, RouteRequest, ReportRequest>;

// Why a frame was refused. `action` and `info_hash` are echoed in the reply when known, so
// that a client that multiplexes swarms on one socket can route the failure.
struct ParseError {
  std::string reason;
  std::string action;
  std::optional<InfoHash> info_hash;
};

struct ParseLimits {
  std::uint32_t max_offers = 10;          // aquatic's cap; bittorrent-tracker clients send <= 5
  std::uint32_t max_scrape_hashes = 128;  // info hashes in one scrape
  std::uint32_t max_route_ids = 256;      // content ids in one route request
  std::uint32_t max_route_k = 8;          // peers per content id in a route answer
  static constexpr std::size_t kMaxRegion = 32;  // bytes of a region hint: [A-Za-z0-9._-]
  // Nesting of any frame: real messages nest 4 deep; the parser stops at once past this.
  static constexpr std::size_t kMaxDepth = 32;
};

using ParseResult = std::variant<InMessage, ParseError>;

ParseResult parse_in_message(std::string_view text, const ParseLimits& limits = {});

const char* to_string(AnnounceEvent event);

// ---- server to client ----

struct ScrapeEntry {
  InfoHash info_hash;
  std::uint32_t complete = 0;
  std::uint32_t incomplete = 0;
  std::uint32_t downloaded = 0;
};

std::string serialize_announce_reply(const InfoHash& info_hash, std::uint32_t complete,
                                     std::uint32_t incomplete, std::uint32_t interval_s);
std::string serialize_offer(const InfoHash& info_hash, const PeerId& from, const OfferId& offer_id,
                            std::string_view offer_json);
std::string serialize_answer(const InfoHash& info_hash, const PeerId& from, const OfferId& offer_id,
                             std::string_view answer_json);
// Whether `json` is what an offer or answer may carry: one JSON object of valid UTF-8, nested no
// deeper than ParseLimits::kMaxDepth, at most `max_bytes`. A cluster node checks what another
// node relays before building the message it sends a visitor around it.
bool valid_description(std::string_view json, std::size_t max_bytes);
// A region hint: 1 to ParseLimits::kMaxRegion of A-Z a-z 0-9 . _ -
bool valid_region(std::string_view region);
std::string serialize_scrape_reply(std::span<const ScrapeEntry> files, std::uint32_t interval_s);
struct RouteEntry {
  std::array<std::uint8_t, 32> content_id;
  std::vector<PeerId> peers;
};
// `{"action":"route","info_hash":..,"routes":[{"content_id":hex,"peers":[id..]}..],"peers":n}`
std::string serialize_route_reply(const InfoHash& info_hash, std::span<const RouteEntry> routes,
                                  std::uint32_t swarm_peers);
// `{"failure reason": ...}` with the action and info_hash when known.
std::string serialize_failure(std::string_view reason, std::string_view action = {},
                              const InfoHash* info_hash = nullptr);

// ---- outgoing messages, typed ----
// The tracker builds these under its shard lock; the transport serializes them once it has
// left it (aquatic's split: swarm logic pushes typed messages, only the socket side writes).

struct AnnounceReplyOut {
  InfoHash info_hash;
  std::uint32_t complete = 0;
  std::uint32_t incomplete = 0;
  std::uint32_t interval_s = 0;
};
// An offer or answer relayed to another peer. `sdp` views the sender's validated bytes in the
// request being handled: serialize before that request is gone.
struct RelayOut {
  bool answer = false;
  InfoHash info_hash;
  PeerId from;
  OfferId offer_id;
  std::string_view sdp;
};
struct RouteReplyOut {
  InfoHash info_hash;
  std::vector<RouteEntry> routes;
  std::uint32_t swarm_peers = 0;
};
struct FailureOut {
  std::string reason;
  std::string_view action;  // a literal ("announce", "route")
  std::optional<InfoHash> info_hash;
};
// A message serialized elsewhere (another node of a cluster), delivered as it is.
struct SerializedOut {
  std::string text;
};
using OutMessage =
    std::variant<AnnounceReplyOut, RelayOut, RouteReplyOut, FailureOut, SerializedOut>;

// The JSON text of a message (a SerializedOut's text moved out when given an rvalue).
std::string serialize(const OutMessage& message);
std::string serialize(OutMessage&& message);

}  // namespace deploynet
