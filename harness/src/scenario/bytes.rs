//! Byte-level notation for `raw` strings and `send_bytes`.
//!
//! A strict server must be shown bare LF, bare CR, NUL and 8-bit bytes (RFC 5321 §2.3.8,
//! §4.1.1.4), and YAML strings cannot carry all of them readably, so `raw` strings take
//! the escapes `\r`, `\n`, `\t`, `\0`, `\\` and `\xHH`.

use std::fmt;

/// A malformed escape in a raw string or a malformed hex string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EscapeError {
    /// A backslash followed by a character that is not an escape we know.
    UnknownEscape { offset: usize, found: char },
    /// A backslash at the very end of the string.
    TrailingBackslash,
    /// `\x` not followed by two hex digits.
    BadHexEscape { offset: usize },
    /// A `hex:` string with a character that is neither a hex digit nor white space.
    NotHex { offset: usize, found: char },
    /// A `hex:` string with an odd number of digits.
    OddHexLength,
}

impl fmt::Display for EscapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EscapeError::UnknownEscape { offset, found } => write!(
                f,
                "unknown escape `\\{found}` at byte {offset} (known: \\r \\n \\t \\0 \\\\ \\xHH)"
            ),
            EscapeError::TrailingBackslash => f.write_str("the string ends with a lone backslash"),
            EscapeError::BadHexEscape { offset } => {
                write!(
                    f,
                    "`\\x` at byte {offset} is not followed by two hex digits"
                )
            }
            EscapeError::NotHex { offset, found } => {
                write!(f, "{found:?} at byte {offset} is not a hex digit")
            }
            EscapeError::OddHexLength => f.write_str("odd number of hex digits"),
        }
    }
}

impl std::error::Error for EscapeError {}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Turns a raw string into bytes, resolving the escapes.
pub fn unescape(s: &str) -> Result<Vec<u8>, EscapeError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&next) = bytes.get(i + 1) else {
            return Err(EscapeError::TrailingBackslash);
        };
        match next {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'0' => out.push(0),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hi = bytes.get(i + 2).copied().and_then(hex_value);
                let lo = bytes.get(i + 3).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(EscapeError::BadHexEscape { offset: i }),
                }
                i += 4;
                continue;
            }
            _ => {
                let found = s[i + 1..].chars().next().unwrap_or('\\');
                return Err(EscapeError::UnknownEscape { offset: i, found });
            }
        }
        i += 2;
    }
    Ok(out)
}

/// Escapes backslashes so that [`unescape`] gives `s` back; variable values are inserted
/// into raw strings this way.
pub fn escape_backslashes(s: &str) -> String {
    s.replace('\\', "\\\\")
}

/// Decodes a hex string; white space between digits is ignored.
pub fn decode_hex(s: &str) -> Result<Vec<u8>, EscapeError> {
    let mut out = Vec::with_capacity(s.len() / 2);
    let mut high: Option<u8> = None;
    for (offset, c) in s.char_indices() {
        if c.is_whitespace() {
            continue;
        }
        let v = u8::try_from(c)
            .ok()
            .and_then(hex_value)
            .ok_or(EscapeError::NotHex { offset, found: c })?;
        match high.take() {
            Some(h) => out.push(h << 4 | v),
            None => high = Some(v),
        }
    }
    if high.is_some() {
        return Err(EscapeError::OddHexLength);
    }
    Ok(out)
}

/// Shows bytes as text for transcripts: printable ASCII as is, everything else escaped
/// the way a raw string would write it, so a bare LF is visible in a report.
pub fn display_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0 => out.push_str("\\0"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            unescape(r"EHLO a\nMAIL\r\n\0\xFF\\").unwrap(),
            b"EHLO a\nMAIL\r\n\0\xff\\".to_vec()
        );
        assert_eq!(
            unescape(r"\q"),
            Err(EscapeError::UnknownEscape {
                offset: 0,
                found: 'q'
            })
        );
        assert_eq!(unescape("x\\"), Err(EscapeError::TrailingBackslash));
        assert_eq!(
            unescape(r"\x4"),
            Err(EscapeError::BadHexEscape { offset: 0 })
        );
        assert_eq!(unescape(&escape_backslashes(r"a\b")).unwrap(), br"a\b");
    }

    #[test]
    fn hex() {
        assert_eq!(decode_hex("45 48\n4c4f").unwrap(), b"EHLO");
        assert_eq!(decode_hex("4"), Err(EscapeError::OddHexLength));
        assert_eq!(
            decode_hex("4g"),
            Err(EscapeError::NotHex {
                offset: 1,
                found: 'g'
            })
        );
    }

    #[test]
    fn display_round_trips_through_unescape() {
        let bytes = b"AUTH PLAIN\n\0\xc3\r\\";
        assert_eq!(unescape(&display_bytes(bytes)).unwrap(), bytes.to_vec());
    }
}
