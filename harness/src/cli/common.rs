//! What the subcommands share: exit codes, logging, configuration loading, secrets
//! from the environment or files, TLS client settings.

use crate::input::Unreadable;
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
/// The client refused to send the credentials it was given (nothing was sent).
pub const EXIT_CLIENT_REFUSED: u8 = 7;

/// `--color`: colour only on a terminal by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal and `NO_COLOR` is not set (<https://no-color.org>).
    Auto,
    Always,
    Never,
}

static COLOR: std::sync::OnceLock<ColorChoice> = std::sync::OnceLock::new();

impl ColorChoice {
    /// The choice of the command line (`auto` until it is parsed).
    pub fn current() -> ColorChoice {
        COLOR.get().copied().unwrap_or(ColorChoice::Auto)
    }

    fn decide(self, terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && terminal
            }
        }
    }

    /// Whether to write ANSI colour codes to stderr.
    pub fn stderr_colored(self) -> bool {
        use std::io::IsTerminal as _;
        self.decide(std::io::stderr().is_terminal())
    }

    /// Whether to write ANSI colour codes to stdout.
    pub fn stdout_colored(self) -> bool {
        use std::io::IsTerminal as _;
        self.decide(std::io::stdout().is_terminal())
    }
}

/// A TLS error for people: rustls names certificate errors by their Rust variant
/// (`UnknownIssuer`, `Other(OtherError(CaUsedAsEndEntity))`); those become words, and a
/// certificate failure gets [`tls_hint`].
pub fn tls_explained(error: &str) -> String {
    const MARK: &str = "invalid peer certificate: ";
    let text = match error.find(MARK) {
        Some(i) => {
            let (head, rest) = error.split_at(i + MARK.len());
            let rest = rest.replace("Other(OtherError(", "(").replace(
                "UnknownIssuer",
                "issued by an unknown CA, perhaps self-signed",
            );
            format!("{head}{}", authspec_reference::human::words(&rest))
        }
        None => error.to_owned(),
    };
    format!("{text}{}", tls_hint(error))
}

/// [`tls_explained`] without the hint.
pub fn tls_words(error: &str) -> String {
    let full = tls_explained(error);
    full.strip_suffix(tls_hint(error))
        .unwrap_or(&full)
        .to_owned()
}

/// The hint every subcommand prints under a certificate verification failure, word
/// for word: how to trust the certificate, or (for tests) how to skip the check.
pub const TLS_HINT: &str = "\n  hint: the server's certificate did not verify. Pass --ca-file FILE with the CA \
     that signed it, or --tls-insecure to skip verification (test servers only).";

/// [`TLS_HINT`] for a TLS error that is a certificate verification failure (rustls's
/// `invalid peer certificate: …`); empty otherwise. A handshake that failed for another
/// reason (an alert from the peer, a protocol version) gets no hint about certificates.
pub fn tls_hint(error: &str) -> &'static str {
    let e = error.to_ascii_lowercase();
    if e.contains("invalid peer certificate")
        || e.contains("unknownissuer")
        || e.contains("causedasendentity")
        || e.contains("certificate did not verify")
    {
        TLS_HINT
    } else {
        ""
    }
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The default log filter for `-v` counts. The reference server logs under the
/// targets `smtpd` (connections, the dialog, authentications) and `tls`; `AUTHSPEC_LOG`
/// or `RUST_LOG` (`smtpd=debug,tls=off`, say) override it.
pub fn log_filter(verbose: u8) -> &'static str {
    match verbose {
        0 => "warn",
        1 => "info,rustls=warn",
        2 => "debug,rustls=info",
        _ => "trace",
    }
}

pub fn init_tracing(verbose: u8, color: ColorChoice, format: LogFormat) {
    let _ = COLOR.set(color);
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUTHSPEC_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log_filter(verbose)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().with_target(true).try_init(),
        LogFormat::Text => builder.with_ansi(color.stderr_colored()).try_init(),
    };
}

/// Why main.cf and its `-o` overrides do not make a configuration.
#[derive(Debug)]
pub enum MainCfError {
    Unreadable(Unreadable),
    /// Names the file (or `-o`), the line and the parameter.
    Config(authspec_reference::policy::error::ConfigError),
}

