//! Dovecot's passwd-file format, so that secrets made with `doveadm pw` work as they are.
//!
//! ```text
//! # comment
//! alice:{PLAIN}wonderland
//! bob:{PLAIN.B64}cEBzcyB3MHJkOng=::::::
//! tim:{CRAM-MD5}<64 hex digits>:1000:1000::/home/tim
//! carol:{SCRAM-SHA-256}4096,<salt b64>,<StoredKey b64>,<ServerKey b64>
//! ```
//!
//! Each line is `user:password[:uid:gid:gecos:home:shell:extra]`; only the first two
//! fields matter here and the rest is ignored. The password field cannot hold `:`,
//! which is why a password with one is stored as `{PLAIN.B64}`.
//!
//! Schemes (case-insensitive, as in Dovecot):
//! - `PLAIN`, `CLEAR`, with an optional `.B64`/`.BASE64`/`.HEX` encoding suffix;
//! - `CRAM-MD5` (alias `HMAC-MD5`): the 32-octet HMAC-MD5 context, hex by default,
//!   or `.B64`; see [`crate::sasl::cram_md5::cram_md5_context`];
//! - `SCRAM-SHA-1`, `SCRAM-SHA-256`: Dovecot's `iterations,salt,StoredKey,ServerKey`
//!   (base64 fields; iterations 4096..=2^31-1 as Dovecot's `scram_scheme_parse()`).
//!
//! Where the reference differs from Dovecot, on purpose:
//! - a password with no `{SCHEME}` prefix is PLAIN (Dovecot's passwd-file default is
//!   `CRYPT`, which no SASL mechanism here can use);
//! - one-way hashes (`SHA512-CRYPT`, `ARGON2ID`, `SSHA256`, ...) are refused with
//!   [`PasswdFileRule::UnsupportedScheme`], since no stored form here can hold them;
//! - an empty password field, a duplicate user, or a malformed line is an error naming
//!   the file and line, not a line silently skipped. A trailing CR is stripped, as
//!   Dovecot's line reader does.

use super::Secret;
use super::cram_md5::{cram_md5_context, hex_decode, hex_lower};
use super::credentials::{CredentialStore, StoredCredential};
use super::scram::ScramHash;
use base64::Engine;
use std::collections::BTreeMap;
use std::fmt;

/// Dovecot's SCRAM iteration bounds (`SCRAM_MIN_ITERATE_COUNT`, `INT_MAX`).
pub(crate) const SCRAM_MIN_ITERATIONS: u32 = 4096;
pub(crate) const SCRAM_MAX_ITERATIONS: u32 = 0x7fff_ffff;

/// Dovecot schemes that are one-way hashes: known, but unusable here.
const ONE_WAY_SCHEMES: &[&str] = &[
    "CRYPT",
    "MD5-CRYPT",
    "SHA256-CRYPT",
    "SHA512-CRYPT",
    "BLF-CRYPT",
    "DES-CRYPT",
    "ARGON2I",
    "ARGON2ID",
    "PBKDF2",
    "MD5",
    "PLAIN-MD5",
    "LDAP-MD5",
    "SMD5",
    "SHA",
    "SHA1",
    "SSHA",
    "SHA256",
    "SSHA256",
    "SHA512",
    "SSHA512",
    "DIGEST-MD5",
    "PLAIN-MD4",
    "NTLM",
    "LANMAN",
    "OTP",
    "SKEY",
    "RPA",
    "PLAIN-TRUNC",
];

