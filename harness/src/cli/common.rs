//! What the subcommands share: exit codes, logging, configuration loading, secrets
//! from the environment or files, TLS client settings.

use authspec_reference::net::tls;
use authspec_reference::policy::maincf::MainCf;
use authspec_reference::sasl::Secret;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Success.
pub const EXIT_OK: u8 = 0;
/// Conformance failures (run), or a rejected message (send).
pub const EXIT_FAILED: u8 = 1;
/// Bad command line, configuration or input file.
pub const EXIT_USAGE: u8 = 2;
/// Could not connect, timed out, or TLS failed.
pub const EXIT_NETWORK: u8 = 3;
/// Authentication was rejected by the server.
pub const EXIT_AUTH_REJECTED: u8 = 4;
/// No usable mechanism, or AUTH not offered.
pub const EXIT_NO_MECHANISM: u8 = 5;
/// The server broke the protocol.
pub const EXIT_PROTOCOL: u8 = 6;

pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUTHSPEC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// main.cf from `--config` (if any) with `-o name=value` overrides on top. Errors name
/// the file, the line and the parameter.
pub fn load_main_cf(path: Option<&Path>, overrides: &[String]) -> Result<MainCf, String> {
    let mut cf = match path {
        Some(p) => {
            let text =
                crate::input::read_text(std::path::Path::new(p), crate::input::MAX_INPUT_FILE)
                    .map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
            MainCf::parse(&text, &p.display().to_string()).map_err(|e| e.to_string())?
        }
        None => MainCf::parse("", "(defaults)").map_err(|e| e.to_string())?,
    };
    for o in overrides {
        cf.set_override(o).map_err(|e| format!("-o {o}: {e}"))?;
    }
    Ok(cf)
}

/// A secret from an environment variable or a file — never from argv, where other
/// users of the machine can read it in `ps` output and shells keep it in history.
pub fn secret_from(env: Option<&str>, file: Option<&Path>) -> Result<Option<Secret>, String> {
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(v) => Ok(Some(Secret::from(v))),
            Err(_) => Err(format!("environment variable {var} is not set")),
        };
    }
    if let Some(p) = file {
        let text = crate::input::read_text(std::path::Path::new(p), crate::input::MAX_INPUT_FILE)
            .map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
        let line = text.lines().next().unwrap_or("").to_string();
        return Ok(Some(Secret::from(line)));
    }
    Ok(None)
}

/// A TLS client configuration: verify against `ca_file` (or the web PKI roots), or
/// accept any certificate with `insecure`.
pub fn tls_client(
    insecure: bool,
    ca_file: Option<&PathBuf>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let v = if insecure {
        tls::ServerVerification::Insecure
    } else {
        tls::ServerVerification::WebPki {
            ca_file: ca_file.cloned(),
        }
    };
    tls::client_config(&v).map_err(|e| format!("{e:?}"))
}

pub use crate::support::{host_of, port_of};
