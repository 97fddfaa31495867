// deploynet init DIR: one command to put DeployNet on a site's build.
//
//  1. copies DeployNet's browser files into DIR (under BASE): the script and the ring module
//     under content-hashed names (cacheable for ever), the service worker under its fixed name
//     (browsers re-check it on every navigation);
//  2. puts the inline bootstrap (deploynet-boot.js, a few hundred bytes) into every HTML page,
//     first in <head>, or replaces the one an earlier run put there (it carries
//     `data-deploynet`; an older run's external tag is replaced too);
//  3. publishes the manifest (as `deploynet publish`).
// Running it again on the same build changes nothing.

#include <gumbo.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "deploynet/manifest.hpp"

int publish_main(int argc, char** argv);
std::vector<std::string> publish_tree_errors(const std::filesystem::path& root,
                                             const std::vector<std::string>& excludes);

namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;

int fail(const std::string& msg, int code = 2) {
  return deploynet::cli::fail("init", msg, code);
}

std::optional<std::string> read_all(const fs::path& p) {
  bool ok = false;
  auto bytes = deploynet::cli::read_file(p, ok);
  return ok ? std::optional<std::string>(std::move(bytes)) : std::nullopt;
}

// Writes only when the bytes differ, so that a second run leaves every file as it was; an
// existing file keeps its permissions.
bool write_if_changed(const fs::path& p, const std::string& bytes, bool& changed) {
  changed = false;
  if (auto old = read_all(p); old && *old == bytes) return true;
  mode_t mode = 0644;
  struct stat st {};
  if (::stat(p.c_str(), &st) == 0) mode = st.st_mode & 07777;
  std::string err;
  if (!deploynet::cli::write_atomically(p, bytes, mode, err)) return false;
  changed = true;
  return true;
}

std::string sha256_hex8(const std::string& bytes) {
  return deploynet::cli::sha256_hex_prefix(bytes, 4);
}

// Where the client files are: --client-dir, else beside an installed binary
// (PREFIX/share/deploynet/client) or in the build tree (build/client).
std::optional<fs::path> find_client_dir(const std::string& given) {
  auto ok = [](const fs::path& d) {
    return fs::exists(d / "deploynet.js") && fs::exists(d / "deploynet-sw.js");
  };
  if (!given.empty()) return ok(given) ? std::optional<fs::path>(given) : std::nullopt;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return std::nullopt;
  for (const auto& d :
       {exe.parent_path() / "../share/deploynet/client", exe.parent_path() / "../../client"}) {
    if (ok(d)) return fs::weakly_canonical(d);
  }
  return std::nullopt;
}

// The Content-Security-Policy source that allows an inline script: 'sha256-<base64>'.
std::string csp_hash(const std::string& script) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(script.data(), script.size(), d, &n, EVP_sha256(), nullptr);
  unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  int len = EVP_EncodeBlock(b64, d, static_cast<int>(n));
  return "'sha256-" + std::string(reinterpret_cast<char*>(b64), static_cast<std::size_t>(len)) +
         "'";
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Where a page's tag goes, as an HTML5 parser (Gumbo, the algorithm browsers use) sees the page:
// comments, strings in scripts, <template>s and other raw text are never mistaken for tags.
struct PagePlaces {
  // Just after the page's own <head ...> tag (one written in the source, not implied).
  std::optional<std::size_t> after_head;
  // The tag an earlier run wrote (a <script data-deploynet> with its </script>): [begin, end).
  std::optional<std::pair<std::size_t, std::size_t>> previous;
  bool previous_unclosed = false;  // one without its </script>: left alone
};

PagePlaces find_places(const std::string& html) {
  PagePlaces places;
  GumboOptions options = kGumboDefaultOptions;
  options.max_errors = 0;  // parse errors are not collected (the page is what it is)
  GumboOutput* out = gumbo_parse_with_options(&options, html.data(), html.size());
  const char* const begin = html.data();
  auto offset = [&](const GumboStringPiece& piece) -> std::optional<std::size_t> {
    if (piece.data == nullptr || piece.length == 0 || piece.data < begin ||
        piece.data + piece.length > begin + html.size())
      return std::nullopt;  // implied by the parser: not in the source
    return static_cast<std::size_t>(piece.data - begin);
  };
  // Depth first, with a stack of our own: a deep page cannot exhaust the call stack.
  std::vector<const GumboNode*> stack{out->root};
  while (!stack.empty()) {
    const GumboNode* node = stack.back();
    stack.pop_back();
    if (node->type != GUMBO_NODE_ELEMENT) continue;
    const GumboElement& el = node->v.element;
    if (el.tag == GUMBO_TAG_HEAD && !places.after_head) {
      if (auto at = offset(el.original_tag)) places.after_head = *at + el.original_tag.length;
    }
    if (el.tag == GUMBO_TAG_SCRIPT && !places.previous && !places.previous_unclosed &&
        gumbo_get_attribute(&el.attributes, "data-deploynet") != nullptr) {
      auto open = offset(el.original_tag);
      auto close = offset(el.original_end_tag);
      if (open && close) {
        places.previous = std::pair{*open, *close + el.original_end_tag.length};
      } else {
        places.previous_unclosed = true;
      }
    }
    for (unsigned i = el.children.length; i > 0; --i) {
      stack.push_back(static_cast<const GumboNode*>(el.children.data[i - 1]));
    }
  }
  gumbo_destroy_output(&options, out);
  return places;
}

