//! The TLS plumbing against itself over loopback: real tokio-rustls handshakes between
//! configurations built by `net::tls`, each bounded by a timeout so a hang fails the test.

use std::sync::Arc;
use std::time::Duration;

use authspec_reference::net::tls::{
    self, CertAndKey, ClientAuth, ServerVerification, TlsError, TlsInfo,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const HOST: &str = "smtp.peers.test";
const LIMIT: Duration = Duration::from_secs(20);

fn cert() -> CertAndKey {
    tls::self_signed(&[HOST.to_owned(), "localhost".to_owned()]).expect("self-signed cert")
}

fn write_pem(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write pem");
    path
}

/// Outcome of one handshake: the client's result (with its view) and the server's view
/// when its side completed.
struct Handshake {
    client: Result<TlsInfo, std::io::Error>,
    server: Option<TlsInfo>,
}

/// Runs one handshake over 127.0.0.1, then a one-byte echo so both sides have
/// finished (TLS 1.3 client certificates are only checked after the client's Finished).
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    name: &str,
) -> Handshake {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.ok()?;
        let mut tls = acceptor.accept(tcp).await.ok()?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.ok()?;
        tls.write_all(&byte).await.ok()?;
        tls.flush().await.ok()?;
        let info = tls::tls_info_from_server(tls.get_ref().1);
        // Wait for the client's close so the reply is not cut by a reset.
        let _ = tls.read(&mut byte).await;
        Some(info)
    });

    let connector = tokio_rustls::TlsConnector::from(client);
    let server_name = ServerName::try_from(name.to_owned()).expect("server name");
    let client_result = async {
        let tcp = TcpStream::connect(addr).await?;
        let mut tls = connector.connect(server_name, tcp).await?;
        tls.write_all(b"x").await?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await?;
        assert_eq!(&byte, b"x");
        let info = tls::tls_info_from_client(tls.get_ref().1).with_sni(Some(name.to_owned()));
        tls.shutdown().await?;
        Ok(info)
    };
    let client = timeout(LIMIT, client_result)
        .await
        .expect("client timed out");
    let server = timeout(LIMIT, server_task)
        .await
        .expect("server timed out")
        .expect("server task panicked");
    Handshake { client, server }
}

fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

#[tokio::test]
async fn webpki_with_the_self_signed_cert_as_ca_succeeds_over_tls13() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ck = cert();
    let ca = write_pem(&dir, "ca.pem", &ck.cert_pem);
    let server = tls::server_config(ck.certs.clone(), ck.key.clone_key(), &ClientAuth::None)
        .expect("server config");
    let client = tls::client_config(&ServerVerification::WebPki { ca_file: Some(ca) })
        .expect("client config");

    let hs = handshake(server, client, HOST).await;
    let info = hs.client.expect("handshake should succeed");
    assert_eq!(info.version, "TLSv1.3");
    assert!(info.cipher.starts_with("TLS13_"), "cipher {}", info.cipher);
    assert_eq!(info.peer_subject.as_deref(), Some("CN=smtp.peers.test"));
    let not_after = info.peer_not_after.expect("not_after");
    // rcgen's default validity ends on 4096-01-01.
    assert_eq!(not_after, "4096-01-01T00:00:00Z");
    assert_eq!(info.sni.as_deref(), Some(HOST));

    let server_info = hs.server.expect("server side completed");
    assert_eq!(server_info.version, "TLSv1.3");
    assert_eq!(server_info.sni.as_deref(), Some(HOST));
    assert_eq!(
        server_info.peer_subject, None,
        "no client certificate was sent"
    );
}

#[tokio::test]
async fn webpki_with_builtin_roots_rejects_a_self_signed_cert() {
    let ck = cert();
    let server = tls::server_config(ck.certs.clone(), ck.key.clone_key(), &ClientAuth::None)
        .expect("server config");
    let client =
        tls::client_config(&ServerVerification::WebPki { ca_file: None }).expect("client config");

    let hs = handshake(server, client, HOST).await;
    let err = hs.client.expect_err("an unknown issuer must fail");
    assert_eq!(
        rustls_error(&err),
        Some(&rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        )),
        "{err}"
    );
    assert!(hs.server.is_none());
}

#[tokio::test]
async fn webpki_rejects_a_name_the_cert_does_not_cover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ck = cert();
    let ca = write_pem(&dir, "ca.pem", &ck.cert_pem);
    let server = tls::server_config(ck.certs.clone(), ck.key.clone_key(), &ClientAuth::None)
        .expect("server config");
    let client = tls::client_config(&ServerVerification::WebPki { ca_file: Some(ca) })
        .expect("client config");

    let hs = handshake(server, client, "mail.example.com").await;
    let err = hs.client.expect_err("wrong name must fail");
    assert!(
        matches!(
            rustls_error(&err),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            ))
        ),
        "{err}"
    );
}

