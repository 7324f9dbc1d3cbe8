//! authspec-reference: a strict reference implementation of SMTP AUTH (RFC 4954) and
//! the SASL mechanisms it carries.
//!
//! The core ([`smtp`], [`sasl`], [`policy`]) does no IO: it reads no clock, opens no
//! socket and draws no randomness of its own. The tokio drivers in `net` (default feature `net`) own those
//! and pass them in, so every session can be replayed from a seed and fuzzed in memory.
#![forbid(unsafe_code)]

pub mod human;
#[cfg(feature = "net")]
pub mod net;
pub mod policy;
pub mod sasl;
pub mod smtp;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz_oracles;
