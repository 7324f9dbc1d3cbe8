//! `authspec run`: the main job.

use super::common::{self, EXIT_FAILED, EXIT_NETWORK, EXIT_OK, EXIT_USAGE, ScenariosError};
use crate::input::Unreadable;
use crate::report::{self, Expectations, RunReport};
use crate::runner::{
    self, ClientUnderTest, RemoteTarget, RunConfig, Target, TlsMode, default_jobs, default_vars,
};
use crate::scenario::{self, Scenario, VarError, Vars, pattern::glob_match};
use clap::{Args, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Junit,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 nothing failed or errored (known deviations and \
non-strict results do not fail a run), 1 failures or errors, 2 bad arguments or scenario \
files, 3 the target is unusable (no greeting, no EHLO reply).\n\n\
Secrets: give passwords with --var password-env=VAR, --var-file, or AUTHSPEC_VAR_PASSWORD, \
not on the command line. Reports mask them."
)]
pub struct RunArgs {
    /// Scenario files or folders; by default the bundled library.
    pub paths: Vec<PathBuf>,
    /// Run against HOST:PORT instead of the embedded reference server.
    #[arg(long)]
    pub target: Option<String>,
    /// Start every scenario with STARTTLS (the target's port 587 style).
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
    /// A variable: `name=value`, or `name-env=VAR` to read it from the environment.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// A file of `name=value` lines.
    #[arg(long)]
    pub var_file: Option<PathBuf>,
    /// Known deviations of this target (YAML).
    #[arg(long)]
    pub expect_file: Option<PathBuf>,
    /// Only scenarios whose id, path or a tag matches (glob; repeatable).
    #[arg(long)]
    pub filter: Vec<String>,
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Write the report here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Scenarios run at once.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Per-read timeout, in seconds. Defaults to 5 against the embedded server and to
    /// 30 against a target: real servers tarpit after a failed AUTH (1–8 s is common)
    /// and may greet late after a reverse DNS lookup.
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Fail a target for a broken SHOULD too (by default a broken SHOULD is non-strict;
    /// only a broken MUST fails).
    #[arg(long)]
    pub strict: bool,
    /// The most one scenario may take, all its steps together, in seconds; past it the
    /// scenario is an error.
    #[arg(long, default_value_t = 120.0)]
    pub scenario_timeout: f64,
    /// Seed for nonces on both sides (reproducible transcripts).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// For server-role scenarios: run this client through `sh -c`, with `{host}`,
    /// `{port}` and `{mechanism}` filled in, and AUTHSPEC_USER, AUTHSPEC_PASSWORD and
    /// AUTHSPEC_MECHANISM in its environment. Its exit status and output are reported.
    #[arg(long)]
    pub client_command: Option<String>,
    /// For server-role scenarios: wait for an external client on this address. The
    /// scenarios are played one at a time, in the order printed at the start.
    #[arg(long, conflicts_with = "client_command")]
    pub listen: Option<String>,
    /// The SASL mechanisms the client implements (comma-separated). Scenarios written
    /// once per mechanism run for these; others are skipped. Without it a client command
    /// is asked (one short session per mechanism, offered alone), and --listen assumes
    /// PLAIN.
    #[arg(long, value_delimiter = ',')]
    pub client_mechanisms: Option<Vec<String>>,
    /// Print the scenario list with their clauses and exit.
    #[arg(long)]
    pub list: bool,
}

/// The per-read timeout against the embedded server, which answers at once.
const EMBEDDED_TIMEOUT_SECS: f64 = 5.0;
/// The per-read timeout against a real server: long enough for a tarpit after a failed
/// AUTH or a slow greeting, which are not errors.
const REMOTE_TIMEOUT_SECS: f64 = 30.0;

fn load(args: &RunArgs) -> Result<Vec<Scenario>, ScenariosError> {
    let mut all = Vec::new();
    if args.paths.is_empty() {
        all = scenario::load_bundled().map_err(ScenariosError::Invalid)?;
    } else {
        for p in &args.paths {
            if p.is_dir() {
                all.extend(scenario::load_dir(p).map_err(ScenariosError::Invalid)?);
            } else {
                all.push(common::load_scenario_file(p)?);
            }
        }
        let dup = scenario::validate_set(&all);
        if !dup.is_empty() {
            return Err(ScenariosError::Invalid(dup));
        }
    }
    if !args.filter.is_empty() {
        all.retain(|s| {
            args.filter.iter().any(|f| {
                glob_match(f, &s.id)
                    || glob_match(f, &s.path)
                    || s.tags.iter().any(|t| glob_match(f, t))
            })
        });
    }
    Ok(all)
}

/// Why `--var` and `--var-file` do not make the run's variables.
#[derive(Debug)]
enum VarsError {
    Unreadable(Unreadable),
    VarFile { path: PathBuf, error: VarError },
    Var(VarError),
}

impl std::fmt::Display for VarsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarsError::Unreadable(e) => e.fmt(f),
            VarsError::VarFile { path, error } => write!(f, "{}: {error}", path.display()),
            VarsError::Var(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for VarsError {}

fn vars(args: &RunArgs, embedded: bool) -> Result<Vars, VarsError> {
    let env = |k: &str| std::env::var(k).ok();
    let mut v = if embedded {
        default_vars()
    } else {
        Vars::new()
    };
    v.extend(&Vars::from_env(std::env::vars()));
    if let Some(f) = &args.var_file {
        let text = crate::input::read_named(f).map_err(VarsError::Unreadable)?;
        let mut fv = Vars::new();
        fv.parse_file(&text, &env)
            .map_err(|error| VarsError::VarFile {
                path: f.clone(),
                error,
            })?;
        v.extend(&fv);
    }
    let mut cli = Vars::new();
    for a in &args.vars {
        cli.parse_assignment(a, &env).map_err(VarsError::Var)?;
    }
    v.extend(&cli);
    if let Some(t) = &args.target {
        if v.get("host").is_none() {
            v.set("host", crate::support::host_of(t));
        }
    } else if v.get("host").is_none() {
        v.set("host", runner::embedded::HOSTNAME);
    }
    Ok(v)
}

pub async fn run(args: RunArgs) -> u8 {
    let scenarios = match load(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("authspec run: {e}");
            return EXIT_USAGE;
        }
    };
    if args.list {
        return list(scenarios);
    }
    let vars = match vars(&args, args.target.is_none()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("authspec run: {e}");
            return EXIT_USAGE;
        }
    };
    let expectations = match expectations(&args) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("authspec run: {e}");
            return EXIT_USAGE;
        }
    };
    let cfg = config(&args, vars);
    let mut report: RunReport = match runner::run(scenarios, &cfg).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("authspec run: {}", common::tls_explained(&e.to_string()));
            return EXIT_NETWORK;
        }
    };
    if let Some(e) = &expectations {
        let unused = report.apply_expectations(e);
        for id in &unused.unused_deviations {
            tracing::info!("expectations: no scenario matched deviation {id}");
        }
    }
    if let Err(e) = write_report(&args, &report) {
        eprintln!("authspec run: {e}");
        return EXIT_USAGE;
    }
    if args.output.is_some() {
        eprintln!("{}", report.summary());
    }
    if report.exit_code() == 0 {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

/// `--list`: each scenario (mechanisms expanded) with its clauses.
fn list(scenarios: Vec<Scenario>) -> u8 {
    let scenarios = scenario::expand_mechanisms(scenarios);
    for s in &scenarios {
        let spec: Vec<String> = s.spec.iter().map(ToString::to_string).collect();
        println!("{:<60} {}", s.id, spec.join(", "));
    }
    println!("{} scenarios", scenarios.len());
    EXIT_OK
}

/// Why `--expect-file` does not load.
#[derive(Debug)]
enum ExpectFileError {
    Unreadable(Unreadable),
    Invalid {
        path: PathBuf,
        error: report::ExpectationsError,
    },
}

impl std::fmt::Display for ExpectFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectFileError::Unreadable(e) => e.fmt(f),
            ExpectFileError::Invalid { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for ExpectFileError {}

fn expectations(args: &RunArgs) -> Result<Option<Expectations>, ExpectFileError> {
    let Some(p) = &args.expect_file else {
        return Ok(None);
    };
    let text = crate::input::read_named(p).map_err(ExpectFileError::Unreadable)?;
    Expectations::load_str(&text)
        .map(Some)
        .map_err(|error| ExpectFileError::Invalid {
            path: p.clone(),
            error,
        })
}

/// The run's configuration from the arguments: target, client under test, timeouts.
fn config(args: &RunArgs, vars: Vars) -> RunConfig {
    let target = match &args.target {
        None => Target::Embedded,
        Some(addr) => Target::Remote(RemoteTarget {
            addr: addr.clone(),
            tls: if args.tls {
                TlsMode::Implicit
            } else if args.starttls {
                TlsMode::StartTls
            } else {
                TlsMode::Plain
            },
            tls_insecure: args.tls_policy.tls_insecure,
            ca_file: args.tls_policy.ca_file.clone(),
            sni: args.sni.clone(),
        }),
    };
    let client = match (&args.client_command, &args.listen) {
        (Some(c), _) => ClientUnderTest::Command(c.clone()),
        (None, Some(l)) => ClientUnderTest::Listen(l.clone()),
        (None, None) => ClientUnderTest::Embedded,
    };
    RunConfig {
        target,
        vars,
        timeout: Duration::from_secs_f64(
            args.timeout
                .unwrap_or(if args.target.is_some() {
                    REMOTE_TIMEOUT_SECS
                } else {
                    EMBEDDED_TIMEOUT_SECS
                })
                .clamp(0.05, 600.0),
        ),
        jobs: args.jobs.unwrap_or_else(default_jobs),
        seed: args.seed,
        client,
        client_mechanisms: args.client_mechanisms.as_ref().map(|v| {
            v.iter()
                .map(|m| m.trim().to_ascii_uppercase())
                .filter(|m| !m.is_empty())
                .collect()
        }),
        progress: std::io::stderr().is_terminal(),
        strict: args.strict,
        scenario_timeout: Duration::from_secs_f64(args.scenario_timeout.clamp(0.05, 86_400.0)),
    }
}

/// Why the report was not written.
#[derive(Debug)]
enum OutputError {
    /// `--output` could not be created.
    Create {
        path: PathBuf,
        error: std::io::Error,
    },
    Write(std::io::Error),
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputError::Create { path, error } => write!(f, "{}: {error}", path.display()),
            OutputError::Write(e) => write!(f, "writing the report: {e}"),
        }
    }
}

impl std::error::Error for OutputError {}

/// The report in `--format`, to `--output` or stdout (coloured only on a terminal).
fn write_report(args: &RunArgs, report: &RunReport) -> Result<(), OutputError> {
    let color = args.output.is_none() && common::ColorChoice::current().stdout_colored();
    let mut out: Box<dyn std::io::Write> = match &args.output {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(error) => {
                return Err(OutputError::Create {
                    path: p.clone(),
                    error,
                });
            }
        },
        None => Box::new(std::io::stdout().lock()),
    };
    let written = match args.format {
        Format::Human => report::human::write(report, &mut out, color),
        Format::Json => report::json::write(report, &mut out),
        Format::Junit => report::junit::write(report, &mut out),
    };
    written
        .and_then(|()| out.flush())
        .map_err(OutputError::Write)
}
