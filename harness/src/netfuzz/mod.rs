//! `authspec fuzz`: grammar-aware fuzzing of a live SMTP AUTH server.
//!
//! The data path: the bundled scenarios' client lines ([`seeds`]) → a queue of sessions
//! → [`mutate`] (commands, SASL messages, line ends, pipelining, timing) → [`exec`]
//! plays one against the target and judges the replies → the reply codes give the
//! state path; sessions that reach a new state join the queue → findings are written
//! as replayable scenarios ([`finding`]).
//!
//! State, as AFLNet models a server: the last [`STATE_WINDOW`] reply codes. A session is
//! interesting when it reaches a state, or a transition between states, not seen
//! before. The queue and the state sets are bounded.
//!
//! What counts as a finding:
//! - no greeting, no reply to a complete line (RFC 5321 §4.2: every command gets one),
//!   the connection closed without a reply (a crash, short of an error limit);
//! - a malformed reply: bad code, bad continuation, code changing across lines, a line
//!   end other than CRLF (RFC 5321 §4.2);
//! - `235` when every credential sent was wrong (RFC 4954 §6). The fuzzer knows the
//!   right password and tracks which credentials each line carries.
//!
//! Runs are deterministic for a seed: sessions are made in batches from the queue,
//! played at once, and their results taken in order.

pub mod exec;
pub mod finding;
pub mod mutate;
pub mod seeds;
pub mod session;

use crate::runner::{self, Endpoint, Offer};
use crate::scenario::{Scenario, Vars};
use exec::{End, Played, Target};
use mutate::{Ctx, Rng};
use seeds::Identity;
use session::Session;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reply codes per state.
pub const STATE_WINDOW: usize = 3;
/// Sessions kept for mutation.
pub const MAX_QUEUE: usize = 256;
/// States and transitions remembered.
pub const MAX_STATES: usize = 1 << 16;
/// Finding files written per run.
pub const MAX_FILES: usize = 64;
/// Removal attempts when shrinking one finding.
const MAX_SHRINK_RUNS: usize = 48;

/// The kinds of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// RFC 5321 §3.1: the server greets first.
    NoGreeting,
    /// RFC 5321 §4.2: no reply to a complete line within the timeout.
    Hang,
    /// The connection closed without a reply to a complete line.
    ClosedWithoutReply,
    /// RFC 5321 §4.2: a reply that does not parse, or a reply line not ending in CRLF.
    MalformedReply,
    /// RFC 4954 §6: `235` after wrong credentials.
    AuthBypass,
}

impl FindingKind {
    pub const fn slug(self) -> &'static str {
        match self {
            FindingKind::NoGreeting => "no-greeting",
            FindingKind::Hang => "hang",
            FindingKind::ClosedWithoutReply => "closed-without-reply",
            FindingKind::MalformedReply => "malformed-reply",
            FindingKind::AuthBypass => "auth-bypass",
        }
    }

    /// Whether timing can produce it by chance, so it is played again before it counts.
    const fn needs_confirmation(self) -> bool {
        matches!(
            self,
            FindingKind::Hang | FindingKind::ClosedWithoutReply | FindingKind::NoGreeting
        )
    }
}

/// A finding in one session: where (`at`: the action; `None` for the greeting), why,
/// and a signature that groups repeats of one bug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub kind: FindingKind,
    pub at: Option<usize>,
    pub detail: String,
    pub signature: String,
}

/// A run's parameters.
#[derive(Debug, Clone)]
pub struct FuzzConfig {
    pub endpoint: Endpoint,
    pub sessions: u64,
    pub duration: Duration,
    pub seed: u64,
    pub timeout: Duration,
    /// Sessions played at once.
    pub jobs: usize,
    pub vars: Vars,
    pub out: PathBuf,
    pub progress: bool,
    /// For the replay command written into findings.
    pub tls_insecure: bool,
}

