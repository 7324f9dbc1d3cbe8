//! The server session state machine: bytes in, replies and events out.
//!
//! ```text
//!              connect
//!                 │  220 greeting
//!                 ▼
//!   ┌────────► Command ◄──────────────────────────┐
//!   │   EHLO/HELO │ AUTH            │ MAIL..DATA    │
//!   │             ▼                 ▼               │
//!   │      AuthExchange ──235/5xx──►  Data ──.──────┘
//!   │      (334 / response lines)   (354, text lines)
//!   │ STARTTLS: 220, then the driver runs the handshake and calls
//!   └─ `tls_established`, which resets to a fresh session (RFC 3207 §4.2)
//!   QUIT, hard error limit, timeout, line errors on the auth line → Closed
//! ```
//!
//! The rules of the AUTH exchange itself (initial response, `334`, `*`, response
//! limit, rounds, reply texts) live in [`super::auth_server`], which the harness's
//! scripted server drives too; this file decides only what depends on the session:
//! whether AUTH is allowed now, which mechanisms are offered, and what a success
//! changes.

use super::auth_server::{self, AuthReply, ExchangeError, ExchangeStep, ServerExchange};
use super::command::{self, Command, InitialResponse, MailAuth, Param, ReversePath};
use super::line::{self, Deviation, Line, LineReader};
use super::reply::Reply;
use crate::policy::server::{BareNewline, Decision, RestrictionContext, ServerConfig, TlsLevel};
use crate::sasl::channel_binding::{ChannelBindings, ServerBinding};
use crate::sasl::{self, Authenticated, CredentialStore, Mechanism, RandomSource, ServerContext};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

/// What the driver must do, besides writing [`ServerSession::take_output`].
///
/// A message travels as `MessageBegin`, any number of `MessageData`, then
/// `MessageEnd` or `MessageAbort`. The session holds no message body: each
/// `MessageData` carries only what one [`ServerSession::receive`] completed, so the
/// memory a DATA phase takes is bounded by the driver's read size, whatever the
/// message size.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Flush the output, then run the TLS handshake and call
    /// [`ServerSession::tls_established`].
    StartTls,
    /// Flush the output, then close the connection.
    Close,
    /// DATA was accepted (`354`): start a message with this envelope (the driver
    /// writes the trace headers, then the data that follows).
    MessageBegin(Envelope),
    /// The next octets of the message: dot-unstuffed, with CRLF line ends.
    MessageData(Vec<u8>),
    /// The final `.` arrived. Make the message safe (written, synced, moved into
    /// place), then call [`ServerSession::delivered`]: the `250` is sent only then,
    /// and the session reads no further command until it is.
    MessageEnd,
    /// The message will not be delivered (too big, a line too long, the session
    /// ended): throw away what was written of it.
    MessageAbort,
    /// Something worth a log line, in Postfix's terms. Never holds a secret.
    Log(LogRecord),
    /// Wait this long before writing the pending output: `smtpd_error_sleep_time`
    /// beyond `smtpd_soft_error_limit`, and `authspec_auth_failure_delay` before a
    /// `535`. The session reads no clock; the driver sleeps.
    Pause(std::time::Duration),
}

/// The outcome of the driver's attempt to make a message safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The message is stored: answer `250 2.0.0 Ok: queued`.
    Queued,
    /// Storing failed: answer `451 4.3.0`, so the client keeps the message and
    /// retries (Postfix's "queue file write error").
    Failed,
}

/// The envelope of a message, known when DATA is accepted.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Envelope {
    /// The reverse-path's mailbox; empty for the null path `<>` (a bounce).
    pub mail_from: String,
    /// The accepted recipients, in order (at most `smtpd_recipient_limit`).
    pub rcpt_to: Vec<String>,
    /// The `AUTH=` identity the server trusted, if any (RFC 4954 §5).
    pub mail_auth: Option<String>,
    /// The SASL identity of the session, if it authenticated.
    pub sasl_username: Option<String>,
    /// The mechanism the session authenticated with, if it did.
    pub sasl_method: Option<Mechanism>,
    /// The HELO/EHLO argument, if the client greeted.
    pub helo: Option<String>,
    /// Whether the message came over TLS (STARTTLS or implicit).
    pub tls: bool,
}

impl Envelope {
    /// The trace headers delivery prepends (RFC 5321 §4.4): `Return-Path:` and a
    /// `Received:` line whose protocol says whether TLS and AUTH were used (ESMTPS,
    /// ESMTPA, ESMTPSA: RFC 3848; RFC 4954 §7), with Postfix's
    /// `smtpd_sasl_authenticated_header` comment when asked for. The driver supplies
    /// the date, since the core reads no clock.
    pub fn trace_headers(
        &self,
        client: IpAddr,
        hostname: &str,
        authenticated_header: bool,
        date: &str,
    ) -> String {
        let protocol = match (self.tls, self.sasl_method.is_some()) {
            (true, true) => "ESMTPSA",
            (true, false) => "ESMTPS",
            (false, true) => "ESMTPA",
            (false, false) => "ESMTP",
        };
        let mut out = format!(
            "Return-Path: <{}>\r\nReceived: from {} ([{client}])\r\n\tby {hostname} (authspec) with {protocol}",
            self.mail_from,
            self.helo.as_deref().unwrap_or("unknown"),
        );
        if authenticated_header {
            if let Some(user) = &self.sasl_username {
                out.push_str(&format!("\r\n\t(Authenticated sender: {user})"));
            }
        }
        out.push_str(&format!(
            "\r\n\tfor <{}>; {date}\r\n",
            self.rcpt_to.first().map(String::as_str).unwrap_or("")
        ));
        out
    }
}

