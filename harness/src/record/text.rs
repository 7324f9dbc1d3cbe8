//! Turning recorded bytes into scenario strings: pieces that are literal, variables or
//! wildcards, rendered for each place a string can go (a line that is sent, a raw
//! string, a glob pattern), plus the secret forms a recorded file must never contain.
//!
//! The three renderings differ in what they escape: every `$` becomes `$$` (a literal
//! dollar for the variable expander), a pattern escapes `* ? \` (so recorded text
//! matches only itself), and a raw string writes unprintable bytes as `\r \n \0 \xHH`.

use crate::scenario::{display_bytes, pattern};
use base64::Engine as _;

/// One piece of a recorded string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Recorded bytes, written as they were.
    Lit(Vec<u8>),
    /// `${name}`: a value the replayer supplies (a user name, a password).
    Var(&'static str),
    /// Text that differs per session (a queue id, a date, a nonce): `*` in a pattern.
    Wild,
    /// A stand-in for a redacted name: written in lines that are sent; `*` in patterns,
    /// because the peer being judged will send its own real value.
    Placeholder(&'static str),
}

/// A recorded string as pieces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pieces(pub Vec<Piece>);

fn dollars(s: &str) -> String {
    s.replace('$', "$$")
}

impl Pieces {
    pub fn literal(bytes: &[u8]) -> Pieces {
        Pieces(vec![Piece::Lit(bytes.to_vec())])
    }

    /// Whether every literal is printable UTF-8 text without CR, LF or other controls
    /// (TAB allowed), so the plain `send: "…"` form writes it exactly.
    pub fn is_plain_text(&self) -> bool {
        self.0.iter().all(|p| match p {
            Piece::Lit(b) => std::str::from_utf8(b)
                .is_ok_and(|s| !s.chars().any(|c| c.is_control() && c != '\t')),
            _ => true,
        })
    }

    /// For a plain `send` line or a `reply`: literals as text (check
    /// [`Pieces::is_plain_text`] first), variables as `${name}`, a wildcard as `*`.
    pub fn plain(&self) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Lit(b) => out.push_str(&dollars(&String::from_utf8_lossy(b))),
                Piece::Var(v) => out.push_str(&format!("${{{v}}}")),
                Piece::Wild => out.push('*'),
                Piece::Placeholder(s) => out.push_str(&dollars(s)),
            }
        }
        out
    }

    /// For a raw string (`send: { raw: true }`, `sasl: { send }`): unprintable bytes
    /// escaped.
    pub fn raw(&self) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Lit(b) => out.push_str(&dollars(&display_bytes(b))),
                Piece::Var(v) => out.push_str(&format!("${{{v}}}")),
                Piece::Wild => out.push('*'),
                Piece::Placeholder(s) => out.push_str(&dollars(&display_bytes(s.as_bytes()))),
            }
        }
        out
    }

    /// For a glob: literals match only themselves; wildcards and placeholders are `*`.
    pub fn pattern(&self) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Lit(b) => {
                    // YAML cannot carry control characters even escaped, so each
                    // matches as `?`, any one character.
                    for c in String::from_utf8_lossy(b).chars() {
                        if c.is_control() && c != '\t' {
                            out.push('?');
                        } else {
                            out.push_str(&dollars(&pattern::escape(c.encode_utf8(&mut [0; 4]))));
                        }
                    }
                }
                Piece::Var(v) => out.push_str(&format!("${{{v}}}")),
                Piece::Wild | Piece::Placeholder(_) => {
                    if !out.ends_with('*') {
                        out.push('*');
                    }
                }
            }
        }
        out
    }
}

