//! SMTP commands: RFC 5321 §4.1, AUTH (RFC 4954 §4, §5), STARTTLS (RFC 3207 §4),
//! BDAT (RFC 3030 §2) and the MAIL parameters SIZE (RFC 1870), BODY (RFC 6152,
//! RFC 3030), SMTPUTF8 (RFC 6531) and AUTH (RFC 4954 §5).
//!
//! [`parse`] takes one line without its CRLF (framing and its deviations belong to
//! [`super::line`]) and either returns the command or names the grammar rule the line
//! breaks; [`parse_ref`] does the same without copying, its command borrowing its
//! fields from the line (`Command<&str>`; `Command` alone is the owned
//! `Command<String>`). It is strict: a single SP between elements, no trailing
//! data, no control octets, no space around the colon of `FROM:`/`TO:`. Verbs,
//! `FROM:`/`TO:` and parameter keywords are case-insensitive (RFC 5321 §2.4);
//! mailboxes and domains keep the case they were sent in. UTF-8 is accepted where RFC 6531 §3.3 extends
//! the grammar (atext, qtext, sub-domain, esmtp-value); whether SMTPUTF8 was
//! negotiated is the session's business.
//!
//! Source routes (`<@a,@b:user@c>`, RFC 5321 §4.1.2 `A-d-l`) are parsed and dropped:
//! the ABNF comment there says the form "MUST BE accepted, SHOULD NOT be generated,
//! and SHOULD be ignored" (see also Appendix C).

use super::xtext::{self, XtextError};
use std::fmt;

/// RFC 5321 §4.5.3.1.1: a local-part is at most 64 octets.
pub(crate) const LOCAL_PART_LIMIT: usize = 64;
/// RFC 5321 §4.5.3.1.2: a domain is at most 255 octets.
pub(crate) const DOMAIN_LIMIT: usize = 255;
/// RFC 5321 §4.5.3.1.3: a path is at most 256 octets, brackets included.
pub(crate) const PATH_LIMIT: usize = 256;
/// RFC 1035 §2.3.4: a label is at most 63 octets.
pub(crate) const LABEL_LIMIT: usize = 63;
/// RFC 4422 §3.1: `sasl-mech = 1*20mech-char`.
pub(crate) const MECHANISM_NAME_LIMIT: usize = 20;

/// One SMTP command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<S: AsRef<str> = String> {
    /// `helo = "HELO" SP Domain CRLF` (RFC 5321 §4.1.1.1).
    Helo {
        /// The client's domain name as sent; not resolved or checked against the peer.
        domain: S,
    },
    /// `ehlo = "EHLO" SP ( Domain / address-literal ) CRLF` (RFC 5321 §4.1.1.1).
    /// An address literal keeps its brackets.
    Ehlo {
        /// The domain or address literal (`[192.0.2.1]`) as sent.
        domain: S,
    },
    /// `mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF` (§4.1.1.2).
    Mail {
        /// `<>` or the sender's mailbox.
        from: ReversePath<S>,
        /// `Mail-parameters`, in the order sent.
        params: Vec<Param<S>>,
    },
    /// `rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" /
    /// Forward-path ) [SP Rcpt-parameters] CRLF` (§4.1.1.3). No RCPT parameter is
    /// interpreted here: all of them are [`Param::Other`].
    Rcpt {
        /// The recipient, or the special `<Postmaster>`.
        to: ForwardPath<S>,
        /// `Rcpt-parameters`, in the order sent, uninterpreted.
        params: Vec<Param<S>>,
    },
    /// `data = "DATA" CRLF` (§4.1.1.4).
    Data,
    /// `bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CRLF` (RFC 3030 §2).
    Bdat {
        /// `chunk-size`: the octets of message data that follow the command line.
        size: u64,
        /// `end-marker` (`LAST`) was present: this chunk ends the message.
        last: bool,
    },
    /// `rset = "RSET" CRLF` (§4.1.1.5).
    Rset,
    /// `quit = "QUIT" CRLF` (§4.1.1.10).
    Quit,
    /// `STARTTLS` with no parameters (RFC 3207 §4).
    StartTls,
    /// `vrfy = "VRFY" SP String CRLF` (§4.1.1.6). Quoted strings keep their quotes.
    Vrfy {
        /// The user or mailbox to verify, as sent.
        arg: S,
    },
    /// `expn = "EXPN" SP String CRLF` (§4.1.1.7).
    Expn {
        /// The mailing list to expand, as sent.
        arg: S,
    },
    /// `help = "HELP" [ SP String ] CRLF` (§4.1.1.8).
    Help {
        /// The topic asked about, if any.
        arg: Option<S>,
    },
    /// `noop = "NOOP" [ SP String ] CRLF` (§4.1.1.9).
    Noop {
        /// The ignored argument (§4.1.1.9 allows one), if any.
        arg: Option<S>,
    },
    /// `"AUTH" SP sasl-mech [SP initial-response]` (RFC 4954 §4).
    Auth {
        /// `sasl-mech` as sent (case kept; compare with `Mechanism::from_name`).
        mechanism: S,
        /// The initial response on the AUTH line, if the client sent one.
        initial_response: Option<InitialResponse<S>>,
    },
}

/// The optional initial response of AUTH (RFC 4954 §4: `initial-response = base64 /
/// "="`). The base64 stays undecoded here; see [`super::sasl_frame`].
#[derive(Clone, PartialEq, Eq)]
pub enum InitialResponse<S: AsRef<str> = String> {
    /// `=`: an initial response of zero octets.
    Empty,
    /// Base64 text, checked for its alphabet only.
    Base64(S),
}

impl<S: AsRef<str>> fmt::Debug for InitialResponse<S> {
    // The initial response of PLAIN is the password, barely encoded.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitialResponse::Empty => f.write_str("Empty"),
            InitialResponse::Base64(t) => write!(f, "Base64(<{} chars>)", t.as_ref().len()),
        }
    }
}

/// `Reverse-path = Path / "<>"` (RFC 5321 §4.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReversePath<S = String> {
    /// `<>`, the null reverse-path of bounces (§4.5.5).
    Null,
    /// The mailbox, without brackets and without any source route.
    Mailbox(S),
}

/// `Forward-path = Path`, plus the special `<Postmaster>` (RFC 5321 §4.1.1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardPath<S = String> {
    /// `<Postmaster>` (any case) with no domain; §4.5.1 says it MUST be accepted.
    Postmaster,
    /// The mailbox, without brackets and without any source route.
    Mailbox(S),
}

