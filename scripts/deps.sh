#!/usr/bin/env bash
# Installs every Debian and npm package DeployNet needs to build, test, bench and demo, on a
# fresh Debian 12 machine (as root, or with sudo). Quick when everything is already there.
# emscripten builds the routing ring for the browser, chromium runs the browser tests and the
# demo swarm (driven by playwright-core; no browser is downloaded), nginx is the demo's origin.
# iproute2, iptables and coturn make the network lab (namespaces, NAT, STUN/TURN); clang and
# its runtime build the libFuzzer targets. hiredis and redis-server: cluster mode and its tests.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  build-essential cmake pkg-config git curl ca-certificates
  libboost-dev libboost-program-options-dev rapidjson-dev libssl-dev libsodium-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  procps util-linux
  emscripten chromium nginx libnginx-mod-stream fonts-dejavu-core
  iproute2 iptables coturn openssl
  clang libclang-rt-14-dev
  libhiredis-dev redis-server
)

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

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "deps: Node.js 20 or newer is needed (found $(node --version))" >&2
  exit 1
fi

# --ignore-scripts: no package may download binaries at install time (the interop test's
# WebRTC comes from @roamhq/wrtc, whose binary ships inside its package).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "deps: installing npm packages"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
