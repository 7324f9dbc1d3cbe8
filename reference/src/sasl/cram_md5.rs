//! CRAM-MD5 (RFC 2195): the server sends a challenge in msg-id form, the client answers
//! `user SP hex(HMAC-MD5(password, challenge))`.
//!
//! ```text
//! S: <1896.697170952@postoffice.reston.mci.net>
//! C: tim b913a602c7eda7a495b4e6e7334d3890
//! ```
//!
//! The server can verify against the plaintext password or against Dovecot's
//! `{CRAM-MD5}` stored context: the two MD5 states HMAC-MD5 reaches after its padded
//! key blocks (RFC 2104 §4 "precomputation"), so Dovecot's password files work as they
//! are. The context and the digest are derived in [`super::keys`], shared with the
//! stored credentials.

use super::credentials::{DUMMY_PASSWORD, StoredCredential, resolve_user};
pub(crate) use super::keys::cram_md5_digest;
pub use super::keys::{cram_md5_context, hmac_md5_from_context};
use super::secret::ct_eq;
use super::{
    Authenticated, ClientCredentials, ClientMechanism, Mechanism, RandomSource, SaslError, Secret,
    ServerContext, ServerMechanism, ServerStep,
};

/// Rules of RFC 2195 that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CramMd5Error {
    /// RFC 2195 §2: the response is the user name, a space and the digest.
    MissingSpace,
    /// RFC 2195 §2: the user name is not empty.
    EmptyUsername,
    /// RFC 2195 §2 with RFC 4422 §5: the user name is a UTF-8 string.
    InvalidUtf8,
    /// RFC 2195 §2: the digest is 16 octets written as 32 lowercase hex digits.
    DigestNotLowercaseHex,
    /// The caller gave no client message after the challenge had been sent.
    MissingResponse,
    /// RFC 2195 §2: one challenge, one response; a second challenge is not part of it.
    UnexpectedChallenge,
    /// The server reported success before the client had answered the challenge.
    PrematureSuccess,
    /// RFC 4422 §3.6: CRAM-MD5 defines no additional data with success.
    UnexpectedSuccessData,
}

fn err(e: CramMd5Error) -> SaslError {
    SaslError::CramMd5(e)
}

/// Lowercase hex, as RFC 2195 §2 writes the digest.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// Decode hex digits; `lowercase_only` for the wire, any case for password files.
pub(crate) fn hex_decode(text: &[u8], lowercase_only: bool) -> Option<Vec<u8>> {
    fn nibble(c: u8, lowercase_only: bool) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' if !lowercase_only => Some(c - b'A' + 10),
            _ => None,
        }
    }
    if text.len() % 2 != 0 {
        return None;
    }
    text.chunks_exact(2)
        .map(|p| Some((nibble(p[0], lowercase_only)? << 4) | nibble(p[1], lowercase_only)?))
        .collect()
}

/// RFC 2195 §2's response split into the user name and the digest as sent (judging
/// the digest is the server's business). User names may hold spaces, the digest
/// cannot, so the last space separates them (as Cyrus does).
pub fn split_response(response: &[u8]) -> Result<(&str, &[u8]), CramMd5Error> {
    let Some(space) = response.iter().rposition(|&b| b == b' ') else {
        return Err(CramMd5Error::MissingSpace);
    };
    let (user, hex) = (&response[..space], &response[space + 1..]);
    if user.is_empty() {
        return Err(CramMd5Error::EmptyUsername);
    }
    let Ok(user) = std::str::from_utf8(user) else {
        return Err(CramMd5Error::InvalidUtf8);
    };
    Ok((user, hex))
}

/// The challenge's domain: the configured host name if it can sit in a msg-id, else
/// `localhost` (a name with spaces or `>` would break the RFC 2195 §2 syntax).
fn challenge_domain(hostname: &str) -> &str {
    let usable = !hostname.is_empty()
        && hostname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'[' | b']' | b':'));
    if usable { hostname } else { "localhost" }
}

// ---------------------------------------------------------------------------------
// Server

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    /// Nothing sent yet: the first step must be `None` and returns the challenge.
    Start,
    AwaitResponse,
    Done,
}

/// Server side of CRAM-MD5 (RFC 2195): sends one challenge, checks `user SP digest`.
#[derive(Debug)]
pub struct CramMd5Server {
    ctx: ServerContext,
    challenge: Vec<u8>,
    state: ServerState,
}

