//! The steps of both roles, built side by side from a session's events: commands,
//! message bodies, BDAT chunks, STARTTLS and replies, each written once for the client
//! role (what to send, what to expect) and once for the server role (what to expect,
//! what to reply). AUTH exchanges are [`super::auth_steps`]'s.
//!
//! One walk serves both roles because each event is a step of both: a reply is what
//! the client role expects and what the server role sends.

use super::events::{ClientLine, Ending, Event};
use super::exchange::WITHHELD_PAYLOAD;
use super::redact::Rewrites;
use super::text::{Pieces, loosen_reply_text};
use crate::scenario::{
    CapabilityCheck, Expect, ExpectClientClose, ExpectClose, ExpectCommand, Reply, Role, Send,
    SendOptions, Starttls, Step,
};
use authspec_reference::smtp::reply::{self as smtp_reply, EnhancedCode, Separator};
use std::collections::{BTreeMap, VecDeque};

/// The SMTP verbs a client line in command position may start with (RFC 5321,
/// RFC 3207, RFC 4954, RFC 3030). After an AUTH exchange, a line that starts with none
/// of them is most likely a SASL response sent out of turn (after a 535 or a `*`).
const KNOWN_VERBS: &[&str] = &[
    "EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP",
    "STARTTLS", "AUTH", "BDAT", "LHLO", "ETRN", "TURN", "ATRN", "SEND", "SOML", "SAML",
];

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
pub(super) struct Builder<'a> {
    pub(super) events: &'a [Event],
    pub(super) rw: Rewrites,
    pub(super) client: Vec<Step>,
    pub(super) server: Vec<Step>,
    pub(super) client_notes: Vec<String>,
    pub(super) server_notes: Vec<String>,
    pub(super) client_done: bool,
    pub(super) server_done: bool,
    pub(super) client_closed: bool,
    pub(super) server_closed: bool,
    /// Verbs of commands whose reply has not come yet (RFC 2920 pipelining).
    pub(super) waiting: VecDeque<String>,
    /// What the session did, for the title.
    pub(super) summary: Vec<String>,
    pub(super) mechanisms: Vec<String>,
    pub(super) non_portable: Vec<String>,
    pub(super) tags: Vec<String>,
    pub(super) vars: BTreeMap<String, String>,
    pub(super) starttls: bool,
    /// Why the server-role scenario ends before the session did, for its title.
    pub(super) server_cut: Option<&'static str>,
    /// An AUTH command was seen: from then on a line that is not a command is
    /// treated as a SASL payload and withheld.
    pub(super) auth_seen: bool,
}

impl<'a> Builder<'a> {
    pub(super) fn new(events: &'a [Event], rw: Rewrites) -> Builder<'a> {
        Builder {
            events,
            rw,
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
        }
    }

    pub(super) fn note(&mut self, text: &str) {
        if !self.client_done {
            self.client_notes
                .push(format!("before step {}: {text}", self.client.len() + 1));
        }
        if !self.server_done {
            self.server_notes
                .push(format!("before step {}: {text}", self.server.len() + 1));
        }
    }

    pub(super) fn client_step(&mut self, s: Step) {
        if !self.client_done {
            self.client.push(s);
        }
    }

    pub(super) fn server_step(&mut self, s: Step) {
        if !self.server_done {
            self.server.push(s);
        }
    }

    pub(super) fn end_server(&mut self, why: &str) {
        if !self.server_done {
            self.server_notes
                .push(format!("after step {}: {why}", self.server.len()));
            self.server_done = true;
        }
    }

    pub(super) fn end_client(&mut self, why: &str) {
        if !self.client_done {
            self.client_notes
                .push(format!("after step {}: {why}", self.client.len()));
            self.client_done = true;
        }
    }

    pub(super) fn summarize(&mut self, what: String) {
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
    pub(super) fn expect_for(&self, r: &smtp_reply::Reply, answering: Option<&str>) -> Expect {
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
    pub(super) fn reply_step(&self, r: &smtp_reply::Reply, raw: &[u8]) -> Step {
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

    pub(super) fn run(&mut self) {
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

    pub(super) fn title(&self, role: Role) -> String {
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
