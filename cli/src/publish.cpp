// deploynet publish / verify / keygen: the manifest of a site's build directory.
//
// Files are hashed in parallel (one file per thread at a time), streaming in 1 MiB reads, so
// memory stays constant whatever the file sizes. The manifest is written to a temporary file
// and renamed into place: a failed run never leaves half a manifest.

#include <fcntl.h>
#include <fnmatch.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "cli_common.hpp"
#include "deploynet/manifest.hpp"

namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;
using namespace deploynet::cli;
using deploynet::Manifest;
using deploynet::ManifestFile;
using deploynet::Sha256;

struct Entry {
  std::string url;  // manifest path
  fs::path disk;
};

struct Walk {
  bool include_hidden = false;
  std::vector<Entry> files;
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  std::vector<std::string> hidden;  // left out: names starting with '.' (.env, .git, ...)
};

// Whether a name is hidden: a dotfile or dot-directory, never meant to be public (.env,
// .git/config, .htpasswd). `.well-known` is public by definition (RFC 8615).
bool hidden_name(const std::string& name) {
  return !name.empty() && name[0] == '.' && name != ".well-known";
}

bool under(const fs::path& root, const fs::path& p) {
  const auto& r = root.native();
  const auto& s = p.native();
  return s == r || (s.size() > r.size() && s.compare(0, r.size(), r) == 0 && s[r.size()] == '/');
}

bool excluded(const std::vector<std::string>& globs, const std::string& rel,
              const std::string& name) {
  for (const auto& g : globs) {
    bool whole = g.find('/') != std::string::npos;
    if (fnmatch(g.c_str(), whole ? rel.c_str() : name.c_str(), whole ? FNM_PATHNAME : 0) == 0) {
      return true;
    }
  }
  return false;
}

// A file's identity (device, inode): compared instead of canonical paths, which cost a
// readlink per path component, per entry (quadratic in depth or worse).
using FileId = std::pair<dev_t, ino_t>;
std::optional<FileId> file_id(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return std::nullopt;
  return FileId{st.st_dev, st.st_ino};
}

// Walks `root` without following symlinks out of it. Symlinks inside it are followed (a
// directory at most once, so loops end); special files are skipped; odd names are errors.
void walk_dir(const fs::path& root, const fs::path& dir, const std::string& prefix,
              const std::vector<std::string>& globs, const std::set<FileId>& skip,
              std::set<FileId>& visited, Walk& out) {
  std::error_code ec;
  std::vector<fs::directory_entry> entries;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    entries.push_back(*it);
  }
  if (ec) {
    out.errors.push_back("cannot read directory " + (prefix.empty() ? "/" : prefix) + ": " +
                         ec.message());
    return;
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path().filename() < b.path().filename(); });
  for (const auto& e : entries) {
    std::string name = e.path().filename().string();
    std::string url = prefix;
    url += '/';
    url += name;
    std::string rel = url.substr(1);
    if (!out.include_hidden && hidden_name(name)) {
      out.hidden.push_back(url);
      continue;
    }
    if (excluded(globs, rel, name)) continue;
    if (auto why = deploynet::check_path(url)) {
      out.errors.push_back("unusable file name " + url + ": " + *why);
      continue;
    }
    auto st = e.symlink_status(ec);
    if (ec) {
      out.errors.push_back("cannot stat " + url + ": " + ec.message());
      continue;
    }
    fs::path target = e.path();
    if (fs::is_symlink(st)) {
      target = fs::canonical(e.path(), ec);
      if (ec) {
        out.errors.push_back("broken or looping symlink " + url + ": " + ec.message());
        continue;
      }
      if (!under(root, target)) {
        out.errors.push_back("symlink leaves the directory: " + url + " -> " + target.string());
        continue;
      }
      st = fs::status(target, ec);
    }
    auto id = file_id(target);
    if (!id) {
      out.errors.push_back("cannot stat " + url);
      continue;
    }
    if (skip.count(*id)) continue;
    if (fs::is_directory(st)) {
      if (!visited.insert(*id).second) {
        out.warnings.push_back("skipped " + url + ": a directory already listed (symlink)");
        continue;
      }
      walk_dir(root, target, url, globs, skip, visited, out);
    } else if (fs::is_regular_file(st)) {
      out.files.push_back({url, e.path()});
    } else {
      out.warnings.push_back("skipped " + url + ": not a regular file");
    }
  }
}

