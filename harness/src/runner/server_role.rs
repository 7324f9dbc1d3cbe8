//! Server-role scenarios: the harness plays a scripted SMTP server and judges the
//! client that connects to it — authspec's reference client, a command (`swaks …
//! {host} {port}`), or any client pointed at `--listen`.

use super::client_process::ClientProcess;
use super::embedded::ProfileError;
use super::verdict::{Judged, Notes, StepEnd, Unreached, record_step, settle};
use super::{ClientUnderTest, Shared};
use crate::conn::{Conn, ConnError};
use crate::report::{ClientExit, FailedStep, ScenarioResult, TranscriptLine, Verdict};
use crate::scenario::{Outcome, Scenario, Step, Vars};
use authspec_reference::net::client::{ClientConnect, Transport, run_client};
use authspec_reference::policy::client::ClientConfig;
use authspec_reference::sasl::channel_binding::ServerBinding;
use authspec_reference::sasl::credentials::MemoryStore;
use authspec_reference::sasl::{
    self, ClientCredentials, Mechanism, SaslError, Secret, SeededRandom, ServerContext,
};
use authspec_reference::smtp::auth_client::MAX_AUTH_ROUNDS;
use authspec_reference::smtp::auth_server::{self, ExchangeError, ExchangeStep, ServerExchange};
use authspec_reference::smtp::client::{
    AuthPlan, ClientPlan, ClientSession, MailPlan, MechanismChooser,
};
use authspec_reference::smtp::command::{self, Command, CommandError, InitialResponse};
use authspec_reference::smtp::line::AUTH_LINE_LIMIT;
use authspec_reference::smtp::reply::{self, ReplyLimits};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest client line a scripted server reads (RFC 4954 §4's AUTH limit).
const LINE_LIMIT: usize = AUTH_LINE_LIMIT + 2;

struct Judge {
    conn: Conn,
    transcript: Vec<TranscriptLine>,
    rng: SeededRandom,
    /// The client command, when it is one (`--client-command`).
    client: Option<ClientProcess>,
    /// An initial response that answers the next `challenge` (see
    /// [`crate::scenario::ExpectCommand::initial_response_answers_challenge`]).
    pending_response: Option<String>,
    timeout: Duration,
    /// The mechanisms of the last `AUTH` line this server sent in an EHLO reply. A
    /// -PLUS name among them, over TLS, turns a client's `y` flag into a detected
    /// downgrade (RFC 5802 §6).
    advertised: Vec<String>,
}

/// The mechanisms whose server side the harness can play (`expect_auth`), and so the
/// ones a client's capabilities are discovered for.
pub const SERVABLE: &[&str] = &[
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "DIGEST-MD5",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "OAUTHBEARER",
    "XOAUTH2",
];

/// A client that closes the connection before sending a message has not broken a rule
/// about that message's content: the step was not reached (info), not failed.
fn not_reached_if_gone(end: StepEnd) -> StepEnd {
    match end {
        StepEnd::Unreached(f, _, Unreached::ClientClosed) => StepEnd::Settled(Verdict::Info {
            note: format!(
                "step {} ({}) not reached: the client closed the connection first",
                f.index + 1,
                f.expected
            ),
        }),
        other => other,
    }
}

/// The -PLUS mechanisms the harness serves after `accept_starttls`, with the
/// connection's channel bindings. Discovery cannot find them (it offers each mechanism
/// without TLS), so a client command declares them with `--client-mechanisms`; the
/// reference client implements them.
pub const SERVABLE_OVER_TLS: &[&str] = &["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"];

fn fail(
    index: usize,
    expected: impl Into<String>,
    actual: impl Into<String>,
    reason: impl Into<String>,
) -> StepEnd {
    StepEnd::Fail(
        FailedStep {
            index,
            expected: expected.into(),
            actual: actual.into(),
        },
        reason.into(),
    )
}

impl Judge {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), StepEnd> {
        if let Some(auth) = ehlo_auth(bytes) {
            self.advertised = auth;
        }
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            self.transcript.push(TranscriptLine::from_bytes(
                crate::report::Direction::Server,
                line,
            ));
        }
        self.conn
            .send(bytes)
            .await
            .map_err(|e| StepEnd::Error(format!("send failed: {e}")))
    }

    async fn line(&mut self, index: usize, what: &'static str) -> Result<String, StepEnd> {
        match self.conn.read_line(LINE_LIMIT, what).await {
            Ok((bytes, bare_lf)) => {
                let text = crate::scenario::display_bytes(&bytes);
                self.transcript.push(TranscriptLine::client(text.clone()));
                if bare_lf {
                    return Err(fail(
                        index,
                        "a line ended by CRLF",
                        format!("{text} (ended by a bare LF)"),
                        "RFC 5321 §2.3.8: lines end with CRLF",
                    ));
                }
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
            Err(ConnError::Closed { .. }) => Err(StepEnd::Unreached(
                FailedStep {
                    index,
                    expected: what.into(),
                    actual: "the client closed the connection".into(),
                },
                "the client went away".into(),
                Unreached::ClientClosed,
            )),
            Err(e) => Err(StepEnd::Error(format!("waiting for {what}: {e}"))),
        }
    }

    fn outcome(index: usize, o: Outcome) -> StepEnd {
        match o {
            Outcome::Pass => StepEnd::Ok,
            Outcome::NonStrict { note } => StepEnd::NonStrict(note),
            Outcome::Info { note } => StepEnd::Info(note),
            Outcome::Fail {
                expected,
                actual,
                reason,
            } => fail(index, expected, actual, reason),
        }
    }

    /// Act as the SASL server for `mechanism`, with the scenario's credentials, and
    /// check that the client authenticates with them. The exchange itself (initial
    /// response rules, `334`, `*`, the final empty response, the round limit and the
    /// reply texts) is the reference server's [`ServerExchange`]; this step only
    /// judges what the client did in it.
    async fn expect_auth(&mut self, index: usize, a: &crate::scenario::ExpectAuth) -> StepEnd {
        let line = match self.line(index, "the AUTH command").await {
            Ok(l) => l,
            Err(e) => return e,
        };
        let (mech_name, ir) = match self.parse_auth(&line) {
            Ok(parts) => parts,
            Err(reason) => {
                return fail(
                    index,
                    format!("AUTH {}", a.mechanism),
                    line,
                    reason.to_string(),
                );
            }
        };
        if !mech_name.eq_ignore_ascii_case(&a.mechanism) {
            return StepEnd::Unreached(
                FailedStep {
                    index,
                    expected: format!("AUTH {}", a.mechanism),
                    actual: line.clone(),
                },
                "the client chose another mechanism".into(),
                Unreached::OtherMechanism,
            );
        }
        let Some(mechanism) = Mechanism::from_name(mech_name.as_bytes()) else {
            return StepEnd::Error(format!("the harness cannot serve {mech_name}"));
        };
        let initial = match auth_server::initial_response(mechanism, ir.as_ref()) {
            Ok(initial) => initial,
            Err(e) => {
                let _ = self.send(&e.reply().wire()).await;
                return fail(
                    index,
                    "an initial response the mechanism allows",
                    line,
                    format!("RFC 4954 §4: {e}"),
                );
            }
        };
        let user = a.user.clone().unwrap_or_default();
        let mut store = MemoryStore::default();
        store.insert_plain(user.clone(), a.password.clone().unwrap_or_default());
        let ctx = ServerContext {
            hostname: super::embedded::HOSTNAME.to_string(),
            realm: None,
            external_identity: None,
            credentials: Arc::new(store),
        };
        // Channel binding as the reference server does it: the connection's bindings
        // once TLS is up, and whether a -PLUS name was offered there.
        let binding = if self.conn.tls {
            ServerBinding {
                bindings: self.conn.channel_bindings.clone(),
                plus_advertised: self.advertised.iter().any(|m| {
                    Mechanism::from_name(m.to_ascii_uppercase().as_bytes())
                        .is_some_and(Mechanism::channel_binding)
                }),
            }
        } else {
            ServerBinding::default()
        };
        let mut exchange = ServerExchange::new(
            sasl::server_with_binding(mechanism, &ctx, &binding, &mut self.rng),
            AUTH_LINE_LIMIT,
        );
        let mut step = exchange.start(initial.as_deref());
        // The exchange ends itself after MAX_AUTH_ROUNDS challenges; the bound here
        // only makes that visible.
        for _ in 0..=MAX_AUTH_ROUNDS {
            match step {
                ExchangeStep::Challenge(text) => {
                    if let Err(e) = self.send(format!("334 {text}\r\n").as_bytes()).await {
                        return e;
                    }
                    let what = if exchange.awaits_final_ack() {
                        "the empty final response"
                    } else {
                        "a SASL response"
                    };
                    let resp = match self.line(index, what).await {
                        Ok(l) => l,
                        Err(e) => return e,
                    };
                    step = exchange.on_response(resp.as_bytes());
                    if let ExchangeStep::Failure(e) = &step {
                        let _ = self.send(&e.reply().wire()).await;
                        return Self::exchange_failed(index, mechanism, &user, e, resp);
                    }
                }
                ExchangeStep::Success(identity) => {
                    if let Some(z) = &a.authzid {
                        if identity.authzid.as_deref() != Some(z.as_str()) {
                            return fail(
                                index,
                                format!("authzid {z}"),
                                identity.authzid.unwrap_or_else(|| "none".into()),
                                "wrong authorization identity",
                            );
                        }
                    }
                    let reply = a.success_reply().bytes();
                    return self.send(&reply).await.err().unwrap_or(StepEnd::Ok);
                }
                ExchangeStep::Failure(e) => {
                    let _ = self.send(&e.reply().wire()).await;
                    return Self::exchange_failed(index, mechanism, &user, &e, line);
                }
            }
        }
        StepEnd::Error("SASL exchange did not end".into())
    }

    /// The AUTH command line through the reference parser. A mechanism name in lower
    /// case breaks RFC 4422 §3.1's naming rule but no MUST of RFC 4954, so it is noted
    /// and the name compared without case, as Postfix and Cyrus do.
    fn parse_auth(
        &mut self,
        line: &str,
    ) -> Result<(String, Option<InitialResponse>), AuthLineError> {
        let parsed = match command::parse(line.as_bytes()) {
            Err(CommandError::MechanismNameNotUpperCase { offset }) => {
                self.transcript.push(TranscriptLine::note(
                    "the mechanism name is not in upper case (RFC 4422 §3.1: SASL \
                     mechanism names consist of uppercase letters, digits, hyphens and \
                     underscores); compared without case",
                ));
                let mut upper = line.as_bytes().to_vec();
                let name_end = upper[offset..]
                    .iter()
                    .position(|b| *b == b' ')
                    .map_or(upper.len(), |p| offset + p);
                upper[offset..name_end].make_ascii_uppercase();
                command::parse(&upper)
            }
            other => other,
        };
        match parsed {
            Ok(Command::Auth {
                mechanism,
                initial_response,
            }) => Ok((mechanism, initial_response)),
            Ok(_) => Err(AuthLineError::NotAuth),
            Err(e) => Err(AuthLineError::Parse(e)),
        }
    }

    /// The verdict on an exchange that the server side ended.
    fn exchange_failed(
        index: usize,
        mechanism: Mechanism,
        user: &str,
        e: &ExchangeError,
        last_line: String,
    ) -> StepEnd {
        match e {
            ExchangeError::Mechanism(SaslError::Cancelled) => {
                fail(index, "credentials", "*", "the client cancelled")
            }
            ExchangeError::Mechanism(m) => fail(
                index,
                format!("valid {mechanism} credentials for {user}"),
                m.to_string(),
                "the client's SASL exchange did not verify",
            ),
            ExchangeError::FinalResponseNotEmpty => fail(
                index,
                "an empty line",
                last_line,
                "RFC 4954 §4: the client answers the final 334 with an empty response",
            ),
            ExchangeError::ResponseNotBase64(_) | ExchangeError::ResponseTooLong => fail(
                index,
                "a base64 response",
                last_line,
                format!("RFC 4954 §4: {e}"),
            ),
            other => fail(
                index,
                format!("a complete {mechanism} exchange"),
                last_line,
                format!("RFC 4954 §4: {other}"),
            ),
        }
    }

    /// `expect_exit`: the client command ends by itself, with the wanted kind of status.
    async fn expect_exit(&mut self, index: usize, x: &crate::scenario::ExpectExit) -> StepEnd {
        let Some(client) = &mut self.client else {
            self.transcript.push(TranscriptLine::note(
                "expect_exit: the client is not a command; no exit status to judge",
            ));
            return StepEnd::Ok;
        };
        // The client may be waiting for the server to close before it exits.
        let exit = match client.wait_for(Duration::from_millis(200)).await {
            Some(e) => e,
            None => {
                self.conn.shutdown().await;
                match client.wait_for(self.timeout).await {
                    Some(e) => e,
                    None => {
                        return fail(
                            index,
                            "the client command ends",
                            format!("still running after {} s", self.timeout.as_secs_f64()),
                            "the client did not exit",
                        );
                    }
                }
            }
        };
        self.transcript.push(TranscriptLine::note(format!(
            "client command ended: {exit}"
        )));
        let want = if x.success {
            "exit status 0 (success)"
        } else {
            "a non-zero exit status (the client reports the failure)"
        };
        if exit.is_success() == x.success && exit.exited() {
            StepEnd::Ok
        } else {
            fail(index, want, exit.to_string(), "the client's exit status")
        }
    }

    /// `accept_starttls`: the client's STARTTLS (RFC 3207 §4), 220, and the handshake
    /// as the server. Bytes the client sent after STARTTLS, before the 220, are
    /// dropped (they would be plaintext injected into the TLS session) and shown.
    async fn accept_starttls(&mut self, index: usize) -> StepEnd {
        let line = match self.line(index, "STARTTLS").await {
            Ok(l) => l,
            Err(e) => return e,
        };
        if !matches!(command::parse(line.as_bytes()), Ok(Command::StartTls)) {
            return fail(
                index,
                "STARTTLS",
                line,
                "the client did not ask for TLS where the server offered it",
            );
        }
        if let Err(e) = self.send(b"220 2.0.0 Ready to start TLS\r\n").await {
            return e;
        }
        let pipelined = self.conn.take_unread();
        let (config, leaf) = match super::embedded::server_tls() {
            Ok(made) => made,
            Err(e) => return StepEnd::Error(format!("the harness's TLS certificate: {e}")),
        };
        if let Err(e) = self.conn.accept_tls(config, &leaf).await {
            return StepEnd::Error(format!("TLS handshake with the client failed: {e}"));
        }
        // The AUTH offer made before TLS does not hold after it (RFC 3207 §4.2).
        self.advertised.clear();
        self.transcript
            .push(TranscriptLine::note(self.conn.handshake_note()));
        if pipelined.is_empty() {
            StepEnd::Ok
        } else {
            StepEnd::NonStrict(format!(
                "the client sent {} octets after STARTTLS without waiting for the 220; \
                 they were discarded",
                pipelined.len()
            ))
        }
    }

    async fn expect_command(
        &mut self,
        index: usize,
        c: &crate::scenario::ExpectCommand,
    ) -> StepEnd {
        let l = match self.line(index, "a command").await {
            Ok(l) => l,
            Err(e) => return e,
        };
        if c.initial_response_answers_challenge {
            // `AUTH <mechanism> <initial response>`
            let mut parts = l.splitn(3, ' ');
            let verb = parts.next().unwrap_or("");
            let _mechanism = parts.next();
            if verb.eq_ignore_ascii_case("AUTH") {
                self.pending_response = parts.next().map(str::to_owned);
            }
        }
        Self::outcome(index, c.evaluate(&l))
    }

    async fn expect_response(
        &mut self,
        index: usize,
        r: &crate::scenario::ExpectResponse,
    ) -> StepEnd {
        if let Some(ir) = self.pending_response.take() {
            return Self::outcome(index, r.evaluate(&ir));
        }
        match self.line(index, "a SASL response").await {
            Ok(l) => Self::outcome(index, r.evaluate(&l)),
            // Leaving breaks "MUST cancel with *", but not a rule about what a
            // response holds: that one was never sent.
            Err(e) if !r.cancel => not_reached_if_gone(e),
            Err(e) => e,
        }
    }

    async fn expect_client_close(
        &mut self,
        index: usize,
        cc: &crate::scenario::ExpectClientClose,
    ) -> StepEnd {
        let max = cc
            .max_commands
            .unwrap_or(if cc.reply_to_others.is_some() { 3 } else { 0 });
        let mut others = 0u32;
        // A polite client may send QUIT first; answer it and keep waiting. Other
        // commands are answered with `reply_to_others`, up to `max`.
        for _ in 0..(max.saturating_add(4)).min(64) {
            match self.conn.read_line(LINE_LIMIT, "close").await {
                Ok((l, _)) => {
                    let text = crate::scenario::display_bytes(&l);
                    self.transcript.push(TranscriptLine::client(text.clone()));
                    if l.eq_ignore_ascii_case(b"QUIT") {
                        let _ = self.send(b"221 2.0.0 Bye\r\n").await;
                        continue;
                    }
                    if let Some(r) = &cc.reply_to_others {
                        if others < max {
                            others += 1;
                            if let Err(e) = self.send(&r.bytes()).await {
                                return e;
                            }
                            continue;
                        }
                        return fail(
                            index,
                            format!("the client closes after at most {max} more commands"),
                            text,
                            format!("the client went on after {others} refused commands"),
                        );
                    }
                    return fail(
                        index,
                        "the client closes (or QUITs)",
                        text,
                        "the client went on",
                    );
                }
                Err(ConnError::Closed { .. }) | Err(ConnError::Io(_)) => {
                    self.transcript
                        .push(TranscriptLine::note("connection closed by the client"));
                    return StepEnd::Ok;
                }
                Err(e) => {
                    return fail(
                        index,
                        "the client closes",
                        e.to_string(),
                        "the client did not close",
                    );
                }
            }
        }
        fail(
            index,
            "the client closes",
            "more commands",
            "the client did not close",
        )
    }

    async fn expect_no_command(
        &mut self,
        index: usize,
        d: crate::scenario::WaitDuration,
    ) -> StepEnd {
        match self.conn.read_available(d.duration()).await {
            Ok(b) if b.is_empty() => StepEnd::Ok,
            Ok(b) => {
                let text = crate::scenario::display_bytes(&b);
                self.transcript.push(TranscriptLine::client(text.clone()));
                fail(
                    index,
                    format!("silence for {d}"),
                    text,
                    "the client sent something it must not",
                )
            }
            Err(ConnError::Closed { .. }) => {
                self.transcript
                    .push(TranscriptLine::note("connection closed by the client"));
                StepEnd::Ok
            }
            Err(e) => StepEnd::Error(e.to_string()),
        }
    }

    async fn step(&mut self, index: usize, step: &Step) -> StepEnd {
        match step {
            Step::Reply(r) => self.send(&r.bytes()).await.err().unwrap_or(StepEnd::Ok),
            Step::Challenge(_) if self.pending_response.is_some() => {
                self.transcript.push(TranscriptLine::note(
                    "challenge not sent: the initial response already answered it",
                ));
                StepEnd::Ok
            }
            Step::Challenge(c) => self.send(&c.bytes()).await.err().unwrap_or(StepEnd::Ok),
            Step::Send(s) => match s.bytes() {
                Ok(b) => self.send(&b).await.err().unwrap_or(StepEnd::Ok),
                Err(e) => StepEnd::Error(format!("bad escape: {e}")),
            },
            Step::SendBytes(s) => match s.bytes() {
                Ok(b) => self.send(&b).await.err().unwrap_or(StepEnd::Ok),
                Err(e) => StepEnd::Error(format!("bad hex: {e}")),
            },
            Step::ExpectCommand(c) => self.expect_command(index, c).await,
            Step::ExpectResponse(r) => self.expect_response(index, r).await,
            Step::ExpectExit(x) => self.expect_exit(index, x).await,
            Step::ExpectAuth(a) => {
                let end = not_reached_if_gone(self.expect_auth(index, a).await);
                match end {
                    // A level of its own judges the exchange; the choice of mechanism
                    // that precedes it is not part of that rule.
                    StepEnd::Unreached(f, _, Unreached::OtherMechanism) if a.level.is_some() => {
                        StepEnd::Settled(Verdict::Info {
                            note: format!(
                                "step {} not reached: the client chose another mechanism ({})",
                                f.index + 1,
                                f.actual
                            ),
                        })
                    }
                    other => other,
                }
            }
            Step::ExpectClientClose(cc) => self.expect_client_close(index, cc).await,
            Step::ExpectNoCommand(d) => self.expect_no_command(index, *d).await,
            Step::Wait(d) => {
                tokio::time::sleep(d.duration()).await;
                StepEnd::Ok
            }
            Step::AcceptStarttls(_) => self.accept_starttls(index).await,
            other => StepEnd::Error(format!(
                "`{}` is a client-role step and cannot run in a server-role scenario",
                other.kind()
            )),
        }
    }
}

