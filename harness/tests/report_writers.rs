//! The report model, expectations, masking and the three writers.

use std::time::Duration;

use authspec::report::{
    self, Direction, Expectations, FailedStep, RunReport, ScenarioResult, StepResult,
    TranscriptLine, Verdict, human, json, junit, mask,
};
use authspec::scenario::{self, Scenario};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const PASSWORD: &str = "wonderland";

fn scenario(id: &str, spec: &str) -> Scenario {
    let spec_line = if spec.is_empty() {
        String::new()
    } else {
        format!("spec: [\"{spec}\"]\n")
    };
    let text = format!("id: {id}\ntitle: title of {id}\n{spec_line}steps:\n  - send: NOOP\n");
    scenario::load_str(&text, &format!("scenarios/{id}.yaml")).unwrap()
}

fn result(id: &str, spec: &str, verdict: Verdict) -> ScenarioResult {
    let mut r = ScenarioResult::new(&scenario(id, spec), verdict);
    r.duration = Duration::from_millis(12);
    r
}

/// One result of each kind, with the password on the wire in clear and in base64.
fn sample() -> RunReport {
    let mut report = RunReport::new("mx.example.com:587", vec![PASSWORD.to_owned()]);
    report.duration = Duration::from_millis(1234);
    report
        .results
        .push(result("rfc4954/pass", "RFC4954 §4 MUST", Verdict::Pass));
    report.results.push(result(
        "rfc4954/non-strict",
        "RFC4954 §4",
        Verdict::NonStrict {
            note: "Postfix answers 535".into(),
        },
    ));
    let mut fail = result(
        "rfc4954/fail",
        "RFC4954 §4 MUST",
        Verdict::Fail {
            reason: "code 535 is not 235".into(),
        },
    );
    let plain = STANDARD.encode(format!("\0alice\0{PASSWORD}"));
    fail.transcript = vec![
        TranscriptLine::server("220 mx.example.com ESMTP"),
        TranscriptLine::client("EHLO client.example.com"),
        TranscriptLine::server("250 AUTH PLAIN LOGIN"),
        TranscriptLine::client(format!("AUTH PLAIN {plain}")),
        TranscriptLine::server("535 5.7.8 Authentication credentials invalid"),
        TranscriptLine::from_bytes(Direction::Client, b"QUIT\n\0\r\n"),
        TranscriptLine::note("connection closed"),
    ];
    fail.failed_step = Some(FailedStep {
        index: 4,
        expected: "code 235".into(),
        actual: "535 5.7.8 Authentication credentials invalid".into(),
    });
    fail.steps = vec![StepResult {
        index: 4,
        kind: "auth".into(),
        verdict: fail.verdict.clone(),
        duration: Duration::from_millis(3),
    }];
    report.results.push(fail);
    report.results.push(result(
        "rfc4954/deviates",
        "RFC4954 §4",
        Verdict::Fail {
            reason: "code 535 is not 504".into(),
        },
    ));
    report.results.push(result(
        "rfc4954/skipped",
        "RFC4954 §4.1",
        Verdict::Skip {
            reason: "target does not offer CRAM-MD5".into(),
        },
    ));
    report.results.push(result(
        "rfc3207/error",
        "RFC3207 §4",
        Verdict::Error {
            reason: format!("variable leaked: {PASSWORD}"),
        },
    ));
    report
        .results
        .push(result("rfc4954/fixed", "RFC4954 §6", Verdict::Pass));
    report
        .results
        .push(result("misc/untagged", "", Verdict::Pass));
    report
}

fn expectations() -> Expectations {
    Expectations::load_str(
        "deviations:\n  rfc4954/deviates: \"Postfix answers 535\"\n  \"rfc4954/fix*\": \"fixed upstream?\"\n  rfc4954/gone: old\nskip:\n  misc/*: not for this target\n",
    )
    .unwrap()
}

