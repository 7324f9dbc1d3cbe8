//! `authspec serve`, `send` and `probe` as processes, with Python's smtplib as a real
//! third-party client (it is on every machine this project builds on).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_authspec");

/// `authspec serve` with two users (bob's password has a space, a colon and an @:
/// stored base64 as Dovecot must) and a maildir, plus `extra`.
fn start(dir: &Path, extra: &[&str]) -> support::Server {
    let maildir = dir.join("maildir");
    let maildir = maildir.to_str().expect("a UTF-8 temporary path");
    let args: Vec<&str> = ["--maildir", maildir]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    support::serve_with(
        dir,
        "alice:{PLAIN}wonderland\nbob:{PLAIN.B64}cEBzcyB3MHJkOng=\n",
        None,
        &args,
    )
}

fn python(script: &str) -> (i32, String) {
    let mut child = Command::new("python3")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return (status.code().unwrap_or(-1), text);
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("python3 did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn smtplib(addr: &str, mech: &str, user: &str, password: &str) -> (i32, String) {
    let (host, port) = addr.rsplit_once(':').unwrap();
    // smtplib's auth_* callbacks read the credentials from these attributes.
    let script = format!(
        r#"
import smtplib
s = smtplib.SMTP({host:?}, {port}, timeout=10)
s.ehlo("smtplib.example")
s.user, s.password = {user:?}, {password:?}
mech = {mech:?}
if mech == "CRAM-MD5":
    code, resp = s.auth("CRAM-MD5", s.auth_cram_md5, initial_response_ok=False)
elif mech == "LOGIN":
    code, resp = s.auth("LOGIN", s.auth_login, initial_response_ok=True)
else:
    code, resp = s.auth("PLAIN", s.auth_plain, initial_response_ok=True)
print("AUTH", code)
s.sendmail("alice@example.com", ["bob@example.net"], "Subject: smtplib\r\n\r\nhello from smtplib\r\n")
print("SENT")
s.quit()
"#
    );
    python(&script)
}

fn maildir_count(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("maildir").join("new"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn smtplib_authenticates_with_plain_login_cram_md5() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    for (i, mech) in ["PLAIN", "LOGIN", "CRAM-MD5"].iter().enumerate() {
        let (code, out) = smtplib(&server.addr, mech, "alice", "wonderland");
        assert_eq!(code, 0, "{mech}: {out}");
        assert!(out.contains("AUTH 235"), "{mech}: {out}");
        assert!(out.contains("SENT"), "{mech}: {out}");
        assert_eq!(maildir_count(dir.path()), 2 * i + 1);
        let (code, out) = smtplib(&server.addr, mech, "bob", "p@ss w0rd:x");
        assert_eq!(code, 0, "{mech} bob: {out}");
        assert_eq!(maildir_count(dir.path()), 2 * i + 2);
    }
    let msg = std::fs::read_dir(dir.path().join("maildir/new"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let text = std::fs::read_to_string(msg.path()).unwrap();
    assert!(text.contains("hello from smtplib"), "{text}");
    assert!(
        text.starts_with("Return-Path: <alice@example.com>"),
        "{text}"
    );
}

#[test]
fn smtplib_wrong_password_gets_535_5_7_8() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    for mech in ["PLAIN", "LOGIN", "CRAM-MD5"] {
        let (code, out) = smtplib(&server.addr, mech, "alice", "not-the-password");
        assert_ne!(code, 0, "{mech}: {out}");
        assert!(out.contains("535"), "{mech}: {out}");
        assert!(out.contains("5.7.8"), "{mech}: {out}");
    }
    assert_eq!(maildir_count(dir.path()), 0);
}

#[test]
fn send_authenticates_with_every_mechanism_against_serve() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    for (i, mech) in [
        "PLAIN",
        "LOGIN",
        "CRAM-MD5",
        "DIGEST-MD5",
        "SCRAM-SHA-1",
        "SCRAM-SHA-256",
    ]
    .iter()
    .enumerate()
    {
        let out = Command::new(BIN)
            .args([
                "send",
                "--server",
                &server.addr,
                "--from",
                "alice@example.com",
            ])
            .args(["--to", "bob@example.net", "--user", "alice"])
            .args([
                "--password-env",
                "AUTHSPEC_TEST_PW",
                "--mechanism",
                mech,
                "-v",
            ])
            .env("AUTHSPEC_TEST_PW", "wonderland")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{mech}: {stderr}");
        assert!(
            !stderr.contains("wonderland"),
            "{mech} leaked the password: {stderr}"
        );
        assert_eq!(maildir_count(dir.path()), i + 1, "{mech}");
        let bad = Command::new(BIN)
            .args([
                "send",
                "--server",
                &server.addr,
                "--from",
                "alice@example.com",
            ])
            .args(["--to", "bob@example.net", "--user", "alice"])
            .args(["--password-env", "AUTHSPEC_TEST_PW", "--mechanism", mech])
            .env("AUTHSPEC_TEST_PW", "wrong")
            .output()
            .unwrap();
        assert_eq!(
            bad.status.code(),
            Some(4),
            "{mech}: wrong password must exit 4"
        );
    }
}

/// The client's binding type is an option (`authspec_smtp_channel_binding_types`, issue
/// 18): each type the TLS connection has goes into the GS2 header and authenticates,
/// and tls-unique, which rustls cannot produce, is refused as a value.
#[test]
fn send_binds_with_the_configured_channel_binding_type() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["-o", "smtpd_tls_security_level=may"]);
    let send = |types: &str| {
        Command::new(BIN)
            .args([
                "send",
                "--server",
                &server.addr,
                "--starttls",
                "--tls-insecure",
            ])
            .args(["--from", "alice@example.com", "--to", "bob@example.net"])
            .args(["--user", "alice", "--password-env", "AUTHSPEC_TEST_PW"])
            .args(["--mechanism", "SCRAM-SHA-256-PLUS", "-v", "-o"])
            .arg(format!("authspec_smtp_channel_binding_types={types}"))
            .env("AUTHSPEC_TEST_PW", "wonderland")
            .output()
            .unwrap()
    };
    for (types, header) in [
        ("tls-server-end-point", "p=tls-server-end-point,,"),
        ("tls-exporter", "p=tls-exporter,,"),
        (
            "tls-server-end-point, tls-exporter",
            "p=tls-server-end-point,,",
        ),
    ] {
        let out = send(types);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{types}: {stderr}");
        assert!(
            stderr.contains(&format!("AUTH SCRAM-SHA-256-PLUS [SASL response: {header}")),
            "{types}: {stderr}"
        );
    }
    let refused = send("tls-unique");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("authspec_smtp_channel_binding_types: bad value \"tls-unique\""),
        "{stderr}"
    );
}