Walk walk(const fs::path& root, const std::vector<std::string>& globs,
          const std::set<fs::path>& skip_paths, bool include_hidden) {
  Walk w;
  w.include_hidden = include_hidden;
  std::set<FileId> skip, visited;
  for (const auto& p : skip_paths) {
    if (auto id = file_id(p)) skip.insert(*id);
  }
  if (auto id = file_id(root)) visited.insert(*id);
  walk_dir(root, root, "", globs, skip, visited, w);
  std::sort(w.files.begin(), w.files.end(),
            [](const Entry& a, const Entry& b) { return a.url < b.url; });
  return w;
}

struct Hashed {
  Sha256 sha{};
  std::uint64_t size = 0;
  std::vector<Sha256> pieces;
  std::string error;
};

class Digest {
 public:
  Digest() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Digest() { EVP_MD_CTX_free(ctx_); }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  void update(const char* p, std::size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  Sha256 finish() {
    Sha256 d{};
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, d.data(), &len);
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
    return d;
  }

 private:
  EVP_MD_CTX* ctx_;
};

// Streams one file through the whole-file digest and, when it spans several pieces, the piece
// digests (a file of one piece has that piece's digest as its own: hashed once).
Hashed hash_file(const fs::path& path, std::uint32_t piece_size, std::vector<char>& buf) {
  Hashed h;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    h.error = std::strerror(errno);
    return h;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    h.error = "not a regular file";
    return h;
  }
  bool multi = static_cast<std::uint64_t>(st.st_size) > piece_size;
  Digest file, piece;
  std::uint64_t in_piece = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      h.error = std::strerror(errno);
      ::close(fd);
      return h;
    }
    if (n == 0) break;
    file.update(buf.data(), static_cast<std::size_t>(n));
    h.size += static_cast<std::uint64_t>(n);
    if (!multi) continue;
    std::size_t off = 0;
    while (off < static_cast<std::size_t>(n)) {
      std::size_t take =
          std::min<std::uint64_t>(piece_size - in_piece, static_cast<std::size_t>(n) - off);
      piece.update(buf.data() + off, take);
      off += take;
      in_piece += take;
      if (in_piece == piece_size) {
        h.pieces.push_back(piece.finish());
        in_piece = 0;
      }
    }
  }
  // A file written to while it was read gives a manifest of a state that never existed:
  // the size read, the size and the modification time must all be what they were.
  struct stat after {};
  bool changed = fstat(fd, &after) != 0 || after.st_size != st.st_size ||
                 h.size != static_cast<std::uint64_t>(st.st_size) ||
                 after.st_mtim.tv_sec != st.st_mtim.tv_sec ||
                 after.st_mtim.tv_nsec != st.st_mtim.tv_nsec;
  ::close(fd);
  if (changed) {
    h.error = "changed while it was hashed (publish again once the build is finished)";
    return h;
  }
  h.sha = file.finish();
  if (!multi) {
    if (h.size > piece_size) {
      h.error = "changed while being read";
    } else if (h.size > 0) {
      h.pieces.push_back(h.sha);
    }
  } else if (in_piece > 0) {
    h.pieces.push_back(piece.finish());
  }
  return h;
}

std::vector<Hashed> hash_all(const std::vector<Entry>& files, std::uint32_t piece_size,
                             unsigned jobs) {
  std::vector<Hashed> out(files.size());
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    std::vector<char> buf(1 << 20);
    for (std::size_t i; (i = next.fetch_add(1)) < files.size();) {
      out[i] = hash_file(files[i].disk, piece_size, buf);
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < jobs; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  return out;
}

std::string b64(const unsigned char* p, std::size_t n) {
  std::string out(sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), p, n, sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool unb64(std::string s, unsigned char* out, std::size_t n) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t len = 0;
  return sodium_base642bin(out, n, s.data(), s.size(), nullptr, &len, nullptr,
                           sodium_base64_VARIANT_ORIGINAL) == 0 &&
         len == n;
}

std::uint32_t parse_size(const std::string& s) {
  std::size_t used = 0;
  unsigned long long v = std::stoull(s, &used);
  std::string unit = s.substr(used);
  if (unit == "KiB" || unit == "k" || unit == "K")
    v *= 1024;
  else if (unit == "MiB" || unit == "M")
    v *= 1024 * 1024;
  else if (!unit.empty())
    throw std::invalid_argument("unknown unit " + unit);
  return static_cast<std::uint32_t>(std::min<unsigned long long>(v, 1ull << 31));
}

void apply_base(std::vector<Entry>& files, const std::string& prefix) {
  for (auto& f : files) f.url = prefix + f.url;
}

}  // namespace

