//! Configuration in Postfix's vocabulary: main.cf parsing, error locations, security
//! option tables, networks, password maps, mechanism choice and relay restrictions.

use std::net::IpAddr;
use std::time::Duration;

use authspec_reference::policy::client::{ClientTlsLevel, NextHop, NoMechanismReason};
use authspec_reference::policy::maincf::{MAX_EXPANDED_LEN, Origin};
use authspec_reference::policy::security::dovecot_properties;
use authspec_reference::policy::server::{BareNewline, Refusal, TlsLevel};
use authspec_reference::policy::{
    ClientConfig, ConfigError, ConfigErrorKind, Decision, MainCf, MechanismFilter, NetworkList,
    PasswordMap, RestrictionContext, SaslType, SecurityOptions, ServerConfig,
};
use authspec_reference::sasl::Mechanism::{self, *};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cf(text: &str) -> MainCf {
    MainCf::parse(text, "main.cf").unwrap()
}

fn server(text: &str) -> ServerConfig {
    ServerConfig::from_main_cf(&cf(text)).unwrap()
}

fn server_err(text: &str) -> ConfigError {
    ServerConfig::from_main_cf(&cf(text)).unwrap_err()
}

fn client(text: &str) -> ClientConfig {
    ClientConfig::from_main_cf(&cf(text)).unwrap()
}

// ---------------------------------------------------------------- main.cf syntax

#[test]
fn continuation_comments_and_inner_spacing() {
    let main = cf("# a comment\n\
         myhostname = mail.example.com   \n\
         \n\
         smtpd_banner = $myhostname  ESMTP\n\
         \t$mail_name\n\
         \x20  # an indented comment does not end the logical line\n\
         \x20 ready\n\
         mydestination = $myhostname,\n\
         \x20   localhost.$mydomain\r\n");
    assert_eq!(
        main.get("smtpd_banner").unwrap(),
        "mail.example.com  ESMTP\tauthspec  ready"
    );
    assert_eq!(
        main.get("mydestination").unwrap(),
        "mail.example.com,    localhost.example.com"
    );
    assert_eq!(main.origin("smtpd_banner"), Some(Origin::File { line: 4 }));
    assert_eq!(main.origin("mail_name"), Some(Origin::Default));
}

#[test]
fn last_setting_wins() {
    let main = cf("myhostname = a.test\nmyhostname = b.test\n");
    assert_eq!(main.get("myhostname").unwrap(), "b.test");
    assert_eq!(main.origin("myhostname"), Some(Origin::File { line: 2 }));
}

#[test]
fn expansion_forms() {
    let main = cf("myhostname = mx.example.org\n\
         smtpd_sasl_local_domain = ${myhostname}\n\
         smtp_helo_name = $(myhostname)\n\
         smtpd_banner = ${smtpd_tls_cert_file?has cert}|${smtpd_tls_cert_file:no cert}|\
         ${myhostname?{ set }:{unset}}|${smtpd_tls_cert_file?{set}:{ unset }}|$$5|${relayhost:{x}}\n");
    assert_eq!(
        main.get("smtpd_sasl_local_domain").unwrap(),
        "mx.example.org"
    );
    assert_eq!(main.get("smtp_helo_name").unwrap(), "mx.example.org");
    assert_eq!(
        main.get("smtpd_banner").unwrap(),
        "|no cert| set | unset |$5|x"
    );
    // mydomain's default is computed from myhostname, as in Postfix.
    assert_eq!(main.get("mydomain").unwrap(), "example.org");
    assert_eq!(cf("").get("mydomain").unwrap(), "localdomain");
}

#[test]
fn overrides_apply_on_top_and_expansion_is_lazy() {
    let mut main = cf("myhostname = file.test\nsmtpd_sasl_auth_enable = no\n");
    main.set_override("myhostname=override.test").unwrap();
    main.set_override(" smtpd_sasl_auth_enable = yes ").unwrap();
    main.set_override("smtpd_sasl_local_domain=").unwrap();
    // smtpd_banner's default refers to $myhostname: it sees the override.
    assert_eq!(
        main.get("smtpd_banner").unwrap(),
        "override.test ESMTP authspec"
    );
    assert_eq!(main.get("smtpd_sasl_auth_enable").unwrap(), "yes");
    assert_eq!(main.origin("myhostname"), Some(Origin::Override));
    assert_eq!(main.get("smtpd_sasl_local_domain").unwrap(), "");
}

#[test]
fn lenient_parsing_keeps_postfix_parameters() {
    let main = MainCf::parse_lenient(
        "compatibility_level = 3.6\nsmtpd_banner = $myhostname $compatibility_level $nosuch\n",
        "main.cf",
    )
    .unwrap();
    assert_eq!(main.unknown_parameters(), ["compatibility_level"]);
    assert_eq!(main.get("smtpd_banner").unwrap(), "localhost 3.6 ");
}

#[test]
fn print_config_lists_every_parameter_sorted_and_expanded() {
    let s = server("myhostname = mx.example.net\n");
    let text = s.print_config();
    let lines: Vec<&str> = text.lines().collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
    assert!(lines.contains(&"smtpd_banner = mx.example.net ESMTP authspec"));
    assert!(lines.contains(&"smtpd_sasl_tls_security_options = noanonymous"));
    assert!(lines.contains(&"relayhost ="));
    assert!(lines.contains(&"mydomain = example.net"));
    let raw = cf("").print(false);
    assert!(raw.contains("smtpd_banner = $myhostname ESMTP $mail_name\n"));
}

// ---------------------------------------------------------------- error variants

fn parse_err(text: &str) -> ConfigError {
    MainCf::parse(text, "main.cf").unwrap_err()
}

