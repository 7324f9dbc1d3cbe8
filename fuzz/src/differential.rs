//! Differential fuzzing of the command parser against smtp-proto.
//!
//! Both parsers see the same single line, CRLF-terminated for smtp-proto (it frames
//! and parses in one pass) and without the CRLF for authspec (framing is
//! `smtp::line`'s job). Every disagreement is put in a class; the classes that are
//! documented in `fuzz/DIFFERENTIAL.md` as deliberate strictness differences (or as
//! smtp-proto limitations) are ignored, anything else panics so the fuzzer reports
//! it. Set `AUTHSPEC_DIFF_SURVEY=1` to print every class once instead of panicking,
//! which is how the table in DIFFERENTIAL.md was built.

use authspec_reference::sasl::Mechanism;
use authspec_reference::smtp::command::{
    self, Command, CommandError, ForwardPath, Param, ReversePath,
};
use smtp_proto::Request;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

/// A class of disagreement, named for DIFFERENTIAL.md.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// authspec rejects with this error; smtp-proto accepts this verb.
    AuthspecStricter { error: String, verb: &'static str },
    /// authspec accepts this verb; smtp-proto rejects it.
    ProtoStricter { verb: &'static str, detail: String },
    /// Both accept but read a different verb.
    VerbDiffers {
        authspec: &'static str,
        proto: &'static str,
    },
    /// Both accept the same verb but read a field differently.
    FieldDiffers {
        verb: &'static str,
        field: &'static str,
    },
}

/// The documented classes (see DIFFERENTIAL.md, one row each).
fn documented(class: &Class) -> bool {
    match class {
        // authspec is the strict side by design: each of these errors names a rule of
        // RFC 5321/4954/6531 that smtp-proto does not check. See DIFFERENTIAL.md §A.
        Class::AuthspecStricter { error, .. } => AUTHSPEC_STRICTER.contains(&error.as_str()),
        Class::ProtoStricter { verb, detail } => {
            PROTO_STRICTER.iter().any(|(v, d)| v == verb && d == detail)
        }
        Class::VerbDiffers { .. } => false,
        Class::FieldDiffers { verb, field } => {
            FIELD_DIFFERS.iter().any(|(v, f)| v == verb && f == field)
        }
    }
}

/// §A of DIFFERENTIAL.md: authspec errors where smtp-proto is laxer. Every
/// `CommandError` variant that names a grammar rule smtp-proto does not check.
const AUTHSPEC_STRICTER: &[&str] = &[
    "AuthParamNotUtf8",
    "ControlCharacter",
    "DuplicateParam",
    "EightBitNotAllowed",
    "EmptyForwardPath",
    "ExpectedFromColon",
    "ExpectedToColon",
    "ExtraSpace",
    "InvalidAddressLiteral",
    "InvalidBdat",
    "InvalidDomain",
    "InvalidInitialResponse",
    "InvalidLocalPart",
    "InvalidMechanismName",
    "InvalidParamKeyword",
    "InvalidParamValue",
    "InvalidSourceRoute",
    "InvalidString",
    "InvalidUtf8",
    "LocalPartTooLong",
    "DomainTooLong",
    "PathTooLong",
    "MechanismNameNotUpperCase",
    "MissingArgument",
    "MissingAtSign",
    "MissingParamValue",
    "Nul",
    "PathNotInAngleBrackets",
    "SizeNotNumeric",
    "SizeTooLarge",
    "SpaceAroundColon",
    "TrailingData",
    "TrailingWhitespace",
    "UnexpectedArgument",
    "UnexpectedParamValue",
    "UnknownBodyValue",
    "UnknownVerb",
    "Xtext",
];
/// §B: lines authspec accepts and smtp-proto refuses, by (verb, why).
const PROTO_STRICTER: &[(&str, &str)] = &[
    ("MAIL", "UnsupportedParameter"),
    ("RCPT", "UnsupportedParameter"),
    ("MAIL", "InvalidSenderAddress/EmptyQuotedLocalPart"),
    ("RCPT", "InvalidRecipientAddress/EmptyQuotedLocalPart"),
    ("MAIL", "InvalidSenderAddress/AddressLiteralDomain"),
    ("RCPT", "InvalidRecipientAddress/AddressLiteralDomain"),
    ("VRFY", "SyntaxError/EmptyQuotedString"),
    ("EXPN", "SyntaxError/EmptyQuotedString"),
    ("VRFY", "SyntaxError/StringLongerThanPath"),
    ("EXPN", "SyntaxError/StringLongerThanPath"),
    ("MAIL", "InvalidParameter/ExtensionValue"),
    ("RCPT", "InvalidParameter/ExtensionValue"),
    ("MAIL", "InvalidParameter/AuthValueLongerThanPath"),
];
/// §C: fields read differently on lines both accept, by (verb, field).
const FIELD_DIFFERS: &[(&str, &str)] = &[];

fn variant_name(e: &CommandError) -> String {
    let dbg = format!("{e:?}");
    dbg.split([' ', '(', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}

fn proto_verb(r: &Request<Cow<'_, str>>) -> &'static str {
    r.name()
}

/// The mechanism name authspec read, as smtp-proto's bit for the same mechanism;
/// `None` for the SCRAM-SHA-512 family, which smtp-proto does not know.
fn proto_mechanism_bit(m: Mechanism) -> Option<u64> {
    Some(match m {
        Mechanism::ScramSha256Plus => smtp_proto::AUTH_SCRAM_SHA_256_PLUS,
        Mechanism::ScramSha1Plus => smtp_proto::AUTH_SCRAM_SHA_1_PLUS,
        Mechanism::ScramSha512 | Mechanism::ScramSha512Plus => return None,
        Mechanism::ScramSha256 => smtp_proto::AUTH_SCRAM_SHA_256,
        Mechanism::ScramSha1 => smtp_proto::AUTH_SCRAM_SHA_1,
        Mechanism::DigestMd5 => smtp_proto::AUTH_DIGEST_MD5,
        Mechanism::CramMd5 => smtp_proto::AUTH_CRAM_MD5,
        Mechanism::OAuthBearer => smtp_proto::AUTH_OAUTHBEARER,
        Mechanism::XOAuth2 => smtp_proto::AUTH_XOAUTH2,
        Mechanism::Plain => smtp_proto::AUTH_PLAIN,
        Mechanism::Login => smtp_proto::AUTH_LOGIN,
        Mechanism::Anonymous => smtp_proto::AUTH_ANONYMOUS,
        Mechanism::External => smtp_proto::AUTH_EXTERNAL,
    })
}

/// authspec keeps quoted strings as sent (`"a b"@example.org`, RFC 5321 §4.1.2
/// Quoted-string with its quoted-pairs); smtp-proto returns their content. Compare
/// contents: drop the DQUOTEs and resolve each quoted-pair.
fn unquote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_quote = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => in_quote = !in_quote,
            '\\' if in_quote => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Compare the fields both parsers expose. Returns the first field that differs.
fn field_difference(a: &Command, b: &Request<Cow<'_, str>>) -> Option<&'static str> {
    match (a, b) {
        (Command::Ehlo { domain }, Request::Ehlo { host })
        | (Command::Helo { domain }, Request::Helo { host }) => {
            (domain.as_str() != host.as_ref()).then_some("domain")
        }
        (Command::Mail { from, .. }, Request::Mail { from: f }) => {
            let mine = match from {
                ReversePath::Null => "",
                ReversePath::Mailbox(m) => m.as_str(),
            };
            (unquote(mine) != f.address.as_ref()).then_some("mailbox")
        }
        (Command::Rcpt { to, .. }, Request::Rcpt { to: t }) => {
            let mine = match to {
                // smtp-proto reads `<Postmaster>` as the empty address.
                ForwardPath::Postmaster => "",
                ForwardPath::Mailbox(m) => m.as_str(),
            };
            (unquote(mine) != t.address.as_ref()).then_some("mailbox")
        }
        (
            Command::Auth {
                mechanism,
                initial_response,
            },
            Request::Auth {
                mechanism: bit,
                initial_response: ir,
            },
        ) => {
            if let Some(m) = Mechanism::from_name(mechanism.as_bytes()) {
                if proto_mechanism_bit(m).is_some_and(|b| b != *bit) {
                    return Some("mechanism");
                }
            }
            let mine = match initial_response {
                None => "",
                Some(command::InitialResponse::Empty) => "=",
                Some(command::InitialResponse::Base64(t)) => t.as_str(),
            };
            (mine != ir.as_ref()).then_some("initial_response")
        }
        (
            Command::Bdat { size, last },
            Request::Bdat {
                chunk_size,
                is_last,
            },
        ) => {
            if u64::try_from(*chunk_size).ok() != Some(*size) {
                Some("chunk_size")
            } else {
                (last != is_last).then_some("last")
            }
        }
        (Command::Vrfy { arg }, Request::Vrfy { value })
        | (Command::Expn { arg }, Request::Expn { value }) => {
            (unquote(arg) != value.as_ref()).then_some("argument")
        }
        (Command::Help { arg }, Request::Help { value })
        | (Command::Noop { arg }, Request::Noop { value }) => {
            (unquote(arg.as_deref().unwrap_or("")) != value.as_ref()).then_some("argument")
        }
        _ => None,
    }
}

/// Classify the disagreement on `line` (without CRLF), if there is one.
pub fn classify(line: &[u8]) -> Option<Class> {
    let mine = command::parse(line);
    let mut framed = Vec::with_capacity(line.len() + 2);
    framed.extend_from_slice(line);
    framed.extend_from_slice(b"\r\n");
    let theirs = Request::parse(&mut framed.iter());
    match (&mine, &theirs) {
        (Err(_), Err(_)) => None,
        (Err(e), Ok(r)) => Some(Class::AuthspecStricter {
            error: variant_name(e),
            verb: proto_verb(r),
        }),
        (Ok(c), Err(e)) => Some(Class::ProtoStricter {
            verb: c.verb(),
            detail: proto_refusal(c, e),
        }),
        (Ok(c), Ok(r)) => {
            if c.verb() != proto_verb(r) {
                return Some(Class::VerbDiffers {
                    authspec: c.verb(),
                    proto: proto_verb(r),
                });
            }
            field_difference(c, r).map(|field| Class::FieldDiffers {
                verb: c.verb(),
                field,
            })
        }
    }
}

/// smtp-proto's error, refined where one error covers cases that differ in kind.
fn proto_refusal(c: &Command, e: &smtp_proto::Error) -> String {
    let name = proto_error_name(e);
    let mailbox = match c {
        Command::Mail {
            from: ReversePath::Mailbox(m),
            ..
        } => Some(m.as_str()),
        Command::Rcpt {
            to: ForwardPath::Mailbox(m),
            ..
        } => Some(m.as_str()),
        _ => None,
    };
    // RFC 5321 §4.1.2: `Quoted-string = DQUOTE *QcontentSMTP DQUOTE` may be empty;
    // smtp-proto requires a non-empty local-part after unquoting.
    if mailbox.is_some_and(|m| m.starts_with("\"\"@")) {
        return format!("{name}/EmptyQuotedLocalPart");
    }
    // RFC 5321 §4.1.2 `Mailbox = Local-part "@" ( Domain / address-literal )`:
    // smtp-proto's address scanner stops at `[`.
    if mailbox.is_some_and(|m| m.rsplit_once('@').is_some_and(|(_, d)| d.starts_with('['))) {
        return format!("{name}/AddressLiteralDomain");
    }
    // `String = Atom / Quoted-string`: `""` is a String; smtp-proto wants content.
    if let Command::Vrfy { arg } | Command::Expn { arg } = c {
        let content = unquote(arg);
        if content.is_empty() {
            return format!("{name}/EmptyQuotedString");
        }
        // smtp-proto caps the argument at a path's length (256); RFC 5321 bounds a
        // String only by the 512-octet command line.
        if content.len() > 256 {
            return format!("{name}/StringLongerThanPath");
        }
    }
    // smtp-proto checks the values of extensions authspec leaves uninterpreted
    // (`Param::Other`): DSN (RFC 3461), DELIVERBY (RFC 2852), MT-PRIORITY (RFC 6710),
    // FUTURERELEASE (RFC 4865), RRVS (RFC 7293), MTRK (RFC 3885), ...
    let params: &[Param] = match c {
        Command::Mail { params, .. } | Command::Rcpt { params, .. } => params,
        _ => &[],
    };
    let has_extension_param = params.iter().any(|p| {
        matches!(p, Param::Other { keyword, .. }
            if EXTENSION_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(keyword)))
    });
    if name == "InvalidParameter" && has_extension_param {
        return format!("{name}/ExtensionValue");
    }
    // RFC 4954 §5: `AUTH=` carries an addr-spec in xtext, bounded only by the 500
    // octets the extension adds to the MAIL line; smtp-proto caps it at 256.
    let long_auth = params.iter().any(
        |p| matches!(p, Param::Auth(command::MailAuth::Mailbox(m)) if m.chars().count() > 256),
    );
    if name == "InvalidParameter" && long_auth {
        return format!("{name}/AuthValueLongerThanPath");
    }
    name
}

/// MAIL/RCPT parameters smtp-proto knows and authspec does not interpret.
const EXTENSION_KEYWORDS: &[&str] = &[
    "RET",
    "ENVID",
    "NOTIFY",
    "ORCPT",
    "BY",
    "MT-PRIORITY",
    "HOLDFOR",
    "HOLDUNTIL",
    "RRVS",
    "MTRK",
    "SOLICIT",
    "TRANSID",
    "REQUIRETLS",
    "CONPERM",
    "CONNEG",
];

fn proto_error_name(e: &smtp_proto::Error) -> String {
    let dbg = format!("{e:?}");
    dbg.split([' ', '(', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}

fn survey() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("AUTHSPEC_DIFF_SURVEY").is_some())
}

/// The fuzz entry point. The input is cut at its first CR or LF: one line.
pub fn smtp_proto(data: &[u8]) {
    let end = data
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(data.len());
    let line = &data[..end];
    let Some(class) = classify(line) else {
        return;
    };
    if documented(&class) {
        return;
    }
    if survey() {
        static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
        let key = format!("{class:?}");
        if let Ok(mut seen) = SEEN.lock() {
            if seen.insert(key.clone()) {
                eprintln!("DIFF {key} :: {:?}", String::from_utf8_lossy(line));
            }
        }
        return;
    }
    panic!(
        "undocumented disagreement with smtp-proto: {class:?} on {:?}",
        String::from_utf8_lossy(line)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example lines of DIFFERENTIAL.md fall in documented classes, and a line
    /// both parsers read alike is no disagreement at all.
    #[test]
    fn documented_examples_are_documented() {
        for line in [
            &b"QUIT \0"[..],
            b"NOOP \x0cOG",
            b"MAIL FROM:<> ",
            b"AUTH  LOGIN",
            b"RCPT TO:<>",
            b"MAIL FROM:<> X-FOO=1",
            b"MAIL FROM:<\"\"@example.org>",
            b"MAIL FROM:<alice@[192.0.2.1]> SIZE504 8B",
            b"EXPN \"\"",
            b"VRFY \"a b\"",
            b"MAIL FROM:<\"quoted local\"@example.org>",
            b"RCPT TO:<Postmaster>",
        ] {
            if let Some(class) = classify(line) {
                assert!(documented(&class), "{class:?} on {line:?}");
            }
        }
        assert_eq!(classify(b"MAIL FROM:<alice@example.org> SIZE=10"), None);
        assert_eq!(classify(b"AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ="), None);
    }
}
