// Helpers the deploynet subcommands share: errors, files, flags, hashes, base paths.
#include "cli_common.hpp"

#include <openssl/evp.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "deploynet/hex.hpp"
#include "deploynet/manifest.hpp"

namespace deploynet::cli {

namespace fs = std::filesystem;
namespace po = boost::program_options;

bool sign_with_key_file(const fs::path& key_file, std::string_view message,
                        std::array<unsigned char, 64>& signature,
                        std::array<unsigned char, 32>& public_key) {
  static_assert(crypto_sign_BYTES == 64 && crypto_sign_PUBLICKEYBYTES == 32);
  bool ok = false;
  std::string text = read_file(key_file, ok);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  unsigned char seed[crypto_sign_SEEDBYTES], sk[crypto_sign_SECRETKEYBYTES];
  std::size_t len = 0;
  if (!ok || sodium_init() < 0 ||
      sodium_base642bin(seed, sizeof seed, text.data(), text.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len != sizeof seed)
    return false;
  crypto_sign_seed_keypair(public_key.data(), sk, seed);
  crypto_sign_detached(signature.data(), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size(), sk);
  sodium_memzero(sk, sizeof sk);
  sodium_memzero(seed, sizeof seed);
  return true;
}

int fail(const std::string& cmd, const std::string& msg, int code) {
  std::cerr << "deploynet " << cmd << ": " << msg << "\n";
  return code;
}

std::string read_file(const fs::path& p, bool& ok) {
  std::ifstream f(p, std::ios::binary);
  ok = static_cast<bool>(f);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Writes `data` to `path` through a temporary file in the same directory and a rename.
bool write_atomically(const fs::path& path, const std::string& data, mode_t mode,
                      std::string& err) {
  std::string tmpl =
      (path.parent_path() / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  int fd = mkstemp(tmpl.data());
  if (fd < 0) {
    err = "cannot create a file beside " + path.string() + ": " + std::strerror(errno);
    return false;
  }
  fchmod(fd, mode);
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = "cannot write " + path.string() + ": " + std::strerror(errno);
      ::close(fd);
      ::unlink(tmpl.c_str());
      return false;
    }
    off += static_cast<std::size_t>(n);
  }
  if (fsync(fd) != 0 || ::close(fd) != 0 || ::rename(tmpl.c_str(), path.c_str()) != 0) {
    err = "cannot finish " + path.string() + ": " + std::strerror(errno);
    ::unlink(tmpl.c_str());
    return false;
  }
  return true;
}

std::string sha256_hex_prefix(const std::string& data, std::size_t bytes) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), d, &n, EVP_sha256(), nullptr);
  return deploynet::to_hex(std::span<const unsigned char>(d, n)).substr(0, bytes * 2);
}

// A site served under a path (`/docs/`): "/" + segments + "/"; the prefix (without the last
// slash) to put before every manifest path. nullopt when malformed.
std::optional<std::string> base_prefix(std::string base) {
  if (base.empty()) base = "/";
  if (base.front() != '/') return std::nullopt;
  if (base.back() != '/') base += '/';
  if (base == "/") return std::string();
  std::string prefix = base.substr(0, base.size() - 1);
  if (deploynet::check_path(prefix + "/x")) return std::nullopt;
  return prefix;
}

// Parses the flags of a command whose one positional argument is DIR (bound to `dir` by
// `opts`). Returns an exit code when the command should stop here: --help, a bad flag, no DIR.
std::optional<int> parse_dir_command(const std::string& cmd, int argc, char** argv,
                                     const po::options_description& opts, const std::string& dir) {
  po::positional_options_description pos;
  pos.add("dir", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(opts).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return fail(cmd, e.what());
  }
  if (vm.count("help")) {
    std::cout << opts << "\n";
    return 0;
  }
  if (dir.empty()) return fail(cmd, "DIR is required (see --help)");
  return std::nullopt;
}

}  // namespace deploynet::cli
