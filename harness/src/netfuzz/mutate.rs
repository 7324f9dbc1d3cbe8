//! Grammar-aware mutations of a session. Every choice comes from one seeded random
//! source, so a run is reproducible from `--seed`.
//!
//! The operators, by what they attack:
//! - commands: verb case, extra or missing spaces, a tab, extra parameters, arguments
//!   up to and over the line limits (RFC 5321 §4.5.3.1.4: 512 octets; RFC 4954 §4:
//!   12288 for AUTH);
//! - SASL: well-formed PLAIN/LOGIN messages with wrong passwords, PLAIN messages
//!   with broken structure (RFC 4616 §2), invalid base64, `=`, `*`, huge lines
//!   (RFC 4954 §4);
//! - line ends: bare LF, bare CR, CRCRLF, LFCR, none (RFC 5321 §2.3.8);
//! - pipelining: writes merged, AUTH inserted in the middle of a pipeline (RFC 2920,
//!   RFC 4954 §4);
//! - timing: writes cut into chunks with pauses, waits between writes.

use super::seeds::{Identity, auth_actions, plain_payload};
use super::session::{Action, Creds, Line, LineKind, Seg, Session, Split, concrete_all};
use authspec_reference::sasl::{Mechanism, RandomSource, SeededRandom};

/// The random source of a run.
pub struct Rng(SeededRandom);

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rng(..)")
    }
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(SeededRandom::from_seed(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % n as u64).unwrap_or(0)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// What the mutators need to know about the run.
#[derive(Debug)]
pub struct Ctx {
    pub id: Identity,
    /// Computed mechanisms the target offers.
    pub mechanisms: Vec<Mechanism>,
}

/// Total line lengths (CRLF included) around the limits: RFC 5321 §4.5.3.1.4 (512),
/// §4.5.3.1.6 (1000), RFC 4954 §4 (12288), and beyond.
const LENGTHS: &[usize] = &[
    510, 511, 512, 513, 998, 999, 1000, 1001, 1002, 4096, 12286, 12287, 12288, 12289, 12290, 20000,
];

const PARAMS: &[&str] = &[
    " SIZE=1000",
    " AUTH=<>",
    " AUTH=alice+40example.com",
    " AUTH=",
    " BODY=8BITMIME",
    " X-FUZZ=1",
    " =",
    " *",
    " PLAIN",
    "  ",
];

const COMMANDS: &[&str] = &[
    "NOOP",
    "RSET",
    "HELO fuzz.authspec.invalid",
    "EHLO fuzz.authspec.invalid",
    "MAIL FROM:<alice@example.com>",
    "MAIL FROM:<alice@example.com> AUTH=<>",
    "RCPT TO:<bob@example.net>",
    "VRFY alice",
    "HELP",
    "AUTH",
    "AUTH PLAIN",
    "AUTH LOGIN",
    "AUTH CRAM-MD5",
    "AUTH PLAIN =",
    "AUTH PLAIN *",
    "AUTH X-AUTHSPEC-UNKNOWN",
    "AUTH plain",
    "QUIT",
];

const BAD_BASE64: &[&str] = &[
    "!!!!",
    "YWxpY2U",
    "YWxp Y2U=",
    "====",
    "YW=xpY2U=",
    "A",
    "AAAA=",
    "YWxpY2U=\t",
    "-_-_",
];

const ENDINGS: &[&[u8]] = &[
    b"\n",
    b"\r",
    b"\r\r\n",
    b"\n\r",
    b"",
    b"\r\n\r\n",
    b"\r\n ",
    b"\r\0\n",
];

/// A password that is certainly not the right one, possibly built around it (`x` appended,
/// prepended, doubled), since broken comparisons (a prefix compared, a length ignored)
/// accept exactly those. Kept symbolic so a finding file does not spell it out.
fn wrong_password(rng: &mut Rng, right: &[u8]) -> Vec<Seg> {
    let random = |rng: &mut Rng, len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.below(36)])
            .collect()
    };
    for _ in 0..4 {
        let candidate = match rng.below(7) {
            0 => vec![],
            1 => vec![Seg::Password, Seg::lit("x")],
            2 => vec![Seg::lit("x"), Seg::Password],
            3 => vec![Seg::Password, Seg::Password],
            4 => vec![Seg::Password, Seg::lit(" ")],
            5 => {
                let n = right.len().max(1);
                vec![Seg::Lit(random(rng, n))]
            }
            _ => {
                let n = 1 + rng.below(24);
                vec![Seg::Lit(random(rng, n))]
            }
        };
        if concrete_all(&candidate, right) != right {
            return candidate;
        }
    }
    vec![Seg::lit("authspec-wrong-password")]
}