/// One distinct finding.
#[derive(Debug, Clone)]
pub struct FoundBug {
    pub kind: FindingKind,
    pub signature: String,
    pub detail: String,
    /// Sessions that hit it.
    pub hits: u64,
    /// The scenario file, or why none was written.
    pub file: Result<PathBuf, NotWritten>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct FuzzReport {
    pub sessions: u64,
    pub elapsed: Duration,
    pub states: usize,
    pub transitions: usize,
    pub queue: usize,
    pub seeds: usize,
    pub findings: Vec<FoundBug>,
    /// Sessions that ended early without a finding, by reason.
    pub ends: BTreeMap<String, u64>,
}

impl FuzzReport {
    pub fn by_kind(&self) -> BTreeMap<FindingKind, (usize, u64)> {
        let mut m: BTreeMap<FindingKind, (usize, u64)> = BTreeMap::new();
        for f in &self.findings {
            let e = m.entry(f.kind).or_default();
            e.0 += 1;
            e.1 += f.hits;
        }
        m
    }

    /// The summary printed at the end.
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(0.001);
        let mut s = format!(
            "{} sessions in {:.1} s ({:.1}/s), {} states, {} transitions, queue {} (from {} seeds)\n",
            self.sessions,
            secs,
            self.sessions as f64 / secs,
            self.states,
            self.transitions,
            self.queue,
            self.seeds
        );
        for (why, count) in &self.ends {
            s.push_str(&format!("  {count} sessions ended early: {why}\n"));
        }
        if self.findings.is_empty() {
            s.push_str("no findings\n");
            return s;
        }
        let kinds: Vec<String> = self
            .by_kind()
            .iter()
            .map(|(k, (n, hits))| format!("{} {n} ({hits} sessions)", k.slug()))
            .collect();
        s.push_str(&format!("findings: {}\n", kinds.join(", ")));
        for f in &self.findings {
            let file = match &f.file {
                Ok(p) => p.display().to_string(),
                Err(e) => format!("not written: {e}"),
            };
            s.push_str(&format!("  {}: {} — {file}\n", f.signature, f.detail));
        }
        s
    }
}

/// Why a run could not start, or had to stop before it had found anything.
#[derive(Debug)]
pub enum FuzzError {
    /// The preflight session failed: the target is down, does not greet, or does not
    /// answer EHLO.
    TargetUnusable(crate::runner::PreflightError),
    /// No bundled scenario gave a seed session that fits the fuzzer's bounds.
    NoSeeds,
    /// The first sessions could not connect.
    CannotConnect(String),
}

impl std::fmt::Display for FuzzError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FuzzError::TargetUnusable(why) => write!(f, "target unusable: {why}"),
            FuzzError::NoSeeds => f.write_str("no seed sessions"),
            FuzzError::CannotConnect(why) => write!(f, "cannot connect: {why}"),
        }
    }
}

impl std::error::Error for FuzzError {}

/// Why a finding has no scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotWritten {
    /// [`MAX_FILES`] files were written already.
    TooMany,
    /// The file would have carried the password (see [`finding::render`]).
    SecretNotSymbolic,
    /// The scenario could not be written as YAML, or did not load again, so it would
    /// be of no use.
    DoesNotLoad(String),
    /// The file system refused.
    Io { path: PathBuf, error: String },
}

impl std::fmt::Display for NotWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotWritten::TooMany => write!(f, "more than {MAX_FILES} findings"),
            NotWritten::SecretNotSymbolic => {
                f.write_str("the password could not be kept out of the file")
            }
            NotWritten::DoesNotLoad(e) => write!(f, "the replay scenario does not load: {e}"),
            NotWritten::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

type State = [u16; STATE_WINDOW];

/// The queue and what it has seen.
struct Corpus {
    queue: Vec<Session>,
    /// Seeds are never evicted.
    seeds: usize,
    recent: Vec<usize>,
    states: HashSet<State>,
    transitions: HashSet<(State, State)>,
}