// What publish would refuse in `root` (unusable names, symlinks leaving it), found before
// anything is hashed or written: init checks this before it touches a page.
std::vector<std::string> publish_tree_errors(const fs::path& root,
                                             const std::vector<std::string>& excludes) {
  return walk(root, excludes, {}, false).errors;
}

int publish_main(int argc, char** argv) {
  std::string dir, origin, out, sign, piece = "64KiB", base = "/";
  std::vector<std::string> excludes;
  bool include_hidden = false;
  unsigned jobs = std::max(1u, std::thread::hardware_concurrency());
  po::options_description opts(
      "deploynet publish DIR --origin URL: hash every file of a site's build into\n"
      "DIR/deploynet.json, the manifest browsers check every byte against.\n\nOptions");
  // clang-format off
  opts.add_options()
    ("help,h", "print this help")
    ("dir", po::value(&dir), "the build directory")
    ("origin", po::value(&origin), "the site's origin, e.g. https://site.example (required)")
    ("piece-size", po::value(&piece)->default_value(piece), "piece size: bytes, or with KiB/MiB (1 KiB to 16 MiB)")
    ("out", po::value(&out), "where to write the manifest (default DIR/deploynet.json)")
    ("exclude", po::value(&excludes)->composing(), "glob to leave out, repeatable ('*.map'; with a '/': matched against the whole path)")
    ("include-hidden", po::bool_switch(&include_hidden), "also list names starting with '.' (left out by default: .env, .git; .well-known is always listed)")
    ("base", po::value(&base)->default_value(base), "URL path the site is served under, e.g. /docs/ (manifest paths start with it)")
    ("sign", po::value(&sign), "secret key file from 'deploynet keygen': also write OUT.sig (Ed25519)")
    ("jobs", po::value(&jobs)->default_value(jobs), "files hashed in parallel");
  // clang-format on
  if (auto code = parse_dir_command("publish", argc, argv, opts, dir)) return *code;
  while (!origin.empty() && origin.back() == '/') origin.pop_back();
  if (!deploynet::valid_origin(origin)) {
    return fail(
        "publish",
        "--origin: the site's origin is required, scheme://host[:port], e.g. https://site.example");
  }
  Manifest m;
  m.origin = origin;
  try {
    m.piece_size = parse_size(piece);
  } catch (const std::exception&) {
    return fail("publish", "--piece-size: expected a number of bytes, KiB or MiB");
  }
  if (m.piece_size < Manifest::kMinPieceSize || m.piece_size > Manifest::kMaxPieceSize) {
    return fail("publish", "--piece-size: between 1KiB and 16MiB");
  }
  if (jobs == 0 || jobs > 256) return fail("publish", "--jobs: 1 to 256");
  auto prefix = base_prefix(base);
  if (!prefix) return fail("publish", "--base: a URL path such as /docs/, got '" + base + "'");
  std::error_code ec;
  fs::path root = fs::canonical(dir, ec);
  if (ec || !fs::is_directory(root)) return fail("publish", "not a directory: " + dir, 1);
  fs::path out_path = out.empty() ? root / "deploynet.json" : fs::weakly_canonical(out, ec);
  std::set<fs::path> skip{out_path, fs::path(out_path.string() + ".sig")};

  auto w = walk(root, excludes, skip, include_hidden);
  apply_base(w.files, *prefix);
  for (const auto& warn : w.warnings) std::cerr << "deploynet publish: warning: " << warn << "\n";
  if (!w.hidden.empty()) {
    std::cerr << "deploynet publish: left out " << w.hidden.size() << " hidden name(s):";
    for (std::size_t i = 0; i < w.hidden.size() && i < 5; ++i) std::cerr << " " << w.hidden[i];
    if (w.hidden.size() > 5) std::cerr << " ...";
    std::cerr << " (--include-hidden lists them; the manifest is public)\n";
  }
  auto hashed = hash_all(w.files, m.piece_size, jobs);
  for (std::size_t i = 0; i < hashed.size(); ++i) {
    if (!hashed[i].error.empty())
      w.errors.push_back("cannot read " + w.files[i].url + ": " + hashed[i].error);
  }
  if (!w.errors.empty()) {
    for (const auto& e : w.errors) std::cerr << "deploynet publish: error: " << e << "\n";
    std::cerr << "deploynet publish: " << w.errors.size() << " error(s); no manifest written\n";
    return 1;
  }
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < hashed.size(); ++i) {
    m.files.push_back(ManifestFile{w.files[i].url, hashed[i].sha, hashed[i].size,
                                   deploynet::mime_type_for(w.files[i].url),
                                   std::move(hashed[i].pieces)});
    total += hashed[i].size;
  }
  m.deploy_id = sha256_hex_prefix(deploynet::deploy_id_input(m), 16);
  auto text = deploynet::serialize_manifest(m);
  std::string err;
  if (!write_atomically(out_path, text, 0644, err)) return fail("publish", err, 1);
  if (!sign.empty()) {
    std::array<unsigned char, 64> sig{};
    std::array<unsigned char, 32> pk{};
    if (!sign_with_key_file(sign, text, sig, pk)) {
      ::unlink(out_path.c_str());
      return fail("publish", "--sign: not a key file from 'deploynet keygen': " + sign, 1);
    }
    std::string sig_json = "{\"alg\":\"Ed25519\",\"public_key\":\"" + b64(pk.data(), pk.size()) +
                           "\",\"signature\":\"" + b64(sig.data(), sig.size()) + "\"}\n";
    if (!write_atomically(out_path.string() + ".sig", sig_json, 0644, err))
      return fail("publish", err, 1);
  }
  std::cout << "deploynet publish: " << m.files.size() << " files, " << total << " bytes, deploy "
            << m.deploy_id << " -> " << out_path.string() << (sign.empty() ? "" : " (signed)")
            << "\n";
  return 0;
}