/// Log records. `Debug` of each is safe to print: no payload, no secret.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum LogRecord {
    /// An AUTH exchange ended with `235` (Postfix: `sasl_method=... sasl_username=...`).
    AuthSuccess {
        /// The peer's address.
        client: IpAddr,
        /// The mechanism used.
        method: Mechanism,
        /// The authentication identity that was verified.
        username: String,
    },
    /// An AUTH exchange ended without success (`535`, `501`, `454`...).
    AuthFailure {
        /// The peer's address.
        client: IpAddr,
        /// The mechanism the client chose.
        method: Mechanism,
        /// The rule that was broken, by name or in words; never the payload.
        reason: String,
    },
    /// Plaintext that arrived after `STARTTLS` and before the handshake was thrown
    /// away (the CVE-2011-0411 class of injection).
    InjectionDiscarded {
        /// The peer's address.
        client: IpAddr,
        /// How much plaintext was discarded.
        octets: usize,
    },
    /// A line broke a framing rule; the reply says which.
    LineDeviation {
        /// The peer's address.
        client: IpAddr,
        /// The framing rule the line broke.
        deviation: Deviation,
    },
    /// `smtpd_hard_error_limit` was reached: the session answered `421` and closed.
    TooManyErrors {
        /// The peer's address.
        client: IpAddr,
        /// The error replies the session had given.
        errors: u32,
    },
    /// `smtpd_timeout` expired: the session answered `421 4.4.2` and closed.
    Timeout {
        /// The peer's address.
        client: IpAddr,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Greeted {
    None,
    Helo,
    Ehlo,
}

#[derive(Debug)]
struct Transaction {
    from: String,
    mail_auth: Option<String>,
    /// At most `smtpd_recipient_limit` entries.
    rcpts: Vec<String>,
    /// Recipients refused for going past the limit (`smtpd_recipient_overshoot_limit`).
    overshoot: u32,
}

#[derive(Debug)]
enum Mode {
    Command,
    Auth(ServerExchange),
    Data(DataState),
    /// The final `.` arrived and the driver is making the message safe; nothing is
    /// read until [`ServerSession::delivered`].
    Delivering,
    /// STARTTLS was accepted; input is ignored until the handshake completes.
    TlsPending,
    Closed,
}

#[derive(Debug)]
struct DataState {
    /// Octets of message content so far (after dot-unstuffing, with CRLFs).
    size: u64,
    too_big: bool,
    /// A text line went over 1000 octets and was cut by the reader: the message
    /// is refused at its end rather than delivered truncated.
    line_too_long: bool,
    /// The previous line ended in a bare LF, so a "." now does not follow a CRLF.
    after_bare_newline: bool,
}

/// Per-connection facts the driver supplies.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address: logged, and matched against `mynetworks`.
    pub ip: IpAddr,
    /// True when the connection is TLS from the start (`smtpd_tls_wrappermode`).
    pub tls: bool,
}

/// One SMTP server session. Feed it bytes with [`receive`](Self::receive), write what
/// [`take_output`](Self::take_output) returns, and act on [`poll_event`](Self::poll_event).
pub struct ServerSession {
    config: Arc<ServerConfig>,
    credentials: Arc<dyn CredentialStore>,
    rng: Box<dyn RandomSource>,
    peer: Peer,
    reader: LineReader,
    out: Vec<u8>,
    events: VecDeque<Event>,
    mode: Mode,
    helo: Greeted,
    helo_name: Option<String>,
    tls: bool,
    external_identity: Option<String>,
    /// What the TLS driver could compute for this connection (RFC 5802 §6).
    channel_bindings: ChannelBindings,
    authenticated: Option<(Authenticated, Mechanism)>,
    transaction: Option<Transaction>,
    errors: u32,
    lines: u64,
    stats: CommandStats,
    /// The command whose final reply is still to come (AUTH between 334s, DATA after
    /// 354), for [`CommandStats`].
    pending: Option<&'static str>,
}

/// Per-command counts of one session in Postfix's `disconnect from` terms:
/// `ehlo=1 auth=0/1 mail=1 rcpt=1 data=1 quit=1 commands=5/6` (succeeded/seen, the
/// `/seen` left out when equal).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandStats {
    /// `(command, succeeded, seen)` in the order first seen.
    pub counts: Vec<(&'static str, u32, u32)>,
}

impl CommandStats {
    fn record(&mut self, verb: &'static str, ok: bool) {
        let entry = match self.counts.iter().position(|(v, _, _)| *v == verb) {
            Some(i) => &mut self.counts[i],
            None => {
                self.counts.push((verb, 0, 0));
                let last = self.counts.len() - 1;
                &mut self.counts[last]
            }
        };
        entry.1 += u32::from(ok);
        entry.2 += 1;
    }
}

impl std::fmt::Display for CommandStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let one = |f: &mut std::fmt::Formatter<'_>, name: &str, ok: u32, seen: u32| {
            if ok == seen {
                write!(f, "{name}={ok}")
            } else {
                write!(f, "{name}={ok}/{seen}")
            }
        };
        let (mut ok, mut seen) = (0, 0);
        for &(verb, o, s) in &self.counts {
            one(f, verb, o, s)?;
            f.write_str(" ")?;
            ok += o;
            seen += s;
        }
        one(f, "commands", ok, seen)
    }
}

