//! The report for people, grouped by RFC section like h2spec:
//!
//! ```text
//! RFC4954 §4
//!   ✔ rfc4954/auth-plain-initial-response — AUTH PLAIN with an initial response…
//!   ~ rfc4954/auth-unknown-mechanism — … (non-strict: Postfix answers 535)
//!   i rfc4954/… — … (info: differs from the reference where the RFC leaves the choice)
//!   ✘ rfc4954/… — …
//!   - rfc4954/… — … (skipped: target does not offer CRAM-MD5)
//!   ! rfc4954/… — … (error: connection refused)
//! ```
//!
//! then the failures in detail (expected step, actual reply, transcript up to the
//! failure), then one summary line. Colour only when asked: the CLI decides from
//! `NO_COLOR` and whether stdout is a terminal.

use std::fmt::Write as _;
use std::io;

use super::{RunReport, ScenarioResult, Verdict, human_duration};

struct Paint {
    color: bool,
}

impl Paint {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn green(&self, t: &str) -> String {
        self.paint("32", t)
    }
    fn red(&self, t: &str) -> String {
        self.paint("31", t)
    }
    fn yellow(&self, t: &str) -> String {
        self.paint("33", t)
    }
    fn magenta(&self, t: &str) -> String {
        self.paint("35", t)
    }
    fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
    fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
}

fn result_line(r: &ScenarioResult, p: &Paint) -> String {
    let head = format!("{} — {}", r.id, r.title);
    let mut line = match &r.verdict {
        Verdict::Pass => format!("{} {head}", p.green("✔")),
        Verdict::NonStrict { note } => {
            format!(
                "{} {head} {}",
                p.yellow("~"),
                p.yellow(&format!("(non-strict: {note})"))
            )
        }
        Verdict::Info { note } => {
            format!(
                "{} {head} {}",
                p.dim("i"),
                p.dim(&format!("(info: {note})"))
            )
        }
        Verdict::Fail { .. } => match &r.known_deviation {
            Some(reason) => format!(
                "{} {head} {}",
                p.yellow("✘"),
                p.yellow(&format!("[known deviation: {reason}]"))
            ),
            None => format!("{} {head}", p.red("✘")),
        },
        Verdict::Skip { reason } => {
            format!(
                "{} {}",
                p.dim("-"),
                p.dim(&format!("{head} (skipped: {reason})"))
            )
        }
        Verdict::Error { reason } => {
            format!(
                "{} {head} {}",
                p.magenta("!"),
                p.magenta(&format!("(error: {reason})"))
            )
        }
    };
    if let Some(reason) = &r.unexpected_pass {
        line.push_str(&format!(
            " {}",
            p.yellow(&format!(
                "[unexpectedly passing — remove from expectations: {reason}]"
            ))
        ));
    }
    line
}

fn details(r: &ScenarioResult, out: &mut String) {
    let _ = writeln!(out, "  file: {}", r.path);
    if !r.spec.is_empty() {
        let spec: Vec<String> = r.spec.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "  spec: {}", spec.join(", "));
    }
    if let Some(reason) = r.verdict.reason() {
        let _ = writeln!(out, "  reason: {reason}");
    }
    if let Some(q) = &r.quote {
        let _ = writeln!(out, "  requirement: {q}");
    }
    if let Some(f) = &r.failed_step {
        let _ = writeln!(out, "  step {} expected: {}", f.index, f.expected);
        let _ = writeln!(out, "  actual:");
        if f.actual.is_empty() {
            let _ = writeln!(out, "    (nothing)");
        }
        for line in f.actual.lines() {
            let _ = writeln!(out, "    {}", elide(line));
        }
    }
    if let Some(c) = &r.client {
        client_output(c, out);
    }
    if !r.transcript.is_empty() {
        let _ = writeln!(out, "  transcript:");
        for t in &r.transcript {
            let _ = writeln!(out, "    {}: {}", t.dir.prefix(), elide(&t.text));
        }
    }
    if let Some(log) = &r.server_log {
        let _ = writeln!(out, "  server log (embedded reference server):");
        for line in log.lines() {
            let _ = writeln!(out, "    | {}", elide(line));
        }
    }
}

/// Lines longer than this are shown as their start and their length.
pub const MAX_SHOWN_LINE: usize = 200;

/// A long line (a 12 KB SASL response) as its first [`MAX_SHOWN_LINE`] characters and
/// its length, so a report stays readable.
pub fn elide(line: &str) -> std::borrow::Cow<'_, str> {
    if line.len() <= MAX_SHOWN_LINE {
        return line.into();
    }
    let mut end = MAX_SHOWN_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} octets in all)", &line[..end], line.len()).into()
}

/// The client command's own words: how it ended, then its output.
fn client_output(c: &super::ClientOutput, out: &mut String) {
    let _ = writeln!(out, "  client command: {}", c.command);
    let _ = writeln!(out, "  client ended: {}", c.exit);
    for (name, stream) in [("stdout", &c.stdout), ("stderr", &c.stderr)] {
        if stream.is_empty() {
            let _ = writeln!(out, "  client {name}: (empty)");
            continue;
        }
        let _ = writeln!(out, "  client {name}:");
        for line in stream.shown().lines() {
            let _ = writeln!(out, "    | {line}");
        }
    }
}

/// Renders the report as text. All of it passes through [`RunReport::mask`].
pub fn render(report: &RunReport, color: bool) -> String {
    let p = Paint { color };
    let mut out = String::new();
    let _ = writeln!(out, "authspec: {}", report.target);
    for (group, results) in report.grouped() {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", p.bold(&group));
        for r in results {
            let _ = writeln!(out, "  {}", result_line(r, &p));
        }
    }

    let failing: Vec<&ScenarioResult> = report.results.iter().filter(|r| r.is_failing()).collect();
    if !failing.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", p.bold("Failures"));
        for r in failing {
            let _ = writeln!(out);
            let mark = match r.verdict {
                Verdict::Error { .. } => p.magenta("!"),
                _ => p.red("✘"),
            };
            let _ = writeln!(out, "{mark} {} — {}", r.id, r.title);
            details(r, &mut out);
        }
    }

    let stale: Vec<&ScenarioResult> = report
        .results
        .iter()
        .filter(|r| r.unexpected_pass.is_some())
        .collect();
    if !stale.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}",
            p.yellow("Unexpectedly passing — remove from the expectations file:")
        );
        for r in stale {
            let _ = writeln!(out, "  {}", r.id);
        }
    }

    let summary = report.summary();
    let line = format!("{summary} in {}", human_duration(report.duration));
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{}",
        if report.exit_code() == 0 {
            p.green(&line)
        } else {
            p.red(&line)
        }
    );
    report.mask(&out)
}

/// Writes [`render`] to `out`.
pub fn write(report: &RunReport, out: &mut dyn io::Write, color: bool) -> io::Result<()> {
    out.write_all(render(report, color).as_bytes())
}
