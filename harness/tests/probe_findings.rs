//! `authspec probe` findings against real and scripted servers: a port that speaks TLS
//! from the first byte or stays silent (issue 17), and the channel-binding section
//! (issue 18 item 5) against `authspec serve` with STARTTLS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod support;
use support::serve;

const BIN: &str = env!("CARGO_BIN_EXE_authspec");

/// What `probe` exits with when it cannot report (README exit codes).
const EXIT_NETWORK: i32 = 3;

fn probe(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("probe")
        .args(args)
        .env_remove("AUTHSPEC_LOG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

fn rules(report: &serde_json::Value) -> Vec<String> {
    report["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap().to_string())
        .collect()
}

/// A loopback listener that serves `connections` accepted connections with `serve`,
/// each on its own thread, and then stops accepting.
fn scripted(connections: usize, serve: fn(TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            std::thread::spawn(move || serve(stream));
        }
    });
    addr
}

#[test]
fn implicit_tls_port_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &["-o", "smtpd_tls_wrappermode=yes"]);
    let start = Instant::now();
    let out = probe(&[&server.addr, "--timeout", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_NETWORK), "{}", text(&out));
    assert!(
        stderr.contains(&format!(
            "authspec probe: {}: no SMTP greeting in 1 s, but the port answered a TLS ClientHello (handshake completed, TLSv1.3): it speaks TLS from the first byte (implicit TLS, RFC 8314 §3.3). Run again with --tls.",
            server.addr
        )),
        "{}",
        text(&out)
    );
    assert!(!stderr.contains("silent"), "{}", text(&out));
    // One timeout for the greeting, then a prompt handshake: not two timeouts.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    // And the advice works: with --tls the same port gives a report.
    let report = json(&probe(&[&server.addr, "--tls", "--format", "json"]));
    assert_eq!(report["implicit_tls"], true);
    assert!(report["banner"].as_str().unwrap().contains("ESMTP"));
}

#[test]
fn silent_port_is_called_silent_not_tls() {
    // Accepts and never writes, to the greeting wait and the ClientHello alike.
    let addr = scripted(2, |mut s| {
        let mut buf = [0u8; 1024];
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            // Reads end at the peer's close or the 5 s read timeout.
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    let out = probe(&[&addr, "--timeout", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_NETWORK), "{}", text(&out));
    assert!(
        stderr.contains(&format!(
            "authspec probe: {addr}: no SMTP greeting in 1 s and no answer to a TLS ClientHello either: the port is silent (a greeting delay longer than --timeout, or not SMTP"
        )),
        "{}",
        text(&out)
    );
    assert!(!stderr.contains("--tls."), "{}", text(&out));
}

#[test]
fn tls_record_instead_of_a_greeting_is_recognised_at_once() {
    // A TLS fatal alert record (protocol_version) as the first octets, on every
    // connection: what a TLS server that speaks first looks like to a plaintext client.
    const ALERT: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46];
    let addr = scripted(2, |mut s| {
        let _ = s.write_all(ALERT);
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
    });
    let start = Instant::now();
    let out = probe(&[&addr, "--timeout", "5"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_NETWORK), "{}", text(&out));
    assert!(
        stderr.contains(
            "the first octets were a TLS record (0x15 0x03), not an SMTP greeting (RFC 5321 §4.2), but the port answered a TLS ClientHello (handshake refused: received fatal alert: ProtocolVersion): it speaks TLS from the first byte (implicit TLS, RFC 8314 §3.3). Run again with --tls."
        ),
        "{}",
        text(&out)
    );
    // The bytes decide, not the 5 s timeout.
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn channel_binding_over_starttls_reports_plus_and_each_binding_type() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &["-o", "smtpd_tls_security_level=may"]);
    let report = json(&probe(&[&server.addr, "--format", "json"]));
    let cb = &report["channel_binding"];

    // -PLUS only after STARTTLS, both hashes.
    let offered: Vec<(String, bool, bool)> = cb["plus_offered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["offered_before_tls"].as_bool().unwrap(),
                p["offered_over_tls"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        offered,
        vec![
            ("SCRAM-SHA-256-PLUS".to_string(), false, true),
            ("SCRAM-SHA-1-PLUS".to_string(), false, true),
        ],
        "{cb:#}"
    );
    assert_eq!(cb["tried_with"], "SCRAM-SHA-256-PLUS", "{cb:#}");
    assert!(
        cb["note"]
            .as_str()
            .unwrap()
            .contains("no credentials are used and no authentication completes"),
        "{cb:#}"
    );

    let types = cb["binding_types"].as_array().unwrap();
    let by_type = |t: &str| {
        types
            .iter()
            .find(|b| b["type"] == t)
            .unwrap_or_else(|| panic!("{t} missing: {cb:#}"))
    };
    assert_eq!(types.len(), 3, "{cb:#}");
    for t in ["tls-exporter", "tls-server-end-point"] {
        let b = by_type(t);
        assert_eq!(b["outcome"], "accepted", "{t}: {b:#}");
        assert_eq!(b["reply_code"], 334, "{t}: {b:#}");
        assert!(b["server_error"].is_null(), "{t}: {b:#}");
        // The exchange was cancelled cleanly afterwards (RFC 4954 §4: 501).
        assert!(
            b["detail"]
                .as_str()
                .unwrap()
                .ends_with("cancelled with `*`: 501"),
            "{t}: {b:#}"
        );
    }
    assert_eq!(by_type("tls-exporter")["rfc"], "RFC 9266");
    assert_eq!(by_type("tls-server-end-point")["rfc"], "RFC 5929 §4");
    // rustls has no tls-unique, so the reference refuses it: RFC 5802 §6 "the server
    // MUST fail authentication", answered 535 (a failed authentication) and not
    // 501 "malformed", since the client's message is well-formed. SMTP has no place
    // for an `e=` value before the server-final message.
    let unique = by_type("tls-unique");
    assert_eq!(unique["outcome"], "refused", "{unique:#}");
    assert_eq!(unique["reply_code"], 535, "{unique:#}");
    assert!(unique["server_error"].is_null(), "{unique:#}");
    assert_eq!(unique["rfc"], "RFC 5929 §3");

    let rules = rules(&report);
    assert!(!rules.iter().any(|r| r == "plus-without-tls"), "{rules:?}");
    assert!(
        !rules.iter().any(|r| r == "scram-without-plus"),
        "{rules:?}"
    );

    // The human form says the same, with what "accepted" means.
    let out = probe(&[&server.addr]);
    let human = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        human.contains("-PLUS offered: SCRAM-SHA-256-PLUS (after TLS only)"),
        "{human}"
    );
    assert!(
        human.contains("binding types tried with SCRAM-SHA-256-PLUS:"),
        "{human}"
    );
    let unique_line = human
        .lines()
        .find(|l| l.trim_start().starts_with("tls-unique"))
        .unwrap_or_else(|| panic!("{human}"));
    assert!(unique_line.contains("refused"), "{unique_line}");
    assert!(human.contains("no credentials are used"), "{human}");
}

