//! `authspec load`: a bounded SMTP AUTH load generator.
//!
//! Each of `concurrency` tasks loops over whole sessions — connect, greeting, EHLO,
//! (STARTTLS, EHLO), AUTH with responses computed from the server's real challenges,
//! optionally MAIL/RCPT/DATA, QUIT — until the session count or the duration is used
//! up. Every read has a timeout ([`Conn`]), the number of sessions and the run time
//! are capped, and so is the memory kept for latency samples, so a dead or hostile
//! target cannot make the generator hang or grow.
//!
//! The report carries the generator's own CPU time next to the wall time, so that a
//! saturated generator is not mistaken for a slow server.

use crate::conn::{Conn, ConnError};
use authspec_reference::sasl::{self, ClientCredentials, Mechanism, SeededRandom};
use authspec_reference::smtp::auth_client::{
    CancelReason, ClientExchange, ClientStep, InitialResponseMode,
};
use authspec_reference::smtp::reply::Reply;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Latency samples kept in memory at most (4 octets each); beyond this the run keeps
/// a uniform reservoir sample, so percentiles stay unbiased while memory stays bounded.
pub const MAX_SAMPLES: usize = 1_000_000;
/// `--duration` may not exceed one hour.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// `--concurrency` may not exceed this many sessions at once.
pub const MAX_CONCURRENCY: usize = 10_000;
/// `--sessions` may not exceed this many sessions.
pub const MAX_SESSIONS: u64 = 100_000_000;

/// How the connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadTls {
    None,
    StartTls,
    /// TLS from the first byte (port 465 style).
    Implicit,
}

/// When the run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// After this many sessions have been started (and finished).
    Sessions(u64),
    /// No new session starts after this much time; those in flight finish.
    Duration(Duration),
}

/// Everything one run needs. `creds` holds the password as a [`sasl::Secret`].
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub target: String,
    /// TLS server name (SNI and certificate check).
    pub server_name: String,
    pub tls: LoadTls,
    pub tls_config: Option<Arc<rustls::ClientConfig>>,
    pub mechanism: Mechanism,
    pub creds: ClientCredentials,
    pub bound: Bound,
    pub concurrency: usize,
    pub transaction: bool,
    pub mail_from: String,
    pub rcpt_to: String,
    pub helo: String,
    /// Per-read (and connect) timeout.
    pub timeout: Duration,
}

/// A load run that would break one of the generator's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidLoad {
    Concurrency,
    ZeroSessions,
    TooManySessions,
    Duration,
    TlsWithoutConfig,
}

impl std::fmt::Display for InvalidLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvalidLoad::Concurrency => {
                write!(f, "--concurrency must be between 1 and {MAX_CONCURRENCY}")
            }
            InvalidLoad::ZeroSessions => f.write_str("--sessions must be at least 1"),
            InvalidLoad::TooManySessions => {
                write!(f, "--sessions may not exceed {MAX_SESSIONS}")
            }
            InvalidLoad::Duration => write!(
                f,
                "--duration must be between 1 and {} seconds",
                MAX_DURATION.as_secs()
            ),
            InvalidLoad::TlsWithoutConfig => {
                f.write_str("TLS was asked for without a TLS client configuration")
            }
        }
    }
}

impl std::error::Error for InvalidLoad {}

impl LoadOptions {
    /// Checks the bounds; the CLI turns an error into exit code 2.
    pub fn validate(&self) -> Result<(), InvalidLoad> {
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return Err(InvalidLoad::Concurrency);
        }
        match self.bound {
            Bound::Sessions(0) => return Err(InvalidLoad::ZeroSessions),
            Bound::Sessions(n) if n > MAX_SESSIONS => return Err(InvalidLoad::TooManySessions),
            Bound::Duration(d) if d.is_zero() || d > MAX_DURATION => {
                return Err(InvalidLoad::Duration);
            }
            _ => {}
        }
        if self.tls != LoadTls::None && self.tls_config.is_none() {
            return Err(InvalidLoad::TlsWithoutConfig);
        }
        Ok(())
    }
}