/// A MAIL or RCPT parameter (`esmtp-param`, RFC 5321 §4.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param<S = String> {
    /// `SIZE=` (RFC 1870 §6: `size-value = 1*20DIGIT`).
    Size(u64),
    /// `BODY=` (RFC 6152 §2, RFC 3030 §3).
    Body(Body),
    /// `SMTPUTF8`, no value (RFC 6531 §3.4).
    SmtpUtf8,
    /// `AUTH=` (RFC 4954 §5).
    Auth(MailAuth),
    /// Any other parameter, keyword and value as received.
    Other {
        /// `esmtp-keyword` as sent.
        keyword: S,
        /// `esmtp-value`, if the parameter had `=`.
        value: Option<S>,
    },
}

/// The value of `BODY=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// `7BIT`: the message is 7-bit ASCII (RFC 6152 §2).
    SevenBit,
    /// `8BITMIME`: octets ≥ 0x80 may occur in the body (RFC 6152 §2).
    EightBitMime,
    /// `BINARYMIME`: arbitrary octets, sent with BDAT only (RFC 3030 §3).
    BinaryMime,
}

/// The value of MAIL's `AUTH=` parameter (RFC 4954 §5: an xtext-encoded addr-spec,
/// or `<>` when the submitter is unknown or not trusted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailAuth {
    /// `AUTH=<>`.
    Unknown,
    /// The xtext-decoded identity, never empty (`esmtp-value` is `1*` octets). It
    /// must be UTF-8; it is not checked further as an RFC 5322 addr-spec.
    Mailbox(String),
}

