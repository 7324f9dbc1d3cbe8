#!/usr/bin/env bash
# The reference server against real Postfix and against a floor server, under the same
# `authspec load`, pinned: the server under test on one core, the generator on the other.
#
#   tests/bench/server-vs-postfix.sh
#
# Peers: 127.0.0.1:2525 Postfix + Cyrus SASL (sasldb), 127.0.0.1:2529 Postfix +
# Dovecot SASL and 127.0.0.1:2528 Postfix + Cyrus with STARTTLS, as
# tests/interop/postfix-up.sh stands them up (run it first on a fresh machine:
# `sudo tests/interop/install.sh && sudo tests/interop/postfix-up.sh`).
# The floor server (harness/examples/floor_server.rs) does the socket work of one AUTH
# PLAIN session with no protocol logic: authspec's CPU per session is reported as a
# ratio to it.
#
# Pinning (PIN=1, the default; needs taskset and >= 2 cores): authspec serve and the
# floor server start under `taskset -c $SERVER_CPU`; Postfix's master, every process
# below it and Dovecot are moved to $SERVER_CPU for the run (their previous affinity
# is restored on exit; children forked meanwhile inherit it from master), and the
# generator runs under `taskset -c $GEN_CPU`.
#
# For AUTH PLAIN and CRAM-MD5 (and PLAIN after STARTTLS against :2528 and a
# STARTTLS-enabled authspec serve), each target gets SESSIONS sessions (default
# 5000) at concurrency CONCURRENCY (32), REPEAT times (default 3); the medians of
# sessions/s, p50, p99 and server CPU µs/session are printed. Goals (issue 19):
# authspec >= 10x Postfix+Cyrus sessions/s pinned; CPU per PLAIN session <= 1.5x the
# floor server's.
#
# Environment: SESSIONS, CONCURRENCY, REPEAT, MECHANISMS ("PLAIN CRAM-MD5"),
# STARTTLS (1), PIN (1), SERVER_CPU (0), GEN_CPU (1), AUTHSPEC_BIN and FLOOR_BIN
# (skip the builds), PEERS_* (see tests/interop/peers.env).
set -euo pipefail
. "$(dirname "$0")/common.sh"
. "$ROOT/tests/interop/peers.env"

SESSIONS=${SESSIONS:-5000}
CONCURRENCY=${CONCURRENCY:-32}
REPEAT=${REPEAT:-3}
MECHANISMS=${MECHANISMS:-"PLAIN CRAM-MD5"}
STARTTLS=${STARTTLS:-1}
PIN=${PIN:-1}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}

build_release
if [ -z "${FLOOR_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release -q -p authspec --example floor_server) >&2
  FLOOR_BIN="$ROOT/target/release/examples/floor_server"
fi
GEN_WRAP=()
if [ "$PIN" = 1 ]; then
  if [ "$(nproc)" -lt 2 ] || ! command -v taskset >/dev/null; then
    echo "PIN=1 needs taskset and two cores; run with PIN=0 to measure unpinned" >&2
    exit 1
  fi
  export SERVE_WRAP="taskset -c $SERVER_CPU"
  GEN_WRAP=(taskset -c "$GEN_CPU")
fi
ports="$PEERS_PORT_CYRUS $PEERS_PORT_DOVECOT"
[ "$STARTTLS" = 1 ] && ports="$ports $PEERS_PORT_STARTTLS"
for port in $ports; do
  if ! "$AUTHSPEC_BIN" probe "$PEERS_HOST:$port" --timeout 3 >/dev/null 2>&1; then
    echo "no Postfix peer on $PEERS_HOST:$port; run: sudo tests/interop/install.sh && sudo tests/interop/postfix-up.sh" >&2
    exit 1
  fi
done
EXTRA_PIDS=()
AFFINITY_SAVED="$BENCH_TMP/affinity"
: >"$AFFINITY_SAVED"
bench_cleanup_all() {
  # Give Postfix and Dovecot back the affinity they had.
  while read -r pid mask; do
    taskset -p "$mask" "$pid" >/dev/null 2>&1 || true
  done <"$AFFINITY_SAVED"
  for p in "${EXTRA_PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  bench_cleanup
}
trap bench_cleanup_all EXIT

if [ "$STARTTLS" = 1 ]; then
  start_serve -o smtpd_tls_security_level=may
  TLS_PID=$SERVE_PID
  TLS_ADDR=$SERVE_ADDR
  EXTRA_PIDS+=("$TLS_PID")
fi
start_serve

: >"$BENCH_TMP/floor.out"
# shellcheck disable=SC2086 # SERVE_WRAP is a command line
${SERVE_WRAP:-} "$FLOOR_BIN" 127.0.0.1:0 >"$BENCH_TMP/floor.out" 2>&1 &
FLOOR_PID=$!
EXTRA_PIDS+=("$FLOOR_PID")
FLOOR_ADDR=""
for _ in $(seq 100); do
  FLOOR_ADDR=$(sed -n 's/^listening on //p' "$BENCH_TMP/floor.out")
  [ -n "$FLOOR_ADDR" ] && break
  sleep 0.05
done
[ -n "$FLOOR_ADDR" ] || { echo "floor server did not start" >&2; exit 1; }

export BENCH_PW="$PEERS_PASS1"
# Whose CPU time counts as "the server": authspec serve itself; Postfix's master and
# every smtpd it runs (Cyrus SASL runs inside smtpd); for :2529 also Dovecot's auth
# processes. Empty when a pid file cannot be read (the column then shows "-").
POSTFIX_QUEUE=$(postconf -c "$PEERS_ETC/postfix" -h queue_directory 2>/dev/null || echo /var/spool/postfix)
POSTFIX_MASTER=$(tr -d ' ' <"$POSTFIX_QUEUE/pid/master.pid" 2>/dev/null || true)
DOVECOT_MASTER=$(cat "$PEERS_RUN_DIR/dovecot/master.pid" 2>/dev/null || true)

# descendants PID...: the pids given and every live process below them.
descendants() {
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v roots=" $* " '
    { pid = $1; line = $0; sub(/^.*\) /, "", line); split(line, f, " "); parent[pid] = f[2] }
    END {
      for (p in parent) {
        q = p
        for (i = 0; i < 64 && q > 1; i++) {
          if (index(roots, " " q " ")) { print p; break }
          q = parent[q]
        }
      }
    }'
}
# pin_tree PID...: every thread of those processes and their descendants onto
# SERVER_CPU, remembering the first affinity seen so the exit trap restores it.
pin_tree() {
  [ "$PIN" = 1 ] || return 0
  local p mask
  for p in $(descendants "$@"); do
    if ! grep -q "^$p " "$AFFINITY_SAVED"; then
      mask=$(taskset -p "$p" 2>/dev/null | sed 's/.*: //') || continue
      echo "$p $mask" >>"$AFFINITY_SAVED"
    fi
    taskset -a -p -c "$SERVER_CPU" "$p" >/dev/null 2>&1 || true
  done
}

