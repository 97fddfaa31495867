#include "deploynet/manifest.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <unordered_map>

#include "deploynet/utf8.hpp"

namespace deploynet {
namespace {

// What a manifest string may hold: valid UTF-8 (a lone surrogate escape decodes to bytes that
// are not) and no control characters, so that it writes back as it was read.
bool clean_text(std::string_view s) {
  if (!valid_utf8(s)) return false;
  return std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7F;
  });
}

bool lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::uint64_t piece_count(std::uint64_t size, std::uint32_t piece_size) {
  return size / piece_size + (size % piece_size ? 1 : 0);
}

bool valid_origin(std::string_view o) {
  std::string_view rest;
  if (o.substr(0, 8) == "https://")
    rest = o.substr(8);
  else if (o.substr(0, 7) == "http://")
    rest = o.substr(7);
  else
    return false;
  if (rest.empty() || rest.size() > 255) return false;
  return std::all_of(rest.begin(), rest.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
           c == '[' || c == ']';
  });
}

std::optional<std::string> check_path(std::string_view path) {
  if (path.empty() || path.front() != '/') return "must start with '/'";
  if (path.size() > 4096) return "longer than 4096 bytes";
  if (!valid_utf8(path)) return "not valid UTF-8";
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return "contains a control character";
    if (c == '\\') return "contains a backslash";
  }
  std::size_t pos = 1;
  while (pos <= path.size()) {
    auto end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    auto seg = path.substr(pos, end - pos);
    if (seg.empty()) return "has an empty segment";
    if (seg == "." || seg == "..") return "has a '.' or '..' segment";
    pos = end + 1;
  }
  return std::nullopt;
}

std::string deploy_id_input(const Manifest& m) {
  std::string s = "deploynet-manifest-v1\n" + m.origin + "\n" + std::to_string(m.piece_size) + "\n";
  for (const auto& f : m.files) {
    s += f.path;
    s += '\0';
    s += to_hex(f.sha256);
    s += '\0';
    s += f.type;
    s += '\n';
  }
  return s;
}

std::string serialize_manifest(const Manifest& m) {
  using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
  std::string out;
  {
    rapidjson::StringBuffer head;
    Writer w(head);
    w.StartObject();
    w.Key("version");
    w.Int(Manifest::kVersion);
    w.Key("origin");
    w.String(m.origin.c_str(), static_cast<rapidjson::SizeType>(m.origin.size()));
    w.Key("deploy_id");
    w.String(m.deploy_id.c_str(), static_cast<rapidjson::SizeType>(m.deploy_id.size()));
    w.Key("piece_size");
    w.Uint(m.piece_size);
    w.Key("files");
    w.StartArray();
    w.EndArray();
    w.EndObject();
    out.assign(head.GetString(), head.GetSize() - 3);  // reopen the empty "files" array
  }
  out += "[\n";
  for (std::size_t i = 0; i < m.files.size(); ++i) {
    const auto& f = m.files[i];
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("path");
    w.String(f.path.c_str(), static_cast<rapidjson::SizeType>(f.path.size()));
    w.Key("sha256");
    auto h = to_hex(f.sha256);
    w.String(h.c_str(), 64);
    w.Key("size");
    w.Uint64(f.size);
    w.Key("type");
    w.String(f.type.c_str(), static_cast<rapidjson::SizeType>(f.type.size()));
    w.Key("pieces");
    w.StartArray();
    for (const auto& p : f.pieces) {
      auto ph = to_hex(p);
      w.String(ph.c_str(), 64);
    }
    w.EndArray();
    w.EndObject();
    out.append(buf.GetString(), buf.GetSize());
    out += i + 1 < m.files.size() ? ",\n" : "\n";
  }
  out += "]}\n";
  return out;
}

