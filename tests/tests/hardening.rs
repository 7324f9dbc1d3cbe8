//! Regression tests for the hardening review (issue 15): an accepted message is never
//! lost, every resource a client can grow is bounded, every wait ends, ANONYMOUS is
//! not an identity, and `<LF>.<CR><LF>` does not end DATA under `normalize`.
//! Each test failed before its fix.

use authspec_reference::net::server::{ServerShared, serve};
use authspec_reference::net::tls;
use authspec_reference::smtp::server::{Delivery, Event, ServerSession};
use authspec_tests::{events, exchange, server, server_config, users};
use base64::Engine as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn into_data(s: &mut ServerSession) {
    s.take_output();
    exchange(s, "EHLO client.example.com\r\n");
    exchange(
        s,
        &format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0wonderland")),
    );
    exchange(s, "MAIL FROM:<alice@example.com>\r\n");
    exchange(s, "RCPT TO:<b@example.net>\r\n");
    assert!(exchange(s, "DATA\r\n").starts_with("354 "));
}

// ---- 1. the 250 comes after the message is safe ------------------------------------

#[test]
fn finding_01_no_250_before_the_driver_stored_the_message() {
    let mut s = server(&[]);
    into_data(&mut s);
    s.receive(b"Subject: x\r\n\r\nhi\r\n.\r\nNOOP\r\n");
    // Nothing is said, and the pipelined NOOP waits, until the driver answers.
    assert!(s.take_output().is_empty());
    assert!(s.awaiting_delivery());
    assert!(events(&mut s).contains(&Event::MessageEnd));
    s.delivered(Delivery::Failed);
    let out = String::from_utf8(s.take_output()).unwrap();
    assert_eq!(
        out,
        "451 4.3.0 Error: queue file write error\r\n250 2.0.0 Ok\r\n"
    );
}

