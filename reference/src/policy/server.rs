//! The reference server's configuration (`smtpd_*` parameters), built from a
//! [`MainCf`], and Postfix's access restriction lists as far as relay control needs
//! them.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use super::error::{ConfigError, ConfigErrorKind};
use super::maincf::{MainCf, split_list};
use super::network::NetworkList;
use super::security::{MechanismFilter, SaslType, SecurityOptions};
use crate::sasl::Mechanism;
use crate::sasl::channel_binding::CbType;

/// `smtpd_tls_security_level` (postconf(5)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsLevel {
    /// `none`, or empty: no STARTTLS.
    None,
    /// `may`: offer STARTTLS, do not require it.
    May,
    /// `encrypt`: require STARTTLS before mail; implies `smtpd_tls_auth_only = yes`.
    /// postconf(5) note 1: the server treats `fingerprint`, `verify` and `secure` as
    /// `encrypt` (Postfix logs a warning).
    Encrypt,
}

const TLS_LEVELS: &[&str] = &[
    "",
    "none",
    "may",
    "encrypt",
    "fingerprint",
    "verify",
    "secure",
];

/// `smtpd_forbid_bare_newline` (postconf(5), Postfix 3.9 values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BareNewline {
    /// `no`: accept a bare LF as a line end.
    Allow,
    /// `normalize` (or its alias `yes`): accept bare LF in lines, but require
    /// `<CR><LF>.<CR><LF>` to end DATA.
    Normalize,
    /// `reject`: reject any command or message line that contains a bare LF.
    Reject,
}

const BARE_NEWLINE: &[&str] = &["no", "normalize", "yes", "reject"];

/// One element of an SMTP access restriction list (postconf(5)
/// smtpd_recipient_restrictions). Names are matched case-insensitively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restriction {
    /// `permit`: accept; stop evaluating this list.
    Permit,
    /// `reject`: reply `$reject_code` (554) `5.7.1 … Access denied`.
    Reject,
    /// `defer`: reply `$defer_code` (450) `4.3.2 … Try again later`.
    Defer,
    /// `permit_mynetworks`: accept a client whose address matches `$mynetworks`.
    PermitMynetworks,
    /// `permit_sasl_authenticated`: accept a client that authenticated with AUTH
    /// (RFC 4954). An ANONYMOUS login does not count: Postfix "treats anonymous login
    /// as no authentication" (postconf(5) smtpd_sasl_security_options).
    PermitSaslAuthenticated,
    /// `permit_auth_destination`: accept mail for `$mydestination` or `$relay_domains`.
    PermitAuthDestination,
    /// `reject_unauth_destination`: reject mail for any other destination with
    /// `$relay_domains_reject_code` (554) `5.7.1 <rcpt>: Relay access denied`.
    RejectUnauthDestination,
    /// `defer_unauth_destination`: the same with a temporary `454 4.7.1` (Postfix 2.10).
    DeferUnauthDestination,
}

impl Restriction {
    /// Every restriction authspec implements, by its postconf(5) name.
    pub const NAMES: [(&'static str, Restriction); 8] = [
        ("permit", Restriction::Permit),
        ("reject", Restriction::Reject),
        ("defer", Restriction::Defer),
        ("permit_mynetworks", Restriction::PermitMynetworks),
        (
            "permit_sasl_authenticated",
            Restriction::PermitSaslAuthenticated,
        ),
        (
            "permit_auth_destination",
            Restriction::PermitAuthDestination,
        ),
        (
            "reject_unauth_destination",
            Restriction::RejectUnauthDestination,
        ),
        (
            "defer_unauth_destination",
            Restriction::DeferUnauthDestination,
        ),
    ];

    /// The restriction of this postconf(5) name (case-insensitive), if authspec implements it.
    pub fn from_name(name: &str) -> Option<Restriction> {
        Restriction::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, r)| *r)
    }

    /// The postconf(5) name, lower case.
    pub fn name(self) -> &'static str {
        Restriction::NAMES
            .iter()
            .find(|(_, r)| *r == self)
            .map_or("", |(n, _)| n)
    }

    /// Whether the restriction can refuse mail; postconf(5) requires one of these in
    /// the relay or recipient list.
    fn refuses(self) -> bool {
        matches!(
            self,
            Restriction::Reject
                | Restriction::Defer
                | Restriction::RejectUnauthDestination
                | Restriction::DeferUnauthDestination
        )
    }
}

