//! `authspec serve`: the reference server on one or more listeners.

use super::common::{self, EXIT_NETWORK, EXIT_OK, EXIT_USAGE};
use authspec_reference::net::server::{ServerShared, serve};
use authspec_reference::net::tls;
use authspec_reference::policy::server::{ServerConfig, TlsLevel};
use authspec_reference::sasl::CredentialStore;
use authspec_reference::sasl::credentials::MemoryStore;
use authspec_reference::sasl::passwd_file;
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; repeat for several. Defaults to loopback only.
    #[arg(long = "listen", default_value = "127.0.0.1:2525")]
    pub listen: Vec<String>,
    /// A main.cf file (Postfix syntax).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override one parameter, as `-o` does in master.cf.
    #[arg(short = 'o', value_name = "NAME=VALUE")]
    pub overrides: Vec<String>,
    /// A Dovecot passwd-file (`user:{SCHEME}secret`).
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Write each accepted message to this maildir.
    #[arg(long)]
    pub maildir: Option<PathBuf>,
    /// Print the effective parameters, as `postconf` does, and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Draw session nonces from this seed (reproducible runs) instead of the OS.
    /// Testing only: the same seed gives the same nonces after every restart, so a
    /// recorded CRAM-MD5 or DIGEST-MD5 response can be replayed. Refused unless every
    /// --listen address is loopback.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write the generated self-signed certificate (PEM) here, for clients to trust.
    #[arg(long)]
    pub write_cert: Option<PathBuf>,
}

pub async fn run(a: ServeArgs) -> u8 {
    let cf = match common::load_main_cf(a.config.as_deref(), &a.overrides) {
        Ok(cf) => cf,
        Err(e) => {
            eprintln!("authspec serve: {e}");
            return EXIT_USAGE;
        }
    };
    let config = match ServerConfig::from_main_cf(&cf) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("authspec serve: {e}");
            return EXIT_USAGE;
        }
    };
    if a.print_config {
        print!("{}", config.print_config());
        return EXIT_OK;
    }
    // A seed makes nonces repeat across restarts (a captured CRAM-MD5 response
    // replays), so it stays where only this machine can connect.
    if a.seed.is_some() {
        if let Some(addr) = a
            .listen
            .iter()
            .find(|l| !crate::support::resolves_to_loopback_only(l))
        {
            eprintln!(
                "authspec serve: --seed repeats nonces across restarts; refused on the non-loopback address {addr}"
            );
            return EXIT_USAGE;
        }
    }
    let credentials: Arc<dyn CredentialStore> = match &a.users {
        Some(p) => {
            match crate::input::read_text(std::path::Path::new(p), crate::input::MAX_INPUT_FILE) {
                Ok(text) => match passwd_file::parse(&text, &p.display().to_string()) {
                    Ok(f) => Arc::new(f),
                    Err(e) => {
                        eprintln!("authspec serve: {e}");
                        return EXIT_USAGE;
                    }
                },
                Err(e) => {
                    eprintln!("authspec serve: {}: cannot read: {e}", p.display());
                    return EXIT_USAGE;
                }
            }
        }
        None => {
            tracing::warn!("no --users file: every authentication will fail");
            Arc::new(MemoryStore::default())
        }
    };
    let tls_config = match server_tls(&config, a.write_cert.as_ref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("authspec serve: {e}");
            return EXIT_USAGE;
        }
    };
    let leaf = tls_config.as_ref().and_then(|(_, leaf)| leaf.clone());
    let mut shared = ServerShared::new(
        Arc::new(config),
        credentials,
        tls_config.map(|(c, _)| c),
        a.maildir.clone(),
        a.seed,
    );
    // RFC 5929 tls-server-end-point for SCRAM-*-PLUS, from the certificate served.
    if let Some(der) = leaf {
        shared = shared.with_certificate(&der);
    }
    let shared = Arc::new(shared);
    let mut tasks = Vec::new();
    for addr in &a.listen {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("authspec serve: cannot listen on {addr}: {e}");
                return EXIT_NETWORK;
            }
        };
        let local = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        // Tests and scripts read this line to learn the port when they ask for :0.
        println!("listening on {local}");
        tasks.push(tokio::spawn(serve(listener, Arc::clone(&shared))));
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = futures_any(tasks) => {}
    }
    EXIT_OK
}

async fn futures_any(tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>) {
    for t in tasks {
        let _ = t.await;
    }
}

/// TLS for STARTTLS and wrapper mode: the configured certificate, or a self-signed
/// one made at start for `myhostname` (rcgen).
/// The TLS config, and the DER of the leaf certificate it presents (for
/// `tls-server-end-point`).
type TlsAndLeaf = (Arc<rustls::ServerConfig>, Option<Vec<u8>>);

pub fn server_tls(
    config: &ServerConfig,
    write_cert: Option<&PathBuf>,
) -> Result<Option<TlsAndLeaf>, ServeTlsError> {
    if config.tls_security_level == TlsLevel::None && !config.tls_wrappermode {
        return Ok(None);
    }
    let (certs, key, pem) = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(c), Some(k)) => {
            let loaded = tls::load_cert_and_key(Path::new(c), Path::new(k))?;
            (loaded.certs, loaded.key, loaded.cert_pem)
        }
        _ => {
            let ck = tls::self_signed(&[config.myhostname.clone(), "localhost".into()])?;
            (ck.certs, ck.key, ck.cert_pem)
        }
    };
    if let Some(p) = write_cert {
        std::fs::write(p, pem).map_err(|error| ServeTlsError::WriteCert {
            path: p.clone(),
            error,
        })?;
    }
    let leaf = certs.first().map(|c| c.as_ref().to_vec());
    let config = tls::server_config(certs, key, &tls::ClientAuth::None)?;
    Ok(Some((config, leaf)))
}

/// Why `serve` has no TLS configuration.
#[derive(Debug)]
pub enum ServeTlsError {
    Tls(tls::TlsError),
    /// `--write-cert` could not write the certificate.
    WriteCert {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl From<tls::TlsError> for ServeTlsError {
    fn from(e: tls::TlsError) -> Self {
        ServeTlsError::Tls(e)
    }
}

impl std::fmt::Display for ServeTlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeTlsError::Tls(e) => e.fmt(f),
            ServeTlsError::WriteCert { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for ServeTlsError {}