/// Postfix's name of a command in `disconnect from` counters.
fn verb_name(cmd: &Command) -> &'static str {
    match cmd {
        Command::Helo { .. } => "helo",
        Command::Ehlo { .. } => "ehlo",
        Command::Mail { .. } => "mail",
        Command::Rcpt { .. } => "rcpt",
        Command::Data => "data",
        Command::Bdat { .. } => "bdat",
        Command::Rset => "rset",
        Command::Quit => "quit",
        Command::StartTls => "starttls",
        Command::Vrfy { .. } => "vrfy",
        Command::Expn { .. } => "expn",
        Command::Help { .. } => "help",
        Command::Noop { .. } => "noop",
        Command::Auth { .. } => "auth",
    }
}

impl std::fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSession")
            .field("peer", &self.peer)
            .field("mode", &self.mode)
            .field("helo", &self.helo)
            .field("tls", &self.tls)
            .field("authenticated", &self.authenticated)
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

/// The longest line the command reader accepts before it knows the verb: an AUTH
/// line with an initial response may be this long (RFC 4954 §4).
const MAX_FRAME: usize = line::AUTH_LINE_LIMIT;

impl ServerSession {
    /// A new session; the `220` greeting is already in the output.
    pub fn new(
        config: Arc<ServerConfig>,
        credentials: Arc<dyn CredentialStore>,
        rng: Box<dyn RandomSource>,
        peer: Peer,
    ) -> ServerSession {
        let tls = peer.tls;
        let mut s = ServerSession {
            config,
            credentials,
            rng,
            peer,
            reader: LineReader::new(),
            out: Vec::new(),
            events: VecDeque::new(),
            mode: Mode::Command,
            helo: Greeted::None,
            helo_name: None,
            tls,
            external_identity: None,
            channel_bindings: ChannelBindings::new(),
            authenticated: None,
            transaction: None,
            errors: 0,
            lines: 0,
            stats: CommandStats::default(),
            pending: None,
        };
        let banner = s.config.banner.clone();
        s.reply_raw(220, &[&banner]);
        s
    }

    /// A new session that refuses service: the connection limit was reached.
    pub fn refuse_busy(config: &ServerConfig) -> Vec<u8> {
        Reply::new(
            421,
            &[&format!(
                "4.7.0 {} Error: too many connections",
                config.myhostname
            )],
        )
        .format()
    }

    /// The bytes to write to the client, taken out of the session.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Whether replies are waiting to be written.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// The next thing the driver must do, if any; call until `None` after each input.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// True once the session ended (QUIT, an error limit, a timeout): close the connection.
    pub fn is_closed(&self) -> bool {
        matches!(self.mode, Mode::Closed)
    }

    /// Whether an AUTH exchange succeeded in this session (RFC 4954 §4: AUTH is then refused).
    pub fn is_authenticated(&self) -> bool {
        self.authenticated.is_some()
    }

    /// Who authenticated, and with which mechanism, if anyone did.
    pub fn authenticated(&self) -> Option<(&Authenticated, Mechanism)> {
        self.authenticated.as_ref().map(|(a, m)| (a, *m))
    }

    /// Whether the connection is TLS now (implicit TLS, or after STARTTLS).
    pub fn tls_active(&self) -> bool {
        self.tls
    }

    /// Octets received but not yet consumed; the driver stops reading while this is
    /// above the largest line, so memory per session stays bounded.
    pub fn buffered(&self) -> usize {
        self.reader.buffered()
    }

    /// What the session's commands were and how many succeeded, for the
    /// `disconnect from` log line.
    pub fn command_stats(&self) -> &CommandStats {
        &self.stats
    }

    /// Complete lines consumed so far. The driver restarts its `smtpd_timeout` clock
    /// only when this moves, so partial lines do not keep a session alive.
    pub fn lines_seen(&self) -> u64 {
        self.lines
    }

    /// Feed bytes from the network.
    pub fn receive(&mut self, data: &[u8]) {
        match self.mode {
            Mode::Closed => return,
            Mode::TlsPending => {
                self.discard_injection(data.len());
                return;
            }
            _ => {}
        }
        self.reader.push(data);
        self.process();
    }

    /// The handshake finished. RFC 3207 §4.2: "the server MUST discard any knowledge
    /// obtained from the client ... which was not obtained from the TLS negotiation
    /// itself": the session starts over, without a new greeting.
    pub fn tls_established(&mut self, external_identity: Option<String>) {
        self.tls = true;
        self.external_identity = external_identity;
        self.helo = Greeted::None;
        self.helo_name = None;
        self.authenticated = None;
        self.transaction = None;
        self.reader = LineReader::new();
        self.mode = Mode::Command;
    }

    /// The TLS driver's channel-binding data for this connection (`tls-exporter`,
    /// `tls-server-end-point`), given after [`ServerSession::tls_established`] or, on an
    /// implicit-TLS listener, right after [`ServerSession::new`]. SCRAM-*-PLUS is
    /// offered only when the connection is TLS and has data of a type
    /// `authspec_sasl_channel_binding_types` allows.
    pub fn set_channel_bindings(&mut self, bindings: ChannelBindings) {
        if self.tls {
            self.channel_bindings = bindings.restrict(&self.config.sasl_channel_binding_types);
        }
    }

    /// The TLS handshake failed: nothing more can be said in plaintext.
    pub fn tls_failed(&mut self) {
        self.close();
    }