async fn start_with(
    params: &[(&str, &str)],
    maildir: Option<PathBuf>,
    tls_on: bool,
) -> (String, Arc<ServerShared>) {
    let tls_config = tls_on.then(|| {
        let ck = tls::self_signed(&["mx.authspec.test".to_string()]).unwrap();
        tls::server_config(ck.certs, ck.key, &tls::ClientAuth::None).unwrap()
    });
    let shared = Arc::new(ServerShared::new(
        server_config(params),
        users(),
        tls_config,
        maildir,
        Some(5),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(serve(listener, Arc::clone(&shared)));
    (addr, shared)
}

/// Reads until `want` appears in what was received, or the server closes.
async fn read_until(s: &mut TcpStream, got: &mut Vec<u8>, want: &str) {
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(got).contains(want) {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
}

async fn send_message(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let input = format!(
        "EHLO c.example\r\nAUTH PLAIN {}\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n",
        b64(b"\0alice\0wonderland")
    );
    let mut got = Vec::new();
    s.write_all(input.as_bytes()).await.unwrap();
    read_until(&mut s, &mut got, "354 ").await;
    s.write_all(b"Subject: t\r\n\r\nbody\r\n.\r\n")
        .await
        .unwrap();
    let mark = got.len();
    read_until(&mut s, &mut got, "\r\n").await;
    let mut more = Vec::new();
    while !more.ends_with(b"\r\n") {
        let mut b = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await {
            Ok(Ok(1)) => more.push(b[0]),
            _ => break,
        }
        if got.len() > mark && got[mark..].ends_with(b"\r\n") && more.is_empty() {
            break;
        }
    }
    let mut reply = got[mark..].to_vec();
    reply.extend(more);
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test]
async fn finding_01_a_failed_maildir_write_answers_451_not_250() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the maildir should be: every delivery fails.
    let blocked = dir.path().join("not-a-dir");
    std::fs::write(&blocked, b"").unwrap();
    let (addr, shared) = start_with(&[], Some(blocked), false).await;
    let reply = send_message(&addr).await;
    assert!(reply.starts_with("451 4.3.0"), "{reply:?}");
    assert_eq!(
        shared
            .counters
            .delivery_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn finding_01_after_the_250_the_message_is_in_new() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _) = start_with(&[], Some(dir.path().to_path_buf()), false).await;
    let reply = send_message(&addr).await;
    assert!(reply.starts_with("250 2.0.0"), "{reply:?}");
    // No wait: the 250 promises the rename happened.
    let new: Vec<_> = std::fs::read_dir(dir.path().join("new")).unwrap().collect();
    assert_eq!(new.len(), 1);
    let tmp: Vec<_> = std::fs::read_dir(dir.path().join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "a finished message left tmp/ files");
    let text = std::fs::read_to_string(new[0].as_ref().unwrap().path()).unwrap();
    assert!(
        text.starts_with("Return-Path: <alice@example.com>\r\n"),
        "{text}"
    );
    assert!(text.ends_with("Subject: t\r\n\r\nbody\r\n"), "{text}");
}

// ---- 2. smtpd_recipient_limit ---------------------------------------------------------

#[test]
fn finding_02_recipients_stop_at_smtpd_recipient_limit_with_452() {
    let mut s = server(&[("smtpd_recipient_limit", "3")]);
    s.take_output();
    exchange(&mut s, "EHLO client.example.com\r\n");
    exchange(
        &mut s,
        &format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0wonderland")),
    );
    exchange(&mut s, "MAIL FROM:<alice@example.com>\r\n");
    for i in 0..3 {
        assert_eq!(
            exchange(&mut s, &format!("RCPT TO:<r{i}@example.net>\r\n")),
            "250 2.1.5 Ok\r\n"
        );
    }
    assert_eq!(
        exchange(&mut s, "RCPT TO:<r4@example.net>\r\n"),
        "452 4.5.3 Error: too many recipients\r\n"
    );
    assert!(exchange(&mut s, "DATA\r\n").starts_with("354 "));
    let (env, _) = {
        exchange(&mut s, ".\r\n");
        authspec_tests::message(&events(&mut s)).unwrap()
    };
    assert_eq!(env.rcpt_to.len(), 3);
}

#[test]
fn finding_02_default_limit_is_1000_and_a_flood_ends_at_the_error_limit() {
    let mut s = server(&[
        ("smtpd_recipient_overshoot_limit", "5"),
        ("smtpd_error_sleep_time", "0"),
    ]);
    s.take_output();
    exchange(&mut s, "EHLO client.example.com\r\n");
    exchange(
        &mut s,
        &format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0wonderland")),
    );
    exchange(&mut s, "MAIL FROM:<alice@example.com>\r\n");
    let mut flood = String::new();
    for i in 0..200_000 {
        flood.push_str(&format!("RCPT TO:<r{i}@example.net>\r\n"));
    }
    let out = exchange(&mut s, &flood);
    assert_eq!(out.matches("250 2.1.5 Ok").count(), 1000);
    // 5 overshoots free, then 20 counted errors (smtpd_hard_error_limit) end it.
    assert_eq!(out.matches("452 4.5.3").count(), 5 + 20);
    assert!(out.ends_with("421 4.7.0 mx.authspec.test Error: too many errors\r\n"));
    assert!(s.is_closed());
}

// ---- 3. the implicit-TLS handshake times out ---------------------------------------------

#[tokio::test]
async fn finding_03_silent_implicit_tls_connection_is_closed_by_smtpd_timeout() {
    let (addr, _) = start_with(
        &[("smtpd_tls_wrappermode", "yes"), ("smtpd_timeout", "1s")],
        None,
        true,
    )
    .await;
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let mut half = TcpStream::connect(&addr).await.unwrap();
    // The first bytes of a TLS record header, then nothing.
    half.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    for s in [&mut silent, &mut half] {
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
        assert!(closed.is_ok(), "the handshake never timed out");
    }
}

// ---- 4. ANONYMOUS is not an identity ----------------------------------------------------------

fn anonymous_then_mail(params: &[(&str, &str)]) -> (String, String) {
    let mut s = server(params);
    s.take_output();
    let ehlo = exchange(&mut s, "EHLO client.example.com\r\n");
    assert!(ehlo.contains("ANONYMOUS"), "{ehlo}");
    let auth = exchange(&mut s, &format!("AUTH ANONYMOUS {}\r\n", b64(b"trace")));
    assert!(auth.starts_with("235 "), "{auth}");
    let mail = exchange(&mut s, "MAIL FROM:<x@example.com>\r\n");
    (auth, mail)
}

#[test]
fn finding_04_anonymous_does_not_satisfy_authspec_require_auth() {
    // The README's old advice: noplaintext alone drops noanonymous.
    let (_, mail) = anonymous_then_mail(&[
        ("smtpd_sasl_security_options", "noplaintext"),
        ("authspec_require_auth", "yes"),
    ]);
    assert_eq!(mail, "530 5.7.0 Authentication required\r\n");
}

#[test]
fn finding_04_a_parameter_can_let_anonymous_count() {
    let (_, mail) = anonymous_then_mail(&[
        ("smtpd_sasl_security_options", "noplaintext"),
        ("authspec_require_auth", "yes"),
        ("authspec_anonymous_is_authenticated", "yes"),
    ]);
    assert_eq!(mail, "250 2.1.0 Ok\r\n");
}

// ---- 6. DATA is streamed, not held ---------------------------------------------------------

#[test]
fn finding_06_the_session_never_holds_more_than_one_read_of_the_body() {
    let mut s = server(&[]);
    into_data(&mut s);
    events(&mut s);
    let line = format!("{}\r\n", "x".repeat(998));
    let body = line.repeat(10 * 1024);
    let mut total = 0usize;
    for chunk in body.as_bytes().chunks(4096) {
        s.receive(chunk);
        for e in events(&mut s) {
            if let Event::MessageData(d) = e {
                // One read completes at most one read's worth of lines (plus the
                // line that was pending before it).
                assert!(d.len() <= 4096 + 1000, "{} octets in one event", d.len());
                total += d.len();
            }
        }
    }
    assert_eq!(total, body.len());
    s.receive(b".\r\n");
    assert!(events(&mut s).contains(&Event::MessageEnd));
}

// ---- 9. SMTP smuggling under normalize --------------------------------------------------------

#[test]
fn finding_09_lf_dot_crlf_does_not_end_data_under_normalize() {
    let mut s = server(&[("smtpd_forbid_bare_newline", "normalize")]);
    into_data(&mut s);
    let out = exchange(
        &mut s,
        "Subject: x\r\n\r\nhi\n.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<v@example.net>\r\nDATA\r\nsmuggled\r\n.\r\n",
    );
    // One message, whose content holds the smuggled commands; one 250.
    assert_eq!(out, "250 2.0.0 Ok: queued\r\n");
    let (_, data) = authspec_tests::message(&events(&mut s)).unwrap();
    let text = String::from_utf8_lossy(&data);
    assert!(text.contains("MAIL FROM:<evil@example.com>"), "{text}");
}

#[test]
fn finding_09_crlf_dot_crlf_still_ends_data_under_normalize() {
    let mut s = server(&[("smtpd_forbid_bare_newline", "normalize")]);
    into_data(&mut s);
    assert_eq!(
        exchange(&mut s, "a\nb\r\n.\r\n"),
        "250 2.0.0 Ok: queued\r\n"
    );
}

// ---- 14. mynetworks is exempt from the connection limit ---------------------------------------

#[tokio::test]
async fn finding_14_loopback_in_mynetworks_is_not_refused_by_the_connection_limit() {
    let (addr, shared) =
        start_with(&[("smtpd_client_connection_count_limit", "1")], None, false).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let mut b = [0u8; 128];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert!(
            b[..n].starts_with(b"220 "),
            "{:?}",
            String::from_utf8_lossy(&b[..n])
        );
        held.push(s);
    }
    assert_eq!(
        shared
            .counters
            .refused_busy
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
