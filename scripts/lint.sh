#!/usr/bin/env bash
# make lint: C++ formatting (clang-format) and bug-prone patterns (clang-tidy: bugprone-*,
# performance-*, see .clang-tidy), TypeScript lint and formatting (Biome). Fails on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
cpp=$(git ls-files '*.cpp' '*.hpp')
if ! clang-format --dry-run -Werror $cpp 2>/tmp/deploynet-format.log; then
  head -20 /tmp/deploynet-format.log
  echo "lint: C++ formatting differs (clang-format -i FILE fixes it)"
  status=1
else
  echo "lint: clang-format: $(echo "$cpp" | wc -l) files formatted"
fi
# clang-tidy reads the test build's compile commands (configuring is enough).
[ -f build/test/compile_commands.json ] || cmake -S . -B build/test -DCMAKE_BUILD_TYPE=Debug -DDEPLOYNET_SANITIZE=ON >/dev/null
sources=$(git ls-files 'core/src/*.cpp' 'server/src/*.cpp' 'cli/src/*.cpp' 'lab/*.cpp' 'sim/src/*.cpp')
if printf '%s\n' $sources | xargs -P "$(nproc)" -n 1 clang-tidy -p build/test --quiet 2>/dev/null | grep -E 'warning:|error:'; then
  echo "lint: clang-tidy findings above"
  status=1
else
  echo "lint: clang-tidy: $(echo "$sources" | wc -l) files, no findings"
fi
if ! node_modules/.bin/biome check --reporter=summary client/src; then
  echo "lint: Biome findings (node_modules/.bin/biome check --write client/src fixes formatting)"
  status=1
fi
exit $status
