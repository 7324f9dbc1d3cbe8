//! CramMd5: skeleton, to be implemented.

use super::{
    ClientCredentials, ClientMechanism, Mechanism, RandomSource, SaslError, ServerContext,
    ServerMechanism, ServerStep,
};

/// Rules of the CramMd5 mechanism that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CramMd5Error {
    Unimplemented,
}

#[derive(Debug)]
pub struct CramMd5Server {}

impl CramMd5Server {
    pub fn new(ctx: &ServerContext, rng: &mut dyn RandomSource) -> Self {
        let _ = ctx;
        let _ = rng;
        CramMd5Server {}
    }
}

impl ServerMechanism for CramMd5Server {
    fn mechanism(&self) -> Mechanism {
        Mechanism::CramMd5
    }
    fn step(&mut self, _input: Option<&[u8]>) -> ServerStep {
        ServerStep::Failure(SaslError::CramMd5(CramMd5Error::Unimplemented))
    }
}

#[derive(Debug)]
pub struct CramMd5Client {}

impl CramMd5Client {
    pub fn new(creds: &ClientCredentials) -> Self {
        let _ = creds;

        CramMd5Client {}
    }
}

impl ClientMechanism for CramMd5Client {
    fn mechanism(&self) -> Mechanism {
        Mechanism::CramMd5
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Err(SaslError::CramMd5(CramMd5Error::Unimplemented))
    }
    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        Err(SaslError::CramMd5(CramMd5Error::Unimplemented))
    }
    fn verify_success(&mut self, _additional: Option<&[u8]>) -> Result<(), SaslError> {
        Err(SaslError::CramMd5(CramMd5Error::Unimplemented))
    }
}
