//! SCRAM-*-PLUS (RFC 5802 §6) and SCRAM-SHA-512: client/server pairs in memory for
//! every mechanism × binding type, tampered binding data (what a TLS-terminating man in
//! the middle produces), the downgrade rule, and issue 16's SASLprep check: a password
//! with non-ASCII spaces or compatibility characters authenticates the same through
//! PLAIN, LOGIN, CRAM-MD5 and SCRAM against every stored scheme that can hold it.

use authspec_reference::sasl::channel_binding::{
    CbType, ChannelBindings, ClientBinding, ServerBinding,
};
use authspec_reference::sasl::credentials::{CredentialStore, StoredCredential};
use authspec_reference::sasl::keys::cram_md5_context;
use authspec_reference::sasl::scram::{self, ScramError, ScramHash};
use authspec_reference::sasl::{
    self, ClientCredentials, ClientMechanism, Mechanism, SaslError, Secret, SeededRandom,
    ServerContext, ServerMechanism, ServerStep,
};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Default)]
struct Store(HashMap<String, StoredCredential>);

impl CredentialStore for Store {
    fn lookup(&self, user: &str) -> Option<StoredCredential> {
        self.0.get(user).cloned()
    }
}

fn ctx(user: &str, cred: StoredCredential) -> ServerContext {
    let mut s = Store::default();
    s.0.insert(user.into(), cred);
    ServerContext {
        hostname: "mx.peers.test".into(),
        realm: None,
        external_identity: None,
        credentials: Arc::new(s),
    }
}

fn creds(user: &str, password: &str) -> ClientCredentials {
    ClientCredentials {
        authcid: user.into(),
        password: Secret::from(password),
        authzid: None,
        host: "mx.peers.test".into(),
        port: Some(587),
    }
}

const PLUS: [Mechanism; 3] = [
    Mechanism::ScramSha1Plus,
    Mechanism::ScramSha256Plus,
    Mechanism::ScramSha512Plus,
];

fn bindings(exporter: &[u8], end_point: &[u8]) -> ChannelBindings {
    ChannelBindings::new()
        .with(CbType::TlsExporter, exporter.to_vec())
        .with(CbType::TlsServerEndPoint, end_point.to_vec())
}

/// Runs one exchange to the end; `Ok(())` when both sides accept.
fn run(
    mut client: Box<dyn ClientMechanism>,
    mut server: Box<dyn ServerMechanism>,
) -> Result<(), SaslError> {
    let mut input = client.initial_response()?;
    for _ in 0..8 {
        match server.step(input.as_deref()) {
            ServerStep::Challenge(c) => input = Some(client.step(&c)?),
            ServerStep::Success { additional, .. } => {
                return client.verify_success(additional.as_deref());
            }
            ServerStep::Failure(e) => return Err(e),
        }
    }
    Err(SaslError::ExchangeOver)
}

fn pair(
    mechanism: Mechanism,
    password: &str,
    stored: StoredCredential,
    client_binding: ClientBinding,
    server_binding: ServerBinding,
    seed: u64,
) -> Result<(), SaslError> {
    let mut rng = SeededRandom::from_seed(seed);
    let client = sasl::client_with_binding(
        mechanism,
        &creds("user", password),
        &client_binding,
        &mut rng,
    );
    let server =
        sasl::server_with_binding(mechanism, &ctx("user", stored), &server_binding, &mut rng);
    run(client, server)
}

fn server_binding(b: &ChannelBindings, plus_advertised: bool) -> ServerBinding {
    ServerBinding {
        bindings: b.clone(),
        plus_advertised,
    }
}

fn client_binding(b: &ChannelBindings, t: CbType) -> ClientBinding {
    ClientBinding {
        binding: b.get(t).map(|d| (t, d.to_vec())),
        supported: true,
    }
}

