//! Verdicts, run results and the report writers (human, JSON, JUnit).
//!
//! The runner fills a [`RunReport`] with one [`ScenarioResult`] per scenario; the CLI may
//! apply an [`Expectations`] file, then hands the report to [`human`], [`json`] or
//! [`junit`]. Every writer masks the run's secrets ([`mask`]) in everything it prints.

mod client_output;
mod expectations;
pub mod human;
pub mod json;
pub mod junit;
mod mask;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub use client_output::{Captured, ClientExit, ClientOutput};
pub use expectations::{Expectations, ExpectationsError};
pub use mask::{MASK, mask};

use crate::scenario::{Clause, Scenario};

/// What happened to a scenario (or a step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every step held.
    Pass,
    /// The target did something the RFC allows, or widespread servers do, instead of the
    /// strict behaviour: an alternative matched.
    NonStrict { note: String },
    /// The target broke the clause.
    Fail { reason: String },
    /// The target differs from Postfix or the reference where the RFCs leave the choice
    /// open, or did not do something the RFC only permits (MAY). Shown, never failing.
    Info { note: String },
    /// Not run: the target lacks an extension or mechanism, or the expectations file says so.
    Skip { reason: String },
    /// Could not be judged: connection refused, TLS failure, a variable not set…
    Error { reason: String },
}

impl Verdict {
    /// The stable name used in JSON: `pass`, `non_strict`, `info`, `fail`, `skip`, `error`.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::NonStrict { .. } => "non_strict",
            Verdict::Fail { .. } => "fail",
            Verdict::Info { .. } => "info",
            Verdict::Skip { .. } => "skip",
            Verdict::Error { .. } => "error",
        }
    }

    /// The note or reason, if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Pass => None,
            Verdict::NonStrict { note: r }
            | Verdict::Info { note: r }
            | Verdict::Fail { reason: r }
            | Verdict::Skip { reason: r }
            | Verdict::Error { reason: r } => Some(r),
        }
    }

    /// Pass, non-strict or informational.
    pub fn is_passing(&self) -> bool {
        matches!(
            self,
            Verdict::Pass | Verdict::NonStrict { .. } | Verdict::Info { .. }
        )
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason() {
            Some(r) => write!(f, "{}: {r}", self.kind()),
            None => f.write_str(self.kind()),
        }
    }
}

/// The outcome of one step, for detailed reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    /// 1-based, as validation errors and reports number steps.
    pub index: usize,
    /// The step kind (`send`, `expect`, …).
    pub kind: String,
    pub verdict: Verdict,
    pub duration: Duration,
}

/// Who a transcript line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the client (`C:`).
    Client,
    /// Sent by the server (`S:`).
    Server,
    /// A remark by the harness (`TLS handshake done`, `connection closed`).
    Note,
}

impl Direction {
    /// `C`, `S` or `*`, as transcripts are printed.
    pub fn prefix(self) -> &'static str {
        match self {
            Direction::Client => "C",
            Direction::Server => "S",
            Direction::Note => "*",
        }
    }

    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Client => "client",
            Direction::Server => "server",
            Direction::Note => "note",
        }
    }
}

/// One line of a session as it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptLine {
    pub dir: Direction,
    pub text: String,
}

impl TranscriptLine {
    pub fn client(text: impl Into<String>) -> TranscriptLine {
        TranscriptLine {
            dir: Direction::Client,
            text: text.into(),
        }
    }

    pub fn server(text: impl Into<String>) -> TranscriptLine {
        TranscriptLine {
            dir: Direction::Server,
            text: text.into(),
        }
    }

    pub fn note(text: impl Into<String>) -> TranscriptLine {
        TranscriptLine {
            dir: Direction::Note,
            text: text.into(),
        }
    }

    /// A line from wire bytes: a final CRLF is dropped and anything unprintable (bare CR
    /// or LF, NUL, 8-bit) is shown as an escape, so a report shows what was really sent.
    pub fn from_bytes(dir: Direction, bytes: &[u8]) -> TranscriptLine {
        let bytes = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
        TranscriptLine {
            dir,
            text: crate::scenario::display_bytes(bytes),
        }
    }
}

/// The step that failed: its number, what it expected, what came instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStep {
    /// 1-based.
    pub index: usize,
    pub expected: String,
    pub actual: String,
}

