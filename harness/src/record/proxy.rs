//! The recording proxy: accept a client, connect to the target, forward both ways
//! while a [`Recorder`] follows the dialog, intercept STARTTLS when asked, and write
//! the session's two scenarios when it ends.
//!
//! One task per session, one loop per task reading whichever side has data, so the
//! recorder sees the two streams in the order the proxy forwarded them. Every read
//! and write is bounded by the idle timeout, every buffer by the recorder's limits.

use super::build::{self, Options, SessionInfo};
use super::events::{Limits, Recorder};
use super::text;
use crate::conn::Io;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{LazyConfigAcceptor, TlsConnector};

/// How the proxy runs.
#[derive(Clone)]
pub struct ProxyConfig {
    pub target: String,
    /// Intercept STARTTLS (`--starttls-intercept`, the default) or let it through.
    pub intercept: bool,
    pub out: PathBuf,
    pub options: Options,
    /// Stop accepting after this many sessions.
    pub max_sessions: Option<u64>,
    /// A session with no traffic this long is closed.
    pub idle_timeout: Duration,
    pub limits: Limits,
    /// TLS towards the target (insecure by default, or a CA file).
    pub to_server: Arc<rustls::ClientConfig>,
    /// TLS towards the client: the proxy's self-signed certificate.
    pub to_client: Arc<rustls::ServerConfig>,
    /// The name sent to the target (SNI); by default the one the client sent, else the
    /// target's host.
    pub sni: Option<String>,
    /// Sessions recorded at once.
    pub max_concurrent: usize,
}

impl std::fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("target", &self.target)
            .field("intercept", &self.intercept)
            .field("out", &self.out)
            .field("options", &self.options)
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

/// What became of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionReport {
    pub number: u64,
    pub files: Vec<PathBuf>,
    pub problems: Vec<String>,
}

