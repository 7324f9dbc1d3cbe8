//! XOAuth2: skeleton, to be implemented.

use super::{
    ClientCredentials, ClientMechanism, Mechanism, SaslError, ServerContext, ServerMechanism,
    ServerStep,
};

/// Rules of the XOAuth2 mechanism that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XOAuth2Error {
    Unimplemented,
}

#[derive(Debug)]
pub struct XOAuth2Server {}

impl XOAuth2Server {
    pub fn new(ctx: &ServerContext) -> Self {
        let _ = ctx;

        XOAuth2Server {}
    }
}

impl ServerMechanism for XOAuth2Server {
    fn mechanism(&self) -> Mechanism {
        Mechanism::XOAuth2
    }
    fn step(&mut self, _input: Option<&[u8]>) -> ServerStep {
        ServerStep::Failure(SaslError::XOAuth2(XOAuth2Error::Unimplemented))
    }
}

#[derive(Debug)]
pub struct XOAuth2Client {}

impl XOAuth2Client {
    pub fn new(creds: &ClientCredentials) -> Self {
        let _ = creds;

        XOAuth2Client {}
    }
}

impl ClientMechanism for XOAuth2Client {
    fn mechanism(&self) -> Mechanism {
        Mechanism::XOAuth2
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Err(SaslError::XOAuth2(XOAuth2Error::Unimplemented))
    }
    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        Err(SaslError::XOAuth2(XOAuth2Error::Unimplemented))
    }
    fn verify_success(&mut self, _additional: Option<&[u8]>) -> Result<(), SaslError> {
        Err(SaslError::XOAuth2(XOAuth2Error::Unimplemented))
    }
}
