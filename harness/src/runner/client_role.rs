//! Client-role scenarios: the harness is the SMTP client, the target is judged.

use super::verdict::{Judged, Notes, StepEnd, record_step, settle};
use super::{Endpoint, TlsMode};
use crate::conn::{Conn, ConnError};
use crate::report::{FailedStep, ScenarioResult, TranscriptLine, Verdict};
use crate::scenario::{Advertised, Expect, InitialResponse, Outcome, Scenario, Step, Vars};
use authspec_reference::sasl::{self, ClientCredentials, Mechanism, Secret, SeededRandom};
use authspec_reference::smtp::auth_client::{
    CancelReason, ClientExchange, ClientStep, InitialResponseMode, MAX_AUTH_ROUNDS,
};
use authspec_reference::smtp::reply::{self as smtp_reply, Capabilities, Reply, Separator};
use authspec_reference::smtp::sasl_frame;
use std::sync::Arc;
use std::time::Instant;

/// The sentence a reply without an enhanced code breaks once ENHANCEDSTATUSCODES was
/// advertised, whatever level the scenario checks at.
const ENHANCED_CODES_RULE: &str = "RFC 2034 §4: \"These codes must appear in all 2xx, \
    4xx, and 5xx response lines other than initial greeting and any response to HELO or \
    EHLO.\" RFC 3463 §2: the class is the first digit of the reply code.";

/// The state of one played scenario.
pub(crate) struct Play<'a> {
    pub conn: Conn,
    pub ep: &'a Endpoint,
    pub transcript: Vec<TranscriptLine>,
    pub notes: Notes,
    pub rng: SeededRandom,
    /// The previous step wrote `STARTTLS` as the first line of a `pipeline` (the
    /// CVE-2011-0411 injection shape), so the next `starttls` step must not send it
    /// again: it only reads the reply and runs the handshake.
    pub starttls_pipelined: bool,
    /// The capabilities of the last EHLO reply in this session, forgotten after
    /// STARTTLS (RFC 3207 §4.2) and HELO. Conditions on enhanced codes and the use of
    /// pipelining depend on them.
    pub caps: Option<Capabilities>,
    /// The last line sent was EHLO, so the next 250 reply lists the capabilities.
    pub ehlo_pending: bool,
    /// The scenario pipelines on purpose where PIPELINING may not be advertised (the
    /// STARTTLS injection of CVE-2011-0411 is an attack, not a use of RFC 2920).
    pub pipeline_unadvertised: bool,
    /// The last command line written by a `send` step, to repeat a MAIL after
    /// authenticating on demand.
    pub last_command: Vec<u8>,
    /// A 235 was seen in this session.
    pub authenticated: bool,
    /// The run's credentials, for authenticating on demand.
    pub user: Option<String>,
    pub password: Option<String>,
    /// The index of the scenario's last step that authenticates (an `auth` step or an
    /// `AUTH` line): authenticating on demand before it would change what it checks.
    pub last_auth_step: Option<usize>,
    /// Replies kept by `remember`, for `same_as`; a scenario names few.
    pub remembered: std::collections::BTreeMap<String, Vec<String>>,
}

pub(crate) fn reply_lines(r: &Reply) -> Vec<String> {
    r.lines
        .iter()
        .map(|l| {
            let sep = match l.sep {
                Separator::Hyphen => "-",
                Separator::Space => " ",
                Separator::None => "",
            };
            format!("{}{}{}", l.code, sep, String::from_utf8_lossy(&l.text))
        })
        .collect()
}

