//! One certificate policy for every command that connects as a TLS client: `send`,
//! `run --target`, `probe`, `load`, `fuzz` and `record` (towards its target), as README
//! "Certificates" documents it. Every command takes the same flags. When it verifies (by
//! default for `run`, `load` and `fuzz`; with `--tls-verify` or `--ca-file` for `probe`
//! and `record`; at `smtp_tls_security_level=verify` for `send`, as in Postfix), a
//! self-signed certificate is refused with the same words, the same hint naming
//! `--ca-file` and `--tls-insecure`, and exit code 3 (`record` reports it per session);
//! `--tls-insecure` lets each through; `--ca-file` with the certificate verifies it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod support;
use support::Server;

const BIN: &str = env!("CARGO_BIN_EXE_authspec");

/// The hint, word for word, that every subcommand prints.
const HINT: &str = "hint: the server's certificate did not verify. Pass --ca-file FILE with the \
CA that signed it, or --tls-insecure to skip verification (test servers only).";

/// What every subcommand says about serve's self-signed certificate.
const WORDS: &str = "invalid peer certificate: issued by an unknown CA, perhaps self-signed";

/// `authspec serve` with STARTTLS and its generated self-signed certificate, written
/// to `dir/cert.pem`.
fn serve(dir: &Path) -> Server {
    let cert = dir.join("cert.pem");
    let cert = cert.to_str().unwrap();
    support::serve(
        dir,
        &["-o", "smtpd_tls_security_level=may", "--write-cert", cert],
    )
}

fn authspec(args: &[&str], extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .args(extra)
        .env("PW", "wonderland")
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

/// Refused by default with the words, the hint and exit 3; accepted with
/// `--tls-insecure` (exit other than 3, and no hint).
fn same_policy(args: &[&str]) {
    let refused = authspec(args, &[]);
    let t = text(&refused);
    assert_eq!(refused.status.code(), Some(3), "{args:?}\n{t}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(WORDS), "{args:?}\n{t}");
    assert!(stderr.contains(HINT), "{args:?}\n{t}");
    let accepted = authspec(args, &["--tls-insecure"]);
    let t = text(&accepted);
    assert_ne!(
        accepted.status.code(),
        Some(3),
        "{args:?} --tls-insecure\n{t}"
    );
    assert!(
        !t.contains("hint: the server's certificate"),
        "{args:?}\n{t}"
    );
}

/// Refused with the words, the hint and exit 3.
fn refused(args: &[&str], extra: &[&str]) {
    let out = authspec(args, extra);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{args:?} {extra:?}\n{t}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(WORDS), "{args:?} {extra:?}\n{t}");
    assert!(stderr.contains(HINT), "{args:?} {extra:?}\n{t}");
}

/// Accepted: exit 0 and no hint.
fn accepted(args: &[&str], extra: &[&str]) {
    let out = authspec(args, extra);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{args:?} {extra:?}\n{t}");
    assert!(
        !t.contains("hint: the server's certificate"),
        "{args:?}\n{t}"
    );
}

/// `send` checks certificates as Postfix's smtp client does: only from
/// `smtp_tls_security_level=verify` up, or when asked with `--tls-verify`/`--ca-file`.
#[test]
fn send_verifies_at_postfix_verify_level_or_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path());
    let args = [
        "send",
        "--server",
        &s.addr,
        "--starttls",
        "--from",
        "a@example.com",
        "--to",
        "b@example.net",
    ];
    accepted(&args, &[]);
    accepted(&args, &["-o", "smtp_tls_security_level=encrypt"]);
    refused(&args, &["-o", "smtp_tls_security_level=verify"]);
    refused(&args, &["--tls-verify"]);
    accepted(
        &args,
        &["-o", "smtp_tls_security_level=verify", "--tls-insecure"],
    );
}

#[test]
fn run_verifies_by_default_and_ca_file_trusts_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path());
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/rfc4954/auth-before-ehlo.yaml"
    );
    same_policy(&[
        "run",
        scenario,
        "--target",
        &s.addr,
        "--starttls",
        "--var",
        "user=alice",
        "--var",
        "password-env=PW",
    ]);
    let ca = dir.path().join("cert.pem");
    let out = authspec(
        &[
            "run",
            scenario,
            "--target",
            &s.addr,
            "--starttls",
            "--var",
            "user=alice",
            "--var",
            "password-env=PW",
        ],
        &["--ca-file", ca.to_str().unwrap(), "--sni", "localhost"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// `probe` reports the certificate it sees; asked to verify, it prints the report and
/// then refuses with the common words, hint and exit code.
#[test]
fn probe_verifies_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path());
    let args = ["probe", &s.addr, "--starttls"];
    accepted(&args, &[]);
    refused(&args, &["--tls-verify"]);
    accepted(&args, &["--tls-insecure"]);
}

#[test]
fn load_verifies_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path());
    same_policy(&[
        "load",
        "--target",
        &s.addr,
        "--starttls",
        "--sessions",
        "1",
        "--var",
        "user=alice",
        "--var",
        "password-env=PW",
    ]);
}

#[test]
fn fuzz_verifies_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path());
    let out = dir.path().join("findings");
    same_policy(&[
        "fuzz",
        "--target",
        &s.addr,
        "--starttls",
        "--sessions",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
}

/// The `record` proxy needs the channel to the target, not its identity: by default
/// the session is recorded inside TLS; with `--tls-verify` the target's certificate is
/// refused for the session with the same words and hint.
#[test]
fn record_verifies_the_target_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path());
    for (verify, n) in [(true, "a"), (false, "b")] {
        let out_dir = dir.path().join(n);
        let mut cmd = Command::new(BIN);
        cmd.args(["record", "--listen", "127.0.0.1:0", "--target", &s.addr])
            .args(["--max-sessions", "1", "--timeout", "20", "--out"])
            .arg(&out_dir)
            .env_remove("AUTHSPEC_LOG")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if verify {
            cmd.arg("--tls-verify");
        }
        let mut child = cmd.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let proxy = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_string();
        // The client trusts the proxy's own certificate; what is judged is the
        // proxy's check of the target.
        let client = authspec(
            &[
                "send",
                "--server",
                &proxy,
                "--starttls",
                "--tls-insecure",
                "--from",
                "a@example.com",
                "--to",
                "b@example.net",
            ],
            &[],
        );
        let mut rest = String::new();
        for _ in 0..100 {
            let mut l = String::new();
            if stdout.read_line(&mut l).unwrap_or(0) == 0 {
                break;
            }
            rest.push_str(&l);
        }
        let _ = child.kill();
        let _ = child.wait();
        let t = format!("{rest}\nclient: {}", text(&client));
        if !verify {
            assert!(rest.contains("recorded session 1"), "{t}");
            assert!(!rest.contains("hint:"), "{t}");
            assert_eq!(client.status.code(), Some(0), "{t}");
        } else {
            assert!(rest.contains(WORDS), "{t}");
            assert!(rest.contains(HINT), "{t}");
            assert_ne!(client.status.code(), Some(0), "{t}");
        }
    }
}
