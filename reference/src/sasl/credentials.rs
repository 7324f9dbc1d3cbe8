//! Credential lookup. The server mechanisms ask a [`CredentialStore`]; what they get
//! back is the stored form, which may be a plaintext password or derived keys
//! (Dovecot's `{CRAM-MD5}` context, SCRAM's StoredKey/ServerKey).
//!
//! The passwd-file parser (Dovecot's format, `user:{SCHEME}secret`) lives in
//! [`passwd_file`].

use super::Secret;
use std::fmt;

/// How a user's secret is stored.
#[derive(Clone, Debug)]
pub enum StoredCredential {
    /// The password itself (`{PLAIN}`, `{CLEAR}`, `{PLAIN.B64}` or no scheme).
    Plain(Secret),
    /// Dovecot's `{CRAM-MD5}`: the HMAC-MD5 inner and outer MD5 states after the
    /// padded key block, as 32 octets (RFC 2195 §2, RFC 2104 precomputation).
    CramMd5(Secret),
    /// RFC 5802 §3 stored keys, as Dovecot's `{SCRAM-SHA-1}`/`{SCRAM-SHA-256}` hold them.
    Scram {
        hash: super::scram::ScramHash,
        iterations: u32,
        salt: Vec<u8>,
        stored_key: Secret,
        server_key: Secret,
    },
}

impl StoredCredential {
    /// The scheme name, as passwd-file writes it.
    pub fn scheme(&self) -> &'static str {
        match self {
            StoredCredential::Plain(_) => "PLAIN",
            StoredCredential::CramMd5(_) => "CRAM-MD5",
            StoredCredential::Scram {
                hash: super::scram::ScramHash::Sha1,
                ..
            } => "SCRAM-SHA-1",
            StoredCredential::Scram {
                hash: super::scram::ScramHash::Sha256,
                ..
            } => "SCRAM-SHA-256",
        }
    }
}

/// Looks users up by name. Implementations must take the same time whether or not the
/// user exists where they can, and the mechanisms must fail the same way for both.
pub trait CredentialStore: Send + Sync + fmt::Debug {
    fn lookup(&self, user: &str) -> Option<StoredCredential>;
}