/// The AUTH mechanisms of `bytes` when they are a well-formed EHLO reply with an AUTH
/// keyword (RFC 4954 §3), read by the reference's own reply and EHLO parsers.
fn ehlo_auth(bytes: &[u8]) -> Option<Vec<String>> {
    let (reply, _) = reply::parse_reply(bytes, &ReplyLimits::default()).ok()??;
    reply::parse_ehlo(&reply).ok()?.auth
}

/// A chooser for the embedded client: the scenario's `mechanism` variable if set,
/// else the policy's choice.
#[derive(Debug)]
struct Chooser {
    config: ClientConfig,
    forced: Option<Mechanism>,
}

impl MechanismChooser for Chooser {
    fn choose(&self, offered: &[String], tls: bool) -> Result<Mechanism, String> {
        if let Some(m) = self.forced {
            return authspec_reference::smtp::client::Forced(m).choose(offered, tls);
        }
        self.config.choose(offered, tls)
    }
}

/// Start the embedded reference client against `addr`, configured from the scenario's
/// `profile` (smtp_* parameters) and variables.
fn spawn_embedded_client(
    sc: &Scenario,
    vars: &Vars,
    addr: String,
    timeout: Duration,
    seed: u64,
    insecure: Arc<rustls::ClientConfig>,
) -> Result<tokio::task::JoinHandle<()>, ProfileError> {
    let cf = super::embedded::profile_main_cf(
        "smtp_sasl_auth_enable = yes\n",
        "(embedded client)",
        sc,
        |k| k.starts_with("smtp_") || k == "relayhost",
    )?;
    let config = ClientConfig::from_main_cf(&cf).map_err(ProfileError::Parameter)?;
    let forced = vars
        .get("mechanism")
        .and_then(|m| Mechanism::from_name(m.as_bytes()));
    let starttls = config.starttls_policy();
    let plan = ClientPlan {
        helo_name: "client.authspec.test".into(),
        starttls,
        auth: Some(AuthPlan {
            credentials: ClientCredentials {
                authcid: vars.get("user").unwrap_or("alice").to_string(),
                password: Secret::from(vars.get("password").unwrap_or("wonderland")),
                authzid: vars.get("authzid").map(str::to_string),
                host: super::embedded::HOSTNAME.into(),
                port: None,
            },
            channel_binding_types: config.channel_binding_types.clone(),
            chooser: Box::new(Chooser { config, forced }),
        }),
        auth_required: false,
        mail: Some(MailPlan {
            from: "alice@authspec.test".into(),
            to: vec!["bob@authspec.test".into()],
            body: b"Subject: authspec server-role scenario\r\n\r\nhello\r\n".to_vec(),
        }),
    };
    let connect = ClientConnect {
        addr,
        transport: Transport::Plain,
        tls: Some(insecure),
        server_name: super::embedded::HOSTNAME.into(),
        timeout,
    };
    let session = ClientSession::new(plan, Box::new(SeededRandom::from_seed(seed)), false);
    Ok(tokio::spawn(async move {
        let _ = run_client(&connect, session).await;
    }))
}

