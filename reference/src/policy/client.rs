//! The reference client's configuration (`smtp_*` parameters), the SASL password map,
//! and the client's choice of mechanism.

use std::collections::BTreeMap;
use std::fmt;

use super::error::{ConfigError, ConfigErrorKind};
use super::maincf::MainCf;
use super::security::{MechanismFilter, SaslType, SecurityOptions};
use crate::sasl::channel_binding::CbType;
use crate::sasl::{Mechanism, Secret};

/// `smtp_tls_security_level` (postconf(5)); the levels authspec's client implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientTlsLevel {
    /// `none` or empty: no TLS.
    None,
    /// `may`: STARTTLS when offered, no certificate check.
    May,
    /// `encrypt`: STARTTLS required, no certificate check.
    Encrypt,
    /// `verify`: STARTTLS required, certificate verified against the host name.
    Verify,
    /// `secure`: like `verify`, matching the next-hop domain.
    Secure,
}

const CLIENT_TLS_LEVELS: &[&str] = &["", "none", "may", "encrypt", "verify", "secure"];

/// One `relayhost` destination: `host`, `host:port`, `[host]` or `[host]:port`
/// (postconf(5) relayhost). Brackets turn MX lookups off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// The host name or address, without brackets.
    pub host: String,
    /// The port, when written (otherwise the SMTP default).
    pub port: Option<u16>,
    /// False when the host was written inside `[]`.
    pub mx_lookup: bool,
}

