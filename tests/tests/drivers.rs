//! The tokio drivers against each other over loopback: every mechanism, in plaintext,
//! after STARTTLS and over implicit TLS; and the driver-level limits (connection count,
//! timeout) answering 421.

use authspec_reference::net::client::{ClientConnect, DriverError, Transport, run_client};
use authspec_reference::net::server::{ServerShared, serve};
use authspec_reference::net::tls;
use authspec_reference::sasl::{ClientCredentials, Mechanism, Secret, SeededRandom};
use authspec_reference::smtp::client::{
    AuthPlan, ClientError, ClientPlan, ClientSession, Forced, MailPlan, StartTlsPolicy,
};
use authspec_tests::{server_config, users};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOST: &str = "mx.authspec.test";

async fn start(params: &[(&str, &str)]) -> (String, Arc<ServerShared>) {
    let config = server_config(params);
    let ck = tls::self_signed(&[HOST.to_string()]).unwrap();
    let tls_config = tls::server_config(ck.certs, ck.key, &tls::ClientAuth::None).unwrap();
    let shared = Arc::new(ServerShared::new(
        config,
        users(),
        Some(tls_config),
        None,
        Some(42),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(serve(listener, Arc::clone(&shared)));
    (addr, shared)
}

fn plan(mech: Mechanism, password: &str, starttls: StartTlsPolicy) -> ClientPlan {
    ClientPlan {
        helo_name: "client.authspec.test".into(),
        starttls,
        auth: Some(AuthPlan {
            credentials: ClientCredentials {
                authcid: "alice".into(),
                password: Secret::from(password),
                authzid: None,
                host: HOST.into(),
                port: None,
            },
            chooser: Box::new(Forced(mech)),
            channel_binding_types: authspec_reference::sasl::channel_binding::CbType::AVAILABLE
                .to_vec(),
        }),
        auth_required: true,
        mail: Some(MailPlan {
            from: "alice@authspec.test".into(),
            to: vec!["bob@authspec.test".into()],
            body: b"Subject: t\r\n\r\nhi\r\n".to_vec(),
        }),
    }
}

fn connect(addr: &str, transport: Transport) -> ClientConnect {
    ClientConnect {
        addr: addr.to_string(),
        transport,
        tls: Some(tls::client_config(&tls::ServerVerification::Insecure).unwrap()),
        server_name: HOST.into(),
        timeout: Duration::from_secs(10),
    }
}

const PASSWORD_MECHS: [Mechanism; 8] = [
    Mechanism::Plain,
    Mechanism::Login,
    Mechanism::CramMd5,
    Mechanism::DigestMd5,
    Mechanism::ScramSha1,
    Mechanism::ScramSha256,
    Mechanism::XOAuth2,
    Mechanism::OAuthBearer,
];

#[tokio::test]
async fn every_mechanism_in_plaintext_after_starttls_and_over_implicit_tls() {
    let (plain_addr, _) = start(&[("smtpd_tls_security_level", "may")]).await;
    let (wrap_addr, _) = start(&[("smtpd_tls_wrappermode", "yes")]).await;
    for mech in PASSWORD_MECHS {
        for (label, addr, transport, starttls) in [
            (
                "plaintext",
                &plain_addr,
                Transport::Plain,
                StartTlsPolicy::Never,
            ),
            (
                "STARTTLS",
                &plain_addr,
                Transport::Plain,
                StartTlsPolicy::Required,
            ),
            (
                "implicit TLS",
                &wrap_addr,
                Transport::ImplicitTls,
                StartTlsPolicy::Never,
            ),
        ] {
            let tls_now = transport == Transport::ImplicitTls;
            let session = ClientSession::new(
                plan(mech, "wonderland", starttls),
                Box::new(SeededRandom::from_seed(3)),
                tls_now,
            );
            let run = run_client(&connect(addr, transport), session).await;
            let outcome = run
                .result
                .unwrap_or_else(|e| panic!("{mech} {label}: {e}\n{:#?}", run.transcript));
            assert_eq!(outcome.authenticated_with, Some(mech), "{mech} {label}");
            assert!(outcome.message_accepted, "{mech} {label}");
            assert_eq!(outcome.tls, starttls == StartTlsPolicy::Required || tls_now);
            if outcome.tls {
                let info = run.tls_info.expect("TLS info");
                assert!(info.version.starts_with("TLSv1."), "{info:?}");
            }

            let session = ClientSession::new(
                plan(mech, "wrong", starttls),
                Box::new(SeededRandom::from_seed(3)),
                tls_now,
            );
            let run = run_client(&connect(addr, transport), session).await;
            match run.result {
                Err(DriverError::Protocol(ClientError::AuthRejected { reply })) => {
                    assert!(reply.starts_with("535 5.7.8"), "{mech} {label}: {reply}");
                }
                other => panic!("{mech} {label}: wrong password gave {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn connection_limit_answers_421() {
    // Loopback is in $mynetworks, which the limit exempts by default.
    let (addr, shared) = start(&[
        ("smtpd_client_connection_count_limit", "2"),
        ("smtpd_client_event_limit_exceptions", ""),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut b = [0u8; 128];
        let n = s.read(&mut b).await.unwrap();
        assert!(b[..n].starts_with(b"220 "));
        held.push(s);
    }
    let mut third = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut buf))
        .await
        .expect("the server closes the refused connection")
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("421 4.7.0 "), "{text}");
    assert_eq!(
        shared
            .counters
            .refused_busy
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    drop(held);
}

#[tokio::test]
async fn smtpd_timeout_answers_421_and_closes() {
    let (addr, _) = start(&[("smtpd_timeout", "1s")]).await;
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"EHLO slow.example\r\n").await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("closed by smtpd_timeout")
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.ends_with("421 4.4.2 mx.authspec.test Error: timeout exceeded\r\n"),
        "{text}"
    );
}

#[tokio::test]
async fn client_discards_and_reports_starttls_response_injection() {
    // A server that pipelines a fake reply after its STARTTLS 220 (the 2021 "NO
    // STARTTLS" class): the client must discard it, not take it as the EHLO reply.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let ck = tls::self_signed(&[HOST.to_string()]).unwrap();
    let tls_config = tls::server_config(ck.certs, ck.key, &tls::ClientAuth::None).unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"220 evil ESMTP\r\n").await.unwrap();
        let mut b = [0u8; 512];
        let _ = s.read(&mut b).await.unwrap();
        s.write_all(b"250-evil\r\n250 STARTTLS\r\n").await.unwrap();
        let _ = s.read(&mut b).await.unwrap();
        s.write_all(b"220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n")
            .await
            .unwrap();
        let mut tls = tokio_rustls::TlsAcceptor::from(tls_config)
            .accept(s)
            .await
            .unwrap();
        let mut buf = Vec::new();
        let mut b = [0u8; 512];
        // EHLO again, inside TLS.
        while !buf.ends_with(b"\r\n") {
            let n = tls.read(&mut b).await.unwrap();
            buf.extend_from_slice(&b[..n]);
        }
        tls.write_all(b"250-evil\r\n250 8BITMIME\r\n")
            .await
            .unwrap();
        let _ = tls.read(&mut b).await;
        let _ = tls.write_all(b"221 bye\r\n").await;
    });
    let plan = ClientPlan {
        helo_name: "client.authspec.test".into(),
        starttls: StartTlsPolicy::Required,
        auth: None,
        auth_required: false,
        mail: None,
    };
    let session = ClientSession::new(plan, Box::new(SeededRandom::from_seed(1)), false);
    let run = run_client(&connect(&addr, Transport::Plain), session).await;
    let outcome = run.result.expect("the session completes");
    assert!(outcome.tls);
    assert!(outcome.injected_after_starttls > 0, "{:#?}", run.transcript);
    let caps = outcome.capabilities.unwrap();
    assert!(caps.auth.is_none(), "the injected AUTH line must not count");
}
