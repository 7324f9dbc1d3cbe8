//! Whether a scenario can apply to a live target, decided before it runs from what the
//! target offered in the preflight. A scenario that cannot apply is skipped with the
//! reason; it is never failed for something the target does not claim to do.
//!
//! Two inputs decide: the scenario's `requires` (extensions, mechanisms, TLS), checked
//! against the capabilities of the phase the scenario will run in, and its `profile`,
//! which configures the embedded reference server only. Against a live target a profile
//! parameter either merely makes the reference offer something that `requires` already
//! checks (an "enabling" parameter), or defines the behaviour the scenario judges. The
//! latter applies only when the target shows the same configuration (AUTH only after
//! STARTTLS is visible in the EHLO replies); otherwise the scenario is skipped, naming
//! the parameter.

use super::{Offer, TlsMode};
use crate::scenario::{Scenario, Step};
use authspec_reference::smtp::reply::Capabilities;

/// Whether the scenario sends STARTTLS itself.
pub(crate) fn has_starttls_step(sc: &Scenario) -> bool {
    sc.steps().iter().any(|s| matches!(s, Step::Starttls(_))) || upgrades(sc)
}

/// Whether the scenario runs a TLS handshake of its own, so the target must offer
/// STARTTLS (a scenario that only checks a refusal does not need it).
fn upgrades(sc: &Scenario) -> bool {
    sc.steps()
        .iter()
        .any(|s| matches!(s, Step::Starttls(t) if t.handshake))
        || sc.steps().iter().any(|s| match s {
            Step::Pipeline(lines) => lines
                .iter()
                .any(|l| l.trim_end().eq_ignore_ascii_case("STARTTLS")),
            _ => false,
        })
}

fn mechanisms(c: &Capabilities) -> String {
    let list = c
        .auth
        .clone()
        .or_else(|| c.auth_eq.clone())
        .unwrap_or_default();
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(" ")
    }
}

/// Why `sc` cannot apply to a target that offered `offer` in `mode`, if it cannot.
/// `live`: the target is not the embedded reference, so the scenario's profile was not
/// applied to it.
pub(crate) fn unmet(sc: &Scenario, offer: &Offer, mode: TlsMode, live: bool) -> Option<String> {
    let own_starttls = has_starttls_step(sc);
    if own_starttls && mode == TlsMode::Implicit {
        return Some(
            "the scenario tests STARTTLS, and the target speaks TLS from the first byte (--tls)"
                .into(),
        );
    }
    // The capabilities the scenario's AUTH steps will meet: after TLS when the run or
    // the scenario upgrades, else the plaintext ones.
    let plain = offer.before_tls.as_ref();
    let tls = offer.after_tls.as_ref();
    // A scenario about AUTH hidden before TLS judges the plaintext phase, but needs
    // the mechanism to exist after TLS.
    let hidden_before_tls = sc
        .profile
        .get("smtpd_tls_auth_only")
        .is_some_and(|v| yes(v));
    let phase: Option<&Capabilities> = match mode {
        TlsMode::Plain if hidden_before_tls => tls.or(plain),
        TlsMode::Implicit => tls,
        TlsMode::StartTls if !own_starttls => tls,
        _ if own_starttls => tls.or(plain),
        _ => plain,
    };
    if hidden_before_tls && !own_starttls && mode != TlsMode::Plain {
        return Some(
            "the scenario judges what is offered before STARTTLS, and the run starts in TLS".into(),
        );
    }
    let req = &sc.requires;
    if req.tls && mode == TlsMode::Plain && !plain.is_some_and(|c| c.has("STARTTLS")) {
        return Some("target offers no TLS (no STARTTLS, and --tls not given)".into());
    }
    if upgrades(sc) && !plain.is_some_and(|c| c.has("STARTTLS")) {
        return Some("the scenario tests STARTTLS, which the target does not advertise".into());
    }
    for ext in &req.extensions {
        let offered = |c: &Capabilities| {
            if ext.eq_ignore_ascii_case("AUTH=") {
                c.auth_eq.is_some()
            } else {
                c.has(ext)
            }
        };
        // STARTTLS is a plaintext keyword; the others are judged in the scenario's phase.
        let in_phase = if ext.eq_ignore_ascii_case("STARTTLS") {
            plain.is_some_and(offered)
        } else {
            phase.is_some_and(offered)
        };
        if !in_phase {
            return Some(format!("target does not advertise the {ext} extension"));
        }
    }
    for m in &req.mechanisms {
        if phase.is_some_and(|c| c.offers_mechanism(m)) {
            continue;
        }
        if mode == TlsMode::Plain && tls.is_some_and(|c| c.offers_mechanism(m)) {
            return Some(format!(
                "target offers {m} only after STARTTLS; run with --starttls to test it"
            ));
        }
        return Some(format!(
            "target does not offer the {m} mechanism (it offers: {})",
            phase.map_or_else(|| "none".to_owned(), mechanisms)
        ));
    }
    if req.auth && !phase.is_some_and(|c| c.auth.is_some() || c.auth_eq.is_some()) {
        if mode == TlsMode::Plain && tls.is_some_and(|c| c.auth.is_some()) {
            return Some(
                "target offers AUTH only after STARTTLS; run with --starttls to test it".into(),
            );
        }
        return Some("target does not offer AUTH".into());
    }
    if !live {
        return None;
    }
    for (name, value) in &sc.profile {
        if let Some(why) = profile_unmet(name, value, plain, tls) {
            return Some(format!(
                "needs the reference's {name}={value} profile: {why}"
            ));
        }
    }
    None
}

