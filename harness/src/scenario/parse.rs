//! Scenario parsing: YAML → [`ScenarioFile`] → validated [`Scenario`].
//!
//! Every error names the file and, when it can be known, the line and column, and says
//! what was expected. Nothing here panics on any input; files are bounded in size.

use std::fmt;
use std::path::Path;

use super::model::{Expect, Role, Scenario, ScenarioFile, Step, StepRole};
use super::transcript::{self, TranscriptError};
use super::vars::{self, VarError};

/// The largest scenario file accepted.
pub const MAX_FILE_SIZE: usize = 1024 * 1024;

/// A scenario that cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file (or bundled name).
    pub path: String,
    /// 1-based, when known.
    pub line: Option<usize>,
    /// 1-based, when known.
    pub column: Option<usize>,
    pub kind: LoadErrorKind,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// The file could not be read.
    Io(String),
    /// YAML syntax, a misspelt key, a wrong type, a missing field, a bad clause…: the
    /// message is serde's, with the path to the value (`steps[2].expect`).
    Yaml(String),
    /// The YAML parsed but breaks a scenario rule.
    Invalid(ValidationError),
}

/// A scenario rule broken by a file that parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationError {
    /// Both `steps` and `transcript` are given.
    BothStepsAndTranscript,
    /// Neither `steps` nor `transcript` is given.
    NoSteps,
    /// `steps: []`.
    EmptySteps,
    /// The id is empty or has white space or characters outside `[A-Za-z0-9._/-]`.
    BadId { id: String },
    /// The title is empty.
    EmptyTitle,
    /// Two scenarios in one set share an id.
    DuplicateId { id: String, first: String },
    /// A server-role step (reply, expect_command, …) in a client-role scenario, or the
    /// reverse.
    WrongRole {
        step: usize,
        kind: &'static str,
        role: Role,
    },
    /// An `expect` (also inside `auth`, `starttls`, or an alternative) with no condition.
    EmptyExpect { step: usize },
    /// A check at the MUST or MUST NOT level with no `quote` of the RFC sentence it
    /// enforces, on the step or the scenario: a fail must say which sentence was broken.
    MustWithoutQuote { step: Option<usize> },
    /// An alternative with alternatives of its own.
    NestedAlternatives { step: usize },
    /// `note` on a primary expectation, where it would never be shown.
    NoteOutsideAlternative { step: usize },
    /// `expect_command` / `expect_response` with no condition.
    EmptyCondition { step: usize, kind: &'static str },
    /// `sasl` without exactly one of `send`, `base64_of`, `cancel`.
    SaslForm { step: usize },
    /// A `challenge` with `bare: true` and a challenge text, or both `base64` and `encode`.
    ChallengeForm { step: usize },
    /// A non-raw `send` or `pipeline` line with a CR or LF in it: the line would be sent
    /// with a different framing than written; use `raw: true`.
    LineBreakInLine { step: usize },
    /// A raw string with a bad escape, or bad hex.
    BadBytes { step: usize, message: String },
    /// A `${…}` with bad syntax or an unknown filter.
    BadVariable {
        step: Option<usize>,
        error: Box<VarError>,
    },
    /// A mechanism name that RFC 4422 §3.1 does not allow (1–20 of `A-Z 0-9 - _`).
    BadMechanism { step: usize, name: String },
    /// `pipeline: []`.
    EmptyPipeline { step: usize },
    /// The transcript does not compile.
    Transcript(TranscriptError),
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ValidationError as V;
        match self {
            V::BothStepsAndTranscript => {
                f.write_str("both `steps` and `transcript` are given; use one of them")
            }
            V::NoSteps => f.write_str("missing `steps` or `transcript`"),
            V::EmptySteps => f.write_str("`steps` is empty"),
            V::BadId { id } => write!(
                f,
                "bad id {id:?}: use letters, digits, `.`, `_`, `-` and `/`, e.g. `rfc4954/auth-plain`"
            ),
            V::EmptyTitle => f.write_str("the title is empty"),
            V::DuplicateId { id, first } => {
                write!(f, "id `{id}` is already used by {first}")
            }
            V::WrongRole { step, kind, role } => {
                let role = match role {
                    Role::Client => "client",
                    Role::Server => "server",
                };
                write!(
                    f,
                    "step {step}: `{kind}` cannot be used in a {role}-role scenario (see `role:`)"
                )
            }
            V::MustWithoutQuote { step } => {
                let at = step.map_or_else(|| "the scenario".to_owned(), |s| format!("step {s}"));
                write!(
                    f,
                    "{at} judges at the MUST level but no `quote:` gives the RFC sentence it \
                     enforces; add `quote:` (the sentence, with its RFC and section) to the \
                     scenario or the step, or lower the `level:`"
                )
            }
            V::EmptyExpect { step } => write!(
                f,
                "step {step}: an expectation needs at least one condition (code, enhanced, text, …)"
            ),
            V::NestedAlternatives { step } => {
                write!(f, "step {step}: an alternative cannot have alternatives")
            }
            V::NoteOutsideAlternative { step } => write!(
                f,
                "step {step}: `note` and `end` belong inside an alternative, where they explain the verdict and end the scenario"
            ),
            V::EmptyCondition { step, kind } => {
                write!(f, "step {step}: `{kind}` needs at least one condition")
            }
            V::SaslForm { step } => write!(
                f,
                "step {step}: `sasl` needs exactly one of `send`, `base64_of`, `cancel: true`"
            ),
            V::ChallengeForm { step } => write!(
                f,
                "step {step}: `challenge` takes one of `base64` and `encode`, and `bare: true` only without text"
            ),
            V::LineBreakInLine { step } => write!(
                f,
                "step {step}: the line contains CR or LF; write them as escapes with `raw: true`"
            ),
            V::BadBytes { step, message } => write!(f, "step {step}: {message}"),
            V::BadVariable {
                step: Some(step),
                error,
            } => write!(f, "step {step}: {error}"),
            V::BadVariable { step: None, error } => write!(f, "{error}"),
            V::BadMechanism { step, name } => write!(
                f,
                "step {step}: {name:?} is not a SASL mechanism name (RFC 4422 §3.1: 1-20 of A-Z, 0-9, -, _)"
            ),
            V::EmptyPipeline { step } => write!(f, "step {step}: `pipeline` is empty"),
            V::Transcript(e) => write!(f, "{e}"),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        match &self.kind {
            LoadErrorKind::Io(m) | LoadErrorKind::Yaml(m) => f.write_str(m),
            LoadErrorKind::Invalid(v) => write!(f, "{v}"),
        }
    }
}

