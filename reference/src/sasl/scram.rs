//! SCRAM-SHA-1 and SCRAM-SHA-256: skeleton, to be implemented.

use super::{
    ClientCredentials, ClientMechanism, Mechanism, RandomSource, SaslError, ServerContext,
    ServerMechanism, ServerStep,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScramHash {
    Sha1,
    Sha256,
}

impl ScramHash {
    pub fn mechanism(self) -> Mechanism {
        match self {
            ScramHash::Sha1 => Mechanism::ScramSha1,
            ScramHash::Sha256 => Mechanism::ScramSha256,
        }
    }
}

/// Rules of RFC 5802 that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScramError {
    Unimplemented,
}

#[derive(Debug)]
pub struct ScramServer {
    hash: ScramHash,
}

impl ScramServer {
    pub fn new(hash: ScramHash, ctx: &ServerContext, rng: &mut dyn RandomSource) -> Self {
        let _ = (ctx, rng);
        ScramServer { hash }
    }
}

impl ServerMechanism for ScramServer {
    fn mechanism(&self) -> Mechanism {
        self.hash.mechanism()
    }
    fn step(&mut self, _input: Option<&[u8]>) -> ServerStep {
        ServerStep::Failure(SaslError::Scram(ScramError::Unimplemented))
    }
}

#[derive(Debug)]
pub struct ScramClient {
    hash: ScramHash,
}

impl ScramClient {
    pub fn new(hash: ScramHash, creds: &ClientCredentials, rng: &mut dyn RandomSource) -> Self {
        let _ = (creds, rng);
        ScramClient { hash }
    }
}

impl ClientMechanism for ScramClient {
    fn mechanism(&self) -> Mechanism {
        self.hash.mechanism()
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Err(SaslError::Scram(ScramError::Unimplemented))
    }
    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        Err(SaslError::Scram(ScramError::Unimplemented))
    }
    fn verify_success(&mut self, _additional: Option<&[u8]>) -> Result<(), SaslError> {
        Err(SaslError::Scram(ScramError::Unimplemented))
    }
}
