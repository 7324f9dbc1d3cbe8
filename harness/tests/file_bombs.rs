//! Issue 15, findings 7 and 8: scenario files and folders built to exhaust the
//! runner. Each ends with a clear error; none hangs, and no content of a file that is
//! not a scenario appears in a message. (Time and memory are measured by
//! `tests/bench/file-bombs.sh`, not asserted here.)

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use authspec::scenario::{self, LoadErrorKind};

const BIN: &str = env!("CARGO_BIN_EXE_authspec");

/// An anchored 400 KB scalar aliased from a `tags` list: each alias is 4 octets of
/// file and 400 KB of memory (the review's 7.8 GB case, smaller).
fn scalar_alias_bomb() -> String {
    let big = "A".repeat(400 * 1024);
    let mut text = format!("id: bomb/alias\ntitle: t\ntags: [&s {big}");
    for _ in 0..100_000 {
        text.push_str(", *s");
    }
    text.push_str("]\nsteps:\n  - send: NOOP\n");
    text
}

/// Nested collection aliases: 10 × 10 × … (a billion laughs).
fn nested_alias_bomb() -> String {
    let mut text =
        String::from("id: bomb/laughs\ntitle: t\nsteps:\n  - send: [&a0 [x,x,x,x,x,x,x,x,x,x]");
    for i in 1..9 {
        text.push_str(&format!(", &a{i} ["));
        text.push_str(&vec![format!("*a{}", i - 1); 10].join(","));
        text.push(']');
    }
    text.push_str("]\n");
    text
}

fn deep_bomb(depth: usize) -> String {
    format!(
        "id: bomb/deep\ntitle: t\nsteps: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

fn yaml_error(text: &str) -> String {
    let err = scenario::load_str(text, "bomb.yaml").unwrap_err();
    assert!(matches!(err.kind, LoadErrorKind::Yaml(_)), "{err}");
    err.to_string()
}

#[test]
fn finding_07_scalar_alias_amplification_is_refused() {
    let e = yaml_error(&scalar_alias_bomb());
    assert!(e.contains("once aliases are expanded"), "{e}");
}

#[test]
fn finding_07_nested_alias_amplification_is_refused() {
    let e = yaml_error(&nested_alias_bomb());
    assert!(e.contains("once aliases are expanded"), "{e}");
}

#[test]
fn finding_07_deep_nesting_is_refused_at_the_depth_limit() {
    // 100,000 levels: 200 KB, which took serde_yaml over 20 s.
    let e = yaml_error(&deep_bomb(100_000));
    assert!(e.contains("nested deeper than 64 levels"), "{e}");
    // Ordinary nesting still loads.
    scenario::load_str(
        "id: a/b\ntitle: t\nsteps:\n  - expect: {code: 250, alternatives: [{code: 251, note: n}]}\n",
        "ok.yaml",
    )
    .unwrap();
}

/// Runs `authspec` with a generous functional bound (a hang is the failure).
fn run_authspec(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
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
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("authspec {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn finding_07_a_profile_doubling_chain_ends_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "smtpd_banner",
        "mail_name",
        "relayhost",
        "relay_domains",
        "smtp_helo_name",
        "smtpd_sasl_local_domain",
        "smtp_tls_CAfile",
        "smtpd_tls_cert_file",
        "smtpd_tls_key_file",
        "smtp_sasl_mechanism_filter",
        "smtp_sasl_password_maps",
        "smtpd_discard_ehlo_keywords",
        "smtpd_client_restrictions",
        "smtpd_recipient_restrictions",
        "smtpd_sasl_exceptions_networks",
        "mydestination",
        "smtp_tls_security_level",
        "smtpd_tls_security_level",
        "authspec_sasl_mech_list",
        "smtpd_sasl_authenticated_header",
        "myhostname",
    ];
    let mut profile = String::new();
    for pair in names.windows(2) {
        profile.push_str(&format!("  {}: \"${}${}\"\n", pair[0], pair[1], pair[1]));
    }
    profile.push_str(&format!("  {}: \"\"\n", names[names.len() - 1]));
    std::fs::write(
        dir.path().join("chain.yaml"),
        format!("id: bomb/chain\ntitle: t\nprofile:\n{profile}steps:\n  - expect: {{code: 220}}\n"),
    )
    .unwrap();
    let (code, out) = run_authspec(&["run", dir.path().to_str().unwrap()]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("$name lookups"), "{out}");
}

// ---- 8. folder walks ------------------------------------------------------------------

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

const OK: &str = "id: ok/one\ntitle: t\nsteps:\n  - send: NOOP\n";

#[test]
fn finding_08_symlinks_out_of_the_tree_and_into_loops_are_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secrets.yaml");
    std::fs::write(&secret, "hunter2-is-the-password\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ok.yaml", OK);
    std::os::unix::fs::symlink(&secret, dir.path().join("leak.yaml")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.yaml")).unwrap();
    std::os::unix::fs::symlink("..", dir.path().join("up")).unwrap();
    std::os::unix::fs::symlink(".", dir.path().join("self")).unwrap();
    let (result, skipped) = scenario::load_dir_reporting(dir.path());
    let loaded = result.unwrap();
    assert_eq!(loaded.len(), 1);
    let all = skipped.join("\n");
    assert!(
        all.contains("leak.yaml: skipped: a symbolic link out of"),
        "{all}"
    );
    assert!(all.contains("zero.yaml: skipped"), "{all}");
    assert!(!all.contains("hunter2"), "{all}");
}

#[test]
fn finding_08_a_fifo_is_skipped_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ok.yaml", OK);
    let fifo = dir.path().join("pipe.yaml");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let (result, skipped) = scenario::load_dir_reporting(dir.path());
    assert_eq!(result.unwrap().len(), 1);
    assert!(
        skipped
            .iter()
            .any(|s| s.contains("a FIFO, not a regular file")),
        "{skipped:?}"
    );
}

#[test]
fn finding_08_an_oversized_file_is_refused_without_reading_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(dir.path().join("huge.yaml")).unwrap();
    // Sparse: 4 GiB that costs nothing on disk.
    f.set_len(4 << 30).unwrap();
    let errors = scenario::load_dir(dir.path()).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].to_string().contains("larger than 1048576 bytes"),
        "{}",
        errors[0]
    );
}

#[test]
fn finding_08_a_file_that_is_not_a_scenario_is_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "secret.yaml", "s3cr3t-token-value\n");
    let errors = scenario::load_dir(dir.path()).unwrap_err();
    let text = errors[0].to_string();
    assert!(text.contains("not a scenario file"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
}

/// Issue 15, finding 13: 1,000 × `wait: 60s` is a valid scenario that ran for about
/// 17 hours. The per-scenario deadline ends it as an error.
#[test]
fn finding_13_a_scenario_of_long_waits_ends_at_the_scenario_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id: bomb/waits\ntitle: t\nsteps:\n  - expect: {code: 220}\n");
    for _ in 0..1000 {
        text.push_str("  - wait: 60s\n");
    }
    std::fs::write(dir.path().join("waits.yaml"), text).unwrap();
    let (code, out) = run_authspec(&[
        "run",
        "--scenario-timeout",
        "1",
        "--format",
        "json",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("deadline of 1 s"), "{out}");
}
