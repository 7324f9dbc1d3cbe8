//! From a session's events to two scenarios: the client's side (replayed against a
//! server) and the server's side (replayed to judge a client).
//!
//! SASL exchanges of mechanisms authspec implements become `auth` / `expect_auth`
//! steps, so a replay computes fresh responses for fresh challenges (CRAM-MD5,
//! DIGEST-MD5 and SCRAM nonces differ every run, RFC 2195 §2, RFC 2831 §2.1.1,
//! RFC 5802 §5) and no client payload is ever written. Credentials become `${user}` and
//! `${password}`. Other mechanisms (NTLM, GSSAPI) are written as they went, and the
//! scenario is tagged `non-portable`.

use super::events::{ClientLine, Ending, Event};
use super::text::{Piece, Pieces, base64_cores, loosen_reply_text, printable};
use crate::scenario::{
    Auth, CapabilityCheck, Challenge, ChallengeOptions, Clause, CodeSpec, Expect, ExpectAuth,
    ExpectClientClose, ExpectClose, ExpectCommand, ExpectResponse, InitialResponse, Reply, Role,
    Sasl, ScenarioFile, Send, SendOptions, Starttls, Step,
};
use authspec_reference::sasl::{Mechanism, plain, scram};
use authspec_reference::smtp::reply::{self as smtp_reply, EnhancedCode, Separator};
use authspec_reference::smtp::sasl_frame;
use std::collections::{BTreeMap, VecDeque};

/// What the recording is allowed to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Also replace user names and host names (`--redact`).
    pub redact: bool,
}

/// Where and when a session was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// 1 for the proxy's first session.
    pub number: u64,
    /// `20250113T101500Z`: part of the file names and ids, so recordings from several
    /// runs can live in one folder.
    pub stamp: String,
    /// The client's address, as the proxy saw it.
    pub client: String,
    pub target: String,
}

impl SessionInfo {
    /// `20250113T101500Z-001`.
    pub fn name(&self) -> String {
        format!("{}-{:03}", self.stamp, self.number)
    }
}

/// The two scenarios of one session, with their notes (written as comments).
#[derive(Clone)]
pub struct Recording {
    pub client: Option<ScenarioFile>,
    pub server: Option<ScenarioFile>,
    pub client_notes: Vec<String>,
    pub server_notes: Vec<String>,
    /// Passwords and tokens seen in the session; never written, kept to check that
    /// no recorded file contains them in any form.
    pub secrets: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("client", &self.client.as_ref().map(|c| &c.id))
            .field("server", &self.server.as_ref().map(|s| &s.id))
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

/// A stand-in for the server's host name in replies a scripted server sends.
const SERVER_HOST_PLACEHOLDER: &str = "mx.example.net";
/// A stand-in for the client's EHLO name in lines a replaying client sends.
const CLIENT_HOST_PLACEHOLDER: &str = "client.example.com";
/// The password a replay uses where the recorded client failed with 535: the recorded
/// wrong password may be a near miss of the real one, so it is not kept.
const WRONG_PASSWORD: &str = "authspec-recorded-wrong-password";

/// One SASL exchange as it went. No `Debug`: the initial response may hold a password.
#[derive(Default)]
struct Exchange {
    mech_name: String,
    mechanism: Option<Mechanism>,
    /// The initial response as sent (base64 text), if any (RFC 4954 §4).
    ir: Option<Vec<u8>>,
    /// Each 334 with the client's answer (`None` when the session ended first).
    rounds: Vec<(smtp_reply::Reply, Vec<u8>, Option<ClientLine>)>,
    /// The final reply, and the octets it was.
    last: Option<(smtp_reply::Reply, Vec<u8>)>,
    cancelled: bool,
    /// The AUTH line did not have RFC 4954's shape: nothing after the verb is kept.
    malformed: bool,
    /// Notes met inside the exchange.
    notes: Vec<String>,
    /// Index of the first event after the exchange.
    next: usize,
}

/// The mechanism name and initial response of an AUTH line, when the line has
/// exactly RFC 4954 §4's shape: `AUTH` SP mechanism [SP initial-response], single
/// spaces, a valid mechanism name (RFC 4422 §3.1) and a response without spaces.
/// `None` for anything else (`AUTH  PLAIN <b64>` with two spaces, trailing words):
/// such a line is not parsed further, and what follows the verb is withheld.
fn split_auth(line: &[u8]) -> Option<(String, Option<Vec<u8>>)> {
    let mut parts = line.split(|b| *b == b' ');
    let _verb = parts.next()?;
    let mech = parts.next()?;
    let ir = parts.next();
    let valid_name = (1..=20).contains(&mech.len())
        && mech
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if !valid_name || parts.next().is_some() || ir.is_some_and(<[u8]>::is_empty) {
        return None;
    }
    Some((
        String::from_utf8_lossy(mech).into_owned(),
        ir.map(<[u8]>::to_vec),
    ))
}

/// What replaces a payload that cannot be proven free of secrets: the base64 of
/// `withheld`. A server answers it as it answered the original (an unrecognised
/// command, or a response it cannot use), and it holds nothing of the session.
const WITHHELD_PAYLOAD: &str = "d2l0aGhlbGQ=";

/// The SMTP verbs a client line in command position may start with (RFC 5321,
/// RFC 3207, RFC 4954, RFC 3030). After an AUTH exchange, a line that starts with none
/// of them is most likely a SASL response sent out of turn (after a 535 or a `*`).
const KNOWN_VERBS: &[&str] = &[
    "EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP",
    "STARTTLS", "AUTH", "BDAT", "LHLO", "ETRN", "TURN", "ATRN", "SEND", "SOML", "SAML",
];

/// Follows an AUTH command from event `start` to its final reply.
fn exchange(events: &[Event], start: usize) -> Exchange {
    let mut x = Exchange::default();
    let Some(Event::Client(line)) = events.get(start) else {
        return x;
    };
    match split_auth(&line.bytes) {
        Some((mech, ir)) => {
            x.mechanism = Mechanism::from_name(mech.as_bytes());
            x.mech_name = mech;
            x.ir = ir;
        }
        None => {
            x.malformed = true;
            x.mech_name = "AUTH".into();
        }
    }
    let mut i = start + 1;
    let mut pending: Option<(smtp_reply::Reply, Vec<u8>)> = None;
    while let Some(ev) = events.get(i) {
        match ev {
            Event::Note(n) => x.notes.push(n.clone()),
            Event::Server { reply, raw } if pending.is_none() && reply.code == 334 => {
                pending = Some((reply.clone(), raw.clone()));
            }
            Event::Server { reply, raw } if pending.is_none() => {
                x.last = Some((reply.clone(), raw.clone()));
                i += 1;
                break;
            }
            Event::Client(resp) if pending.is_some() => {
                if let Some((r, raw)) = pending.take() {
                    if resp.bytes == b"*" {
                        x.cancelled = true;
                    }
                    x.rounds.push((r, raw, Some(resp.clone())));
                }
            }
            _ => break,
        }
        i += 1;
    }
    if let Some((r, raw)) = pending {
        x.rounds.push((r, raw, None));
    }
    x.next = i;
    x
}

fn decode(text: &[u8]) -> Option<Vec<u8>> {
    if text == b"=" {
        return Some(Vec::new());
    }
    sasl_frame::decode_strict(text).ok()
}

/// The value after `key` up to `end` (or the end of the payload).
fn field<'a>(payload: &'a [u8], key: &[u8], end: u8) -> Option<&'a [u8]> {
    let at = payload.windows(key.len()).position(|w| w == key)?;
    let rest = &payload[at + key.len()..];
    let stop = rest.iter().position(|b| *b == end).unwrap_or(rest.len());
    Some(&rest[..stop])
}