    /// `smtpd_timeout` expired while waiting for the client.
    pub fn timeout(&mut self) {
        if self.is_closed() {
            return;
        }
        let host = self.config.myhostname.clone();
        self.reply_raw(421, &[&format!("4.4.2 {host} Error: timeout exceeded")]);
        self.log(LogRecord::Timeout {
            client: self.peer.ip,
        });
        self.close();
    }

    /// The client closed its side; nothing more will arrive.
    pub fn eof(&mut self) {
        self.close();
    }

    /// The driver's answer to [`Event::MessageEnd`]. The reply to the final `.` is
    /// decided here, after the message is safe (or is known not to be): a `250` that
    /// comes before the message is stored promises what a crash or a full disk can
    /// break. Input that arrived meanwhile is processed now.
    pub fn delivered(&mut self, outcome: Delivery) {
        if !matches!(self.mode, Mode::Delivering) {
            return;
        }
        self.mode = Mode::Command;
        match outcome {
            Delivery::Queued => self.reply(250, "2.0.0 Ok: queued"),
            Delivery::Failed => self.reply(451, "4.3.0 Error: queue file write error"),
        }
        self.process();
    }

    /// Whether the session waits for [`ServerSession::delivered`].
    pub fn awaiting_delivery(&self) -> bool {
        matches!(self.mode, Mode::Delivering)
    }

    /// Whether the session counts as authenticated for `authspec_require_auth` and
    /// `permit_sasl_authenticated`. RFC 4505 §2: an ANONYMOUS client is not
    /// identified, so it gets nothing an identified user gets (Postfix's
    /// permit_sasl_authenticated skips it too), unless
    /// `authspec_anonymous_is_authenticated` says otherwise.
    fn authenticated_for_policy(&self) -> bool {
        self.authenticated.as_ref().is_some_and(|(_, m)| {
            *m != Mechanism::Anonymous || self.config.anonymous_is_authenticated
        })
    }

    fn close(&mut self) {
        if matches!(self.mode, Mode::Data(_) | Mode::Delivering) {
            self.events.push_back(Event::MessageAbort);
        }
        if !self.is_closed() {
            self.mode = Mode::Closed;
            self.events.push_back(Event::Close);
        }
    }

    fn log(&mut self, record: LogRecord) {
        self.events.push_back(Event::Log(record));
    }

    fn discard_injection(&mut self, octets: usize) {
        if octets > 0 {
            self.log(LogRecord::InjectionDiscarded {
                client: self.peer.ip,
                octets,
            });
        }
    }

    fn process(&mut self) {
        loop {
            let limit = match &self.mode {
                Mode::Command => MAX_FRAME,
                Mode::Auth(_) => self.config.sasl_response_limit.max(1) + 2,
                Mode::Data(_) => line::TEXT_LINE_LIMIT,
                Mode::Delivering | Mode::TlsPending | Mode::Closed => return,
            };
            let Some(line) = self.reader.next_line(limit) else {
                return;
            };
            self.lines += 1;
            match std::mem::replace(&mut self.mode, Mode::Command) {
                Mode::Command => self.command_line(line),
                Mode::Auth(ex) => self.auth_response(ex, line),
                Mode::Data(state) => self.data_line(state, line),
                other => self.mode = other,
            }
        }
    }

    // ---- replies -------------------------------------------------------------

    fn reply_raw(&mut self, code: u16, lines: &[&str]) {
        let texts: Vec<_> = lines.iter().map(|l| super::reply::textstring(l)).collect();
        let reply = if texts.iter().all(|t| matches!(t, Cow::Borrowed(_))) {
            Reply::new(code, lines)
        } else {
            Reply::new(code, &texts.iter().map(|t| t.as_ref()).collect::<Vec<_>>())
        };
        self.out.extend_from_slice(&reply.format());
        // 334 and 354 are intermediate: the command's outcome is the reply after them.
        if code != 334 && code != 354 {
            if let Some(verb) = self.pending.take() {
                self.stats.record(verb, code < 400);
            }
        }
    }

    /// A reply; 4xx and 5xx count towards `smtpd_hard_error_limit`, and reaching it
    /// ends the session with `421` (Postfix's behaviour).
    fn reply(&mut self, code: u16, text: &str) {
        if code >= 400 {
            // Postfix: past smtpd_soft_error_limit, sleep before each error reply, to
            // slow down brute force and broken clients.
            let sleep = self.config.error_sleep_time;
            if self.errors >= self.config.soft_error_limit && !sleep.is_zero() {
                self.events.push_back(Event::Pause(sleep));
            }
            if code == 535 && !self.config.auth_failure_delay.is_zero() {
                self.events
                    .push_back(Event::Pause(self.config.auth_failure_delay));
            }
        }
        self.reply_raw(code, &[text]);
        if code >= 400 {
            self.errors = self.errors.saturating_add(1);
            if self.errors >= self.config.hard_error_limit {
                let host = self.config.myhostname.clone();
                self.reply_raw(421, &[&format!("4.7.0 {host} Error: too many errors")]);
                self.log(LogRecord::TooManyErrors {
                    client: self.peer.ip,
                    errors: self.errors,
                });
                self.close();
            }
        }
    }

    /// One of the AUTH replies, whose texts live in [`auth_server`].
    fn auth_reply(&mut self, r: AuthReply) {
        self.reply(r.code(), r.text());
    }

    // ---- command mode --------------------------------------------------------