#[tokio::test]
async fn insecure_accepts_an_untrusted_cert_for_any_name() {
    let ck = cert();
    let server = tls::server_config(ck.certs.clone(), ck.key.clone_key(), &ClientAuth::None)
        .expect("server config");
    let client = tls::client_config(&ServerVerification::Insecure).expect("client config");

    let hs = handshake(server, client, "anything.invalid").await;
    let info = hs.client.expect("insecure accepts");
    assert_eq!(info.version, "TLSv1.3");
    assert_eq!(info.peer_subject.as_deref(), Some("CN=smtp.peers.test"));
}

#[tokio::test]
async fn server_also_speaks_tls12() {
    let ck = cert();
    let server = tls::server_config(ck.certs.clone(), ck.key.clone_key(), &ClientAuth::None)
        .expect("server config");
    // A client limited to TLS 1.2, built directly with rustls.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.certs[0].clone()).expect("add root");
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();

    let hs = handshake(server, Arc::new(client), HOST).await;
    let info = hs.client.expect("TLS 1.2 handshake");
    assert_eq!(info.version, "TLSv1.2");
    assert!(
        info.cipher.starts_with("TLS_ECDHE_"),
        "cipher {}",
        info.cipher
    );
}

#[tokio::test]
async fn accept_any_client_auth_exposes_the_client_subject() {
    let server_ck = cert();
    let client_ck = tls::self_signed(&["alice.peers.test".to_owned()]).expect("client cert");
    let server = tls::server_config(
        server_ck.certs.clone(),
        server_ck.key.clone_key(),
        &ClientAuth::AcceptAny,
    )
    .expect("server config");
    let client = tls::client_config_with_cert(
        &ServerVerification::Insecure,
        client_ck.certs.clone(),
        client_ck.key,
    )
    .expect("client config");

    let hs = handshake(server, client, HOST).await;
    hs.client.expect("handshake");
    let server_info = hs.server.expect("server side completed");
    assert_eq!(
        server_info.peer_subject.as_deref(),
        Some("CN=alice.peers.test")
    );
}

#[tokio::test]
async fn webpki_client_auth_rejects_a_client_cert_from_another_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server_ck = cert();
    let trusted = tls::self_signed(&["trusted.peers.test".to_owned()]).expect("trusted");
    let stranger = tls::self_signed(&["stranger.peers.test".to_owned()]).expect("stranger");
    let ca = write_pem(&dir, "clients.pem", &trusted.cert_pem);
    let server = tls::server_config(
        server_ck.certs.clone(),
        server_ck.key.clone_key(),
        &ClientAuth::WebPki { ca_file: ca },
    )
    .expect("server config");
    let client = tls::client_config_with_cert(
        &ServerVerification::Insecure,
        stranger.certs.clone(),
        stranger.key,
    )
    .expect("client config");

    let hs = handshake(server, client, HOST).await;
    // In TLS 1.3 the client learns of the rejection only when it next reads.
    assert!(
        hs.client.is_err(),
        "client with an untrusted certificate must not get through"
    );
    assert!(hs.server.is_none());
}

#[test]
fn load_cert_and_key_round_trips_pem_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ck = cert();
    let c = write_pem(&dir, "cert.pem", &ck.cert_pem);
    let k = write_pem(&dir, "key.pem", &ck.key_pem);
    let loaded = tls::load_cert_and_key(&c, &k).expect("load");
    assert_eq!(loaded.certs, ck.certs);
    assert_eq!(loaded.key.secret_der(), ck.key.secret_der());
    assert!(
        !format!("{loaded:?}").contains("PRIVATE"),
        "Debug must not print the key"
    );
    tls::server_config(loaded.certs, loaded.key, &ClientAuth::None).expect("usable");
}