/// The command with `{host}`, `{port}`, `{mechanism}` and `{cafile}` (the certificate
/// the harness serves after `accept_starttls`, for a client that verifies) filled in.
pub fn fill_command(template: &str, host: &str, port: u16, mechanism: &str) -> String {
    let filled = template
        .replace("{host}", host)
        .replace("{port}", &port.to_string())
        .replace("{mechanism}", mechanism);
    if !filled.contains("{cafile}") {
        return filled;
    }
    match super::embedded::server_cert_file() {
        Ok(path) => filled.replace("{cafile}", &path.display().to_string()),
        // The command then names a file that does not exist, and says so itself.
        Err(e) => {
            tracing::warn!("{{cafile}}: {e}");
            filled
        }
    }
}

/// What `{mechanism}` stands for in a scenario: its `${mechanism}`, else the client's
/// preferred known mechanism (PLAIN, then LOGIN, then the first known), else PLAIN.
fn mechanism_for(vars: &Vars, known: Option<&[String]>) -> String {
    if let Some(m) = vars.get("mechanism") {
        return m.to_owned();
    }
    let known = known.unwrap_or(&[]);
    for pref in ["PLAIN", "LOGIN"] {
        if known.iter().any(|k| k.eq_ignore_ascii_case(pref)) {
            return pref.to_owned();
        }
    }
    known.first().cloned().unwrap_or_else(|| "PLAIN".to_owned())
}

