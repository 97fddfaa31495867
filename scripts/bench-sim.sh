#!/usr/bin/env bash
# make bench, part sim: the swarm simulator (sim/). Its calibration against the lab's last
# figures, a deploy to open tabs, the scale sweep (CSV and SVG in build/sim/), and the
# million-peer run's wall time and peak RSS.
#
#   BENCH_SIM_MAX   the million-peer run's target concurrency (default 1320000: heavy-tailed
#                   sessions leave ~1,010,000 on the site at the peak of a 240 s run)
set -euo pipefail
cd "$(dirname "$0")/.."
SIM=build/release/sim/deploynet-sim
MAX=${BENCH_SIM_MAX:-1320000}
out=build/sim
mkdir -p "$out"
rm -f "$out/sweep.csv"

echo "== The swarm simulator (deploynet-sim): calibration against the lab"
"$SIM" --calibrate

echo
echo "== A deploy reaching 1,000 open tabs (half the demo site's bytes change; each tab navigates 30 s later)"
"$SIM" --site demo --profile broadband --arrivals together --visitors 1000 --deploy-at 20 --duration 90 \
  --csv "$out/deploy.csv"

echo
echo "== A flash crowd: 2,000 visitors within 10 s on the flash-crowd profile (the origin's uplink 20 Mbit/s)"
"$SIM" --site demo --profile flash-crowd --arrivals flash --visitors 2000 --window 10 --pages 2 --dwell 30

echo
echo "== Scale: steady visitors on a small blog, three regions (the origin sized for its load)"
levels=10,100,1000,10000,100000
"$SIM" --site blog --profile world --arrivals steady --sweep "$levels" --dwell 30 --duration 240 \
  --csv "$out/sweep.csv" --svg "$out/sweep.svg"
echo
echo "== A million visitors at once (target $MAX; the 'at once' column is the peak): DeployNet's policy alone, wall time and peak RSS"
/usr/bin/time -f "wall %e s, peak RSS %M kB" "$SIM" --site blog --profile world --arrivals steady \
  --concurrent "$MAX" --dwell 30 --duration 240 --policies deploynet --csv "$out/sweep.csv"
echo "CSV: $out/sweep.csv, $out/deploy.csv; curves: $out/sweep.svg"