impl std::error::Error for LoadError {}

impl LoadError {
    fn invalid(path: &str, line: Option<usize>, error: ValidationError) -> LoadError {
        LoadError {
            path: path.to_owned(),
            line,
            column: line.map(|_| 1),
            kind: LoadErrorKind::Invalid(error),
        }
    }

    /// The validation rule broken, if that is what went wrong.
    pub fn validation(&self) -> Option<&ValidationError> {
        match &self.kind {
            LoadErrorKind::Invalid(v) => Some(v),
            _ => None,
        }
    }
}

/// serde_yaml's message ends with ` at line L column C`; the location is shown as a
/// `path:L:C:` prefix instead.
fn strip_location(message: &str) -> String {
    if let Some(pos) = message.rfind(" at line ") {
        let tail = &message[pos + " at line ".len()..];
        let mut words = tail.split(' ');
        let shape = (
            words.next().map(|w| w.bytes().all(|b| b.is_ascii_digit())),
            words.next(),
            words.next().map(|w| w.bytes().all(|b| b.is_ascii_digit())),
            words.next(),
        );
        if shape == (Some(true), Some("column"), Some(true), None) {
            return message[..pos].to_owned();
        }
    }
    message.to_owned()
}

/// The 1-based line of a top-level key, for errors about whole-file rules.
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

