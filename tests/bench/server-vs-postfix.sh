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
# Whose CPU time counts as "the server": authspec serve itself; Postfix's master and
# every smtpd it runs (Cyrus SASL runs inside smtpd); for :2529 also Dovecot's auth
# processes. Empty when a pid file cannot be read (the column then shows "-").
POSTFIX_QUEUE=$(postconf -c "$PEERS_ETC/postfix" -h queue_directory 2>/dev/null || echo /var/spool/postfix)
POSTFIX_MASTER=$(tr -d ' ' <"$POSTFIX_QUEUE/pid/master.pid" 2>/dev/null || true)
DOVECOT_MASTER=$(cat "$PEERS_RUN_DIR/dovecot/master.pid" 2>/dev/null || true)

# run_load TARGET MECH CONCURRENCY [PID...]: one run; prints
# "rate p99 errors gen_cpu_ratio server_cpu_us_per_session".
run_load() {
  local target=$1 mech=$2 conc=$3
  shift 3
  local t0=""
  [ $# -gt 0 ] && t0=$(tree_cpu_ticks "$@")
  "$AUTHSPEC_BIN" load --target "$target" --mechanism "$mech" \
    --var "user=$PEERS_USER1" --var password-env=BENCH_PW \
    --sessions "$SESSIONS" --concurrency "$conc" --format json \
    >"$BENCH_TMP/run.json" || true
  local srv="-"
  if [ -n "$t0" ]; then
    # USER_HZ is 100 on Linux: one tick is 10,000 microseconds.
    srv=$(awk -v a="$t0" -v b="$(tree_cpu_ticks "$@")" -v n="$(jq .sessions_ok "$BENCH_TMP/run.json")" \
      'BEGIN { if (n > 0) printf "%.1f", (b - a) * 10000 / n; else print "-" }')
  fi
  jq -r --arg srv "$srv" '[.sessions_per_second, .latency.p99_ms, .sessions_failed, (.generator_cpu_ratio // 0), $srv] | @tsv' \
    "$BENCH_TMP/run.json"
}

echo "machine: $(machine)"
echo "settings: $SESSIONS sessions per run, concurrency $CONCURRENCY, median of $REPEAT runs; authspec serve on $SERVE_ADDR"
echo
printf '%-10s %-34s %12s %10s %8s %8s %12s %8s\n' mechanism target sessions/s p99_ms errors gen_cpu srv_us/sess ratio
declare -A RATE P99
for mech in $MECHANISMS; do
  for t in "authspec=$SERVE_ADDR" "postfix-cyrus=$PEERS_HOST:$PEERS_PORT_CYRUS" "postfix-dovecot=$PEERS_HOST:$PEERS_PORT_DOVECOT"; do
    name=${t%%=*}
    addr=${t#*=}
    : >"$BENCH_TMP/rates"
    : >"$BENCH_TMP/p99s"
    : >"$BENCH_TMP/errs"
    : >"$BENCH_TMP/cpu"
    : >"$BENCH_TMP/srv"
    for _ in $(seq "$REPEAT"); do
      case $name in
        authspec) pids=$SERVE_PID ;;
        postfix-cyrus) pids=$POSTFIX_MASTER ;;
        postfix-dovecot) pids="$POSTFIX_MASTER $DOVECOT_MASTER" ;;
      esac
      # shellcheck disable=SC2086 # pids is a list
      read -r rate p99 errs cpu srv < <(run_load "$addr" "$mech" "$CONCURRENCY" $pids)
      [ "$srv" != "-" ] && echo "$srv" >>"$BENCH_TMP/srv"
      echo "$rate" >>"$BENCH_TMP/rates"
      echo "$p99" >>"$BENCH_TMP/p99s"
      echo "$errs" >>"$BENCH_TMP/errs"
      echo "$cpu" >>"$BENCH_TMP/cpu"
    done
    RATE[$mech.$name]=$(median <"$BENCH_TMP/rates")
    P99[$mech.$name]=$(median <"$BENCH_TMP/p99s")
    errs=$(awk '{ s += $1 } END { print s }' "$BENCH_TMP/errs")
    cpu=$(median <"$BENCH_TMP/cpu")
    srv=-
    [ -s "$BENCH_TMP/srv" ] && srv=$(median <"$BENCH_TMP/srv")
    ratio=$(awk -v a="${RATE[$mech.$name]}" -v b="${RATE[$mech.postfix-cyrus]:-0}" \
      'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
    printf '%-10s %-34s %12.1f %10.3f %8s %8.2f %12s %8s\n' "$mech" "$name ($addr)" \
      "${RATE[$mech.$name]}" "${P99[$mech.$name]}" "$errs" "$cpu" "$srv" "$ratio"
  done
  # At concurrency 32 a closed-loop generator measures queueing (Little's law: mean
  # latency = 32 / rate); one session at a time shows the latency of a session itself.
  read -r rate1 p99_1 _ _ _ < <(SESSIONS=$((SESSIONS / 5)) run_load "$SERVE_ADDR" "$mech" 1)
  read -r rate1c p99_1c _ _ _ < <(SESSIONS=$((SESSIONS / 5)) run_load "$PEERS_HOST:$PEERS_PORT_CYRUS" "$mech" 1)
  printf '%-10s concurrency 1: authspec p99 %.3f ms (%.0f sessions/s), postfix-cyrus p99 %.3f ms (%.0f sessions/s)\n' \
    "$mech" "$p99_1" "$rate1" "$p99_1c" "$rate1c"
  # The authspec row was printed before Postfix+Cyrus was measured: print its ratio now.
  awk -v a="${RATE[$mech.authspec]}" -v b="${RATE[$mech.postfix-cyrus]}" -v p="${P99[$mech.authspec]}" -v m="$mech" \
    'BEGIN { r = (b > 0) ? a / b : 0; printf "%-10s authspec / postfix-cyrus = %.2fx (goal >= 5x: %s); authspec p99 %.3f ms (goal < 5 ms: %s)\n", m, r, (r >= 5 ? "met" : "MISSED"), p, (p < 5 ? "met" : "MISSED") }'
done
echo
echo "gen_cpu: the load generator's CPU time / wall time (1.0 = one core busy of $(nproc))."
echo "srv_us/sess: CPU microseconds the server spent per session (authspec serve; Postfix master, smtpd"
echo "  and, for :2529, Dovecot auth), from /proc/PID/stat at 10 ms resolution; other users of Postfix count too."
echo "ratio: sessions/s relative to postfix-cyrus (authspec's row is summarised below the mechanism)."
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg)"
