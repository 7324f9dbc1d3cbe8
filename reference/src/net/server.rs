//! The tokio driver for [`ServerSession`]: accepts connections, enforces
//! `smtpd_client_connection_count_limit` and `smtpd_timeout`, runs STARTTLS and
//! implicit TLS, and delivers accepted mail to a maildir.
//!
//! Every wait is bounded by `smtpd_timeout`: the implicit-TLS and STARTTLS
//! handshakes, each command line (not each read, against slowloris), each write, and
//! each pause. A message is streamed to `tmp/` as it arrives and the session says
//! `250` only after it is written, synced and renamed into `new/`.

use crate::policy::server::ServerConfig;
use crate::sasl::{CredentialStore, RandomSource, SeededRandom};
use crate::smtp::server::{
    CommandStats, Delivery, Envelope, Event, LogRecord, Peer, ServerSession,
};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tracing::instrument::WithSubscriber as _;

/// Everything a listener needs, shared by all its connections.
#[derive(Debug)]
pub struct ServerShared {
    /// The `smtpd_*` parameters every session uses.
    pub config: Arc<ServerConfig>,
    /// Where the SASL mechanisms look up users.
    pub credentials: Arc<dyn CredentialStore>,
    /// Enables STARTTLS (or implicit TLS); `None` offers no TLS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// RFC 5929 `tls-server-end-point` of the certificate `tls` presents, if known
    /// ([`ServerShared::with_certificate`]).
    pub end_point: Option<Vec<u8>>,
    /// Where accepted mail goes, as a maildir (`tmp/`, `new/`, `cur/`). `None`:
    /// accepted mail is discarded.
    pub maildir: Option<PathBuf>,
    /// With a seed, session `n` draws its nonces from `seed + n`: reproducible runs.
    pub seed: Option<u64>,
    /// Totals across connections.
    pub counters: Counters,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
}

/// Totals since start, for tests and `load` reports.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted past the per-client limit (sessions started).
    pub sessions: AtomicU64,
    /// AUTH exchanges that ended `235`.
    pub auth_success: AtomicU64,
    /// AUTH exchanges that failed.
    pub auth_failure: AtomicU64,
    /// Messages answered `250` after DATA (stored, or discarded without a maildir).
    pub messages: AtomicU64,
    /// Messages answered `451 4.3.0` because the maildir could not store them.
    pub delivery_failures: AtomicU64,
    /// Connections refused with `421` by `smtpd_client_connection_count_limit`.
    pub refused_busy: AtomicU64,
    /// Plaintext injections discarded after STARTTLS (CVE-2011-0411 class).
    pub injections_discarded: AtomicU64,
}

impl ServerShared {
    /// The DER of the certificate the TLS config presents, so that SCRAM-*-PLUS can
    /// offer `tls-server-end-point` besides `tls-exporter`.
    pub fn with_certificate(mut self, cert_der: &[u8]) -> ServerShared {
        self.end_point = super::tls::tls_server_end_point(cert_der);
        self
    }

    /// State for a listener; `maildir` and `seed` as in the fields of the same name.
    pub fn new(
        config: Arc<ServerConfig>,
        credentials: Arc<dyn CredentialStore>,
        tls: Option<Arc<rustls::ServerConfig>>,
        maildir: Option<PathBuf>,
        seed: Option<u64>,
    ) -> ServerShared {
        ServerShared {
            config,
            credentials,
            tls,
            end_point: None,
            maildir,
            seed,
            counters: Counters::default(),
            per_ip: Mutex::new(HashMap::new()),
        }
    }

    fn acquire(&self, ip: IpAddr) -> bool {
        let limit = self.config.client_connection_count_limit;
        // Postfix: smtpd_client_event_limit_exceptions (default $mynetworks) are not
        // limited; they are still counted, so the map stays exact.
        let exempt = self.config.client_event_limit_exceptions.contains(ip);
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if limit > 0 && !exempt && *n >= limit {
            return false;
        }
        *n += 1;
        true
    }

    fn release(&self, ip: IpAddr) {
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }
}

