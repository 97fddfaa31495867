#include "deploynet/cluster_codec.hpp"

#include "deploynet/protocol.hpp"

namespace deploynet::cluster {
namespace {

void put_u32(std::string& s, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_u64(std::string& s, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
std::uint64_t get_be(std::string_view p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
template <class Id>
void put_id(std::string& s, const Id& id) {
  s.append(reinterpret_cast<const char*>(id.bytes.data()), Id::kSize);
}
template <class Id>
Id get_id(std::string_view p) {
  return Id::from_bytes(p.substr(0, Id::kSize));
}

constexpr std::size_t kRelayHead = 1 + 4 * 20;

}  // namespace

std::string encode_relay(const Relay& r) {
  std::string msg(1, r.answer ? 'A' : 'O');
  msg.reserve(kRelayHead + r.description.size());
  put_id(msg, r.info_hash);
  put_id(msg, r.from);
  put_id(msg, r.to);
  put_id(msg, r.offer_id);
  msg += r.description;
  return msg;
}

std::optional<Relay> decode_relay(std::string_view m) {
  if (m.size() < kRelayHead || (m[0] != 'O' && m[0] != 'A')) return std::nullopt;
  Relay r;
  r.answer = m[0] == 'A';
  r.info_hash = get_id<InfoHash>(m.substr(1));
  r.from = get_id<PeerId>(m.substr(21));
  r.to = get_id<PeerId>(m.substr(41));
  r.offer_id = get_id<OfferId>(m.substr(61));
  r.description = m.substr(kRelayHead);
  if (!valid_description(r.description, kMaxDescription)) return std::nullopt;
  return r;
}

std::string member_field(const MemberEvent& e) {
  std::string f;
  put_id(f, e.info_hash);
  put_id(f, e.peer_id);
  return f;
}

std::string member_value(const MemberEvent& e) {
  std::string v(1, e.seeder ? '\1' : '\0');
  put_u64(v, e.where.net_prefix);
  v += e.where.region;
  return v;
}

std::optional<MemberEvent> decode_record(std::string_view field, std::string_view value) {
  if (field.size() != kFieldLen || value.size() < kValueMin) return std::nullopt;
  if (value[0] != 0 && value[0] != 1) return std::nullopt;
  auto region = value.substr(kValueMin);
  if (!region.empty() && !valid_region(region)) return std::nullopt;
  MemberEvent e;
  e.joined = true;
  e.info_hash = get_id<InfoHash>(field);
  e.peer_id = get_id<PeerId>(field.substr(20));
  e.seeder = value[0] == 1;
  e.where = Proximity{std::string(region), get_be(value.substr(1), 8)};
  return e;
}

std::string encode_member(const MemberMessage& m) {
  std::string msg(1, static_cast<char>(m.kind));
  put_u32(msg, m.node);
  if (m.kind == MemberMessage::Kind::kReset) return msg;
  msg += member_field(m.event);
  if (m.kind == MemberMessage::Kind::kJoin) msg += member_value(m.event);
  return msg;
}

std::optional<MemberMessage> decode_member(std::string_view m) {
  if (m.size() < 5) return std::nullopt;
  MemberMessage out;
  out.node = static_cast<std::uint32_t>(get_be(m.substr(1), 4));
  if (out.node == 0) return std::nullopt;
  auto rest = m.substr(5);
  switch (m[0]) {
    case 'R':
      if (!rest.empty()) return std::nullopt;
      out.kind = MemberMessage::Kind::kReset;
      return out;
    case 'L':
      if (rest.size() != kFieldLen) return std::nullopt;
      out.kind = MemberMessage::Kind::kLeave;
      out.event.joined = false;
      out.event.info_hash = get_id<InfoHash>(rest);
      out.event.peer_id = get_id<PeerId>(rest.substr(20));
      return out;
    case 'J': {
      if (rest.size() < kFieldLen) return std::nullopt;
      auto e = decode_record(rest.substr(0, kFieldLen), rest.substr(kFieldLen));
      if (!e) return std::nullopt;
      out.kind = MemberMessage::Kind::kJoin;
      out.event = std::move(*e);
      return out;
    }
    default:
      return std::nullopt;
  }
}

}  // namespace deploynet::cluster