/// The UTC time as `20250113T101500Z` (civil date from days, H. Hinnant's algorithm).
pub fn utc_stamp(now: std::time::SystemTime) -> String {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Accepts sessions until `max_sessions` have been accepted (then waits for them to
/// end) or forever. `report` is called as each session's files are written.
pub async fn serve(
    listener: TcpListener,
    cfg: ProxyConfig,
    report: Arc<dyn Fn(&SessionReport) + Send + Sync>,
) {
    let cfg = Arc::new(cfg);
    let slots = Arc::new(tokio::sync::Semaphore::new(cfg.max_concurrent.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut accepted: u64 = 0;
    loop {
        if cfg.max_sessions.is_some_and(|m| accepted >= m) {
            break;
        }
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        accepted += 1;
        let number = accepted;
        let cfg = Arc::clone(&cfg);
        let report = Arc::clone(&report);
        tasks.spawn(async move {
            let r = session(number, stream, peer, &cfg).await;
            report(&r);
            drop(permit);
        });
        // Reap finished sessions so the set does not grow without bound.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// Why forwarding to one side failed.
#[derive(Debug)]
enum WriteError {
    Io(std::io::Error),
    /// The side did not take the bytes within the idle timeout.
    TimedOut,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Io(e) => e.fmt(f),
            WriteError::TimedOut => f.write_str("write timed out"),
        }
    }
}

impl std::error::Error for WriteError {}

async fn write_all(io: &mut Box<dyn Io>, bytes: &[u8], within: Duration) -> Result<(), WriteError> {
    if bytes.is_empty() {
        return Ok(());
    }
    match tokio::time::timeout(within, io.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(WriteError::Io(e)),
        Err(_) => Err(WriteError::TimedOut),
    }
}

/// What happened to the STARTTLS upgrade.
enum Upgrade {
    Done(Box<dyn Io>, Box<dyn Io>),
    Failed(String),
}

async fn upgrade(
    client: Box<dyn Io>,
    server: Box<dyn Io>,
    cfg: &ProxyConfig,
    rec: &mut Recorder,
) -> Upgrade {
    let t = cfg.idle_timeout;
    let hello = tokio::time::timeout(
        t,
        LazyConfigAcceptor::new(rustls::server::Acceptor::default(), client),
    )
    .await;
    let start = match hello {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Upgrade::Failed(format!("the client did not start TLS: {e}")),
        Err(_) => return Upgrade::Failed("the client did not start TLS in time".into()),
    };
    let client_sni = start.client_hello().server_name().map(str::to_owned);
    let name = cfg
        .sni
        .clone()
        .or(client_sni)
        .unwrap_or_else(|| crate::support::host_of(&cfg.target));
    let Ok(server_name) = ServerName::try_from(name.clone()) else {
        return Upgrade::Failed(format!("bad TLS server name {name:?}"));
    };
    let to_server = tokio::time::timeout(
        t,
        TlsConnector::from(Arc::clone(&cfg.to_server)).connect(server_name, server),
    )
    .await;
    let server_tls = match to_server {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Upgrade::Failed(format!("TLS with the server failed: {e}")),
        Err(_) => return Upgrade::Failed("TLS with the server timed out".into()),
    };
    let to_client = tokio::time::timeout(t, start.into_stream(Arc::clone(&cfg.to_client))).await;
    let client_tls = match to_client {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Upgrade::Failed(format!(
                "interception failed: the client does not trust the proxy's certificate ({e})"
            ));
        }
        Err(_) => {
            return Upgrade::Failed(
                "interception failed: the client does not trust the proxy's certificate \
                 (the handshake did not finish in time)"
                    .into(),
            );
        }
    };
    let s = authspec_reference::net::tls::tls_info_from_client(server_tls.get_ref().1);
    let c = authspec_reference::net::tls::tls_info_from_server(client_tls.get_ref().1);
    rec.tls_established(&format!(
        "{} {} with the client (the proxy's certificate), {} {} with the server",
        c.version, c.cipher, s.version, s.cipher
    ));
    Upgrade::Done(Box::new(client_tls), Box::new(server_tls))
}

/// Proxies and records one session; writes its files.
async fn session(
    number: u64,
    stream: TcpStream,
    peer: SocketAddr,
    cfg: &ProxyConfig,
) -> SessionReport {
    let stamp = utc_stamp(std::time::SystemTime::now());
    let mut report = SessionReport {
        number,
        files: Vec::new(),
        problems: Vec::new(),
    };
    let _ = stream.set_nodelay(true);
    let server = match tokio::time::timeout(cfg.idle_timeout, TcpStream::connect(&cfg.target)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            report
                .problems
                .push(format!("cannot connect to {}: {e}", cfg.target));
            return report;
        }
        Err(_) => {
            report
                .problems
                .push(format!("connecting to {} timed out", cfg.target));
            return report;
        }
    };
    let _ = server.set_nodelay(true);
    let mut rec = Recorder::new(cfg.limits, cfg.intercept);
    forward(number, stream, server, cfg, &mut rec, &mut report).await;
    let events = rec.finish();
    let info = SessionInfo {
        number,
        stamp,
        client: peer.to_string(),
        target: cfg.target.clone(),
    };
    match write_session(&events, &info, cfg) {
        Ok(files) => report.files = files,
        Err(e) => report.problems.push(e.to_string()),
    }
    report
}

/// Forwards both ways until both sides have closed, the session is idle, or TLS
/// interception fails.
async fn forward(
    number: u64,
    client: TcpStream,
    server: TcpStream,
    cfg: &ProxyConfig,
    rec: &mut Recorder,
    report: &mut SessionReport,
) {
    let mut c: Box<dyn Io> = Box::new(client);
    let mut s: Box<dyn Io> = Box::new(server);
    let mut cbuf = vec![0u8; 16 * 1024];
    let mut sbuf = vec![0u8; 16 * 1024];
    let (mut client_open, mut server_open, mut paused) = (true, true, false);
    let idle = cfg.idle_timeout;
    // Once one side has gone, the other gets a short grace to finish (a 221, a close).
    let linger = idle.min(Duration::from_secs(5));
    while client_open || server_open {
        let wait = if client_open && server_open {
            idle
        } else {
            linger
        };
        tokio::select! {
            r = c.read(&mut cbuf), if client_open && !paused => match r {
                Ok(0) | Err(_) => {
                    client_open = false;
                    rec.client_closed();
                    let _ = tokio::time::timeout(linger, s.shutdown()).await;
                }
                Ok(n) => {
                    let f = rec.client_data(&cbuf[..n]);
                    if let Err(e) = write_all(&mut s, &cbuf[..f.forward], idle).await {
                        rec.note(format!("writing to the server failed: {e}"));
                        break;
                    }
                    paused = f.starttls;
                }
            },
            r = s.read(&mut sbuf), if server_open => match r {
                Ok(0) | Err(_) => {
                    server_open = false;
                    rec.server_closed();
                    let _ = tokio::time::timeout(linger, c.shutdown()).await;
                    // Nothing more can reach the server; stop waiting for the client.
                    paused = false;
                }
                Ok(n) => {
                    let f = rec.server_data(&sbuf[..n]);
                    if let Err(e) = write_all(&mut c, &sbuf[..f.forward], idle).await {
                        rec.note(format!("writing to the client failed: {e}"));
                        break;
                    }
                    match f.starttls {
                        Some(true) if cfg.intercept => {
                            match upgrade(c, s, cfg, rec).await {
                                Upgrade::Done(nc, ns) => {
                                    c = nc;
                                    s = ns;
                                    paused = false;
                                }
                                Upgrade::Failed(why) => {
                                    tracing::warn!("session {number}: {why}");
                                    rec.note(why.clone());
                                    rec.client_closed();
                                    report.problems.push(why);
                                    break;
                                }
                            }
                        }
                        Some(_) => paused = false,
                        None => {}
                    }
                }
            },
            () = tokio::time::sleep(wait) => {
                if client_open && server_open {
                    rec.note(format!(
                        "no traffic for {} s: the proxy closed the session",
                        idle.as_secs()
                    ));
                }
                break;
            }
        }
    }
}

/// A path that does not exist yet: `<name>-<suffix>.yaml`, or with `-2`, `-3`…
fn fresh_path(dir: &Path, name: &str, suffix: &str) -> PathBuf {
    let first = dir.join(format!("{name}-{suffix}.yaml"));
    if !first.exists() {
        return first;
    }
    (2..1000)
        .map(|n| dir.join(format!("{name}-{n}-{suffix}.yaml")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Why one recorded scenario file (`side` is `client` or `server`) was not written.
#[derive(Debug)]
pub enum NotWritten {
    Yaml {
        side: &'static str,
        error: serde_yaml::Error,
    },
    /// The text would hold a secret of the session in some form.
    Secret { side: &'static str },
    /// The text would not load again as a scenario.
    DoesNotLoad {
        side: &'static str,
        error: crate::scenario::LoadError,
    },
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The session held nothing a scenario could be made of.
    Nothing,
}

impl std::fmt::Display for NotWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotWritten::Yaml { side, error } => write!(f, "{side}: cannot write YAML: {error}"),
            NotWritten::Secret { side } => write!(
                f,
                "{side}: refusing to write the recording: it would contain a secret"
            ),
            NotWritten::DoesNotLoad { side, error } => {
                write!(f, "{side}: the recorded scenario does not load: {error}")
            }
            NotWritten::Io { path, error } => write!(f, "{}: {error}", path.display()),
            NotWritten::Nothing => f.write_str("nothing to record"),
        }
    }
}

impl std::error::Error for NotWritten {}

/// Every reason a session's recording was not written, in the order met.
#[derive(Debug)]
pub struct NotRecorded(pub Vec<NotWritten>);

impl std::fmt::Display for NotRecorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            p.fmt(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for NotRecorded {}

/// Builds, checks and writes the session's scenarios. A file that would not load
/// again, or that would hold a secret in any form, is not written.
pub fn write_session(
    events: &[super::events::Event],
    info: &SessionInfo,
    cfg: &ProxyConfig,
) -> Result<Vec<PathBuf>, NotRecorded> {
    let rec = build::build(events, info, &cfg.options);
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for (file, notes, suffix) in [
        (&rec.client, &rec.client_notes, "client"),
        (&rec.server, &rec.server_notes, "server"),
    ] {
        let Some(file) = file else { continue };
        let text = match build::render(file, info, notes, cfg.options.redact) {
            Ok(t) => t,
            Err(e) => {
                problems.push(NotWritten::Yaml {
                    side: suffix,
                    error: e,
                });
                continue;
            }
        };
        if text::contains_secret(&text, &rec.secrets) {
            problems.push(NotWritten::Secret { side: suffix });
            continue;
        }
        let path = fresh_path(&cfg.out, &info.name(), suffix);
        if let Err(e) = crate::scenario::load_str(&text, &path.display().to_string()) {
            problems.push(NotWritten::DoesNotLoad {
                side: suffix,
                error: e,
            });
            continue;
        }
        if let Err(e) = std::fs::create_dir_all(&cfg.out) {
            problems.push(NotWritten::Io {
                path: cfg.out.clone(),
                error: e,
            });
            continue;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                use std::io::Write as _;
                if let Err(error) = f.write_all(text.as_bytes()) {
                    problems.push(NotWritten::Io { path, error });
                } else {
                    files.push(path);
                }
            }
            Err(error) => problems.push(NotWritten::Io { path, error }),
        }
    }
    if files.is_empty() && problems.is_empty() {
        problems.push(NotWritten::Nothing);
    }
    if problems.is_empty() {
        Ok(files)
    } else if files.is_empty() {
        Err(NotRecorded(problems))
    } else {
        tracing::warn!("session {}: {}", info.number, NotRecorded(problems));
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_civil_dates() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_736_763_300);
        assert_eq!(utc_stamp(t), "20250113T101500Z");
        assert_eq!(utc_stamp(std::time::UNIX_EPOCH), "19700101T000000Z");
        let leap = std::time::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_stamp(leap), "20000229T000000Z");
    }
}
