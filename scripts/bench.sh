#!/usr/bin/env bash
# make bench: the signaling server against the anchor, `bittorrent-tracker`'s server, under the
# same load in the same run. Figures and ratios on stdout; loopback only, bounded in time.
#
#   BENCH_SECONDS   measured seconds per load run       (default 5)
#   BENCH_IDLE      idle connections for the memory run (default 19000)
#   BENCH_PARTS     parts to run (default: signal cluster hash ring sim client lab)
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${BENCH_IDLE:-19000}
# Each server gets core 1 to itself (ours with one worker thread; the reference is a
# single-threaded event loop).
. scripts/bench-common.sh

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

run_load() {  # name mode [rate] [conns]
  local name=$1 mode=$2 rate=${3:-1000} conns=${4:-$CONNS}
  $LOAD_CPU "$BIN/bench/deploynet-load" --url "ws://127.0.0.1:$port" --server-pid "$server_pid" \
    --mode "$mode" --rate "$rate" --conns "$conns" --swarm-size $SWARM --offers $OFFERS \
    --duration "$SECONDS_RUN" --tag "$name" >"$work/$name.out"
}

# BENCH_PARTS: which parts run (default all): signal cluster hash ring sim client lab
PARTS=${BENCH_PARTS:-signal cluster hash ring sim client lab}
part() { [[ " $PARTS " == *" $1 "* ]]; }

if part signal; then
echo "== signaling: one server core, $CONNS and 1000 clients, swarms of $SWARM, $OFFERS offers per announce, ${SECONDS_RUN}s per run"
declare -A R
for server in ours reference; do
  if [ $server = ours ]; then start_ours; else start_reference; fi
  [ -n "$port" ] || { echo "bench: $server server did not start"; exit 1; }
  for conns in $CONNS 1000; do
    run_load "${server}_sat_$conns" saturate 1000 "$conns"
    peak=$(val announces_per_s "$work/${server}_sat_$conns.out")
    half=$((peak / 2))
    run_load "${server}_half_$conns" rate "$half" "$conns"
    R[$server,$conns,ann]=$peak
    R[$server,$conns,msgs]=$(val messages_per_s "$work/${server}_sat_$conns.out")
    R[$server,$conns,eff]=$(val messages_per_server_cpu_s "$work/${server}_sat_$conns.out")
    R[$server,$conns,p50sat]=$(val latency_p50_ms "$work/${server}_sat_$conns.out")
    R[$server,$conns,p99sat]=$(val latency_p99_ms "$work/${server}_sat_$conns.out")
    R[$server,$conns,half]=$half
    R[$server,$conns,p50half]=$(val latency_p50_ms "$work/${server}_half_$conns.out")
    R[$server,$conns,p99half]=$(val latency_p99_ms "$work/${server}_half_$conns.out")
  done
  read -r n before after < <(idle_memory)
  R[$server,idle]=$n
  R[$server,bpc]=$(( (after - before) * 1024 / n ))
  stop_server
done

printf '\n%-50s %14s %14s %8s\n' "figure" "deploynet" "bittorrent-tr" "ratio"
row() { printf '%-50s %14s %14s %8s\n' "$1" "$2" "$3" "$4"; }
for conns in $CONNS 1000; do
  row "[$conns clients] announces/s, saturated" "${R[ours,$conns,ann]}" "${R[reference,$conns,ann]}" "$(ratio "${R[ours,$conns,ann]}" "${R[reference,$conns,ann]}")"
  row "[$conns clients] messages delivered/s, saturated" "${R[ours,$conns,msgs]}" "${R[reference,$conns,msgs]}" "$(ratio "${R[ours,$conns,msgs]}" "${R[reference,$conns,msgs]}")"
  row "[$conns clients] messages per server CPU-s (>=10x)" "${R[ours,$conns,eff]}" "${R[reference,$conns,eff]}" "$(ratio "${R[ours,$conns,eff]}" "${R[reference,$conns,eff]}")"
  row "[$conns clients] offer latency p50 ms, saturated" "${R[ours,$conns,p50sat]}" "${R[reference,$conns,p50sat]}" ""
  row "[$conns clients] offer latency p99 ms, saturated" "${R[ours,$conns,p99sat]}" "${R[reference,$conns,p99sat]}" ""
  row "[$conns clients] announces/s at half of own peak" "${R[ours,$conns,half]}" "${R[reference,$conns,half]}" ""
  row "[$conns clients] offer latency p50 ms, half peak" "${R[ours,$conns,p50half]}" "${R[reference,$conns,p50half]}" ""
  row "[$conns clients] offer latency p99 ms, half (<10)" "${R[ours,$conns,p99half]}" "${R[reference,$conns,p99half]}" ""
done
row "idle connections held" "${R[ours,idle]}" "${R[reference,idle]}" ""
row "RSS bytes per idle connection (target<=4096)" "${R[ours,bpc]}" "${R[reference,bpc]}" "$(ratio "${R[ours,bpc]}" "${R[reference,bpc]}")"
fi

if part cluster; then echo; scripts/bench-cluster.sh; fi
if part hash; then echo; scripts/bench-hash.sh; fi
if part ring; then echo; scripts/bench-ring.sh; fi
if part sim; then echo; scripts/bench-sim.sh; fi
if part client; then
  echo
  DEPLOYNET_SIGNAL=$PWD/build/release/server/deploynet-signal DEPLOYNET_CLI=$PWD/build/release/cli/deploynet \
    node bench/client-bench.mjs
  # The same in the lab's broadband profile: peers with 10 Mbit/s uplinks, the origin 50 Mbit/s
  # down the downloader's access link. Needs root (namespaces).
  echo
  DEPLOYNET_CLI=$PWD/build/release/cli/deploynet node bench/client-bench.mjs --lab broadband
fi
if part lab; then
  echo
  # The whole system against the plain site (no DeployNet at all), per network-lab profile: real
  # Chromium visitors behind NAT, nginx's access log, the same run. Needs root (namespaces).
  echo "== DeployNet against the plain site, in the network lab (lab/profiles)"
  node lab/bench.mjs
  # The media site's video page, where the bytes are: broadband and a flash crowd.
  echo
  echo "== The media site (examples/media) against its plain copy, in the network lab"
  LAB_SITES=media node lab/bench.mjs broadband flash-crowd
fi
