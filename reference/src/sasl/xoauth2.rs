//! XOAUTH2, Google's pre-standard bearer-token mechanism (developers.google.com,
//! "OAuth 2.0 Mechanism" for IMAP/SMTP). It has no RFC; its one message is
//!
//! ```text
//! "user=" {user} "^A" "auth=Bearer " {access token} "^A^A"
//! ```
//!
//! On a bad token Google's server answers with a base64 JSON challenge,
//! `{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`, the client
//! sends an empty response, and the server then fails the exchange (`535`).
//!
//! The reference server has no token issuer: it checks the token against the user's
//! stored secret, so a users file stores the bearer token as the password
//! (`alice:{PLAIN}ya29.token`).

use super::credentials::{resolve_user, verify_dummy, verify_plaintext};
use super::oauthbearer::{BearerProblem, OAuthErrorReport, bearer_token, parse_error_challenge};
use super::{
    Authenticated, ClientCredentials, ClientMechanism, Mechanism, SaslError, Secret, ServerContext,
    ServerMechanism, ServerStep,
};

/// Google's error challenge, sent when the token does not verify.
pub const ERROR_CHALLENGE: &[u8] =
    br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;

const SEP: u8 = 0x01;

/// Rules of Google's XOAUTH2 format that a peer can break. "Google" below means the
/// format description in Google's "OAuth 2.0 Mechanism" page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XOAuth2Error {
    /// Google: the message starts with `user=`.
    MissingUserKey,
    /// Google: the user name is not empty and is followed by `^A`.
    EmptyUser,
    /// Google: the user is an e-mail address, UTF-8 text.
    InvalidUtf8,
    /// Google: the user is followed by `^A` and `auth=`.
    MissingAuthKey,
    /// Google: `auth=Bearer <token>` (RFC 6750 §2.1 credentials).
    NotBearerScheme,
    /// RFC 6750 §2.1: the token is a `b64token`.
    BadToken,
    /// Google: the message ends with `^A^A`.
    MissingTerminator,
    /// Google: nothing follows the final `^A^A`.
    TrailingData,
    /// Google: after the error challenge the client sends an empty response.
    ErrorNotAcknowledged,
    /// The caller gave no client message after the empty challenge.
    MissingResponse,
    /// Google: the error challenge is a JSON object with a string `status`.
    MalformedErrorChallenge,
    /// Only one error challenge; the exchange then fails.
    UnexpectedChallenge,
    /// The server reported success before the client had sent its token.
    PrematureSuccess,
    /// XOAUTH2 defines no additional data with success.
    UnexpectedSuccessData,
}

fn err(e: XOAuth2Error) -> SaslError {
    SaslError::XOAuth2(e)
}

/// Parse the XOAUTH2 client message into (user, token).
pub fn parse(message: &[u8]) -> Result<(String, Secret), XOAuth2Error> {
    let Some(rest) = message.strip_prefix(b"user=") else {
        return Err(XOAuth2Error::MissingUserKey);
    };
    let Some(end) = rest.iter().position(|&b| b == SEP) else {
        return Err(XOAuth2Error::MissingAuthKey);
    };
    let (user, rest) = (&rest[..end], &rest[end + 1..]);
    if user.is_empty() {
        return Err(XOAuth2Error::EmptyUser);
    }
    let Ok(user) = std::str::from_utf8(user) else {
        return Err(XOAuth2Error::InvalidUtf8);
    };
    let Some(rest) = rest.strip_prefix(b"auth=") else {
        return Err(XOAuth2Error::MissingAuthKey);
    };
    let Some(end) = rest.iter().position(|&b| b == SEP) else {
        return Err(XOAuth2Error::MissingTerminator);
    };
    let (auth, rest) = (&rest[..end], &rest[end + 1..]);
    match rest {
        [SEP] => {}
        [] => return Err(XOAuth2Error::MissingTerminator),
        [SEP, ..] => return Err(XOAuth2Error::TrailingData),
        _ => return Err(XOAuth2Error::MissingTerminator),
    }
    let token = bearer_token(auth).map_err(|p| match p {
        BearerProblem::NotBearer => XOAuth2Error::NotBearerScheme,
        BearerProblem::BadToken => XOAuth2Error::BadToken,
    })?;
    Ok((user.to_owned(), Secret::new(token.to_vec())))
}

/// Build the XOAUTH2 client message; refuses what [`parse`] would.
pub fn encode(user: &str, token: &[u8]) -> Result<Vec<u8>, XOAuth2Error> {
    let mut out = Vec::with_capacity(user.len() + token.len() + 20);
    out.extend_from_slice(b"user=");
    out.extend_from_slice(user.as_bytes());
    out.push(SEP);
    out.extend_from_slice(b"auth=Bearer ");
    out.extend_from_slice(token);
    out.push(SEP);
    out.push(SEP);
    let (parsed_user, _) = parse(&out)?;
    if parsed_user != user {
        // A `^A` inside the user name would have moved the fields.
        return Err(XOAuth2Error::MissingAuthKey);
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Start,
    AwaitResponse,
    AwaitErrorAck,
    Done,
}

#[derive(Debug)]
pub(crate) struct XOAuth2Server {
    ctx: ServerContext,
    state: ServerState,
}

impl XOAuth2Server {
    pub fn new(ctx: &ServerContext) -> Self {
        XOAuth2Server {
            ctx: ctx.clone(),
            state: ServerState::Start,
        }
    }

    fn verify(&mut self, message: &[u8]) -> ServerStep {
        let (user, token) = match parse(message) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.state = ServerState::Done;
                return ServerStep::Failure(err(e));
            }
        };
        let (name, ok) = match resolve_user(&self.ctx, &user) {
            Some((name, stored)) => {
                let ok = verify_plaintext(&stored, token.expose());
                (Some(name), ok)
            }
            None => (None, verify_dummy(token.expose())),
        };
        match name {
            Some(authcid) if ok => {
                self.state = ServerState::Done;
                ServerStep::Success {
                    identity: Authenticated {
                        authcid,
                        authzid: None,
                    },
                    additional: None,
                }
            }
            _ => {
                self.state = ServerState::AwaitErrorAck;
                ServerStep::Challenge(ERROR_CHALLENGE.to_vec())
            }
        }
    }
}

