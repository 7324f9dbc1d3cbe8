//! A bounded, line-level SMTP connection for the runner, `probe`, `load` and `fuzz`:
//! send exact bytes, read one reply at a time, upgrade to TLS. Every read has a
//! timeout and every buffer a size bound, so a hostile or dead target ends in an error,
//! never a hang.

use authspec_reference::smtp::reply::{self, Reply, ReplyLimits};
use rustls::pki_types::ServerName;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The one place a TLS client configuration is built from the certificate policy
/// (`--tls-insecure`, `--ca-file`; see `cli::common::TlsPolicy`): verify against
/// `ca_file`, or the Mozilla roots, unless `insecure`.
pub fn tls_client_config(
    insecure: bool,
    ca_file: Option<&std::path::Path>,
) -> Result<Arc<rustls::ClientConfig>, authspec_reference::net::tls::TlsError> {
    use authspec_reference::net::tls;
    let v = if insecure {
        tls::ServerVerification::Insecure
    } else {
        tls::ServerVerification::WebPki {
            ca_file: ca_file.map(std::path::Path::to_path_buf),
        }
    };
    tls::client_config(&v)
}

/// Any byte stream the connection can run over (TCP, TLS over TCP).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Why a connection step failed. Each is a verdict the runner reports as is.
#[derive(Debug)]
pub enum ConnError {
    Connect(io::Error),
    /// No complete reply within the timeout; `partial` is what had arrived.
    Timeout {
        waiting_for: &'static str,
        partial: usize,
    },
    /// The peer closed the connection.
    Closed {
        partial: usize,
    },
    /// The bytes did not form a reply (RFC 5321 §4.2), or a bound was exceeded.
    Malformed(Malformed),
    Io(io::Error),
    Tls(TlsFailure),
}

/// What was wrong with the peer's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Malformed {
    /// A structural rule of RFC 5321 §4.2 broken.
    Reply(reply::ReplyError),
    /// No complete reply within the buffer bound.
    ReplyTooLarge {
        limit: usize,
    },
    LineTooLong {
        limit: usize,
    },
    /// More than the buffer bound arrived while waiting for the peer to close.
    FloodBeforeClose,
    /// EHLO was answered with something other than 250.
    EhloRefused {
        reply: String,
    },
    Ehlo(reply::EhloError),
    /// The greeting was not 220.
    Greeting {
        code: u16,
    },
}

impl Malformed {
    /// A stable name for what was broken: the finding signature `fuzz` groups by.
    pub fn rule(&self) -> &'static str {
        use reply::ReplyError as R;
        match self {
            Malformed::Reply(R::InvalidCode { .. }) => "InvalidCode",
            Malformed::Reply(R::InvalidSeparator { .. }) => "InvalidSeparator",
            Malformed::Reply(R::CodeMismatchAcrossLines { .. }) => "CodeMismatchAcrossLines",
            Malformed::Reply(R::LineTooLong { .. }) => "LineTooLong",
            Malformed::Reply(R::TooManyLines { .. }) => "TooManyLines",
            Malformed::ReplyTooLarge { .. } => "ReplyTooLarge",
            Malformed::LineTooLong { .. } => "ClientLineTooLong",
            Malformed::FloodBeforeClose => "FloodBeforeClose",
            Malformed::EhloRefused { .. } => "EhloRefused",
            Malformed::Ehlo(_) => "Ehlo",
            Malformed::Greeting { .. } => "Greeting",
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Reply(e) => e.fmt(f),
            Malformed::ReplyTooLarge { limit } => {
                write!(f, "more than {limit} octets without a complete reply")
            }
            Malformed::LineTooLong { limit } => {
                write!(f, "client line longer than {limit} octets")
            }
            Malformed::FloodBeforeClose => f.write_str("flood while waiting for close"),
            Malformed::EhloRefused { reply } => write!(f, "EHLO answered {reply}"),
            Malformed::Ehlo(e) => e.fmt(f),
            Malformed::Greeting { code } => write!(f, "greeting code {code}"),
        }
    }
}

impl std::error::Error for Malformed {}

/// Why TLS did not start.
#[derive(Debug)]
pub enum TlsFailure {
    /// The name to verify the certificate against is not a DNS name or an address.
    BadServerName {
        name: String,
        error: rustls::pki_types::InvalidDnsNameError,
    },
    /// The handshake failed (certificate refused, protocol error, closed).
    Handshake(io::Error),
    /// RFC 3207 §4: only 220 starts the handshake.
    StartTlsRefused { code: u16 },
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::BadServerName { name, error } => {
                write!(f, "bad server name {name:?}: {error}")
            }
            TlsFailure::Handshake(e) => e.fmt(f),
            TlsFailure::StartTlsRefused { code } => write!(f, "STARTTLS refused: {code}"),
        }
    }
}

