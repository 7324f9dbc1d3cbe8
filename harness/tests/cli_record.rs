//! `authspec record` end to end: real clients (Python's smtplib, `authspec send`) talk
//! to `authspec serve` through the recording proxy; the recorded scenarios then replay
//! against the server (client role) and against the same clients (server role), and
//! hold no secret in any form.

use base64::Engine as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_authspec");
const PASSWORD: &str = "wonderland";

/// A child process killed on drop, with its stdout lines after the first.
struct Proc {
    child: Child,
    addr: String,
    lines: mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Starts `authspec ARGS`, which prints `listening on ADDR` first.
    fn start(args: &[&str]) -> Proc {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn authspec");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("first line");
        let addr = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
            .to_string();
        Proc {
            child,
            addr,
            lines: rx,
        }
    }

    /// The files of the next recorded session (the proxy prints
    /// `recorded session N: CLIENT SERVER` when it has written them).
    fn next_recording(&self) -> (String, Vec<PathBuf>) {
        loop {
            // A bound on a hang, not a timing assertion.
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .expect("the proxy reports each session");
            if let Some(rest) = line.strip_prefix("recorded session ") {
                let (_, files) = rest.split_once(": ").unwrap();
                return (line.clone(), files.split(' ').map(PathBuf::from).collect());
            }
        }
    }
}

fn serve(dir: &Path, extra: &[&str]) -> Proc {
    let users = dir.join("users");
    std::fs::write(&users, "alice:{PLAIN}wonderland\n").unwrap();
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--users"];
    let users = users.display().to_string();
    args.push(&users);
    args.extend_from_slice(extra);
    Proc::start(&args)
}

fn record(target: &str, out: &Path, extra: &[&str]) -> Proc {
    let out = out.display().to_string();
    let mut args = vec![
        "record",
        "--listen",
        "127.0.0.1:0",
        "--target",
        target,
        "--out",
        &out,
    ];
    args.extend_from_slice(extra);
    Proc::start(&args)
}

/// An smtplib client: `python3 client.py HOST PORT MECH [tls-unverified|tls-verified]`,
/// credentials from AUTHSPEC_USER / AUTHSPEC_PASSWORD (what `run --client-command`
/// sets). Exit 3 when STARTTLS fails.
const CLIENT: &str = r#"
import os, smtplib, ssl, sys
host, port, mech = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tls = sys.argv[4] if len(sys.argv) > 4 else ""
s = smtplib.SMTP(host, port, timeout=20)
s.ehlo("smtplib.example")
if tls:
    ctx = ssl.create_default_context() if tls == "tls-verified" else ssl._create_unverified_context()
    try:
        s.starttls(context=ctx)
    except Exception as e:
        print("STARTTLS failed:", e)
        sys.exit(3)
    s.ehlo("smtplib.example")
s.user, s.password = os.environ["AUTHSPEC_USER"], os.environ["AUTHSPEC_PASSWORD"]
if mech == "CRAM-MD5":
    code, resp = s.auth("CRAM-MD5", s.auth_cram_md5, initial_response_ok=False)
elif mech == "LOGIN":
    code, resp = s.auth("LOGIN", s.auth_login, initial_response_ok=True)
else:
    code, resp = s.auth("PLAIN", s.auth_plain, initial_response_ok=True)
print("AUTH", code)
s.sendmail("alice@example.com", ["bob@example.net"], "Subject: recorded\r\n\r\nhello through the proxy\r\n")
s.quit()
"#;

fn client_script(dir: &Path) -> PathBuf {
    let p = dir.join("client.py");
    std::fs::write(&p, CLIENT).unwrap();
    p
}

