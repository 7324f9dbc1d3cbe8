//! The simple SASL mechanisms (PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER,
//! ANONYMOUS, EXTERNAL) and the passwd-file store: RFC vectors byte for byte, and each
//! client against its server in memory.

use authspec_reference::sasl::cram_md5::{CramMd5Server, cram_md5_context, hmac_md5_from_context};
use authspec_reference::sasl::credentials::MemoryStore;
use authspec_reference::sasl::login::{LoginClient, PASSWORD_PROMPT, USERNAME_PROMPT};
use authspec_reference::sasl::oauthbearer::{self, OAuthBearerClient};
use authspec_reference::sasl::passwd_file::{self, PasswdFileRule, format_cram_md5};
use authspec_reference::sasl::random::FixedRandom;
use authspec_reference::sasl::xoauth2::{self, XOAuth2Client};
use authspec_reference::sasl::{
    self, Authenticated, ClientCredentials, ClientMechanism, CredentialStore, Mechanism, SaslError,
    Secret, SeededRandom, ServerContext, ServerStep, StoredCredential,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use proptest::prelude::*;
use std::sync::Arc;

fn ctx_with(store: impl CredentialStore + 'static, realm: Option<&str>) -> ServerContext {
    ServerContext {
        hostname: "mx.example.org".into(),
        realm: realm.map(str::to_owned),
        external_identity: None,
        credentials: Arc::new(store),
    }
}

fn ctx(users: &[(&str, &str)]) -> ServerContext {
    let mut store = MemoryStore::new();
    for (u, p) in users {
        store.insert_plain(*u, *p);
    }
    ctx_with(store, None)
}

fn creds(user: &str, password: &str) -> ClientCredentials {
    ClientCredentials {
        authcid: user.into(),
        password: Secret::from(password),
        authzid: None,
        host: "mx.example.org".into(),
        port: Some(587),
    }
}

fn success(authcid: &str, authzid: Option<&str>) -> ServerStep {
    ServerStep::Success {
        identity: Authenticated {
            authcid: authcid.into(),
            authzid: authzid.map(str::to_owned),
        },
        additional: None,
    }
}

/// Step a client and a server against each other, optionally corrupting each client
/// message on the way (one byte inside the secret).
fn run(
    mechanism: Mechanism,
    server_ctx: &ServerContext,
    client_creds: &ClientCredentials,
    tamper: bool,
) -> Result<Authenticated, SaslError> {
    let mut rng = SeededRandom::from_seed(7);
    let mut server = sasl::server(mechanism, server_ctx, &mut rng);
    let mut client = sasl::client(mechanism, client_creds, &mut rng);
    let mut input = client.initial_response()?;
    for _ in 0..8 {
        if tamper {
            if let Some(message) = input.as_mut().filter(|m| !m.is_empty()) {
                // Bearer messages end in the token and `^A^A`; the others in the secret.
                let back = match mechanism {
                    Mechanism::XOAuth2 | Mechanism::OAuthBearer if message.len() >= 3 => 3,
                    _ => 1,
                };
                let i = message.len() - back;
                message[i] ^= 0x01;
            }
        }
        match server.step(input.as_deref()) {
            ServerStep::Challenge(c) => input = Some(client.step(&c)?),
            ServerStep::Success {
                identity,
                additional,
            } => {
                if let Some(a) = additional {
                    client.step(&a)?;
                }
                client.verify_success(None)?;
                return Ok(identity);
            }
            ServerStep::Failure(e) => return Err(e),
        }
    }
    panic!("{mechanism} exchange did not end");
}

const PASSWORD_MECHANISMS: [Mechanism; 5] = [
    Mechanism::Plain,
    Mechanism::Login,
    Mechanism::CramMd5,
    Mechanism::XOAuth2,
    Mechanism::OAuthBearer,
];

// ---------------------------------------------------------------------------------
// PLAIN

/// RFC 4616 §4, first example: `<NUL>tim<NUL>tanstaaftanstaaf`.
#[test]
fn rfc4616_example_tim() {
    let ctx = ctx(&[("tim", "tanstaaftanstaaf")]);
    let mut server = sasl::server(Mechanism::Plain, &ctx, &mut FixedRandom::new([0]));
    assert_eq!(
        server.step(Some(b"\0tim\0tanstaaftanstaaf")),
        success("tim", None)
    );

    let mut client = sasl::client(
        Mechanism::Plain,
        &creds("tim", "tanstaaftanstaaf"),
        &mut FixedRandom::new([0]),
    );
    assert_eq!(
        client.initial_response(),
        Ok(Some(b"\0tim\0tanstaaftanstaaf".to_vec()))
    );
}

/// RFC 4616 §4, second example: Kurt asks to act as Ursel, which he may not here.
#[test]
fn rfc4616_example_ursel_for_kurt_is_refused() {
    let ctx = ctx(&[("Kurt", "xipj3plmq"), ("Ursel", "other")]);
    let mut server = sasl::server(Mechanism::Plain, &ctx, &mut FixedRandom::new([0]));
    assert_eq!(
        server.step(Some(b"Ursel\0Kurt\0xipj3plmq")),
        ServerStep::Failure(SaslError::AuthzidNotPermitted)
    );
}

/// RFC 4954 §4's example `AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=`, which decodes to
/// `test<NUL>test<NUL>1234` (authzid "test" equal to authcid "test").
#[test]
fn rfc4954_plain_example() {
    let decoded = B64.decode("dGVzdAB0ZXN0ADEyMzQ=").expect("base64");
    assert_eq!(decoded, b"test\0test\x001234");
    let ctx = ctx(&[("test", "1234")]);
    let mut server = sasl::server(Mechanism::Plain, &ctx, &mut FixedRandom::new([0]));
    assert_eq!(server.step(Some(&decoded)), success("test", Some("test")));

    let mut server = sasl::server(Mechanism::Plain, &ctx, &mut FixedRandom::new([0]));
    assert_eq!(server.step(Some(b"\0test\x001234")), success("test", None));
}

/// `AUTH PLAIN` with no initial response gets the empty `334 ` challenge, then the
/// credentials, as Postfix, Dovecot and aiosmtpd do.
#[test]
fn plain_without_initial_response() {
    let ctx = ctx(&[("alice", "wonderland")]);
    let mut server = sasl::server(Mechanism::Plain, &ctx, &mut FixedRandom::new([0]));
    assert_eq!(server.step(None), ServerStep::Challenge(Vec::new()));
    assert_eq!(
        server.step(Some(b"\0alice\0wonderland")),
        success("alice", None)
    );
    assert_eq!(
        server.step(Some(b"\0alice\0wonderland")),
        ServerStep::Failure(SaslError::ExchangeOver)
    );

    // And the client side of it, the way gsasl does it.
    let mut client =
        sasl::plain::PlainClient::new(&creds("alice", "wonderland")).without_initial_response();
    assert_eq!(client.initial_response(), Ok(None));
    assert_eq!(client.step(b""), Ok(b"\0alice\0wonderland".to_vec()));
    assert_eq!(
        client.step(b""),
        Err(SaslError::Plain(
            sasl::plain::PlainError::UnexpectedChallenge
        ))
    );
}

/// `AUTH PLAIN =` is an empty message, which is no PLAIN message at all.
#[test]
fn plain_empty_initial_response_is_malformed() {
    let ctx = ctx(&[("alice", "wonderland")]);
    let mut server = sasl::server(Mechanism::Plain, &ctx, &mut FixedRandom::new([0]));
    let step = server.step(Some(b""));
    assert_eq!(
        step,
        ServerStep::Failure(SaslError::Plain(sasl::plain::PlainError::MissingSeparator))
    );
    let ServerStep::Failure(e) = step else {
        unreachable!()
    };
    assert!(e.is_malformed());
}

// ---------------------------------------------------------------------------------
// LOGIN

#[test]
fn login_prompts_are_postfix_s() {
    assert_eq!(B64.encode(USERNAME_PROMPT), "VXNlcm5hbWU6");
    assert_eq!(B64.encode(PASSWORD_PROMPT), "UGFzc3dvcmQ6");
    let ctx = ctx(&[("bob", "p@ss w0rd:x")]);
    let mut server = sasl::server(Mechanism::Login, &ctx, &mut FixedRandom::new([0]));
    assert_eq!(
        server.step(None),
        ServerStep::Challenge(b"Username:".to_vec())
    );
    assert_eq!(
        server.step(Some(b"bob")),
        ServerStep::Challenge(b"Password:".to_vec())
    );
    assert_eq!(server.step(Some(b"p@ss w0rd:x")), success("bob", None));
}

/// `AUTH LOGIN <user>`: only the password prompt follows (MailKit#216, smtplib).
#[test]
fn login_initial_response_is_the_username() {
    let ctx = ctx(&[("alice", "wonderland")]);
    let mut server = sasl::server(Mechanism::Login, &ctx, &mut FixedRandom::new([0]));
    assert_eq!(
        server.step(Some(b"alice")),
        ServerStep::Challenge(b"Password:".to_vec())
    );
    assert_eq!(server.step(Some(b"wonderland")), success("alice", None));

    let mut client = LoginClient::new(&creds("alice", "wonderland")).with_initial_response();
    assert_eq!(client.initial_response(), Ok(Some(b"alice".to_vec())));
    assert_eq!(client.step(b"Password:"), Ok(b"wonderland".to_vec()));
    assert_eq!(client.verify_success(None), Ok(()));
}

/// The client answers by order: aiosmtpd's NUL-terminated prompts and prompts it
/// cannot read get the user name first, then the password.
#[test]
fn login_client_ignores_prompt_text() {
    for (first, second) in [
        (&b"User Name\0"[..], &b"Password\0"[..]),
        (b"Username:", b"Password:"),
        (b"\xff\xfe", b""),
        (b"Password:", b"Username:"),
    ] {
        let mut client = sasl::client(
            Mechanism::Login,
            &creds("alice", "wonderland"),
            &mut FixedRandom::new([0]),
        );
        assert_eq!(client.initial_response(), Ok(None));
        assert!(client.verify_success(None).is_err(), "before any answer");
        assert_eq!(client.step(first), Ok(b"alice".to_vec()));
        assert_eq!(client.step(second), Ok(b"wonderland".to_vec()));
        assert_eq!(
            client.step(b"again?"),
            Err(SaslError::Login(
                sasl::login::LoginError::UnexpectedChallenge
            ))
        );
        assert_eq!(client.verify_success(None), Ok(()));
    }
}

// ---------------------------------------------------------------------------------
// CRAM-MD5

const RFC2195_CHALLENGE: &[u8] = b"<1896.697170952@postoffice.reston.mci.net>";

/// RFC 2195 §2: tim / tanstaaftanstaaf answers the challenge with
/// `tim b913a602c7eda7a495b4e6e7334d3890`.
#[test]
fn rfc2195_cram_md5_vector() {
    let mut client = sasl::client(
        Mechanism::CramMd5,
        &creds("tim", "tanstaaftanstaaf"),
        &mut FixedRandom::new([0]),
    );
    assert_eq!(client.initial_response(), Ok(None));
    let response = client.step(RFC2195_CHALLENGE).expect("response");
    assert_eq!(response, b"tim b913a602c7eda7a495b4e6e7334d3890");

    let ctx = ctx(&[("tim", "tanstaaftanstaaf")]);
    let mut server = CramMd5Server::with_challenge(&ctx, RFC2195_CHALLENGE.to_vec());
    use authspec_reference::sasl::ServerMechanism;
    assert_eq!(
        server.step(None),
        ServerStep::Challenge(RFC2195_CHALLENGE.to_vec())
    );
    assert_eq!(server.step(Some(&response)), success("tim", None));
}

/// A server-first mechanism: an initial response fails the exchange.
#[test]
fn cram_md5_refuses_initial_response() {
    let ctx = ctx(&[("tim", "tanstaaftanstaaf")]);
    let mut server = sasl::server(Mechanism::CramMd5, &ctx, &mut FixedRandom::new([0]));
    assert_eq!(
        server.step(Some(b"tim b913a602c7eda7a495b4e6e7334d3890")),
        ServerStep::Failure(SaslError::InitialResponseToServerFirst(Mechanism::CramMd5))
    );
}

/// The Dovecot context, applied to a message, is HMAC-MD5 as the `hmac` crate
/// computes it, and a `{CRAM-MD5}` passwd-file entry made from a known password
/// verifies the RFC 2195 exchange.
#[test]
fn dovecot_cram_md5_entry_verifies() {
    use hmac::{Hmac, Mac};
    let context = cram_md5_context(b"tanstaaftanstaaf");
    let mut mac = Hmac::<md5::Md5>::new_from_slice(b"tanstaaftanstaaf").expect("key");
    mac.update(RFC2195_CHALLENGE);
    assert_eq!(
        hmac_md5_from_context(&context, RFC2195_CHALLENGE)[..],
        mac.finalize().into_bytes()[..]
    );

    let line = format!(
        "tim:{}:1000:1000::/home/tim::\n",
        format_cram_md5(b"tanstaaftanstaaf")
    );
    assert_eq!(
        line.len(),
        "tim:{CRAM-MD5}".len() + 64 + ":1000:1000::/home/tim::\n".len()
    );
    let file = passwd_file::parse(&line, "users").expect("valid");
    let ctx = ctx_with(file, None);
    let mut server = CramMd5Server::with_challenge(&ctx, RFC2195_CHALLENGE.to_vec());
    use authspec_reference::sasl::ServerMechanism;
    let _ = server.step(None);
    assert_eq!(
        server.step(Some(b"tim b913a602c7eda7a495b4e6e7334d3890")),
        success("tim", None)
    );
    // PLAIN verifies against the same stored context.
    let mut plain = sasl::server(Mechanism::Plain, &ctx, &mut FixedRandom::new([0]));
    assert_eq!(
        plain.step(Some(b"\0tim\0tanstaaftanstaaf")),
        success("tim", None)
    );
}

/// `doveadm pw -s CRAM-MD5 -p password` prints this (as quoted in PostfixAdmin's test
/// fixtures and in users' notes): our context matches Dovecot's byte order.
#[test]
fn doveadm_cram_md5_output() {
    const DOVEADM: &str =
        "{CRAM-MD5}9186d855e11eba527a7a52ca82b313e180d62234f0acc9051b527243d41e2740";
    assert_eq!(format_cram_md5(b"password"), DOVEADM);
    let file = passwd_file::parse(&format!("admin@example.com:{DOVEADM}\n"), "users")
        .expect("doveadm output loads as is");
    let ctx = ctx_with(file, None);
    assert!(
        run(
            Mechanism::CramMd5,
            &ctx,
            &creds("admin@example.com", "password"),
            false
        )
        .is_ok()
    );
    assert_eq!(
        run(
            Mechanism::CramMd5,
            &ctx,
            &creds("admin@example.com", "Password"),
            false
        ),
        Err(SaslError::InvalidCredentials)
    );
}

/// Lines printed by `doveadm pw -s <scheme> -p <password>` (Dovecot 2.3.19.1) on the
/// project's peer machine, pasted as they are.
#[test]
fn doveadm_pw_output_loads_and_verifies() {
    let text = "\
scram256:{SCRAM-SHA-256}4096,sfF6en3metOnKjYFyNo0/Q==,GEtedFUcIH6UkCzqI5w9Xdqc92QfWDeXEyDdR3b/kZc=,gG27BXkVglKhgDjlnIv9ZKkJARIG/f2dH18+vjpZ3Ak=
scram1:{SCRAM-SHA-1}4096,zvP13ymPzmQ75PvFaTAF0A==,/nNizXQNi/oK8WJfPzGh65uOi/g=,asS0oMPFQqIIWp77rsGMn2Tbyvg=
alice:{CRAM-MD5}721a2df79bd8bf7cff39c4914f8c49b8979ad5122813c64e75f91b8a6a09b88a
";
    let file = passwd_file::parse(text, "users").expect("doveadm output loads as is");
    // ServerKey (RFC 5802 §3) derived independently from the password matches too.
    use hmac::{Hmac, Mac};
    let Some(StoredCredential::Scram {
        salt, server_key, ..
    }) = file.lookup("scram256")
    else {
        panic!("SCRAM entry expected")
    };
    let salted = pbkdf2::pbkdf2_hmac_array::<sha2::Sha256, 32>(b"pencil", &salt, 4096);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&salted).expect("key");
    mac.update(b"Server Key");
    assert!(server_key.ct_eq(&mac.finalize().into_bytes()));

    let ctx = ctx_with(file, None);
    for (user, password) in [("scram256", "pencil"), ("scram1", "pencil")] {
        assert!(run(Mechanism::Plain, &ctx, &creds(user, password), false).is_ok());
        assert_eq!(
            run(Mechanism::Login, &ctx, &creds(user, "pencul"), false),
            Err(SaslError::InvalidCredentials)
        );
    }
    assert!(
        run(
            Mechanism::CramMd5,
            &ctx,
            &creds("alice", "wonderland"),
            false
        )
        .is_ok()
    );
    assert_eq!(
        format_cram_md5(b"wonderland"),
        "{CRAM-MD5}721a2df79bd8bf7cff39c4914f8c49b8979ad5122813c64e75f91b8a6a09b88a"
    );
}