/// Text for titles and comments: control characters (which YAML cannot carry)
/// shown as `?`, at most `max` characters.
pub fn printable(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

impl Pieces {
    /// Replaces every occurrence of `needle` in the literals with `with`. Occurrences
    /// inside a word are left alone when `whole_word` is set (a user name `al` must not
    /// rewrite `ALL` or `alice`).
    pub fn replace(&mut self, needle: &[u8], with: &Piece, whole_word: bool) {
        if needle.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(self.0.len());
        for p in self.0.drain(..) {
            let Piece::Lit(bytes) = p else {
                out.push(p);
                continue;
            };
            let mut start = 0;
            let mut i = 0;
            while i + needle.len() <= bytes.len() {
                let hit = bytes[i..i + needle.len()] == *needle
                    && (!whole_word
                        || (word_edge(bytes.get(i.wrapping_sub(1)).copied())
                            && word_edge(bytes.get(i + needle.len()).copied())));
                if hit {
                    if start < i {
                        out.push(Piece::Lit(bytes[start..i].to_vec()));
                    }
                    out.push(with.clone());
                    i += needle.len();
                    start = i;
                } else {
                    i += 1;
                }
            }
            if start < bytes.len() {
                out.push(Piece::Lit(bytes[start..].to_vec()));
            }
        }
        self.0 = out;
    }
}

fn word_edge(b: Option<u8>) -> bool {
    b.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_'))
}

/// Whether a word of reply text looks like per-session data: it has a digit (queue
/// ids, dates, times, addresses, counters) or is a long token with a lower-to-upper
/// case change (random ids such as `4XhT2b` or `aBcDeFgH`).
pub fn is_session_word(word: &str) -> bool {
    if word.bytes().any(|b| b.is_ascii_digit()) {
        return true;
    }
    let b = word.as_bytes();
    b.len() >= 8
        && b.windows(2)
            .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
}

/// Reply text as pieces for a pattern: per-session words become wildcards, except a
/// leading enhanced status code (RFC 3463), which is part of what is checked.
pub fn loosen_reply_text(text: &[u8]) -> Pieces {
    let s = String::from_utf8_lossy(text);
    let mut pieces = Vec::new();
    for (i, word) in s.split(' ').enumerate() {
        if i > 0 {
            pieces.push(Piece::Lit(b" ".to_vec()));
        }
        let enhanced = i == 0
            && authspec_reference::smtp::reply::EnhancedCode::parse(word.as_bytes()).is_some();
        if !enhanced && is_session_word(word) {
            pieces.push(Piece::Wild);
        } else {
            pieces.push(Piece::Lit(word.as_bytes().to_vec()));
        }
    }
    Pieces(pieces)
}

/// The base64 text that any encoding of `secret` contains, at each of the three
/// alignments it can start at: the characters determined by the secret's bits alone.
/// Forms shorter than four characters are left out: they would match by chance.
pub fn base64_cores(secret: &[u8]) -> Vec<String> {
    let engine = base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut out = Vec::new();
    for k in 0..3usize {
        let mut buf = vec![0u8; k];
        buf.extend_from_slice(secret);
        let enc = engine.encode(&buf);
        let bits = 8 * buf.len();
        let from = (8 * k).div_ceil(6);
        let to = bits / 6;
        if to > from && to - from >= 4 {
            if let Some(core) = enc.get(from..to) {
                out.push(core.to_owned());
            }
        }
    }
    out
}

/// Every form in which `secret` must not appear in a recorded file: itself (as text
/// and as a raw string writes it) when at least three octets long, and its base64 at
/// every alignment.
pub fn secret_forms(secret: &[u8]) -> Vec<String> {
    let mut forms = base64_cores(secret);
    if secret.len() >= 3 {
        forms.push(String::from_utf8_lossy(secret).into_owned());
        forms.push(display_bytes(secret));
    }
    forms
}

/// Whether `text` contains any form of any secret.
pub fn contains_secret(text: &str, secrets: &[Vec<u8>]) -> bool {
    secrets
        .iter()
        .flat_map(|s| secret_forms(s))
        .any(|f| text.contains(&f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renderings_escape_what_each_place_needs() {
        let p = Pieces(vec![
            Piece::Lit(b"MAIL FROM:<".to_vec()),
            Piece::Var("user"),
            Piece::Lit(b"@x*$y>\r\n".to_vec()),
        ]);
        assert_eq!(p.raw(), r"MAIL FROM:<${user}@x*$$y>\r\n");
        assert!(!p.is_plain_text());
        let p = Pieces(vec![
            Piece::Lit(b"<".to_vec()),
            Piece::Var("user"),
            Piece::Lit(b"@x*$y?".to_vec()),
        ]);
        assert_eq!(p.pattern(), r"<${user}@x\*$$y\?");
        assert!(p.is_plain_text());
        let q = Pieces(vec![
            Piece::Lit(b"EHLO ".to_vec()),
            Piece::Placeholder("client.example"),
        ]);
        assert_eq!(q.plain(), "EHLO client.example");
        assert_eq!(q.pattern(), "EHLO *");
    }

    #[test]
    fn replace_respects_words() {
        let mut p = Pieces::literal(b"al ALL alice al_x <al@b> 250-al");
        p.replace(b"al", &Piece::Var("user"), true);
        assert_eq!(p.plain(), "${user} ALL alice al_x <${user}@b> 250-${user}");
    }

    #[test]
    fn reply_text_loosens_per_session_words() {
        let p = loosen_reply_text(b"2.0.0 Ok: queued as 4XhT2b9");
        assert_eq!(p.pattern(), "2.0.0 Ok: queued as *");
        let g = loosen_reply_text(b"smtp.peers.test ESMTP Postfix peer-2525");
        assert_eq!(g.pattern(), "smtp.peers.test ESMTP Postfix *");
        let t = loosen_reply_text(b"Authentication successful");
        assert_eq!(t.pattern(), "Authentication successful");
    }

    #[test]
    fn base64_cores_catch_every_alignment() {
        let engine = base64::engine::general_purpose::STANDARD;
        let cores = base64_cores(b"wonderland");
        assert_eq!(cores.len(), 3);
        for prefix in [&b""[..], b"\0", b"\0alice\0", b"xy"] {
            let mut msg = prefix.to_vec();
            msg.extend_from_slice(b"wonderland");
            msg.extend_from_slice(b"tail");
            let enc = engine.encode(&msg);
            assert!(cores.iter().any(|c| enc.contains(c)), "{prefix:?}: {enc}");
        }
        assert!(!contains_secret("nothing here", &[b"wonderland".to_vec()]));
        assert!(contains_secret(
            &engine.encode(b"\0alice\0wonderland"),
            &[b"wonderland".to_vec()]
        ));
    }
}
