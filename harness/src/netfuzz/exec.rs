//! Plays one session against the target and judges what comes back.
//!
//! After each write the player reads as many replies as the write had line ends, the
//! first with the full timeout (RFC 5321 §4.2: every command gets exactly one reply, so
//! silence after a complete line is a hang) and the rest with a short settle time (a
//! server may count lines differently when line ends were mutated; a reply that comes
//! late is read after the next write, which changes nothing on the wire).

use super::seeds::Identity;
use super::session::{Action, Session, atoms, chunks, concrete_all};
use super::{Candidate, FindingKind};
use crate::conn::{Conn, ConnError};
use crate::runner::{Endpoint, TlsMode};
use authspec_reference::sasl::{self, ClientCredentials, Mechanism, Secret, SeededRandom};
use authspec_reference::smtp::auth_client::{ClientExchange, ClientStep, InitialResponseMode};
use authspec_reference::smtp::line::Deviation;
use authspec_reference::smtp::reply::Reply;
use std::sync::Arc;
use std::time::Duration;

/// Error replies after which a server that closes is taken to enforce an error limit
/// (Postfix's `smtpd_hard_error_limit`, 20 by default) rather than to have crashed.
const ERROR_LIMIT_GUARD: usize = 8;

/// How to reach the target.
#[derive(Debug, Clone)]
pub struct Target {
    pub ep: Endpoint,
    pub timeout: Duration,
    pub settle: Duration,
}

/// Why a session stopped before its last action, when no finding stopped it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum End {
    #[default]
    Completed,
    /// Could not connect: the target is down.
    ConnectFailed(String),
    /// The server closed after `221` or `421`, or refused us in its greeting.
    Closed,
    /// A `220` after the greeting (a mutated STARTTLS was accepted) or a `354`: what
    /// follows is TLS or message content, which this fuzzer does not speak.
    LeftCommandMode,
    /// The prelude (`--starttls`) failed.
    Prelude(String),
}

/// What one session did.
#[derive(Debug, Default)]
pub struct Played {
    /// The codes read after each action that ran (for a computed exchange, its final
    /// reply only), in order. A finding file expects exactly these.
    pub replies: Vec<Vec<u16>>,
    /// Every reply code, the greeting and `334`s included: the state path.
    pub codes: Vec<u16>,
    pub finding: Option<Candidate>,
    pub end: End,
}

impl Played {
    fn errors(&self) -> usize {
        self.codes.iter().filter(|c| **c >= 400).count()
    }

    fn find(&mut self, kind: FindingKind, at: Option<usize>, detail: String, signature: String) {
        self.finding = Some(Candidate {
            kind,
            at,
            detail,
            signature: format!("{}/{signature}", kind.slug()),
        });
    }
}

/// A line-end problem in a reply (RFC 5321 §4.2: every reply line ends in CRLF), which
/// the parser records instead of refusing.
pub fn reply_problem(r: &Reply) -> Option<(&'static str, String)> {
    r.deviations.iter().find_map(|d| match d {
        Deviation::BareLf { .. } => Some((
            "bare-lf",
            "a reply line ends in a bare LF; RFC 5321 §4.2 requires CRLF".to_owned(),
        )),
        Deviation::BareCr { .. } => Some((
            "bare-cr",
            "a reply line holds a bare CR (RFC 5321 §2.3.8)".to_owned(),
        )),
        Deviation::Nul { .. } => Some((
            "nul",
            "a reply line holds NUL (RFC 5321 §4.2 textstring)".to_owned(),
        )),
        _ => None,
    })
}

/// The rule name of a parse error, for grouping findings: `CodeMismatchAcrossLines`.
struct Player<'a> {
    conn: Conn,
    target: &'a Target,
    played: Played,
    last_code: u16,
}

enum Read {
    Reply(Reply),
    /// Nothing more to read after this write (settle time out, or a finding/end set).
    Stop,
}

