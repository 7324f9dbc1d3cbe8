//! The client session state machine, modelled on Postfix's smtp client: greeting,
//! EHLO, optional STARTTLS and a second EHLO, AUTH with the first mechanism in the
//! server's list that the client's options allow, then an optional mail transaction,
//! then QUIT.
//!
//! ```text
//!  Greeting ─220─► Ehlo ─250─┬─(STARTTLS wanted)─► StartTls ─220─► [driver handshake] ─► Ehlo
//!                            ├─(credentials)─────► Auth ─334…─► Auth ─235─┐
//!                            └──────────────────────────────────────────────┴► Mail ► Rcpt… ► Data ► Body ► Quit ► Done
//! ```

use super::auth_client::{
    CancelReason, ClientExchange, ClientStep, InitialResponseMode, MAX_AUTH_ROUNDS,
};
use super::reply::{self, Capabilities, Reply, ReplyLimits};
use super::sasl_frame;
use crate::sasl::channel_binding::{CbType, ChannelBindings, ClientBinding};
use crate::sasl::{self, ClientCredentials, Mechanism, RandomSource, SaslError};
use std::collections::VecDeque;
use std::fmt;

/// Whether and how the client uses STARTTLS (`smtp_tls_security_level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartTlsPolicy {
    /// Never (`none`, or the connection is already TLS).
    Never,
    /// When offered (`may`).
    Opportunistic,
    /// Required (`encrypt`/`verify`): a server without STARTTLS is an error.
    Required,
}

/// How the client picks its mechanism, given what the server offers.
pub trait MechanismChooser: Send + fmt::Debug {
    /// `offered` is the server's list in its order; `tls` says whether TLS is active.
    fn choose(&self, offered: &[String], tls: bool) -> Result<Mechanism, String>;
    /// True when the user named the mechanism (`--mechanism`). An automatic choice
    /// over TLS prefers -PLUS and, for a non-PLUS SCRAM, sends gs2 flag `y` (RFC 5802
    /// §6); a forced non-PLUS SCRAM sends `n`, as a client that does not bind.
    fn forced(&self) -> bool {
        false
    }
}

/// Always this mechanism, if the server offers it (`--mechanism M`).
#[derive(Debug, Clone, Copy)]
pub struct Forced(pub Mechanism);

impl MechanismChooser for Forced {
    fn forced(&self) -> bool {
        true
    }

    fn choose(&self, offered: &[String], _tls: bool) -> Result<Mechanism, String> {
        if offered
            .iter()
            .any(|o| o.eq_ignore_ascii_case(self.0.name()))
        {
            Ok(self.0)
        } else {
            Err(format!(
                "server does not offer {}: it offers {}",
                self.0,
                offered.join(" ")
            ))
        }
    }
}

/// How to authenticate, when the plan includes AUTH.
#[derive(Debug)]
pub struct AuthPlan {
    /// Who to authenticate as, and the secret.
    pub credentials: ClientCredentials,
    /// Picks the mechanism from the server's EHLO list (`--mechanism`, or a [`crate::policy::ClientConfig`]).
    pub chooser: Box<dyn MechanismChooser>,
    /// The channel-binding types a -PLUS mechanism may use, in order of preference
    /// (`authspec_smtp_channel_binding_types`); the first one the TLS connection has
    /// is used.
    pub channel_binding_types: Vec<CbType>,
}

/// The message to send after authentication, if any.
#[derive(Debug, Clone)]
pub struct MailPlan {
    /// The MAIL FROM mailbox, without brackets.
    pub from: String,
    /// One RCPT TO per mailbox, without brackets.
    pub to: Vec<String>,
    /// The message, with CRLF line ends; dot-stuffing is done here.
    pub body: Vec<u8>,
}

/// Everything one client session will do, decided before it connects.
#[derive(Debug)]
pub struct ClientPlan {
    /// The EHLO argument (`smtp_helo_name`).
    pub helo_name: String,
    /// Whether to upgrade with STARTTLS (RFC 3207).
    pub starttls: StartTlsPolicy,
    /// The AUTH step; `None` skips authentication.
    pub auth: Option<AuthPlan>,
    /// Fail when the server offers no AUTH (Postfix's client carries on without it
    /// unless the password map has an entry; we fail when credentials were given).
    pub auth_required: bool,
    /// The message; `None` ends the session with QUIT after AUTH.
    pub mail: Option<MailPlan>,
}

