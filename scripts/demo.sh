#!/usr/bin/env bash
# Starts deploynet-signal on 127.0.0.1 and shows how to reach it. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8000}
BIN=build/release/server/deploynet-signal
"$BIN" --listen "127.0.0.1:$PORT" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' INT TERM EXIT
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
  sleep 0.1
done
cat <<MSG

deploynet-signal is running.
  WebSocket tracker:  ws://127.0.0.1:$PORT     (announce URL for WebTorrent clients)
  Health:             http://127.0.0.1:$PORT/health
  Metrics:            http://127.0.0.1:$PORT/metrics
Health now: $(curl -s "http://127.0.0.1:$PORT/health")
Ctrl-C to stop.
MSG
wait $pid
