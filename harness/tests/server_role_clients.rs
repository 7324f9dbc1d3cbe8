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
    let expected = [
        ("client/auth-eq-only-banner", "pass"),
        ("client/cancels-bad-challenge", "info"),
        ("client/digest-md5-rspauth", "fail"),
        ("client/first-mutual-mechanism", "pass"),
        ("client/login-334-with-space", "fail"),
        ("client/login-bare-334", "info"),
        ("client/login-prompts-with-nul", "info"),
        ("client/no-fallback-storm-after-504", "pass"),
        ("client/noplaintext-without-tls", "info"),
        ("client/oauthbearer-error-kvsep-response", "fail"),
        ("client/scram-final-334-empty-response", "fail"),
        ("client/skips-unknown-mechanisms", "pass"),
        ("client/stops-on-454", "pass"),
        ("client/stops-on-535", "pass"),
        ("client/xoauth2-error-empty-response", "info"),
    ];
    for (id, verdict) in expected {
        assert_eq!(
            got.get(id).map(String::as_str),
            Some(verdict),
            "{id}: smtplib's verdict changed (all: {got:?})"
        );
    }
}