#[test]
fn load_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ck = cert();
    let c = write_pem(&dir, "cert.pem", &ck.cert_pem);
    let k = write_pem(&dir, "key.pem", &ck.key_pem);
    let empty = write_pem(&dir, "empty.pem", "");
    let missing = dir.path().join("missing.pem");

    assert!(matches!(
        tls::load_cert_and_key(&missing, &k),
        Err(TlsError::CertFileUnreadable { path, .. }) if path == missing
    ));
    assert!(matches!(
        tls::load_cert_and_key(&c, &missing),
        Err(TlsError::KeyFileUnreadable { path, .. }) if path == missing
    ));
    assert_eq!(
        tls::load_cert_and_key(&empty, &k).unwrap_err(),
        TlsError::NoCertificateInFile {
            path: empty.clone()
        }
    );
    // The key file holds only a certificate.
    assert_eq!(
        tls::load_cert_and_key(&c, &c).unwrap_err(),
        TlsError::NoPrivateKeyInFile { path: c.clone() }
    );
    let broken = write_pem(
        &dir,
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );
    assert!(matches!(
        tls::load_cert_and_key(&broken, &k),
        Err(TlsError::MalformedPem { path, .. }) if path == broken
    ));
    let err = tls::load_cert_and_key(&empty, &k).unwrap_err().to_string();
    assert!(
        err.contains("empty.pem") && err.contains("no CERTIFICATE"),
        "{err}"
    );
}

#[test]
fn mismatched_key_is_named() {
    let a = cert();
    let b = cert();
    assert_eq!(
        tls::server_config(a.certs, b.key, &ClientAuth::None).unwrap_err(),
        TlsError::KeyDoesNotMatchCertificate
    );
}

#[test]
fn ca_file_without_certificates_is_invalid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ck = cert();
    let key_only = write_pem(&dir, "key.pem", &ck.key_pem);
    assert!(matches!(
        tls::client_config(&ServerVerification::WebPki { ca_file: Some(key_only.clone()) }),
        Err(TlsError::InvalidCaFile { path, .. }) if path == key_only
    ));
    let missing = dir.path().join("nope.pem");
    assert!(matches!(
        tls::client_config(&ServerVerification::WebPki { ca_file: Some(missing.clone()) }),
        Err(TlsError::InvalidCaFile { path, .. }) if path == missing
    ));
}

#[test]
fn self_signed_needs_a_hostname() {
    assert_eq!(tls::self_signed(&[]).unwrap_err(), TlsError::NoHostnames);
}

#[tokio::test]
async fn webpki_client_auth_accepts_a_client_cert_from_its_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server_ck = cert();
    let trusted = tls::self_signed(&["trusted.peers.test".to_owned()]).expect("trusted");
    let ca = write_pem(&dir, "clients.pem", &trusted.cert_pem);
    let server = tls::server_config(
        server_ck.certs.clone(),
        server_ck.key.clone_key(),
        &ClientAuth::WebPki { ca_file: ca },
    )
    .expect("server config");
    let client = tls::client_config_with_cert(
        &ServerVerification::Insecure,
        trusted.certs.clone(),
        trusted.key,
    )
    .expect("client config");

    let hs = handshake(server, client, HOST).await;
    hs.client.expect("trusted client gets through");
    let server_info = hs.server.expect("server side completed");
    assert_eq!(
        server_info.peer_subject.as_deref(),
        Some("CN=trusted.peers.test")
    );
}

/// Reads one SMTP reply (all its lines) and returns it.
async fn read_reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> String {
    use tokio::io::AsyncBufReadExt;
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        let n = timeout(LIMIT, r.read_line(&mut line))
            .await
            .expect("reply timed out")
            .expect("read");
        assert!(n > 0, "peer closed; got so far: {reply:?}");
        reply.push_str(&line);
        if line.as_bytes().get(3) == Some(&b' ') {
            return reply;
        }
    }
}

