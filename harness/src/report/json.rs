//! The JSON report: a stable shape for CI and other tools, documented in
//! `scenarios/README.md` ("JSON report"). Fields are only ever added, never renamed;
//! `schema_version` changes if that promise must be broken.

use std::io;

use serde::Serialize;

use super::{RunReport, ScenarioResult, millis};

/// The version of the shape below.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Report<'a> {
    schema_version: u32,
    target: String,
    duration_ms: u64,
    exit_code: i32,
    summary: Summary,
    results: Vec<Result<'a>>,
}

#[derive(Serialize)]
struct Summary {
    total: usize,
    passed: usize,
    failed: usize,
    skipped: usize,
    non_strict: usize,
    info: usize,
    errors: usize,
    known_deviations: usize,
    unexpected_passes: usize,
}

#[derive(Serialize)]
struct Clause<'a> {
    text: String,
    rfc: &'a str,
    section: &'a str,
    level: Option<&'static str>,
}

#[derive(Serialize)]
struct Verdict {
    kind: &'static str,
    reason: Option<String>,
}

#[derive(Serialize)]
struct FailedStep {
    index: usize,
    expected: String,
    actual: String,
}

#[derive(Serialize)]
struct Line {
    dir: &'static str,
    text: String,
}

#[derive(Serialize)]
struct StepOut<'a> {
    index: usize,
    kind: &'a str,
    verdict: Verdict,
    duration_ms: u64,
}

#[derive(Serialize)]
struct Result<'a> {
    id: &'a str,
    title: &'a str,
    path: &'a str,
    group: String,
    spec: Vec<Clause<'a>>,
    tags: &'a [String],
    verdict: Verdict,
    /// The level of the check that decided the verdict (`MUST`, `SHOULD`, `reference`…).
    level: Option<&'static str>,
    /// The RFC sentence that check enforces.
    quote: Option<String>,
    known_deviation: Option<String>,
    unexpected_pass: Option<String>,
    duration_ms: u64,
    failed_step: Option<FailedStep>,
    steps: Vec<StepOut<'a>>,
    transcript: Vec<Line>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<Client>,
    /// The embedded server's log, with failures and errors only.
    #[serde(skip_serializing_if = "Option::is_none")]
    server_log: Option<String>,
}

/// `--client-command`'s side of a server-role scenario.
#[derive(Serialize)]
struct Client {
    command: String,
    /// `status`, `signal`, `stopped` (still running at the end; stopped by authspec) or
    /// `not_started`.
    exit_kind: &'static str,
    exit_code: Option<i32>,
    exit: String,
    stdout: String,
    stdout_dropped_bytes: usize,
    stderr: String,
    stderr_dropped_bytes: usize,
}

fn verdict(report: &RunReport, v: &super::Verdict) -> Verdict {
    Verdict {
        kind: v.kind(),
        reason: v.reason().map(|r| report.mask(r)),
    }
}

fn result<'a>(report: &RunReport, r: &'a ScenarioResult) -> Result<'a> {
    let m = |s: &str| report.mask(s);
    Result {
        id: &r.id,
        title: &r.title,
        path: &r.path,
        group: r.group(),
        spec: r
            .spec
            .iter()
            .map(|c| Clause {
                text: c.to_string(),
                rfc: &c.rfc,
                section: &c.section,
                level: c.level.map(|l| l.as_str()),
            })
            .collect(),
        tags: &r.tags,
        verdict: verdict(report, &r.verdict),
        level: r.level.map(|l| l.as_str()),
        quote: r.quote.as_deref().map(m),
        known_deviation: r.known_deviation.as_deref().map(m),
        unexpected_pass: r.unexpected_pass.as_deref().map(m),
        duration_ms: millis(r.duration),
        failed_step: r.failed_step.as_ref().map(|f| FailedStep {
            index: f.index,
            expected: m(&f.expected),
            actual: m(&f.actual),
        }),
        steps: r
            .steps
            .iter()
            .map(|s| StepOut {
                index: s.index,
                kind: &s.kind,
                verdict: verdict(report, &s.verdict),
                duration_ms: millis(s.duration),
            })
            .collect(),
        transcript: r
            .transcript
            .iter()
            .map(|t| Line {
                dir: t.dir.name(),
                text: m(&t.text),
            })
            .collect(),
        client: r.client.as_ref().map(|c| Client {
            command: m(&c.command),
            exit_kind: c.exit.kind(),
            exit_code: c.exit.code(),
            exit: m(&c.exit.to_string()),
            stdout: m(&c.stdout.text),
            stdout_dropped_bytes: c.stdout.dropped,
            stderr: m(&c.stderr.text),
            stderr_dropped_bytes: c.stderr.dropped,
        }),
        server_log: r.server_log.as_deref().map(m),
    }
}

/// The report as a JSON value, secrets masked.
pub fn to_value(report: &RunReport) -> serde_json::Value {
    let s = report.summary();
    let out = Report {
        schema_version: SCHEMA_VERSION,
        target: report.mask(&report.target),
        duration_ms: millis(report.duration),
        exit_code: report.exit_code(),
        summary: Summary {
            total: s.total,
            passed: s.passed,
            failed: s.failed,
            skipped: s.skipped,
            non_strict: s.non_strict,
            info: s.info,
            errors: s.errors,
            known_deviations: s.known_deviations,
            unexpected_passes: s.unexpected_passes,
        },
        results: report.results.iter().map(|r| result(report, r)).collect(),
    };
    serde_json::to_value(out).unwrap_or(serde_json::Value::Null)
}

/// Writes the report as pretty-printed JSON and a final newline.
pub fn write(report: &RunReport, out: &mut dyn io::Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report))?;
    out.write_all(b"\n")
}