#[test]
fn cram_md5_cannot_use_a_scram_entry() {
    let file = passwd_file::parse(
        "carol:{SCRAM-SHA-1}4096,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkcNY8U2g7vK9Y=,D+CSWLOshSulAsxiupA+qs2/fTE=\n",
        "users",
    )
    .expect("valid");
    let ctx = ctx_with(file, None);
    let mut client = sasl::client(
        Mechanism::CramMd5,
        &creds("carol", "pencil"),
        &mut FixedRandom::new([0]),
    );
    let mut server = sasl::server(Mechanism::CramMd5, &ctx, &mut FixedRandom::new([3]));
    let ServerStep::Challenge(c) = server.step(None) else {
        panic!("challenge expected")
    };
    let response = client.step(&c).expect("response");
    assert_eq!(
        server.step(Some(&response)),
        ServerStep::Failure(SaslError::SchemeUnusable {
            mechanism: Mechanism::CramMd5,
            scheme: "SCRAM-SHA-1"
        })
    );
}

// ---------------------------------------------------------------------------------
// OAUTHBEARER and XOAUTH2

/// RFC 7628 §4.1: the initial response, byte for byte and in its base64 form.
#[test]
fn rfc7628_initial_response() {
    const EXPECTED: &[u8] = b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";
    const EXPECTED_B64: &str = "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB";
    let token = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==";
    let client_creds = ClientCredentials {
        authcid: "user@example.com".into(),
        password: Secret::from(token),
        authzid: None,
        host: "server.example.com".into(),
        port: Some(143),
    };
    let mut client = sasl::client(
        Mechanism::OAuthBearer,
        &client_creds,
        &mut FixedRandom::new([0]),
    );
    let ir = client
        .initial_response()
        .expect("ok")
        .expect("initial response");
    assert_eq!(ir, EXPECTED);
    assert_eq!(B64.encode(&ir), EXPECTED_B64);

    let ctx = ctx(&[("user@example.com", token)]);
    let mut server = sasl::server(Mechanism::OAuthBearer, &ctx, &mut FixedRandom::new([0]));
    assert_eq!(
        server.step(Some(EXPECTED)),
        success("user@example.com", None)
    );
}

