//! LOGIN (draft-murchison-sasl-login-00): the server prompts for the user name, then
//! for the password, and the client answers each prompt with the bare value.
//!
//! ```text
//! S: Username:        (334 VXNlcm5hbWU6)
//! C: alice
//! S: Password:        (334 UGFzc3dvcmQ6)
//! C: wonderland
//! ```
//!
//! The draft (§2.2) suggests the prompts "User Name" and "Password"; the reference
//! server sends `Username:` and `Password:` because Postfix with Cyrus or Dovecot and
//! most deployed servers do, and some clients match on them. An initial response is
//! taken as the user name, so only the password prompt follows (Python's smtplib
//! sends `AUTH LOGIN <user>`; MailKit issue #216).
//!
//! The client answers by order, never by prompt text (§2.1: "The contents of both
//! challenges are ignored"), so aiosmtpd's `User Name\0` and `Password\0`, or any
//! prompt it cannot recognise, work the same.

use super::credentials::{resolve_user, verify_dummy, verify_plaintext};
use super::{
    Authenticated, ClientCredentials, ClientMechanism, Mechanism, SaslError, Secret, ServerContext,
    ServerMechanism, ServerStep,
};

/// The prompts the reference server sends, as Postfix/Cyrus and Dovecot do.
pub const USERNAME_PROMPT: &[u8] = b"Username:";
/// The second prompt, answered with the password.
pub const PASSWORD_PROMPT: &[u8] = b"Password:";

/// Rules of the LOGIN mechanism that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginError {
    /// draft-murchison-sasl-login §2.2: the first response is the user name; an empty
    /// one names nobody.
    EmptyUsername,
    /// draft-murchison-sasl-login §2: the user name is a UTF-8 string.
    InvalidUtf8,
    /// The caller gave no client message after a prompt.
    MissingResponse,
    /// draft-murchison-sasl-login §2.1: the client answers exactly two challenges.
    UnexpectedChallenge,
    /// The server reported success before the client had sent the password.
    PrematureSuccess,
    /// RFC 4422 §3.6: LOGIN defines no additional data with success.
    UnexpectedSuccessData,
}

fn err(e: LoginError) -> SaslError {
    SaslError::Login(e)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ServerState {
    Start,
    AwaitUsername,
    AwaitPassword { username: String },
    Done,
}

/// Server side of LOGIN: prompts for the user name, then the password.
#[derive(Debug)]
pub struct LoginServer {
    ctx: ServerContext,
    state: ServerState,
}

impl LoginServer {
    /// A server that checks against `ctx`'s credential store.
    pub fn new(ctx: &ServerContext) -> Self {
        LoginServer {
            ctx: ctx.clone(),
            state: ServerState::Start,
        }
    }

    fn take_username(&mut self, input: &[u8]) -> ServerStep {
        if input.is_empty() {
            self.state = ServerState::Done;
            return ServerStep::Failure(err(LoginError::EmptyUsername));
        }
        let Ok(username) = std::str::from_utf8(input) else {
            self.state = ServerState::Done;
            return ServerStep::Failure(err(LoginError::InvalidUtf8));
        };
        self.state = ServerState::AwaitPassword {
            username: username.to_owned(),
        };
        ServerStep::Challenge(PASSWORD_PROMPT.to_vec())
    }

    fn verify(&self, username: &str, password: &[u8]) -> ServerStep {
        // Unknown users are checked against a dummy secret: same work, same variant.
        let (name, ok) = match resolve_user(&self.ctx, username) {
            Some((name, stored)) => {
                let ok = verify_plaintext(&stored, password);
                (Some(name), ok)
            }
            None => (None, verify_dummy(password)),
        };
        match name {
            Some(authcid) if ok => ServerStep::Success {
                identity: Authenticated {
                    authcid,
                    authzid: None,
                },
                additional: None,
            },
            _ => ServerStep::Failure(SaslError::InvalidCredentials),
        }
    }
}

impl ServerMechanism for LoginServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Login
    }

    fn step(&mut self, input: Option<&[u8]>) -> ServerStep {
        let state = std::mem::replace(&mut self.state, ServerState::Done);
        match (state, input) {
            (ServerState::Start, None) => {
                self.state = ServerState::AwaitUsername;
                ServerStep::Challenge(USERNAME_PROMPT.to_vec())
            }
            (ServerState::Start | ServerState::AwaitUsername, Some(username)) => {
                self.take_username(username)
            }
            (ServerState::AwaitPassword { username }, Some(password)) => {
                self.verify(&username, password)
            }
            (ServerState::AwaitUsername | ServerState::AwaitPassword { .. }, None) => {
                ServerStep::Failure(err(LoginError::MissingResponse))
            }
            (ServerState::Done, _) => ServerStep::Failure(SaslError::ExchangeOver),
        }
    }
}

/// Client side of LOGIN: answers the two prompts.
#[derive(Debug)]
pub struct LoginClient {
    username: String,
    password: Secret,
    use_initial_response: bool,
    /// How many of (user name, password) have been sent.
    sent: u8,
}

impl LoginClient {
    /// Without an initial response: `AUTH LOGIN`, then answer both prompts, as swaks
    /// and Thunderbird do. This works with every server.
    pub fn new(creds: &ClientCredentials) -> Self {
        LoginClient {
            username: creds.authcid.clone(),
            password: creds.password.clone(),
            use_initial_response: false,
            sent: 0,
        }
    }

    /// Send the user name on the AUTH line, as Python's smtplib does.
    pub fn with_initial_response(mut self) -> Self {
        self.use_initial_response = true;
        self
    }

    fn next(&mut self) -> Result<Vec<u8>, SaslError> {
        let out = match self.sent {
            0 if self.username.is_empty() => return Err(err(LoginError::EmptyUsername)),
            0 => self.username.as_bytes().to_vec(),
            1 => self.password.expose().to_vec(),
            _ => return Err(err(LoginError::UnexpectedChallenge)),
        };
        self.sent += 1;
        Ok(out)
    }
}

impl ClientMechanism for LoginClient {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Login
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        if self.use_initial_response {
            self.next().map(Some)
        } else {
            Ok(None)
        }
    }

    /// The prompt's text is ignored (draft §2.1); the order decides the answer.
    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        self.next()
    }

    fn verify_success(&mut self, additional: Option<&[u8]>) -> Result<(), SaslError> {
        if self.sent < 2 {
            return Err(err(LoginError::PrematureSuccess));
        }
        match additional {
            None => Ok(()),
            Some(_) => Err(err(LoginError::UnexpectedSuccessData)),
        }
    }
}
