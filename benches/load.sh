#!/usr/bin/env bash
# Load-tests one or more replyguard binaries, one after another in one run,
# each on a fresh SQLite database, with the same load generator:
#   benches/load.sh target/release/replyguard [/tmp/older-replyguard ...]
# Prints one JSON line per (binary, workload) and the server's peak memory.
# Traffic goes to 127.0.0.1 only; every run is bounded by --duration.
set -euo pipefail

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-32}
WORKLOADS=${WORKLOADS:-"health submit list count"}
PORT=${PORT:-50061}
GENERATOR=${GENERATOR:-$1}

for server in "$@"; do
  dir=$(mktemp -d)
  db="sqlite://$dir/bench.db"
  "$server" serve --listen "127.0.0.1:$PORT" --database "$db" >"$dir/serve.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do
    "$GENERATOR" bench --endpoint "http://127.0.0.1:$PORT" --workload health \
      --requests 1 --concurrency 1 --output json >/dev/null 2>&1 && break
    sleep 0.1
  done
  eval "$("$server" site add bench.example.com --database "$db" --output env)"
  for workload in $WORKLOADS; do
    result=$("$GENERATOR" bench --endpoint "http://127.0.0.1:$PORT" --token "$REPLYGUARD_SITE_KEY" \
      --workload "$workload" --concurrency "$CONCURRENCY" --duration "$DURATION" --output json |
      tr -d '\n ')
    echo "{\"server\":\"$server\",$(echo "$result" | sed 's/^{//')"
  done
  echo "{\"server\":\"$server\",\"peak_rss_kib\":$(awk '/VmHWM/ {print $2}' /proc/$pid/status)}"
  kill -INT $pid
  wait $pid || true
  trap - EXIT
  rm -rf "$dir"
done
