#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| authspec_fuzz::differential::smtp_proto(data));
