//! What the fuzzer sends: a client session as a list of actions, each write a list of
//! lines, each line a list of segments that keep the password symbolic.
//!
//! Keeping the password symbolic ([`Seg::Password`]) instead of as bytes serves two
//! ends: a finding is written with `${password}` in its place (a finding file must not
//! carry the secret), and the fuzzer knows, without parsing its own output, whether the
//! credentials a line carries are the right ones ([`Creds`]), which is what judging a
//! `235` needs.

use authspec_reference::sasl::Mechanism;
use authspec_reference::smtp::sasl_frame;

/// Bounds on one session, so the queue's memory and a finding file's size stay small.
pub const MAX_ACTIONS: usize = 48;
pub const MAX_LINES_PER_WRITE: usize = 32;
/// Wire octets per session; a finding file escapes them at most 4× and must stay under
/// the loader's 1 MiB.
pub const MAX_SESSION_BYTES: usize = 128 * 1024;
/// Chunks one write may be split into.
pub const MAX_CHUNKS: usize = 256;
/// Chunks when there is a pause between them.
pub const MAX_PAUSED_CHUNKS: usize = 16;
/// Pauses in one write add up to about this many milliseconds at most.
pub const MAX_PAUSE_PER_WRITE_MS: usize = 60;

/// A piece of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Lit(Vec<u8>),
    /// The right password (the `password` variable).
    Password,
    /// Base64 (RFC 4648 §4, padded) of the inner segments, which are `Lit` and
    /// `Password` only: a SASL message on the wire (RFC 4954 §4).
    B64(Vec<Seg>),
}

impl Seg {
    pub fn lit(b: impl AsRef<[u8]>) -> Seg {
        Seg::Lit(b.as_ref().to_vec())
    }

    pub fn has_password(&self) -> bool {
        match self {
            Seg::Lit(_) => false,
            Seg::Password => true,
            Seg::B64(inner) => inner.iter().any(Seg::has_password),
        }
    }

    pub fn concrete(&self, password: &[u8], out: &mut Vec<u8>) {
        match self {
            Seg::Lit(b) => out.extend_from_slice(b),
            Seg::Password => out.extend_from_slice(password),
            Seg::B64(inner) => {
                let mut raw = Vec::new();
                for s in inner {
                    s.concrete(password, &mut raw);
                }
                out.extend_from_slice(sasl_frame::encode_strict(&raw).as_bytes());
            }
        }
    }
}

pub fn concrete_all(segs: &[Seg], password: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in segs {
        s.concrete(password, &mut out);
    }
    out
}

/// What a line says about credentials, for judging a `235` (RFC 4954 §6: a server
/// answers wrong credentials with `535`, never with `235`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creds {
    /// No password in the line.
    None,
    /// The right password, in a well-formed message.
    Right,
    /// A well-formed message whose password is certainly not the right one.
    Wrong,
    /// Could decode, leniently, to anything, the right password included.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// An SMTP command.
    Command,
    /// A response line in a SASL exchange (RFC 4954 §4).
    Sasl,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub segs: Vec<Seg>,
    /// CRLF unless mutated (RFC 5321 §2.3.8).
    pub ending: Vec<u8>,
    pub creds: Creds,
    pub kind: LineKind,
}

impl Line {
    pub fn command(text: impl AsRef<[u8]>) -> Line {
        Line {
            segs: vec![Seg::lit(text)],
            ending: b"\r\n".to_vec(),
            creds: Creds::None,
            kind: LineKind::Command,
        }
    }

    pub fn sasl(segs: Vec<Seg>, creds: Creds) -> Line {
        Line {
            segs,
            ending: b"\r\n".to_vec(),
            creds,
            kind: LineKind::Sasl,
        }
    }

    /// A line whose last segment is base64 holding the password can only be written to
    /// a finding file as a `sasl: { base64_of }` step, which ends in CRLF: mutators keep
    /// such a line's ending and leave its base64 alone.
    pub fn pinned(&self) -> bool {
        self.segs
            .iter()
            .any(|s| matches!(s, Seg::B64(_)) && s.has_password())
    }

    pub fn wire_len(&self, password: &[u8]) -> usize {
        concrete_all(&self.segs, password).len() + self.ending.len()
    }

    /// The verb: the first word of a command line's first literal.
    pub fn verb(&self) -> Option<Vec<u8>> {
        if self.kind != LineKind::Command {
            return None;
        }
        match self.segs.first() {
            Some(Seg::Lit(b)) => {
                let end = b.iter().position(|c| *c == b' ').unwrap_or(b.len());
                Some(b[..end].to_vec())
            }
            _ => None,
        }
    }
}

/// How a write is cut into pieces on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Octets per chunk of literal text.
    pub every: usize,
    /// Pause between chunks, in milliseconds.
    pub pause_ms: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Lines written at once (pipelined when there are several, RFC 2920), or in
    /// chunks; then the replies are read.
    Write {
        lines: Vec<Line>,
        split: Option<Split>,
    },
    /// A SASL exchange whose responses are computed from the server's challenges
    /// (CRAM-MD5, SCRAM, DIGEST-MD5); `password` is symbolic like a line.
    Auth {
        mechanism: Mechanism,
        user: String,
        password: Vec<Seg>,
        creds: Creds,
    },
    Wait {
        ms: u16,
    },
}