#[test]
fn scram_without_plus_over_tls_is_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        dir.path(),
        &[
            "-o",
            "smtpd_tls_security_level=may",
            "-o",
            "smtpd_sasl_mechanism_filter=!external, !scram-sha-256-plus, !scram-sha-1-plus, static:rest",
        ],
    );
    let report = json(&probe(&[&server.addr, "--format", "json"]));
    let cb = &report["channel_binding"];
    assert_eq!(cb["plus_offered"].as_array().unwrap().len(), 0, "{cb:#}");
    assert!(cb["tried_with"].is_null(), "{cb:#}");
    for b in cb["binding_types"].as_array().unwrap() {
        assert_eq!(b["outcome"], "not-tried", "{b:#}");
        assert_eq!(b["detail"], "no SCRAM-*-PLUS is offered over TLS", "{b:#}");
    }
    let findings: Vec<&str> = report["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "scram-without-plus")
        .map(|a| a["detail"].as_str().unwrap())
        .collect();
    assert_eq!(findings.len(), 2, "{report:#}");
    assert!(
        findings[0].starts_with(
            "SCRAM-SHA-256 is offered over TLS without SCRAM-SHA-256-PLUS: a client cannot bind"
        ),
        "{findings:?}"
    );
    assert!(findings[0].contains("RFC 5802 §4"), "{findings:?}");
    assert!(
        findings[1].starts_with("SCRAM-SHA-1 is offered over TLS without SCRAM-SHA-1-PLUS"),
        "{findings:?}"
    );
    // Offered before TLS only as the bare name: no -PLUS anomaly there.
    assert!(!rules(&report).iter().any(|r| r == "plus-without-tls"));
}

/// A plaintext server that offers SCRAM-SHA-256-PLUS and no STARTTLS: nothing to bind.
fn plus_without_tls_server(s: TcpStream) {
    let mut w = match s.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(s);
    let _ = w.write_all(b"220 scripted ESMTP\r\n");
    let mut line = String::new();
    // A bounded dialogue: a probe session is a handful of commands.
    for _ in 0..16 {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250-scripted\r\n250 AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-256\r\n",
            "AUTH" => b"504 5.5.4 Unrecognized authentication type\r\n",
            "QUIT" => {
                let _ = w.write_all(b"221 2.0.0 Bye\r\n");
                return;
            }
            _ => b"502 5.5.2 Error: command not recognized\r\n",
        };
        if w.write_all(answer).is_err() {
            return;
        }
    }
}

#[test]
fn plus_offered_without_tls_is_an_anomaly() {
    let addr = scripted(4, plus_without_tls_server);
    let report = json(&probe(&[&addr, "--format", "json", "--timeout", "2"]));
    let cb = &report["channel_binding"];
    assert_eq!(
        cb["plus_offered"][0]["name"], "SCRAM-SHA-256-PLUS",
        "{cb:#}"
    );
    assert_eq!(cb["plus_offered"][0]["offered_before_tls"], true, "{cb:#}");
    assert_eq!(cb["plus_offered"][0]["offered_over_tls"], false, "{cb:#}");
    for b in cb["binding_types"].as_array().unwrap() {
        assert_eq!(b["outcome"], "not-tried", "{b:#}");
        assert!(
            b["detail"].as_str().unwrap().starts_with("no TLS session"),
            "{b:#}"
        );
    }
    let detail = report["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "plus-without-tls")
        .unwrap_or_else(|| panic!("{report:#}"))["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.starts_with("SCRAM-SHA-256-PLUS is offered on a connection without TLS"),
        "{detail}"
    );
    // No TLS at all: the bare SCRAM is not judged against -PLUS.
    assert!(!rules(&report).iter().any(|r| r == "scram-without-plus"));
}
