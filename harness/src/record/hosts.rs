//! The host names a session shows, for `--redact`: the server's (first word of its
//! greeting or EHLO reply) and the client's (its EHLO, HELO or LHLO argument), with
//! the stand-ins written in their place.
//!
//! This is a net, not a grammar: a name that breaks RFC 5321's `Domain` rule (or
//! comes with trailing words) still names the host, so it is learned as long as it
//! looks like a host name; [`authspec_reference::smtp::command::parse`] would refuse
//! it, and the name would be written.

use super::events::Event;

/// A stand-in for the server's host name in replies a scripted server sends.
pub(super) const SERVER_PLACEHOLDER: &str = "mx.example.net";
/// A stand-in for the client's EHLO name in lines a replaying client sends.
pub(super) const CLIENT_PLACEHOLDER: &str = "client.example.com";

/// Host names seen: the server's (greeting, EHLO reply) and the client's (EHLO).
#[derive(Debug, Default)]
pub(super) struct Hosts {
    pub(super) server: Option<Vec<u8>>,
    pub(super) client: Option<Vec<u8>>,
}

fn first_word(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|c| *c == b' ').unwrap_or(b.len());
    &b[..end]
}

fn looks_like_host(b: &[u8]) -> bool {
    b.len() >= 3
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'[' | b']' | b':'))
}

pub(super) fn learn_hosts(events: &[Event]) -> Hosts {
    let mut h = Hosts::default();
    for ev in events {
        match ev {
            Event::Server { reply, .. }
                if h.server.is_none() && matches!(reply.code, 220 | 250) =>
            {
                if let Some(l) = reply.lines.first() {
                    let w = first_word(&l.text);
                    if looks_like_host(w) && w.contains(&b'.') {
                        h.server = Some(w.to_vec());
                    }
                }
            }
            Event::Client(l) if h.client.is_none() => {
                let verb = l.verb();
                if matches!(verb.as_str(), "EHLO" | "HELO" | "LHLO") {
                    let arg = l.bytes.get(5..).map(first_word).unwrap_or_default();
                    if looks_like_host(arg) {
                        h.client = Some(arg.to_vec());
                    }
                }
            }
            _ => {}
        }
    }
    h
}
