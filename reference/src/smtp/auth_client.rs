//! The client side of one RFC 4954 §4 AUTH exchange, sans IO.
//!
//! One RFC rule, one place: every client that speaks AUTH — the reference client
//! ([`crate::smtp::client`]), the harness's client role, its load generator and its
//! network fuzzer — drives this exchange, so the AUTH line, the initial response, the
//! `334` challenge decoding, the `*` cancel, the `235` additional data, the server-first
//! verification and the round limit are written once. A caller only chooses what to do
//! with each [`ClientStep`] (send, judge, count), never how the protocol works.
//!
//! ```text
//! command() ──► AUTH mech [ir] ──► on_reply(334) ──► Respond | Cancel ──► on_reply …
//!                                  on_reply(235) ──► Success | Unverified
//!                                  on_reply(other) ──► Ended
//! ```

use std::fmt;

use crate::sasl::{ClientMechanism, Mechanism, SaslError};
use crate::smtp::reply::Reply;
use crate::smtp::sasl_frame::{self, Base64Error};

/// How many `334` challenges a client answers in one exchange before it gives up on a
/// server that never ends it. No RFC sets a number; every mechanism here needs at most
/// three rounds, so 16 only stops a server that loops.
pub const MAX_AUTH_ROUNDS: usize = 16;

/// Whether the first client message goes on the AUTH line (RFC 4954 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitialResponseMode {
    /// Never: wait for the server's first (possibly empty) challenge.
    Never,
    /// For client-first mechanisms only, which saves a round trip.
    Auto,
    /// Always, even empty (`=`) or for a server-first mechanism (to test the server).
    Always,
}

/// The AUTH command to send, without its CRLF.
#[derive(Debug)]
pub struct AuthCommand {
    /// `AUTH MECH` or `AUTH MECH base64`.
    pub line: String,
    /// The decoded initial response on the line, for transcripts that mask secrets.
    pub initial_response: Option<Vec<u8>>,
}

/// Why the client answers a challenge with `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// RFC 4954 §4: the challenge after `334 ` must be base64.
    ChallengeNotBase64(Base64Error),
    /// The mechanism cannot answer the challenge (RFC 4954 §4: the client cancels).
    Mechanism(SaslError),
    /// A challenge after the client has already cancelled.
    AlreadyCancelled,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelReason::ChallengeNotBase64(e) => write!(f, "the challenge is not base64 ({e})"),
            CancelReason::Mechanism(e) => write!(f, "{e}"),
            CancelReason::AlreadyCancelled => f.write_str("the exchange was already cancelled"),
        }
    }
}

/// What the exchange makes of one server reply.
#[derive(Debug)]
pub enum ClientStep {
    /// Send `line` and CRLF; `payload` is the decoded response, for masking.
    Respond {
        /// The base64 response line.
        line: String,
        /// The response before base64.
        payload: Vec<u8>,
    },
    /// Send `*` and CRLF (RFC 4954 §4), for this reason.
    Cancel(CancelReason),
    /// `235`, and the mechanism accepts the outcome (mutual authentication verified).
    Success,
    /// `235`, but the server never proved itself (RFC 4422 §3.7).
    Unverified(SaslError),
    /// Any other reply: the exchange is over, and the reply is the caller's to judge.
    Ended,
    /// More than [`MAX_AUTH_ROUNDS`] challenges.
    TooManyRounds,
}

/// One AUTH exchange, client side. Holds the mechanism and counts the rounds.
#[derive(Debug)]
pub struct ClientExchange {
    mech: Box<dyn ClientMechanism>,
    rounds: usize,
    cancelled: bool,
}

impl ClientExchange {
    /// An exchange for this mechanism instance.
    pub fn new(mech: Box<dyn ClientMechanism>) -> ClientExchange {
        ClientExchange {
            mech,
            rounds: 0,
            cancelled: false,
        }
    }

    /// The mechanism in use.
    pub fn mechanism(&self) -> Mechanism {
        self.mech.mechanism()
    }

    /// Whether the client has sent `*`.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// The AUTH command, with an initial response as `mode` says. A server-first
    /// mechanism under [`InitialResponseMode::Auto`] sends none (RFC 4954 §4);
    /// [`InitialResponseMode::Always`] sends `=` where the mechanism has nothing.
    pub fn command(&mut self, mode: InitialResponseMode) -> Result<AuthCommand, SaslError> {
        let name = self.mech.mechanism().name();
        let ir = match (mode, self.mech.mechanism().server_first()) {
            (InitialResponseMode::Never, _) | (InitialResponseMode::Auto, true) => None,
            (InitialResponseMode::Auto, false) => self.mech.initial_response()?,
            (InitialResponseMode::Always, _) => {
                Some(self.mech.initial_response()?.unwrap_or_default())
            }
        };
        let line = match &ir {
            Some(ir) => format!("AUTH {name} {}", sasl_frame::encode_initial_response(ir)),
            None => format!("AUTH {name}"),
        };
        Ok(AuthCommand {
            line,
            initial_response: ir,
        })
    }

