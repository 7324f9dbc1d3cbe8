//! main.cf syntax, as postconf(5) describes it under "Postfix main.cf file format":
//!
//! * each logical line has the form `parameter = value`; whitespace around `=` and at
//!   the end of the logical line is ignored;
//! * empty lines, whitespace-only lines and lines whose first non-whitespace character
//!   is `#` are ignored (they do not end a logical line either);
//! * a line that starts with whitespace continues the previous logical line;
//! * `$name`, `${name}` and `$(name)` are replaced, recursively, by the named value;
//!   `${name?value}` / `${name?{value}}` give `value` when `$name` is non-empty,
//!   `${name:value}` / `${name:{value}}` when it is empty, `${name?{v1}:{v2}}` picks one
//!   of the two, and `$$` is a literal `$`;
//! * when a parameter is set twice, the last setting wins.
//!
//! Expansion is lazy: values are stored as written and expanded at lookup against the
//! effective table (overrides, then the file, then defaults), so `-o` overrides are
//! seen by every value that refers to them, as in Postfix.
//!
//! Deviations from Postfix, on purpose: an unknown parameter name is an error
//! (the default of [`MainCf::parse`]) rather than a
//! warning, and so is a `$name` that refers to one; the logical `${{a} == {b}?…}` form
//! is not supported. [`MainCf::parse_lenient`] accepts Postfix's own main.cf files by
//! ignoring unknown parameters and expanding unknown references to the empty string.
//! A continuation line is appended with its leading whitespace (which separates it from
//! the text before), without the line break.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::{ConfigError, ConfigErrorKind};

/// Nested `$name` references followed before giving up (Postfix's mac_expand stops at
/// 100 levels as well).
pub const MAX_EXPANSION_DEPTH: usize = 100;
/// The longest expanded value, in bytes: `a = $b$b`, `b = $c$c`, … would otherwise
/// grow exponentially.
pub const MAX_EXPANDED_LEN: usize = 1 << 20;

/// The most `$name` lookups one expansion may make. The output bound alone does not
/// stop `a = $b$b`, `b = $c$c`, … when the last value is empty: the work doubles per
/// level while the output stays empty. Real main.cf values need a few dozen.
pub const MAX_EXPANSION_STEPS: usize = 10_000;

/// The name `MainCf::parse` reports for values that come from `-o name=value`.
pub(crate) const OVERRIDE_SOURCE: &str = "-o";
/// The name reported for values that come from the built-in defaults.
pub(crate) const DEFAULT_SOURCE: &str = "(default)";

/// A parameter authspec knows, with its default as `postconf -d` would print it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parameter {
    /// The parameter name, as in main.cf.
    pub name: &'static str,
    /// The default value, unexpanded (`$myhostname` stays a reference).
    pub default: &'static str,
}

const fn p(name: &'static str, default: &'static str) -> Parameter {
    Parameter { name, default }
}

