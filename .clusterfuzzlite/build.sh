#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build: every cargo-fuzz target, with its seed corpus and
# dictionary next to the binary, as the infrastructure expects.
cd "$SRC/authspec"
cargo fuzz build -O --debug-assertions
for target in $(cargo fuzz list --fuzz-dir fuzz); do
  # Benchmark baselines (tests/bench/fuzz-throughput.sh), not fuzz targets of ours.
  case $target in empty | smtp_proto_parse) continue ;; esac
  cp "fuzz/target/x86_64-unknown-linux-gnu/release/$target" "$OUT/"
  corpus="fuzz/corpus/$target"
  # The parse-only target reads the same inputs as the round-trip one.
  [ "$target" = command_parse ] && corpus=fuzz/corpus/command
  if [ -d "$corpus" ]; then
    (cd "$corpus" && zip -q -r "$OUT/${target}_seed_corpus.zip" .)
  fi
  if [ -f fuzz/dict/smtp.dict ]; then
    cp fuzz/dict/smtp.dict "$OUT/$target.dict"
  fi
done
