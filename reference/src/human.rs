//! Turning a rule-name enum into words for people: `NonceMismatch` becomes "nonce
//! mismatch", `InvalidSeparator { line: 2, byte: 9 }` becomes "invalid separator
//! (line 2, byte 9)". `Display` implementations of error enums whose variants are
//! self-describing rule names use it, so no Rust `Debug` form (CamelCase, braces) reaches
//! an SMTP reply, a log line or a CLI error.

use std::fmt::Debug;

/// The words of a `Debug` rendering of a rule-name enum.
pub fn describe<T: Debug + ?Sized>(value: &T) -> String {
    words(&format!("{value:?}"))
}

/// Converts a `Debug` rendering: identifiers split into lower-case words, `{ a: 1 }`
/// into `(a 1)`, `Outer(Inner)` into `outer: inner`, `0x` for bytes.
pub fn words(debug: &str) -> String {
    let mut out = String::with_capacity(debug.len() + 8);
    let chars: Vec<char> = debug.chars().collect();
    let mut i = 0;
    let mut field: Option<String> = None;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            // A quoted string: copied as it is.
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(chars.len());
            out.extend(&chars[start..i]);
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let ident: String = chars[start..i].iter().collect();
            // A field name (`offset:`) inside braces.
            if i < chars.len() && chars[i] == ':' {
                field = Some(ident.clone());
                out.push_str(&ident.replace('_', " "));
                i += 1;
                continue;
            }
            out.push_str(&split_camel(&ident));
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let n: String = chars[start..i].iter().collect();
            match (field.as_deref(), n.parse::<u8>()) {
                (Some("byte"), Ok(b)) => out.push_str(&format!("0x{b:02X}")),
                _ => out.push_str(&n),
            }
            continue;
        }
        match c {
            '{' => {
                // `Name { ... }` → `name (...)`
                if out.ends_with(' ') {
                    out.pop();
                }
                out.push_str(" (");
                i += 1;
                while i < chars.len() && chars[i] == ' ' {
                    i += 1;
                }
                continue;
            }
            '}' => {
                while out.ends_with(' ') {
                    out.pop();
                }
                out.push(')');
                field = None;
            }
            '(' => out.push_str(": "),
            ')' => {}
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// `NonceMismatch` → `nonce mismatch`; acronyms stay (`SCRAM`), digits stay attached.
fn split_camel(ident: &str) -> String {
    let chars: Vec<char> = ident.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let boundary = i > 0
            && c.is_ascii_uppercase()
            && (chars[i - 1].is_ascii_lowercase()
                || chars[i - 1].is_ascii_digit()
                || chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase())
                    && chars[i - 1].is_ascii_uppercase());
        if boundary {
            out.push(' ');
        }
        out.push(c);
    }
    // Words that are all capitals (UTF, SMTP) stay; the others go lower case.
    out.split(' ')
        .map(|w| {
            if w.len() > 1 && w.chars().all(|c| !c.is_ascii_lowercase()) {
                w.to_owned()
            } else {
                w.to_ascii_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `text` looks like a Rust `Debug` rendering: a CamelCase identifier
/// directly followed by `(` or ` {`, or a `field: value` inside braces. Used by tests
/// that check what people read.
pub fn looks_like_debug(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_uppercase() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let ident = &text[start..i];
            let camel = ident.len() > 2
                && ident[1..].bytes().any(|b| b.is_ascii_lowercase())
                && ident[1..].bytes().any(|b| b.is_ascii_uppercase());
            let rest = &text[i..];
            if camel || rest.starts_with(" { ") {
                return true;
            }
            continue;
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_for_people() {
        assert_eq!(words("EmptyLine"), "empty line");
        assert_eq!(words("Scram(NonceMismatch)"), "scram: nonce mismatch");
        assert_eq!(
            words("InvalidHexDigit { offset: 4, byte: 90 }"),
            "invalid hex digit (offset 4, byte 0x5A)"
        );
        assert_eq!(words("InvalidUtf8"), "invalid utf8");
        assert!(!looks_like_debug(&words(
            "Xtext(InvalidHexDigit { offset: 4, byte: 90 })"
        )));
    }

    #[test]
    fn debug_shapes_are_found() {
        assert!(looks_like_debug("501 5.5.4 Syntax error: EmptyLine"));
        assert!(looks_like_debug("x: InvalidHexDigit { offset: 4 }"));
        assert!(looks_like_debug("SASL: XOAuth2(BadToken)"));
        assert!(!looks_like_debug("250-AUTH SCRAM-SHA-256 PLAIN LOGIN"));
        assert!(!looks_like_debug("535 5.7.8 Error: authentication failed"));
        assert!(!looks_like_debug("220 mx.authspec.test ESMTP"));
    }
}
