#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    authspec_reference::fuzz_oracles::mech_digest_scram::client_scram(data)
});