impl Corpus {
    /// Records the path of `played`; returns how many states and transitions were new.
    fn observe(&mut self, played: &Played) -> usize {
        let mut window: State = [0; STATE_WINDOW];
        let mut prev = window;
        let mut new = 0;
        let mut codes = played.codes.clone();
        // The way a session ended is part of its path.
        match (&played.finding, &played.end) {
            (Some(_), _) => codes.push(1),
            (None, End::Closed) => codes.push(2),
            (None, End::LeftCommandMode) => codes.push(3),
            _ => {}
        }
        for c in codes {
            window.rotate_left(1);
            window[STATE_WINDOW - 1] = c;
            if self.states.len() < MAX_STATES && self.states.insert(window) {
                new += 1;
            }
            if self.transitions.len() < MAX_STATES && self.transitions.insert((prev, window)) {
                new += 1;
            }
            prev = window;
        }
        new
    }

    fn add(&mut self, s: Session, rng: &mut Rng) {
        if self.queue.len() >= MAX_QUEUE {
            let evictable = self.queue.len() - self.seeds;
            if evictable == 0 {
                return;
            }
            let victim = self.seeds + rng.below(evictable);
            self.queue.swap_remove(victim);
            self.recent
                .retain(|i| *i != victim && *i < self.queue.len());
        }
        self.queue.push(s);
        self.recent.push(self.queue.len() - 1);
        if self.recent.len() > 16 {
            self.recent.remove(0);
        }
    }

    /// Half the time one of the latest interesting sessions, else any.
    fn pick(&self, rng: &mut Rng) -> Option<&Session> {
        if !self.recent.is_empty() && rng.chance(50) {
            let i = self.recent[rng.below(self.recent.len())];
            return self.queue.get(i);
        }
        self.queue.get(rng.below(self.queue.len()))
    }
}

/// Runs the fuzzer. `scenarios` supply the seeds (normally the bundled library).
pub async fn run(cfg: &FuzzConfig, scenarios: &[Scenario]) -> Result<FuzzReport, FuzzError> {
    let started = Instant::now();
    let setup = Setup::prepare(cfg, scenarios).await?;
    let mut campaign = Campaign::new(cfg, &setup);
    campaign.play_all(started + cfg.duration).await?;
    Ok(campaign.finish(started))
}

/// What every session of a run shares: who we are, what the target offers, the seeds.
struct Setup {
    id: Identity,
    ctx: Ctx,
    seeds: Vec<Session>,
    target: Arc<Target>,
}

impl Setup {
    async fn prepare(cfg: &FuzzConfig, scenarios: &[Scenario]) -> Result<Setup, FuzzError> {
        let id = Identity {
            user: cfg.vars.get("user").unwrap_or("alice").to_owned(),
            password: cfg.vars.get("password").unwrap_or("").as_bytes().to_vec(),
        };
        // One session first, as `authspec run` does: a dead target fails once, here.
        let offer: Offer = runner::preflight(&cfg.endpoint)
            .await
            .map_err(FuzzError::TargetUnusable)?;
        let offered: Vec<String> = offer
            .before_tls
            .iter()
            .chain(offer.after_tls.iter())
            .flat_map(|c| {
                c.auth
                    .clone()
                    .or_else(|| c.auth_eq.clone())
                    .unwrap_or_default()
            })
            .collect();
        let mechanisms = exec::computed_mechanisms(&offered);
        let seeds: Vec<Session> = seeds::seeds(scenarios, &cfg.vars, &id, &mechanisms)
            .into_iter()
            .filter(|s| s.within_bounds(&id.password))
            .collect();
        if seeds.is_empty() {
            return Err(FuzzError::NoSeeds);
        }
        // A server that greets slowly (a reverse lookup, a pause on purpose) is as slow
        // after a failed AUTH: silence within four greeting delays is not a hang.
        let timeout = runner::fitted_timeout(cfg.timeout, offer.greeting_delay);
        let mut ep = cfg.endpoint.clone();
        ep.timeout = timeout;
        let target = Arc::new(Target {
            ep,
            timeout,
            // Above the 40 ms a delayed ACK holds back a second small reply from a
            // server that leaves Nagle's algorithm on.
            settle: (timeout / 50).clamp(Duration::from_millis(60), Duration::from_millis(250)),
        });
        Ok(Setup {
            ctx: Ctx {
                id: id.clone(),
                mechanisms,
            },
            id,
            seeds,
            target,
        })
    }
}

