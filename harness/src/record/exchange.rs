//! One SASL exchange as the events hold it: the AUTH line read by the reference
//! command parser ([`command::parse`], RFC 4954 §4), each 334 with the client's
//! answer, the final reply. Both the credential learning ([`super::redact`]) and the
//! step writing ([`super::auth_steps`]) read exchanges from here, so an AUTH line is
//! split in one place and a payload decoded in one place ([`sasl_frame`]).

use super::events::{ClientLine, Event};
use authspec_reference::sasl::Mechanism;
use authspec_reference::smtp::command::{self, Command, CommandError, InitialResponse};
use authspec_reference::smtp::reply::Reply;
use authspec_reference::smtp::sasl_frame::{self, ClientMessage};

/// What replaces a payload that cannot be proven free of secrets: the base64 of
/// `withheld`. A server answers it as it answered the original (an unrecognised
/// command, or a response it cannot use), and it holds nothing of the session.
pub(super) const WITHHELD_PAYLOAD: &str = "d2l0aGhlbGQ=";

/// One SASL exchange as it went. No `Debug`: the initial response may hold a password.
#[derive(Default)]
pub(super) struct Exchange {
    pub(super) mech_name: String,
    pub(super) mechanism: Option<Mechanism>,
    /// The initial response as sent, if any (RFC 4954 §4).
    pub(super) ir: Option<InitialResponse>,
    /// Each 334 with the client's answer (`None` when the session ended first).
    pub(super) rounds: Vec<(Reply, Vec<u8>, Option<ClientLine>)>,
    /// The final reply, and the octets it was.
    pub(super) last: Option<(Reply, Vec<u8>)>,
    pub(super) cancelled: bool,
    /// The AUTH line did not have RFC 4954's shape: nothing after the verb is kept.
    pub(super) malformed: bool,
    /// Notes met inside the exchange.
    pub(super) notes: Vec<String>,
    /// Index of the first event after the exchange.
    pub(super) next: usize,
}

/// One decoded client message of an exchange. No `Debug`: it may be a password.
pub(super) struct Payload {
    /// Which client message of the exchange it was (the initial response is 0), counted
    /// over every message sent, so one that does not decode shifts nothing.
    pub(super) position: usize,
    /// The decoded challenge it answered; `None` for the initial response.
    pub(super) challenge: Option<Vec<u8>>,
    pub(super) data: Vec<u8>,
}

/// The mechanism name as sent and the initial response of an AUTH line, when the
/// reference parser accepts it; `None` for anything else (`AUTH  PLAIN <b64>` with two
/// spaces, trailing words, octets outside base64), whose arguments are then withheld.
fn auth_command(line: &[u8]) -> Option<(String, Option<InitialResponse>)> {
    let parsed = match command::parse(line) {
        // RFC 4422 §3.1 names are upper case, but RFC 4954 §4 compares them without
        // case and servers accept lower case, so such a line is read as its upper-case
        // twin; the name is kept as sent.
        Err(CommandError::MechanismNameNotUpperCase { offset }) => {
            let mut twin = line.to_vec();
            let rest = twin.get_mut(offset..)?;
            let name_len = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
            rest[..name_len].make_ascii_uppercase();
            command::parse(&twin)
        }
        other => other,
    };
    let Ok(Command::Auth {
        mechanism,
        initial_response,
    }) = parsed
    else {
        return None;
    };
    // `AUTH` SP name: the name is the octets after the verb, as long as the parsed one.
    let sent = line.get(5..5 + mechanism.len())?;
    Some((String::from_utf8_lossy(sent).into_owned(), initial_response))
}

/// Follows an AUTH command from event `start` to its final reply.
pub(super) fn exchange(events: &[Event], start: usize) -> Exchange {
    let mut x = Exchange::default();
    let Some(Event::Client(line)) = events.get(start) else {
        return x;
    };
    match auth_command(&line.bytes) {
        Some((mech, ir)) => {
            x.mechanism = Mechanism::from_name(mech.as_bytes());
            x.mech_name = mech;
            x.ir = ir;
        }
        None => {
            x.malformed = true;
            x.mech_name = "AUTH".into();
        }
    }
    let mut i = start + 1;
    let mut pending: Option<(Reply, Vec<u8>)> = None;
    while let Some(ev) = events.get(i) {
        match ev {
            Event::Note(n) => x.notes.push(n.clone()),
            Event::Server { reply, raw } if pending.is_none() && reply.code == 334 => {
                pending = Some((reply.clone(), raw.clone()));
            }
            Event::Server { reply, raw } if pending.is_none() => {
                x.last = Some((reply.clone(), raw.clone()));
                i += 1;
                break;
            }
            Event::Client(resp) if pending.is_some() => {
                if let Some((r, raw)) = pending.take() {
                    if resp.bytes == b"*" {
                        x.cancelled = true;
                    }
                    x.rounds.push((r, raw, Some(resp.clone())));
                }
            }
            _ => break,
        }
        i += 1;
    }
    if let Some((r, raw)) = pending {
        x.rounds.push((r, raw, None));
    }
    x.next = i;
    x
}

fn decode_ir(ir: &InitialResponse) -> Option<Vec<u8>> {
    let text = match ir {
        InitialResponse::Empty => "=",
        InitialResponse::Base64(t) => t,
    };
    sasl_frame::decode_initial_response(text.as_bytes()).ok()
}

impl Exchange {
    /// The client's messages that decode (RFC 4954 §4), in order, each with the
    /// challenge it answered. A cancel (`*`) is no message.
    pub(super) fn payloads(&self) -> Vec<Payload> {
        let mut out = Vec::new();
        if let Some(data) = self.ir.as_ref().and_then(decode_ir) {
            out.push(Payload {
                position: 0,
                challenge: None,
                data,
            });
        }
        let first = usize::from(self.ir.is_some());
        for (n, (r, _, resp)) in self.rounds.iter().enumerate() {
            let Some(resp) = resp else { continue };
            if let Ok(ClientMessage::Data(data)) = sasl_frame::decode_response(&resp.bytes) {
                let challenge = r
                    .lines
                    .first()
                    .and_then(|l| sasl_frame::decode_challenge(&l.text).ok());
                out.push(Payload {
                    position: first + n,
                    challenge,
                    data,
                });
            }
        }
        out
    }

    /// The client's first message, decoded: the initial response, or else the answer
    /// to the first challenge.
    pub(super) fn first_payload(&self) -> Option<Vec<u8>> {
        match &self.ir {
            Some(ir) => decode_ir(ir),
            None => {
                let resp = self.rounds.first()?.2.as_ref()?;
                match sasl_frame::decode_response(&resp.bytes).ok()? {
                    ClientMessage::Data(d) => Some(d),
                    ClientMessage::Cancel => None,
                }
            }
        }
    }
}