fn smtplib(script: &Path, addr: &str, mech: &str, tls: &str) -> (i32, String) {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let out = Command::new("python3")
        .arg(script)
        .args([host, port, mech, tls])
        .env("AUTHSPEC_USER", "alice")
        .env("AUTHSPEC_PASSWORD", PASSWORD)
        .output()
        .expect("python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn authspec(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("PW", PASSWORD)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Replays a client-role recording against `target`.
fn replay_client(file: &Path, target: &str, extra: &[&str]) -> (i32, String) {
    let f = file.display().to_string();
    let mut args = vec![
        "run",
        &f,
        "--target",
        target,
        "--var",
        "user=alice",
        "--var",
        "password-env=PW",
    ];
    args.extend_from_slice(extra);
    authspec(&args)
}

/// Replays a server-role recording against a client command.
fn replay_server(file: &Path, client_command: &str) -> (i32, String) {
    let f = file.display().to_string();
    authspec(&[
        "run",
        &f,
        "--client-command",
        client_command,
        "--var",
        "user=alice",
        "--var",
        "password-env=PW",
        "--timeout",
        "20",
    ])
}

fn file_of<'a>(files: &'a [PathBuf], suffix: &str) -> &'a PathBuf {
    files
        .iter()
        .find(|p| p.display().to_string().ends_with(suffix))
        .unwrap_or_else(|| panic!("no *{suffix} in {files:?}"))
}

/// Every form of the password a recording must not contain: itself, its base64 at
/// the three alignments (the characters its bits alone decide), and the base64 of the
/// whole PLAIN message.
fn forbidden_forms() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut forms = vec![
        PASSWORD.to_string(),
        base64::engine::general_purpose::STANDARD.encode(b"\0alice\0wonderland"),
    ];
    for k in 0..3usize {
        let mut buf = vec![b'x'; k];
        buf.extend_from_slice(PASSWORD.as_bytes());
        let enc = b64.encode(&buf);
        let from = (8 * k).div_ceil(6);
        let to = 8 * buf.len() / 6;
        forms.push(enc[from..to].to_string());
    }
    forms
}