/// A line of the dialog, for `-v` output. SASL payloads are decoded and secrets masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TranscriptLine {
    /// A line the client sent (masked).
    Client(String),
    /// A line the server sent.
    Server(String),
    /// A remark of the client's own: discarded injected octets, an error.
    Note(String),
}

/// Why a client session failed, one variant per way a server can let it down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The server's bytes did not form a reply (RFC 5321 §4.2).
    MalformedReply(String),
    /// A reply code the client cannot continue after, at `stage`.
    UnexpectedReply {
        /// Where in the dialog (`greeting`, `EHLO`, `MAIL`...).
        stage: &'static str,
        /// The reply as received.
        reply: String,
    },
    /// STARTTLS is required but not offered.
    StartTlsNotOffered,
    /// The server offers no AUTH, but the plan requires it.
    AuthNotOffered,
    /// No offered mechanism passes the client's options; the text says why.
    NoMechanism(String),
    /// The SASL exchange failed on the client side.
    Sasl(SaslError),
    /// The client refused to start the exchange with these credentials (an XOAUTH2
    /// token with a space, a PLAIN user with NUL): nothing was sent to the server.
    Refused(SaslError),
    /// The server rejected the credentials (`535`, `454`, …).
    AuthRejected {
        /// The server's final reply to the exchange.
        reply: String,
    },
    /// The server closed the connection.
    ConnectionClosed {
        /// Where in the dialog the connection ended.
        stage: &'static str,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::MalformedReply(e) => write!(f, "malformed reply: {e}"),
            ClientError::UnexpectedReply { stage, reply } => {
                write!(f, "unexpected reply after {stage}: {reply}")
            }
            ClientError::StartTlsNotOffered => {
                f.write_str("STARTTLS required but the server does not offer it")
            }
            ClientError::AuthNotOffered => f.write_str("the server does not offer AUTH"),
            ClientError::NoMechanism(why) => f.write_str(why),
            ClientError::Sasl(e) => write!(f, "SASL: {e}"),
            ClientError::Refused(e) => write!(
                f,
                "refused by the client before anything was sent: {e} (check the credentials)"
            ),
            ClientError::AuthRejected { reply } => write!(f, "authentication failed: {reply}"),
            ClientError::ConnectionClosed { stage } => {
                write!(f, "connection closed by server during {stage}")
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// What the driver must do, besides writing [`ClientSession::take_output`].
#[derive(Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// Flush output, run the TLS handshake, then call `tls_established`.
    StartTls,
    /// The session is over; flush output and close.
    Done(Result<Outcome, ClientError>),
}

/// What a finished session achieved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// The mechanism that got a `235`, if any.
    pub authenticated_with: Option<Mechanism>,
    /// The server answered the final `.` with `250`.
    pub message_accepted: bool,
    /// The session ran over TLS (implicit, or after STARTTLS).
    pub tls: bool,
    /// Capabilities from the last EHLO.
    pub capabilities: Option<Capabilities>,
    /// Plaintext the server sent after its STARTTLS `220` and before the handshake;
    /// discarded (the "NO STARTTLS" response-injection class) and reported.
    pub injected_after_starttls: usize,
    /// The server used `334` without the space RFC 4954 §4 requires.
    pub bare_334_seen: bool,
}

#[derive(Debug)]
enum State {
    Greeting,
    Ehlo,
    StartTls,
    TlsPending,
    Auth(ClientExchange),
    Mail,
    Rcpt(usize),
    Data,
    Body,
    Quit,
    Done,
}

/// One SMTP client session, driven by a [`ClientPlan`]. Feed it the server's bytes with
/// [`receive`](Self::receive), write what [`take_output`](Self::take_output) returns, and
/// act on [`poll_event`](Self::poll_event).
pub struct ClientSession {
    plan: ClientPlan,
    rng: Box<dyn RandomSource>,
    state: State,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    events: VecDeque<ClientEvent>,
    transcript: Vec<TranscriptLine>,
    tls: bool,
    /// Channel-binding data from the TLS driver (RFC 5802 §6).
    channel_bindings: ChannelBindings,
    outcome: Outcome,
    limits: ReplyLimits,
    secrets: Vec<Vec<u8>>,
    rcpt_ok: usize,
}

