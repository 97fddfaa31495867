#!/usr/bin/env bash
# Installs every Debian and npm package DeployNet needs to build, test, bench and demo, on a
# fresh Debian 12 machine (as root, or with sudo). Quick when everything is already there.
# emscripten builds the routing ring for the browser, chromium runs the browser tests and the
# demo swarm (driven by playwright-core; no browser is downloaded), firefox-esr is the second
# engine of the browser tests (driven by puppeteer-core over WebDriver BiDi, with its path; no
# browser is downloaded either), nginx is the demo's origin.
# iproute2, iptables and coturn make the network lab (namespaces, NAT, STUN/TURN); clang and
# its runtime build the libFuzzer targets. hiredis and redis-server: cluster mode and its tests.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  build-essential cmake pkg-config git curl ca-certificates
  libboost-dev libboost-program-options-dev rapidjson-dev libssl-dev libsodium-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  procps util-linux systemd
  emscripten chromium firefox-esr nginx libnginx-mod-stream fonts-dejavu-core
  iproute2 iptables coturn openssl
  clang libclang-rt-14-dev clang-format clang-tidy
  libhiredis-dev redis-server gcovr prometheus ffmpeg libgumbo-dev
)

# Node.js 20 or newer runs the tests, the demo and the client build. Debian 12's own nodejs is
# 18: say so before installing anything rather than after.
if command -v node >/dev/null; then
  node_major=$(node -p 'process.versions.node.split(".")[0]')
else
  node_major=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: *\([0-9]*\).*/\1/p' | sed 's/^$/0/')
  node_major=${node_major:-0}
fi
if [ "$node_major" -lt 20 ]; then
  echo "deps: DeployNet needs Node.js 20 or newer (with npm); this machine has or would install" \
    "Node.js ${node_major}. Install Node.js >= 20 first (Debian 13's nodejs, or a Node.js 20" \
    "package for Debian 12), then run this again. Nothing was installed." >&2
  exit 1
fi

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi


# --ignore-scripts: no package may download binaries at install time (the interop test's
# WebRTC comes from @roamhq/wrtc, whose binary ships inside its package).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "deps: installing npm packages"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