impl Player<'_> {
    /// Reads one reply for action `at`; `first` selects the full timeout. Findings and
    /// ends are recorded in `played`.
    async fn read(&mut self, at: Option<usize>, first: bool, session: &Session) -> Read {
        self.conn.timeout = if first {
            self.target.timeout
        } else {
            self.target.settle
        };
        match self.conn.read_reply("a reply").await {
            Ok(r) => {
                self.played.codes.push(r.code);
                if let Some((sig, why)) = reply_problem(&r) {
                    self.played
                        .find(FindingKind::MalformedReply, at, why, sig.to_owned());
                    return Read::Stop;
                }
                if r.code == 235 {
                    if let Some(i) = at {
                        if session.only_wrong_creds(i) {
                            self.played.find(
                                FindingKind::AuthBypass,
                                at,
                                "235 after credentials that were all wrong; RFC 4954 §6 \
                                 requires 535"
                                    .to_owned(),
                                last_mechanism(session, i),
                            );
                            return Read::Stop;
                        }
                    }
                }
                self.last_code = r.code;
                Read::Reply(r)
            }
            Err(ConnError::Timeout { partial, .. }) if first => {
                let kind = if at.is_none() {
                    FindingKind::NoGreeting
                } else {
                    FindingKind::Hang
                };
                self.played.find(
                    kind,
                    at,
                    format!(
                        "no complete reply within {} ms ({partial} octets of one)",
                        self.target.timeout.as_millis()
                    ),
                    format!("after-{}", self.last_code),
                );
                Read::Stop
            }
            Err(ConnError::Timeout { .. }) => Read::Stop,
            Err(ConnError::Closed { .. } | ConnError::Io(_)) => {
                if at.is_none() {
                    self.played.find(
                        FindingKind::NoGreeting,
                        at,
                        "connection closed before the greeting".to_owned(),
                        "closed".to_owned(),
                    );
                } else if matches!(self.last_code, 221 | 421)
                    || self.played.errors() >= ERROR_LIMIT_GUARD
                {
                    self.played.end = End::Closed;
                } else {
                    self.played.find(
                        FindingKind::ClosedWithoutReply,
                        at,
                        format!(
                            "connection closed without a reply to a complete line (last reply {})",
                            self.last_code
                        ),
                        format!("after-{}", self.last_code),
                    );
                }
                Read::Stop
            }
            Err(ConnError::Malformed(m)) => {
                let rule = m.rule().to_owned();
                self.played.find(
                    FindingKind::MalformedReply,
                    at,
                    format!("malformed reply: {m}"),
                    rule,
                );
                Read::Stop
            }
            Err(e) => {
                self.played.end = End::Prelude(e.to_string());
                Read::Stop
            }
        }
    }

    fn stopped(&self) -> bool {
        self.played.finding.is_some() || self.played.end != End::Completed
    }

    /// A reply that takes the session out of command mode ends it.
    fn after_reply(&mut self, r: &Reply) {
        if r.code == 354 || (r.code == 220 && self.played.codes.len() > 1) {
            self.played.end = End::LeftCommandMode;
        } else if matches!(r.code, 221 | 421) {
            // The server closes next; nothing after this is read.
            self.played.end = End::Closed;
        }
    }

    async fn write(&mut self, i: usize, session: &Session, password: &[u8]) {
        let Some(Action::Write { lines, split }) = session.actions.get(i) else {
            return;
        };
        let (atoms, _) = atoms(lines, password);
        let pieces = chunks(&atoms, *split);
        let mut line_ends = 0usize;
        let n = pieces.len();
        for (ci, piece) in pieces.iter().enumerate() {
            let mut bytes = Vec::new();
            for a in piece {
                a.concrete(password, &mut bytes);
            }
            line_ends += bytes.iter().filter(|b| **b == b'\n').count();
            if self.conn.send(&bytes).await.is_err() {
                // The server closed while we wrote; the read below tells why.
                break;
            }
            if let Some(s) = split {
                if s.pause_ms > 0 && ci + 1 < n {
                    tokio::time::sleep(Duration::from_millis(u64::from(s.pause_ms))).await;
                }
            }
        }
        let mut got = 0;
        while got < line_ends {
            match self.read(Some(i), got == 0, session).await {
                Read::Reply(r) => {
                    got += 1;
                    if let Some(v) = self.played.replies.get_mut(i) {
                        v.push(r.code);
                    }
                    self.after_reply(&r);
                    if self.stopped() {
                        return;
                    }
                }
                Read::Stop => return,
            }
        }
    }

    /// A computed exchange, as the runner's `auth` step plays it, so that a finding file
    /// with an `auth` step replays it.
    async fn auth(&mut self, i: usize, session: &Session, id: &Identity, seed: u64) {
        let Some(Action::Auth {
            mechanism,
            user,
            password,
            ..
        }) = session.actions.get(i)
        else {
            return;
        };
        let creds = ClientCredentials {
            authcid: user.clone(),
            password: Secret::new(concrete_all(password, &id.password)),
            authzid: None,
            host: self.target.ep.server_name.clone(),
            port: crate::support::port_of(&self.target.ep.addr),
        };
        let mut rng = SeededRandom::from_seed(seed);
        let mut x = ClientExchange::new(sasl::client(*mechanism, &creds, &mut rng));
        // A mechanism that cannot make its first message sends none, as before.
        let line = match x.command(InitialResponseMode::Auto) {
            Ok(cmd) => cmd.line,
            Err(_) => format!("AUTH {}", mechanism.name()),
        };
        if self
            .conn
            .send(format!("{line}\r\n").as_bytes())
            .await
            .is_err()
        {
            self.played.end = End::Closed;
            return;
        }
        loop {
            let r = match self.read(Some(i), true, session).await {
                Read::Reply(r) => r,
                Read::Stop => return,
            };
            let out = match x.on_reply(&r) {
                ClientStep::Respond { line, .. } => format!("{line}\r\n"),
                // RFC 4954 §4: a client that cannot answer cancels with `*`.
                ClientStep::Cancel(_) => "*\r\n".to_owned(),
                ClientStep::TooManyRounds => break,
                step @ (ClientStep::Success | ClientStep::Unverified(_) | ClientStep::Ended) => {
                    if let Some(v) = self.played.replies.get_mut(i) {
                        v.push(r.code);
                    }
                    if let ClientStep::Unverified(e) = step {
                        if self.played.finding.is_none() {
                            self.played.find(
                                FindingKind::AuthBypass,
                                Some(i),
                                format!(
                                    "235 before the server proved itself ({e}); RFC 4422 §3.7 \
                                     lets the client accept only a verified outcome"
                                ),
                                format!("unverified-{}", mechanism.name()),
                            );
                        }
                    }
                    self.after_reply(&r);
                    return;
                }
            };
            if self.conn.send(out.as_bytes()).await.is_err() {
                self.played.end = End::Closed;
                return;
            }
        }
        self.played.end = End::Completed;
    }
}