    fn command_line(&mut self, line: Line) {
        self.pending = Some("unknown");
        let is_auth = line.bytes.len() >= 4 && line.bytes[..4].eq_ignore_ascii_case(b"AUTH");
        // RFC 4954 §4: an AUTH line whose initial response overflows the authentication
        // buffer fails the AUTH command with 500, and SHOULD carry 5.5.6. The reader
        // cut the line at the buffer size, so it must not be parsed.
        if is_auth && line.too_long() {
            self.log(LogRecord::LineDeviation {
                client: self.peer.ip,
                deviation: Deviation::LineTooLong {
                    limit: MAX_FRAME,
                    length: MAX_FRAME.saturating_add(1),
                },
            });
            self.auth_reply(AuthReply::LineTooLong);
            return;
        }
        if let Some(dev) = self.framing_violation(&line, true) {
            self.log(LogRecord::LineDeviation {
                client: self.peer.ip,
                deviation: dev,
            });
            let (code, text) = deviation_reply(dev);
            self.reply(code, text);
            return;
        }
        // The per-verb limits: 512 for commands (RFC 5321 §4.5.3.1.4), 500 more for a
        // MAIL with AUTH= (RFC 4954 §5), 12288 for AUTH with an initial response
        // (RFC 4954 §4).
        let wire_len = line.bytes.len() + 2;
        let limit = if is_auth {
            self.config.sasl_response_limit.max(line::AUTH_LINE_LIMIT)
        } else {
            line::command_limit(&line.bytes)
        };
        if wire_len > limit {
            let dev = Deviation::LineTooLong {
                limit,
                length: wire_len,
            };
            self.log(LogRecord::LineDeviation {
                client: self.peer.ip,
                deviation: dev,
            });
            if is_auth {
                self.auth_reply(AuthReply::LineTooLong);
            } else {
                self.reply(500, "5.5.2 Error: line too long");
            }
            return;
        }
        let parsed = match command::parse(&line.bytes) {
            // RFC 4422 §3.1 spells mechanism names in upper case, but Postfix, Cyrus and
            // Dovecot match them case-insensitively and clients send `auth plain`. The
            // codec reports it; the server tolerates it, as they do.
            Err(command::CommandError::MechanismNameNotUpperCase { .. }) => {
                command::parse(&upper_mechanism(&line.bytes))
            }
            other => other,
        };
        match parsed {
            Ok(cmd) => {
                self.pending = Some(verb_name(&cmd));
                self.command(cmd)
            }
            Err(e) => {
                if matches!(e, command::CommandError::UnknownVerb) {
                    self.reply(502, "5.5.2 Error: command not recognized");
                } else if matches!(e, command::CommandError::InvalidInitialResponse { .. }) {
                    // RFC 4954 §4: an initial response that is not base64 → 501.
                    self.auth_reply(AuthReply::CannotDecode);
                } else {
                    self.reply(501, &format!("5.5.4 Syntax error: {e}"));
                }
            }
        }
    }

    /// The first framing rule a line breaks, if the server refuses it. Over-long
    /// lines are handled by the caller, which knows the verb.
    fn framing_violation(&self, line: &Line, command: bool) -> Option<Deviation> {
        for dev in &line.deviations {
            match dev {
                Deviation::BareLf { .. } | Deviation::BareCr { .. }
                    if self.config.forbid_bare_newline == BareNewline::Reject =>
                {
                    return Some(*dev);
                }
                Deviation::Nul { .. } => return Some(*dev),
                Deviation::Control { .. } if command => return Some(*dev),
                Deviation::EightBit { .. } if command => return Some(*dev),
                Deviation::LineTooLong { .. } => return Some(*dev),
                _ => {}
            }
        }
        None
    }

    fn command(&mut self, cmd: Command) {
        // smtpd_tls_security_level=encrypt: RFC 3207 §4 "530 Must issue a STARTTLS
        // command first" for everything but the commands allowed before TLS.
        if self.config.tls_security_level == TlsLevel::Encrypt && !self.tls {
            let allowed = matches!(
                cmd,
                Command::Ehlo { .. }
                    | Command::Helo { .. }
                    | Command::StartTls
                    | Command::Noop { .. }
                    | Command::Quit
                    | Command::Rset
            );
            if !allowed {
                self.reply(530, "5.7.0 Must issue a STARTTLS command first");
                return;
            }
        }
        match cmd {
            Command::Ehlo { domain } => self.ehlo(domain),
            Command::Helo { domain } => {
                self.transaction = None;
                self.helo = Greeted::Helo;
                self.helo_name = Some(domain);
                let host = self.config.myhostname.clone();
                self.reply(250, &host);
            }
            Command::StartTls => self.starttls(),
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth_command(&mechanism, initial_response),
            Command::Mail { from, params } => self.mail(from, params),
            Command::Rcpt { to, params } => self.rcpt(to, params),
            Command::Data => self.data(),
            Command::Rset => {
                self.transaction = None;
                self.reply(250, "2.0.0 Ok");
            }
            Command::Noop { .. } => self.reply(250, "2.0.0 Ok"),
            Command::Quit => {
                self.reply_raw(221, &["2.0.0 Bye"]);
                self.close();
            }
            Command::Vrfy { .. } => {
                self.reply(252, "2.0.0 Cannot VRFY user, but will accept message")
            }
            Command::Expn { .. } => self.reply(502, "5.5.1 Error: EXPN is not supported"),
            Command::Help { .. } => self.reply(214, "2.0.0 See RFC 5321 and RFC 4954"),
            #[allow(unreachable_patterns, reason = "the codec may grow commands")]
            _ => self.reply(502, "5.5.1 Error: command not implemented"),
        }
    }