impl Play<'_> {
    fn client(&mut self, bytes: &[u8]) {
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            self.transcript.push(TranscriptLine::from_bytes(
                crate::report::Direction::Client,
                line,
            ));
        }
    }

    fn client_sasl(&mut self, line: &str, payload: &[u8]) {
        self.transcript.push(TranscriptLine::client(format!(
            "{line}   [decoded: {}]",
            crate::scenario::display_bytes(payload)
        )));
    }

    fn server(&mut self, r: &Reply) {
        for l in reply_lines(r) {
            let decoded = if r.code == 334 {
                l.get(4..)
                    .and_then(|t| sasl_frame::decode_challenge(t.as_bytes()).ok())
                    .filter(|d| !d.is_empty())
                    .map(|d| format!("   [decoded: {}]", crate::scenario::display_bytes(&d)))
            } else {
                None
            };
            self.transcript.push(TranscriptLine::server(format!(
                "{l}{}",
                decoded.unwrap_or_default()
            )));
        }
        for d in &r.deviations {
            self.transcript.push(TranscriptLine::note(format!(
                "reply deviation: {}",
                authspec_reference::human::describe(d)
            )));
        }
    }

    fn advertised(&self) -> Advertised {
        Advertised {
            enhanced_status_codes: self
                .caps
                .as_ref()
                .is_some_and(|c| c.has("ENHANCEDSTATUSCODES")),
        }
    }

    /// Notes what a line the client sends does to the session's capabilities.
    fn track_command(&mut self, bytes: &[u8]) {
        let verb = bytes.get(..4).map(<[u8]>::to_ascii_uppercase);
        match verb.as_deref() {
            Some(b"EHLO") => self.ehlo_pending = true,
            // HELO opens a session without extensions (RFC 5321 §4.1.1.1).
            Some(b"HELO") => self.caps = None,
            _ => {}
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), StepEnd> {
        self.track_command(bytes);
        self.last_command = bytes.to_vec();
        self.client(bytes);
        self.conn
            .send(bytes)
            .await
            .map_err(|e| StepEnd::Error(format!("send failed: {e}")))
    }

    async fn read(&mut self, what: &'static str) -> Result<Reply, StepEnd> {
        match self.conn.read_reply(what).await {
            Ok(r) => {
                self.server(&r);
                self.authenticated |= r.code == 235;
                if std::mem::take(&mut self.ehlo_pending) && r.code == 250 {
                    self.caps = smtp_reply::parse_ehlo(&r).ok();
                }
                Ok(r)
            }
            Err(e) => Err(conn_end(e, what)),
        }
    }

    fn judge(&mut self, index: usize, expect: &Expect, r: &Reply) -> StepEnd {
        let lines = reply_lines(r);
        if let Some(name) = &expect.remember {
            self.remembered.insert(name.clone(), lines.clone());
        }
        if let Some(name) = &expect.same_as {
            let Some(kept) = self.remembered.get(name) else {
                return StepEnd::Error(format!("no reply was kept as {name:?} before this step"));
            };
            if *kept != lines {
                return StepEnd::Fail(
                    FailedStep {
                        index,
                        expected: format!(
                            "the same lines as the reply kept as {name:?}: {}",
                            kept.join(" / ")
                        ),
                        actual: lines.join("\n"),
                    },
                    format!("the reply differs from the reply kept as {name:?}"),
                );
            }
        }
        let adv = self.advertised();
        if let Some(reason) = expect.enhanced_rule_broken(&lines, adv) {
            return StepEnd::FailRule {
                failed: FailedStep {
                    index,
                    expected: expect.describe(),
                    actual: lines.join("\n"),
                },
                reason,
                quote: ENHANCED_CODES_RULE.to_owned(),
            };
        }
        let ending = expect
            .alternatives
            .iter()
            .find(|a| a.check_in(&lines, adv).is_ok())
            .filter(|a| a.end);
        match expect.evaluate_in(&lines, adv) {
            Outcome::NonStrict { note } if ending.is_some() => {
                StepEnd::Settled(Verdict::NonStrict { note })
            }
            Outcome::Info { note } if ending.is_some() => StepEnd::Settled(Verdict::Info { note }),
            Outcome::Pass => StepEnd::Ok,
            Outcome::NonStrict { note } => StepEnd::NonStrict(note),
            Outcome::Info { note } => StepEnd::Info(note),
            Outcome::Fail {
                expected,
                actual,
                reason,
            } => StepEnd::Fail(
                FailedStep {
                    index,
                    expected,
                    actual,
                },
                reason,
            ),
        }
    }

    async fn expect(&mut self, index: usize, expect: &Expect) -> StepEnd {
        let r = match self.read("a reply").await {
            Ok(r) => r,
            Err(e) => return e,
        };
        let end = self.judge(index, expect, &r);
        if end.is_acceptable() || !self.refused_unauthenticated_mail(&r) {
            return end;
        }
        self.authenticate_first(index, expect).await
    }

    /// The server answered MAIL with 530 before any AUTH: RFC 4954 §6 lets a server
    /// require authentication first ("530 5.7.0 Authentication required ... SHOULD be
    /// returned by any command other than AUTH, EHLO, HELO, NOOP, RSET, or QUIT when
    /// server policy requires authentication"). That is a policy, not a fault.
    fn refused_unauthenticated_mail(&self, r: &Reply) -> bool {
        r.code == 530
            && !self.authenticated
            && self
                .last_command
                .get(..5)
                .is_some_and(|v| v.eq_ignore_ascii_case(b"MAIL "))
    }

    /// Authenticate with the run's credentials through a mechanism the server offers,
    /// repeat the refused MAIL and judge its reply instead.
    async fn authenticate_first(&mut self, index: usize, expect: &Expect) -> StepEnd {
        const PREFERENCE: [&str; 6] = [
            "PLAIN",
            "LOGIN",
            "CRAM-MD5",
            "SCRAM-SHA-256",
            "SCRAM-SHA-1",
            "DIGEST-MD5",
        ];
        if self.last_auth_step.is_some_and(|last| last > index) {
            return StepEnd::Skip(
                "the server requires AUTH before MAIL (RFC 4954 §6 allows it), and this \
                 scenario needs an unauthenticated mail transaction before its own AUTH"
                    .into(),
            );
        }
        let mechanism = PREFERENCE
            .iter()
            .find(|m| self.caps.as_ref().is_some_and(|c| c.offers_mechanism(m)));
        let (Some(mechanism), Some(user), Some(password)) =
            (mechanism, self.user.clone(), self.password.clone())
        else {
            return StepEnd::Skip(
                "the server requires AUTH before MAIL (RFC 4954 §6 allows it), and no \
                 offered mechanism and credentials are at hand to authenticate first"
                    .into(),
            );
        };
        self.transcript.push(TranscriptLine::note(format!(
            "the server requires AUTH before MAIL (RFC 4954 §6 allows it); \
             authenticating with {mechanism} first, then repeating MAIL"
        )));
        let auth = crate::scenario::Auth {
            mechanism: (*mechanism).to_owned(),
            user: Some(user),
            password: Some(password),
            authzid: None,
            token: None,
            initial_response: InitialResponse::Auto,
            expect: None,
            channel_binding: None,
        };
        let end = Box::pin(self.auth(index, &auth)).await;
        if !end.is_acceptable() {
            return StepEnd::Skip(
                "the server requires AUTH before MAIL (RFC 4954 §6 allows it), and \
                 authenticating first did not succeed"
                    .into(),
            );
        }
        let mail = self.last_command.clone();
        if let Err(e) = self.send(&mail).await {
            return e;
        }
        match self.read("the reply to the repeated MAIL").await {
            Ok(r) => self.judge(index, expect, &r),
            Err(e) => e,
        }
    }

    /// The client side of `mechanism`; SCRAM -PLUS binds to this connection's TLS
    /// channel (RFC 5802 §6), or to altered data as the step's `channel_binding` asks.
    fn client_mechanism(
        &mut self,
        mechanism: Mechanism,
        creds: &ClientCredentials,
        a: &crate::scenario::Auth,
    ) -> Result<Box<dyn sasl::ClientMechanism>, BindingError> {
        use authspec_reference::sasl::channel_binding::{CbType, ClientBinding};
        use authspec_reference::sasl::scram;
        let Some((hash, plus)) = scram::family(mechanism) else {
            if a.channel_binding.is_some() {
                return Err(BindingError::NotScram { mechanism });
            }
            return Ok(sasl::client(mechanism, creds, &mut self.rng));
        };
        let spec = a.channel_binding.clone().unwrap_or_default();
        let bindings = &self.conn.channel_bindings;
        let binding = if plus {
            let cb_type = match &spec.cb_type {
                Some(name) => CbType::from_name(name.as_bytes())
                    .ok_or_else(|| BindingError::UnknownType { name: name.clone() })?,
                None => *bindings.types().first().ok_or(BindingError::NoTlsChannel)?,
            };
            let data = bindings
                .get(cb_type)
                .ok_or(BindingError::NoData { cb_type })?;
            let data = match spec.data {
                crate::scenario::BindingData::Connection => data.to_vec(),
                crate::scenario::BindingData::Mitm => data.iter().map(|b| !b).collect(),
            };
            Some((cb_type, data))
        } else {
            None
        };
        let binding = ClientBinding {
            binding,
            supported: false,
        };
        let mut client =
            scram::ScramClient::new(hash, creds, &mut self.rng).with_binding(plus, binding);
        if let Some(header) = spec.c_header {
            client = client.with_c_header(header.into_bytes());
        }
        Ok(Box::new(client))
    }

    /// A SASL exchange whose responses come from the server's real challenges.
    async fn auth(&mut self, index: usize, a: &crate::scenario::Auth) -> StepEnd {
        let Some(mechanism) = Mechanism::from_name(a.mechanism.as_bytes()) else {
            return StepEnd::Error(format!(
                "the harness does not implement the {} mechanism; use `sasl` steps",
                a.mechanism
            ));
        };
        let password = a
            .password
            .clone()
            .or_else(|| a.token.clone())
            .unwrap_or_default();
        let creds = ClientCredentials {
            authcid: a.user.clone().unwrap_or_default(),
            password: Secret::from(password),
            authzid: a.authzid.clone(),
            host: self.ep.server_name.clone(),
            port: self.ep.sasl_port,
        };
        let client = match self.client_mechanism(mechanism, &creds, a) {
            Ok(c) => c,
            Err(e) => return StepEnd::Error(e.to_string()),
        };
        let mut x = ClientExchange::new(client);
        let mode = match a.initial_response {
            InitialResponse::Never => InitialResponseMode::Never,
            InitialResponse::Auto => InitialResponseMode::Auto,
            InitialResponse::Always => InitialResponseMode::Always,
        };
        let cmd = match x.command(mode) {
            Ok(cmd) => cmd,
            Err(e) => return StepEnd::Error(format!("client SASL error: {e}")),
        };
        match &cmd.initial_response {
            Some(payload) => self.client_sasl(&cmd.line, payload),
            None => self
                .transcript
                .push(TranscriptLine::client(cmd.line.clone())),
        }
        if let Err(e) = self.conn.send(format!("{}\r\n", cmd.line).as_bytes()).await {
            return StepEnd::Error(format!("send failed: {e}"));
        }
        loop {
            let r = match self.read("an AUTH reply").await {
                Ok(r) => r,
                Err(e) => return e,
            };
            if r.code != 334 || x.is_cancelled() {
                let end = self.judge(index, &a.expectation(), &r);
                if !matches!(end, StepEnd::Ok | StepEnd::NonStrict(_) | StepEnd::Info(_)) {
                    return end;
                }
                if let ClientStep::Unverified(e) = x.on_reply(&r) {
                    return StepEnd::Fail(
                        FailedStep {
                            index,
                            expected: "the server proves its identity (mutual authentication)"
                                .into(),
                            actual: format!("{e}"),
                        },
                        "RFC 4422 §3.7: the client must verify the server's final message".into(),
                    );
                }
                return end;
            }
            if r.is_bare_334() {
                self.notes
                    .non_strict
                    .push("server sent `334` without the space RFC 4954 §4 requires".into());
            }
            match x.on_reply(&r) {
                ClientStep::Respond { line, payload } => {
                    self.client_sasl(&line, &payload);
                    if let Err(e) = self.conn.send(format!("{line}\r\n").as_bytes()).await {
                        return StepEnd::Error(format!("send failed: {e}"));
                    }
                }
                ClientStep::Cancel(CancelReason::ChallengeNotBase64(e)) => {
                    return StepEnd::Fail(
                        FailedStep {
                            index,
                            expected: "334 followed by base64".into(),
                            actual: reply_lines(&r).join(" / "),
                        },
                        format!("RFC 4954 §4: the challenge is not base64 ({e})"),
                    );
                }
                ClientStep::Cancel(why) => {
                    // RFC 4954 §4: a client that cannot go on cancels with `*`.
                    self.transcript.push(TranscriptLine::note(format!(
                        "client cannot answer the challenge ({why}); cancelling"
                    )));
                    self.transcript.push(TranscriptLine::client("*"));
                    if let Err(e) = self.conn.send(b"*\r\n").await {
                        return StepEnd::Error(format!("send failed: {e}"));
                    }
                }
                ClientStep::TooManyRounds => {
                    return StepEnd::Fail(
                        FailedStep {
                            index,
                            expected: format!(
                                "an end to the exchange within {MAX_AUTH_ROUNDS} challenges"
                            ),
                            actual: "more 334 challenges".into(),
                        },
                        "the server never ends the SASL exchange".into(),
                    );
                }
                ClientStep::Success | ClientStep::Unverified(_) | ClientStep::Ended => {}
            }
        }
    }

    /// The answers to a smuggling payload, classified. Safe: a refusal (4xx/5xx), a
    /// close, or exactly one reply for the whole payload (the smuggled lines stayed
    /// message data). Vulnerable: the data ended early and the smuggled MAIL got a
    /// reply of its own, so it ran as a command.
    async fn smuggling(&mut self, index: usize) -> StepEnd {
        /// How long to wait for a reply to the smuggled command once the first came:
        /// a server that pipelines answers at once.
        const QUIET: std::time::Duration = std::time::Duration::from_secs(2);
        /// A vulnerable server answers the hidden MAIL and then the final ".": a few
        /// replies say all there is to say.
        const MAX_REPLIES: usize = 6;
        let full = self.conn.timeout;
        let mut replies: Vec<Reply> = Vec::new();
        let mut closed = false;
        while replies.len() < MAX_REPLIES {
            self.conn.timeout = if replies.is_empty() {
                full
            } else {
                QUIET.min(full)
            };
            let got = self.conn.read_reply("the reply to the DATA payload").await;
            self.conn.timeout = full;
            match got {
                Ok(r) => {
                    self.server(&r);
                    replies.push(r);
                }
                Err(ConnError::Closed { .. }) => {
                    closed = true;
                    break;
                }
                Err(ConnError::Timeout { .. }) if !replies.is_empty() => break,
                Err(e) => return conn_end(e, "the reply to the DATA payload"),
            }
        }
        let outcome = match (replies.first().map(|r| r.code), replies.len(), closed) {
            (Some(code), _, _) if code >= 400 => {
                format!(
                    "safe: refused with {code}{}",
                    if closed { " and closed" } else { "" }
                )
            }
            (None, _, true) => "safe: closed without a reply".to_owned(),
            (Some(_), 1, false) => {
                "safe: one reply for the whole payload (the smuggled lines stayed message data)"
                    .to_owned()
            }
            (Some(_), 1, true) => "safe: one reply, then closed".to_owned(),
            (Some(_), _, _) => {
                let shown: Vec<String> = replies.iter().skip(1).flat_map(reply_lines).collect();
                return StepEnd::Fail(
                    FailedStep {
                        index,
                        expected: "a refusal, a close, or one reply for one message".into(),
                        actual: reply_lines(&replies[0])
                            .into_iter()
                            .chain(shown.iter().cloned())
                            .collect::<Vec<_>>()
                            .join("\n"),
                    },
                    format!(
                        "vulnerable: the data ended before CRLF \".\" CRLF and the smuggled \
                         MAIL was answered as a command ({})",
                        shown.join(" / ")
                    ),
                );
            }
            (None, _, false) => {
                return StepEnd::Error("no reply to the DATA payload".into());
            }
        };
        self.transcript.push(TranscriptLine::note(outcome.clone()));
        let reference = closed && replies.len() == 1 && replies[0].code == 521;
        if reference {
            StepEnd::Ok
        } else {
            StepEnd::Info(outcome)
        }
    }

    async fn starttls(&mut self, index: usize, s: &crate::scenario::Starttls) -> StepEnd {
        if !std::mem::take(&mut self.starttls_pipelined) {
            if let Err(e) = self.send(b"STARTTLS\r\n").await {
                return e;
            }
        }
        let r = match self.read("the STARTTLS reply").await {
            Ok(r) => r,
            Err(e) => return e,
        };
        let end = self.judge(index, &s.expectation(), &r);
        if !matches!(end, StepEnd::Ok | StepEnd::NonStrict(_) | StepEnd::Info(_))
            || r.code != 220
            || !s.handshake
        {
            return end;
        }
        let injected = self.conn.take_unread();
        if !injected.is_empty() {
            // The "NO STARTTLS" response injection: the client must discard these.
            self.transcript.push(TranscriptLine::note(format!(
                "discarded {} octets sent after the STARTTLS 220, before the handshake: {}",
                injected.len(),
                crate::scenario::display_bytes(&injected)
            )));
        }
        match self
            .conn
            .upgrade(Arc::clone(&self.ep.tls_config), &self.ep.server_name)
            .await
        {
            Ok(()) => {
                // RFC 3207 §4.2: the client MUST discard what it learnt before TLS.
                self.caps = None;
                self.transcript
                    .push(TranscriptLine::note(self.conn.handshake_note()));
                end
            }
            Err(e) => StepEnd::Error(format!("TLS handshake failed: {e}")),
        }
    }

    pub(crate) async fn step(&mut self, index: usize, step: &Step) -> StepEnd {
        let pipelined_starttls = match step {
            Step::Pipeline(lines) => lines
                .first()
                .is_some_and(|l| l.trim_end().eq_ignore_ascii_case("STARTTLS")),
            Step::Starttls(_) => self.starttls_pipelined,
            _ => false,
        };
        self.starttls_pipelined = pipelined_starttls;
        match step {
            Step::Send(s) => match s.bytes() {
                Ok(b) => self.send(&b).await.err().unwrap_or(StepEnd::Ok),
                Err(e) => StepEnd::Error(format!("bad escape: {e}")),
            },
            Step::SendBytes(s) => match s.bytes() {
                Ok(b) => self.send(&b).await.err().unwrap_or(StepEnd::Ok),
                Err(e) => StepEnd::Error(format!("bad hex: {e}")),
            },
            Step::Pipeline(_)
                if !self.pipeline_unadvertised
                    && !self.caps.as_ref().is_some_and(|c| c.has("PIPELINING")) =>
            {
                StepEnd::Skip(
                    "the target did not advertise PIPELINING in this session, so a client \
                     may not pipeline (RFC 2920 §3.1)"
                        .into(),
                )
            }
            Step::Pipeline(lines) => {
                let mut b = Vec::new();
                for l in lines {
                    b.extend_from_slice(l.as_bytes());
                    b.extend_from_slice(b"\r\n");
                }
                self.send(&b).await.err().unwrap_or(StepEnd::Ok)
            }
            Step::Expect(e) => self.expect(index, e).await,
            Step::ExpectClose(c) => {
                let within = self.conn.timeout;
                match self.conn.expect_close(within).await {
                    Ok(replies) => {
                        for r in &replies {
                            self.server(r);
                        }
                        self.transcript
                            .push(TranscriptLine::note("connection closed by the server"));
                        match (&c.code, replies.last()) {
                            (None, _) => StepEnd::Ok,
                            (Some(code), Some(r)) if code.matches(r.code) => StepEnd::Ok,
                            (Some(code), last) => StepEnd::Fail(
                                FailedStep {
                                    index,
                                    expected: format!("a {code} reply, then close"),
                                    actual: last
                                        .map(|r| reply_lines(r).join(" / "))
                                        .unwrap_or_else(|| "close without a reply".into()),
                                },
                                "wrong reply before the close".into(),
                            ),
                        }
                    }
                    Err(ConnError::Timeout { .. }) => StepEnd::Fail(
                        FailedStep {
                            index,
                            expected: "the server closes the connection".into(),
                            actual: format!("still open after {} ms", within.as_millis()),
                        },
                        "the server did not close the connection".into(),
                    ),
                    Err(e) => StepEnd::Error(e.to_string()),
                }
            }
            Step::Auth(a) => self.auth(index, a).await,
            Step::ExpectSmuggling(_) => self.smuggling(index).await,
            Step::Sasl(s) => match s.bytes() {
                Ok(b) => self.send(&b).await.err().unwrap_or(StepEnd::Ok),
                Err(e) => StepEnd::Error(format!("bad escape: {e}")),
            },
            Step::Starttls(s) => self.starttls(index, s).await,
            Step::Wait(d) => {
                tokio::time::sleep(d.duration()).await;
                StepEnd::Ok
            }
            Step::Quit(_) => {
                if let Err(e) = self.send(b"QUIT\r\n").await {
                    return e;
                }
                let end = self.expect(index, &Expect::code(221)).await;
                if !matches!(end, StepEnd::Ok) {
                    return end;
                }
                match self.conn.expect_close(self.conn.timeout).await {
                    Ok(_) => StepEnd::Ok,
                    Err(_) => StepEnd::Fail(
                        FailedStep {
                            index,
                            expected: "close after 221".into(),
                            actual: "connection left open".into(),
                        },
                        "RFC 5321 §4.1.1.10: the server MUST close after replying to QUIT".into(),
                    ),
                }
            }
            other => StepEnd::Error(format!(
                "`{}` is a server-role step and cannot run in a client-role scenario",
                other.kind()
            )),
        }
    }
}