fn last_mechanism(session: &Session, upto: usize) -> String {
    let mut mech = "unknown".to_owned();
    for a in session.actions.iter().take(upto.saturating_add(1)) {
        match a {
            Action::Write { lines, .. } => {
                for l in lines {
                    if let Some(v) = l.verb() {
                        if v.eq_ignore_ascii_case(b"AUTH") {
                            let text = concrete_all(&l.segs, b"");
                            if let Some(m) = text
                                .split(|b| *b == b' ')
                                .nth(1)
                                .and_then(Mechanism::from_name)
                            {
                                mech = m.name().to_owned();
                            }
                        }
                    }
                }
            }
            Action::Auth { mechanism, .. } => mech = mechanism.name().to_owned(),
            Action::Wait { .. } => {}
        }
    }
    mech
}

/// Plays `session` from connect to its last action or its first finding.
pub async fn play(session: &Session, target: &Target, id: &Identity, seed: u64) -> Played {
    let started = std::time::Instant::now();
    let played = play_inner(session, target, id, seed).await;
    tracing::debug!(
        "session from {} took {} ms: codes {:?}, end {:?}, finding {:?}",
        session.origin,
        started.elapsed().as_millis(),
        played.codes,
        played.end,
        played.finding.as_ref().map(|c| &c.signature)
    );
    played
}