/// Why a server-role scenario cannot judge this client, if it cannot.
fn unmet(sc: &Scenario, shared: &Shared) -> Option<String> {
    let external = !matches!(shared.cfg.client, ClientUnderTest::Embedded);
    if external {
        // smtp_tls_security_level=may or encrypt only makes the reference client take
        // the STARTTLS the scenario offers; any client may be judged on what follows.
        let enables_tls = |k: &str, v: &str| {
            k == "smtp_tls_security_level" && matches!(v.trim(), "may" | "encrypt")
        };
        if let Some(k) = sc
            .profile
            .iter()
            .find(|(k, v)| k.starts_with("smtp_") && !enables_tls(k, v))
            .map(|(k, _)| k)
        {
            return Some(format!(
                "judges the reference client's own configuration ({k} = {}); an external client never receives it",
                sc.profile[k]
            ));
        }
    }
    let caps = &shared.client_mechanisms;
    if let Some(known) = &caps.known {
        for m in &sc.requires.mechanisms {
            if !known.iter().any(|k| k.eq_ignore_ascii_case(m)) {
                return Some(format!(
                    "the client does not implement {m} ({}: {})",
                    caps.how,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(" ")
                    }
                ));
            }
        }
    }
    None
}

/// Waits for the client to connect; a client command that ends first is reported as
/// such, with what it said.
async fn accept(
    listener: &tokio::net::TcpListener,
    within: Duration,
    client: &mut Option<ClientProcess>,
) -> Result<(tokio::net::TcpStream, std::net::SocketAddr), AcceptError> {
    let accepted = async {
        match tokio::time::timeout(within, listener.accept()).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(AcceptError::Accept(e)),
            Err(_) => Err(AcceptError::NoClient { within }),
        }
    };
    match client {
        None => accepted.await,
        Some(c) => {
            tokio::select! {
                r = accepted => r,
                exit = c.wait() => Err(AcceptError::ClientEnded { exit }),
            }
        }
    }
}