#[test]
fn expectations_turn_failures_into_known_deviations() {
    let mut report = sample();
    assert_eq!(report.exit_code(), 1);
    let before = report.summary();
    assert_eq!(
        (
            before.passed,
            before.failed,
            before.non_strict,
            before.skipped,
            before.errors
        ),
        (3, 2, 1, 1, 1)
    );
    let noticed = report.apply_expectations(&expectations());
    assert_eq!(noticed.unused_deviations, ["rfc4954/gone"]);
    assert!(noticed.unused_skips.is_empty());
    let s = report.summary();
    assert_eq!(s.total, 8);
    assert_eq!(s.passed, 2);
    assert_eq!(s.failed, 1);
    assert_eq!(s.known_deviations, 1);
    assert_eq!(s.skipped, 2);
    assert_eq!(s.errors, 1);
    assert_eq!(s.non_strict, 1);
    assert_eq!(s.unexpected_passes, 1);
    let deviates = report
        .results
        .iter()
        .find(|r| r.id == "rfc4954/deviates")
        .unwrap();
    assert_eq!(
        deviates.known_deviation.as_deref(),
        Some("Postfix answers 535")
    );
    assert!(!deviates.is_failing());
    let fixed = report
        .results
        .iter()
        .find(|r| r.id == "rfc4954/fixed")
        .unwrap();
    assert_eq!(fixed.unexpected_pass.as_deref(), Some("fixed upstream?"));
    let skipped = report
        .results
        .iter()
        .find(|r| r.id == "misc/untagged")
        .unwrap();
    assert_eq!(
        skipped.verdict,
        Verdict::Skip {
            reason: "expectations: not for this target".into()
        }
    );
    // Still failing: one real failure and one error.
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn exit_code_is_zero_when_only_known_deviations_fail() {
    let mut report = RunReport::new("t", vec![]);
    report
        .results
        .push(result("a/ok", "RFC4954 §4", Verdict::Pass));
    report.results.push(result(
        "a/known",
        "RFC4954 §4",
        Verdict::Fail { reason: "x".into() },
    ));
    assert_eq!(report.exit_code(), 1);
    let e = Expectations::load_str("deviations: { a/known: because }").unwrap();
    report.apply_expectations(&e);
    assert_eq!(report.exit_code(), 0);
    // Errors are not deviations.
    report.results.push(result(
        "a/known",
        "RFC4954 §4",
        Verdict::Error {
            reason: "refused".into(),
        },
    ));
    report.apply_expectations(&e);
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn expectations_files_are_strict() {
    let e = Expectations::load_str("deviation:\n  a: b\n").unwrap_err();
    assert_eq!(e.line, Some(1));
    assert!(e.message.contains("unknown field `deviation`"), "{e}");
    assert_eq!(Expectations::load_str("").unwrap(), Expectations::default());
    let e = expectations();
    assert_eq!(e.deviation("rfc4954/fixed-it"), Some("fixed upstream?"));
    assert_eq!(e.skip_reason("misc/x"), Some("not for this target"));
    assert_eq!(e.skip_reason("rfc4954/x"), None);
}

#[test]
fn masking_hides_secrets_and_their_base64() {
    let secrets = vec![PASSWORD.to_owned()];
    // The whole word goes: nothing around the secret hints at its bits or length.
    assert_eq!(mask("pw=wonderland! next", &secrets), "*** next");
    assert_eq!(mask(&STANDARD.encode(PASSWORD), &secrets), "***");
    for authcid in ["a", "al", "ali", "alice", "bob@example.com"] {
        let plain = STANDARD.encode(format!("\0{authcid}\0{PASSWORD}"));
        let masked = mask(&format!("C: {plain}"), &secrets);
        assert!(masked.contains("***"), "{authcid}: {masked}");
        // No 4-character run of the secret's base64 core survives.
        for offset in 0..3 {
            let enc = STANDARD.encode(format!("{}{PASSWORD}", "x".repeat(offset)));
            let core = &enc[4..8];
            assert!(!masked.contains(core), "{authcid}/{offset}: {masked}");
        }
        // The authcid itself is not a secret and stays readable where it stands alone.
    }
    assert_eq!(mask("nothing here", &secrets), "nothing here");
    assert_eq!(mask("keep", &[String::new()]), "keep");
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(PASSWORD), "secret in output:\n{text}");
    let plain = STANDARD.encode(format!("\0alice\0{PASSWORD}"));
    assert!(!text.contains(&plain), "base64 secret in output:\n{text}");
}

#[test]
fn human_report() {
    let mut report = sample();
    report.apply_expectations(&expectations());
    let text = human::render(&report, false);
    assert!(!text.contains('\x1b'), "colour without asking");
    assert_no_secret(&text);
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        "2 passed, 1 failed, 2 skipped, 1 non-strict, 0 info, 1 errors, 1 known deviations in 1.23s"
    );
    // Groups in RFC then section order, `Other` last.
    let headings: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("RFC") || *l == "Other")
        .collect();
    assert_eq!(
        headings,
        [
            "RFC3207 §4",
            "RFC4954 §4",
            "RFC4954 §4.1",
            "RFC4954 §6",
            "Other"
        ]
    );
    assert!(text.contains("  ✔ rfc4954/pass — title of rfc4954/pass\n"));
    assert!(text.contains(
        "  ~ rfc4954/non-strict — title of rfc4954/non-strict (non-strict: Postfix answers 535)\n"
    ));
    assert!(text.contains("  ✘ rfc4954/fail — title of rfc4954/fail\n"));
    assert!(text.contains(
        "  ✘ rfc4954/deviates — title of rfc4954/deviates [known deviation: Postfix answers 535]\n"
    ));
    assert!(text.contains(
        "  - rfc4954/skipped — title of rfc4954/skipped (skipped: target does not offer CRAM-MD5)\n"
    ));
    assert!(
        text.contains("  ! rfc3207/error — title of rfc3207/error (error: variable leaked: ***)\n")
    );
    assert!(text.contains("unexpectedly passing — remove from expectations"));
    // Failure details: the step, the actual reply, the transcript with visible bytes.
    let details = text.split("Failures").nth(1).unwrap();
    assert!(details.contains("  step 4 expected: code 235\n"));
    assert!(details.contains("    535 5.7.8 Authentication credentials invalid\n"));
    assert!(details.contains("    C: EHLO client.example.com\n"));
    assert!(details.contains("    C: QUIT\\n\\0\n"));
    assert!(details.contains("    *: connection closed\n"));
    // The PLAIN response is masked as a whole token: no bit of the password is kept
    // at a base64 boundary.
    assert!(details.contains("    C: AUTH PLAIN ***\n"), "{details}");

    let coloured = human::render(&report, true);
    assert!(coloured.contains("\x1b[32m✔\x1b[0m"));
    assert!(coloured.contains("\x1b[31m✘\x1b[0m"));
}

