//! The `client/` server-role scenarios played against a third-party client: Python's
//! smtplib (`support/smtplib_client.py`, run through `authspec run --client-command`).
//! The expected verdicts record what smtplib does well and badly, so a change in
//! either the scenarios or smtplib shows up here:
//!
//! - well: it picks CRAM-MD5 first, skips unknown mechanisms, reads an `AUTH=`-only
//!   banner (its `OLDSTYLE_AUTH`), and stops with QUIT after 535, 454 and 504;
//! - differently: LOGIN goes as an initial response (`AUTH LOGIN <user>`, as
//!   MailKit#216 asked), so the three LOGIN-prompt scenarios, written for the classic
//!   dialog, fail at the AUTH line;
//! - badly: it answers a challenge that is not base64 with QUIT in the middle of the
//!   exchange instead of cancelling with `*` (RFC 4954 §4), and it has no option to
//!   refuse plaintext mechanisms without TLS;
//! - not at all: DIGEST-MD5, SCRAM, XOAUTH2 and OAUTHBEARER (it QUITs).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_authspec");

fn python3_available() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn verdicts() -> BTreeMap<String, String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = manifest.join("tests/support/smtplib_client.py");
    let scenarios = manifest.join("../scenarios/client");
    let out = Command::new(BIN)
        .arg("run")
        .arg("--client-command")
        .arg(format!("python3 {} {{host}} {{port}}", script.display()))
        .args(["--format", "json", "--jobs", "4"])
        .arg(&scenarios)
        .output()
        .expect("run authspec");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("authspec run prints a JSON report");
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or_default().to_string(),
                r["verdict"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn smtplib_against_the_client_scenarios() {
    if !python3_available() {
        eprintln!("python3 not found: skipping");
        return;
    }
    let got = verdicts();
    // Scenarios whose clauses carry no MUST judge at the reference level: a client
    // that differs there gets `info`, not a fail.
    // Generic scenarios run once per mechanism smtplib has (PLAIN, LOGIN, CRAM-MD5,
    // found by offering each alone); those for mechanisms it lacks are skipped. The
    // fails are its one real deviation: it answers a challenge it cannot decode
    // instead of cancelling with `*` (RFC 4954 §4 MUST).
    let mut expected: Vec<(String, &str)> = Vec::new();
    for m in ["plain", "login", "cram-md5"] {
        for id in [
            "auth-eq-only-banner",
            "no-fallback-storm-after-504",
            "skips-unknown-mechanisms",
            "stops-on-454",
            "stops-on-535",
        ] {
            expected.push((format!("client/{id}/{m}"), "pass"));
        }
    }
    for m in ["login", "cram-md5"] {
        expected.push((format!("client/cancels-bad-challenge/{m}"), "fail"));
    }
    for (id, v) in [
        ("client/digest-md5-rspauth", "skip"),
        ("client/first-mutual-mechanism", "pass"),
        ("client/login-334-with-space", "pass"),
        ("client/login-bare-334", "pass"),
        ("client/login-prompts-with-nul", "pass"),
        ("client/noplaintext-without-tls", "skip"),
        ("client/oauthbearer-error-kvsep-response", "skip"),
        ("client/scram-final-334-empty-response", "skip"),
        ("client/scram-plus-binds-tls-exporter", "skip"),
        ("client/scram-plus-preferred-over-tls", "skip"),
        ("client/scram-y-flag-when-plus-hidden", "skip"),
        ("client/xoauth2-error-empty-response", "skip"),
    ] {
        expected.push((id.to_owned(), v));
    }
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for (id, verdict) in &expected {
        let verdict = *verdict;
        assert_eq!(
            got.get(id.as_str()).map(String::as_str),
            Some(verdict),
            "{id}: smtplib's verdict changed (all: {got:?})"
        );
    }
}

/// A client that sends an initial response with CRAM-MD5, where the server speaks
/// first: the scripted server answers with the reference server's own reply (RFC 4954
/// §4: "501" with 5.7.0) and judges the client, as the reference server does. Before
/// the server role drove the reference exchange it accepted the initial response.
#[test]
fn an_initial_response_to_a_server_first_mechanism_fails_the_client() {
    if !python3_available() {
        eprintln!("python3 not found: skipping");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("cram-ir.yaml");
    std::fs::write(
        &scenario,
        r#"id: client/cram-md5-initial-response
title: The client waits for the CRAM-MD5 challenge
spec: ["RFC4954 §4 MUST"]
role: server
level: MUST
quote: 'RFC 4954 §4: "If the client is transmitting an initial response ... and the mechanism is server-first ... the server MUST reject the AUTH command with a 501 reply."'
steps:
  - reply: 220 mx.example.com ESMTP
  - expect_command: { verb: EHLO }
  - reply: { code: 250, lines: [mx.example.com, "AUTH CRAM-MD5"] }
  - expect_auth: { mechanism: CRAM-MD5 }
"#,
    )
    .expect("write scenario");
    let client = dir.path().join("client.py");
    std::fs::write(
        &client,
        r#"import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline()
        if not line or line[3:4] != b"-":
            return line
reply()
s.sendall(b"EHLO client.test\r\n"); reply()
s.sendall(b"AUTH CRAM-MD5 QUJD\r\n"); print(reply().decode().strip())
s.sendall(b"QUIT\r\n")
"#,
    )
    .expect("write client");
    let out = Command::new(BIN)
        .arg("run")
        .arg("--client-command")
        .arg(format!("python3 {} {{host}} {{port}}", client.display()))
        .args(["--format", "json"])
        .arg(&scenario)
        .output()
        .expect("run authspec");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("authspec run prints a JSON report");
    let result = &report["results"][0];
    assert_eq!(result["verdict"]["kind"], "fail", "{result:#}");
    let text = result.to_string();
    assert!(text.contains("where the server speaks first"), "{text}");
    assert!(
        text.contains("501 5.7.0 Initial response not allowed for this mechanism"),
        "{text}"
    );
}
