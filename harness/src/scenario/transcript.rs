//! The `S:`/`C:` transcript shorthand, as RFC 4954 §4 and the Postfix SMTP AUTH guide
//! write dialogs, compiled into the same [`Step`]s as the long form.
//!
//! Rules:
//! - Blank lines and lines starting with `#` are ignored; a line-number prefix such as
//!   `01:` (the Postfix guide's style) is dropped.
//! - After `S:` or `C:` one space is dropped; the rest of the line is taken verbatim
//!   (trailing spaces too: `S: 334 ` is a 334 with a space and an empty challenge).
//! - Consecutive `S:` lines form one reply as long as they continue it: a line whose
//!   fourth character is `-` (RFC 5321 §4.2.1) is followed by more of the same reply, so
//!   `S: 354 …` then `S: 250 …` are two replies.
//! - Client role (the harness is the client): `C:` lines are sent, `S:` replies become
//!   `expect: { reply_lines: […] }` with glob patterns (see [`super::pattern`]).
//! - Server role: `S:` replies are sent, `C:` lines become
//!   `expect_command: { line: <glob> }`.

use std::fmt;

use super::model::{Expect, ExpectCommand, Reply, Role, Send, Step};

/// A transcript line that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TranscriptError {
    /// A line that is not `S: …` or `C: …`.
    NotADialogLine { line: usize, text: String },
    /// No `S:` or `C:` line at all.
    Empty,
}

impl fmt::Display for TranscriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TranscriptError::NotADialogLine { line, text } => write!(
                f,
                "transcript line {line}: expected `S: …` or `C: …` (optionally numbered `01:`), found {text:?}"
            ),
            TranscriptError::Empty => f.write_str("the transcript has no `S:` or `C:` line"),
        }
    }
}

impl std::error::Error for TranscriptError {}

/// Who speaks a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    Server,
    Client,
}

/// Splits a transcript into (line number, speaker, text).
pub fn parse(transcript: &str) -> Result<Vec<(usize, Speaker, String)>, TranscriptError> {
    let mut out = Vec::new();
    for (i, raw) in transcript.lines().enumerate() {
        let number = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start();
        if trimmed.trim_end().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = strip_numbering(trimmed);
        let (speaker, rest) = if let Some(rest) = body.strip_prefix("S:") {
            (Speaker::Server, rest)
        } else if let Some(rest) = body.strip_prefix("C:") {
            (Speaker::Client, rest)
        } else {
            return Err(TranscriptError::NotADialogLine {
                line: number,
                text: line.to_owned(),
            });
        };
        let text = rest.strip_prefix(' ').unwrap_or(rest);
        out.push((number, speaker, text.to_owned()));
    }
    if out.is_empty() {
        return Err(TranscriptError::Empty);
    }
    Ok(out)
}

/// Drops `01:` / `23: ` numbering.
fn strip_numbering(line: &str) -> &str {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return line;
    }
    match line[digits..].strip_prefix(':') {
        Some(rest) => rest.trim_start(),
        None => line,
    }
}

/// Whether a reply line says more lines of the same reply follow (`NNN-`).
fn continues(line: &str) -> bool {
    line.as_bytes().get(3) == Some(&b'-')
}

/// Compiles a transcript into steps for the given role.
pub fn compile(transcript: &str, role: Role) -> Result<Vec<Step>, TranscriptError> {
    let lines = parse(transcript)?;
    let mut steps = Vec::new();
    let mut reply: Vec<String> = Vec::new();
    let flush = |reply: &mut Vec<String>, steps: &mut Vec<Step>| {
        if reply.is_empty() {
            return;
        }
        let lines = std::mem::take(reply);
        steps.push(match role {
            Role::Client => Step::Expect(Expect {
                reply_lines: lines,
                ..Expect::default()
            }),
            Role::Server => Step::Reply(Reply::Text(lines.join("\n"))),
        });
    };
    for (_, speaker, text) in lines {
        match speaker {
            Speaker::Server => {
                reply.push(text);
                if !continues(reply.last().map(String::as_str).unwrap_or("")) {
                    flush(&mut reply, &mut steps);
                }
            }
            Speaker::Client => {
                flush(&mut reply, &mut steps);
                steps.push(match role {
                    Role::Client => Step::Send(Send::Line(text)),
                    Role::Server => Step::ExpectCommand(ExpectCommand {
                        line: Some(text),
                        ..ExpectCommand::default()
                    }),
                });
            }
        }
    }
    flush(&mut reply, &mut steps);
    Ok(steps)
}