fn assert_no_secret(dir: &Path) {
    let forms = forbidden_forms();
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for f in &forms {
            assert!(
                !text.contains(f.as_str()),
                "{} contains {f:?}:\n{text}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "no recorded file in {}", dir.display());
}

#[test]
fn smtplib_and_send_sessions_round_trip_in_both_roles() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("recorded");
    let server = serve(dir.path(), &[]);
    let proxy = record(&server.addr, &out, &[]);
    let script = client_script(dir.path());
    let script_s = script.display().to_string();

    for mech in ["PLAIN", "LOGIN", "CRAM-MD5"] {
        let (code, text) = smtplib(&script, &proxy.addr, mech, "");
        assert_eq!(code, 0, "{mech} through the proxy: {text}");
        assert!(text.contains("AUTH 235"), "{mech}: {text}");
        let (line, files) = proxy.next_recording();
        assert_eq!(files.len(), 2, "{line}");
        let client = file_of(&files, "-client.yaml");
        let server_file = file_of(&files, "-server.yaml");
        let ctext = std::fs::read_to_string(client).unwrap();
        assert!(
            ctext.contains(&format!("mechanism: {mech}"))
                || (mech == "LOGIN" && ctext.contains("AUTH LOGIN ${user|base64}")),
            "{ctext}"
        );
        let stext = std::fs::read_to_string(server_file).unwrap();
        assert!(stext.contains("role: server"), "{stext}");
        assert!(
            stext.contains(&format!("expect_auth:\n    mechanism: {mech}")),
            "{stext}"
        );

        let (code, report) = replay_client(client, &server.addr, &[]);
        assert_eq!(code, 0, "{mech} client-role replay:\n{report}\n{ctext}");
        assert!(report.contains("1 passed"), "{report}");

        let cmd = format!("python3 {script_s} {{host}} {{port}} {mech}");
        let (code, report) = replay_server(server_file, &cmd);
        assert_eq!(code, 0, "{mech} server-role replay:\n{report}\n{stext}");
        assert!(report.contains("1 passed"), "{report}");

        // A client that picks another offered mechanism made a choice the RFCs leave
        // to it: the recording shows the difference as information, never a fail.
        let other = if mech == "PLAIN" { "LOGIN" } else { "PLAIN" };
        let cmd = format!("python3 {script_s} {{host}} {{port}} {other}");
        let (code, report) = replay_server(server_file, &cmd);
        assert_eq!(code, 0, "{mech} file vs {other} client:\n{report}");
        assert!(report.contains("1 info"), "{report}");
    }

    // SCRAM-SHA-256 from authspec's own client.
    let send = |server: &str| {
        Command::new(BIN)
            .args(["send", "--server", server, "--from", "a@x.example"])
            .args(["--to", "b@y.example", "--user", "alice"])
            .args(["--password-env", "PW", "--mechanism", "SCRAM-SHA-256"])
            .env("PW", PASSWORD)
            .output()
            .unwrap()
    };
    let sent = send(&proxy.addr);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let (_, files) = proxy.next_recording();
    let client = file_of(&files, "-client.yaml");
    let ctext = std::fs::read_to_string(client).unwrap();
    assert!(ctext.contains("mechanism: SCRAM-SHA-256"), "{ctext}");
    // The SCRAM nonces of the recording are not in it: a replay makes fresh ones.
    assert!(!ctext.contains(",r="), "{ctext}");
    let (code, report) = replay_client(client, &server.addr, &[]);
    assert_eq!(code, 0, "SCRAM client-role replay:\n{report}\n{ctext}");
    let cmd = format!(
        "{BIN} send --server {{host}}:{{port}} --from a@x.example --to b@y.example \
         --user alice --password-env PW --mechanism SCRAM-SHA-256"
    );
    let server_file = file_of(&files, "-server.yaml");
    let (code, report) = replay_server(server_file, &cmd);
    assert_eq!(
        code,
        0,
        "SCRAM server-role replay:\n{report}\n{}",
        std::fs::read_to_string(server_file).unwrap()
    );

    // A refused password: recorded as a 535 that replays with a wrong password.
    let (h, p) = proxy.addr.rsplit_once(':').unwrap();
    let refused = Command::new("python3")
        .arg(&script)
        .args([h, p, "PLAIN"])
        .env("AUTHSPEC_USER", "alice")
        .env("AUTHSPEC_PASSWORD", "not-the-password")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let (_, files) = proxy.next_recording();
    let client = file_of(&files, "-client.yaml");
    let ctext = std::fs::read_to_string(client).unwrap();
    assert!(ctext.contains("code: 535"), "{ctext}");
    assert!(ctext.contains("${wrong_password}"), "{ctext}");
    assert!(!ctext.contains("not-the-password"), "{ctext}");
    let (code, report) = replay_client(client, &server.addr, &[]);
    assert_eq!(code, 0, "refused replay:\n{report}\n{ctext}");

    assert_no_secret(&out);
    // The forbidden forms are real: the same check finds them in a file that has them.
    let probe = dir.path().join("probe");
    std::fs::create_dir_all(&probe).unwrap();
    std::fs::write(
        probe.join("leak.yaml"),
        format!(
            "send: AUTH PLAIN {}\n",
            base64::engine::general_purpose::STANDARD.encode(b"\0alice\0wonderland")
        ),
    )
    .unwrap();
    assert!(std::panic::catch_unwind(|| assert_no_secret(&probe)).is_err());
}

#[test]
fn starttls_is_intercepted_and_a_verifying_client_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("recorded");
    let server = serve(dir.path(), &["-o", "smtpd_tls_security_level=may"]);
    let cert = dir.path().join("proxy.pem");
    let cert_s = cert.display().to_string();
    let proxy = record(&server.addr, &out, &["--cert-out", &cert_s]);
    let script = client_script(dir.path());
    assert!(
        std::fs::read_to_string(&cert)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );

    // A client that trusts anything: the dialog inside TLS is recorded.
    let (code, text) = smtplib(&script, &proxy.addr, "PLAIN", "tls-unverified");
    assert_eq!(code, 0, "{text}");
    let (_, files) = proxy.next_recording();
    let client = file_of(&files, "-client.yaml");
    let ctext = std::fs::read_to_string(client).unwrap();
    let tls_at = ctext
        .find("- starttls: {}")
        .unwrap_or_else(|| panic!("{ctext}"));
    let auth_at = ctext
        .find("mechanism: PLAIN")
        .unwrap_or_else(|| panic!("{ctext}"));
    assert!(
        tls_at < auth_at,
        "AUTH is recorded after STARTTLS:\n{ctext}"
    );
    assert!(ctext.contains("STARTTLS intercepted"), "{ctext}");
    assert!(ctext.contains("hello through the proxy"), "{ctext}");
    let (code, report) = replay_client(client, &server.addr, &["--tls-insecure"]);
    assert_eq!(code, 0, "replay through STARTTLS:\n{report}\n{ctext}");
    let stext = std::fs::read_to_string(file_of(&files, "-server.yaml")).unwrap();
    assert!(stext.contains("verb: STARTTLS"), "{stext}");
    assert!(stext.contains("cannot play TLS"), "{stext}");

    // A client that verifies certificates refuses the proxy's, and the recording says so.
    let (code, text) = smtplib(&script, &proxy.addr, "PLAIN", "tls-verified");
    assert_eq!(code, 3, "{text}");
    let (_, files) = proxy.next_recording();
    let ctext = std::fs::read_to_string(file_of(&files, "-client.yaml")).unwrap();
    assert!(
        ctext.contains("interception failed: the client does not trust the proxy's certificate"),
        "{ctext}"
    );
    assert!(ctext.contains("- interception-failed"), "{ctext}");
    assert!(!ctext.contains("mechanism:"), "{ctext}");

    assert_no_secret(&out);
}