impl NextHop {
    /// Parse one `relayhost` element.
    pub fn parse(item: &str) -> Result<NextHop, ConfigErrorKind> {
        let bad = || ConfigErrorKind::BadRelayhost {
            item: item.to_owned(),
        };
        let (host, rest, mx_lookup) = match item.strip_prefix('[') {
            Some(inner) => {
                let (host, rest) = inner.split_once(']').ok_or_else(bad)?;
                (host, rest, false)
            }
            None => match item.split_once(':') {
                Some((host, port)) => (host, item.get(host.len()..).unwrap_or(port), true),
                None => (item, "", true),
            },
        };
        if host.is_empty() || host.contains(['[', ']', '/']) {
            return Err(bad());
        }
        let port = match rest {
            "" => None,
            _ => {
                let digits = rest.strip_prefix(':').ok_or_else(bad)?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                Some(digits.parse::<u16>().map_err(|_| bad())?)
            }
        };
        Ok(NextHop {
            host: host.to_owned(),
            port,
            mx_lookup,
        })
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mx_lookup {
            f.write_str(&self.host)?;
        } else {
            write!(f, "[{}]", self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// The reference client's configuration.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `smtp_sasl_auth_enable` (Postfix default: no; `authspec send --user` turns it
    /// on).
    pub sasl_auth_enable: bool,
    /// `smtp_sasl_password_maps`: the text files to read (`texthash:` and `hash:`
    /// prefixes removed; for `hash:` the source text is read, not the `.db`).
    pub sasl_password_maps: Vec<String>,
    /// `smtp_sasl_type`: whose mechanism classification the security options use.
    pub sasl_type: SaslType,
    /// `smtp_sasl_security_options`.
    pub sasl_security_options: SecurityOptions,
    /// `smtp_sasl_tls_security_options`, used once TLS is active.
    pub sasl_tls_security_options: SecurityOptions,
    /// `smtp_sasl_mechanism_filter`.
    pub sasl_mechanism_filter: MechanismFilter,
    /// `smtp_tls_security_level`.
    pub tls_security_level: ClientTlsLevel,
    /// `smtp_tls_CAfile`; `None` when empty.
    pub tls_ca_file: Option<String>,
    /// `smtp_tls_wrappermode`: TLS from the first byte.
    pub tls_wrappermode: bool,
    /// `smtp_helo_name`.
    pub helo_name: String,
    /// `relayhost`; empty when unset.
    pub relayhost: Vec<NextHop>,
    /// `authspec_smtp_channel_binding_types`: the binding types SCRAM-*-PLUS uses, in
    /// order of preference.
    pub channel_binding_types: Vec<CbType>,
}

impl ClientConfig {
    /// Type-check every client parameter of `cf`.
    pub fn from_main_cf(cf: &MainCf) -> Result<ClientConfig, ConfigError> {
        let sasl_type = match cf.choice("smtp_sasl_type", SaslType::NAMES)? {
            0 => SaslType::Cyrus,
            _ => SaslType::Dovecot,
        };
        let security = |name: &str| {
            SecurityOptions::parse_for(&cf.expand(name)?, sasl_type).map_err(|k| cf.error(name, k))
        };
        let mut maps = Vec::new();
        for table in cf.list("smtp_sasl_password_maps")? {
            let path = if let Some(p) = table.strip_prefix("texthash:") {
                p
            } else if let Some(p) = table.strip_prefix("hash:") {
                p
            } else if table.contains(':') {
                return Err(cf.error(
                    "smtp_sasl_password_maps",
                    ConfigErrorKind::UnsupportedTableType { table },
                ));
            } else {
                &table
            };
            if path.is_empty() {
                return Err(cf.error(
                    "smtp_sasl_password_maps",
                    ConfigErrorKind::UnsupportedTableType { table },
                ));
            }
            maps.push(path.to_owned());
        }
        let relayhost = cf
            .list("relayhost")?
            .iter()
            .map(|item| NextHop::parse(item).map_err(|k| cf.error("relayhost", k)))
            .collect::<Result<Vec<_>, _>>()?;
        let ca = cf.expand("smtp_tls_CAfile")?;
        Ok(ClientConfig {
            sasl_auth_enable: cf.boolean("smtp_sasl_auth_enable")?,
            sasl_password_maps: maps,
            sasl_type,
            sasl_security_options: security("smtp_sasl_security_options")?,
            sasl_tls_security_options: security("smtp_sasl_tls_security_options")?,
            sasl_mechanism_filter: MechanismFilter::parse(
                &cf.expand("smtp_sasl_mechanism_filter")?,
            )
            .map_err(|k| cf.error("smtp_sasl_mechanism_filter", k))?,
            tls_security_level: match cf.choice("smtp_tls_security_level", CLIENT_TLS_LEVELS)? {
                0 | 1 => ClientTlsLevel::None,
                2 => ClientTlsLevel::May,
                3 => ClientTlsLevel::Encrypt,
                4 => ClientTlsLevel::Verify,
                _ => ClientTlsLevel::Secure,
            },
            tls_ca_file: if ca.is_empty() { None } else { Some(ca) },
            tls_wrappermode: cf.boolean("smtp_tls_wrappermode")?,
            helo_name: cf.expand("smtp_helo_name")?,
            relayhost,
            channel_binding_types: cf
                .channel_binding_types("authspec_smtp_channel_binding_types")?,
        })
    }

    /// The security options in force: the `_tls_` ones once TLS is active.
    pub(crate) fn security_options(&self, tls_active: bool) -> SecurityOptions {
        if tls_active {
            self.sasl_tls_security_options
        } else {
            self.sasl_security_options
        }
    }

    /// Pick the mechanism to use from the server's `AUTH` list: the first, in the
    /// server's order, that authspec implements, the mechanism filter keeps and the
    /// security options permit. (Postfix with Cyrus lets the library pick the
    /// strongest instead; following the server's order makes the choice predictable
    /// and lets a test server steer it.)
    pub fn choose_mechanism(
        &self,
        offered: &[String],
        tls_active: bool,
    ) -> Result<Mechanism, NoMechanism> {
        let fail = |reason| NoMechanism {
            offered: offered.to_vec(),
            reason,
        };
        if offered.is_empty() {
            return Err(fail(NoMechanismReason::NoneOffered));
        }
        let implemented: Vec<Mechanism> = offered
            .iter()
            .filter_map(|name| Mechanism::from_name(name.as_bytes()))
            .collect();
        if implemented.is_empty() {
            return Err(fail(NoMechanismReason::NoneImplemented));
        }
        let kept = self.sasl_mechanism_filter.filter(&implemented);
        if kept.is_empty() {
            return Err(fail(NoMechanismReason::Filter));
        }
        let options = self.security_options(tls_active);
        if let Some(m) = kept
            .iter()
            .copied()
            .find(|m| options.permits(self.sasl_type.properties(*m)))
        {
            return Ok(m);
        }
        let mut words: Vec<&'static str> = Vec::new();
        for m in &kept {
            for w in options.violations(self.sasl_type.properties(*m)) {
                if !words.contains(&w) {
                    words.push(w);
                }
            }
        }
        // Canonical order, whatever order the mechanisms came in.
        let canonical = options.words();
        words.sort_by_key(|w| canonical.iter().position(|c| c == w));
        Err(fail(NoMechanismReason::SecurityOptions { options: words }))
    }
}

/// Why [`ClientConfig::choose_mechanism`] found nothing to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoMechanism {
    /// The server's list, as it sent it.
    pub offered: Vec<String>,
    /// Which step of the selection left nothing.
    pub reason: NoMechanismReason,
}

/// The step of [`ClientConfig::choose_mechanism`] that left no mechanism.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoMechanismReason {
    /// The server's AUTH list was empty.
    NoneOffered,
    /// authspec implements none of the offered mechanisms.
    NoneImplemented,
    /// `smtp_sasl_mechanism_filter` dropped every implemented one.
    Filter,
    /// The security options hid the rest; these options hid at least one.
    SecurityOptions {
        /// The `smtp_sasl_security_options` words that hid a mechanism.
        options: Vec<&'static str>,
    },
}

impl fmt::Display for NoMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offered = self.offered.join(" ");
        match &self.reason {
            NoMechanismReason::NoneOffered => f.write_str("server offers no SASL mechanism"),
            NoMechanismReason::NoneImplemented => write!(
                f,
                "no mechanism left: authspec implements none of the server's: {offered}"
            ),
            NoMechanismReason::Filter => write!(
                f,
                "no mechanism left after smtp_sasl_mechanism_filter: server offers {offered}"
            ),
            NoMechanismReason::SecurityOptions { options } => write!(
                f,
                "no mechanism left after {}: server offers {offered}",
                options.join(", ")
            ),
        }
    }
}

