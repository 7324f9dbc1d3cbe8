//! Server-role scenarios: the harness plays a scripted SMTP server and judges the
//! client that connects to it — authspec's reference client, a command (`swaks …
//! {host} {port}`), or any client pointed at `--listen`.

use super::verdict::{Judged, StepEnd, record_step, settle};
use super::{ClientUnderTest, Shared};
use crate::conn::{Conn, ConnError};
use crate::report::{FailedStep, ScenarioResult, TranscriptLine, Verdict};
use crate::scenario::{Outcome, Scenario, Step, Vars};
use authspec_reference::net::client::{ClientConnect, Transport, run_client};
use authspec_reference::policy::client::ClientConfig;
use authspec_reference::policy::maincf::MainCf;
use authspec_reference::sasl::credentials::MemoryStore;
use authspec_reference::sasl::{
    self, ClientCredentials, Mechanism, Secret, SeededRandom, ServerContext, ServerStep,
};
use authspec_reference::smtp::client::{
    AuthPlan, ClientPlan, ClientSession, MailPlan, MechanismChooser,
};
use authspec_reference::smtp::sasl_frame::{self, ClientMessage};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest client line a scripted server reads (RFC 4954 §4's AUTH limit).
const LINE_LIMIT: usize = 12_288 + 2;

struct Judge {
    conn: Conn,
    transcript: Vec<TranscriptLine>,
    rng: SeededRandom,
}

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
            Err(ConnError::Closed { .. }) => Err(fail(
                index,
                what,
                "the client closed the connection",
                "the client went away",
            )),
            Err(e) => Err(StepEnd::Error(format!("waiting for {what}: {e}"))),
        }
    }

    fn outcome(index: usize, o: Outcome) -> StepEnd {
        match o {
            Outcome::Pass => StepEnd::Ok,
            Outcome::NonStrict { note } => StepEnd::NonStrict(note),
            Outcome::Fail {
                expected,
                actual,
                reason,
            } => fail(index, expected, actual, reason),
        }
    }

    /// Act as the SASL server for `mechanism`, with the scenario's credentials, and
    /// check that the client authenticates with them.
    async fn expect_auth(&mut self, index: usize, a: &crate::scenario::ExpectAuth) -> StepEnd {
        let line = match self.line(index, "the AUTH command").await {
            Ok(l) => l,
            Err(e) => return e,
        };
        let mut parts = line.splitn(3, ' ');
        let verb = parts.next().unwrap_or("");
        let mech_name = parts.next().unwrap_or("");
        let ir = parts.next();
        if !verb.eq_ignore_ascii_case("AUTH") {
            return fail(
                index,
                format!("AUTH {}", a.mechanism),
                line,
                "expected an AUTH command",
            );
        }
        if !mech_name.eq_ignore_ascii_case(&a.mechanism) {
            return fail(
                index,
                format!("AUTH {}", a.mechanism),
                line.clone(),
                "the client chose another mechanism",
            );
        }
        let Some(mechanism) = Mechanism::from_name(mech_name.as_bytes()) else {
            return StepEnd::Error(format!("the harness cannot serve {mech_name}"));
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
        let mut server = sasl::server(mechanism, &ctx, &mut self.rng);
        let first = match ir {
            None => None,
            Some(text) => match sasl_frame::decode_initial_response(text.as_bytes()) {
                Ok(b) => Some(b),
                Err(e) => {
                    let _ = self.send(b"501 5.5.2 Cannot decode response\r\n").await;
                    return fail(
                        index,
                        "a base64 initial response",
                        text.to_string(),
                        format!("RFC 4954 §4: bad base64 ({e:?})"),
                    );
                }
            },
        };
        let mut step = server.step(first.as_deref());
        for _ in 0..16 {
            match step {
                ServerStep::Challenge(c) => {
                    let text = sasl_frame::encode_challenge(&c);
                    if let Err(e) = self.send(format!("334 {text}\r\n").as_bytes()).await {
                        return e;
                    }
                    let resp = match self.line(index, "a SASL response").await {
                        Ok(l) => l,
                        Err(e) => return e,
                    };
                    match sasl_frame::decode_response(resp.as_bytes()) {
                        Ok(ClientMessage::Cancel) => {
                            let _ = self.send(b"501 5.7.0 Authentication aborted\r\n").await;
                            return fail(index, "credentials", "*", "the client cancelled");
                        }
                        Ok(ClientMessage::Data(d)) => step = server.step(Some(&d)),
                        Err(e) => {
                            let _ = self.send(b"501 5.5.2 Cannot decode response\r\n").await;
                            return fail(
                                index,
                                "a base64 response",
                                resp,
                                format!("RFC 4954 §4: bad base64 ({e:?})"),
                            );
                        }
                    }
                }
                ServerStep::Success {
                    identity,
                    additional,
                } => {
                    if let Some(extra) = additional {
                        let text = sasl_frame::encode_challenge(&extra);
                        if let Err(e) = self.send(format!("334 {text}\r\n").as_bytes()).await {
                            return e;
                        }
                        match self.line(index, "the empty final response").await {
                            Ok(l) if l.is_empty() => {}
                            Ok(l) => {
                                return fail(
                                    index,
                                    "an empty line",
                                    l,
                                    "RFC 4954 §4: the client answers the final 334 with an empty response",
                                );
                            }
                            Err(e) => return e,
                        }
                    }
                    if let Some(z) = &a.authzid {
                        if identity.authzid.as_deref() != Some(z.as_str()) {
                            return fail(
                                index,
                                format!("authzid {z}"),
                                format!("{:?}", identity.authzid),
                                "wrong authorization identity",
                            );
                        }
                    }
                    let reply = a.success_reply().bytes();
                    return self.send(&reply).await.err().unwrap_or(StepEnd::Ok);
                }
                ServerStep::Failure(e) => {
                    let _ = self
                        .send(b"535 5.7.8 Error: authentication failed\r\n")
                        .await;
                    return fail(
                        index,
                        format!("valid {mechanism} credentials for {user}"),
                        format!("{e:?}"),
                        "the client's SASL exchange did not verify",
                    );
                }
            }
        }
        StepEnd::Error("SASL exchange did not end".into())
    }

    async fn step(&mut self, index: usize, step: &Step) -> StepEnd {
        match step {
            Step::Reply(r) => self.send(&r.bytes()).await.err().unwrap_or(StepEnd::Ok),
            Step::Challenge(c) => self.send(&c.bytes()).await.err().unwrap_or(StepEnd::Ok),
            Step::Send(s) => match s.bytes() {
                Ok(b) => self.send(&b).await.err().unwrap_or(StepEnd::Ok),
                Err(e) => StepEnd::Error(format!("bad escape: {e}")),
            },
            Step::SendBytes(s) => match s.bytes() {
                Ok(b) => self.send(&b).await.err().unwrap_or(StepEnd::Ok),
                Err(e) => StepEnd::Error(format!("bad hex: {e}")),
            },
            Step::ExpectCommand(c) => match self.line(index, "a command").await {
                Ok(l) => Self::outcome(index, c.evaluate(&l)),
                Err(e) => e,
            },
            Step::ExpectResponse(r) => match self.line(index, "a SASL response").await {
                Ok(l) => Self::outcome(index, r.evaluate(&l)),
                Err(e) => e,
            },
            Step::ExpectAuth(a) => self.expect_auth(index, a).await,
            Step::ExpectClientClose(_) => {
                // A polite client may send QUIT first; answer it and keep waiting.
                for _ in 0..4 {
                    match self.conn.read_line(LINE_LIMIT, "close").await {
                        Ok((l, _)) => {
                            let text = crate::scenario::display_bytes(&l);
                            self.transcript.push(TranscriptLine::client(text.clone()));
                            if l.eq_ignore_ascii_case(b"QUIT") {
                                let _ = self.send(b"221 2.0.0 Bye\r\n").await;
                                continue;
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
            Step::ExpectNoCommand(d) => match self.conn.read_available(d.duration()).await {
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
            },
            Step::Wait(d) => {
                tokio::time::sleep(d.duration()).await;
                StepEnd::Ok
            }
            other => StepEnd::Error(format!(
                "`{}` is a client-role step and cannot run in a server-role scenario",
                other.kind()
            )),
        }
    }
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
) -> Result<tokio::task::JoinHandle<()>, String> {
    let mut cf = MainCf::parse("smtp_sasl_auth_enable = yes\n", "(embedded client)")
        .map_err(|e| e.to_string())?;
    for (k, v) in &sc.profile {
        if k.starts_with("smtp_") || k == "relayhost" {
            cf.set_override(&format!("{k}={v}"))
                .map_err(|e| format!("profile: {e}"))?;
        }
    }
    let config = ClientConfig::from_main_cf(&cf).map_err(|e| format!("profile: {e}"))?;
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

pub async fn play(sc: &Scenario, shared: &Shared, vars: &Vars, seed: u64) -> ScenarioResult {
    let mut result = ScenarioResult::new(sc, Verdict::Pass);
    let bind = match &shared.cfg.client {
        ClientUnderTest::Listen(a) => a.clone(),
        _ => "127.0.0.1:0".to_string(),
    };
    let listener = match tokio::net::TcpListener::bind(&bind).await {
        Ok(l) => l,
        Err(e) => {
            result.verdict = Verdict::Error {
                reason: format!("listen on {bind}: {e}"),
            };
            return result;
        }
    };
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            result.verdict = Verdict::Error {
                reason: format!("listen: {e}"),
            };
            return result;
        }
    };
    let timeout = shared.cfg.timeout;
    let mut child: Option<tokio::process::Child> = None;
    let mut task: Option<tokio::task::JoinHandle<()>> = None;
    match &shared.cfg.client {
        ClientUnderTest::Embedded => {
            match spawn_embedded_client(
                sc,
                vars,
                local.to_string(),
                timeout,
                seed,
                Arc::clone(&shared.insecure_tls),
            ) {
                Ok(t) => task = Some(t),
                Err(e) => {
                    result.verdict = Verdict::Error { reason: e };
                    return result;
                }
            }
        }
        ClientUnderTest::Command(cmd) => {
            let cmd = cmd
                .replace("{host}", &local.ip().to_string())
                .replace("{port}", &local.port().to_string());
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c")
                .arg(&cmd)
                .env("AUTHSPEC_USER", vars.get("user").unwrap_or(""))
                .env("AUTHSPEC_PASSWORD", vars.get("password").unwrap_or(""))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true);
            match c.spawn() {
                Ok(ch) => child = Some(ch),
                Err(e) => {
                    result.verdict = Verdict::Error {
                        reason: format!("client command: {e}"),
                    };
                    return result;
                }
            }
        }
        ClientUnderTest::Listen(_) => {
            eprintln!("waiting for a client on {local} for scenario {}", sc.id);
        }
    }
    let accept_within = match shared.cfg.client {
        ClientUnderTest::Listen(_) => timeout * 12,
        _ => timeout,
    };
    let stream = match tokio::time::timeout(accept_within, listener.accept()).await {
        Ok(Ok((s, _))) => s,
        Ok(Err(e)) => {
            result.verdict = Verdict::Error {
                reason: format!("accept: {e}"),
            };
            return result;
        }
        Err(_) => {
            result.verdict = Verdict::Error {
                reason: format!("no client connected within {} s", accept_within.as_secs()),
            };
            return result;
        }
    };
    let _ = stream.set_nodelay(true);
    let mut judge = Judge {
        conn: Conn::from_io(Box::new(stream), timeout),
        transcript: Vec::new(),
        rng: SeededRandom::from_seed(seed ^ 0x5eed),
    };
    let mut verdict = Verdict::Pass;
    let mut notes = Vec::new();
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
        if let Some(v) = record_step(
            &mut result,
            &mut notes,
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
    let verdict = settle(verdict, &notes);
    judge.conn.shutdown().await;
    if let Some(t) = task {
        t.abort();
    }
    if let Some(mut c) = child {
        let _ = c.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(2), c.wait()).await;
    }
    result.verdict = verdict;
    result.transcript = judge.transcript;
    result
}
