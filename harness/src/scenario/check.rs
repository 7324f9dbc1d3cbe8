//! Judging what the peer sent against a step's conditions.
//!
//! These functions take the peer's lines as text (CRLF removed, non-UTF-8 bytes already
//! shown by the runner) and say pass, non-strict or fail, with the expected and actual
//! text that reports show. They do no IO, so the runner and the tests share them.

use base64::Engine as _;

use super::model::{CapabilityCheck, Expect, ExpectCommand, ExpectResponse};
use super::pattern::Glob;

/// The result of checking a reply or a client line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// An alternative matched; `note` says why it is acceptable.
    NonStrict {
        note: String,
    },
    /// An alternative marked `level: reference` or `MAY` matched: a choice the RFC
    /// leaves to the peer.
    Info {
        note: String,
    },
    /// Nothing matched: what was expected, what came, and the first condition that failed.
    Fail {
        expected: String,
        actual: String,
        reason: String,
    },
}

impl Outcome {
    /// Whether the step may go on (pass or non-strict).
    pub fn is_acceptable(&self) -> bool {
        !matches!(self, Outcome::Fail { .. })
    }
}

/// The first condition of a step that the peer's reply or line did not meet, with what
/// came instead. Reports show it as the step's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    NoReply,
    Code {
        code: u16,
        spec: String,
    },
    NoReplyCode {
        line: String,
    },
    Enhanced {
        found: String,
        pattern: String,
    },
    /// RFC 2034 §4 asks for the code in every 2xx, 4xx and 5xx line once advertised.
    EnhancedMissing {
        pattern: String,
    },
    Text {
        pattern: String,
    },
    FirstLine {
        line: String,
        pattern: String,
    },
    /// `reply_lines` gave one pattern, so the reply is single-line.
    NotSingleLine {
        lines: usize,
    },
    NotMultiLine {
        wanted: usize,
    },
    NoLineMatches {
        pattern: String,
    },
    Advertised {
        keyword: String,
    },
    NotAdvertised {
        keyword: String,
    },
    NotListed {
        keyword: String,
        param: String,
    },
    LineCount {
        lines: usize,
        wanted: usize,
    },
    NoChallenge {
        line: String,
    },
    DecodedChallenge {
        shown: String,
        pattern: String,
    },
    NotBare334 {
        line: String,
    },
    Not334WithChallenge {
        line: String,
    },
    Verb {
        verb: String,
        wanted: String,
    },
    Args {
        args: String,
        pattern: String,
    },
    Line {
        pattern: String,
    },
    NotAuth {
        mechanism: String,
    },
    NotCancelled,
    Response {
        pattern: String,
    },
    /// RFC 4648 §4.
    ResponseNotBase64,
    DecodedResponse {
        shown: String,
        pattern: String,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Peer text is quoted with its control characters escaped, so a hostile reply
        // cannot rewrite the report line it appears in.
        match self {
            Mismatch::NoReply => f.write_str("no reply"),
            Mismatch::Code { code, spec } => write!(f, "code {code} is not {spec}"),
            Mismatch::NoReplyCode { line } => {
                write!(f, "{line:?} does not start with a reply code")
            }
            Mismatch::Enhanced { found, pattern } => {
                write!(f, "enhanced code {found} does not match {pattern}")
            }
            Mismatch::EnhancedMissing { pattern } => write!(
                f,
                "no enhanced status code (wanted {pattern}) although \
                 ENHANCEDSTATUSCODES was advertised; RFC 2034 §4: \"These codes must \
                 appear in all 2xx, 4xx, and 5xx response lines other than initial \
                 greeting and any response to HELO or EHLO\""
            ),
            Mismatch::Text { pattern } => write!(f, "no line's text matches {pattern:?}"),
            Mismatch::FirstLine { line, pattern } => {
                write!(f, "line {line:?} does not match {pattern}")
            }
            Mismatch::NotSingleLine { lines } => write!(f, "{lines} lines, not 1"),
            Mismatch::NotMultiLine { wanted } => write!(
                f,
                "1 line, not at least {wanted} (a multi-line reply was expected)"
            ),
            Mismatch::NoLineMatches { pattern } => write!(f, "no line matches {pattern}"),
            Mismatch::Advertised { keyword } => write!(f, "{keyword} is advertised"),
            Mismatch::NotAdvertised { keyword } => write!(f, "{keyword} is not advertised"),
            Mismatch::NotListed { keyword, param } => {
                write!(f, "{keyword} does not list {param}")
            }
            Mismatch::LineCount { lines, wanted } => write!(f, "{lines} line(s), not {wanted}"),
            Mismatch::NoChallenge { line } => {
                write!(f, "{line:?} does not carry a base64 challenge")
            }
            Mismatch::DecodedChallenge { shown, pattern } => write!(
                f,
                "decoded challenge \"{shown}\" does not match {pattern:?}"
            ),
            Mismatch::NotBare334 { line } => write!(f, "{line:?} is not a bare `334`"),
            Mismatch::Not334WithChallenge { line } => {
                write!(f, "{line:?} is not `334 ` followed by the challenge")
            }
            Mismatch::Verb { verb, wanted } => write!(f, "verb {verb:?} is not {wanted}"),
            Mismatch::Args { args, pattern } => {
                write!(f, "arguments {args:?} do not match {pattern:?}")
            }
            Mismatch::Line { pattern } => write!(f, "line does not match {pattern:?}"),
            Mismatch::NotAuth { mechanism } => write!(f, "not AUTH {mechanism}"),
            Mismatch::NotCancelled => f.write_str("the client did not cancel with `*`"),
            Mismatch::Response { pattern } => write!(f, "response does not match {pattern:?}"),
            Mismatch::ResponseNotBase64 => {
                f.write_str("response is not valid base64 (RFC 4648 §4)")
            }
            Mismatch::DecodedResponse { shown, pattern } => {
                write!(f, "decoded response \"{shown}\" does not match {pattern:?}")
            }
        }
    }
}