/// Latency of the sessions that completed, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// How many samples the percentiles were computed from (≤ [`MAX_SAMPLES`]).
    pub samples: usize,
}

/// The outcome of a run. Serialized as is by `--format json`.
#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    pub target: String,
    pub mechanism: String,
    pub tls: LoadTls,
    pub transaction: bool,
    pub concurrency: usize,
    pub sessions_attempted: u64,
    pub sessions_ok: u64,
    pub sessions_failed: u64,
    /// Failed sessions / attempted sessions.
    pub error_rate: f64,
    pub wall_seconds: f64,
    /// Completed sessions per second of wall time.
    pub sessions_per_second: f64,
    pub latency: Latency,
    /// Failed sessions by kind: `connect`, `timeout:<stage>`, `closed:<stage>`,
    /// `malformed:<stage>`, `tls`, `io`, `sasl:<rule>`, or `<stage>:<reply code>`
    /// such as `auth:535`.
    pub errors: BTreeMap<String, u64>,
    /// user + system CPU time of the generator process (from `/proc/self/stat`);
    /// `None` where that file does not exist.
    pub generator_cpu_seconds: Option<f64>,
    /// CPU time / wall time. 1.0 means one core fully busy: if this approaches the
    /// number of cores (`cores`), the generator, not the server, is the limit.
    pub generator_cpu_ratio: Option<f64>,
    pub cores: usize,
}

/// Per-task tallies, merged at the end (no lock on the hot path).
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    failed: u64,
    /// Microseconds per completed session (a reservoir once full).
    samples: Vec<u32>,
    cap: usize,
    /// Completed sessions seen, for reservoir sampling.
    seen: u64,
    sum_us: u128,
    max_us: u32,
    errors: BTreeMap<String, u64>,
    /// xorshift state for the reservoir; no need for a cryptographic source here.
    state: u64,
}

impl Tally {
    fn new(cap: usize, seed: u64) -> Tally {
        Tally {
            cap,
            state: seed | 1,
            ..Tally::default()
        }
    }

    fn next_rand(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    fn record_ok(&mut self, d: Duration) {
        let us = u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        self.ok += 1;
        self.seen += 1;
        self.sum_us += u128::from(us);
        self.max_us = self.max_us.max(us);
        if self.samples.len() < self.cap {
            self.samples.push(us);
        } else if self.cap > 0 {
            // Algorithm R: replace a random slot with probability cap/seen.
            let j = self.next_rand() % self.seen;
            if let Ok(j) = usize::try_from(j) {
                if let Some(slot) = self.samples.get_mut(j) {
                    *slot = us;
                }
            }
        }
    }

    fn record_err(&mut self, error: &SessionError) {
        self.failed += 1;
        *self.errors.entry(error.to_string()).or_insert(0) += 1;
    }
}

/// Live counters for the progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub failed: AtomicU64,
}

/// Why one session failed. Its `Display` text is the stable kind that the error
/// table counts by, so sessions that failed the same way share one row.
#[derive(Debug)]
enum SessionError {
    Connect,
    Timeout(&'static str),
    Closed(&'static str),
    Malformed(&'static str),
    Io,
    Tls,
    /// The reply code at a stage was not one the stage accepts.
    Reply {
        stage: &'static str,
        code: u16,
    },
    /// The mechanism refused a challenge, or the server's proof did not verify.
    Sasl(sasl::SaslError),
    /// A 334 whose text is not base64 (RFC 4954 §4), so the client cancelled.
    UndecodableChallenge,
    /// More 334 rounds than [`authspec_reference::smtp::auth_client::MAX_AUTH_ROUNDS`].
    TooManyChallenges,
}

impl SessionError {
    fn conn(e: &ConnError, stage: &'static str) -> SessionError {
        match e {
            ConnError::Connect(_) => SessionError::Connect,
            ConnError::Timeout { .. } => SessionError::Timeout(stage),
            ConnError::Closed { .. } => SessionError::Closed(stage),
            ConnError::Malformed(_) => SessionError::Malformed(stage),
            ConnError::Io(_) => SessionError::Io,
            ConnError::Tls(_) => SessionError::Tls,
        }
    }
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Connect => f.write_str("connect"),
            SessionError::Timeout(stage) => write!(f, "timeout:{stage}"),
            SessionError::Closed(stage) => write!(f, "closed:{stage}"),
            SessionError::Malformed(stage) => write!(f, "malformed:{stage}"),
            SessionError::Io => f.write_str("io"),
            SessionError::Tls => f.write_str("tls"),
            SessionError::Reply { stage, code } => write!(f, "{stage}:{code}"),
            SessionError::Sasl(e) => write!(f, "sasl: {e}"),
            SessionError::UndecodableChallenge => f.write_str("malformed:auth-challenge"),
            SessionError::TooManyChallenges => f.write_str("auth:too-many-challenges"),
        }
    }
}

struct Session<'a> {
    opts: &'a LoadOptions,
    conn: Conn,
}