impl fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSession")
            .field("state", &self.state)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// The most a server may send before the client gives up on a reply: bounds memory
/// against a server that never ends a line or a multi-line reply.
const MAX_INBUF: usize = 64 * 1024;

impl ClientSession {
    /// `tls` is true for implicit TLS (the driver already did the handshake).
    pub fn new(plan: ClientPlan, rng: Box<dyn RandomSource>, tls: bool) -> ClientSession {
        let mut secrets = Vec::new();
        if let Some(a) = &plan.auth {
            if !a.credentials.password.is_empty() {
                secrets.push(a.credentials.password.expose().to_vec());
            }
        }
        ClientSession {
            plan,
            rng,
            state: State::Greeting,
            inbuf: Vec::new(),
            out: Vec::new(),
            events: VecDeque::new(),
            transcript: Vec::new(),
            tls,
            channel_bindings: ChannelBindings::new(),
            outcome: Outcome {
                tls,
                ..Outcome::default()
            },
            limits: ReplyLimits::default(),
            secrets,
            rcpt_ok: 0,
        }
    }

    /// The bytes to write to the server, taken out of the session.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The next thing the driver must do, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The dialog so far, payloads decoded and secrets masked.
    pub fn transcript(&self) -> &[TranscriptLine] {
        &self.transcript
    }

    /// True once the session has finished ([`ClientEvent::Done`] was queued).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Feed bytes from the network; complete replies advance the session.
    pub fn receive(&mut self, data: &[u8]) {
        if matches!(self.state, State::Done) {
            return;
        }
        if matches!(self.state, State::TlsPending) {
            // Bytes after the STARTTLS 220 and before the handshake: injected
            // plaintext. Count and drop them.
            self.outcome.injected_after_starttls += data.len();
            return;
        }
        self.inbuf.extend_from_slice(data);
        loop {
            match reply::parse_reply(&self.inbuf, &self.limits) {
                Ok(Some((reply, used))) => {
                    self.inbuf.drain(..used);
                    self.note_reply(&reply);
                    self.on_reply(reply);
                    if matches!(self.state, State::Done | State::TlsPending) {
                        if matches!(self.state, State::TlsPending) {
                            let n = self.inbuf.len();
                            if n > 0 {
                                self.outcome.injected_after_starttls += n;
                                self.transcript.push(TranscriptLine::Note(format!(
                                    "discarded {n} octets sent after the STARTTLS 220 (response injection)"
                                )));
                            }
                            self.inbuf.clear();
                        }
                        return;
                    }
                }
                Ok(None) => {
                    if self.inbuf.len() > MAX_INBUF {
                        self.fail(ClientError::MalformedReply(format!(
                            "reply longer than {MAX_INBUF} octets"
                        )));
                    }
                    return;
                }
                Err(e) => {
                    self.fail(ClientError::MalformedReply(format!("{e:?}")));
                    return;
                }
            }
        }
    }

    /// The server closed the connection.
    pub fn eof(&mut self) {
        if matches!(self.state, State::Done) {
            return;
        }
        let stage = self.stage();
        self.fail(ClientError::ConnectionClosed { stage });
    }

    /// The TLS driver's channel-binding data for this connection; call after
    /// [`ClientSession::tls_established`] (or at once for implicit TLS).
    pub fn set_channel_bindings(&mut self, bindings: ChannelBindings) {
        self.channel_bindings = bindings;
    }

    fn client_binding(&self) -> ClientBinding {
        if !self.tls {
            return ClientBinding::default();
        }
        let pick = |t: &CbType| self.channel_bindings.get(*t).map(|d| (*t, d.to_vec()));
        // The first type in the plan's order that the connection has.
        let binding = self
            .plan
            .auth
            .as_ref()
            .and_then(|a| a.channel_binding_types.iter().find_map(pick));
        ClientBinding {
            binding,
            supported: false,
        }
    }

    /// The STARTTLS handshake succeeded: the session sends EHLO again (RFC 3207 §4.2).
    pub fn tls_established(&mut self) {
        self.tls = true;
        self.outcome.tls = true;
        self.state = State::Ehlo;
        let helo = self.plan.helo_name.clone();
        self.send_line(format!("EHLO {helo}").as_bytes(), None);
    }

