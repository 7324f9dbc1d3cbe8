//! DigestMd5: skeleton, to be implemented.

use super::{
    ClientCredentials, ClientMechanism, Mechanism, RandomSource, SaslError, ServerContext,
    ServerMechanism, ServerStep,
};

/// Rules of the DigestMd5 mechanism that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DigestMd5Error {
    Unimplemented,
}

#[derive(Debug)]
pub struct DigestMd5Server {}

impl DigestMd5Server {
    pub fn new(ctx: &ServerContext, rng: &mut dyn RandomSource) -> Self {
        let _ = ctx;
        let _ = rng;
        DigestMd5Server {}
    }
}

impl ServerMechanism for DigestMd5Server {
    fn mechanism(&self) -> Mechanism {
        Mechanism::DigestMd5
    }
    fn step(&mut self, _input: Option<&[u8]>) -> ServerStep {
        ServerStep::Failure(SaslError::DigestMd5(DigestMd5Error::Unimplemented))
    }
}

#[derive(Debug)]
pub struct DigestMd5Client {}

impl DigestMd5Client {
    pub fn new(creds: &ClientCredentials, rng: &mut dyn RandomSource) -> Self {
        let _ = creds;
        let _ = rng;
        DigestMd5Client {}
    }
}

impl ClientMechanism for DigestMd5Client {
    fn mechanism(&self) -> Mechanism {
        Mechanism::DigestMd5
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Err(SaslError::DigestMd5(DigestMd5Error::Unimplemented))
    }
    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        Err(SaslError::DigestMd5(DigestMd5Error::Unimplemented))
    }
    fn verify_success(&mut self, _additional: Option<&[u8]>) -> Result<(), SaslError> {
        Err(SaslError::DigestMd5(DigestMd5Error::Unimplemented))
    }
}