/// Every parameter authspec reads, sorted by name. Defaults are Postfix's (postconf(5),
/// Postfix 3.7) except where marked; the differences are listed in the policy README.
pub const PARAMETERS: &[Parameter] = &[
    // authspec-only: whether an ANONYMOUS login (RFC 4505) counts as authenticated for
    // authspec_require_auth and permit_sasl_authenticated. Postfix never trusts it.
    p("authspec_anonymous_is_authenticated", "no"),
    // authspec-only: delay before a 535 reply (Postfix leaves this to the SASL backend).
    p("authspec_auth_failure_delay", "0s"),
    // authspec-only: refuse MAIL before AUTH with RFC 4954 §6's 530 5.7.0.
    p("authspec_require_auth", "no"),
    // authspec-only: the channel-binding types SCRAM-*-PLUS accepts (RFC 5802 §6), in
    // order; -PLUS is offered only over TLS with data of one of them. tls-unique is
    // not available from rustls and is refused.
    p(
        "authspec_sasl_channel_binding_types",
        "tls-exporter, tls-server-end-point",
    ),
    // authspec-only: the mechanisms the server implements and offers, in order, before
    // the filter and security options (Cyrus's mech_list). Empty means every
    // mechanism authspec implements, strongest first.
    p("authspec_sasl_mech_list", ""),
    // authspec-only: the channel-binding types the client's SCRAM-*-PLUS uses, in order
    // of preference, among those the TLS connection has (RFC 5802 §6).
    p(
        "authspec_smtp_channel_binding_types",
        "tls-exporter, tls-server-end-point",
    ),
    p("broken_sasl_auth_clients", "no"),
    // authspec: the product name in the banner.
    p("mail_name", "authspec"),
    p("message_size_limit", "10240000"),
    p(
        "mydestination",
        "$myhostname, localhost.$mydomain, localhost",
    ),
    // Computed in Postfix from myhostname; here too (see `MainCf::raw`).
    p("mydomain", ""),
    // Postfix uses the machine's name; the sans-IO core cannot ask for it.
    p("myhostname", "localhost"),
    // Postfix derives this from the machine's interfaces; a test server trusts
    // loopback only.
    p("mynetworks", "127.0.0.0/8 [::1]/128"),
    p("relay_domains", ""),
    p("relayhost", ""),
    p("smtp_helo_name", "$myhostname"),
    p("smtp_sasl_auth_enable", "no"),
    p("smtp_sasl_mechanism_filter", ""),
    p("smtp_sasl_password_maps", ""),
    p("smtp_sasl_security_options", "noplaintext, noanonymous"),
    p(
        "smtp_sasl_tls_security_options",
        "$smtp_sasl_security_options",
    ),
    p("smtp_sasl_type", "cyrus"),
    p("smtp_tls_CAfile", ""),
    p("smtp_tls_security_level", ""),
    p("smtp_tls_wrappermode", "no"),
    p("smtpd_banner", "$myhostname ESMTP $mail_name"),
    p("smtpd_client_connection_count_limit", "50"),
    // Postfix: ${smtpd_client_connection_limit_exceptions:$mynetworks}; authspec has
    // only the newer name.
    p("smtpd_client_event_limit_exceptions", "$mynetworks"),
    p("smtpd_client_restrictions", ""),
    p("smtpd_delay_reject", "yes"),
    p("smtpd_discard_ehlo_keywords", ""),
    p("smtpd_error_sleep_time", "1s"),
    // authspec: reject bare LF (Postfix 3.9's `reject`); Postfix's default is `no`
    // before 3.9 and `normalize` after.
    p("smtpd_forbid_bare_newline", "reject"),
    p("smtpd_hard_error_limit", "20"),
    p("smtpd_recipient_limit", "1000"),
    p("smtpd_recipient_overshoot_limit", "1000"),
    p("smtpd_recipient_restrictions", ""),
    p(
        "smtpd_relay_restrictions",
        "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
    ),
    // authspec: AUTH is what this server exists to test, so it is on (Postfix: no).
    p("smtpd_sasl_auth_enable", "yes"),
    p("smtpd_sasl_authenticated_header", "no"),
    p("smtpd_sasl_exceptions_networks", ""),
    p("smtpd_sasl_local_domain", ""),
    p("smtpd_sasl_mechanism_filter", "!external, static:rest"),
    p("smtpd_sasl_response_limit", "12288"),
    p("smtpd_sasl_security_options", "noanonymous"),
    p(
        "smtpd_sasl_tls_security_options",
        "$smtpd_sasl_security_options",
    ),
    p("smtpd_sasl_type", "cyrus"),
    p("smtpd_soft_error_limit", "10"),
    p("smtpd_timeout", "300s"),
    p("smtpd_tls_auth_only", "no"),
    p("smtpd_tls_cert_file", ""),
    p("smtpd_tls_key_file", "$smtpd_tls_cert_file"),
    p("smtpd_tls_security_level", ""),
    p("smtpd_tls_wrappermode", "no"),
];