/// A grammar rule broken by a command line. Offsets are into the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// RFC 5321 §4.1.1: a command is a verb, at least; the line was empty.
    EmptyLine,
    /// RFC 5321 §4.1.1 / §2.4: NUL appears in no command grammar.
    Nul {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 5321 §4.1.2: no command element admits a control octet (HT, CR, DEL and
    /// the other C0 controls included; elements are separated by SP only).
    ControlCharacter {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 6531 §3.3: octets ≥ 0x80 are allowed only as UTF-8.
    InvalidUtf8 {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 5321 §2.4 / RFC 6531 §3.3: an octet ≥ 0x80 in an element that stays
    /// ASCII even with SMTPUTF8 (verb, keyword, mechanism, address literal).
    EightBitNotAllowed {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 5321 §4.1.1: the verb is none of those this parser knows.
    UnknownVerb,
    /// The command requires an argument: `"EHLO" SP Domain`, `"VRFY" SP String`...
    MissingArgument {
        /// The verb that lacked its argument.
        verb: &'static str,
    },
    /// The command takes no argument: `"DATA" CRLF`, `"QUIT" CRLF`, `"STARTTLS"`.
    UnexpectedArgument {
        /// The verb that takes no argument.
        verb: &'static str,
    },
    /// RFC 5321 §4.1.1: the line ends with SP where the grammar has CRLF.
    TrailingWhitespace {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 5321 §4.1.2: elements are separated by exactly one SP.
    ExtraSpace {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 5321 §4.1.1: the grammar ended (CRLF expected) but more octets follow.
    TrailingData {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 5321 §4.1.1.2: `mail = "MAIL FROM:" ...`.
    ExpectedFromColon,
    /// RFC 5321 §4.1.1.3: `rcpt = "RCPT TO:" ...`.
    ExpectedToColon,
    /// RFC 5321 §4.1.2: "spaces are not permitted on either side of the colon
    /// following FROM in the MAIL command or TO in the RCPT command".
    SpaceAroundColon {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 5321 §4.1.2: `Path = "<" [ A-d-l ":" ] Mailbox ">"`.
    PathNotInAngleBrackets {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 5321 §4.1.1.3: the forward-path of RCPT is a Path; `<>` is not one.
    EmptyForwardPath,
    /// RFC 5321 §4.1.2: `A-d-l = At-domain *( "," At-domain )`,
    /// `At-domain = "@" Domain`, followed by ":".
    InvalidSourceRoute {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 5321 §4.1.2: `Local-part = Dot-string / Quoted-string`.
    InvalidLocalPart {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 5321 §4.1.2: `Mailbox = Local-part "@" ( Domain / address-literal )`.
    MissingAtSign {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 5321 §4.1.2: `Domain = sub-domain *("." sub-domain)`,
    /// `sub-domain = Let-dig [Ldh-str]` (labels ≤ 63 octets, RFC 1035 §2.3.4).
    InvalidDomain {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 5321 §4.1.3: `address-literal = "[" ( IPv4-address-literal /
    /// IPv6-address-literal / General-address-literal ) "]"`.
    InvalidAddressLiteral {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 5321 §4.5.3.1.1: local-part ≤ 64 octets.
    LocalPartTooLong {
        /// The local-part's length in octets.
        length: usize,
    },
    /// RFC 5321 §4.5.3.1.2: a domain name or number (address literal, brackets
    /// included) ≤ 255 octets.
    DomainTooLong {
        /// The domain's length in octets.
        length: usize,
    },
    /// RFC 5321 §4.5.3.1.3: path ≤ 256 octets including the brackets.
    PathTooLong {
        /// The path's length in octets, brackets included.
        length: usize,
    },
    /// RFC 5321 §4.1.2: `String = Atom / Quoted-string` (VRFY, EXPN, HELP, NOOP).
    InvalidString {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 5321 §4.1.2: `esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`.
    InvalidParamKeyword {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 5321 §4.1.2: `esmtp-value = 1*(%d33-60 / %d62-126)` (plus UTF-8 under
    /// RFC 6531 §3.3).
    InvalidParamValue {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// The parameter is defined with a value (`SIZE=`, `BODY=`, `AUTH=`).
    MissingParamValue {
        /// The parameter that needs `=value`.
        keyword: &'static str,
    },
    /// The parameter is defined without a value (`SMTPUTF8`, RFC 6531 §3.4).
    UnexpectedParamValue {
        /// The parameter that takes no value.
        keyword: &'static str,
    },
    /// A parameter keyword appears twice. No extension defines a meaning for that,
    /// and RFC 5321 §4.1.1.11 treats parameters as keyword/value pairs.
    DuplicateParam {
        /// The repeated keyword, as sent.
        keyword: String,
    },
    /// RFC 1870 §6: `size-value = 1*20DIGIT`.
    SizeNotNumeric {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 1870 §6: more than 20 digits, or more than this parser can count (2^64-1).
    SizeTooLarge,
    /// RFC 6152 §2 / RFC 3030 §3: `BODY=` is `7BIT`, `8BITMIME` or `BINARYMIME`.
    UnknownBodyValue,
    /// RFC 4954 §5: `auth-param = "AUTH=" xtext`; the xtext is malformed (RFC 3461 §4).
    Xtext(XtextError),
    /// RFC 4954 §5: the decoded `AUTH=` value is an addr-spec, so text; it was not
    /// UTF-8.
    AuthParamNotUtf8,
    /// RFC 4422 §3.1: `sasl-mech = 1*20mech-char`, `mech-char = UPPER-ALPHA /
    /// DIGIT / HYPHEN / UNDERSCORE`.
    InvalidMechanismName {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 4422 §3.1: mechanism names are upper case; a lower-case letter was sent.
    /// Separate from [`Self::InvalidMechanismName`] because many servers (Postfix)
    /// tolerate it.
    MechanismNameNotUpperCase {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 4954 §4: `initial-response = base64 / "="`; an octet outside the base64
    /// alphabet (full decoding is [`super::sasl_frame`]'s job).
    InvalidInitialResponse {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
    /// RFC 3030 §2: `chunk-size = 1*DIGIT`, `end-marker = "LAST"`.
    InvalidBdat {
        /// 0-based octet offset into the line where the rule broke.
        offset: usize,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CommandError as E;
        // Offsets are 0-based into the line; people count columns from 1.
        match self {
            E::EmptyLine => write!(f, "empty line (a command is expected)"),
            E::Nul { offset } => write!(f, "NUL octet at column {}", offset + 1),
            E::ControlCharacter { offset } => {
                write!(f, "control character at column {}", offset + 1)
            }
            E::InvalidUtf8 { offset } => write!(f, "invalid UTF-8 at column {}", offset + 1),
            E::EightBitNotAllowed { offset } => write!(
                f,
                "8-bit octet at column {} where only ASCII is allowed",
                offset + 1
            ),
            E::UnknownVerb => write!(f, "command not recognized"),
            E::MissingArgument { verb } => write!(f, "{verb} needs an argument"),
            E::UnexpectedArgument { verb } => write!(f, "{verb} takes no argument"),
            E::TrailingWhitespace { offset } => {
                write!(f, "trailing space at column {}", offset + 1)
            }
            E::ExtraSpace { offset } => write!(
                f,
                "extra space at column {} (one space separates arguments)",
                offset + 1
            ),
            E::TrailingData { offset } => {
                write!(f, "unexpected text at column {}", offset + 1)
            }
            E::ExpectedFromColon => write!(f, "expected MAIL FROM:<address>"),
            E::ExpectedToColon => write!(f, "expected RCPT TO:<address>"),
            E::SpaceAroundColon { offset } => {
                write!(f, "space around the colon at column {}", offset + 1)
            }
            E::PathNotInAngleBrackets { offset } => write!(
                f,
                "address at column {} is not in angle brackets <...>",
                offset + 1
            ),
            E::EmptyForwardPath => write!(f, "the recipient address <> is empty"),
            E::InvalidSourceRoute { offset } => {
                write!(f, "malformed source route at column {}", offset + 1)
            }
            E::InvalidLocalPart { offset } => write!(
                f,
                "malformed local part (before the @) at column {}",
                offset + 1
            ),
            E::MissingAtSign { offset } => {
                write!(f, "address at column {} has no @domain", offset + 1)
            }
            E::InvalidDomain { offset } => {
                write!(f, "malformed domain at column {}", offset + 1)
            }
            E::InvalidAddressLiteral { offset } => {
                write!(f, "malformed address literal at column {}", offset + 1)
            }
            E::LocalPartTooLong { length } => {
                write!(f, "local part is {length} octets (at most 64)")
            }
            E::DomainTooLong { length } => write!(f, "domain is {length} octets (at most 255)"),
            E::PathTooLong { length } => write!(f, "address is {length} octets (at most 256)"),
            E::InvalidString { offset } => {
                write!(f, "malformed argument at column {}", offset + 1)
            }
            E::InvalidParamKeyword { offset } => {
                write!(f, "malformed parameter name at column {}", offset + 1)
            }
            E::InvalidParamValue { offset } => {
                write!(f, "malformed parameter value at column {}", offset + 1)
            }
            E::MissingParamValue { keyword } => {
                write!(f, "{keyword} needs a value ({keyword}=...)")
            }
            E::UnexpectedParamValue { keyword } => write!(f, "{keyword} takes no value"),
            E::DuplicateParam { keyword } => write!(f, "parameter {keyword} given twice"),
            E::SizeNotNumeric { offset } => {
                write!(f, "SIZE= value at column {} is not a number", offset + 1)
            }
            E::SizeTooLarge => write!(f, "SIZE= value is too large"),
            E::UnknownBodyValue => write!(f, "BODY= is 7BIT, 8BITMIME or BINARYMIME"),
            E::Xtext(e) => write!(f, "AUTH= parameter: {e}"),
            E::AuthParamNotUtf8 => write!(f, "AUTH= parameter is not UTF-8"),
            E::InvalidMechanismName { offset } => {
                write!(f, "malformed mechanism name at column {}", offset + 1)
            }
            E::MechanismNameNotUpperCase { offset } => write!(
                f,
                "mechanism name at column {} is not upper case",
                offset + 1
            ),
            E::InvalidInitialResponse { offset } => {
                write!(f, "initial response at column {} is not base64", offset + 1)
            }
            E::InvalidBdat { offset } => write!(
                f,
                "expected BDAT <size> [LAST], malformed at column {}",
                offset + 1
            ),
        }
    }
}

impl std::error::Error for CommandError {}

impl From<XtextError> for CommandError {
    fn from(e: XtextError) -> Self {
        CommandError::Xtext(e)
    }
}

type Res<T> = Result<T, CommandError>;

// Character classes as one table lookup each, since the parser's time goes into
// these loops. Bits: see the constants.
const ATEXT: u8 = 1; // RFC 5322 §3.2.3 atext
const LETDIG: u8 = 2; // ALPHA / DIGIT
const QTEXT: u8 = 4; // RFC 5321 qtextSMTP: %d32-33 / %d35-91 / %d93-126
const VALUE: u8 = 8; // esmtp-value: %d33-60 / %d62-126
const B64: u8 = 16; // base64-char
const MECH: u8 = 32; // mech-char
const DCONTENT: u8 = 64; // dcontent: %d33-90 / %d94-126
const LDH: u8 = 128; // Let-dig / "-", the octets of a label

const fn class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        let alpha = b.is_ascii_alphabetic();
        let digit = b.is_ascii_digit();
        if alpha || digit {
            c |= LETDIG | ATEXT | LDH;
        }
        if b == b'-' {
            c |= LDH;
        }
        if matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'/'
                | b'='
                | b'?'
                | b'^'
                | b'_'
                | b'`'
                | b'{'
                | b'|'
                | b'}'
                | b'~'
        ) {
            c |= ATEXT;
        }
        if matches!(b, 32..=33 | 35..=91 | 93..=126) {
            c |= QTEXT;
        }
        if matches!(b, 33..=60 | 62..=126) {
            c |= VALUE;
        }
        if alpha || digit || b == b'+' || b == b'/' {
            c |= B64;
        }
        if b.is_ascii_uppercase() || digit || b == b'-' || b == b'_' {
            c |= MECH;
        }
        if matches!(b, 33..=90 | 94..=126) {
            c |= DCONTENT;
        }
        // RFC 6531 §3.3: UTF8-non-ascii extends atext, qtextSMTP, esmtp-value and
        // sub-domain; the octets are checked as UTF-8 when the element is copied.
        if b >= 0x80 {
            c |= ATEXT | QTEXT | VALUE | LETDIG | LDH;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CLASS: [u8; 256] = class_table();

#[inline(always)]
fn is(b: u8, class: u8) -> bool {
    CLASS[usize::from(b)] & class != 0
}

/// Position of the first octet at or after `pos` that is not in `class`.
#[inline(always)]
fn span(line: &[u8], pos: usize, class: u8) -> usize {
    match line.get(pos..) {
        Some(rest) => rest
            .iter()
            .position(|&b| !is(b, class))
            .map_or(line.len(), |n| pos + n),
        None => pos,
    }
}

#[inline(always)]
fn lower4(line: &[u8]) -> u32 {
    u32::from_le_bytes([
        line[0] | 0x20,
        line[1] | 0x20,
        line[2] | 0x20,
        line[3] | 0x20,
    ])
}

const fn tag(s: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*s)
}

const V_HELO: u32 = tag(b"helo");
const V_EHLO: u32 = tag(b"ehlo");
const V_MAIL: u32 = tag(b"mail");
const V_RCPT: u32 = tag(b"rcpt");
const V_DATA: u32 = tag(b"data");
const V_BDAT: u32 = tag(b"bdat");
const V_RSET: u32 = tag(b"rset");
const V_QUIT: u32 = tag(b"quit");
const V_STAR: u32 = tag(b"star");
const V_TTLS: u32 = tag(b"ttls");
const V_VRFY: u32 = tag(b"vrfy");
const V_EXPN: u32 = tag(b"expn");
const V_HELP: u32 = tag(b"help");
const V_NOOP: u32 = tag(b"noop");
const V_AUTH: u32 = tag(b"auth");
const K_SIZE: u32 = tag(b"size");
const K_BODY: u32 = tag(b"body");

/// Parses one command line (without CRLF) into a command that owns its fields.
pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    parse_ref(line).map(Command::into_owned)
}

/// [`parse`] without copying: the command's fields borrow from `line`, so parsing a
/// line allocates nothing unless it carries parameters other than `SIZE`, `BODY`,
/// `SMTPUTF8` and `AUTH=<>`. The grammar and the errors are those of [`parse`].
pub fn parse_ref(line: &[u8]) -> Result<Command<&str>, CommandError> {
    parse_grammar(line).map_err(|e| refine(line, e))
}

/// A control octet or NUL anywhere makes every other complaint secondary: report
/// the one that names the real problem.
#[cold]
fn refine(line: &[u8], e: CommandError) -> CommandError {
    for (offset, &b) in line.iter().enumerate() {
        if b == 0 {
            return CommandError::Nul { offset };
        }
        if b < 0x20 || b == 0x7f {
            return CommandError::ControlCharacter { offset };
        }
    }
    e
}

fn parse_grammar(line: &[u8]) -> Res<Command<&str>> {
    if line.is_empty() {
        return Err(CommandError::EmptyLine);
    }
    if line.len() < 4 {
        return Err(CommandError::UnknownVerb);
    }
    let verb = lower4(line);
    if line.len() > 4 && line[4] != b' ' {
        // "STARTTLS" is the only verb longer than four letters.
        if verb == V_STAR && line.len() >= 8 && lower4(&line[4..8]) == V_TTLS {
            return no_argument(line, 8, Command::StartTls, "STARTTLS");
        }
        return Err(CommandError::UnknownVerb);
    }
    match verb {
        V_MAIL => parse_mail(line),
        V_RCPT => parse_rcpt(line),
        V_EHLO => {
            let start = argument_start(line, "EHLO")?;
            let end = if line[start] == b'[' {
                address_literal(line, start)?
            } else {
                domain(line, start)?
            };
            end_of_line(line, end)?;
            Ok(Command::Ehlo {
                domain: str_at(line, start, end)?,
            })
        }
        V_HELO => {
            let start = argument_start(line, "HELO")?;
            let end = domain(line, start)?;
            end_of_line(line, end)?;
            Ok(Command::Helo {
                domain: str_at(line, start, end)?,
            })
        }
        V_AUTH => parse_auth(line),
        V_DATA => no_argument(line, 4, Command::Data, "DATA"),
        V_QUIT => no_argument(line, 4, Command::Quit, "QUIT"),
        V_RSET => no_argument(line, 4, Command::Rset, "RSET"),
        V_NOOP => Ok(Command::Noop {
            arg: optional_string(line)?,
        }),
        V_HELP => Ok(Command::Help {
            arg: optional_string(line)?,
        }),
        V_VRFY => Ok(Command::Vrfy {
            arg: required_string(line, "VRFY")?,
        }),
        V_EXPN => Ok(Command::Expn {
            arg: required_string(line, "EXPN")?,
        }),
        V_BDAT => parse_bdat(line),
        _ => Err(CommandError::UnknownVerb),
    }
}

fn no_argument<'a>(
    line: &[u8],
    verb_len: usize,
    cmd: Command<&'a str>,
    verb: &'static str,
) -> Res<Command<&'a str>> {
    match line.get(verb_len..) {
        None | Some(b"") => Ok(cmd),
        Some(rest) if rest.iter().all(|&b| b == b' ') => {
            Err(CommandError::TrailingWhitespace { offset: verb_len })
        }
        // "STARTTLSX" is an unknown verb, not STARTTLS with an argument.
        Some(rest) if rest[0] != b' ' => Err(CommandError::UnknownVerb),
        Some(_) => Err(CommandError::UnexpectedArgument { verb }),
    }
}

/// The offset of the argument after `VERB SP`, which must be there and must not
/// start with another SP.
fn argument_start(line: &[u8], verb: &'static str) -> Res<usize> {
    match line.get(5) {
        None => Err(CommandError::MissingArgument { verb }),
        Some(b' ') => Err(CommandError::ExtraSpace { offset: 5 }),
        Some(_) => Ok(5),
    }
}

fn end_of_line(line: &[u8], pos: usize) -> Res<()> {
    match line.get(pos) {
        None => Ok(()),
        Some(b' ') if line[pos..].iter().all(|&b| b == b' ') => {
            Err(CommandError::TrailingWhitespace { offset: pos })
        }
        Some(_) => Err(CommandError::TrailingData { offset: pos }),
    }
}

fn str_at(line: &[u8], start: usize, end: usize) -> Res<&str> {
    match std::str::from_utf8(&line[start..end]) {
        Ok(s) => Ok(s),
        Err(e) => Err(CommandError::InvalidUtf8 {
            offset: start + e.valid_up_to(),
        }),
    }
}

/// `Domain = sub-domain *("." sub-domain)`; returns the end offset.
fn domain(line: &[u8], start: usize) -> Res<usize> {
    let mut pos = start;
    loop {
        let label = pos;
        if pos >= line.len() || !is(line[pos], LETDIG) {
            return Err(CommandError::InvalidDomain { offset: pos });
        }
        // Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig: hyphens inside only.
        pos = span(line, pos, LDH);
        if line[pos - 1] == b'-' {
            return Err(CommandError::InvalidDomain { offset: pos - 1 });
        }
        if pos - label > LABEL_LIMIT {
            return Err(CommandError::InvalidDomain { offset: label });
        }
        if pos < line.len() && line[pos] == b'.' {
            pos += 1;
        } else {
            break;
        }
    }
    if pos - start > DOMAIN_LIMIT {
        return Err(CommandError::DomainTooLong {
            length: pos - start,
        });
    }
    Ok(pos)
}

/// `address-literal`, starting at its `[`; returns the offset after `]`.
fn address_literal(line: &[u8], start: usize) -> Res<usize> {
    let bad = |offset| CommandError::InvalidAddressLiteral { offset };
    let Some(close) = line[start..].iter().position(|&b| b == b']') else {
        return Err(bad(start));
    };
    let inner = &line[start + 1..start + close];
    if let Some(i) = inner.iter().position(|&b| b >= 0x80) {
        return Err(CommandError::EightBitNotAllowed {
            offset: start + 1 + i,
        });
    }
    let ok = if inner.first().is_some_and(u8::is_ascii_digit) {
        is_ipv4_literal(inner)
    } else if let Some(colon) = inner.iter().position(|&b| b == b':') {
        let (tag, rest) = (&inner[..colon], &inner[colon + 1..]);
        if tag.eq_ignore_ascii_case(b"IPv6") {
            // std's parser accepts the four RFC 5321 §4.1.3 IPv6 forms.
            std::str::from_utf8(rest)
                .ok()
                .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok())
                .is_some()
        } else {
            // General-address-literal = Standardized-tag ":" 1*dcontent, the tag
            // an Ldh-str.
            !tag.is_empty()
                && is(tag[0], LETDIG)
                && tag[tag.len() - 1] != b'-'
                && tag.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
                && !rest.is_empty()
                && rest.iter().all(|&b| is(b, DCONTENT))
        }
    } else {
        false
    };
    if !ok {
        return Err(bad(start));
    }
    // RFC 5321 §4.5.3.1.2: "The maximum total length of a domain name or number is
    // 255 octets": the literal, brackets included, obeys the same limit as a Domain.
    // (A General-address-literal has no other bound; found by the differential
    // fuzz target, where smtp-proto enforces it.)
    if close + 1 > DOMAIN_LIMIT {
        return Err(CommandError::DomainTooLong { length: close + 1 });
    }
    Ok(start + close + 1)
}

/// `IPv4-address-literal = Snum 3("." Snum)`, `Snum = 1*3DIGIT` ≤ 255.
fn is_ipv4_literal(s: &[u8]) -> bool {
    let mut parts = 0;
    for part in s.split(|&b| b == b'.') {
        parts += 1;
        if part.is_empty() || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
            return false;
        }
        let v = part
            .iter()
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'));
        if v > 255 {
            return false;
        }
    }
    parts == 4
}

/// `Quoted-string = DQUOTE *QcontentSMTP DQUOTE`, starting at the opening quote;
/// returns the offset after the closing one, or the offset of the bad octet.
fn quoted_string(line: &[u8], start: usize) -> Result<usize, usize> {
    let mut pos = start + 1;
    while pos < line.len() {
        match line[pos] {
            b'"' => return Ok(pos + 1),
            // quoted-pairSMTP = %d92 %d32-126
            b'\\' => match line.get(pos + 1) {
                Some(&b) if (32..=126).contains(&b) => pos += 2,
                _ => return Err(pos),
            },
            b if is(b, QTEXT) => pos += 1,
            _ => return Err(pos),
        }
    }
    Err(pos)
}

/// `Dot-string = Atom *("."  Atom)`; returns the end offset or the bad offset.
fn dot_string(line: &[u8], start: usize) -> Result<usize, usize> {
    let mut pos = start;
    loop {
        let atom = pos;
        pos = span(line, pos, ATEXT);
        if pos == atom {
            return Err(pos);
        }
        if pos < line.len() && line[pos] == b'.' {
            pos += 1;
        } else {
            return Ok(pos);
        }
    }
}

/// `Path`, starting at `<`. Returns the mailbox's (start, end) and the offset after
/// `>`.
fn path(line: &[u8], start: usize) -> Res<(usize, usize, usize)> {
    let mut pos = start + 1;
    if line.get(pos) == Some(&b'@') {
        // A-d-l ":" — validated, then dropped (RFC 5321 §4.1.2: "SHOULD be ignored").
        loop {
            if line.get(pos) != Some(&b'@') {
                return Err(CommandError::InvalidSourceRoute { offset: pos });
            }
            pos = domain(line, pos + 1)
                .map_err(|_| CommandError::InvalidSourceRoute { offset: pos + 1 })?;
            match line.get(pos) {
                Some(b',') => pos += 1,
                Some(b':') => {
                    pos += 1;
                    break;
                }
                _ => return Err(CommandError::InvalidSourceRoute { offset: pos }),
            }
        }
    }
    let mailbox = pos;
    if let Err(e) = std::str::from_utf8(&line[start..mailbox]) {
        return Err(CommandError::InvalidUtf8 {
            offset: start + e.valid_up_to(),
        });
    }
    let local_end = if line.get(pos) == Some(&b'"') {
        quoted_string(line, pos)
    } else {
        dot_string(line, pos)
    }
    .map_err(|offset| CommandError::InvalidLocalPart { offset })?;
    if local_end - mailbox > LOCAL_PART_LIMIT {
        return Err(CommandError::LocalPartTooLong {
            length: local_end - mailbox,
        });
    }
    if line.get(local_end) != Some(&b'@') {
        return Err(CommandError::MissingAtSign { offset: local_end });
    }
    let dom = local_end + 1;
    let end = if line.get(dom) == Some(&b'[') {
        address_literal(line, dom)?
    } else {
        domain(line, dom)?
    };
    if line.get(end) != Some(&b'>') {
        return Err(CommandError::PathNotInAngleBrackets { offset: end });
    }
    let after = end + 1;
    if after - start > PATH_LIMIT {
        return Err(CommandError::PathTooLong {
            length: after - start,
        });
    }
    Ok((mailbox, end, after))
}

/// Checks `" FROM:"` / `" TO:"` after the verb; returns the offset after the colon.
fn colon_keyword(line: &[u8], word: &[u8], err: CommandError) -> Res<usize> {
    let colon = 5 + word.len();
    if line.len() <= 5 {
        return Err(err);
    }
    let matches_word = line
        .get(5..colon)
        .is_some_and(|w| w.eq_ignore_ascii_case(word));
    match line.get(colon) {
        Some(b':') if matches_word => {}
        Some(b' ') if matches_word => return Err(CommandError::SpaceAroundColon { offset: colon }),
        _ => return Err(err),
    }
    if line.get(colon + 1) == Some(&b' ') {
        return Err(CommandError::SpaceAroundColon { offset: colon + 1 });
    }
    Ok(colon + 1)
}

fn parse_mail(line: &[u8]) -> Res<Command<&str>> {
    let pos = colon_keyword(line, b"FROM", CommandError::ExpectedFromColon)?;
    if line.get(pos) != Some(&b'<') {
        return Err(CommandError::PathNotInAngleBrackets { offset: pos });
    }
    let (from, after) = if line.get(pos + 1) == Some(&b'>') {
        (ReversePath::Null, pos + 2)
    } else {
        let (s, e, after) = path(line, pos)?;
        (ReversePath::Mailbox(str_at(line, s, e)?), after)
    };
    let params = params(line, after, true)?;
    Ok(Command::Mail { from, params })
}

fn parse_rcpt(line: &[u8]) -> Res<Command<&str>> {
    let pos = colon_keyword(line, b"TO", CommandError::ExpectedToColon)?;
    if line.get(pos) != Some(&b'<') {
        return Err(CommandError::PathNotInAngleBrackets { offset: pos });
    }
    let (to, after) = if line.get(pos + 1) == Some(&b'>') {
        return Err(CommandError::EmptyForwardPath);
    } else if line
        .get(pos..pos + 12)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"<postmaster>"))
    {
        (ForwardPath::Postmaster, pos + 12)
    } else {
        let (s, e, after) = path(line, pos)?;
        (ForwardPath::Mailbox(str_at(line, s, e)?), after)
    };
    let params = params(line, after, false)?;
    Ok(Command::Rcpt { to, params })
}

/// `[SP esmtp-param *(SP esmtp-param)]` up to the end of the line.
fn params(line: &[u8], mut pos: usize, mail: bool) -> Res<Vec<Param<&str>>> {
    let mut out = Vec::new();
    // Bits for SIZE, BODY, SMTPUTF8, AUTH: duplicates of known keywords are cheap.
    let mut seen = 0u8;
    while pos < line.len() {
        if line[pos] != b' ' {
            return Err(CommandError::TrailingData { offset: pos });
        }
        pos += 1;
        match line.get(pos) {
            None => return Err(CommandError::TrailingWhitespace { offset: pos - 1 }),
            Some(b' ') if line[pos..].iter().all(|&b| b == b' ') => {
                return Err(CommandError::TrailingWhitespace { offset: pos - 1 });
            }
            Some(b' ') => return Err(CommandError::ExtraSpace { offset: pos }),
            Some(_) => {}
        }
        let kw = pos;
        if !line[pos].is_ascii_alphanumeric() {
            return Err(CommandError::InvalidParamKeyword { offset: pos });
        }
        while pos < line.len() && (line[pos].is_ascii_alphanumeric() || line[pos] == b'-') {
            pos += 1;
        }
        let kw_end = pos;
        let value = match line.get(pos) {
            None | Some(b' ') => None,
            Some(b'=') => {
                let v = pos + 1;
                pos = span(line, v, VALUE);
                if pos == v || (pos < line.len() && line[pos] != b' ') {
                    return Err(CommandError::InvalidParamValue { offset: pos });
                }
                Some((v, pos))
            }
            Some(_) => return Err(CommandError::InvalidParamKeyword { offset: pos }),
        };
        let keyword = &line[kw..kw_end];
        let (bit, param) = if mail {
            mail_param(line, keyword, value)?
        } else {
            (0, None)
        };
        let param = match param {
            Some(p) => p,
            None => {
                let dup = out.iter().any(|p: &Param<&str>| match p {
                    Param::Other { keyword: k, .. } => k.as_bytes().eq_ignore_ascii_case(keyword),
                    _ => false,
                });
                if dup {
                    return Err(CommandError::DuplicateParam {
                        keyword: String::from_utf8_lossy(keyword).into_owned(),
                    });
                }
                Param::Other {
                    keyword: str_at(line, kw, kw_end)?,
                    value: value.map(|(s, e)| str_at(line, s, e)).transpose()?,
                }
            }
        };
        if seen & bit != 0 {
            return Err(CommandError::DuplicateParam {
                keyword: String::from_utf8_lossy(keyword).to_ascii_uppercase(),
            });
        }
        seen |= bit;
        out.push(param);
    }
    Ok(out)
}

/// Interprets a MAIL parameter this parser knows; `None` for any other keyword.
fn mail_param<'a>(
    line: &'a [u8],
    keyword: &[u8],
    value: Option<(usize, usize)>,
) -> Res<(u8, Option<Param<&'a str>>)> {
    let val = value.map(|(s, e)| &line[s..e]);
    match keyword.len() {
        4 => {
            let k = lower4(keyword);
            if k == K_SIZE {
                let (s, e) = value.ok_or(CommandError::MissingParamValue { keyword: "SIZE" })?;
                Ok((1, Some(Param::Size(size_value(line, s, e)?))))
            } else if k == K_BODY {
                let v = val.ok_or(CommandError::MissingParamValue { keyword: "BODY" })?;
                let body = if v.eq_ignore_ascii_case(b"8BITMIME") {
                    Body::EightBitMime
                } else if v.eq_ignore_ascii_case(b"7BIT") {
                    Body::SevenBit
                } else if v.eq_ignore_ascii_case(b"BINARYMIME") {
                    Body::BinaryMime
                } else {
                    return Err(CommandError::UnknownBodyValue);
                };
                Ok((2, Some(Param::Body(body))))
            } else if k == V_AUTH {
                let v = val.ok_or(CommandError::MissingParamValue { keyword: "AUTH" })?;
                let auth = if v == b"<>" {
                    MailAuth::Unknown
                } else {
                    let raw = xtext::decode(v)?;
                    MailAuth::Mailbox(
                        String::from_utf8(raw).map_err(|_| CommandError::AuthParamNotUtf8)?,
                    )
                };
                Ok((4, Some(Param::Auth(auth))))
            } else {
                Ok((0, None))
            }
        }
        8 if keyword.eq_ignore_ascii_case(b"SMTPUTF8") => {
            if value.is_some() {
                return Err(CommandError::UnexpectedParamValue {
                    keyword: "SMTPUTF8",
                });
            }
            Ok((8, Some(Param::SmtpUtf8)))
        }
        _ => Ok((0, None)),
    }
}

fn size_value(line: &[u8], start: usize, end: usize) -> Res<u64> {
    let mut n: u64 = 0;
    for (i, &b) in line[start..end].iter().enumerate() {
        if !b.is_ascii_digit() {
            return Err(CommandError::SizeNotNumeric { offset: start + i });
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(CommandError::SizeTooLarge)?;
    }
    if end - start > 20 {
        return Err(CommandError::SizeTooLarge);
    }
    Ok(n)
}

/// `String = Atom / Quoted-string` from `start` to the end of the line.
fn string_arg(line: &[u8], start: usize) -> Res<&str> {
    let end = if line[start] == b'"' {
        quoted_string(line, start).map_err(|offset| CommandError::InvalidString { offset })?
    } else {
        let end = span(line, start, ATEXT);
        if end == start {
            return Err(CommandError::InvalidString { offset: start });
        }
        end
    };
    end_of_line(line, end)?;
    str_at(line, start, end)
}

fn required_string<'a>(line: &'a [u8], verb: &'static str) -> Res<&'a str> {
    let start = argument_start(line, verb)?;
    string_arg(line, start)
}

fn optional_string(line: &[u8]) -> Res<Option<&str>> {
    match line.get(5) {
        None if line.len() == 4 => Ok(None),
        None => Err(CommandError::TrailingWhitespace { offset: 4 }),
        Some(b' ') if line[5..].iter().all(|&b| b == b' ') => {
            Err(CommandError::TrailingWhitespace { offset: 4 })
        }
        Some(b' ') => Err(CommandError::ExtraSpace { offset: 5 }),
        Some(_) => string_arg(line, 5).map(Some),
    }
}

fn parse_auth(line: &[u8]) -> Res<Command<&str>> {
    let start = argument_start(line, "AUTH")?;
    let mut pos = start;
    while pos < line.len() && line[pos] != b' ' {
        let b = line[pos];
        if !is(b, MECH) {
            return Err(if b.is_ascii_lowercase() {
                CommandError::MechanismNameNotUpperCase { offset: pos }
            } else if b >= 0x80 {
                CommandError::EightBitNotAllowed { offset: pos }
            } else {
                CommandError::InvalidMechanismName { offset: pos }
            });
        }
        pos += 1;
    }
    if pos - start > MECHANISM_NAME_LIMIT {
        return Err(CommandError::InvalidMechanismName {
            offset: start + MECHANISM_NAME_LIMIT,
        });
    }
    // Only ASCII passed the class check above.
    let mechanism = str_at(line, start, pos)?;
    if pos == line.len() {
        return Ok(Command::Auth {
            mechanism,
            initial_response: None,
        });
    }
    let ir = pos + 1;
    match line.get(ir) {
        None => return Err(CommandError::TrailingWhitespace { offset: pos }),
        Some(b' ') if line[ir..].iter().all(|&b| b == b' ') => {
            return Err(CommandError::TrailingWhitespace { offset: pos });
        }
        Some(b' ') => return Err(CommandError::ExtraSpace { offset: ir }),
        Some(_) => {}
    }
    let text = &line[ir..];
    let initial_response = if text == b"=" {
        InitialResponse::Empty
    } else {
        // The alphabet, then padding only at the end; the quantum rules are left
        // to sasl_frame, which names them.
        let data_end = span(line, ir, B64);
        let mut end = data_end;
        while end < line.len() && line[end] == b'=' {
            end += 1;
        }
        if end < line.len() {
            return Err(match line[end] {
                b' ' => CommandError::TrailingData { offset: end },
                _ => CommandError::InvalidInitialResponse { offset: end },
            });
        }
        InitialResponse::Base64(str_at(line, ir, end)?)
    };
    Ok(Command::Auth {
        mechanism,
        initial_response: Some(initial_response),
    })
}

fn parse_bdat(line: &[u8]) -> Res<Command<&str>> {
    let start = argument_start(line, "BDAT")?;
    let end = span(line, start, LETDIG);
    if end == start || !line[start..end].iter().all(u8::is_ascii_digit) {
        return Err(CommandError::InvalidBdat { offset: start });
    }
    let size =
        size_value(line, start, end).map_err(|_| CommandError::InvalidBdat { offset: start })?;
    if end == line.len() {
        return Ok(Command::Bdat { size, last: false });
    }
    if line[end] != b' ' {
        return Err(CommandError::InvalidBdat { offset: end });
    }
    if line[end + 1..].eq_ignore_ascii_case(b"LAST") {
        Ok(Command::Bdat { size, last: true })
    } else if line[end..].iter().all(|&b| b == b' ') {
        Err(CommandError::TrailingWhitespace { offset: end })
    } else {
        Err(CommandError::InvalidBdat { offset: end + 1 })
    }
}

impl<S: AsRef<str>> Command<S> {
    /// The canonical upper-case verb.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Helo { .. } => "HELO",
            Command::Ehlo { .. } => "EHLO",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Quit => "QUIT",
            Command::StartTls => "STARTTLS",
            Command::Vrfy { .. } => "VRFY",
            Command::Expn { .. } => "EXPN",
            Command::Help { .. } => "HELP",
            Command::Noop { .. } => "NOOP",
            Command::Auth { .. } => "AUTH",
        }
    }

    /// The command line without CRLF, in canonical form: upper-case verb,
    /// `FROM:`/`TO:` and known keywords, single spaces.
    pub fn format(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(self.verb().as_bytes());
        let arg = |out: &mut Vec<u8>, s: &str| {
            out.push(b' ');
            out.extend_from_slice(s.as_bytes());
        };
        match self {
            Command::Helo { domain } | Command::Ehlo { domain } => arg(&mut out, domain.as_ref()),
            Command::Mail { from, params } => {
                out.extend_from_slice(b" FROM:<");
                if let ReversePath::Mailbox(m) = from {
                    out.extend_from_slice(m.as_ref().as_bytes());
                }
                out.push(b'>');
                format_params(&mut out, params);
            }
            Command::Rcpt { to, params } => {
                out.extend_from_slice(b" TO:<");
                match to {
                    ForwardPath::Postmaster => out.extend_from_slice(b"Postmaster"),
                    ForwardPath::Mailbox(m) => out.extend_from_slice(m.as_ref().as_bytes()),
                }
                out.push(b'>');
                format_params(&mut out, params);
            }
            Command::Bdat { size, last } => {
                arg(&mut out, &size.to_string());
                if *last {
                    out.extend_from_slice(b" LAST");
                }
            }
            Command::Vrfy { arg: a } | Command::Expn { arg: a } => arg(&mut out, a.as_ref()),
            Command::Help { arg: a } | Command::Noop { arg: a } => {
                if let Some(a) = a {
                    arg(&mut out, a.as_ref());
                }
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                arg(&mut out, mechanism.as_ref());
                match initial_response {
                    None => {}
                    Some(InitialResponse::Empty) => out.extend_from_slice(b" ="),
                    Some(InitialResponse::Base64(t)) => arg(&mut out, t.as_ref()),
                }
            }
            Command::Data | Command::Rset | Command::Quit | Command::StartTls => {}
        }
        out
    }
}

fn format_params<S: AsRef<str>>(out: &mut Vec<u8>, params: &[Param<S>]) {
    for p in params {
        out.push(b' ');
        match p {
            Param::Size(n) => {
                out.extend_from_slice(b"SIZE=");
                out.extend_from_slice(n.to_string().as_bytes());
            }
            Param::Body(b) => out.extend_from_slice(match b {
                Body::SevenBit => b"BODY=7BIT".as_slice(),
                Body::EightBitMime => b"BODY=8BITMIME",
                Body::BinaryMime => b"BODY=BINARYMIME",
            }),
            Param::SmtpUtf8 => out.extend_from_slice(b"SMTPUTF8"),
            Param::Auth(MailAuth::Unknown) => out.extend_from_slice(b"AUTH=<>"),
            Param::Auth(MailAuth::Mailbox(m)) => {
                out.extend_from_slice(b"AUTH=");
                // An identity that is literally "<>" must not read as `AUTH=<>`.
                if m == "<>" {
                    out.extend_from_slice(b"+3C+3E");
                } else {
                    out.extend_from_slice(xtext::encode(m.as_bytes()).as_bytes());
                }
            }
            Param::Other { keyword, value } => {
                out.extend_from_slice(keyword.as_ref().as_bytes());
                if let Some(v) = value {
                    out.push(b'=');
                    out.extend_from_slice(v.as_ref().as_bytes());
                }
            }
        }
    }
}

impl<S: AsRef<str>> ReversePath<S> {
    /// The sender's mailbox, or `None` for the null reverse-path `<>`.
    pub fn mailbox(&self) -> Option<&str> {
        match self {
            ReversePath::Null => None,
            ReversePath::Mailbox(m) => Some(m.as_ref()),
        }
    }
}

impl Command<&str> {
    /// The same command, owning its fields (what [`parse`] returns).
    pub fn into_owned(self) -> Command {
        let s = |s: &str| s.to_owned();
        match self {
            Command::Helo { domain } => Command::Helo { domain: s(domain) },
            Command::Ehlo { domain } => Command::Ehlo { domain: s(domain) },
            Command::Mail { from, params } => Command::Mail {
                from: match from {
                    ReversePath::Null => ReversePath::Null,
                    ReversePath::Mailbox(m) => ReversePath::Mailbox(s(m)),
                },
                params: owned_params(params),
            },
            Command::Rcpt { to, params } => Command::Rcpt {
                to: match to {
                    ForwardPath::Postmaster => ForwardPath::Postmaster,
                    ForwardPath::Mailbox(m) => ForwardPath::Mailbox(s(m)),
                },
                params: owned_params(params),
            },
            Command::Data => Command::Data,
            Command::Bdat { size, last } => Command::Bdat { size, last },
            Command::Rset => Command::Rset,
            Command::Quit => Command::Quit,
            Command::StartTls => Command::StartTls,
            Command::Vrfy { arg } => Command::Vrfy { arg: s(arg) },
            Command::Expn { arg } => Command::Expn { arg: s(arg) },
            Command::Help { arg } => Command::Help { arg: arg.map(s) },
            Command::Noop { arg } => Command::Noop { arg: arg.map(s) },
            Command::Auth {
                mechanism,
                initial_response,
            } => Command::Auth {
                mechanism: s(mechanism),
                initial_response: initial_response.map(|ir| match ir {
                    InitialResponse::Empty => InitialResponse::Empty,
                    InitialResponse::Base64(t) => InitialResponse::Base64(s(t)),
                }),
            },
        }
    }
}

fn owned_params(params: Vec<Param<&str>>) -> Vec<Param> {
    params
        .into_iter()
        .map(|p| match p {
            Param::Size(n) => Param::Size(n),
            Param::Body(b) => Param::Body(b),
            Param::SmtpUtf8 => Param::SmtpUtf8,
            Param::Auth(a) => Param::Auth(a),
            Param::Other { keyword, value } => Param::Other {
                keyword: keyword.to_owned(),
                value: value.map(str::to_owned),
            },
        })
        .collect()
}

impl<S: AsRef<str>> Command<S> {
    /// The `AUTH=` parameter of a MAIL command, if any.
    pub fn mail_auth(&self) -> Option<&MailAuth> {
        match self {
            Command::Mail { params, .. } => params.iter().find_map(|p| match p {
                Param::Auth(a) => Some(a),
                _ => None,
            }),
            _ => None,
        }
    }
}

/// Whether `s` is exactly a `Domain` or an `address-literal` (RFC 5321 §4.1.2,
/// §4.1.3), as in EHLO and in the first line of its reply.
pub(crate) fn is_domain_or_literal(s: &[u8]) -> bool {
    let end = match s.first() {
        None => return false,
        Some(b'[') => address_literal(s, 0),
        Some(_) => domain(s, 0),
    };
    matches!(end, Ok(e) if e == s.len()) && std::str::from_utf8(s).is_ok()
}