/// RFC 7628 §3.2.2–3.2.3: a bad token gets the JSON error, the client answers with a
/// lone ^A ("AQ=="), and the exchange fails.
#[test]
fn oauthbearer_error_flow() {
    let ctx = ctx(&[("alice", "good-token")]);
    let mut server = sasl::server(Mechanism::OAuthBearer, &ctx, &mut FixedRandom::new([0]));
    let mut client = OAuthBearerClient::new(&creds("alice", "bad-token"));
    let ir = client.initial_response().expect("ok").expect("ir");
    let ServerStep::Challenge(error) = server.step(Some(&ir)) else {
        panic!("error challenge expected")
    };
    assert_eq!(error, oauthbearer::ERROR_CHALLENGE);
    let ack = client.step(&error).expect("dummy response");
    assert_eq!(B64.encode(&ack), "AQ==");
    assert_eq!(
        client.server_error().map(|e| e.status.as_str()),
        Some("invalid_token")
    );
    assert_eq!(
        server.step(Some(&ack)),
        ServerStep::Failure(SaslError::InvalidCredentials)
    );
    assert_eq!(
        client.verify_success(None),
        Err(SaslError::ServerReportedError(Mechanism::OAuthBearer))
    );
}

#[test]
fn oauthbearer_error_must_be_acknowledged_with_kvsep() {
    let ctx = ctx(&[("alice", "good-token")]);
    let mut server = sasl::server(Mechanism::OAuthBearer, &ctx, &mut FixedRandom::new([0]));
    let _ = server.step(Some(b"n,a=alice,\x01auth=Bearer bad\x01\x01"));
    assert_eq!(
        server.step(Some(b"")),
        ServerStep::Failure(SaslError::OAuthBearer(
            oauthbearer::OAuthBearerError::ErrorNotAcknowledged
        ))
    );
}