/// The known parameter called `name` (names are case-sensitive, as in Postfix:
/// `smtp_tls_CAfile`).
pub fn parameter(name: &str) -> Option<&'static Parameter> {
    PARAMETERS
        .binary_search_by(|p| p.name.cmp(name))
        .ok()
        .and_then(|i| PARAMETERS.get(i))
}

/// What to do with parameter names authspec does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnknownParameters {
    /// Refuse them, and refuse `$name` references to them.
    Reject,
    /// Keep them (they can be referred to) and list them in
    /// [`MainCf::unknown_parameters`]; a reference to an undefined name expands to the
    /// empty string, as in Postfix.
    Ignore,
}

/// Where the effective value of a parameter comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// No file line or override sets it: the built-in default.
    Default,
    /// A line of the main.cf file.
    File {
        /// 1-based line of the main.cf file.
        line: usize,
    },
    /// A `-o name=value` override, which wins over the file.
    Override,
}

/// A parsed main.cf plus `-o` overrides. Values are kept as written; lookups expand.
#[derive(Clone, Debug)]
pub struct MainCf {
    source: String,
    unknown: UnknownParameters,
    /// name -> (value as written, line of the last setting)
    file: BTreeMap<String, (String, usize)>,
    overrides: BTreeMap<String, String>,
}

impl Default for MainCf {
    fn default() -> MainCf {
        MainCf {
            source: "main.cf".to_owned(),
            unknown: UnknownParameters::Reject,
            file: BTreeMap::new(),
            overrides: BTreeMap::new(),
        }
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_name_byte)
}

/// postconf(5) says "whitespace"; Postfix uses isspace(), which includes CR, so a
/// CRLF-terminated main.cf reads the same as an LF one.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | '\x0b' | '\x0c')
}

impl MainCf {
    /// Parse main.cf text, refusing unknown parameter names. `source` names the file
    /// in errors.
    pub fn parse(text: &str, source: &str) -> Result<MainCf, ConfigError> {
        MainCf::parse_with(text, source, UnknownParameters::Reject)
    }

    /// Parse a main.cf written for Postfix itself: unknown names are kept and listed
    /// by [`MainCf::unknown_parameters`].
    pub fn parse_lenient(text: &str, source: &str) -> Result<MainCf, ConfigError> {
        MainCf::parse_with(text, source, UnknownParameters::Ignore)
    }

    pub(crate) fn parse_with(
        text: &str,
        source: &str,
        unknown: UnknownParameters,
    ) -> Result<MainCf, ConfigError> {
        let mut cf = MainCf {
            source: source.to_owned(),
            unknown,
            ..MainCf::default()
        };
        // The logical line being assembled: (first line number, text).
        let mut current: Option<(usize, String)> = None;
        for (index, line) in text.split('\n').enumerate() {
            let number = index.saturating_add(1);
            let trimmed = line.trim_start_matches(is_space);
            // postconf(5): blank lines and `#` lines are ignored; they do not end the
            // logical line, so an indented line after a comment still continues it.
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if line.starts_with(is_space) {
                match current.as_mut() {
                    Some((_, logical)) => logical.push_str(line.trim_end_matches(is_space)),
                    None => {
                        return Err(ConfigError {
                            source: cf.source.clone(),
                            line: Some(number),
                            parameter: None,
                            kind: ConfigErrorKind::ContinuationWithoutParameter,
                        });
                    }
                }
                continue;
            }
            if let Some((start, logical)) = current.take() {
                cf.add_logical_line(start, &logical)?;
            }
            current = Some((number, line.trim_end_matches(is_space).to_owned()));
        }
        if let Some((start, logical)) = current.take() {
            cf.add_logical_line(start, &logical)?;
        }
        Ok(cf)
    }

