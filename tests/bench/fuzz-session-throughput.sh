#!/usr/bin/env bash
# libFuzzer exec/s of the session targets (server_session, client_session), built
# the two ways the project runs them:
#   asan  the default cargo-fuzz build (AddressSanitizer), as ClusterFuzzLite runs them;
#   none  `-s none`, as .ci/fuzz-smoke and the scheduled cargo-fuzz job run them.
# Optionally a third build, from another checkout, for a before/after:
#   BEFORE=/path/to/old/checkout tests/bench/fuzz-session-throughput.sh
# (its fuzz/ is built with ASan, as CI ran the targets then).
#
#   tests/bench/fuzz-session-throughput.sh [RUNS] [ROUNDS]   (default 200000 runs, 3 rounds)
#
# Every run starts from -seed=1 and the committed corpus (read only; new units go to
# a scratch directory), with dict/smtp.dict. The builds alternate within a round so
# drift on a shared machine hits all of them; the median of the rounds is printed.
# Exit status is 0 whatever the figures: this measures, CI decides.
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"
RUNS="${1:-200000}"
ROUNDS="${2:-3}"
TARGETS=(server_session client_session)
if rustup toolchain list | grep -q '^nightly'; then TC=(+nightly); else TC=(); export RUSTC_BOOTSTRAP=1; fi
triple="$(rustc -vV | sed -n 's/^host: //p')"

declare -A BIN
for t in "${TARGETS[@]}"; do
  cargo "${TC[@]}" fuzz build -O "$t" >/dev/null 2>&1
  cargo "${TC[@]}" fuzz build -O -s none --target-dir target/nosan "$t" >/dev/null 2>&1
  BIN[asan/$t]="target/$triple/release/$t"
  BIN[none/$t]="target/nosan/$triple/release/$t"
  if [ -n "${BEFORE:-}" ]; then
    (cd "$BEFORE/fuzz" && cargo "${TC[@]}" fuzz build -O "$t" >/dev/null 2>&1)
    BIN[before/$t]="$BEFORE/fuzz/target/$triple/release/$t"
  fi
done
BUILDS=(asan none)
[ -n "${BEFORE:-}" ] && BUILDS=(before asan none)

rate() {
  local bin="$1" t="$2" scratch log
  scratch="$(mktemp -d)"; log="$scratch.log"
  local t0 t1
  t0=$(date +%s%N)
  "$bin" -runs="$RUNS" -seed=1 -dict=dict/smtp.dict -print_final_stats=1 \
    "$scratch" "corpus/$t" >"$log" 2>&1 || true
  t1=$(date +%s%N)
  # exec/s from the run count and the wall time in nanoseconds (corpus loading
  # included, for every build alike), not libFuzzer's whole-second figure.
  if grep -q "^Done $RUNS runs" "$log"; then
    awk -v runs="$RUNS" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f\n", runs / (ns / 1e9) }'
  else
    echo 0
  fi
  rm -rf "$scratch" "$log"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A RES
for _ in $(seq "$ROUNDS"); do
  for t in "${TARGETS[@]}"; do
    for b in "${BUILDS[@]}"; do RES[$b/$t]+="$(rate "${BIN[$b/$t]}" "$t") "; done
  done
done
for t in "${TARGETS[@]}"; do
  for b in "${BUILDS[@]}"; do
    m=$(tr ' ' '\n' <<<"${RES[$b/$t]}" | grep . | median)
    RES[med/$b/$t]=$m
    printf '%-15s %-7s %10.0f exec/s  (rounds: %s)\n' "$t" "$b" "$m" "${RES[$b/$t]% }"
  done
  base=asan
  [ -n "${BEFORE:-}" ] && base=before
  awk -v n="${RES[med/none/$t]}" -v b="${RES[med/$base/$t]}" -v t="$t" -v base="$base" \
    'BEGIN { printf "%s: none / %s = %.2f (goal >= 2)\n", t, base, n / b }'
done
