//! SMTP replies (RFC 5321 §4.2), enhanced status codes (RFC 3463, RFC 2034) and the
//! EHLO capability list (RFC 5321 §4.1.1.1).
//!
//! ```text
//! Reply-line = *( Reply-code "-" [ textstring ] CRLF )
//!              Reply-code [ SP textstring ] CRLF
//! Reply-code = %x32-35 %x30-35 %x30-39
//! textstring = 1*(%d09 / %d32-126)
//! ```
//!
//! The parser is incremental ([`parse_reply`] returns `Ok(None)` until the last
//! line has arrived) and strict about structure (code, separator, one code for all
//! lines, limits) but records rather than rejects irregular octets and line ends, as
//! [`Deviation`]s, so a client can judge a server without failing on it.

use super::line::{Deviation, TEXT_LINE_LIMIT, scan_deviations};
use std::fmt;

/// What follows the code on a reply line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Separator {
    /// `-`: more lines follow.
    Hyphen,
    /// SP: the last line.
    Space,
    /// Nothing: the last line is the bare code. RFC 5321 §4.2 allows it, but RFC
    /// 4954 §4 `continue-req = "334" SP [base64] CRLF` does not, so a bare `334` is
    /// kept distinct from `334 `.
    None,
}

/// One line of a reply: `Reply-code [ SP / "-" textstring ] CRLF` (RFC 5321 §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyLine {
    /// The three-digit code on this line.
    pub code: u16,
    /// What followed the code: `-`, SP or nothing.
    pub sep: Separator,
    /// The text after the separator, as received.
    pub text: Vec<u8>,
}

/// A complete reply, one or more lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The reply code (the same on every line, RFC 5321 §4.2.1).
    pub code: u16,
    /// Every line in order; the last has a SP or bare separator.
    pub lines: Vec<ReplyLine>,
    /// Irregular octets and line ends; offsets are from the start of the reply.
    /// At most one of each kind.
    pub deviations: Vec<Deviation>,
}

/// A structural rule of RFC 5321 §4.2 broken by a reply. `line` is 0-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// RFC 5321 §4.2: `Reply-code = %x32-35 %x30-35 %x30-39`.
    InvalidCode {
        /// 0-based index of the offending line within the reply.
        line: usize,
    },
    /// RFC 5321 §4.2: after the code comes `-`, SP or the line end.
    InvalidSeparator {
        /// 0-based index of the offending line within the reply.
        line: usize,
        /// The octet found where `-`, SP or CRLF belongs.
        byte: u8,
    },
    /// RFC 5321 §4.2.1: every line of a multiline reply carries the same code.
    CodeMismatchAcrossLines {
        /// 0-based index of the offending line within the reply.
        line: usize,
        /// The code of the first line.
        expected: u16,
        /// The code on this line.
        found: u16,
    },
    /// RFC 5321 §4.5.3.1.5: a reply line has a length limit (512 octets in the RFC;
    /// [`ReplyLimits::max_line`] here).
    LineTooLong {
        /// 0-based index of the offending line within the reply.
        line: usize,
        /// The bound it broke, in octets.
        limit: usize,
    },
    /// More lines than [`ReplyLimits::max_lines`]: a bound on memory, not an RFC rule.
    TooManyLines {
        /// The bound on lines per reply.
        limit: usize,
    },
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::human::describe(self))
    }
}

impl std::error::Error for ReplyError {}

/// Bounds on what [`parse_reply`] buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Octets per line, CRLF included.
    pub max_line: usize,
    /// Lines per reply.
    pub max_lines: usize,
}

impl Default for ReplyLimits {
    /// RFC 5321 §4.5.3.1.5 says 512 octets per reply line, but servers send longer
    /// texts and §4.5.3.1.6's 1000 is what clients tolerate in practice.
    fn default() -> Self {
        ReplyLimits {
            max_line: TEXT_LINE_LIMIT,
            max_lines: 1000,
        }
    }
}