/// Parse a restriction list; an unknown name is an error naming it.
pub(crate) fn parse_restrictions(value: &str) -> Result<Vec<Restriction>, ConfigErrorKind> {
    split_list(value)
        .into_iter()
        .map(|name| {
            Restriction::from_name(name).ok_or_else(|| ConfigErrorKind::UnknownRestriction {
                name: name.to_owned(),
            })
        })
        .collect()
}

/// Which list is being evaluated; it decides the wording of `reject` and `defer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestrictionClass {
    /// smtpd_client_restrictions: "Client host rejected".
    Client,
    /// smtpd_relay_restrictions and smtpd_recipient_restrictions: "Recipient address
    /// rejected".
    Recipient,
}

/// What the restrictions see of the session.
#[derive(Clone, Debug)]
pub struct RestrictionContext<'a> {
    /// The client's address, for `permit_mynetworks`.
    pub client_ip: IpAddr,
    /// The client's verified host name; `None` prints as `unknown`, as Postfix does
    /// without reverse DNS.
    pub client_name: Option<&'a str>,
    /// True after a successful AUTH with any mechanism but ANONYMOUS.
    pub authenticated: bool,
    /// The RCPT TO address without angle brackets.
    pub recipient: &'a str,
}

/// A refusal, as Postfix words it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The SMTP reply code (`$reject_code`, `$defer_code`...).
    pub code: u16,
    /// The RFC 3463 enhanced status code, as text.
    pub enhanced: &'static str,
    /// The reply text after the enhanced code.
    pub text: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.code, self.enhanced, self.text)
    }
}

/// The outcome of a restriction list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A `permit_*` matched: this list accepts (later lists still run).
    Permit,
    /// A permanent refusal (5xx).
    Reject(Refusal),
    /// A temporary refusal (4xx).
    Defer(Refusal),
    /// No restriction in the list matched.
    Dunno,
}

/// The reference server's configuration. Field names drop the `smtpd_` prefix; each
/// doc names the parameter.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `myhostname`.
    pub myhostname: String,
    /// `mydomain`.
    pub mydomain: String,
    /// `smtpd_banner`, expanded: the text after `220 `.
    pub banner: String,
    /// `smtpd_sasl_auth_enable` (authspec default: yes).
    pub sasl_auth_enable: bool,
    /// `smtpd_sasl_type`: whose mechanism classification the security options use.
    pub sasl_type: SaslType,
    /// `authspec_sasl_mech_list`: what the server implements and offers, in order.
    pub sasl_mech_list: Vec<Mechanism>,
    /// `smtpd_sasl_mechanism_filter`.
    pub sasl_mechanism_filter: MechanismFilter,
    /// `authspec_sasl_channel_binding_types`: the binding types -PLUS accepts.
    pub sasl_channel_binding_types: Vec<CbType>,
    /// `broken_sasl_auth_clients`: also announce `AUTH=…` for old clients.
    pub broken_sasl_auth_clients: bool,
    /// `smtpd_sasl_security_options`.
    pub sasl_security_options: SecurityOptions,
    /// `smtpd_sasl_tls_security_options`, used once TLS is active.
    pub sasl_tls_security_options: SecurityOptions,
    /// `smtpd_sasl_local_domain`: the SASL realm; `None` when empty.
    pub sasl_local_domain: Option<String>,
    /// `smtpd_sasl_response_limit`: the longest SASL response line, in base64 octets.
    pub sasl_response_limit: usize,
    /// `smtpd_sasl_exceptions_networks`: clients not offered AUTH.
    pub sasl_exceptions_networks: NetworkList,
    /// `smtpd_sasl_authenticated_header`.
    pub sasl_authenticated_header: bool,
    /// `smtpd_tls_security_level`.
    pub tls_security_level: TlsLevel,
    /// `smtpd_tls_auth_only`.
    pub tls_auth_only: bool,
    /// `smtpd_tls_wrappermode`: TLS from the first byte (port 465).
    pub tls_wrappermode: bool,
    /// `smtpd_tls_cert_file`; `None` when empty (the driver may then make a
    /// self-signed certificate).
    pub tls_cert_file: Option<String>,
    /// `smtpd_tls_key_file`; `None` when empty.
    pub tls_key_file: Option<String>,
    /// `smtpd_client_restrictions`.
    pub client_restrictions: Vec<Restriction>,
    /// `smtpd_relay_restrictions`.
    pub relay_restrictions: Vec<Restriction>,
    /// `smtpd_recipient_restrictions`.
    pub recipient_restrictions: Vec<Restriction>,
    /// `smtpd_delay_reject`: evaluate client restrictions at RCPT TO.
    pub delay_reject: bool,
    /// `mydestination`, lower-cased.
    pub mydestination: Vec<String>,
    /// `relay_domains`, lower-cased; subdomains match too.
    pub relay_domains: Vec<String>,
    /// `mynetworks`.
    pub mynetworks: NetworkList,
    /// `smtpd_hard_error_limit`: disconnect after this many errors.
    pub hard_error_limit: u32,
    /// `smtpd_soft_error_limit`: beyond this many errors, sleep before each reply.
    pub soft_error_limit: u32,
    /// `smtpd_error_sleep_time`.
    pub error_sleep_time: Duration,
    /// `smtpd_timeout`.
    pub timeout: Duration,
    /// `smtpd_client_connection_count_limit`; 0 means no limit.
    pub client_connection_count_limit: u32,
    /// `smtpd_client_event_limit_exceptions`: clients the connection limit does not
    /// apply to (Postfix's default: `$mynetworks`).
    pub client_event_limit_exceptions: NetworkList,
    /// `smtpd_recipient_limit`: the most recipients one message may have (452 4.5.3
    /// beyond it).
    pub recipient_limit: u32,
    /// `smtpd_recipient_overshoot_limit`: recipients past the limit that are refused
    /// without counting as errors; each one after these counts towards
    /// `smtpd_hard_error_limit`.
    pub recipient_overshoot_limit: u32,
    /// `message_size_limit`; 0 means no limit.
    pub message_size_limit: u64,
    /// `smtpd_discard_ehlo_keywords`, lower-cased.
    pub discard_ehlo_keywords: Vec<String>,
    /// `smtpd_forbid_bare_newline` (authspec default: reject).
    pub forbid_bare_newline: BareNewline,
    /// `authspec_require_auth`: answer MAIL before AUTH with RFC 4954 §6's
    /// `530 5.7.0 Authentication required`.
    pub require_auth: bool,
    /// `authspec_anonymous_is_authenticated`: an ANONYMOUS login satisfies
    /// `authspec_require_auth` and `permit_sasl_authenticated` (default: no, as in
    /// Postfix).
    pub anonymous_is_authenticated: bool,
    /// `authspec_auth_failure_delay`: the driver waits this long before a 535.
    pub auth_failure_delay: Duration,
    /// Every known parameter, expanded, as `postconf -x` would print it.
    effective: String,
}

