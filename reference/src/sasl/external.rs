//! External: skeleton, to be implemented.

use super::{
    ClientCredentials, ClientMechanism, Mechanism, SaslError, ServerContext, ServerMechanism,
    ServerStep,
};

/// Rules of the External mechanism that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalError {
    Unimplemented,
}

#[derive(Debug)]
pub struct ExternalServer {}

impl ExternalServer {
    pub fn new(ctx: &ServerContext) -> Self {
        let _ = ctx;

        ExternalServer {}
    }
}

impl ServerMechanism for ExternalServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::External
    }
    fn step(&mut self, _input: Option<&[u8]>) -> ServerStep {
        ServerStep::Failure(SaslError::External(ExternalError::Unimplemented))
    }
}

#[derive(Debug)]
pub struct ExternalClient {}

impl ExternalClient {
    pub fn new(creds: &ClientCredentials) -> Self {
        let _ = creds;

        ExternalClient {}
    }
}

impl ClientMechanism for ExternalClient {
    fn mechanism(&self) -> Mechanism {
        Mechanism::External
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Err(SaslError::External(ExternalError::Unimplemented))
    }
    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        Err(SaslError::External(ExternalError::Unimplemented))
    }
    fn verify_success(&mut self, _additional: Option<&[u8]>) -> Result<(), SaslError> {
        Err(SaslError::External(ExternalError::Unimplemented))
    }
}