fn yes(v: &str) -> bool {
    v.eq_ignore_ascii_case("yes") || v.eq_ignore_ascii_case("true")
}

fn offers_auth(c: Option<&Capabilities>) -> bool {
    c.is_some_and(|c| c.auth.is_some() || c.auth_eq.is_some())
}

/// Why a live target does not show the configuration `name = value` stands for, or
/// `None` when it does or when the parameter only enables an offering.
fn profile_unmet(
    name: &str,
    value: &str,
    plain: Option<&Capabilities>,
    tls: Option<&Capabilities>,
) -> Option<String> {
    let v = value.trim();
    match name {
        // These only make the reference offer what `requires` checks.
        "smtpd_sasl_auth_enable" => None,
        "smtpd_sasl_mechanism_filter" if v == "static:all" => None,
        "smtpd_sasl_mechanism_filter" | "authspec_sasl_mech_list" => {
            Some("the scenario judges the reference's mechanism list".into())
        }
        "smtpd_tls_security_level" => match v {
            "may" | "" => None,
            "none" if plain.is_some_and(|c| c.has("STARTTLS")) => {
                Some("the target offers STARTTLS".into())
            }
            "none" => None,
            _ => Some("the target's TLS policy cannot be seen in its EHLO replies".into()),
        },
        "smtpd_tls_auth_only" if yes(v) => {
            if offers_auth(plain) {
                Some("the target offers AUTH before STARTTLS".into())
            } else if !offers_auth(tls) {
                Some("the target offers AUTH neither before nor after STARTTLS".into())
            } else {
                None
            }
        }
        "smtpd_tls_auth_only" => None,
        "broken_sasl_auth_clients" => {
            let shows = plain.or(tls).is_some_and(|c| c.auth_eq.is_some());
            match (yes(v), shows) {
                (true, false) => Some("the target sends no `AUTH=` line".into()),
                (false, true) => Some("the target sends an `AUTH=` line".into()),
                _ => None,
            }
        }
        "smtpd_sasl_security_options" | "smtpd_sasl_tls_security_options" => {
            let options: Vec<&str> = v
                .split([',', ' '])
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .collect();
            let caps = if name == "smtpd_sasl_tls_security_options" {
                tls
            } else {
                plain
            };
            for o in options {
                match o {
                    "noanonymous" => {}
                    "noplaintext" => {
                        if caps.is_some_and(|c| {
                            c.offers_mechanism("PLAIN") || c.offers_mechanism("LOGIN")
                        }) {
                            return Some("the target offers a plaintext mechanism".into());
                        }
                    }
                    other => {
                        return Some(format!(
                            "{other} cannot be seen in the target's EHLO replies"
                        ));
                    }
                }
            }
            None
        }
        _ => Some("the target's setting cannot be seen from outside".into()),
    }
}