impl std::error::Error for TlsFailure {}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Connect(e) => write!(f, "connect failed: {e}"),
            ConnError::Timeout {
                waiting_for,
                partial,
            } => write!(
                f,
                "timed out waiting for {waiting_for} ({partial} octets of an incomplete reply received)"
            ),
            ConnError::Closed { partial } => {
                write!(f, "connection closed by peer ({partial} octets unread)")
            }
            ConnError::Malformed(e) => write!(f, "malformed reply: {e}"),
            ConnError::Io(e) => write!(f, "IO error: {e}"),
            ConnError::Tls(e) => write!(f, "TLS: {e}"),
        }
    }
}

impl std::error::Error for ConnError {}

pub struct Conn {
    io: Option<Box<dyn Io>>,
    buf: Vec<u8>,
    pub limits: ReplyLimits,
    pub timeout: Duration,
    /// Never buffer more than this while waiting for one reply.
    pub max_buffer: usize,
    pub tls: bool,
    pub tls_info: Option<authspec_reference::net::tls::TlsInfo>,
    /// The channel-binding data of the TLS connection (RFC 5802 §6), once upgraded.
    pub channel_bindings: authspec_reference::sasl::channel_binding::ChannelBindings,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("buffered", &self.buf.len())
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Conn {
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Conn, ConnError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(ConnError::Timeout {
                    waiting_for: "connect",
                    partial: 0,
                });
            }
            Ok(Err(e)) => return Err(ConnError::Connect(e)),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        Ok(Conn::from_io(Box::new(stream), timeout))
    }

    pub fn from_io(io: Box<dyn Io>, timeout: Duration) -> Conn {
        Conn {
            io: Some(io),
            buf: Vec::new(),
            limits: ReplyLimits::default(),
            timeout,
            max_buffer: 256 * 1024,
            tls: false,
            tls_info: None,
            channel_bindings: Default::default(),
        }
    }

    fn io(&mut self) -> Result<&mut Box<dyn Io>, ConnError> {
        self.io.as_mut().ok_or(ConnError::Closed { partial: 0 })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        let timeout = self.timeout;
        let io = self.io()?;
        match tokio::time::timeout(timeout, io.write_all(bytes)).await {
            Err(_) => Err(ConnError::Timeout {
                waiting_for: "write",
                partial: 0,
            }),
            Ok(Err(e)) => Err(ConnError::Io(e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Read one complete reply.
    pub async fn read_reply(&mut self, waiting_for: &'static str) -> Result<Reply, ConnError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            match reply::parse_reply(&self.buf, &self.limits) {
                Ok(Some((r, used))) => {
                    self.buf.drain(..used);
                    return Ok(r);
                }
                Ok(None) => {}
                Err(e) => return Err(ConnError::Malformed(Malformed::Reply(e))),
            }
            if self.buf.len() > self.max_buffer {
                return Err(ConnError::Malformed(Malformed::ReplyTooLarge {
                    limit: self.max_buffer,
                }));
            }
            self.fill(deadline, waiting_for).await?;
        }
    }

    async fn fill(
        &mut self,
        deadline: tokio::time::Instant,
        waiting_for: &'static str,
    ) -> Result<(), ConnError> {
        let partial = self.buf.len();
        let mut chunk = [0u8; 8192];
        let io = self.io()?;
        match tokio::time::timeout_at(deadline, io.read(&mut chunk)).await {
            Err(_) => Err(ConnError::Timeout {
                waiting_for,
                partial,
            }),
            Ok(Ok(0)) => Err(ConnError::Closed { partial }),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            // A TLS peer that closes without close_notify has closed all the same; rustls
            // reports it as UnexpectedEof. Judging it as a close makes the verdict the
            // same under TLS as in plaintext.
            Ok(Err(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
                ) =>
            {
                Err(ConnError::Closed { partial })
            }
            Ok(Err(e)) => Err(ConnError::Io(e)),
        }
    }

    /// Read one line from a client (server-role scenarios), without its line end.
    /// `bare_lf` is set when the line ended in LF alone (RFC 5321 §2.3.8).
    pub async fn read_line(
        &mut self,
        limit: usize,
        waiting_for: &'static str,
    ) -> Result<(Vec<u8>, bool), ConnError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                let bare_lf = line.last() != Some(&b'\r');
                if !bare_lf {
                    line.pop();
                }
                return Ok((line, bare_lf));
            }
            if self.buf.len() > limit {
                return Err(ConnError::Malformed(Malformed::LineTooLong { limit }));
            }
            self.fill(deadline, waiting_for).await?;
        }
    }

    /// Wait for the peer to close. Replies that arrive first are returned, so a
    /// `421` before the close can be checked.
    pub async fn expect_close(&mut self, within: Duration) -> Result<Vec<Reply>, ConnError> {
        let deadline = tokio::time::Instant::now() + within;
        let mut replies = Vec::new();
        loop {
            if let Ok(Some((r, used))) = reply::parse_reply(&self.buf, &self.limits) {
                self.buf.drain(..used);
                replies.push(r);
                continue;
            }
            if self.buf.len() > self.max_buffer {
                return Err(ConnError::Malformed(Malformed::FloodBeforeClose));
            }
            match self.fill(deadline, "connection close").await {
                Ok(()) => {}
                Err(ConnError::Closed { .. }) => {
                    self.io = None;
                    return Ok(replies);
                }
                Err(ConnError::Io(_)) => {
                    self.io = None;
                    return Ok(replies);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Wait `within` and report whatever arrived (a server must stay silent).
    pub async fn read_available(&mut self, within: Duration) -> Result<Vec<u8>, ConnError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match self.fill(deadline, "silence").await {
                Ok(()) if self.buf.len() <= self.max_buffer => continue,
                Ok(()) => break,
                Err(ConnError::Timeout { .. }) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(std::mem::take(&mut self.buf))
    }

    /// Octets received and not yet consumed by a reply. After a STARTTLS `220` these
    /// are injected plaintext.
    pub fn take_unread(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Run the TLS handshake over the current stream (after `220` to STARTTLS, or at
    /// once for implicit TLS).
    pub async fn upgrade(
        &mut self,
        config: Arc<rustls::ClientConfig>,
        server_name: &str,
    ) -> Result<(), ConnError> {
        let io = self.io.take().ok_or(ConnError::Closed { partial: 0 })?;
        let name = ServerName::try_from(server_name.to_string()).map_err(|error| {
            ConnError::Tls(TlsFailure::BadServerName {
                name: server_name.to_owned(),
                error,
            })
        })?;
        let tls = handshake(self.timeout, TlsConnector::from(config).connect(name, io)).await?;
        self.tls_info = Some(authspec_reference::net::tls::tls_info_from_client(
            tls.get_ref().1,
        ));
        self.channel_bindings =
            authspec_reference::net::tls::client_channel_bindings(tls.get_ref().1);
        self.io = Some(Box::new(tls));
        self.tls = true;
        Ok(())
    }

    /// Run the TLS handshake as the server, after answering the client's STARTTLS
    /// with 220 (a server-role scenario). `end_point` is the DER of the certificate
    /// served, for `tls-server-end-point` (RFC 5929 §4).
    pub async fn accept_tls(
        &mut self,
        config: Arc<rustls::ServerConfig>,
        end_point: &[u8],
    ) -> Result<(), ConnError> {
        let io = self.io.take().ok_or(ConnError::Closed { partial: 0 })?;
        let tls = handshake(self.timeout, TlsAcceptor::from(config).accept(io)).await?;
        let server = tls.get_ref().1;
        self.tls_info = Some(authspec_reference::net::tls::tls_info_from_server(server));
        let end_point = authspec_reference::net::tls::tls_server_end_point(end_point);
        self.channel_bindings =
            authspec_reference::net::tls::server_channel_bindings(server, end_point.as_deref());
        self.io = Some(Box::new(tls));
        self.tls = true;
        Ok(())
    }

    /// The transcript's note for a finished handshake, with the TLS version.
    pub fn handshake_note(&self) -> String {
        let version = self.tls_info.as_ref().map(|i| i.version.as_str());
        format!("TLS handshake done ({})", version.unwrap_or_default())
    }

    pub async fn shutdown(&mut self) {
        if let Some(io) = self.io.as_mut() {
            let _ = tokio::time::timeout(Duration::from_millis(200), io.shutdown()).await;
        }
        self.io = None;
    }
}

/// A TLS handshake, either side, bounded by `timeout`.
async fn handshake<S>(
    timeout: Duration,
    handshake: impl std::future::Future<Output = io::Result<S>>,
) -> Result<S, ConnError> {
    match tokio::time::timeout(timeout, handshake).await {
        Err(_) => Err(ConnError::Timeout {
            waiting_for: "TLS handshake",
            partial: 0,
        }),
        Ok(Err(e)) => Err(ConnError::Tls(TlsFailure::Handshake(e))),
        Ok(Ok(s)) => Ok(s),
    }
}
