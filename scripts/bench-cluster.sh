#!/usr/bin/env bash
# The signaling cluster against one node alone, same load, same run: every server process
# (nodes and Redis) on core 1, the load tool on core 0, so "per server CPU-second" compares the
# total work the cluster does with the work of one node. Clients are spread over the nodes in
# turn, so most offers go to a peer on another node and cross Redis.
#
#   BENCH_SECONDS   measured seconds per load run (default 5)
#   CLUSTER_NODES   nodes in the cluster          (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${CLUSTER_NODES:-3}
RATE=2000
. scripts/bench-common.sh

free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

start_node() {  # log-name [extra flags...]; sets node_pid and node_port
  local name=$1
  shift
  $SERVER_CPU "$BIN/server/deploynet-signal" --threads 1 --listen 127.0.0.1:0 --rate 1e9 --burst 1e9 \
    --max-conns-per-ip 100000 --conn-rate-per-ip 1e9 --conn-burst-per-ip 1e9 "$@" 2>"$work/$name.log" &
  node_pid=$!
  pids+=("$node_pid")
  node_port=""
  for _ in $(seq 200); do
    node_port=$(grep -o 'addr=[0-9.]*:[0-9]*' "$work/$name.log" 2>/dev/null | head -1 | cut -d: -f2 || true)
    [ -n "$node_port" ] && break
    sleep 0.05
  done
  [ -n "$node_port" ] || { echo "bench-cluster: node $name did not start"; cat "$work/$name.log"; exit 1; }
}

metric_sum() {  # name ports...
  local name=$1 sum=0 v
  shift
  for p in "$@"; do
    v=$(curl -s "http://127.0.0.1:$p/metrics" | awk -v n="$name" '$1 == n {print $2}')
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

run_load() {  # name mode urls-and-pids...
  local name=$1 mode=$2
  shift 2
  $LOAD_CPU "$BIN/bench/deploynet-load" "$@" --mode "$mode" --rate "$RATE" --conns $CONNS \
    --swarm-size $SWARM --offers $OFFERS --duration "$SECONDS_RUN" --tag "$name" >"$work/$name.out"
}

echo "== signaling cluster: $NODES nodes + Redis vs one node, all on one server core, $CONNS clients, swarms of $SWARM, $OFFERS offers per announce"
# One node alone.
start_node single
single_pid=$node_pid single_port=$node_port
run_load single_sat saturate --url "ws://127.0.0.1:$single_port" --server-pid "$single_pid"
run_load single_rate rate --url "ws://127.0.0.1:$single_port" --server-pid "$single_pid"
kill "$single_pid"; wait "$single_pid" 2>/dev/null || true

# The cluster.
redis_port=$(free_port)
$SERVER_CPU redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
for _ in $(seq 100); do grep -q 'Ready to accept' "$work/redis.log" && break; sleep 0.05; done
args=(--server-pid "$redis_pid")
ports=()
for i in $(seq "$NODES"); do
  start_node "node$i" --redis "redis://127.0.0.1:$redis_port" --node-id "$i"
  args+=(--url "ws://127.0.0.1:$node_port" --server-pid "$node_pid")
  ports+=("$node_port")
done
for p in "${ports[@]}"; do
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$p/health" | grep -q '"redis":"up"' && break; sleep 0.05; done
done
relayed0=$(metric_sum deploynet_offers_relayed_total "${ports[@]}")
crossed0=$(metric_sum deploynet_cluster_relays_sent_total "${ports[@]}")
bytes0=$(metric_sum deploynet_cluster_bytes_sent_total "${ports[@]}")
run_load cluster_sat saturate "${args[@]}"
relayed=$(( $(metric_sum deploynet_offers_relayed_total "${ports[@]}") - relayed0 ))
crossed=$(( $(metric_sum deploynet_cluster_relays_sent_total "${ports[@]}") - crossed0 ))
bytes=$(( $(metric_sum deploynet_cluster_bytes_sent_total "${ports[@]}") - bytes0 ))
run_load cluster_rate rate "${args[@]}"

row() { printf '%-48s %14s %14s %8s\n' "$1" "$2" "$3" "$4"; }
printf '\n%-48s %14s %14s %8s\n' "figure" "one node" "cluster" "ratio"
for f in announces_per_s messages_per_s messages_per_server_cpu_s; do
  a=$(val $f "$work/single_sat.out"); b=$(val $f "$work/cluster_sat.out")
  row "$f, saturated" "$a" "$b" "$(ratio "$b" "$a")"
done
for f in latency_p50_ms latency_p99_ms; do
  a=$(val $f "$work/single_rate.out"); b=$(val $f "$work/cluster_rate.out")
  row "discovery $f at $RATE announces/s" "$a" "$b" "$(ratio "$b" "$a")"
done
share=$(awk -v c="$crossed" -v r="$relayed" 'BEGIN { if (r > 0) printf "%.0f%%", 100 * c / r; else print "n/a" }')
# Server CPU per delivered message, and what each crossing relay adds over one node.
cost=$(awk -v s="$(val messages_per_server_cpu_s "$work/single_sat.out")" \
           -v c="$(val messages_per_server_cpu_s "$work/cluster_sat.out")" -v x="$crossed" -v r="$relayed" \
  'BEGIN { if (s > 0 && c > 0 && r > 0 && x > 0) printf "%.1f", (1e6 / c - 1e6 / s) * r / x; else print "n/a" }')
per=$(awk -v b="$bytes" -v x="$crossed" 'BEGIN { if (x > 0) printf "%.0f", b / x; else print "n/a" }')
row "offers relayed to a peer on another node" "" "$share" ""
row "server CPU us added per cross-node relay" "" "$cost" ""
row "bytes through Redis per cross-node relay" "" "$per" ""
