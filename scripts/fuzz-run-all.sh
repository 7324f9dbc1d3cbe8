#!/usr/bin/env bash
# Run every fuzz target (or those named) for SECONDS each, one at a time, from the
# committed seed corpus, and print one Markdown table row per target: exec/s, final
# coverage (`cov:`, `ft:`), corpus size, and whether it crashed.
#
#   scripts/fuzz-run-all.sh [SECONDS] [target...]     (default 60 s, all targets)
#
# New inputs go to a scratch corpus under fuzz/target/work/<target> (kept between
# runs, never committed); crashes land in fuzz/artifacts/<target>/ as cargo-fuzz
# puts them. Logs: fuzz/target/work/<target>.log.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_PER_TARGET="${1:-60}"
shift || true

if rustup toolchain list | grep -q '^nightly'; then TC=(+nightly); else TC=(); export RUSTC_BOOTSTRAP=1; fi
cargo "${TC[@]}" fuzz build -O >/dev/null 2>&1 || { echo "build failed" >&2; exit 1; }
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo "${TC[@]}" fuzz list); fi

echo "| target | exec/s | cov | ft | corpus | result |"
echo "|---|---:|---:|---:|---:|---|"
for t in "${targets[@]}"; do
  work="target/work/$t"; log="target/work/$t.log"
  mkdir -p "$work" "corpus/$t"
  status=0
  cargo "${TC[@]}" fuzz run -O "$t" "$work" "corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -dict=dict/smtp.dict -rss_limit_mb=512 -malloc_limit_mb=256 \
    -timeout=2 -print_final_stats=1 >"$log" 2>&1 || status=$?
  execs=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: ' | tail -1)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.*corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  if [ "$status" -eq 0 ]; then result=ok; else result="CRASH (exit $status, see $log)"; fi
  echo "| $t | ${execs:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $result |"
done
