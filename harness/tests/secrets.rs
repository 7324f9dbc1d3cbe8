//! No password, and no secret derived from one, appears in logs (at every verbosity),
//! reports (every format), snapshots, `Debug` output or panic messages.

use authspec_reference::sasl::cram_md5::cram_md5_context;
use authspec_reference::sasl::credentials::MemoryStore;
use authspec_reference::sasl::{ClientCredentials, Secret};
use base64::Engine as _;
use std::io::Read;
use std::path::Path;
use std::process::Command;

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_authspec");
const PASSWORD: &str = "Tr0ub4dor&3-s3cret";

/// The password and what can be derived from it without the server's nonces: its
/// base64 at the three alignments, PLAIN payloads, hex, and the CRAM-MD5 context.
fn forbidden() -> Vec<String> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut out = vec![PASSWORD.to_string()];
    for prefix in ["", "a", "ab"] {
        let enc = b64(format!("{prefix}{PASSWORD}").as_bytes());
        // The middle of the encoding is the password's own contribution.
        let skip = prefix.len() * 4 / 3 + 2;
        out.push(enc[skip.min(enc.len())..enc.len().saturating_sub(4)].to_string());
    }
    out.push(b64(format!("\0alice\0{PASSWORD}").as_bytes()));
    out.push(
        PASSWORD
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    );
    let ctx = cram_md5_context(PASSWORD.as_bytes());
    out.push(ctx.iter().map(|b| format!("{b:02x}")).collect());
    out
}

fn assert_clean(what: &str, text: &str) {
    for f in forbidden() {
        assert!(
            !text.contains(&f),
            "{what} contains a secret ({} chars matched):\n{text}",
            f.len()
        );
    }
}

#[test]
fn cli_logs_and_reports_hold_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let b64 = base64::engine::general_purpose::STANDARD.encode(PASSWORD);
    let server = support::serve_with(
        dir.path(),
        &format!("alice:{{PLAIN.B64}}{b64}\n"),
        Some(&log),
        &["-vvv", "-o", "smtpd_tls_security_level=may"],
    );
    let addr = server.addr.clone();
    let mut all = String::new();
    for mech in [
        "PLAIN",
        "LOGIN",
        "CRAM-MD5",
        "DIGEST-MD5",
        "SCRAM-SHA-1",
        "SCRAM-SHA-256",
        "XOAUTH2",
        "OAUTHBEARER",
    ] {
        for pw in [PASSWORD, "wrong-password"] {
            for v in ["-v", "-vv", "-vvv"] {
                let out = Command::new(BIN)
                    .args(["send", "--server", &addr, "--from", "a@example.com"])
                    .args(["--to", "b@example.net", "--user", "alice", v])
                    .args(["--password-env", "PW", "--mechanism", mech, "--starttls"])
                    .arg("--tls-insecure")
                    .env("PW", pw)
                    .output()
                    .unwrap();
                all.push_str(&String::from_utf8_lossy(&out.stdout));
                all.push_str(&String::from_utf8_lossy(&out.stderr));
            }
        }
    }
    for format in ["human", "json", "junit"] {
        let out = Command::new(BIN)
            .args([
                "run",
                "--format",
                format,
                "-vvv",
                "--var",
                "password-env=PW",
            ])
            .env("PW", PASSWORD)
            .output()
            .unwrap();
        all.push_str(&String::from_utf8_lossy(&out.stdout));
        all.push_str(&String::from_utf8_lossy(&out.stderr));
        let out = Command::new(BIN)
            .args(["run", "--target", &addr, "--format", format, "-vv"])
            .args(["--var", "user=alice", "--var", "password-env=PW"])
            .env("PW", PASSWORD)
            .output()
            .unwrap();
        all.push_str(&String::from_utf8_lossy(&out.stdout));
        all.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let out = Command::new(BIN)
        .args(["probe", &addr, "--format", "json"])
        .output()
        .unwrap();
    all.push_str(&String::from_utf8_lossy(&out.stdout));
    drop(server);
    let mut server_log = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut server_log)
        .unwrap();
    assert!(
        server_log.contains("sasl_method=PLAIN, sasl_username=alice"),
        "Postfix-style success line missing:\n{server_log}"
    );
    assert!(
        server_log.contains("authentication failed: invalid credentials"),
        "failure reason missing:\n{server_log}"
    );
    assert_clean("server log", &server_log);
    assert_clean("client output and reports", &all);
    assert!(all.contains("message accepted"), "the runs did work");
}

#[test]
fn debug_output_holds_no_secret() {
    let creds = ClientCredentials {
        authcid: "alice".into(),
        password: Secret::from(PASSWORD),
        authzid: None,
        host: "h".into(),
        port: None,
    };
    assert_clean("ClientCredentials Debug", &format!("{creds:?} {creds:#?}"));
    let mut store = MemoryStore::default();
    store.insert_plain("alice", PASSWORD);
    assert_clean("MemoryStore Debug", &format!("{store:?}"));
    let mut vars = authspec::scenario::Vars::new();
    vars.set("password", PASSWORD);
    assert_clean("Vars Debug", &format!("{vars:?}"));
}

#[test]
fn snapshots_hold_no_default_password() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tests/snapshots");
    let Ok(entries) = std::fs::read_dir(dir.join("scenarios")) else {
        return;
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let needles = [
        "wonderland".to_string(),
        b64.encode("\0alice\0wonderland"),
        b64.encode("wonderland"),
    ];
    let mut n = 0;
    for e in entries {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "snapshot holds a secret: {text}"
            );
        }
        n += 1;
    }
    assert!(n > 0);
}