    fn add_logical_line(&mut self, line: usize, logical: &str) -> Result<(), ConfigError> {
        let err = |parameter: Option<String>, kind| ConfigError {
            source: self.source.clone(),
            line: Some(line),
            parameter,
            kind,
        };
        let Some((name, value)) = logical.split_once('=') else {
            let name = logical.split(is_space).next().unwrap_or_default();
            return Err(err(Some(name.to_owned()), ConfigErrorKind::MissingEquals));
        };
        let name = name.trim_matches(is_space);
        let value = value.trim_matches(is_space);
        if !valid_name(name) {
            return Err(err(
                None,
                ConfigErrorKind::BadParameterName {
                    name: name.to_owned(),
                },
            ));
        }
        if parameter(name).is_none() && self.unknown == UnknownParameters::Reject {
            return Err(err(
                Some(name.to_owned()),
                ConfigErrorKind::UnknownParameter {
                    name: name.to_owned(),
                },
            ));
        }
        // postconf(5): "only the last instance is remembered".
        self.file.insert(name.to_owned(), (value.to_owned(), line));
        Ok(())
    }

    /// Apply a master.cf-style `-o name=value` override on top of the file. Whitespace
    /// around the name and the value is ignored; the value may be empty.
    pub fn set_override(&mut self, spec: &str) -> Result<(), ConfigError> {
        let err = |parameter: Option<String>, kind| ConfigError {
            source: OVERRIDE_SOURCE.to_owned(),
            line: None,
            parameter,
            kind,
        };
        let Some((name, value)) = spec.split_once('=') else {
            return Err(err(
                Some(spec.trim_matches(is_space).to_owned()),
                ConfigErrorKind::MissingEquals,
            ));
        };
        let name = name.trim_matches(is_space);
        if !valid_name(name) {
            return Err(err(
                None,
                ConfigErrorKind::BadParameterName {
                    name: name.to_owned(),
                },
            ));
        }
        if parameter(name).is_none() && self.unknown == UnknownParameters::Reject {
            return Err(err(
                Some(name.to_owned()),
                ConfigErrorKind::UnknownParameter {
                    name: name.to_owned(),
                },
            ));
        }
        self.overrides
            .insert(name.to_owned(), value.trim_matches(is_space).to_owned());
        Ok(())
    }

