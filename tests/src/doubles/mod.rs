//! Test doubles: peers that follow the RFCs but choose differently from Postfix and
//! the reference wherever the RFCs allow, so the bundled suite cannot drift toward
//! one implementation's behaviour (issue 13, item 6).

pub mod server;