/// One run in progress: the queue, the sessions made but not yet judged, the report.
///
/// Deterministic without a barrier: session `n` is made right after the result of
/// session `n - lag` is taken in, results are taken in order, and up to `jobs`
/// sessions run meanwhile. A slow session delays taking results in, not playing.
struct Campaign<'a> {
    cfg: &'a FuzzConfig,
    setup: &'a Setup,
    rng: Rng,
    corpus: Corpus,
    generator: Generator<'a>,
    report: FuzzReport,
    progress: Option<indicatif::ProgressBar>,
    /// Sessions made, not yet started.
    pending: VecDeque<(u64, Session)>,
    /// Sessions started, kept until their result is taken in.
    inflight: HashMap<u64, Session>,
    generated: u64,
    files_written: usize,
    /// Sessions that connected: a connect failure before the first is a dead target.
    successes: u64,
    /// No new session is started (the target went away, or a task failed).
    stop: bool,
}

impl<'a> Campaign<'a> {
    fn new(cfg: &'a FuzzConfig, setup: &'a Setup) -> Campaign<'a> {
        let progress = cfg.progress.then(|| {
            let pb = indicatif::ProgressBar::new(cfg.sessions);
            pb.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            pb
        });
        let mut campaign = Campaign {
            cfg,
            setup,
            rng: Rng::new(cfg.seed),
            corpus: Corpus {
                seeds: setup.seeds.len(),
                queue: setup.seeds.clone(),
                recent: Vec::new(),
                states: HashSet::new(),
                transitions: HashSet::new(),
            },
            generator: Generator {
                seeds: &setup.seeds,
                cursor: 0,
            },
            report: FuzzReport {
                seeds: setup.seeds.len(),
                ..FuzzReport::default()
            },
            progress,
            pending: VecDeque::new(),
            inflight: HashMap::new(),
            generated: 0,
            files_written: 0,
            successes: 0,
            stop: false,
        };
        let lag = (cfg.jobs.max(1) * 4) as u64;
        while campaign.generated < lag.min(cfg.sessions) {
            campaign.make_next();
        }
        campaign
    }

    /// Makes the next session, unless the run has made all it may.
    fn make_next(&mut self) {
        if self.stop || self.generated >= self.cfg.sessions {
            return;
        }
        let s = self.generator.next(
            &self.corpus,
            &mut self.rng,
            &self.setup.ctx,
            &self.setup.id.password,
        );
        self.pending.push_back((self.generated, s));
        self.generated += 1;
    }

    /// Plays sessions, up to `jobs` at once, until none is left or `deadline` passes,
    /// and takes their results in, in order.
    async fn play_all(&mut self, deadline: Instant) -> Result<(), FuzzError> {
        let jobs = self.cfg.jobs.max(1);
        let mut done: BTreeMap<u64, Played> = BTreeMap::new();
        let mut next_result: u64 = 0;
        let mut running = 0usize;
        let mut set = tokio::task::JoinSet::new();
        loop {
            while !self.stop && running < jobs && Instant::now() < deadline {
                let Some((number, s)) = self.pending.pop_front() else {
                    break;
                };
                self.inflight.insert(number, s.clone());
                let target = Arc::clone(&self.setup.target);
                let id = self.setup.id.clone();
                let session_seed = self.cfg.seed ^ number.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                set.spawn(
                    async move { (number, exec::play(&s, &target, &id, session_seed).await) },
                );
                running += 1;
            }
            if running == 0 {
                break;
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            running -= 1;
            let Ok((finished, played)) = joined else {
                // A session task failed: its result will never come, so stop taking
                // new ones.
                self.stop = true;
                continue;
            };
            done.insert(finished, played);
            while let Some(played) = done.remove(&next_result) {
                let number = next_result;
                next_result += 1;
                self.make_next();
                if !self.take_in(number, played).await? {
                    break;
                }
            }
            if let Some(pb) = &self.progress {
                pb.set_message(format!(
                    "states {} findings {}",
                    self.corpus.states.len(),
                    self.report.findings.len()
                ));
            }
        }
        Ok(())
    }

    /// Takes in the result of session `number`: coverage, how it ended, its finding.
    /// `Ok(false)` when the target has gone away and no further result counts.
    async fn take_in(&mut self, number: u64, played: Played) -> Result<bool, FuzzError> {
        self.report.sessions += 1;
        if let Some(pb) = &self.progress {
            pb.inc(1);
        }
        if let End::ConnectFailed(e) = &played.end {
            if self.successes == 0 {
                return Err(FuzzError::CannotConnect(e.to_string()));
            }
            // The target went away mid-run: likely the last sessions crashed it.
            tracing::warn!("target stopped accepting connections: {e}");
            self.count_end("connect failed (target down)");
            self.stop = true;
            return Ok(false);
        }
        self.successes += 1;
        let Some(session) = self.inflight.remove(&number) else {
            return Ok(true);
        };
        let is_seed = number < self.setup.seeds.len() as u64;
        if self.corpus.observe(&played) > 0 && played.finding.is_none() && !is_seed {
            self.corpus.add(session.clone(), &mut self.rng);
        }
        match (played.finding.clone(), &played.end) {
            (None, End::Completed) => {}
            (None, End::Closed) => self.count_end("closed by the server (221/421)"),
            (None, End::LeftCommandMode) => self.count_end("left command mode (STARTTLS/DATA)"),
            (None, End::Prelude(e)) => self.count_end(&format!("error: {e}")),
            (None, _) => self.count_end("other"),
            (Some(cand), _) => self.report_finding(number, &session, played, cand).await,
        }
        Ok(true)
    }

    fn count_end(&mut self, why: &str) {
        *self.report.ends.entry(why.to_owned()).or_default() += 1;
    }

    /// A finding: counted against an earlier one with the same signature, or
    /// confirmed (timing kinds), shrunk, and written as a replayable scenario.
    async fn report_finding(
        &mut self,
        number: u64,
        session: &Session,
        played: Played,
        cand: Candidate,
    ) {
        if self.count_repeat(&cand.signature) {
            return;
        }
        // A copy of the shared reference, so that `self` stays free to update.
        let setup = self.setup;
        let (target, id, seed) = (&setup.target, &setup.id, self.cfg.seed);
        if cand.kind.needs_confirmation() {
            let again = exec::play(session, target, id, seed ^ number).await;
            if again.finding.as_ref().map(|c| c.kind) != Some(cand.kind) {
                self.count_end("unconfirmed timing finding");
                return;
            }
        }
        let (small, small_played, small_cand) =
            shrink(session, played, cand, target, id, seed).await;
        // Shrunk, two signatures may turn out to be one bug.
        if self.count_repeat(&small_cand.signature) {
            return;
        }
        let file = self.write_finding(number, &small, &small_played, &small_cand);
        self.report.findings.push(FoundBug {
            kind: small_cand.kind,
            signature: small_cand.signature,
            detail: small_cand.detail,
            hits: 1,
            file,
        });
    }

    /// Adds a hit to the finding with this signature, if there is one.
    fn count_repeat(&mut self, signature: &str) -> bool {
        match self
            .report
            .findings
            .iter_mut()
            .find(|f| f.signature == signature)
        {
            Some(f) => {
                f.hits += 1;
                true
            }
            None => false,
        }
    }

    fn write_finding(
        &mut self,
        number: u64,
        session: &Session,
        played: &Played,
        cand: &Candidate,
    ) -> Result<PathBuf, NotWritten> {
        if self.files_written >= MAX_FILES {
            return Err(NotWritten::TooMany);
        }
        let origin = finding::Origin {
            target: self.cfg.endpoint.addr.clone(),
            starttls: self.cfg.endpoint.tls == runner::TlsMode::StartTls,
            tls_insecure: self.cfg.tls_insecure,
            seed: self.cfg.seed,
            session: number,
        };
        let (name, text) =
            finding::render(session, played, cand, &origin, &self.setup.id.password)?;
        let path = write_file(&self.cfg.out, &name, &text)?;
        self.files_written += 1;
        Ok(path)
    }

    fn finish(mut self, started: Instant) -> FuzzReport {
        if let Some(pb) = self.progress.take() {
            pb.finish_and_clear();
        }
        self.report.elapsed = started.elapsed();
        self.report.states = self.corpus.states.len();
        self.report.transitions = self.corpus.transitions.len();
        self.report.queue = self.corpus.queue.len();
        self.report
    }
}