impl Action {
    pub fn write(lines: Vec<Line>) -> Action {
        Action::Write { lines, split: None }
    }

    pub fn wire_len(&self, password: &[u8]) -> usize {
        match self {
            Action::Write { lines, .. } => lines.iter().map(|l| l.wire_len(password)).sum(),
            Action::Auth { user, .. } => user.len() + 64,
            Action::Wait { .. } => 0,
        }
    }

    fn creds(&self) -> Vec<Creds> {
        match self {
            Action::Write { lines, .. } => lines.iter().map(|l| l.creds).collect(),
            Action::Auth { creds, .. } => vec![*creds],
            Action::Wait { .. } => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub actions: Vec<Action>,
    /// Where it came from: the seed's name.
    pub origin: String,
}

impl Session {
    pub fn wire_len(&self, password: &[u8]) -> usize {
        self.actions.iter().map(|a| a.wire_len(password)).sum()
    }

    pub fn within_bounds(&self, password: &[u8]) -> bool {
        self.actions.len() <= MAX_ACTIONS
            && self.wire_len(password) <= MAX_SESSION_BYTES
            && self.actions.iter().all(|a| match a {
                Action::Write { lines, .. } => lines.len() <= MAX_LINES_PER_WRITE,
                _ => true,
            })
    }

    /// Whether a `235` after the first `upto + 1` actions is a violation: credentials
    /// were sent, and every one of them was certainly wrong.
    pub fn only_wrong_creds(&self, upto: usize) -> bool {
        let mut wrong = false;
        for a in self.actions.iter().take(upto.saturating_add(1)) {
            for c in a.creds() {
                match c {
                    Creds::Right | Creds::Unknown => return false,
                    Creds::Wrong => wrong = true,
                    Creds::None => {}
                }
            }
        }
        wrong
    }
}

/// A write flattened to what goes on the wire, with the password still symbolic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Atom {
    Lit(Vec<u8>),
    Password,
    /// Base64 of the payload, then CRLF: a whole SASL line, kept whole so that a
    /// finding can write it as `sasl: { base64_of }`.
    SaslLine(Vec<Seg>),
}

impl Atom {
    pub fn concrete(&self, password: &[u8], out: &mut Vec<u8>) {
        match self {
            Atom::Lit(b) => out.extend_from_slice(b),
            Atom::Password => out.extend_from_slice(password),
            Atom::SaslLine(inner) => {
                Seg::B64(inner.clone()).concrete(password, out);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// The atoms of a write. `leaky` is set when base64 holding the password could not be
/// kept as a SASL line (the mutators avoid that); such a session is fuzzed but never
/// written to a file.
pub fn atoms(lines: &[Line], password: &[u8]) -> (Vec<Atom>, bool) {
    let mut out: Vec<Atom> = Vec::new();
    let mut leaky = false;
    let push_lit = |out: &mut Vec<Atom>, b: &[u8]| {
        if b.is_empty() {
            return;
        }
        if let Some(Atom::Lit(prev)) = out.last_mut() {
            prev.extend_from_slice(b);
        } else {
            out.push(Atom::Lit(b.to_vec()));
        }
    };
    for line in lines {
        let n = line.segs.len();
        let mut ending_done = false;
        for (i, seg) in line.segs.iter().enumerate() {
            match seg {
                Seg::Lit(b) => push_lit(&mut out, b),
                Seg::Password => out.push(Atom::Password),
                Seg::B64(inner) if seg.has_password() => {
                    if i + 1 == n && line.ending == b"\r\n" {
                        out.push(Atom::SaslLine(inner.clone()));
                        ending_done = true;
                    } else {
                        leaky = true;
                        let mut b = Vec::new();
                        seg.concrete(password, &mut b);
                        push_lit(&mut out, &b);
                    }
                }
                Seg::B64(_) => {
                    let mut b = Vec::new();
                    seg.concrete(password, &mut b);
                    push_lit(&mut out, &b);
                }
            }
        }
        if !ending_done {
            push_lit(&mut out, &line.ending);
        }
    }
    (out, leaky)
}

/// The chunks a write goes out in: literal text cut every `split.every` octets, the
/// password and SASL lines never cut. Both the fuzzer and the finding file use this, so
/// a finding replays the same chunks.
pub fn chunks(atoms: &[Atom], split: Option<Split>) -> Vec<Vec<Atom>> {
    let Some(split) = split else {
        return vec![atoms.to_vec()];
    };
    // Bounded in chunks, and more tightly when pausing, so a session's pauses add up
    // to well under a second.
    let literal: usize = atoms
        .iter()
        .map(|a| match a {
            Atom::Lit(b) => b.len(),
            _ => 0,
        })
        .sum();
    let max_chunks = if split.pause_ms > 0 {
        (MAX_PAUSE_PER_WRITE_MS / usize::from(split.pause_ms)).clamp(2, MAX_PAUSED_CHUNKS)
    } else {
        MAX_CHUNKS
    };
    let every = split.every.max(literal / max_chunks + 1);
    let mut out: Vec<Vec<Atom>> = Vec::new();
    let mut cur: Vec<Atom> = Vec::new();
    let mut room = every;
    for a in atoms {
        match a {
            Atom::Lit(b) => {
                let mut rest: &[u8] = b;
                while !rest.is_empty() {
                    let take = rest.len().min(room);
                    cur.push(Atom::Lit(rest[..take].to_vec()));
                    rest = &rest[take..];
                    room -= take;
                    if room == 0 {
                        out.push(std::mem::take(&mut cur));
                        room = every;
                    }
                }
            }
            other => {
                cur.push(other.clone());
                out.push(std::mem::take(&mut cur));
                room = every;
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Splits `text` around occurrences of the password into segments.
pub fn symbolic(text: &[u8], password: &[u8]) -> Vec<Seg> {
    if password.is_empty() {
        return vec![Seg::lit(text)];
    }
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(pos) = find(rest, password) {
        if pos > 0 {
            out.push(Seg::lit(&rest[..pos]));
        }
        out.push(Seg::Password);
        rest = &rest[pos + password.len()..];
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(Seg::lit(rest));
    }
    out
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Recognises the password in a concrete seed line: literally, as base64 of a message
/// holding it, or as the initial response of an AUTH command.
pub fn classify(text: &[u8], password: &[u8], kind: LineKind) -> Line {
    let has = |b: &[u8]| !password.is_empty() && find(b, password).is_some();
    let mut line = Line {
        segs: vec![Seg::lit(text)],
        ending: b"\r\n".to_vec(),
        creds: Creds::None,
        kind,
    };
    if let Ok(decoded) = sasl_frame::decode_strict(text) {
        if !text.is_empty() && has(&decoded) {
            line.segs = vec![Seg::B64(symbolic(&decoded, password))];
            line.creds = Creds::Right;
            line.kind = LineKind::Sasl;
            return line;
        }
    }
    // `AUTH <mechanism> <initial-response>` (RFC 4954 §4).
    let words: Vec<&[u8]> = text.splitn(3, |b| *b == b' ').collect();
    if let [verb, mech, ir] = words.as_slice() {
        if verb.eq_ignore_ascii_case(b"AUTH") {
            if let Ok(decoded) = sasl_frame::decode_strict(ir) {
                if has(&decoded) {
                    let mut prefix = verb.to_vec();
                    prefix.push(b' ');
                    prefix.extend_from_slice(mech);
                    prefix.push(b' ');
                    line.segs = vec![Seg::Lit(prefix), Seg::B64(symbolic(&decoded, password))];
                    line.creds = Creds::Right;
                    return line;
                }
            }
        }
    }
    if has(text) {
        line.segs = symbolic(text, password);
        line.creds = Creds::Right;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_finds_the_password_in_every_form() {
        let pw = b"wonderland";
        let plain = sasl_frame::encode_strict(b"\0alice\0wonderland");
        let l = classify(
            format!("AUTH PLAIN {plain}").as_bytes(),
            pw,
            LineKind::Command,
        );
        assert_eq!(l.creds, Creds::Right);
        assert!(l.pinned());
        assert_eq!(
            concrete_all(&l.segs, pw),
            format!("AUTH PLAIN {plain}").into_bytes()
        );
        let login = sasl_frame::encode_strict(pw);
        let l = classify(login.as_bytes(), pw, LineKind::Command);
        assert_eq!(l.kind, LineKind::Sasl);
        assert_eq!(l.segs, vec![Seg::B64(vec![Seg::Password])]);
        let l = classify(b"EHLO x", pw, LineKind::Command);
        assert_eq!(l.creds, Creds::None);
    }

    #[test]
    fn chunks_never_cut_the_password_or_a_sasl_line() {
        let line = Line::sasl(
            vec![Seg::B64(vec![Seg::lit("\0a\0"), Seg::Password])],
            Creds::Right,
        );
        let cmd = Line::command("AUTH PLAIN");
        let (a, leaky) = atoms(&[cmd, line], b"pw");
        assert!(!leaky);
        let c = chunks(
            &a,
            Some(Split {
                every: 3,
                pause_ms: 0,
            }),
        );
        let mut wire = Vec::new();
        for chunk in &c {
            for atom in chunk {
                atom.concrete(b"pw", &mut wire);
            }
        }
        let mut expected = b"AUTH PLAIN\r\n".to_vec();
        expected.extend_from_slice(sasl_frame::encode_strict(b"\0a\0pw").as_bytes());
        expected.extend_from_slice(b"\r\n");
        assert_eq!(wire, expected);
        assert!(
            c.iter()
                .any(|ch| matches!(ch.as_slice(), [Atom::SaslLine(_)]))
        );
    }
}
