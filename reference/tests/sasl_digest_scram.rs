//! DIGEST-MD5 (RFC 2831) and SCRAM-SHA-1/-256 (RFC 5802, RFC 7677): the RFC vectors
//! byte for byte, each rule's error variant, and client/server pairs in memory.

use authspec_reference::sasl::credentials::{CredentialStore, StoredCredential};
use authspec_reference::sasl::digest_md5::{
    self, DigestMd5Client, DigestMd5Error, DigestMd5Server, DigestParams,
};
use authspec_reference::sasl::random::FixedRandom;
use authspec_reference::sasl::scram::{self, ScramClient, ScramError, ScramHash, ScramServer};
use authspec_reference::sasl::{
    self, Authenticated, ClientCredentials, ClientMechanism, Mechanism, SaslError, Secret,
    SeededRandom, ServerContext, ServerMechanism, ServerStep,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

// ---------------------------------------------------------------------------------
// Support
// ---------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct TestStore(HashMap<String, StoredCredential>);

impl CredentialStore for TestStore {
    fn lookup(&self, user: &str) -> Option<StoredCredential> {
        self.0.get(user).cloned()
    }
}

const HOST: &str = "smtp.peers.test";
const REALM: &str = "peers.test";

fn ctx_with(users: &[(&str, StoredCredential)]) -> ServerContext {
    let mut store = TestStore::default();
    for (name, cred) in users {
        store.0.insert((*name).to_string(), cred.clone());
    }
    ServerContext {
        hostname: HOST.into(),
        realm: Some(REALM.into()),
        external_identity: None,
        credentials: Arc::new(store),
    }
}

fn plain(password: &str) -> StoredCredential {
    StoredCredential::Plain(Secret::from(password))
}

fn creds(user: &str, password: &str) -> ClientCredentials {
    ClientCredentials {
        authcid: user.into(),
        password: Secret::from(password),
        authzid: None,
        host: HOST.into(),
        port: Some(587),
    }
}

fn challenge(step: ServerStep) -> Vec<u8> {
    match step {
        ServerStep::Challenge(c) => c,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn failure(step: ServerStep) -> SaslError {
    match step {
        ServerStep::Failure(e) => e,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn success(step: ServerStep) -> (Authenticated, Vec<u8>) {
    match step {
        ServerStep::Success {
            identity,
            additional: Some(a),
        } => (identity, a),
        other => panic!("expected success with additional data, got {other:?}"),
    }
}

/// What a full in-memory exchange ended with.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The server accepted and the client verified the server's proof.
    Mutual(Authenticated),
    Server(SaslError),
    Client(SaslError),
}

/// Steps both sides to the end, as the SMTP layer would: the server's additional data
/// goes to the client as a final challenge (Postfix's 334), answered with "".
fn run(client: &mut dyn ClientMechanism, server: &mut dyn ServerMechanism) -> Outcome {
    let mut input = match client.initial_response() {
        Ok(ir) => ir,
        Err(e) => return Outcome::Client(e),
    };
    for _ in 0..8 {
        match server.step(input.as_deref()) {
            ServerStep::Challenge(c) => match client.step(&c) {
                Ok(r) => input = Some(r),
                Err(e) => return Outcome::Client(e),
            },
            ServerStep::Success {
                identity,
                additional,
            } => {
                if let Some(a) = additional {
                    match client.step(&a) {
                        Ok(r) => assert!(r.is_empty(), "answer to the server's proof"),
                        Err(e) => return Outcome::Client(e),
                    }
                }
                return match client.verify_success(None) {
                    Ok(()) => Outcome::Mutual(identity),
                    Err(e) => Outcome::Client(e),
                };
            }
            ServerStep::Failure(e) => return Outcome::Server(e),
        }
    }
    panic!("exchange did not end");
}

fn replace(haystack: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = String::from_utf8(haystack.to_vec()).expect("test messages are UTF-8");
    assert!(s.contains(from), "{from:?} not in {s:?}");
    s.replacen(from, to, 1).into_bytes()
}

// ---------------------------------------------------------------------------------
// DIGEST-MD5
// ---------------------------------------------------------------------------------

#[test]
fn digest_md5_rfc2831_section4_example() {
    let p = DigestParams {
        username: b"chris",
        realm: b"elwood.innosoft.com",
        password: b"secret",
        nonce: b"OA6MG9tEQGm2hh",
        cnonce: b"OA6MHXh6VqTrRk",
        nc: b"00000001",
        qop: b"auth",
        digest_uri: b"imap/elwood.innosoft.com",
        authzid: None,
    };
    assert_eq!(
        digest_md5::response_value(&p),
        "d388dad90d4bbd760a152321f2143af7"
    );
    assert_eq!(
        digest_md5::rspauth_value(&p),
        "ea40f60335c427b5527b84dbabcdfffd"
    );
}

#[test]
fn digest_md5_server_challenge_format() {
    let ctx = ctx_with(&[]);
    let mut server = DigestMd5Server::with_nonce(&ctx, "N0nce".into());
    assert_eq!(
        challenge(server.step(None)),
        b"realm=\"peers.test\",nonce=\"N0nce\",qop=\"auth\",charset=utf-8,algorithm=md5-sess"
    );
}

#[test]
fn digest_md5_server_first_rejects_initial_response() {
    let ctx = ctx_with(&[]);
    let mut server = sasl::server(Mechanism::DigestMd5, &ctx, &mut SeededRandom::from_seed(1));
    assert_eq!(
        failure(server.step(Some(b"username=\"x\""))),
        SaslError::InitialResponseToServerFirst(Mechanism::DigestMd5)
    );
}

/// The client's response to a challenge in the given layout, checked by a server that
/// issued the same nonce.
fn digest_against(challenge_text: &str, nonce: &str) -> Outcome {
    let ctx = ctx_with(&[("alice", plain("wonderland"))]);
    let mut server = DigestMd5Server::with_nonce(&ctx, nonce.into());
    let _ = server.step(None);
    let mut client = DigestMd5Client::with_cnonce(&creds("alice", "wonderland"), "cn".into());
    assert_eq!(client.initial_response(), Ok(None));
    let response = match client.step(challenge_text.as_bytes()) {
        Ok(r) => r,
        Err(e) => return Outcome::Client(e),
    };
    match server.step(Some(&response)) {
        ServerStep::Success {
            identity,
            additional: Some(a),
        } => match client.step(&a).and_then(|_| client.verify_success(None)) {
            Ok(()) => Outcome::Mutual(identity),
            Err(e) => Outcome::Client(e),
        },
        ServerStep::Failure(e) => Outcome::Server(e),
        other => panic!("{other:?}"),
    }
}

#[test]
fn digest_md5_client_accepts_cyrus_and_dovecot_layouts() {
    let alice = Outcome::Mutual(Authenticated {
        authcid: "alice".into(),
        authzid: None,
    });
    // Cyrus: nonce first, charset and algorithm unquoted (peers/README).
    assert_eq!(
        digest_against(
            "nonce=\"abc+/=\",realm=\"peers.test\",qop=\"auth\",charset=utf-8,algorithm=md5-sess",
            "abc+/="
        ),
        alice
    );
    // Dovecot: realm first, everything quoted.
    assert_eq!(
        digest_against(
            "realm=\"peers.test\",nonce=\"abc\",qop=\"auth\",charset=\"utf-8\",algorithm=\"md5-sess\"",
            "abc"
        ),
        alice
    );
}

#[test]
fn digest_md5_client_challenge_rules() {
    let cases: &[(&str, DigestMd5Error)] = &[
        (
            "realm=\"r\",qop=\"auth\",algorithm=md5-sess",
            DigestMd5Error::DirectiveMissing("nonce"),
        ),
        (
            "nonce=\"a\",nonce=\"b\",algorithm=md5-sess",
            DigestMd5Error::DirectiveRepeated("nonce"),
        ),
        (
            "nonce=\"a\",qop=\"auth\"",
            DigestMd5Error::DirectiveMissing("algorithm"),
        ),
        (
            "nonce=\"a\",algorithm=md5",
            DigestMd5Error::AlgorithmNotMd5Sess,
        ),
        (
            "nonce=\"a\",qop=\"auth-int,auth-conf\",algorithm=md5-sess",
            DigestMd5Error::QopAuthNotOffered,
        ),
        (
            "nonce=\"a\",charset=iso-8859-1,algorithm=md5-sess",
            DigestMd5Error::CharsetNotUtf8,
        ),
        ("nonce=\"a", DigestMd5Error::MalformedDirectiveList),
    ];
    for (text, expected) in cases {
        let mut client = DigestMd5Client::with_cnonce(&creds("alice", "pw"), "c".into());
        assert_eq!(
            client.step(text.as_bytes()),
            Err(SaslError::DigestMd5(expected.clone())),
            "{text}"
        );
    }
    let long = format!("nonce=\"{}\",algorithm=md5-sess", "a".repeat(2048));
    let mut client = DigestMd5Client::with_cnonce(&creds("alice", "pw"), "c".into());
    assert_eq!(
        client.step(long.as_bytes()),
        Err(SaslError::DigestMd5(DigestMd5Error::ChallengeTooLong))
    );
}

#[test]
fn digest_md5_client_without_realm_or_qop_uses_empty_realm_and_auth() {
    // No realm: A1 hashes an empty realm (RFC 2831 §2.1.2), and the response carries no
    // realm directive. Checked against the pure computation.
    let mut client = DigestMd5Client::with_cnonce(&creds("alice", "pw"), "cn".into());
    let response = client.step(b"nonce=\"n\",algorithm=md5-sess").unwrap();
    let list = digest_md5::parse_directives(&response).unwrap();
    assert!(!list.iter().any(|d| d.name == "realm"));
    let expected = digest_md5::response_value(&DigestParams {
        username: b"alice",
        realm: b"",
        password: b"pw",
        nonce: b"n",
        cnonce: b"cn",
        nc: b"00000001",
        qop: b"auth",
        digest_uri: b"smtp/smtp.peers.test",
        authzid: None,
    });
    let got = list.iter().find(|d| d.name == "response").unwrap();
    assert_eq!(got.value, expected.as_bytes());
    // Without charset=utf-8 the credentials go as ISO 8859-1.
    assert!(!list.iter().any(|d| d.name == "charset"));
}

#[test]
fn digest_md5_client_picks_first_of_several_realms() {
    let mut client = DigestMd5Client::with_cnonce(&creds("alice", "pw"), "cn".into());
    let response = client
        .step(b"realm=\"one\",realm=\"two\",nonce=\"n\",charset=utf-8,algorithm=md5-sess")
        .unwrap();
    let list = digest_md5::parse_directives(&response).unwrap();
    let realms: Vec<_> = list.iter().filter(|d| d.name == "realm").collect();
    assert_eq!(realms.len(), 1);
    assert_eq!(realms[0].value, b"one");
}

#[test]
fn digest_md5_utf8_credentials_are_hashed_as_latin1_when_representable() {
    // RFC 2831 §2.1.2.1: with charset=utf-8, "jörg"/"pässwörd" are hashed in ISO 8859-1.
    let mut client = DigestMd5Client::with_cnonce(&creds("jörg", "pässwörd"), "cn".into());
    let response = client
        .step(b"realm=\"peers.test\",nonce=\"n\",charset=utf-8,algorithm=md5-sess")
        .unwrap();
    let list = digest_md5::parse_directives(&response).unwrap();
    let user = list.iter().find(|d| d.name == "username").unwrap();
    assert_eq!(user.value, "jörg".as_bytes(), "sent as UTF-8");
    let expected = digest_md5::response_value(&DigestParams {
        username: b"j\xf6rg",
        realm: b"peers.test",
        password: b"p\xe4ssw\xf6rd",
        nonce: b"n",
        cnonce: b"cn",
        nc: b"00000001",
        qop: b"auth",
        digest_uri: b"smtp/smtp.peers.test",
        authzid: None,
    });
    let got = list.iter().find(|d| d.name == "response").unwrap();
    assert_eq!(got.value, expected.as_bytes());
}

#[test]
fn digest_md5_iso_8859_1_exchange_without_charset() {
    // The server offers charset=utf-8 but a client may ignore it; strip it from the
    // challenge so the client sends ISO 8859-1.
    let ctx = ctx_with(&[("jörg", plain("pässwörd"))]);
    let mut server = DigestMd5Server::with_nonce(&ctx, "n".into());
    let ch = replace(&challenge(server.step(None)), ",charset=utf-8", "");
    let mut client = DigestMd5Client::with_cnonce(&creds("jörg", "pässwörd"), "cn".into());
    let response = client.step(&ch).unwrap();
    assert!(
        response.windows(6).any(|w| w == b"\"j\xf6rg\""),
        "username on the wire in ISO 8859-1"
    );
    let (identity, a) = success(server.step(Some(&response)));
    assert_eq!(identity.authcid, "jörg");
    assert_eq!(client.step(&a), Ok(vec![]));
    assert_eq!(client.verify_success(None), Ok(()));

    // Not representable in ISO 8859-1 and no charset: the client refuses.
    let mut client = DigestMd5Client::with_cnonce(&creds("€uro", "pw"), "cn".into());
    assert_eq!(
        client.step(b"nonce=\"n\",algorithm=md5-sess"),
        Err(SaslError::DigestMd5(DigestMd5Error::CredentialsNotLatin1))
    );
}

/// A valid response from a client to a fresh server, for mutation.
fn digest_setup(
    user: &str,
    password: &str,
    stored: StoredCredential,
) -> (DigestMd5Server, Vec<u8>) {
    let ctx = ctx_with(&[(user, stored)]);
    let mut server = DigestMd5Server::with_nonce(&ctx, "srvnonce".into());
    let ch = challenge(server.step(None));
    let mut client = DigestMd5Client::with_cnonce(&creds(user, password), "clinonce".into());
    let response = client.step(&ch).unwrap();
    (server, response)
}

#[test]
fn digest_md5_server_rules() {
    let d = |e| SaslError::DigestMd5(e);
    let cases: Vec<(&str, &str, SaslError)> = vec![
        (
            "nc=00000001",
            "nc=00000002",
            d(DigestMd5Error::BadNonceCount),
        ),
        (
            "nc=00000001",
            "nc=1",
            d(DigestMd5Error::MalformedNonceCount),
        ),
        (
            "nonce=\"srvnonce\"",
            "nonce=\"other\"",
            d(DigestMd5Error::NonceMismatch),
        ),
        ("qop=auth", "qop=auth-int", d(DigestMd5Error::QopNotOffered)),
        (
            "qop=auth",
            "qop=auth-conf",
            d(DigestMd5Error::QopNotOffered),
        ),
        (
            "digest-uri=\"smtp/",
            "digest-uri=\"imap/",
            d(DigestMd5Error::DigestUriServTypeNotSmtp),
        ),
        (
            "smtp/smtp.peers.test",
            "smtp/mx.elsewhere.test",
            d(DigestMd5Error::DigestUriHostMismatch),
        ),
        (
            "smtp/smtp.peers.test",
            "smtp/smtp.peers.test/evil.test",
            d(DigestMd5Error::DigestUriServNameMismatch),
        ),
        (
            "smtp/smtp.peers.test",
            "smtp.peers.test",
            d(DigestMd5Error::MalformedDigestUri),
        ),
        (
            "realm=\"peers.test\"",
            "realm=\"other.test\"",
            d(DigestMd5Error::RealmNotOffered),
        ),
        ("realm=\"peers.test\",", "", d(DigestMd5Error::RealmMissing)),
        (
            "charset=utf-8",
            "charset=latin1",
            d(DigestMd5Error::CharsetNotUtf8),
        ),
        (
            "username=\"alice\",",
            "",
            d(DigestMd5Error::DirectiveMissing("username")),
        ),
        (
            "cnonce=\"clinonce\",",
            "",
            d(DigestMd5Error::DirectiveMissing("cnonce")),
        ),
        (
            "nc=00000001,",
            "",
            d(DigestMd5Error::DirectiveMissing("nc")),
        ),
        (
            "nonce=\"srvnonce\",",
            "",
            d(DigestMd5Error::DirectiveMissing("nonce")),
        ),
        (
            "digest-uri=\"smtp/smtp.peers.test\",",
            "",
            d(DigestMd5Error::DirectiveMissing("digest-uri")),
        ),
        (
            "username=\"alice\"",
            "username=\"alice\",username=\"alice\"",
            d(DigestMd5Error::DirectiveRepeated("username")),
        ),
        (
            "qop=auth",
            "qop=auth,qop=auth",
            d(DigestMd5Error::DirectiveRepeated("qop")),
        ),
        (
            "response=",
            "response=0",
            d(DigestMd5Error::MalformedResponseValue),
        ),
        (
            "username=\"alice\"",
            "username=\"alice",
            d(DigestMd5Error::MalformedDirectiveList),
        ),
        // Mutating the hashed parts is caught only by the proof.
        (
            "cnonce=\"clinonce\"",
            "cnonce=\"clinoncf\"",
            SaslError::InvalidCredentials,
        ),
        (
            "username=\"alice\"",
            "username=\"bob\"",
            SaslError::InvalidCredentials,
        ),
    ];
    for (from, to, expected) in cases {
        let (mut server, response) = digest_setup("alice", "pw", plain("pw"));
        let mutated = replace(&response, from, to);
        assert_eq!(
            failure(server.step(Some(&mutated))),
            expected,
            "{}",
            String::from_utf8_lossy(&mutated)
        );
    }
}

#[test]
fn digest_md5_server_ignores_unknown_directives_and_tolerates_lws() {
    let (mut server, response) = digest_setup("alice", "pw", plain("pw"));
    let mut mutated = b" , future=\"x\" ,,".to_vec();
    mutated.extend_from_slice(&replace(&response, ",nc=", " ,\r\n nc = "));
    let (identity, additional) = success(server.step(Some(&mutated)));
    assert_eq!(identity.authcid, "alice");
    assert!(additional.starts_with(b"rspauth="));
}

#[test]
fn digest_md5_server_credential_rules() {
    // Wrong password and unknown user fail alike.
    let (mut server, response) = digest_setup("alice", "wrong", plain("pw"));
    assert_eq!(
        failure(server.step(Some(&response))),
        SaslError::InvalidCredentials
    );
    let ctx = ctx_with(&[]);
    let mut server = DigestMd5Server::with_nonce(&ctx, "srvnonce".into());
    let ch = challenge(server.step(None));
    let mut client = DigestMd5Client::with_cnonce(&creds("nobody", "pw"), "c".into());
    let response = client.step(&ch).unwrap();
    assert_eq!(
        failure(server.step(Some(&response))),
        SaslError::InvalidCredentials
    );

    // A stored SCRAM key cannot serve DIGEST-MD5.
    let key = scram::stored_credential(ScramHash::Sha256, b"pw", b"salt", 4096);
    let (mut server, response) = digest_setup("alice", "pw", key);
    assert_eq!(
        failure(server.step(Some(&response))),
        SaslError::SchemeUnusable {
            mechanism: Mechanism::DigestMd5,
            scheme: "SCRAM-SHA-256"
        }
    );

    // user@realm is tried for an unqualified name.
    let mut client = DigestMd5Client::with_cnonce(&creds("alice", "pw"), "cn".into());
    let ctx = ctx_with(&[("alice@peers.test", plain("pw"))]);
    let mut server = DigestMd5Server::with_nonce(&ctx, "n".into());
    let ch = challenge(server.step(None));
    let response = client.step(&ch).unwrap();
    assert_eq!(success(server.step(Some(&response))).0.authcid, "alice");

    // The exchange is over after the response.
    assert_eq!(failure(server.step(Some(b""))), SaslError::ExchangeOver);
}

#[test]
fn digest_md5_authzid_must_equal_username() {
    let ctx = ctx_with(&[("alice", plain("pw"))]);
    for (authzid, expected_ok) in [("alice", true), ("bob", false)] {
        let mut server = DigestMd5Server::with_nonce(&ctx, "n".into());
        let ch = challenge(server.step(None));
        let mut c = creds("alice", "pw");
        c.authzid = Some(authzid.into());
        let mut client = DigestMd5Client::with_cnonce(&c, "cn".into());
        let response = client.step(&ch).unwrap();
        let step = server.step(Some(&response));
        if expected_ok {
            assert_eq!(success(step).0.authzid.as_deref(), Some("alice"));
        } else {
            assert_eq!(failure(step), SaslError::AuthzidNotPermitted);
        }
    }
}

#[test]
fn digest_md5_client_requires_rspauth() {
    let ctx = ctx_with(&[("alice", plain("pw"))]);
    let mut server = DigestMd5Server::with_nonce(&ctx, "n".into());
    let ch = challenge(server.step(None));
    let mut client = DigestMd5Client::with_cnonce(&creds("alice", "pw"), "cn".into());
    let response = client.step(&ch).unwrap();
    let (_, additional) = success(server.step(Some(&response)));

    // Never verified: 235 without rspauth is not mutual authentication.
    let mut c2 = DigestMd5Client::with_cnonce(&creds("alice", "pw"), "cn".into());
    let _ = c2.step(&ch).unwrap();
    assert_eq!(
        c2.verify_success(None),
        Err(SaslError::ServerProofMismatch(Mechanism::DigestMd5))
    );
    // rspauth on the 235 line itself.
    let mut c3 = DigestMd5Client::with_cnonce(&creds("alice", "pw"), "cn".into());
    let _ = c3.step(&ch).unwrap();
    assert_eq!(c3.verify_success(Some(&additional)), Ok(()));
    // rspauth in a 334, then 235.
    assert_eq!(client.step(&additional), Ok(vec![]));
    assert_eq!(client.verify_success(None), Ok(()));
    // Garbage where rspauth belongs.
    let mut c4 = DigestMd5Client::with_cnonce(&creds("alice", "pw"), "cn".into());
    let _ = c4.step(&ch).unwrap();
    assert_eq!(
        c4.step(b"rspauth=xyz"),
        Err(SaslError::DigestMd5(DigestMd5Error::MalformedRspauth))
    );
}

// ---------------------------------------------------------------------------------
// SCRAM vectors
// ---------------------------------------------------------------------------------

/// The RFC 5802 §5 exchange, with the server holding keys made by
/// [`scram::stored_credential`] from the RFC's salt.
#[test]
fn scram_sha1_rfc5802_section5_example() {
    let salt = B64.decode("QSXCR+Q6sek8bf92").unwrap();
    let stored = scram::stored_credential(ScramHash::Sha1, b"pencil", &salt, 4096);
    // Independently computed StoredKey/ServerKey (Python hashlib) for this vector.
    match &stored {
        StoredCredential::Scram {
            stored_key,
            server_key,
            ..
        } => {
            assert_eq!(
                B64.encode(stored_key.expose()),
                "6dlGYMOdZcOPutkcNY8U2g7vK9Y="
            );
            assert_eq!(
                B64.encode(server_key.expose()),
                "D+CSWLOshSulAsxiupA+qs2/fTE="
            );
        }
        other => panic!("{other:?}"),
    }
    let ctx = ctx_with(&[("user", stored)]);
    let mut server = ScramServer::with_nonce(
        ScramHash::Sha1,
        &ctx,
        "3rfcNHYJY1ZVvWVs7j".into(),
        Secret::default(),
    );
    let mut client = ScramClient::with_nonce(
        ScramHash::Sha1,
        &creds("user", "pencil"),
        "fyko+d2lbbFgONRv9qkxdawL".into(),
    );

    let first = client.initial_response().unwrap().unwrap();
    assert_eq!(first, b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
    let server_first = challenge(server.step(Some(&first)));
    assert_eq!(
        server_first,
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    );
    let client_final = client.step(&server_first).unwrap();
    assert_eq!(
        client_final,
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
    );
    let (identity, server_final) = success(server.step(Some(&client_final)));
    assert_eq!(identity.authcid, "user");
    assert_eq!(server_final, b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    assert_eq!(client.step(&server_final), Ok(vec![]));
    assert_eq!(client.verify_success(None), Ok(()));
}

/// The RFC 7677 §3 exchange, with the server holding the keys in Dovecot's
/// `{SCRAM-SHA-256}iterations,salt,StoredKey,ServerKey` layout, computed independently.
#[test]
fn scram_sha256_rfc7677_section3_example_with_dovecot_keys() {
    let dovecot = "4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
    let fields: Vec<&str> = dovecot.split(',').collect();
    let stored = StoredCredential::Scram {
        hash: ScramHash::Sha256,
        iterations: fields[0].parse().unwrap(),
        salt: B64.decode(fields[1]).unwrap(),
        stored_key: Secret::new(B64.decode(fields[2]).unwrap()),
        server_key: Secret::new(B64.decode(fields[3]).unwrap()),
    };
    let ctx = ctx_with(&[("user", stored)]);
    let mut server = ScramServer::with_nonce(
        ScramHash::Sha256,
        &ctx,
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
        Secret::default(),
    );
    let mut client = ScramClient::with_nonce(
        ScramHash::Sha256,
        &creds("user", "pencil"),
        "rOprNGfwEbeRWgbNEkqO".into(),
    );
    // gsasl style: no initial response, the server's empty challenge asks for it.
    assert_eq!(challenge(server.step(None)), b"");
    let first = client.step(b"").unwrap();
    assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let server_first = challenge(server.step(Some(&first)));
    assert_eq!(
        server_first,
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    );
    let client_final = client.step(&server_first).unwrap();
    assert_eq!(
        client_final,
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=".as_slice()
    );
    let (_, server_final) = success(server.step(Some(&client_final)));
    assert_eq!(
        server_final,
        b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".as_slice()
    );
    // v= on the 235 line itself.
    assert_eq!(client.verify_success(Some(&server_final)), Ok(()));
}

// ---------------------------------------------------------------------------------
// SCRAM server rules
// ---------------------------------------------------------------------------------

fn scram_server(hash: ScramHash, users: &[(&str, StoredCredential)]) -> ScramServer {
    ScramServer::with_nonce(hash, &ctx_with(users), "SNONCE".into(), Secret::from("k"))
}

#[test]
fn scram_server_client_first_rules() {
    let s = |e| SaslError::Scram(e);
    let cases: &[(&[u8], SaslError)] = &[
        (
            b"p=tls-unique,,n=user,r=abc",
            s(ScramError::ChannelBindingNotSupported),
        ),
        (b"x,,n=user,r=abc", s(ScramError::MalformedGs2Header)),
        (b"n,b=x,n=user,r=abc", s(ScramError::MalformedGs2Header)),
        (b"n,", s(ScramError::MalformedGs2Header)),
        (b"n,,m=ext,n=user,r=abc", s(ScramError::MandatoryExtension)),
        (
            b"n,,r=abc,n=user",
            s(ScramError::AttributeOutOfOrder {
                expected: 'n',
                found: 'r',
            }),
        ),
        (
            b"n,,x=1,n=user,r=abc",
            s(ScramError::UnexpectedAttribute {
                expected: 'n',
                found: 'x',
            }),
        ),
        (
            b"n,,n=user",
            s(ScramError::AttributeMissing { expected: 'r' }),
        ),
        (
            b"n,,n=user,r=abc,n=again",
            s(ScramError::MisplacedAttribute { found: 'n' }),
        ),
        (b"n,,n=user,r=abc,m=x", s(ScramError::MandatoryExtension)),
        (b"n,,n=us=er,r=abc", s(ScramError::MalformedSaslname)),
        (b"n,,n=,r=abc", s(ScramError::MalformedAttribute)),
        (b"n,,n=user,,r=abc", s(ScramError::MalformedAttribute)),
        (b"n,,n=\x07bell,r=abc", s(ScramError::SaslPrepFailed)),
        (b"n,,n=user,r=a\x7fc", s(ScramError::MalformedNonce)),
        (b"n,a=us=zz,n=user,r=abc", s(ScramError::MalformedSaslname)),
    ];
    for (message, expected) in cases {
        let mut server = scram_server(ScramHash::Sha1, &[("user", plain("pw"))]);
        assert_eq!(
            failure(server.step(Some(message))),
            *expected,
            "{}",
            String::from_utf8_lossy(message)
        );
    }
    // Unknown extensions after the nonce are ignored.
    let mut server = scram_server(ScramHash::Sha1, &[("user", plain("pw"))]);
    let _ = challenge(server.step(Some(b"n,,n=user,r=abc,x=future")));
}

/// A valid client-first and client-final against a given server, for mutation.
fn scram_setup(
    hash: ScramHash,
    user: &str,
    password: &str,
    stored: StoredCredential,
) -> (ScramServer, Vec<u8>) {
    let mut server = scram_server(hash, &[(user, stored)]);
    let mut client = ScramClient::with_nonce(hash, &creds(user, password), "CNONCE".into());
    let first = client.initial_response().unwrap().unwrap();
    let server_first = challenge(server.step(Some(&first)));
    let client_final = client.step(&server_first).unwrap();
    (server, client_final)
}

#[test]
fn scram_server_client_final_rules() {
    let s = |e| SaslError::Scram(e);
    let y_header = B64.encode("y,,");
    let cases: Vec<(&str, String, SaslError)> = vec![
        (
            "c=biws",
            format!("c={y_header}"),
            s(ScramError::ChannelBindingMismatch),
        ),
        ("c=biws", "c=!!".into(), s(ScramError::MalformedBase64)),
        (
            "r=CNONCESNONCE",
            "r=CNONCESNONCF".into(),
            s(ScramError::NonceMismatch),
        ),
        (
            "r=CNONCESNONCE",
            "r=CNONCE".into(),
            s(ScramError::NonceMismatch),
        ),
        (
            "c=biws,",
            String::new(),
            s(ScramError::AttributeOutOfOrder {
                expected: 'c',
                found: 'r',
            }),
        ),
        (
            "c=biws,r=CNONCESNONCE",
            "r=CNONCESNONCE,c=biws".into(),
            s(ScramError::AttributeOutOfOrder {
                expected: 'c',
                found: 'r',
            }),
        ),
        (",p=", ",m=x,p=".into(), s(ScramError::MandatoryExtension)),
        (
            ",p=",
            ",r=again,p=".into(),
            s(ScramError::MisplacedAttribute { found: 'r' }),
        ),
        (",p=", ",p=AAAA,p=".into(), s(ScramError::TrailingAttribute)),
        (",p=", ",p=AAAA".into(), s(ScramError::MalformedProof)),
    ];
    for (from, to, expected) in cases {
        let (mut server, client_final) = scram_setup(ScramHash::Sha1, "user", "pw", plain("pw"));
        let mutated = replace(&client_final, from, &to);
        assert_eq!(
            failure(server.step(Some(&mutated))),
            expected,
            "{}",
            String::from_utf8_lossy(&mutated)
        );
    }
    // An unknown extension before the proof is ignored but is part of AuthMessage, so
    // inserting it after the client computed the proof breaks the proof.
    let (mut server, client_final) = scram_setup(ScramHash::Sha1, "user", "pw", plain("pw"));
    let mutated = replace(&client_final, ",p=", ",x=future,p=");
    assert_eq!(
        failure(server.step(Some(&mutated))),
        SaslError::InvalidCredentials
    );
    // Missing proof.
    let (mut server, client_final) = scram_setup(ScramHash::Sha1, "user", "pw", plain("pw"));
    let cut = client_final.iter().rposition(|&b| b == b',').unwrap();
    assert_eq!(
        failure(server.step(Some(&client_final[..cut]))),
        s(ScramError::AttributeMissing { expected: 'p' })
    );
}

#[test]
fn scram_server_credential_rules() {
    // Wrong password.
    let (mut server, client_final) = scram_setup(ScramHash::Sha256, "user", "wrong", plain("pw"));
    assert_eq!(
        failure(server.step(Some(&client_final))),
        SaslError::InvalidCredentials
    );

    // A SCRAM-SHA-1 key cannot serve SCRAM-SHA-256, nor a CRAM-MD5 context.
    let key = scram::stored_credential(ScramHash::Sha1, b"pw", b"salt", 4096);
    let mut server = scram_server(ScramHash::Sha256, &[("user", key)]);
    assert_eq!(
        failure(server.step(Some(b"n,,n=user,r=abc"))),
        SaslError::SchemeUnusable {
            mechanism: Mechanism::ScramSha256,
            scheme: "SCRAM-SHA-1"
        }
    );
    let cram = StoredCredential::CramMd5(Secret::new(vec![0; 32]));
    let mut server = scram_server(ScramHash::Sha1, &[("user", cram)]);
    assert_eq!(
        failure(server.step(Some(b"n,,n=user,r=abc"))),
        SaslError::SchemeUnusable {
            mechanism: Mechanism::ScramSha1,
            scheme: "CRAM-MD5"
        }
    );

    // Authzid other than the user.
    let ctx = ctx_with(&[("user", plain("pw"))]);
    let mut server = ScramServer::with_nonce(ScramHash::Sha1, &ctx, "S".into(), Secret::from("k"));
    let mut c = creds("user", "pw");
    c.authzid = Some("admin".into());
    let mut client = ScramClient::with_nonce(ScramHash::Sha1, &c, "C".into());
    assert_eq!(
        run(&mut client, &mut server),
        Outcome::Server(SaslError::AuthzidNotPermitted)
    );
}

#[test]
fn scram_unknown_user_looks_like_a_plaintext_user_until_the_proof() {
    let known = scram_server(ScramHash::Sha256, &[("alice", plain("pw"))]);
    let mut known = known;
    let mut unknown = scram_server(ScramHash::Sha256, &[("alice", plain("pw"))]);
    let a = challenge(known.step(Some(b"n,,n=alice,r=abc")));
    let b = challenge(unknown.step(Some(b"n,,n=mallory,r=abc")));
    let shape = |m: &[u8]| {
        let s = String::from_utf8(m.to_vec()).unwrap();
        let parts: Vec<String> = s.split(',').map(|p| p[..2].to_string()).collect();
        (parts, s.len(), s.ends_with(",i=4096"))
    };
    assert_eq!(shape(&a), shape(&b));
    // Deterministic per user and secret: the same unknown name gets the same salt.
    let mut again = scram_server(ScramHash::Sha256, &[("alice", plain("pw"))]);
    assert_eq!(challenge(again.step(Some(b"n,,n=mallory,r=abc"))), b);
    // And the proof step fails as a wrong password does.
    let mut client =
        ScramClient::with_nonce(ScramHash::Sha256, &creds("mallory", "pw"), "abc".into());
    let _ = client.initial_response();
    let client_final = client.step(&b).unwrap();
    assert_eq!(
        failure(unknown.step(Some(&client_final))),
        SaslError::InvalidCredentials
    );
}

// ---------------------------------------------------------------------------------
// SCRAM client rules
// ---------------------------------------------------------------------------------

fn scram_client_after_first(hash: ScramHash) -> ScramClient {
    let mut client = ScramClient::with_nonce(hash, &creds("user", "pencil"), "CN".into());
    assert_eq!(
        client.initial_response().unwrap().unwrap(),
        b"n,,n=user,r=CN"
    );
    client
}

#[test]
fn scram_client_server_first_rules() {
    let s = |e| SaslError::Scram(e);
    let cases: &[(&[u8], SaslError)] = &[
        (
            b"r=CNsn,s=QQ==,i=1000001",
            s(ScramError::IterationCountTooHigh { max: 1_000_000 }),
        ),
        (b"r=CNsn,s=QQ==,i=0", s(ScramError::MalformedIterationCount)),
        (
            b"r=CNsn,s=QQ==,i=-1",
            s(ScramError::MalformedIterationCount),
        ),
        (
            b"r=CNsn,s=QQ==,i=99999999999999",
            s(ScramError::MalformedIterationCount),
        ),
        (b"r=XXsn,s=QQ==,i=1", s(ScramError::ServerNonceNotExtended)),
        (b"r=CN,s=QQ==,i=1", s(ScramError::ServerNonceNotExtended)),
        (b"r=CNsn,s=Q,i=1", s(ScramError::MalformedBase64)),
        (b"r=CNsn,s==,i=1", s(ScramError::MalformedBase64)),
        (b"m=x,r=CNsn,s=QQ==,i=1", s(ScramError::MandatoryExtension)),
        (b"r=CNsn,s=QQ==,i=1,m=x", s(ScramError::MandatoryExtension)),
        (
            b"r=CNsn,i=1,s=QQ==",
            s(ScramError::AttributeOutOfOrder {
                expected: 's',
                found: 'i',
            }),
        ),
        (
            b"r=CNsn,s=QQ==",
            s(ScramError::AttributeMissing { expected: 'i' }),
        ),
        (
            b"e=other-error",
            s(ScramError::AttributeOutOfOrder {
                expected: 'r',
                found: 'e',
            }),
        ),
    ];
    for (message, expected) in cases {
        let mut client = scram_client_after_first(ScramHash::Sha1);
        assert_eq!(
            client.step(message),
            Err(expected.clone()),
            "{}",
            String::from_utf8_lossy(message)
        );
    }
    // Unknown extensions after the count are ignored.
    let mut client = scram_client_after_first(ScramHash::Sha1);
    assert!(client.step(b"r=CNsn,s=QQ==,i=1,x=future").is_ok());
    // A non-empty first challenge to a client that sent no initial response.
    let mut client = ScramClient::with_nonce(ScramHash::Sha1, &creds("u", "p"), "CN".into());
    assert_eq!(
        client.step(b"r=CNsn,s=QQ==,i=1"),
        Err(s(ScramError::NonEmptyInitialChallenge))
    );
}

#[test]
fn scram_client_server_final_rules() {
    let setup = || {
        let mut client = scram_client_after_first(ScramHash::Sha1);
        client.step(b"r=CNsn,s=QQ==,i=1").unwrap();
        client
    };
    let mech = Mechanism::ScramSha1;
    let mut client = setup();
    assert_eq!(
        client.step(b"e=invalid-proof"),
        Err(SaslError::ServerReportedError(mech))
    );
    let mut client = setup();
    assert_eq!(
        client.step(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        Err(SaslError::ServerProofMismatch(mech))
    );
    let mut client = setup();
    assert_eq!(
        client.step(b"v=!"),
        Err(SaslError::Scram(ScramError::MalformedBase64))
    );
    let mut client = setup();
    assert_eq!(
        client.step(b""),
        Err(SaslError::Scram(ScramError::MalformedAttribute))
    );
    // 235 with the server never having proven itself.
    let mut client = setup();
    assert_eq!(
        client.verify_success(None),
        Err(SaslError::ServerProofMismatch(mech))
    );
}

#[test]
fn scram_client_escapes_saslnames_and_sends_authzid() {
    let mut c = creds("a,b=c", "pw");
    c.authzid = Some("x=y".into());
    let mut client = ScramClient::with_nonce(ScramHash::Sha256, &c, "N".into());
    assert_eq!(
        client.initial_response().unwrap().unwrap(),
        b"n,a=x=3Dy,n=a=2Cb=3Dc,r=N"
    );
}

#[test]
fn scram_client_nonce_comes_from_the_injected_rng() {
    let mut a = sasl::client(
        Mechanism::ScramSha1,
        &creds("u", "p"),
        &mut FixedRandom::new(vec![0, 1, 2]),
    );
    let mut b = sasl::client(
        Mechanism::ScramSha1,
        &creds("u", "p"),
        &mut FixedRandom::new(vec![0, 1, 2]),
    );
    let first = a.initial_response().unwrap().unwrap();
    assert_eq!(first, b.initial_response().unwrap().unwrap());
    assert!(first.starts_with(b"n,,n=u,r=ABCABC"));
}

// ---------------------------------------------------------------------------------
// Pairs over generated credentials
// ---------------------------------------------------------------------------------

const MECHS: [Mechanism; 3] = [
    Mechanism::DigestMd5,
    Mechanism::ScramSha1,
    Mechanism::ScramSha256,
];

fn pair(
    mechanism: Mechanism,
    stored: StoredCredential,
    user: &str,
    password: &str,
    seed: u64,
) -> (Box<dyn ClientMechanism>, Box<dyn ServerMechanism>) {
    let ctx = ctx_with(&[(user, stored)]);
    let mut rng = SeededRandom::from_seed(seed);
    let server = sasl::server(mechanism, &ctx, &mut rng);
    let client = sasl::client(mechanism, &creds(user, password), &mut rng);
    (client, server)
}

/// The client's messages, recorded, for a given server.
fn record(
    client: &mut dyn ClientMechanism,
    server: &mut dyn ServerMechanism,
) -> Vec<Option<Vec<u8>>> {
    let mut sent = Vec::new();
    let mut input = client.initial_response().unwrap();
    loop {
        sent.push(input.clone());
        match server.step(input.as_deref()) {
            ServerStep::Challenge(c) => input = Some(client.step(&c).unwrap()),
            _ => return sent,
        }
    }
}

fn name_strategy() -> impl Strategy<Value = String> {
    // UTF-8 beyond Latin-1, the characters SCRAM escapes and DIGEST-MD5 quotes.
    "[a-zA-Z0-9äöüßé€中@., =_\\\\\"-]{1,12}"
}

fn password_strategy() -> impl Strategy<Value = String> {
    "[ -~äöü€中]{0,16}"
}

proptest! {
    // PBKDF2 at 4096 iterations runs on both sides of each SCRAM exchange in a debug
    // build, so the case count is kept small.
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn pairs_authenticate_and_reject(
        user in name_strategy(),
        password in password_strategy(),
        seed in any::<u64>(),
    ) {
        for mechanism in MECHS {
            // Right password: both sides authenticate.
            let (mut c, mut s) = pair(mechanism, plain(&password), &user, &password, seed);
            let outcome = run(c.as_mut(), s.as_mut());
            prop_assert_eq!(
                outcome,
                Outcome::Mutual(Authenticated { authcid: user.clone(), authzid: None }),
                "{:?}", mechanism
            );

            // Wrong password.
            let wrong = format!("{password}x");
            let (mut c, mut s) = pair(mechanism, plain(&password), &user, &wrong, seed);
            prop_assert_eq!(run(c.as_mut(), s.as_mut()), Outcome::Server(SaslError::InvalidCredentials));

            // Replay: the recorded final message against a fresh server (new nonce).
            let (mut c, mut s) = pair(mechanism, plain(&password), &user, &password, seed);
            let recorded = record(c.as_mut(), s.as_mut());
            let ctx = ctx_with(&[(&user, plain(&password))]);
            let mut fresh = sasl::server(mechanism, &ctx, &mut SeededRandom::from_seed(seed ^ 1));
            let mut last = None;
            for m in &recorded {
                last = Some(fresh.step(m.as_deref()));
            }
            let replayed = failure(last.unwrap());
            let expected = match mechanism {
                Mechanism::DigestMd5 => SaslError::DigestMd5(DigestMd5Error::NonceMismatch),
                _ => SaslError::Scram(ScramError::NonceMismatch),
            };
            prop_assert_eq!(replayed, expected);
        }
    }

    #[test]
    fn pairs_detect_tampering(
        user in name_strategy(),
        password in password_strategy(),
        seed in any::<u64>(),
        bit in 0u8..8,
    ) {
        for mechanism in MECHS {
            // Flip a bit of the proof in the client's final message.
            let (mut c, mut s) = pair(mechanism, plain(&password), &user, &password, seed);
            let mut input = c.initial_response().unwrap();
            let last = loop {
                match s.step(input.as_deref()) {
                    ServerStep::Challenge(ch) => {
                        let msg = c.step(&ch).unwrap();
                        let is_final = match mechanism {
                            Mechanism::DigestMd5 => true,
                            _ => msg.starts_with(b"c="),
                        };
                        if is_final {
                            break msg;
                        }
                        input = Some(msg);
                    }
                    other => panic!("{other:?}"),
                }
            };
            let tampered = match mechanism {
                Mechanism::DigestMd5 => {
                    // Replace one hex digit of response= with another hex digit.
                    let text = String::from_utf8_lossy(&last).into_owned();
                    let at = text.find("response=").unwrap() + 9 + usize::from(bit);
                    let mut bytes = last.clone();
                    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
                    bytes
                }
                _ => {
                    let at = last.windows(3).position(|w| w == b",p=").unwrap() + 3;
                    let mut proof = B64.decode(&last[at..]).unwrap();
                    proof[usize::from(bit)] ^= 1 << bit;
                    let mut bytes = last[..at].to_vec();
                    bytes.extend_from_slice(B64.encode(proof).as_bytes());
                    bytes
                }
            };
            prop_assert_eq!(failure(s.step(Some(&tampered))), SaslError::InvalidCredentials);

            // A server signature one bit off: the client refuses it.
            let (mut c, mut s) = pair(mechanism, plain(&password), &user, &password, seed);
            let mut input = c.initial_response().unwrap();
            let additional = loop {
                match s.step(input.as_deref()) {
                    ServerStep::Challenge(ch) => input = Some(c.step(&ch).unwrap()),
                    ServerStep::Success { additional: Some(a), .. } => break a,
                    other => panic!("{other:?}"),
                }
            };
            let forged = match mechanism {
                Mechanism::DigestMd5 => {
                    let mut a = additional.clone();
                    let at = 8 + usize::from(bit);
                    a[at] = if a[at] == b'0' { b'1' } else { b'0' };
                    a
                }
                _ => {
                    let mut sig = B64.decode(&additional[2..]).unwrap();
                    sig[usize::from(bit)] ^= 1 << bit;
                    let mut a = b"v=".to_vec();
                    a.extend_from_slice(B64.encode(sig).as_bytes());
                    a
                }
            };
            prop_assert_eq!(c.step(&forged), Err(SaslError::ServerProofMismatch(mechanism)));
            prop_assert_eq!(c.verify_success(None), Err(SaslError::ServerProofMismatch(mechanism)));
        }
    }

    #[test]
    fn digest_directive_lists_round_trip(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        authspec_reference::fuzz_oracles::mech_digest_scram::digest_directives(&data);
    }

    #[test]
    fn digest_directive_lists_round_trip_structured(
        items in proptest::collection::vec(("[a-z][a-z-]{0,8}", proptest::collection::vec(any::<u8>(), 0..12), any::<bool>()), 1..6)
    ) {
        // Directives built from arbitrary values (control octets and 8-bit included)
        // format to text that parses back to themselves.
        let list: Vec<digest_md5::Directive> = items
            .into_iter()
            .map(|(name, value, quoted)| digest_md5::Directive { name, value: value.clone(), quoted: quoted || value.is_empty() || !value.iter().all(|b| b.is_ascii_alphanumeric()) })
            .filter(|d| d.value.is_ascii() || d.quoted)
            .collect();
        prop_assume!(!list.is_empty());
        let text = digest_md5::format_directives(&list);
        prop_assert_eq!(digest_md5::parse_directives(&text), Ok(list));
    }
}

#[test]
fn fuzz_entry_points_hold_on_pair_transcripts() {
    // Feed real transcripts (with a password the fuzz store does not hold) to the
    // fuzzing entry points: they must neither panic nor report success.
    use authspec_reference::fuzz_oracles::mech_digest_scram as fz;
    let (mut c, mut s) = pair(Mechanism::ScramSha256, plain("pw"), "user", "pw", 7);
    let recorded = record(c.as_mut(), s.as_mut());
    let joined: Vec<u8> = recorded
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(&0u8);
    fz::server_scram_sha256(&joined);
    fz::server_scram_sha1(&joined);
    fz::client_scram(&joined);
    fz::server_digest_md5(&joined);
    fz::client_digest_md5(&joined);
}