/// Accept connections on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<ServerShared>) -> io::Result<()> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        // Connections log where the listener logs: an embedded server given its own
        // subscriber (the runner keeps each scenario's server log) keeps it per connection.
        tokio::spawn(
            async move {
                handle_connection(stream, peer, shared).await;
            }
            .with_current_subscriber(),
        );
    }
}

/// Serve one connection to the end.
pub(crate) async fn handle_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<ServerShared>,
) {
    let _ = stream.set_nodelay(true);
    let ip = peer.ip();
    if !shared.acquire(ip) {
        shared.counters.refused_busy.fetch_add(1, Ordering::Relaxed);
        let mut stream = stream;
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            stream.write_all(&ServerSession::refuse_busy(&shared.config)),
        )
        .await;
        tracing::info!(client = %ip, "connection refused: smtpd_client_connection_count_limit reached");
        return;
    }
    let n = shared.counters.sessions.fetch_add(1, Ordering::Relaxed);
    tracing::info!(target: "smtpd", "connect from unknown[{ip}]:{}", peer.port());
    let mut stats = CommandStats::default();
    let rng: Box<dyn RandomSource> = match shared.seed {
        Some(seed) => Box::new(SeededRandom::from_seed(seed.wrapping_add(n))),
        None => Box::new(SeededRandom::from_entropy()),
    };
    let wrapper = shared.config.tls_wrappermode;
    let result = if wrapper {
        match &shared.tls {
            // A client that connects and says nothing, or half a ClientHello, must not
            // hold its descriptor for ever: smtpd_timeout bounds the handshake.
            Some(tls) => match tokio::time::timeout(
                shared.config.timeout,
                TlsAcceptor::from(Arc::clone(tls)).accept(stream),
            )
            .await
            {
                Err(_) => {
                    tracing::info!(target: "tls", "[{ip}]: TLS handshake timed out");
                    Ok(())
                }
                Ok(Ok(tls_stream)) => {
                    let mut session = ServerSession::new(
                        Arc::clone(&shared.config),
                        Arc::clone(&shared.credentials),
                        rng,
                        Peer { ip, tls: true },
                    );
                    session.set_channel_bindings(super::tls::server_channel_bindings(
                        tls_stream.get_ref().1,
                        shared.end_point.as_deref(),
                    ));
                    run(tls_stream, session, &shared, ip, &mut stats)
                        .await
                        .map(|_| ())
                }
                Ok(Err(e)) => {
                    tracing::info!(target: "tls", "[{ip}]: TLS handshake failed: {e}");
                    Ok(())
                }
            },
            None => Ok(()),
        }
    } else {
        let session = ServerSession::new(
            Arc::clone(&shared.config),
            Arc::clone(&shared.credentials),
            rng,
            Peer { ip, tls: false },
        );
        match run(stream, session, &shared, ip, &mut stats).await {
            Ok(Some((stream, mut session))) => match &shared.tls {
                Some(tls) => {
                    let handshake = tokio::time::timeout(
                        shared.config.timeout,
                        TlsAcceptor::from(Arc::clone(tls)).accept(stream),
                    )
                    .await;
                    match handshake {
                        Ok(Ok(tls_stream)) => {
                            session.tls_established(None);
                            session.set_channel_bindings(super::tls::server_channel_bindings(
                                tls_stream.get_ref().1,
                                shared.end_point.as_deref(),
                            ));
                            run(tls_stream, session, &shared, ip, &mut stats)
                                .await
                                .map(|_| ())
                        }
                        Ok(Err(e)) => {
                            tracing::info!(target: "tls", "[{ip}]: STARTTLS handshake failed: {e}");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::info!(target: "tls", "[{ip}]: STARTTLS handshake timed out");
                            Ok(())
                        }
                    }
                }
                None => Ok(()),
            },
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        }
    };
    if let Err(e) = result {
        tracing::info!(target: "smtpd", "[{ip}]: connection ended with an IO error: {e}");
    }
    tracing::info!(target: "smtpd", "disconnect from unknown[{ip}]:{} {stats}", peer.port());
    shared.release(ip);
}

