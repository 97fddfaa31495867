#!/usr/bin/env bash
# Hashing throughput of `deploynet publish` on a generated tree (default 1 GiB) against
# `sha256sum` of the same files in the same run. Both read from the page cache (the tree is
# read once first), so this compares hashing, not the disk.
#   BENCH_HASH_MIB   size of the tree in MiB (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/cli/deploynet
MIB=${BENCH_HASH_MIB:-1024}
CORES=$(nproc)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tree="$work/site"
mkdir -p "$tree/img" "$tree/js" "$tree/video"
# A site-like mix: many small files, some medium, a few large, by bytes about a third each.
small=$(( MIB * 1024 / 3 / 48 ))   # 48 KiB files
medium=$(( MIB / 3 / 2 ))          # 2 MiB files
head -c $((MIB * 1024 * 1024)) /dev/urandom > "$work/pool"
off=0
for i in $(seq "$small"); do
  dd if="$work/pool" of="$tree/js/s$i.js" bs=48K count=1 skip=$((off)) iflag=skip_bytes status=none
  off=$((off + 49152))
done
for i in $(seq "$medium"); do
  dd if="$work/pool" of="$tree/img/m$i.png" bs=1M count=2 skip=$((off)) iflag=skip_bytes status=none
  off=$((off + 2097152))
done
rest=$(( MIB * 1024 * 1024 - off ))
for i in 1 2 3 4; do
  dd if="$work/pool" of="$tree/video/l$i.mp4" bs=1M count=$((rest / 4 / 1048576)) skip=$((off)) iflag=skip_bytes status=none
  off=$((off + rest / 4 / 1048576 * 1048576))
done
rm -f "$work/pool"
bytes=$(du -sb "$tree" | cut -f1)
files=$(find "$tree" -type f | wc -l)
cat "$tree"/*/* > /dev/null

now() { date +%s.%N; }
t0=$(now); find "$tree" -type f -print0 | xargs -0 sha256sum > /dev/null; t1=$(now)
"$BIN" publish "$tree" --origin https://bench.example --jobs 1 --out "$work/m1.json" > /dev/null
t2=$(now)
"$BIN" publish "$tree" --origin https://bench.example --jobs "$CORES" --out "$work/mN.json" > /dev/null
t3=$(now)
awk -v b="$bytes" -v f="$files" -v c="$CORES" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" 'BEGIN {
  s = t1 - t0; one = t2 - t1; all = t3 - t2
  mb = b / 1048576
  printf "\n== hashing: %d files, %.0f MiB (pieces of 64 KiB: files over one piece are hashed twice, whole and by piece)\n", f, mb
  printf "%-44s %12s %10s\n", "run", "MiB/s", "per core"
  printf "%-44s %12.0f %10.0f\n", "sha256sum (one core)", mb / s, mb / s
  printf "%-44s %12.0f %10.0f\n", "deploynet publish --jobs 1", mb / one, mb / one
  printf "%-44s %12.0f %10.0f\n", "deploynet publish --jobs " c, mb / all, mb / all / c
  printf "ratio per core used, against sha256sum (target >= 0.9): %.2f (1 job), %.2f (%d jobs)\n", s / one, s / all / c, c
}'
