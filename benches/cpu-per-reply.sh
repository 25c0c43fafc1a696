#!/usr/bin/env bash
# The server's CPU per accepted reply: `perf stat` on the server over a whole `submit` run at
# the given concurrency, on a fresh SQLite database, divided by the replies it accepted.
#   benches/cpu-per-reply.sh target/release/replyguard [CONCURRENCY] [SECONDS]
# Prints one line: replies, rps, p99, server CPU per reply, context switches per reply.
set -euo pipefail
bin=$(realpath "$1"); conc=${2:-32}; secs=${3:-10}
dir=$(mktemp -d); cd "$dir"
eval "$("$bin" site add bench.example.com --database sqlite://$dir/b.db --output env)"
REPLYGUARD_HOST_RATE=0 "$bin" serve --listen 127.0.0.1:50072 --database sqlite://$dir/b.db > serve.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do "$bin" bench --endpoint http://127.0.0.1:50072 --workload health --requests 1 --concurrency 1 --output json >/dev/null 2>&1 && break; sleep 0.1; done
perf stat -x, -e task-clock,context-switches -p $pid -o stat.txt &
perfpid=$!
"$bin" bench --endpoint http://127.0.0.1:50072 --token "$REPLYGUARD_SITE_KEY" --workload submit --concurrency $conc --duration $secs --output json > bench.json
kill -INT $perfpid; wait $perfpid 2>/dev/null || true
kill $pid; wait $pid 2>/dev/null || true
python3 - "$bin" <<'PY'
import json,sys
b=json.load(open('bench.json'))
st={}
for l in open('stat.txt'):
    p=l.strip().split(',')
    if len(p)>3 and p[0] and p[0][0].isdigit(): st[p[2]]=float(p[0])
n=b['requests']
print(f"{sys.argv[1].split('/')[-1]}: {n} replies, {b['rps']:.0f} rps, p99 {b['p99_ms']:.1f} ms, server CPU {st['task-clock']*1000/n:.0f} us/reply, {st['context-switches']/n:.1f} switches/reply")
PY
rm -rf "$dir"
