#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| authspec::fuzzing::fuzz_load(data));