/// The longest `smtpd_sasl_response_limit` accepted: Postfix allows any int, but the
/// reference bounds its buffers.
pub(crate) const MAX_SASL_RESPONSE_LIMIT: u64 = 16 << 20;
/// RFC 4954 §4: servers must accept responses of at least 12288 octets, so postconf(5)
/// makes the default the minimum.
pub(crate) const MIN_SASL_RESPONSE_LIMIT: u64 = 12288;

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

/// Domain list elements authspec can match: names, not `/file` or `type:table`.
fn domain_list(cf: &MainCf, name: &str) -> Result<Vec<String>, ConfigError> {
    cf.list(name)?
        .into_iter()
        .map(|d| {
            if d.starts_with('/') || d.contains(':') {
                Err(cf.error(name, ConfigErrorKind::UnsupportedPattern { item: d }))
            } else {
                Ok(d.trim_end_matches('.').to_ascii_lowercase())
            }
        })
        .collect()
}

fn u32_param(cf: &MainCf, name: &str, min: u64) -> Result<u32, ConfigError> {
    let n = cf.number(name, min, u64::from(i32::MAX.unsigned_abs()))?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

impl ServerConfig {
    /// Type-check every server parameter of `cf`. Errors name the parameter and where
    /// its value came from.
    pub fn from_main_cf(cf: &MainCf) -> Result<ServerConfig, ConfigError> {
        let sasl_type = match cf.choice("smtpd_sasl_type", SaslType::NAMES)? {
            0 => SaslType::Cyrus,
            _ => SaslType::Dovecot,
        };
        let security = |name: &str| {
            SecurityOptions::parse_for(&cf.expand(name)?, sasl_type).map_err(|k| cf.error(name, k))
        };
        let restrictions =
            |name: &str| parse_restrictions(&cf.expand(name)?).map_err(|k| cf.error(name, k));
        let networks =
            |name: &str| NetworkList::parse(&cf.expand(name)?).map_err(|k| cf.error(name, k));

        let mech_list_names = cf.list("authspec_sasl_mech_list")?;
        let sasl_mech_list = if mech_list_names.is_empty() {
            Mechanism::DEFAULT_SERVER.to_vec()
        } else {
            let mut list = Vec::new();
            for name in mech_list_names {
                let m = Mechanism::from_name(name.as_bytes()).ok_or_else(|| {
                    cf.error(
                        "authspec_sasl_mech_list",
                        ConfigErrorKind::BadValue {
                            value: name.clone(),
                            allowed: &MECHANISM_NAMES,
                        },
                    )
                })?;
                if !list.contains(&m) {
                    list.push(m);
                }
            }
            list
        };

        let sasl_channel_binding_types =
            cf.channel_binding_types("authspec_sasl_channel_binding_types")?;

        let tls_security_level = match cf.choice("smtpd_tls_security_level", TLS_LEVELS)? {
            0 | 1 => TlsLevel::None,
            2 => TlsLevel::May,
            _ => TlsLevel::Encrypt,
        };
        let forbid_bare_newline = match cf.choice("smtpd_forbid_bare_newline", BARE_NEWLINE)? {
            0 => BareNewline::Allow,
            1 | 2 => BareNewline::Normalize,
            _ => BareNewline::Reject,
        };
        let response_limit = cf.number(
            "smtpd_sasl_response_limit",
            MIN_SASL_RESPONSE_LIMIT,
            MAX_SASL_RESPONSE_LIMIT,
        )?;

        let config = ServerConfig {
            myhostname: cf.expand("myhostname")?,
            mydomain: cf.expand("mydomain")?,
            banner: cf.expand("smtpd_banner")?,
            sasl_auth_enable: cf.boolean("smtpd_sasl_auth_enable")?,
            sasl_type,
            sasl_mech_list,
            sasl_mechanism_filter: MechanismFilter::parse(
                &cf.expand("smtpd_sasl_mechanism_filter")?,
            )
            .map_err(|k| cf.error("smtpd_sasl_mechanism_filter", k))?,
            sasl_channel_binding_types,
            broken_sasl_auth_clients: cf.boolean("broken_sasl_auth_clients")?,
            sasl_security_options: security("smtpd_sasl_security_options")?,
            sasl_tls_security_options: security("smtpd_sasl_tls_security_options")?,
            sasl_local_domain: non_empty(cf.expand("smtpd_sasl_local_domain")?),
            sasl_response_limit: usize::try_from(response_limit).unwrap_or(usize::MAX),
            sasl_exceptions_networks: networks("smtpd_sasl_exceptions_networks")?,
            sasl_authenticated_header: cf.boolean("smtpd_sasl_authenticated_header")?,
            tls_security_level,
            tls_auth_only: cf.boolean("smtpd_tls_auth_only")?,
            tls_wrappermode: cf.boolean("smtpd_tls_wrappermode")?,
            tls_cert_file: non_empty(cf.expand("smtpd_tls_cert_file")?),
            tls_key_file: non_empty(cf.expand("smtpd_tls_key_file")?),
            client_restrictions: restrictions("smtpd_client_restrictions")?,
            relay_restrictions: restrictions("smtpd_relay_restrictions")?,
            recipient_restrictions: restrictions("smtpd_recipient_restrictions")?,
            delay_reject: cf.boolean("smtpd_delay_reject")?,
            mydestination: domain_list(cf, "mydestination")?,
            relay_domains: domain_list(cf, "relay_domains")?,
            mynetworks: networks("mynetworks")?,
            hard_error_limit: u32_param(cf, "smtpd_hard_error_limit", 1)?,
            soft_error_limit: u32_param(cf, "smtpd_soft_error_limit", 1)?,
            error_sleep_time: cf.time("smtpd_error_sleep_time")?,
            timeout: cf.time("smtpd_timeout")?,
            client_connection_count_limit: u32_param(cf, "smtpd_client_connection_count_limit", 0)?,
            client_event_limit_exceptions: networks("smtpd_client_event_limit_exceptions")?,
            recipient_limit: u32_param(cf, "smtpd_recipient_limit", 1)?,
            recipient_overshoot_limit: u32_param(cf, "smtpd_recipient_overshoot_limit", 0)?,
            message_size_limit: cf.number("message_size_limit", 0, u64::MAX)?,
            discard_ehlo_keywords: cf
                .list("smtpd_discard_ehlo_keywords")?
                .into_iter()
                .map(|k| k.to_ascii_lowercase())
                .collect(),
            forbid_bare_newline,
            require_auth: cf.boolean("authspec_require_auth")?,
            anonymous_is_authenticated: cf.boolean("authspec_anonymous_is_authenticated")?,
            auth_failure_delay: cf.time("authspec_auth_failure_delay")?,
            effective: cf.print(true),
        };

        if !config
            .relay_restrictions
            .iter()
            .chain(&config.recipient_restrictions)
            .any(|r| r.refuses())
        {
            let name = if config.relay_restrictions.is_empty() {
                "smtpd_recipient_restrictions"
            } else {
                "smtpd_relay_restrictions"
            };
            return Err(cf.error(name, ConfigErrorKind::NoRelayRestriction));
        }
        config.check_mechanisms(cf)?;
        Ok(config)
    }

    /// Refuse a configuration under which AUTH could never be offered although it is
    /// enabled (Postfix finds out per session and dies: "no SASL authentication
    /// mechanisms").
    fn check_mechanisms(&self, cf: &MainCf) -> Result<(), ConfigError> {
        if !self.sasl_auth_enable {
            return Ok(());
        }
        let tls_possible = self.tls_wrappermode || self.tls_security_level != TlsLevel::None;
        let plain_possible = !self.tls_wrappermode && !self.auth_requires_tls();
        let mut reachable = false;
        if plain_possible {
            reachable = true;
            if self.mechanisms_for(false).is_empty() {
                return Err(cf.error(
                    "smtpd_sasl_security_options",
                    ConfigErrorKind::NoMechanismsLeft,
                ));
            }
        }
        if tls_possible {
            reachable = true;
            if self.mechanisms_for(true).is_empty() {
                return Err(cf.error(
                    "smtpd_sasl_tls_security_options",
                    ConfigErrorKind::NoMechanismsLeft,
                ));
            }
        }
        if !reachable {
            return Err(cf.error("smtpd_tls_auth_only", ConfigErrorKind::NoMechanismsLeft));
        }
        Ok(())
    }

    /// True when AUTH is only offered and accepted under TLS: `smtpd_tls_auth_only`,
    /// or `smtpd_tls_security_level = encrypt` (postconf(5) note 2: encrypt "implies
    /// smtpd_tls_auth_only = yes").
    pub fn auth_requires_tls(&self) -> bool {
        self.tls_auth_only || self.tls_security_level == TlsLevel::Encrypt
    }

    /// The security options in force: the `_tls_` ones once TLS is active.
    pub(crate) fn security_options(&self, tls_active: bool) -> SecurityOptions {
        if tls_active {
            self.sasl_tls_security_options
        } else {
            self.sasl_security_options
        }
    }

    /// The mechanism list after the filter and the security options, in the order of
    /// `authspec_sasl_mech_list`.
    pub(crate) fn mechanisms_for(&self, tls_active: bool) -> Vec<Mechanism> {
        let filtered = self.sasl_mechanism_filter.filter(&self.sasl_mech_list);
        self.security_options(tls_active)
            .filter_for(&filtered, self.sasl_type)
    }

    /// The mechanisms to announce in the EHLO reply, or `None` when AUTH must not be
    /// announced: AUTH disabled; TLS required for AUTH and not active; the client in
    /// `smtpd_sasl_exceptions_networks`; or nothing left after filtering. A mechanism
    /// not listed here must also be refused when a client asks for it (Postfix answers
    /// `535 5.7.8 … no mechanism available`, or `503 5.5.1 Error: authentication not
    /// enabled` when AUTH is off for the session).
    pub fn auth_mechanisms_offered(
        &self,
        tls_active: bool,
        client_ip: IpAddr,
    ) -> Option<Vec<Mechanism>> {
        if !self.sasl_auth_enable {
            return None;
        }
        if self.auth_requires_tls() && !tls_active {
            return None;
        }
        if self.sasl_exceptions_networks.contains(client_ip) {
            return None;
        }
        let list = self.mechanisms_for(tls_active);
        if list.is_empty() { None } else { Some(list) }
    }

    /// Whether `keyword` (an EHLO keyword such as `AUTH` or `PIPELINING`) is listed in
    /// `smtpd_discard_ehlo_keywords` (case-insensitive).
    pub fn discards_ehlo_keyword(&self, keyword: &str) -> bool {
        self.discard_ehlo_keywords
            .iter()
            .any(|k| k.eq_ignore_ascii_case(keyword))
    }

    /// Whether the recipient's domain is one this server accepts mail for without
    /// relaying: `$mydestination` (exact) or `$relay_domains` (and subdomains), with no
    /// sender-specified routing (`user@elsewhere@domain`). An address without a
    /// domain is local, as Postfix appends `$myorigin`.
    pub(crate) fn is_auth_destination(&self, recipient: &str) -> bool {
        let Some((local, domain)) = recipient.rsplit_once('@') else {
            return true;
        };
        if local.contains('@') {
            return false;
        }
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.mydestination.contains(&domain)
            || self.relay_domains.iter().any(|d| {
                domain == *d
                    || domain
                        .strip_suffix(d.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            })
    }

    /// Evaluate one restriction list: the first restriction that decides wins.
    pub fn evaluate(
        &self,
        list: &[Restriction],
        class: RestrictionClass,
        ctx: &RestrictionContext<'_>,
    ) -> Decision {
        let (reply_name, class_text) = match class {
            RestrictionClass::Client => (
                format!(
                    "{}[{}]",
                    ctx.client_name.unwrap_or("unknown"),
                    ctx.client_ip
                ),
                "Client host",
            ),
            RestrictionClass::Recipient => (ctx.recipient.to_owned(), "Recipient address"),
        };
        let relay_denied = |code, enhanced| Refusal {
            code,
            enhanced,
            text: format!("<{}>: Relay access denied", ctx.recipient),
        };
        for restriction in list {
            match restriction {
                Restriction::Permit => return Decision::Permit,
                Restriction::Reject => {
                    return Decision::Reject(Refusal {
                        code: 554,
                        enhanced: "5.7.1",
                        text: format!("<{reply_name}>: {class_text} rejected: Access denied"),
                    });
                }
                Restriction::Defer => {
                    return Decision::Defer(Refusal {
                        code: 450,
                        enhanced: "4.3.2",
                        text: format!("<{reply_name}>: {class_text} rejected: Try again later"),
                    });
                }
                Restriction::PermitMynetworks => {
                    if self.mynetworks.contains(ctx.client_ip) {
                        return Decision::Permit;
                    }
                }
                Restriction::PermitSaslAuthenticated => {
                    if ctx.authenticated {
                        return Decision::Permit;
                    }
                }
                Restriction::PermitAuthDestination => {
                    if self.is_auth_destination(ctx.recipient) {
                        return Decision::Permit;
                    }
                }
                Restriction::RejectUnauthDestination => {
                    if !self.is_auth_destination(ctx.recipient) {
                        return Decision::Reject(relay_denied(554, "5.7.1"));
                    }
                }
                Restriction::DeferUnauthDestination => {
                    if !self.is_auth_destination(ctx.recipient) {
                        return Decision::Defer(relay_denied(454, "4.7.1"));
                    }
                }
            }
        }
        Decision::Dunno
    }

    /// The client restrictions on their own (at connect time when
    /// `smtpd_delay_reject = no`).
    pub fn check_client(&self, ctx: &RestrictionContext<'_>) -> Decision {
        self.evaluate(&self.client_restrictions, RestrictionClass::Client, ctx)
    }

    /// Everything Postfix checks at RCPT TO: the client restrictions (when
    /// `smtpd_delay_reject = yes`), then the relay restrictions, then the recipient
    /// restrictions. A `permit` ends only its own list; the first refusal wins;
    /// `Permit` means the recipient is accepted.
    pub fn check_rcpt(&self, ctx: &RestrictionContext<'_>) -> Decision {
        let mut lists: Vec<(&[Restriction], RestrictionClass)> = Vec::new();
        if self.delay_reject {
            lists.push((&self.client_restrictions, RestrictionClass::Client));
        }
        lists.push((&self.relay_restrictions, RestrictionClass::Recipient));
        lists.push((&self.recipient_restrictions, RestrictionClass::Recipient));
        for (list, class) in lists {
            match self.evaluate(list, class, ctx) {
                d @ (Decision::Reject(_) | Decision::Defer(_)) => return d,
                Decision::Permit | Decision::Dunno => {}
            }
        }
        Decision::Permit
    }

    /// `postconf -x`-style `name = value` lines for every known parameter, sorted,
    /// for `authspec serve --print-config`.
    pub fn print_config(&self) -> &str {
        &self.effective
    }
}

/// Every mechanism name authspec implements, for error messages.
pub(crate) const MECHANISM_NAMES: [&str; Mechanism::ALL.len()] = {
    let mut names = [""; Mechanism::ALL.len()];
    let mut i = 0;
    while i < Mechanism::ALL.len() {
        names[i] = Mechanism::ALL[i].name();
        i += 1;
    }
    names
};
