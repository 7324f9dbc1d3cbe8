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
use authspec_reference::smtp::command::{self, Command, CommandError, ForwardPath, ReversePath};
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
    VerbDiffers { authspec: &'static str, proto: &'static str },
    /// Both accept the same verb but read a field differently.
    FieldDiffers { verb: &'static str, field: &'static str },
}

/// The documented classes (see DIFFERENTIAL.md, one row each).
fn documented(class: &Class) -> bool {
    match class {
        // authspec is the strict side by design: each of these errors names a rule of
        // RFC 5321/4954/6531 that smtp-proto does not check. See DIFFERENTIAL.md §A.
        Class::AuthspecStricter { error, .. } => AUTHSPEC_STRICTER.contains(&error.as_str()),
        Class::ProtoStricter { verb, detail } => PROTO_STRICTER
            .iter()
            .any(|(v, d)| v == verb && d == detail),
        Class::VerbDiffers { .. } => false,
        Class::FieldDiffers { verb, field } => FIELD_DIFFERS
            .iter()
            .any(|(v, f)| v == verb && f == field),
    }
}

/// §A of DIFFERENTIAL.md: authspec errors where smtp-proto is laxer.
const AUTHSPEC_STRICTER: &[&str] = &[];
/// §B: lines authspec accepts and smtp-proto refuses, by (verb, why).
const PROTO_STRICTER: &[(&str, &str)] = &[];
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

/// The mechanism name authspec read, as smtp-proto's bit for the same mechanism.
fn proto_mechanism_bit(m: Mechanism) -> u64 {
    match m {
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
    }
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
            (mine != f.address.as_ref()).then_some("mailbox")
        }
        (Command::Rcpt { to, .. }, Request::Rcpt { to: t }) => {
            let mine = match to {
                // smtp-proto reads `<Postmaster>` as the empty address.
                ForwardPath::Postmaster => "",
                ForwardPath::Mailbox(m) => m.as_str(),
            };
            (mine != t.address.as_ref()).then_some("mailbox")
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
                if proto_mechanism_bit(m) != *bit {
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
        (Command::Bdat { size, last }, Request::Bdat { chunk_size, is_last }) => {
            if u64::try_from(*chunk_size).ok() != Some(*size) {
                Some("chunk_size")
            } else {
                (last != is_last).then_some("last")
            }
        }
        (Command::Vrfy { arg }, Request::Vrfy { value })
        | (Command::Expn { arg }, Request::Expn { value }) => {
            (arg.as_str() != value.as_ref()).then_some("argument")
        }
        (Command::Help { arg }, Request::Help { value })
        | (Command::Noop { arg }, Request::Noop { value }) => {
            (arg.as_deref().unwrap_or("") != value.as_ref()).then_some("argument")
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
            detail: proto_error_name(e),
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