/// Google's flow: the JSON error challenge, the client's empty answer, then failure.
#[test]
fn xoauth2_error_flow() {
    let ctx = ctx(&[("alice@example.com", "ya29.good")]);
    let mut server = sasl::server(Mechanism::XOAuth2, &ctx, &mut FixedRandom::new([0]));
    let mut client = XOAuth2Client::new(&creds("alice@example.com", "ya29.bad"));
    let ir = client.initial_response().expect("ok").expect("ir");
    assert_eq!(
        ir,
        b"user=alice@example.com\x01auth=Bearer ya29.bad\x01\x01"
    );
    let ServerStep::Challenge(error) = server.step(Some(&ir)) else {
        panic!("error challenge expected")
    };
    assert_eq!(
        error,
        br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#
    );
    assert_eq!(error, xoauth2::ERROR_CHALLENGE);
    assert_eq!(client.step(&error), Ok(Vec::new()));
    let report = client.server_error().expect("report");
    assert_eq!(report.status, "401");
    assert_eq!(report.schemes.as_deref(), Some("bearer"));
    assert_eq!(report.scope.as_deref(), Some("https://mail.google.com/"));
    assert_eq!(
        server.step(Some(b"")),
        ServerStep::Failure(SaslError::InvalidCredentials)
    );
    assert_eq!(
        client.verify_success(None),
        Err(SaslError::ServerReportedError(Mechanism::XOAuth2))
    );
}

