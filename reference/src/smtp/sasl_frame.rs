//! The base64 framing of SASL messages in SMTP, RFC 4954 §4.
//!
//! ```text
//! base64          = base64-terminal /
//!                   ( 1*(4base64-char) [base64-terminal] )   ; RFC 4954 §8
//! base64-char     = ALPHA / DIGIT / "+" / "/"
//! base64-terminal = (2base64-char "==") / (3base64-char "=")
//! continue-req    = "334" SP [base64] CRLF
//! initial-response= base64 / "="
//! cancel-response = "*"
//! ```
//!
//! The decoder is strict: the standard alphabet only, padding required and only at
//! the end, no whitespace or line breaks inside, and no non-zero bits in the unused
//! low bits of the last symbol (RFC 4648 §3.5 "canonical encoding"), so every
//! message has exactly one spelling. Mechanisms never see base64; they get bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::fmt;

/// A broken rule of the base64 grammar of RFC 4954 §8 / RFC 4648 §4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base64Error {
    /// RFC 4648 §3.3 / RFC 4954 §8: whitespace is not part of `base64`.
    WhitespaceNotAllowed {
        /// 0-based octet offset into the base64 text.
        offset: usize,
    },
    /// RFC 4648 §4: the octet is not in the standard alphabet (`A-Z a-z 0-9 + /`);
    /// this also catches the URL-safe `-` and `_`.
    CharacterNotInAlphabet {
        /// 0-based octet offset into the base64 text.
        offset: usize,
        /// The octet found there.
        byte: u8,
    },
    /// RFC 4648 §3.3: `=` may only end the text.
    PaddingNotAtEnd {
        /// 0-based octet offset into the base64 text.
        offset: usize,
    },
    /// RFC 4648 §4: at most two `=` pad a quantum.
    TooMuchPadding {
        /// 0-based octet offset into the base64 text.
        offset: usize,
    },
    /// RFC 4954 §8 `base64`: whole 4-symbol quanta, padding included.
    LengthNotMultipleOfFour {
        /// The text's length in octets.
        length: usize,
    },
    /// RFC 4648 §3.5: the pad bits of the last symbol before `=` must be zero.
    NonZeroTrailingBits {
        /// 0-based offset of the symbol whose pad bits are set.
        offset: usize,
    },
    /// RFC 4954 §4: an initial response is `base64 / "="`; empty text is neither
    /// (an empty initial response is sent as `=`).
    EmptyInitialResponse,
}

impl fmt::Display for Base64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base64Error::WhitespaceNotAllowed { offset } => {
                write!(f, "base64: whitespace at {offset}")
            }
            Base64Error::CharacterNotInAlphabet { offset, byte } => {
                write!(
                    f,
                    "base64: octet 0x{byte:02X} at {offset} is not in the alphabet"
                )
            }
            Base64Error::PaddingNotAtEnd { offset } => {
                write!(f, "base64: '=' at {offset} is not at the end")
            }
            Base64Error::TooMuchPadding { offset } => {
                write!(f, "base64: more than two '=' (at {offset})")
            }
            Base64Error::LengthNotMultipleOfFour { length } => {
                write!(f, "base64: length {length} is not a multiple of 4")
            }
            Base64Error::NonZeroTrailingBits { offset } => {
                write!(f, "base64: non-zero pad bits in the symbol at {offset}")
            }
            Base64Error::EmptyInitialResponse => {
                write!(f, "an empty initial response must be sent as '='")
            }
        }
    }
}

impl std::error::Error for Base64Error {}

/// A client's line during an AUTH exchange (RFC 4954 §4).
#[derive(Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// `*`: the client cancels the exchange; the server answers 501.
    Cancel,
    /// A decoded response; empty for an empty line.
    Data(Vec<u8>),
}

impl fmt::Debug for ClientMessage {
    // Responses carry passwords (PLAIN, LOGIN): print only their length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientMessage::Cancel => f.write_str("Cancel"),
            ClientMessage::Data(d) => write!(f, "Data(<{} octets>)", d.len()),
        }
    }
}