#[test]
fn missing_equals_names_line() {
    let e = parse_err("myhostname = a\n\n# c\nsmtpd_banner hello\n");
    assert_eq!(e.kind, ConfigErrorKind::MissingEquals);
    assert_eq!(e.line, Some(4));
    assert_eq!(e.parameter.as_deref(), Some("smtpd_banner"));
    assert_eq!(e.source, "main.cf");
}

#[test]
fn bad_parameter_name() {
    let e = parse_err("\nsmtpd-banner = x\n");
    assert_eq!(
        e.kind,
        ConfigErrorKind::BadParameterName {
            name: "smtpd-banner".into()
        }
    );
    assert_eq!(e.line, Some(2));
}

#[test]
fn continuation_without_parameter() {
    let e = parse_err("# header\n  smtpd_banner = x\n");
    assert_eq!(e.kind, ConfigErrorKind::ContinuationWithoutParameter);
    assert_eq!(e.line, Some(2));
}

#[test]
fn unknown_parameter() {
    let e = parse_err("myhostname = a\nsmtpd_sasl_auth_enabled = yes\n");
    assert_eq!(
        e.kind,
        ConfigErrorKind::UnknownParameter {
            name: "smtpd_sasl_auth_enabled".into()
        }
    );
    assert_eq!(e.line, Some(2));
    assert_eq!(
        e.to_string(),
        "main.cf:2: smtpd_sasl_auth_enabled: unknown parameter \
         (did you mean smtpd_sasl_auth_enable?)"
    );
}

#[test]
fn undefined_reference() {
    let main = cf("myhostname = a\nsmtpd_banner = $myhostnme ESMTP\n");
    let e = main.expand("smtpd_banner").unwrap_err();
    assert_eq!(
        e.kind,
        ConfigErrorKind::UndefinedReference {
            name: "myhostnme".into()
        }
    );
    assert_eq!(
        (e.line, e.parameter.as_deref()),
        (Some(2), Some("smtpd_banner"))
    );
    assert_eq!(main.get("smtpd_banner"), None);
}

#[test]
fn bad_boolean_with_line_and_display() {
    let e = server_err("myhostname = a\n\n\nsmtpd_sasl_auth_enable = maybe\n");
    assert_eq!(
        e.kind,
        ConfigErrorKind::BadBoolean {
            value: "maybe".into()
        }
    );
    assert_eq!(e.line, Some(4));
    assert_eq!(
        e.to_string(),
        "main.cf:4: smtpd_sasl_auth_enable: bad boolean value \"maybe\" (use yes or no)"
    );
    // Postfix compares booleans case-insensitively.
    assert!(!server("smtpd_sasl_auth_enable = NO\n").sasl_auth_enable);
}

#[test]
fn bad_number_and_range() {
    let e = server_err("smtpd_hard_error_limit = lots\n");
    assert_eq!(
        e.kind,
        ConfigErrorKind::BadNumber {
            value: "lots".into()
        }
    );
    assert_eq!(e.line, Some(1));
    let e = server_err("smtpd_sasl_response_limit = 100\n");
    assert_eq!(
        e.kind,
        ConfigErrorKind::NumberOutOfRange {
            value: 100,
            min: 12288,
            max: 16 << 20
        }
    );
    let e = server_err("smtpd_hard_error_limit = 0\n");
    assert!(matches!(
        e.kind,
        ConfigErrorKind::NumberOutOfRange {
            value: 0,
            min: 1,
            ..
        }
    ));
}

#[test]
fn bad_time() {
    let e = server_err("smtpd_timeout = 5x\n");
    assert_eq!(e.kind, ConfigErrorKind::BadTime { value: "5x".into() });
    let s = server("smtpd_timeout = 5m\nsmtpd_error_sleep_time = 0\n");
    assert_eq!(s.timeout, Duration::from_secs(300));
    assert_eq!(s.error_sleep_time, Duration::ZERO);
}

#[test]
fn bad_value() {
    let e = server_err("\nsmtpd_tls_security_level = dane\n");
    assert!(matches!(&e.kind, ConfigErrorKind::BadValue { value, .. } if value == "dane"));
    assert_eq!(e.line, Some(2));
}

#[test]
fn expansion_loop() {
    let main = cf("myhostname = $mydomain\nmydomain = x.$myhostname\n");
    let e = main.expand("smtpd_banner").unwrap_err();
    assert_eq!(
        e.kind,
        ConfigErrorKind::ExpansionLoop {
            chain: vec![
                "smtpd_banner".into(),
                "myhostname".into(),
                "mydomain".into(),
                "myhostname".into()
            ]
        }
    );
    // A self-reference through the computed mydomain default is caught too.
    let main = cf("myhostname = $mydomain\n");
    assert!(matches!(
        main.expand("myhostname").unwrap_err().kind,
        ConfigErrorKind::ExpansionLoop { .. }
    ));
    assert!(main.raw("mydomain").is_some());
}

#[test]
fn expansion_too_long() {
    let big = "x".repeat(1024);
    let refs = "$mail_name".repeat(MAX_EXPANDED_LEN / 1024 + 1);
    let main = cf(&format!("mail_name = {big}\nmyhostname = {refs}\n"));
    assert_eq!(
        main.expand("myhostname").unwrap_err().kind,
        ConfigErrorKind::ExpansionTooLong
    );
}

#[test]
fn bad_expansion() {
    for value in [
        "cost $",
        "a $-b",
        "${myhostname",
        "${}",
        "${myhostname!x}",
        "${{a} == {b}?{c}}",
    ] {
        let main = cf(&format!("smtpd_banner = {value}\n"));
        let e = main.expand("smtpd_banner").unwrap_err();
        assert!(
            matches!(e.kind, ConfigErrorKind::BadExpansion { .. }),
            "{value}: {e}"
        );
        assert_eq!(e.line, Some(1));
    }
}