    /// The file name errors are reported against.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Parameters set in the file (or by `-o`) that authspec does not know, sorted.
    pub fn unknown_parameters(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .file
            .keys()
            .chain(self.overrides.keys())
            .filter(|n| parameter(n).is_none())
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Where the effective value of `name` comes from; `None` for a name that is
    /// neither set nor known.
    pub fn origin(&self, name: &str) -> Option<Origin> {
        if self.overrides.contains_key(name) {
            Some(Origin::Override)
        } else if let Some((_, line)) = self.file.get(name) {
            Some(Origin::File { line: *line })
        } else if parameter(name).is_some() {
            Some(Origin::Default)
        } else {
            None
        }
    }

    /// The effective value of `name` as written, before expansion: the override, else
    /// the file's last setting, else the default. `mydomain`'s default is computed
    /// from `myhostname` as Postfix does (everything after the first dot, or
    /// `localdomain`), so it is returned already expanded (with `$` escaped as `$$`).
    pub fn raw(&self, name: &str) -> Option<String> {
        match self.lookup_raw(name)? {
            Raw::Text(text) => Some(text),
            Raw::DomainOfHostname => {
                let mut expander = Expander {
                    cf: self,
                    stack: vec![name.to_owned()],
                    produced: 0,
                    steps: 0,
                };
                let host = expander.expand_name("myhostname").unwrap_or_default();
                Some(domain_of(&host).replace('$', "$$"))
            }
        }
    }

    fn lookup_raw(&self, name: &str) -> Option<Raw> {
        if let Some(v) = self.overrides.get(name) {
            return Some(Raw::Text(v.clone()));
        }
        if let Some((v, _)) = self.file.get(name) {
            return Some(Raw::Text(v.clone()));
        }
        let param = parameter(name)?;
        if name == "mydomain" {
            return Some(Raw::DomainOfHostname);
        }
        Some(Raw::Text(param.default.to_owned()))
    }

    /// The expanded effective value of `name`, or `None` when the name is unknown or
    /// the expansion fails (use [`MainCf::expand`] to see why).
    pub fn get(&self, name: &str) -> Option<String> {
        self.expand(name).ok()
    }

    /// The expanded effective value of `name`, with a located error.
    pub fn expand(&self, name: &str) -> Result<String, ConfigError> {
        if self.lookup_raw(name).is_none() {
            return Err(self.error(
                name,
                ConfigErrorKind::UnknownParameter {
                    name: name.to_owned(),
                },
            ));
        }
        let mut expander = Expander {
            cf: self,
            stack: Vec::new(),
            produced: 0,
            steps: 0,
        };
        expander
            .expand_name(name)
            .map_err(|kind| self.error(name, kind))
    }

    /// A located error about the effective value of `name`.
    pub fn error(&self, name: &str, kind: ConfigErrorKind) -> ConfigError {
        let (source, line) = match self.origin(name) {
            Some(Origin::Override) => (OVERRIDE_SOURCE.to_owned(), None),
            Some(Origin::File { line }) => (self.source.clone(), Some(line)),
            Some(Origin::Default) | None => (DEFAULT_SOURCE.to_owned(), None),
        };
        ConfigError {
            source,
            line,
            parameter: Some(name.to_owned()),
            kind,
        }
    }

    /// A boolean parameter: `yes` or `no`, case-insensitively (Postfix's
    /// mail_conf_bool.c compares with strcasecmp).
    pub fn boolean(&self, name: &str) -> Result<bool, ConfigError> {
        let value = self.expand(name)?;
        parse_bool(&value).ok_or_else(|| self.error(name, ConfigErrorKind::BadBoolean { value }))
    }

    /// A decimal integer parameter within `min..=max`.
    pub fn number(&self, name: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
        let value = self.expand(name)?;
        let n = parse_number(&value)
            .ok_or_else(|| self.error(name, ConfigErrorKind::BadNumber { value }))?;
        if n < min || n > max {
            return Err(self.error(
                name,
                ConfigErrorKind::NumberOutOfRange { value: n, min, max },
            ));
        }
        Ok(n)
    }

    /// A time parameter (default unit: seconds).
    pub fn time(&self, name: &str) -> Result<Duration, ConfigError> {
        let value = self.expand(name)?;
        parse_time(&value, 's').ok_or_else(|| self.error(name, ConfigErrorKind::BadTime { value }))
    }

    /// A list parameter, split on commas and whitespace; empty elements vanish.
    pub fn list(&self, name: &str) -> Result<Vec<String>, ConfigError> {
        let value = self.expand(name)?;
        Ok(split_list(&value).into_iter().map(str::to_owned).collect())
    }

    /// A list of channel-binding types (RFC 5802 §6), in order and without repeats;
    /// `tls-unique` is refused, since rustls cannot produce it (RFC 9266 §3: and TLS 1.3
    /// has none).
    pub fn channel_binding_types(
        &self,
        name: &str,
    ) -> Result<Vec<crate::sasl::channel_binding::CbType>, ConfigError> {
        use crate::sasl::channel_binding::CbType;
        let mut types = Vec::new();
        for item in self.list(name)? {
            match CbType::from_name(item.as_bytes()) {
                Some(t) if t != CbType::TlsUnique => {
                    if !types.contains(&t) {
                        types.push(t);
                    }
                }
                _ => {
                    return Err(self.error(
                        name,
                        ConfigErrorKind::BadValue {
                            value: item.clone(),
                            allowed: &["tls-exporter", "tls-server-end-point"],
                        },
                    ));
                }
            }
        }
        Ok(types)
    }

    /// One of a fixed set of words, compared case-insensitively; returns the index in
    /// `allowed`.
    pub fn choice(
        &self,
        name: &str,
        allowed: &'static [&'static str],
    ) -> Result<usize, ConfigError> {
        let value = self.expand(name)?;
        let word = value.trim_matches(is_space);
        allowed
            .iter()
            .position(|a| a.eq_ignore_ascii_case(word))
            .ok_or_else(|| self.error(name, ConfigErrorKind::BadValue { value, allowed }))
    }