/// Applies one to four operators.
pub fn mutate(s: &mut Session, rng: &mut Rng, ctx: &Ctx, donor: Option<&Session>) {
    let n = 1 + rng.below(4);
    for _ in 0..n {
        let op = rng.below(100);
        match op {
            0..=11 => verb_case(s, rng),
            12..=19 => spaces(s, rng),
            20..=25 => params(s, rng),
            26..=31 => long_line(s, rng),
            32..=43 => sasl_payload(s, rng, ctx),
            44..=55 => wrong_credentials(s, rng, ctx),
            56..=65 => line_ending(s, rng),
            66..=71 => merge_writes(s, rng),
            72..=77 => auth_in_pipeline(s, rng, ctx),
            78..=83 => split_write(s, rng),
            84..=85 => {
                let at = rng.below(s.actions.len() + 1);
                let ms = *rng.pick(&[1u16, 10, 50]).unwrap_or(&1);
                s.actions.insert(at, Action::Wait { ms });
            }
            86..=89 => structural(s, rng),
            90..=95 => insert_command(s, rng),
            _ => splice(s, rng, donor, ctx),
        }
    }
}

/// Indexes (action, line) of lines that satisfy `f`.
fn lines_where(s: &Session, f: impl Fn(&Line) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (ai, a) in s.actions.iter().enumerate() {
        if let Action::Write { lines, .. } = a {
            for (li, l) in lines.iter().enumerate() {
                if f(l) {
                    out.push((ai, li));
                }
            }
        }
    }
    out
}

fn line_mut(s: &mut Session, at: (usize, usize)) -> Option<&mut Line> {
    match s.actions.get_mut(at.0) {
        Some(Action::Write { lines, .. }) => lines.get_mut(at.1),
        _ => None,
    }
}

/// The first literal of a command line, where the verb and often the arguments are.
fn first_lit(l: &mut Line) -> Option<&mut Vec<u8>> {
    match l.segs.first_mut() {
        Some(Seg::Lit(b)) if l.kind == LineKind::Command => Some(b),
        _ => None,
    }
}

/// RFC 5321 §2.4: verbs are case-insensitive; a server must accept any case.
fn verb_case(s: &mut Session, rng: &mut Rng) {
    let targets = lines_where(s, |l| l.verb().is_some_and(|v| !v.is_empty()));
    let Some(&at) = rng.pick(&targets) else {
        return;
    };
    let style = rng.below(3);
    let flips: Vec<bool> = (0..16).map(|_| rng.chance(50)).collect();
    if let Some(b) = line_mut(s, at).and_then(first_lit) {
        let end = b.iter().position(|c| *c == b' ').unwrap_or(b.len());
        for (i, c) in b[..end].iter_mut().enumerate() {
            *c = match style {
                0 => c.to_ascii_lowercase(),
                1 if flips.get(i % 16).copied().unwrap_or(false) => c.to_ascii_lowercase(),
                _ => c.to_ascii_uppercase(),
            };
        }
    }
}