impl Session<'_> {
    async fn command(
        &mut self,
        line: &[u8],
        stage: &'static str,
        want: &[u16],
    ) -> Result<Reply, SessionError> {
        self.conn
            .send(line)
            .await
            .map_err(|e| SessionError::conn(&e, stage))?;
        self.reply(stage, want).await
    }

    async fn reply(&mut self, stage: &'static str, want: &[u16]) -> Result<Reply, SessionError> {
        let r = self
            .conn
            .read_reply(stage)
            .await
            .map_err(|e| SessionError::conn(&e, stage))?;
        if want.contains(&r.code) {
            Ok(r)
        } else {
            Err(SessionError::Reply {
                stage,
                code: r.code,
            })
        }
    }

    async fn upgrade(&mut self) -> Result<(), SessionError> {
        let Some(cfg) = &self.opts.tls_config else {
            return Err(SessionError::Tls);
        };
        self.conn
            .upgrade(Arc::clone(cfg), &self.opts.server_name)
            .await
            .map_err(|e| SessionError::conn(&e, "tls"))
    }

    async fn auth(&mut self, rng: &mut SeededRandom) -> Result<(), SessionError> {
        let mut x = ClientExchange::new(sasl::client(self.opts.mechanism, &self.opts.creds, rng));
        let cmd = x
            .command(InitialResponseMode::Auto)
            .map_err(SessionError::Sasl)?;
        self.conn
            .send(format!("{}\r\n", cmd.line).as_bytes())
            .await
            .map_err(|e| SessionError::conn(&e, "auth"))?;
        loop {
            let r = self.reply("auth", &[235, 334]).await?;
            match x.on_reply(&r) {
                ClientStep::Success => return Ok(()),
                ClientStep::Unverified(e) => return Err(SessionError::Sasl(e)),
                ClientStep::Respond { line, .. } => self
                    .conn
                    .send(format!("{line}\r\n").as_bytes())
                    .await
                    .map_err(|e| SessionError::conn(&e, "auth"))?,
                ClientStep::Cancel(CancelReason::Mechanism(e)) => {
                    let _ = self.conn.send(b"*\r\n").await;
                    return Err(SessionError::Sasl(e));
                }
                ClientStep::Cancel(_) => return Err(SessionError::UndecodableChallenge),
                ClientStep::TooManyRounds | ClientStep::Ended => {
                    return Err(SessionError::TooManyChallenges);
                }
            }
        }
    }

    async fn run(&mut self, rng: &mut SeededRandom) -> Result<(), SessionError> {
        if self.opts.tls == LoadTls::Implicit {
            self.upgrade().await?;
        }
        self.reply("greeting", &[220]).await?;
        let ehlo = format!("EHLO {}\r\n", self.opts.helo);
        self.command(ehlo.as_bytes(), "ehlo", &[250]).await?;
        if self.opts.tls == LoadTls::StartTls {
            self.command(b"STARTTLS\r\n", "starttls", &[220]).await?;
            self.upgrade().await?;
            self.command(ehlo.as_bytes(), "ehlo-tls", &[250]).await?;
        }
        self.auth(rng).await?;
        if self.opts.transaction {
            let mail = format!("MAIL FROM:<{}>\r\n", self.opts.mail_from);
            self.command(mail.as_bytes(), "mail", &[250]).await?;
            let rcpt = format!("RCPT TO:<{}>\r\n", self.opts.rcpt_to);
            self.command(rcpt.as_bytes(), "rcpt", &[250, 251]).await?;
            self.command(b"DATA\r\n", "data", &[354]).await?;
            self.command(
                b"Subject: authspec load\r\n\r\nauthspec load test message\r\n.\r\n",
                "data-end",
                &[250],
            )
            .await?;
        }
        self.command(b"QUIT\r\n", "quit", &[221]).await?;
        // Let the server close first (RFC 5321 §4.1.1.10: it closes after 221), so
        // TIME_WAIT lands on its side and long runs do not exhaust local ports.
        let _ = self.conn.expect_close(Duration::from_secs(1)).await;
        self.conn.shutdown().await;
        Ok(())
    }
}