    /// `postconf`-style `name = value` lines for every known parameter, sorted by name.
    /// With `expand`, values are expanded (like `postconf -x`); a value that fails to
    /// expand is printed as written.
    pub fn effective(&self, expand: bool) -> Vec<(String, String)> {
        let mut names: Vec<&str> = PARAMETERS.iter().map(|p| p.name).collect();
        if self.unknown == UnknownParameters::Ignore {
            names.extend(
                self.file
                    .keys()
                    .chain(self.overrides.keys())
                    .map(String::as_str)
                    .filter(|n| parameter(n).is_none()),
            );
        }
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .map(|name| {
                let raw = self.raw(name).unwrap_or_default();
                let value = if expand {
                    self.expand(name).unwrap_or(raw)
                } else {
                    raw
                };
                (name.to_owned(), value)
            })
            .collect()
    }

    /// [`MainCf::effective`] formatted as `postconf` prints it.
    pub fn print(&self, expand: bool) -> String {
        let mut out = String::new();
        for (name, value) in self.effective(expand) {
            out.push_str(&name);
            out.push_str(" =");
            if !value.is_empty() {
                out.push(' ');
                out.push_str(&value);
            }
            out.push('\n');
        }
        out
    }
}

/// A value as written, or one Postfix computes.
enum Raw {
    Text(String),
    /// `mydomain`'s default: `myhostname` minus its first label.
    DomainOfHostname,
}

/// Postfix's default `mydomain`: `myhostname` minus its first label, or `localdomain`
/// when `myhostname` has no dot.
fn domain_of(host: &str) -> &str {
    match host.split_once('.') {
        Some((_, rest)) if !rest.is_empty() => rest,
        _ => "localdomain",
    }
}

/// Recursive `$` expansion with a loop check, a depth bound, an output bound and a
/// work bound.
struct Expander<'a> {
    cf: &'a MainCf,
    stack: Vec<String>,
    produced: usize,
    steps: usize,
}