int verify_main(int argc, char** argv) {
  std::string dir, manifest_path, key, base = "/";
  std::vector<std::string> excludes;
  bool include_hidden = false;
  po::options_description opts(
      "deploynet verify DIR: check a directory against its manifest; lists every mismatch and\n"
      "exits 1 if there is any.\n\nOptions");
  opts.add_options()("help,h", "print this help")("dir", po::value(&dir), "the directory")(
      "manifest", po::value(&manifest_path), "manifest file (default DIR/deploynet.json)")(
      "key", po::value(&key), "public key file: also check MANIFEST.sig against it")(
      "exclude", po::value(&excludes)->composing(),
      "glob to leave out, repeatable, as given to publish (files it matches are not reported as "
      "missing from the manifest)")("base", po::value(&base)->default_value(base),
                                    "URL path the site is served under, as given to publish")(
      "include-hidden", po::bool_switch(&include_hidden),
      "names starting with '.' were listed (publish --include-hidden)");
  if (auto code = parse_dir_command("verify", argc, argv, opts, dir)) return *code;
  std::error_code ec;
  fs::path root = fs::canonical(dir, ec);
  if (ec || !fs::is_directory(root)) return fail("verify", "not a directory: " + dir, 1);
  fs::path mpath =
      manifest_path.empty() ? root / "deploynet.json" : fs::weakly_canonical(manifest_path, ec);
  bool ok = false;
  auto text = read_file(mpath, ok);
  if (!ok) return fail("verify", "cannot read " + mpath.string(), 1);
  std::vector<std::string> problems;
  if (!key.empty()) {
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sig[crypto_sign_BYTES];
    bool kok = false, sok = false;
    auto key_text = read_file(key, kok);
    auto sig_text = read_file(mpath.string() + ".sig", sok);
    auto field = [&](const std::string& name) {
      auto at = sig_text.find("\"" + name + "\":\"");
      if (at == std::string::npos) return std::string();
      at += name.size() + 4;
      return sig_text.substr(at, sig_text.find('"', at) - at);
    };
    if (!kok || sodium_init() < 0 || !unb64(key_text, pk, sizeof pk))
      return fail("verify", "--key: not a public key file", 1);
    if (!sok || !unb64(field("signature"), sig, sizeof sig) ||
        crypto_sign_verify_detached(sig, reinterpret_cast<const unsigned char*>(text.data()),
                                    text.size(), pk) != 0) {
      // Nothing in a manifest that fails its signature is worth comparing.
      std::cout << "signature: " << mpath.string() << ".sig does not match the manifest and key\n";
      return 1;
    }
  }
  auto parsed = deploynet::parse_manifest(text);
  if (auto* e = std::get_if<std::string>(&parsed))
    return fail("verify", mpath.string() + ": " + *e, 1);
  const auto& m = std::get<Manifest>(parsed);
  std::set<fs::path> skip{mpath, fs::path(mpath.string() + ".sig")};
  auto prefix = base_prefix(base);
  if (!prefix) return fail("verify", "--base: a URL path such as /docs/, got '" + base + "'");
  auto w = walk(root, excludes, skip, include_hidden);
  apply_base(w.files, *prefix);
  for (const auto& e : w.errors) problems.push_back(e);
  auto hashed = hash_all(w.files, m.piece_size, std::max(1u, std::thread::hardware_concurrency()));
  std::size_t i = 0, j = 0;
  while (i < m.files.size() || j < w.files.size()) {
    if (j == w.files.size() || (i < m.files.size() && m.files[i].path < w.files[j].url)) {
      problems.push_back("missing: " + m.files[i++].path);
    } else if (i == m.files.size() || w.files[j].url < m.files[i].path) {
      problems.push_back("not in manifest: " + w.files[j++].url);
    } else {
      const auto& f = m.files[i++];
      const auto& h = hashed[j++];
      if (!h.error.empty()) {
        problems.push_back("unreadable: " + f.path + ": " + h.error);
      } else if (h.size != f.size || h.sha != f.sha256) {
        std::string what = "changed: " + f.path + " (size " + std::to_string(f.size) + " -> " +
                           std::to_string(h.size);
        std::size_t bad = 0;
        for (std::size_t k = 0; k < std::min(f.pieces.size(), h.pieces.size()); ++k)
          bad += f.pieces[k] != h.pieces[k];
        if (h.size == f.size)
          what += ", " + std::to_string(bad) + " of " + std::to_string(f.pieces.size()) +
                  " pieces differ";
        problems.push_back(what + ")");
      } else if (h.pieces != f.pieces) {
        problems.push_back("piece hashes wrong in manifest: " + f.path);
      }
    }
  }
  for (const auto& p : problems) std::cout << p << "\n";
  if (!problems.empty()) {
    std::cout << problems.size() << " mismatch(es) against deploy " << m.deploy_id << "\n";
    return 1;
  }
  std::cout << "ok: " << m.files.size() << " files match deploy " << m.deploy_id << "\n";
  return 0;
}

