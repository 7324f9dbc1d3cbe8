//! Fuzz logic that needs a dependency the library does not have: the differential
//! target against smtp-proto (Stalwart's SMTP codec). Everything else lives in
//! `authspec_reference::fuzz_oracles` and `authspec::fuzz_oracles`.
#![forbid(unsafe_code)]

pub mod differential;
