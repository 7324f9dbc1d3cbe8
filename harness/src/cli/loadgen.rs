//! `authspec load`: sessions per second, latency and errors against one server.

use super::common::{self, EXIT_FAILED, EXIT_NETWORK, EXIT_OK, EXIT_USAGE};
use crate::loadgen::{self, Bound, LoadOptions, LoadTls, Progress};
use crate::scenario::Vars;
use authspec_reference::sasl::{ClientCredentials, Mechanism, Secret};
use clap::{Args, ValueEnum};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Each session: connect, greeting, EHLO, [STARTTLS, EHLO], AUTH \
(responses computed from the server's challenges), [MAIL, RCPT, DATA], QUIT.\n\n\
Exit codes: 0 every session succeeded, 1 at least one session failed (see \"errors by \
kind\"), 2 bad arguments (including a non-loopback target without --allow-remote), \
3 TLS with the target failed before the run (a certificate that did not verify, say).\n\n\
Secrets: give the password with --var password-env=VAR or AUTHSPEC_VAR_PASSWORD, not on \
the command line."
)]
pub struct LoadArgs {
    /// The server, HOST:PORT. Only loopback addresses unless --allow-remote.
    #[arg(long)]
    pub target: String,
    /// Upgrade every session with STARTTLS.
    #[arg(long, conflicts_with = "tls")]
    pub starttls: bool,
    /// TLS from the first byte (port 465 style).
    #[arg(long)]
    pub tls: bool,
    /// The certificate policy (README "Certificates").
    #[command(flatten)]
    pub tls_policy: common::TlsPolicy,
    /// The TLS server name (SNI), if not the target's host.
    #[arg(long)]
    pub sni: Option<String>,
    /// SASL mechanism (any the reference client implements: PLAIN, LOGIN, CRAM-MD5,
    /// DIGEST-MD5, SCRAM-SHA-1, SCRAM-SHA-256, XOAUTH2, OAUTHBEARER, ANONYMOUS, EXTERNAL).
    #[arg(long, default_value = "PLAIN")]
    pub mechanism: String,
    /// `user=…`, `password-env=VAR` (or `password=…`), optional `authzid=…`.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Sessions to run in total [default: 1000].
    #[arg(long, conflicts_with = "duration")]
    pub sessions: Option<u64>,
    /// Run for this many seconds instead (at most 3600).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Sessions in flight at once (at most 10000).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// After AUTH, send one message (MAIL, RCPT, DATA).
    #[arg(long)]
    pub transaction: bool,
    #[arg(long, default_value = "load@example.com")]
    pub mail_from: String,
    #[arg(long, default_value = "sink@example.com")]
    pub rcpt_to: String,
    #[arg(long, default_value = "load.authspec.invalid")]
    pub helo: String,
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Allow a target that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Per-read and connect timeout, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
}

/// Why `load`'s arguments do not make a run; each names the flag to change.
#[derive(Debug)]
enum OptionsError {
    NotLoopback(crate::support::NotLoopback),
    UnknownMechanism { name: String },
    Var(crate::scenario::VarError),
    NeedsUser { mechanism: Mechanism },
    NeedsPassword { mechanism: Mechanism },
    Tls(authspec_reference::net::tls::TlsError),
    Duration,
    Timeout,
    Invalid(loadgen::InvalidLoad),
}

