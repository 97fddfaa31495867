#include "ring_vectors.hpp"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <random>

#include "deploynet/ring.hpp"

namespace deploynet::testing {
namespace {

using rapidjson::Document;
using rapidjson::Value;

template <std::size_t N>
std::array<std::uint8_t, N> unhex(const std::string& s) {
  auto bytes = from_hex<N>(s, HexCase::kLower);
  if (!bytes) throw std::runtime_error("bad hex: " + s);
  return *bytes;
}

PeerId peer_of(const std::string& hex) {
  PeerId p;
  p.bytes = unhex<20>(hex);
  return p;
}

std::uint64_t prefix_of(const Value& step) {
  if (!step.HasMember("net_prefix")) return 0;
  auto b = unhex<8>(step["net_prefix"].GetString());
  std::uint64_t v = 0;
  for (auto x : b) v = (v << 8) | x;
  return v;
}

Proximity from_of(const Value& step) {
  Proximity p;
  if (step.HasMember("region")) p.region = step["region"].GetString();
  p.net_prefix = prefix_of(step);
  return p;
}

std::string str(const Value& v, const char* key) {
  return v.HasMember(key) ? v[key].GetString() : std::string();
}

}  // namespace

std::vector<std::string> replay_ring_vectors(const std::string& json, bool fill,
                                             std::string* filled) {
  std::vector<std::string> bad;
  Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return {"vectors: not JSON"};
  auto& alloc = doc.GetAllocator();
  for (auto& c : doc["cases"].GetArray()) {
    RingConfig cfg;
    cfg.vnodes = c["vnodes"].GetUint();
    cfg.load_permille = c["load_permille"].GetUint();
    Ring ring(cfg);
    std::string name = c["name"].GetString();
    std::size_t n = 0;
    for (auto& step : c["steps"].GetArray()) {
      ++n;
      std::string op = step["op"].GetString();
      Value got;
      if (op == "add") {
        got.SetBool(ring.add(peer_of(step["peer"].GetString()), from_of(step)));
      } else if (op == "remove") {
        got.SetBool(ring.remove(peer_of(step["peer"].GetString())));
      } else if (op == "route" || op == "assign") {
        std::string ex = str(step, "exclude");
        PeerId exclude;
        if (!ex.empty()) exclude = peer_of(ex);
        auto k = step["k"].GetUint();
        auto list = [&](const std::vector<PeerId>& peers) {
          Value a(rapidjson::kArrayType);
          for (const auto& p : peers) a.PushBack(Value(p.hex().c_str(), alloc), alloc);
          return a;
        };
        if (op == "route") {
          auto key = unhex<32>(step["key"].GetString());
          got = list(ring.route(key, k, from_of(step), ex.empty() ? nullptr : &exclude));
        } else {
          std::vector<ContentId> keys;
          for (auto& kv : step["keys"].GetArray()) keys.push_back(unhex<32>(kv.GetString()));
          got.SetArray();
          for (const auto& peers :
               ring.assign(keys, k, from_of(step), ex.empty() ? nullptr : &exclude)) {
            got.PushBack(list(peers), alloc);
          }
        }
      } else {
        bad.push_back(name + " step " + std::to_string(n) + ": unknown op " + op);
        continue;
      }
      if (fill) {
        step.RemoveMember("expect");
        step.AddMember("expect", got, alloc);
      } else if (!step.HasMember("expect") || step["expect"] != got) {
        rapidjson::StringBuffer sb;
        rapidjson::Writer<rapidjson::StringBuffer> w(sb);
        got.Accept(w);
        bad.push_back(name + " step " + std::to_string(n) + " (" + op + "): got " + sb.GetString());
      }
    }
  }
  if (fill && filled) {
    rapidjson::StringBuffer sb;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
    w.SetFormatOptions(rapidjson::kFormatSingleLineArray);
    w.SetIndent(' ', 1);
    doc.Accept(w);
    *filled = std::string(sb.GetString()) + "\n";
  }
  return bad;
}

std::string generate_ring_vector_steps() {
  std::mt19937_64 rng(20261125);
  Document doc(rapidjson::kObjectType);
  auto& alloc = doc.GetAllocator();
  auto hex = [&](std::size_t bytes, bool ascii) {
    std::vector<std::uint8_t> b(bytes);
    // ASCII ids as DeployNet clients make them; binary ones as WebTorrent clients do.
    for (auto& x : b) x = static_cast<std::uint8_t>(ascii ? 0x30 + rng() % 0x4B : rng() & 0xFF);
    return to_hex(b);
  };
  auto v = [&](const std::string& s) { return Value(s.c_str(), alloc); };
  Value cases(rapidjson::kArrayType);

  auto make_case = [&](const char* name, unsigned vnodes, unsigned permille) {
    Value c(rapidjson::kObjectType);
    c.AddMember("name", Value(name, alloc), alloc);
    c.AddMember("vnodes", vnodes, alloc);
    c.AddMember("load_permille", permille, alloc);
    c.AddMember("steps", Value(rapidjson::kArrayType), alloc);
    return c;
  };
  auto add = [&](Value& c, const std::string& peer, const std::string& region,
                 const std::string& prefix) {
    Value s(rapidjson::kObjectType);
    s.AddMember("op", "add", alloc);
    s.AddMember("peer", v(peer), alloc);
    if (!region.empty()) s.AddMember("region", v(region), alloc);
    if (!prefix.empty()) s.AddMember("net_prefix", v(prefix), alloc);
    c["steps"].PushBack(s, alloc);
  };
  auto remove = [&](Value& c, const std::string& peer) {
    Value s(rapidjson::kObjectType);
    s.AddMember("op", "remove", alloc);
    s.AddMember("peer", v(peer), alloc);
    c["steps"].PushBack(s, alloc);
  };
  auto ask = [&](Value& c, const char* op, std::vector<std::string> keys, unsigned k,
                 const std::string& region, const std::string& prefix, const std::string& exclude) {
    Value s(rapidjson::kObjectType);
    s.AddMember("op", Value(op, alloc), alloc);
    if (std::string(op) == "route") {
      s.AddMember("key", v(keys[0]), alloc);
    } else {
      Value a(rapidjson::kArrayType);
      for (auto& key : keys) a.PushBack(v(key), alloc);
      s.AddMember("keys", a, alloc);
    }
    s.AddMember("k", k, alloc);
    if (!region.empty()) s.AddMember("region", v(region), alloc);
    if (!prefix.empty()) s.AddMember("net_prefix", v(prefix), alloc);
    if (!exclude.empty()) s.AddMember("exclude", v(exclude), alloc);
    c["steps"].PushBack(s, alloc);
  };
  auto keys = [&](int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back(hex(32, false));
    return out;
  };

  {  // A handful of peers and few points: every answer checkable by hand.
    Value c = make_case("tiny", 4, 1250);
    ask(c, "route", keys(1), 2, "", "", "");  // empty ring
    std::vector<std::string> peers;
    for (int i = 0; i < 5; ++i) add(c, peers.emplace_back(hex(20, true)), "", "");
    add(c, peers[0], "", "");  // already a member
    for (unsigned k = 1; k <= 6; ++k) ask(c, "route", keys(1), k, "", "", "");
    ask(c, "route", keys(1), 3, "", "", peers[2]);
    remove(c, peers[1]);
    remove(c, peers[1]);  // not a member any more
    for (int i = 0; i < 5; ++i) ask(c, "route", keys(1), 2, "", "", "");
    cases.PushBack(c, alloc);
  }
  {  // Joins and leaves between lookups, binary ids included.
    Value c = make_case("churn", 16, 1250);
    std::vector<std::string> peers;
    for (int i = 0; i < 200; ++i) add(c, peers.emplace_back(hex(20, i % 3 != 0)), "", "");
    for (int round = 0; round < 6; ++round) {
      for (int i = 0; i < 8; ++i) ask(c, "route", keys(1), 3, "", "", peers[rng() % peers.size()]);
      for (int i = 0; i < 10; ++i) {
        std::size_t at = rng() % peers.size();
        remove(c, peers[at]);
        peers.erase(peers.begin() + static_cast<long>(at));
      }
      for (int i = 0; i < 6; ++i) add(c, peers.emplace_back(hex(20, true)), "", "");
    }
    cases.PushBack(c, alloc);
  }
  {  // Regions and network prefixes.
    Value c = make_case("proximity", 16, 1250);
    const char* regions[] = {"eu-west", "us-east", "ap-south", ""};
    std::vector<std::string> prefixes = {hex(8, false), hex(8, false), hex(8, false)};
    std::vector<std::string> peers;
    for (int i = 0; i < 60; ++i) {
      add(c, peers.emplace_back(hex(20, true)), regions[i % 4], prefixes[rng() % 3]);
    }
    add(c, peers[0], "us-east", prefixes[0]);  // moves region
    for (int i = 0; i < 12; ++i) {
      ask(c, "route", keys(1), 4, regions[i % 4], prefixes[i % 3], "");
    }
    ask(c, "route", keys(1), 4, "mars", "", "");  // unknown region: the global ring
    ask(c, "assign", keys(40), 2, "eu-west", prefixes[1], peers[5]);
    cases.PushBack(c, alloc);
  }
  {  // Bounded loads, with duplicates in the key list, at c = 1.25 and c = 1.0.
    for (unsigned permille : {1250u, 1000u}) {
      Value c = make_case(permille == 1250 ? "bounded-1.25" : "bounded-1.0", 8, permille);
      std::vector<std::string> peers;
      for (int i = 0; i < 40; ++i) add(c, peers.emplace_back(hex(20, true)), "", "");
      auto ks = keys(300);
      ks.push_back(ks[7]);
      ask(c, "assign", ks, 2, "", "", "");
      ask(c, "assign", keys(50), 3, "", "", peers[3]);
      ask(c, "assign", keys(10), 60, "", "", "");  // k beyond the ring: every peer once
      cases.PushBack(c, alloc);
    }
  }
  doc.AddMember("version", 1, alloc);
  doc.AddMember("cases", cases, alloc);
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  doc.Accept(w);
  return sb.GetString();
}

}  // namespace deploynet::testing