/// What an exchange reveals: passwords and tokens (never to be written) and the
/// names used (replaced under `--redact`). No `Debug`: it holds passwords.
#[derive(Default)]
struct Learned {
    secrets: Vec<Vec<u8>>,
    users: Vec<Vec<u8>>,
    authzids: Vec<Vec<u8>>,
}

impl Learned {
    fn secret(&mut self, s: &[u8]) {
        if !s.is_empty() && !self.secrets.iter().any(|x| x == s) {
            self.secrets.push(s.to_vec());
        }
    }
    fn user(&mut self, s: &[u8]) {
        if !s.is_empty() && !self.users.iter().any(|x| x == s) {
            self.users.push(s.to_vec());
        }
    }

    fn learn(&mut self, x: &Exchange) {
        let mut payloads: Vec<(Option<Vec<u8>>, Vec<u8>)> = Vec::new();
        if let Some(ir) = &x.ir {
            if let Some(p) = decode(ir) {
                payloads.push((None, p));
            }
        }
        for (r, _, resp) in &x.rounds {
            let challenge = r
                .lines
                .first()
                .and_then(|l| sasl_frame::decode_challenge(&l.text).ok());
            if let Some(resp) = resp {
                if let Some(p) = decode(&resp.bytes) {
                    payloads.push((challenge, p));
                }
            }
        }
        match x.mechanism {
            Some(Mechanism::Plain) => {
                for (_, p) in &payloads {
                    match plain::parse(p) {
                        Ok(m) => {
                            self.secret(m.password.expose());
                            self.user(m.authcid.as_bytes());
                            if !m.authzid.is_empty() {
                                self.authzids.push(m.authzid.into_bytes());
                            }
                        }
                        // Not well-formed: everything after the last NUL may be the
                        // password, and the whole payload is kept out anyway.
                        Err(_) => {
                            let last = p.rsplit(|b| *b == 0).next().unwrap_or(p);
                            self.secret(last);
                        }
                    }
                }
            }
            Some(Mechanism::Login) => {
                // The draft's prompts name the field; without them the order does
                // (user name first).
                for (n, (challenge, p)) in payloads.iter().enumerate() {
                    let prompt = challenge
                        .as_deref()
                        .map(|c| String::from_utf8_lossy(c).to_ascii_lowercase())
                        .unwrap_or_default();
                    if prompt.contains("pass") || (n > 0 && !prompt.contains("user")) {
                        self.secret(p);
                    } else {
                        self.user(p);
                    }
                }
            }
            Some(Mechanism::XOAuth2 | Mechanism::OAuthBearer) => {
                for (_, p) in &payloads {
                    if let Some(auth) = field(p, b"auth=", 0x01) {
                        self.secret(auth);
                        if let Some(token) = auth.strip_prefix(b"Bearer ") {
                            self.secret(token);
                        }
                    }
                    if let Some(u) = field(p, b"user=", 0x01).or_else(|| field(p, b"a=", b',')) {
                        self.user(u);
                    }
                }
            }
            Some(Mechanism::CramMd5) => {
                for (_, p) in &payloads {
                    if let Some(sp) = p.iter().rposition(|b| *b == b' ') {
                        self.user(&p[..sp]);
                    }
                }
            }
            Some(Mechanism::ScramSha1 | Mechanism::ScramSha256) => {
                if let Some((_, p)) = payloads.first() {
                    if let Some(u) = field(p, b"n=", b',') {
                        // RFC 5802 §5.1: the wire form escapes `,` and `=`; the name
                        // itself (in MAIL FROM, in text) is the unescaped one, and
                        // both must be redacted.
                        self.user(u);
                        if let Ok(name) = scram::unescape_saslname(u) {
                            self.user(name.as_bytes());
                        }
                    }
                }
            }
            Some(Mechanism::DigestMd5) => {
                for (_, p) in &payloads {
                    if let Some(u) = field(p, b"username=\"", b'"') {
                        self.user(u);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Builds the text replacements that apply to everything recorded. No `Debug`: its
/// rules hold passwords.
#[derive(Default)]
struct Rewrites {
    /// (needle, replacement, whole word), longest needles first.
    rules: Vec<(Vec<u8>, Piece, bool)>,
    /// base64 forms of secrets: a line holding one is withheld.
    cores: Vec<String>,
}

impl Rewrites {
    fn new(learned: &Learned, hosts: &Hosts, redact: bool) -> Rewrites {
        let mut rules = Vec::new();
        for s in &learned.secrets {
            rules.push((s.clone(), Piece::Var("password"), false));
        }
        if redact {
            for u in &learned.users {
                rules.push((u.clone(), Piece::Var("user"), true));
            }
            for z in &learned.authzids {
                rules.push((z.clone(), Piece::Var("authzid"), true));
            }
            if let Some(h) = &hosts.server {
                rules.push((h.clone(), Piece::Placeholder(SERVER_HOST_PLACEHOLDER), true));
            }
            if let Some(h) = &hosts.client {
                rules.push((h.clone(), Piece::Placeholder(CLIENT_HOST_PLACEHOLDER), true));
            }
        }
        // Longest first, so a password that contains the user name is replaced whole.
        rules.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        let cores = learned
            .secrets
            .iter()
            .flat_map(|s| base64_cores(s))
            .collect();
        Rewrites { rules, cores }
    }

    fn apply(&self, mut p: Pieces) -> Pieces {
        for (needle, with, word) in &self.rules {
            p.replace(needle, with, *word);
        }
        p
    }

    fn bytes(&self, b: &[u8]) -> Pieces {
        self.apply(Pieces::literal(b))
    }

    /// Whether the literals still hold a secret's base64.
    fn leaks(&self, p: &Pieces) -> bool {
        p.0.iter().any(|piece| match piece {
            Piece::Lit(b) => {
                let s = String::from_utf8_lossy(b);
                self.cores.iter().any(|c| s.contains(c.as_str()))
            }
            _ => false,
        })
    }
}

/// Host names seen: the server's (greeting, EHLO reply) and the client's (EHLO).
#[derive(Debug, Default)]
struct Hosts {
    server: Option<Vec<u8>>,
    client: Option<Vec<u8>>,
}

fn first_word(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|c| *c == b' ').unwrap_or(b.len());
    &b[..end]
}

fn looks_like_host(b: &[u8]) -> bool {
    b.len() >= 3
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'[' | b']' | b':'))
}

fn learn_hosts(events: &[Event]) -> Hosts {
    let mut h = Hosts::default();
    for ev in events {
        match ev {
            Event::Server { reply, .. }
                if h.server.is_none() && matches!(reply.code, 220 | 250) =>
            {
                if let Some(l) = reply.lines.first() {
                    let w = first_word(&l.text);
                    if looks_like_host(w) && w.contains(&b'.') {
                        h.server = Some(w.to_vec());
                    }
                }
            }
            Event::Client(l) if h.client.is_none() => {
                let verb = l.verb();
                if matches!(verb.as_str(), "EHLO" | "HELO" | "LHLO") {
                    let arg = l.bytes.get(5..).map(first_word).unwrap_or_default();
                    if looks_like_host(arg) {
                        h.client = Some(arg.to_vec());
                    }
                }
            }
            _ => {}
        }
    }
    h
}

/// `250-`, `250 ` or `250`: what precedes a reply line's text.
fn reply_line_prefix(l: &smtp_reply::ReplyLine) -> Vec<u8> {
    let sep = match l.sep {
        Separator::Hyphen => "-",
        Separator::Space => " ",
        Separator::None => "",
    };
    format!("{}{sep}", l.code).into_bytes()
}

/// The steps of both roles, built side by side.
struct Builder<'a> {
    events: &'a [Event],
    rw: Rewrites,
    client: Vec<Step>,
    server: Vec<Step>,
    client_notes: Vec<String>,
    server_notes: Vec<String>,
    client_done: bool,
    server_done: bool,
    client_closed: bool,
    server_closed: bool,
    /// Verbs of commands whose reply has not come yet (RFC 2920 pipelining).
    waiting: VecDeque<String>,
    /// What the session did, for the title.
    summary: Vec<String>,
    mechanisms: Vec<String>,
    non_portable: Vec<String>,
    tags: Vec<String>,
    vars: BTreeMap<String, String>,
    starttls: bool,
    /// Why the server-role scenario ends before the session did, for its title.
    server_cut: Option<&'static str>,
    /// An AUTH command was seen: from then on a line that is not a command is
    /// treated as a SASL payload and withheld.
    auth_seen: bool,
}

impl Builder<'_> {
    fn note(&mut self, text: &str) {
        if !self.client_done {
            self.client_notes
                .push(format!("before step {}: {text}", self.client.len() + 1));
        }
        if !self.server_done {
            self.server_notes
                .push(format!("before step {}: {text}", self.server.len() + 1));
        }
    }

    fn client_step(&mut self, s: Step) {
        if !self.client_done {
            self.client.push(s);
        }
    }

    fn server_step(&mut self, s: Step) {
        if !self.server_done {
            self.server.push(s);
        }
    }

    fn end_server(&mut self, why: &str) {
        if !self.server_done {
            self.server_notes
                .push(format!("after step {}: {why}", self.server.len()));
            self.server_done = true;
        }
    }

    fn end_client(&mut self, why: &str) {
        if !self.client_done {
            self.client_notes
                .push(format!("after step {}: {why}", self.client.len()));
            self.client_done = true;
        }
    }

    fn summarize(&mut self, what: String) {
        if self.summary.last() != Some(&what) {
            self.summary.push(what);
        }
    }

    /// A client line, rewritten; `None` when it had to be withheld.
    fn line_pieces(&mut self, line: &ClientLine) -> Option<Pieces> {
        let p = self.rw.bytes(&line.bytes);
        if self.rw.leaks(&p) {
            self.note("a client line held the base64 of a secret and was withheld");
            self.non_portable
                .push("a line holding a secret was withheld".into());
            return None;
        }
        Some(p)
    }

    fn send_step(p: &Pieces, ending: Ending) -> Step {
        if ending == Ending::Crlf && p.is_plain_text() {
            return Step::Send(Send::Line(p.plain()));
        }
        let mut line = p.raw();
        line.push_str(&crate::scenario::display_bytes(ending.bytes()));
        Step::Send(Send::Options(SendOptions {
            line,
            raw: true,
            crlf: None,
        }))
    }

    /// What the client role checks about a reply. `answering` is the verb of the
    /// command it answers.
    fn expect_for(&self, r: &smtp_reply::Reply, answering: Option<&str>) -> Expect {
        let mut e = Expect::code(r.code);
        if r.is_bare_334() {
            e.bare_334 = Some(true);
            return e;
        }
        if matches!(answering, Some("EHLO" | "LHLO")) && r.code == 250 {
            if let Ok(caps) = smtp_reply::parse_ehlo(r) {
                for c in &caps.keywords {
                    let check = if c.keyword.eq_ignore_ascii_case("AUTH") {
                        CapabilityCheck::With(c.params.clone())
                    } else {
                        CapabilityCheck::Present
                    };
                    e.capability.insert(c.keyword.to_ascii_uppercase(), check);
                }
                if !e.capability.is_empty() {
                    return e;
                }
            }
        }
        let Some(line) = r.lines.last() else {
            return e;
        };
        if let Some((code, _)) = EnhancedCode::parse_prefix(&line.text) {
            e.enhanced = Some(code.to_string());
        }
        // The first line names a multi-line reply best (a greeting's host, a help
        // topic); a single line is both.
        let text_line = r.lines.first().unwrap_or(line);
        let text = self.rw.apply(loosen_reply_text(&text_line.text)).pattern();
        let trivial = text.is_empty()
            || text == "*"
            || e.enhanced
                .as_ref()
                .is_some_and(|c| text == *c || text == format!("{c} *"));
        if !trivial {
            e.text = Some(text);
        }
        e
    }

    /// The reply as a scripted server sends it.
    fn reply_step(&self, r: &smtp_reply::Reply, raw: &[u8]) -> Step {
        let clean = r.deviations.is_empty()
            && raw.ends_with(b"\r\n")
            && r.lines
                .iter()
                .all(|l| self.rw.bytes(&l.text).is_plain_text());
        if clean {
            let lines: Vec<String> = r
                .lines
                .iter()
                .map(|l| {
                    let mut p = Pieces::literal(&reply_line_prefix(l));
                    p.0.extend(self.rw.bytes(&l.text).0);
                    p.plain()
                })
                .collect();
            return Step::Reply(Reply::Text(lines.join("\n")));
        }
        Step::Send(Send::Options(SendOptions {
            line: self.rw.bytes(raw).raw(),
            raw: true,
            crlf: None,
        }))
    }

    fn run(&mut self) {
        let events = self.events;
        let mut i = 0;
        while i < events.len() && !(self.client_done && self.server_done) {
            match &events[i] {
                Event::Client(line) => {
                    let verb = line.verb();
                    match verb.as_str() {
                        "AUTH" => {
                            i = self.auth(i);
                            continue;
                        }
                        "STARTTLS" => {
                            i = self.starttls(i);
                            continue;
                        }
                        _ => self.command(line, &verb),
                    }
                }
                Event::Body(lines) => self.body(lines),
                Event::Chunk(bytes) => {
                    let p = self.rw.bytes(bytes);
                    self.client_step(Step::Send(Send::Options(SendOptions {
                        line: p.raw(),
                        raw: true,
                        crlf: None,
                    })));
                    if !self.server_done {
                        self.server_cut = Some("stops at BDAT");
                    }
                    self.end_server(
                        "a BDAT chunk (RFC 3030) cannot be judged by a scripted server; \
                         the server-role recording ends here",
                    );
                }
                Event::Server { reply, raw } => {
                    let answering = self.waiting.pop_front();
                    let e = self.expect_for(reply, answering.as_deref());
                    self.client_step(Step::Expect(e));
                    let s = self.reply_step(reply, raw);
                    self.server_step(s);
                }
                Event::Tls => {}
                Event::TlsPassthrough => {
                    self.end_client("the recording ends at STARTTLS");
                    self.end_server("the recording ends at STARTTLS");
                }
                Event::Note(n) => {
                    let n = n.clone();
                    self.note(&n);
                    if n.starts_with("recording stopped") {
                        self.tags.push("truncated".into());
                    }
                }
                Event::ClientClosed => {
                    if !self.server_closed {
                        self.server_step(Step::ExpectClientClose(ExpectClientClose::default()));
                    }
                    self.client_closed = true;
                }
                Event::ServerClosed => {
                    if !self.client_closed {
                        self.client_step(Step::ExpectClose(ExpectClose::default()));
                    }
                    self.server_closed = true;
                }
            }
            i += 1;
        }
    }

    fn command(&mut self, line: &ClientLine, verb: &str) {
        if self.auth_seen && !KNOWN_VERBS.contains(&verb) {
            // A password sent after the 535 or the `*` that ended the exchange looks
            // like any unknown command; nothing proves it is not a secret.
            self.note("a line that is not an SMTP command, sent after AUTH, was withheld as a possible SASL payload");
            self.waiting.push_back(verb.to_string());
            self.client_step(Step::Send(Send::Line(WITHHELD_PAYLOAD.into())));
            self.server_step(Step::ExpectCommand(ExpectCommand {
                line: Some("*".into()),
                ..ExpectCommand::default()
            }));
            return;
        }
        if !verb.is_empty() && verb.len() <= 8 && verb.bytes().all(|b| b.is_ascii_alphabetic()) {
            self.summarize(verb.to_string());
        }
        self.waiting.push_back(verb.to_string());
        let Some(p) = self.line_pieces(line) else {
            self.client_step(Step::Send(Send::Line("NOOP withheld-line".into())));
            self.server_step(Step::ExpectCommand(ExpectCommand {
                line: Some("*".into()),
                ..ExpectCommand::default()
            }));
            return;
        };
        self.client_step(Self::send_step(&p, line.ending));
        if line.ending == Ending::None {
            self.note("the client's last line had no line end");
            return;
        }
        self.server_step(Step::ExpectCommand(ExpectCommand {
            line: Some(p.pattern()),
            ..ExpectCommand::default()
        }));
    }

    fn body(&mut self, lines: &[ClientLine]) {
        let mut raw = String::new();
        for l in lines {
            raw.push_str(&self.rw.bytes(&l.bytes).raw());
            raw.push_str(&crate::scenario::display_bytes(l.ending.bytes()));
        }
        if !raw.is_empty() {
            self.client_step(Step::Send(Send::Options(SendOptions {
                line: raw,
                raw: true,
                crlf: None,
            })));
        }
        for l in lines {
            if l.ending == Ending::None {
                continue;
            }
            // Headers and text with dates, ids and counters differ per message.
            let pattern = self.rw.apply(loosen_reply_text(&l.bytes)).pattern();
            self.server_step(Step::ExpectCommand(ExpectCommand {
                line: Some(pattern),
                ..ExpectCommand::default()
            }));
        }
        if lines.last().is_some_and(|l| l.bytes == b".") {
            self.waiting.push_back(".".into());
        }
    }

    /// STARTTLS and its reply, with what came of it. Returns the next event index.
    fn starttls(&mut self, i: usize) -> usize {
        self.summarize("STARTTLS".into());
        self.starttls = true;
        let mut j = i + 1;
        let mut notes = Vec::new();
        while let Some(Event::Note(n)) = self.events.get(j) {
            notes.push(n.clone());
            j += 1;
        }
        self.server_step(Step::ExpectCommand(ExpectCommand {
            verb: Some("STARTTLS".into()),
            ..ExpectCommand::default()
        }));
        let Some(Event::Server { reply, raw }) = self.events.get(j) else {
            self.client_step(Step::Send(Send::Line("STARTTLS".into())));
            for n in &notes {
                self.note(n);
            }
            return j;
        };
        if reply.code != 220 {
            let e = self.expect_for(reply, Some("STARTTLS"));
            self.client_step(Step::Starttls(Starttls {
                expect: Some(e),
                handshake: false,
            }));
            let s = self.reply_step(reply, raw);
            self.server_step(s);
            for n in &notes {
                self.note(n);
            }
            return j + 1;
        }
        self.client_step(Step::Starttls(Starttls::default()));
        let mut k = j + 1;
        while let Some(Event::Note(n)) = self.events.get(k) {
            notes.push(n.clone());
            k += 1;
        }
        for n in &notes {
            self.note(n);
            if n.starts_with("interception failed") {
                self.tags.push("interception-failed".into());
            }
        }
        self.server_cut = Some("stops at STARTTLS: a scripted server cannot play TLS");
        self.end_server(
            "the client started TLS (RFC 3207); a scripted server cannot play TLS, so the \
             server-role recording ends here",
        );
        match self.events.get(k) {
            Some(Event::Tls) => k + 1,
            Some(Event::TlsPassthrough) => {
                self.tags.push("tls-passthrough".into());
                self.end_client("STARTTLS was let through untouched; the recording ends here");
                k + 1
            }
            _ => {
                self.end_client("TLS was not set up; the recording ends here");
                k
            }
        }
    }

    /// An AUTH exchange. Returns the next event index.
    fn auth(&mut self, i: usize) -> usize {
        self.auth_seen = true;
        let x = exchange(self.events, i);
        let next = x.next.max(i + 1);
        let outcome = x
            .last
            .as_ref()
            .map(|(r, _)| r.code.to_string())
            .unwrap_or_else(|| "unfinished".into());
        self.summarize(format!(
            "AUTH {} ({outcome})",
            printable(&x.mech_name.to_ascii_uppercase(), 24)
        ));
        for n in &x.notes {
            self.note(n);
        }
        match x.mechanism {
            Some(m) => {
                if !self.mechanisms.contains(&m.name().to_string()) {
                    self.mechanisms.push(m.name().to_string());
                }
                self.known_auth(m, &x);
            }
            None => self.raw_auth(&x, i),
        }
        next
    }

    fn known_auth(&mut self, m: Mechanism, x: &Exchange) {
        let Some((last, last_raw)) = &x.last else {
            self.note("the SASL exchange did not finish; the recording ends here");
            self.end_client("unfinished SASL exchange");
            self.end_server("unfinished SASL exchange");
            return;
        };
        let expect = self.expect_for(last, Some("AUTH"));
        let succeeded = last.code == 235;
        // RFC 4954 §4: 535 means the credentials were checked and refused. Other
        // failures (504, 534, 538, 454) do not depend on the password.
        let refused = last.code == 535 && (x.ir.is_some() || !x.rounds.is_empty());
        let token_mech = matches!(m, Mechanism::XOAuth2 | Mechanism::OAuthBearer);
        let password = if refused {
            self.vars
                .insert("wrong_password".into(), WRONG_PASSWORD.into());
            "${wrong_password}"
        } else {
            "${password}"
        };
        if x.cancelled {
            // The client gave up: what it sent before is a payload, not written.
            self.note("the client cancelled the exchange with `*`; its earlier responses are not recorded");
            self.client_step(Step::Send(Send::Line(format!("AUTH {}", m.name()))));
            self.client_step(Step::Expect(Expect::code(334)));
            self.client_step(Step::Sasl(Sasl {
                cancel: true,
                ..Sasl::default()
            }));
            self.client_step(Step::Expect(expect));
        } else if m == Mechanism::Login && x.ir.is_some() {
            // LOGIN with the user name on the AUTH line, as smtplib does. `auth`
            // sends LOGIN without it, so the exchange is written out with variables.
            self.client_step(Step::Send(Send::Line("AUTH LOGIN ${user|base64}".into())));
            self.client_step(Step::Expect(Expect::code(334)));
            self.client_step(Step::Sasl(Sasl {
                base64_of: Some(password.into()),
                ..Sasl::default()
            }));
            self.client_step(Step::Expect(expect));
        } else {
            let authzid = if m == Mechanism::Plain {
                self.plain_authzid(x)
            } else {
                None
            };
            let (user, pw, token) = match m {
                Mechanism::Anonymous | Mechanism::External => (None, None, None),
                _ if token_mech => (
                    Some("${user}".to_string()),
                    None,
                    Some(
                        if refused {
                            "${wrong_token}"
                        } else {
                            "${token}"
                        }
                        .to_string(),
                    ),
                ),
                _ => (
                    Some("${user}".to_string()),
                    Some(password.to_string()),
                    None,
                ),
            };
            if refused && token_mech {
                self.vars
                    .insert("wrong_token".into(), "authspec-recorded-wrong-token".into());
                self.vars.remove("wrong_password");
            }
            self.client_step(Step::Auth(Auth {
                mechanism: m.name().to_string(),
                user,
                password: pw,
                authzid,
                token,
                initial_response: if x.ir.is_some() {
                    InitialResponse::Always
                } else {
                    InitialResponse::Never
                },
                expect: Some(expect),
                channel_binding: None,
            }));
        }
        if succeeded && !x.cancelled {
            let (user, password) =
                if matches!(m, Mechanism::Anonymous | Mechanism::External) || token_mech {
                    (None, None)
                } else {
                    (Some("${user}".to_string()), Some("${password}".to_string()))
                };
            let reply = match self.reply_step(last, last_raw) {
                Step::Reply(r) => Some(r),
                _ => None,
            };
            self.server_step(Step::ExpectAuth(ExpectAuth {
                mechanism: m.name().to_string(),
                user,
                password,
                authzid: None,
                reply,
                level: None,
                quote: None,
            }));
        } else {
            self.server_rounds(x, Some(m.name()));
        }
    }

    /// The authzid a PLAIN client sent, if any, as the file writes it.
    fn plain_authzid(&self, x: &Exchange) -> Option<String> {
        let payload =
            x.ir.as_deref()
                .or_else(|| {
                    x.rounds
                        .first()
                        .and_then(|(_, _, r)| r.as_ref().map(|r| &r.bytes[..]))
                })
                .and_then(decode)?;
        let m = plain::parse(&payload).ok()?;
        let p = self.rw.bytes(m.authzid.as_bytes());
        // An authzid with control characters cannot be written as plain text; the
        // replay then authenticates without one.
        (!m.authzid.is_empty() && p.is_plain_text()).then(|| p.plain())
    }

    /// The server's side of an exchange that is not replayed by `expect_auth`: the
    /// AUTH command, the recorded challenges, any response, the final reply.
    fn server_rounds(&mut self, x: &Exchange, mech: Option<&str>) {
        let valid_name = |n: &str| {
            (1..=20).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        };
        let name = mech
            .map(str::to_string)
            .unwrap_or_else(|| x.mech_name.clone());
        let cmd = if valid_name(&name) {
            ExpectCommand {
                auth_mechanism: Some(name),
                ..ExpectCommand::default()
            }
        } else {
            ExpectCommand {
                verb: Some("AUTH".into()),
                args: Some(format!(
                    "{}*",
                    Pieces::literal(x.mech_name.as_bytes()).pattern()
                )),
                ..ExpectCommand::default()
            }
        };
        self.server_step(Step::ExpectCommand(cmd));
        for (r, raw, resp) in &x.rounds {
            let text = r
                .lines
                .first()
                .map(|l| String::from_utf8_lossy(&l.text).into_owned())
                .unwrap_or_default();
            let challenge = if r.is_bare_334() {
                Challenge::Options(ChallengeOptions {
                    bare: true,
                    ..ChallengeOptions::default()
                })
            } else if text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            {
                Challenge::Base64(text.replace('$', "$$"))
            } else {
                // Not base64: send the line as it was.
                let s = self.reply_step(r, raw);
                self.server_step(s);
                self.server_resp(resp.as_ref());
                continue;
            };
            self.server_step(Step::Challenge(challenge));
            self.server_resp(resp.as_ref());
        }
        if let Some((last, raw)) = &x.last {
            let s = self.reply_step(last, raw);
            self.server_step(s);
        }
    }

    fn server_resp(&mut self, resp: Option<&ClientLine>) {
        match resp {
            Some(r) if r.bytes == b"*" => self.server_step(Step::ExpectResponse(ExpectResponse {
                cancel: true,
                ..ExpectResponse::default()
            })),
            Some(_) => self.server_step(Step::ExpectResponse(ExpectResponse {
                base64: Some("*".into()),
                ..ExpectResponse::default()
            })),
            None => {}
        }
    }

    /// A mechanism authspec does not implement, or an AUTH line it cannot parse: the
    /// exchange as it went, with every payload withheld. authspec cannot tell which
    /// part of an unknown mechanism's messages derives from the password (NTLM's
    /// responses do), so none is written.
    fn raw_auth(&mut self, x: &Exchange, _i: usize) {
        let name = printable(&x.mech_name.to_ascii_uppercase(), 24);
        if x.malformed {
            self.non_portable.push(
                "an AUTH line without RFC 4954's shape was replaced; its arguments are withheld"
                    .into(),
            );
            self.client_step(Step::Send(Send::Line(format!("AUTH {WITHHELD_PAYLOAD}"))));
        } else {
            self.non_portable.push(format!(
                "{name} is not implemented by authspec; its exchange is replayed with every payload withheld"
            ));
            let line = match &x.ir {
                Some(_) => format!("AUTH {name} {WITHHELD_PAYLOAD}"),
                None => format!("AUTH {name}"),
            };
            self.client_step(Step::Send(Send::Line(line)));
        }
        for (r, _, resp) in &x.rounds {
            let e = self.expect_for(r, Some("AUTH"));
            self.client_step(Step::Expect(Expect {
                code: Some(CodeSpec::Exact(334)),
                bare_334: e.bare_334,
                ..Expect::default()
            }));
            match resp {
                Some(r) if r.bytes == b"*" => self.client_step(Step::Sasl(Sasl {
                    cancel: true,
                    ..Sasl::default()
                })),
                Some(_) => self.client_step(Step::Sasl(Sasl {
                    send: Some(WITHHELD_PAYLOAD.into()),
                    ..Sasl::default()
                })),
                None => {}
            }
        }
        match &x.last {
            Some((last, _)) => {
                let e = self.expect_for(last, Some("AUTH"));
                self.client_step(Step::Expect(e));
            }
            None => self.note("the SASL exchange did not finish"),
        }
        self.server_rounds(x, None);
    }

    fn title(&self, role: Role) -> String {
        let mut what: Vec<String> = self.summary.iter().take(10).cloned().collect();
        if self.summary.len() > 10 {
            what.push("…".into());
        }
        let side = match role {
            Role::Client => "the client's side, replayed against a server",
            Role::Server => "the server's side, replayed to judge a client",
        };
        let mut t = format!("Recorded session: {} ({side})", what.join(", "));
        if !self.non_portable.is_empty() {
            t.push_str(&format!(
                " [non-portable: {}]",
                self.non_portable.join("; ")
            ));
        }
        t
    }
}

/// Builds both scenarios of a session.
pub fn build(events: &[Event], info: &SessionInfo, opts: &Options) -> Recording {
    let mut learned = Learned::default();
    let mut i = 0;
    while i < events.len() {
        if let Event::Client(l) = &events[i] {
            if l.verb() == "AUTH" {
                let x = exchange(events, i);
                learned.learn(&x);
                i = x.next.max(i + 1);
                continue;
            }
        }
        i += 1;
    }
    let hosts = learn_hosts(events);
    let mut b = Builder {
        events,
        rw: Rewrites::new(&learned, &hosts, opts.redact),
        client: Vec::new(),
        server: Vec::new(),
        client_notes: Vec::new(),
        server_notes: Vec::new(),
        client_done: false,
        server_done: false,
        client_closed: false,
        server_closed: false,
        waiting: VecDeque::new(),
        summary: Vec::new(),
        mechanisms: Vec::new(),
        non_portable: Vec::new(),
        tags: Vec::new(),
        vars: BTreeMap::new(),
        starttls: false,
        server_cut: None,
        auth_seen: false,
    };
    b.run();
    if opts.redact && !learned.authzids.is_empty() {
        b.client_notes.push(
            "--redact: the authorization identity is `${authzid}`; supply it with --var".into(),
        );
    }
    let mut spec: Vec<Clause> = Vec::new();
    let clause = |s: &str| s.parse::<Clause>().ok();
    if !b.mechanisms.is_empty() || !b.non_portable.is_empty() {
        spec.extend(clause("RFC4954 §4"));
    }
    if b.starttls {
        spec.extend(clause("RFC3207 §4"));
    }
    if spec.is_empty() {
        spec.extend(clause("RFC5321 §4.1"));
    }
    let mut tags = vec!["recorded".to_string()];
    tags.extend(b.mechanisms.iter().map(|m| m.to_ascii_lowercase()));
    if b.starttls {
        tags.push("starttls".into());
    }
    if !b.non_portable.is_empty() {
        tags.push("non-portable".into());
    }
    for t in &b.tags {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    let client_steps = std::mem::take(&mut b.client);
    let server_steps = std::mem::take(&mut b.server);
    let file = |role: Role, steps: Vec<Step>| -> Option<ScenarioFile> {
        if steps.is_empty() {
            return None;
        }
        let suffix = match role {
            Role::Client => "client",
            Role::Server => "server",
        };
        Some(ScenarioFile {
            id: format!("recorded/{}-{suffix}", info.name()),
            title: b.title(role),
            spec: spec.clone(),
            tags: tags.clone(),
            requires: Default::default(),
            level: None,
            quote: None,
            profile: BTreeMap::new(),
            role,
            // Only the client role replays a refused exchange with a wrong password.
            vars: if role == Role::Client {
                b.vars.clone()
            } else {
                BTreeMap::new()
            },
            for_each_mechanism: Vec::new(),
            steps: Some(steps),
            transcript: None,
        })
    };
    let client = file(Role::Client, client_steps);
    let server = file(Role::Server, server_steps);
    let mut client_notes = std::mem::take(&mut b.client_notes);
    let mut server_notes = std::mem::take(&mut b.server_notes);
    for np in &b.non_portable {
        client_notes.push(format!("non-portable: {np}"));
        server_notes.push(format!("non-portable: {np}"));
    }
    Recording {
        client,
        server,
        client_notes,
        server_notes,
        secrets: learned.secrets,
    }
}

/// The YAML text of a recorded scenario: a comment header (how it was recorded, how
/// to replay it, the notes), then the scenario.
pub fn render(
    file: &ScenarioFile,
    info: &SessionInfo,
    notes: &[String],
    redact: bool,
) -> Result<String, String> {
    let yaml = serde_yaml::to_string(file).map_err(|e| e.to_string())?;
    let mut out = String::new();
    let mut comment = |s: &str| {
        out.push_str("# ");
        out.push_str(&printable(s, 4000));
        out.push('\n');
    };
    comment(&format!(
        "Recorded by `authspec record`, session {} ({}).",
        info.number, info.stamp
    ));
    if !redact {
        comment(&format!(
            "Client {} -> target {}.",
            info.client, info.target
        ));
    }
    match file.role {
        Role::Client => comment(
            "Replay: authspec run THIS_FILE --target HOST:PORT --var user=USER --var password-env=VAR",
        ),
        Role::Server => comment(
            "Replay: authspec run THIS_FILE --client-command 'CLIENT {host} {port}' --var user=USER --var password-env=VAR",
        ),
    }
    if !notes.is_empty() {
        comment("Notes:");
        for n in notes {
            comment(&format!("- {n}"));
        }
    }
    out.push_str(&yaml);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::events::{Limits, Recorder};
    use base64::Engine as _;

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    /// Plays a dialog through a recorder: `C:` lines from the client, `S:` from the
    /// server (each with CRLF unless it ends in `\n` already).
    fn record(script: &[(&str, &[u8])]) -> Vec<Event> {
        let mut r = Recorder::new(Limits::default(), true);
        for (who, bytes) in script {
            let mut b = bytes.to_vec();
            if !b.ends_with(b"\n") {
                b.extend_from_slice(b"\r\n");
            }
            match *who {
                "C" => {
                    r.client_data(&b);
                }
                "S" => {
                    r.server_data(&b);
                }
                _ => unreachable!(),
            }
        }
        r.server_closed();
        r.finish()
    }

    fn info() -> SessionInfo {
        SessionInfo {
            number: 7,
            stamp: "20250113T101500Z".into(),
            client: "127.0.0.1:5000".into(),
            target: "127.0.0.1:25".into(),
        }
    }

    fn yaml(rec: &Recording, role: Role, redact: bool) -> String {
        let (file, notes) = match role {
            Role::Client => (rec.client.as_ref().unwrap(), &rec.client_notes),
            Role::Server => (rec.server.as_ref().unwrap(), &rec.server_notes),
        };
        let text = render(file, &info(), notes, redact).unwrap();
        let sc = crate::scenario::load_str(&text, "recorded.yaml")
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(sc.role, role);
        text
    }

    fn assert_no_secret(text: &str, secrets: &[&[u8]]) {
        for s in secrets {
            for form in crate::record::text::secret_forms(s) {
                assert!(!text.contains(&form), "{form:?} in\n{text}");
            }
        }
    }

    fn greeting_and_ehlo() -> Vec<(&'static str, &'static [u8])> {
        vec![
            ("S", b"220 mx.example.org ESMTP ready"),
            ("C", b"EHLO client.example.com"),
            (
                "S",
                b"250-mx.example.org\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN CRAM-MD5 NTLM\r\n",
            ),
        ]
    }

    #[test]
    fn plain_with_initial_response_becomes_auth_and_expect_auth() {
        let ir = format!("AUTH PLAIN {}", b64(b"\0alice\0wonderland"));
        let mut s = greeting_and_ehlo();
        s.push(("C", ir.as_bytes()));
        s.push(("S", b"235 2.7.0 Authentication successful"));
        s.push(("C", b"QUIT"));
        s.push(("S", b"221 2.0.0 Bye"));
        let rec = build(&record(&s), &info(), &Options::default());
        assert_eq!(rec.secrets, vec![b"wonderland".to_vec()]);
        let c = yaml(&rec, Role::Client, false);
        assert!(c.contains("mechanism: PLAIN"), "{c}");
        assert!(c.contains("initial_response: true"), "{c}");
        assert!(c.contains("password: ${password}"), "{c}");
        assert!(c.contains("enhanced: 2.7.0"), "{c}");
        assert!(
            c.contains("id: recorded/20250113T101500Z-007-client"),
            "{c}"
        );
        assert!(c.contains("- expect_close: {}"), "{c}");
        let srv = yaml(&rec, Role::Server, false);
        assert!(srv.contains("expect_auth:"), "{srv}");
        assert!(
            srv.contains("reply: 235 2.7.0 Authentication successful"),
            "{srv}"
        );
        for t in [&c, &srv] {
            assert_no_secret(t, &[b"wonderland", b"\0alice\0wonderland"]);
        }
    }

    #[test]
    fn login_with_initial_response_is_written_with_variables() {
        let ir = format!("AUTH LOGIN {}", b64(b"alice"));
        let pw = b64(b"wonderland");
        let mut s = greeting_and_ehlo();
        s.push(("C", ir.as_bytes()));
        s.push(("S", b"334 UGFzc3dvcmQ6"));
        s.push(("C", pw.as_bytes()));
        s.push(("S", b"235 2.7.0 Authentication successful"));
        let rec = build(&record(&s), &info(), &Options::default());
        let c = yaml(&rec, Role::Client, false);
        assert!(c.contains("send: AUTH LOGIN ${user|base64}"), "{c}");
        assert!(c.contains("base64_of: ${password}"), "{c}");
        assert_no_secret(&c, &[b"wonderland"]);
        let srv = yaml(&rec, Role::Server, false);
        assert!(srv.contains("mechanism: LOGIN"), "{srv}");
        assert_no_secret(&srv, &[b"wonderland"]);
    }

    #[test]
    fn refused_cram_md5_replays_with_a_wrong_password_and_recorded_challenge() {
        let challenge = b64(b"<1896.697170952@mx.example.org>");
        let resp = b64(b"alice b913a602c7eda7a495b4e6e7334d3890");
        let mut s = greeting_and_ehlo();
        s.push(("C", b"AUTH CRAM-MD5"));
        let line = format!("334 {challenge}");
        s.push(("S", line.as_bytes()));
        s.push(("C", resp.as_bytes()));
        s.push(("S", b"535 5.7.8 Error: authentication failed"));
        let rec = build(&record(&s), &info(), &Options::default());
        let c = yaml(&rec, Role::Client, false);
        assert!(c.contains("password: ${wrong_password}"), "{c}");
        assert!(c.contains("initial_response: false"), "{c}");
        assert!(c.contains("code: 535"), "{c}");
        assert!(!c.contains(&resp), "{c}");
        let srv = yaml(&rec, Role::Server, false);
        assert!(srv.contains(&format!("challenge: {challenge}")), "{srv}");
        assert!(srv.contains("base64: '*'"), "{srv}");
        assert!(!srv.contains(&resp), "{srv}");
        assert!(!srv.contains("wrong_password"), "{srv}");
    }

    #[test]
    fn unknown_mechanism_is_non_portable_and_its_payloads_withheld() {
        let mut s = greeting_and_ehlo();
        s.push((
            "C",
            b"AUTH NTLM TlRMTVNTUAABAAAAB4IIAAAAAAAAAAAAAAAAAAAAAAA=",
        ));
        s.push(("S", b"334 TlRMTVNTUAACAAAADAAMADAAAAA1AoEAq2zJn5kTrmc="));
        s.push(("C", b"TlRMTVNTUAADAAAAGAAYAEgAAAAYABgAYAAAAA=="));
        s.push(("S", b"235 2.7.0 Authentication successful"));
        let rec = build(&record(&s), &info(), &Options::default());
        let c = yaml(&rec, Role::Client, false);
        assert!(c.contains("- non-portable"), "{c}");
        assert!(c.contains("[non-portable: NTLM"), "{c}");
        assert!(c.contains("send: AUTH NTLM d2l0aGhlbGQ="), "{c}");
        assert!(c.contains("send: d2l0aGhlbGQ="), "{c}");
        // NTLM's responses derive from the password: none is written.
        assert!(!c.contains("TlRMTVNTUAAB"), "{c}");
        assert!(!c.contains("TlRMTVNTUAAD"), "{c}");
        let srv = yaml(&rec, Role::Server, false);
        assert!(srv.contains("auth_mechanism: NTLM"), "{srv}");
        assert!(
            srv.contains("challenge: TlRMTVNTUAACAAAADAAMADAAAAA1AoEAq2zJn5kTrmc="),
            "{srv}"
        );
    }

    /// Issue 15, finding 5: the four hostile sessions in which `record` wrote the
    /// password, and their neighbours. Every role, with and without `--redact`.
    #[test]
    fn hostile_auth_sessions_never_write_the_password() {
        let pw: &[u8] = b"Tr0ub4dor&3";
        let plain = b64(b"\0alice\0Tr0ub4dor&3");
        let pw64 = b64(pw);
        let cases: Vec<Vec<(&str, Vec<u8>)>> = vec![
            // Two spaces after AUTH.
            vec![
                ("C", format!("AUTH  PLAIN {plain}").into_bytes()),
                ("S", b"501 5.5.4 Syntax error".to_vec()),
            ],
            // An unknown mechanism name carrying a PLAIN payload.
            vec![
                ("C", format!("AUTH XPLAIN {plain}").into_bytes()),
                ("S", b"504 5.5.4 Unrecognized authentication type".to_vec()),
            ],
            // Trailing words after the initial response.
            vec![
                ("C", format!("AUTH PLAIN {plain} x").into_bytes()),
                ("S", b"501 5.5.4 Syntax error".to_vec()),
            ],
            // The password line after a 535 (LOGIN, the server gave up early).
            vec![
                ("C", b"AUTH LOGIN".to_vec()),
                ("S", b"334 VXNlcm5hbWU6".to_vec()),
                ("C", b64(b"alice").into_bytes()),
                ("S", b"535 5.7.8 Error: authentication failed".to_vec()),
                ("C", pw64.clone().into_bytes()),
                ("S", b"502 5.5.2 Error: command not recognized".to_vec()),
            ],
            // The password line after a `*` cancel.
            vec![
                ("C", b"AUTH LOGIN".to_vec()),
                ("S", b"334 VXNlcm5hbWU6".to_vec()),
                ("C", b"*".to_vec()),
                ("S", b"501 5.7.0 Authentication aborted".to_vec()),
                ("C", pw64.clone().into_bytes()),
                ("S", b"502 5.5.2 Error: command not recognized".to_vec()),
            ],
            // The password in plain text on a line of its own after AUTH.
            vec![
                ("C", b"AUTH LOGIN".to_vec()),
                ("S", b"334 VXNlcm5hbWU6".to_vec()),
                ("C", b"*".to_vec()),
                ("S", b"501 5.7.0 Authentication aborted".to_vec()),
                ("C", pw.to_vec()),
                ("S", b"502 5.5.2 Error: command not recognized".to_vec()),
            ],
        ];
        for case in cases {
            let mut s: Vec<(&str, &[u8])> = greeting_and_ehlo();
            for (who, line) in &case {
                s.push((*who, line.as_slice()));
            }
            s.push(("C", b"QUIT"));
            s.push(("S", b"221 2.0.0 Bye"));
            for redact in [false, true] {
                let rec = build(&record(&s), &info(), &Options { redact });
                for role in [Role::Client, Role::Server] {
                    let text = yaml(&rec, role, redact);
                    assert_no_secret(&text, &[pw, pw64.as_bytes(), plain.as_bytes()]);
                }
            }
        }
    }

    #[test]
    fn bad_line_endings_are_kept_byte_for_byte() {
        let s: Vec<(&str, &[u8])> = vec![
            ("S", b"220 mx ESMTP"),
            ("C", b"EHLO a\n"),
            ("S", b"250 mx"),
            ("C", b"NOOP\r\r\n"),
            ("S", b"250 2.0.0 Ok"),
        ];
        let rec = build(&record(&s), &info(), &Options::default());
        let c = yaml(&rec, Role::Client, false);
        assert!(c.contains(r"line: EHLO a\n"), "{c}");
        assert!(c.contains(r"line: NOOP\r\r\n"), "{c}");
        let sc = crate::scenario::load_str(&c, "x").unwrap();
        let sends: Vec<Vec<u8>> = sc
            .steps()
            .iter()
            .filter_map(|s| match s {
                Step::Send(s) => s.bytes().ok(),
                _ => None,
            })
            .collect();
        assert_eq!(sends, vec![b"EHLO a\n".to_vec(), b"NOOP\r\r\n".to_vec()]);
    }

    #[test]
    fn secrets_elsewhere_become_variables_and_dollars_stay_literal() {
        let ir = format!("AUTH PLAIN {}", b64(b"\0alice\0s3cr3t-pw"));
        let mut s = greeting_and_ehlo();
        s.push(("C", ir.as_bytes()));
        s.push(("S", b"235 2.7.0 Authentication successful"));
        s.push(("C", b"MAIL FROM:<s3cr3t-pw@x.example> ${user} $5"));
        s.push(("S", b"250 2.1.0 Ok"));
        let rec = build(&record(&s), &info(), &Options::default());
        let c = yaml(&rec, Role::Client, false);
        assert!(
            c.contains("send: MAIL FROM:<${password}@x.example> $${user} $$5"),
            "{c}"
        );
        assert_no_secret(&c, &[b"s3cr3t-pw"]);
        let srv = yaml(&rec, Role::Server, false);
        assert_no_secret(&srv, &[b"s3cr3t-pw"]);
    }

    #[test]
    fn redact_replaces_user_and_host_names() {
        let ir = format!("AUTH PLAIN {}", b64(b"\0alice\0wonderland"));
        let mut s = greeting_and_ehlo();
        s.push(("C", ir.as_bytes()));
        s.push(("S", b"235 2.7.0 Authentication successful"));
        s.push(("C", b"MAIL FROM:<alice@client.example.com>"));
        s.push(("S", b"250 2.1.0 Ok"));
        let rec = build(&record(&s), &info(), &Options { redact: true });
        let c = yaml(&rec, Role::Client, true);
        assert!(!c.contains("alice"), "{c}");
        assert!(!c.contains("mx.example.org"), "{c}");
        assert!(!c.contains("127.0.0.1"), "{c}");
        assert!(c.contains("send: EHLO client.example.com"), "{c}");
        assert!(c.contains("MAIL FROM:<${user}@client.example.com>"), "{c}");
        let srv = yaml(&rec, Role::Server, true);
        assert!(!srv.contains("alice"), "{srv}");
        assert!(!srv.contains("mx.example.org"), "{srv}");
        assert!(srv.contains("220 mx.example.net ESMTP ready"), "{srv}");
        assert!(srv.contains("line: EHLO *"), "{srv}");
    }

    /// Regression: a SCRAM user name with `,` or `=` travels escaped (`=2C`, `=3D`);
    /// `--redact` must hide the name as people write it, not only its wire form.
    #[test]
    fn redact_hides_scram_user_names_with_escaped_characters() {
        for (name, wire) in [("bob=smith", "bob=3Dsmith"), ("bob,smith", "bob=2Csmith")] {
            let ir = format!(
                "AUTH SCRAM-SHA-256 {}",
                b64(format!("n,,n={wire},r=fyko+d2lbbFgONRv9qkxdawL").as_bytes())
            );
            let mail = format!("MAIL FROM:<{name}@client.example.com>");
            let mut s = greeting_and_ehlo();
            s.push(("C", ir.as_bytes()));
            s.push(("S", b"535 5.7.8 Authentication failed"));
            s.push(("C", mail.as_bytes()));
            s.push(("S", b"250 2.1.0 Ok"));
            let rec = build(&record(&s), &info(), &Options { redact: true });
            for role in [Role::Client, Role::Server] {
                let text = yaml(&rec, role, true);
                assert!(!text.contains(name), "{text}");
                assert!(!text.contains(wire), "{text}");
            }
        }
    }

    #[test]
    fn cancelled_exchange_records_the_cancel_not_the_payloads() {
        let mut s = greeting_and_ehlo();
        s.push(("C", b"AUTH LOGIN"));
        s.push(("S", b"334 VXNlcm5hbWU6"));
        s.push(("C", b"*"));
        s.push(("S", b"501 5.7.0 Authentication aborted"));
        let rec = build(&record(&s), &info(), &Options::default());
        let c = yaml(&rec, Role::Client, false);
        assert!(c.contains("cancel: true"), "{c}");
        assert!(c.contains("code: 501"), "{c}");
        let srv = yaml(&rec, Role::Server, false);
        assert!(srv.contains("cancel: true"), "{srv}");
    }
}

#[cfg(test)]
mod hostile {
    use super::*;
    use crate::record::events::{Limits, Recorder};

    /// Peer-controlled bytes in any order and split never make the recorder, the
    /// builder or the renderer panic, and whatever they write loads again.
    #[test]
    fn arbitrary_dialogs_never_panic_and_always_load() {
        const WORDS: &[&[u8]] = &[
            b"AUTH ",
            b"PLAIN",
            b"LOGIN",
            b"NTLM",
            b"CRAM-MD5",
            b"SCRAM-SHA-1",
            b"AGFsaWNlAHdvbmRlcmxhbmQ=",
            b"334 ",
            b"334",
            b"235 2.7.0 ok",
            b"535 5.7.8 no",
            b"250-",
            b"250 ",
            b"220 ",
            b"354 ",
            b"STARTTLS",
            b"DATA",
            b"BDAT 3 LAST",
            b"BDAT x",
            b".",
            b"*",
            b"=",
            b"\r\n",
            b"\n",
            b"\r",
            b"\0",
            b"\xff",
            b"${user}",
            b"$$",
            b"*?\\",
            b"EHLO a.b",
            b"QUIT",
            b" ",
            b"5.7.8",
            b"\x01",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..400 {
            let limits = Limits {
                max_lines: 50,
                max_bytes: 4096,
            };
            let mut r = Recorder::new(limits, round % 2 == 0);
            for _ in 0..(next() % 40) {
                let mut chunk = Vec::new();
                for _ in 0..(next() % 6) {
                    chunk.extend_from_slice(WORDS[(next() % WORDS.len() as u64) as usize]);
                }
                if next() % 2 == 0 {
                    let f = r.client_data(&chunk);
                    assert!(f.forward <= chunk.len());
                } else {
                    let f = r.server_data(&chunk);
                    assert!(f.forward <= chunk.len());
                    if f.starttls == Some(true) && next() % 2 == 0 {
                        r.tls_established("test");
                    }
                }
            }
            if next() % 2 == 0 {
                r.client_closed();
            } else {
                r.server_closed();
            }
            let events = r.finish();
            let info = SessionInfo {
                number: round,
                stamp: "20250101T000000Z".into(),
                client: "c".into(),
                target: "t".into(),
            };
            let rec = build(
                &events,
                &info,
                &Options {
                    redact: round % 3 == 0,
                },
            );
            for (file, notes) in [
                (&rec.client, &rec.client_notes),
                (&rec.server, &rec.server_notes),
            ] {
                if let Some(f) = file {
                    let text = render(f, &info, notes, false).unwrap();
                    if let Err(e) = crate::scenario::load_str(&text, "x.yaml") {
                        panic!("round {round}: {e}\n{text}");
                    }
                }
            }
        }
    }
}