impl std::fmt::Display for OptionsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptionsError::NotLoopback(e) => e.fmt(f),
            OptionsError::UnknownMechanism { name } => write!(f, "unknown mechanism {name:?}"),
            OptionsError::Var(e) => e.fmt(f),
            OptionsError::NeedsUser { mechanism } => write!(f, "{mechanism} needs --var user=…"),
            OptionsError::NeedsPassword { mechanism } => write!(
                f,
                "{mechanism} needs a password: --var password-env=VAR or AUTHSPEC_VAR_PASSWORD"
            ),
            OptionsError::Tls(e) => e.fmt(f),
            OptionsError::Duration => write!(
                f,
                "--duration must be between 0 and {} seconds",
                loadgen::MAX_DURATION.as_secs()
            ),
            OptionsError::Timeout => f.write_str("--timeout must be between 0 and 3600 seconds"),
            OptionsError::Invalid(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for OptionsError {}

fn options(a: &LoadArgs) -> Result<LoadOptions, OptionsError> {
    crate::support::require_loopback(&a.target, a.allow_remote)
        .map_err(OptionsError::NotLoopback)?;
    let mechanism = Mechanism::from_name(a.mechanism.as_bytes()).ok_or_else(|| {
        OptionsError::UnknownMechanism {
            name: a.mechanism.clone(),
        }
    })?;
    let env = |k: &str| std::env::var(k).ok();
    let mut vars = Vars::from_env(std::env::vars());
    let mut cli = Vars::new();
    for v in &a.vars {
        cli.parse_assignment(v, &env).map_err(OptionsError::Var)?;
    }
    vars.extend(&cli);
    let needs_password = !matches!(mechanism, Mechanism::Anonymous | Mechanism::External);
    let user = vars.get("user").unwrap_or("").to_string();
    if needs_password && user.is_empty() {
        return Err(OptionsError::NeedsUser { mechanism });
    }
    let password = match vars.get("password") {
        Some(p) => p.to_string(),
        None if needs_password => {
            return Err(OptionsError::NeedsPassword { mechanism });
        }
        None => String::new(),
    };
    let server_name = a.sni.clone().unwrap_or_else(|| common::host_of(&a.target));
    let tls = if a.tls {
        LoadTls::Implicit
    } else if a.starttls {
        LoadTls::StartTls
    } else {
        LoadTls::None
    };
    let tls_config = if tls == LoadTls::None {
        None
    } else {
        Some(
            a.tls_policy
                .client_config(common::CertDefault::Verify)
                .map_err(OptionsError::Tls)?,
        )
    };
    let bound = match (a.sessions, a.duration) {
        (_, Some(d)) => {
            if !(d.is_finite() && d > 0.0 && d <= loadgen::MAX_DURATION.as_secs_f64()) {
                return Err(OptionsError::Duration);
            }
            Bound::Duration(Duration::from_secs_f64(d))
        }
        (Some(n), None) => Bound::Sessions(n),
        (None, None) => Bound::Sessions(1000),
    };
    if !(a.timeout.is_finite() && a.timeout > 0.0 && a.timeout <= 3600.0) {
        return Err(OptionsError::Timeout);
    }
    let opts = LoadOptions {
        creds: ClientCredentials {
            authcid: user,
            password: Secret::from(password),
            authzid: vars.get("authzid").map(str::to_string),
            host: server_name.clone(),
            port: common::port_of(&a.target),
        },
        target: a.target.clone(),
        server_name,
        tls,
        tls_config,
        mechanism,
        bound,
        concurrency: a.concurrency,
        transaction: a.transaction,
        mail_from: a.mail_from.clone(),
        rcpt_to: a.rcpt_to.clone(),
        helo: a.helo.clone(),
        timeout: Duration::from_secs_f64(a.timeout),
    };
    opts.validate().map_err(OptionsError::Invalid)?;
    Ok(opts)
}

pub async fn run(a: LoadArgs) -> u8 {
    let opts = match options(&a) {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("authspec load: {e}");
            return EXIT_USAGE;
        }
    };
    if let Err(e) = tls_preflight(&opts).await {
        eprintln!("authspec load: {}", common::tls_explained(&e.to_string()));
        return EXIT_NETWORK;
    }
    let progress = Arc::new(Progress::default());
    let bar = std::io::stderr()
        .is_terminal()
        .then(|| progress_bar(opts.bound));
    let ticker = bar.clone().map(|bar| {
        let progress = Arc::clone(&progress);
        let bound = opts.bound;
        let started = std::time::Instant::now();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let pos = match bound {
                    Bound::Sessions(_) => progress.done.load(Ordering::Relaxed),
                    Bound::Duration(_) => started.elapsed().as_secs(),
                };
                bar.set_position(pos);
                bar.set_message(format!(
                    "{} sessions, {} failed",
                    progress.done.load(Ordering::Relaxed),
                    progress.failed.load(Ordering::Relaxed)
                ));
            }
        })
    });
    let report = loadgen::run(Arc::clone(&opts), Arc::clone(&progress)).await;
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match a.format {
        Format::Human => print!("{}", loadgen::render_human(&report)),
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("authspec load: {e}");
                return EXIT_USAGE;
            }
        },
    }
    if report.sessions_failed == 0 && report.sessions_ok > 0 {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

/// With TLS, one session up to the EHLO after the handshake before the load starts,
/// so that a certificate the policy refuses ends the run with one error and the hint
/// that names --ca-file and --tls-insecure, as in every other command, instead of
/// thousands of sessions counted as `tls` errors.
async fn tls_preflight(opts: &LoadOptions) -> Result<(), crate::runner::PreflightError> {
    use crate::runner::{Endpoint, TlsMode, preflight};
    let (tls, Some(config)) = (opts.tls, opts.tls_config.as_ref()) else {
        return Ok(());
    };
    let tls = match tls {
        LoadTls::None => return Ok(()),
        LoadTls::StartTls => TlsMode::StartTls,
        LoadTls::Implicit => TlsMode::Implicit,
    };
    let ep = Endpoint {
        addr: opts.target.clone(),
        tls,
        server_name: opts.server_name.clone(),
        tls_config: Arc::clone(config),
        timeout: opts.timeout,
        sasl_port: None,
    };
    preflight(&ep).await.map(|_| ())
}

/// A bar counting sessions, or seconds for `--duration`; its length tells them apart.
fn progress_bar(bound: Bound) -> indicatif::ProgressBar {
    let (len, unit) = match bound {
        Bound::Sessions(n) => (n, "sessions"),
        Bound::Duration(d) => (d.as_secs().max(1), "s"),
    };
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let style = indicatif::ProgressStyle::with_template(&format!(
        "{{bar:40}} {{pos}}/{{len}} {unit} {{msg}} ({{elapsed}})"
    ));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
}
