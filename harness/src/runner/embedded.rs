//! The embedded target: a fresh reference server per scenario, configured with the
//! scenario's `profile`, on an ephemeral loopback port. The same code `authspec serve`
//! runs.

use super::{Endpoint, Shared, TlsMode};
use crate::report::{ScenarioResult, Verdict};
use crate::scenario::{Scenario, Vars};
use authspec_reference::net::server::{ServerShared, serve};
use authspec_reference::net::tls;
use authspec_reference::policy::error::ConfigError;
use authspec_reference::policy::maincf::MainCf;
use authspec_reference::policy::server::{ServerConfig, TlsLevel};
use authspec_reference::sasl::Mechanism;
use authspec_reference::sasl::credentials::MemoryStore;
use std::sync::{Arc, OnceLock};
use tracing::instrument::WithSubscriber as _;

/// Why an embedded server did not start for a scenario.
#[derive(Debug)]
pub enum EmbeddedError {
    /// The process-wide self-signed certificate could not be made.
    Tls(tls::TlsError),
    Profile(ProfileError),
    Bind(std::io::Error),
}

impl std::fmt::Display for EmbeddedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmbeddedError::Tls(e) => e.fmt(f),
            EmbeddedError::Profile(e) => e.fmt(f),
            EmbeddedError::Bind(e) => write!(f, "bind: {e}"),
        }
    }
}

impl std::error::Error for EmbeddedError {}

/// Why a scenario's `profile` does not configure an embedded server or client.
#[derive(Debug)]
pub enum ProfileError {
    /// The built-in main.cf did not parse.
    Base(ConfigError),
    /// A `profile` parameter is unknown or has a bad value.
    Parameter(ConfigError),
}

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProfileError::Base(e) => e.fmt(f),
            ProfileError::Parameter(e) => write!(f, "profile: {e}"),
        }
    }
}

impl std::error::Error for ProfileError {}

/// main.cf `base` with the scenario's `profile` parameters that `keep` selects set on
/// top, as `-o` would.
pub fn profile_main_cf(
    base: &str,
    source: &str,
    sc: &Scenario,
    keep: impl Fn(&str) -> bool,
) -> Result<MainCf, ProfileError> {
    let mut cf = MainCf::parse(base, source).map_err(ProfileError::Base)?;
    for (k, v) in sc.profile.iter().filter(|(k, _)| keep(k)) {
        cf.set_override(&format!("{k}={v}"))
            .map_err(ProfileError::Parameter)?;
    }
    Ok(cf)
}

/// The host name the embedded server uses, so transcripts and snapshots are stable.
pub const HOSTNAME: &str = "mx.authspec.test";

/// The embedded server's TLS config, the DER of its certificate (for
/// `tls-server-end-point`) and its PEM (for a client under test to trust, `{cafile}`),
/// made once per process: making a certificate costs more than a whole scenario.
struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    leaf: Vec<u8>,
    pem: String,
}