/// Parses a reply from the start of `buf`. Returns the reply and the octets it took,
/// or `Ok(None)` when its last line has not arrived.
pub fn parse_reply(buf: &[u8], limits: &ReplyLimits) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut pos = 0;
    let mut lines: Vec<ReplyLine> = Vec::new();
    let mut deviations: Vec<Deviation> = Vec::new();
    let mut line_dev = Vec::new();
    loop {
        let index = lines.len();
        let rest = &buf[pos..];
        let window = &rest[..rest.len().min(limits.max_line)];
        let Some(lf) = memchr::memchr(b'\n', window) else {
            if !rest.is_empty() && rest.len() >= limits.max_line {
                return Err(ReplyError::LineTooLong {
                    line: index,
                    limit: limits.max_line,
                });
            }
            return Ok(None);
        };
        let without_lf = &rest[..lf];
        let (content, bare_lf) = match without_lf.strip_suffix(b"\r") {
            Some(c) => (c, false),
            None => (without_lf, true),
        };
        line_dev.clear();
        scan_deviations(content, true, &mut line_dev);
        if bare_lf {
            line_dev.push(Deviation::BareLf {
                offset: content.len(),
            });
        }
        for d in &line_dev {
            merge_deviation(&mut deviations, shift(*d, pos));
        }
        let code = reply_code(content).ok_or(ReplyError::InvalidCode { line: index })?;
        let (sep, text) = match content.get(3) {
            None => (Separator::None, &content[3..]),
            Some(b'-') => (Separator::Hyphen, &content[4..]),
            Some(b' ') => (Separator::Space, &content[4..]),
            Some(&byte) => return Err(ReplyError::InvalidSeparator { line: index, byte }),
        };
        if let Some(first) = lines.first() {
            if first.code != code {
                return Err(ReplyError::CodeMismatchAcrossLines {
                    line: index,
                    expected: first.code,
                    found: code,
                });
            }
        }
        lines.push(ReplyLine {
            code,
            sep,
            text: text.to_vec(),
        });
        pos += lf + 1;
        if sep != Separator::Hyphen {
            return Ok(Some((
                Reply {
                    code,
                    lines,
                    deviations,
                },
                pos,
            )));
        }
        if lines.len() >= limits.max_lines {
            return Err(ReplyError::TooManyLines {
                limit: limits.max_lines,
            });
        }
    }
}

fn shift(d: Deviation, by: usize) -> Deviation {
    match d {
        Deviation::BareLf { offset } => Deviation::BareLf {
            offset: offset + by,
        },
        Deviation::BareCr { offset } => Deviation::BareCr {
            offset: offset + by,
        },
        Deviation::Nul { offset } => Deviation::Nul {
            offset: offset + by,
        },
        Deviation::EightBit { offset } => Deviation::EightBit {
            offset: offset + by,
        },
        Deviation::Control { offset } => Deviation::Control {
            offset: offset + by,
        },
        other @ Deviation::LineTooLong { .. } => other,
    }
}

fn merge_deviation(all: &mut Vec<Deviation>, d: Deviation) {
    if !all.iter().any(|x| x.kind() == d.kind()) {
        all.push(d);
    }
}