impl ServerMechanism for XOAuth2Server {
    fn mechanism(&self) -> Mechanism {
        Mechanism::XOAuth2
    }

    fn step(&mut self, input: Option<&[u8]>) -> ServerStep {
        match (self.state, input) {
            (ServerState::Start, None) => {
                self.state = ServerState::AwaitResponse;
                ServerStep::Challenge(Vec::new())
            }
            (ServerState::Start | ServerState::AwaitResponse, Some(message)) => {
                self.verify(message)
            }
            (ServerState::AwaitErrorAck, Some(ack)) => {
                self.state = ServerState::Done;
                if ack.is_empty() {
                    ServerStep::Failure(SaslError::InvalidCredentials)
                } else {
                    ServerStep::Failure(err(XOAuth2Error::ErrorNotAcknowledged))
                }
            }
            (ServerState::AwaitResponse | ServerState::AwaitErrorAck, None) => {
                self.state = ServerState::Done;
                ServerStep::Failure(err(XOAuth2Error::MissingResponse))
            }
            (ServerState::Done, _) => ServerStep::Failure(SaslError::ExchangeOver),
        }
    }
}

/// Client side of XOAUTH2: sends `user=... ^Aauth=Bearer <token> ^A^A`.
#[derive(Debug)]
pub struct XOAuth2Client {
    user: String,
    token: Secret,
    sent: bool,
    error: Option<OAuthErrorReport>,
}

impl XOAuth2Client {
    /// A client for `creds`; the password is the bearer token.
    pub fn new(creds: &ClientCredentials) -> Self {
        XOAuth2Client {
            user: creds.authcid.clone(),
            token: creds.password.clone(),
            sent: false,
            error: None,
        }
    }

    /// The server's JSON error, once it sent one.
    pub fn server_error(&self) -> Option<&OAuthErrorReport> {
        self.error.as_ref()
    }

    fn message(&mut self) -> Result<Vec<u8>, SaslError> {
        self.sent = true;
        encode(&self.user, self.token.expose()).map_err(err)
    }
}

impl ClientMechanism for XOAuth2Client {
    fn mechanism(&self) -> Mechanism {
        Mechanism::XOAuth2
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        self.message().map(Some)
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if !self.sent && challenge.is_empty() {
            return self.message();
        }
        if !self.sent || self.error.is_some() {
            return Err(err(XOAuth2Error::UnexpectedChallenge));
        }
        let report = parse_error_challenge(challenge)
            .ok_or_else(|| err(XOAuth2Error::MalformedErrorChallenge))?;
        self.error = Some(report);
        // Google: "the client should send an empty response" to the error.
        Ok(Vec::new())
    }

    fn verify_success(&mut self, additional: Option<&[u8]>) -> Result<(), SaslError> {
        if self.error.is_some() {
            return Err(SaslError::ServerReportedError(Mechanism::XOAuth2));
        }
        if !self.sent {
            return Err(err(XOAuth2Error::PrematureSuccess));
        }
        match additional {
            None => Ok(()),
            Some(_) => Err(err(XOAuth2Error::UnexpectedSuccessData)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_example_shape() {
        let msg = encode(
            "someuser@example.com",
            b"ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
        )
        .expect("valid");
        assert_eq!(
            msg,
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
        let (user, token) = parse(&msg).expect("parses");
        assert_eq!(user, "someuser@example.com");
        assert!(token.ct_eq(b"ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"));
    }

    #[test]
    fn malformed_messages_name_the_rule() {
        use XOAuth2Error::*;
        let cases: [(&[u8], XOAuth2Error); 9] = [
            (b"", MissingUserKey),
            (b"usr=a\x01auth=Bearer t\x01\x01", MissingUserKey),
            (b"user=\x01auth=Bearer t\x01\x01", EmptyUser),
            (b"user=\xff\x01auth=Bearer t\x01\x01", InvalidUtf8),
            (b"user=a\x01Bearer t\x01\x01", MissingAuthKey),
            (b"user=a\x01auth=Bearer t\x01", MissingTerminator),
            (b"user=a\x01auth=Bearer t\x01\x01\x01", TrailingData),
            (b"user=a\x01auth=Basic t\x01\x01", NotBearerScheme),
            (b"user=a\x01auth=Bearer t t\x01\x01", BadToken),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input).map(|_| ()), Err(expected), "{input:?}");
        }
    }
}