    /// STARTTLS is offered with `smtpd_tls_security_level` may or encrypt, and not on
    /// a wrapper-mode (already TLS) listener.
    fn tls_offered(&self) -> bool {
        self.config.tls_security_level != TlsLevel::None && !self.config.tls_wrappermode
    }

    fn offered_mechanisms(&self) -> Option<Vec<Mechanism>> {
        let mut list = self
            .config
            .auth_mechanisms_offered(self.tls, self.peer.ip)?;
        // -PLUS needs a channel to bind to: only over TLS with binding data.
        let can_bind = self.tls && !self.channel_bindings.is_empty();
        list.retain(|m| can_bind || !m.channel_binding());
        if list.is_empty() { None } else { Some(list) }
    }

    fn ehlo(&mut self, domain: String) {
        self.transaction = None;
        self.helo = Greeted::Ehlo;
        self.helo_name = Some(domain);
        let mut lines: Vec<String> = vec![self.config.myhostname.clone()];
        let mut kw = |k: String| lines.push(k);
        kw("PIPELINING".into());
        kw(format!("SIZE {}", self.config.message_size_limit));
        if self.tls_offered() && !self.tls {
            kw("STARTTLS".into());
        }
        if self.authenticated.is_none() {
            if let Some(mechs) = self.offered_mechanisms() {
                if !mechs.is_empty() {
                    let list = mechs.iter().map(|m| m.name()).collect::<Vec<_>>().join(" ");
                    kw(format!("AUTH {list}"));
                    // broken_sasl_auth_clients: Outlook Express 4 reads only the
                    // non-standard `AUTH=` form. Postfix 3.x writes it second.
                    if self.config.broken_sasl_auth_clients {
                        kw(format!("AUTH={list}"));
                    }
                }
            }
        }
        kw("ENHANCEDSTATUSCODES".into());
        kw("8BITMIME".into());
        let config = Arc::clone(&self.config);
        let lines: Vec<String> = lines
            .into_iter()
            .enumerate()
            .filter(|(i, l)| {
                *i == 0 || {
                    let key = l.split([' ', '=']).next().unwrap_or("");
                    !config.discards_ehlo_keyword(key)
                }
            })
            .map(|(_, l)| l)
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        self.reply_raw(250, &refs);
    }

    fn starttls(&mut self) {
        if self.tls {
            self.reply(554, "5.5.1 Error: TLS already active");
            return;
        }
        if !self.tls_offered() {
            self.reply(502, "5.5.1 Error: command not implemented");
            return;
        }
        self.reply_raw(220, &["2.0.0 Ready to start TLS"]);
        // RFC 3207 §4.2 and CVE-2011-0411: whatever the client pipelined after
        // STARTTLS arrived in plaintext and must not be executed after the handshake.
        let leftover = self.reader.take_buffered();
        self.discard_injection(leftover.len());
        self.mode = Mode::TlsPending;
        self.events.push_back(Event::StartTls);
    }

    // ---- AUTH (RFC 4954 §4) -----------------------------------------------------

    fn auth_command(&mut self, name: &str, ir: Option<InitialResponse>) {
        if self.authenticated.is_some() {
            self.auth_reply(AuthReply::AlreadyAuthenticated);
            return;
        }
        if self.transaction.is_some() {
            self.auth_reply(AuthReply::InTransaction);
            return;
        }
        if self.helo != Greeted::Ehlo {
            self.auth_reply(AuthReply::SendEhloFirst);
            return;
        }
        let requested = Mechanism::from_name(name.as_bytes());
        // §6: a mechanism this server offers only under TLS, asked for without it, gets
        // 538 rather than 504.
        let needs_tls = !self.tls
            && self.config.sasl_auth_enable
            && requested.is_some_and(|m| {
                self.config
                    .auth_mechanisms_offered(true, self.peer.ip)
                    .is_some_and(|under_tls| under_tls.contains(&m))
            });
        let Some(offered) = self.offered_mechanisms() else {
            self.auth_reply(if needs_tls {
                AuthReply::EncryptionRequired
            } else {
                AuthReply::NotEnabled
            });
            return;
        };
        let Some(mechanism) = requested.filter(|m| offered.contains(m)) else {
            // Filtered mechanisms get the same 504 as unknown ones, even when asked for
            // by name.
            self.auth_reply(if needs_tls {
                AuthReply::EncryptionRequired
            } else {
                AuthReply::UnrecognizedType
            });
            return;
        };
        let initial = match auth_server::initial_response(mechanism, ir.as_ref()) {
            Ok(initial) => initial,
            Err(e) => {
                self.auth_reply(e.reply());
                // Undecodable base64 on the AUTH line is a syntax error, not a failed
                // authentication: only the server-first rule is logged as one.
                if matches!(e, ExchangeError::InitialResponseToServerFirst(_)) {
                    self.log(LogRecord::AuthFailure {
                        client: self.peer.ip,
                        method: mechanism,
                        reason: e.log_reason(),
                    });
                }
                return;
            }
        };
        let ctx = ServerContext {
            hostname: self.config.myhostname.clone(),
            realm: self.config.sasl_local_domain.clone(),
            external_identity: self.external_identity.clone(),
            credentials: Arc::clone(&self.credentials),
        };
        let binding = ServerBinding {
            bindings: self.channel_bindings.clone(),
            plus_advertised: offered.iter().any(|m| m.channel_binding()),
        };
        let mech = sasl::server_with_binding(mechanism, &ctx, &binding, self.rng.as_mut());
        let mut ex = ServerExchange::new(mech, self.config.sasl_response_limit.max(1));
        let step = ex.start(initial.as_deref());
        self.after_step(ex, step);
    }