#[test]
fn human_summary_without_expectations() {
    let report = sample();
    let text = human::render(&report, false);
    assert!(
        text.ends_with(
            "3 passed, 2 failed, 1 skipped, 1 non-strict, 0 info, 1 errors, 0 known deviations in 1.23s\n"
        ),
        "{text}"
    );
}

#[test]
fn json_report_shape() {
    let mut report = sample();
    report.apply_expectations(&expectations());
    let v = json::to_value(&report);
    let text = serde_json::to_string(&v).unwrap();
    assert_no_secret(&text);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["target"], "mx.example.com:587");
    assert_eq!(v["duration_ms"], 1234);
    assert_eq!(v["exit_code"], 1);
    assert_eq!(
        v["summary"],
        serde_json::json!({
            "total": 8, "passed": 2, "failed": 1, "skipped": 2, "non_strict": 1,
            "info": 0, "errors": 1, "known_deviations": 1, "unexpected_passes": 1
        })
    );
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 8);
    let fail = &results[2];
    let keys: Vec<&str> = fail
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "duration_ms",
            "failed_step",
            "group",
            "id",
            "known_deviation",
            "level",
            "path",
            "quote",
            "spec",
            "steps",
            "tags",
            "title",
            "transcript",
            "unexpected_pass",
            "verdict"
        ]
    );
    assert_eq!(fail["id"], "rfc4954/fail");
    assert_eq!(fail["path"], "scenarios/rfc4954/fail.yaml");
    assert_eq!(fail["group"], "RFC4954 §4");
    assert_eq!(
        fail["spec"][0],
        serde_json::json!({"text": "RFC4954 §4 MUST", "rfc": "RFC4954", "section": "4", "level": "MUST"})
    );
    assert_eq!(
        fail["verdict"],
        serde_json::json!({"kind": "fail", "reason": "code 535 is not 235"})
    );
    assert_eq!(fail["duration_ms"], 12);
    assert_eq!(fail["failed_step"]["index"], 4);
    assert_eq!(fail["steps"][0]["kind"], "auth");
    assert_eq!(
        fail["transcript"][0],
        serde_json::json!({"dir": "server", "text": "220 mx.example.com ESMTP"})
    );
    assert_eq!(fail["transcript"][6]["dir"], "note");
    assert_eq!(
        results[0]["verdict"],
        serde_json::json!({"kind": "pass", "reason": null})
    );
    assert_eq!(results[1]["verdict"]["kind"], "non_strict");
    assert_eq!(results[3]["known_deviation"], "Postfix answers 535");
    assert_eq!(results[6]["unexpected_pass"], "fixed upstream?");
    let mut buf = Vec::new();
    json::write(&report, &mut buf).unwrap();
    let reparsed: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(reparsed, v);
}

