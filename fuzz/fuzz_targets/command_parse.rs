#![no_main]
// Parse only: the like-for-like of `smtp_proto_parse` for tests/bench/fuzz-throughput.sh.
// The round-trip invariants live in the `command` target; this one only asks that
// `command::parse` never panics, as smtp-proto's target asks of `Request::parse`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = std::hint::black_box(authspec_reference::smtp::command::parse(data));
});
