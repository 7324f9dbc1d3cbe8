#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| authspec::fuzz_oracles::fuzz_glob(data));
