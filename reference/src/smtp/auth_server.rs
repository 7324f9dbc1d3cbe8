//! The server side of one RFC 4954 §4 AUTH exchange, sans IO.
//!
//! One RFC rule, one place: every server that speaks AUTH — the reference server
//! ([`crate::smtp::server`]) and the harness's scripted server role — drives this
//! exchange, so the initial-response rules, the `334` framing, the response limit, the
//! `*` cancel, the empty answer to final server data, the round limit and the AUTH reply
//! codes and texts are written once, here. A caller decides only what surrounds the
//! exchange (which mechanisms it offers, which session state allows AUTH, how it writes
//! and counts replies) and what to make of each [`ExchangeStep`]; never how the protocol
//! works. Scenarios that break the protocol on purpose send raw replies instead of
//! forking this code.
//!
//! ```text
//! initial_response(mech, ir) ──► Err ──► reply 501 (not base64 / server-first)
//!        │ Ok
//!        ▼
//! ServerExchange::start ──► Challenge ──► "334 …" ──► on_response(line) ──► …
//!                           Success   ──► 235
//!                           Failure   ──► error.reply() (501 / 535 / 454 / 500)
//! ```

use std::fmt;

use crate::sasl::{Authenticated, Mechanism, SaslError, ServerMechanism, ServerStep};
use crate::smtp::auth_client::MAX_AUTH_ROUNDS;
use crate::smtp::command::InitialResponse;
use crate::smtp::sasl_frame::{self, Base64Error, ClientMessage};

/// Every reply a server gives to the AUTH command or its exchange (RFC 4954 §4, §6),
/// with the texts Postfix uses where Postfix and the RFC agree. The texts exist only
/// here; servers format them with [`AuthReply::code`] and [`AuthReply::text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthReply {
    /// §4: the exchange succeeded.
    Success,
    /// §4: "If the client wishes to cancel ... the server MUST reject the AUTH command
    /// by sending a 501 reply."
    Cancelled,
    /// §4: a response or initial response that is not base64 "MUST" get a 501.
    CannotDecode,
    /// The mechanism could not parse the client's message.
    Malformed,
    /// §4: an initial response to a server-first mechanism "MUST" get a 501 and
    /// "SHOULD" carry 5.7.0.
    InitialResponseNotAllowed,
    /// §4: "500 5.5.6 Authentication Exchange line is too long".
    LineTooLong,
    /// §6: bad credentials, without saying which part was wrong.
    Failed,
    /// §6: the server cannot complete the exchange now (its own problem).
    TemporaryFailure,
    /// §6: the mechanism is offered only under TLS.
    EncryptionRequired,
    /// §4: "If the requested authentication mechanism is not supported, the server
    /// rejects the AUTH command with a 504 reply."
    UnrecognizedType,
    /// §4: "After an AUTH command has been successfully completed, no more AUTH
    /// commands may be issued in the same session."
    AlreadyAuthenticated,
    /// §4: "The AUTH command is not permitted during a mail transaction."
    InTransaction,
    /// AUTH is a service extension: it exists only after EHLO (RFC 5321 §2.2.1).
    SendEhloFirst,
    /// The server has no mechanism to offer this client.
    NotEnabled,
    /// §6: a command that needs an authenticated client.
    AuthenticationRequired,
}

impl AuthReply {
    /// The reply code.
    pub const fn code(self) -> u16 {
        match self {
            AuthReply::Success => 235,
            AuthReply::Cancelled
            | AuthReply::CannotDecode
            | AuthReply::Malformed
            | AuthReply::InitialResponseNotAllowed => 501,
            AuthReply::LineTooLong => 500,
            AuthReply::Failed => 535,
            AuthReply::TemporaryFailure => 454,
            AuthReply::EncryptionRequired => 538,
            AuthReply::UnrecognizedType => 504,
            AuthReply::AlreadyAuthenticated
            | AuthReply::InTransaction
            | AuthReply::SendEhloFirst
            | AuthReply::NotEnabled => 503,
            AuthReply::AuthenticationRequired => 530,
        }
    }