/// Why no client connection came to judge.
#[derive(Debug)]
pub enum AcceptError {
    Accept(std::io::Error),
    NoClient { within: Duration },
    ClientEnded { exit: ClientExit },
}

impl std::fmt::Display for AcceptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AcceptError::Accept(e) => write!(f, "accept: {e}"),
            AcceptError::NoClient { within } => {
                write!(f, "no client connected within {} s", within.as_secs_f64())
            }
            AcceptError::ClientEnded { exit } => {
                write!(f, "the client command ended before connecting ({exit})")
            }
        }
    }
}

impl std::error::Error for AcceptError {}

/// Why the AUTH line could not be judged as an AUTH command (RFC 4954 §4).
#[derive(Debug)]
enum AuthLineError {
    NotAuth,
    Parse(CommandError),
}

impl std::fmt::Display for AuthLineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthLineError::NotAuth => f.write_str("expected an AUTH command"),
            AuthLineError::Parse(e) => write!(f, "the AUTH command does not parse: {e}"),
        }
    }
}

impl std::error::Error for AuthLineError {}

pub async fn play(sc: &Scenario, shared: &Shared, vars: &Vars, seed: u64) -> ScenarioResult {
    let mut result = ScenarioResult::new(sc, Verdict::Pass);
    if let Some(why) = unmet(sc, shared) {
        result.verdict = Verdict::Skip { reason: why };
        return result;
    }
    let (listener, local) = match listen(shared).await {
        Ok(l) => l,
        Err(e) => {
            result.verdict = Verdict::Error {
                reason: e.to_string(),
            };
            return result;
        }
    };
    let timeout = shared.cfg.timeout;
    let accept_within = match shared.cfg.client {
        ClientUnderTest::Listen(_) => timeout * 12,
        _ => timeout,
    };
    let (mut child, task) = match start_client(sc, shared, vars, seed, local, accept_within) {
        Ok(started) => started,
        Err(e) => {
            result.verdict = Verdict::Error {
                reason: e.to_string(),
            };
            if let StartError::Command(out) = e {
                result.client = Some(*out);
            }
            return result;
        }
    };
    let (stream, peer) = match accept(&listener, accept_within, &mut child).await {
        Ok(s) => s,
        Err(e) => {
            result.verdict = Verdict::Error {
                reason: e.to_string(),
            };
            if let Some(c) = child {
                result.client = Some(c.finish(Duration::from_millis(500)).await);
            }
            return result;
        }
    };
    drop(listener);
    let _ = stream.set_nodelay(true);
    let mut judge = Judge {
        conn: Conn::from_io(Box::new(stream), timeout),
        transcript: Vec::new(),
        rng: SeededRandom::from_seed(seed ^ 0x5eed),
        client: child,
        pending_response: None,
        advertised: Vec::new(),
        timeout,
    };
    if let ClientUnderTest::Listen(_) = shared.cfg.client {
        judge.transcript.push(TranscriptLine::note(format!(
            "client connected from {peer}"
        )));
    }
    let verdict = run_steps(sc, shared, vars, &mut judge, &mut result).await;
    judge.conn.shutdown().await;
    if let Some(t) = task {
        t.abort();
    }
    if let Some(c) = judge.client.take() {
        // Closing the connection ends most clients at once; a stuck one is stopped.
        result.client = Some(c.finish(timeout.min(Duration::from_secs(3))).await);
    }
    result.verdict = verdict;
    result.transcript = judge.transcript;
    result
}

