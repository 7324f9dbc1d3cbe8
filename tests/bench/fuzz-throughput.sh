#!/usr/bin/env bash
# How much of libFuzzer's raw speed the command parser keeps: run the empty target
# (fuzz/fuzz_targets/empty.rs, which does nothing) and the `command` target for the
# same time, from the same seeds, in the same run, and print both exec/s and their
# ratio. The goal is a ratio of at least 0.5: parsing a command should cost no more
# than libFuzzer's own mutation and bookkeeping.
#
#   tests/bench/fuzz-throughput.sh [SECONDS]     (default 20 per target)
#
# Run it on an otherwise idle machine; the figure is only comparable between runs
# on the same host. Exit status is 0 whatever the ratio: this measures, CI decides.
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"
SECS="${1:-20}"
if rustup toolchain list | grep -q '^nightly'; then TC=(+nightly); else TC=(); export RUSTC_BOOTSTRAP=1; fi

cargo "${TC[@]}" fuzz build -O empty >/dev/null 2>&1
cargo "${TC[@]}" fuzz build -O command >/dev/null 2>&1

rate() {
  local t="$1" scratch log
  scratch="$(mktemp -d)"; log="$scratch.log"
  # Same seeds for both; -len_control=0 and a fixed max_len keep the input sizes
  # comparable between the two targets.
  cargo "${TC[@]}" fuzz run -O "$t" "$scratch" corpus/command -- \
    -max_total_time="$SECS" -max_len=512 -len_control=0 -dict=dict/smtp.dict \
    -print_final_stats=1 >"$log" 2>&1
  grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1
  rm -rf "$scratch" "$log"
}

empty=$(rate empty)
command=$(rate command)
echo "empty:   ${empty} exec/s"
echo "command: ${command} exec/s"
awk -v c="$command" -v e="$empty" 'BEGIN { printf "ratio:   %.2f (goal >= 0.5)\n", c / e }'
