//! The runner: plays scenarios against the embedded reference server or any host, or
//! (server-role scenarios) plays the server and judges a client.
//!
//! The data path: [`Scenario`] → [`run`] → one task per scenario, at most `jobs` at
//! once → [`client_role::play`] or [`server_role::play`] → [`ScenarioResult`] →
//! [`RunReport`]. Every read has a timeout and every buffer a bound (see
//! [`crate::conn`]), so a dead or hostile target ends a scenario with an error verdict.

mod applicability;
mod client_process;
pub mod client_role;
pub mod embedded;
pub mod server_role;
mod verdict;

use crate::conn::{Conn, ConnError};
use crate::report::{RunReport, ScenarioResult, TranscriptLine, Verdict};
use crate::scenario::{Role, Scenario, Vars};
use authspec_reference::smtp::reply::{self, Capabilities};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the run reaches the server under test.
#[derive(Debug, Clone)]
pub enum Target {
    /// A fresh reference server per scenario, in-process, on an ephemeral loopback port,
    /// configured with the scenario's `profile`.
    Embedded,
    Remote(RemoteTarget),
}

#[derive(Debug, Clone)]
pub struct RemoteTarget {
    pub addr: String,
    pub tls: TlsMode,
    pub tls_insecure: bool,
    pub ca_file: Option<PathBuf>,
    /// Name for SNI and certificate checks; defaults to the host of `addr`.
    pub sni: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plaintext; scenarios may still run `starttls` steps.
    Plain,
    /// Every scenario begins with STARTTLS, then its own steps (which should start
    /// with EHLO).
    StartTls,
    /// TLS from the first byte.
    Implicit,
}

/// Who plays the client in server-role scenarios.
#[derive(Debug, Clone)]
pub enum ClientUnderTest {
    /// authspec's own reference client.
    Embedded,
    /// A command line with `{host}` and `{port}`, run through `sh -c`.
    Command(String),
    /// Wait on this address for an external client to connect.
    Listen(String),
}

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub target: Target,
    pub vars: Vars,
    pub timeout: Duration,
    pub jobs: usize,
    /// Nonces on both sides derive from this seed, so transcripts are reproducible.
    pub seed: u64,
    pub client: ClientUnderTest,
    /// The SASL mechanisms the client under test implements (`--client-mechanisms`).
    /// `None`: discovered for a client command; PLAIN for `--listen`; every one the
    /// harness serves for the reference client.
    pub client_mechanisms: Option<Vec<String>>,
    pub progress: bool,
    /// A broken SHOULD fails the peer (h2spec's strict mode); by default it is
    /// non-strict.
    pub strict: bool,
    /// The most one scenario may take, all steps together; past it the scenario is an
    /// error. Each read is bounded by `timeout`, but a valid scenario of 1,000
    /// `wait: 60s` steps would otherwise run for 17 hours.
    pub scenario_timeout: Duration,
}

/// The default per-scenario deadline: far above any bundled scenario (the slowest
/// waits out a 2 s `smtpd_timeout`).
pub const DEFAULT_SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

impl RunConfig {
    pub fn embedded() -> RunConfig {
        RunConfig {
            target: Target::Embedded,
            vars: default_vars(),
            timeout: Duration::from_secs(5),
            jobs: default_jobs(),
            seed: 1,
            client: ClientUnderTest::Embedded,
            client_mechanisms: None,
            progress: false,
            strict: false,
            scenario_timeout: DEFAULT_SCENARIO_TIMEOUT,
        }
    }
}

/// The credentials the embedded reference server knows (and the interop peers use).
pub fn default_vars() -> Vars {
    let mut v = Vars::new();
    v.set("user", "alice");
    v.set("password", "wonderland");
    v
}

/// Scenarios are IO-bound: a few per core keeps a 2-core machine busy.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 4)
        .unwrap_or(8)
}

