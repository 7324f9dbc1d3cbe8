//! Command-line parsing and the subcommands. Exit codes are documented in the README
//! ("Exit codes") and on each subcommand's `--help`.

mod common;
mod coverage;
mod fuzz;
mod loadgen;
mod probe;
mod record;
mod run;
mod send;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "authspec",
    version,
    about = "Prove that an SMTP server or client implements SMTP AUTH (RFC 4954) and its SASL mechanisms correctly",
    long_about = None
)]
pub struct Cli {
    /// Log verbosity: -v info, -vv debug, -vvv trace (logs go to stderr and never hold secrets).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Colour in logs and reports: auto (only on a terminal, and not with NO_COLOR set), always or never.
    #[arg(long, value_enum, default_value_t = common::ColorChoice::Auto, global = true)]
    pub color: common::ColorChoice,
    /// Log format on stderr: text (Postfix-style lines) or json (one object per line, for CI).
    #[arg(long = "log-format", value_enum, default_value_t = common::LogFormat::Text, global = true)]
    pub log_format: common::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios against the embedded reference server or a target, and report by RFC clause.
    Run(run::RunArgs),
    /// Run the reference SMTP AUTH server (Postfix vocabulary).
    Serve(serve::ServeArgs),
    /// Send one message with the reference client, authenticating as Postfix's smtp client does.
    Send(send::SendArgs),
    /// Report what a server offers for AUTH, before and after TLS, and what looks wrong.
    Probe(probe::ProbeArgs),
    /// Measure sessions/s, latency and errors of a server under AUTH load (loopback only by default).
    Load(loadgen::LoadArgs),
    /// Record real sessions through a proxy as client-role and server-role scenarios.
    Record(record::RecordArgs),
    /// Fuzz a live SMTP AUTH server with mutated sessions; write findings as scenarios.
    Fuzz(fuzz::FuzzArgs),
    /// Print the JSON Schema of the scenario format, for editors.
    Schema,
    /// Map the RFC requirements to the scenarios that check them; show the gaps.
    Coverage(coverage::CoverageArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        /// The shell to write completions for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the authspec(1) man page (roff) on stdout.
    Man,
}

/// The clap command tree, for completions, the man page and tests of documented
/// command lines.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut command(), "authspec", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            let man = clap_mangen::Man::new(command());
            return match man.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("authspec man: cannot write the man page: {e}");
                    ExitCode::from(common::EXIT_USAGE)
                }
            };
        }
        _ => {}
    }
    common::init_tracing(cli.verbose, cli.color, cli.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("authspec: cannot start the async runtime: {e}");
            return ExitCode::from(common::EXIT_USAGE);
        }
    };
    let code = rt.block_on(async {
        match cli.command {
            Command::Serve(a) => serve::run(a).await,
            Command::Send(a) => send::run(a, cli.verbose).await,
            Command::Probe(a) => probe::run(a).await,
            Command::Run(a) => run::run(a).await,
            Command::Load(a) => loadgen::run(a).await,
            Command::Coverage(a) => coverage::run(a),
            Command::Record(a) => record::run(a).await,
            Command::Fuzz(a) => fuzz::run(a).await,
            Command::Completions { .. } | Command::Man => common::EXIT_OK,
            Command::Schema => {
                match serde_json::to_string_pretty(&crate::scenario::json_schema()) {
                    Ok(s) => {
                        println!("{s}");
                        common::EXIT_OK
                    }
                    Err(e) => {
                        eprintln!("authspec schema: {e}");
                        common::EXIT_USAGE
                    }
                }
            }
        }
    });
    ExitCode::from(code)
}
