//! The starting corpus: the client side of the bundled scenarios (their `send`,
//! `pipeline`, `sasl` and `auth` steps, transcripts compiled to steps), expanded with
//! the run's variables, plus a few sessions written here for mechanisms and commands
//! the library does not exercise yet.

use super::session::{Action, Creds, Line, LineKind, Seg, Session, classify, symbolic};
use crate::scenario::{InitialResponse, Role, Scenario, Step, Vars};
use authspec_reference::sasl::Mechanism;

/// The identity and secret the fuzzer authenticates with.
#[derive(Clone)]
pub struct Identity {
    pub user: String,
    pub password: Vec<u8>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// `\0user\0` + password: RFC 4616 §2 `message = [authzid] UTF8NUL authcid UTF8NUL passwd`.
pub fn plain_payload(user: &str, password: Vec<Seg>) -> Vec<Seg> {
    let mut v = vec![Seg::Lit(format!("\0{user}\0").into_bytes())];
    v.extend(password);
    v
}

fn ehlo() -> Line {
    Line::command("EHLO fuzz.authspec.invalid")
}

/// The seeds for one run. `mechanisms` are the server-first or computed mechanisms the
/// target offers (CRAM-MD5, SCRAM-*, DIGEST-MD5), played as whole exchanges.
pub fn seeds(
    scenarios: &[Scenario],
    vars: &Vars,
    id: &Identity,
    mechanisms: &[Mechanism],
) -> Vec<Session> {
    let mut out = Vec::new();
    for sc in scenarios.iter().filter(|s| s.role == Role::Client) {
        let vars = vars.with_defaults(&sc.vars);
        if let Some(s) = from_scenario(sc, &vars, id) {
            out.push(s);
        }
    }
    out.extend(builtin(id, mechanisms));
    out
}

fn from_scenario(sc: &Scenario, vars: &Vars, id: &Identity) -> Option<Session> {
    let pw = &id.password;
    let mut actions = Vec::new();
    for step in sc.steps() {
        // A step whose variables cannot be expanded (a token this run lacks) is left
        // out; the rest of the session is still a useful seed.
        let Ok(step) = step.expand(vars) else {
            continue;
        };
        match &step {
            Step::Send(s) => {
                let Ok(bytes) = s.bytes() else { continue };
                actions.push(Action::write(lines_of(&bytes, pw, LineKind::Command)));
            }
            Step::SendBytes(s) => {
                let Ok(bytes) = s.bytes() else { continue };
                actions.push(Action::write(lines_of(&bytes, pw, LineKind::Command)));
            }
            Step::Pipeline(lines) => {
                let lines: Vec<Line> = lines
                    .iter()
                    .map(|l| classify(l.as_bytes(), pw, LineKind::Command))
                    .collect();
                actions.push(Action::write(lines));
            }
            Step::Sasl(s) => {
                let Ok(bytes) = s.bytes() else { continue };
                actions.push(Action::write(lines_of(&bytes, pw, LineKind::Sasl)));
            }
            Step::Auth(a) => {
                let Some(mech) = Mechanism::from_name(a.mechanism.as_bytes()) else {
                    continue;
                };
                let user = a.user.clone().unwrap_or_else(|| id.user.clone());
                let password = a.password.clone().unwrap_or_default();
                let pw_segs = symbolic(password.as_bytes(), pw);
                let creds = if password.as_bytes() == pw.as_slice() {
                    Creds::Right
                } else {
                    Creds::Wrong
                };
                let ir = match a.initial_response {
                    InitialResponse::Always => true,
                    InitialResponse::Never => false,
                    InitialResponse::Auto => !mech.server_first(),
                };
                actions.extend(auth_actions(mech, &user, pw_segs, creds, ir));
            }
            Step::Starttls(_) => actions.push(Action::write(vec![Line::command("STARTTLS")])),
            Step::Quit(_) => actions.push(Action::write(vec![Line::command("QUIT")])),
            Step::Wait(d) => actions.push(Action::Wait {
                ms: u16::try_from(d.duration().as_millis().min(100)).unwrap_or(100),
            }),
            _ => {}
        }
    }
    if actions.is_empty() {
        return None;
    }
    Some(Session {
        actions,
        origin: sc.id.clone(),
    })
}

/// Splits sent bytes into lines at LF, keeping each line's own ending; a trailing
/// piece without LF becomes a line with an empty ending.
fn lines_of(bytes: &[u8], pw: &[u8], kind: LineKind) -> Vec<Line> {
    let mut out = Vec::new();
    for piece in bytes.split_inclusive(|b| *b == b'\n') {
        let (text, ending): (&[u8], &[u8]) = if let Some(t) = piece.strip_suffix(b"\r\n") {
            (t, b"\r\n")
        } else if let Some(t) = piece.strip_suffix(b"\n") {
            (t, b"\n")
        } else {
            (piece, b"")
        };
        let mut line = classify(text, pw, kind);
        if ending != b"\r\n" && line.pinned() {
            // Cannot stay symbolic with this ending: keep it literal, as sent.
            line.segs = vec![Seg::lit(text)];
            line.creds = Creds::Unknown;
        }
        line.ending = ending.to_vec();
        out.push(line);
    }
    out
}

/// An `auth` step as the fuzzer plays it: PLAIN and LOGIN as raw lines (so they can be
/// mutated), the others as computed exchanges.
pub fn auth_actions(
    mech: Mechanism,
    user: &str,
    password: Vec<Seg>,
    creds: Creds,
    initial_response: bool,
) -> Vec<Action> {
    match mech {
        Mechanism::Plain => {
            let payload = Seg::B64(plain_payload(user, password));
            if initial_response {
                vec![Action::write(vec![Line {
                    segs: vec![Seg::lit("AUTH PLAIN "), payload],
                    ending: b"\r\n".to_vec(),
                    creds,
                    kind: LineKind::Command,
                }])]
            } else {
                vec![
                    Action::write(vec![Line::command("AUTH PLAIN")]),
                    Action::write(vec![Line::sasl(vec![payload], creds)]),
                ]
            }
        }
        Mechanism::Login => {
            let user_b64 = Seg::B64(vec![Seg::lit(user)]);
            let mut out = Vec::new();
            if initial_response {
                out.push(Action::write(vec![Line {
                    segs: vec![Seg::lit("AUTH LOGIN "), user_b64],
                    ending: b"\r\n".to_vec(),
                    creds: Creds::None,
                    kind: LineKind::Command,
                }]));
            } else {
                out.push(Action::write(vec![Line::command("AUTH LOGIN")]));
                out.push(Action::write(vec![Line::sasl(vec![user_b64], Creds::None)]));
            }
            out.push(Action::write(vec![Line::sasl(
                vec![Seg::B64(password)],
                creds,
            )]));
            out
        }
        other => vec![Action::Auth {
            mechanism: other,
            user: user.to_owned(),
            password,
            creds,
        }],
    }
}

fn builtin(id: &Identity, mechanisms: &[Mechanism]) -> Vec<Session> {
    let user = id.user.as_str();
    let right = || vec![Seg::Password];
    let quit = || Action::write(vec![Line::command("QUIT")]);
    let mut out = Vec::new();
    let mut add = |origin: &str, mut body: Vec<Action>| {
        let mut actions = vec![Action::write(vec![ehlo()])];
        actions.append(&mut body);
        actions.push(quit());
        out.push(Session {
            actions,
            origin: format!("builtin/{origin}"),
        });
    };
    add(
        "plain-ir",
        auth_actions(Mechanism::Plain, user, right(), Creds::Right, true),
    );
    let mut plain = auth_actions(Mechanism::Plain, user, right(), Creds::Right, false);
    plain.push(Action::write(vec![Line::command(
        "MAIL FROM:<alice@example.com> AUTH=<>",
    )]));
    plain.push(Action::write(vec![Line::command("RSET")]));
    add("plain-then-mail", plain);
    add(
        "login",
        auth_actions(Mechanism::Login, user, right(), Creds::Right, false),
    );
    add(
        "login-ir",
        auth_actions(Mechanism::Login, user, right(), Creds::Right, true),
    );
    add(
        "pipelined",
        vec![Action::write(vec![
            Line::command("NOOP"),
            Line::command("AUTH PLAIN"),
            Line::command("RSET"),
        ])],
    );
    for m in mechanisms {
        add(
            &format!("auth-{}", m.name().to_ascii_lowercase()),
            auth_actions(*m, user, right(), Creds::Right, false),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netfuzz::session::concrete_all;

    #[test]
    fn bundled_seeds_keep_the_password_symbolic() {
        let scenarios = crate::scenario::load_bundled().unwrap();
        let vars = crate::runner::default_vars();
        let id = Identity {
            user: "alice".into(),
            password: b"wonderland".to_vec(),
        };
        let s = seeds(&scenarios, &vars, &id, &[Mechanism::CramMd5]);
        // Every client-role scenario with something to send gives a seed; server-role
        // scenarios give none.
        let client_role = scenarios
            .iter()
            .filter(|s| s.role == crate::scenario::Role::Client)
            .count();
        assert!(
            s.len() >= client_role,
            "{} seeds, {client_role} client-role scenarios",
            s.len()
        );
        let login = s
            .iter()
            .find(|s| s.origin == "rfc4954/seed-postfix-login-dialog")
            .unwrap();
        // The transcript's `C: ${password|base64}` line became symbolic.
        let pw_line = login
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Write { lines, .. } => lines.first(),
                _ => None,
            })
            .find(|l| l.creds == Creds::Right)
            .unwrap();
        assert_eq!(pw_line.segs, vec![Seg::B64(vec![Seg::Password])]);
        assert_eq!(
            concrete_all(&pw_line.segs, b"wonderland"),
            b"d29uZGVybGFuZA==".to_vec()
        );
        assert!(
            s.iter()
                .any(|s| s.actions.iter().any(|a| matches!(a, Action::Auth { .. })))
        );
    }
}
