//! ANONYMOUS (RFC 4505): one optional message of trace information, which is not an
//! identity and is never checked against anything.
//!
//! RFC 4505 §3:
//!
//! ```text
//! message   = [ email / token ]
//! TCHAR     = %x20-3F / %x41-7E        ;; ASCII printable except '@'
//!             / UTF8-2 / UTF8-3 / UTF8-4
//! email     = addr-spec                ;; RFC 2822 §3.4.1
//! token     = 1*255TCHAR
//! ```
//!
//! The server reports the authentication identity `anonymous` with no authorization
//! identity; the trace goes to the log. Whether
//! ANONYMOUS may be offered at all is policy (Postfix's `noanonymous`), not decided here.

use super::{
    Authenticated, ClientCredentials, ClientMechanism, Mechanism, SaslError, ServerContext,
    ServerMechanism, ServerStep,
};

/// The identity an ANONYMOUS exchange authenticates as.
pub(crate) const ANONYMOUS_AUTHCID: &str = "anonymous";

/// RFC 4505 §3: at most 255 characters of trace.
pub(crate) const MAX_TRACE_CHARS: usize = 255;

/// Rules of RFC 4505 that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnonymousError {
    /// RFC 4505 §3: the trace is UTF-8.
    InvalidUtf8,
    /// RFC 4505 §3: at most 255 characters.
    TraceTooLong,
    /// RFC 4505 §3: TCHAR and addr-spec exclude control characters (NUL included).
    ControlCharacter,
    /// RFC 4505 §3: a trace with `@` is an addr-spec, `local-part "@" domain`, both
    /// parts non-empty.
    TraceNotEmailOrToken,
    /// The caller gave no client message after the empty challenge.
    MissingResponse,
    /// RFC 4505 §3: "The mechanism consists of a single message from the client to
    /// the server"; the only challenge is the empty one that asks for it.
    UnexpectedChallenge,
    /// The server reported success before the client had sent its message.
    PrematureSuccess,
    /// RFC 4422 §3.6: ANONYMOUS defines no additional data with success.
    UnexpectedSuccessData,
}

fn err(e: AnonymousError) -> SaslError {
    SaslError::Anonymous(e)
}

/// Check RFC 4505 §3's `message` and return the trace as text.
pub(crate) fn parse_trace(message: &[u8]) -> Result<&str, AnonymousError> {
    let text = std::str::from_utf8(message).map_err(|_| AnonymousError::InvalidUtf8)?;
    if text.chars().count() > MAX_TRACE_CHARS {
        return Err(AnonymousError::TraceTooLong);
    }
    if text.chars().any(char::is_control) {
        return Err(AnonymousError::ControlCharacter);
    }
    if let Some(at) = text.rfind('@') {
        let (local, domain) = (&text[..at], &text[at + 1..]);
        if local.is_empty() || domain.is_empty() || domain.contains(' ') {
            return Err(AnonymousError::TraceNotEmailOrToken);
        }
    }
    Ok(text)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Start,
    AwaitTrace,
    Done,
}

#[derive(Debug)]
pub(crate) struct AnonymousServer {
    state: ServerState,
}

impl AnonymousServer {
    pub fn new(ctx: &ServerContext) -> Self {
        let _ = ctx;
        AnonymousServer {
            state: ServerState::Start,
        }
    }

    fn accept(&mut self, message: &[u8]) -> ServerStep {
        self.state = ServerState::Done;
        match parse_trace(message) {
            Ok(trace) => {
                tracing::info!(trace = ?trace, "ANONYMOUS login");
                ServerStep::Success {
                    identity: Authenticated {
                        authcid: ANONYMOUS_AUTHCID.to_owned(),
                        authzid: None,
                    },
                    additional: None,
                }
            }
            Err(e) => ServerStep::Failure(err(e)),
        }
    }
}

impl ServerMechanism for AnonymousServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Anonymous
    }

    fn step(&mut self, input: Option<&[u8]>) -> ServerStep {
        match (self.state, input) {
            (ServerState::Start, None) => {
                self.state = ServerState::AwaitTrace;
                ServerStep::Challenge(Vec::new())
            }
            (ServerState::Start | ServerState::AwaitTrace, Some(message)) => self.accept(message),
            (ServerState::AwaitTrace, None) => {
                self.state = ServerState::Done;
                ServerStep::Failure(err(AnonymousError::MissingResponse))
            }
            (ServerState::Done, _) => ServerStep::Failure(SaslError::ExchangeOver),
        }
    }
}

#[derive(Debug)]
pub(crate) struct AnonymousClient {
    trace: String,
    sent: bool,
}

impl AnonymousClient {
    /// The trace is the credentials' authcid (often an e-mail address), possibly empty.
    pub fn new(creds: &ClientCredentials) -> Self {
        AnonymousClient::with_trace(creds.authcid.clone())
    }

    pub(crate) fn with_trace(trace: impl Into<String>) -> Self {
        AnonymousClient {
            trace: trace.into(),
            sent: false,
        }
    }

    fn message(&mut self) -> Result<Vec<u8>, SaslError> {
        self.sent = true;
        parse_trace(self.trace.as_bytes()).map_err(err)?;
        Ok(self.trace.as_bytes().to_vec())
    }
}

impl ClientMechanism for AnonymousClient {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Anonymous
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        self.message().map(Some)
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.sent || !challenge.is_empty() {
            return Err(err(AnonymousError::UnexpectedChallenge));
        }
        self.message()
    }

    fn verify_success(&mut self, additional: Option<&[u8]>) -> Result<(), SaslError> {
        if !self.sent {
            return Err(err(AnonymousError::PrematureSuccess));
        }
        match additional {
            None => Ok(()),
            Some(_) => Err(err(AnonymousError::UnexpectedSuccessData)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces() {
        assert_eq!(parse_trace(b""), Ok(""));
        assert_eq!(parse_trace(b"sirhc"), Ok("sirhc"));
        assert_eq!(
            parse_trace("abc@example.com".as_bytes()),
            Ok("abc@example.com")
        );
        assert_eq!(parse_trace("caf\u{e9}".as_bytes()), Ok("caf\u{e9}"));
        assert_eq!(parse_trace(b"\xff"), Err(AnonymousError::InvalidUtf8));
        assert_eq!(parse_trace(b"a\0b"), Err(AnonymousError::ControlCharacter));
        assert_eq!(
            parse_trace(b"a\r\nb"),
            Err(AnonymousError::ControlCharacter)
        );
        assert_eq!(
            parse_trace(b"@example.com"),
            Err(AnonymousError::TraceNotEmailOrToken)
        );
        assert_eq!(
            parse_trace(b"abc@"),
            Err(AnonymousError::TraceNotEmailOrToken)
        );
        let max = "\u{e9}".repeat(255);
        assert!(
            parse_trace(max.as_bytes()).is_ok(),
            "255 characters, 510 octets"
        );
        let over = "x".repeat(256);
        assert_eq!(
            parse_trace(over.as_bytes()),
            Err(AnonymousError::TraceTooLong)
        );
    }
}