fn sextet(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Strictly decodes RFC 4648 §4 base64; empty text decodes to no octets.
pub fn decode_strict(text: &[u8]) -> Result<Vec<u8>, Base64Error> {
    let mut pad_start = None;
    for (offset, &b) in text.iter().enumerate() {
        if b == b'=' {
            match pad_start {
                None => pad_start = Some(offset),
                Some(start) if offset - start >= 2 => {
                    return Err(Base64Error::TooMuchPadding { offset });
                }
                Some(_) => {}
            }
            continue;
        }
        if sextet(b).is_none() {
            return Err(if b.is_ascii_whitespace() {
                Base64Error::WhitespaceNotAllowed { offset }
            } else {
                Base64Error::CharacterNotInAlphabet { offset, byte: b }
            });
        }
        if let Some(start) = pad_start {
            return Err(Base64Error::PaddingNotAtEnd { offset: start });
        }
    }
    if text.len() % 4 != 0 {
        return Err(Base64Error::LengthNotMultipleOfFour { length: text.len() });
    }
    if let Some(start) = pad_start {
        // With "==" the last symbol contributes 2 bits to the data, with "=" 4.
        let pads = text.len() - start;
        let last = start.wrapping_sub(1);
        let unused_mask = if pads == 2 { 0x0f } else { 0x03 };
        match text.get(last).and_then(|&b| sextet(b)) {
            Some(v) if v & unused_mask == 0 => {}
            Some(_) => return Err(Base64Error::NonZeroTrailingBits { offset: last }),
            // "==" or "=" at a quantum start: the quantum is too short.
            None => return Err(Base64Error::TooMuchPadding { offset: start }),
        }
    }
    // Every rule was checked above; the engine (canonical padding, no trailing bits)
    // agrees, and any disagreement is reported rather than trusted.
    STANDARD.decode(text).map_err(|e| match e {
        base64::DecodeError::InvalidByte(offset, byte) => {
            Base64Error::CharacterNotInAlphabet { offset, byte }
        }
        base64::DecodeError::InvalidLastSymbol(offset, _) => {
            Base64Error::NonZeroTrailingBits { offset }
        }
        base64::DecodeError::InvalidLength(length) => {
            Base64Error::LengthNotMultipleOfFour { length }
        }
        base64::DecodeError::InvalidPadding => Base64Error::TooMuchPadding {
            offset: pad_start.unwrap_or(text.len()),
        },
    })
}

/// Encodes with the standard alphabet and padding.
pub fn encode_strict(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// A client's response line (without CRLF) in an AUTH exchange: `*` cancels,
/// anything else is base64 (RFC 4954 §4), an empty line an empty response.
pub fn decode_response(line: &[u8]) -> Result<ClientMessage, Base64Error> {
    if line == b"*" {
        return Ok(ClientMessage::Cancel);
    }
    decode_strict(line).map(ClientMessage::Data)
}

/// The initial-response argument of AUTH (RFC 4954 §4): `=` is the empty response;
/// empty text is not allowed.
pub fn decode_initial_response(text: &[u8]) -> Result<Vec<u8>, Base64Error> {
    match text {
        b"" => Err(Base64Error::EmptyInitialResponse),
        b"=" => Ok(Vec::new()),
        _ => decode_strict(text),
    }
}

/// `=` for an empty initial response (RFC 4954 §4), base64 otherwise.
pub fn encode_initial_response(data: &[u8]) -> String {
    if data.is_empty() {
        "=".to_owned()
    } else {
        encode_strict(data)
    }
}

/// A response line during the exchange: empty for an empty response.
pub fn encode_response(data: &[u8]) -> String {
    encode_strict(data)
}

/// The text of a `334` reply (after `334 `) as challenge bytes; empty text is an
/// empty challenge.
pub fn decode_challenge(text: &[u8]) -> Result<Vec<u8>, Base64Error> {
    decode_strict(text)
}

/// The text to put after `334 `.
pub(crate) fn encode_challenge(data: &[u8]) -> String {
    encode_strict(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4954_plain_initial_response() {
        // RFC 4954 §4 example: AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=
        assert_eq!(
            decode_initial_response(b"dGVzdAB0ZXN0ADEyMzQ=").unwrap(),
            b"test\0test\x001234"
        );
        assert_eq!(
            encode_initial_response(b"test\0test\x001234"),
            "dGVzdAB0ZXN0ADEyMzQ="
        );
    }

    #[test]
    fn empty_forms() {
        assert_eq!(decode_initial_response(b"=").unwrap(), b"");
        assert_eq!(
            decode_initial_response(b""),
            Err(Base64Error::EmptyInitialResponse)
        );
        assert_eq!(encode_initial_response(b""), "=");
        assert_eq!(encode_response(b""), "");
        assert_eq!(
            decode_response(b"").unwrap(),
            ClientMessage::Data(Vec::new())
        );
        assert_eq!(decode_response(b"*").unwrap(), ClientMessage::Cancel);
        assert_eq!(decode_challenge(b"").unwrap(), b"");
    }

    #[test]
    fn each_rule_is_named() {
        use Base64Error::*;
        assert_eq!(
            decode_strict(b"QQ= ="),
            Err(WhitespaceNotAllowed { offset: 3 })
        );
        assert_eq!(
            decode_strict(b"QU JD"),
            Err(WhitespaceNotAllowed { offset: 2 })
        );
        assert_eq!(
            decode_strict(b"QQ-_"),
            Err(CharacterNotInAlphabet {
                offset: 2,
                byte: b'-'
            })
        );
        assert_eq!(decode_strict(b"QQ=A"), Err(PaddingNotAtEnd { offset: 2 }));
        assert_eq!(decode_strict(b"Q==="), Err(TooMuchPadding { offset: 3 }));
        assert_eq!(decode_strict(b"===="), Err(TooMuchPadding { offset: 2 }));
        assert_eq!(
            decode_strict(b"QQ"),
            Err(LengthNotMultipleOfFour { length: 2 })
        );
        assert_eq!(
            decode_strict(b"QR=="),
            Err(NonZeroTrailingBits { offset: 1 })
        );
        assert_eq!(decode_strict(b"QUI="), Ok(b"AB".to_vec()));
        assert_eq!(
            decode_strict(b"QUJ="),
            Err(NonZeroTrailingBits { offset: 2 })
        );
        assert_eq!(
            decode_strict(b"QUJD=="),
            Err(LengthNotMultipleOfFour { length: 6 })
        );
        assert_eq!(
            decode_strict(b"QUJDR==="),
            Err(TooMuchPadding { offset: 7 })
        );
    }

    #[test]
    fn debug_hides_response_content() {
        let m = decode_response(b"dGVzdAB0ZXN0ADEyMzQ=").unwrap();
        assert_eq!(format!("{m:?}"), "Data(<14 octets>)");
    }
}