# run_load TARGET MECH CONCURRENCY [PID...]: one run; prints
# "rate p99 errors gen_cpu_ratio server_cpu_us_per_session p50".
# LOAD_EXTRA (e.g. "--starttls --tls-insecure") is added to the load command line.
run_load() {
  local target=$1 mech=$2 conc=$3
  shift 3
  local t0=""
  if [ $# -gt 0 ]; then
    pin_tree "$@"
    t0=$(tree_cpu_ticks "$@")
  fi
  # shellcheck disable=SC2086 # LOAD_EXTRA is a list of flags
  "${GEN_WRAP[@]}" "$AUTHSPEC_BIN" load --target "$target" --mechanism "$mech" \
    --var "user=$PEERS_USER1" --var password-env=BENCH_PW \
    --sessions "$SESSIONS" --concurrency "$conc" --format json ${LOAD_EXTRA:-} \
    >"$BENCH_TMP/run.json" || true
  local srv="-"
  if [ -n "$t0" ]; then
    # USER_HZ is 100 on Linux: one tick is 10,000 microseconds.
    srv=$(awk -v a="$t0" -v b="$(tree_cpu_ticks "$@")" -v n="$(jq .sessions_ok "$BENCH_TMP/run.json")" \
      'BEGIN { if (n > 0) printf "%.1f", (b - a) * 10000 / n; else print "-" }')
  fi
  jq -r --arg srv "$srv" '[.sessions_per_second, .latency.p99_ms, .sessions_failed, (.generator_cpu_ratio // 0), $srv, .latency.p50_ms] | @tsv' \
    "$BENCH_TMP/run.json"
}

echo "machine: $(machine)"
pinning="unpinned"
[ "$PIN" = 1 ] && pinning="pinned: servers on CPU $SERVER_CPU, generator on CPU $GEN_CPU"
echo "settings: $SESSIONS sessions per run, concurrency $CONCURRENCY, median of $REPEAT runs; $pinning"
echo "servers: authspec serve on $SERVE_ADDR, floor server on $FLOOR_ADDR${TLS_ADDR:+, authspec serve (STARTTLS) on $TLS_ADDR}"
echo
printf '%-10s %-34s %12s %9s %9s %7s %8s %12s %8s\n' mechanism target sessions/s p50_ms p99_ms errors gen_cpu srv_us/sess ratio
declare -A RATE P99 P50 SRV
# measure KEY NAME ADDR MECH PIDS: REPEAT runs, medians into RATE/P50/P99/SRV[KEY], one row.
measure() {
  local key=$1 name=$2 addr=$3 mech=$4 pids=$5 base=${6:-} b=0
  local f
  for f in rates p50s p99s errs cpu srv; do : >"$BENCH_TMP/$f"; done
  for _ in $(seq "$REPEAT"); do
    # shellcheck disable=SC2086 # pids is a list
    read -r rate p99 errs cpu srv p50 < <(run_load "$addr" "$mech" "$CONCURRENCY" $pids)
    [ "$srv" != "-" ] && echo "$srv" >>"$BENCH_TMP/srv"
    echo "$rate" >>"$BENCH_TMP/rates"
    echo "$p50" >>"$BENCH_TMP/p50s"
    echo "$p99" >>"$BENCH_TMP/p99s"
    echo "$errs" >>"$BENCH_TMP/errs"
    echo "$cpu" >>"$BENCH_TMP/cpu"
  done
  RATE[$key]=$(median <"$BENCH_TMP/rates")
  P50[$key]=$(median <"$BENCH_TMP/p50s")
  P99[$key]=$(median <"$BENCH_TMP/p99s")
  errs=$(awk '{ s += $1 } END { print s }' "$BENCH_TMP/errs")
  cpu=$(median <"$BENCH_TMP/cpu")
  SRV[$key]=-
  [ -s "$BENCH_TMP/srv" ] && SRV[$key]=$(median <"$BENCH_TMP/srv")
  [ -n "$base" ] && b=${RATE[$base]:-0}
  ratio=$(awk -v a="${RATE[$key]}" -v b="$b" \
    'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
  printf '%-10s %-34s %12.1f %9.3f %9.3f %7s %8.2f %12s %8s\n' "$mech" "$name ($addr)" \
    "${RATE[$key]}" "${P50[$key]}" "${P99[$key]}" "$errs" "$cpu" "${SRV[$key]}" "$ratio"
}

for mech in $MECHANISMS; do
  # Postfix + Cyrus first: every other row's ratio is against it.
  measure "$mech.cyrus" postfix-cyrus "$PEERS_HOST:$PEERS_PORT_CYRUS" "$mech" "$POSTFIX_MASTER"
  measure "$mech.dovecot" postfix-dovecot "$PEERS_HOST:$PEERS_PORT_DOVECOT" "$mech" "$POSTFIX_MASTER $DOVECOT_MASTER" "$mech.cyrus"
  measure "$mech.authspec" authspec "$SERVE_ADDR" "$mech" "$SERVE_PID" "$mech.cyrus"
  if [ "$mech" = PLAIN ]; then
    measure "$mech.floor" floor-server "$FLOOR_ADDR" "$mech" "$FLOOR_PID" "$mech.cyrus"
  fi
  awk -v a="${RATE[$mech.authspec]}" -v b="${RATE[$mech.cyrus]}" -v m="$mech" \
    'BEGIN { r = (b > 0) ? a / b : 0; printf "%-10s authspec / postfix-cyrus sessions/s = %.2fx (goal >= 10x: %s)\n", m, r, (r >= 10 ? "met" : "MISSED") }'
  if [ "$mech" = PLAIN ]; then
    awk -v a="${SRV[$mech.authspec]}" -v f="${SRV[$mech.floor]}" -v c="${SRV[$mech.cyrus]}" -v m="$mech" \
      'BEGIN { if (f > 0 && a > 0) printf "%-10s CPU/session: authspec %.1f us, floor %.1f us, ratio %.2f (goal <= 1.5: %s); postfix-cyrus %.1f us (%.1fx authspec)\n", m, a, f, a / f, (a / f <= 1.5 ? "met" : "MISSED"), c, c / a }'
  fi
done
if [ "$STARTTLS" = 1 ]; then
  # Postfix :2528 allows AUTH only after STARTTLS; authspec serve with
  # smtpd_tls_security_level=may (self-signed certificate, built once at start).
  export LOAD_EXTRA="--starttls --tls-insecure"
  measure "tls.cyrus" "postfix-cyrus STARTTLS" "$PEERS_HOST:$PEERS_PORT_STARTTLS" PLAIN "$POSTFIX_MASTER"
  measure "tls.authspec" "authspec STARTTLS" "$TLS_ADDR" PLAIN "$TLS_PID" tls.cyrus
  unset LOAD_EXTRA
  awk -v a="${RATE[tls.authspec]}" -v b="${RATE[tls.cyrus]}" -v sa="${SRV[tls.authspec]}" -v sb="${SRV[tls.cyrus]}" \
    'BEGIN { r = (b > 0) ? a / b : 0; printf "STARTTLS   authspec / postfix-cyrus sessions/s = %.2fx (goal >= 10x: %s); CPU/session %s us vs %s us\n", r, (r >= 10 ? "met" : "MISSED"), sa, sb }'
fi
echo
echo "gen_cpu: the load generator's CPU time / wall time (1.0 = one core busy of $(nproc))."
echo "srv_us/sess: CPU microseconds the server spent per session (authspec serve; floor server; Postfix master,"
echo "  smtpd and, for :2529, Dovecot auth), from /proc/PID/stat at 10 ms resolution; other users of Postfix count too."
echo "ratio: sessions/s relative to postfix-cyrus (same mechanism; STARTTLS rows to Postfix's STARTTLS row)."
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg)"