std::string attr_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"')
      o += "&quot;";
    else if (c == '&')
      o += "&amp;";
    else if (c == '<')
      o += "&lt;";
    else
      o += c;
  }
  return o;
}

}  // namespace

int init_main(int argc, char** argv) {
  std::string dir, origin, base = "/", client_dir, piece = "64KiB";
  std::vector<std::string> signals, excludes;
  po::options_description opts(
      "deploynet init DIR --origin URL --signal WSS-URL: put DeployNet on a site's build:\n"
      "copy its browser files into DIR, add its script tag to every HTML page (replacing the\n"
      "one a previous run added) and publish the manifest. Run it after every build; running\n"
      "it twice changes nothing.\n\nOptions");
  // clang-format off
  opts.add_options()
    ("help,h", "print this help")
    ("dir", po::value(&dir), "the build directory")
    ("origin", po::value(&origin), "the site's origin, e.g. https://site.example (required)")
    ("signal", po::value(&signals)->composing(), "signaling server URL (wss://...), repeatable: tried in order (required)")
    ("base", po::value(&base)->default_value(base), "URL path the site is served under, e.g. /docs/")
    ("exclude", po::value(&excludes)->composing(), "glob left out of the manifest, repeatable (as publish)")
    ("piece-size", po::value(&piece)->default_value(piece), "piece size (as publish)")
    ("client-dir", po::value(&client_dir), "where deploynet.js, deploynet-sw.js and deploynet_ring.wasm are (default: installed beside this program, or the build tree)");
  // clang-format on
  if (auto code = deploynet::cli::parse_dir_command("init", argc, argv, opts, dir)) return *code;
  if (signals.empty())
    return fail("--signal: the signaling server's URL is required (wss://signal.example)");
  for (const auto& s : signals) {
    if (s.rfind("wss://", 0) != 0 && s.rfind("ws://", 0) != 0) {
      return fail("--signal: expected a ws:// or wss:// URL, got '" + s + "'");
    }
    if (s.find_first_of("\"'<> ,") != std::string::npos)
      return fail("--signal: not a URL: '" + s + "'");
  }
  while (!origin.empty() && origin.back() == '/') origin.pop_back();
  if (!deploynet::valid_origin(origin))
    return fail("--origin: required, scheme://host[:port], e.g. https://site.example");
  auto prefix = deploynet::cli::base_prefix(base);
  if (!prefix) return fail("--base: a URL path such as /docs/, got '" + base + "'");
  base = *prefix + "/";
  if (base.find_first_of("\"'<> ?#") != std::string::npos) {
    return fail("--base: not a URL path: '" + base + "'");
  }
  auto client = find_client_dir(client_dir);
  if (!client) {
    if (!client_dir.empty())
      return fail("--client-dir: no deploynet.js and deploynet-sw.js in " + client_dir);
    return fail(
        "DeployNet's browser files not found; pass --client-dir (make client builds them into "
        "build/client)",
        1);
  }
  std::error_code ec;
  fs::path root = fs::canonical(dir, ec);
  if (ec || !fs::is_directory(root)) return fail("not a directory: " + dir, 1);
  // What publish would refuse, before anything is written: a failed init leaves the build as
  // it was.
  if (auto errors = publish_tree_errors(root, excludes); !errors.empty()) {
    for (const auto& e : errors) std::cerr << "deploynet init: error: " << e << "\n";
    std::cerr << "deploynet init: " << errors.size() << " error(s); nothing changed\n";
    return 1;
  }

  // 1. The client files.
  auto js = read_all(*client / "deploynet.js");
  auto sw = read_all(*client / "deploynet-sw.js");
  auto wasm = read_all(*client / "deploynet_ring.wasm");
  auto boot = read_all(*client / "deploynet-boot.js");
  if (!js || !sw || !wasm || !boot)
    return fail("cannot read DeployNet's files in " + client->string(), 1);
  while (!boot->empty() && (boot->back() == '\n' || boot->back() == ' ')) boot->pop_back();
  if (lower(*boot).find("</script") != std::string::npos)
    return fail("deploynet-boot.js cannot be inlined (it contains </script)", 1);
  const std::string js_name = "deploynet." + sha256_hex8(*js) + ".js";
  const std::string wasm_name = "deploynet_ring." + sha256_hex8(*wasm) + ".wasm";
  int written = 0;
  for (const auto& [name, bytes] : {std::pair{js_name, &*js}, std::pair{wasm_name, &*wasm},
                                    std::pair{std::string("deploynet-sw.js"), &*sw}}) {
    bool changed = false;
    if (!write_if_changed(root / name, *bytes, changed))
      return fail("cannot write " + (root / name).string(), 1);
    written += changed;
  }
  // Earlier versions' hashed files go (a page still open keeps what it loaded).
  static const std::regex old_file(
      R"(deploynet\.[0-9a-f]{8}\.js|deploynet_ring\.[0-9a-f]{8}\.wasm)");
  for (const auto& e : fs::directory_iterator(root, ec)) {
    auto name = e.path().filename().string();
    if (name != js_name && name != wasm_name && std::regex_match(name, old_file) &&
        e.is_regular_file()) {
      fs::remove(e.path(), ec);
      ++written;
    }
  }

  // 2. The bootstrap, inline in every page: nothing is fetched for DeployNet before the page's
  // load event (boot.ts); its data- attributes configure the engine's script.
  std::string sig_attr;
  for (std::size_t i = 0; i < signals.size(); ++i) sig_attr += (i ? "," : "") + signals[i];
  const std::string tag =
      "<script data-deploynet data-src=\"" + base + js_name + "\" data-signal=\"" +
      attr_escape(sig_attr) + "\" data-manifest=\"" + base + "deploynet.json\" data-sw=\"" + base +
      "deploynet-sw.js\" data-ring-wasm=\"" + base + wasm_name + "\">" + *boot + "</script>";
  int pages = 0, tagged = 0, skipped = 0;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const auto& p = it->path();
    auto ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (!it->is_regular_file() || it->is_symlink() || (ext != ".html" && ext != ".htm")) continue;
    auto html = read_all(p);
    if (!html) return fail("cannot read " + p.string(), 1);
    ++pages;
    std::string out;
    const auto places = find_places(*html);
    if (places.previous_unclosed) {
      std::cerr << "deploynet init: warning: " << fs::relative(p, root).string()
                << " has a DeployNet tag without its </script>: left alone\n";
      ++skipped;
      continue;
    }
    if (places.previous) {
      out = html->substr(0, places.previous->first) + tag + html->substr(places.previous->second);
    } else if (places.after_head) {
      // First in <head>: the socket opens before the page's own requests.
      const auto at = *places.after_head;
      out = html->substr(0, at) + "\n" + tag + html->substr(at);
    } else {
      std::cerr << "deploynet init: warning: " << fs::relative(p, root).string()
                << " has no <head>: no tag added (it loads over HTTP only)\n";
      ++skipped;
      continue;
    }
    bool changed = false;
    if (!write_if_changed(p, out, changed)) return fail("cannot write " + p.string(), 1);
    tagged += changed;
  }
  std::cout
      << "deploynet init: " << pages << " page(s), " << tagged << " tag(s) added or updated"
      << (skipped ? ", " + std::to_string(skipped) + " page(s) left alone (named above)" : "")
      << "; " << written << " DeployNet file(s) written or removed (" << js_name << ", "
      << wasm_name << ", deploynet-sw.js)\n"
      << "deploynet init: a Content-Security-Policy allows the inline bootstrap with script-src "
      << csp_hash(*boot) << "\n";

  // 3. The manifest, over everything (DeployNet's own files included).
  std::vector<std::string> args{"publish", root.string(), "--origin",     origin,
                                "--base",  base,          "--piece-size", piece};
  for (const auto& x : excludes) {
    args.push_back("--exclude");
    args.push_back(x);
  }
  std::vector<char*> av;
  av.reserve(args.size());
  for (auto& a : args) av.push_back(a.data());
  return publish_main(static_cast<int>(av.size()), av.data());
}