/// Why the scenario's listening socket could not be opened.
#[derive(Debug)]
enum ListenError {
    Bind { addr: String, error: std::io::Error },
    LocalAddr(std::io::Error),
}

impl std::fmt::Display for ListenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenError::Bind { addr, error } => write!(f, "listen on {addr}: {error}"),
            ListenError::LocalAddr(e) => write!(f, "listen: {e}"),
        }
    }
}

impl std::error::Error for ListenError {}

/// The socket the client under test connects to: `--client-listen`'s address, else an
/// ephemeral loopback port.
async fn listen(
    shared: &Shared,
) -> Result<(tokio::net::TcpListener, std::net::SocketAddr), ListenError> {
    let addr = match &shared.cfg.client {
        ClientUnderTest::Listen(a) => a.clone(),
        _ => "127.0.0.1:0".to_string(),
    };
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(error) => return Err(ListenError::Bind { addr, error }),
    };
    let local = listener.local_addr().map_err(ListenError::LocalAddr)?;
    Ok((listener, local))
}

/// Why the client under test was not started.
#[derive(Debug)]
enum StartError {
    Profile(ProfileError),
    /// The client command did not start; its output goes into the result.
    Command(Box<crate::report::ClientOutput>),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Profile(e) => e.fmt(f),
            StartError::Command(out) => {
                write!(f, "the client command could not start ({})", out.exit)
            }
        }
    }
}