/// The run could not start: no TLS client configuration, or the target is dead.
/// Reported once, not per scenario.
#[derive(Debug)]
pub enum RunError {
    TlsSetup(authspec_reference::net::tls::TlsError),
    TargetUnusable(PreflightError),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::TlsSetup(e) => write!(f, "TLS setup: {e}"),
            RunError::TargetUnusable(e) => write!(f, "target unusable, no scenario run: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Why the preflight session found a target unusable; each names the address.
#[derive(Debug)]
pub enum PreflightError {
    /// Connecting, reading a reply, or the STARTTLS handshake failed.
    Conn {
        addr: String,
        error: ConnError,
    },
    /// RFC 5321 §4.2: a server that will serve us greets with 220.
    Greeting {
        addr: String,
        reply: String,
    },
    Ehlo {
        addr: String,
        code: u16,
    },
    EhloReply {
        addr: String,
        error: reply::EhloError,
    },
}

impl std::fmt::Display for PreflightError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PreflightError::Conn { addr, error } => write!(f, "{addr}: {error}"),
            PreflightError::Greeting { addr, reply } => {
                write!(f, "{addr}: greeting was {reply} instead of 220")
            }
            PreflightError::Ehlo { addr, code } => write!(f, "{addr}: EHLO was answered {code}"),
            PreflightError::EhloReply { addr, error } => write!(f, "{addr}: EHLO reply: {error}"),
        }
    }
}

impl std::error::Error for PreflightError {}

/// What a target offers, learned from one session before the scenarios run.
#[derive(Debug, Clone, Default)]
pub struct Offer {
    pub before_tls: Option<Capabilities>,
    pub after_tls: Option<Capabilities>,
    /// From connect to the complete greeting: a server that looks up the client's
    /// name first, or tarpits every connection, takes seconds.
    pub greeting_delay: Duration,
}

impl Offer {
    /// Why `sc` cannot apply to a target that offered this in `mode`, if it cannot;
    /// `live` when the scenario's profile was not applied to the target.
    pub fn unmet(&self, sc: &Scenario, mode: TlsMode, live: bool) -> Option<String> {
        applicability::unmet(sc, self, mode, live)
    }
}

/// Connection parameters for one session, remote or embedded.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: String,
    pub tls: TlsMode,
    pub server_name: String,
    pub tls_config: Arc<rustls::ClientConfig>,
    pub timeout: Duration,
    /// The port SASL mechanisms name (OAUTHBEARER's `port=`, RFC 7628 §3.1). `None`
    /// for the embedded server: its port is ephemeral, and naming it would make every
    /// transcript (and snapshot) differ from run to run.
    pub sasl_port: Option<u16>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Connect, and for implicit TLS run the handshake at once.
    pub async fn connect(&self) -> Result<Conn, ConnError> {
        let mut conn = Conn::connect(&self.addr, self.timeout).await?;
        if self.tls == TlsMode::Implicit {
            conn.upgrade(Arc::clone(&self.tls_config), &self.server_name)
                .await?;
        }
        Ok(conn)
    }
}

async fn preflight_ehlo(
    conn: &mut Conn,
) -> Result<authspec_reference::smtp::reply::Reply, ConnError> {
    conn.send(b"EHLO preflight.authspec.invalid\r\n").await?;
    conn.read_reply("the EHLO reply").await
}