#[test]
fn override_errors_name_the_override() {
    let mut main = cf("");
    let e = main
        .set_override("smtpd_sasl_auth_enabled=yes")
        .unwrap_err();
    assert_eq!(e.source, "-o");
    assert_eq!(e.line, None);
    assert!(matches!(e.kind, ConfigErrorKind::UnknownParameter { .. }));
    assert_eq!(
        main.set_override("smtpd_sasl_auth_enable")
            .unwrap_err()
            .kind,
        ConfigErrorKind::MissingEquals
    );
    main.set_override("smtpd_sasl_auth_enable=perhaps").unwrap();
    let e = ServerConfig::from_main_cf(&main).unwrap_err();
    assert_eq!((e.source.as_str(), e.line), ("-o", None));
    assert_eq!(
        e.to_string(),
        "-o: smtpd_sasl_auth_enable: bad boolean value \"perhaps\" (use yes or no)"
    );
}

#[test]
fn unknown_security_option_names_the_word() {
    let e = server_err("smtpd_sasl_security_options = noplaintext, nosuchthing\n");
    assert_eq!(
        e.kind,
        ConfigErrorKind::UnknownSecurityOption {
            word: "nosuchthing".into()
        }
    );
    assert_eq!(e.parameter.as_deref(), Some("smtpd_sasl_security_options"));
    // The TLS options default to $smtpd_sasl_security_options; they are fine here.
    let e = server_err("smtpd_sasl_tls_security_options = noplaintext, bogus\n");
    assert_eq!(
        e.parameter.as_deref(),
        Some("smtpd_sasl_tls_security_options")
    );
}

#[test]
fn bad_filter_pattern() {
    for pattern in [
        "/etc/postfix/smtpd_mechs",
        "hash:/etc/x",
        "!/etc/x",
        "static:",
        "a b/c",
    ] {
        let e = server_err(&format!("smtpd_sasl_mechanism_filter = {pattern}\n"));
        assert!(
            matches!(e.kind, ConfigErrorKind::BadFilterPattern { .. }),
            "{pattern}: {e}"
        );
    }
}

#[test]
fn bad_networks() {
    let e = server_err("mynetworks = 127.0.0.0/8 ::1/128\n");
    assert!(matches!(&e.kind, ConfigErrorKind::BadNetwork { item, .. } if item == "::1/128"));
    let e = server_err("mynetworks = 10.0.0.0/33\n");
    assert!(matches!(e.kind, ConfigErrorKind::BadNetwork { .. }));
    let e = server_err("mynetworks = mail.example.com\n");
    assert!(matches!(e.kind, ConfigErrorKind::BadNetwork { .. }));
    let e = server_err("mynetworks = 10.0.0.1/8\n");
    assert_eq!(
        e.kind,
        ConfigErrorKind::NonNullHostBits {
            item: "10.0.0.1/8".into()
        }
    );
    let e = server_err("smtpd_sasl_exceptions_networks = [2001:db8::1]/32\n");
    assert!(matches!(e.kind, ConfigErrorKind::NonNullHostBits { .. }));
    let e = server_err("mynetworks = hash:/etc/postfix/network_table\n");
    assert!(matches!(e.kind, ConfigErrorKind::UnsupportedPattern { .. }));
}

#[test]
fn unknown_restriction() {
    let e = server_err("smtpd_relay_restrictions = permit_sasl_authenticated, reject_everyone\n");
    assert_eq!(
        e.kind,
        ConfigErrorKind::UnknownRestriction {
            name: "reject_everyone".into()
        }
    );
    assert_eq!(e.line, Some(1));
}

#[test]
fn no_relay_restriction() {
    let e = server_err("smtpd_relay_restrictions = permit_sasl_authenticated, permit\n");
    assert_eq!(e.kind, ConfigErrorKind::NoRelayRestriction);
    // The pre-2.10 style with everything in smtpd_recipient_restrictions is fine.
    server(
        "smtpd_relay_restrictions =\n\
         smtpd_recipient_restrictions = permit_sasl_authenticated, reject_unauth_destination\n",
    );
    let e = server_err("smtpd_relay_restrictions =\n");
    assert_eq!(e.parameter.as_deref(), Some("smtpd_recipient_restrictions"));
}

#[test]
fn no_mechanisms_left() {
    let e = server_err("smtpd_sasl_security_options = forward_secrecy\n");
    assert_eq!(e.kind, ConfigErrorKind::NoMechanismsLeft);
    assert_eq!(e.parameter.as_deref(), Some("smtpd_sasl_security_options"));
    let e = server_err("smtpd_tls_auth_only = yes\n");
    assert_eq!(e.kind, ConfigErrorKind::NoMechanismsLeft);
    assert_eq!(e.parameter.as_deref(), Some("smtpd_tls_auth_only"));
    // Disabled AUTH needs no mechanisms.
    server("smtpd_sasl_auth_enable = no\nsmtpd_sasl_security_options = forward_secrecy\n");
    let e = server_err("authspec_sasl_mech_list = PLAIN, NTLM\n");
    assert!(matches!(&e.kind, ConfigErrorKind::BadValue { value, .. } if value == "NTLM"));
}

#[test]
fn client_errors() {
    let e =
        ClientConfig::from_main_cf(&cf("smtp_sasl_password_maps = ldap:/etc/postfix/ldap.cf\n"))
            .unwrap_err();
    assert!(matches!(
        e.kind,
        ConfigErrorKind::UnsupportedTableType { .. }
    ));
    let e = ClientConfig::from_main_cf(&cf("relayhost = [mail.example.com\n")).unwrap_err();
    assert!(matches!(e.kind, ConfigErrorKind::BadRelayhost { .. }));
    let e = ClientConfig::from_main_cf(&cf("relayhost = mail.example.com:99999\n")).unwrap_err();
    assert!(matches!(e.kind, ConfigErrorKind::BadRelayhost { .. }));
    let e = ClientConfig::from_main_cf(&cf("smtp_tls_security_level = dane\n")).unwrap_err();
    assert!(matches!(e.kind, ConfigErrorKind::BadValue { .. }));
}

