//! Credential lookup. The server mechanisms ask a [`CredentialStore`]; what they get
//! back is the stored form, which may be a plaintext password or derived keys
//! (Dovecot's `{CRAM-MD5}` context, SCRAM's StoredKey/ServerKey).
//!
//! The passwd-file parser (Dovecot's format, `user:{SCHEME}secret`) lives in
//! [`super::passwd_file`].

use super::Secret;
use super::keys::ScramHash;
use std::fmt;

/// How a user's secret is stored.
#[derive(Clone, Debug)]
pub enum StoredCredential {
    /// The password itself (`{PLAIN}`, `{CLEAR}`, `{PLAIN.B64}` or no scheme).
    Plain(Secret),
    /// Dovecot's `{CRAM-MD5}`: the HMAC-MD5 outer then inner MD5 states after the
    /// padded key block, as 32 octets (RFC 2195 §2, RFC 2104 precomputation).
    CramMd5(Secret),
    /// RFC 5802 §3 stored keys, as Dovecot's `{SCRAM-SHA-1}`/`{SCRAM-SHA-256}` hold them
    /// (and `{SCRAM-SHA-512}` in the same layout, which Dovecot 2.4 reads).
    Scram {
        /// The SCRAM hash `H()` the keys were derived with.
        hash: ScramHash,
        /// The `i=` count of `Hi()` (RFC 5802 §2.2).
        iterations: u32,
        /// The `s=` salt, raw octets.
        salt: Vec<u8>,
        /// StoredKey := H(ClientKey); verifies the client's proof.
        stored_key: Secret,
        /// ServerKey; computes the ServerSignature the client verifies.
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
                hash: ScramHash::Sha1,
                ..
            } => "SCRAM-SHA-1",
            StoredCredential::Scram {
                hash: ScramHash::Sha256,
                ..
            } => "SCRAM-SHA-256",
            StoredCredential::Scram {
                hash: ScramHash::Sha512,
                ..
            } => "SCRAM-SHA-512",
        }
    }
}

/// Looks users up by name. Implementations must take the same time whether or not the
/// user exists where they can, and the mechanisms must fail the same way for both.
pub trait CredentialStore: Send + Sync + fmt::Debug {
    /// The stored credential of `user`, or `None` if there is no such user.
    fn lookup(&self, user: &str) -> Option<StoredCredential>;
}

/// A user table held in memory, for tests, fuzzing and `authspec serve --user`.
/// `Debug` lists the user names only.
#[derive(Clone, Default)]
pub struct MemoryStore {
    users: std::collections::BTreeMap<String, StoredCredential>,
}

impl MemoryStore {
    /// An empty table.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Store `password` as is (the `{PLAIN}` scheme). Replaces an earlier entry.
    pub fn insert_plain(&mut self, user: impl Into<String>, password: impl Into<Secret>) {
        self.users
            .insert(user.into(), StoredCredential::Plain(password.into()));
    }

    /// Store any credential form. Replaces an earlier entry.
    pub fn insert(&mut self, user: impl Into<String>, credential: StoredCredential) {
        self.users.insert(user.into(), credential);
    }