pub(crate) fn conn_end(e: ConnError, what: &str) -> StepEnd {
    match e {
        ConnError::Closed { partial } => StepEnd::Fail(
            FailedStep {
                index: 0,
                expected: what.to_string(),
                actual: format!("connection closed ({partial} octets of a partial reply)"),
            },
            "the server closed the connection".into(),
        ),
        other => StepEnd::Error(format!("waiting for {what}: {other}")),
    }
}

impl Play<'_> {
    /// `--starttls` before the scenario's steps: greeting, EHLO, STARTTLS, handshake.
    async fn starttls_prelude(&mut self) -> Result<(), StepEnd> {
        let g = self.read("the greeting").await?;
        if g.code != 220 {
            return Err(StepEnd::Error(format!("greeting {}", g.code)));
        }
        self.send(b"EHLO authspec.invalid\r\n").await?;
        self.read("the EHLO reply").await?;
        match self
            .starttls(0, &crate::scenario::Starttls::default())
            .await
        {
            StepEnd::Ok | StepEnd::NonStrict(_) | StepEnd::Info(_) => Ok(()),
            other => Err(other),
        }
    }
}

/// A failed `--starttls` prelude is the run's error, not the scenario's failure.
fn prelude_verdict(e: StepEnd) -> Verdict {
    match e {
        StepEnd::Error(r) => Verdict::Error { reason: r },
        StepEnd::Fail(_, r) => Verdict::Error {
            reason: format!("STARTTLS prelude: {r}"),
        },
        _ => Verdict::Error {
            reason: "STARTTLS prelude failed".into(),
        },
    }
}

