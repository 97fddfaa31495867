#!/usr/bin/env bash
# make bench: the signaling server against the anchor, `bittorrent-tracker`'s server, under the
# same load in the same run. Figures and ratios on stdout; loopback only, bounded in time.
#
#   BENCH_SECONDS   measured seconds per load run       (default 5)
#   BENCH_IDLE      idle connections for the memory run (default 19000)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release
SECONDS_RUN=${BENCH_SECONDS:-5}
IDLE=${BENCH_IDLE:-19000}
CONNS=200
SWARM=10
OFFERS=5
# The load tool and the server share this machine's cores. Each server gets core 1 to itself
# (ours with one worker thread; the reference is a single-threaded event loop) and the load
# tool core 0: rates and CPU figures then compare like with like, and runs repeat closely.
SERVER_CPU="taskset -c 1"
LOAD_CPU="taskset -c 0"
if [ "$(nproc)" -lt 2 ] || ! command -v taskset >/dev/null; then SERVER_CPU=""; LOAD_CPU=""; fi
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

start_ours() {
  $SERVER_CPU "$BIN/server/deploynet-signal" --threads 1 --listen 127.0.0.1:0 --rate 1e9 --burst 1e9 \
    --max-conns-per-ip 100000 --conn-rate-per-ip 1e9 --conn-burst-per-ip 1e9 --log-level warn 2>"$work/ours.log" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 100); do
    port=$(grep -o 'addr=[0-9.]*:[0-9]*' "$work/ours.log" 2>/dev/null | head -1 | cut -d: -f2 || true)
    [ -n "$port" ] && break
    sleep 0.05
  done
  # The listening line is logged at info level; warn hides it, so ask the kernel instead.
  if [ -z "$port" ]; then
    port=$(ss -ltnpH 2>/dev/null | awk -v p="pid=$server_pid," '$0 ~ p {split($4,a,":"); print a[2]}' | head -1)
  fi
}

start_reference() {
  $SERVER_CPU node bench/reference-tracker.mjs >"$work/ref.log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  port=""
  for _ in $(seq 100); do
    port=$(grep -o 'port=[0-9]*' "$work/ref.log" 2>/dev/null | cut -d= -f2 || true)
    [ -n "$port" ] && break
    sleep 0.05
  done
}

stop_server() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }

val() { grep "^$1=" "$2" | cut -d= -f2; }

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# Opens $IDLE connections (each announces once into a swarm of 10) from several processes and
# source addresses (a process may hold 20,000 files), and returns the server's RSS growth.
idle_memory() {
  local per=$((IDLE / 4)) before after n=0
  before=$(rss_kb "$server_pid")
  local holders=()
  for i in 0 1 2 3; do
    local srcs="127.0.0.$((i * 5 + 2)),127.0.0.$((i * 5 + 3)),127.0.0.$((i * 5 + 4)),127.0.0.$((i * 5 + 5)),127.0.0.$((i * 5 + 6))"
    mkfifo "$work/hold$i"
    "$BIN/bench/deploynet-load" --url "ws://127.0.0.1:$port" --mode idle --conns "$per" \
      --sources "$srcs" --tag "idle$i" <"$work/hold$i" >"$work/idle$i.out" 2>&1 &
    holders+=($!)
    pids+=($!)
    exec {fd}>"$work/hold$i"
    eval "hold_fd$i=$fd"
  done
  for i in 0 1 2 3; do
    for _ in $(seq 1200); do grep -q '^ready' "$work/idle$i.out" 2>/dev/null && break; sleep 0.1; done
    grep -q '^ready' "$work/idle$i.out" || { echo "idle holder $i failed:"; cat "$work/idle$i.out"; exit 1; }
    n=$((n + $(sed -n 's/^ready conns=//p' "$work/idle$i.out")))
  done
  sleep 1
  after=$(rss_kb "$server_pid")
  for i in 0 1 2 3; do eval "exec {hold_fd$i}>&-"; rm -f "$work/hold$i"; done
  for h in "${holders[@]}"; do wait "$h" 2>/dev/null || true; done
  echo "$n $before $after"
}