fn spaces(s: &mut Session, rng: &mut Rng) {
    let targets = lines_where(s, |l| l.kind == LineKind::Command);
    let Some(&at) = rng.pick(&targets) else {
        return;
    };
    let how = rng.below(5);
    let Some(line) = line_mut(s, at) else { return };
    if how == 4 {
        // Trailing space, unless that would separate base64 holding the password
        // from its CRLF.
        if !line.pinned() {
            line.segs.push(Seg::lit(" "));
        }
        return;
    }
    let Some(b) = first_lit(line) else { return };
    let sp = b.iter().position(|c| *c == b' ');
    match (how, sp) {
        (0, Some(i)) => b.insert(i, b' '),
        (1, Some(i)) => {
            b.remove(i);
        }
        (2, Some(i)) => b[i] = b'\t',
        _ => b.insert(0, b' '),
    }
}

fn params(s: &mut Session, rng: &mut Rng) {
    let targets = lines_where(s, |l| {
        l.kind == LineKind::Command && !l.pinned() && matches!(l.segs.last(), Some(Seg::Lit(_)))
    });
    let Some(&at) = rng.pick(&targets) else {
        return;
    };
    let p = *rng.pick(PARAMS).unwrap_or(&" X=1");
    let times = 1 + rng.below(3);
    if let Some(Seg::Lit(b)) = line_mut(s, at).and_then(|l| l.segs.last_mut()) {
        for _ in 0..times {
            b.extend_from_slice(p.as_bytes());
        }
    }
}

/// A line of exactly one of [`LENGTHS`] octets: the verb kept, the argument filled.
fn long_line(s: &mut Session, rng: &mut Rng) {
    let targets = lines_where(s, |l| l.verb().is_some());
    let total = *rng.pick(LENGTHS).unwrap_or(&513);
    let (verb, at) = match rng.pick(&targets) {
        Some(&at) => {
            let v = line_mut(s, at).and_then(|l| l.verb()).unwrap_or_default();
            (v, Some(at))
        }
        None => (b"NOOP".to_vec(), None),
    };
    let is_auth = verb.eq_ignore_ascii_case(b"AUTH");
    let mut text = verb.clone();
    if is_auth {
        text.extend_from_slice(b" PLAIN ");
    } else if verb.eq_ignore_ascii_case(b"MAIL") {
        text.extend_from_slice(b" FROM:<");
    } else {
        text.push(b' ');
    }
    let fill = total.saturating_sub(text.len() + 2);
    // Base64 letters in an AUTH line, so the length is the only thing wrong.
    text.extend(std::iter::repeat_n(if is_auth { b'Q' } else { b'x' }, fill));
    let line = Line::command(text);
    match at.and_then(|at| line_mut(s, at)) {
        Some(l) => *l = line,
        None => {
            let at = rng.below(s.actions.len() + 1);
            s.actions.insert(at, Action::write(vec![line]));
        }
    }
}

