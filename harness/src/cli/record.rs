//! `authspec record`: a recording proxy that turns real sessions into scenarios.

use super::common::{EXIT_NETWORK, EXIT_OK, EXIT_USAGE};
use crate::record::{Limits, Options, ProxyConfig, SessionReport};
use authspec_reference::net::tls;
use clap::Args;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
#[command(after_help = "Each session is written to DIR as two scenarios: \
<stamp>-<n>-client.yaml (replays the client's side: `authspec run FILE --target HOST:PORT \
--var user=… --var password-env=VAR`) and <stamp>-<n>-server.yaml (replays the server's \
side to judge a client: `authspec run FILE --client-command '… {host} {port}'`).\n\n\
Secrets: passwords, tokens and client SASL payloads are never written; exchanges of \
mechanisms authspec implements replay from ${user} and ${password}. --redact also \
replaces user names and host names.\n\n\
STARTTLS: by default the proxy answers the client's TLS handshake with a self-signed \
certificate (--cert-out writes it, for clients that must trust it) and keeps recording \
inside TLS. A client that refuses the certificate ends the session, and the recording \
says so.\n\n\
Exit codes: 0 done (after --max-sessions), 2 bad arguments, 3 cannot listen.")]
pub struct RecordArgs {
    /// Address to listen on for clients.
    #[arg(long, default_value = "127.0.0.1:2500")]
    pub listen: String,
    /// The SMTP server to forward to, HOST:PORT.
    #[arg(long)]
    pub target: String,
    /// Intercept STARTTLS and keep recording inside TLS (the default).
    #[arg(long, conflicts_with = "no_tls_intercept")]
    pub starttls_intercept: bool,
    /// Let STARTTLS through untouched; the recording ends at STARTTLS.
    #[arg(long)]
    pub no_tls_intercept: bool,
    /// Folder for the recorded scenarios (created if missing).
    #[arg(long, default_value = "recordings")]
    pub out: PathBuf,
    /// Also replace user names and host names with variables and placeholders.
    #[arg(long)]
    pub redact: bool,
    /// Stop after this many sessions (default: run until interrupted).
    #[arg(long)]
    pub max_sessions: Option<u64>,
    /// Close a session after this many seconds without traffic.
    #[arg(long, default_value_t = 120.0)]
    pub timeout: f64,
    /// Write the proxy's self-signed certificate (PEM) here, for clients to trust.
    #[arg(long)]
    pub cert_out: Option<PathBuf>,
    /// The certificate policy towards the target (README "Certificates").
    #[command(flatten)]
    pub tls_policy: super::common::TlsPolicy,
    /// The TLS server name for the target (default: the name the client asked for,
    /// else the target's host).
    #[arg(long)]
    pub sni: Option<String>,
    /// Most sessions recorded at once.
    #[arg(long, default_value_t = 64)]
    pub max_concurrent: usize,
    /// Lines recorded per session; beyond it the session is forwarded unrecorded.
    #[arg(long, default_value_t = Limits::default().max_lines)]
    pub max_lines: usize,
    /// Octets recorded per session (both directions); at most 256 KiB, so that the
    /// file loads again (scenario files are limited to 1 MiB).
    #[arg(long, default_value_t = Limits::default().max_bytes)]
    pub max_bytes: usize,
}

fn print_report(r: &SessionReport) {
    let mut out = std::io::stdout().lock();
    if !r.files.is_empty() {
        let files: Vec<String> = r.files.iter().map(|p| p.display().to_string()).collect();
        let _ = writeln!(out, "recorded session {}: {}", r.number, files.join(" "));
    }
    for p in &r.problems {
        // TLS towards the target follows the common certificate policy; a refused
        // certificate gets the same words and hint as in every other command.
        let _ = writeln!(
            out,
            "session {}: {}",
            r.number,
            super::common::tls_explained(p)
        );
    }
    if r.files.is_empty() && r.problems.is_empty() {
        let _ = writeln!(out, "session {}: nothing recorded", r.number);
    }
    let _ = out.flush();
}

pub async fn run(a: RecordArgs) -> u8 {
    let host = crate::support::host_of(&a.target);
    let listen_host = crate::support::host_of(&a.listen);
    let mut names = vec![host.clone(), "localhost".to_string(), listen_host];
    names.dedup();
    names.retain(|n| !n.is_empty() && n != "0.0.0.0" && n != "::");
    let cert = match tls::self_signed(&names) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("authspec record: {e}");
            return EXIT_USAGE;
        }
    };
    if let Some(p) = &a.cert_out {
        if let Err(e) = std::fs::write(p, &cert.cert_pem) {
            eprintln!("authspec record: {}: {e}", p.display());
            return EXIT_USAGE;
        }
    }
    let to_client = match tls::server_config(
        cert.certs.clone(),
        cert.key.clone_key(),
        &tls::ClientAuth::None,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("authspec record: {e}");
            return EXIT_USAGE;
        }
    };
    let to_server = match a
        .tls_policy
        .client_config(super::common::CertDefault::AcceptAny)
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("authspec record: {e}");
            return EXIT_USAGE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&a.out) {
        eprintln!("authspec record: {}: {e}", a.out.display());
        return EXIT_USAGE;
    }
    let cfg = ProxyConfig {
        target: a.target.clone(),
        intercept: !a.no_tls_intercept,
        out: a.out.clone(),
        options: Options { redact: a.redact },
        max_sessions: a.max_sessions,
        idle_timeout: Duration::from_secs_f64(a.timeout.clamp(0.1, 86_400.0)),
        limits: Limits {
            max_lines: a.max_lines,
            max_bytes: a.max_bytes.min(256 * 1024),
        },
        to_server,
        to_client,
        sni: a.sni.clone(),
        max_concurrent: a.max_concurrent,
    };
    let listener = match tokio::net::TcpListener::bind(&a.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("authspec record: cannot listen on {}: {e}", a.listen);
            return EXIT_NETWORK;
        }
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    // Tests and scripts read this line to learn the port when they ask for :0.
    println!("listening on {local}");
    let _ = std::io::stdout().flush();
    tracing::info!(
        "recording sessions to {} into {}",
        a.target,
        a.out.display()
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = crate::record::serve(listener, cfg, Arc::new(print_report)) => {}
    }
    EXIT_OK
}
