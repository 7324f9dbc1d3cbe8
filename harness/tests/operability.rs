//! What people read: the serve log (Postfix-style, the dialog masked, no ANSI codes
//! when redirected), a quiet embedded run, no Rust `Debug` names in replies or CLI
//! errors, completions and the man page.

use authspec_reference::human::looks_like_debug;
use std::io::Read;
use std::process::Command;

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_authspec");

/// `authspec serve` logging to `dir/serve.log`.
fn serve(dir: &std::path::Path, args: &[&str]) -> (support::Server, std::path::PathBuf) {
    let log = dir.join("serve.log");
    let server = support::serve_with(dir, "alice:{PLAIN}wonderland\n", Some(&log), args);
    (server, log)
}

fn send(addr: &str, mech: &str, pw: &str) -> std::process::Output {
    Command::new(BIN)
        .args(["send", "--server", addr, "--from", "a@example.com"])
        .args([
            "--to",
            "b@example.net",
            "--user",
            "alice",
            "--password-env",
            "PW",
        ])
        .args(["--mechanism", mech])
        .env("PW", pw)
        .output()
        .unwrap()
}

fn stop(server: support::Server, log: &std::path::Path) -> String {
    // The disconnect line is written as the session ends; give it time to land.
    for _ in 0..50 {
        let text = std::fs::read_to_string(log).unwrap();
        if text.matches("disconnect from").count() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(server);
    let mut text = String::new();
    std::fs::File::open(log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[test]
fn serve_logs_the_dialog_postfix_style_masked_and_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = serve(dir.path(), &["-v"]);
    let addr = server.addr.clone();
    assert!(send(&addr, "PLAIN", "wonderland").status.success());
    assert_eq!(
        send(&addr, "LOGIN", "wrong-password").status.code(),
        Some(4)
    );
    let text = stop(server, &log);
    assert!(text.contains("connect from unknown[127.0.0.1]"), "{text}");
    assert!(
        text.contains("ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=6"),
        "{text}"
    );
    assert!(
        text.contains("ehlo=1 auth=0/1 quit=1 commands=2/3"),
        "{text}"
    );
    assert!(text.contains("> EHLO "), "{text}");
    assert!(text.contains("> AUTH PLAIN ***"), "{text}");
    assert!(text.contains("> *** (SASL response)"), "{text}");
    assert!(text.contains("< 250 2.0.0 Ok: queued"), "{text}");
    assert!(
        text.contains("SASL LOGIN authentication failed: invalid credentials"),
        "{text}"
    );
    assert!(!text.contains("wonderland") && !text.contains("wrong-password"));
    assert!(
        !text.contains('\u{1b}'),
        "ANSI codes in a redirected log:\n{text}"
    );
    assert!(
        !looks_like_debug(&text),
        "Debug-shaped text in the log:\n{text}"
    );
}

#[test]
fn serve_json_log() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = serve(dir.path(), &["-v", "--log-format", "json"]);
    let addr = server.addr.clone();
    assert!(send(&addr, "PLAIN", "wonderland").status.success());
    assert!(send(&addr, "PLAIN", "wonderland").status.success());
    let text = stop(server, &log);
    let mut disconnects = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect(line);
        let msg = v["fields"]["message"].as_str().unwrap_or("");
        if msg.starts_with("disconnect from") {
            disconnects += 1;
            assert_eq!(v["target"], "smtpd");
        }
    }
    assert_eq!(disconnects, 2, "{text}");
}

#[test]
fn embedded_run_is_quiet_on_stderr() {
    let out = Command::new(BIN)
        .args(["run", "--color", "never"])
        .env_remove("AUTHSPEC_LOG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.lines().count() < 5, "stderr:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains('\u{1b}'), "colour with --color never");
}