run_load() {  # name mode [rate]
  local name=$1 mode=$2 rate=${3:-1000}
  $LOAD_CPU "$BIN/bench/deploynet-load" --url "ws://127.0.0.1:$port" --server-pid "$server_pid" \
    --mode "$mode" --rate "$rate" --conns $CONNS --swarm-size $SWARM --offers $OFFERS \
    --duration "$SECONDS_RUN" --tag "$name" >"$work/$name.out"
}

echo "== signaling: one server core, $CONNS clients, swarms of $SWARM, $OFFERS offers per announce, ${SECONDS_RUN}s per run"
declare -A R
for server in ours reference; do
  if [ $server = ours ]; then start_ours; else start_reference; fi
  [ -n "$port" ] || { echo "bench: $server server did not start"; exit 1; }
  run_load "${server}_sat" saturate
  peak=$(val announces_per_s "$work/${server}_sat.out")
  half=$((peak / 2))
  run_load "${server}_half" rate "$half"
  read -r n before after < <(idle_memory)
  R[$server,ann]=$peak
  R[$server,msgs]=$(val messages_per_s "$work/${server}_sat.out")
  R[$server,eff]=$(val messages_per_server_cpu_s "$work/${server}_sat.out")
  R[$server,p50sat]=$(val latency_p50_ms "$work/${server}_sat.out")
  R[$server,p99sat]=$(val latency_p99_ms "$work/${server}_sat.out")
  R[$server,half]=$half
  R[$server,p50half]=$(val latency_p50_ms "$work/${server}_half.out")
  R[$server,p99half]=$(val latency_p99_ms "$work/${server}_half.out")
  R[$server,idle]=$n
  R[$server,bpc]=$(( (after - before) * 1024 / n ))
  stop_server
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
printf '\n%-44s %14s %14s %8s\n' "figure" "deploynet" "bittorrent-tr" "ratio"
row() { printf '%-44s %14s %14s %8s\n' "$1" "$2" "$3" "$4"; }
row "announces/s, saturated" "${R[ours,ann]}" "${R[reference,ann]}" "$(ratio "${R[ours,ann]}" "${R[reference,ann]}")"
row "messages delivered/s, saturated" "${R[ours,msgs]}" "${R[reference,msgs]}" "$(ratio "${R[ours,msgs]}" "${R[reference,msgs]}")"
row "messages per server CPU-second (target>=10x)" "${R[ours,eff]}" "${R[reference,eff]}" "$(ratio "${R[ours,eff]}" "${R[reference,eff]}")"
row "offer latency p50 ms, saturated" "${R[ours,p50sat]}" "${R[reference,p50sat]}" ""
row "offer latency p99 ms, saturated" "${R[ours,p99sat]}" "${R[reference,p99sat]}" ""
row "announces/s at half of own peak" "${R[ours,half]}" "${R[reference,half]}" ""
row "offer latency p50 ms, half peak" "${R[ours,p50half]}" "${R[reference,p50half]}" ""
row "offer latency p99 ms, half peak (target<10)" "${R[ours,p99half]}" "${R[reference,p99half]}" ""
row "idle connections held" "${R[ours,idle]}" "${R[reference,idle]}" ""
row "RSS bytes per idle connection (target<=4096)" "${R[ours,bpc]}" "${R[reference,bpc]}" "$(ratio "${R[ours,bpc]}" "${R[reference,bpc]}")"

echo
scripts/bench-cluster.sh
echo
scripts/bench-hash.sh
echo
scripts/bench-ring.sh
echo
DEPLOYNET_SIGNAL=$PWD/build/release/server/deploynet-signal DEPLOYNET_CLI=$PWD/build/release/cli/deploynet \
  node bench/client-bench.mjs
echo
# The whole system against the plain site (no DeployNet at all), per network-lab profile: real
# Chromium visitors behind NAT, nginx's access log, the same run. Needs root (namespaces).
echo "== DeployNet against the plain site, in the network lab (lab/profiles)"
node lab/bench.mjs
