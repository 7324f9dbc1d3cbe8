//! Negative controls for the client side of channel binding (issue 18): a scripted
//! SCRAM client (`support/scram_binding_client.py`) that breaks RFC 5802 §6 on purpose
//! must fail the server-role scenarios that judge it, and pass where it is right.
//! Python's `ssl` has no TLS exporter, so a correct -PLUS client is not possible here;
//! gsasl is the positive control (tests/interop/run.sh, and the closing note of issue
//! 18), and the reference client passes in tests/tests/scenarios.rs.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_authspec");
const Y_FLAG: &str = "client/scram-y-flag-when-plus-hidden";
const BINDS: &str = "client/scram-plus-binds-tls-exporter";

fn python3_available() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The verdict kind and reason of each of the two scenarios against the client in
/// `mode`.
fn verdicts(mode: &str) -> Vec<(String, String, String)> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = manifest.join("tests/support/scram_binding_client.py");
    let scenarios = manifest.join("../scenarios/client");
    let out = Command::new(BIN)
        .arg("run")
        .arg("--client-command")
        .arg(format!(
            "python3 {} {{host}} {{port}} {mode}",
            script.display()
        ))
        .args([
            "--client-mechanisms",
            "SCRAM-SHA-256,SCRAM-SHA-256-PLUS",
            "--format",
            "json",
        ])
        .arg(scenarios.join("scram-y-flag-when-plus-hidden.yaml"))
        .arg(scenarios.join("scram-plus-binds-tls-exporter.yaml"))
        .output()
        .expect("run authspec");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}",
            String::from_utf8_lossy(&out.stderr)
                .chars()
                .take(2000)
                .collect::<String>()
        )
    });
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let v = &r["verdict"];
            (
                r["id"].as_str().unwrap_or_default().to_owned(),
                v["kind"].as_str().unwrap_or_default().to_owned(),
                v["reason"]
                    .as_str()
                    .or(v["note"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

fn verdict<'a>(all: &'a [(String, String, String)], id: &str) -> (&'a str, &'a str) {
    let (_, kind, reason) = all
        .iter()
        .find(|(i, _, _)| i == id)
        .unwrap_or_else(|| panic!("{id} not in {all:?}"));
    (kind, reason)
}

#[test]
fn a_client_that_can_bind_and_sends_n_fails_the_downgrade_rule() {
    if !python3_available() {
        eprintln!("python3 not found: skipping");
        return;
    }
    let all = verdicts("n");
    let (kind, reason) = verdict(&all, Y_FLAG);
    assert_eq!(kind, "fail", "{all:?}");
    assert!(reason.contains("does not match \"y,*\""), "{reason}");
    // It never tried -PLUS: the binding scenario is not reached, not failed.
    let (kind, reason) = verdict(&all, BINDS);
    assert_eq!(kind, "info", "{all:?}");
    assert!(reason.contains("chose another mechanism"), "{reason}");
}

#[test]
fn a_client_that_sends_y_passes_the_downgrade_rule() {
    if !python3_available() {
        eprintln!("python3 not found: skipping");
        return;
    }
    let all = verdicts("y");
    assert_eq!(verdict(&all, Y_FLAG).0, "pass", "{all:?}");
}

#[test]
fn binding_data_that_is_not_this_connections_fails_the_exchange() {
    if !python3_available() {
        eprintln!("python3 not found: skipping");
        return;
    }
    let all = verdicts("mitm");
    let (kind, reason) = verdict(&all, BINDS);
    assert_eq!(kind, "fail", "{all:?}");
    assert!(reason.contains("did not verify"), "{reason}");
}
