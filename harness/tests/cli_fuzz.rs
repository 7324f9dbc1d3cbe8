//! `authspec fuzz` as a process: against the reference server (`authspec serve`) it
//! finds nothing; against a deliberately broken server (`tests/support/broken_server.py`:
//! AUTH PLAIN accepts any password for alice, and a verb not in upper case gets a
//! multiline reply whose lines carry different codes) it finds both bugs and writes
//! scenarios that `authspec run` replays.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_authspec");
const PASSWORD: &str = "wonderland";

/// Starts a server that prints `listening on ADDR` first; its log is not kept.
fn start(mut cmd: Command) -> support::Server {
    cmd.stderr(Stdio::null());
    support::spawn_listening(cmd)
}

fn reference(dir: &Path) -> support::Server {
    let users = dir.join("users");
    std::fs::write(&users, format!("alice:{{PLAIN}}{PASSWORD}\n")).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--seed", "1", "--users"])
        .arg(&users);
    start(cmd)
}

fn broken() -> support::Server {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("support")
        .join("broken_server.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg("127.0.0.1:0");
    start(cmd)
}

fn authspec(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("AUTHSPEC_TEST_PW", PASSWORD)
        .output()
        .expect("run authspec")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fuzz(target: &str, out: &Path, sessions: &str) -> Output {
    authspec(&[
        "fuzz",
        "--target",
        target,
        "--sessions",
        sessions,
        "--seed",
        "1",
        "--timeout",
        "5",
        "--var",
        "user=alice",
        "--var",
        "password-env=AUTHSPEC_TEST_PW",
        "--out",
        out.to_str().unwrap(),
    ])
}

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".yaml"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn the_reference_server_survives_a_few_hundred_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let server = reference(dir.path());
    let out = dir.path().join("findings");
    let o = fuzz(&server.addr, &out, "300");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("300 sessions"), "{t}");
    assert!(t.contains("no findings"), "{t}");
    // States were explored, not one path replayed.
    let states: usize = t
        .split(", ")
        .find_map(|p| p.strip_suffix(" states"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(states > 20, "{t}");
    assert!(files(&out, "").is_empty());
}

#[test]
fn a_broken_server_is_caught_and_the_finding_replays() {
    let dir = tempfile::tempdir().unwrap();
    let bad = broken();
    let good = reference(dir.path());
    let out = dir.path().join("findings");
    let o = fuzz(&bad.addr, &out, "300");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("auth-bypass"), "{t}");
    assert!(t.contains("malformed-reply/CodeMismatchAcrossLines"), "{t}");

    let bypass = files(&out, "auth-bypass-");
    assert!(!bypass.is_empty(), "{t}");
    let file = &bypass[0];
    let yaml = std::fs::read_to_string(file).unwrap();
    // The secret stays a variable; the file is a client-role scenario of sends and
    // expectations ending in the one a conforming server meets.
    assert!(!yaml.contains(PASSWORD), "{yaml}");
    assert!(!yaml.contains("d29uZGVybGFuZA"), "{yaml}");
    assert!(yaml.contains("- 4xx\n    - 5xx"), "{yaml}");
    let f = file.to_str().unwrap();

    // On the broken server the replay fails at the 235.
    let replay = |target: &str| {
        authspec(&[
            "run",
            f,
            "--target",
            target,
            "--var",
            "password-env=AUTHSPEC_TEST_PW",
        ])
    };
    let r = replay(&bad.addr);
    let rt = text(&r);
    assert_eq!(r.status.code(), Some(1), "{rt}");
    assert!(rt.contains("code 235 is not one of 4xx, 5xx"), "{rt}");

    // On the reference it does not fail that way: the wrong password gets 535.
    let r = replay(&good.addr);
    let rt = text(&r);
    assert!(!rt.contains("code 235"), "{rt}");
    assert!(r.status.code() == Some(0) || rt.contains("fail"), "{rt}");

    // The malformed reply replays as an error on the broken server only.
    let malformed = files(&out, "malformed-reply-");
    assert!(!malformed.is_empty(), "{t}");
    let m = malformed[0].to_str().unwrap();
    let r = authspec(&["run", m, "--target", &bad.addr]);
    let rt = text(&r);
    assert_eq!(r.status.code(), Some(1), "{rt}");
    assert!(rt.contains("code mismatch across lines"), "{rt}");
    let r = authspec(&["run", m, "--target", &good.addr]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r));
}

#[test]
fn a_remote_target_is_refused_without_allow_remote() {
    let dir = tempfile::tempdir().unwrap();
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): refused before any packet is sent.
    let o = fuzz("192.0.2.1:25", dir.path(), "10");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("not a loopback address"), "{t}");
    assert!(t.contains("--allow-remote"), "{t}");
}

#[test]
fn runs_are_bounded() {
    let o = authspec(&["fuzz", "--target", "127.0.0.1:1", "--duration", "3601"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("at most 3600"), "{t}");
}