impl Expander<'_> {
    fn expand_name(&mut self, name: &str) -> Result<String, ConfigErrorKind> {
        self.steps += 1;
        if self.steps > MAX_EXPANSION_STEPS {
            return Err(ConfigErrorKind::ExpansionTooManySteps);
        }
        if self.stack.iter().any(|n| n == name) {
            let mut chain = self.stack.clone();
            chain.push(name.to_owned());
            return Err(ConfigErrorKind::ExpansionLoop { chain });
        }
        if self.stack.len() >= MAX_EXPANSION_DEPTH {
            return Err(ConfigErrorKind::ExpansionTooDeep);
        }
        let raw = match self.cf.lookup_raw(name) {
            Some(raw) => raw,
            None if self.cf.unknown == UnknownParameters::Ignore => Raw::Text(String::new()),
            None => {
                return Err(ConfigErrorKind::UndefinedReference {
                    name: name.to_owned(),
                });
            }
        };
        self.stack.push(name.to_owned());
        let result = match raw {
            Raw::Text(text) => self.expand_text(&text),
            Raw::DomainOfHostname => self
                .expand_name("myhostname")
                .map(|host| domain_of(&host).to_owned()),
        };
        self.stack.pop();
        result
    }

    fn push(&mut self, out: &mut String, text: &str) -> Result<(), ConfigErrorKind> {
        self.produced = self.produced.saturating_add(text.len());
        if self.produced > MAX_EXPANDED_LEN {
            return Err(ConfigErrorKind::ExpansionTooLong);
        }
        out.push_str(text);
        Ok(())
    }

    fn expand_text(&mut self, text: &str) -> Result<String, ConfigErrorKind> {
        let bytes = text.as_bytes();
        let mut out = String::new();
        let mut i = 0;
        while i < bytes.len() {
            let Some(offset) = bytes[i..].iter().position(|&b| b == b'$') else {
                self.push(&mut out, &text[i..])?;
                break;
            };
            let dollar = i + offset;
            self.push(&mut out, &text[i..dollar])?;
            let Some(&next) = bytes.get(dollar + 1) else {
                return Err(ConfigErrorKind::BadExpansion {
                    reason: "a lone $ at the end of the value (write $$ for a literal $)",
                });
            };
            match next {
                b'$' => {
                    self.push(&mut out, "$")?;
                    i = dollar + 2;
                }
                b'{' | b'(' => {
                    let close = if next == b'{' { b'}' } else { b')' };
                    let Some(end) = matching(bytes, dollar + 1, next, close) else {
                        return Err(ConfigErrorKind::BadExpansion {
                            reason: "unbalanced ${ or $(",
                        });
                    };
                    let value = self.expand_braced(&text[dollar + 2..end])?;
                    self.push(&mut out, &value)?;
                    i = end + 1;
                }
                b if is_name_byte(b) => {
                    let len = bytes[dollar + 1..]
                        .iter()
                        .take_while(|&&b| is_name_byte(b))
                        .count();
                    let value = self.expand_name(&text[dollar + 1..dollar + 1 + len])?;
                    self.push(&mut out, &value)?;
                    i = dollar + 1 + len;
                }
                _ => {
                    return Err(ConfigErrorKind::BadExpansion {
                        reason: "$ must be followed by a name, {, ( or $",
                    });
                }
            }
        }
        Ok(out)
    }

    /// The inside of `${...}` or `$(...)`.
    fn expand_braced(&mut self, inner: &str) -> Result<String, ConfigErrorKind> {
        if inner.starts_with('{') {
            return Err(ConfigErrorKind::BadExpansion {
                reason: "logical ${{a} == {b}...} expressions are not supported",
            });
        }
        let len = inner.bytes().take_while(|&b| is_name_byte(b)).count();
        if len == 0 {
            return Err(ConfigErrorKind::BadExpansion {
                reason: "empty parameter name in ${}",
            });
        }
        let (name, rest) = inner.split_at(len);
        let Some(op) = rest.bytes().next() else {
            return self.expand_name(name);
        };
        if op != b'?' && op != b':' {
            return Err(ConfigErrorKind::BadExpansion {
                reason: "expected }, ? or : after the parameter name",
            });
        }
        let (when_set, otherwise) = split_conditional(&rest[1..], op)?;
        let value = self.expand_name(name)?;
        let chosen = match (op, value.is_empty()) {
            (b'?', false) | (b':', true) => Some(when_set),
            (b'?', true) => otherwise,
            _ => None,
        };
        match chosen {
            Some(text) => self.expand_text(text),
            None => Ok(String::new()),
        }
    }
}

/// Split the part after `?` or `:` into its value(s). postconf(5): "{}" is required
/// for value1 in `${name?{value1}:{value2}}`, optional for value2, and whitespace
/// around each `{value}` is ignored.
fn split_conditional(part: &str, op: u8) -> Result<(&str, Option<&str>), ConfigErrorKind> {
    let bad = |reason| Err(ConfigErrorKind::BadExpansion { reason });
    let trimmed = part.trim_matches(is_space);
    if !trimmed.starts_with('{') {
        return Ok((part, None));
    }
    let bytes = trimmed.as_bytes();
    let Some(end) = matching(bytes, 0, b'{', b'}') else {
        return bad("unbalanced { in a conditional value");
    };
    let first = &trimmed[1..end];
    let after = trimmed[end + 1..].trim_matches(is_space);
    if after.is_empty() {
        return Ok((first, None));
    }
    let Some(second) = after.strip_prefix(':').filter(|_| op == b'?') else {
        return bad("unexpected text after {value}");
    };
    let second = second.trim_matches(is_space);
    if !second.starts_with('{') {
        return Ok((first, Some(second)));
    }
    let Some(end2) = matching(second.as_bytes(), 0, b'{', b'}') else {
        return bad("unbalanced { in a conditional value");
    };
    if !second[end2 + 1..].trim_matches(is_space).is_empty() {
        return bad("unexpected text after {value2}");
    }
    Ok((first, Some(&second[1..end2])))
}