    /// Builder form of [`MemoryStore::insert_plain`].
    pub fn with_plain(mut self, user: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.insert_plain(user, password);
        self
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when the table holds no user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl CredentialStore for MemoryStore {
    fn lookup(&self, user: &str) -> Option<StoredCredential> {
        self.users.get(user).cloned()
    }
}

/// Look `user` up the way Postfix with Cyrus or Dovecot does: the name as given first;
/// then, if that fails, the name has no `@` and the server has a realm
/// (`smtpd_sasl_local_domain`), `user@realm`. Every mechanism uses this, so `alice`
/// and `alice@peers.test` behave the same everywhere.
pub(crate) fn lookup_user(ctx: &super::ServerContext, user: &str) -> Option<StoredCredential> {
    resolve_user(ctx, user).map(|(_, credential)| credential)
}

/// [`lookup_user`], also returning the name that matched (`alice@peers.test` for
/// `alice`), which is the authentication identity the server reports, as Postfix logs
/// `sasl_username=alice@peers.test`.
pub(crate) fn resolve_user(
    ctx: &super::ServerContext,
    user: &str,
) -> Option<(String, StoredCredential)> {
    if let Some(credential) = ctx.credentials.lookup(user) {
        return Some((user.to_owned(), credential));
    }
    let realm = ctx.realm.as_deref().filter(|r| !r.is_empty())?;
    if user.contains('@') {
        return None;
    }
    let qualified = format!("{user}@{realm}");
    let credential = ctx.credentials.lookup(&qualified)?;
    Some((qualified, credential))
}

/// The password compared against when the user does not exist, so that an unknown
/// user costs the same comparison as a wrong password (RFC 4954 §6 asks servers not
/// to reveal which it was).
pub(crate) const DUMMY_PASSWORD: &[u8] = b"authspec-dummy-password-for-unknown-users";

/// Check a password (or bearer token) sent in the clear against any stored form, in
/// constant time. A `{CRAM-MD5}` context is checked by deriving the context from the
/// candidate, a SCRAM entry by deriving StoredKey (RFC 5802 §3), as Dovecot does.
///
/// Against `{PLAIN}` and `{CRAM-MD5}` the octets must match as sent (Cyrus and Dovecot
/// do not SASLprep PLAIN either). Against a SCRAM entry the candidate goes through the
/// same derivation as the SCRAM mechanism, SASLprep included, so a password holding
/// U+00A0 or U+FB01 authenticates through PLAIN exactly when it does through SCRAM.
pub(crate) fn verify_plaintext(stored: &StoredCredential, candidate: &[u8]) -> bool {
    match stored {
        StoredCredential::Plain(secret) => secret.ct_eq(candidate),
        StoredCredential::CramMd5(context) => {
            let derived = super::keys::cram_md5_context(candidate);
            context.ct_eq(&derived)
        }
        StoredCredential::Scram {
            hash,
            iterations,
            salt,
            stored_key,
            ..
        } => {
            let derived = scram_stored_key(*hash, candidate, salt, *iterations);
            stored_key.ct_eq(&derived)
        }
    }
}

/// Verify against "nobody": the same kind of comparison, always false.
pub(crate) fn verify_dummy(candidate: &[u8]) -> bool {
    let _ = Secret::new(DUMMY_PASSWORD.to_vec()).ct_eq(candidate);
    false
}

/// RFC 5802 §3: StoredKey := H(HMAC(Hi(Normalize(password), salt, i), "Client Key")),
/// from the one derivation the mechanisms use too (`keys::scram_keys`).
pub fn scram_stored_key(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    super::keys::scram_keys(hash, password, salt, iterations)
        .stored_key
        .expose()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::ServerContext;
    use std::sync::Arc;

    fn ctx(store: MemoryStore, realm: Option<&str>) -> ServerContext {
        ServerContext {
            hostname: "mx.example.org".into(),
            realm: realm.map(str::to_owned),
            external_identity: None,
            credentials: Arc::new(store),
        }
    }

    #[test]
    fn unqualified_name_falls_back_to_realm() {
        let store = MemoryStore::new().with_plain("alice@peers.test", "wonderland");
        let c = ctx(store, Some("peers.test"));
        let (name, _) = resolve_user(&c, "alice").expect("alice@peers.test");
        assert_eq!(name, "alice@peers.test");
        assert!(resolve_user(&c, "alice@peers.test").is_some());
        // A qualified name is never re-qualified.
        assert!(resolve_user(&c, "alice@other.test").is_none());
    }

    #[test]
    fn no_realm_no_fallback() {
        let store = MemoryStore::new().with_plain("alice@peers.test", "wonderland");
        let c = ctx(store, None);
        assert!(lookup_user(&c, "alice").is_none());
    }

    #[test]
    fn bare_name_wins_over_realm() {
        let store = MemoryStore::new()
            .with_plain("alice", "one")
            .with_plain("alice@peers.test", "two");
        let c = ctx(store, Some("peers.test"));
        let (name, cred) = resolve_user(&c, "alice").expect("alice");
        assert_eq!(name, "alice");
        assert!(verify_plaintext(&cred, b"one"));
    }

    #[test]
    fn memory_store_debug_has_no_secret() {
        let store = MemoryStore::new().with_plain("alice", "wonderland");
        let dbg = format!("{store:?}");
        assert!(dbg.contains("alice"));
        assert!(!dbg.contains("wonderland"));
    }

    #[test]
    fn verify_plaintext_every_scheme() {
        let plain = StoredCredential::Plain(Secret::from("pencil"));
        assert!(verify_plaintext(&plain, b"pencil"));
        assert!(!verify_plaintext(&plain, b"pencil2"));

        let cram = StoredCredential::CramMd5(Secret::new(
            crate::sasl::keys::cram_md5_context(b"pencil").to_vec(),
        ));
        assert!(verify_plaintext(&cram, b"pencil"));
        assert!(!verify_plaintext(&cram, b"Pencil"));

        let salt = b"salty".to_vec();
        let scram = StoredCredential::Scram {
            hash: ScramHash::Sha256,
            iterations: 4096,
            stored_key: Secret::new(scram_stored_key(ScramHash::Sha256, b"pencil", &salt, 4096)),
            server_key: Secret::default(),
            salt,
        };
        assert!(verify_plaintext(&scram, b"pencil"));
        assert!(!verify_plaintext(&scram, b"pencul"));
        assert!(!verify_dummy(DUMMY_PASSWORD));
    }

    /// The RFC 5802 §5 (SHA-1) and RFC 7677 §3 (SHA-256) exchanges: the published
    /// ClientProof, XORed with HMAC(StoredKey, AuthMessage), must hash to StoredKey.
    #[test]
    fn scram_stored_key_matches_rfc_exchanges() {
        use base64::Engine;
        use hmac::{Hmac, Mac};
        use sha1::Sha1;
        use sha2::{Digest, Sha256};
        let b64 = base64::engine::general_purpose::STANDARD;

        let salt = b64.decode("QSXCR+Q6sek8bf92").expect("salt");
        let stored = scram_stored_key(ScramHash::Sha1, b"pencil", &salt, 4096);
        let auth_message = "n=user,r=fyko+d2lbbFgONRv9qkxdawL,\
r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,\
c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
        let proof = b64.decode("v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=").expect("proof");
        let mut mac = Hmac::<Sha1>::new_from_slice(&stored).expect("key");
        mac.update(auth_message.as_bytes());
        let signature = mac.finalize().into_bytes();
        let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
        assert_eq!(Sha1::digest(&client_key).to_vec(), stored);

        let salt = b64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let stored = scram_stored_key(ScramHash::Sha256, b"pencil", &salt, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let proof = b64
            .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .expect("proof");
        let mut mac = Hmac::<Sha256>::new_from_slice(&stored).expect("key");
        mac.update(auth_message.as_bytes());
        let signature = mac.finalize().into_bytes();
        let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
        assert_eq!(Sha256::digest(&client_key).to_vec(), stored);
    }
}