/// One session up to the EHLO reply (after STARTTLS in `StartTls` mode): what the
/// target offers. A target that does not greet or answer EHLO fails here.
pub async fn preflight(ep: &Endpoint) -> Result<Offer, PreflightError> {
    let what = |error: ConnError| PreflightError::Conn {
        addr: ep.addr.clone(),
        error,
    };
    let connected = Instant::now();
    let mut conn = ep.connect().await.map_err(what)?;
    let greet = conn.read_reply("the greeting").await.map_err(what)?;
    let greeting_delay = connected.elapsed();
    if greet.code != 220 {
        return Err(PreflightError::Greeting {
            addr: ep.addr.clone(),
            reply: String::from_utf8_lossy(&greet.format())
                .trim_end()
                .to_owned(),
        });
    }
    let r = preflight_ehlo(&mut conn).await.map_err(what)?;
    if r.code != 250 {
        return Err(PreflightError::Ehlo {
            addr: ep.addr.clone(),
            code: r.code,
        });
    }
    let before = reply::parse_ehlo(&r).map_err(|error| PreflightError::EhloReply {
        addr: ep.addr.clone(),
        error,
    })?;
    let mut offer = Offer {
        before_tls: Some(before.clone()),
        after_tls: None,
        greeting_delay,
    };
    if ep.tls == TlsMode::Implicit {
        offer.after_tls = offer.before_tls.take();
    } else if before.has("STARTTLS") {
        conn.send(b"STARTTLS\r\n").await.map_err(what)?;
        let r = conn.read_reply("the STARTTLS reply").await.map_err(what)?;
        if r.code == 220 {
            conn.take_unread();
            match conn
                .upgrade(Arc::clone(&ep.tls_config), &ep.server_name)
                .await
            {
                Ok(()) => {
                    let r = preflight_ehlo(&mut conn).await.map_err(what)?;
                    offer.after_tls = reply::parse_ehlo(&r).ok();
                }
                Err(e) if ep.tls == TlsMode::StartTls => return Err(what(e)),
                Err(_) => {}
            }
        }
    }
    let _ = conn.send(b"QUIT\r\n").await;
    conn.shutdown().await;
    Ok(offer)
}

/// Run every scenario and collect the report. Fails early, with one error, when a
/// remote target is dead.
pub async fn run(scenarios: Vec<Scenario>, cfg: &RunConfig) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let scenarios = crate::scenario::expand_mechanisms(scenarios);
    let server_role: Vec<&Scenario> = scenarios
        .iter()
        .filter(|s| s.role == Role::Server)
        .collect();
    let mut shared = Shared::new(cfg).await?;
    if !server_role.is_empty() {
        shared.client_mechanisms = client_mechanisms(cfg, &server_role).await;
    }
    let target_name = match (&cfg.target, &cfg.client) {
        (Target::Embedded, ClientUnderTest::Embedded) => "embedded reference server".to_string(),
        (Target::Remote(r), ClientUnderTest::Embedded) => r.addr.clone(),
        (t, c) if !server_role.is_empty() => {
            let client = match c {
                ClientUnderTest::Command(cmd) => format!("client command `{cmd}`"),
                ClientUnderTest::Listen(a) => format!("clients connecting to {a}"),
                ClientUnderTest::Embedded => "reference client".to_string(),
            };
            let mechs = match &shared.client_mechanisms.known {
                Some(k) => format!(
                    " (mechanisms {}: {})",
                    shared.client_mechanisms.how,
                    if k.is_empty() {
                        "none".to_string()
                    } else {
                        k.join(" ")
                    }
                ),
                None => String::new(),
            };
            match t {
                Target::Remote(r) if server_role.len() < scenarios.len() => {
                    format!("{}; {client}{mechs}", r.addr)
                }
                _ => format!("{client}{mechs}"),
            }
        }
        (Target::Embedded, _) => "embedded reference server".to_string(),
        (Target::Remote(r), _) => r.addr.clone(),
    };
    let mut report = RunReport::new(target_name, cfg.vars.secret_values());
    let mut jobs = cfg.jobs.max(1);
    if let ClientUnderTest::Listen(addr) = &cfg.client {
        // One listening address: scenarios take turns on it, in this order.
        jobs = 1;
        shared.listen_total = server_role.len();
        if !server_role.is_empty() {
            eprintln!(
                "authspec: {} server-role scenarios will be played one at a time on {addr}, in this order:",
                server_role.len()
            );
            for (i, s) in server_role.iter().enumerate() {
                eprintln!("  {:>3}. {} — {}", i + 1, s.id, s.title);
            }
        }
    }
    let shared = Arc::new(shared);
    let progress = if cfg.progress {
        let pb = indicatif::ProgressBar::new(scenarios.len() as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        // Only runs that take longer than a second show the bar.
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        Some(pb)
    } else {
        None
    };
    let sem = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut set = tokio::task::JoinSet::new();
    for (i, sc) in scenarios.into_iter().enumerate() {
        let shared = Arc::clone(&shared);
        let sem = Arc::clone(&sem);
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = run_one(&sc, &shared, i as u64).await;
            (i, r)
        });
    }
    let mut results: Vec<(usize, ScenarioResult)> = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Some(pb) = &progress {
            if started.elapsed() > Duration::from_secs(1) && pb.is_hidden() {
                pb.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            pb.inc(1);
        }
        match joined {
            Ok(r) => results.push(r),
            Err(e) => tracing::error!("scenario task failed: {e}"),
        }
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    results.sort_by_key(|(i, _)| *i);
    report.results = results.into_iter().map(|(_, r)| r).collect();
    report.duration = started.elapsed();
    Ok(report)
}

