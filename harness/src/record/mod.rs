//! `authspec record`: a transparent SMTP proxy that writes each session it forwards as
//! two scenarios in the bundled format — the client's side, to replay against a
//! server, and the server's side, to replay against a client.
//!
//! The data path: bytes from both peers → [`events::Recorder`] (framing: lines, replies,
//! message bodies, BDAT chunks, STARTTLS) → [`events::Event`]s → [`build::build`] (SASL
//! exchanges ([`exchange`]), secrets and names ([`redact`], [`hosts`]), steps
//! ([`session`], [`auth_steps`])) → [`crate::scenario::ScenarioFile`]s →
//! [`build::render`] (YAML with a comment header) → checked to load again and to hold
//! no secret → written by [`proxy`].
//!
//! What a recording never holds, by construction and checked again before writing:
//! a password or bearer token, or its base64 at any alignment, and any client SASL
//! payload of a mechanism authspec implements. Those exchanges replay from
//! `${user}`/`${password}`, so fresh challenges get fresh responses.

mod auth_steps;
pub mod build;
pub mod events;
mod exchange;
mod hosts;
pub mod proxy;
mod redact;
mod session;
pub mod text;

pub use build::{Options, Recording, SessionInfo, build, render};
pub use events::{ClientLine, Ending, Event, Limits, Recorder};
pub use proxy::{ProxyConfig, SessionReport, serve, utc_stamp};