    /// The text after the code, enhanced status code first.
    pub const fn text(self) -> &'static str {
        match self {
            AuthReply::Success => "2.7.0 Authentication successful",
            AuthReply::Cancelled => "5.7.0 Authentication aborted",
            AuthReply::CannotDecode => "5.5.2 Cannot decode response",
            AuthReply::Malformed => "5.5.2 Error: malformed authentication message",
            AuthReply::InitialResponseNotAllowed => {
                "5.7.0 Initial response not allowed for this mechanism"
            }
            AuthReply::LineTooLong => "5.5.6 Authentication Exchange line is too long",
            AuthReply::Failed => "5.7.8 Error: authentication failed",
            AuthReply::TemporaryFailure => "4.7.0 Temporary authentication failure",
            AuthReply::EncryptionRequired => {
                "5.7.11 Encryption required for requested authentication mechanism"
            }
            AuthReply::UnrecognizedType => "5.5.4 Unrecognized authentication type",
            AuthReply::AlreadyAuthenticated => "5.5.1 Error: already authenticated",
            AuthReply::InTransaction => "5.5.1 Error: MAIL transaction in progress",
            AuthReply::SendEhloFirst => "5.5.1 Error: send EHLO first",
            AuthReply::NotEnabled => "5.5.1 Error: authentication not enabled",
            AuthReply::AuthenticationRequired => "5.7.0 Authentication required",
        }
    }

    /// The reply as it goes on the wire, CRLF included (single line).
    pub fn wire(self) -> Vec<u8> {
        format!("{} {}\r\n", self.code(), self.text()).into_bytes()
    }
}

/// Why an exchange ended without success. Each variant names the rule; the
/// [`reply`](ExchangeError::reply) is what the client is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangeError {
    /// RFC 4954 §4: a response line longer than the server's limit (12288 octets by
    /// default, Postfix's `smtpd_sasl_response_limit`).
    ResponseTooLong,
    /// RFC 4954 §4: a response that is neither base64 nor `*`.
    ResponseNotBase64(Base64Error),
    /// RFC 4954 §4: an initial response that is neither base64 nor `=`.
    InitialResponseNotBase64(Base64Error),
    /// RFC 4954 §4: an initial response to a mechanism where the server speaks first.
    InitialResponseToServerFirst(Mechanism),
    /// RFC 4954 §4: the client answered the server's final data (a `334` after the
    /// mechanism succeeded) with something other than an empty line.
    FinalResponseNotEmpty,
    /// The mechanism's verdict, `*` (cancel) included.
    Mechanism(SaslError),
    /// More than [`MAX_AUTH_ROUNDS`] challenges: the server's own mechanism loops.
    TooManyRounds,
}

impl ExchangeError {
    /// What the server answers.
    pub fn reply(&self) -> AuthReply {
        match self {
            ExchangeError::ResponseTooLong => AuthReply::LineTooLong,
            ExchangeError::ResponseNotBase64(_) | ExchangeError::InitialResponseNotBase64(_) => {
                AuthReply::CannotDecode
            }
            ExchangeError::InitialResponseToServerFirst(_) => AuthReply::InitialResponseNotAllowed,
            ExchangeError::FinalResponseNotEmpty => AuthReply::Malformed,
            ExchangeError::Mechanism(SaslError::Cancelled) => AuthReply::Cancelled,
            // The stored secret cannot serve this mechanism: the server's problem,
            // temporary from the client's point of view (§6, 454 4.7.0).
            ExchangeError::Mechanism(SaslError::SchemeUnusable { .. })
            | ExchangeError::TooManyRounds => AuthReply::TemporaryFailure,
            ExchangeError::Mechanism(e) if e.is_malformed() => AuthReply::Malformed,
            ExchangeError::Mechanism(_) => AuthReply::Failed,
        }
    }