#[test]
fn bearer_clients_refuse_malformed_error_challenges() {
    for challenge in [&b"not json"[..], b"{\"status\":401}", b"[\"status\"]", b"{"] {
        let mut x = XOAuth2Client::new(&creds("a", "tok"));
        let _ = x.initial_response();
        assert_eq!(
            x.step(challenge),
            Err(SaslError::XOAuth2(
                xoauth2::XOAuth2Error::MalformedErrorChallenge
            ))
        );
        let mut o = OAuthBearerClient::new(&creds("a", "tok"));
        let _ = o.initial_response();
        assert_eq!(
            o.step(challenge),
            Err(SaslError::OAuthBearer(
                oauthbearer::OAuthBearerError::MalformedErrorChallenge
            ))
        );
    }
}

// ---------------------------------------------------------------------------------
// ANONYMOUS and EXTERNAL

#[test]
fn anonymous_accepts_trace() {
    let ctx = ctx(&[]);
    for trace in [&b""[..], b"sirhc", b"abc@example.com"] {
        let mut server = sasl::server(Mechanism::Anonymous, &ctx, &mut FixedRandom::new([0]));
        assert_eq!(server.step(Some(trace)), success("anonymous", None));
    }
    let mut client = sasl::client(
        Mechanism::Anonymous,
        &creds("abc@example.com", ""),
        &mut FixedRandom::new([0]),
    );
    assert_eq!(
        client.initial_response(),
        Ok(Some(b"abc@example.com".to_vec()))
    );
    let mut server = sasl::server(Mechanism::Anonymous, &ctx, &mut FixedRandom::new([0]));
    assert_eq!(
        server.step(Some(&[b'x'; 256])),
        ServerStep::Failure(SaslError::Anonymous(
            sasl::anonymous::AnonymousError::TraceTooLong
        ))
    );
}