/// Walks the XML with quick-xml: well-formed (tags balance), and counts elements.
fn xml_counts(xml: &str) -> std::collections::BTreeMap<String, usize> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                *counts.entry(name.clone()).or_insert(0) += 1;
                stack.push(name);
            }
            Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                *counts.entry(name).or_insert(0) += 1;
            }
            Event::End(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                assert_eq!(stack.pop().as_deref(), Some(name.as_str()));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    counts
}

#[test]
fn junit_report_is_well_formed_with_the_right_counts() {
    let mut report = sample();
    report.apply_expectations(&expectations());
    let xml = junit::to_string(&report).unwrap();
    assert_no_secret(&xml);
    let counts = xml_counts(&xml);
    assert_eq!(counts["testsuites"], 1);
    assert_eq!(counts["testsuite"], 3, "{xml}"); // RFC3207, RFC4954, Other
    assert_eq!(counts["testcase"], 8);
    assert_eq!(counts["failure"], 1);
    assert_eq!(counts["error"], 1);
    // Two skips plus the known deviation.
    assert_eq!(counts["skipped"], 3);

    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(parsed.tests, 8);
    assert_eq!(parsed.failures, 1);
    assert_eq!(parsed.errors, 1);
    let names: Vec<&str> = parsed.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Other", "RFC3207", "RFC4954"]);
    let rfc4954 = &parsed.test_suites[2];
    assert_eq!(rfc4954.tests, 6);
    let fail = rfc4954
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "rfc4954/fail")
        .unwrap();
    assert_eq!(fail.classname.as_ref().unwrap().as_str(), "RFC4954 §4");
    let out = fail.system_out.as_ref().unwrap().as_str();
    assert!(out.contains("C: EHLO client.example.com"), "{out}");
    match &fail.status {
        quick_junit::TestCaseStatus::NonSuccess { message, .. } => {
            assert_eq!(message.as_ref().unwrap().as_str(), "code 535 is not 235");
        }
        other => panic!("{other:?}"),
    }
}

/// The embedded server's log kept for a failed scenario reaches CI viewers in
/// `<system-err>`, masked and with long lines elided like the human report.
#[test]
fn junit_carries_the_embedded_server_log_of_a_failure() {
    let mut report = sample();
    let long = "x".repeat(5000);
    let fail = report
        .results
        .iter_mut()
        .find(|r| r.id == "rfc4954/fail")
        .unwrap();
    fail.server_log = Some(format!(
        "connect from localhost[127.0.0.1]\nwarning: password {PASSWORD} rejected\n{long}\n"
    ));
    let xml = junit::to_string(&report).unwrap();
    assert_no_secret(&xml);
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let case = parsed
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .find(|c| c.name.as_str() == "rfc4954/fail")
        .unwrap();
    let err = case.system_err.as_ref().unwrap().as_str();
    assert!(
        err.starts_with(
            "server log (embedded reference server):\nconnect from localhost[127.0.0.1]\n"
        ),
        "{err}"
    );
    assert!(err.contains("warning: password *** rejected"), "{err}");
    assert!(
        !err.contains(&long),
        "a 5000-octet line is shown whole:\n{err}"
    );
    assert!(
        err.contains("5000"),
        "the elided line does not give its length:\n{err}"
    );
    // A passing scenario has no log and no <system-err>.
    let pass = parsed
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .find(|c| c.name.as_str() == "misc/untagged")
        .unwrap();
    assert!(pass.system_err.is_none());
}

#[test]
fn results_from_scenarios_carry_their_metadata() {
    let s = scenario::load_bundled()
        .unwrap()
        .into_iter()
        .find(|s| s.id == "rfc4954/auth-unknown-mechanism")
        .unwrap();
    let r = ScenarioResult::new(&s, Verdict::Pass);
    assert_eq!(r.group(), "RFC4954 §4");
    assert_eq!(r.rfc(), "RFC4954");
    assert_eq!(r.path, "scenarios/rfc4954/auth-unknown-mechanism.yaml");
    assert_eq!(r.tags, ["negative", "mechanism"]);
    assert_eq!(report::MASK, "***");
    let debug = format!("{:?}", RunReport::new("t", vec![PASSWORD.to_owned()]));
    assert!(!debug.contains(PASSWORD), "{debug}");
}
