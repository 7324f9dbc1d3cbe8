//! SMTP as bytes: line framing, commands, replies, xtext, SASL base64 framing, and the
//! server and client session state machines. Nothing here touches a socket.
//!
//! Where a rule of RFC 5321, RFC 4954 or RFC 3461 is enforced, the error variant that
//! reports it is named after the rule, so reports and snapshots carry stable names.

pub mod auth_client;
pub mod auth_server;
pub mod client;
pub mod command;
pub mod line;
pub mod reply;
pub mod sasl_frame;
pub mod server;
pub mod xtext;
