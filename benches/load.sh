#!/usr/bin/env bash
# Load-tests one or more replyguard binaries, one after another in one run,
# each on a fresh database, with the same load generator:
#   benches/load.sh target/release/replyguard [/tmp/older-replyguard ...]
# Prints one JSON line per (binary, workload) and the server's peak memory.
# Traffic goes to 127.0.0.1 only; every run is bounded by --duration.
#
# Settings (environment):
#   DURATION, CONCURRENCY, PORT    per workload: seconds, calls in flight, the server's port
#   WORKLOADS                      "health submit list count" by default; also mix, list-deep,
#                                  queue, queue-deep (these two with the moderator token)
#   DATABASE                       a postgres:// URL: each binary runs in a schema of its own in
#                                  that database (made and dropped here with psql) instead of a
#                                  SQLite file
#   SEED_REPLIES                   fill the site with `replyguard seed --replies N` first; list and
#                                  list-deep then read its hot article, seed/hot (PostgreSQL is
#                                  VACUUM ANALYZEd after seeding)
#   KEEP                           a directory: keep the SQLite database there instead of deleting it
#   BLOCKLIST                      fill the site's blocklist with this many addresses (10.x.y.z,
#                                  none of them the load generator's) first, with sqlite3 or psql
set -euo pipefail

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-32}
WORKLOADS=${WORKLOADS:-"health submit list count"}
PORT=${PORT:-50061}
GENERATOR=${GENERATOR:-$1}
DATABASE=${DATABASE:-}
SEED_REPLIES=${SEED_REPLIES:-}
BLOCKLIST=${BLOCKLIST:-}

run=0
for server in "$@"; do
  run=$((run + 1))
  dir=$(mktemp -d)
  schema=
  if [[ -n $DATABASE ]]; then
    schema="rg_load_$$_$run"
    psql -q "$DATABASE" -c "CREATE SCHEMA $schema"
    separator='?'
    [[ $DATABASE == *\?* ]] && separator='&'
    db="$DATABASE${separator}options=-c%20search_path%3D$schema"
    REPLYGUARD_SECRET_KEY=$(head -c32 /dev/urandom | base64)
    export REPLYGUARD_SECRET_KEY
  else
    db="sqlite://$dir/bench.db"
  fi
  eval "$("$server" site add bench.example.com --database "$db" --output env)"
  article=()
  if [[ -n $SEED_REPLIES ]]; then
    "$server" seed --site bench.example.com --replies "$SEED_REPLIES" --database "$db" >&2
    article=(--article seed/hot)
    if [[ -n $schema ]]; then
      psql -q "$DATABASE" -c "SET search_path = $schema" -c "VACUUM ANALYZE"
    fi
  fi
  if [[ -n $BLOCKLIST ]]; then
    addresses="SELECT '10.' || (i / 65536) || '.' || (i / 256 % 256) || '.' || (i % 256) AS ip"
    if [[ -n $schema ]]; then
      psql -q "$DATABASE" -c "SET search_path = $schema" -c "INSERT INTO blocklist \
        (site_id, kind, value, created_at, actor) SELECT (SELECT id FROM sites), 'ip', ip, now(), \
        'load' FROM ($addresses FROM generate_series(0, $BLOCKLIST - 1) AS i) AS a"
    else
      sqlite3 "$dir/bench.db" "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n \
        WHERE i < $BLOCKLIST - 1) INSERT INTO blocklist (site_id, kind, value, created_at, actor) \
        SELECT (SELECT id FROM sites), 'ip', ip, strftime('%Y-%m-%dT%H:%M:%f+00:00'), 'load' \
        FROM ($addresses FROM n)"
    fi
  fi
  # One token at tens of thousands of calls a second is far past the default rates.
  REPLYGUARD_HOST_RATE=0 REPLYGUARD_MODERATOR_RATE=0 \
    "$server" serve --listen "127.0.0.1:$PORT" --database "$db" >"$dir/serve.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do
    "$GENERATOR" bench --endpoint "http://127.0.0.1:$PORT" --workload health \
      --requests 1 --concurrency 1 --output json >/dev/null 2>&1 && break
    sleep 0.1
  done
  for workload in $WORKLOADS; do
    token=$REPLYGUARD_SITE_KEY
    extra=()
    case $workload in
      queue | queue-deep) token=$REPLYGUARD_MOD_TOKEN ;;
      list | list-deep) extra=("${article[@]}") ;;
    esac
    result=$("$GENERATOR" bench --endpoint "http://127.0.0.1:$PORT" --token "$token" \
      --workload "$workload" --concurrency "$CONCURRENCY" --duration "$DURATION" \
      "${extra[@]}" --output json | tr -d '\n ')
    echo "{\"server\":\"$server\",$(echo "$result" | sed 's/^{//')"
  done
  echo "{\"server\":\"$server\",\"peak_rss_kib\":$(awk '/VmHWM/ {print $2}' /proc/$pid/status)}"
  kill -INT $pid
  wait $pid || true
  trap - EXIT
  if [[ -n $schema ]]; then
    psql -q "$DATABASE" -c "SET client_min_messages = warning" -c "DROP SCHEMA $schema CASCADE"
  fi
  if [[ -n ${KEEP:-} ]]; then
    mv "$dir" "$KEEP/run-$run"
  else
    rm -rf "$dir"
  fi
done