impl std::error::Error for NoMechanism {}

/// One credential. `Debug` shows the user, never the password.
#[derive(Clone, Debug)]
struct Credential {
    user: String,
    password: Secret,
}

/// An `smtp_sasl_password_maps` table read from its text source: lines of
/// `destination user:password` in postmap(1) input format. The destination is
/// `[host]:port`, `[host]`, `host`, or a next-hop domain; keys are case-insensitive.
/// The password is everything after the first `:` (so it may hold `:` and spaces);
/// without a `:` the password is empty. `Debug` prints no password.
#[derive(Clone, Debug, Default)]
pub struct PasswordMap {
    entries: BTreeMap<String, Credential>,
}

impl PasswordMap {
    /// Parse the text of a password file; `source` names it in errors. postmap(1):
    /// blank lines and `#` lines are ignored, and a line starting with whitespace
    /// continues the previous one.
    pub fn parse(text: &str, source: &str) -> Result<PasswordMap, ConfigError> {
        let mut map = PasswordMap::default();
        let mut current: Option<(usize, String)> = None;
        let is_space = |c: char| c.is_ascii_whitespace();
        for (index, line) in text.split('\n').enumerate() {
            let number = index.saturating_add(1);
            let trimmed = line.trim_start_matches(is_space);
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if line.starts_with(is_space) {
                match current.as_mut() {
                    Some((_, logical)) => logical.push_str(line.trim_end_matches(is_space)),
                    None => {
                        return Err(ConfigError {
                            source: source.to_owned(),
                            line: Some(number),
                            parameter: None,
                            kind: ConfigErrorKind::ContinuationWithoutParameter,
                        });
                    }
                }
                continue;
            }
            if let Some((start, logical)) = current.take() {
                map.add(source, start, &logical)?;
            }
            current = Some((number, line.trim_end_matches(is_space).to_owned()));
        }
        if let Some((start, logical)) = current.take() {
            map.add(source, start, &logical)?;
        }
        Ok(map)
    }

    fn add(&mut self, source: &str, line: usize, logical: &str) -> Result<(), ConfigError> {
        let err = |kind| ConfigError {
            source: source.to_owned(),
            line: Some(line),
            parameter: None,
            kind,
        };
        let (key, value) = match logical.split_once(|c: char| c.is_ascii_whitespace()) {
            Some((k, v)) => (k, v.trim_matches(|c: char| c.is_ascii_whitespace())),
            None => (logical, ""),
        };
        if value.is_empty() {
            return Err(err(ConfigErrorKind::MissingMapValue {
                key: key.to_owned(),
            }));
        }
        let key = key.to_ascii_lowercase();
        if self.entries.contains_key(&key) {
            return Err(err(ConfigErrorKind::DuplicateMapKey { key }));
        }
        let (user, password) = value.split_once(':').unwrap_or((value, ""));
        self.entries.insert(
            key,
            Credential {
                user: user.to_owned(),
                password: Secret::from(password),
            },
        );
        Ok(())
    }

