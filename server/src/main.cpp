// deploynet-signal: parse flags, bind, run until a signal.
#include <iostream>

#include "config.hpp"
#include "log.hpp"
#include "server.hpp"

int main(int argc, char** argv) {
  using namespace deploynet::server;
  int exit_code = 0;
  auto config = parse_config(argc, argv, exit_code);
  if (!config) return exit_code;
  try {
    Server server(*config);
    auto ep = server.bind();
    LogLine(LogLevel::kInfo, "listening")
        .kv("addr", ep.address().to_string() + ":" + std::to_string(ep.port()))
        .kv("threads", config->threads)
        .kv("max_connections", config->max_connections);
    server.run();
  } catch (const std::exception& e) {
    std::cerr << "deploynet-signal: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
