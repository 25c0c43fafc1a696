#!/usr/bin/env bash
# The limits' figures, in one run: list alone, list beside a flood of made-up tokens, health and
# list over TLS against plaintext, and list with the per-token rate limit on, each server on a
# fresh SQLite database. Needs a release
# build and openssl (for a test CA and a server certificate).
#
#   benches/limits.sh
#   RG=path/to/replyguard DURATION=10 benches/limits.sh
set -euo pipefail
RG=${RG:-$(cd "$(dirname "$0")/.." && pwd)/target/release/replyguard}
dir=$(mktemp -d)
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=bench-ca -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout server-tls.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
  -extfile ext.cnf -out server-tls.crt 2>/dev/null
chmod 600 server-tls.key
export REPLYGUARD_DATABASE_URL=sqlite://$dir/replyguard.db
eval "$($RG site add bench.example.com --output env)"
export REPLYGUARD_HOST_RATE=0
$RG serve --listen 127.0.0.1:50061 > plain.log 2>&1 &
plain=$!
REPLYGUARD_DATABASE_URL=sqlite://$dir/tls.db $RG site add tls.example.com --output env > tls.env
REPLYGUARD_DATABASE_URL=sqlite://$dir/tls.db $RG serve --listen 127.0.0.1:50062 \
  --tls-cert server-tls.crt --tls-key server-tls.key > tls.log 2>&1 &
tls=$!
TLS_KEY=$(grep REPLYGUARD_SITE_KEY tls.env | cut -d= -f2)
# The per-token rate limit on, at a rate no run reaches: what checking it costs.
LIMITED_KEY=$(REPLYGUARD_DATABASE_URL=sqlite://$dir/limited.db $RG site add limited.example.com \
  --output env | grep REPLYGUARD_SITE_KEY | cut -d= -f2)
REPLYGUARD_HOST_RATE=10000000 REPLYGUARD_DATABASE_URL=sqlite://$dir/limited.db \
  $RG serve --listen 127.0.0.1:50063 > limited.log 2>&1 &
limited=$!
sleep 2
b() { $RG bench --duration "${DURATION:-10}" --concurrency 32 --output json "$@"; }
# The server's own CPU time (user and system, in clock ticks), so that its cost per call is
# told apart from the generator's, which shares the machine.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# bench JSON, then the CPU ticks the server `$1` spent on it.
measured() {
  local pid=$1 before after
  shift
  before=$(ticks "$pid")
  b "$@"
  after=$(ticks "$pid")
  echo "server_cpu_ticks $((after - before)) (of $(getconf CLK_TCK) a second)"
}
echo "== list alone (plaintext)"; b --endpoint http://127.0.0.1:50061 --token "$REPLYGUARD_SITE_KEY" --workload list
echo "== list beside made-up flood"
b --endpoint http://127.0.0.1:50061 --workload made-up > flood.json &
flood=$!
b --endpoint http://127.0.0.1:50061 --token "$REPLYGUARD_SITE_KEY" --workload list
wait $flood; echo "== the flood itself"; cat flood.json
echo "== list alone again (plaintext)"; b --endpoint http://127.0.0.1:50061 --token "$REPLYGUARD_SITE_KEY" --workload list
# TLS against plaintext, and the per-token rate limit (on, but never reached) against none, in
# alternated rounds: one pair of runs says little on a machine whose speed drifts.
for round in $(seq 1 "${ROUNDS:-3}"); do
  echo "== health plaintext, round $round"; measured $plain --endpoint http://127.0.0.1:50061 --workload health
  echo "== health TLS, round $round"; measured $tls --endpoint https://127.0.0.1:50062 --ca-cert ca.crt --workload health
  echo "== list plaintext, round $round"; measured $plain --endpoint http://127.0.0.1:50061 --token "$REPLYGUARD_SITE_KEY" --workload list
  echo "== list TLS, round $round"; measured $tls --endpoint https://127.0.0.1:50062 --ca-cert ca.crt --token "$TLS_KEY" --workload list
  echo "== list rate-limited, round $round"; measured $limited --endpoint http://127.0.0.1:50063 --token "$LIMITED_KEY" --workload list
done
kill -TERM $plain $tls $limited; wait
