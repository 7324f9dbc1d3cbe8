//! Thin tokio drivers over the sans-IO session state machines: TCP, STARTTLS (RFC 3207)
//! and implicit TLS, with timeouts. They own sockets, clocks and the random source.

pub mod client;
pub mod server;
pub mod tls;
