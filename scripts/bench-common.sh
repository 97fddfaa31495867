# Sourced by the signaling benchmarks: CPU pinning, a work directory, processes stopped on every
# exit path, and reading the load tool's figures.
BIN=build/release
SECONDS_RUN=${BENCH_SECONDS:-5}
CONNS=200
SWARM=10
OFFERS=5
# The load tool and the servers share this machine's cores: servers get core 1, the load tool
# core 0, so rates and CPU figures compare like with like, and runs repeat closely.
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

# A figure from a load tool report: val NAME FILE.
val() { grep "^$1=" "$2" | cut -d= -f2; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
