#!/usr/bin/env bash
# Wall time of `authspec run` (release) over the bundled scenario library against the
# embedded reference server: REPEAT runs (default 5), median. Goal: < 3 s.
#
#   tests/bench/runner.sh
set -euo pipefail
. "$(dirname "$0")/common.sh"
REPEAT=${REPEAT:-5}
build_release
echo "machine: $(machine)"
count=$("$AUTHSPEC_BIN" run --list | tail -1)
: >"$BENCH_TMP/times"
for i in $(seq "$REPEAT"); do
  t0=$(date +%s.%N)
  rc=0
  "$AUTHSPEC_BIN" run --format json --output "$BENCH_TMP/report.json" || rc=$?
  t1=$(date +%s.%N)
  t=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  echo "run $i: $t s (exit $rc)"
  echo "$t" >>"$BENCH_TMP/times"
done
med=$(median <"$BENCH_TMP/times")
echo "authspec run, bundled suite ($count), embedded reference: median $med s of $REPEAT (goal < 3 s: $(awk -v m="$med" 'BEGIN { print (m < 3 ? "met" : "MISSED") }'))"