/// Every reply the server produces for a line that breaks a command rule, and every
/// CLI error path reached here, reads as words, not as a Rust `Debug` rendering.
#[test]
fn no_debug_shaped_text_in_replies_or_cli_errors() {
    let lines: &[&[u8]] = &[
        b"",
        b"EHLO",
        b"DATA x",
        b"QUIT x",
        b"MAIL FROM: <a@b>",
        b"MAIL FROM:a@b",
        b"MAIL TO:<a@b>",
        b"RCPT FROM:<a@b>",
        b"RCPT TO:<>",
        b"MAIL FROM:<a@b> AUTH=+zz",
        b"MAIL FROM:<a@b> AUTH=+2",
        b"MAIL FROM:<a@b> AUTH=a=b",
        b"MAIL FROM:<a@b> AUTH=",
        b"MAIL FROM:<a@b> SIZE=x",
        b"MAIL FROM:<a@b> SIZE=999999999999999999999999",
        b"MAIL FROM:<a@b> BODY=9BIT",
        b"MAIL FROM:<a@b> SMTPUTF8=x",
        b"MAIL FROM:<a@b> SIZE=1 SIZE=2",
        b"MAIL FROM:<a@b>  SIZE=1",
        b"MAIL FROM:<a@b> ",
        b"MAIL FROM:<a..b@c>",
        b"MAIL FROM:<ab>",
        b"MAIL FROM:<a@-b>",
        b"MAIL FROM:<a@[1.2.3]>",
        b"MAIL FROM:<@a,b:c@d>",
        b"VRFY \x01",
        b"AUTH",
        b"AUTH PL@IN",
        b"AUTH PLAIN !!!",
        b"AUTH PLAIN =",
        b"AUTH FOO",
        b"AUTH CRAM-MD5 =",
        b"BDAT x",
        b"HELO a\x00b",
        b"NOOP \xff",
        b"STARTTLS now",
        b"XYZZY",
    ];
    for line in lines {
        let out = replies_to(line);
        assert!(!out.is_empty());
        assert!(
            !looks_like_debug(&out),
            "reply to {:?} looks like Rust Debug: {out}",
            String::from_utf8_lossy(line)
        );
    }
    // And every reply text written in the server's source.
    let source = include_str!("../../reference/src/smtp/server.rs");
    for chunk in source.split("self.reply(").skip(1) {
        let text = chunk.split(')').next().unwrap_or("");
        assert!(!looks_like_debug(text), "reply text {text}");
    }

    let dir = tempfile::tempdir().unwrap();
    let bad_users = dir.path().join("bad.passwd");
    std::fs::write(
        &bad_users,
        "alice:{PLAIN}x\nbob\ncarol:{SHA512-CRYPT}$6$x\n",
    )
    .unwrap();
    let cases: Vec<Vec<String>> = vec![
        vec![
            "serve".into(),
            "-o".into(),
            "smtpd_sasl_auth_enabel=yes".into(),
        ],
        vec![
            "serve".into(),
            "--users".into(),
            bad_users.display().to_string(),
        ],
        vec!["serve".into(), "-o".into(), "smtpd_timeout=forever".into()],
        vec![
            "send".into(),
            "--server".into(),
            "127.0.0.1:1".into(),
            "--from".into(),
            "a@b".into(),
            "--to".into(),
            "c@d".into(),
        ],
        vec!["run".into(), "/nonexistent/scenarios".into()],
        vec!["probe".into(), "127.0.0.1:1".into()],
    ];
    for args in cases {
        let out = Command::new(BIN).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            !looks_like_debug(&stderr),
            "{args:?}: Debug-shaped error:\n{stderr}"
        );
        assert!(
            !stderr.contains('\u{1b}'),
            "{args:?}: ANSI codes:\n{stderr}"
        );
    }
    let out = Command::new(BIN)
        .args(["serve", "-o", "smtpd_sasl_auth_enabel=yes"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("did you mean smtpd_sasl_auth_enable?"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("-o").count(),
        1,
        "the -o is said once: {stderr}"
    );
}

/// The replies of a fresh session (after EHLO) to one line.
fn replies_to(line: &[u8]) -> String {
    use authspec_reference::policy::maincf::MainCf;
    use authspec_reference::policy::server::ServerConfig;
    use authspec_reference::sasl::credentials::MemoryStore;
    use authspec_reference::sasl::random::SeededRandom;
    use authspec_reference::smtp::server::{Peer, ServerSession};
    use std::sync::Arc;
    let cf = MainCf::parse("", "(test)").unwrap();
    let config = Arc::new(ServerConfig::from_main_cf(&cf).unwrap());
    let mut store = MemoryStore::default();
    store.insert_plain("alice", "wonderland");
    let mut s = ServerSession::new(
        config,
        Arc::new(store),
        Box::new(SeededRandom::from_seed(1)),
        Peer {
            ip: "127.0.0.1".parse().unwrap(),
            tls: false,
        },
    );
    s.receive(b"EHLO client.example\r\n");
    let _ = s.take_output();
    let mut input = line.to_vec();
    input.extend_from_slice(b"\r\n");
    s.receive(&input);
    String::from_utf8_lossy(&s.take_output()).into_owned()
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("authspec") && text.contains("probe"),
            "{shell}"
        );
    }
    let out = Command::new(BIN).arg("man").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(".ie") || text.contains(".TH authspec"),
        "{text}"
    );
}