/// Replaces a SASL message: with broken PLAIN structure, invalid base64, `=`, `*`, an
/// empty or a huge line; or garbles base64 that holds no password.
fn sasl_payload(s: &mut Session, rng: &mut Rng, ctx: &Ctx) {
    let targets = lines_where(s, |l| {
        l.kind == LineKind::Sasl || l.segs.iter().any(|g| matches!(g, Seg::B64(_)))
    });
    let Some(&at) = rng.pick(&targets) else {
        // No SASL line yet: start an exchange to mutate next time.
        let at = rng.below(s.actions.len() + 1);
        s.actions
            .insert(at, Action::write(vec![Line::command("AUTH PLAIN")]));
        return;
    };
    let user = ctx.id.user.clone();
    let choice = rng.below(9);
    let random_len = [9000usize, 12000, 12285, 20000][rng.below(4)];
    let Some(line) = line_mut(s, at) else { return };
    // The payload's position: the last segment (after `AUTH PLAIN ` or alone).
    let last = line.segs.len().saturating_sub(1);
    let (new, creds): (Seg, Creds) = match choice {
        0 => {
            // RFC 4616 §2 structure broken: an extra field, a missing NUL, another
            // authzid, an empty authcid, a trailing NUL. The password stays right, so
            // acceptance proves nothing about credentials: Unknown.
            let variants: [Vec<Seg>; 5] = [
                vec![
                    Seg::Lit(format!("\0{user}\0").into_bytes()),
                    Seg::Password,
                    Seg::lit("\0extra"),
                ],
                vec![Seg::Lit(user.clone().into_bytes()), Seg::Password],
                vec![
                    Seg::Lit(format!("bob\0{user}\0").into_bytes()),
                    Seg::Password,
                ],
                vec![Seg::lit("\0\0"), Seg::Password],
                vec![
                    Seg::Lit(format!("{user}\0{user}\0").into_bytes()),
                    Seg::Password,
                    Seg::lit("\0"),
                ],
            ];
            let v = variants[rng.below(variants.len())].clone();
            (Seg::B64(v), Creds::Unknown)
        }
        1 => (
            Seg::B64(plain_payload(&user, wrong_password(rng, &ctx.id.password))),
            Creds::Wrong,
        ),
        2 => (
            Seg::lit(*rng.pick(BAD_BASE64).unwrap_or(&"!!!!")),
            Creds::None,
        ),
        3 => (Seg::lit("="), Creds::None),
        4 => (Seg::lit("*"), Creds::None),
        5 => (Seg::lit(""), Creds::None),
        6 => {
            // Base64 of arbitrary octets, around and over RFC 4954 §4's 12288.
            let raw: Vec<u8> = (0..random_len * 3 / 4).map(|i| (i % 251) as u8).collect();
            (Seg::B64(vec![Seg::Lit(raw)]), Creds::None)
        }
        7 => (Seg::Lit(vec![b'A'; random_len]), Creds::None),
        _ => {
            // Garble base64 that holds no password (turning it into text would write
            // the secret into a finding).
            match line.segs.get(last) {
                Some(seg @ Seg::B64(_)) if !seg.has_password() => {
                    let mut b = Vec::new();
                    seg.concrete(&[], &mut b);
                    match choice % 4 {
                        0 => {
                            while b.last() == Some(&b'=') {
                                b.pop();
                            }
                        }
                        1 => b.insert(b.len() / 2, b' '),
                        2 => b.push(b'!'),
                        _ => {
                            b.pop();
                        }
                    }
                    let creds = if line.creds == Creds::None {
                        Creds::None
                    } else {
                        Creds::Unknown
                    };
                    (Seg::Lit(b), creds)
                }
                _ => (Seg::lit("*"), Creds::None),
            }
        }
    };
    if line.segs.is_empty() {
        line.segs.push(new);
    } else {
        line.segs[last] = new;
    }
    line.creds = creds;
    line.ending = b"\r\n".to_vec();
}

/// Every right password in the session replaced by one wrong password: a server that
/// still answers `235` has an authentication bypass (RFC 4954 §6).
fn wrong_credentials(s: &mut Session, rng: &mut Rng, ctx: &Ctx) {
    let wrong = wrong_password(rng, &ctx.id.password);
    fn swap(segs: &mut Vec<Seg>, wrong: &[Seg]) {
        let mut out = Vec::with_capacity(segs.len());
        for seg in segs.drain(..) {
            match seg {
                Seg::Password => out.extend(wrong.iter().cloned()),
                Seg::B64(mut inner) => {
                    swap(&mut inner, wrong);
                    out.push(Seg::B64(inner));
                }
                other => out.push(other),
            }
        }
        *segs = out;
    }
    let mut any = false;
    for a in &mut s.actions {
        match a {
            Action::Write { lines, .. } => {
                for l in lines {
                    if l.creds == Creds::Right {
                        // The wrong form still names the password symbolically, so
                        // mark before swapping.
                        swap(&mut l.segs, &wrong);
                        l.creds = Creds::Wrong;
                        any = true;
                    }
                }
            }
            Action::Auth {
                password, creds, ..
            } if *creds == Creds::Right => {
                swap(password, &wrong);
                *creds = Creds::Wrong;
                any = true;
            }
            _ => {}
        }
    }
    if !any {
        // Nothing to swap: add a PLAIN exchange with wrong credentials after EHLO.
        let at = 1.min(s.actions.len());
        let ir = rng.chance(50);
        for (i, a) in auth_actions(Mechanism::Plain, &ctx.id.user, wrong, Creds::Wrong, ir)
            .into_iter()
            .enumerate()
        {
            s.actions.insert(at + i, a);
        }
    }
}