/// Index of the bracket closing the one at `open_at`, counting nesting.
fn matching(bytes: &[u8], open_at: usize, open: u8, close: u8) -> Option<usize> {
    let mut depth = 0usize;
    for (i, &b) in bytes.iter().enumerate().skip(open_at) {
        if b == open {
            depth = depth.checked_add(1)?;
        } else if b == close {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// `yes`/`no`, case-insensitively.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if value.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

/// A non-negative decimal integer (digits only, as Postfix's conv_int accepts).
pub(crate) fn parse_number(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// A Postfix time value (conv_time.c): a non-negative integer with an optional
/// one-letter unit `s`, `m`, `h`, `d` or `w`; `default_unit` applies without one.
/// Like Postfix, the result must fit a C `int` of seconds.
pub(crate) fn parse_time(value: &str, default_unit: char) -> Option<Duration> {
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = value.split_at(digits);
    let n = parse_number(number)?;
    let unit = match unit.len() {
        0 => default_unit,
        1 => unit.chars().next()?,
        _ => return None,
    };
    let scale: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    let seconds = n.checked_mul(scale)?;
    if seconds > i32::MAX as u64 {
        return None;
    }
    Some(Duration::from_secs(seconds))
}

/// Split a Postfix list value on commas and whitespace (postconf(5): "separated by
/// commas and/or whitespace").
pub(crate) fn split_list(value: &str) -> Vec<&str> {
    value
        .split(|c: char| c == ',' || is_space(c))
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_table_is_sorted_and_unique() {
        for pair in PARAMETERS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} >= {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn time_values() {
        assert_eq!(parse_time("300s", 's'), Some(Duration::from_secs(300)));
        assert_eq!(parse_time("5m", 's'), Some(Duration::from_secs(300)));
        assert_eq!(parse_time("1h", 's'), Some(Duration::from_secs(3600)));
        assert_eq!(parse_time("2w", 's'), Some(Duration::from_secs(1_209_600)));
        assert_eq!(parse_time("7", 's'), Some(Duration::from_secs(7)));
        assert_eq!(parse_time("7", 'm'), Some(Duration::from_secs(420)));
        assert_eq!(parse_time("", 's'), None);
        assert_eq!(parse_time("s", 's'), None);
        assert_eq!(parse_time("5M", 's'), None);
        assert_eq!(parse_time("5ms", 's'), None);
        assert_eq!(parse_time("-5s", 's'), None);
        assert_eq!(parse_time("99999999999w", 's'), None);
        assert_eq!(parse_time("99999999999999999999999", 's'), None);
    }

    #[test]
    fn booleans_are_case_insensitive() {
        assert_eq!(parse_bool("YES"), Some(true));
        assert_eq!(parse_bool("No"), Some(false));
        assert_eq!(parse_bool("true"), None);
        assert_eq!(parse_bool(""), None);
    }

    #[test]
    fn lists_split_on_commas_and_whitespace() {
        assert_eq!(split_list(" a, b\tc ,,d\n e "), ["a", "b", "c", "d", "e"]);
        assert!(split_list(" , ").is_empty());
    }

    #[test]
    fn matching_brackets_nest() {
        assert_eq!(matching(b"{a{b}c}d", 0, b'{', b'}'), Some(6));
        assert_eq!(matching(b"{a{b}c", 0, b'{', b'}'), None);
    }
}
