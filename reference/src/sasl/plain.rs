//! PLAIN (RFC 4616): one client message, `[authzid] NUL authcid NUL passwd`.
//!
//! RFC 4616 §2:
//!
//! ```text
//! message   = [authzid] UTF8NUL authcid UTF8NUL passwd
//! authcid   = 1*SAFE ; MUST accept up to 255 octets
//! authzid   = 1*SAFE ; MUST accept up to 255 octets
//! passwd    = 1*SAFE ; MUST accept up to 255 octets
//! UTF8NUL   = %x00 ; UTF-8 encoded NUL character
//! SAFE      = UTF1 / UTF2 / UTF3 / UTF4
//!             ;; any UTF-8 encoded Unicode character except NUL
//! ```
//!
//! The reference accepts exactly the 1..=255 octets the RFC requires every server to
//! accept, and no more: that bounds what it stores and flags clients that rely on a
//! server's generosity. No SASLprep (RFC 4013) is applied; octets compare as sent.
//!
//! With no initial response the server sends an empty challenge (`334 `), as Postfix,
//! Dovecot and aiosmtpd do, and the next message is the credentials.

use super::credentials::{resolve_user, verify_dummy, verify_plaintext};
use super::{
    Authenticated, ClientCredentials, ClientMechanism, Mechanism, SaslError, Secret, ServerContext,
    ServerMechanism, ServerStep,
};

/// RFC 4616 §2: every field is at most this long for the reference.
pub(crate) const MAX_FIELD_OCTETS: usize = 255;

/// Rules of RFC 4616 that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlainError {
    /// RFC 4616 §2: the message is UTF-8 ("SAFE" characters).
    InvalidUtf8,
    /// RFC 4616 §2: the message has two UTF8NUL separators; fewer were found.
    MissingSeparator,
    /// RFC 4616 §2: no field may contain NUL ("SAFE" excludes it); a third NUL was found.
    NulInField,
    /// RFC 4616 §2: `authcid = 1*SAFE`.
    EmptyAuthcid,
    /// RFC 4616 §2: `passwd = 1*SAFE`.
    EmptyPassword,
    /// RFC 4616 §2: authzid longer than the 255 octets a server must accept.
    AuthzidTooLong,
    /// RFC 4616 §2: authcid longer than the 255 octets a server must accept.
    AuthcidTooLong,
    /// RFC 4616 §2: passwd longer than the 255 octets a server must accept.
    PasswordTooLong,
    /// The caller gave no client message after the empty challenge.
    MissingResponse,
    /// RFC 4616 §2: "The mechanism consists of a single message ... from the client
    /// to the server"; the only challenge a server may send is the empty one that
    /// asks for it.
    UnexpectedChallenge,
    /// The server reported success before the client had sent its credentials.
    PrematureSuccess,
    /// RFC 4422 §3.6: PLAIN defines no additional data with success.
    UnexpectedSuccessData,
}

fn err(e: PlainError) -> SaslError {
    SaslError::Plain(e)
}

/// A parsed PLAIN message. `Debug` hides the password.
#[derive(Debug, Clone)]
pub struct PlainMessage {
    /// Empty when the client sent none.
    pub authzid: String,
    /// The authentication identity (RFC 4616 §2 `authcid`).
    pub authcid: String,
    /// The `passwd` field.
    pub password: Secret,
}

impl PartialEq for PlainMessage {
    fn eq(&self, other: &PlainMessage) -> bool {
        self.authzid == other.authzid
            && self.authcid == other.authcid
            && self.password.ct_eq(other.password.expose())
    }
}
impl Eq for PlainMessage {}

/// Parse RFC 4616 §2's `message`, rejecting anything the ABNF does not produce.
pub fn parse(message: &[u8]) -> Result<PlainMessage, PlainError> {
    let mut parts = message.splitn(3, |&b| b == 0);
    let authzid = parts.next().unwrap_or_default();
    let (Some(authcid), Some(password)) = (parts.next(), parts.next()) else {
        return Err(PlainError::MissingSeparator);
    };
    if password.contains(&0) {
        return Err(PlainError::NulInField);
    }
    if authcid.is_empty() {
        return Err(PlainError::EmptyAuthcid);
    }
    if password.is_empty() {
        return Err(PlainError::EmptyPassword);
    }
    if authzid.len() > MAX_FIELD_OCTETS {
        return Err(PlainError::AuthzidTooLong);
    }
    if authcid.len() > MAX_FIELD_OCTETS {
        return Err(PlainError::AuthcidTooLong);
    }
    if password.len() > MAX_FIELD_OCTETS {
        return Err(PlainError::PasswordTooLong);
    }
    let (Ok(authzid), Ok(authcid)) = (std::str::from_utf8(authzid), std::str::from_utf8(authcid))
    else {
        return Err(PlainError::InvalidUtf8);
    };
    if std::str::from_utf8(password).is_err() {
        return Err(PlainError::InvalidUtf8);
    }
    Ok(PlainMessage {
        authzid: authzid.to_owned(),
        authcid: authcid.to_owned(),
        password: Secret::new(password.to_vec()),
    })
}

/// Build RFC 4616 §2's `message`; refuses what [`parse`] would refuse.
pub fn encode(authzid: &str, authcid: &str, password: &[u8]) -> Result<Vec<u8>, PlainError> {
    let mut out = Vec::with_capacity(authzid.len() + authcid.len() + password.len() + 2);
    out.extend_from_slice(authzid.as_bytes());
    out.push(0);
    out.extend_from_slice(authcid.as_bytes());
    out.push(0);
    out.extend_from_slice(password);
    if authzid.contains('\0') || authcid.contains('\0') {
        return Err(PlainError::NulInField);
    }
    parse(&out)?;
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Start,
    /// The empty challenge went out; the credentials come next.
    AwaitCredentials,
    Done,
}

