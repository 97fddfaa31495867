#!/usr/bin/env bash
# Runs each libFuzzer target (fuzz/) for RUNS executions from the committed corpus (new inputs
# go to build/fuzz/corpus-TARGET, never into the repository), then the JS fuzzer of the
# browser client's wire decoder (fuzz/wire_fuzz.mjs). Any crash fails, with the input kept as
# build/fuzz/crash-*.
#   scripts/fuzz.sh [RUNS]      (make fuzz: 10,000,000 each; make test: a short run)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10000000}
status=0
for t in ws_frame protocol manifest proxy_header cluster_codec deploy_notice; do
  work=build/fuzz/corpus-$t
  mkdir -p "$work"
  cp -n fuzz/corpus/$t/* "$work"/ 2>/dev/null || true
  log=build/fuzz/$t.log
  if build/fuzz/fuzz_$t -runs="$RUNS" -max_len=70000 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix=build/fuzz/ "$work" >"$log" 2>&1; then
    echo "fuzz $t: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log" | tail -1), 0 crashes"
  else
    echo "fuzz $t: FAILED"; grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -5
    status=1
  fi
done
# The browser client's wire decoder (a JS fuzzer over the bundle the browser runs).
if ! node fuzz/wire_fuzz.mjs "$RUNS"; then status=1; fi
exit $status