impl CramMd5Server {
    /// The challenge is `<random.timestamp@hostname>` (RFC 2195 §2 wants a
    /// "presumptively arbitrary string of random digits, a timestamp, and the
    /// fully-qualified primary host name"); both numbers come from `rng`, since the
    /// core reads no clock.
    pub fn new(ctx: &ServerContext, rng: &mut dyn RandomSource) -> Self {
        let random = rng.next_u64() >> 32;
        let stamp = rng.next_u64() >> 32;
        let challenge =
            format!("<{random}.{stamp}@{}>", challenge_domain(&ctx.hostname)).into_bytes();
        CramMd5Server::with_challenge(ctx, challenge)
    }

    /// A server with a given challenge, for the RFC 2195 vector and replayed sessions.
    pub fn with_challenge(ctx: &ServerContext, challenge: Vec<u8>) -> Self {
        CramMd5Server {
            ctx: ctx.clone(),
            challenge,
            state: ServerState::Start,
        }
    }

    /// The challenge this server sends (RFC 2195 §2's msg-id form).
    pub fn challenge(&self) -> &[u8] {
        &self.challenge
    }

    fn verify(&self, response: &[u8]) -> ServerStep {
        let (user, hex) = match split_response(response) {
            Ok(r) => r,
            Err(e) => return ServerStep::Failure(err(e)),
        };
        let Some(claimed) = hex_decode(hex, true).filter(|d| d.len() == 16) else {
            return ServerStep::Failure(err(CramMd5Error::DigestNotLowercaseHex));
        };
        // Unknown users and unusable schemes cost one HMAC too, so that timing does not
        // tell them from a wrong password (RFC 4954 §6).
        let (name, expected, unusable) = match resolve_user(&self.ctx, user) {
            Some((name, StoredCredential::Plain(password))) => (
                Some(name),
                cram_md5_digest(password.expose(), &self.challenge),
                None,
            ),
            Some((name, StoredCredential::CramMd5(context))) => {
                match <&[u8; 32]>::try_from(context.expose()) {
                    Ok(ctx32) => (
                        Some(name),
                        hmac_md5_from_context(ctx32, &self.challenge),
                        None,
                    ),
                    Err(_) => (
                        None,
                        cram_md5_digest(DUMMY_PASSWORD, &self.challenge),
                        Some("CRAM-MD5"),
                    ),
                }
            }
            Some((_, other @ StoredCredential::Scram { .. })) => (
                None,
                cram_md5_digest(DUMMY_PASSWORD, &self.challenge),
                Some(other.scheme()),
            ),
            None => (None, cram_md5_digest(DUMMY_PASSWORD, &self.challenge), None),
        };
        let matches = ct_eq(&expected, &claimed);
        if let Some(scheme) = unusable {
            return ServerStep::Failure(SaslError::SchemeUnusable {
                mechanism: Mechanism::CramMd5,
                scheme,
            });
        }
        match name {
            Some(authcid) if matches => ServerStep::Success {
                identity: Authenticated {
                    authcid,
                    authzid: None,
                },
                additional: None,
            },
            _ => ServerStep::Failure(SaslError::InvalidCredentials),
        }
    }
}

impl ServerMechanism for CramMd5Server {
    fn mechanism(&self) -> Mechanism {
        Mechanism::CramMd5
    }

    fn step(&mut self, input: Option<&[u8]>) -> ServerStep {
        match (self.state, input) {
            (ServerState::Start, None) => {
                self.state = ServerState::AwaitResponse;
                ServerStep::Challenge(self.challenge.clone())
            }
            // RFC 4954 §4: a server-first mechanism cannot take an initial response.
            (ServerState::Start, Some(_)) => {
                self.state = ServerState::Done;
                ServerStep::Failure(SaslError::InitialResponseToServerFirst(Mechanism::CramMd5))
            }
            (ServerState::AwaitResponse, None) => {
                self.state = ServerState::Done;
                ServerStep::Failure(err(CramMd5Error::MissingResponse))
            }
            (ServerState::AwaitResponse, Some(response)) => {
                self.state = ServerState::Done;
                self.verify(response)
            }
            (ServerState::Done, _) => ServerStep::Failure(SaslError::ExchangeOver),
        }
    }
}

// ---------------------------------------------------------------------------------
// Client

#[derive(Debug)]
pub(crate) struct CramMd5Client {
    user: String,
    password: Secret,
    answered: bool,
}

impl CramMd5Client {
    pub fn new(creds: &ClientCredentials) -> Self {
        CramMd5Client {
            user: creds.authcid.clone(),
            password: creds.password.clone(),
            answered: false,
        }
    }
}

