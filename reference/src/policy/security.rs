//! SASL security options (`smtpd_sasl_security_options`, `smtp_sasl_security_options`
//! and their `_tls_` variants) and mechanism filters (`smtpd_sasl_mechanism_filter`,
//! `smtp_sasl_mechanism_filter`).
//!
//! A `no*` option hides every mechanism that has the weakness; `mutual_auth` and
//! `forward_secrecy` hide every mechanism that lacks the strength. This is Cyrus SASL's
//! rule (a mechanism is permitted when its `SASL_SEC_*` flags include every requested
//! flag) and Postfix's Dovecot glue (xsasl_dovecot_server_mech_filter) applies the same
//! rule to Dovecot's flags. The two libraries classify some mechanisms differently;
//! [`SaslType`] picks which classification applies. See `policy/README.md` for the
//! table of what each option leaves.

use std::fmt;

use super::error::ConfigErrorKind;
use super::maincf::split_list;
use crate::sasl::{Mechanism, SecurityProperties};

/// Which SASL implementation's classification and parsing rules to follow
/// (Postfix's `smtpd_sasl_type` / `smtp_sasl_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SaslType {
    /// Cyrus SASL: [`Mechanism::properties`]. Postfix parses the option words
    /// case-sensitively (xsasl_cyrus_security.c uses name_mask without ANY_CASE).
    #[default]
    Cyrus,
    /// Dovecot: [`dovecot_properties`]. Postfix parses the option words
    /// case-insensitively (xsasl_dovecot_server.c passes NAME_MASK_ANY_CASE).
    Dovecot,
}

impl SaslType {
    /// The accepted `smtpd_sasl_type` values.
    pub const NAMES: &'static [&'static str] = &["cyrus", "dovecot"];

    /// The properties this implementation gives `mechanism`.
    pub fn properties(self, mechanism: Mechanism) -> SecurityProperties {
        match self {
            SaslType::Cyrus => mechanism.properties(),
            SaslType::Dovecot => dovecot_properties(mechanism),
        }
    }
}

/// The flags Dovecot's auth server announces for each mechanism (its `MECH_SEC_*`
/// flags, sent to Postfix on `MECH` lines). Unlike Cyrus, Dovecot does not mark PLAIN,
/// LOGIN or the bearer-token mechanisms as open to dictionary or active attacks, does
/// not mark SCRAM as open to dictionary attacks, and marks ANONYMOUS only as anonymous.
pub const fn dovecot_properties(mechanism: Mechanism) -> SecurityProperties {
    let none = SecurityProperties {
        plaintext: false,
        anonymous: false,
        dictionary: false,
        active: false,
        mutual_auth: false,
        forward_secrecy: false,
    };
    match mechanism {
        // mech-plain.c, mech-login.c, mech-oauth2.c ("the token is still considered as
        // password"): MECH_SEC_PLAINTEXT.
        Mechanism::Plain | Mechanism::Login | Mechanism::OAuthBearer | Mechanism::XOAuth2 => {
            SecurityProperties {
                plaintext: true,
                ..none
            }
        }
        // mech-cram-md5.c: MECH_SEC_DICTIONARY | MECH_SEC_ACTIVE.
        Mechanism::CramMd5 => SecurityProperties {
            dictionary: true,
            active: true,
            ..none
        },
        // mech-digest-md5.c: DICTIONARY | ACTIVE | MUTUAL_AUTH.
        Mechanism::DigestMd5 => SecurityProperties {
            dictionary: true,
            active: true,
            mutual_auth: true,
            ..none
        },
        // mech-scram.c: MECH_SEC_MUTUAL_AUTH only (Dovecot 2.4 adds -PLUS and the
        // same flags).
        Mechanism::ScramSha1
        | Mechanism::ScramSha256
        | Mechanism::ScramSha512
        | Mechanism::ScramSha1Plus
        | Mechanism::ScramSha256Plus
        | Mechanism::ScramSha512Plus => SecurityProperties {
            mutual_auth: true,
            ..none
        },
        // mech-anonymous.c: MECH_SEC_ANONYMOUS.
        Mechanism::Anonymous => SecurityProperties {
            anonymous: true,
            ..none
        },
        // mech-external.c: no flags.
        Mechanism::External => none,
    }
}

