//! From step outcomes to a scenario's verdict: the one place where a check that did not
//! hold becomes a fail, a non-strict verdict or an informational note, by the level of
//! the requirement it checks (DESIGN.md, "Verdicts people can trust"). Both runner roles
//! go through [`record_step`] and [`settle`].

use crate::report::{FailedStep, ScenarioResult, StepResult, Verdict};
use crate::scenario::{Consequence, Requirement, Scenario, Step};
use std::time::Instant;

/// How one step ended.
pub(crate) enum StepEnd {
    Ok,
    /// An accepted alternative matched; the scenario goes on.
    NonStrict(String),
    /// An alternative at the reference or MAY level matched: the peer made a choice the
    /// RFC leaves open. The scenario goes on.
    Info(String),
    /// The step's check did not hold. What that means depends on its level.
    Fail(FailedStep, String),
    /// A fail whose cause a caller may read as "the step's rule was never reached"
    /// (the server role does, for a step with a rule of its own); anyone else judges
    /// it as [`StepEnd::Fail`].
    Unreached(FailedStep, String, Unreached),
    /// The scenario cannot apply to this peer (it did not advertise what a step needs);
    /// the reason says what was missing.
    Skip(String),
    /// A rule that binds every reply broke (RFC 2034's enhanced codes once advertised):
    /// a MUST-level fail with its own quote, whatever the scenario's level.
    FailRule {
        failed: FailedStep,
        reason: String,
        quote: String,
    },
    /// An alternative that ends the scenario matched: this is its verdict.
    Settled(Verdict),
    Error(String),
}

/// Why the peer never got to what a step checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unreached {
    /// The client closed the connection while the step waited for a line.
    ClientClosed,
    /// `expect_auth`: the client's AUTH named another mechanism than the step serves.
    OtherMechanism,
}

impl StepEnd {
    fn verdict(&self, judged: &Judged) -> Verdict {
        match self {
            StepEnd::Ok => Verdict::Pass,
            StepEnd::NonStrict(n) => Verdict::NonStrict { note: n.clone() },
            StepEnd::Info(n) => Verdict::Info { note: n.clone() },
            StepEnd::Fail(_, r) | StepEnd::Unreached(_, r, _) => judged.verdict(r.clone()),
            StepEnd::Skip(r) => Verdict::Skip { reason: r.clone() },
            StepEnd::Settled(v) => v.clone(),
            StepEnd::FailRule { reason, .. } => Verdict::Fail {
                reason: reason.clone(),
            },
            StepEnd::Error(r) => Verdict::Error { reason: r.clone() },
        }
    }
}

/// The requirement a step checks: its own level and quote, or the scenario's.
#[derive(Debug, Clone)]
pub(crate) struct Judged {
    pub level: Requirement,
    pub quote: Option<String>,
    pub strict: bool,
}

impl Judged {
    pub(crate) fn of(sc: &Scenario, step: &Step, strict: bool) -> Judged {
        let (level, quote) = step.own_level();
        Judged {
            level: level.unwrap_or_else(|| sc.level()),
            quote: quote.map(str::to_owned).or_else(|| sc.quote.clone()),
            strict,
        }
    }

    fn verdict(&self, reason: String) -> Verdict {
        match self.level.consequence(self.strict) {
            Consequence::Fail => Verdict::Fail { reason },
            Consequence::NonStrict => Verdict::NonStrict { note: reason },
            Consequence::Info => Verdict::Info { note: reason },
        }
    }
}

/// What accepted alternatives said on the way through a scenario.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    pub non_strict: Vec<String>,
    pub info: Vec<String>,
}

impl StepEnd {
    /// The step may go on: it passed or an alternative matched.
    pub(crate) fn is_acceptable(&self) -> bool {
        matches!(self, StepEnd::Ok | StepEnd::NonStrict(_) | StepEnd::Info(_))
    }
}

/// Record one step's outcome in `result`. Returns the scenario's verdict when this step
/// ends it: a check that did not hold (at any level: what follows it assumed it held),
/// a skip or an error. Notes of accepted alternatives collect in `notes`.
pub(crate) fn record_step(
    result: &mut ScenarioResult,
    notes: &mut Notes,
    index: usize,
    kind: &str,
    started: Instant,
    end: StepEnd,
    judged: &Judged,
) -> Option<Verdict> {
    result.steps.push(StepResult {
        index,
        kind: kind.to_string(),
        verdict: end.verdict(judged),
        duration: started.elapsed(),
    });
    match end {
        StepEnd::Ok => None,
        StepEnd::NonStrict(note) => {
            notes.non_strict.push(note);
            None
        }
        StepEnd::Info(note) => {
            notes.info.push(note);
            None
        }
        StepEnd::Fail(mut f, reason) | StepEnd::Unreached(mut f, reason, _) => {
            f.index = index;
            result.failed_step = Some(f);
            result.level = Some(judged.level);
            result.quote.clone_from(&judged.quote);
            Some(judged.verdict(format!(
                "step {} ({kind}, {}): {reason}",
                index + 1,
                judged.level
            )))
        }
        StepEnd::Settled(v) => Some(v),
        StepEnd::FailRule {
            mut failed,
            reason,
            quote,
        } => {
            failed.index = index;
            result.failed_step = Some(failed);
            result.level = Some(crate::scenario::Requirement::MUST);
            result.quote = Some(quote);
            Some(Verdict::Fail {
                reason: format!("step {} ({kind}, MUST): {reason}", index + 1),
            })
        }
        StepEnd::Skip(reason) => Some(Verdict::Skip {
            reason: format!("step {} ({kind}): {reason}", index + 1),
        }),
        StepEnd::Error(reason) => Some(Verdict::Error {
            reason: format!("step {} ({kind}): {reason}", index + 1),
        }),
    }
}

/// The scenario's verdict once its steps ran: a pass becomes non-strict when an
/// accepted alternative matched on the way, or info when only reference-level ones did;
/// a verdict that ended the run keeps the earlier notes in front of its own.
pub(crate) fn settle(verdict: Verdict, notes: &Notes) -> Verdict {
    let joined = |list: &[String], own: Option<String>| {
        let mut all = list.to_vec();
        all.extend(own);
        all.join("; ")
    };
    match verdict {
        Verdict::Pass if !notes.non_strict.is_empty() => Verdict::NonStrict {
            note: joined(&notes.non_strict, None),
        },
        Verdict::Pass if !notes.info.is_empty() => Verdict::Info {
            note: joined(&notes.info, None),
        },
        Verdict::NonStrict { note } if !notes.non_strict.is_empty() => Verdict::NonStrict {
            note: joined(&notes.non_strict, Some(note)),
        },
        Verdict::Info { note } if !notes.info.is_empty() => Verdict::Info {
            note: joined(&notes.info, Some(note)),
        },
        other => other,
    }
}
