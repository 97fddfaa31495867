#pragma once

// Helpers the deploynet subcommands share.

#include <boost/program_options.hpp>

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <sys/types.h>

namespace deploynet::cli {

// Prints "deploynet CMD: MSG" on stderr; returns `code` (2: a bad flag, 1: a failure).
int fail(const std::string& cmd, const std::string& msg, int code = 2);

// The file's bytes; `ok` false when it cannot be read.
std::string read_file(const std::filesystem::path& p, bool& ok);

// Writes `data` to `path` through a temporary file in the same directory and a rename.
bool write_atomically(const std::filesystem::path& path, const std::string& data, mode_t mode,
                      std::string& err);

// Signs `message` (Ed25519) with the secret key file `deploynet keygen` wrote: the signature
// and the key's public half. False when the file cannot be read or is not such a key.
bool sign_with_key_file(const std::filesystem::path& key_file, std::string_view message,
                        std::array<unsigned char, 64>& signature,
                        std::array<unsigned char, 32>& public_key);

// The first `bytes` bytes of SHA-256(data), in hex.
std::string sha256_hex_prefix(const std::string& data, std::size_t bytes);

// A site served under a path (`/docs/`): the prefix (without the last slash) to put before
// every manifest path; nullopt when malformed.
std::optional<std::string> base_prefix(std::string base);

// Parses the flags of a command whose one positional argument is DIR (bound to `dir` by
// `opts`). Returns an exit code when the command should stop here: --help, a bad flag, no DIR.
std::optional<int> parse_dir_command(const std::string& cmd, int argc, char** argv,
                                     const boost::program_options::options_description& opts,
                                     const std::string& dir);

}  // namespace deploynet::cli