fn line_ending(s: &mut Session, rng: &mut Rng) {
    let targets = lines_where(s, |l| !l.pinned());
    let Some(&at) = rng.pick(&targets) else {
        return;
    };
    let ending = rng.pick(ENDINGS).copied().unwrap_or(b"\n");
    if let Some(l) = line_mut(s, at) {
        l.ending = ending.to_vec();
        // Without an LF the line runs into the next one, and base64 with it.
        if !ending.contains(&b'\n') && l.creds != Creds::None {
            l.creds = Creds::Unknown;
        }
    }
}

/// Two neighbouring writes become one (RFC 2920 pipelining).
fn merge_writes(s: &mut Session, rng: &mut Rng) {
    let n = s.actions.len();
    if n < 2 {
        return;
    }
    let i = rng.below(n - 1);
    let both = matches!(
        (&s.actions[i], &s.actions[i + 1]),
        (Action::Write { .. }, Action::Write { .. })
    );
    if !both {
        return;
    }
    let next = s.actions.remove(i + 1);
    if let (Action::Write { lines, .. }, Action::Write { lines: more, .. }) =
        (&mut s.actions[i], next)
    {
        lines.extend(more);
    }
}

/// AUTH in the middle of a pipelined write: RFC 4954 §4 makes AUTH the end of a
/// pipeline; what follows it must be read as SASL responses or discarded, never as
/// commands run with the new identity.
fn auth_in_pipeline(s: &mut Session, rng: &mut Rng, ctx: &Ctx) {
    let user = ctx.id.user.clone();
    let auth = match rng.below(4) {
        0 => Line::command("AUTH PLAIN"),
        1 => Line::command("AUTH LOGIN"),
        2 => Line {
            segs: vec![
                Seg::lit("AUTH PLAIN "),
                Seg::B64(plain_payload(&user, wrong_password(rng, &ctx.id.password))),
            ],
            ending: b"\r\n".to_vec(),
            creds: Creds::Wrong,
            kind: LineKind::Command,
        },
        _ => Line {
            segs: vec![
                Seg::lit("AUTH PLAIN "),
                Seg::B64(plain_payload(&user, vec![Seg::Password])),
            ],
            ending: b"\r\n".to_vec(),
            creds: Creds::Right,
            kind: LineKind::Command,
        },
    };
    let writes: Vec<usize> = s
        .actions
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a, Action::Write { .. }))
        .map(|(i, _)| i)
        .collect();
    match rng.pick(&writes) {
        Some(&i) => {
            let pos = rng.below(2);
            if let Action::Write { lines, .. } = &mut s.actions[i] {
                let at = if pos == 0 { 0 } else { lines.len() };
                lines.insert(at, auth);
                lines.push(Line::command("NOOP"));
            }
        }
        None => s
            .actions
            .push(Action::write(vec![auth, Line::command("NOOP")])),
    }
}

fn split_write(s: &mut Session, rng: &mut Rng) {
    let writes: Vec<usize> = s
        .actions
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a, Action::Write { .. }))
        .map(|(i, _)| i)
        .collect();
    let Some(&i) = rng.pick(&writes) else { return };
    let every = *rng.pick(&[1usize, 2, 3, 7, 16, 64]).unwrap_or(&1);
    let pause_ms = *rng.pick(&[0u16, 0, 1, 5, 20]).unwrap_or(&0);
    if let Action::Write { split, .. } = &mut s.actions[i] {
        // `session::chunks` bounds the number of chunks.
        *split = Some(Split { every, pause_ms });
    }
}