/// The 1-based line where step `index` (1-based) starts, found by the indentation of the
/// `- ` items under `steps:`. Best effort: flow-style lists give `None`.
fn step_line(text: &str, index: usize) -> Option<usize> {
    let start = key_line(text, "steps")?;
    let mut indent: Option<usize> = None;
    let mut count = 0;
    for (i, line) in text.lines().enumerate().skip(start) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let this_indent = line.len() - trimmed.len();
        if this_indent == 0 && !trimmed.starts_with('-') {
            return None;
        }
        if trimmed.starts_with("- ") || trimmed == "-" {
            match indent {
                None => indent = Some(this_indent),
                Some(ind) if ind != this_indent => continue,
                Some(_) => {}
            }
            count += 1;
            if count == index {
                return Some(i + 1);
            }
        }
    }
    None
}

/// Parses and validates one scenario file.
pub fn load_str(text: &str, path: &str) -> Result<Scenario, LoadError> {
    if text.len() > MAX_FILE_SIZE {
        return Err(LoadError {
            path: path.to_owned(),
            line: None,
            column: None,
            kind: LoadErrorKind::Io(format!("larger than {MAX_FILE_SIZE} bytes")),
        });
    }
    // Budgets first: serde_yaml has none for alias expansion in bytes, and deep
    // nesting costs it quadratic time.
    crate::input::check_yaml(text).map_err(|e| LoadError {
        path: path.to_owned(),
        line: e.location().map(|(l, _)| l),
        column: e.location().map(|(_, c)| c),
        kind: LoadErrorKind::Yaml(e.to_string()),
    })?;
    let file: ScenarioFile = serde_yaml::from_str(text).map_err(|e| {
        let location = e.location();
        LoadError {
            path: path.to_owned(),
            line: location.as_ref().map(serde_yaml::Location::line),
            column: location.as_ref().map(serde_yaml::Location::column),
            kind: LoadErrorKind::Yaml(strip_location(&e.to_string())),
        }
    })?;
    from_file(file, text, path)
}

/// Validates a parsed file; `text` is used only to find line numbers.
pub fn from_file(file: ScenarioFile, text: &str, path: &str) -> Result<Scenario, LoadError> {
    let id_ok = !file.id.is_empty()
        && file
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
    if !id_ok {
        return Err(LoadError::invalid(
            path,
            key_line(text, "id"),
            ValidationError::BadId { id: file.id },
        ));
    }
    if file.title.trim().is_empty() {
        return Err(LoadError::invalid(
            path,
            key_line(text, "title"),
            ValidationError::EmptyTitle,
        ));
    }
    let steps = match (file.steps, &file.transcript) {
        (Some(_), Some(_)) => {
            return Err(LoadError::invalid(
                path,
                key_line(text, "transcript"),
                ValidationError::BothStepsAndTranscript,
            ));
        }
        (None, None) => {
            return Err(LoadError::invalid(path, None, ValidationError::NoSteps));
        }
        (Some(steps), None) => {
            if steps.is_empty() {
                return Err(LoadError::invalid(
                    path,
                    key_line(text, "steps"),
                    ValidationError::EmptySteps,
                ));
            }
            steps
        }
        (None, Some(t)) => transcript::compile(t, file.role).map_err(|e| {
            let line = match &e {
                TranscriptError::NotADialogLine { line, .. } => {
                    key_line(text, "transcript").map(|k| k + line)
                }
                TranscriptError::Empty => key_line(text, "transcript"),
            };
            LoadError::invalid(path, line, ValidationError::Transcript(e))
        })?,
    };
    let from_transcript = file.transcript.is_some();
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        validate_step(step, n, file.role).map_err(|e| {
            let line = if from_transcript {
                key_line(text, "transcript")
            } else {
                step_line(text, n)
            };
            LoadError::invalid(path, line, e)
        })?;
    }
    if let Some(bad) = file
        .for_each_mechanism
        .iter()
        .find(|m| m.contains("${") || !mechanism_ok(m))
    {
        return Err(LoadError::invalid(
            path,
            key_line(text, "for_each_mechanism"),
            ValidationError::BadMechanism {
                step: 0,
                name: bad.clone(),
            },
        ));
    }
    for value in file.vars.values() {
        vars::check_syntax(value).map_err(|error| {
            LoadError::invalid(
                path,
                key_line(text, "vars"),
                ValidationError::BadVariable {
                    step: None,
                    error: Box::new(error),
                },
            )
        })?;
    }
    let scenario = Scenario {
        path: path.to_owned(),
        id: file.id,
        title: file.title,
        spec: file.spec,
        tags: file.tags,
        requires: file.requires,
        level: file.level,
        quote: file.quote,
        profile: file.profile,
        role: file.role,
        vars: file.vars,
        transcript: file.transcript,
        for_each_mechanism: file.for_each_mechanism,
        steps,
    };
    check_quotes(&scenario).map_err(|e| LoadError::invalid(path, key_line(text, "spec"), e))?;
    Ok(scenario)
}