impl std::error::Error for Mismatch {}

/// What the peer advertised in the session so far, which some conditions depend on.
/// A condition on something the peer never claimed to do holds vacuously: a server
/// that did not advertise ENHANCEDSTATUSCODES owes no enhanced codes (RFC 2034 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advertised {
    /// ENHANCEDSTATUSCODES was in the last EHLO reply.
    pub enhanced_status_codes: bool,
}

impl Advertised {
    /// What a condition may assume when nothing is known: everything it names.
    pub const ALL: Advertised = Advertised {
        enhanced_status_codes: true,
    };
}

/// A reply line split into its parts (RFC 5321 §4.2).
struct Line<'a> {
    code: Option<u16>,
    /// Text after `NNN ` or `NNN-`.
    text: &'a str,
}

fn split(line: &str) -> Line<'_> {
    let b = line.as_bytes();
    if b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) {
        let code = line[..3].parse().ok();
        let text = line.get(4..).unwrap_or("");
        Line { code, text }
    } else {
        Line {
            code: None,
            text: line,
        }
    }
}

/// The enhanced status code at the start of `text`, `class.subject.detail` (RFC 3463 §2).
fn enhanced_code(text: &str) -> Option<&str> {
    let word = text.split(' ').next()?;
    let parts: Vec<&str> = word.split('.').collect();
    let ok = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    ok.then_some(word)
}

/// Whether `word` is an enhanced status code or a glob for one (`5.7.*`).
fn is_enhanced_pattern(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit() || b == b'*')
        })
}

/// `text` without a leading enhanced status code (or a pattern for one).
fn without_enhanced(text: &str) -> &str {
    match text.split_once(' ') {
        Some((word, rest)) if is_enhanced_pattern(word) => rest,
        None if is_enhanced_pattern(text) => "",
        _ => text,
    }
}

