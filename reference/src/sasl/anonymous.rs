//! Anonymous: skeleton, to be implemented.

use super::{
    ClientCredentials, ClientMechanism, Mechanism, SaslError, ServerContext, ServerMechanism,
    ServerStep,
};

/// Rules of the Anonymous mechanism that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnonymousError {
    Unimplemented,
}

#[derive(Debug)]
pub struct AnonymousServer {}

impl AnonymousServer {
    pub fn new(ctx: &ServerContext) -> Self {
        let _ = ctx;

        AnonymousServer {}
    }
}

impl ServerMechanism for AnonymousServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Anonymous
    }
    fn step(&mut self, _input: Option<&[u8]>) -> ServerStep {
        ServerStep::Failure(SaslError::Anonymous(AnonymousError::Unimplemented))
    }
}

#[derive(Debug)]
pub struct AnonymousClient {}

impl AnonymousClient {
    pub fn new(creds: &ClientCredentials) -> Self {
        let _ = creds;

        AnonymousClient {}
    }
}

impl ClientMechanism for AnonymousClient {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Anonymous
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Err(SaslError::Anonymous(AnonymousError::Unimplemented))
    }
    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        Err(SaslError::Anonymous(AnonymousError::Unimplemented))
    }
    fn verify_success(&mut self, _additional: Option<&[u8]>) -> Result<(), SaslError> {
        Err(SaslError::Anonymous(AnonymousError::Unimplemented))
    }
}