/// A parsed security option list. The empty list permits every mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SecurityOptions {
    /// `noplaintext`: hide mechanisms that send a reusable secret in the clear.
    pub noplaintext: bool,
    /// `noactive`: hide mechanisms open to active (non-dictionary) attacks.
    pub noactive: bool,
    /// `nodictionary`: hide mechanisms open to passive dictionary attacks.
    pub nodictionary: bool,
    /// `noanonymous`: hide mechanisms that allow anonymous login.
    pub noanonymous: bool,
    /// `mutual_auth`: keep only mechanisms that authenticate the server too.
    pub mutual_auth: bool,
    /// `forward_secrecy`: keep only mechanisms with forward secrecy.
    pub forward_secrecy: bool,
}

/// The option words, in the order Postfix's tables list them.
const WORDS: [&str; 6] = [
    "noplaintext",
    "noactive",
    "nodictionary",
    "noanonymous",
    "forward_secrecy",
    "mutual_auth",
];

impl SecurityOptions {
    /// Parse a list as Postfix with Cyrus does: words separated by commas and/or
    /// whitespace, case-sensitive. An unknown word is an error naming it.
    pub fn parse(value: &str) -> Result<SecurityOptions, ConfigErrorKind> {
        SecurityOptions::parse_for(value, SaslType::Cyrus)
    }

    /// Parse with the case rule of `sasl_type` (Dovecot's glue ignores case).
    pub fn parse_for(value: &str, sasl_type: SaslType) -> Result<SecurityOptions, ConfigErrorKind> {
        let mut options = SecurityOptions::default();
        for word in split_list(value) {
            let found = WORDS.iter().position(|w| match sasl_type {
                SaslType::Cyrus => *w == word,
                SaslType::Dovecot => w.eq_ignore_ascii_case(word),
            });
            match found {
                Some(0) => options.noplaintext = true,
                Some(1) => options.noactive = true,
                Some(2) => options.nodictionary = true,
                Some(3) => options.noanonymous = true,
                Some(4) => options.forward_secrecy = true,
                Some(5) => options.mutual_auth = true,
                _ => {
                    return Err(ConfigErrorKind::UnknownSecurityOption {
                        word: word.to_owned(),
                    });
                }
            }
        }
        Ok(options)
    }

    fn flags(self) -> [bool; 6] {
        [
            self.noplaintext,
            self.noactive,
            self.nodictionary,
            self.noanonymous,
            self.forward_secrecy,
            self.mutual_auth,
        ]
    }

    /// The option words that are set, in canonical order.
    pub fn words(self) -> Vec<&'static str> {
        WORDS
            .iter()
            .zip(self.flags())
            .filter(|(_, on)| *on)
            .map(|(w, _)| *w)
            .collect()
    }

    /// The options (as words) that by themselves would hide a mechanism with `props`.
    pub fn violations(self, props: SecurityProperties) -> Vec<&'static str> {
        let hidden = [
            props.plaintext,
            props.active,
            props.dictionary,
            props.anonymous,
            !props.forward_secrecy,
            !props.mutual_auth,
        ];
        WORDS
            .iter()
            .zip(self.flags())
            .zip(hidden)
            .filter(|((_, on), hides)| *on && *hides)
            .map(|((w, _), _)| *w)
            .collect()
    }

    /// Whether a mechanism with these properties may be used: it has none of the
    /// weaknesses the `no*` options exclude and all the strengths required.
    pub fn permits(&self, props: SecurityProperties) -> bool {
        self.violations(props).is_empty()
    }

    /// The mechanisms these options leave, in the given order, classified as Cyrus does.
    pub fn filter(&self, mechs: &[Mechanism]) -> Vec<Mechanism> {
        self.filter_for(mechs, SaslType::Cyrus)
    }

    /// The mechanisms these options leave under `sasl_type`'s classification.
    pub fn filter_for(&self, mechs: &[Mechanism], sasl_type: SaslType) -> Vec<Mechanism> {
        mechs
            .iter()
            .copied()
            .filter(|m| self.permits(sasl_type.properties(*m)))
            .collect()
    }
}

impl fmt::Display for SecurityOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words().join(", "))
    }
}

