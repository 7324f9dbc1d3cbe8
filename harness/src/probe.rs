//! `authspec probe`: what a server offers for AUTH, before and after TLS, and what
//! looks wrong about it. Each probe is one short session; each anomaly names the rule.

use crate::conn::{Conn, ConnError};
use authspec_reference::sasl::Mechanism;
use authspec_reference::smtp::reply::{self, Capabilities, Reply};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeTls {
    None,
    StartTls,
    Implicit,
}

#[derive(Debug, Serialize)]
pub struct ProbeReport {
    pub target: String,
    pub banner: String,
    pub ehlo_before_tls: Vec<String>,
    pub ehlo_after_tls: Option<Vec<String>>,
    pub auth: AuthLines,
    pub auth_after_tls: Option<AuthLines>,
    pub mechanisms: Vec<MechanismReport>,
    pub tls: Option<TlsReport>,
    pub anomalies: Vec<Anomaly>,
    /// The whole session ran over implicit TLS (`--tls`): there is no "before TLS".
    pub implicit_tls: bool,
}

#[derive(Debug, Serialize, Default, Clone)]
pub struct AuthLines {
    /// The standard `AUTH m1 m2` line (RFC 4954 §3).
    pub auth: Option<Vec<String>>,
    /// The non-standard `AUTH=m1 m2` line old Outlook clients read.
    pub auth_eq: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
pub struct MechanismReport {
    pub name: String,
    pub known: bool,
    pub offered_before_tls: bool,
    pub offered_after_tls: bool,
    pub properties: Vec<&'static str>,
    /// The Postfix `smtp(d)_sasl_security_options` values that would hide it.
    pub hidden_by: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct TlsReport {
    pub version: String,
    pub cipher: String,
    pub subject: Option<String>,
    pub not_after: Option<String>,
}

#[derive(Debug, Serialize, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// A stable name, for scripts.
    pub rule: &'static str,
    pub detail: String,
}

pub struct ProbeOptions {
    pub target: String,
    pub tls: ProbeTls,
    pub tls_config: Arc<rustls::ClientConfig>,
    pub server_name: String,
    pub helo: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for ProbeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeOptions")
            .field("target", &self.target)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

fn lines(r: &Reply) -> Vec<String> {
    r.lines
        .iter()
        .map(|l| String::from_utf8_lossy(&l.text).into_owned())
        .collect()
}

fn auth_lines(c: &Capabilities) -> AuthLines {
    AuthLines {
        auth: c.auth.clone(),
        auth_eq: c.auth_eq.clone(),
    }
}

/// Property names and the security options that hide a mechanism with them.
pub fn describe(m: Mechanism) -> (Vec<&'static str>, Vec<&'static str>) {
    let p = m.properties();
    let mut props = Vec::new();
    let mut hidden = Vec::new();
    if p.plaintext {
        props.push("plaintext");
        hidden.push("noplaintext");
    }
    if p.anonymous {
        props.push("anonymous");
        hidden.push("noanonymous");
    }
    if p.dictionary {
        props.push("dictionary");
        hidden.push("nodictionary");
    }
    if p.active {
        props.push("active");
        hidden.push("noactive");
    }
    if p.mutual_auth {
        props.push("mutual_auth");
    } else {
        hidden.push("mutual_auth");
    }
    if p.forward_secrecy {
        props.push("forward_secrecy");
    } else {
        hidden.push("forward_secrecy");
    }
    (props, hidden)
}

async fn ehlo(conn: &mut Conn, helo: &str) -> Result<(Reply, Capabilities), ConnError> {
    conn.send(format!("EHLO {helo}\r\n").as_bytes()).await?;
    let r = conn.read_reply("EHLO reply").await?;
    if r.code != 250 {
        return Err(ConnError::Malformed(format!(
            "EHLO answered {}",
            String::from_utf8_lossy(&r.format()).trim_end()
        )));
    }
    let caps = reply::parse_ehlo(&r).map_err(|e| ConnError::Malformed(format!("{e:?}")))?;
    Ok((r, caps))
}

/// Open a session up to the EHLO (after STARTTLS if asked), for the side probes.
async fn open(opts: &ProbeOptions) -> Result<(Conn, Reply, Capabilities), ConnError> {
    let mut conn = Conn::connect(&opts.target, opts.timeout).await?;
    if opts.tls == ProbeTls::Implicit {
        conn.upgrade(Arc::clone(&opts.tls_config), &opts.server_name)
            .await?;
    }
    let greet = conn.read_reply("greeting").await?;
    if greet.code != 220 {
        return Err(ConnError::Malformed(format!(
            "greeting code {}",
            greet.code
        )));
    }
    let (mut r, mut caps) = ehlo(&mut conn, &opts.helo).await?;
    if opts.tls == ProbeTls::StartTls {
        conn.send(b"STARTTLS\r\n").await?;
        let r220 = conn.read_reply("STARTTLS reply").await?;
        if r220.code != 220 {
            return Err(ConnError::Tls(format!("STARTTLS refused: {}", r220.code)));
        }
        conn.take_unread();
        conn.upgrade(Arc::clone(&opts.tls_config), &opts.server_name)
            .await?;
        (r, caps) = ehlo(&mut conn, &opts.helo).await?;
    }
    Ok((conn, r, caps))
}

pub async fn probe(opts: &ProbeOptions) -> Result<ProbeReport, ConnError> {
    let mut anomalies = Vec::new();
    let mut conn = Conn::connect(&opts.target, opts.timeout).await?;
    if opts.tls == ProbeTls::Implicit {
        conn.upgrade(Arc::clone(&opts.tls_config), &opts.server_name)
            .await?;
    }
    let greet = conn.read_reply("greeting").await?;
    let banner = lines(&greet).join(" / ");
    if greet.code != 220 {
        anomalies.push(Anomaly {
            rule: "greeting-not-220",
            detail: format!("greeting code {} (RFC 5321 §4.2)", greet.code),
        });
    }
    let (r1, caps1) = ehlo(&mut conn, &opts.helo).await?;
    let before = auth_lines(&caps1);
    let mut after = None;
    let mut ehlo_after = None;
    let mut tls = None;
    let offers_starttls = caps1.has("STARTTLS");
    if opts.tls == ProbeTls::StartTls || (opts.tls == ProbeTls::None && offers_starttls) {
        if !offers_starttls {
            anomalies.push(Anomaly {
                rule: "starttls-not-offered",
                detail: "--starttls was asked for but EHLO does not list STARTTLS".into(),
            });
        } else {
            conn.send(b"STARTTLS\r\n").await?;
            let r = conn.read_reply("STARTTLS reply").await?;
            if r.code == 220 {
                let injected = conn.take_unread();
                if !injected.is_empty() {
                    anomalies.push(Anomaly {
                        rule: "starttls-response-injection",
                        detail: format!(
                            "{} octets arrived after the STARTTLS 220 and before the handshake (discarded)",
                            injected.len()
                        ),
                    });
                }
                match conn
                    .upgrade(Arc::clone(&opts.tls_config), &opts.server_name)
                    .await
                {
                    Ok(()) => {
                        let (r2, caps2) = ehlo(&mut conn, &opts.helo).await?;
                        ehlo_after = Some(lines(&r2));
                        after = Some(auth_lines(&caps2));
                    }
                    Err(e) => anomalies.push(Anomaly {
                        rule: "tls-handshake-failed",
                        detail: e.to_string(),
                    }),
                }
            } else {
                anomalies.push(Anomaly {
                    rule: "starttls-refused",
                    detail: format!("STARTTLS answered {}", r.code),
                });
            }
        }
    }
    if let Some(info) = &conn.tls_info {
        tls = Some(TlsReport {
            version: info.version.clone(),
            cipher: info.cipher.clone(),
            subject: info.peer_subject.clone(),
            not_after: info.peer_not_after.clone(),
        });
    }
    conn.send(b"QUIT\r\n").await.ok();
    conn.shutdown().await;

    // Mechanism table.
    let list_of = |a: &AuthLines| -> Vec<String> {
        a.auth
            .clone()
            .or_else(|| a.auth_eq.clone())
            .unwrap_or_default()
    };
    let before_list = list_of(&before);
    let after_list = after.as_ref().map(list_of).unwrap_or_default();
    let mut names: Vec<String> = before_list.clone();
    for n in &after_list {
        if !names.iter().any(|x| x.eq_ignore_ascii_case(n)) {
            names.push(n.clone());
        }
    }
    let initially_tls = opts.tls == ProbeTls::Implicit;
    let mut mechanisms = Vec::new();
    for name in &names {
        let m = Mechanism::from_name(name.as_bytes());
        let (properties, hidden_by) = m.map(describe).unwrap_or_default();
        let offered_before = before_list.iter().any(|x| x.eq_ignore_ascii_case(name));
        let offered_after = after_list.iter().any(|x| x.eq_ignore_ascii_case(name));
        if let Some(m) = m {
            if m.properties().plaintext && offered_before && !initially_tls {
                anomalies.push(Anomaly {
                    rule: "plaintext-auth-before-tls",
                    detail: format!(
                        "{m} is offered on a connection without TLS: the password crosses the network in the clear"
                    ),
                });
            }
        }
        mechanisms.push(MechanismReport {
            name: name.clone(),
            known: m.is_some(),
            offered_before_tls: offered_before,
            offered_after_tls: offered_after,
            properties,
            hidden_by,
        });
    }
    for (label, a) in [("before TLS", Some(&before)), ("after TLS", after.as_ref())] {
        let Some(a) = a else { continue };
        match (&a.auth, &a.auth_eq) {
            (None, Some(_)) => anomalies.push(Anomaly {
                rule: "auth-eq-only",
                detail: format!(
                    "{label}: only the non-standard AUTH= line is present; RFC 4954 clients look for AUTH"
                ),
            }),
            (Some(x), Some(y)) if x != y => anomalies.push(Anomaly {
                rule: "auth-lines-differ",
                detail: format!("{label}: AUTH lists {x:?} but AUTH= lists {y:?}"),
            }),
            _ => {}
        }
    }

    // Side probes on fresh sessions, where AUTH is offered.
    let auth_where = if !after_list.is_empty() || (before_list.is_empty() && offers_starttls) {
        ProbeTls::StartTls
    } else {
        opts.tls
    };
    let side_opts = ProbeOptions {
        target: opts.target.clone(),
        tls: if opts.tls == ProbeTls::Implicit {
            ProbeTls::Implicit
        } else {
            auth_where
        },
        tls_config: Arc::clone(&opts.tls_config),
        server_name: opts.server_name.clone(),
        helo: opts.helo.clone(),
        timeout: opts.timeout,
    };
    let offered_now = if side_opts.tls == ProbeTls::None {
        &before_list
    } else if after.is_some() {
        &after_list
    } else {
        &before_list
    };
    if offered_now.iter().any(|m| m.eq_ignore_ascii_case("PLAIN")) {
        if let Ok((mut c, _, caps)) = open(&side_opts).await {
            let enhanced = caps.has("ENHANCEDSTATUSCODES");
            if c.send(b"AUTH PLAIN\r\n").await.is_ok() {
                let reply = c.read_reply("AUTH PLAIN reply").await;
                if let Err(e) = &reply {
                    anomalies.push(Anomaly {
                        rule: "auth-probe-failed",
                        detail: format!("`AUTH PLAIN` got no usable reply: {e}"),
                    });
                }
                if let Ok(r) = reply {
                    if r.code == 334 && r.is_bare_334() {
                        anomalies.push(Anomaly {
                            rule: "bare-334",
                            detail: "the empty challenge came as `334` without the space RFC 4954 §4 requires (`334 `)".into(),
                        });
                    }
                    if r.code == 334 && c.send(b"*\r\n").await.is_ok() {
                        if let Ok(r) = c.read_reply("cancel reply").await {
                            if r.code != 501 {
                                anomalies.push(Anomaly {
                                    rule: "cancel-not-501",
                                    detail: format!(
                                        "`*` was answered {} (RFC 4954 §4 MUST 501)",
                                        r.code
                                    ),
                                });
                            }
                            if enhanced && r.enhanced().is_none() {
                                anomalies.push(Anomaly {
                                    rule: "missing-enhanced-code",
                                    detail: "ENHANCEDSTATUSCODES is advertised but the cancel reply has none (RFC 2034 §3)".into(),
                                });
                            }
                        }
                    }
                }
            }
            c.send(b"QUIT\r\n").await.ok();
            c.shutdown().await;
        }
    }
    if !offered_now.is_empty() {
        if let Ok((mut c, _, _)) = open(&side_opts).await {
            if c.send(b"AUTH X-AUTHSPEC-PROBE\r\n").await.is_ok() {
                let reply = c.read_reply("AUTH reply").await;
                if let Err(e) = &reply {
                    anomalies.push(Anomaly {
                        rule: "auth-probe-failed",
                        detail: format!(
                            "`AUTH` with an unknown mechanism got no usable reply: {e}"
                        ),
                    });
                }
                if let Ok(r) = reply {
                    if r.code != 504 {
                        anomalies.push(Anomaly {
                            rule: "unknown-mechanism-not-504",
                            detail: format!(
                                "an unknown mechanism was answered {} (RFC 4954 §4: 504)",
                                r.code
                            ),
                        });
                    }
                }
            }
            c.send(b"QUIT\r\n").await.ok();
            c.shutdown().await;
        }
    }
    Ok(ProbeReport {
        target: opts.target.clone(),
        banner,
        ehlo_before_tls: lines(&r1),
        ehlo_after_tls: ehlo_after,
        auth: before,
        auth_after_tls: after,
        mechanisms,
        tls,
        anomalies,
        implicit_tls: opts.tls == ProbeTls::Implicit,
    })
}

/// The human form of a probe report.
pub fn render_human(r: &ProbeReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "target   {}", r.target);
    let _ = writeln!(s, "banner   {}", r.banner);
    let first = if r.implicit_tls {
        "over implicit TLS"
    } else {
        "before TLS"
    };
    let _ = writeln!(s, "EHLO ({first}):");
    for l in &r.ehlo_before_tls {
        let _ = writeln!(s, "    {l}");
    }
    if let Some(after) = &r.ehlo_after_tls {
        let _ = writeln!(s, "EHLO (after STARTTLS):");
        for l in after {
            let _ = writeln!(s, "    {l}");
        }
    }
    let show = |a: &AuthLines| {
        format!(
            "AUTH: {}   AUTH=: {}",
            a.auth
                .as_ref()
                .map(|v| v.join(" "))
                .unwrap_or_else(|| "(absent)".into()),
            a.auth_eq
                .as_ref()
                .map(|v| v.join(" "))
                .unwrap_or_else(|| "(absent)".into())
        )
    };
    let _ = writeln!(s, "auth {first:<12} {}", show(&r.auth));
    if let Some(a) = &r.auth_after_tls {
        let _ = writeln!(s, "auth after TLS    {}", show(a));
    }
    if let Some(t) = &r.tls {
        let _ = writeln!(
            s,
            "TLS      {} {} subject={} not_after={}",
            t.version,
            t.cipher,
            t.subject.as_deref().unwrap_or("?"),
            t.not_after.as_deref().unwrap_or("?")
        );
    }
    let _ = writeln!(s, "mechanisms:");
    for m in &r.mechanisms {
        let _ = writeln!(
            s,
            "    {:<14} {:<5} before-TLS={:<5} after-TLS={:<5} properties=[{}] hidden-by=[{}]",
            m.name,
            if m.known { "" } else { "(?)" },
            m.offered_before_tls,
            m.offered_after_tls,
            m.properties.join(","),
            m.hidden_by.join(",")
        );
    }
    if r.anomalies.is_empty() {
        let _ = writeln!(s, "anomalies: none");
    } else {
        let _ = writeln!(s, "anomalies:");
        for a in &r.anomalies {
            let _ = writeln!(s, "    {}: {}", a.rule, a.detail);
        }
    }
    s
}