/// Drive `session` over `stream` until it closes (`Ok(None)`) or asks for STARTTLS
/// (`Ok(Some(..))`, with the output flushed).
async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    mut session: ServerSession,
    shared: &ServerShared,
    ip: IpAddr,
    stats: &mut CommandStats,
) -> io::Result<Option<(S, ServerSession)>> {
    let result = run_session(stream, &mut session, shared, ip).await;
    stats.clone_from(session.command_stats());
    Ok(result?.map(|stream| (stream, session)))
}

async fn run_session<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    session: &mut ServerSession,
    shared: &ServerShared,
    ip: IpAddr,
) -> io::Result<Option<S>> {
    // The dialog is logged only when someone reads it (`-v`, target `smtpd`).
    let mut dialog =
        tracing::enabled!(target: "smtpd", tracing::Level::INFO).then(|| Dialog::new(ip));
    let mut buf = vec![0u8; 4096];
    let timeout = shared.config.timeout;
    // smtpd_timeout bounds the wait for each complete line, not each read: a client
    // that trickles one byte at a time (slowloris) is closed as if it were idle.
    let mut deadline = tokio::time::Instant::now() + timeout;
    let mut lines = session.lines_seen();
    let mut spool: Option<Spool> = None;
    loop {
        let events: Vec<Event> = std::iter::from_fn(|| session.poll_event()).collect();
        // Pauses come before the output they precede (error replies, 535).
        let pause: Duration = events
            .iter()
            .filter_map(|e| match e {
                Event::Pause(d) => Some(*d),
                _ => None,
            })
            .sum();
        if !pause.is_zero() {
            tokio::time::sleep(pause.min(timeout)).await;
        }
        let out = session.take_output();
        if let Some(d) = dialog.as_mut() {
            d.server(&out);
        }
        if !out.is_empty() {
            tokio::time::timeout(timeout, stream.write_all(&out))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timeout"))??;
        }
        let mut upgrade = false;
        let mut delivered = false;
        for ev in events {
            match ev {
                Event::Pause(_) => {}
                Event::StartTls => upgrade = true,
                Event::Close => {}
                Event::MessageBegin(envelope) => {
                    spool = Some(Spool::open(shared, ip, &envelope).await);
                }
                Event::MessageData(data) => {
                    if let Some(s) = spool.as_mut() {
                        s.write(&data).await;
                    }
                }
                Event::MessageEnd => {
                    let outcome = match spool.take() {
                        Some(s) => s.commit().await,
                        None => Delivery::Failed,
                    };
                    match outcome {
                        Delivery::Queued => &shared.counters.messages,
                        Delivery::Failed => &shared.counters.delivery_failures,
                    }
                    .fetch_add(1, Ordering::Relaxed);
                    session.delivered(outcome);
                    delivered = true;
                }
                Event::MessageAbort => {
                    if let Some(s) = spool.take() {
                        s.discard().await;
                    }
                }
                Event::Log(r) => log_record(shared, &r),
            }
        }
        if delivered {
            // The reply to the final dot, and whatever was pipelined behind it, came
            // out of `delivered`: write it before reading again.
            continue;
        }
        if session.is_closed() {
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
            return Ok(None);
        }
        if upgrade {
            stream.flush().await?;
            return Ok(Some(stream));
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => session.timeout(),
            Ok(Ok(0)) => session.eof(),
            Ok(Ok(n)) => {
                if let Some(d) = dialog.as_mut() {
                    d.client(&buf[..n]);
                }
                session.receive(&buf[..n]);
                if session.lines_seen() != lines {
                    lines = session.lines_seen();
                    deadline = tokio::time::Instant::now() + timeout;
                }
            }
            Ok(Err(e)) => {
                session.eof();
                if e.kind() != io::ErrorKind::ConnectionReset {
                    return Err(e);
                }
            }
        }
    }
}

/// The SMTP dialog in the log (target `smtpd`): commands and replies at info, with
/// every SASL response and initial response replaced by `***` (they carry passwords or
/// proofs), and message content left out; at debug, the server's SASL challenges too.
struct Dialog {
    ip: IpAddr,
    partial: Vec<u8>,
    /// The last reply was 334: the next client line is a SASL response.
    sasl_next: bool,
    /// Between 354 and the final dot.
    in_data: bool,
}