std::variant<Manifest, std::string> parse_manifest(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(json.data(),
                                                                                    json.size());
  if (doc.HasParseError()) return std::string("not valid JSON");
  if (!doc.IsObject()) return std::string("not a JSON object");
  auto member = [&](const rapidjson::Value& o, const char* k) -> const rapidjson::Value* {
    auto it = o.FindMember(k);
    return it == o.MemberEnd() ? nullptr : &it->value;
  };
  auto* version = member(doc, "version");
  if (!version || !version->IsInt()) return std::string("missing version");
  if (version->GetInt() != Manifest::kVersion) {
    return "unsupported version " + std::to_string(version->GetInt());
  }
  Manifest m;
  auto* origin = member(doc, "origin");
  auto* id = member(doc, "deploy_id");
  auto* ps = member(doc, "piece_size");
  auto* files = member(doc, "files");
  if (!origin || !origin->IsString()) return std::string("missing origin");
  if (!valid_origin({origin->GetString(), origin->GetStringLength()})) {
    return std::string("bad origin (scheme://host[:port])");
  }
  if (!id || !id->IsString() || id->GetStringLength() != 32 ||
      !lower_hex({id->GetString(), id->GetStringLength()})) {
    return std::string("bad deploy_id (32 lowercase hex digits)");
  }
  if (!ps || !ps->IsUint() || ps->GetUint() < Manifest::kMinPieceSize ||
      ps->GetUint() > Manifest::kMaxPieceSize) {
    return std::string("bad piece_size");
  }
  if (!files || !files->IsArray()) return std::string("missing files");
  m.origin.assign(origin->GetString(), origin->GetStringLength());
  m.deploy_id.assign(id->GetString(), id->GetStringLength());
  m.piece_size = ps->GetUint();
  for (auto& f : files->GetArray()) {
    if (!f.IsObject()) return std::string("a file entry is not an object");
    ManifestFile mf;
    auto* path = member(f, "path");
    if (!path || !path->IsString()) return std::string("a file has no path");
    mf.path.assign(path->GetString(), path->GetStringLength());
    if (auto why = check_path(mf.path)) return "bad path '" + mf.path + "': " + *why;
    auto* sha = member(f, "sha256");
    auto digest = sha && sha->IsString() ? sha256_from_hex(sha->GetString()) : std::nullopt;
    if (!digest) return "bad sha256 for " + mf.path;
    mf.sha256 = *digest;
    auto* size = member(f, "size");
    if (!size || !size->IsUint64()) return "bad size for " + mf.path;
    mf.size = size->GetUint64();
    auto* type = member(f, "type");
    if (!type || !type->IsString() || type->GetStringLength() == 0 ||
        type->GetStringLength() > 255 ||
        !clean_text({type->GetString(), type->GetStringLength()})) {
      return "bad type for " + mf.path;
    }
    mf.type.assign(type->GetString(), type->GetStringLength());
    auto* pieces = member(f, "pieces");
    if (!pieces || !pieces->IsArray()) return "missing pieces for " + mf.path;
    if (pieces->Size() != piece_count(mf.size, m.piece_size))
      return "wrong piece count for " + mf.path;
    for (auto& p : pieces->GetArray()) {
      auto pd = p.IsString() ? sha256_from_hex(p.GetString()) : std::nullopt;
      if (!pd) return "bad piece hash for " + mf.path;
      mf.pieces.push_back(*pd);
    }
    if (!m.files.empty() && !(m.files.back().path < mf.path)) {
      return "files not sorted or duplicated at " + mf.path;
    }
    m.files.push_back(std::move(mf));
  }
  return m;
}

std::string mime_type_for(std::string_view path) {
  static const std::unordered_map<std::string, std::string> kTypes = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"webmanifest", "application/manifest+json"},
      {"txt", "text/plain; charset=utf-8"},
      {"xml", "application/xml"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"avif", "image/avif"},
      {"ico", "image/x-icon"},
      {"bmp", "image/bmp"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"ttf", "font/ttf"},
      {"otf", "font/otf"},
      {"eot", "application/vnd.ms-fontobject"},
      {"wasm", "application/wasm"},
      {"mp4", "video/mp4"},
      {"webm", "video/webm"},
      {"mp3", "audio/mpeg"},
      {"ogg", "audio/ogg"},
      {"wav", "audio/wav"},
      {"pdf", "application/pdf"},
      {"zip", "application/zip"},
      {"csv", "text/csv; charset=utf-8"},
      {"md", "text/markdown; charset=utf-8"},
  };
  auto slash = path.rfind('/');
  auto name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return "application/octet-stream";
  std::string ext(name.substr(dot + 1));
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto it = kTypes.find(ext);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

}  // namespace deploynet
