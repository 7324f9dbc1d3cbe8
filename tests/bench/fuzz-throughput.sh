#!/usr/bin/env bash
# libFuzzer exec/s of the command parsers, in one run, from the same seeds:
#   empty             does nothing: libFuzzer's own ceiling on this machine;
#   smtp_proto_parse  smtp-proto 0.2's `Request::parse` (the peer, parse only);
#   command_parse     authspec's `command::parse`, parse only (goal: >= smtp_proto_parse);
#   command           the round-trip target (parse, format, re-parse, framer limit).
#
#   tests/bench/fuzz-throughput.sh [SECONDS] [ROUNDS]   (default 20 s per target, 3 rounds)
#
# Targets alternate within each round, so drift on a shared machine hits all of them;
# the median of the rounds is printed. Exit status is 0 whatever the ratios: this
# measures, CI decides.
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"
SECS="${1:-20}"
ROUNDS="${2:-3}"
TARGETS=(empty smtp_proto_parse command_parse command)
if rustup toolchain list | grep -q '^nightly'; then TC=(+nightly); else TC=(); export RUSTC_BOOTSTRAP=1; fi

for t in "${TARGETS[@]}"; do
  cargo "${TC[@]}" fuzz build -O "$t" >/dev/null 2>&1
done
bindir="target/$(rustc -vV | sed -n 's/^host: //p')/release"

rate() {
  local t="$1" scratch log
  scratch="$(mktemp -d)"; log="$scratch.log"
  # Same seeds for all; -len_control=0 and a fixed max_len keep the input sizes
  # comparable between the targets.
  "$bindir/$t" -max_total_time="$SECS" -max_len=512 -len_control=0 -dict=dict/smtp.dict \
    -print_final_stats=1 "$scratch" corpus/command >"$log" 2>&1 || true
  grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1
  rm -rf "$scratch" "$log"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A RUNS
for _ in $(seq "$ROUNDS"); do
  for t in "${TARGETS[@]}"; do RUNS[$t]+="$(rate "$t") "; done
done
declare -A MED
for t in "${TARGETS[@]}"; do
  MED[$t]=$(tr ' ' '\n' <<<"${RUNS[$t]}" | grep . | median)
  printf '%-17s %10s exec/s  (rounds: %s)\n' "$t" "${MED[$t]}" "${RUNS[$t]% }"
done
awk -v c="${MED[command_parse]}" -v s="${MED[smtp_proto_parse]}" -v e="${MED[empty]}" -v r="${MED[command]}" 'BEGIN {
  printf "command_parse / smtp_proto_parse: %.2f (goal >= 1.0: %s)\n", c / s, (c >= s ? "met" : "missed")
  printf "of the empty target: command_parse %.2f, smtp_proto_parse %.2f, command (round trip) %.2f\n", c / e, s / e, r / e
}'