/// A whole reply line (`535 5.7.8 text`) without its enhanced code: `535 text`.
fn line_without_enhanced(line: &str) -> String {
    let b = line.as_bytes();
    if b.len() >= 4 && b[..3].iter().all(|c| c.is_ascii_digit() || *c == b'*') {
        format!("{}{}", &line[..4], without_enhanced(&line[4..]))
    } else {
        line.to_owned()
    }
}

/// EHLO keywords and their parameters: every line but the first (RFC 5321 §4.1.1.1).
fn capabilities(lines: &[String]) -> Vec<(String, Vec<String>)> {
    lines
        .iter()
        .skip(1)
        .map(|l| {
            let mut words = split(l).text.split_ascii_whitespace();
            let first = words.next().unwrap_or("");
            // The pre-standard `AUTH=PLAIN LOGIN` line (Postfix broken_sasl_auth_clients)
            // is keyword `AUTH=` with the mechanisms as parameters, as the format
            // documents, so `AUTH=` can be checked present, absent or with a list.
            let (keyword, head) = match first.get(..5) {
                Some(k) if k.eq_ignore_ascii_case("AUTH=") => (k, first.get(5..).unwrap_or("")),
                _ => (first, ""),
            };
            let params = std::iter::once(head)
                .filter(|h| !h.is_empty())
                .chain(words)
                .map(str::to_owned)
                .collect();
            (keyword.to_owned(), params)
        })
        .collect()
}