/// The rule a passwd-file line broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswdFileRule {
    /// A line is `user:password[:...]`; this one has no `:`.
    MissingColon,
    /// The user field is empty.
    EmptyUser,
    /// User names hold no white space or control characters.
    BadUserCharacter,
    /// The password field is empty (Dovecot would let such a user log in with no
    /// password only with `nopassword`; the reference refuses the line).
    EmptyPassword,
    /// `{SCHEME}` has no closing `}`.
    UnterminatedScheme,
    /// A scheme Dovecot does not know either.
    UnknownScheme(String),
    /// A Dovecot scheme that no stored form here can hold (a one-way hash).
    UnsupportedScheme(String),
    /// An encoding suffix (`.HEX`, `.B64`) the scheme does not take.
    UnsupportedEncoding(String),
    /// Hex digits expected.
    BadHex,
    /// Base64 (RFC 4648 §4, padded) expected.
    BadBase64,
    /// A `{CRAM-MD5}` context is 32 octets (64 hex digits).
    BadCramMd5Length,
    /// A SCRAM entry is `iterations,salt,StoredKey,ServerKey`.
    BadScramFormat,
    /// Iterations outside 4096..=2147483647 (Dovecot's bounds).
    ScramIterationsOutOfRange,
    /// StoredKey and ServerKey are as long as the hash output (20 or 32 octets).
    BadScramKeyLength,
    /// The user appears on an earlier line.
    DuplicateUser(String),
}

/// A passwd-file error: which file, which line (1-based), which rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswdFileError {
    /// The name given to [`parse`].
    pub source: String,
    /// 1-based line number.
    pub line: usize,
    /// The rule that was broken.
    pub rule: PasswdFileRule,
}

impl fmt::Display for PasswdFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PasswdFileRule as R;
        write!(f, "{}:{}: ", self.source, self.line)?;
        match &self.rule {
            R::MissingColon => write!(f, "expected user:password, found no ':'"),
            R::EmptyUser => write!(f, "the user name is empty"),
            R::BadUserCharacter => {
                write!(f, "the user name holds white space or a control character")
            }
            R::EmptyPassword => write!(f, "the password is empty"),
            R::UnterminatedScheme => write!(f, "'{{SCHEME}}' has no closing '}}'"),
            R::UnknownScheme(s) => write!(f, "unknown password scheme {{{s}}}"),
            R::UnsupportedScheme(s) => write!(
                f,
                "password scheme {{{s}}} is one-way and cannot serve SASL; use {{PLAIN}}, \
                 {{CRAM-MD5}}, {{SCRAM-SHA-1}} or {{SCRAM-SHA-256}}"
            ),
            R::UnsupportedEncoding(s) => {
                write!(f, "this scheme takes no .{s} encoding suffix")
            }
            R::BadHex => write!(f, "expected hex digits"),
            R::BadBase64 => write!(f, "expected base64 (RFC 4648, padded)"),
            R::BadCramMd5Length => {
                write!(f, "a {{CRAM-MD5}} secret is 64 hex digits (32 octets)")
            }
            R::BadScramFormat => {
                write!(f, "a SCRAM secret is iterations,salt,stored key,server key")
            }
            R::ScramIterationsOutOfRange => {
                write!(f, "SCRAM iterations must be 4096 to 2147483647")
            }
            R::BadScramKeyLength => write!(
                f,
                "SCRAM stored and server keys are as long as the hash (20 or 32 octets)"
            ),
            R::DuplicateUser(u) => write!(f, "user {u} already appears on an earlier line"),
        }
    }
}

impl std::error::Error for PasswdFileError {}

/// A parsed passwd-file. `Debug` lists the source and user names, never secrets.
#[derive(Clone)]
pub struct PasswdFile {
    source: String,
    users: BTreeMap<String, StoredCredential>,
}