impl Dialog {
    const MAX_LINE: usize = 512;

    fn new(ip: IpAddr) -> Dialog {
        Dialog {
            ip,
            partial: Vec::new(),
            sasl_next: false,
            in_data: false,
        }
    }

    fn server(&mut self, out: &[u8]) {
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
            let ip = self.ip;
            if line.starts_with("334") {
                self.sasl_next = true;
                tracing::info!(target: "smtpd", "[{ip}] < 334 (SASL challenge)");
                tracing::debug!(target: "smtpd", "[{ip}] < {}", clip(&line));
            } else {
                if line.starts_with("354") {
                    self.in_data = true;
                }
                tracing::info!(target: "smtpd", "[{ip}] < {}", clip(&line));
            }
        }
    }

    fn client(&mut self, data: &[u8]) {
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.len() < Self::MAX_LINE {
                let room = Self::MAX_LINE - self.partial.len();
                self.partial.extend_from_slice(&rest[..i.min(room)]);
            }
            rest = &rest[i + 1..];
            let line = std::mem::take(&mut self.partial);
            self.line(line.strip_suffix(b"\r").unwrap_or(&line));
        }
        if self.partial.len() < Self::MAX_LINE {
            let room = Self::MAX_LINE - self.partial.len();
            self.partial
                .extend_from_slice(&rest[..rest.len().min(room)]);
        }
    }

    fn line(&mut self, line: &[u8]) {
        let ip = self.ip;
        if self.in_data {
            if line == b"." {
                self.in_data = false;
                tracing::info!(target: "smtpd", "[{ip}] > . (end of message)");
            }
            return;
        }
        if std::mem::take(&mut self.sasl_next) {
            let what = if line == b"*" {
                "* (cancel)"
            } else {
                "*** (SASL response)"
            };
            tracing::info!(target: "smtpd", "[{ip}] > {what}");
            return;
        }
        let text = String::from_utf8_lossy(line);
        let mut words = text.splitn(3, ' ');
        let verb = words.next().unwrap_or("");
        if verb.eq_ignore_ascii_case("AUTH") {
            let mech = words.next().unwrap_or("");
            match words.next() {
                Some(_) => tracing::info!(target: "smtpd", "[{ip}] > AUTH {} ***", clip(mech)),
                None => tracing::info!(target: "smtpd", "[{ip}] > AUTH {}", clip(mech)),
            }
        } else {
            tracing::info!(target: "smtpd", "[{ip}] > {}", clip(&text));
        }
    }
}

/// A line for the log: control characters escaped, long lines cut with their length.
fn clip(line: &str) -> String {
    const MAX: usize = 200;
    let mut out: String = line
        .chars()
        .take(MAX)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if line.chars().count() > MAX {
        out.push_str(&format!("… ({} octets)", line.len()));
    }
    out
}

fn log_record(shared: &ServerShared, r: &LogRecord) {
    match r {
        LogRecord::AuthSuccess {
            client,
            method,
            username,
        } => {
            shared.counters.auth_success.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                target: "smtpd",
                "client=[{client}], sasl_method={method}, sasl_username={username}"
            );
        }
        LogRecord::AuthFailure {
            client,
            method,
            reason,
        } => {
            shared.counters.auth_failure.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                target: "smtpd",
                "warning: [{client}]: SASL {method} authentication failed: {reason}"
            );
        }
        LogRecord::InjectionDiscarded { client, octets } => {
            shared
                .counters
                .injections_discarded
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "warning: [{client}]: discarded {octets} octets of plaintext pipelined after STARTTLS (CVE-2011-0411 class)"
            );
        }
        LogRecord::LineDeviation { client, deviation } => {
            tracing::info!(
                "[{client}]: line deviation: {}",
                crate::human::describe(deviation)
            );
        }
        LogRecord::TooManyErrors { client, errors } => {
            tracing::warn!("too many errors after {errors} from [{client}]");
        }
        LogRecord::Timeout { client } => tracing::info!("timeout from [{client}]"),
    }
}

static DELIVERY_SEQ: AtomicU64 = AtomicU64::new(0);

