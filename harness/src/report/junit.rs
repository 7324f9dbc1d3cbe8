//! The JUnit XML report, for CI systems: one `<testsuite>` per RFC, one `<testcase>`
//! per scenario (classname `RFC4954 §4`, name the scenario id). Failures carry the
//! expected/actual text as message and the transcript in `<system-out>`; errors are
//! `<error>`; a client command's stdout follows the transcript in `<system-out>`, and
//! its stderr and the embedded server's log go to `<system-err>`; skips and known
//! deviations are `<skipped>` (a known deviation must not turn CI red); non-strict
//! passes are successes with the note in `<system-out>`.

use std::collections::BTreeMap;
use std::io;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::{RunReport, ScenarioResult, Verdict};

fn transcript_text(report: &RunReport, r: &ScenarioResult) -> String {
    let mut out = String::new();
    for t in &r.transcript {
        out.push_str(t.dir.prefix());
        out.push_str(": ");
        out.push_str(&t.text);
        out.push('\n');
    }
    report.mask(&out)
}

fn test_case(report: &RunReport, r: &ScenarioResult) -> TestCase {
    let m = |s: &str| report.mask(s);
    let status = match &r.verdict {
        Verdict::Pass | Verdict::NonStrict { .. } | Verdict::Info { .. } => {
            TestCaseStatus::success()
        }
        Verdict::Fail { reason } => match &r.known_deviation {
            Some(dev) => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(m(&format!("known deviation: {dev}")));
                s.set_type("known-deviation");
                s
            }
            None => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(m(reason));
                s.set_type("fail");
                if let Some(f) = &r.failed_step {
                    let quote = r
                        .quote
                        .as_deref()
                        .map(|q| format!("requirement: {q}\n"))
                        .unwrap_or_default();
                    s.set_description(m(&format!(
                        "{quote}step {} expected: {}\nactual:\n{}",
                        f.index, f.expected, f.actual
                    )));
                }
                s
            }
        },
        Verdict::Skip { reason } => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(m(reason));
            s
        }
        Verdict::Error { reason } => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(m(reason));
            s.set_type("error");
            s
        }
    };
    let mut case = TestCase::new(r.id.as_str(), status);
    case.set_classname(r.group());
    case.set_time(r.duration);
    let mut out = String::new();
    match &r.verdict {
        Verdict::NonStrict { note } => out.push_str(&format!("non-strict: {}\n", m(note))),
        Verdict::Info { note } => out.push_str(&format!("info: {}\n", m(note))),
        _ => {}
    }
    if let Some(level) = r.level {
        out.push_str(&format!("level: {level}\n"));
    }
    if let Some(q) = &r.quote {
        out.push_str(&format!("requirement: {}\n", m(q)));
    }
    if let Some(reason) = &r.unexpected_pass {
        out.push_str(&format!(
            "unexpectedly passing — remove from expectations: {}\n",
            m(reason)
        ));
    }
    out.push_str(&transcript_text(report, r));
    if let Some(c) = &r.client {
        out.push_str(&m(&format!(
            "client command: {}\nclient ended: {}\n",
            c.command, c.exit
        )));
        if !c.stdout.is_empty() {
            out.push_str("client stdout:\n");
            out.push_str(&m(&c.stdout.shown()));
            out.push('\n');
        }
    }
    // What the peer logged goes where CI viewers show logs: a client's stderr, and
    // the embedded server's log kept for a scenario that did not pass.
    let mut err = String::new();
    if let Some(c) = r.client.as_ref().filter(|c| !c.stderr.is_empty()) {
        err.push_str(&m(&c.stderr.shown()));
    }
    if let Some(log) = r.server_log.as_deref().filter(|l| !l.is_empty()) {
        if !err.is_empty() && !err.ends_with('\n') {
            err.push('\n');
        }
        err.push_str("server log (embedded reference server):\n");
        for line in log.lines() {
            err.push_str(&m(&super::human::elide(line)));
            err.push('\n');
        }
    }
    if !err.is_empty() {
        case.set_system_err(err);
    }
    if !out.is_empty() {
        case.set_system_out(out);
    }
    case.add_property(("title", r.title.as_str()));
    case.add_property(("path", r.path.as_str()));
    for c in &r.spec {
        case.add_property(("spec", c.to_string().as_str()));
    }
    case
}

/// The report as a quick-junit model.
pub fn to_report(report: &RunReport) -> Report {
    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    for r in &report.results {
        suites
            .entry(r.rfc())
            .or_insert_with(|| TestSuite::new(r.rfc()))
            .add_test_case(test_case(report, r));
    }
    let mut junit = Report::new(format!("authspec: {}", report.mask(&report.target)));
    junit.set_time(report.duration);
    junit.add_test_suites(suites.into_values());
    junit
}

/// The report as XML text.
pub fn to_string(report: &RunReport) -> Result<String, quick_junit::SerializeError> {
    to_report(report).to_string()
}

/// Writes the XML.
pub fn write(report: &RunReport, out: &mut dyn io::Write) -> io::Result<()> {
    to_report(report).serialize(out).map_err(io::Error::other)
}