/// The steps without a leading greeting expectation: the scenario expects to read the
/// greeting first, and over `--starttls` the prelude has read it.
fn without_greeting(steps: &[Step]) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::with_capacity(steps.len());
    let mut skipped_greeting = false;
    for s in steps {
        if !skipped_greeting {
            if let Step::Expect(e) = s {
                // `code: 220`, or a transcript's `S: 220 …` (compiled to
                // `reply_lines` without a code).
                let greeting = e.code.as_ref().is_some_and(|c| c.matches(220))
                    || (e.code.is_none()
                        && e.reply_lines.first().is_some_and(|l| l.starts_with("220")));
                if greeting {
                    skipped_greeting = true;
                    continue;
                }
            }
            skipped_greeting = true;
        }
        out.push(s.clone());
    }
    out
}

/// The index of the last step that authenticates.
fn last_auth_step(steps: &[Step]) -> Option<usize> {
    steps.iter().rposition(|s| match s {
        Step::Auth(_) => true,
        Step::Send(s) => s
            .line()
            .get(..5)
            .is_some_and(|v| v.eq_ignore_ascii_case("AUTH ")),
        _ => false,
    })
}

/// Play `sc` against `ep` from connect to the last step.
pub async fn play(
    sc: &Scenario,
    ep: &Endpoint,
    vars: &Vars,
    seed: u64,
    strict: bool,
) -> ScenarioResult {
    let mut result = ScenarioResult::new(sc, Verdict::Pass);
    let conn = match ep.connect().await {
        Ok(c) => c,
        Err(e) => {
            result.verdict = Verdict::Error {
                reason: format!("connect: {e}"),
            };
            return result;
        }
    };
    let mut play = Play {
        conn,
        ep,
        transcript: Vec::new(),
        notes: Notes::default(),
        rng: SeededRandom::from_seed(seed),
        starttls_pipelined: false,
        caps: None,
        ehlo_pending: false,
        pipeline_unadvertised: sc.tags.iter().any(|t| t == "injection"),
        last_command: Vec::new(),
        authenticated: false,
        user: vars.get("user").map(str::to_owned),
        password: vars.get("password").map(str::to_owned),
        remembered: std::collections::BTreeMap::new(),
        last_auth_step: None,
    };
    // `--starttls`: every scenario runs inside TLS; the greeting and the first EHLO are
    // consumed here, and the scenario's own steps begin after the handshake.
    // A scenario that runs its own STARTTLS starts in plaintext on a fresh connection.
    let steps = if ep.tls == TlsMode::StartTls && !super::applicability::has_starttls_step(sc) {
        if let Err(e) = play.starttls_prelude().await {
            result.verdict = prelude_verdict(e);
            result.transcript = play.transcript;
            return result;
        }
        without_greeting(sc.steps())
    } else {
        sc.steps().to_vec()
    };
    play.last_auth_step = last_auth_step(&steps);
    let mut verdict = Verdict::Pass;
    for (i, step) in steps.iter().enumerate() {
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
        let end = play.step(i, &step).await;
        let judged = Judged::of(sc, &step, strict);
        if let Some(v) = record_step(
            &mut result,
            &mut play.notes,
            i,
            step.kind(),
            started,
            end,
            &judged,
        ) {
            verdict = v;
            break;
        }
    }
    let verdict = settle(verdict, &play.notes);
    play.conn.shutdown().await;
    result.verdict = verdict;
    result.transcript = play.transcript;
    result
}

/// Why an `auth` step's `channel_binding` cannot be honoured (RFC 5802 §6).
#[derive(Debug)]
enum BindingError {
    NotScram {
        mechanism: Mechanism,
    },
    UnknownType {
        name: String,
    },
    /// A -PLUS mechanism without a TLS channel to bind to.
    NoTlsChannel,
    NoData {
        cb_type: authspec_reference::sasl::channel_binding::CbType,
    },
}

impl std::fmt::Display for BindingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindingError::NotScram { mechanism } => write!(
                f,
                "channel_binding applies to SCRAM mechanisms, not {}",
                mechanism.name()
            ),
            BindingError::UnknownType { name } => {
                write!(f, "unknown channel binding type {name:?}")
            }
            BindingError::NoTlsChannel => f.write_str(
                "a -PLUS mechanism needs TLS with channel-binding data; add a `starttls` \
                 step or run with --starttls or --tls",
            ),
            BindingError::NoData { cb_type } => {
                write!(
                    f,
                    "this TLS connection has no {cb_type} channel-binding data"
                )
            }
        }
    }
}

impl std::error::Error for BindingError {}
