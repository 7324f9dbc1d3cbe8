//! The random source is injected so that every nonce can be reproduced from a seed.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::fmt;

/// Where nonces come from. The drivers pass [`SeededRandom::from_entropy`] in
/// production and a fixed seed in tests and snapshots.
pub trait RandomSource: Send {
    /// Fill `buf` with random octets.
    fn fill(&mut self, buf: &mut [u8]);

    /// A nonce of `len` printable characters from the base64 alphabet without `,`,
    /// which suits SCRAM (RFC 5802 §5.1 `printable`), DIGEST-MD5 and CRAM-MD5.
    fn nonce(&mut self, len: usize) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut raw = vec![0u8; len];
        self.fill(&mut raw);
        raw.iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
            .collect()
    }

    /// A number, for CRAM-MD5's `<pid.timestamp@host>` style challenge.
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }
}

/// ChaCha20 seeded from a `u64` (reproducible) or from the OS (production).
pub struct SeededRandom(ChaCha20Rng);

impl SeededRandom {
    /// A reproducible stream: the same seed gives the same nonces.
    pub fn from_seed(seed: u64) -> SeededRandom {
        SeededRandom(ChaCha20Rng::seed_from_u64(seed))
    }

    /// Seeded from the operating system, for production.
    pub fn from_entropy() -> SeededRandom {
        SeededRandom(ChaCha20Rng::from_entropy())
    }
}

impl fmt::Debug for SeededRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The state would let a reader predict every later nonce.
        f.write_str("SeededRandom(..)")
    }
}

impl RandomSource for SeededRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        self.0.fill_bytes(buf);
    }
}

/// Replays fixed bytes, then repeats them: for RFC test vectors whose nonces are given.
#[derive(Debug, Clone)]
pub struct FixedRandom {
    bytes: Vec<u8>,
    pos: usize,
}

impl FixedRandom {
    /// A source that yields `bytes` in a loop.
    pub fn new(bytes: impl Into<Vec<u8>>) -> FixedRandom {
        FixedRandom {
            bytes: bytes.into(),
            pos: 0,
        }
    }
}

impl RandomSource for FixedRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = if self.bytes.is_empty() {
                0
            } else {
                let v = self.bytes[self.pos % self.bytes.len()];
                self.pos += 1;
                v
            };
        }
    }
}