// ---------------------------------------------------------------- defaults

#[test]
fn server_defaults() {
    let s = server("");
    assert_eq!(s.myhostname, "localhost");
    assert_eq!(s.mydomain, "localdomain");
    assert_eq!(s.banner, "localhost ESMTP authspec");
    assert!(s.sasl_auth_enable);
    assert_eq!(s.sasl_type, SaslType::Cyrus);
    assert_eq!(s.sasl_mech_list, Mechanism::DEFAULT_SERVER);
    assert!(!s.broken_sasl_auth_clients);
    assert_eq!(s.sasl_security_options.to_string(), "noanonymous");
    assert_eq!(s.sasl_tls_security_options.to_string(), "noanonymous");
    assert_eq!(s.sasl_local_domain, None);
    assert_eq!(s.sasl_response_limit, 12288);
    assert_eq!(s.tls_security_level, TlsLevel::None);
    assert!(!s.tls_auth_only && !s.tls_wrappermode);
    assert_eq!(
        s.mydestination,
        ["localhost", "localhost.localdomain", "localhost"]
    );
    assert_eq!(s.hard_error_limit, 20);
    assert_eq!(s.soft_error_limit, 10);
    assert_eq!(s.error_sleep_time, Duration::from_secs(1));
    assert_eq!(s.timeout, Duration::from_secs(300));
    assert_eq!(s.client_connection_count_limit, 50);
    assert_eq!(s.message_size_limit, 10_240_000);
    assert_eq!(s.forbid_bare_newline, BareNewline::Reject);
    assert!(!s.require_auth);
    assert_eq!(s.auth_failure_delay, Duration::ZERO);
    // Postfix's default filter hides EXTERNAL and noanonymous hides ANONYMOUS.
    assert_eq!(
        s.auth_mechanisms_offered(false, ip("203.0.113.5")).unwrap(),
        [
            ScramSha256Plus,
            ScramSha1Plus,
            ScramSha256,
            ScramSha1,
            DigestMd5,
            CramMd5,
            OAuthBearer,
            XOAuth2,
            Plain,
            Login
        ]
    );
}

#[test]
fn forbid_bare_newline_values() {
    for (value, want) in [
        ("no", BareNewline::Allow),
        ("normalize", BareNewline::Normalize),
        ("YES", BareNewline::Normalize),
        ("reject", BareNewline::Reject),
    ] {
        let s = server(&format!("smtpd_forbid_bare_newline = {value}\n"));
        assert_eq!(s.forbid_bare_newline, want, "{value}");
    }
}

#[test]
fn client_defaults_and_values() {
    let c = client("");
    assert!(!c.sasl_auth_enable);
    assert!(c.sasl_password_maps.is_empty());
    assert_eq!(
        c.sasl_security_options.to_string(),
        "noplaintext, noanonymous"
    );
    assert_eq!(c.sasl_tls_security_options, c.sasl_security_options);
    assert!(c.sasl_mechanism_filter.is_empty());
    assert_eq!(c.tls_security_level, ClientTlsLevel::None);
    assert_eq!(c.helo_name, "localhost");
    assert!(c.relayhost.is_empty());

    let c = client(
        "myhostname = client.example\n\
         smtp_sasl_password_maps = texthash:/etc/postfix/sasl_passwd, hash:/etc/b /etc/c\n\
         smtp_tls_security_level = verify\n\
         smtp_tls_CAfile = /etc/ssl/ca.pem\n\
         relayhost = [smtp.example.com]:587, mx.example.net\n",
    );
    assert_eq!(
        c.sasl_password_maps,
        ["/etc/postfix/sasl_passwd", "/etc/b", "/etc/c"]
    );
    assert_eq!(c.tls_security_level, ClientTlsLevel::Verify);
    assert_eq!(c.tls_ca_file.as_deref(), Some("/etc/ssl/ca.pem"));
    assert_eq!(c.helo_name, "client.example");
    assert_eq!(
        c.relayhost,
        [
            NextHop {
                host: "smtp.example.com".into(),
                port: Some(587),
                mx_lookup: false
            },
            NextHop {
                host: "mx.example.net".into(),
                port: None,
                mx_lookup: true
            }
        ]
    );
    assert_eq!(c.relayhost[0].to_string(), "[smtp.example.com]:587");
}

// ---------------------------------------------------------------- security options

/// The mechanisms of the policy README's table. SCRAM-SHA-512 and the -PLUS variants
/// share SCRAM's flags (checked in `scram_family_shares_scram_flags`).
const TABLE: [Mechanism; 10] = [
    ScramSha256,
    ScramSha1,
    DigestMd5,
    CramMd5,
    OAuthBearer,
    XOAuth2,
    Plain,
    Login,
    Anonymous,
    External,
];

fn left(options: &str) -> Vec<Mechanism> {
    SecurityOptions::parse(options).unwrap().filter(&TABLE)
}

fn left_dovecot(options: &str) -> Vec<Mechanism> {
    SecurityOptions::parse_for(options, SaslType::Dovecot)
        .unwrap()
        .filter_for(&TABLE, SaslType::Dovecot)
}

#[test]
fn scram_family_shares_scram_flags() {
    for m in [ScramSha1Plus, ScramSha256Plus, ScramSha512, ScramSha512Plus] {
        assert_eq!(m.properties(), ScramSha256.properties(), "{m}");
        for t in [SaslType::Cyrus, SaslType::Dovecot] {
            assert_eq!(t.properties(m), t.properties(ScramSha256), "{m}");
        }
    }
}

