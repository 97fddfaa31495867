#include "deploynet/deploy_notice.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "deploynet/manifest.hpp"

namespace deploynet {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c) {
  auto i = kAlphabet.find(c);
  return i == std::string_view::npos ? -1 : static_cast<int>(i);
}

bool deploy_id_ok(std::string_view s) {
  if (s == kDisabledDeploy) return true;
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

std::string base64_encode(std::span<const std::uint8_t> bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t v = std::uint32_t{bytes[i]} << 16;
    if (i + 1 < bytes.size()) v |= std::uint32_t{bytes[i + 1]} << 8;
    if (i + 2 < bytes.size()) v |= bytes[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

bool base64_decode_exact(std::string_view text, std::span<std::uint8_t> out) {
  if (text.size() != (out.size() + 2) / 3 * 4) return false;
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::uint32_t v = 0;
    int pad = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        ++pad;
        v <<= 6;
        continue;
      }
      const int s = sextet(c);
      if (s < 0 || pad > 0) return false;
      v = (v << 6) | static_cast<std::uint32_t>(s);
    }
    for (int b = 0; b < 3 - pad; ++b) {
      if (n == out.size()) return false;
      out[n++] = static_cast<std::uint8_t>(v >> (16 - 8 * b));
    }
  }
  return n == out.size();
}

std::string deploy_notice_text(std::string_view origin, std::string_view deploy_id,
                               std::int64_t time) {
  std::string t = "deploynet-deploy-notice\n";
  t += origin;
  t += '\n';
  t += deploy_id;
  t += '\n';
  t += std::to_string(time);
  return t;
}

std::variant<DeployNotice, std::string> parse_deploy_notice(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return std::string("not a JSON object");
  auto str = [&](const char* key) -> const rapidjson::Value* {
    auto it = doc.FindMember(key);
    return it != doc.MemberEnd() && it->value.IsString() ? &it->value : nullptr;
  };
  DeployNotice n;
  const auto* origin = str("origin");
  if (!origin || !valid_origin({origin->GetString(), origin->GetStringLength()}))
    return std::string("origin: expected https://host[:port] (or http://)");
  n.origin.assign(origin->GetString(), origin->GetStringLength());
  const auto* id = str("deploy_id");
  if (!id || !deploy_id_ok({id->GetString(), id->GetStringLength()}))
    return std::string("deploy_id: expected 32 lowercase hex digits, or \"disabled\"");
  n.deploy_id.assign(id->GetString(), id->GetStringLength());
  auto t = doc.FindMember("time");
  if (t == doc.MemberEnd() || !t->value.IsInt64() || t->value.GetInt64() <= 0)
    return std::string("time: expected unix seconds");
  n.time = t->value.GetInt64();
  const auto* sig = str("signature");
  if (!sig || !base64_decode_exact({sig->GetString(), sig->GetStringLength()}, n.signature))
    return std::string("signature: expected base64 of 64 bytes (Ed25519)");
  return n;
}

namespace {
template <class Fill>
std::string object(Fill fill) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  fill(w);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}
void put(rapidjson::Writer<rapidjson::StringBuffer>& w, const char* key, std::string_view v) {
  w.Key(key);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}
}  // namespace

std::string serialize_deploy_notice(const DeployNotice& n) {
  return object([&](auto& w) {
    put(w, "origin", n.origin);
    put(w, "deploy_id", n.deploy_id);
    w.Key("time");
    w.Int64(n.time);
    put(w, "signature", base64_encode(n.signature));
  });
}

std::string serialize_deploy_push(const DeployNotice& n) {
  return object([&](auto& w) {
    put(w, "action", "deploy");
    put(w, "origin", n.origin);
    put(w, "deploy_id", n.deploy_id);
  });
}

}  // namespace deploynet