    /// The reason a server log line gives: the rule's name, never a payload.
    pub(crate) fn log_reason(&self) -> String {
        match self {
            ExchangeError::ResponseTooLong => "AuthLineTooLong".into(),
            ExchangeError::ResponseNotBase64(_) | ExchangeError::InitialResponseNotBase64(_) => {
                "InvalidBase64".into()
            }
            ExchangeError::InitialResponseToServerFirst(m) => {
                SaslError::InitialResponseToServerFirst(*m).to_string()
            }
            ExchangeError::FinalResponseNotEmpty => SaslError::ExchangeOver.to_string(),
            ExchangeError::Mechanism(e) => e.to_string(),
            ExchangeError::TooManyRounds => "TooManyRounds".into(),
        }
    }
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExchangeError::ResponseTooLong => f.write_str("the response line is too long"),
            ExchangeError::ResponseNotBase64(e) => write!(f, "the response is not base64 ({e})"),
            ExchangeError::InitialResponseNotBase64(e) => {
                write!(f, "the initial response is not base64 ({e})")
            }
            ExchangeError::InitialResponseToServerFirst(m) => {
                write!(
                    f,
                    "an initial response to {m}, where the server speaks first"
                )
            }
            ExchangeError::FinalResponseNotEmpty => {
                f.write_str("the answer to the server's final data is not an empty line")
            }
            ExchangeError::Mechanism(e) => write!(f, "{e}"),
            ExchangeError::TooManyRounds => {
                write!(f, "more than {MAX_AUTH_ROUNDS} challenges")
            }
        }
    }
}

impl std::error::Error for ExchangeError {}

/// The initial response of `AUTH mechanism [text]`, judged before a mechanism instance
/// exists (so a refused AUTH line costs the server no nonce). `ir` is the argument as
/// the command parser read it: base64, or `=` for an empty response.
pub fn initial_response(
    mechanism: Mechanism,
    ir: Option<&InitialResponse>,
) -> Result<Option<Vec<u8>>, ExchangeError> {
    let text = match ir {
        None => return Ok(None),
        Some(InitialResponse::Empty) => &b"="[..],
        Some(InitialResponse::Base64(t)) => t.as_bytes(),
    };
    let data = sasl_frame::decode_initial_response(text)
        .map_err(ExchangeError::InitialResponseNotBase64)?;
    // RFC 2831 §2.2: a DIGEST-MD5 client that authenticated before may open with a
    // digest-response ("subsequent authentication"). A server that does not keep that
    // state "sends a digest-challenge, and authentication proceeds as in initial
    // authentication" (§2.2.1), as Cyrus and Dovecot do; Postfix's own client relies on
    // it when it reuses a connection.
    if mechanism == Mechanism::DigestMd5 {
        return Ok(None);
    }
    if mechanism.server_first() {
        return Err(ExchangeError::InitialResponseToServerFirst(mechanism));
    }
    Ok(Some(data))
}

/// What the server does next.
#[derive(Debug)]
pub enum ExchangeStep {
    /// Send `334 `, this base64 text and CRLF (the space even for an empty challenge:
    /// §4 `"334" SP [base64]`), then pass the client's next line to
    /// [`ServerExchange::on_response`].
    Challenge(String),
    /// The client authenticated: answer [`AuthReply::Success`] (or a scripted `235`).
    Success(Authenticated),
    /// The exchange is over: answer [`ExchangeError::reply`].
    Failure(ExchangeError),
}

#[derive(Debug)]
enum Phase {
    /// Waiting for a response line to the last `334`.
    Exchange,
    /// The mechanism succeeded and its final data went out in a `334`; the client
    /// must answer with an empty line before the `235` (RFC 4954 §4).
    AwaitFinalAck(Authenticated),
    /// Success or failure was given; nothing more is taken.
    Over,
}

/// One AUTH exchange, server side: the mechanism instance, the phase and the rounds.
#[derive(Debug)]
pub struct ServerExchange {
    mech: Box<dyn ServerMechanism>,
    phase: Phase,
    rounds: usize,
    response_limit: usize,
}

impl ServerExchange {
    /// An exchange for this mechanism instance. `response_limit` is the longest
    /// response line in octets, CRLF excluded (RFC 4954 §4: at least 12288).
    pub fn new(mech: Box<dyn ServerMechanism>, response_limit: usize) -> ServerExchange {
        ServerExchange {
            mech,
            phase: Phase::Exchange,
            rounds: 0,
            response_limit,
        }
    }

