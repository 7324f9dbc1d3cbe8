//! A finding as a replayable client-role scenario: the session's bytes as `send`
//! steps (chunk for chunk), the replies the target gave as `expect` steps, and in the
//! place of the finding the expectation a conforming server meets. `authspec run FILE
//! --target ADDR` fails on the server that was fuzzed.
//!
//! The password is never written: it stays `${password}`, inside `sasl: { base64_of }`
//! steps where it travels in base64, and the file is checked for it before writing.

use super::exec::Played;
use super::session::{Action, Atom, Seg, Session, Split, atoms, chunks, concrete_all};
use super::{Candidate, FindingKind};
use crate::scenario::{
    Auth, Clause, CodeSpec, Expect, Role, Sasl, ScenarioFile, Send, SendOptions, Step, WaitDuration,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// `send` lines longer than this (escaped) are cut: the expander bounds one string at
/// 64 KiB.
const MAX_SEND_TEXT: usize = 16 * 1024;

/// How the fuzzed target was reached, for the replay command in the header.
#[derive(Debug, Clone)]
pub struct Origin {
    pub target: String,
    pub starttls: bool,
    pub tls_insecure: bool,
    pub seed: u64,
    pub session: u64,
}

/// Escapes bytes for a `raw` string: the escapes of `scenario::unescape`, and `$$` for
/// `$` so that nothing is read as a variable.
fn escape_raw(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0 => out.push_str("\\0"),
            b'\\' => out.push_str("\\\\"),
            b'$' => out.push_str("$$"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02X}")),
        }
    }
}

fn raw_payload(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Lit(b) => escape_raw(b, &mut s),
            Seg::Password => s.push_str("${password}"),
            // Not produced inside a payload.
            Seg::B64(inner) => s.push_str(&raw_payload(inner)),
        }
    }
    s
}

fn send_raw(text: String) -> Step {
    Step::Send(Send::Options(SendOptions {
        line: text,
        raw: true,
        crlf: None,
    }))
}

/// The steps that write one chunk.
fn chunk_steps(chunk: &[Atom], steps: &mut Vec<Step>) {
    let mut pending = String::new();
    let flush = |pending: &mut String, steps: &mut Vec<Step>| {
        if !pending.is_empty() {
            steps.push(send_raw(std::mem::take(pending)));
        }
    };
    for atom in chunk {
        match atom {
            Atom::Lit(b) => {
                for piece in b.chunks(MAX_SEND_TEXT / 4) {
                    escape_raw(piece, &mut pending);
                    if pending.len() >= MAX_SEND_TEXT {
                        flush(&mut pending, steps);
                    }
                }
            }
            Atom::Password => pending.push_str("${password}"),
            Atom::SaslLine(inner) => {
                flush(&mut pending, steps);
                steps.push(Step::Sasl(Sasl {
                    send: None,
                    base64_of: Some(raw_payload(inner)),
                    cancel: false,
                }));
            }
        }
    }
    flush(&mut pending, steps);
}

fn plain_text(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Lit(b) => s.push_str(&String::from_utf8_lossy(b).replace('$', "$$")),
            Seg::Password => s.push_str("${password}"),
            Seg::B64(inner) => s.push_str(&plain_text(inner)),
        }
    }
    s
}

/// What a conforming server does where the target did not.
fn expectation(kind: FindingKind) -> Expect {
    let p = |s: &str| CodeSpec::Pattern(s.to_owned());
    let code = match kind {
        // RFC 4954 §6: 535 for bad credentials (or a temporary 454).
        FindingKind::AuthBypass => CodeSpec::AnyOf(vec![p("4xx"), p("5xx")]),
        // Any well-formed reply at all.
        _ => CodeSpec::AnyOf(vec![p("2xx"), p("3xx"), p("4xx"), p("5xx")]),
    };
    Expect {
        code: Some(code),
        ..Expect::default()
    }
}

fn clauses(kind: FindingKind) -> Vec<Clause> {
    let texts: &[&str] = match kind {
        FindingKind::AuthBypass => &["RFC4954 §6 MUST", "RFC4616 §2 MUST"],
        FindingKind::MalformedReply => &["RFC5321 §4.2 MUST"],
        FindingKind::Hang | FindingKind::ClosedWithoutReply => &["RFC5321 §4.2 MUST"],
        FindingKind::NoGreeting => &["RFC5321 §3.1"],
    };
    texts.iter().filter_map(|t| t.parse().ok()).collect()
}