#[test]
fn send_explains_when_no_mechanism_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &["-o", "smtpd_sasl_mechanism_filter=PLAIN, LOGIN"],
    );
    let out = Command::new(BIN)
        .args(["send", "--server", &server.addr, "--from", "a@example.com"])
        .args(["--to", "b@example.net", "--user", "alice"])
        .args(["--password-env", "AUTHSPEC_TEST_PW"])
        .args(["-o", "smtp_sasl_security_options=noplaintext"])
        .env("AUTHSPEC_TEST_PW", "wonderland")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("noplaintext"), "{stderr}");
    assert!(stderr.contains("PLAIN LOGIN"), "{stderr}");
}

#[test]
fn serve_rejects_unknown_parameter_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("main.cf");
    std::fs::write(
        &cf,
        "myhostname = mx.example\nsmtpd_sasl_auth_enabel = yes\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--print-config", "--config"])
        .arg(&cf)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("main.cf"), "{stderr}");
    assert!(stderr.contains('2'), "line number: {stderr}");
    assert!(stderr.contains("smtpd_sasl_auth_enabel"), "{stderr}");
}

#[test]
fn print_config_shows_effective_values() {
    let out = Command::new(BIN)
        .args([
            "serve",
            "--print-config",
            "-o",
            "broken_sasl_auth_clients=yes",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("broken_sasl_auth_clients = yes"),
        "{stdout}"
    );
    assert!(stdout.contains("smtpd_sasl_auth_enable = yes"), "{stdout}");
}

#[test]
fn probe_reports_auth_lines_and_mechanisms() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            "-o",
            "broken_sasl_auth_clients=yes",
            "-o",
            "smtpd_tls_security_level=may",
        ],
    );
    let out = Command::new(BIN)
        .args(["probe", &server.addr, "--format", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(v["auth"]["auth_eq"].is_array(), "{v}");
    assert_eq!(v["tls"]["version"], "TLSv1.3", "{v}");
    let mechs: Vec<&str> = v["mechanisms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(mechs.contains(&"SCRAM-SHA-256"), "{mechs:?}");
    let rules: Vec<&str> = v["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"plaintext-auth-before-tls"), "{rules:?}");
    assert!(!rules.contains(&"bare-334"), "{rules:?}");
    assert!(!rules.contains(&"unknown-mechanism-not-504"), "{rules:?}");
}

/// Issue 15, finding 15: `--mechanism PLAIN` does not override the user's own
/// `smtp_sasl_security_options = noplaintext`; the conflict is named and no password
/// goes out.
#[test]
fn send_mechanism_plain_conflicting_with_noplaintext_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let out = Command::new(BIN)
        .args(["send", "--server", &server.addr, "--user", "alice"])
        .args(["--password-env", "AUTHSPEC_TEST_PW", "--mechanism", "PLAIN"])
        .args(["-o", "smtp_sasl_security_options=noplaintext"])
        .args(["--from", "alice@example.com", "--to", "bob@example.net"])
        .env("AUTHSPEC_TEST_PW", "wonderland")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("--mechanism PLAIN conflicts with smtp_sasl_security_options"),
        "{stderr}"
    );
    assert!(stderr.contains("noplaintext"), "{stderr}");
}

/// Issue 15, finding 10: `--seed` repeats nonces across restarts; it is refused on a
/// listener other machines can reach.
#[test]
fn serve_seed_is_refused_on_a_non_loopback_listener() {
    let out = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--seed", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--seed repeats nonces"), "{stderr}");
}
