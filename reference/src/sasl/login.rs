//! Login: skeleton, to be implemented.

use super::{
    ClientCredentials, ClientMechanism, Mechanism, SaslError, ServerContext, ServerMechanism,
    ServerStep,
};

/// Rules of the Login mechanism that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginError {
    Unimplemented,
}

#[derive(Debug)]
pub struct LoginServer {}

impl LoginServer {
    pub fn new(ctx: &ServerContext) -> Self {
        let _ = ctx;

        LoginServer {}
    }
}

impl ServerMechanism for LoginServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Login
    }
    fn step(&mut self, _input: Option<&[u8]>) -> ServerStep {
        ServerStep::Failure(SaslError::Login(LoginError::Unimplemented))
    }
}

#[derive(Debug)]
pub struct LoginClient {}

impl LoginClient {
    pub fn new(creds: &ClientCredentials) -> Self {
        let _ = creds;

        LoginClient {}
    }
}

impl ClientMechanism for LoginClient {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Login
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Err(SaslError::Login(LoginError::Unimplemented))
    }
    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        Err(SaslError::Login(LoginError::Unimplemented))
    }
    fn verify_success(&mut self, _additional: Option<&[u8]>) -> Result<(), SaslError> {
        Err(SaslError::Login(LoginError::Unimplemented))
    }
}