#[test]
fn external_uses_the_certificate_identity() {
    let mut ctx = ctx(&[]);
    let mut server = sasl::server(Mechanism::External, &ctx, &mut FixedRandom::new([0]));
    assert_eq!(
        server.step(Some(b"")),
        ServerStep::Failure(SaslError::NoExternalIdentity)
    );

    ctx.external_identity = Some("client.example.org".into());
    let mut server = sasl::server(Mechanism::External, &ctx, &mut FixedRandom::new([0]));
    assert_eq!(server.step(None), ServerStep::Challenge(Vec::new()));
    assert_eq!(server.step(Some(b"")), success("client.example.org", None));

    let mut server = sasl::server(Mechanism::External, &ctx, &mut FixedRandom::new([0]));
    assert_eq!(
        server.step(Some(b"client.example.org")),
        success("client.example.org", Some("client.example.org"))
    );

    let mut server = sasl::server(Mechanism::External, &ctx, &mut FixedRandom::new([0]));
    assert_eq!(
        server.step(Some(b"someone-else")),
        ServerStep::Failure(SaslError::AuthzidNotPermitted)
    );

    let mut client = sasl::client(
        Mechanism::External,
        &creds("", ""),
        &mut FixedRandom::new([0]),
    );
    assert_eq!(client.initial_response(), Ok(Some(Vec::new())));
    assert_eq!(
        run(Mechanism::External, &ctx, &creds("ignored", ""), false),
        Ok(Authenticated {
            authcid: "client.example.org".into(),
            authzid: None
        })
    );
}

