//! `authspec send`: the reference client, behaving as Postfix's smtp client does.

use super::common::{
    self, EXIT_AUTH_REJECTED, EXIT_FAILED, EXIT_NETWORK, EXIT_NO_MECHANISM, EXIT_OK, EXIT_PROTOCOL,
    EXIT_USAGE,
};
use crate::input::Unreadable;
use crate::support::escape_controls;
use authspec_reference::net::client::{ClientConnect, DriverError, Transport, run_client};
use authspec_reference::net::tls::TlsError;
use authspec_reference::policy::client::{
    ClientConfig, ClientTlsLevel, ForcedUnderPolicy, PasswordMap,
};
use authspec_reference::policy::error::ConfigError;
use authspec_reference::policy::maincf::MainCf;
use authspec_reference::sasl::{ClientCredentials, Mechanism, Secret, SeededRandom};
use authspec_reference::smtp::client::{
    AuthPlan, ClientError, ClientPlan, ClientSession, Forced, MailPlan, MechanismChooser, Outcome,
    StartTlsPolicy, TranscriptLine,
};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 sent, 1 message rejected, 2 usage or configuration error, \
3 network/TLS error or timeout, 4 authentication rejected, 5 no usable mechanism or AUTH not offered, \
6 protocol error by the server.\n\nPasswords come from --password-env, --password-file or \
smtp_sasl_password_maps, never from the command line, where `ps` would show them."
)]
pub struct SendArgs {
    /// The server, HOST:PORT.
    #[arg(long)]
    pub server: String,
    /// Upgrade with STARTTLS (required; fail if not offered).
    #[arg(long, conflicts_with = "tls")]
    pub starttls: bool,
    /// TLS from the first byte (port 465 style).
    #[arg(long)]
    pub tls: bool,
    /// The certificate policy (README "Certificates").
    #[command(flatten)]
    pub tls_policy: common::TlsPolicy,
    /// A main.cf file with the smtp_* parameters.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(short = 'o', value_name = "NAME=VALUE")]
    pub overrides: Vec<String>,
    #[arg(long)]
    pub from: String,
    #[arg(long, required = true)]
    pub to: Vec<String>,
    /// The message (RFC 5322, headers included). Default: a short test message.
    #[arg(long)]
    pub body: Option<PathBuf>,
    /// Authenticate as this user (turns smtp_sasl_auth_enable on).
    #[arg(long)]
    pub user: Option<String>,
    /// Read the password from this environment variable.
    #[arg(long)]
    pub password_env: Option<String>,
    /// Read the password from the first line of this file.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Use exactly this mechanism.
    #[arg(long)]
    pub mechanism: Option<String>,
    /// Act as this authorization identity.
    #[arg(long)]
    pub authzid: Option<String>,
    /// Per-read timeout in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Nonce seed, for reproducible dialogs.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Why `send` cannot start its session; each is a usage or configuration error.
#[derive(Debug)]
enum SetupError {
    MainCf(common::MainCfError),
    Config(ConfigError),
    Secret(common::SecretError),
    PasswordMapUnreadable(Unreadable),
    PasswordMap(ConfigError),
    UnknownMechanism {
        name: String,
    },
    Body {
        path: PathBuf,
        error: std::io::Error,
    },
    Tls(TlsError),
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupError::MainCf(e) => e.fmt(f),
            SetupError::Config(e) | SetupError::PasswordMap(e) => e.fmt(f),
            SetupError::Secret(e) => e.fmt(f),
            SetupError::PasswordMapUnreadable(e) => e.fmt(f),
            SetupError::UnknownMechanism { name } => write!(f, "unknown mechanism {name}"),
            SetupError::Body { path, error } => write!(f, "{}: {error}", path.display()),
            SetupError::Tls(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SetupError {}

pub async fn run(a: SendArgs, verbose: u8) -> u8 {
    let (connect, session) = match prepare(&a) {
        Ok(prepared) => prepared,
        Err(e) => {
            eprintln!("authspec send: {e}");
            return EXIT_USAGE;
        }
    };
    let run = run_client(&connect, session).await;
    if verbose > 0 {
        print_transcript(&run.transcript);
    }
    match run.result {
        Ok(outcome) => accepted(&outcome),
        Err(e) => failed(&e),
    }
}

/// The connection and the session the arguments and main.cf describe.
fn prepare(a: &SendArgs) -> Result<(ClientConnect, ClientSession), SetupError> {
    let (cf, config) = load_config(a)?;
    let host = common::host_of(&a.server);
    let port = common::port_of(&a.server).unwrap_or(25);
    let creds = credentials(a, &config, &host, port)?;
    let starttls = if a.tls {
        StartTlsPolicy::Never
    } else if a.starttls {
        StartTlsPolicy::Required
    } else {
        config.starttls_policy()
    };
    let auth = match creds {
        Some((user, password)) => Some(AuthPlan {
            credentials: ClientCredentials {
                authcid: user,
                password,
                authzid: a.authzid.clone(),
                host: host.clone(),
                port: Some(port),
            },
            chooser: chooser(a, &cf, &config)?,
            channel_binding_types: config.channel_binding_types.clone(),
        }),
        None => None,
    };
    let auth_required = auth.is_some();
    let plan = ClientPlan {
        helo_name: config.helo_name.clone(),
        starttls,
        auth,
        auth_required,
        mail: Some(MailPlan {
            from: a.from.clone(),
            to: a.to.clone(),
            body: body(a)?,
        }),
    };
    let rng = match a.seed {
        Some(s) => SeededRandom::from_seed(s),
        None => SeededRandom::from_entropy(),
    };
    let connect = ClientConnect {
        addr: a.server.clone(),
        transport: if a.tls {
            Transport::ImplicitTls
        } else {
            Transport::Plain
        },
        tls: Some(tls_config(a, &config)?),
        server_name: host,
        timeout: Duration::from_secs(a.timeout.max(1)),
    };
    Ok((connect, ClientSession::new(plan, Box::new(rng), a.tls)))
}

/// main.cf (`--config`, `-o`; `--user` turns SASL on) and the client configuration
/// it makes.
fn load_config(a: &SendArgs) -> Result<(MainCf, ClientConfig), SetupError> {
    let mut overrides = a.overrides.clone();
    if a.user.is_some() {
        overrides.push("smtp_sasl_auth_enable=yes".into());
    }
    let cf = common::load_main_cf(a.config.as_deref(), &overrides).map_err(SetupError::MainCf)?;
    let config = ClientConfig::from_main_cf(&cf).map_err(SetupError::Config)?;
    Ok((cf, config))
}

/// Credentials: --user with a password from env/file, else smtp_sasl_password_maps.
fn credentials(
    a: &SendArgs,
    config: &ClientConfig,
    host: &str,
    port: u16,
) -> Result<Option<(String, Secret)>, SetupError> {
    let password = common::secret_from(a.password_env.as_deref(), a.password_file.as_deref())
        .map_err(SetupError::Secret)?;
    if !config.sasl_auth_enable {
        return Ok(None);
    }
    if let Some(user) = &a.user {
        return Ok(Some((user.clone(), password.unwrap_or_default())));
    }
    if config.sasl_password_maps.is_empty() {
        return Ok(None);
    }
    let map = password_maps(&config.sasl_password_maps)?;
    let nexthop = host.split_once('.').map(|(_, d)| d).unwrap_or(host);
    let creds = map.lookup(host, port, nexthop);
    if creds.is_none() {
        tracing::info!("no smtp_sasl_password_maps entry for [{host}]:{port}, {host} or {nexthop}");
    }
    Ok(creds)
}

/// smtp_sasl_password_maps as one map: Postfix searches the maps in order, so
/// earlier entries win.
fn password_maps(paths: &[String]) -> Result<PasswordMap, SetupError> {
    let mut map = PasswordMap::default();
    for path in paths {
        let text =
            crate::input::read_named(Path::new(path)).map_err(SetupError::PasswordMapUnreadable)?;
        map.extend(PasswordMap::parse(&text, path).map_err(SetupError::PasswordMap)?);
    }
    Ok(map)
}

/// How the mechanism is chosen: `--mechanism`, else the configuration.
fn chooser(
    a: &SendArgs,
    cf: &MainCf,
    config: &ClientConfig,
) -> Result<Box<dyn MechanismChooser>, SetupError> {
    let Some(name) = &a.mechanism else {
        return Ok(Box::new(config.clone()));
    };
    match Mechanism::from_name(name.as_bytes()) {
        // The user's own settings bind --mechanism; Postfix's built-in default
        // (noplaintext, noanonymous) does not, or --mechanism PLAIN could never test a
        // plaintext server.
        Some(m) if user_set_sasl_policy(cf) => Ok(Box::new(ForcedUnderPolicy {
            mechanism: m,
            config: config.clone(),
        })),
        Some(m) => Ok(Box::new(Forced(m))),
        None => Err(SetupError::UnknownMechanism { name: name.clone() }),
    }
}

/// `--body` with CRLF line ends, or a short test message.
fn body(a: &SendArgs) -> Result<Vec<u8>, SetupError> {
    match &a.body {
        Some(p) => std::fs::read(p)
            .map(|b| crlf(&b))
            .map_err(|error| SetupError::Body {
                path: p.clone(),
                error,
            }),
        None => Ok(format!(
            "From: <{}>\r\nTo: <{}>\r\nSubject: authspec test message\r\n\r\nSent by authspec send.\r\n",
            a.from,
            a.to.join(">, <")
        )
        .into_bytes()),
    }
}

/// As in Postfix, smtp_tls_security_level=verify and secure check the certificate
/// and the lower levels do not, unless --tls-verify or --ca-file (README
/// "Certificates").
fn tls_config(
    a: &SendArgs,
    config: &ClientConfig,
) -> Result<std::sync::Arc<rustls::ClientConfig>, SetupError> {
    let cert_default = if matches!(
        config.tls_security_level,
        ClientTlsLevel::Verify | ClientTlsLevel::Secure
    ) {
        common::CertDefault::Verify
    } else {
        common::CertDefault::AcceptAny
    };
    a.tls_policy
        .client_config_with_ca(cert_default, config.tls_ca_file.as_deref().map(Path::new))
        .map_err(SetupError::Tls)
}

fn print_transcript(transcript: &[TranscriptLine]) {
    for l in transcript {
        match l {
            // The server's text is the server's choice: escape sequences in it
            // must not reach the terminal.
            TranscriptLine::Client(t) => eprintln!("C: {}", escape_controls(t)),
            TranscriptLine::Server(t) => eprintln!("S: {}", escape_controls(t)),
            TranscriptLine::Note(t) => eprintln!("#  {}", escape_controls(t)),
        }
    }
}

fn accepted(outcome: &Outcome) -> u8 {
    if outcome.injected_after_starttls > 0 {
        eprintln!(
            "authspec send: warning: discarded {} octets the server sent after its STARTTLS 220",
            outcome.injected_after_starttls
        );
    }
    let how = outcome
        .authenticated_with
        .map(|m| format!(" (authenticated with {m})"))
        .unwrap_or_default();
    println!("message accepted{how}");
    EXIT_OK
}

fn failed(e: &DriverError) -> u8 {
    let (text, hint) = match e {
        DriverError::Tls(_) => {
            let raw = e.to_string();
            (common::tls_words(&raw), common::tls_hint(&raw))
        }
        _ => (e.to_string(), ""),
    };
    eprintln!("authspec send: {}{hint}", escape_controls(&text));
    match e {
        DriverError::Connect(_)
        | DriverError::Timeout(_)
        | DriverError::Io(_)
        | DriverError::Tls(_) => EXIT_NETWORK,
        DriverError::Protocol(p) => match p {
            ClientError::AuthRejected { .. } | ClientError::Sasl(_) => EXIT_AUTH_REJECTED,
            ClientError::NoMechanism(_) | ClientError::AuthNotOffered => EXIT_NO_MECHANISM,
            ClientError::UnexpectedReply { .. } => EXIT_FAILED,
            ClientError::StartTlsNotOffered => EXIT_NETWORK,
            ClientError::Refused(_) => common::EXIT_CLIENT_REFUSED,
            ClientError::MalformedReply(_) | ClientError::ConnectionClosed { .. } => EXIT_PROTOCOL,
        },
    }
}

/// Message files often have LF line ends; SMTP needs CRLF (RFC 5321 §2.3.8).
fn crlf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + b.len() / 20);
    let mut prev = 0u8;
    for &c in b {
        if c == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// Whether the user set the client's SASL policy (`-o` or `--config`) rather than
/// leaving Postfix's defaults.
fn user_set_sasl_policy(cf: &MainCf) -> bool {
    use authspec_reference::policy::maincf::Origin;
    [
        "smtp_sasl_security_options",
        "smtp_sasl_tls_security_options",
        "smtp_sasl_mechanism_filter",
    ]
    .iter()
    .any(|n| !matches!(cf.origin(n), Some(Origin::Default) | None))
}
