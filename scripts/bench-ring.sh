#!/usr/bin/env bash
# make bench, routing: lookups per second (Google Benchmark, against a binary-search ring on the
# same points), keys moved per join/leave, load balance with and without bounded loads, and the
# WebAssembly build against native on the same loop in the same run. One core each (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/bench
PIN="taskset -c 1"
command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] || PIN=""

echo "== Routing ring: lookups (one core; items_per_second = lookups/s)"
$PIN "$BIN/ring_bench" --benchmark_min_time=0.5 2>/dev/null | grep -E '^BM_' | \
  awk '{ rate=$NF; sub("items_per_second=","",rate); printf "  %-40s %10s\n", $1, rate }'
echo
"$BIN/ring_report"
echo
echo "== Routing ring: WebAssembly (Node) against native, same loop, k=1"
for peers in 1000 100000 1000000; do
  native=$($PIN "$BIN/ring_report" lookups-per-second "$peers" 2000000 1)
  wasm=$($PIN node bench/ring_wasm.mjs build/client "$peers" | awk '{print $2}')
  awk -v p="$peers" -v n="$native" -v w="$wasm" 'BEGIN {
    printf "  %8d peers: native %5.2fM/s, wasm %5.2fM/s: native/wasm %.2fx (target <= 3x)\n",
      p, n / 1e6, w / 1e6, n / w }'
done