/// The result of one scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioResult {
    pub id: String,
    pub title: String,
    pub path: String,
    pub spec: Vec<Clause>,
    pub tags: Vec<String>,
    pub verdict: Verdict,
    pub duration: Duration,
    pub transcript: Vec<TranscriptLine>,
    pub steps: Vec<StepResult>,
    pub failed_step: Option<FailedStep>,
    /// The level of the check that decided a fail, non-strict or info verdict.
    pub level: Option<crate::scenario::Requirement>,
    /// The RFC sentence that check enforces, as the scenario quotes it.
    pub quote: Option<String>,
    /// Set by [`RunReport::apply_expectations`]: the scenario failed, as the
    /// expectations file says it does; the reason is the file's.
    pub known_deviation: Option<String>,
    /// Set by [`RunReport::apply_expectations`]: listed as a deviation but passed. The
    /// entry should be removed from the expectations file.
    pub unexpected_pass: Option<String>,
    /// Server-role scenarios judged through `--client-command`: what the client command
    /// said (exit status, bounded stdout and stderr).
    pub client: Option<ClientOutput>,
    /// The embedded reference server's log for this scenario, kept in memory and
    /// shown only with a failure or an error (a passing run prints none of it).
    pub server_log: Option<String>,
}

impl ScenarioResult {
    /// A result for `scenario` with the given verdict and nothing else recorded yet.
    pub fn new(scenario: &Scenario, verdict: Verdict) -> ScenarioResult {
        ScenarioResult {
            id: scenario.id.clone(),
            title: scenario.title.clone(),
            path: scenario.path.clone(),
            spec: scenario.spec.clone(),
            tags: scenario.tags.clone(),
            verdict,
            duration: Duration::ZERO,
            transcript: Vec::new(),
            steps: Vec::new(),
            failed_step: None,
            level: None,
            quote: None,
            known_deviation: None,
            unexpected_pass: None,
            client: None,
            server_log: None,
        }
    }

    /// Whether this result makes the run fail: a failure that is not a known deviation,
    /// or an error.
    pub fn is_failing(&self) -> bool {
        match self.verdict {
            Verdict::Fail { .. } => self.known_deviation.is_none(),
            Verdict::Error { .. } => true,
            _ => false,
        }
    }

    /// The group reports put this result in: its first clause's RFC and section
    /// (`RFC4954 §4`), or `Other`.
    pub fn group(&self) -> String {
        match self.spec.first() {
            Some(c) => format!("{} §{}", c.rfc, c.section),
            None => "Other".to_owned(),
        }
    }

    /// The RFC of the first clause (`RFC4954`), or `Other`.
    pub fn rfc(&self) -> &str {
        self.spec.first().map_or("Other", |c| c.rfc.as_str())
    }
}

/// Counts of a run. A failure listed in the expectations counts as a known deviation,
/// not as failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub non_strict: usize,
    pub info: usize,
    pub errors: usize,
    pub known_deviations: usize,
    pub unexpected_passes: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} skipped, {} non-strict, {} info, {} errors, {} known deviations",
            self.passed,
            self.failed,
            self.skipped,
            self.non_strict,
            self.info,
            self.errors,
            self.known_deviations
        )
    }
}

/// The secrets of a run; `Debug` does not show them.
#[derive(Clone, Default, PartialEq, Eq)]
struct Secrets(Vec<String>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} hidden)", self.0.len())
    }
}

/// A whole run against one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// What was tested: `mail.example.com:587`, `embedded reference`.
    pub target: String,
    pub results: Vec<ScenarioResult>,
    pub duration: Duration,
    secrets: Secrets,
}

/// What [`RunReport::apply_expectations`] noticed about the file itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectationsReport {
    /// Deviation keys that matched no scenario in this run (stale, or filtered out).
    pub unused_deviations: Vec<String>,
    /// Skip keys that matched no scenario in this run.
    pub unused_skips: Vec<String>,
}

impl RunReport {
    /// An empty report. `secrets` are masked by every writer: pass
    /// [`crate::scenario::Vars::secret_values`].
    pub fn new(target: impl Into<String>, secrets: Vec<String>) -> RunReport {
        RunReport {
            target: target.into(),
            results: Vec::new(),
            duration: Duration::ZERO,
            secrets: Secrets(secrets),
        }
    }

    /// The values every writer masks.
    pub fn secrets(&self) -> &[String] {
        &self.secrets.0
    }

