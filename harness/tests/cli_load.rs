//! `authspec load` as a process against `authspec serve`: counts, error kinds and the
//! JSON fields scripts rely on. No assertion depends on how fast the machine is.

use std::path::Path;
use std::process::{Command, Output};

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_authspec");

/// Runs `authspec load` with the password in the environment, never in argv.
fn load(target: &str, password: &str, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["load", "--target", target, "--format", "json"])
        .args(["--var", "user=alice", "--var", "password-env=LOAD_TEST_PW"])
        .args(extra)
        .env("LOAD_TEST_PW", password)
        .env_remove("AUTHSPEC_VAR_PASSWORD")
        .output()
        .expect("run authspec load")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn check_clean_run(mechanism: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let server = support::serve(dir.path(), &[]);
    let mut args = vec![
        "--mechanism",
        mechanism,
        "--sessions",
        "50",
        "--concurrency",
        "4",
    ];
    args.extend_from_slice(extra);
    let out = load(&server.addr, "wonderland", &args);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["mechanism"], mechanism);
    assert_eq!(v["sessions_attempted"], 50);
    assert_eq!(v["sessions_ok"], 50);
    assert_eq!(v["sessions_failed"], 0);
    assert_eq!(v["error_rate"], 0.0);
    assert_eq!(v["concurrency"], 4);
    assert_eq!(v["errors"], serde_json::json!({}));
    let lat = &v["latency"];
    assert_eq!(lat["samples"], 50);
    for k in ["p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms"] {
        assert!(lat[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {lat}");
    }
    let p50 = lat["p50_ms"].as_f64().unwrap();
    let p99 = lat["p99_ms"].as_f64().unwrap();
    let max = lat["max_ms"].as_f64().unwrap();
    assert!(p50 <= p99 && p99 <= max, "{lat}");
    assert!(v["sessions_per_second"].as_f64().is_some_and(|x| x > 0.0));
    assert!(v["wall_seconds"].as_f64().is_some_and(|x| x > 0.0));
    if Path::new("/proc/self/stat").exists() {
        assert!(v["generator_cpu_seconds"].as_f64().is_some(), "{v:#}");
        assert!(v["generator_cpu_ratio"].as_f64().is_some(), "{v:#}");
    }
}

#[test]
fn plain_sessions_all_succeed() {
    check_clean_run("PLAIN", &[]);
}

#[test]
fn plain_with_transaction_all_succeed() {
    check_clean_run("PLAIN", &["--transaction"]);
}

#[test]
fn scram_sha_256_sessions_all_succeed() {
    check_clean_run("SCRAM-SHA-256", &[]);
}

#[test]
fn cram_md5_sessions_all_succeed() {
    check_clean_run("CRAM-MD5", &[]);
}

#[test]
fn wrong_password_is_counted_as_auth_535() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::serve(dir.path(), &[]);
    let out = load(
        &server.addr,
        "not-the-password",
        &["--sessions", "10", "--concurrency", "2"],
    );
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    assert_eq!(v["sessions_ok"], 0);
    assert_eq!(v["sessions_failed"], 10);
    assert_eq!(v["error_rate"], 1.0);
    assert_eq!(v["errors"], serde_json::json!({ "auth:535": 10 }));
    // The password never reaches the report.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("not-the-password"));
}

#[test]
fn non_loopback_target_is_refused_without_allow_remote() {
    // 192.0.2.0/24 is TEST-NET-1: nothing is ever contacted, the check comes first.
    let out = load("192.0.2.1:25", "x", &["--sessions", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-remote"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn closed_port_is_counted_as_connect_errors() {
    // Bind and drop a listener to find a loopback port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = load(
        &format!("127.0.0.1:{port}"),
        "x",
        &["--sessions", "3", "--concurrency", "1", "--timeout", "5"],
    );
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["errors"], serde_json::json!({ "connect": 3 }));
}

#[test]
fn bounds_are_checked_before_anything_runs() {
    for args in [
        &["--concurrency", "10001"][..],
        &["--concurrency", "0"],
        &["--duration", "3601"],
        &["--sessions", "0"],
        &["--sessions", "5", "--duration", "1"],
        &["--mechanism", "NOT-A-MECH"],
    ] {
        let out = load("127.0.0.1:9", "x", args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = Command::new(BIN)
        .args(["load", "--target", "127.0.0.1:9", "--mechanism", "PLAIN"])
        .env_remove("AUTHSPEC_VAR_PASSWORD")
        .env_remove("AUTHSPEC_VAR_USER")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("user"));
}
