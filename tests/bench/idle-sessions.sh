#!/usr/bin/env bash
# Memory per idle session of the reference server, and whether a new session still
# authenticates quickly while they are held.
#
#   tests/bench/idle-sessions.sh
#
# Starts `authspec serve` (release) with smtpd_client_connection_count_limit=0
# (unlimited), warms it with a short `authspec load` run (the "unloaded" rate), reads
# VmRSS, opens IDLE connections (default 10000) that read the greeting and stay
# silent, reads VmRSS again, and runs the same load while they are held. Prints KiB
# per idle session (goal <= 20) and the loaded/unloaded rate ratio.
#
# Environment: IDLE, SESSIONS (2000), CONCURRENCY (32), AUTHSPEC_BIN.
set -euo pipefail
. "$(dirname "$0")/common.sh"

IDLE=${IDLE:-10000}
SESSIONS=${SESSIONS:-2000}
CONCURRENCY=${CONCURRENCY:-32}

# Both the server and the holder need one descriptor per connection, plus slack.
want=$((IDLE + 1024))
if [ "$(ulimit -n)" -lt "$want" ]; then
  ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
if [ "$(ulimit -n)" -lt "$want" ]; then
  echo "ulimit -n is $(ulimit -n), need $want: raise the hard limit or lower IDLE" >&2
  exit 1
fi

build_release
start_serve -o smtpd_client_connection_count_limit=0

export BENCH_PW=wonderland
run_load() {
  "$AUTHSPEC_BIN" load --target "$SERVE_ADDR" --mechanism PLAIN \
    --var user=alice --var password-env=BENCH_PW \
    --sessions "$SESSIONS" --concurrency "$CONCURRENCY" --format json >"$BENCH_TMP/$1.json" || true
}

echo "machine: $(machine)"
run_load unloaded
sleep 0.5
before=$(rss_kib "$SERVE_PID")

# The holder's stdin is a fifo we keep open; closing it releases the connections.
mkfifo "$BENCH_TMP/hold.in"
python3 "$(dirname "$0")/hold-idle.py" 127.0.0.1 "${SERVE_ADDR##*:}" "$IDLE" \
  <"$BENCH_TMP/hold.in" >"$BENCH_TMP/hold.out" 2>&1 &
HOLD_PID=$!
exec 9>"$BENCH_TMP/hold.in"
for _ in $(seq 600); do
  grep -q '^held' "$BENCH_TMP/hold.out" && break
  kill -0 "$HOLD_PID" 2>/dev/null || break
  sleep 0.1
done
held=$(cat "$BENCH_TMP/hold.out")
sleep 0.5
after=$(rss_kib "$SERVE_PID")
run_load loaded
exec 9>&-
wait "$HOLD_PID" || true

per=$(awk -v a="$after" -v b="$before" -v n="$IDLE" 'BEGIN { printf "%.2f", (a - b) / n }')
jq -r --arg what unloaded '"\($what): \(.sessions_per_second | floor) sessions/s, p99 \(.latency.p99_ms) ms, \(.sessions_failed) failed"' "$BENCH_TMP/unloaded.json"
jq -r --arg what "loaded ($IDLE idle held)" '"\($what): \(.sessions_per_second | floor) sessions/s, p99 \(.latency.p99_ms) ms, \(.sessions_failed) failed"' "$BENCH_TMP/loaded.json"
echo "holder: $held"
echo "server VmRSS: before $before KiB, with $IDLE idle sessions $after KiB"
echo "per idle session: $per KiB (goal <= 20 KiB: $(awk -v p="$per" 'BEGIN { print (p <= 20 ? "met" : "MISSED") }'))"
awk -v a="$(jq .sessions_per_second "$BENCH_TMP/loaded.json")" -v b="$(jq .sessions_per_second "$BENCH_TMP/unloaded.json")" \
  'BEGIN { if (b > 0) printf "AUTH rate with idle sessions held / without: %.2f\n", a / b }'
