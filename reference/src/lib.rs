//! authspec-reference: a strict reference implementation of SMTP AUTH (RFC 4954) and
//! the SASL mechanisms it carries.
//!
//! The core ([`smtp`], [`sasl`], [`policy`]) does no IO: it reads no clock, opens no
//! socket and draws no randomness of its own. The tokio drivers in `net` (default feature `net`) own those
//! and pass them in, so every session can be replayed from a seed and fuzzed in memory.
//!
//! # Where to start
//!
//! The types below are re-exported here; their modules hold the rest.
//!
//! - A server: build a [`ServerConfig`] (from a [`MainCf`], Postfix's main.cf
//!   vocabulary), a [`CredentialStore`] (for example [`MemoryStore`] or a parsed
//!   passwd-file) and a [`RandomSource`], then feed bytes to a [`ServerSession`]; it
//!   answers with output bytes and [`ServerEvent`]s for the driver.
//! - A client: describe the session in a [`ClientPlan`] (its
//!   [`smtp::client::AuthPlan`] holds the [`ClientCredentials`] and a mechanism
//!   chooser, such as a [`ClientConfig`]'s), feed the server's bytes to a
//!   [`ClientSession`] and act on its [`ClientEvent`]s until [`ClientEvent::Done`]
//!   carries the [`Outcome`].
//! - The AUTH exchange alone (RFC 4954 §4), for a driver with its own SMTP layer:
//!   [`ServerExchange`] and [`ExchangeStep`] on the server side, [`ClientExchange`] and
//!   [`ClientStep`] on the client side, and [`AuthReply`] for the reply texts.
//! - A SASL mechanism alone: [`Mechanism`] names it, [`sasl::server`] and
//!   [`sasl::client`] start a [`ServerMechanism`] or [`ClientMechanism`], and every
//!   failure is a [`SaslError`] named after the rule that was broken.
//! - Parsers: [`smtp::command::parse`] for command lines, [`smtp::reply::parse_reply`]
//!   for replies, [`smtp::sasl_frame`] for the base64 of the exchange.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod human;
#[cfg(feature = "net")]
pub mod net;
pub mod policy;
pub mod sasl;
pub mod smtp;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz_oracles;

pub use policy::{ClientConfig, ConfigError, MainCf, SecurityOptions, ServerConfig};
pub use sasl::channel_binding::ChannelBindings;
pub use sasl::credentials::MemoryStore;
pub use sasl::{
    Authenticated, ClientCredentials, ClientMechanism, CredentialStore, Mechanism, RandomSource,
    SaslError, Secret, SeededRandom, ServerContext, ServerMechanism, ServerStep, StoredCredential,
};
pub use smtp::auth_client::{ClientExchange, ClientStep};
pub use smtp::auth_server::{AuthReply, ExchangeError, ExchangeStep, ServerExchange};
pub use smtp::client::{ClientEvent, ClientPlan, ClientSession, Outcome};
pub use smtp::server::{Event as ServerEvent, Peer, ServerSession};
