//! authspec-reference: a strict reference implementation of SMTP AUTH (RFC 4954) and
//! the SASL mechanisms it carries.
//!
//! The core ([`smtp`], [`sasl`], [`policy`]) does no IO: it reads no clock, opens no
//! socket and draws no randomness of its own. The tokio drivers in [`net`] own those
//! and pass them in, so every session can be replayed from a seed and fuzzed in memory.
#![forbid(unsafe_code)]

pub mod human;
pub mod net;
pub mod policy;
pub mod sasl;
pub mod smtp;

#[doc(hidden)]
pub mod fuzzing;
