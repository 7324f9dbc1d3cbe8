#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    authspec_reference::fuzzing::mech_digest_scram::client_scram(data)
});
