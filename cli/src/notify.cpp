// deploynet notify: tells the signaling server that a site has a new deploy, signed with the
// site's key, so that the server pushes it to the site's open pages (POST /deploy).

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <regex>

#include "cli_common.hpp"
#include "deploynet/deploy_notice.hpp"
#include "deploynet/manifest.hpp"

namespace fs = std::filesystem;
namespace po = boost::program_options;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using deploynet::cli::fail;

namespace {

struct Target {
  bool tls = false;
  std::string host, port, path;
};

// ws(s):// or http(s)://host[:port][/path]: the server's POST /deploy (a path given is kept,
// with /deploy added unless it ends so already: a server behind a proxy under a path).
std::optional<Target> parse_target(const std::string& url) {
  static const std::regex re(
      R"(^(wss?|https?)://(\[[0-9a-fA-F:.]+\]|[^/:?#\s]+)(:[0-9]{1,5})?(/[^?#\s]*)?$)");
  std::smatch m;
  if (!std::regex_match(url, m, re)) return std::nullopt;
  Target t;
  const std::string scheme = m[1];
  t.tls = scheme == "wss" || scheme == "https";
  t.host = m[2];
  if (t.host.front() == '[') t.host = t.host.substr(1, t.host.size() - 2);
  t.port = m[3].matched ? std::string(m[3]).substr(1) : (t.tls ? "443" : "80");
  std::string path = m[4].matched ? std::string(m[4]) : "";
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path.size() < 7 || path.substr(path.size() - 7) != "/deploy") path += "/deploy";
  t.path = path;
  return t;
}

template <class Stream>
http::response<http::string_body> exchange(Stream& stream, const Target& t,
                                           const std::string& body) {
  http::request<http::string_body> req{http::verb::post, t.path, 11};
  req.set(http::field::host, t.host);
  req.set(http::field::user_agent, "deploynet-notify");
  req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(stream, buf, res);
  return res;
}

http::response<http::string_body> post(const Target& t, const std::string& body) {
  net::io_context ioc;
  net::ip::tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(t.host, t.port);
  if (!t.tls) {
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(15));
    stream.connect(endpoints);
    return exchange(stream, t, body);
  }
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.set_default_verify_paths();
  ctx.set_verify_mode(net::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  if (!SSL_set_tlsext_host_name(stream.native_handle(), t.host.c_str()))
    throw std::runtime_error("TLS: cannot set the server name");
  stream.set_verify_callback(net::ssl::host_name_verification(t.host));
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(15));
  beast::get_lowest_layer(stream).connect(endpoints);
  stream.handshake(net::ssl::stream_base::client);
  return exchange(stream, t, body);
}

}  // namespace

int notify_main(int argc, char** argv) {
  std::string dir, server, key, origin, deploy_id;
  bool print = false, disable = false;
  po::options_description opts(
      "deploynet notify [DIR] --server URL --key KEYFILE --origin URL: tell the signaling server\n"
      "that the site at ORIGIN has a new deploy (DIR's deploynet.json, or --deploy-id), signed\n"
      "with the site's key; the server (started with --site-key ORIGIN=KEYFILE.pub) pushes it\n"
      "to the site's open pages. Run it once the new files are live at the origin.\n"
      "With --disable: DeployNet off for the site (the kill switch), at once on every open page\n"
      "and on pages that connect later, until a notice of a real deploy.\n\nOptions");
  // clang-format off
  opts.add_options()
    ("help,h", "this text")
    ("server", po::value(&server), "the signaling server: wss://signal.example (or https://, ws://, http://)")
    ("key", po::value(&key), "the site's key file, from 'deploynet keygen' (the secret half)")
    ("origin", po::value(&origin), "the site's origin, as its pages are served: https://site.example")
    ("deploy-id", po::value(&deploy_id), "the deploy to announce, instead of DIR's manifest")
    ("disable", po::bool_switch(&disable), "turn DeployNet off for the site: open pages stop using peers and their worker retires")
    ("print", po::bool_switch(&print), "print the signed notice (JSON) instead of sending it");
  // clang-format on
  po::positional_options_description pos;
  pos.add("dir", 1);
  po::options_description hidden;
  hidden.add_options()("dir", po::value(&dir));
  po::options_description all;
  all.add(opts).add(hidden);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return fail("notify", e.what());
  }
  if (vm.count("help")) {
    std::cout << opts << "\n";
    return 0;
  }
  while (!origin.empty() && origin.back() == '/') origin.pop_back();
  if (!deploynet::valid_origin(origin))
    return fail("notify", "--origin: expected the site's origin, like https://site.example");
  if (key.empty()) return fail("notify", "--key: the site's key file is required");
  if (!print && server.empty())
    return fail("notify", "--server: the signaling server's URL is required");
  if (disable) {
    if (!deploy_id.empty() || !dir.empty())
      return fail("notify", "--disable: give no DIR and no --deploy-id (it announces no deploy)");
    deploy_id = std::string(deploynet::kDisabledDeploy);
  } else if (deploy_id == deploynet::kDisabledDeploy) {
    return fail("notify", "--deploy-id: to turn DeployNet off, use --disable");
  }
  if (deploy_id.empty()) {
    if (dir.empty())
      return fail("notify", "give the site's directory (its deploynet.json) or --deploy-id");
    bool ok = false;
    auto text = deploynet::cli::read_file(fs::path(dir) / "deploynet.json", ok);
    if (!ok) return fail("notify", "cannot read " + (fs::path(dir) / "deploynet.json").string(), 1);
    auto parsed = deploynet::parse_manifest(text);
    if (auto* err = std::get_if<std::string>(&parsed))
      return fail("notify", (fs::path(dir) / "deploynet.json").string() + ": " + *err, 1);
    deploy_id = std::get<deploynet::Manifest>(parsed).deploy_id;
  }
  std::optional<Target> target;
  if (!print && !(target = parse_target(server)))
    return fail("notify",
                "--server: expected wss://host[:port][/path] (or https://, ws://, http://)");

  deploynet::DeployNotice notice;
  notice.origin = origin;
  notice.deploy_id = deploy_id;
  notice.time = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  std::array<unsigned char, 32> public_key{};
  if (!deploynet::cli::sign_with_key_file(
          key, deploynet::deploy_notice_text(notice.origin, notice.deploy_id, notice.time),
          notice.signature, public_key))
    return fail("notify", "--key: not a key file from 'deploynet keygen': " + key, 1);
  const auto body = deploynet::serialize_deploy_notice(notice);
  if (print) {
    std::cout << body << "\n";
    return 0;
  }
  try {
    auto res = post(*target, body);
    if (res.result() != http::status::accepted)
      return fail(
          "notify",
          "the server refused the notice (" + std::to_string(res.result_int()) + "): " + res.body(),
          1);
    if (disable)
      std::cout << "deploynet notify: DeployNet turned off for " << origin << " through " << server
                << " (a notice of a real deploy turns it on again)\n";
    else
      std::cout << "deploynet notify: deploy " << deploy_id << " of " << origin << " announced to "
                << server << "\n";
    return 0;
  } catch (const std::exception& e) {
    return fail("notify", "cannot reach " + server + ": " + e.what(), 1);
  }
}