async fn play_inner(session: &Session, target: &Target, id: &Identity, seed: u64) -> Played {
    let mut conn = match target.ep.connect().await {
        Ok(c) => c,
        Err(e) => {
            return Played {
                end: End::ConnectFailed(e.to_string()),
                ..Played::default()
            };
        }
    };
    conn.timeout = target.timeout;
    let mut p = Player {
        conn,
        target,
        played: Played::default(),
        last_code: 0,
    };
    match p.read(None, true, session).await {
        Read::Reply(r) if r.code == 220 => {}
        Read::Reply(_) => {
            // A refusal in the greeting (554, 421) is the server's right.
            p.played.end = End::Closed;
        }
        Read::Stop => {}
    }
    if !p.stopped() && target.ep.tls == TlsMode::StartTls {
        if let Err(e) = prelude(&mut p.conn, target).await {
            p.played.end = End::Prelude(e.to_string());
        }
    }
    for i in 0..session.actions.len() {
        if p.stopped() {
            break;
        }
        p.played.replies.push(Vec::new());
        match &session.actions[i] {
            Action::Wait { ms } => {
                tokio::time::sleep(Duration::from_millis(u64::from(*ms))).await;
            }
            Action::Write { .. } => p.write(i, session, &id.password).await,
            Action::Auth { .. } => {
                p.auth(i, session, id, seed ^ (i as u64)).await;
            }
        }
    }
    p.conn.shutdown().await;
    p.played
}

/// `--starttls`: EHLO, STARTTLS, handshake, as `authspec run --starttls` does before a
/// scenario's steps, so that findings replay with that flag.
async fn prelude(conn: &mut Conn, target: &Target) -> Result<(), PreludeError> {
    conn.send(b"EHLO authspec.invalid\r\n").await?;
    conn.read_reply("the EHLO reply").await?;
    conn.send(b"STARTTLS\r\n").await?;
    let r = conn.read_reply("the STARTTLS reply").await?;
    if r.code != 220 {
        return Err(PreludeError::StartTlsRefused { code: r.code });
    }
    conn.take_unread();
    conn.upgrade(Arc::clone(&target.ep.tls_config), &target.ep.server_name)
        .await?;
    Ok(())
}

/// Why the `--starttls` prelude did not reach a TLS session.
#[derive(Debug)]
enum PreludeError {
    Conn(ConnError),
    /// RFC 3207 §4: 220 is the only reply that starts the handshake.
    StartTlsRefused {
        code: u16,
    },
}

impl From<ConnError> for PreludeError {
    fn from(e: ConnError) -> Self {
        PreludeError::Conn(e)
    }
}

impl std::fmt::Display for PreludeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PreludeError::Conn(e) => e.fmt(f),
            PreludeError::StartTlsRefused { code } => write!(f, "STARTTLS answered {code}"),
        }
    }
}

impl std::error::Error for PreludeError {}

/// The mechanisms to play as computed exchanges: those the target offers that the
/// fuzzer cannot write as fixed lines.
pub fn computed_mechanisms(offered: &[String]) -> Vec<Mechanism> {
    let mut out: Vec<Mechanism> = offered
        .iter()
        .filter_map(|m| Mechanism::from_name(m.as_bytes()))
        .filter(|m| {
            matches!(
                m,
                Mechanism::CramMd5
                    | Mechanism::DigestMd5
                    | Mechanism::ScramSha1
                    | Mechanism::ScramSha256
            )
        })
        .collect();
    out.sort();
    out.dedup();
    out
}