/// What every scenario task shares.
#[derive(Debug)]
pub struct Shared {
    pub cfg: RunConfig,
    pub remote: Option<(Endpoint, Offer)>,
    pub insecure_tls: Arc<rustls::ClientConfig>,
    /// What the client under test implements, for server-role scenarios.
    pub client_mechanisms: ClientMechanisms,
    /// `--listen`: how many server-role scenarios, and how many announced so far.
    listen_total: usize,
    listen_count: std::sync::atomic::AtomicUsize,
}

/// The SASL mechanisms of the client under test, and how that is known.
#[derive(Debug, Clone, Default)]
pub struct ClientMechanisms {
    /// `None`: not known; no scenario is skipped for a mechanism.
    pub known: Option<Vec<String>>,
    /// `declared with --client-mechanisms`, `discovered by offering each alone`, …
    pub how: String,
}

/// What the client implements: declared, discovered (a client command, when some
/// scenario needs a mechanism), PLAIN for `--listen`, everything for the reference.
async fn client_mechanisms(cfg: &RunConfig, server_role: &[&Scenario]) -> ClientMechanisms {
    if let Some(list) = &cfg.client_mechanisms {
        return ClientMechanisms {
            known: Some(list.clone()),
            how: "declared with --client-mechanisms".into(),
        };
    }
    let all = || {
        server_role::SERVABLE
            .iter()
            .chain(server_role::SERVABLE_OVER_TLS)
            .map(|m| (*m).to_string())
            .collect()
    };
    match &cfg.client {
        ClientUnderTest::Embedded => ClientMechanisms {
            known: Some(all()),
            how: "the reference client implements".into(),
        },
        ClientUnderTest::Listen(_) => ClientMechanisms {
            known: Some(vec!["PLAIN".into()]),
            how: "assumed for --listen; declare others with --client-mechanisms".into(),
        },
        ClientUnderTest::Command(cmd) => {
            if server_role.iter().all(|s| s.requires.mechanisms.is_empty()) {
                return ClientMechanisms::default();
            }
            let found = server_role::discover(cmd, &cfg.vars, cfg.timeout, cfg.jobs).await;
            for (m, r) in &found {
                if let Err(why) = r {
                    tracing::info!("client capability probe: {m}: {why}");
                }
            }
            ClientMechanisms {
                known: Some(
                    found
                        .into_iter()
                        .filter(|(_, r)| r.is_ok())
                        .map(|(m, _)| m)
                        .collect(),
                ),
                how: "discovered by offering each alone".into(),
            }
        }
    }
}

impl Shared {
    /// `--listen`: says which scenario comes next, what the client must use, and how
    /// long authspec waits.
    pub(crate) fn announce(
        &self,
        sc: &Scenario,
        vars: &Vars,
        mechanism: &str,
        local: std::net::SocketAddr,
        wait: Duration,
    ) {
        let n = self
            .listen_count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let user = vars.get("user").unwrap_or("(no user set: --var user=…)");
        let password = match vars.get("password") {
            Some("wonderland") => "wonderland (the built-in test password)",
            Some(_) => "the one given with --var password or password-env",
            None => "(none set: --var password-env=VAR)",
        };
        eprintln!(
            "[{n}/{}] {} — {}\n        connect the client to {local} within {} s; user {user}, password {password}, mechanism {mechanism}",
            self.listen_total,
            sc.id,
            sc.title,
            wait.as_secs_f64()
        );
    }
}