impl PasswdFile {
    /// The name given to [`parse`], for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The user names, sorted.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when the file holds no user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

impl fmt::Debug for PasswdFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswdFile")
            .field("source", &self.source)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl CredentialStore for PasswdFile {
    fn lookup(&self, user: &str) -> Option<StoredCredential> {
        self.users.get(user).cloned()
    }
}

/// Parse a passwd-file's text; `source` names it in errors (usually the path).
pub fn parse(text: &str, source: &str) -> Result<PasswdFile, PasswdFileError> {
    let mut users = BTreeMap::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let fail = |rule| PasswdFileError {
            source: source.to_owned(),
            line: index + 1,
            rule,
        };
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, rest)) = line.split_once(':') else {
            return Err(fail(PasswdFileRule::MissingColon));
        };
        if user.is_empty() {
            return Err(fail(PasswdFileRule::EmptyUser));
        }
        if user.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail(PasswdFileRule::BadUserCharacter));
        }
        let password = rest.split_once(':').map_or(rest, |(p, _)| p);
        let credential = parse_secret(password).map_err(fail)?;
        if users.contains_key(user) {
            return Err(fail(PasswdFileRule::DuplicateUser(user.to_owned())));
        }
        users.insert(user.to_owned(), credential);
    }
    Ok(PasswdFile {
        source: source.to_owned(),
        users,
    })
}

fn b64(text: &str) -> Result<Vec<u8>, PasswdFileRule> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| PasswdFileRule::BadBase64)
}

/// Parse one password field, `{SCHEME}secret` or a bare password.
pub(crate) fn parse_secret(field: &str) -> Result<StoredCredential, PasswdFileRule> {
    if field.is_empty() {
        return Err(PasswdFileRule::EmptyPassword);
    }
    let Some(after_brace) = field.strip_prefix('{') else {
        return Ok(StoredCredential::Plain(Secret::from(field)));
    };
    let Some((scheme, secret)) = after_brace.split_once('}') else {
        return Err(PasswdFileRule::UnterminatedScheme);
    };
    let scheme = scheme.to_ascii_uppercase();
    let (base, encoding) = match scheme.rsplit_once('.') {
        Some((base, enc @ ("HEX" | "B64" | "BASE64"))) => (base, Some(enc)),
        _ => (scheme.as_str(), None),
    };
    match base {
        "PLAIN" | "CLEAR" => {
            let bytes = match encoding {
                None => secret.as_bytes().to_vec(),
                Some("HEX") => {
                    hex_decode(secret.as_bytes(), false).ok_or(PasswdFileRule::BadHex)?
                }
                Some(_) => b64(secret)?,
            };
            if bytes.is_empty() {
                return Err(PasswdFileRule::EmptyPassword);
            }
            Ok(StoredCredential::Plain(Secret::new(bytes)))
        }
        "CRAM-MD5" | "HMAC-MD5" => {
            let bytes = match encoding {
                None | Some("HEX") => {
                    hex_decode(secret.as_bytes(), false).ok_or(PasswdFileRule::BadHex)?
                }
                Some(_) => b64(secret)?,
            };
            if bytes.len() != 32 {
                return Err(PasswdFileRule::BadCramMd5Length);
            }
            Ok(StoredCredential::CramMd5(Secret::new(bytes)))
        }
        "SCRAM-SHA-1" | "SCRAM-SHA-256" => {
            if let Some(enc) = encoding {
                return Err(PasswdFileRule::UnsupportedEncoding(enc.to_owned()));
            }
            let (hash, key_len) = if base == "SCRAM-SHA-1" {
                (ScramHash::Sha1, 20)
            } else {
                (ScramHash::Sha256, 32)
            };
            parse_scram(hash, key_len, secret)
        }
        other if ONE_WAY_SCHEMES.contains(&other) => {
            Err(PasswdFileRule::UnsupportedScheme(scheme.clone()))
        }
        _ => Err(PasswdFileRule::UnknownScheme(scheme.clone())),
    }
}