#[test]
fn certificate_failures_name_the_flags_and_client_refusals_have_their_own_exit() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::serve(dir.path(), &["-o", "smtpd_tls_security_level=may"]);
    let addr = server.addr.clone();
    let out = Command::new(BIN)
        .args(["run", "--target", &addr, "--starttls"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("--tls-insecure") && stderr.contains("--ca-file"),
        "{stderr}"
    );
    assert!(!looks_like_debug(&stderr), "{stderr}");
    let out = Command::new(BIN)
        .args([
            "send",
            "--server",
            &addr,
            "--starttls",
            "-o",
            "smtp_tls_security_level=verify",
        ])
        .args(["--from", "a@example.com", "--to", "b@example.net"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("--tls-insecure"), "{stderr}");
    // An XOAUTH2 token with a space is refused by the client: nothing is sent, and it
    // is not "authentication rejected" (4).
    let out = send(&addr, "XOAUTH2", "bad token");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("refused by the client"), "{stderr}");
    assert!(!looks_like_debug(&stderr), "{stderr}");
}

/// The typed CLI errors name the file, address or flag and the cause, in words.
#[test]
fn typed_cli_errors_name_the_place_and_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.vars");
    let bad_expect = dir.path().join("bad-expect.yaml");
    std::fs::write(&bad_expect, "deviations: [\n").unwrap();
    let no_catalog = dir.path().join("no-catalog.yaml");
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            vec![
                "run".into(),
                "--var-file".into(),
                missing.display().to_string(),
            ],
            vec![format!("{}: cannot read: ", missing.display())],
        ),
        (
            vec![
                "run".into(),
                "--expect-file".into(),
                bad_expect.display().to_string(),
            ],
            vec![format!("{}: ", bad_expect.display())],
        ),
        (
            vec![
                "coverage".into(),
                "--catalog".into(),
                no_catalog.display().to_string(),
            ],
            vec![format!("{}: cannot read: ", no_catalog.display())],
        ),
        (
            vec!["load".into(), "--target".into(), "192.0.2.1:25".into()],
            vec!["192.0.2.1:25 is not a loopback address; pass --allow-remote".into()],
        ),
        (
            vec![
                "run".into(),
                "--target".into(),
                "127.0.0.1:1".into(),
                "--timeout".into(),
                "2".into(),
            ],
            vec!["target unusable, no scenario run: 127.0.0.1:1: connect failed".into()],
        ),
    ];
    for (args, wanted) in cases {
        let out = Command::new(BIN)
            .args(&args)
            .env_remove("AUTHSPEC_LOG")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        for w in &wanted {
            assert!(
                stderr.contains(w.as_str()),
                "{args:?}: no {w:?} in:\n{stderr}"
            );
        }
        assert!(
            !looks_like_debug(&stderr)
                && !["Some(", "Err(", "Ok(", "\\\"", " { "]
                    .iter()
                    .any(|d| stderr.contains(d)),
            "{args:?}: Debug-shaped error:\n{stderr}"
        );
    }
}
