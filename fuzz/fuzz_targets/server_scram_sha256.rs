#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    authspec_reference::fuzz_oracles::mech_digest_scram::server_scram_sha256(data)
});