    /// The mechanism in use.
    pub fn mechanism(&self) -> Mechanism {
        self.mech.mechanism()
    }

    /// Whether the next response must be the empty answer to the server's final data.
    pub fn awaits_final_ack(&self) -> bool {
        matches!(self.phase, Phase::AwaitFinalAck(_))
    }

    /// The first step, with the initial response from [`initial_response`].
    pub fn start(&mut self, initial: Option<&[u8]>) -> ExchangeStep {
        let step = self.mech.step(initial);
        self.after(step)
    }

    /// A response line that the reader cut because it went past the limit.
    pub(crate) fn on_overlong_response(&mut self) -> ExchangeStep {
        self.fail(ExchangeError::ResponseTooLong)
    }

    /// The client's line after a `334`, without its CRLF.
    pub fn on_response(&mut self, line: &[u8]) -> ExchangeStep {
        if line.len() > self.response_limit {
            return self.on_overlong_response();
        }
        let data = match sasl_frame::decode_response(line) {
            Ok(ClientMessage::Cancel) => {
                return self.fail(ExchangeError::Mechanism(SaslError::Cancelled));
            }
            Ok(ClientMessage::Data(d)) => d,
            Err(e) => return self.fail(ExchangeError::ResponseNotBase64(e)),
        };
        match std::mem::replace(&mut self.phase, Phase::Over) {
            Phase::AwaitFinalAck(identity) if data.is_empty() => ExchangeStep::Success(identity),
            Phase::AwaitFinalAck(_) => self.fail(ExchangeError::FinalResponseNotEmpty),
            Phase::Exchange => {
                self.phase = Phase::Exchange;
                let step = self.mech.step(Some(&data));
                self.after(step)
            }
            Phase::Over => self.fail(ExchangeError::Mechanism(SaslError::ExchangeOver)),
        }
    }

    fn fail(&mut self, e: ExchangeError) -> ExchangeStep {
        self.phase = Phase::Over;
        ExchangeStep::Failure(e)
    }

    fn challenge(&mut self, data: &[u8], next: Phase) -> ExchangeStep {
        self.rounds += 1;
        if self.rounds > MAX_AUTH_ROUNDS {
            return self.fail(ExchangeError::TooManyRounds);
        }
        self.phase = next;
        ExchangeStep::Challenge(sasl_frame::encode_challenge(data))
    }

