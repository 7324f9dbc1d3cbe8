//! Known-answer check of the `tls-exporter` channel binding (RFC 9266) against an
//! independent implementation: OpenSSL's `s_server -keymatexport
//! EXPORTER-Channel-Binding -keymatexportlen 32` prints the exporter value of the
//! connection it accepted (OpenSSL's TLS 1.3 exporter treats "no context" as the empty
//! context, as RFC 8446 §7.5 defines it), and the rustls client side
//! ([`tls::tls_exporter`]) must compute the same 32 octets on the same connection.
//! Also checks `tls-server-end-point` against SHA-256 of the DER certificate (ECDSA
//! P-256 with SHA-256, RFC 5929 §4.1). Skipped when no `openssl` binary is installed.

use authspec_reference::net::tls;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

#[test]
fn tls_exporter_matches_openssl() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipped: no openssl binary");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ck = tls::self_signed(&["localhost".to_string()]).expect("cert");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, &ck.cert_pem).expect("write");
    std::fs::write(&key, &ck.key_pem).expect("write");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-tls1_3", "-naccept", "1", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .args([
            "-keymatexport",
            "EXPORTER-Channel-Binding",
            "-keymatexportlen",
            "32",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn openssl");
    let stdout = server.stdout.take().expect("stdout");

    // Connect once the server listens (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sock = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("openssl s_server did not listen: {e}"),
        }
    };
    sock.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let config = tls::client_config(&tls::ServerVerification::Insecure).expect("config");
    let mut conn =
        rustls::ClientConnection::new(Arc::clone(&config), "localhost".try_into().expect("name"))
            .expect("client");
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).expect("handshake");
    }
    // Send a line so that s_server has finished its side and printed its summary.
    conn.writer().write_all(b"hello\n").expect("write");
    conn.complete_io(&mut sock).expect("io");
    let ours = tls::tls_exporter(&conn).expect("exporter");
    assert_eq!(ours.len(), 32);
    let end_point = tls::tls_server_end_point(ck.certs[0].as_ref()).expect("end point");
    assert_eq!(end_point, {
        use sha2::Digest;
        sha2::Sha256::digest(ck.certs[0].as_ref()).to_vec()
    });

    let mut theirs = None;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        if let Some(v) = line.trim().strip_prefix("Keying material: ") {
            theirs = Some(v.trim().to_string());
            break;
        }
        line.clear();
    }
    let _ = server.kill();
    let _ = server.wait();
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    assert_eq!(theirs.as_deref(), Some(hex(&ours).as_str()));
}