/// A message on its way into the maildir: a file in `tmp/` that becomes a file in
/// `new/` only once it is complete and synced (the maildir protocol). Without a
/// maildir the message is read and discarded.
struct Spool {
    state: SpoolState,
}

enum SpoolState {
    /// No maildir configured: the message is discarded and accepted.
    Discard,
    Writing {
        file: tokio::fs::File,
        dir: PathBuf,
        name: String,
    },
    /// Something failed; the rest of the message is read and dropped, and the
    /// session answers 451.
    Failed,
}

impl Spool {
    async fn open(shared: &ServerShared, ip: IpAddr, envelope: &Envelope) -> Spool {
        let Some(dir) = &shared.maildir else {
            return Spool {
                state: SpoolState::Discard,
            };
        };
        let received = envelope.trace_headers(
            ip,
            &shared.config.myhostname,
            shared.config.sasl_authenticated_header,
            &rfc5322_now(),
        );
        let seq = DELIVERY_SEQ.fetch_add(1, Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let name = format!(
            "{}.M{}P{}Q{}.authspec",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            seq
        );
        let opened: io::Result<tokio::fs::File> = async {
            for sub in ["tmp", "new", "cur"] {
                tokio::fs::create_dir_all(dir.join(sub)).await?;
            }
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join("tmp").join(&name))
                .await?;
            file.write_all(received.as_bytes()).await?;
            Ok(file)
        }
        .await;
        match opened {
            Ok(file) => Spool {
                state: SpoolState::Writing {
                    file,
                    dir: dir.clone(),
                    name,
                },
            },
            Err(e) => {
                tracing::error!(error = %e, dir = %dir.display(), "maildir delivery failed");
                let _ = tokio::fs::remove_file(dir.join("tmp").join(&name)).await;
                Spool {
                    state: SpoolState::Failed,
                }
            }
        }
    }

    async fn write(&mut self, data: &[u8]) {
        if let SpoolState::Writing { file, dir, name } = &mut self.state {
            if let Err(e) = file.write_all(data).await {
                tracing::error!(error = %e, dir = %dir.display(), "maildir delivery failed");
                let _ = tokio::fs::remove_file(dir.join("tmp").join(&*name)).await;
                self.state = SpoolState::Failed;
            }
        }
    }

    /// Sync the file, move it into `new/`, sync the directory: only then is the
    /// message safe from a crash.
    async fn commit(mut self) -> Delivery {
        match std::mem::replace(&mut self.state, SpoolState::Failed) {
            SpoolState::Discard => Delivery::Queued,
            SpoolState::Failed => Delivery::Failed,
            SpoolState::Writing {
                mut file,
                dir,
                name,
            } => {
                let tmp = dir.join("tmp").join(&name);
                let result: io::Result<()> = async {
                    file.flush().await?;
                    file.sync_all().await?;
                    drop(file);
                    tokio::fs::rename(&tmp, dir.join("new").join(&name)).await?;
                    sync_dir(&dir.join("new")).await
                }
                .await;
                match result {
                    Ok(()) => Delivery::Queued,
                    Err(e) => {
                        tracing::error!(error = %e, dir = %dir.display(), "maildir delivery failed");
                        let _ = tokio::fs::remove_file(&tmp).await;
                        Delivery::Failed
                    }
                }
            }
        }
    }

    async fn discard(mut self) {
        if let SpoolState::Writing { file, dir, name } =
            std::mem::replace(&mut self.state, SpoolState::Failed)
        {
            drop(file);
            let _ = tokio::fs::remove_file(dir.join("tmp").join(&name)).await;
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // The connection ended mid-message: the partial file must not stay in tmp/.
        if let SpoolState::Writing { dir, name, .. } = &self.state {
            let _ = std::fs::remove_file(dir.join("tmp").join(name));
        }
    }
}

/// fsync a directory, so a rename into it survives a crash.
async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(io::Error::other)?
}

/// RFC 5322 date in UTC, computed without a calendar crate.
fn rfc5322_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, mo, d) = civil_from_days(days as i64);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(mo - 1) as usize];
    format!(
        "{weekday}, {d} {month} {y} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_419), (2025, 11, 27));
    }
}
