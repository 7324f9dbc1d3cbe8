#![no_main]
// Does nothing: the baseline for tests/bench/fuzz-throughput.sh.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = data;
});