    fn stage(&self) -> &'static str {
        match self.state {
            State::Greeting => "greeting",
            State::Ehlo => "EHLO",
            State::StartTls | State::TlsPending => "STARTTLS",
            State::Auth(_) => "AUTH",
            State::Mail => "MAIL",
            State::Rcpt(_) => "RCPT",
            State::Data | State::Body => "DATA",
            State::Quit => "QUIT",
            State::Done => "end",
        }
    }

    fn note_reply(&mut self, reply: &Reply) {
        for l in &reply.lines {
            let sep = match l.sep {
                reply::Separator::Hyphen => "-",
                reply::Separator::Space => " ",
                reply::Separator::None => "",
            };
            let mut text = format!("{}{}{}", l.code, sep, String::from_utf8_lossy(&l.text));
            if l.code == 334 {
                if let Ok(decoded) = sasl_frame::decode_challenge(&l.text) {
                    text.push_str(&format!(
                        "   [decoded: {}]",
                        String::from_utf8_lossy(&decoded).escape_debug()
                    ));
                }
            }
            self.transcript.push(TranscriptLine::Server(text));
        }
    }

    fn mask(&self, text: &str) -> String {
        let mut t = text.to_string();
        for s in &self.secrets {
            let s = String::from_utf8_lossy(s);
            if !s.is_empty() {
                t = t.replace(s.as_ref(), "***");
            }
        }
        t
    }

    /// Write a command line. `sasl` is the decoded payload, if this line carries one,
    /// so the transcript shows it decoded and masked instead of the base64.
    fn send_line(&mut self, line: &[u8], sasl: Option<&[u8]>) {
        self.out.extend_from_slice(line);
        self.out.extend_from_slice(b"\r\n");
        let shown = match sasl {
            Some(payload) => {
                let decoded = String::from_utf8_lossy(payload).escape_debug().to_string();
                let verb = line.split(|b| *b == b' ').next().unwrap_or(b"");
                let prefix = if verb.eq_ignore_ascii_case(b"AUTH") {
                    let mut parts = line.splitn(3, |b| *b == b' ');
                    let a = parts.next().unwrap_or(b"");
                    let m = parts.next().unwrap_or(b"");
                    format!(
                        "{} {} ",
                        String::from_utf8_lossy(a),
                        String::from_utf8_lossy(m)
                    )
                } else {
                    String::new()
                };
                // No length: a PLAIN response's length gives away the password's.
                format!(
                    "{prefix}[SASL response: {}]",
                    mask_proofs(&self.mask(&decoded))
                )
            }
            None => self.mask(&String::from_utf8_lossy(line)),
        };
        self.transcript.push(TranscriptLine::Client(shown));
    }

    fn fail(&mut self, e: ClientError) {
        self.transcript
            .push(TranscriptLine::Note(format!("error: {e}")));
        self.state = State::Done;
        self.events.push_back(ClientEvent::Done(Err(e)));
    }

    fn finish(&mut self) {
        self.state = State::Done;
        self.events
            .push_back(ClientEvent::Done(Ok(self.outcome.clone())));
    }

    fn unexpected(&mut self, stage: &'static str, reply: &Reply) {
        let text = reply_text(reply);
        // Be polite on the way out, as Postfix is: QUIT, then close.
        self.out.extend_from_slice(b"QUIT\r\n");
        self.transcript.push(TranscriptLine::Client("QUIT".into()));
        self.fail(ClientError::UnexpectedReply { stage, reply: text });
    }

    fn on_reply(&mut self, reply: Reply) {
        let state = std::mem::replace(&mut self.state, State::Done);
        match state {
            State::Greeting => {
                if reply.code != 220 {
                    return self.unexpected("greeting", &reply);
                }
                self.state = State::Ehlo;
                let helo = self.plan.helo_name.clone();
                self.send_line(format!("EHLO {helo}").as_bytes(), None);
            }
            State::Ehlo => {
                if reply.code != 250 {
                    return self.unexpected("EHLO", &reply);
                }
                let caps = match reply::parse_ehlo(&reply) {
                    Ok(c) => c,
                    Err(e) => return self.fail(ClientError::MalformedReply(format!("{e:?}"))),
                };
                self.outcome.capabilities = Some(caps.clone());
                let offers_tls = caps.has("STARTTLS");
                if !self.tls {
                    match self.plan.starttls {
                        StartTlsPolicy::Required if !offers_tls => {
                            self.out.extend_from_slice(b"QUIT\r\n");
                            return self.fail(ClientError::StartTlsNotOffered);
                        }
                        StartTlsPolicy::Required | StartTlsPolicy::Opportunistic if offers_tls => {
                            self.state = State::StartTls;
                            self.send_line(b"STARTTLS", None);
                            return;
                        }
                        _ => {}
                    }
                }
                self.after_ehlo(&caps);
            }
            State::StartTls => {
                if reply.code != 220 {
                    if self.plan.starttls == StartTlsPolicy::Required {
                        return self.unexpected("STARTTLS", &reply);
                    }
                    // Opportunistic: carry on in plaintext, as Postfix does with `may`.
                    let caps = self.outcome.capabilities.clone().unwrap_or_default();
                    self.after_ehlo(&caps);
                    return;
                }
                self.state = State::TlsPending;
                self.events.push_back(ClientEvent::StartTls);
            }
            State::TlsPending => self.state = State::TlsPending,
            State::Auth(mut x) => {
                if reply.is_bare_334() {
                    self.outcome.bare_334_seen = true;
                }
                match x.on_reply(&reply) {
                    ClientStep::Respond { line, payload } => {
                        self.send_line(line.as_bytes(), Some(&payload));
                        self.state = State::Auth(x);
                    }
                    ClientStep::Cancel(why) => {
                        // RFC 4954 §4: a client that cannot continue cancels with `*`.
                        self.send_line(b"*", None);
                        match why {
                            CancelReason::ChallengeNotBase64(e) => {
                                self.transcript.push(TranscriptLine::Note(format!(
                                    "server challenge is not base64: {e}; cancelled"
                                )));
                            }
                            CancelReason::Mechanism(e) => self
                                .transcript
                                .push(TranscriptLine::Note(format!("client error: {e}"))),
                            CancelReason::AlreadyCancelled => {}
                        }
                        self.state = State::Auth(x);
                    }
                    ClientStep::Success => {
                        self.outcome.authenticated_with = Some(x.mechanism());
                        self.start_mail();
                    }
                    ClientStep::Unverified(e) => {
                        self.out.extend_from_slice(b"QUIT\r\n");
                        self.fail(ClientError::Sasl(e));
                    }
                    ClientStep::Ended => {
                        self.out.extend_from_slice(b"QUIT\r\n");
                        self.transcript.push(TranscriptLine::Client("QUIT".into()));
                        self.fail(ClientError::AuthRejected {
                            reply: reply_text(&reply),
                        });
                    }
                    ClientStep::TooManyRounds => {
                        self.out.extend_from_slice(b"QUIT\r\n");
                        self.transcript.push(TranscriptLine::Client("QUIT".into()));
                        self.fail(ClientError::AuthRejected {
                            reply: format!(
                                "more than {MAX_AUTH_ROUNDS} challenges: {}",
                                reply_text(&reply)
                            ),
                        });
                    }
                }
            }
            State::Mail => {
                if reply.code != 250 {
                    return self.unexpected("MAIL", &reply);
                }
                self.next_rcpt(0);
            }
            State::Rcpt(i) => {
                if reply.code == 250 || reply.code == 251 {
                    self.rcpt_ok += 1;
                }
                self.next_rcpt(i + 1);
            }
            State::Data => {
                if reply.code != 354 {
                    return self.unexpected("DATA", &reply);
                }
                let body = self
                    .plan
                    .mail
                    .as_ref()
                    .map(|m| m.body.clone())
                    .unwrap_or_default();
                let stuffed = dot_stuff(&body);
                self.out.extend_from_slice(&stuffed);
                self.out.extend_from_slice(b".\r\n");
                self.transcript.push(TranscriptLine::Client(format!(
                    "[message body, {} octets]",
                    stuffed.len()
                )));
                self.transcript.push(TranscriptLine::Client(".".into()));
                self.state = State::Body;
            }
            State::Body => {
                if reply.code != 250 {
                    return self.unexpected("end of DATA", &reply);
                }
                self.outcome.message_accepted = true;
                self.quit();
            }
            State::Quit => self.finish(),
            State::Done => {}
        }
    }

    fn after_ehlo(&mut self, caps: &Capabilities) {
        let Some(plan) = self.plan.auth.as_ref() else {
            return self.start_mail();
        };
        // Postfix's client also understands the non-standard `AUTH=` line
        // (an `AUTH=`-only banner from an old server).
        let offered: Vec<String> = caps
            .auth
            .clone()
            .or_else(|| caps.auth_eq.clone())
            .unwrap_or_default();
        if caps.auth.is_none() && caps.auth_eq.is_some() {
            self.transcript.push(TranscriptLine::Note(
                "server advertises only the non-standard AUTH= line".into(),
            ));
        }
        if offered.is_empty() {
            if self.plan.auth_required {
                self.out.extend_from_slice(b"QUIT\r\n");
                return self.fail(ClientError::AuthNotOffered);
            }
            return self.start_mail();
        }
        // Over TLS with binding data, prefer -PLUS by putting the -PLUS names the server
        // offers first: only a bound exchange detects a TLS-terminating man in the middle
        // (RFC 5802 §6, RFC 5056), and RFC 8600 says the -PLUS variant "SHOULD be
        // preferred". RFC 7677 itself states no preference.
        let binding = self.client_binding();
        let can_bind = binding.binding.is_some();
        let mut offered = offered;
        if can_bind && !plan.chooser.forced() {
            offered.sort_by_key(|name| {
                !Mechanism::from_name(name.as_bytes()).is_some_and(Mechanism::channel_binding)
            });
        }
        let mechanism = match plan.chooser.choose(&offered, self.tls) {
            Ok(m) => m,
            Err(why) => {
                self.out.extend_from_slice(b"QUIT\r\n");
                return self.fail(ClientError::NoMechanism(why));
            }
        };
        let binding = ClientBinding {
            supported: can_bind && !plan.chooser.forced(),
            ..binding
        };
        let mut x = ClientExchange::new(sasl::client_with_binding(
            mechanism,
            &plan.credentials,
            &binding,
            self.rng.as_mut(),
        ));
        match x.command(InitialResponseMode::Auto) {
            Ok(cmd) => self.send_line(cmd.line.as_bytes(), cmd.initial_response.as_deref()),
            Err(e) => {
                self.out.extend_from_slice(b"QUIT\r\n");
                return self.fail(ClientError::Refused(e));
            }
        }
        self.state = State::Auth(x);
    }

    fn start_mail(&mut self) {
        match self.plan.mail.as_ref() {
            None => self.quit(),
            Some(m) => {
                let line = format!("MAIL FROM:<{}>", m.from);
                self.state = State::Mail;
                self.send_line(line.as_bytes(), None);
            }
        }
    }

    fn next_rcpt(&mut self, i: usize) {
        let to = self.plan.mail.as_ref().and_then(|m| m.to.get(i).cloned());
        match to {
            Some(rcpt) => {
                self.state = State::Rcpt(i);
                self.send_line(format!("RCPT TO:<{rcpt}>").as_bytes(), None);
            }
            None if self.rcpt_ok == 0 => {
                self.out.extend_from_slice(b"QUIT\r\n");
                self.fail(ClientError::UnexpectedReply {
                    stage: "RCPT",
                    reply: "no recipient accepted".into(),
                });
            }
            None => {
                self.state = State::Data;
                self.send_line(b"DATA", None);
            }
        }
    }

    fn quit(&mut self) {
        self.state = State::Quit;
        self.send_line(b"QUIT", None);
    }
}

/// Digests and proofs hide no password from an offline dictionary attack once shown
/// next to their challenge: a CRAM-MD5 or DIGEST-MD5 digest (32 hex digits) and a SCRAM
/// proof (`,p=`) become `***`.
fn mask_proofs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let run = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        if run == 32 {
            out.push_str("***");
            rest = &rest[run..];
        } else if run > 0 {
            out.push_str(&rest[..run]);
            rest = &rest[run..];
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    match out.find(",p=") {
        Some(i) => format!("{},p=***", &out[..i]),
        None => out,
    }
}

fn reply_text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.format())
        .trim_end()
        .replace("\r\n", " / ")
}

/// RFC 5321 §4.5.2: a line that starts with "." gets another "."; the body is made to
/// end with CRLF.
pub(crate) fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    let mut at_line_start = true;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}