/// The table promised in policy/README.md (Cyrus classification).
#[test]
fn security_option_table_cyrus() {
    assert_eq!(left(""), TABLE);
    assert_eq!(
        left("noanonymous"),
        [
            ScramSha256,
            ScramSha1,
            DigestMd5,
            CramMd5,
            OAuthBearer,
            XOAuth2,
            Plain,
            Login,
            External
        ]
    );
    assert_eq!(
        left("noplaintext"),
        [
            ScramSha256,
            ScramSha1,
            DigestMd5,
            CramMd5,
            Anonymous,
            External
        ]
    );
    assert_eq!(left("nodictionary"), [OAuthBearer, XOAuth2, External]);
    assert_eq!(left("noactive"), [ScramSha256, ScramSha1, External]);
    assert_eq!(left("mutual_auth"), [ScramSha256, ScramSha1, DigestMd5]);
    assert_eq!(left("forward_secrecy"), []);
    assert_eq!(
        left("noplaintext, noanonymous"),
        [ScramSha256, ScramSha1, DigestMd5, CramMd5, External]
    );
    assert_eq!(
        left("noplaintext noanonymous noactive"),
        [ScramSha256, ScramSha1, External]
    );
    assert_eq!(
        left("noanonymous,mutual_auth"),
        [ScramSha256, ScramSha1, DigestMd5]
    );
    assert_eq!(left("noactive, mutual_auth"), [ScramSha256, ScramSha1]);
    assert_eq!(left("nodictionary, noplaintext"), [External]);
}

/// Dovecot flags its mechanisms differently; Postfix's Dovecot glue filters on them.
#[test]
fn security_option_table_dovecot() {
    assert_eq!(
        left_dovecot("noplaintext"),
        [
            ScramSha256,
            ScramSha1,
            DigestMd5,
            CramMd5,
            Anonymous,
            External
        ]
    );
    assert_eq!(
        left_dovecot("nodictionary"),
        [
            ScramSha256,
            ScramSha1,
            OAuthBearer,
            XOAuth2,
            Plain,
            Login,
            Anonymous,
            External
        ]
    );
    assert_eq!(
        left_dovecot("noactive"),
        [
            ScramSha256,
            ScramSha1,
            OAuthBearer,
            XOAuth2,
            Plain,
            Login,
            Anonymous,
            External
        ]
    );
    assert_eq!(
        left_dovecot("mutual_auth"),
        [ScramSha256, ScramSha1, DigestMd5]
    );
    assert_eq!(
        left_dovecot("noplaintext, noanonymous, nodictionary"),
        [ScramSha256, ScramSha1, External]
    );
    assert!(dovecot_properties(Plain).plaintext && !dovecot_properties(Plain).dictionary);
}

#[test]
fn permits_checks_weaknesses_and_strengths() {
    let o = SecurityOptions::parse("noplaintext mutual_auth").unwrap();
    assert!(o.permits(DigestMd5.properties()));
    assert!(!o.permits(CramMd5.properties()));
    assert!(!o.permits(Plain.properties()));
    assert_eq!(
        o.violations(Plain.properties()),
        ["noplaintext", "mutual_auth"]
    );
    assert!(SecurityOptions::default().permits(Anonymous.properties()));
}

#[test]
fn server_uses_tls_options_under_tls() {
    let s = server(
        "smtpd_tls_security_level = may\n\
         smtpd_sasl_security_options = noanonymous, noplaintext\n\
         smtpd_sasl_tls_security_options = noanonymous\n",
    );
    let client = ip("198.51.100.1");
    // The session drops -PLUS without TLS; the policy list still holds it.
    assert_eq!(
        s.auth_mechanisms_offered(false, client).unwrap(),
        [
            ScramSha256Plus,
            ScramSha1Plus,
            ScramSha256,
            ScramSha1,
            DigestMd5,
            CramMd5
        ]
    );
    assert_eq!(
        s.auth_mechanisms_offered(true, client).unwrap(),
        [
            ScramSha256Plus,
            ScramSha1Plus,
            ScramSha256,
            ScramSha1,
            DigestMd5,
            CramMd5,
            OAuthBearer,
            XOAuth2,
            Plain,
            Login
        ]
    );
}

/// The EHLO lines recorded from the real Postfix peers on this machine
/// (shared/peers/README.md), reproduced with the same vocabulary.
#[test]
fn reproduces_peer_banners() {
    // :2525, Cyrus mech_list PLAIN LOGIN CRAM-MD5 DIGEST-MD5, default options.
    let s = server("authspec_sasl_mech_list = PLAIN LOGIN CRAM-MD5 DIGEST-MD5\n");
    assert_eq!(
        s.auth_mechanisms_offered(false, ip("127.0.0.1")).unwrap(),
        [Plain, Login, CramMd5, DigestMd5]
    );
    // :2526, noplaintext only: ANONYMOUS stays, PLAIN and LOGIN go.
    let s = server(
        "authspec_sasl_mech_list = PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256 ANONYMOUS\n\
         smtpd_sasl_security_options = noplaintext\n",
    );
    assert_eq!(
        s.auth_mechanisms_offered(false, ip("127.0.0.1")).unwrap(),
        [CramMd5, DigestMd5, ScramSha1, ScramSha256, Anonymous]
    );
    // :2528, smtpd_tls_auth_only: no AUTH line before STARTTLS.
    let s = server(
        "authspec_sasl_mech_list = PLAIN LOGIN CRAM-MD5 DIGEST-MD5\n\
         smtpd_tls_security_level = may\nsmtpd_tls_auth_only = yes\n",
    );
    assert_eq!(s.auth_mechanisms_offered(false, ip("127.0.0.1")), None);
    assert_eq!(
        s.auth_mechanisms_offered(true, ip("127.0.0.1")).unwrap(),
        [Plain, Login, CramMd5, DigestMd5]
    );
}