    fn after_step(&mut self, ex: ServerExchange, step: ExchangeStep) {
        let mechanism = ex.mechanism();
        match step {
            ExchangeStep::Challenge(text) => {
                self.out.extend_from_slice(b"334 ");
                self.out.extend_from_slice(text.as_bytes());
                self.out.extend_from_slice(b"\r\n");
                self.mode = Mode::Auth(ex);
            }
            ExchangeStep::Success(identity) => {
                self.log(LogRecord::AuthSuccess {
                    client: self.peer.ip,
                    method: mechanism,
                    username: identity.authcid.clone(),
                });
                self.authenticated = Some((identity, mechanism));
                self.mode = Mode::Command;
                self.auth_reply(AuthReply::Success);
            }
            ExchangeStep::Failure(e) => {
                self.log(LogRecord::AuthFailure {
                    client: self.peer.ip,
                    method: mechanism,
                    reason: e.log_reason(),
                });
                self.mode = Mode::Command;
                self.auth_reply(e.reply());
            }
        }
    }

    fn auth_response(&mut self, mut ex: ServerExchange, line: Line) {
        if line.too_long() {
            let step = ex.on_overlong_response();
            self.after_step(ex, step);
            return;
        }
        if let Some(dev) = self.framing_violation(&line, true) {
            self.mode = Mode::Command;
            self.log(LogRecord::LineDeviation {
                client: self.peer.ip,
                deviation: dev,
            });
            let (code, text) = deviation_reply(dev);
            self.reply(code, text);
            return;
        }
        let step = ex.on_response(&line.bytes);
        self.after_step(ex, step);
    }

    // ---- mail transaction ------------------------------------------------------

    fn mail(&mut self, from: ReversePath, params: Vec<Param>) {
        if self.helo == Greeted::None {
            self.reply(503, "5.5.1 Error: send HELO/EHLO first");
            return;
        }
        if self.transaction.is_some() {
            self.reply(503, "5.5.1 Error: nested MAIL command");
            return;
        }
        if self.config.require_auth && !self.authenticated_for_policy() {
            // RFC 4954 §6: "530 5.7.0 Authentication required".
            self.auth_reply(AuthReply::AuthenticationRequired);
            return;
        }
        let mut mail_auth = None;
        for p in &params {
            match p {
                Param::Size(n)
                    if self.config.message_size_limit > 0
                        && *n > self.config.message_size_limit =>
                {
                    self.reply(552, "5.3.4 Message size exceeds fixed limit");
                    return;
                }
                Param::Auth(a) => {
                    // RFC 4954 §5: the server trusts AUTH= only from an authenticated
                    // client and only for its own identity; otherwise it behaves as if
                    // AUTH=<> was given — and it MUST NOT reject the MAIL for it.
                    if let (MailAuth::Mailbox(mb), Some((id, _))) = (a, &self.authenticated) {
                        let own = id.authzid.as_deref().unwrap_or(&id.authcid);
                        if mb.eq_ignore_ascii_case(own) {
                            mail_auth = Some(mb.clone());
                        }
                    }
                }
                Param::Other { keyword, .. } => {
                    self.reply(555, &format!("5.5.4 Unsupported option: {keyword}"));
                    return;
                }
                _ => {}
            }
        }
        let from = match from {
            ReversePath::Null => String::new(),
            ReversePath::Mailbox(m) => m,
        };
        self.transaction = Some(Transaction {
            from,
            mail_auth,
            rcpts: Vec::new(),
            overshoot: 0,
        });
        self.reply(250, "2.1.0 Ok");
    }

    fn rcpt(&mut self, to: command::ForwardPath, params: Vec<Param>) {
        if self.transaction.is_none() {
            self.reply(503, "5.5.1 Error: need MAIL command");
            return;
        }
        if let Some(Param::Other { keyword, .. }) = params.first() {
            self.reply(555, &format!("5.5.4 Unsupported option: {keyword}"));
            return;
        }
        // smtpd_recipient_limit bounds what one transaction holds. Postfix answers
        // "452 4.5.3 Error: too many recipients" and counts an error only for each
        // recipient beyond smtpd_recipient_overshoot_limit more.
        if let Some(t) = self.transaction.as_mut() {
            let limit = usize::try_from(self.config.recipient_limit).unwrap_or(usize::MAX);
            if t.rcpts.len() >= limit {
                t.overshoot = t.overshoot.saturating_add(1);
                if t.overshoot > self.config.recipient_overshoot_limit {
                    self.reply(452, "4.5.3 Error: too many recipients");
                } else {
                    self.reply_raw(452, &["4.5.3 Error: too many recipients"]);
                }
                return;
            }
        }
        let rcpt = match to {
            command::ForwardPath::Postmaster => "postmaster".to_string(),
            command::ForwardPath::Mailbox(m) => m,
        };
        let decision = self.config.check_rcpt(&RestrictionContext {
            client_ip: self.peer.ip,
            client_name: None,
            authenticated: self.authenticated_for_policy(),
            recipient: &rcpt,
        });
        match decision {
            Decision::Permit | Decision::Dunno => {
                if let Some(t) = self.transaction.as_mut() {
                    t.rcpts.push(rcpt);
                }
                self.reply(250, "2.1.5 Ok");
            }
            Decision::Reject(r) | Decision::Defer(r) => {
                self.reply(r.code, &format!("{} {}", r.enhanced, r.text));
            }
        }
    }