/// Server side of PLAIN (RFC 4616): one message, checked against the store.
#[derive(Debug)]
pub struct PlainServer {
    ctx: ServerContext,
    state: ServerState,
}

impl PlainServer {
    /// A server that checks against `ctx`'s credential store.
    pub fn new(ctx: &ServerContext) -> Self {
        PlainServer {
            ctx: ctx.clone(),
            state: ServerState::Start,
        }
    }

    fn verify(&self, message: &[u8]) -> ServerStep {
        let msg = match parse(message) {
            Ok(msg) => msg,
            Err(e) => return ServerStep::Failure(err(e)),
        };
        // An unknown user is checked against a dummy secret, so both cases do the same
        // work and end in the same variant (RFC 4954 §6).
        let (name, ok) = match resolve_user(&self.ctx, &msg.authcid) {
            Some((name, stored)) => {
                let ok = verify_plaintext(&stored, msg.password.expose());
                (Some(name), ok)
            }
            None => (None, verify_dummy(msg.password.expose())),
        };
        let Some(authcid) = name.filter(|_| ok) else {
            return ServerStep::Failure(SaslError::InvalidCredentials);
        };
        // RFC 4616 §2: the server "MUST ... verify that the authcid is permitted to act
        // as the authzid". The reference permits acting only as oneself (the name as
        // typed or as found in the store); RFC 4616 §4's second example is the refusal.
        if !msg.authzid.is_empty() && msg.authzid != msg.authcid && msg.authzid != authcid {
            return ServerStep::Failure(SaslError::AuthzidNotPermitted);
        }
        ServerStep::Success {
            identity: Authenticated {
                authcid,
                authzid: (!msg.authzid.is_empty()).then_some(msg.authzid),
            },
            additional: None,
        }
    }
}

impl ServerMechanism for PlainServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Plain
    }

    fn step(&mut self, input: Option<&[u8]>) -> ServerStep {
        match (self.state, input) {
            (ServerState::Start, None) => {
                self.state = ServerState::AwaitCredentials;
                ServerStep::Challenge(Vec::new())
            }
            (ServerState::Start | ServerState::AwaitCredentials, Some(message)) => {
                self.state = ServerState::Done;
                self.verify(message)
            }
            (ServerState::AwaitCredentials, None) => {
                self.state = ServerState::Done;
                ServerStep::Failure(err(PlainError::MissingResponse))
            }
            (ServerState::Done, _) => ServerStep::Failure(SaslError::ExchangeOver),
        }
    }
}

/// Client side of PLAIN (RFC 4616): sends `authzid NUL authcid NUL passwd`.
#[derive(Debug)]
pub struct PlainClient {
    authzid: String,
    authcid: String,
    password: Secret,
    use_initial_response: bool,
    sent: bool,
}

impl PlainClient {
    /// A client for `creds`, sending its message as the initial response.
    pub fn new(creds: &ClientCredentials) -> Self {
        PlainClient {
            authzid: creds.authzid.clone().unwrap_or_default(),
            authcid: creds.authcid.clone(),
            password: creds.password.clone(),
            use_initial_response: true,
            sent: false,
        }
    }

    /// Wait for the server's empty challenge instead of sending an initial response,
    /// as gsasl does.
    pub fn without_initial_response(mut self) -> Self {
        self.use_initial_response = false;
        self
    }

    fn message(&mut self) -> Result<Vec<u8>, SaslError> {
        self.sent = true;
        encode(&self.authzid, &self.authcid, self.password.expose()).map_err(err)
    }
}

impl ClientMechanism for PlainClient {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Plain
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        if self.use_initial_response {
            self.message().map(Some)
        } else {
            Ok(None)
        }
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.sent || !challenge.is_empty() {
            return Err(err(PlainError::UnexpectedChallenge));
        }
        self.message()
    }

    fn verify_success(&mut self, additional: Option<&[u8]>) -> Result<(), SaslError> {
        if !self.sent {
            return Err(err(PlainError::PrematureSuccess));
        }
        match additional {
            None => Ok(()),
            Some(_) => Err(err(PlainError::UnexpectedSuccessData)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_what_the_abnf_does_not_produce() {
        let long = "x".repeat(256);
        let cases: Vec<(Vec<u8>, PlainError)> = vec![
            (b"".to_vec(), PlainError::MissingSeparator),
            (b"tim".to_vec(), PlainError::MissingSeparator),
            (b"\0tim".to_vec(), PlainError::MissingSeparator),
            (b"\0tim\0pass\0word".to_vec(), PlainError::NulInField),
            (b"\0\0pass".to_vec(), PlainError::EmptyAuthcid),
            (b"\0tim\0".to_vec(), PlainError::EmptyPassword),
            (b"\0tim\0\xff\xfe".to_vec(), PlainError::InvalidUtf8),
            (b"\0\xc3\0pw".to_vec(), PlainError::InvalidUtf8),
            (
                format!("{long}\0tim\0pw").into_bytes(),
                PlainError::AuthzidTooLong,
            ),
            (
                format!("\0{long}\0pw").into_bytes(),
                PlainError::AuthcidTooLong,
            ),
            (
                format!("\0tim\0{long}").into_bytes(),
                PlainError::PasswordTooLong,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(&input), Err(expected), "{input:?}");
        }
        let max = "y".repeat(255);
        let ok = parse(format!("{max}\0{max}\0{max}").as_bytes()).expect("255 octets each");
        assert_eq!(ok.authcid.len(), 255);
    }

    #[test]
    fn message_debug_hides_password() {
        let msg = parse(b"\0tim\0tanstaaftanstaaf").expect("valid");
        assert!(!format!("{msg:?}").contains("tanstaaf"));
    }
}