fn structural(s: &mut Session, rng: &mut Rng) {
    let n = s.actions.len();
    if n == 0 {
        return;
    }
    let i = rng.below(n);
    match rng.below(3) {
        0 if n > 1 => {
            s.actions.remove(i);
        }
        1 => {
            let a = s.actions[i].clone();
            s.actions.insert(i, a);
        }
        _ if i + 1 < n => s.actions.swap(i, i + 1),
        _ => {}
    }
}

fn insert_command(s: &mut Session, rng: &mut Rng) {
    let text = *rng.pick(COMMANDS).unwrap_or(&"NOOP");
    let at = rng.below(s.actions.len() + 1);
    s.actions
        .insert(at, Action::write(vec![Line::command(text)]));
}

/// An action from another queued session, or a computed exchange the target offers.
fn splice(s: &mut Session, rng: &mut Rng, donor: Option<&Session>, ctx: &Ctx) {
    let at = rng.below(s.actions.len() + 1);
    if let Some(&m) = rng.pick(&ctx.mechanisms) {
        if rng.chance(50) {
            let pw = if rng.chance(50) {
                (vec![Seg::Password], Creds::Right)
            } else {
                (wrong_password(rng, &ctx.id.password), Creds::Wrong)
            };
            s.actions.insert(
                at,
                Action::Auth {
                    mechanism: m,
                    user: ctx.id.user.clone(),
                    password: pw.0,
                    creds: pw.1,
                },
            );
            return;
        }
    }
    if let Some(d) = donor {
        if let Some(a) = rng.pick(&d.actions) {
            s.actions.insert(at, a.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netfuzz::session::atoms;

    fn ctx() -> Ctx {
        Ctx {
            id: Identity {
                user: "alice".into(),
                password: b"wonderland".to_vec(),
            },
            mechanisms: vec![Mechanism::CramMd5],
        }
    }

    #[test]
    fn mutation_is_deterministic_and_never_leaks_or_mislabels() {
        let ctx = ctx();
        let base = Session {
            actions: {
                let mut v = vec![Action::write(vec![Line::command("EHLO x")])];
                v.extend(auth_actions(
                    Mechanism::Plain,
                    "alice",
                    vec![Seg::Password],
                    Creds::Right,
                    true,
                ));
                v
            },
            origin: "t".into(),
        };
        let run = |seed: u64| {
            let mut rng = Rng::new(seed);
            let mut s = base.clone();
            for _ in 0..50 {
                mutate(&mut s, &mut rng, &ctx, Some(&base));
            }
            s
        };
        assert_eq!(run(7), run(7));
        for seed in 0..200 {
            let s = run(seed);
            for a in &s.actions {
                if let Action::Write { lines, .. } = a {
                    let (_, leaky) = atoms(lines, b"wonderland");
                    assert!(!leaky, "seed {seed}: password base64 lost its CRLF");
                    for l in lines {
                        // A line labelled Wrong never carries the right password in a
                        // well-formed PLAIN message.
                        if l.creds == Creds::Wrong {
                            let wire = concrete_all(&l.segs, b"wonderland");
                            let right = authspec_reference::smtp::sasl_frame::encode_strict(
                                b"\0alice\0wonderland",
                            );
                            assert!(
                                super::super::session::find(&wire, right.as_bytes()).is_none(),
                                "seed {seed}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn wrong_password_is_never_the_right_one() {
        let mut rng = Rng::new(3);
        for _ in 0..500 {
            let w = wrong_password(&mut rng, b"pw");
            assert_ne!(concrete_all(&w, b"pw"), b"pw".to_vec());
        }
        // An empty right password: the empty form is excluded.
        for _ in 0..200 {
            let w = wrong_password(&mut rng, b"");
            assert!(!concrete_all(&w, b"").is_empty());
        }
    }
}
