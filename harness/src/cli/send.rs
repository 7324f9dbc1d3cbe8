//! `authspec send`: the reference client, behaving as Postfix's smtp client does.

use super::common::{
    self, EXIT_AUTH_REJECTED, EXIT_FAILED, EXIT_NETWORK, EXIT_NO_MECHANISM, EXIT_OK, EXIT_PROTOCOL,
    EXIT_USAGE,
};
use crate::support::escape_controls;
use authspec_reference::net::client::{ClientConnect, DriverError, Transport, run_client};
use authspec_reference::policy::client::{
    ClientConfig, ClientTlsLevel, ForcedUnderPolicy, PasswordMap,
};
use authspec_reference::sasl::{ClientCredentials, Mechanism, SeededRandom};
use authspec_reference::smtp::client::{
    AuthPlan, ClientError, ClientPlan, ClientSession, Forced, MailPlan, MechanismChooser,
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

pub async fn run(a: SendArgs, verbose: u8) -> u8 {
    let mut overrides = a.overrides.clone();
    if a.user.is_some() {
        overrides.push("smtp_sasl_auth_enable=yes".into());
    }
    let cf = match common::load_main_cf(a.config.as_deref(), &overrides) {
        Ok(cf) => cf,
        Err(e) => {
            eprintln!("authspec send: {e}");
            return EXIT_USAGE;
        }
    };
    let config = match ClientConfig::from_main_cf(&cf) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("authspec send: {e}");
            return EXIT_USAGE;
        }
    };
    let host = common::host_of(&a.server);
    let port = common::port_of(&a.server).unwrap_or(25);
    // Credentials: --user with a password from env/file, else smtp_sasl_password_maps.
    let password = match common::secret_from(a.password_env.as_deref(), a.password_file.as_deref())
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("authspec send: {e}");
            return EXIT_USAGE;
        }
    };
    let mut creds = None;
    if config.sasl_auth_enable {
        if let Some(user) = &a.user {
            creds = Some((user.clone(), password.clone().unwrap_or_default()));
        } else if !config.sasl_password_maps.is_empty() {
            let mut map: Option<PasswordMap> = None;
            for path in &config.sasl_password_maps {
                let text = match crate::input::read_text(
                    std::path::Path::new(path),
                    crate::input::MAX_INPUT_FILE,
                ) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("authspec send: {path}: cannot read: {e}");
                        return EXIT_USAGE;
                    }
                };
                let m = match PasswordMap::parse(&text, path) {
                    Ok(m) => m,
                    Err(e) => {
                        eprintln!("authspec send: {e}");
                        return EXIT_USAGE;
                    }
                };
                // Postfix searches the maps in order: earlier entries win.
                match map.as_mut() {
                    Some(acc) => acc.extend(m),
                    None => map = Some(m),
                }
            }
            let Some(map) = map else { return EXIT_USAGE };
            let nexthop = host
                .split_once('.')
                .map(|(_, d)| d)
                .unwrap_or(&host)
                .to_string();
            creds = map.lookup(&host, port, &nexthop);
            if creds.is_none() {
                tracing::info!(
                    "no smtp_sasl_password_maps entry for [{host}]:{port}, {host} or {nexthop}"
                );
            }
        }
    }
    let starttls = if a.tls {
        StartTlsPolicy::Never
    } else if a.starttls {
        StartTlsPolicy::Required
    } else {
        config.starttls_policy()
    };
    let auth = match creds {
        Some((user, password)) => {
            let chooser: Box<dyn MechanismChooser> = match &a.mechanism {
                Some(m) => match Mechanism::from_name(m.as_bytes()) {
                    // The user's own settings bind --mechanism; Postfix's built-in
                    // default (noplaintext, noanonymous) does not, or --mechanism
                    // PLAIN could never test a plaintext server.
                    Some(m) if user_set_sasl_policy(&cf) => Box::new(ForcedUnderPolicy {
                        mechanism: m,
                        config: config.clone(),
                    }),
                    Some(m) => Box::new(Forced(m)),
                    None => {
                        eprintln!("authspec send: unknown mechanism {m}");
                        return EXIT_USAGE;
                    }
                },
                None => Box::new(config.clone()),
            };
            Some(AuthPlan {
                credentials: ClientCredentials {
                    authcid: user,
                    password,
                    authzid: a.authzid.clone(),
                    host: host.clone(),
                    port: Some(port),
                },
                chooser,
            })
        }
        None => None,
    };
    let body = match &a.body {
        Some(p) => match std::fs::read(p) {
            Ok(b) => crlf(&b),
            Err(e) => {
                eprintln!("authspec send: {}: {e}", p.display());
                return EXIT_USAGE;
            }
        },
        None => format!(
            "From: <{}>\r\nTo: <{}>\r\nSubject: authspec test message\r\n\r\nSent by authspec send.\r\n",
            a.from,
            a.to.join(">, <")
        )
        .into_bytes(),
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
            body,
        }),
    };
    let rng = match a.seed {
        Some(s) => SeededRandom::from_seed(s),
        None => SeededRandom::from_entropy(),
    };
    // As in Postfix, smtp_tls_security_level=verify and secure check the certificate
    // and the lower levels do not, unless --tls-verify or --ca-file (README
    // "Certificates").
    let cert_default = if matches!(
        config.tls_security_level,
        ClientTlsLevel::Verify | ClientTlsLevel::Secure
    ) {
        common::CertDefault::Verify
    } else {
        common::CertDefault::AcceptAny
    };
    let tls_config = match a
        .tls_policy
        .client_config_with_ca(cert_default, config.tls_ca_file.as_deref().map(Path::new))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("authspec send: {e}");
            return EXIT_USAGE;
        }
    };
    let connect = ClientConnect {
        addr: a.server.clone(),
        transport: if a.tls {
            Transport::ImplicitTls
        } else {
            Transport::Plain
        },
        tls: Some(tls_config),
        server_name: host,
        timeout: Duration::from_secs(a.timeout.max(1)),
    };
    let session = ClientSession::new(plan, Box::new(rng), a.tls);
    let run = run_client(&connect, session).await;
    if verbose > 0 {
        for l in &run.transcript {
            match l {
                // The server's text is the server's choice: escape sequences in it
                // must not reach the terminal.
                TranscriptLine::Client(t) => eprintln!("C: {}", escape_controls(t)),
                TranscriptLine::Server(t) => eprintln!("S: {}", escape_controls(t)),
                TranscriptLine::Note(t) => eprintln!("#  {}", escape_controls(t)),
            }
        }
    }
    match run.result {
        Ok(outcome) => {
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
        Err(e) => {
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
                    ClientError::MalformedReply(_) | ClientError::ConnectionClosed { .. } => {
                        EXIT_PROTOCOL
                    }
                },
            }
        }
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
fn user_set_sasl_policy(cf: &authspec_reference::policy::maincf::MainCf) -> bool {
    use authspec_reference::policy::maincf::Origin;
    [
        "smtp_sasl_security_options",
        "smtp_sasl_tls_security_options",
        "smtp_sasl_mechanism_filter",
    ]
    .iter()
    .any(|n| !matches!(cf.origin(n), Some(Origin::Default) | None))
}
