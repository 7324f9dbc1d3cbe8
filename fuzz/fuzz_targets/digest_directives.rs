#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    authspec_reference::fuzzing::mech_digest_scram::digest_directives(data)
});
