//! `authspec probe HOST:PORT`.

use super::common::{self, EXIT_NETWORK, EXIT_OK, EXIT_USAGE};
use crate::probe::{ProbeError, ProbeOptions, ProbeTls, probe, render_human};
use clap::{Args, ValueEnum};
use std::time::Duration;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The server, HOST:PORT.
    pub target: String,
    /// Upgrade with STARTTLS (also done automatically when offered).
    #[arg(long, conflicts_with = "tls")]
    pub starttls: bool,
    /// TLS from the first byte (port 465 style).
    #[arg(long)]
    pub tls: bool,
    /// The certificate policy (README "Certificates").
    #[command(flatten)]
    pub tls_policy: common::TlsPolicy,
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Per-read timeout in seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    #[arg(long, default_value = "probe.authspec.invalid")]
    pub helo: String,
}

pub async fn run(a: ProbeArgs) -> u8 {
    if !a.tls && common::port_of(&a.target) == Some(465) {
        eprintln!(
            "authspec probe: port 465 is implicit TLS (RFC 8314); trying plaintext as asked (a silent port is then tried with TLS)"
        );
    }
    let tls_config = match a.tls_policy.client_config(common::CertDefault::AcceptAny) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("authspec probe: {e}");
            return EXIT_USAGE;
        }
    };
    let opts = ProbeOptions {
        server_name: common::host_of(&a.target),
        target: a.target.clone(),
        tls: if a.tls {
            ProbeTls::Implicit
        } else if a.starttls {
            ProbeTls::StartTls
        } else {
            ProbeTls::None
        },
        tls_config,
        helo: a.helo.clone(),
        timeout: Duration::from_secs(a.timeout.max(1)),
    };
    match probe(&opts).await {
        Ok(mut report) => {
            let refused = certificate_refused(&mut report);
            match a.format {
                // Server text in the report is escaped line by line: no terminal
                // escape sequence from the peer reaches the terminal.
                Format::Human => {
                    for line in render_human(&report).lines() {
                        println!("{}", crate::support::escape_controls(line));
                    }
                }
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                ),
            }
            if let Some(e) = refused {
                // The same policy, words and exit code as every other command: the
                // report above is printed, but the certificate was not trusted.
                eprintln!("authspec probe: {}: {e}{}", a.target, common::TLS_HINT);
                return EXIT_NETWORK;
            }
            EXIT_OK
        }
        Err(ProbeError::Conn(e)) => {
            let text = e.to_string();
            eprintln!(
                "authspec probe: {}: {}{}",
                a.target,
                crate::support::escape_controls(&common::tls_words(&text)),
                common::tls_hint(&text)
            );
            EXIT_NETWORK
        }
        // No greeting: the error itself says whether the port speaks TLS (use --tls)
        // or stays silent to both (issue 17).
        Err(e) => {
            eprintln!(
                "authspec probe: {}: {}",
                a.target,
                crate::support::escape_controls(&e.to_string())
            );
            EXIT_NETWORK
        }
    }
}

/// A STARTTLS handshake that failed because the certificate did not verify: the
/// anomaly is put in words, and the words are returned for the error line.
fn certificate_refused(report: &mut crate::probe::ProbeReport) -> Option<String> {
    let mut refused = None;
    for an in &mut report.anomalies {
        if an.rule == "tls-handshake-failed" && !common::tls_hint(&an.detail).is_empty() {
            an.detail = common::tls_words(&an.detail);
            refused.get_or_insert_with(|| an.detail.clone());
        }
    }
    refused
}
