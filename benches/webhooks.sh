#!/usr/bin/env bash
# Webhooks' cost and speed, in one run: submit against a server with no endpoint and against one
# whose site has one endpoint for every comment event (its receiver is the load generator's own,
# `bench --receive-webhooks`), in alternated rounds, each server on a fresh SQLite database.
# Reports the submit rates, the deliveries per second and their delay after each event.
#
#   benches/webhooks.sh
#   RG=path/to/replyguard DURATION=10 ROUNDS=3 benches/webhooks.sh
set -euo pipefail
RG=${RG:-$(cd "$(dirname "$0")/.." && pwd)/target/release/replyguard}
RCTL=${RCTL:-$(dirname "$RG")/replyctl}
dir=$(mktemp -d)
cd "$dir"
export REPLYGUARD_HOST_RATE=0
site() { REPLYGUARD_DATABASE_URL=sqlite://$dir/$1.db $RG site add "$1.example.com" --output env; }
NONE_KEY=$(site none | grep REPLYGUARD_SITE_KEY | cut -d= -f2)
HOOKED_KEY=$(site hooked | grep REPLYGUARD_SITE_KEY | cut -d= -f2)
HOOKED_MOD=$(REPLYGUARD_DATABASE_URL=sqlite://$dir/hooked.db $RG token add \
  --site hooked.example.com --role moderator --scopes integrations)
REPLYGUARD_DATABASE_URL=sqlite://$dir/none.db $RG serve --listen 127.0.0.1:50071 > none.log 2>&1 &
none=$!
REPLYGUARD_WEBHOOK_ALLOW_PRIVATE=true REPLYGUARD_WEBHOOK_ALLOW_HTTP=true \
  REPLYGUARD_DATABASE_URL=sqlite://$dir/hooked.db $RG serve --listen 127.0.0.1:50072 > hooked.log 2>&1 &
hooked=$!
sleep 2
REPLYGUARD_ENDPOINT=http://127.0.0.1:50072 REPLYGUARD_TOKEN=$HOOKED_MOD $RCTL webhook add \
  http://127.0.0.1:50079/hook --events comment.held,comment.spam,comment.approved > /dev/null
b() { $RG bench --duration "${DURATION:-10}" --concurrency 32 --workload submit --output json "$@"; }
for round in $(seq 1 "${ROUNDS:-3}"); do
  echo "== submit, no endpoint, round $round"
  b --endpoint http://127.0.0.1:50071 --token "$NONE_KEY"
  echo "== submit, one endpoint, round $round"
  b --endpoint http://127.0.0.1:50072 --token "$HOOKED_KEY" --receive-webhooks 127.0.0.1:50079
done
kill -TERM $none $hooked; wait