/// Makes the sessions to play: the seeds as they are, then mutants of the queue.
struct Generator<'a> {
    seeds: &'a [Session],
    cursor: usize,
}

impl Generator<'_> {
    fn next(&mut self, corpus: &Corpus, rng: &mut Rng, ctx: &Ctx, password: &[u8]) -> Session {
        if let Some(s) = self.seeds.get(self.cursor) {
            self.cursor += 1;
            return s.clone();
        }
        let Some(parent) = corpus.pick(rng) else {
            return self.seeds[0].clone();
        };
        let mut child = parent.clone();
        let donor = corpus.pick(rng).cloned();
        mutate::mutate(&mut child, rng, ctx, donor.as_ref());
        if !child.within_bounds(password) || child.actions.is_empty() {
            child = parent.clone();
        }
        child
    }
}

fn write_file(dir: &std::path::Path, name: &str, text: &str) -> Result<PathBuf, NotWritten> {
    let io = |path: &std::path::Path, e: std::io::Error| NotWritten::Io {
        path: path.to_path_buf(),
        error: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| io(&path, e))?;
    Ok(path)
}

fn is_greeting_command(a: &session::Action) -> bool {
    match a {
        session::Action::Write { lines, .. } => lines.iter().all(|l| {
            l.verb()
                .is_some_and(|v| v.eq_ignore_ascii_case(b"EHLO") || v.eq_ignore_ascii_case(b"HELO"))
        }),
        _ => false,
    }
}