/// Dovecot's `scram_scheme_parse()` format: `iter,salt,stored_key,server_key`.
fn parse_scram(
    hash: ScramHash,
    key_len: usize,
    secret: &str,
) -> Result<StoredCredential, PasswdFileRule> {
    let fields: Vec<&str> = secret.split(',').collect();
    let [iterations, salt, stored_key, server_key] = fields[..] else {
        return Err(PasswdFileRule::BadScramFormat);
    };
    if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PasswdFileRule::BadScramFormat);
    }
    let iterations: u32 = iterations
        .parse()
        .map_err(|_| PasswdFileRule::ScramIterationsOutOfRange)?;
    if !(SCRAM_MIN_ITERATIONS..=SCRAM_MAX_ITERATIONS).contains(&iterations) {
        return Err(PasswdFileRule::ScramIterationsOutOfRange);
    }
    let salt = b64(salt)?;
    let stored_key = b64(stored_key)?;
    let server_key = b64(server_key)?;
    if stored_key.len() != key_len || server_key.len() != key_len {
        return Err(PasswdFileRule::BadScramKeyLength);
    }
    Ok(StoredCredential::Scram {
        hash,
        iterations,
        salt,
        stored_key: Secret::new(stored_key),
        server_key: Secret::new(server_key),
    })
}

/// `{CRAM-MD5}` followed by the context in hex, as `doveadm pw -s CRAM-MD5` prints.
pub fn format_cram_md5(password: &[u8]) -> String {
    format!("{{CRAM-MD5}}{}", hex_lower(&cram_md5_context(password)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> (usize, PasswdFileRule) {
        let e = parse(text, "users").expect_err("must fail");
        (e.line, e.rule)
    }

    #[test]
    fn errors_name_the_line_and_rule() {
        use PasswdFileRule::*;
        assert_eq!(rule("# c\n\nalice"), (3, MissingColon));
        assert_eq!(rule(":{PLAIN}x"), (1, EmptyUser));
        assert_eq!(rule("al ice:x"), (1, BadUserCharacter));
        assert_eq!(rule("alice:"), (1, EmptyPassword));
        assert_eq!(rule("alice::1000"), (1, EmptyPassword));
        assert_eq!(rule("alice:{PLAIN}"), (1, EmptyPassword));
        assert_eq!(rule("alice:{PLAIN"), (1, UnterminatedScheme));
        assert_eq!(rule("alice:{FOO}x"), (1, UnknownScheme("FOO".into())));
        assert_eq!(
            rule("alice:{SHA512-CRYPT}$6$x"),
            (1, UnsupportedScheme("SHA512-CRYPT".into()))
        );
        assert_eq!(rule("alice:{PLAIN.HEX}6g"), (1, BadHex));
        assert_eq!(rule("alice:{PLAIN.B64}***"), (1, BadBase64));
        assert_eq!(rule("alice:{CRAM-MD5}abcd"), (1, BadCramMd5Length));
        assert_eq!(rule("alice:{CRAM-MD5}zz"), (1, BadHex));
        assert_eq!(rule("a:x\nb:y\na:z"), (3, DuplicateUser("a".into())));
        assert_eq!(rule("a:{SCRAM-SHA-1}4096,c2FsdA=="), (1, BadScramFormat));
        assert_eq!(
            rule(
                "a:{SCRAM-SHA-1}4095,c2FsdA==,AAAAAAAAAAAAAAAAAAAAAAAAAAA=,AAAAAAAAAAAAAAAAAAAAAAAAAAA="
            ),
            (1, ScramIterationsOutOfRange)
        );
        assert_eq!(
            rule(
                "a:{SCRAM-SHA-256}4096,c2FsdA==,AAAAAAAAAAAAAAAAAAAAAAAAAAA=,AAAAAAAAAAAAAAAAAAAAAAAAAAA="
            ),
            (1, BadScramKeyLength)
        );
        assert_eq!(
            rule("a:{SCRAM-SHA-1.B64}x"),
            (1, UnsupportedEncoding("B64".into()))
        );
        let e = parse("\n\nx", "/etc/dovecot/users").expect_err("fails");
        assert_eq!(
            e.to_string(),
            "/etc/dovecot/users:3: expected user:password, found no ':'"
        );
    }
}