/// One element of a mechanism filter.
#[derive(Clone, Debug, PartialEq, Eq)]
enum FilterPattern {
    /// A mechanism name, upper-cased (names are case-insensitive, RFC 4422 §3.1).
    Name(String),
    /// `static:anything`: a lookup table that matches every name (Postfix's default
    /// `!external, static:rest` relies on it).
    Any,
}

/// `smtpd_sasl_mechanism_filter` / `smtp_sasl_mechanism_filter`: Postfix match-list
/// semantics. Elements are tried in order and the first that matches decides: a plain
/// element keeps the mechanism, a `!element` drops it; a name no element matches is
/// dropped. So `!gssapi` alone keeps nothing, and `!gssapi, static:rest` keeps
/// everything but GSSAPI. An empty filter keeps everything.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MechanismFilter {
    patterns: Vec<(bool, FilterPattern)>,
}

impl MechanismFilter {
    /// Parse a filter. Supported elements: mechanism names (any SASL name, known to
    /// authspec or not), `!name`, `static:…` and `!static:…`. Postfix's `/file/name`
    /// patterns and other `type:table` lookups are refused with an error naming them.
    pub fn parse(value: &str) -> Result<MechanismFilter, ConfigErrorKind> {
        let mut patterns = Vec::new();
        for item in split_list(value) {
            let (negated, body) = match item.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, item),
            };
            let bad = || ConfigErrorKind::BadFilterPattern {
                pattern: item.to_owned(),
            };
            let pattern = if let Some(rest) = body.strip_prefix("static:") {
                if rest.is_empty() {
                    return Err(bad());
                }
                FilterPattern::Any
            } else if sasl_name(body) {
                FilterPattern::Name(body.to_ascii_uppercase())
            } else {
                return Err(bad());
            };
            patterns.push((negated, pattern));
        }
        Ok(MechanismFilter { patterns })
    }

    /// True when the filter has no elements and so keeps every mechanism.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the mechanism called `name` passes (case-insensitively).
    pub fn allows(&self, name: &str) -> bool {
        if self.patterns.is_empty() {
            return true;
        }
        for (negated, pattern) in &self.patterns {
            let matched = match pattern {
                FilterPattern::Any => true,
                FilterPattern::Name(n) => n.eq_ignore_ascii_case(name),
            };
            if matched {
                return !negated;
            }
        }
        false
    }

    /// The mechanisms that pass, in the given order.
    pub fn filter(&self, mechs: &[Mechanism]) -> Vec<Mechanism> {
        mechs
            .iter()
            .copied()
            .filter(|m| self.allows(m.name()))
            .collect()
    }
}

impl fmt::Display for MechanismFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (negated, pattern)) in self.patterns.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if *negated {
                f.write_str("!")?;
            }
            match pattern {
                FilterPattern::Any => f.write_str("static:rest")?,
                FilterPattern::Name(n) => f.write_str(n)?,
            }
        }
        Ok(())
    }
}

/// RFC 4422 §3.1: a mechanism name is 1 to 20 characters from upper-case letters,
/// digits, `-` and `_` (compared case-insensitively here, as Postfix's filter does).
pub(crate) fn sasl_name(s: &str) -> bool {
    (1..=20).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        let o = SecurityOptions::parse("mutual_auth noplaintext,noanonymous").unwrap();
        assert_eq!(o.to_string(), "noplaintext, noanonymous, mutual_auth");
    }

    #[test]
    fn cyrus_is_case_sensitive_dovecot_is_not() {
        assert_eq!(
            SecurityOptions::parse("NoPlaintext"),
            Err(ConfigErrorKind::UnknownSecurityOption {
                word: "NoPlaintext".into()
            })
        );
        let o = SecurityOptions::parse_for("NoPlaintext", SaslType::Dovecot).unwrap();
        assert!(o.noplaintext);
    }

    #[test]
    fn sasl_names() {
        assert!(sasl_name("SCRAM-SHA-256"));
        assert!(sasl_name("x_y"));
        assert!(!sasl_name(""));
        assert!(!sasl_name("ABCDEFGHIJKLMNOPQRSTU"));
        assert!(!sasl_name("/etc/x"));
        assert!(!sasl_name("hash:x"));
    }
}
