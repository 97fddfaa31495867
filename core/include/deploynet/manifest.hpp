#pragma once

// The manifest (deploynet.json): the root of trust of a deploy. For every file of a site's build
// its URL path, SHA-256 (the content id), size, MIME type and the SHA-256 of each piece. Browsers
// check every byte from peers against it. Format only: no file system, no hashing here.
// The JSON Schema is docs/manifest.schema.json.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "deploynet/hex.hpp"

namespace deploynet {

using Sha256 = std::array<std::uint8_t, 32>;

// Digests in the manifest are lower-case hex only: one spelling keeps the text deterministic.
inline std::optional<Sha256> sha256_from_hex(std::string_view hex) {
  return from_hex<32>(hex, HexCase::kLower);
}

struct ManifestFile {
  std::string path;  // URL path from the site root: "/", then '/'-separated UTF-8 segments
  Sha256 sha256{};   // of the whole file: its content id
  std::uint64_t size = 0;
  std::string type;            // MIME type
  std::vector<Sha256> pieces;  // ceil(size / piece_size) digests; none for an empty file
};

struct Manifest {
  static constexpr int kVersion = 1;
  static constexpr std::uint32_t kDefaultPieceSize = 64 * 1024;
  static constexpr std::uint32_t kMinPieceSize = 1024;
  static constexpr std::uint32_t kMaxPieceSize = 16 * 1024 * 1024;

  std::string origin;     // e.g. https://site.example
  std::string deploy_id;  // 32 hex digits derived from the content (see deploy_id_input)
  std::uint32_t piece_size = kDefaultPieceSize;
  std::vector<ManifestFile> files;  // sorted by path, byte order
};

// Number of pieces a file of `size` bytes has.
std::uint64_t piece_count(std::uint64_t size, std::uint32_t piece_size);

// Whether `path` is acceptable as a manifest path; if not, why.
std::optional<std::string> check_path(std::string_view path);
// scheme://host[:port] (http or https), as a browser's `location.origin` reads: no path, query
// or user info.
bool valid_origin(std::string_view origin);

// The bytes whose SHA-256 (first 16 bytes, hex) is the deploy id: origin, piece size and each
// file's path, hash and type. The same content always gives the same id.
std::string deploy_id_input(const Manifest& m);

// Deterministic text: fixed key order, files sorted by path, one file per line.
std::string serialize_manifest(const Manifest& m);

// Parses and checks everything (paths, hex digests, piece counts, order, duplicates).
std::variant<Manifest, std::string> parse_manifest(std::string_view json);

// MIME type from the file name's extension (lower-cased); application/octet-stream if unknown.
std::string mime_type_for(std::string_view path);

}  // namespace deploynet