impl Shared {
    async fn new(cfg: &RunConfig) -> Result<Shared, RunError> {
        let insecure = authspec_reference::net::tls::client_config(
            &authspec_reference::net::tls::ServerVerification::Insecure,
        )
        .map_err(RunError::TlsSetup)?;
        let remote = match &cfg.target {
            Target::Embedded => None,
            Target::Remote(r) => {
                let tls_config =
                    crate::conn::tls_client_config(r.tls_insecure, r.ca_file.as_deref())
                        .map_err(RunError::TlsSetup)?;
                let host = crate::support::host_of(&r.addr);
                let ep = Endpoint {
                    addr: r.addr.clone(),
                    tls: r.tls,
                    server_name: r.sni.clone().unwrap_or(host),
                    tls_config,
                    timeout: cfg.timeout,
                    sasl_port: crate::support::port_of(&r.addr),
                };
                // A dead target stops the whole run here, in one timeout, instead of
                // timing out scenario by scenario.
                let offer = preflight(&ep).await.map_err(RunError::TargetUnusable)?;
                let mut ep = ep;
                ep.timeout = fitted_timeout(ep.timeout, offer.greeting_delay);
                Some((ep, offer))
            }
        };
        Ok(Shared {
            cfg: cfg.clone(),
            remote,
            insecure_tls: insecure,
            client_mechanisms: ClientMechanisms::default(),
            listen_total: 0,
            listen_count: std::sync::atomic::AtomicUsize::new(0),
        })
    }
}

/// The per-read timeout for a target whose greeting took `delay`: at least four times
/// the delay, so a server that is slow on purpose (a greeting pause, a tarpit after a
/// failure, usually as long) is waited for rather than judged dead. Said once.
pub(crate) fn fitted_timeout(timeout: Duration, delay: Duration) -> Duration {
    const MAX: Duration = Duration::from_secs(600);
    let wanted = delay.saturating_mul(4).min(MAX);
    if wanted > timeout {
        eprintln!(
            "authspec: the target took {:.1} s to greet; waiting up to {:.0} s for each \
             reply instead of {:.0} s (--timeout to choose)",
            delay.as_secs_f64(),
            wanted.as_secs_f64(),
            timeout.as_secs_f64()
        );
        wanted
    } else {
        timeout
    }
}

async fn run_one(sc: &Scenario, shared: &Shared, index: u64) -> ScenarioResult {
    let started = Instant::now();
    let vars = shared.cfg.vars.with_defaults(&sc.vars);
    // Derived from the id, not the position, so adding a scenario does not change the
    // nonces (and snapshots) of the others.
    let _ = index;
    let seed = shared.cfg.seed ^ fnv1a(sc.id.as_bytes());
    let deadline = shared.cfg.scenario_timeout;
    let play = async {
        match sc.role {
            Role::Client => match &shared.remote {
                Some((ep, offer)) => {
                    if let Some(why) = offer.unmet(sc, ep.tls, true) {
                        ScenarioResult::new(sc, Verdict::Skip { reason: why })
                    } else {
                        client_role::play(sc, ep, &vars, seed, shared.cfg.strict).await
                    }
                }
                None => embedded::play_client_role(sc, shared, &vars, seed).await,
            },
            Role::Server => server_role::play(sc, shared, &vars, seed).await,
        }
    };
    let mut result = match tokio::time::timeout(deadline, play).await {
        Ok(r) => r,
        Err(_) => ScenarioResult::new(
            sc,
            Verdict::Error {
                reason: format!(
                    "the scenario did not finish within its deadline of {} s (--scenario-timeout)",
                    deadline.as_secs_f64()
                ),
            },
        ),
    };
    if result.transcript.is_empty() {
        if let Verdict::Error { reason } = &result.verdict {
            result.transcript.push(TranscriptLine::note(reason.clone()));
        }
    }
    result.duration = started.elapsed();
    result
}

/// FNV-1a: a stable, dependency-free hash for seeds.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
