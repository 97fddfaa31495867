#!/usr/bin/env bash
# make demo: see scripts/demo.mjs. Uses the release build and the bundled client.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEPLOYNET_CLI=$PWD/build/release/cli/deploynet
exec node scripts/demo.mjs
