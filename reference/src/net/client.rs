//! The tokio driver for [`ClientSession`]: connects, optionally wraps in TLS at once
//! (port-465 style) or after STARTTLS, and bounds every read and write by a timeout.

use crate::smtp::client::{ClientError, ClientEvent, ClientSession, Outcome, TranscriptLine};
use rustls::pki_types::ServerName;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How the connection starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP; STARTTLS (RFC 3207) may upgrade it, as the plan says.
    Plain,
    /// TLS from the first byte (`smtp_tls_wrappermode`, port 465).
    ImplicitTls,
}

/// Where and how [`run_client`] connects.
#[derive(Clone)]
pub struct ClientConnect {
    /// `host:port` to connect to.
    pub addr: String,
    /// Plain TCP or implicit TLS.
    pub transport: Transport,
    /// Used for STARTTLS and implicit TLS.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The name to verify and send as SNI.
    pub server_name: String,
    /// Bound on each read, write and handshake.
    pub timeout: Duration,
}

impl fmt::Debug for ClientConnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConnect")
            .field("addr", &self.addr)
            .field("transport", &self.transport)
            .field("server_name", &self.server_name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why the driver could not complete a session, besides protocol failures.
#[derive(Debug)]
pub enum DriverError {
    /// The TCP connection could not be opened.
    Connect(io::Error),
    /// A bound ran out; the text names the step (`connect`, `TLS handshake`, `write`...).
    Timeout(&'static str),
    /// Reading or writing the socket failed.
    Io(io::Error),
    /// The TLS handshake failed (rustls's message).
    Tls(String),
    /// The session failed by the protocol's rules.
    Protocol(ClientError),
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::Connect(e) => write!(f, "connect failed: {e}"),
            DriverError::Timeout(what) => write!(f, "timed out waiting for {what}"),
            DriverError::Io(e) => write!(f, "IO error: {e}"),
            DriverError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            DriverError::Protocol(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DriverError {}

/// The result of one client session, with its transcript whatever happened.
#[derive(Debug)]
pub struct ClientRun {
    /// What the session achieved, or why it stopped.
    pub result: Result<Outcome, DriverError>,
    /// The dialog, payloads decoded and secrets masked.
    pub transcript: Vec<TranscriptLine>,
    /// The negotiated TLS parameters, if TLS was used.
    pub tls_info: Option<super::tls::TlsInfo>,
}

/// Run `session` against `connect.addr` to its end.
pub async fn run_client(connect: &ClientConnect, mut session: ClientSession) -> ClientRun {
    let stream =
        match tokio::time::timeout(connect.timeout, TcpStream::connect(&connect.addr)).await {
            Err(_) => {
                return ClientRun {
                    result: Err(DriverError::Timeout("connect")),
                    transcript: Vec::new(),
                    tls_info: None,
                };
            }
            Ok(Err(e)) => {
                return ClientRun {
                    result: Err(DriverError::Connect(e)),
                    transcript: Vec::new(),
                    tls_info: None,
                };
            }
            Ok(Ok(s)) => s,
        };
    let _ = stream.set_nodelay(true);
    let result = match connect.transport {
        Transport::Plain => match drive(stream, &mut session, connect.timeout).await {
            Ok(Step::Done(r)) => (r, None),
            Ok(Step::StartTls(stream)) => match handshake(connect, stream).await {
                Ok(tls) => {
                    let info = super::tls::tls_info_from_client(tls.get_ref().1);
                    session.tls_established();
                    session
                        .set_channel_bindings(super::tls::client_channel_bindings(tls.get_ref().1));
                    match drive(tls, &mut session, connect.timeout).await {
                        Ok(Step::Done(r)) => (r, Some(info)),
                        Ok(Step::StartTls(_)) => (
                            Err(DriverError::Tls("STARTTLS inside TLS".into())),
                            Some(info),
                        ),
                        Err(e) => (Err(e), Some(info)),
                    }
                }
                Err(e) => (Err(e), None),
            },
            Err(e) => (Err(e), None),
        },
        Transport::ImplicitTls => match handshake(connect, stream).await {
            Ok(tls) => {
                let info = super::tls::tls_info_from_client(tls.get_ref().1);
                session.set_channel_bindings(super::tls::client_channel_bindings(tls.get_ref().1));
                match drive(tls, &mut session, connect.timeout).await {
                    Ok(Step::Done(r)) => (r, Some(info)),
                    Ok(Step::StartTls(_)) => (
                        Err(DriverError::Tls("STARTTLS inside TLS".into())),
                        Some(info),
                    ),
                    Err(e) => (Err(e), Some(info)),
                }
            }
            Err(e) => (Err(e), None),
        },
    };
    ClientRun {
        result: result.0,
        transcript: session.transcript().to_vec(),
        tls_info: result.1,
    }
}

async fn handshake(
    connect: &ClientConnect,
    stream: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, DriverError> {
    let Some(cfg) = &connect.tls else {
        return Err(DriverError::Tls("no TLS client configuration".into()));
    };
    let name = ServerName::try_from(connect.server_name.clone())
        .map_err(|e| DriverError::Tls(format!("bad server name: {e}")))?;
    match tokio::time::timeout(
        connect.timeout,
        TlsConnector::from(Arc::clone(cfg)).connect(name, stream),
    )
    .await
    {
        Err(_) => Err(DriverError::Timeout("TLS handshake")),
        Ok(Err(e)) => Err(DriverError::Tls(e.to_string())),
        Ok(Ok(s)) => Ok(s),
    }
}

enum Step<S> {
    Done(Result<Outcome, DriverError>),
    StartTls(S),
}

async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    session: &mut ClientSession,
    timeout: Duration,
) -> Result<Step<S>, DriverError> {
    let mut buf = vec![0u8; 8192];
    loop {
        let out = session.take_output();
        if !out.is_empty() {
            match tokio::time::timeout(timeout, stream.write_all(&out)).await {
                Err(_) => return Err(DriverError::Timeout("write")),
                Ok(Err(e)) => return Err(DriverError::Io(e)),
                Ok(Ok(())) => {}
            }
        }
        // Events end this drive loop: the first one decides what happens next.
        if let Some(ev) = session.poll_event() {
            match ev {
                ClientEvent::StartTls => {
                    let _ = stream.flush().await;
                    return Ok(Step::StartTls(stream));
                }
                ClientEvent::Done(r) => {
                    let out = session.take_output();
                    if !out.is_empty() {
                        let _ = tokio::time::timeout(timeout, stream.write_all(&out)).await;
                    }
                    let _ =
                        tokio::time::timeout(Duration::from_millis(200), stream.shutdown()).await;
                    return Ok(Step::Done(r.map_err(DriverError::Protocol)));
                }
            }
        }
        match tokio::time::timeout(timeout, stream.read(&mut buf)).await {
            Err(_) => return Err(DriverError::Timeout("server reply")),
            Ok(Ok(0)) => session.eof(),
            Ok(Ok(n)) => session.receive(&buf[..n]),
            Ok(Err(e)) => return Err(DriverError::Io(e)),
        }
    }
}
