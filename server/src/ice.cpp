#include "ice.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <array>
#include <atomic>
#include <cstring>
#include <ctime>

namespace deploynet::server {

std::string turn_password(std::string_view secret, std::string_view username) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(username.data()), username.size(), mac, &len);
  unsigned char b64[64];
  int n = EVP_EncodeBlock(b64, mac, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(b64), static_cast<std::size_t>(n));
}

bool valid_ice_url(std::string_view url, bool turn) {
  auto starts = [&](std::string_view p) { return url.substr(0, p.size()) == p; };
  bool scheme =
      turn ? (starts("turn:") || starts("turns:")) : (starts("stun:") || starts("stuns:"));
  if (!scheme || url.size() > 256) return false;
  for (char c : url) {
    if (c <= ' ' || c > '~' || c == '"' || c == '\\') return false;
  }
  return true;
}

std::string turn_user_tag() {
  std::array<unsigned char, 8> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    // No randomness at hand: the tag only tells visitors apart in coturn's quotas and logs.
    static std::atomic<std::uint64_t> n{0};
    std::uint64_t v = n.fetch_add(1) ^ static_cast<std::uint64_t>(std::time(nullptr));
    std::memcpy(raw.data(), &v, raw.size());
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string tag;
  for (unsigned char b : raw) {
    tag += kHex[b >> 4];
    tag += kHex[b & 15];
  }
  return tag;
}

std::string ice_message(const IceConfig& config, std::int64_t now_unix_s,
                        std::string_view user_tag) {
  using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
  rapidjson::StringBuffer buf;
  Writer w(buf);
  auto urls = [&](const std::vector<std::string>& list) {
    w.Key("urls");
    w.StartArray();
    for (const auto& u : list) w.String(u.data(), static_cast<rapidjson::SizeType>(u.size()));
    w.EndArray();
  };
  std::int64_t expires = now_unix_s + config.turn_ttl_s;
  w.StartObject();
  w.Key("action");
  w.String("deploynet");
  w.Key("ice_servers");
  w.StartArray();
  if (!config.stun_urls.empty()) {
    w.StartObject();
    urls(config.stun_urls);
    w.EndObject();
  }
  if (!config.turn_urls.empty()) {
    std::string user = std::to_string(expires) + ":" + std::string(user_tag);
    auto pass = turn_password(config.turn_secret, user);
    w.StartObject();
    urls(config.turn_urls);
    w.Key("username");
    w.String(user.data(), static_cast<rapidjson::SizeType>(user.size()));
    w.Key("credential");
    w.String(pass.data(), static_cast<rapidjson::SizeType>(pass.size()));
    w.EndObject();
  }
  w.EndArray();
  w.Key("ice_transport_policy");
  w.String(config.relay_only ? "relay" : "all");
  if (!config.turn_urls.empty()) {
    w.Key("expires");
    w.Int64(expires);
  }
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace deploynet::server