// ---------------------------------------------------------------------------------
// Every password mechanism, client against server

#[test]
fn unqualified_user_gets_the_realm() {
    let store = MemoryStore::new().with_plain("alice@peers.test", "wonderland");
    let ctx = ctx_with(store, Some("peers.test"));
    for mechanism in PASSWORD_MECHANISMS {
        for user in ["alice", "alice@peers.test"] {
            assert_eq!(
                run(mechanism, &ctx, &creds(user, "wonderland"), false),
                Ok(Authenticated {
                    authcid: "alice@peers.test".into(),
                    authzid: None
                }),
                "{mechanism} as {user}"
            );
        }
        assert_eq!(
            run(
                mechanism,
                &ctx,
                &creds("alice@other.test", "wonderland"),
                false
            ),
            Err(SaslError::InvalidCredentials),
            "{mechanism}"
        );
    }
}

#[test]
fn passwd_file_users_authenticate() {
    let text = "\
# the peers' users
alice:{PLAIN}wonderland
bob:{PLAIN.B64}cEBzcyB3MHJkOng=::::::
carol:{plain.hex}70656e63696c
dave:{CLEAR}secret:1000:1000::/home/dave:/bin/sh:
erin:bare-password
";
    let file = passwd_file::parse(text, "users").expect("valid");
    assert_eq!(file.len(), 5);
    let debug = format!("{file:?}");
    assert!(debug.contains("alice") && debug.contains("users"));
    for secret in [
        "wonderland",
        "cEBzcyB3MHJkOng",
        "70656e63696c",
        "secret",
        "bare-password",
    ] {
        assert!(!debug.contains(secret), "Debug shows {secret}");
    }
    let ctx = ctx_with(file, None);
    for (user, password) in [
        ("alice", "wonderland"),
        ("bob", "p@ss w0rd:x"),
        ("carol", "pencil"),
        ("dave", "secret"),
        ("erin", "bare-password"),
    ] {
        for mechanism in [Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5] {
            assert!(
                run(mechanism, &ctx, &creds(user, password), false).is_ok(),
                "{mechanism} {user}"
            );
        }
    }
}

/// `doveadm pw -s SCRAM-SHA-1`/`-s SCRAM-SHA-256` output loads as is; these entries are
/// the RFC 5802 §5 and RFC 7677 §3 users (password "pencil"), whose StoredKey and
/// ServerKey were derived from the RFCs' salts.
#[test]
fn passwd_file_scram_entries_load() {
    let sha1 = authspec_reference::sasl::credentials::scram_stored_key(
        sasl::scram::ScramHash::Sha1,
        b"pencil",
        &B64.decode("QSXCR+Q6sek8bf92").expect("salt"),
        4096,
    );
    let sha256 = authspec_reference::sasl::credentials::scram_stored_key(
        sasl::scram::ScramHash::Sha256,
        b"pencil",
        &B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt"),
        4096,
    );
    let text = format!(
        "u1:{{SCRAM-SHA-1}}4096,QSXCR+Q6sek8bf92,{},{}\nu256:{{SCRAM-SHA-256}}4096,W22ZaJ0SNY7soEsUEjb6gQ==,{},{}\n",
        B64.encode(&sha1),
        B64.encode([0u8; 20]),
        B64.encode(&sha256),
        B64.encode([0u8; 32]),
    );
    let file = passwd_file::parse(&text, "users").expect("valid");
    let Some(StoredCredential::Scram {
        iterations, salt, ..
    }) = file.lookup("u256")
    else {
        panic!("SCRAM entry expected")
    };
    assert_eq!(iterations, 4096);
    assert_eq!(B64.encode(salt), "W22ZaJ0SNY7soEsUEjb6gQ==");
    // PLAIN and LOGIN verify a password against a SCRAM entry.
    let ctx = ctx_with(file, None);
    assert!(run(Mechanism::Plain, &ctx, &creds("u1", "pencil"), false).is_ok());
    assert!(run(Mechanism::Login, &ctx, &creds("u256", "pencil"), false).is_ok());
    assert_eq!(
        run(Mechanism::Plain, &ctx, &creds("u256", "pencul"), false),
        Err(SaslError::InvalidCredentials)
    );
}