/// The RFC sentence a finding of this kind breaks, for the scenario's `quote`.
fn quote(kind: FindingKind) -> Option<String> {
    let text = match kind {
        FindingKind::AuthBypass => {
            "RFC 4616 §2: \"the server will verify the presented ... authentication identity \
             (authcid) and password (passwd) ... If both steps succeed, the user is \
             authenticated\"; a wrong password must not give 235."
        }
        FindingKind::MalformedReply | FindingKind::Hang | FindingKind::ClosedWithoutReply => {
            "RFC 5321 §4.2: \"An SMTP reply consists of a three digit number (transmitted as \
             three numeric characters) followed by some text\"; §4.1.4: the server MUST \
             answer every command it receives."
        }
        FindingKind::NoGreeting => return None,
    };
    Some(text.to_owned())
}

/// The finding as a scenario file's text (header comment and YAML), and the file name.
/// `Err` when the file could not be written without the secret.
pub fn render(
    session: &Session,
    played: &Played,
    cand: &Candidate,
    origin: &Origin,
    password: &[u8],
) -> Result<(String, String), super::NotWritten> {
    let steps = steps(session, played, cand, origin, password)?;
    let kind = cand.kind.slug();
    let mut file = scenario_file(cand, steps);
    let body = serde_yaml::to_string(&file.steps)
        .map_err(|e| super::NotWritten::DoesNotLoad(e.to_string()))?;
    let hash = format!("{:016x}", fnv1a(body.as_bytes()));
    file.id = format!("fuzz/{kind}-{hash}");
    let yaml =
        serde_yaml::to_string(&file).map_err(|e| super::NotWritten::DoesNotLoad(e.to_string()))?;
    let text = format!("{}{yaml}", header(cand, origin));
    if leaks(&text, password) {
        return Err(super::NotWritten::SecretNotSymbolic);
    }
    // A finding that cannot be loaded is of no use.
    crate::scenario::load_str(&text, "finding.yaml")
        .map_err(|e| super::NotWritten::DoesNotLoad(e.to_string()))?;
    Ok((format!("{kind}-{hash}.yaml"), text))
}

/// The session's actions up to the finding as scenario steps, each followed by the
/// codes the target answered, the last by what a conforming server answers.
fn steps(
    session: &Session,
    played: &Played,
    cand: &Candidate,
    origin: &Origin,
    password: &[u8],
) -> Result<Vec<Step>, super::NotWritten> {
    let mut steps: Vec<Step> = Vec::new();
    if !origin.starttls {
        match cand.at {
            None => steps.push(Step::Expect(expectation(cand.kind))),
            Some(_) => steps.push(Step::Expect(Expect::code(220))),
        }
    }
    let Some(at) = cand.at else {
        return Ok(steps);
    };
    for (i, action) in session.actions.iter().enumerate().take(at + 1) {
        let codes = played.replies.get(i).cloned().unwrap_or_default();
        let last = i == at;
        match action {
            Action::Write { lines, split } => {
                let (atoms, leaky) = atoms(lines, password);
                if leaky {
                    return Err(super::NotWritten::SecretNotSymbolic);
                }
                write_steps(&atoms, split.as_ref(), &mut steps);
                for c in &codes {
                    steps.push(Step::Expect(Expect::code(*c)));
                }
                if last {
                    steps.push(Step::Expect(expectation(cand.kind)));
                }
            }
            Action::Auth {
                mechanism,
                user,
                password: pw,
                ..
            } => {
                let expect = if last {
                    expectation(cand.kind)
                } else {
                    match codes.first() {
                        Some(c) => Expect::code(*c),
                        // The exchange never ended; a later action's finding is
                        // about what came after.
                        None => expectation(FindingKind::Hang),
                    }
                };
                steps.push(Step::Auth(Auth {
                    mechanism: mechanism.name().to_owned(),
                    user: Some(user.replace('$', "$$")),
                    password: Some(plain_text(pw)),
                    authzid: None,
                    token: None,
                    initial_response: crate::scenario::InitialResponse::Auto,
                    expect: Some(expect),
                    channel_binding: None,
                }));
            }
            Action::Wait { ms } => {
                if let Ok(w) = WaitDuration::new(Duration::from_millis(u64::from(*ms))) {
                    steps.push(Step::Wait(w));
                }
            }
        }
    }
    Ok(steps)
}

/// A write's chunks as `send` steps, with the split's pause between them.
fn write_steps(atoms: &[Atom], split: Option<&Split>, steps: &mut Vec<Step>) {
    let pieces = chunks(atoms, split.copied());
    let n = pieces.len();
    for (ci, piece) in pieces.iter().enumerate() {
        chunk_steps(piece, steps);
        if let Some(s) = split {
            if s.pause_ms > 0 && ci + 1 < n {
                if let Ok(w) = WaitDuration::new(Duration::from_millis(u64::from(s.pause_ms))) {
                    steps.push(Step::Wait(w));
                }
            }
        }
    }
}

