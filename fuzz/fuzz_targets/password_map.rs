#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| authspec_reference::fuzz_oracles::policy::password_map(data));