#[test]
fn passwd_file_errors_carry_file_and_line() {
    let e = passwd_file::parse(
        "alice:{PLAIN}x\n# ok\nbob:{SHA512-CRYPT}$6$abc\n",
        "/etc/users",
    )
    .expect_err("unsupported");
    assert_eq!(e.source, "/etc/users");
    assert_eq!(e.line, 3);
    assert_eq!(
        e.rule,
        PasswdFileRule::UnsupportedScheme("SHA512-CRYPT".into())
    );
    assert_eq!(
        e.to_string(),
        "/etc/users:3: password scheme {SHA512-CRYPT} is one-way and cannot serve SASL; \
         use {PLAIN}, {CRAM-MD5}, {SCRAM-SHA-1} or {SCRAM-SHA-256}"
    );
}

fn user_strategy() -> impl Strategy<Value = String> {
    // UTF-8 without control characters, as user names are typed.
    proptest::string::string_regex("[^\\x00-\\x1f\\x7f]{1,24}").expect("regex")
}

fn password_strategy(mechanism: Mechanism) -> BoxedStrategy<String> {
    match mechanism {
        // RFC 6750 §2.1 b64token.
        Mechanism::XOAuth2 | Mechanism::OAuthBearer => {
            proptest::string::string_regex("[A-Za-z0-9._~+/-]{1,40}=?")
                .expect("regex")
                .boxed()
        }
        _ => proptest::string::string_regex("[^\\x00]{1,40}")
            .expect("regex")
            .boxed(),
    }
}

fn mechanism_and_credentials() -> impl Strategy<Value = (Mechanism, String, String, String)> {
    proptest::sample::select(PASSWORD_MECHANISMS.to_vec()).prop_flat_map(|m| {
        (
            Just(m),
            user_strategy(),
            password_strategy(m),
            password_strategy(m),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Right password succeeds; wrong password, unknown user and any corrupted byte
    /// of the secret fail, the first two with the same variant.
    #[test]
    fn client_against_server((mechanism, user, password, other) in mechanism_and_credentials()) {
        let ctx = ctx(&[(user.as_str(), password.as_str())]);
        let right = creds(&user, &password);
        prop_assert_eq!(
            run(mechanism, &ctx, &right, false),
            Ok(Authenticated { authcid: user.clone(), authzid: None })
        );
        prop_assert!(run(mechanism, &ctx, &right, true).is_err());
        if other != password {
            prop_assert_eq!(
                run(mechanism, &ctx, &creds(&user, &other), false),
                Err(SaslError::InvalidCredentials)
            );
        }
        let unknown = format!("{user}x");
        prop_assert_eq!(
            run(mechanism, &ctx, &creds(&unknown, &password), false),
            Err(SaslError::InvalidCredentials)
        );
    }
}

fn fuzz_input() -> impl Strategy<Value = Vec<u8>> {
    // Random bytes, and random bytes after a valid-looking prefix, so the parsers get
    // past their first checks.
    let prefix = proptest::sample::select(vec![
        &b""[..],
        b"\x00\x00user\x00",
        b"\x01\xffuser\xff",
        b"\x00user=user\x01auth=Bearer ",
        b"\x00n,a=user,\x01auth=Bearer ",
        b"\x00n,a=user,\x01host=",
        b"{\"status\":",
        b"alice:{CRAM-MD5}",
        b"alice:{SCRAM-SHA-256}4096,",
    ]);
    (prefix, proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(p, rest)| {
        let mut v = p.to_vec();
        v.extend(rest);
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The fuzz entry points' invariants hold on random input (the fuzz targets run
    /// the same functions for much longer).
    #[test]
    fn fuzz_entry_points_hold(data in fuzz_input()) {
        use authspec_reference::fuzz_oracles::mech;
        mech::server_plain(&data);
        mech::server_login(&data);
        mech::server_cram_md5(&data);
        mech::server_xoauth2(&data);
        mech::server_oauthbearer(&data);
        mech::server_anonymous(&data);
        mech::server_external(&data);
        mech::client_xoauth2(&data);
        mech::client_oauthbearer(&data);
        mech::passwd_file(&data);
    }
}