fn scenario_file(cand: &Candidate, steps: Vec<Step>) -> ScenarioFile {
    let kind = cand.kind.slug();
    ScenarioFile {
        id: String::new(),
        title: format!("fuzz finding ({kind}): {}", cand.detail.replace('\n', " ")),
        spec: clauses(cand.kind),
        tags: vec!["fuzz".to_owned(), kind.to_owned()],
        requires: crate::scenario::Requires::default(),
        level: None,
        quote: quote(cand.kind),
        profile: BTreeMap::new(),
        role: Role::Client,
        vars: BTreeMap::new(),
        for_each_mechanism: Vec::new(),
        steps: Some(steps),
        transcript: None,
    }
}

/// The comment header: how the finding was found and how to replay it.
fn header(cand: &Candidate, origin: &Origin) -> String {
    let kind = cand.kind.slug();
    let mut replay = format!("authspec run FILE --target {}", origin.target);
    if origin.starttls {
        replay.push_str(" --starttls");
    }
    if origin.tls_insecure {
        replay.push_str(" --tls-insecure");
    }
    replay.push_str(" --var password-env=VAR");
    let mut header = format!(
        "# Found by `authspec fuzz --seed {}` (session {}) against {}.\n\
         # {kind}: {}\n\
         # Replay: {replay}\n\
         # The last `expect` is what a conforming server answers; on the fuzzed target it fails.\n",
        origin.seed,
        origin.session,
        origin.target,
        cand.detail.replace('\n', " "),
    );
    if cand.kind == FindingKind::MalformedReply && cand.signature.contains("bare-") {
        header.push_str(
            "# Note: the runner records line-end deviations in replies as notes, not failures,\n\
             # so this replay shows the deviation in its transcript but may pass.\n",
        );
    }
    header
}

/// Whether `text` spells the password, or its base64 (as LOGIN sends it). Passwords
/// shorter than four octets would match by chance and are not checked.
pub fn leaks(text: &str, password: &[u8]) -> bool {
    if password.len() < 4 {
        return false;
    }
    let b = text.as_bytes();
    let b64 = authspec_reference::smtp::sasl_frame::encode_strict(password);
    super::session::find(b, password).is_some()
        || super::session::find(b, b64.trim_end_matches('=').as_bytes()).is_some()
}

pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The session's concrete wire bytes, for hashing and tests.
pub fn wire(session: &Session, password: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in &session.actions {
        if let Action::Write { lines, .. } = a {
            for l in lines {
                out.extend_from_slice(&concrete_all(&l.segs, password));
                out.extend_from_slice(&l.ending);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netfuzz::seeds::auth_actions;
    use crate::netfuzz::session::{Creds, Line, Split};
    use authspec_reference::sasl::Mechanism;

    #[test]
    fn a_finding_replays_the_bytes_without_the_secret() {
        let mut actions = vec![Action::Write {
            lines: vec![Line::command("ehlo x$y")],
            split: Some(Split {
                every: 2,
                pause_ms: 5,
            }),
        }];
        actions.extend(auth_actions(
            Mechanism::Plain,
            "alice",
            vec![Seg::Password, Seg::lit("x")],
            Creds::Wrong,
            true,
        ));
        let session = Session {
            actions,
            origin: "t".into(),
        };
        let played = Played {
            replies: vec![vec![250], vec![]],
            codes: vec![220, 250, 235],
            ..Played::default()
        };
        let cand = Candidate {
            kind: FindingKind::AuthBypass,
            at: Some(1),
            detail: "235".into(),
            signature: "auth-bypass/PLAIN".into(),
        };
        let origin = Origin {
            target: "127.0.0.1:1".into(),
            starttls: false,
            tls_insecure: false,
            seed: 1,
            session: 0,
        };
        let (name, text) = render(&session, &played, &cand, &origin, b"wonderland").unwrap();
        assert!(name.starts_with("auth-bypass-"));
        assert!(!text.contains("wonderland"));
        let sc = crate::scenario::load_str(&text, "f.yaml").unwrap();
        // Expanded and concatenated, the send/sasl steps are the session's bytes.
        let mut vars = crate::scenario::Vars::new();
        vars.set("password", "wonderland");
        let mut sent = Vec::new();
        let mut kinds = Vec::new();
        for step in sc.steps() {
            let step = step.expand(&vars).unwrap();
            kinds.push(step.kind());
            match &step {
                Step::Send(s) => sent.extend(s.bytes().unwrap()),
                Step::Sasl(s) => sent.extend(s.bytes().unwrap()),
                _ => {}
            }
        }
        assert_eq!(sent, wire(&session, b"wonderland"));
        assert_eq!(
            kinds,
            [
                "expect", "send", "wait", "send", "wait", "send", "wait", "send", "wait", "send",
                "expect", "send", "sasl", "expect"
            ]
        );
        let Some(Step::Expect(last)) = sc.steps().last() else {
            panic!("last step is not an expectation");
        };
        assert!(last.code.as_ref().unwrap().matches(535));
        assert!(!last.code.as_ref().unwrap().matches(235));
    }
}
