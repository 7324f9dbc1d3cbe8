#!/usr/bin/env bash
# Cold start of the CLI against swaks, one whole process per run, against the same
# `authspec serve` on loopback: `authspec probe` vs `swaks --quit-after EHLO`, and
# `authspec send` (AUTH PLAIN + one message) vs `swaks --auth PLAIN` (the same dialog).
# Prints the median wall time of RUNS runs each (default 20), runs alternating, and
# the ratio. Goal (issue 19): authspec <= 1/5 of swaks.
#
#   tests/bench/cli-cold-start.sh
set -euo pipefail
. "$(dirname "$0")/common.sh"
RUNS=${RUNS:-20}
command -v swaks >/dev/null || { echo "swaks is not installed (tests/interop/install.sh)" >&2; exit 1; }
build_release
start_serve
export BENCH_PW=wonderland
# ms CMD...: wall milliseconds of one run (output discarded).
ms() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1 || true
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000))
}
for f in ap sp as ss; do : >"$BENCH_TMP/$f"; done
for _ in $(seq "$RUNS"); do
  ms "$AUTHSPEC_BIN" probe "$SERVE_ADDR" --timeout 5 >>"$BENCH_TMP/ap"
  ms swaks --server "$SERVE_ADDR" --quit-after EHLO --timeout 5 >>"$BENCH_TMP/sp"
  ms "$AUTHSPEC_BIN" send --server "$SERVE_ADDR" --from alice@example.test --to bob@example.test \
    --user alice --password-env BENCH_PW --mechanism PLAIN --timeout 5 >>"$BENCH_TMP/as"
  ms swaks --server "$SERVE_ADDR" --from alice@example.test --to bob@example.test \
    --auth PLAIN --auth-user alice --auth-password wonderland --timeout 5 >>"$BENCH_TMP/ss"
done
report() {
  local a s
  a=$(median <"$BENCH_TMP/$2")
  s=$(median <"$BENCH_TMP/$3")
  awk -v n="$1" -v a="$a" -v s="$s" 'BEGIN { printf "%-6s authspec %.1f ms, swaks %.1f ms, ratio %.3f (goal <= 0.2: %s)\n", n, a / 1000, s / 1000, a / s, (a / s <= 0.2 ? "met" : "missed") }'
}
echo "machine: $(machine); median of $RUNS runs each; load average $(cut -d' ' -f1-3 /proc/loadavg)"
report probe ap sp
report send as ss
