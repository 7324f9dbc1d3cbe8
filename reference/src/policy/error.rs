//! Configuration errors: where (file, line, parameter) and which rule was broken.

use std::fmt;

/// A configuration error. `source` is the file name given to
/// [`MainCf::parse`](super::MainCf::parse), `-o` for a master.cf-style override, or
/// `(default)` when the faulty value is a built-in default that refers to a faulty
/// parameter. `line` is 1-based and present only for values read from the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the value came from: a file name, `-o` or `(default)`.
    pub source: String,
    /// 1-based line in `source`, for values read from a file.
    pub line: Option<usize>,
    /// The parameter whose value is at fault, when the error concerns one.
    pub parameter: Option<String>,
    /// The rule that was broken.
    pub kind: ConfigErrorKind,
}

/// Which rule a configuration value breaks. Each variant cites the document that
/// states the rule; "postconf(5)" means the Postfix configuration parameter manual.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// postconf(5), main.cf format: "Each logical line has the form parameter = value".
    MissingEquals,
    /// postconf(5): parameter names contain only `[a-zA-Z0-9_]`.
    BadParameterName {
        /// The name as written.
        name: String,
    },
    /// postconf(5): "A logical line starts with non-whitespace text"; an indented line
    /// continues one, so it cannot come first.
    ContinuationWithoutParameter,
    /// The name is not a parameter authspec knows. Postfix only warns ("unused
    /// parameter"); a reference refuses, because a typo would silently change nothing.
    UnknownParameter {
        /// The name as written.
        name: String,
    },
    /// A `$name` refers to a parameter authspec does not know. Postfix expands an
    /// undefined parameter to the empty string; strict parsing refuses it.
    UndefinedReference {
        /// The parameter referred to.
        name: String,
    },
    /// postconf(5): boolean values are `yes` or `no` (Postfix compares them
    /// case-insensitively).
    BadBoolean {
        /// The value as written.
        value: String,
    },
    /// The value is not a decimal integer.
    BadNumber {
        /// The value as written.
        value: String,
    },
    /// The integer lies outside the range postconf(5) allows for this parameter.
    NumberOutOfRange {
        /// The value given.
        value: u64,
        /// The smallest value allowed.
        min: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// postconf(5) time values: an integer plus an optional one-letter unit
    /// `s`, `m`, `h`, `d` or `w`.
    BadTime {
        /// The value as written.
        value: String,
    },
    /// The value is not one of the words postconf(5) lists for this parameter.
    BadValue {
        /// The value as written.
        value: String,
        /// The words this parameter accepts.
        allowed: &'static [&'static str],
    },
    /// A list element has a form authspec does not support (for example a
    /// `type:table` lookup or a `/file/name` pattern).
    UnsupportedPattern {
        /// The list element as written.
        item: String,
    },
    /// postconf(5): "$name" expansion is recursive; this chain refers back to itself.
    ExpansionLoop {
        /// The parameters of the loop, in expansion order.
        chain: Vec<String>,
    },
    /// More than [`MAX_EXPANSION_DEPTH`](super::maincf::MAX_EXPANSION_DEPTH) nested
    /// parameter references.
    ExpansionTooDeep,
    /// The expanded value exceeds
    /// [`MAX_EXPANDED_LEN`](super::maincf::MAX_EXPANDED_LEN) bytes.
    ExpansionTooLong,
    /// Expanding the value took more than
    /// [`MAX_EXPANSION_STEPS`](super::maincf::MAX_EXPANSION_STEPS) `$name` lookups:
    /// `a = $b$b`, `b = $c$c`, … with an empty last value doubles the work per level
    /// without producing any output.
    ExpansionTooManySteps,
    /// A `$` expression that postconf(5) does not define, or one authspec does not
    /// support (logical `{a} == {b}` expressions).
    BadExpansion {
        /// What is wrong with the expression.
        reason: &'static str,
    },
    /// postconf(5) smtpd_sasl_security_options: the word is none of `noplaintext`,
    /// `noactive`, `nodictionary`, `noanonymous`, `forward_secrecy`, `mutual_auth`.
    UnknownSecurityOption {
        /// The word as written.
        word: String,
    },
    /// A mechanism filter element that is not a mechanism name, `!name` or
    /// `static:…`.
    BadFilterPattern {
        /// The element as written.
        pattern: String,
    },
    /// A network list element is not `address`, `address/len`, `[ipv6]` or
    /// `[ipv6]/len` (postconf(5) mynetworks: IPv6 goes inside `[]`).
    BadNetwork {
        /// The element as written.
        item: String,
        /// Which part failed to parse.
        reason: &'static str,
    },
    /// Postfix rejects a network/mask whose address has bits set outside the mask
    /// ("non-null host address bits").
    NonNullHostBits {
        /// The element as written.
        item: String,
    },
    /// The restriction name is not one authspec implements.
    UnknownRestriction {
        /// The name as written.
        name: String,
    },
    /// postconf(5) smtpd_relay_restrictions: "Either the smtpd_relay_restrictions or the
    /// smtpd_recipient_restrictions parameter must specify at least one of the
    /// following restrictions. Otherwise Postfix will refuse to receive mail: reject,
    /// reject_unauth_destination, defer, defer_if_permit, defer_unauth_destination".
    NoRelayRestriction,
    /// SASL is enabled but the mechanism list, the filter and the security options
    /// leave no mechanism (Postfix dies with "no SASL authentication mechanisms").
    NoMechanismsLeft,
    /// A password map line has a key but no `user:password` value.
    MissingMapValue {
        /// The key of the line.
        key: String,
    },
    /// A password map key appears twice (postmap warns "duplicate entry" and keeps
    /// the first; a reference refuses the ambiguity).
    DuplicateMapKey {
        /// The repeated key.
        key: String,
    },
    /// A `type:name` lookup table whose type authspec cannot read as a text file.
    UnsupportedTableType {
        /// The `type:name` as written.
        table: String,
    },
    /// postconf(5) relayhost: `host`, `host:port`, `[host]`, `[host]:port`.
    BadRelayhost {
        /// The value as written.
        item: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(p) = &self.parameter {
            write!(f, "{p}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ConfigErrorKind as K;
        match self {
            K::MissingEquals => f.write_str("missing '=' after parameter name"),
            K::BadParameterName { name } => {
                write!(f, "bad parameter name {name:?} (allowed: a-z A-Z 0-9 _)")
            }
            K::ContinuationWithoutParameter => {
                f.write_str("indented line does not continue any parameter")
            }
            K::UnknownParameter { name } => {
                write!(f, "unknown parameter")?;
                if let Some(close) = closest_parameter(name) {
                    write!(f, " (did you mean {close}?)")?;
                }
                Ok(())
            }
            K::UndefinedReference { name } => write!(f, "${name} refers to an unknown parameter"),
            K::BadBoolean { value } => write!(f, "bad boolean value {value:?} (use yes or no)"),
            K::BadNumber { value } => write!(f, "bad numerical value {value:?}"),
            K::NumberOutOfRange { value, min, max } => {
                write!(f, "value {value} is out of range {min}..={max}")
            }
            K::BadTime { value } => write!(
                f,
                "bad time value {value:?} (an integer with optional unit s, m, h, d or w)"
            ),
            K::BadValue { value, allowed } => {
                write!(f, "bad value {value:?} (allowed: {})", allowed.join(", "))
            }
            K::UnsupportedPattern { item } => {
                write!(
                    f,
                    "unsupported list element {item:?} (lookup tables and files are not read)"
                )
            }
            K::ExpansionLoop { chain } => {
                write!(f, "parameter expansion loops: ${}", chain.join(" -> $"))
            }
            K::ExpansionTooDeep => f.write_str("parameter expansion nests too deeply"),
            K::ExpansionTooLong => f.write_str("expanded value is too long"),
            K::ExpansionTooManySteps => write!(
                f,
                "parameter expansion takes more than {} $name lookups",
                super::maincf::MAX_EXPANSION_STEPS
            ),
            K::BadExpansion { reason } => write!(f, "bad $ expression: {reason}"),
            K::UnknownSecurityOption { word } => write!(
                f,
                "unknown SASL security option {word:?} (known: noplaintext, noactive, \
                 nodictionary, noanonymous, forward_secrecy, mutual_auth)"
            ),
            K::BadFilterPattern { pattern } => write!(
                f,
                "unsupported mechanism filter element {pattern:?} (use a mechanism name, \
                 !name or static:rest; /file/name and other tables are not read)"
            ),
            K::BadNetwork { item, reason } => write!(f, "bad network {item:?}: {reason}"),
            K::NonNullHostBits { item } => {
                write!(f, "non-null host address bits in {item:?}")
            }
            K::UnknownRestriction { name } => write!(f, "unknown restriction {name:?}"),
            K::NoRelayRestriction => f.write_str(
                "neither smtpd_relay_restrictions nor smtpd_recipient_restrictions contains \
                 reject, reject_unauth_destination, defer or defer_unauth_destination",
            ),
            K::NoMechanismsLeft => f.write_str(
                "no SASL mechanism is left after the mechanism list, filter and security options",
            ),
            K::MissingMapValue { key } => write!(f, "key {key:?} has no user:password value"),
            K::DuplicateMapKey { key } => write!(f, "duplicate key {key:?}"),
            K::UnsupportedTableType { table } => write!(
                f,
                "unsupported lookup table {table:?} (use a text file, texthash:file or hash:file)"
            ),
            K::BadRelayhost { item } => write!(
                f,
                "bad next-hop {item:?} (use host, host:port, [host] or [host]:port)"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The known parameter closest to `name` by edit distance, if it is close enough to be
/// a typo (as git and cargo suggest).
pub(crate) fn closest_parameter(name: &str) -> Option<&'static str> {
    let limit = (name.len() / 3).max(1);
    super::maincf::PARAMETERS
        .iter()
        .map(|p| (edit_distance(name, p.name), p.name))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Levenshtein distance, with adjacent transpositions (`enabel` → `enable`) as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a = a.as_bytes();
    let b = b.as_bytes();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod suggestion_tests {
    #[test]
    fn typo_suggests_the_parameter() {
        assert_eq!(
            super::closest_parameter("smtpd_sasl_auth_enabel"),
            Some("smtpd_sasl_auth_enable")
        );
        assert_eq!(super::closest_parameter("completely_unrelated_thing"), None);
    }
}