async fn one_session(opts: &LoadOptions, rng: &mut SeededRandom) -> Result<(), SessionError> {
    let conn = Conn::connect(&opts.target, opts.timeout)
        .await
        .map_err(|e| SessionError::conn(&e, "connect"))?;
    let mut s = Session { opts, conn };
    let result = s.run(rng).await;
    if result.is_err() {
        s.conn.shutdown().await;
    }
    result
}

/// Runs the load and reports. `progress` is updated as sessions end.
pub async fn run(opts: Arc<LoadOptions>, progress: Arc<Progress>) -> LoadReport {
    let started = Instant::now();
    let cpu_before = process_cpu_seconds();
    let tickets = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = match opts.bound {
        Bound::Duration(d) => Some(started + d),
        Bound::Sessions(_) => None,
    };
    let cap = (MAX_SAMPLES / opts.concurrency.max(1)).max(1);
    let mut tasks = Vec::with_capacity(opts.concurrency);
    for i in 0..opts.concurrency {
        let opts = Arc::clone(&opts);
        let tickets = Arc::clone(&tickets);
        let stop = Arc::clone(&stop);
        let progress = Arc::clone(&progress);
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new(cap, 0x9E37_79B9_7F4A_7C15 ^ (i as u64));
            // Client nonces (SCRAM, DIGEST-MD5) must be fresh per session: one
            // OS-seeded stream per task, advanced by every session.
            let mut rng = SeededRandom::from_entropy();
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match opts.bound {
                    Bound::Sessions(n) => {
                        if tickets.fetch_add(1, Ordering::Relaxed) >= n {
                            break;
                        }
                    }
                    Bound::Duration(_) => {
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            break;
                        }
                    }
                }
                let t0 = Instant::now();
                match one_session(&opts, &mut rng).await {
                    Ok(()) => tally.record_ok(t0.elapsed()),
                    Err(error) => {
                        progress.failed.fetch_add(1, Ordering::Relaxed);
                        tally.record_err(&error);
                    }
                }
                progress.done.fetch_add(1, Ordering::Relaxed);
            }
            tally
        }));
    }
    let mut all = Tally::default();
    let mut panicked = 0u64;
    for t in tasks {
        match t.await {
            Ok(t) => {
                all.ok += t.ok;
                all.failed += t.failed;
                all.sum_us += t.sum_us;
                all.max_us = all.max_us.max(t.max_us);
                all.samples.extend_from_slice(&t.samples);
                for (k, v) in t.errors {
                    *all.errors.entry(k).or_insert(0) += v;
                }
            }
            Err(_) => panicked += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    if panicked > 0 {
        *all.errors
            .entry("generator-task-failed".into())
            .or_insert(0) += panicked;
        all.failed += panicked;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, process_cpu_seconds()) {
        (Some(a), Some(b)) => Some((b - a).max(0.0)),
        _ => None,
    };
    let attempted = all.ok + all.failed;
    LoadReport {
        target: opts.target.clone(),
        mechanism: opts.mechanism.name().to_string(),
        tls: opts.tls,
        transaction: opts.transaction,
        concurrency: opts.concurrency,
        sessions_attempted: attempted,
        sessions_ok: all.ok,
        sessions_failed: all.failed,
        error_rate: if attempted == 0 {
            0.0
        } else {
            all.failed as f64 / attempted as f64
        },
        wall_seconds: wall,
        sessions_per_second: if wall > 0.0 {
            all.ok as f64 / wall
        } else {
            0.0
        },
        latency: latency(&mut all.samples, all.sum_us, all.ok, all.max_us),
        errors: all.errors,
        generator_cpu_seconds: cpu,
        generator_cpu_ratio: cpu.map(|c| if wall > 0.0 { c / wall } else { 0.0 }),
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    }
}

/// Percentiles by nearest rank over the (possibly sampled) latencies; mean and max
/// over every completed session.
fn latency(samples: &mut [u32], sum_us: u128, ok: u64, max_us: u32) -> Latency {
    samples.sort_unstable();
    let pct = |p: f64| -> f64 {
        if samples.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        let idx = rank.clamp(1, samples.len()) - 1;
        f64::from(samples[idx]) / 1000.0
    };
    Latency {
        p50_ms: pct(50.0),
        p90_ms: pct(90.0),
        p99_ms: pct(99.0),
        max_ms: f64::from(max_us) / 1000.0,
        mean_ms: if ok == 0 {
            0.0
        } else {
            (sum_us as f64 / ok as f64) / 1000.0
        },
        samples: samples.len(),
    }
}

/// user + system CPU seconds of this process, all threads, from `/proc/self/stat`
/// (fields 14 and 15, in clock ticks). Linux fixes the user-visible tick at 100 Hz
/// (`USER_HZ`), so no `sysconf` call — and no `unsafe` — is needed.
pub fn process_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat_cpu(&text)
}

