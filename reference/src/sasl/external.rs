//! EXTERNAL (RFC 4422 Appendix A): the identity comes from outside SASL, here the
//! TLS client certificate; the client's one message is an authorization identity,
//! empty to mean "the identity you already know".
//!
//! RFC 4422 A.1: "The client sends an initial response that is the UTF-8 encoding of
//! the requested authorization identity string. This response is non-empty when the
//! client is requesting to act as the identity represented in the (non-empty) string.
//! This response is empty when the client is requesting to act as the identity the
//! server associated with its authentication credentials."
//!
//! The reference permits an authzid only when it equals the external identity.

use super::{
    Authenticated, ClientCredentials, ClientMechanism, Mechanism, SaslError, ServerContext,
    ServerMechanism, ServerStep,
};

/// Rules of RFC 4422 Appendix A that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalError {
    /// RFC 4422 A.1: the authzid is a UTF-8 string.
    InvalidUtf8,
    /// RFC 4422 §4 (identity strings are UTF-8 without NUL): no NUL in the authzid.
    NulInAuthzid,
    /// The caller gave no client message after the empty challenge.
    MissingResponse,
    /// RFC 4422 A.1: one message from the client; the only challenge is the empty one.
    UnexpectedChallenge,
    /// The server reported success before the client had sent its message.
    PrematureSuccess,
    /// RFC 4422 A.1: no additional data with success.
    UnexpectedSuccessData,
}

fn err(e: ExternalError) -> SaslError {
    SaslError::External(e)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Start,
    AwaitAuthzid,
    Done,
}

#[derive(Debug)]
pub(crate) struct ExternalServer {
    identity: Option<String>,
    state: ServerState,
}

impl ExternalServer {
    pub fn new(ctx: &ServerContext) -> Self {
        ExternalServer {
            identity: ctx.external_identity.clone(),
            state: ServerState::Start,
        }
    }

    fn accept(&mut self, message: &[u8]) -> ServerStep {
        self.state = ServerState::Done;
        let Some(identity) = self.identity.clone() else {
            return ServerStep::Failure(SaslError::NoExternalIdentity);
        };
        if message.contains(&0) {
            return ServerStep::Failure(err(ExternalError::NulInAuthzid));
        }
        let Ok(authzid) = std::str::from_utf8(message) else {
            return ServerStep::Failure(err(ExternalError::InvalidUtf8));
        };
        if !authzid.is_empty() && authzid != identity {
            return ServerStep::Failure(SaslError::AuthzidNotPermitted);
        }
        ServerStep::Success {
            identity: Authenticated {
                authcid: identity,
                authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
            },
            additional: None,
        }
    }
}

impl ServerMechanism for ExternalServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::External
    }

    fn step(&mut self, input: Option<&[u8]>) -> ServerStep {
        match (self.state, input) {
            // Without an external identity there is nothing to ask the client for.
            (ServerState::Start, None) if self.identity.is_none() => {
                self.state = ServerState::Done;
                ServerStep::Failure(SaslError::NoExternalIdentity)
            }
            (ServerState::Start, None) => {
                self.state = ServerState::AwaitAuthzid;
                ServerStep::Challenge(Vec::new())
            }
            (ServerState::Start | ServerState::AwaitAuthzid, Some(message)) => self.accept(message),
            (ServerState::AwaitAuthzid, None) => {
                self.state = ServerState::Done;
                ServerStep::Failure(err(ExternalError::MissingResponse))
            }
            (ServerState::Done, _) => ServerStep::Failure(SaslError::ExchangeOver),
        }
    }
}

#[derive(Debug)]
pub(crate) struct ExternalClient {
    authzid: String,
    sent: bool,
}

impl ExternalClient {
    /// Sends the credentials' authzid, or an empty message (sent as `=`) to act as
    /// the identity the certificate established.
    pub fn new(creds: &ClientCredentials) -> Self {
        ExternalClient {
            authzid: creds.authzid.clone().unwrap_or_default(),
            sent: false,
        }
    }

    fn message(&mut self) -> Result<Vec<u8>, SaslError> {
        self.sent = true;
        if self.authzid.contains('\0') {
            return Err(err(ExternalError::NulInAuthzid));
        }
        Ok(self.authzid.as_bytes().to_vec())
    }
}

impl ClientMechanism for ExternalClient {
    fn mechanism(&self) -> Mechanism {
        Mechanism::External
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        self.message().map(Some)
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.sent || !challenge.is_empty() {
            return Err(err(ExternalError::UnexpectedChallenge));
        }
        self.message()
    }

    fn verify_success(&mut self, additional: Option<&[u8]>) -> Result<(), SaslError> {
        if !self.sent {
            return Err(err(ExternalError::PrematureSuccess));
        }
        match additional {
            None => Ok(()),
            Some(_) => Err(err(ExternalError::UnexpectedSuccessData)),
        }
    }
}
