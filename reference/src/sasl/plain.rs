//! Plain: skeleton, to be implemented.

use super::{
    ClientCredentials, ClientMechanism, Mechanism, SaslError, ServerContext, ServerMechanism,
    ServerStep,
};

/// Rules of the Plain mechanism that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlainError {
    Unimplemented,
}

#[derive(Debug)]
pub struct PlainServer {}

impl PlainServer {
    pub fn new(ctx: &ServerContext) -> Self {
        let _ = ctx;

        PlainServer {}
    }
}

impl ServerMechanism for PlainServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Plain
    }
    fn step(&mut self, _input: Option<&[u8]>) -> ServerStep {
        ServerStep::Failure(SaslError::Plain(PlainError::Unimplemented))
    }
}

#[derive(Debug)]
pub struct PlainClient {}

impl PlainClient {
    pub fn new(creds: &ClientCredentials) -> Self {
        let _ = creds;

        PlainClient {}
    }
}

impl ClientMechanism for PlainClient {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Plain
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Err(SaslError::Plain(PlainError::Unimplemented))
    }
    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        Err(SaslError::Plain(PlainError::Unimplemented))
    }
    fn verify_success(&mut self, _additional: Option<&[u8]>) -> Result<(), SaslError> {
        Err(SaslError::Plain(PlainError::Unimplemented))
    }
}