/// `Reply-code = %x32-35 %x30-35 %x30-39` (RFC 5321 §4.2).
fn reply_code(content: &[u8]) -> Option<u16> {
    match content {
        [a @ b'2'..=b'5', b @ b'0'..=b'5', c @ b'0'..=b'9', ..] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// `text` as an RFC 5321 §4.2 `textstring` (`1*(%d09 / %d32-126)`): reply texts that
/// quote a rule name it by `§`, which is not ASCII, so it becomes `section`; any other
/// octet outside the grammar becomes `?`. Servers that build replies from `Display`
/// texts pass them through here, so a strict server never sends 8-bit reply text.
pub fn textstring(text: &str) -> std::borrow::Cow<'_, str> {
    if text.bytes().all(|b| b == b'\t' || (32..=126).contains(&b)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '§' => out.push_str("section "),
            '\t' | ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    // "section §4" became "section  4" where a space followed the sign already.
    std::borrow::Cow::Owned(out.replace("section  ", "section "))
}

impl Reply {
    /// A reply with one line per text: `code-text` for all but the last, `code text`
    /// for the last. An empty list gives the bare code (`Separator::None`).
    pub fn new(code: u16, text_lines: &[&str]) -> Reply {
        let n = text_lines.len();
        let lines = if n == 0 {
            vec![ReplyLine {
                code,
                sep: Separator::None,
                text: Vec::new(),
            }]
        } else {
            text_lines
                .iter()
                .enumerate()
                .map(|(i, t)| ReplyLine {
                    code,
                    sep: if i + 1 == n {
                        Separator::Space
                    } else {
                        Separator::Hyphen
                    },
                    text: t.as_bytes().to_vec(),
                })
                .collect()
        };
        Reply {
            code,
            lines,
            deviations: Vec::new(),
        }
    }

    /// A single `code text` line with an enhanced status code in front of the text
    /// (RFC 2034 §3).
    pub fn with_enhanced(code: u16, enhanced: EnhancedCode, text: &str) -> Reply {
        Reply::new(code, &[&format!("{enhanced} {text}")])
    }

    /// The bytes to send, CRLF after every line. Codes outside 0..=999 cannot be
    /// written in three digits and are clamped to 999 rather than overflowing.
    pub fn format(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.lines.iter().map(|l| l.text.len() + 6).sum());
        for l in &self.lines {
            let c = l.code.min(999);
            out.extend_from_slice(&[
                b'0' + (c / 100) as u8,
                b'0' + (c / 10 % 10) as u8,
                b'0' + (c % 10) as u8,
            ]);
            match l.sep {
                Separator::Hyphen => out.push(b'-'),
                Separator::Space => out.push(b' '),
                Separator::None => {}
            }
            out.extend_from_slice(&l.text);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// The enhanced status code at the start of the first line's text, if any.
    pub fn enhanced(&self) -> Option<EnhancedCode> {
        let first = self.lines.first()?;
        EnhancedCode::parse_prefix(&first.text).map(|(e, _)| e)
    }

    /// The texts of all lines joined with `\n` (lossy UTF-8).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, l) in self.lines.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&String::from_utf8_lossy(&l.text));
        }
        out
    }

    /// The text of the last line: for `334` that is the base64 challenge.
    pub fn last_text(&self) -> &[u8] {
        self.lines.last().map_or(&[], |l| &l.text)
    }

    /// A `334` with no SP after the code, which RFC 4954 §4 does not allow
    /// (`continue-req = "334" SP [base64] CRLF`) but some servers send for an
    /// empty challenge.
    pub fn is_bare_334(&self) -> bool {
        self.code == 334 && self.lines.len() == 1 && self.lines[0].sep == Separator::None
    }
}

/// An enhanced status code, RFC 3463 §2: `class "." subject "." detail`, with
/// `class = "2" / "4" / "5"`, `subject = 1*3digit`, `detail = 1*3digit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// The subject (RFC 3463 §3: 1 addressing, 5 protocol, 7 security...).
    pub subject: u16,
    /// The detail within the subject.
    pub detail: u16,
}

impl EnhancedCode {
    /// `class.subject.detail`; the caller keeps to RFC 3463's ranges.
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        EnhancedCode {
            class,
            subject,
            detail,
        }
    }

    /// An enhanced code at the start of `text`, followed by SP or the end; returns
    /// it and the octets it took (separator excluded).
    pub fn parse_prefix(text: &[u8]) -> Option<(EnhancedCode, usize)> {
        let class = match text.first()? {
            b @ (b'2' | b'4' | b'5') => b - b'0',
            _ => return None,
        };
        if text.get(1) != Some(&b'.') {
            return None;
        }
        let (subject, a) = number_1_3(&text[2..])?;
        let pos = 2 + a;
        if text.get(pos) != Some(&b'.') {
            return None;
        }
        let (detail, b) = number_1_3(&text[pos + 1..])?;
        let end = pos + 1 + b;
        match text.get(end) {
            None | Some(b' ') => Some((
                EnhancedCode {
                    class,
                    subject,
                    detail,
                },
                end,
            )),
            _ => None,
        }
    }

    /// Parses exactly an enhanced code, nothing around it.
    pub fn parse(text: &[u8]) -> Option<EnhancedCode> {
        match Self::parse_prefix(text)? {
            (e, n) if n == text.len() => Some(e),
            _ => None,
        }
    }
}

