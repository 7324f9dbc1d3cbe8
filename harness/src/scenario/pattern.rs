//! Glob patterns for replies, commands and scenario ids.
//!
//! `*` matches any run of characters (also none), `?` exactly one, and `\*`, `\?`, `\\`
//! stand for themselves. One more rule makes RFC transcripts paste well: a `*` that
//! starts a word (after a space, and followed by a space or the end) matches *zero or
//! more words*, space included. So `250-AUTH * LOGIN *` matches `250-AUTH LOGIN`,
//! `250-AUTH PLAIN LOGIN` and `250-AUTH PLAIN LOGIN CRAM-MD5`: EHLO keyword parameters
//! come in any number and order (RFC 5321 §4.1.1.1), and a transcript shows one instance.
//!
//! Matching is a dynamic program over (pattern, text), O(len(pattern) × len(text)) time and
//! O(len(text)) memory, so a hostile pattern or reply cannot make it blow up.

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    tokens: Vec<Token>,
    ignore_ascii_case: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`
    One,
    /// `*`
    Any,
    /// ` *` at a word start: nothing, or a space followed by any run.
    Words,
}

impl Glob {
    /// Compiles a case-sensitive pattern. Every string is a valid pattern: a trailing lone
    /// backslash stands for itself.
    pub fn new(pattern: &str) -> Glob {
        Glob::compile(pattern, false)
    }

    /// Compiles a pattern that ignores ASCII case (SMTP verbs, EHLO keywords and SASL
    /// mechanism names are case-insensitive: RFC 5321 §2.4, RFC 4422 §3.1).
    pub fn new_ignore_ascii_case(pattern: &str) -> Glob {
        Glob::compile(pattern, true)
    }

    fn compile(pattern: &str, ignore_ascii_case: bool) -> Glob {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '\\' => match chars.get(i + 1) {
                    Some(&next) => {
                        tokens.push(Token::Literal(next));
                        i += 2;
                        continue;
                    }
                    None => tokens.push(Token::Literal('\\')),
                },
                ' ' if chars.get(i + 1) == Some(&'*')
                    && matches!(chars.get(i + 2), None | Some(' ')) =>
                {
                    tokens.push(Token::Words);
                    i += 2;
                    continue;
                }
                '*' => {
                    // Consecutive stars mean the same as one; keeping one keeps the table small.
                    if tokens.last() != Some(&Token::Any) {
                        tokens.push(Token::Any);
                    }
                }
                '?' => tokens.push(Token::One),
                _ => tokens.push(Token::Literal(c)),
            }
            i += 1;
        }
        Glob {
            source: pattern.to_owned(),
            tokens,
            ignore_ascii_case,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern has no wildcard at all (it then matches exactly one string).
    pub fn is_literal(&self) -> bool {
        self.tokens.iter().all(|t| matches!(t, Token::Literal(_)))
    }

    /// Whether `text` matches the whole pattern.
    pub fn is_match(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let n = text.len();
        // prev[j]: the tokens seen so far match text[..j].
        let mut prev = vec![false; n + 1];
        prev[0] = true;
        let mut next = vec![false; n + 1];
        for token in &self.tokens {
            next.iter_mut().for_each(|b| *b = false);
            match *token {
                Token::Literal(c) => {
                    for j in 0..n {
                        next[j + 1] = prev[j] && self.char_eq(text[j], c);
                    }
                }
                Token::One => next[1..=n].copy_from_slice(&prev[..n]),
                Token::Any => {
                    let mut reach = false;
                    for j in 0..=n {
                        reach = reach || prev[j];
                        next[j] = reach;
                    }
                }
                Token::Words => {
                    // Either nothing, or a space at some k >= start followed by anything.
                    let mut started = false;
                    for j in 0..=n {
                        next[j] = prev[j] || started;
                        if j < n && prev[j] && text[j] == ' ' {
                            started = true;
                        }
                    }
                }
            }
            std::mem::swap(&mut prev, &mut next);
        }
        prev[n]
    }

    fn char_eq(&self, a: char, b: char) -> bool {
        if self.ignore_ascii_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    }
}

impl std::fmt::Display for Glob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// Matches `text` against `pattern` (case-sensitive).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    Glob::new(pattern).is_match(text)
}

/// Escapes `*`, `?` and `\` so that `s` matches only itself; variable values are inserted
/// into patterns this way, so a password containing `*` is not a wildcard.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_and_question_mark() {
        assert!(glob_match("250 *", "250 OK"));
        assert!(glob_match("2?0 OK", "250 OK"));
        assert!(!glob_match("2?0 OK", "25 OK"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*c", "abbbc"));
        assert!(!glob_match("a*c", "abbbd"));
        assert!(glob_match("5.7.*", "5.7.8"));
        assert!(!glob_match("5.7.*", "5.5.4"));
    }

    #[test]
    fn word_star_matches_zero_or_more_words() {
        let p = Glob::new("250-AUTH * LOGIN *");
        assert!(p.is_match("250-AUTH LOGIN"));
        assert!(p.is_match("250-AUTH PLAIN LOGIN"));
        assert!(p.is_match("250-AUTH LOGIN DIGEST-MD5 CRAM-MD5 PLAIN"));
        assert!(p.is_match("250-AUTH DIGEST-MD5 PLAIN CRAM-MD5 LOGIN"));
        assert!(!p.is_match("250-AUTH PLAIN CRAM-MD5"));
        assert!(!p.is_match("250-AUTH PLAINLOGIN"));
        assert!(!p.is_match("250-AUTH=LOGIN PLAIN"));
    }

    #[test]
    fn escapes_are_literal() {
        assert!(glob_match(r"a\*b", "a*b"));
        assert!(!glob_match(r"a\*b", "axb"));
        assert!(glob_match(&escape("p*ss?"), "p*ss?"));
        assert!(!glob_match(&escape("p*ss?"), "pXssY"));
        assert!(glob_match("tail\\", "tail\\"));
    }

    #[test]
    fn case_folding_is_opt_in() {
        assert!(!glob_match("auth plain", "AUTH PLAIN"));
        assert!(Glob::new_ignore_ascii_case("auth p*").is_match("AUTH PLAIN"));
    }
}