#[test]
fn encrypt_level_implies_tls_auth_only() {
    let s = server("smtpd_tls_security_level = encrypt\n");
    assert!(s.auth_requires_tls());
    assert_eq!(s.auth_mechanisms_offered(false, ip("192.0.2.1")), None);
    assert!(s.auth_mechanisms_offered(true, ip("192.0.2.1")).is_some());
    let s = server("smtpd_sasl_auth_enable = no\n");
    assert_eq!(s.auth_mechanisms_offered(true, ip("192.0.2.1")), None);
}

// ---------------------------------------------------------------- mechanism filter

#[test]
fn mechanism_filter_semantics() {
    let f = MechanismFilter::parse("!external, static:rest").unwrap();
    assert!(f.allows("PLAIN") && f.allows("gssapi"));
    assert!(!f.allows("EXTERNAL") && !f.allows("external"));

    let f = MechanismFilter::parse("login, plain").unwrap();
    assert_eq!(f.filter(&Mechanism::ALL), [Plain, Login]);
    assert!(f.allows("Login"));

    // Postfix match lists: a list of exclusions only matches nothing.
    let f = MechanismFilter::parse("!gssapi").unwrap();
    assert_eq!(f.filter(&Mechanism::ALL), []);

    // First match wins.
    let f = MechanismFilter::parse("!plain, plain, static:rest").unwrap();
    assert!(!f.allows("PLAIN"));

    assert!(MechanismFilter::parse("").unwrap().allows("ANYTHING"));
    assert_eq!(
        MechanismFilter::parse("!External, cram-md5")
            .unwrap()
            .to_string(),
        "!EXTERNAL, CRAM-MD5"
    );
}

#[test]
fn server_filter_then_options() {
    let s = server("smtpd_sasl_mechanism_filter = plain, login, anonymous, cram-md5\n");
    assert_eq!(
        s.auth_mechanisms_offered(false, ip("192.0.2.1")).unwrap(),
        [CramMd5, Plain, Login]
    );
}

// ---------------------------------------------------------------- networks

#[test]
fn exceptions_networks_hide_auth() {
    let s = server(
        "smtpd_sasl_exceptions_networks = !192.168.1.7 192.168.0.0/16, [2001:db8::]/32 [::1]\n",
    );
    assert_eq!(s.auth_mechanisms_offered(false, ip("192.168.3.4")), None);
    assert_eq!(
        s.auth_mechanisms_offered(false, ip("::ffff:192.168.3.4")),
        None
    );
    assert!(
        s.auth_mechanisms_offered(false, ip("192.168.1.7"))
            .is_some()
    );
    assert!(
        s.auth_mechanisms_offered(false, ip("192.169.0.1"))
            .is_some()
    );
    assert_eq!(
        s.auth_mechanisms_offered(false, ip("2001:db8:ffff::9")),
        None
    );
    assert!(
        s.auth_mechanisms_offered(false, ip("2001:db9::1"))
            .is_some()
    );
    assert_eq!(s.auth_mechanisms_offered(false, ip("::1")), None);
    assert!(s.auth_mechanisms_offered(false, ip("::2")).is_some());
}

#[test]
fn network_list_display_and_contains() {
    let l = NetworkList::parse("127.0.0.0/8, [::1]/128 !10.1.0.0/16 10.0.0.0/8").unwrap();
    assert_eq!(
        l.to_string(),
        "127.0.0.0/8 [::1]/128 !10.1.0.0/16 10.0.0.0/8"
    );
    assert!(l.contains(ip("127.1.2.3")));
    assert!(l.contains(ip("10.2.0.1")));
    assert!(!l.contains(ip("10.1.0.1")));
    assert!(!l.contains(ip("11.0.0.1")));
    assert!(NetworkList::parse("").unwrap().is_empty());
}

// ---------------------------------------------------------------- password maps

const PASSWD: &str = "\
# smtp_sasl_password_maps source
[mail.example.com]:587   port587:secret587
[mail.example.com]       bracketed:secretB
MAIL.example.com         plainhost:secretH
example.com              domain:secretD
[peers.test]:2525        bob:p@ss w0rd:x
nopassword.example       justuser
";

#[test]
fn password_map_lookup_order() {
    let map = PasswordMap::parse(PASSWD, "sasl_passwd").unwrap();
    assert_eq!(map.len(), 6);
    let user = |host: &str, port, domain: &str| map.lookup(host, port, domain).map(|(u, _)| u);
    assert_eq!(
        user("mail.example.com", 587, "example.com").as_deref(),
        Some("port587")
    );
    assert_eq!(
        user("mail.example.com", 25, "example.com").as_deref(),
        Some("bracketed")
    );
    assert_eq!(
        user("MAIL.EXAMPLE.COM", 465, "example.com").as_deref(),
        Some("bracketed")
    );
    assert_eq!(
        user("mx2.example.com", 25, "example.com").as_deref(),
        Some("domain")
    );
    assert_eq!(
        user("mx2.example.com", 25, "EXAMPLE.COM").as_deref(),
        Some("domain")
    );
    assert_eq!(user("mx.other.test", 25, "other.test"), None);

    let map = PasswordMap::parse("mail.example.com a:1\nexample.com b:2\n", "p").unwrap();
    assert_eq!(
        map.lookup("mail.example.com", 587, "example.com")
            .map(|(u, _)| u)
            .as_deref(),
        Some("a")
    );
}

#[test]
fn password_map_values() {
    let map = PasswordMap::parse(PASSWD, "sasl_passwd").unwrap();
    let (user, password) = map.lookup("peers.test", 2525, "peers.test").unwrap();
    assert_eq!(user, "bob");
    // Everything after the first colon, spaces and colons included.
    assert_eq!(password.expose(), b"p@ss w0rd:x");
    let (user, password) = map.lookup("nopassword.example", 25, "").unwrap();
    assert_eq!(user, "justuser");
    assert!(password.is_empty());
}