#[test]
fn no_tls_intercept_lets_tls_through_and_ends_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("recorded");
    let server = serve(dir.path(), &["-o", "smtpd_tls_security_level=may"]);
    let proxy = record(
        &server.addr,
        &out,
        &["--no-tls-intercept", "--max-sessions", "1"],
    );
    let script = client_script(dir.path());
    // The client does TLS with the server itself, through the proxy.
    let (code, text) = smtplib(&script, &proxy.addr, "PLAIN", "tls-unverified");
    assert_eq!(code, 0, "{text}");
    let (_, files) = proxy.next_recording();
    let ctext = std::fs::read_to_string(file_of(&files, "-client.yaml")).unwrap();
    assert!(ctext.contains("- starttls: {}"), "{ctext}");
    assert!(ctext.contains("let through untouched"), "{ctext}");
    assert!(!ctext.contains("mechanism:"), "{ctext}");
    assert!(ctext.contains("- tls-passthrough"), "{ctext}");
    let (code, report) = replay_client(
        file_of(&files, "-client.yaml"),
        &server.addr,
        &["--tls-insecure"],
    );
    assert_eq!(code, 0, "{report}");
}

#[test]
fn redact_removes_user_and_host_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("recorded");
    let server = serve(dir.path(), &["-o", "myhostname=mx.authspec-test.example"]);
    let proxy = record(&server.addr, &out, &["--redact"]);
    let script = client_script(dir.path());
    let (code, text) = smtplib(&script, &proxy.addr, "LOGIN", "");
    assert_eq!(code, 0, "{text}");
    let (_, files) = proxy.next_recording();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(!text.contains("alice"), "{text}");
        assert!(!text.contains("mx.authspec-test.example"), "{text}");
        assert!(!text.contains("smtplib.example"), "{text}");
        assert!(!text.contains("127.0.0.1"), "{text}");
    }
    let client = file_of(&files, "-client.yaml");
    let (code, report) = replay_client(client, &server.addr, &[]);
    assert_eq!(
        code,
        0,
        "{report}\n{}",
        std::fs::read_to_string(client).unwrap()
    );
    assert_no_secret(&out);
}

#[test]
fn record_help_names_the_options() {
    let out = Command::new(BIN)
        .args(["record", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--listen",
        "--target",
        "--starttls-intercept",
        "--no-tls-intercept",
        "--out",
        "--redact",
        "--max-sessions",
        "--timeout",
        "--cert-out",
    ] {
        assert!(help.contains(opt), "{opt} missing:\n{help}");
    }
    let _ = std::io::stdout().flush();
}
