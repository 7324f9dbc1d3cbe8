//! OAuthBearer: skeleton, to be implemented.

use super::{
    ClientCredentials, ClientMechanism, Mechanism, SaslError, ServerContext, ServerMechanism,
    ServerStep,
};

/// Rules of the OAuthBearer mechanism that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OAuthBearerError {
    Unimplemented,
}

#[derive(Debug)]
pub struct OAuthBearerServer {}

impl OAuthBearerServer {
    pub fn new(ctx: &ServerContext) -> Self {
        let _ = ctx;

        OAuthBearerServer {}
    }
}

impl ServerMechanism for OAuthBearerServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::OAuthBearer
    }
    fn step(&mut self, _input: Option<&[u8]>) -> ServerStep {
        ServerStep::Failure(SaslError::OAuthBearer(OAuthBearerError::Unimplemented))
    }
}

#[derive(Debug)]
pub struct OAuthBearerClient {}

impl OAuthBearerClient {
    pub fn new(creds: &ClientCredentials) -> Self {
        let _ = creds;

        OAuthBearerClient {}
    }
}

impl ClientMechanism for OAuthBearerClient {
    fn mechanism(&self) -> Mechanism {
        Mechanism::OAuthBearer
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Err(SaslError::OAuthBearer(OAuthBearerError::Unimplemented))
    }
    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        Err(SaslError::OAuthBearer(OAuthBearerError::Unimplemented))
    }
    fn verify_success(&mut self, _additional: Option<&[u8]>) -> Result<(), SaslError> {
        Err(SaslError::OAuthBearer(OAuthBearerError::Unimplemented))
    }
}