    fn data(&mut self) {
        match &self.transaction {
            None => self.reply(503, "5.5.1 Error: need RCPT command"),
            Some(t) if t.rcpts.is_empty() => self.reply(554, "5.5.1 Error: no valid recipients"),
            Some(t) => {
                let sasl = self.authenticated.as_ref();
                let envelope = Envelope {
                    mail_from: t.from.clone(),
                    rcpt_to: t.rcpts.clone(),
                    mail_auth: t.mail_auth.clone(),
                    sasl_username: sasl.map(|(a, _)| a.authcid.clone()),
                    sasl_method: sasl.map(|(_, m)| *m),
                    helo: self.helo_name.clone(),
                    tls: self.tls,
                };
                self.events.push_back(Event::MessageBegin(envelope));
                self.reply_raw(354, &["End data with <CR><LF>.<CR><LF>"]);
                self.mode = Mode::Data(DataState {
                    size: 0,
                    too_big: false,
                    line_too_long: false,
                    after_bare_newline: false,
                });
            }
        }
    }

    /// Appends to the `MessageData` event at the back of the queue, so one receive
    /// yields one event however many lines it completed.
    fn message_data(&mut self, content: &[u8]) {
        if let Some(Event::MessageData(buf)) = self.events.back_mut() {
            buf.extend_from_slice(content);
            buf.extend_from_slice(b"\r\n");
            return;
        }
        let mut buf = Vec::with_capacity(content.len() + 2);
        buf.extend_from_slice(content);
        buf.extend_from_slice(b"\r\n");
        self.events.push_back(Event::MessageData(buf));
    }

    fn data_line(&mut self, mut state: DataState, line: Line) {
        // Only CRLF . CRLF ends the data (RFC 5321 §4.1.1.4). A "." ended by a bare LF
        // is the SMTP-smuggling shape: with smtpd_forbid_bare_newline it is refused
        // below rather than taken as the end.
        let bare = line
            .deviations
            .iter()
            .any(|d| matches!(d, Deviation::BareLf { .. } | Deviation::BareCr { .. }));
        if bare && self.config.forbid_bare_newline == BareNewline::Reject {
            self.transaction = None;
            self.mode = Mode::Data(state);
            self.log(LogRecord::LineDeviation {
                client: self.peer.ip,
                deviation: line.deviations[0],
            });
            // Postfix 3.9: "521 5.5.2 Error: bare <LF> received", then disconnect,
            // because the rest of the stream can no longer be framed safely.
            let host = self.config.myhostname.clone();
            self.reply_raw(521, &[&format!("5.5.2 {host} Error: bare <LF> received")]);
            self.close();
            return;
        }
        // Under `normalize` (Postfix 3.9) the end is CR LF . CR LF and nothing else:
        // a "." after a line that ended in a bare LF (`<LF>.<CR><LF>`) is content,
        // or a smuggled MAIL/RCPT/DATA would run as commands.
        let ends = line.bytes == b"."
            && match self.config.forbid_bare_newline {
                BareNewline::Allow => true,
                _ => !bare && !state.after_bare_newline,
            };
        state.after_bare_newline = line.has(line::DeviationKind::BareLf);
        if ends {
            self.mode = Mode::Command;
            if self.transaction.take().is_none() {
                return;
            }
            if state.too_big {
                self.events.push_back(Event::MessageAbort);
                self.reply(552, "5.3.4 Message size exceeds fixed limit");
                return;
            }
            // RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets; the reader cut a
            // longer one, and delivering the cut message would change it silently.
            // §4.5.3.1.10 names the reply "500 Line too long".
            if state.line_too_long {
                self.events.push_back(Event::MessageAbort);
                self.reply(500, "5.5.2 Error: message text line too long");
                return;
            }
            self.events.push_back(Event::MessageEnd);
            self.mode = Mode::Delivering;
            return;
        }
        let content = if line.bytes.first() == Some(&b'.') {
            &line.bytes[1..]
        } else {
            &line.bytes[..]
        };
        let added = u64::try_from(content.len() + 2).unwrap_or(u64::MAX);
        let limit = self.config.message_size_limit;
        if limit > 0 && state.size.saturating_add(added) > limit {
            state.too_big = true;
        }
        if !state.too_big {
            state.size = state.size.saturating_add(added);
            self.message_data(content);
        }
        if line.too_long() {
            state.line_too_long = true;
        }
        self.mode = Mode::Data(state);
    }
}

/// `auth plain xyz` → `auth PLAIN xyz`: only the mechanism token changes.
fn upper_mechanism(line: &[u8]) -> Vec<u8> {
    let mut out = line.to_vec();
    let start = out
        .iter()
        .position(|b| *b == b' ')
        .map_or(out.len(), |p| p + 1);
    let end = out[start..]
        .iter()
        .position(|b| *b == b' ')
        .map_or(out.len(), |p| start + p);
    out[start..end].make_ascii_uppercase();
    out
}

fn deviation_reply(dev: Deviation) -> (u16, &'static str) {
    match dev {
        Deviation::BareLf { .. } => (500, "5.5.2 Error: bare <LF> received"),
        Deviation::BareCr { .. } => (500, "5.5.2 Error: bare <CR> received"),
        Deviation::Nul { .. } => (500, "5.5.2 Error: NUL character received"),
        Deviation::EightBit { .. } => (500, "5.5.2 Error: 8-bit character in command"),
        Deviation::Control { .. } => (500, "5.5.2 Error: control character in command"),
        Deviation::LineTooLong { .. } => (500, "5.5.2 Error: line too long"),
    }
}