impl Expect {
    /// One line saying what this expectation wants, for reports.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &self.code {
            parts.push(format!("code {c}"));
        }
        if let Some(e) = &self.enhanced {
            parts.push(format!("enhanced {e}"));
        }
        if let Some(t) = &self.text {
            parts.push(format!("text {t:?}"));
        }
        if !self.reply_lines.is_empty() {
            parts.push(format!("lines like {:?}", self.reply_lines));
        }
        for (k, check) in &self.capability {
            parts.push(match check {
                CapabilityCheck::Present => format!("capability {k}"),
                CapabilityCheck::Absent => format!("no capability {k}"),
                CapabilityCheck::With(params) => format!("capability {k} {}", params.join(" ")),
            });
        }
        for k in &self.capability_absent {
            parts.push(format!("no capability {k}"));
        }
        if let Some(n) = self.lines {
            parts.push(format!("{n} line(s)"));
        }
        if let Some(d) = &self.decoded {
            parts.push(format!("decoded challenge {d:?}"));
        }
        if let Some(name) = &self.same_as {
            parts.push(format!("the same lines as the reply kept as {name:?}"));
        }
        match self.bare_334 {
            Some(true) => parts.push("bare `334`".to_owned()),
            Some(false) => parts.push("`334 ` with a space".to_owned()),
            None => {}
        }
        let mut s = parts.join(", ");
        if !self.alternatives.is_empty() {
            let alts: Vec<String> = self.alternatives.iter().map(Expect::describe).collect();
            s.push_str(&format!(" (or, non-strict: {})", alts.join("; ")));
        }
        s
    }

    /// Checks a reply (its lines without CRLF), assuming the peer advertised
    /// everything the conditions name. The primary conditions give a pass; an
    /// alternative gives a non-strict verdict with its note.
    pub fn evaluate(&self, reply: &[String]) -> Outcome {
        self.evaluate_in(reply, Advertised::ALL)
    }

    /// [`Expect::evaluate`] for a peer that advertised `adv` in this session.
    pub fn evaluate_in(&self, reply: &[String], adv: Advertised) -> Outcome {
        match self.check_in(reply, adv) {
            Ok(()) => Outcome::Pass,
            Err(reason) if self.holds_but_for_enhanced_detail(reply, adv) => Outcome::NonStrict {
                note: format!(
                    "{reason}: the class is right; the subject and detail RFC 4954 names \
                     are a SHOULD (\"Servers using the enhanced status codes extension SHOULD \
                     return an enhanced status code of ...\")"
                ),
            },
            Err(reason) => {
                for (i, alt) in self.alternatives.iter().enumerate() {
                    if alt.check_in(reply, adv).is_ok() {
                        let note = alt.note.clone().unwrap_or_else(|| {
                            format!("accepted alternative {}: {}", i + 1, alt.describe())
                        });
                        return match alt.level.map(|l| l.consequence(false)) {
                            Some(super::model::Consequence::Info) => Outcome::Info { note },
                            _ => Outcome::NonStrict { note },
                        };
                    }
                }
                Outcome::Fail {
                    expected: self.describe(),
                    actual: reply.join("\n"),
                    reason: reason.to_string(),
                }
            }
        }
    }

    /// RFC 2034's rule for a peer that advertised ENHANCEDSTATUSCODES, whatever the
    /// scenario's level: the reply carries an enhanced code, and its class is the first
    /// digit of the reply code (RFC 3463 §2). The broken sentence, when it is broken and
    /// every other condition of this expectation holds.
    pub fn enhanced_rule_broken(&self, reply: &[String], adv: Advertised) -> Option<String> {
        let names_codes = self.enhanced.is_some()
            || self
                .reply_lines
                .iter()
                .any(|l| line_without_enhanced(l) != *l);
        if !names_codes || !adv.enhanced_status_codes {
            return None;
        }
        // Every other condition holds once enhanced codes are left out of it.
        self.check_in(
            reply,
            Advertised {
                enhanced_status_codes: false,
            },
        )
        .ok()?;
        let last = split(reply.last()?);
        let code = last.code?;
        match enhanced_code(last.text) {
            None => Some(
                "the server advertised ENHANCEDSTATUSCODES but this reply has no enhanced \
                 status code"
                    .to_owned(),
            ),
            Some(e) if !e.starts_with(char::from(b'0' + (code / 100) as u8)) => Some(format!(
                "enhanced code {e} has another class than reply code {code}"
            )),
            Some(_) => None,
        }
    }

    /// Whether the reply meets every condition once `enhanced` is cut to its class
    /// (`2.7.0` to `2.*.*`): RFC 3463 makes the class follow the reply code, while the
    /// codes RFC 4954 gives for AUTH replies are recommendations.
    fn holds_but_for_enhanced_detail(&self, reply: &[String], adv: Advertised) -> bool {
        let Some(pattern) = &self.enhanced else {
            return false;
        };
        let Some(class) = pattern.split('.').next().filter(|c| !c.contains('*')) else {
            return false;
        };
        let mut relaxed = self.clone();
        relaxed.enhanced = Some(format!("{class}.*.*"));
        relaxed.check_in(reply, adv).is_ok()
    }

    /// Checks the primary conditions only; the error names the first that failed.
    pub fn check(&self, reply: &[String]) -> Result<(), Mismatch> {
        self.check_in(reply, Advertised::ALL)
    }

    /// [`Expect::check`] for a peer that advertised `adv`. Without
    /// ENHANCEDSTATUSCODES, `enhanced` holds vacuously and enhanced codes are taken out
    /// of `text` and `reply_lines` patterns (and of the reply) before matching: the
    /// codes are conditional on the keyword (RFC 2034 §3).
    pub fn check_in(&self, reply: &[String], adv: Advertised) -> Result<(), Mismatch> {
        if !adv.enhanced_status_codes
            && (self.enhanced.is_some()
                || self
                    .text
                    .as_deref()
                    .is_some_and(|t| without_enhanced(t) != t)
                || self
                    .reply_lines
                    .iter()
                    .any(|l| line_without_enhanced(l) != *l))
        {
            let mut plain = self.clone();
            plain.enhanced = None;
            plain.text = self.text.as_deref().map(|t| without_enhanced(t).to_owned());
            plain.reply_lines = self
                .reply_lines
                .iter()
                .map(|l| line_without_enhanced(l))
                .collect();
            let reply: Vec<String> = reply.iter().map(|l| line_without_enhanced(l)).collect();
            return plain.check_strict(&reply);
        }
        self.check_strict(reply)
    }

    fn check_strict(&self, reply: &[String]) -> Result<(), Mismatch> {
        let Some(first) = reply.first() else {
            return Err(Mismatch::NoReply);
        };
        let last = reply.last().unwrap_or(first);
        if let Some(spec) = &self.code {
            match split(first).code {
                Some(code) if spec.matches(code) => {}
                Some(code) => {
                    return Err(Mismatch::Code {
                        code,
                        spec: spec.to_string(),
                    });
                }
                None => {
                    return Err(Mismatch::NoReplyCode {
                        line: first.clone(),
                    });
                }
            }
        }
        if let Some(pattern) = &self.enhanced {
            match enhanced_code(split(last).text) {
                Some(e) if Glob::new(pattern).is_match(e) => {}
                Some(e) => {
                    return Err(Mismatch::Enhanced {
                        found: e.to_owned(),
                        pattern: pattern.clone(),
                    });
                }
                None => {
                    return Err(Mismatch::EnhancedMissing {
                        pattern: pattern.clone(),
                    });
                }
            }
        }
        if let Some(pattern) = &self.text {
            let glob = Glob::new(pattern);
            if !reply.iter().any(|l| glob.is_match(split(l).text)) {
                return Err(Mismatch::Text {
                    pattern: pattern.clone(),
                });
            }
        }
        if !self.reply_lines.is_empty() {
            match_lines(&self.reply_lines, reply)?;
        }
        if !self.capability.is_empty() || !self.capability_absent.is_empty() {
            self.check_capabilities(reply)?;
        }
        if let Some(n) = self.lines {
            if reply.len() != n {
                return Err(Mismatch::LineCount {
                    lines: reply.len(),
                    wanted: n,
                });
            }
        }
        if let Some(pattern) = &self.decoded {
            let text = split(first).text;
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text.trim_end())
            else {
                return Err(Mismatch::NoChallenge {
                    line: first.clone(),
                });
            };
            let decoded = String::from_utf8_lossy(&bytes);
            if !Glob::new(pattern).is_match(&decoded) {
                return Err(Mismatch::DecodedChallenge {
                    shown: super::bytes::display_bytes(&bytes),
                    pattern: pattern.clone(),
                });
            }
        }
        match self.bare_334 {
            Some(true) if first != "334" => {
                return Err(Mismatch::NotBare334 {
                    line: first.clone(),
                });
            }
            Some(false) if !first.starts_with("334 ") => {
                return Err(Mismatch::Not334WithChallenge {
                    line: first.clone(),
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// `capability` and `capability_absent` against the EHLO keywords.
    fn check_capabilities(&self, reply: &[String]) -> Result<(), Mismatch> {
        let caps = capabilities(reply);
        let find = |k: &str| caps.iter().find(|(kw, _)| kw.eq_ignore_ascii_case(k));
        for (k, check) in &self.capability {
            match (check, find(k)) {
                (CapabilityCheck::Absent, Some(_)) => {
                    return Err(Mismatch::Advertised { keyword: k.clone() });
                }
                (CapabilityCheck::Absent, None) => {}
                (_, None) => return Err(Mismatch::NotAdvertised { keyword: k.clone() }),
                (CapabilityCheck::Present, Some(_)) => {}
                (CapabilityCheck::With(wanted), Some((_, params))) => {
                    for w in wanted {
                        if !params.iter().any(|p| p.eq_ignore_ascii_case(w)) {
                            return Err(Mismatch::NotListed {
                                keyword: k.clone(),
                                param: w.clone(),
                            });
                        }
                    }
                }
            }
        }
        for k in &self.capability_absent {
            if find(k).is_some() {
                return Err(Mismatch::Advertised { keyword: k.clone() });
            }
        }
        Ok(())
    }
}

/// The first pattern is anchored to the first line (the greeting or the EHLO domain
/// line); every other pattern must match a line of its own among the rest, in any order
/// and whatever the continuation mark (`250-` or `250 `): RFC 5321 §4.1.1.1 fixes
/// neither the order of EHLO keywords nor which one comes last. Extra lines are
/// allowed (capabilities vary).
fn match_lines(patterns: &[String], reply: &[String]) -> Result<(), Mismatch> {
    let globs: Vec<Glob> = patterns.iter().map(|p| Glob::new(&unmarked(p))).collect();
    let (Some(first_glob), Some(first_line)) = (globs.first(), reply.first()) else {
        return Err(Mismatch::NoReply);
    };
    if !first_glob.is_match(&unmarked(first_line)) {
        return Err(Mismatch::FirstLine {
            line: first_line.clone(),
            pattern: patterns[0].clone(),
        });
    }
    if globs.len() == 1 {
        if reply.len() != 1 {
            return Err(Mismatch::NotSingleLine { lines: reply.len() });
        }
        return Ok(());
    }
    if reply.len() < 2 {
        return Err(Mismatch::NotMultiLine {
            wanted: globs.len().min(2),
        });
    }
    let rest: Vec<String> = reply[1..].iter().map(|l| unmarked(l)).collect();
    let mut used = vec![false; rest.len()];
    // The most specific patterns pick first, so a catch-all like `250 *` cannot take
    // the one line that `250-AUTH * LOGIN *` needs.
    let mut order: Vec<usize> = (1..globs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(patterns[i].chars().filter(|c| *c != '*').count()));
    for i in order {
        let hit = rest
            .iter()
            .enumerate()
            .find(|(j, l)| !used[*j] && globs[i].is_match(l));
        match hit {
            Some((j, _)) => used[j] = true,
            None => {
                return Err(Mismatch::NoLineMatches {
                    pattern: patterns[i].clone(),
                });
            }
        }
    }
    Ok(())
}

/// A reply line or pattern with its continuation mark made a space: `250-AUTH` and
/// `250 AUTH` say the same thing about the keyword.
fn unmarked(line: &str) -> String {
    let b = line.as_bytes();
    if b.len() >= 4 && b[3] == b'-' && b[..3].iter().all(|c| c.is_ascii_digit() || *c == b'*') {
        format!("{} {}", &line[..3], &line[4..])
    } else {
        line.to_owned()
    }
}

impl ExpectCommand {
    /// What is expected, for reports.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = &self.verb {
            parts.push(format!("verb {v}"));
        }
        if let Some(a) = &self.args {
            parts.push(format!("args {a:?}"));
        }
        if let Some(l) = &self.line {
            parts.push(format!("line {l:?}"));
        }
        if let Some(m) = &self.auth_mechanism {
            parts.push(format!("AUTH {m}"));
        }
        parts.join(", ")
    }

    /// Whether this step has a condition.
    pub fn has_condition(&self) -> bool {
        self.verb.is_some()
            || self.args.is_some()
            || self.line.is_some()
            || self.auth_mechanism.is_some()
    }

    /// Checks a client line (without CRLF).
    pub fn evaluate(&self, line: &str) -> Outcome {
        match self.check(line) {
            Ok(()) => Outcome::Pass,
            Err(reason) => Outcome::Fail {
                expected: self.describe(),
                actual: line.to_owned(),
                reason: reason.to_string(),
            },
        }
    }

    fn check(&self, line: &str) -> Result<(), Mismatch> {
        let (verb, args) = line.split_once(' ').unwrap_or((line, ""));
        if let Some(v) = &self.verb {
            if !verb.eq_ignore_ascii_case(v) {
                return Err(Mismatch::Verb {
                    verb: verb.to_owned(),
                    wanted: v.clone(),
                });
            }
        }
        if let Some(a) = &self.args {
            if !Glob::new(a).is_match(args) {
                return Err(Mismatch::Args {
                    args: args.to_owned(),
                    pattern: a.clone(),
                });
            }
        }
        if let Some(l) = &self.line {
            if !Glob::new(l).is_match(line) {
                return Err(Mismatch::Line { pattern: l.clone() });
            }
        }
        if let Some(m) = &self.auth_mechanism {
            let mech = args.split(' ').next().unwrap_or("");
            if !verb.eq_ignore_ascii_case("AUTH") || !mech.eq_ignore_ascii_case(m) {
                return Err(Mismatch::NotAuth {
                    mechanism: m.clone(),
                });
            }
        }
        Ok(())
    }
}

impl ExpectResponse {
    /// What is expected, for reports.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = &self.decoded {
            parts.push(format!("decoded {d:?}"));
        }
        if let Some(b) = &self.base64 {
            parts.push(format!("base64 {b:?}"));
        }
        if self.cancel {
            parts.push("cancel `*`".to_owned());
        }
        parts.join(", ")
    }

    /// Whether this step has a condition.
    pub fn has_condition(&self) -> bool {
        self.decoded.is_some() || self.base64.is_some() || self.cancel
    }

    /// Checks a SASL response line (without CRLF).
    pub fn evaluate(&self, line: &str) -> Outcome {
        match self.check(line) {
            Ok(()) => Outcome::Pass,
            Err(reason) => Outcome::Fail {
                expected: self.describe(),
                actual: line.to_owned(),
                reason: reason.to_string(),
            },
        }
    }

    fn check(&self, line: &str) -> Result<(), Mismatch> {
        if self.cancel && line != "*" {
            return Err(Mismatch::NotCancelled);
        }
        if let Some(b) = &self.base64 {
            if !Glob::new(b).is_match(line) {
                return Err(Mismatch::Response { pattern: b.clone() });
            }
        }
        if let Some(d) = &self.decoded {
            // RFC 4954 §4: `=` is an empty response.
            let decoded = if line == "=" {
                Ok(Vec::new())
            } else {
                base64::engine::general_purpose::STANDARD.decode(line)
            };
            let Ok(bytes) = decoded else {
                return Err(Mismatch::ResponseNotBase64);
            };
            // Matched as text with NULs kept, so YAML's "\0" writes a PLAIN separator.
            let text = String::from_utf8_lossy(&bytes);
            if !Glob::new(d).is_match(&text) {
                let shown = super::bytes::display_bytes(&bytes);
                return Err(Mismatch::DecodedResponse {
                    shown,
                    pattern: d.clone(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debug_shaped(text: &str) -> bool {
        authspec_reference::human::looks_like_debug(text)
            || ["Some(", "None", "Err(", "Ok(", "\\\"", " { "]
                .iter()
                .any(|d| text.contains(d))
    }

    /// A failed condition reads as the condition and what came instead, never as the
    /// variant's Debug form.
    #[test]
    fn mismatches_name_the_condition_in_words() {
        let reply = |lines: &[&str]| lines.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>();
        let code: Expect = serde_yaml::from_str("code: 2xx").unwrap();
        let e = code.check(&reply(&["535 5.7.8 no"])).unwrap_err();
        assert_eq!(
            e,
            Mismatch::Code {
                code: 535,
                spec: "2xx".into()
            }
        );
        assert_eq!(e.to_string(), "code 535 is not 2xx");

        let caps: Expect = serde_yaml::from_str("capability: {AUTH: [PLAIN]}").unwrap();
        let e = caps
            .check(&reply(&["250-mx", "250 AUTH LOGIN"]))
            .unwrap_err();
        assert_eq!(e.to_string(), "AUTH does not list PLAIN");

        let lines: Expect = serde_yaml::from_str("lines: 1").unwrap();
        let e = lines.check(&reply(&["250-a", "250 b"])).unwrap_err();
        assert_eq!(e.to_string(), "2 line(s), not 1");

        for e in [
            Mismatch::NoReply,
            Mismatch::EnhancedMissing {
                pattern: "5.7.*".into(),
            },
            Mismatch::NoReplyCode {
                line: "garbage".into(),
            },
            Mismatch::NotMultiLine { wanted: 2 },
            Mismatch::DecodedResponse {
                shown: "\\x00alice\\x00pw".into(),
                pattern: "*alice*".into(),
            },
        ] {
            let text = e.to_string();
            assert!(!text.is_empty() && !debug_shaped(&text), "{text}");
        }
    }
}