impl std::error::Error for StartError {}

/// Starts the client under test towards `local`: the embedded client's task, the
/// client command's process, or (for `--client-listen`) the announcement of where to
/// connect.
fn start_client(
    sc: &Scenario,
    shared: &Shared,
    vars: &Vars,
    seed: u64,
    local: std::net::SocketAddr,
    accept_within: Duration,
) -> Result<(Option<ClientProcess>, Option<tokio::task::JoinHandle<()>>), StartError> {
    let mechanism = mechanism_for(vars, shared.client_mechanisms.known.as_deref());
    match &shared.cfg.client {
        ClientUnderTest::Embedded => {
            let task = spawn_embedded_client(
                sc,
                vars,
                local.to_string(),
                shared.cfg.timeout,
                seed,
                Arc::clone(&shared.insecure_tls),
            )
            .map_err(StartError::Profile)?;
            Ok((None, Some(task)))
        }
        ClientUnderTest::Command(template) => {
            let cmd = fill_command(template, &local.ip().to_string(), local.port(), &mechanism);
            let env = [
                ("AUTHSPEC_USER", vars.get("user").unwrap_or("")),
                ("AUTHSPEC_PASSWORD", vars.get("password").unwrap_or("")),
                ("AUTHSPEC_MECHANISM", mechanism.as_str()),
            ];
            let child = ClientProcess::spawn(&cmd, &env)
                .map_err(|out| StartError::Command(Box::new(out)))?;
            Ok((Some(child), None))
        }
        ClientUnderTest::Listen(_) => {
            shared.announce(sc, vars, &mechanism, local, accept_within);
            Ok((None, None))
        }
    }
}

/// Plays the scenario's steps against the connected client until one ends it; the
/// verdict before the notes settle it.
async fn run_steps(
    sc: &Scenario,
    shared: &Shared,
    vars: &Vars,
    judge: &mut Judge,
    result: &mut ScenarioResult,
) -> Verdict {
    let mut verdict = Verdict::Pass;
    let mut notes = Notes::default();
    for (i, step) in sc.steps().iter().enumerate() {
        let started = Instant::now();
        let step = match step.expand(vars) {
            Ok(s) => s,
            Err(e) => {
                verdict = Verdict::Error {
                    reason: format!("step {}: {e}", i + 1),
                };
                break;
            }
        };
        let end = judge.step(i, &step).await;
        let judged = Judged::of(sc, &step, shared.cfg.strict);
        if let Some(v) = record_step(result, &mut notes, i, step.kind(), started, end, &judged) {
            verdict = v;
            break;
        }
    }
    settle(verdict, &notes)
}