fn made_tls() -> Result<&'static ServerTls, tls::TlsError> {
    static TLS: OnceLock<Result<ServerTls, tls::TlsError>> = OnceLock::new();
    TLS.get_or_init(|| {
        let ck = tls::self_signed(&[HOSTNAME.to_string(), "localhost".to_string()])?;
        let leaf = ck
            .certs
            .first()
            .map(|c| c.as_ref().to_vec())
            .unwrap_or_default();
        let pem = ck.cert_pem.clone();
        let config = tls::server_config(ck.certs, ck.key, &tls::ClientAuth::None)?;
        Ok(ServerTls { config, leaf, pem })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// The embedded server's TLS config and the DER of its certificate.
pub(crate) fn server_tls() -> Result<(Arc<rustls::ServerConfig>, Vec<u8>), tls::TlsError> {
    made_tls().map(|t| (Arc::clone(&t.config), t.leaf.clone()))
}

/// A file holding the PEM of the certificate the harness serves (embedded server and
/// server-role `accept_starttls`), written once per process into the temporary
/// directory, so a client command can be told to trust it (`{cafile}`).
pub(crate) fn server_cert_file() -> Result<std::path::PathBuf, String> {
    static FILE: OnceLock<Result<std::path::PathBuf, String>> = OnceLock::new();
    FILE.get_or_init(|| {
        let pem = &made_tls().map_err(|e| e.to_string())?.pem;
        let path =
            std::env::temp_dir().join(format!("authspec-harness-cert-{}.pem", std::process::id()));
        std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    })
    .clone()
}

/// The server configuration for a scenario's profile.
pub fn config_for(sc: &Scenario) -> Result<ServerConfig, ProfileError> {
    let mut cf = profile_main_cf(
        &format!("myhostname = {HOSTNAME}\n"),
        "(embedded)",
        sc,
        |_| true,
    )?;
    // A mechanism the scenario requires that the reference does not offer by default
    // (the SCRAM-SHA-512 family) is added to its list, unless the profile writes the
    // list itself: such a scenario judges the mechanism, not the default offer, and
    // so runs against a live target that offers it too.
    if !sc.profile.contains_key("authspec_sasl_mech_list") {
        let extra: Vec<&str> = sc
            .requires
            .mechanisms
            .iter()
            .map(String::as_str)
            .filter(|name| {
                Mechanism::from_name(name.as_bytes())
                    .is_some_and(|m| !Mechanism::DEFAULT_SERVER.contains(&m))
            })
            .collect();
        if !extra.is_empty() {
            let defaults = Mechanism::DEFAULT_SERVER.map(Mechanism::name);
            let list = extra.iter().chain(&defaults).copied().collect::<Vec<_>>();
            cf.set_override(&format!("authspec_sasl_mech_list={}", list.join(" ")))
                .map_err(ProfileError::Parameter)?;
        }
    }
    ServerConfig::from_main_cf(&cf).map_err(ProfileError::Parameter)
}

/// The users the embedded server knows: `${user}`/`${password}` of the run (alice and
/// wonderland by default), and bob with a password full of separators.
pub fn users(vars: &Vars) -> MemoryStore {
    let mut store = MemoryStore::default();
    store.insert_plain(
        vars.get("user").unwrap_or("alice"),
        vars.get("password").unwrap_or("wonderland"),
    );
    store.insert_plain("bob", "p@ss w0rd:x");
    store
}

/// A running embedded server, stopped on drop.
#[derive(Debug)]
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub wrapper: bool,
    pub shared: Arc<ServerShared>,
    /// What the server logged (at info and above), kept in memory, not streamed.
    pub log: ServerLog,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// An embedded server's log, bounded to its last [`ServerLog::LIMIT`] octets.
#[derive(Clone, Debug, Default)]
pub struct ServerLog(Arc<std::sync::Mutex<Vec<u8>>>);

impl ServerLog {
    pub const LIMIT: usize = 64 * 1024;

    /// The log as text; `None` when nothing was logged.
    pub fn text(&self) -> Option<String> {
        let buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned())
    }
}

impl std::io::Write for ServerLog {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        buf.extend_from_slice(data);
        if buf.len() > Self::LIMIT {
            let cut = buf.len() - Self::LIMIT;
            buf.drain(..cut);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ServerLog {
    type Writer = ServerLog;
    fn make_writer(&'a self) -> ServerLog {
        self.clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(sc: &Scenario, vars: &Vars, seed: u64) -> Result<Running, EmbeddedError> {
    let config = config_for(sc).map_err(EmbeddedError::Profile)?;
    let needs_tls = config.tls_security_level != TlsLevel::None || config.tls_wrappermode;
    let tls = if needs_tls {
        Some(server_tls().map_err(EmbeddedError::Tls)?)
    } else {
        None
    };
    let wrapper = config.tls_wrappermode;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(EmbeddedError::Bind)?;
    let addr = listener.local_addr().map_err(EmbeddedError::Bind)?;
    let leaf = tls.as_ref().map(|(_, leaf)| leaf.clone());
    let mut shared = ServerShared::new(
        Arc::new(config),
        Arc::new(users(vars)),
        tls.map(|(c, _)| c),
        None,
        Some(seed),
    );
    if let Some(der) = leaf {
        shared = shared.with_certificate(&der);
    }
    let shared = Arc::new(shared);
    // The server's log goes to memory, not to stderr: negative scenarios make it warn
    // on purpose, and a passing run should print only its report.
    let log = ServerLog::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .with_max_level(tracing::Level::INFO)
        .finish();
    let task = tokio::spawn(serve(listener, Arc::clone(&shared)).with_subscriber(subscriber));
    Ok(Running {
        addr,
        wrapper,
        shared,
        log,
        task,
    })
}

pub async fn play_client_role(
    sc: &Scenario,
    shared: &Shared,
    vars: &Vars,
    seed: u64,
) -> ScenarioResult {
    let running = match start(sc, vars, seed).await {
        Ok(r) => r,
        Err(e) => {
            return ScenarioResult::new(
                sc,
                Verdict::Error {
                    reason: format!("embedded server: {e}"),
                },
            );
        }
    };
    let ep = Endpoint {
        addr: running.addr.to_string(),
        tls: if running.wrapper {
            TlsMode::Implicit
        } else {
            TlsMode::Plain
        },
        server_name: HOSTNAME.to_string(),
        tls_config: Arc::clone(&shared.insecure_tls),
        timeout: shared.cfg.timeout,
        sasl_port: None,
    };
    // The embedded server offers what its profile says; a scenario whose requirements
    // the profile does not meet is skipped, as against any target.
    match super::preflight(&ep).await {
        Ok(offer) => {
            if let Some(why) = offer.unmet(sc, ep.tls, false) {
                return ScenarioResult::new(
                    sc,
                    Verdict::Skip {
                        reason: format!("{why} (with this scenario's profile)"),
                    },
                );
            }
        }
        Err(e) => {
            return ScenarioResult::new(
                sc,
                Verdict::Error {
                    reason: format!("embedded server did not answer: {e}"),
                },
            );
        }
    }
    let mut result = super::client_role::play(sc, &ep, vars, seed, shared.cfg.strict).await;
    if result.is_failing() {
        // Give the server's tasks a moment to log the end of the session.
        tokio::task::yield_now().await;
        result.server_log = running.log.text();
    }
    result
}