fn number_1_3(s: &[u8]) -> Option<(u16, usize)> {
    let n = s.iter().take(4).take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || n > 3 {
        return None;
    }
    Some((
        s[..n]
            .iter()
            .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0')),
        n,
    ))
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl std::str::FromStr for EnhancedCode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        EnhancedCode::parse(s.as_bytes()).ok_or(())
    }
}

/// One EHLO keyword line (`ehlo-line = ehlo-keyword *( SP ehlo-param )`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capability {
    /// `ehlo-keyword`, as the server spelled it.
    pub keyword: String,
    /// The `ehlo-param`s after the keyword (for `AUTH`, the mechanism names).
    pub params: Vec<String>,
}

/// A parsed EHLO response.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// The server's name from the first line (`"250" SP Domain`).
    pub domain: String,
    /// `ehlo-greet`: the rest of the first line, if any.
    pub greeting: Option<String>,
    /// Every keyword line in order (the `AUTH` line included; the non-standard
    /// `AUTH=` line is not, it is in `auth_eq`).
    pub keywords: Vec<Capability>,
    /// The mechanisms of the `AUTH` line (RFC 4954 §3), if there was one.
    pub auth: Option<Vec<String>>,
    /// The mechanisms of a `250-AUTH=LOGIN PLAIN` line: not RFC syntax (`=` is not an
    /// ehlo-keyword character) but sent by Postfix with `broken_sasl_auth_clients`
    /// for old Outlook clients that read only this form.
    pub auth_eq: Option<Vec<String>>,
}

/// A rule of the EHLO response grammar (RFC 5321 §4.1.1.1) broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EhloError {
    /// `ehlo-ok-rsp` starts with 250; any other code is a refusal, not a capability
    /// list.
    NotOk {
        /// The code the server answered EHLO with.
        code: u16,
    },
    /// `"250" SP Domain [ SP ehlo-greet ]`: the first line names the server.
    InvalidDomain,
    /// `ehlo-greet = 1*(%d0-9 / %d11-12 / %d14-127)`.
    InvalidGreeting,
    /// `ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`.
    InvalidKeyword {
        /// 0-based index of the offending line within the reply.
        line: usize,
    },
    /// `ehlo-param = 1*(%d33-126)`, separated by single SPs.
    InvalidParam {
        /// 0-based index of the offending line within the reply.
        line: usize,
    },
    /// A keyword advertised twice (e.g. two `AUTH` lines with different lists).
    DuplicateKeyword {
        /// 0-based index of the offending line within the reply.
        line: usize,
    },
}

impl fmt::Display for EhloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::human::describe(self))
    }
}

impl std::error::Error for EhloError {}

fn split_params(text: &[u8], line: usize) -> Result<Vec<String>, EhloError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(|&b| b == b' ')
        .map(|p| {
            if !p.is_empty() && p.iter().all(|b| (33..=126).contains(b)) {
                Ok(String::from_utf8_lossy(p).into_owned())
            } else {
                Err(EhloError::InvalidParam { line })
            }
        })
        .collect()
}

