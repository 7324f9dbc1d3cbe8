//! xtext, RFC 3461 §4, as used by the `AUTH=` parameter of MAIL (RFC 4954 §5).
//!
//! ```text
//! xtext   = *( xchar / hexchar )
//! xchar   = any ASCII CHAR between "!" (33) and "~" (126) inclusive,
//!           except for "+" and "="
//! hexchar = ASCII "+" immediately followed by two upper case hexadecimal digits
//! ```
//!
//! RFC 3461 lets an encoder escape any octet, so `+41` is valid xtext for `A`;
//! [`encode`] escapes only what must be escaped, which makes its output the
//! canonical form that [`decode`] round-trips to.

use std::fmt;

/// A rule of RFC 3461 §4 broken by xtext input. Offsets are into the xtext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XtextError {
    /// `xchar` is `!`..`~` except `+` and `=`: this octet is neither an xchar nor
    /// the start of a hexchar (SP, controls, `=`, 8-bit).
    CharacterNotAllowed {
        /// 0-based octet offset into the xtext.
        offset: usize,
        /// The octet found there.
        byte: u8,
    },
    /// `hexchar` needs two digits after `+`; the input ended first.
    TruncatedEscape {
        /// 0-based offset of the `+` that starts the escape.
        offset: usize,
    },
    /// `hexchar` digits are upper case: `+2b` is not xtext, `+2B` is.
    LowercaseHex {
        /// 0-based octet offset into the xtext.
        offset: usize,
    },
    /// A `hexchar` digit is not `0`-`9` / `A`-`F`.
    InvalidHexDigit {
        /// 0-based octet offset into the xtext.
        offset: usize,
        /// The octet found there.
        byte: u8,
    },
}

impl fmt::Display for XtextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XtextError::CharacterNotAllowed { offset, byte } => write!(
                f,
                "xtext: octet 0x{byte:02X} at {offset} must be hex-encoded (RFC 3461 §4)"
            ),
            XtextError::TruncatedEscape { offset } => {
                write!(
                    f,
                    "xtext: '+' at {offset} needs two hex digits (RFC 3461 §4)"
                )
            }
            XtextError::LowercaseHex { offset } => write!(
                f,
                "xtext: hex digit at {offset} is lower case (RFC 3461 §4 hexchar)"
            ),
            XtextError::InvalidHexDigit { offset, byte } => write!(
                f,
                "xtext: octet 0x{byte:02X} at {offset} is not a hex digit (RFC 3461 §4)"
            ),
        }
    }
}

impl std::error::Error for XtextError {}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether `b` is an `xchar` and may stand for itself.
#[inline]
pub(crate) fn is_xchar(b: u8) -> bool {
    (b'!'..=b'~').contains(&b) && b != b'+' && b != b'='
}

/// Encodes `raw` as canonical xtext: every octet that is not an `xchar` becomes
/// `+XX` with upper-case hex, every xchar stands for itself.
pub fn encode(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for &b in raw {
        if is_xchar(b) {
            out.push(char::from(b));
        } else {
            out.push('+');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

fn hex_value(text: &[u8], offset: usize) -> Result<u8, XtextError> {
    let Some(&b) = text.get(offset) else {
        return Err(XtextError::TruncatedEscape {
            offset: offset.saturating_sub(1),
        });
    };
    match b {
        b'0'..=b'9' => Ok(b - b'0'),
        b'A'..=b'F' => Ok(b - b'A' + 10),
        b'a'..=b'f' => Err(XtextError::LowercaseHex { offset }),
        _ => Err(XtextError::InvalidHexDigit { offset, byte: b }),
    }
}

/// Decodes xtext. Any hexchar is accepted, canonical or not (RFC 3461 §4 "MAY
/// instead be encoded as a hexchar").
pub fn decode(text: &[u8]) -> Result<Vec<u8>, XtextError> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if b == b'+' {
            // A '+' with fewer than two octets after it is truncated, whatever
            // follows; report at the '+'.
            if text.len() - i < 3 {
                return Err(XtextError::TruncatedEscape { offset: i });
            }
            let hi = hex_value(text, i + 1)?;
            let lo = hex_value(text, i + 2)?;
            out.push((hi << 4) | lo);
            i += 3;
        } else if is_xchar(b) {
            out.push(b);
            i += 1;
        } else {
            return Err(XtextError::CharacterNotAllowed { offset: i, byte: b });
        }
    }
    Ok(out)
}

/// Whether `text` is xtext exactly as [`encode`] would write it (no needless escape).
pub fn is_canonical(text: &[u8]) -> bool {
    match decode(text) {
        Ok(raw) => encode(&raw).as_bytes() == text,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4954_example_decodes() {
        // RFC 4954 §5 example: AUTH=e+3Dmc2@example.com
        assert_eq!(
            decode(b"e+3Dmc2@example.com").unwrap(),
            b"e=mc2@example.com"
        );
        assert_eq!(encode(b"e=mc2@example.com"), "e+3Dmc2@example.com");
    }

    #[test]
    fn plus_and_space_are_escaped() {
        assert_eq!(encode(b"a+b c"), "a+2Bb+20c");
        assert_eq!(encode(&[0x00, 0xff]), "+00+FF");
    }

    #[test]
    fn every_rule_has_its_error() {
        assert_eq!(
            decode(b"a=b"),
            Err(XtextError::CharacterNotAllowed {
                offset: 1,
                byte: b'='
            })
        );
        assert_eq!(
            decode(b"a b"),
            Err(XtextError::CharacterNotAllowed {
                offset: 1,
                byte: b' '
            })
        );
        assert_eq!(
            decode(b"ab+2"),
            Err(XtextError::TruncatedEscape { offset: 2 })
        );
        assert_eq!(decode(b"+"), Err(XtextError::TruncatedEscape { offset: 0 }));
        assert_eq!(decode(b"+2b"), Err(XtextError::LowercaseHex { offset: 2 }));
        assert_eq!(
            decode(b"+G0"),
            Err(XtextError::InvalidHexDigit {
                offset: 1,
                byte: b'G'
            })
        );
    }

    #[test]
    fn non_canonical_escape_is_valid_but_not_canonical() {
        assert_eq!(decode(b"+41").unwrap(), b"A");
        assert!(!is_canonical(b"+41"));
        assert!(is_canonical(b"e+3Dmc2"));
    }
}
