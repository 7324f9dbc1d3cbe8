//! Configuration in Postfix's vocabulary: main.cf syntax, `-o name=value` overrides,
//! server (`smtpd_*`) and client (`smtp_*`) parameters, and the SASL security options
//! that filter mechanisms. See `README.md` in this folder for the parameters, the
//! places authspec departs from Postfix's defaults, and the security option table.

pub mod client;
pub mod error;
pub mod maincf;
pub(crate) mod network;
pub mod security;
pub mod server;

pub use client::{ClientConfig, NoMechanism, PasswordMap};
pub use error::{ConfigError, ConfigErrorKind};
pub use maincf::MainCf;
pub use network::NetworkList;
pub use security::{MechanismFilter, SaslType, SecurityOptions};
pub use server::{Decision, Restriction, RestrictionClass, RestrictionContext, ServerConfig};