fn plain(p: &str) -> StoredCredential {
    StoredCredential::Plain(Secret::from(p))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Every -PLUS mechanism × binding type succeeds with the same data on both ends,
    /// against a plaintext and a stored SCRAM entry, and fails with
    /// `channel-bindings-dont-match` when one octet of the client's data differs.
    #[test]
    fn plus_pairs_and_tampered_binding(
        password in "[ -~]{1,24}",
        exporter in proptest::collection::vec(any::<u8>(), 32),
        end_point in proptest::collection::vec(any::<u8>(), 32),
        flip in 0usize..32,
        seed in any::<u64>(),
    ) {
        let b = bindings(&exporter, &end_point);
        for m in PLUS {
            let (hash, _) = scram::family(m).expect("scram");
            for t in [CbType::TlsExporter, CbType::TlsServerEndPoint] {
                let stored = [
                    plain(&password),
                    scram::stored_credential(hash, password.as_bytes(), b"salt-salt", 64),
                ];
                for cred in stored {
                    prop_assert_eq!(
                        pair(m, &password, cred.clone(), client_binding(&b, t), server_binding(&b, true), seed),
                        Ok(())
                    );
                    // The man in the middle: the client's TLS connection is not the
                    // server's, so its binding data differs.
                    let mut other = b.get(t).expect("data").to_vec();
                    let i = flip % other.len();
                    other[i] ^= 0x01;
                    let tampered = ClientBinding { binding: Some((t, other)), supported: true };
                    prop_assert_eq!(
                        pair(m, &password, cred, tampered, server_binding(&b, true), seed),
                        Err(SaslError::Scram(ScramError::ChannelBindingMismatch))
                    );
                }
            }
        }
    }

    /// SCRAM-SHA-512 without binding, against plaintext and stored keys; the wrong
    /// password fails.
    #[test]
    fn sha512_pairs(password in "[ -~]{1,24}", seed in any::<u64>()) {
        let stored = scram::stored_credential(ScramHash::Sha512, password.as_bytes(), b"NaCl", 64);
        for cred in [plain(&password), stored] {
            prop_assert_eq!(
                pair(Mechanism::ScramSha512, &password, cred.clone(), ClientBinding::default(), ServerBinding::default(), seed),
                Ok(())
            );
            prop_assert_eq!(
                pair(Mechanism::ScramSha512, &format!("{password}x"), cred, ClientBinding::default(), ServerBinding::default(), seed),
                Err(SaslError::InvalidCredentials)
            );
        }
    }
}

#[test]
fn downgrade_y_fails_only_where_plus_was_advertised() {
    let b = bindings(&[7; 32], &[9; 32]);
    let y = ClientBinding {
        binding: None,
        supported: true,
    };
    // RFC 5802 §6: "If the flag is set to "y" and the server supports channel
    // binding, the server MUST fail authentication."
    assert_eq!(
        pair(
            Mechanism::ScramSha256,
            "pw",
            plain("pw"),
            y.clone(),
            server_binding(&b, true),
            1
        ),
        Err(SaslError::Scram(
            ScramError::ServerDoesSupportChannelBinding
        ))
    );
    // No -PLUS advertised (plaintext connection, or a server without it): `y` is fine.
    assert_eq!(
        pair(
            Mechanism::ScramSha256,
            "pw",
            plain("pw"),
            y,
            server_binding(&b, false),
            1
        ),
        Ok(())
    );
    // `n` is not a downgrade the server can see.
    assert_eq!(
        pair(
            Mechanism::ScramSha256,
            "pw",
            plain("pw"),
            ClientBinding::default(),
            server_binding(&b, true),
            1
        ),
        Ok(())
    );
}

#[test]
fn unsupported_type_and_tls_unique_are_refused() {
    let only_exporter = ChannelBindings::new().with(CbType::TlsExporter, vec![1; 32]);
    let end_point = ClientBinding {
        binding: Some((CbType::TlsServerEndPoint, vec![2; 32])),
        supported: true,
    };
    assert_eq!(
        pair(
            Mechanism::ScramSha256Plus,
            "pw",
            plain("pw"),
            end_point,
            server_binding(&only_exporter, true),
            2
        ),
        Err(SaslError::Scram(ScramError::UnsupportedChannelBindingType))
    );
    // tls-unique: rustls cannot produce it, so the server never accepts it.
    let mut server = sasl::server_with_binding(
        Mechanism::ScramSha256Plus,
        &ctx("user", plain("pw")),
        &server_binding(&only_exporter, true),
        &mut SeededRandom::from_seed(3),
    );
    let step = server.step(Some(b"p=tls-unique,,n=user,r=abcdef"));
    assert_eq!(
        step,
        ServerStep::Failure(SaslError::Scram(ScramError::UnsupportedChannelBindingType))
    );
    if let ServerStep::Failure(SaslError::Scram(e)) = step {
        assert_eq!(e.server_error_value(), "unsupported-channel-binding-type");
    }
}

