#!/usr/bin/env bash
# The reference server against real Postfix, under the same `authspec load`.
#
#   tests/bench/server-vs-postfix.sh
#
# Peers: 127.0.0.1:2525 Postfix + Cyrus SASL (sasldb) and 127.0.0.1:2529 Postfix +
# Dovecot SASL, as tests/interop/postfix-up.sh stands them up (run it first on a
# fresh machine: `sudo tests/interop/install.sh && sudo tests/interop/postfix-up.sh`).
# For AUTH PLAIN and CRAM-MD5, each target gets SESSIONS sessions (default 5000) at
# concurrency 32, REPEAT times (default 3); the median rate and p99 are printed with
# the ratio authspec / Postfix+Cyrus. Goals: ratio >= 5, authspec p99 < 5 ms.
#
# Environment: SESSIONS, CONCURRENCY, REPEAT, MECHANISMS ("PLAIN CRAM-MD5"),
# AUTHSPEC_BIN (skip the build), PEERS_* (see tests/interop/peers.env).
set -euo pipefail
. "$(dirname "$0")/common.sh"
. "$ROOT/tests/interop/peers.env"

SESSIONS=${SESSIONS:-5000}
CONCURRENCY=${CONCURRENCY:-32}
REPEAT=${REPEAT:-3}
MECHANISMS=${MECHANISMS:-"PLAIN CRAM-MD5"}

build_release
for port in "$PEERS_PORT_CYRUS" "$PEERS_PORT_DOVECOT"; do
  if ! "$AUTHSPEC_BIN" probe "$PEERS_HOST:$port" --timeout 3 >/dev/null 2>&1; then
    echo "no Postfix peer on $PEERS_HOST:$port; run: sudo tests/interop/install.sh && sudo tests/interop/postfix-up.sh" >&2
    exit 1
  fi
done
start_serve

export BENCH_PW="$PEERS_PASS1"
# run_load TARGET MECH: one run; prints "rate p99 errors cpu_ratio".
run_load() {
  "$AUTHSPEC_BIN" load --target "$1" --mechanism "$2" \
    --var "user=$PEERS_USER1" --var password-env=BENCH_PW \
    --sessions "$SESSIONS" --concurrency "$CONCURRENCY" --format json \
    >"$BENCH_TMP/run.json" || true
  jq -r '[.sessions_per_second, .latency.p99_ms, .sessions_failed, (.generator_cpu_ratio // 0)] | @tsv' \
    "$BENCH_TMP/run.json"
}

echo "machine: $(machine)"
echo "settings: $SESSIONS sessions per run, concurrency $CONCURRENCY, median of $REPEAT runs; authspec serve on $SERVE_ADDR"
echo
printf '%-10s %-26s %12s %10s %8s %10s %12s\n' mechanism target sessions/s p99_ms errors gen_cpu ratio_vs_cyrus
declare -A RATE P99
for mech in $MECHANISMS; do
  for t in "authspec=$SERVE_ADDR" "postfix-cyrus=$PEERS_HOST:$PEERS_PORT_CYRUS" "postfix-dovecot=$PEERS_HOST:$PEERS_PORT_DOVECOT"; do
    name=${t%%=*}
    addr=${t#*=}
    : >"$BENCH_TMP/rates"
    : >"$BENCH_TMP/p99s"
    : >"$BENCH_TMP/errs"
    : >"$BENCH_TMP/cpu"
    for _ in $(seq "$REPEAT"); do
      read -r rate p99 errs cpu < <(run_load "$addr" "$mech")
      echo "$rate" >>"$BENCH_TMP/rates"
      echo "$p99" >>"$BENCH_TMP/p99s"
      echo "$errs" >>"$BENCH_TMP/errs"
      echo "$cpu" >>"$BENCH_TMP/cpu"
    done
    RATE[$mech.$name]=$(median <"$BENCH_TMP/rates")
    P99[$mech.$name]=$(median <"$BENCH_TMP/p99s")
    errs=$(awk '{ s += $1 } END { print s }' "$BENCH_TMP/errs")
    cpu=$(median <"$BENCH_TMP/cpu")
    ratio=$(awk -v a="${RATE[$mech.$name]}" -v b="${RATE[$mech.postfix-cyrus]:-0}" \
      'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
    printf '%-10s %-26s %12.1f %10.3f %8s %10.2f %12s\n' "$mech" "$name ($addr)" \
      "${RATE[$mech.$name]}" "${P99[$mech.$name]}" "$errs" "$cpu" "$ratio"
  done
  # The authspec row was printed before Postfix+Cyrus was measured: print its ratio now.
  awk -v a="${RATE[$mech.authspec]}" -v b="${RATE[$mech.postfix-cyrus]}" -v p="${P99[$mech.authspec]}" -v m="$mech" \
    'BEGIN { r = (b > 0) ? a / b : 0; printf "%-10s authspec / postfix-cyrus = %.2fx (goal >= 5x: %s); authspec p99 %.3f ms (goal < 5 ms: %s)\n", m, r, (r >= 5 ? "met" : "MISSED"), p, (p < 5 ? "met" : "MISSED") }'
done
echo
echo "gen_cpu: the load generator's CPU time / wall time (1.0 = one core busy of $(nproc))."