int keygen_main(int argc, char** argv) {
  if (argc != 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << "usage: deploynet keygen KEYFILE\n\nWrites an Ed25519 key pair: KEYFILE (secret, "
                 "mode 0600) and KEYFILE.pub (base64 of the raw 32-byte public key, as WebCrypto "
                 "imports it). Refuses to overwrite.\n";
    return argc == 2 ? 0 : 2;
  }
  fs::path keyfile = argv[1];
  std::error_code ec;
  if (fs::exists(keyfile, ec) || fs::exists(keyfile.string() + ".pub", ec)) {
    return fail("keygen", keyfile.string() + " or its .pub exists already; not overwritten", 1);
  }
  if (sodium_init() < 0) return fail("keygen", "libsodium failed to start", 1);
  unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES],
      sk[crypto_sign_SECRETKEYBYTES];
  randombytes_buf(seed, sizeof seed);
  crypto_sign_seed_keypair(pk, sk, seed);
  std::string err;
  bool ok = write_atomically(keyfile, b64(seed, sizeof seed) + "\n", 0600, err) &&
            write_atomically(keyfile.string() + ".pub", b64(pk, sizeof pk) + "\n", 0644, err);
  sodium_memzero(seed, sizeof seed);
  sodium_memzero(sk, sizeof sk);
  if (!ok) return fail("keygen", err, 1);
  std::cout << "deploynet keygen: wrote " << keyfile.string() << " (secret) and "
            << keyfile.string() << ".pub\n";
  return 0;
}