    /// Take one server reply to the AUTH command or to a response.
    pub fn on_reply(&mut self, reply: &Reply) -> ClientStep {
        match reply.code {
            334 => self.challenge(reply),
            235 => match self.mech.verify_success(success_data(reply).as_deref()) {
                Ok(()) => ClientStep::Success,
                Err(e) => ClientStep::Unverified(e),
            },
            _ => ClientStep::Ended,
        }
    }

    fn challenge(&mut self, reply: &Reply) -> ClientStep {
        self.rounds += 1;
        if self.rounds > MAX_AUTH_ROUNDS {
            return ClientStep::TooManyRounds;
        }
        if self.cancelled {
            return ClientStep::Cancel(CancelReason::AlreadyCancelled);
        }
        let text = reply
            .lines
            .first()
            .map(|l| l.text.as_slice())
            .unwrap_or(&[]);
        let step = match sasl_frame::decode_challenge(text) {
            Err(e) => Err(CancelReason::ChallengeNotBase64(e)),
            Ok(challenge) => self.mech.step(&challenge).map_err(CancelReason::Mechanism),
        };
        match step {
            Ok(payload) => ClientStep::Respond {
                line: sasl_frame::encode_response(&payload),
                payload,
            },
            Err(why) => {
                self.cancelled = true;
                ClientStep::Cancel(why)
            }
        }
    }
}

/// RFC 4954 §4: a server may put additional data for the client on the `235` line
/// itself. A text that starts with an enhanced code, or is empty, is not such data.
fn success_data(reply: &Reply) -> Option<Vec<u8>> {
    reply
        .lines
        .first()
        .and_then(|l| sasl_frame::decode_challenge(&l.text).ok())
        .filter(|d| !d.is_empty() && reply.enhanced().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::{self, ClientCredentials, Secret, SeededRandom};
    use crate::smtp::reply::{ReplyLimits, parse_reply};

    fn reply(text: &str) -> Reply {
        let wire = format!("{text}\r\n");
        match parse_reply(wire.as_bytes(), &ReplyLimits::default()) {
            Ok(Some((r, _))) => r,
            other => panic!("test reply does not parse: {other:?}"),
        }
    }

    fn exchange(m: Mechanism) -> ClientExchange {
        let creds = ClientCredentials {
            authcid: "alice".into(),
            password: Secret::from("wonderland".to_owned()),
            authzid: None,
            host: "mx.example".into(),
            port: None,
        };
        let mut rng = SeededRandom::from_seed(7);
        ClientExchange::new(sasl::client(m, &creds, &mut rng))
    }

    #[test]
    fn auto_puts_a_client_first_response_on_the_line_and_not_a_server_first_one() {
        let cmd = exchange(Mechanism::Plain)
            .command(InitialResponseMode::Auto)
            .unwrap();
        assert_eq!(cmd.line, "AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=");
        let cmd = exchange(Mechanism::CramMd5)
            .command(InitialResponseMode::Auto)
            .unwrap();
        assert_eq!(cmd.line, "AUTH CRAM-MD5");
        let cmd = exchange(Mechanism::CramMd5)
            .command(InitialResponseMode::Always)
            .unwrap();
        assert_eq!(cmd.line, "AUTH CRAM-MD5 =");
    }

    #[test]
    fn a_challenge_that_is_not_base64_cancels_and_later_ones_cancel_again() {
        let mut x = exchange(Mechanism::Login);
        x.command(InitialResponseMode::Never).unwrap();
        assert!(matches!(
            x.on_reply(&reply("334 !!")),
            ClientStep::Cancel(CancelReason::ChallengeNotBase64(_))
        ));
        assert!(x.is_cancelled());
        assert!(matches!(
            x.on_reply(&reply("334 VXNlcm5hbWU6")),
            ClientStep::Cancel(CancelReason::AlreadyCancelled)
        ));
        assert!(matches!(
            x.on_reply(&reply("501 5.7.0 cancelled")),
            ClientStep::Ended
        ));
    }

    #[test]
    fn the_round_limit_ends_a_server_that_never_stops() {
        let mut x = exchange(Mechanism::Login);
        x.command(InitialResponseMode::Never).unwrap();
        let mut answered = 0;
        loop {
            match x.on_reply(&reply("334 ")) {
                ClientStep::TooManyRounds => break,
                _ => answered += 1,
            }
        }
        assert_eq!(answered, MAX_AUTH_ROUNDS);
    }

    #[test]
    fn success_data_is_only_base64_without_an_enhanced_code() {
        assert_eq!(success_data(&reply("235 2.7.0 ok")), None);
        assert_eq!(
            success_data(&reply("235 dj1hYmM=")),
            Some(b"v=abc".to_vec())
        );
        let mut x = exchange(Mechanism::Plain);
        x.command(InitialResponseMode::Auto).unwrap();
        assert!(matches!(
            x.on_reply(&reply("235 2.7.0 ok")),
            ClientStep::Success
        ));
    }
}