#[test]
fn password_map_debug_prints_no_password() {
    let map = PasswordMap::parse(PASSWD, "sasl_passwd").unwrap();
    let debug = format!("{map:?}");
    assert!(debug.contains("port587"));
    for secret in ["secret587", "secretB", "secretH", "secretD", "w0rd"] {
        assert!(!debug.contains(secret), "{debug}");
    }
}

#[test]
fn password_map_errors() {
    let e = PasswordMap::parse("# c\n\nexample.com\n", "sasl_passwd").unwrap_err();
    assert_eq!(
        e.kind,
        ConfigErrorKind::MissingMapValue {
            key: "example.com".into()
        }
    );
    assert_eq!((e.source.as_str(), e.line), ("sasl_passwd", Some(3)));
    let e = PasswordMap::parse("a.test u:p\nA.TEST v:q\n", "sasl_passwd").unwrap_err();
    assert_eq!(
        e.kind,
        ConfigErrorKind::DuplicateMapKey {
            key: "a.test".into()
        }
    );
    assert_eq!(e.line, Some(2));
    let e = PasswordMap::parse("  a.test u:p\n", "sasl_passwd").unwrap_err();
    assert_eq!(e.kind, ConfigErrorKind::ContinuationWithoutParameter);
}

#[test]
fn password_map_continuation_and_merge() {
    let mut map = PasswordMap::parse("a.test\n  u:p\n", "one").unwrap();
    assert_eq!(map.lookup("a.test", 25, "").unwrap().0, "u");
    map.extend(PasswordMap::parse("a.test other:x\nb.test v:q\n", "two").unwrap());
    assert_eq!(map.lookup("a.test", 25, "").unwrap().0, "u");
    assert_eq!(map.lookup("b.test", 25, "").unwrap().0, "v");
}

// ---------------------------------------------------------------- mechanism choice

fn offered(list: &str) -> Vec<String> {
    list.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn choose_first_acceptable_in_server_order() {
    let c = client("");
    assert_eq!(
        c.choose_mechanism(&offered("PLAIN LOGIN CRAM-MD5 DIGEST-MD5"), false),
        Ok(CramMd5)
    );
    assert_eq!(
        c.choose_mechanism(
            &offered("CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256 ANONYMOUS"),
            false
        ),
        Ok(CramMd5)
    );
    // Unknown names are skipped; names are case-insensitive.
    assert_eq!(
        c.choose_mechanism(&offered("GSSAPI NTLM scram-sha-256"), false),
        Ok(ScramSha256)
    );
    let open = client("smtp_sasl_security_options =\n");
    assert_eq!(
        open.choose_mechanism(&offered("PLAIN LOGIN"), false),
        Ok(Plain)
    );
}

#[test]
fn noplaintext_message() {
    let c = client("");
    let e = c
        .choose_mechanism(&offered("PLAIN LOGIN"), false)
        .unwrap_err();
    assert_eq!(
        e.reason,
        NoMechanismReason::SecurityOptions {
            options: vec!["noplaintext"]
        }
    );
    assert_eq!(
        e.to_string(),
        "no mechanism left after noplaintext: server offers PLAIN LOGIN"
    );
    let e = c
        .choose_mechanism(&offered("PLAIN ANONYMOUS"), false)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "no mechanism left after noplaintext, noanonymous: server offers PLAIN ANONYMOUS"
    );
}

#[test]
fn tls_options_apply_under_tls() {
    let c = client("smtp_sasl_tls_security_options = noanonymous\n");
    assert!(c.choose_mechanism(&offered("PLAIN LOGIN"), false).is_err());
    assert_eq!(c.choose_mechanism(&offered("PLAIN LOGIN"), true), Ok(Plain));
}

#[test]
fn filter_and_other_failures() {
    let c = client("smtp_sasl_mechanism_filter = plain, login\nsmtp_sasl_security_options =\n");
    assert_eq!(
        c.choose_mechanism(&offered("CRAM-MD5 LOGIN"), false),
        Ok(Login)
    );
    let e = c
        .choose_mechanism(&offered("CRAM-MD5 DIGEST-MD5"), false)
        .unwrap_err();
    assert_eq!(e.reason, NoMechanismReason::Filter);
    assert_eq!(
        e.to_string(),
        "no mechanism left after smtp_sasl_mechanism_filter: server offers CRAM-MD5 DIGEST-MD5"
    );
    let e = c.choose_mechanism(&[], false).unwrap_err();
    assert_eq!(e.reason, NoMechanismReason::NoneOffered);
    let e = c
        .choose_mechanism(&offered("GSSAPI NTLM"), false)
        .unwrap_err();
    assert_eq!(e.reason, NoMechanismReason::NoneImplemented);
    assert_eq!(
        e.to_string(),
        "no mechanism left: authspec implements none of the server's: GSSAPI NTLM"
    );
}

// ---------------------------------------------------------------- restrictions

fn ctx<'a>(client_ip: &str, authenticated: bool, recipient: &'a str) -> RestrictionContext<'a> {
    RestrictionContext {
        client_ip: ip(client_ip),
        client_name: None,
        authenticated,
        recipient,
    }
}

fn refusal(code: u16, enhanced: &'static str, text: &str) -> Refusal {
    Refusal {
        code,
        enhanced,
        text: text.to_owned(),
    }
}

#[test]
fn authenticated_client_relays() {
    let s =
        server("smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination\n");
    assert_eq!(
        s.check_rcpt(&ctx("203.0.113.9", true, "someone@example.org")),
        Decision::Permit
    );
}