/// Our WebPKI client against the real Postfix STARTTLS peer, trusting the certificate
/// tests/interop/postfix-up.sh made. Run with `--ignored` once the peers are up.
#[tokio::test]
#[ignore = "needs the real peers: tests/interop/install.sh && tests/interop/postfix-up.sh"]
async fn postfix_starttls_peer_verifies_with_its_certificate_as_ca() {
    use tokio::io::BufReader;
    let ca = std::env::var("PEERS_TLS_CA")
        .unwrap_or_else(|_| "/etc/authspec-peers/tls/cert.pem".to_owned());
    let port = std::env::var("PEERS_PORT_STARTTLS").unwrap_or_else(|_| "2528".to_owned());
    let tcp = TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .expect("connect :2528");
    let mut plain = BufReader::new(tcp);
    assert!(read_reply(&mut plain).await.starts_with("220 "));
    plain
        .get_mut()
        .write_all(b"EHLO client.peers.test\r\n")
        .await
        .expect("write");
    let ehlo = read_reply(&mut plain).await;
    assert!(
        ehlo.contains("250-STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    plain
        .get_mut()
        .write_all(b"STARTTLS\r\n")
        .await
        .expect("write");
    assert!(read_reply(&mut plain).await.starts_with("220 "));

    let config = tls::client_config(&ServerVerification::WebPki {
        ca_file: Some(ca.into()),
    })
    .expect("client config");
    let name = ServerName::try_from(HOST).expect("name");
    let tls_stream = timeout(
        LIMIT,
        tokio_rustls::TlsConnector::from(config).connect(name, plain.into_inner()),
    )
    .await
    .expect("handshake timed out")
    .expect("handshake with Postfix");
    let info = tls::tls_info_from_client(tls_stream.get_ref().1);
    assert_eq!(info.version, "TLSv1.3");
    assert_eq!(info.peer_subject.as_deref(), Some("CN=smtp.peers.test"));

    let mut secure = BufReader::new(tls_stream);
    secure
        .get_mut()
        .write_all(b"EHLO client.peers.test\r\n")
        .await
        .expect("write");
    let ehlo = read_reply(&mut secure).await;
    assert!(
        ehlo.contains("250-AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5\r\n"),
        "{ehlo}"
    );
    secure
        .get_mut()
        .write_all(b"QUIT\r\n")
        .await
        .expect("write");
    assert!(read_reply(&mut secure).await.starts_with("221 "));
}

/// The `openssl` command, when this machine has one.
fn openssl() -> Option<std::path::PathBuf> {
    let ok = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then(|| "openssl".into())
}

/// Known answer for RFC 9266 `tls-exporter`, computed by an independent TLS stack:
/// OpenSSL's `s_client -keymatexport EXPORTER-Channel-Binding -keymatexportlen 32`
/// (no context, which in TLS 1.3 is the empty context, RFC 8446 §7.5) prints the
/// exporter of its side of the connection; the server's value from rustls, through
/// `tls::tls_exporter`, must be the same 32 octets. `tls-server-end-point` is checked
/// against `openssl x509 | openssl dgst -sha256` of the same certificate (RFC 5929
/// §4.1: SHA-256 for an ECDSA-with-SHA-256 signature).
#[tokio::test]
async fn channel_bindings_match_openssls_independent_computation() {
    let Some(openssl) = openssl() else {
        eprintln!("openssl not found: skipping");
        return;
    };
    let ck = cert();
    let der = ck.certs[0].as_ref().to_vec();
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = write_pem(&dir, "cert.pem", &ck.cert_pem);
    let config = tls::server_config(ck.certs, ck.key, &ClientAuth::None).expect("server config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.ok()?;
        let mut tls = acceptor.accept(tcp).await.ok()?;
        let exporter = tls::tls_exporter(tls.get_ref().1);
        // s_client reads stdin to EOF, then closes.
        let mut rest = Vec::new();
        let _ = timeout(LIMIT, tls.read_to_end(&mut rest)).await;
        exporter
    });
    let client = tokio::task::spawn_blocking({
        let openssl = openssl.clone();
        move || {
            std::process::Command::new(openssl)
                .args(["s_client", "-connect"])
                .arg(format!("127.0.0.1:{port}"))
                .args([
                    "-tls1_3",
                    "-keymatexport",
                    "EXPORTER-Channel-Binding",
                    "-keymatexportlen",
                    "32",
                ])
                .stdin(std::process::Stdio::null())
                .output()
                .expect("run openssl s_client")
        }
    });
    let out = timeout(LIMIT, client)
        .await
        .expect("openssl timed out")
        .expect("join");
    let server_value = timeout(LIMIT, server)
        .await
        .expect("server timed out")
        .expect("join")
        .expect("the server's exporter");
    let text = String::from_utf8_lossy(&out.stdout);
    let openssl_value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Keying material:"))
        .map(|hex| hex.trim().to_ascii_lowercase())
        .unwrap_or_else(|| panic!("no keying material in s_client's output:\n{text}"));
    let ours: String = server_value.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(ours.len(), 64);
    assert_eq!(
        ours, openssl_value,
        "rustls and OpenSSL disagree on tls-exporter"
    );

    let digest = std::process::Command::new(&openssl)
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&pem)
        .output()
        .expect("openssl x509");
    assert_eq!(digest.stdout, der, "the PEM and DER forms differ");
    let mut dgst = std::process::Command::new(&openssl)
        .args(["dgst", "-sha256", "-hex"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl dgst");
    std::io::Write::write_all(&mut dgst.stdin.take().expect("stdin"), &der).expect("write");
    let hashed = dgst.wait_with_output().expect("dgst output");
    let hashed = String::from_utf8_lossy(&hashed.stdout);
    let hex = hashed.rsplit(' ').next().unwrap_or_default().trim();
    let end_point: String = tls::tls_server_end_point(&der)
        .expect("end-point hash")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        end_point, hex,
        "tls-server-end-point is not SHA-256 of the certificate"
    );
}