    /// The number of destinations in the table.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Merge another table after this one: on a key present in both, this one wins
    /// (Postfix searches `smtp_sasl_password_maps` tables in order).
    pub fn extend(&mut self, later: PasswordMap) {
        for (k, v) in later.entries {
            self.entries.entry(k).or_insert(v);
        }
    }

    /// The credentials for a connection to `host` on `port`, found for the next-hop
    /// `nexthop_domain`. Keys are tried in this order: `[host]:port`, `[host]`, `host`,
    /// then `nexthop_domain`: the most specific first, as Postfix's SASL_README
    /// describes (remote host name first, then the next-hop destination).
    pub fn lookup(&self, host: &str, port: u16, nexthop_domain: &str) -> Option<(String, Secret)> {
        let host = host.to_ascii_lowercase();
        let keys = [
            format!("[{host}]:{port}"),
            format!("[{host}]"),
            host.clone(),
            nexthop_domain.to_ascii_lowercase(),
        ];
        keys.iter()
            .filter(|k| !k.is_empty())
            .find_map(|k| self.entries.get(k))
            .map(|c| (c.user.clone(), c.password.clone()))
    }
}

impl ClientConfig {
    /// `smtp_tls_security_level` as the client session's STARTTLS policy: `may` upgrades
    /// when offered; `encrypt`, `verify` and `secure` require it.
    pub fn starttls_policy(&self) -> crate::smtp::client::StartTlsPolicy {
        use crate::smtp::client::StartTlsPolicy;
        match self.tls_security_level {
            ClientTlsLevel::None => StartTlsPolicy::Never,
            ClientTlsLevel::May => StartTlsPolicy::Opportunistic,
            ClientTlsLevel::Encrypt | ClientTlsLevel::Verify | ClientTlsLevel::Secure => {
                StartTlsPolicy::Required
            }
        }
    }
}

/// The client's configuration picks the mechanism, as Postfix's smtp client does.
impl crate::smtp::client::MechanismChooser for ClientConfig {
    fn choose(&self, offered: &[String], tls: bool) -> Result<Mechanism, String> {
        self.choose_mechanism(offered, tls)
            .map_err(|e| e.to_string())
    }
}

/// `send --mechanism M` under the user's own policy. Postfix applies
/// `smtp_sasl_mechanism_filter` and the security options to every mechanism it may
/// use; naming one on the command line must not send a password in plaintext that
/// `smtp_sasl_security_options = noplaintext` forbids. A conflict is refused with a
/// message that names the parameter and the word.
#[derive(Debug, Clone)]
pub struct ForcedUnderPolicy {
    /// The mechanism named on the command line.
    pub mechanism: Mechanism,
    /// The policy it must still satisfy.
    pub config: ClientConfig,
}

impl ForcedUnderPolicy {
    /// Why `mechanism` may not be used, or `None` when the policy allows it.
    pub fn conflict(&self, tls: bool) -> Option<String> {
        let m = self.mechanism;
        if self.config.sasl_mechanism_filter.filter(&[m]).is_empty() {
            return Some(format!(
                "--mechanism {m} conflicts with smtp_sasl_mechanism_filter, which drops it"
            ));
        }
        let words = self
            .config
            .security_options(tls)
            .violations(self.config.sasl_type.properties(m));
        if words.is_empty() {
            return None;
        }
        let param = if tls {
            "smtp_sasl_tls_security_options"
        } else {
            "smtp_sasl_security_options"
        };
        Some(format!(
            "--mechanism {m} conflicts with {param} = {}: {} forbids it{}",
            self.config.security_options(tls).words().join(", "),
            words.join(", "),
            if tls { "" } else { " without TLS" }
        ))
    }
}

impl crate::smtp::client::MechanismChooser for ForcedUnderPolicy {
    fn forced(&self) -> bool {
        true
    }

    fn choose(&self, offered: &[String], tls: bool) -> Result<Mechanism, String> {
        if let Some(conflict) = self.conflict(tls) {
            return Err(conflict);
        }
        crate::smtp::client::MechanismChooser::choose(
            &crate::smtp::client::Forced(self.mechanism),
            offered,
            tls,
        )
    }
}