impl std::fmt::Display for MainCfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MainCfError::Unreadable(e) => e.fmt(f),
            MainCfError::Config(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for MainCfError {}

/// main.cf from `--config` (if any) with `-o name=value` overrides on top. Errors name
/// the file, the line and the parameter.
pub fn load_main_cf(path: Option<&Path>, overrides: &[String]) -> Result<MainCf, MainCfError> {
    let mut cf = match path {
        Some(p) => {
            let text = crate::input::read_named(p).map_err(MainCfError::Unreadable)?;
            MainCf::parse(&text, &p.display().to_string()).map_err(MainCfError::Config)?
        }
        None => MainCf::parse("", "(defaults)").map_err(MainCfError::Config)?,
    };
    for o in overrides {
        cf.set_override(o).map_err(MainCfError::Config)?;
    }
    Ok(cf)
}

/// Why a secret named by `--password-env` or `--password-file` is not there. Neither
/// variant holds the secret.
#[derive(Debug)]
pub enum SecretError {
    NotSet { var: String },
    Unreadable(Unreadable),
}

impl std::fmt::Display for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretError::NotSet { var } => write!(f, "environment variable {var} is not set"),
            SecretError::Unreadable(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SecretError {}

/// A secret from an environment variable or a file — never from argv, where other
/// users of the machine can read it in `ps` output and shells keep it in history.
pub fn secret_from(env: Option<&str>, file: Option<&Path>) -> Result<Option<Secret>, SecretError> {
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(v) => Ok(Some(Secret::from(v))),
            Err(_) => Err(SecretError::NotSet {
                var: var.to_owned(),
            }),
        };
    }
    if let Some(p) = file {
        let text = crate::input::read_named(p).map_err(SecretError::Unreadable)?;
        let line = text.lines().next().unwrap_or("").to_string();
        return Ok(Some(Secret::from(line)));
    }
    Ok(None)
}

/// The certificate flags of every command that connects as a TLS client (`send`,
/// `run --target`, `probe`, `load`, `fuzz`, and `record` towards its target): the same
/// three flags everywhere, one place that turns them into a rustls configuration, and
/// one hint when verification fails. What happens without any flag is the command's
/// [`CertDefault`], listed in README "Certificates".
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsPolicy {
    /// Accept any server certificate, unverified (test servers only).
    #[arg(long, conflicts_with_all = ["ca_file", "tls_verify"])]
    pub tls_insecure: bool,
    /// Verify the server's certificate against the CA certificates (PEM) in FILE
    /// instead of the Mozilla roots (implies --tls-verify).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Verify the server's certificate (chain and host name) even where the command
    /// would not by default (probe, record, send below smtp_tls_security_level=verify).
    #[arg(long)]
    pub tls_verify: bool,
}

/// What a command does with the certificate when no flag says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertDefault {
    /// Verify against the Mozilla roots (`run`, `load`, `fuzz`).
    Verify,
    /// Accept any: `probe` reports what is there, the `record` proxy needs the
    /// channel and not the target's identity, and `send` below Postfix's
    /// `smtp_tls_security_level=verify` does as Postfix's smtp client does.
    AcceptAny,
}

impl TlsPolicy {
    /// Whether the certificate is verified under this command's default.
    pub fn verifies(&self, default: CertDefault) -> bool {
        !self.tls_insecure
            && (self.tls_verify || self.ca_file.is_some() || default == CertDefault::Verify)
    }

    /// The rustls client configuration of this policy under the command's default.
    pub fn client_config(
        &self,
        default: CertDefault,
    ) -> Result<Arc<rustls::ClientConfig>, authspec_reference::net::tls::TlsError> {
        self.client_config_with_ca(default, None)
    }

    /// [`Self::client_config`] with a CA file from elsewhere (`send`'s
    /// `smtp_tls_CAfile`) used when `--ca-file` is not given. Unlike `--ca-file`, it
    /// does not turn verification on: in Postfix only the security level does.
    pub fn client_config_with_ca(
        &self,
        default: CertDefault,
        ca: Option<&Path>,
    ) -> Result<Arc<rustls::ClientConfig>, authspec_reference::net::tls::TlsError> {
        let ca = self.ca_file.as_deref().or(ca);
        crate::conn::tls_client_config(!self.verifies(default), ca)
    }
}

pub use crate::support::{host_of, port_of};

/// Why the scenarios named on the command line do not load.
#[derive(Debug)]
pub enum ScenariosError {
    Unreadable(Unreadable),
    /// Every file that does not load, and ids given twice; each names its file.
    Invalid(Vec<crate::scenario::LoadError>),
}

impl std::fmt::Display for ScenariosError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScenariosError::Unreadable(e) => e.fmt(f),
            ScenariosError::Invalid(errs) => {
                for (i, e) in errs.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    e.fmt(f)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ScenariosError {}

/// The scenario file at `path`, or the error that names it.
pub fn load_scenario_file(path: &Path) -> Result<crate::scenario::Scenario, ScenariosError> {
    let text = crate::input::read_named(path).map_err(ScenariosError::Unreadable)?;
    crate::scenario::load_str(&text, &path.display().to_string())
        .map_err(|e| ScenariosError::Invalid(vec![e]))
}
