#![no_main]
// smtp-proto's `Request::parse` on the same input: the peer figure for
// tests/bench/fuzz-throughput.sh (it borrows from the input; a line must end in LF
// for it to parse, so the iterator sees the whole input as one line).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut it = data.iter();
    let _ = std::hint::black_box(smtp_proto::Request::parse(&mut it));
});