/// Every check that can fail a peer names the RFC sentence it enforces (DESIGN.md,
/// "Verdicts people can trust").
fn check_quotes(sc: &Scenario) -> Result<(), ValidationError> {
    let has_quote = |q: Option<&str>| q.is_some_and(|q| !q.trim().is_empty());
    let scenario_quote = has_quote(sc.quote.as_deref());
    for (i, step) in sc.steps().iter().enumerate() {
        let (level, quote) = step.own_level();
        let judges = !matches!(
            step,
            Step::Send(_)
                | Step::SendBytes(_)
                | Step::Pipeline(_)
                | Step::Sasl(_)
                | Step::Wait(_)
                | Step::Reply(_)
                | Step::Challenge(_)
        );
        if judges
            && level.unwrap_or_else(|| sc.level()).is_absolute()
            && !has_quote(quote)
            && !scenario_quote
        {
            return Err(ValidationError::MustWithoutQuote {
                step: level.map(|_| i + 1),
            });
        }
    }
    Ok(())
}

fn mechanism_ok(name: &str) -> bool {
    // A `${var}` is checked when expanded; only literal names are checked here.
    name.contains("${")
        || ((1..=20).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')))
}

fn validate_expect(e: &Expect, step: usize, is_alternative: bool) -> Result<(), ValidationError> {
    if !e.has_condition() {
        return Err(ValidationError::EmptyExpect { step });
    }
    if is_alternative && !e.alternatives.is_empty() {
        return Err(ValidationError::NestedAlternatives { step });
    }
    if !is_alternative && (e.note.is_some() || e.end) {
        return Err(ValidationError::NoteOutsideAlternative { step });
    }
    for alt in &e.alternatives {
        validate_expect(alt, step, true)?;
    }
    Ok(())
}

fn validate_step(step: &Step, n: usize, role: Role) -> Result<(), ValidationError> {
    let allowed = match step.role() {
        StepRole::Either => true,
        StepRole::Client => role == Role::Client,
        StepRole::Server => role == Role::Server,
    };
    if !allowed {
        return Err(ValidationError::WrongRole {
            step: n,
            kind: step.kind(),
            role,
        });
    }
    let bad_bytes = |e: super::bytes::EscapeError| ValidationError::BadBytes {
        step: n,
        message: e.to_string(),
    };
    match step {
        Step::Send(s) => {
            if !s.raw() && s.line().contains(['\r', '\n']) {
                return Err(ValidationError::LineBreakInLine { step: n });
            }
            if s.raw() {
                super::bytes::unescape(s.line()).map_err(bad_bytes)?;
            }
        }
        Step::SendBytes(b) => {
            b.bytes().map_err(bad_bytes)?;
        }
        Step::Pipeline(lines) => {
            if lines.is_empty() {
                return Err(ValidationError::EmptyPipeline { step: n });
            }
            if lines.iter().any(|l| l.contains(['\r', '\n'])) {
                return Err(ValidationError::LineBreakInLine { step: n });
            }
        }
        Step::Expect(e) => validate_expect(e, n, false)?,
        Step::Auth(a) => {
            if !mechanism_ok(&a.mechanism) {
                return Err(ValidationError::BadMechanism {
                    step: n,
                    name: a.mechanism.clone(),
                });
            }
            if let Some(e) = &a.expect {
                validate_expect(e, n, false)?;
            }
        }
        Step::Sasl(s) => {
            if s.forms() != 1 {
                return Err(ValidationError::SaslForm { step: n });
            }
            for v in [&s.send, &s.base64_of].into_iter().flatten() {
                super::bytes::unescape(v).map_err(bad_bytes)?;
            }
        }
        Step::Starttls(s) => {
            if let Some(e) = &s.expect {
                validate_expect(e, n, false)?;
            }
        }
        Step::ExpectCommand(c) => {
            if !c.has_condition() {
                return Err(ValidationError::EmptyCondition {
                    step: n,
                    kind: "expect_command",
                });
            }
        }
        Step::ExpectResponse(r) => {
            if !r.has_condition() {
                return Err(ValidationError::EmptyCondition {
                    step: n,
                    kind: "expect_response",
                });
            }
        }
        Step::Challenge(super::model::Challenge::Options(o)) => {
            let has_text = o.base64.is_some() || o.encode.is_some();
            if (o.base64.is_some() && o.encode.is_some()) || (o.bare && has_text) {
                return Err(ValidationError::ChallengeForm { step: n });
            }
        }
        Step::ExpectAuth(a) => {
            if !mechanism_ok(&a.mechanism) {
                return Err(ValidationError::BadMechanism {
                    step: n,
                    name: a.mechanism.clone(),
                });
            }
        }
        Step::Challenge(_)
        | Step::ExpectClose(_)
        | Step::ExpectSmuggling(_)
        | Step::Wait(_)
        | Step::Quit(_)
        | Step::Reply(_)
        | Step::ExpectClientClose(_)
        | Step::AcceptStarttls(_)
        | Step::ExpectExit(_)
        | Step::ExpectNoCommand(_) => {}
    }
    // Variable syntax everywhere, so a typo in a filter fails at load time.
    let mut copy = step.clone();
    let mut result = Ok(());
    copy.strings_mut(&mut |s, _| {
        if result.is_ok() {
            result = vars::check_syntax(s);
        }
    });
    result.map_err(|error| ValidationError::BadVariable {
        step: Some(n),
        error: Box::new(error),
    })
}

/// Checks rules that span a set of scenarios: ids are unique.
pub fn validate_set(scenarios: &[Scenario]) -> Vec<LoadError> {
    let mut seen: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
    let mut errors = Vec::new();
    for s in scenarios {
        if let Some(first) = seen.insert(&s.id, &s.path) {
            errors.push(LoadError::invalid(
                &s.path,
                None,
                ValidationError::DuplicateId {
                    id: s.id.clone(),
                    first: first.to_owned(),
                },
            ));
            seen.insert(&s.id, first);
        }
    }
    errors
}

/// Loads every `*.yaml` / `*.yml` under `dir`, recursively, sorted by path. What the
/// walk skips (see [`load_dir_reporting`]) is reported on standard error.
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, Vec<LoadError>> {
    let (result, skipped) = load_dir_reporting(dir);
    for s in skipped {
        eprintln!("authspec: warning: {s}");
    }
    result
}

/// [`load_dir`], returning what the walk skipped instead of printing it. The walk
/// never leaves the tree: a symbolic link is followed only to a regular file inside
/// `dir`, never to a directory (no loops); FIFOs, devices and sockets are skipped
/// without being opened; each file is read with a bound of [`MAX_FILE_SIZE`]. A
/// skipped file's content is never read, so it cannot appear in a message.
pub fn load_dir_reporting(dir: &Path) -> (Result<Vec<Scenario>, Vec<LoadError>>, Vec<String>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut skipped = Vec::new();
    match dir.canonicalize() {
        Ok(root) => collect(dir, &root, &mut files, &mut errors, &mut skipped, 0),
        Err(e) => errors.push(LoadError {
            path: dir.display().to_string(),
            line: None,
            column: None,
            kind: LoadErrorKind::Io(e.to_string()),
        }),
    }
    files.sort();
    let mut texts = Vec::new();
    for f in &files {
        let name = f.display().to_string();
        match crate::input::read_text(f, MAX_FILE_SIZE) {
            Ok(t) => texts.push((name, t)),
            Err(e) => errors.push(LoadError {
                path: name,
                line: None,
                column: None,
                kind: LoadErrorKind::Io(e.to_string()),
            }),
        }
    }
    let borrowed: Vec<(&str, &str)> = texts
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let result = match load_embedded(&borrowed) {
        Ok(scenarios) if errors.is_empty() => Ok(scenarios),
        Ok(_) => Err(errors),
        Err(mut more) => {
            errors.append(&mut more);
            Err(errors)
        }
    };
    (result, skipped)
}

/// Directory depth bound.
const MAX_DEPTH: usize = 32;
/// The most entries a walk looks at, so a huge tree ends with an error, not a hang.
const MAX_ENTRIES: usize = 100_000;

fn collect(
    dir: &Path,
    root: &Path,
    files: &mut Vec<std::path::PathBuf>,
    errors: &mut Vec<LoadError>,
    skipped: &mut Vec<String>,
    depth: usize,
) {
    let io_error = |e: std::io::Error| LoadError {
        path: dir.display().to_string(),
        line: None,
        column: None,
        kind: LoadErrorKind::Io(e.to_string()),
    };
    if depth > MAX_DEPTH {
        errors.push(io_error(std::io::Error::other(
            "directories nested too deep",
        )));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(io_error(e));
            return;
        }
    };
    for entry in entries {
        if files.len() + skipped.len() >= MAX_ENTRIES {
            errors.push(io_error(std::io::Error::other(format!(
                "more than {MAX_ENTRIES} entries"
            ))));
            return;
        }
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                errors.push(io_error(e));
                continue;
            }
        };
        let path = entry.path();
        let is_scenario_name = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        // lstat: the entry itself, not what a link points to.
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                errors.push(io_error(e));
                continue;
            }
        };
        let file_type = meta.file_type();
        if file_type.is_dir() {
            collect(&path, root, files, errors, skipped, depth + 1);
            continue;
        }
        if depth == 0
            && path
                .file_name()
                .is_some_and(|n| n == crate::coverage::CATALOG_FILE)
        {
            // The coverage catalog at the top of a library is not a scenario.
            continue;
        }
        if !is_scenario_name {
            continue;
        }
        if file_type.is_symlink() {
            match path.canonicalize() {
                Ok(target) if !target.starts_with(root) => {
                    skipped.push(format!(
                        "{}: skipped: a symbolic link out of {}",
                        path.display(),
                        root.display()
                    ));
                }
                Ok(target) => match std::fs::metadata(&target) {
                    Ok(m) if m.is_file() => files.push(path),
                    Ok(m) => skipped.push(format!(
                        "{}: skipped: a symbolic link to {}",
                        path.display(),
                        crate::input::file_kind(&m)
                    )),
                    Err(e) => errors.push(io_error(e)),
                },
                Err(e) => skipped.push(format!(
                    "{}: skipped: a symbolic link that does not resolve ({e})",
                    path.display()
                )),
            }
        } else if file_type.is_file() {
            files.push(path);
        } else {
            skipped.push(format!(
                "{}: skipped: {}, not a regular file",
                path.display(),
                crate::input::file_kind(&meta)
            ));
        }
    }
}

/// Loads scenarios given as (path, text) pairs, such as [`super::BUNDLED`]; the result
/// is sorted by path.
pub fn load_embedded(files: &[(&str, &str)]) -> Result<Vec<Scenario>, Vec<LoadError>> {
    let mut sorted: Vec<&(&str, &str)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for (path, text) in sorted {
        match load_str(text, path) {
            Ok(s) => scenarios.push(s),
            Err(e) => errors.push(e),
        }
    }
    errors.extend(validate_set(&scenarios));
    if errors.is_empty() {
        Ok(scenarios)
    } else {
        Err(errors)
    }
}