impl ClientMechanism for CramMd5Client {
    fn mechanism(&self) -> Mechanism {
        Mechanism::CramMd5
    }

    /// Server-first: never an initial response.
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Ok(None)
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.answered {
            return Err(err(CramMd5Error::UnexpectedChallenge));
        }
        if self.user.is_empty() {
            return Err(err(CramMd5Error::EmptyUsername));
        }
        self.answered = true;
        let digest = cram_md5_digest(self.password.expose(), challenge);
        let mut out = Vec::with_capacity(self.user.len() + 33);
        out.extend_from_slice(self.user.as_bytes());
        out.push(b' ');
        out.extend_from_slice(hex_lower(&digest).as_bytes());
        Ok(out)
    }

    fn verify_success(&mut self, additional: Option<&[u8]>) -> Result<(), SaslError> {
        if !self.answered {
            return Err(err(CramMd5Error::PrematureSuccess));
        }
        match additional {
            None => Ok(()),
            Some(_) => Err(err(CramMd5Error::UnexpectedSuccessData)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::credentials::MemoryStore;
    use crate::sasl::keys::{MD5_INIT, md5_compress, md5_resume};
    use crate::sasl::random::FixedRandom;
    use md5::{Digest, Md5};
    use std::sync::Arc;

    const RFC2195_CHALLENGE: &[u8] = b"<1896.697170952@postoffice.reston.mci.net>";

    /// True if `challenge` has RFC 2195 §2's shape, a msg-id `<local@domain>` (RFC 822).
    /// The client answers whatever it gets; the tests check the server's own challenges.
    fn challenge_is_msg_id(challenge: &[u8]) -> bool {
        let Some(inner) = challenge
            .strip_prefix(b"<")
            .and_then(|c| c.strip_suffix(b">"))
        else {
            return false;
        };
        let Some(at) = inner.iter().rposition(|&b| b == b'@') else {
            return false;
        };
        let (local, domain) = (&inner[..at], &inner[at + 1..]);
        let ok = |part: &[u8]| {
            !part.is_empty()
                && part.iter().all(|&b| {
                    b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'@' | b'"' | b'\\')
                })
        };
        ok(local) && ok(domain)
    }

    fn ctx(store: MemoryStore) -> ServerContext {
        ServerContext {
            hostname: "postoffice.reston.mci.net".into(),
            realm: None,
            external_identity: None,
            credentials: Arc::new(store),
        }
    }

    #[test]
    fn md5_matches_the_md5_crate_for_every_padding_case() {
        // Resuming from the state after one block equals hashing block || data.
        let block = [0x5au8; 64];
        let mut state = MD5_INIT;
        md5_compress(&mut state, &block);
        for len in [0usize, 1, 55, 56, 57, 63, 64, 65, 119, 120, 200] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut full = block.to_vec();
            full.extend_from_slice(&data);
            assert_eq!(
                md5_resume(state, &data)[..],
                Md5::digest(&full)[..],
                "len {len}"
            );
        }
    }

    #[test]
    fn context_hmac_matches_the_hmac_crate() {
        use hmac::{Hmac, Mac};
        let long_key = [b'k'; 100];
        for key in [&b"tanstaaftanstaaf"[..], b"", &long_key[..], &[7u8; 64][..]] {
            let mut mac = Hmac::<Md5>::new_from_slice(key).expect("any key length");
            mac.update(b"message");
            let expected = mac.finalize().into_bytes();
            assert_eq!(cram_md5_digest(key, b"message")[..], expected[..]);
        }
    }

    /// RFC 2195 §2's example, byte for byte.
    #[test]
    fn rfc2195_vector() {
        let digest = cram_md5_digest(b"tanstaaftanstaaf", RFC2195_CHALLENGE);
        assert_eq!(hex_lower(&digest), "b913a602c7eda7a495b4e6e7334d3890");

        let creds = ClientCredentials {
            authcid: "tim".into(),
            password: Secret::from("tanstaaftanstaaf"),
            authzid: None,
            host: String::new(),
            port: None,
        };
        let mut client = CramMd5Client::new(&creds);
        assert_eq!(client.initial_response(), Ok(None));
        let response = client.step(RFC2195_CHALLENGE).expect("response");
        assert_eq!(response, b"tim b913a602c7eda7a495b4e6e7334d3890");

        let store = MemoryStore::new().with_plain("tim", "tanstaaftanstaaf");
        let mut server = CramMd5Server::with_challenge(&ctx(store), RFC2195_CHALLENGE.to_vec());
        assert_eq!(
            server.step(None),
            ServerStep::Challenge(RFC2195_CHALLENGE.to_vec())
        );
        assert_eq!(
            server.step(Some(&response)),
            ServerStep::Success {
                identity: Authenticated {
                    authcid: "tim".into(),
                    authzid: None
                },
                additional: None
            }
        );
        assert_eq!(
            server.step(Some(b"")),
            ServerStep::Failure(SaslError::ExchangeOver)
        );
    }

    #[test]
    fn stored_context_verifies() {
        let mut store = MemoryStore::new();
        store.insert(
            "tim",
            StoredCredential::CramMd5(Secret::new(cram_md5_context(b"tanstaaftanstaaf").to_vec())),
        );
        let mut server = CramMd5Server::with_challenge(&ctx(store), RFC2195_CHALLENGE.to_vec());
        let _ = server.step(None);
        assert!(matches!(
            server.step(Some(b"tim b913a602c7eda7a495b4e6e7334d3890")),
            ServerStep::Success { .. }
        ));
    }

    #[test]
    fn initial_response_is_refused() {
        let mut server = CramMd5Server::new(&ctx(MemoryStore::new()), &mut FixedRandom::new([1]));
        assert_eq!(
            server.step(Some(b"tim 00")),
            ServerStep::Failure(SaslError::InitialResponseToServerFirst(Mechanism::CramMd5))
        );
    }

    #[test]
    fn challenge_is_a_msg_id_from_the_random_source() {
        let mut a = CramMd5Server::new(&ctx(MemoryStore::new()), &mut FixedRandom::new([1, 2, 3]));
        let mut b = CramMd5Server::new(&ctx(MemoryStore::new()), &mut FixedRandom::new([1, 2, 3]));
        let ServerStep::Challenge(ca) = a.step(None) else {
            panic!("challenge expected")
        };
        assert_eq!(b.step(None), ServerStep::Challenge(ca.clone()));
        assert!(challenge_is_msg_id(&ca), "{}", String::from_utf8_lossy(&ca));
        assert!(ca.ends_with(b"@postoffice.reston.mci.net>"));
        assert!(challenge_is_msg_id(RFC2195_CHALLENGE));
        assert!(!challenge_is_msg_id(b"1896.697170952"));
        assert!(!challenge_is_msg_id(b"<@host>"));
    }

    #[test]
    fn malformed_responses_name_the_rule() {
        let cases: [(&[u8], CramMd5Error); 4] = [
            (
                b"timb913a602c7eda7a495b4e6e7334d3890",
                CramMd5Error::MissingSpace,
            ),
            (
                b" b913a602c7eda7a495b4e6e7334d3890",
                CramMd5Error::EmptyUsername,
            ),
            (
                b"tim B913A602C7EDA7A495B4E6E7334D3890",
                CramMd5Error::DigestNotLowercaseHex,
            ),
            (b"tim b913a602", CramMd5Error::DigestNotLowercaseHex),
        ];
        for (input, expected) in cases {
            let store = MemoryStore::new().with_plain("tim", "tanstaaftanstaaf");
            let mut server = CramMd5Server::with_challenge(&ctx(store), RFC2195_CHALLENGE.to_vec());
            let _ = server.step(None);
            assert_eq!(server.step(Some(input)), ServerStep::Failure(err(expected)));
        }
    }

    #[test]
    fn scram_key_cannot_serve_cram_md5() {
        let mut store = MemoryStore::new();
        store.insert(
            "tim",
            StoredCredential::Scram {
                hash: crate::sasl::scram::ScramHash::Sha256,
                iterations: 4096,
                salt: b"salt".to_vec(),
                stored_key: Secret::new(vec![0; 32]),
                server_key: Secret::new(vec![0; 32]),
            },
        );
        let mut server = CramMd5Server::with_challenge(&ctx(store), RFC2195_CHALLENGE.to_vec());
        let _ = server.step(None);
        assert_eq!(
            server.step(Some(b"tim b913a602c7eda7a495b4e6e7334d3890")),
            ServerStep::Failure(SaslError::SchemeUnusable {
                mechanism: Mechanism::CramMd5,
                scheme: "SCRAM-SHA-256"
            })
        );
    }

    #[test]
    fn hostname_that_breaks_msg_id_is_replaced() {
        assert_eq!(challenge_domain("mx.example.org"), "mx.example.org");
        assert_eq!(challenge_domain("bad host>"), "localhost");
        assert_eq!(challenge_domain(""), "localhost");
    }
}