/// The CPU seconds in one `/proc/PID/stat` line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat_cpu(text: &str) -> Option<f64> {
    const USER_HZ: f64 = 100.0;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After `)`: field 3 (state) is first, so utime (14) is the 12th, stime the 13th.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// The report as people read it.
pub fn render_human(r: &LoadReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let tls = match r.tls {
        LoadTls::None => "",
        LoadTls::StartTls => " over STARTTLS",
        LoadTls::Implicit => " over TLS",
    };
    let _ = writeln!(
        s,
        "target {}: AUTH {}{}{}, concurrency {}",
        r.target,
        r.mechanism,
        tls,
        if r.transaction {
            " + MAIL/RCPT/DATA"
        } else {
            ""
        },
        r.concurrency
    );
    let _ = writeln!(
        s,
        "sessions: {} ok, {} failed of {} ({:.2}% errors) in {:.2} s",
        r.sessions_ok,
        r.sessions_failed,
        r.sessions_attempted,
        r.error_rate * 100.0,
        r.wall_seconds
    );
    let _ = writeln!(s, "rate: {:.1} sessions/s", r.sessions_per_second);
    let l = &r.latency;
    let _ = writeln!(
        s,
        "latency (ms): p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}  mean {:.3}  ({} samples)",
        l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.mean_ms, l.samples
    );
    match (r.generator_cpu_seconds, r.generator_cpu_ratio) {
        (Some(c), Some(ratio)) => {
            let _ = writeln!(
                s,
                "generator CPU: {c:.2} s = {ratio:.2} of wall time ({} cores){}",
                r.cores,
                if ratio > 0.8 * r.cores as f64 {
                    " — the generator may be the bottleneck"
                } else {
                    ""
                }
            );
        }
        _ => {
            let _ = writeln!(s, "generator CPU: unknown (no /proc/self/stat)");
        }
    }
    if !r.errors.is_empty() {
        let _ = writeln!(s, "errors by kind:");
        for (k, v) in &r.errors {
            let _ = writeln!(s, "  {k:<24} {v}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_spaces_in_the_name() {
        // utime 250 ticks, stime 50 ticks → 3.0 s.
        let line = "1234 (a) b (c)) S 1 1 1 0 -1 4194304 10 0 0 0 250 50 0 0 20 0 3 0 100 0 0";
        assert_eq!(parse_stat_cpu(line), Some(3.0));
        assert_eq!(parse_stat_cpu("garbage"), None);
        assert_eq!(parse_stat_cpu("1 (x) S 1 2"), None);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        let l = latency(&mut v, (1..=100u128).map(|i| i * 1000).sum(), 100, 100_000);
        assert_eq!(l.p50_ms, 50.0);
        assert_eq!(l.p90_ms, 90.0);
        assert_eq!(l.p99_ms, 99.0);
        assert_eq!(l.max_ms, 100.0);
        assert_eq!(l.mean_ms, 50.5);
        assert_eq!(latency(&mut [], 0, 0, 0), Latency::default());
    }

    #[test]
    fn reservoir_never_exceeds_its_cap() {
        let mut t = Tally::new(10, 7);
        for i in 0..1000 {
            t.record_ok(Duration::from_micros(i));
        }
        assert_eq!(t.samples.len(), 10);
        assert_eq!(t.ok, 1000);
        assert_eq!(t.max_us, 999);
        // Later samples must have displaced some early ones.
        assert!(t.samples.iter().any(|&s| s >= 10));
    }

    #[test]
    fn bounds_are_enforced() {
        let base = LoadOptions {
            target: "127.0.0.1:25".into(),
            server_name: "localhost".into(),
            tls: LoadTls::None,
            tls_config: None,
            mechanism: Mechanism::Plain,
            creds: ClientCredentials {
                authcid: "a".into(),
                password: sasl::Secret::from("b".to_string()),
                authzid: None,
                host: "localhost".into(),
                port: Some(25),
            },
            bound: Bound::Sessions(10),
            concurrency: 1,
            transaction: false,
            mail_from: "a@example.com".into(),
            rcpt_to: "b@example.com".into(),
            helo: "h".into(),
            timeout: Duration::from_secs(1),
        };
        assert!(base.validate().is_ok());
        let with = |f: &dyn Fn(&mut LoadOptions)| {
            let mut o = base.clone();
            f(&mut o);
            o.validate()
        };
        assert_eq!(with(&|o| o.concurrency = 0), Err(InvalidLoad::Concurrency));
        assert_eq!(
            with(&|o| o.concurrency = MAX_CONCURRENCY + 1),
            Err(InvalidLoad::Concurrency)
        );
        assert_eq!(
            with(&|o| o.bound = Bound::Sessions(0)),
            Err(InvalidLoad::ZeroSessions)
        );
        assert_eq!(
            with(&|o| o.bound = Bound::Sessions(MAX_SESSIONS + 1)),
            Err(InvalidLoad::TooManySessions)
        );
        assert_eq!(
            with(&|o| o.bound = Bound::Duration(Duration::from_secs(3601))),
            Err(InvalidLoad::Duration)
        );
        assert!(with(&|o| o.bound = Bound::Duration(Duration::from_secs(3600))).is_ok());
        assert_eq!(
            with(&|o| o.tls = LoadTls::StartTls),
            Err(InvalidLoad::TlsWithoutConfig)
        );
        assert_eq!(
            InvalidLoad::Concurrency.to_string(),
            format!("--concurrency must be between 1 and {MAX_CONCURRENCY}")
        );
    }

    /// The error table is read by people: its kinds are words, never Rust `Debug`.
    #[test]
    fn error_kinds_are_display_text() {
        let kinds = [
            SessionError::Sasl(sasl::SaslError::ServerProofMismatch(Mechanism::ScramSha256)),
            SessionError::Reply {
                stage: "auth",
                code: 535,
            },
            SessionError::Timeout("greeting"),
            SessionError::UndecodableChallenge,
        ];
        let text: Vec<String> = kinds.iter().map(ToString::to_string).collect();
        assert_eq!(text[1], "auth:535");
        assert_eq!(text[2], "timeout:greeting");
        assert!(text[0].starts_with("sasl: "), "{}", text[0]);
        for t in &text {
            assert!(
                !t.contains('(') && !t.contains('{') && !t.contains("Mismatch"),
                "Debug-shaped kind: {t}"
            );
        }
    }
}