/// Reads the capabilities from an EHLO reply.
pub fn parse_ehlo(reply: &Reply) -> Result<Capabilities, EhloError> {
    if reply.code != 250 {
        return Err(EhloError::NotOk { code: reply.code });
    }
    let first = reply.lines.first().ok_or(EhloError::InvalidDomain)?;
    let (domain, greeting) = match first.text.iter().position(|&b| b == b' ') {
        Some(sp) => (&first.text[..sp], Some(&first.text[sp + 1..])),
        None => (&first.text[..], None),
    };
    if !super::command::is_domain_or_literal(domain) {
        return Err(EhloError::InvalidDomain);
    }
    let greeting = match greeting {
        None => None,
        Some(g) if !g.is_empty() && g.iter().all(|&b| b != b'\r' && b != b'\n') => {
            Some(String::from_utf8_lossy(g).into_owned())
        }
        Some(_) => return Err(EhloError::InvalidGreeting),
    };
    let mut caps = Capabilities {
        domain: String::from_utf8_lossy(domain).into_owned(),
        greeting,
        ..Capabilities::default()
    };
    for (index, line) in reply.lines.iter().enumerate().skip(1) {
        let text = &line.text[..];
        let kw_end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
        let keyword = &text[..kw_end];
        let rest = text.get(kw_end + 1..).unwrap_or(&[]);
        if kw_end < text.len() && rest.is_empty() {
            return Err(EhloError::InvalidParam { line: index });
        }
        if keyword.len() > 5 && keyword[..5].eq_ignore_ascii_case(b"AUTH=") {
            if caps.auth_eq.is_some() {
                return Err(EhloError::DuplicateKeyword { line: index });
            }
            let mut mechs = split_params(&keyword[5..], index)?;
            mechs.extend(split_params(rest, index)?);
            caps.auth_eq = Some(mechs);
            continue;
        }
        let valid = keyword.first().is_some_and(u8::is_ascii_alphanumeric)
            && keyword
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(EhloError::InvalidKeyword { line: index });
        }
        if caps
            .keywords
            .iter()
            .any(|c| c.keyword.as_bytes().eq_ignore_ascii_case(keyword))
        {
            return Err(EhloError::DuplicateKeyword { line: index });
        }
        let params = split_params(rest, index)?;
        let keyword = String::from_utf8_lossy(keyword).into_owned();
        if keyword.eq_ignore_ascii_case("AUTH") {
            caps.auth = Some(params.clone());
        }
        caps.keywords.push(Capability { keyword, params });
    }
    Ok(caps)
}

impl Capabilities {
    /// Whether `keyword` was advertised (case-insensitive, RFC 5321 §2.4).
    pub fn has(&self, keyword: &str) -> bool {
        self.get(keyword).is_some()
    }

    /// The capability line of `keyword` (case-insensitive, RFC 5321 §2.4), if advertised.
    pub fn get(&self, keyword: &str) -> Option<&Capability> {
        self.keywords
            .iter()
            .find(|c| c.keyword.eq_ignore_ascii_case(keyword))
    }

    /// Whether `mechanism` is offered on the `AUTH` line (or, failing that, the
    /// `AUTH=` line).
    pub fn offers_mechanism(&self, mechanism: &str) -> bool {
        self.auth
            .as_ref()
            .or(self.auth_eq.as_ref())
            .is_some_and(|m| m.iter().any(|x| x.eq_ignore_ascii_case(mechanism)))
    }

    /// The EHLO reply that advertises these capabilities; the `AUTH=` line follows
    /// the keywords.
    pub fn format_reply(&self) -> Reply {
        let mut texts = Vec::with_capacity(self.keywords.len() + 2);
        texts.push(match &self.greeting {
            Some(g) => format!("{} {g}", self.domain),
            None => self.domain.clone(),
        });
        for c in &self.keywords {
            let mut t = c.keyword.clone();
            for p in &c.params {
                t.push(' ');
                t.push_str(p);
            }
            texts.push(t);
        }
        if let Some(m) = &self.auth_eq {
            texts.push(format!("AUTH={}", m.join(" ")));
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Reply::new(250, &refs)
    }
}

#[cfg(test)]
mod textstring_tests {
    use super::textstring;

    #[test]
    fn reply_text_is_ascii_textstring() {
        assert!(matches!(
            textstring("5.5.4 Syntax error"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            textstring("xtext: not a hex digit (RFC 3461 §4)"),
            "xtext: not a hex digit (RFC 3461 section 4)"
        );
        assert_eq!(textstring("RFC 5321 § 4.2"), "RFC 5321 section 4.2");
        assert_eq!(textstring("bad\u{7f}\u{e9}\ttab"), "bad??\ttab");
    }
}
