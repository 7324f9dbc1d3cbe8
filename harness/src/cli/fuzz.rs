//! `authspec fuzz --target HOST:PORT`: grammar-aware fuzzing of a live server.

use super::common::{self, EXIT_FAILED, EXIT_NETWORK, EXIT_OK, EXIT_USAGE};
use crate::netfuzz::{self, FuzzConfig};
use crate::runner::{Endpoint, TlsMode, default_vars};
use crate::scenario::{self, Vars};
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// The longest run allowed: fuzzing someone's server is bounded by design.
const MAX_DURATION_SECS: u64 = 3600;

#[derive(Debug, Args)]
#[command(
    after_help = "Sessions start from the bundled scenarios' client lines and are \
mutated (commands, SASL messages, line ends, pipelining, timing). Findings: no greeting, \
no reply (hang), connection closed without a reply, malformed replies, and 235 after \
wrong credentials. Each is written to --out as a scenario that `authspec run FILE \
--target HOST:PORT` replays.\n\n\
Exit codes: 0 no findings, 1 findings, 2 bad arguments, 3 the target is unusable.\n\n\
Secrets: give the password with --var password-env=VAR; finding files say ${password}."
)]
pub struct FuzzArgs {
    /// The server, HOST:PORT. Only loopback unless --allow-remote.
    #[arg(long)]
    pub target: String,
    /// Sessions to play at most [default: 1000, or no limit when --duration is given].
    #[arg(long)]
    pub sessions: Option<u64>,
    /// Seconds to run at most (up to 3600) [default: 600].
    #[arg(long)]
    pub duration: Option<u64>,
    /// Seed for every choice the fuzzer makes: a run is reproducible.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Start every session with STARTTLS.
    #[arg(long)]
    pub starttls: bool,
    /// The certificate policy (README "Certificates").
    #[command(flatten)]
    pub tls_policy: common::TlsPolicy,
    /// A variable: `user=alice`, or `password-env=VAR` to read the password from the
    /// environment. The fuzzer authenticates as `user` with `password`.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Where to write findings.
    #[arg(long, default_value = "authspec-findings")]
    pub out: PathBuf,
    /// Allow a target that is not on loopback.
    #[arg(long)]
    pub allow_remote: bool,
    /// Per-read timeout in seconds: silence this long after a complete line is a hang.
    /// Raised to four times the greeting delay the preflight measures; a server that
    /// tarpits failed AUTHs longer than this needs a larger value.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Sessions played at once (Postfix allows 50 connections per client by default).
    #[arg(long, default_value_t = 8)]
    pub jobs: usize,
}

pub async fn run(a: FuzzArgs) -> u8 {
    if let Err(e) = crate::support::require_loopback(&a.target, a.allow_remote) {
        eprintln!("authspec fuzz: {e}");
        return EXIT_USAGE;
    }
    // `--duration 60` alone means a 60 s run: it lifts the default session limit.
    let sessions = a
        .sessions
        .unwrap_or(if a.duration.is_some() { u64::MAX } else { 1000 });
    let duration = a.duration.unwrap_or(600);
    if duration > MAX_DURATION_SECS {
        eprintln!("authspec fuzz: --duration is at most {MAX_DURATION_SECS} s");
        return EXIT_USAGE;
    }
    if !(a.timeout.is_finite() && a.timeout > 0.0) {
        eprintln!("authspec fuzz: --timeout must be a positive number of seconds");
        return EXIT_USAGE;
    }
    let env = |k: &str| std::env::var(k).ok();
    // The reference server's demo account unless told otherwise, as `authspec run` has.
    let mut vars = default_vars();
    vars.extend(&Vars::from_env(std::env::vars()));
    let mut cli = Vars::new();
    for v in &a.vars {
        if let Err(e) = cli.parse_assignment(v, &env) {
            eprintln!("authspec fuzz: {e}");
            return EXIT_USAGE;
        }
    }
    vars.extend(&cli);
    if vars.get("host").is_none() {
        vars.set("host", common::host_of(&a.target));
    }
    let tls_config = match a.tls_policy.client_config(common::CertDefault::Verify) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("authspec fuzz: {e}");
            return EXIT_USAGE;
        }
    };
    let timeout = Duration::from_secs_f64(a.timeout.clamp(0.05, 600.0));
    let endpoint = Endpoint {
        addr: a.target.clone(),
        tls: if a.starttls {
            TlsMode::StartTls
        } else {
            TlsMode::Plain
        },
        server_name: common::host_of(&a.target),
        tls_config,
        timeout,
        sasl_port: common::port_of(&a.target),
    };
    let scenarios = match scenario::load_bundled() {
        Ok(s) => s,
        Err(errs) => {
            for e in errs {
                eprintln!("authspec fuzz: bundled scenario: {e}");
            }
            return EXIT_USAGE;
        }
    };
    let cfg = FuzzConfig {
        endpoint,
        sessions,
        duration: Duration::from_secs(duration),
        seed: a.seed,
        timeout,
        jobs: a.jobs.clamp(1, 32),
        vars,
        out: a.out.clone(),
        progress: std::io::stderr().is_terminal(),
        tls_insecure: a.tls_policy.tls_insecure,
    };
    match netfuzz::run(&cfg, &scenarios).await {
        Ok(report) => {
            print!("{}", report.summary());
            // Say which limit ended the run.
            if report.sessions >= sessions {
                println!("stopped: --sessions limit of {sessions} reached");
            } else if report.elapsed + Duration::from_millis(500) >= Duration::from_secs(duration) {
                println!("stopped: --duration limit of {duration} s reached");
            } else {
                println!("stopped early: the target stopped answering (see above)");
            }
            if report.findings.is_empty() {
                EXIT_OK
            } else {
                EXIT_FAILED
            }
        }
        Err(e) => {
            eprintln!("authspec fuzz: {}", common::tls_explained(&e.to_string()));
            EXIT_NETWORK
        }
    }
}