/// Finds which of [`SERVABLE`] a client command implements: one short session per
/// mechanism, offering it alone (`{mechanism}` filled in), noting whether the client
/// answers with `AUTH <it>`. Sessions run `jobs` at a time; each is bounded by
/// `timeout`.
pub async fn discover(
    template: &str,
    vars: &Vars,
    timeout: Duration,
    jobs: usize,
) -> Vec<(String, Result<(), NotImplemented>)> {
    let sem = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, m) in SERVABLE.iter().enumerate() {
        let sem = Arc::clone(&sem);
        let template = template.to_owned();
        let user = vars.get("user").unwrap_or("").to_owned();
        let password = vars.get("password").unwrap_or("").to_owned();
        let m = (*m).to_owned();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = probe_one(&template, &m, &user, &password, timeout).await;
            (i, m, r)
        });
    }
    let mut out = Vec::new();
    while let Some(j) = set.join_next().await {
        if let Ok(r) = j {
            out.push(r);
        }
    }
    out.sort_by_key(|(i, _, _)| *i);
    out.into_iter().map(|(_, m, r)| (m, r)).collect()
}

async fn probe_one(
    template: &str,
    m: &str,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Result<(), NotImplemented> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(NotImplemented::Listen)?;
    let local = listener.local_addr().map_err(NotImplemented::Listen)?;
    let cmd = fill_command(template, &local.ip().to_string(), local.port(), m);
    let env = [
        ("AUTHSPEC_USER", user),
        ("AUTHSPEC_PASSWORD", password),
        ("AUTHSPEC_MECHANISM", m),
    ];
    let mut child =
        Some(ClientProcess::spawn(&cmd, &env).map_err(|o| NotImplemented::Spawn(o.exit))?);
    let outcome = async {
        let (stream, _) = accept(&listener, timeout, &mut child)
            .await
            .map_err(NotImplemented::Accept)?;
        let mut conn = Conn::from_io(Box::new(stream), timeout);
        let line = |r: Result<(Vec<u8>, bool), ConnError>| {
            r.map(|(b, _)| String::from_utf8_lossy(&b).into_owned())
                .map_err(NotImplemented::Then)
        };
        conn.send(b"220 mx.example.com ESMTP authspec capability probe\r\n")
            .await
            .map_err(NotImplemented::Send)?;
        let hello = line(conn.read_line(LINE_LIMIT, "EHLO").await)?;
        if !hello.to_ascii_uppercase().starts_with("EHLO") {
            return Err(NotImplemented::NotEhlo { sent: hello });
        }
        conn.send(format!("250-mx.example.com\r\n250 AUTH {m}\r\n").as_bytes())
            .await
            .map_err(NotImplemented::Send)?;
        let next = line(conn.read_line(LINE_LIMIT, "AUTH").await)?;
        let _ = conn
            .send(b"421 4.3.2 authspec: capability probe done, closing\r\n")
            .await;
        conn.shutdown().await;
        let mut words = next.split(' ');
        let verb = words.next().unwrap_or("");
        let mech = words.next().unwrap_or("");
        if verb.eq_ignore_ascii_case("AUTH") && mech.eq_ignore_ascii_case(m) {
            Ok(())
        } else {
            let shown = if verb.eq_ignore_ascii_case("AUTH") {
                format!("AUTH {mech}")
            } else {
                crate::scenario::display_bytes(verb.as_bytes())
            };
            Err(NotImplemented::OtherAnswer {
                mechanism: m.to_owned(),
                sent: shown,
            })
        }
    }
    .await;
    if let Some(c) = child {
        let _ = c.finish(Duration::from_millis(300)).await;
    }
    outcome
}

/// Why the capability probe counts a mechanism as not implemented by the client.
#[derive(Debug)]
pub enum NotImplemented {
    Listen(std::io::Error),
    /// The client command did not start.
    Spawn(ClientExit),
    Accept(AcceptError),
    Send(ConnError),
    /// Reading the client's next line failed.
    Then(ConnError),
    NotEhlo {
        sent: String,
    },
    /// Offered the mechanism alone, the client sent something other than AUTH with it.
    OtherAnswer {
        mechanism: String,
        sent: String,
    },
}

impl std::fmt::Display for NotImplemented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotImplemented::Listen(e) => write!(f, "listen: {e}"),
            NotImplemented::Spawn(exit) => exit.fmt(f),
            NotImplemented::Accept(e) => e.fmt(f),
            NotImplemented::Send(e) => e.fmt(f),
            NotImplemented::Then(e) => write!(f, "then {e}"),
            NotImplemented::NotEhlo { sent } => write!(f, "sent {sent:?} instead of EHLO"),
            NotImplemented::OtherAnswer { mechanism, sent } => {
                write!(f, "offered {mechanism} alone, it sent {sent}")
            }
        }
    }
}

impl std::error::Error for NotImplemented {}
