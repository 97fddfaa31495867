#pragma once

// What cluster nodes write to Redis and read back from it, encode and decode side by side. Redis
// is a boundary like a visitor's socket: every decode checks what it reads (lengths, flags, the
// region hint, the session description) and refuses the rest; a decoded message re-encodes to
// the same bytes (the fuzzer holds both).
//
// Channel messages (big-endian integers, ids as their 20 raw bytes):
//   'O' | 'A'  info_hash from to offer_id description   an offer or answer for a peer on the
//                                                        receiving node (`description`: the
//                                                        sender's session description object)
//   'J' node field value                                 a member joined (or changed)
//   'L' node field                                       a member left
//   'R' node                                             that node republished all its members
// Member records (the hash `deploynet:peers:<node>`): field = info_hash peer_id; value = seeder
// byte (0 or 1), network prefix (8 bytes), region hint (0-32 characters).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "deploynet/ids.hpp"
#include "deploynet/tracker.hpp"

namespace deploynet::cluster {

// A session description from another node, at most this long (browsers' are a few KiB).
constexpr std::size_t kMaxDescription = 256u << 10;
constexpr std::size_t kFieldLen = 40;  // info hash + peer id
constexpr std::size_t kValueMin = 9;   // seeder + prefix

struct Relay {
  bool answer = false;
  InfoHash info_hash;
  PeerId from, to;
  OfferId offer_id;
  std::string_view description;  // views the decoded message
};

struct MemberMessage {
  enum class Kind : char { kJoin = 'J', kLeave = 'L', kReset = 'R' } kind = Kind::kJoin;
  std::uint32_t node = 0;
  MemberEvent event;  // kJoin: all of it; kLeave: info_hash and peer_id; kReset: none
};

std::string encode_relay(const Relay& relay);
// nullopt: not a relay, or not a valid one (short, a description that is not one JSON object
// of valid UTF-8 within kMaxDescription and depth limits).
std::optional<Relay> decode_relay(std::string_view message);

std::string member_field(const MemberEvent& e);
std::string member_value(const MemberEvent& e);
// A member record read from a node's hash: nullopt if malformed (lengths, flag, region).
std::optional<MemberEvent> decode_record(std::string_view field, std::string_view value);

std::string encode_member(const MemberMessage& m);
// nullopt: not a member message, or a malformed one (node 0 included).
std::optional<MemberMessage> decode_member(std::string_view message);

}  // namespace deploynet::cluster