/// Drops actions, one at a time from the end, while the same kind of finding still
/// happens: a shorter file is a clearer report. Bounded in runs.
async fn shrink(
    session: &Session,
    played: Played,
    cand: Candidate,
    target: &Target,
    id: &Identity,
    seed: u64,
) -> (Session, Played, Candidate) {
    let mut best = (session.clone(), played, cand);
    let Some(at) = best.2.at else {
        return best;
    };
    // Actions after the finding are never played; cut them first.
    best.0.actions.truncate(at + 1);
    let mut runs = 0;
    let mut i = best.0.actions.len();
    while i > 0 && runs < MAX_SHRINK_RUNS {
        i -= 1;
        if best.0.actions.len() <= 1 {
            break;
        }
        if is_greeting_command(&best.0.actions[i]) {
            // A lenient target may not need EHLO, but a conforming one does (RFC 4954
            // §4: AUTH is an ESMTP extension): keeping it lets the file pass there.
            continue;
        }
        let mut trial = best.0.clone();
        trial.actions.remove(i);
        runs += 1;
        let p = exec::play(&trial, target, id, seed).await;
        if let Some(c) = p.finding.clone() {
            if c.kind == best.2.kind {
                let keep = c.at.map_or(0, |a| a + 1);
                trial.actions.truncate(keep.max(1));
                i = i.min(trial.actions.len());
                best = (trial, p, c);
            }
        }
    }
    best
}