#[test]
fn flag_and_mechanism_must_agree() {
    let b = bindings(&[1; 32], &[2; 32]);
    let start = |m: Mechanism, msg: &[u8]| {
        let mut server = sasl::server_with_binding(
            m,
            &ctx("user", plain("pw")),
            &server_binding(&b, true),
            &mut SeededRandom::from_seed(4),
        );
        server.step(Some(msg))
    };
    // -PLUS without p=.
    assert_eq!(
        start(Mechanism::ScramSha256Plus, b"n,,n=user,r=abc"),
        ServerStep::Failure(SaslError::Scram(ScramError::PlusWithoutChannelBinding))
    );
    // p= with a non-PLUS mechanism.
    assert_eq!(
        start(Mechanism::ScramSha256, b"p=tls-exporter,,n=user,r=abc"),
        ServerStep::Failure(SaslError::Scram(ScramError::ChannelBindingNotSupported))
    );
    // A malformed cb-name.
    assert_eq!(
        start(Mechanism::ScramSha256Plus, b"p=tls_exporter,,n=user,r=abc"),
        ServerStep::Failure(SaslError::Scram(ScramError::MalformedGs2Header))
    );
}

#[test]
fn c_without_binding_data_is_a_mismatch() {
    // A client (or a broken proxy) that sends only the GS2 header in c= under -PLUS.
    let b = bindings(&[5; 32], &[6; 32]);
    let broken = ClientBinding {
        binding: Some((CbType::TlsExporter, Vec::new())),
        supported: true,
    };
    assert_eq!(
        pair(
            Mechanism::ScramSha1Plus,
            "pw",
            plain("pw"),
            broken,
            server_binding(&b, true),
            5
        ),
        Err(SaslError::Scram(ScramError::ChannelBindingMismatch))
    );
}

#[test]
fn plus_client_without_data_refuses() {
    let mut client = sasl::client_with_binding(
        Mechanism::ScramSha256Plus,
        &creds("user", "pw"),
        &ClientBinding::default(),
        &mut SeededRandom::from_seed(6),
    );
    assert_eq!(
        client.initial_response(),
        Err(SaslError::Scram(ScramError::NoChannelBindingData))
    );
}

/// Issue 16: a password with a no-break space (U+00A0, RFC 3454 C.1.2) and a ligature
/// (U+FB01, which NFKC maps to "fi") authenticates through every mechanism against
/// every stored scheme that can serve it, and the same wrong password fails everywhere.
#[test]
fn saslprep_same_everywhere() {
    let password = "p\u{00A0}a\u{FB01}ss";
    let salt = b"0123456789abcdef";
    let mut schemes: Vec<(&str, StoredCredential, Vec<Mechanism>)> = vec![
        (
            "PLAIN",
            plain(password),
            vec![
                Mechanism::Plain,
                Mechanism::Login,
                Mechanism::CramMd5,
                Mechanism::ScramSha1,
                Mechanism::ScramSha256,
                Mechanism::ScramSha512,
            ],
        ),
        (
            "CRAM-MD5",
            StoredCredential::CramMd5(Secret::new(cram_md5_context(password.as_bytes()).to_vec())),
            vec![Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5],
        ),
    ];
    for (name, hash, m) in [
        ("SCRAM-SHA-1", ScramHash::Sha1, Mechanism::ScramSha1),
        ("SCRAM-SHA-256", ScramHash::Sha256, Mechanism::ScramSha256),
        ("SCRAM-SHA-512", ScramHash::Sha512, Mechanism::ScramSha512),
    ] {
        schemes.push((
            name,
            scram::stored_credential(hash, password.as_bytes(), salt, 4096),
            vec![Mechanism::Plain, Mechanism::Login, m],
        ));
    }
    for (scheme, stored, mechanisms) in schemes {
        for m in mechanisms {
            for (pw, want_ok) in [(password, true), ("p a\u{FB01}sx", false)] {
                let mut rng = SeededRandom::from_seed(9);
                let client = sasl::client(m, &creds("user", pw), &mut rng);
                let server = sasl::server(m, &ctx("user", stored.clone()), &mut rng);
                let got = run(client, server);
                assert_eq!(
                    got.is_ok(),
                    want_ok,
                    "{scheme} via {m} with {pw:?}: {got:?}"
                );
            }
        }
    }
    // SASLprep equivalence holds where SASLprep applies: SCRAM and PLUS-against-SCRAM
    // accept the prepared form "p afiss" too.
    let stored = scram::stored_credential(ScramHash::Sha256, password.as_bytes(), salt, 4096);
    for m in [Mechanism::Plain, Mechanism::ScramSha256] {
        let mut rng = SeededRandom::from_seed(10);
        let got = run(
            sasl::client(m, &creds("user", "p afiss"), &mut rng),
            sasl::server(m, &ctx("user", stored.clone()), &mut rng),
        );
        assert_eq!(got, Ok(()), "{m}");
    }
}
