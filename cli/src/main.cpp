// deploynet: one command, several subcommands.
#include <cstring>
#include <iostream>

int publish_main(int argc, char** argv);
int verify_main(int argc, char** argv);
int keygen_main(int argc, char** argv);
int init_main(int argc, char** argv);
int notify_main(int argc, char** argv);

namespace {
void usage(std::ostream& os) {
  os << "usage: deploynet <command> [options]\n\n"
        "commands:\n"
        "  init     put DeployNet on a site's build: its files, the script tag, the manifest\n"
        "  publish  hash a site's build directory into its manifest (deploynet.json)\n"
        "  verify   check a directory against its manifest\n"
        "  keygen   make an Ed25519 key pair for signed manifests and deploy notices\n"
        "  notify   tell the signaling server of a new deploy (pushed to the site's open pages)\n\n"
        "'deploynet <command> --help' describes each command.\n";
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "init")) return init_main(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "publish")) return publish_main(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "verify")) return verify_main(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "keygen")) return keygen_main(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "notify")) return notify_main(argc - 1, argv + 1);
  std::cerr << "deploynet: unknown command '" << argv[1] << "'\n\n";
  usage(std::cerr);
  return 2;
}