    /// Adds values to mask.
    pub fn add_secrets(&mut self, more: impl IntoIterator<Item = String>) {
        self.secrets.0.extend(more);
    }

    /// Masks the run's secrets in `text`.
    pub fn mask(&self, text: &str) -> String {
        mask(text, &self.secrets.0)
    }

    /// Counts by verdict.
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            total: self.results.len(),
            ..Summary::default()
        };
        for r in &self.results {
            match r.verdict {
                Verdict::Pass => s.passed += 1,
                Verdict::NonStrict { .. } => s.non_strict += 1,
                Verdict::Info { .. } => s.info += 1,
                Verdict::Fail { .. } if r.known_deviation.is_some() => s.known_deviations += 1,
                Verdict::Fail { .. } => s.failed += 1,
                Verdict::Skip { .. } => s.skipped += 1,
                Verdict::Error { .. } => s.errors += 1,
            }
            if r.unexpected_pass.is_some() {
                s.unexpected_passes += 1;
            }
        }
        s
    }

    /// Applies a target's expectations: a listed failure becomes a known deviation (shown,
    /// not failing the run); a listed scenario that passed is flagged "unexpectedly
    /// passing"; a scenario listed under `skip` is reported skipped. Errors are left as
    /// they are: a deviation is a behaviour of the target, an error is not.
    pub fn apply_expectations(&mut self, expectations: &Expectations) -> ExpectationsReport {
        let mut used_deviations = std::collections::BTreeSet::new();
        let mut used_skips = std::collections::BTreeSet::new();
        for r in &mut self.results {
            if let Some((key, reason)) = expectations.skip_key(&r.id) {
                used_skips.insert(key.to_owned());
                if !matches!(r.verdict, Verdict::Skip { .. }) {
                    r.verdict = Verdict::Skip {
                        reason: format!("expectations: {reason}"),
                    };
                }
                continue;
            }
            let Some((key, reason)) = expectations.deviation_key(&r.id) else {
                continue;
            };
            used_deviations.insert(key.to_owned());
            match r.verdict {
                Verdict::Fail { .. } => r.known_deviation = Some(reason.to_owned()),
                Verdict::Pass | Verdict::NonStrict { .. } | Verdict::Info { .. } => {
                    r.unexpected_pass = Some(reason.to_owned());
                }
                Verdict::Skip { .. } | Verdict::Error { .. } => {}
            }
        }
        ExpectationsReport {
            unused_deviations: expectations
                .deviations
                .keys()
                .filter(|k| !used_deviations.contains(*k))
                .cloned()
                .collect(),
            unused_skips: expectations
                .skip
                .keys()
                .filter(|k| !used_skips.contains(*k))
                .cloned()
                .collect(),
        }
    }

    /// The process exit code: 0 when nothing failed or errored (known deviations do not
    /// count), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.results.iter().any(ScenarioResult::is_failing) {
            1
        } else {
            0
        }
    }

    /// Results grouped as reports show them: by RFC then section (numerically:
    /// §4 before §4.1 before §10), `Other` last; order within a group is kept.
    pub fn grouped(&self) -> Vec<(String, Vec<&ScenarioResult>)> {
        let mut groups: BTreeMap<GroupKey, (String, Vec<&ScenarioResult>)> = BTreeMap::new();
        for r in &self.results {
            let key = GroupKey::of(r);
            groups
                .entry(key)
                .or_insert_with(|| (r.group(), Vec::new()))
                .1
                .push(r);
        }
        groups.into_values().collect()
    }
}

/// Sort key for groups: RFC number, then section parts compared as numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum GroupKey {
    Clause(u64, Vec<SectionPart>),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SectionPart {
    Number(u64),
    Text(String),
}

impl GroupKey {
    fn of(r: &ScenarioResult) -> GroupKey {
        match r.spec.first() {
            None => GroupKey::Other,
            Some(c) => {
                let rfc = c.rfc.trim_start_matches("RFC").parse().unwrap_or(u64::MAX);
                let parts = c
                    .section
                    .split('.')
                    .map(|p| match p.parse() {
                        Ok(n) => SectionPart::Number(n),
                        Err(_) => SectionPart::Text(p.to_owned()),
                    })
                    .collect();
                GroupKey::Clause(rfc, parts)
            }
        }
    }
}

/// Formats a duration for people: `850ms`, `1.25s`.
pub(crate) fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// Milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