#[test]
fn unauthenticated_client_gets_relay_access_denied() {
    let s =
        server("smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination\n");
    let d = s.check_rcpt(&ctx("203.0.113.9", false, "someone@example.org"));
    let want = refusal(554, "5.7.1", "<someone@example.org>: Relay access denied");
    assert_eq!(d, Decision::Reject(want.clone()));
    assert_eq!(
        want.to_string(),
        "554 5.7.1 <someone@example.org>: Relay access denied"
    );
    // Local destinations are still accepted.
    assert_eq!(
        s.check_rcpt(&ctx("203.0.113.9", false, "postmaster@localhost")),
        Decision::Permit
    );
    assert_eq!(
        s.check_rcpt(&ctx("203.0.113.9", false, "postmaster")),
        Decision::Permit
    );
    // Sender-specified routing is never an authorized destination.
    assert!(matches!(
        s.check_rcpt(&ctx("203.0.113.9", false, "user@elsewhere.test@localhost")),
        Decision::Reject(_)
    ));
}

#[test]
fn default_relay_restrictions() {
    let s = server("");
    // permit_mynetworks: loopback relays.
    assert_eq!(
        s.check_rcpt(&ctx("127.0.0.1", false, "x@example.org")),
        Decision::Permit
    );
    assert_eq!(
        s.check_rcpt(&ctx("::1", false, "x@example.org")),
        Decision::Permit
    );
    // defer_unauth_destination for others.
    assert_eq!(
        s.check_rcpt(&ctx("198.51.100.2", false, "x@example.org")),
        Decision::Defer(refusal(
            454,
            "4.7.1",
            "<x@example.org>: Relay access denied"
        ))
    );
    assert_eq!(
        s.check_rcpt(&ctx("198.51.100.2", true, "x@example.org")),
        Decision::Permit
    );
}

/// The peers' `smtpd_relay_restrictions = permit_sasl_authenticated, reject`, and the
/// reply Postfix gave there.
#[test]
fn peer_reject_wording() {
    let s = server("smtpd_relay_restrictions = permit_sasl_authenticated, reject\n");
    assert_eq!(
        s.check_rcpt(&ctx("127.0.0.1", false, "nobody@example.invalid")),
        Decision::Reject(refusal(
            554,
            "5.7.1",
            "<nobody@example.invalid>: Recipient address rejected: Access denied"
        ))
    );
}

#[test]
fn client_restrictions_and_delay_reject() {
    let text = "smtpd_client_restrictions = permit_mynetworks, reject\n";
    let s = server(text);
    let outsider = ctx("198.51.100.2", true, "x@localhost");
    let want = Decision::Reject(refusal(
        554,
        "5.7.1",
        "<unknown[198.51.100.2]>: Client host rejected: Access denied",
    ));
    assert_eq!(s.check_rcpt(&outsider), want);
    assert_eq!(s.check_client(&outsider), want);
    let named = RestrictionContext {
        client_name: Some("mx.example.org"),
        ..outsider.clone()
    };
    assert!(matches!(
        s.check_client(&named),
        Decision::Reject(r) if r.text == "<mx.example.org[198.51.100.2]>: Client host rejected: Access denied"
    ));
    // With smtpd_delay_reject = no the client list runs at connect, not at RCPT.
    let s = server(&format!("{text}smtpd_delay_reject = no\n"));
    assert_eq!(s.check_rcpt(&outsider), Decision::Permit);
    assert_eq!(
        s.check_client(&ctx("127.0.0.1", false, "")),
        Decision::Permit
    );
}

#[test]
fn defer_and_permit_auth_destination() {
    let s = server(
        "relay_domains = example.net\n\
         smtpd_relay_restrictions = permit_auth_destination, defer\n",
    );
    assert_eq!(
        s.check_rcpt(&ctx("198.51.100.2", false, "a@sub.example.net")),
        Decision::Permit
    );
    assert_eq!(
        s.check_rcpt(&ctx("198.51.100.2", false, "a@EXAMPLE.NET.")),
        Decision::Permit
    );
    assert_eq!(
        s.check_rcpt(&ctx("198.51.100.2", false, "a@badexample.net")),
        Decision::Defer(refusal(
            450,
            "4.3.2",
            "<a@badexample.net>: Recipient address rejected: Try again later"
        ))
    );
}

#[test]
fn discard_ehlo_keywords() {
    let s = server("smtpd_discard_ehlo_keywords = AUTH, pipelining\n");
    assert!(s.discards_ehlo_keyword("auth"));
    assert!(s.discards_ehlo_keyword("PIPELINING"));
    assert!(!s.discards_ehlo_keyword("STARTTLS"));
}

#[test]
fn fuzz_entries_accept_garbage() {
    use authspec_reference::fuzz_oracles::policy::{main_cf, password_map};
    for input in [
        &b"myhostname = $mydomain\nmydomain = $myhostname\n"[..],
        b"\xff\xfe = \x00\n  \n\t#",
        b"smtpd_banner = ${myhostname?{${mail_name:{x}}}:{y}}\n",
        b"smtpd_sasl_exceptions_networks = [::1]/129 1.2.3.4/",
        b"a.test u:p\n  more\n b\n",
    ] {
        main_cf(input);
        password_map(input);
    }
}

/// Issue 15, finding 7: `a = $b$b`, `b = $c$c`, … with an empty last value doubles the
/// work per level and produces no output, so the output bound never fires; 40 levels
/// were 2^40 lookups (a hang). The step budget ends it with a named error.
#[test]
fn expansion_doubling_chain_with_empty_end_hits_the_step_budget() {
    let names: Vec<&str> = authspec_reference::policy::maincf::PARAMETERS
        .iter()
        .map(|p| p.name)
        .filter(|n| !n.starts_with("authspec_") && *n != "mydomain")
        .take(41)
        .collect();
    let mut text = String::new();
    for pair in names.windows(2) {
        text.push_str(&format!("{} = ${}${}\n", pair[0], pair[1], pair[1]));
    }
    text.push_str(&format!("{} =\n", names[40]));
    let main = MainCf::parse_lenient(&text, "main.cf").unwrap();
    let err = main.expand(names[0]).unwrap_err();
    assert_eq!(err.kind, ConfigErrorKind::ExpansionTooManySteps);
    assert!(err.to_string().contains("10000 $name lookups"), "{err}");
}