    fn after(&mut self, step: ServerStep) -> ExchangeStep {
        match step {
            ServerStep::Challenge(data) => self.challenge(&data, Phase::Exchange),
            ServerStep::Success {
                identity,
                additional: Some(data),
            } => self.challenge(&data, Phase::AwaitFinalAck(identity)),
            ServerStep::Success {
                identity,
                additional: None,
            } => {
                self.phase = Phase::Over;
                ExchangeStep::Success(identity)
            }
            ServerStep::Failure(e) => self.fail(ExchangeError::Mechanism(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::credentials::MemoryStore;
    use crate::sasl::{self, SeededRandom, ServerContext};
    use crate::smtp::line::AUTH_LINE_LIMIT;
    use std::sync::Arc;

    fn exchange(m: Mechanism) -> ServerExchange {
        let mut store = MemoryStore::default();
        store.insert_plain("alice", "wonderland");
        let ctx = ServerContext {
            hostname: "mx.example".into(),
            realm: None,
            external_identity: None,
            credentials: Arc::new(store),
        };
        let mut rng = SeededRandom::from_seed(7);
        ServerExchange::new(sasl::server(m, &ctx, &mut rng), AUTH_LINE_LIMIT)
    }

    #[test]
    fn each_reply_text_starts_with_an_enhanced_code_of_the_reply_class() {
        use AuthReply::*;
        for r in [
            Success,
            Cancelled,
            CannotDecode,
            Malformed,
            InitialResponseNotAllowed,
            LineTooLong,
            Failed,
            TemporaryFailure,
            EncryptionRequired,
            UnrecognizedType,
            AlreadyAuthenticated,
            InTransaction,
            SendEhloFirst,
            NotEnabled,
            AuthenticationRequired,
        ] {
            let class = char::from(b'0' + (r.code() / 100) as u8);
            assert!(r.text().starts_with(class), "{r:?}: {}", r.text());
        }
        assert_eq!(Cancelled.wire(), b"501 5.7.0 Authentication aborted\r\n");
    }

    fn b64(text: &str) -> InitialResponse {
        InitialResponse::Base64(text.to_owned())
    }

    #[test]
    fn initial_response_rules() {
        assert_eq!(initial_response(Mechanism::Plain, None), Ok(None));
        assert_eq!(
            initial_response(Mechanism::Plain, Some(&InitialResponse::Empty)),
            Ok(Some(Vec::new()))
        );
        assert!(matches!(
            initial_response(Mechanism::Plain, Some(&b64("QQ"))),
            Err(ExchangeError::InitialResponseNotBase64(_))
        ));
        let e = initial_response(Mechanism::CramMd5, Some(&b64("QUJD"))).unwrap_err();
        assert_eq!(
            e,
            ExchangeError::InitialResponseToServerFirst(Mechanism::CramMd5)
        );
        assert_eq!(e.reply(), AuthReply::InitialResponseNotAllowed);
        // RFC 2831 §2.2.1: a subsequent-authentication attempt starts over.
        assert_eq!(
            initial_response(Mechanism::DigestMd5, Some(&b64("QUJD"))),
            Ok(None)
        );
    }

    #[test]
    fn plain_with_initial_response_succeeds_at_once() {
        let mut x = exchange(Mechanism::Plain);
        let ir =
            initial_response(Mechanism::Plain, Some(&b64("AGFsaWNlAHdvbmRlcmxhbmQ="))).unwrap();
        match x.start(ir.as_deref()) {
            ExchangeStep::Success(id) => assert_eq!(id.authcid, "alice"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            x.on_response(b""),
            ExchangeStep::Failure(ExchangeError::Mechanism(SaslError::ExchangeOver))
        ));
    }

    #[test]
    fn cancel_bad_base64_and_long_lines_end_the_exchange_with_their_replies() {
        let mut x = exchange(Mechanism::Login);
        assert!(matches!(x.start(None), ExchangeStep::Challenge(_)));
        match x.on_response(b"*") {
            ExchangeStep::Failure(e) => assert_eq!(e.reply(), AuthReply::Cancelled),
            other => panic!("{other:?}"),
        }
        let mut x = exchange(Mechanism::Login);
        x.start(None);
        match x.on_response(b"not base64!") {
            ExchangeStep::Failure(e) => {
                assert!(matches!(e, ExchangeError::ResponseNotBase64(_)));
                assert_eq!(e.reply(), AuthReply::CannotDecode);
                assert_eq!(e.log_reason(), "InvalidBase64");
            }
            other => panic!("{other:?}"),
        }
        let mut x = exchange(Mechanism::Login);
        x.start(None);
        let long = vec![b'A'; AUTH_LINE_LIMIT + 4];
        match x.on_response(&long) {
            ExchangeStep::Failure(e) => assert_eq!(e.reply(), AuthReply::LineTooLong),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn login_wrong_password_gets_535_and_right_one_235() {
        for (password, ok) in [("wonderland", true), ("looking-glass", false)] {
            let mut x = exchange(Mechanism::Login);
            assert_eq!(
                format!("{:?}", x.start(None)),
                format!(
                    "Challenge({:?})",
                    sasl_frame::encode_challenge(b"Username:")
                )
            );
            let user = sasl_frame::encode_response(b"alice");
            assert!(matches!(
                x.on_response(user.as_bytes()),
                ExchangeStep::Challenge(_)
            ));
            let pass = sasl_frame::encode_response(password.as_bytes());
            match (x.on_response(pass.as_bytes()), ok) {
                (ExchangeStep::Success(id), true) => assert_eq!(id.authcid, "alice"),
                (ExchangeStep::Failure(e), false) => assert_eq!(e.reply(), AuthReply::Failed),
                (other, _) => panic!("{other:?}"),
            }
        }
    }
}
