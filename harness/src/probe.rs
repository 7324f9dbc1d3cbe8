//! `authspec probe`: what a server offers for AUTH, before and after TLS, and what
//! looks wrong about it. Each probe is one short session; each anomaly names the rule.

use crate::conn::{Conn, ConnError, Malformed, TlsFailure};
use authspec_reference::sasl::Mechanism;
use authspec_reference::sasl::channel_binding::CbType;
use authspec_reference::smtp::reply::{self, Capabilities, Reply};
use base64::Engine as _;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeTls {
    None,
    StartTls,
    Implicit,
}

#[derive(Debug, Serialize)]
pub struct ProbeReport {
    pub target: String,
    pub banner: String,
    pub ehlo_before_tls: Vec<String>,
    pub ehlo_after_tls: Option<Vec<String>>,
    pub auth: AuthLines,
    pub auth_after_tls: Option<AuthLines>,
    pub mechanisms: Vec<MechanismReport>,
    pub tls: Option<TlsReport>,
    pub anomalies: Vec<Anomaly>,
    /// The whole session ran over implicit TLS (`--tls`): there is no "before TLS".
    pub implicit_tls: bool,
    /// SCRAM-*-PLUS: where it is offered and which binding types the server takes.
    pub channel_binding: ChannelBindingReport,
}

#[derive(Debug, Serialize, Default, Clone)]
pub struct AuthLines {
    /// The standard `AUTH m1 m2` line (RFC 4954 §3).
    pub auth: Option<Vec<String>>,
    /// The non-standard `AUTH=m1 m2` line old Outlook clients read.
    pub auth_eq: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
pub struct MechanismReport {
    pub name: String,
    pub known: bool,
    pub offered_before_tls: bool,
    pub offered_after_tls: bool,
    pub properties: Vec<&'static str>,
    /// The Postfix `smtp(d)_sasl_security_options` values that would hide it.
    pub hidden_by: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct TlsReport {
    pub version: String,
    pub cipher: String,
    pub subject: Option<String>,
    pub not_after: Option<String>,
}

#[derive(Debug, Serialize, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// A stable name, for scripts.
    pub rule: &'static str,
    pub detail: String,
}

/// Why `probe` produced no report.
#[derive(Debug)]
pub enum ProbeError {
    /// A connection step failed; the text says which.
    Conn(ConnError),
    /// No SMTP greeting on a plaintext connection, but a fresh connection answered a
    /// TLS ClientHello: the port is implicit TLS (RFC 8314 §3.3), `--tls` is missing.
    ImplicitTls {
        no_greeting: NoGreeting,
        answer: TlsAnswer,
    },
    /// No SMTP greeting, and no TLS answer on a fresh connection either.
    NoGreeting {
        no_greeting: NoGreeting,
        tls_attempt: TlsSilence,
    },
}

/// How the plaintext greeting failed to come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoGreeting {
    /// Nothing at all within `--timeout`.
    Silent { secs: u64 },
    /// The first octets were a TLS record header (content type, then major version 3).
    TlsRecord { first: [u8; 2] },
}

/// How a TLS server showed itself to the detection ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsAnswer {
    /// The handshake completed (any certificate is accepted for the detection).
    Handshake { version: String },
    /// The handshake failed, but with an error only a TLS peer produces (an alert,
    /// a certificate, an incompatible parameter).
    Refused { error: String },
}

/// Why the detection ClientHello got no TLS answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSilence {
    Timeout {
        secs: u64,
    },
    Closed,
    /// Something came back, but not TLS.
    NotTls {
        error: String,
    },
    Connect {
        error: String,
    },
}

impl fmt::Display for NoGreeting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoGreeting::Silent { secs } => write!(f, "no SMTP greeting in {secs} s"),
            NoGreeting::TlsRecord { first } => write!(
                f,
                "the first octets were a TLS record (0x{:02x} 0x{:02x}), not an SMTP greeting (RFC 5321 §4.2)",
                first[0], first[1]
            ),
        }
    }
}

impl fmt::Display for TlsAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsAnswer::Handshake { version } => write!(f, "handshake completed, {version}"),
            TlsAnswer::Refused { error } => write!(f, "handshake refused: {error}"),
        }
    }
}

impl fmt::Display for TlsSilence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsSilence::Timeout { secs } => write!(f, "nothing within {secs} s"),
            TlsSilence::Closed => write!(f, "the connection was closed"),
            TlsSilence::NotTls { error } => write!(f, "the answer was not TLS: {error}"),
            TlsSilence::Connect { error } => write!(f, "connect failed: {error}"),
        }
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Conn(e) => write!(f, "{e}"),
            ProbeError::ImplicitTls {
                no_greeting,
                answer,
            } => write!(
                f,
                "{no_greeting}, but the port answered a TLS ClientHello ({answer}): it speaks TLS \
                 from the first byte (implicit TLS, RFC 8314 §3.3). Run again with --tls."
            ),
            ProbeError::NoGreeting {
                no_greeting: NoGreeting::Silent { secs },
                tls_attempt: TlsSilence::Timeout { .. },
            } => write!(
                f,
                "no SMTP greeting in {secs} s and no answer to a TLS ClientHello either: the port \
                 is silent (a greeting delay longer than --timeout, or not SMTP; RFC 5321 §3.1: \
                 the server speaks first)"
            ),
            ProbeError::NoGreeting {
                no_greeting,
                tls_attempt,
            } => write!(
                f,
                "{no_greeting}, and no TLS answer to a ClientHello either ({tls_attempt}): not \
                 SMTP, or a greeting delay longer than --timeout (RFC 5321 §3.1: the server \
                 speaks first)"
            ),
        }
    }
}

impl std::error::Error for ProbeError {}

impl From<ConnError> for ProbeError {
    fn from(e: ConnError) -> Self {
        ProbeError::Conn(e)
    }
}

/// What the channel-binding section means by "accepted", for readers of either output.
pub const BINDING_ACCEPTED_MEANS: &str = "accepted = the server answered the SCRAM client-first \
message with a server-first message (r=...); no credentials are used and no authentication \
completes, so the binding data itself is not checked";

/// SCRAM-*-PLUS: where it is offered, and which channel-binding types the server takes
/// at the client-first step (RFC 5802 §6).
#[derive(Debug, Serialize)]
pub struct ChannelBindingReport {
    /// [`BINDING_ACCEPTED_MEANS`].
    pub note: &'static str,
    /// Every SCRAM-*-PLUS name offered, and where.
    pub plus_offered: Vec<PlusOffer>,
    /// The -PLUS mechanism the binding types were tried with (the strongest offered
    /// over TLS), if any.
    pub tried_with: Option<String>,
    pub binding_types: Vec<BindingTypeReport>,
}

#[derive(Debug, Serialize)]
pub struct PlusOffer {
    pub name: String,
    /// Offered on a connection without TLS (before STARTTLS).
    pub offered_before_tls: bool,
    /// Offered over TLS (after STARTTLS, or over implicit TLS).
    pub offered_over_tls: bool,
}

#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BindingOutcome {
    /// The server went on to its server-first message.
    Accepted,
    /// The server refused the type (a 5xx, or `e=` in a 334).
    Refused,
    /// The attempt did not run (no TLS, no -PLUS offered, or the session failed
    /// before AUTH).
    NotTried,
    /// The server answered with something that is neither.
    Inconclusive,
}

impl fmt::Display for BindingOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BindingOutcome::Accepted => "accepted",
            BindingOutcome::Refused => "refused",
            BindingOutcome::NotTried => "not tried",
            BindingOutcome::Inconclusive => "inconclusive",
        })
    }
}

#[derive(Debug, Serialize)]
pub struct BindingTypeReport {
    #[serde(rename = "type")]
    pub cb_type: &'static str,
    /// Where the type is defined.
    pub rfc: &'static str,
    pub outcome: BindingOutcome,
    /// The code of the reply to the client-first message.
    pub reply_code: Option<u16>,
    /// The RFC 5802 §7 `server-error-value` (`e=`), if the reply carried one.
    pub server_error: Option<String>,
    pub detail: String,
}

pub struct ProbeOptions {
    pub target: String,
    pub tls: ProbeTls,
    pub tls_config: Arc<rustls::ClientConfig>,
    pub server_name: String,
    pub helo: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for ProbeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeOptions")
            .field("target", &self.target)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

fn lines(r: &Reply) -> Vec<String> {
    r.lines
        .iter()
        .map(|l| String::from_utf8_lossy(&l.text).into_owned())
        .collect()
}

fn auth_lines(c: &Capabilities) -> AuthLines {
    AuthLines {
        auth: c.auth.clone(),
        auth_eq: c.auth_eq.clone(),
    }
}

/// Property names and the security options that hide a mechanism with them.
pub fn describe(m: Mechanism) -> (Vec<&'static str>, Vec<&'static str>) {
    let p = m.properties();
    let mut props = Vec::new();
    let mut hidden = Vec::new();
    if p.plaintext {
        props.push("plaintext");
        hidden.push("noplaintext");
    }
    if p.anonymous {
        props.push("anonymous");
        hidden.push("noanonymous");
    }
    if p.dictionary {
        props.push("dictionary");
        hidden.push("nodictionary");
    }
    if p.active {
        props.push("active");
        hidden.push("noactive");
    }
    if p.mutual_auth {
        props.push("mutual_auth");
    } else {
        hidden.push("mutual_auth");
    }
    if p.forward_secrecy {
        props.push("forward_secrecy");
    } else {
        hidden.push("forward_secrecy");
    }
    (props, hidden)
}

async fn ehlo(conn: &mut Conn, helo: &str) -> Result<(Reply, Capabilities), ConnError> {
    conn.send(format!("EHLO {helo}\r\n").as_bytes()).await?;
    let r = conn.read_reply("EHLO reply").await?;
    if r.code != 250 {
        return Err(ConnError::Malformed(Malformed::EhloRefused {
            reply: String::from_utf8_lossy(&r.format()).trim_end().to_owned(),
        }));
    }
    let caps = reply::parse_ehlo(&r).map_err(|e| ConnError::Malformed(Malformed::Ehlo(e)))?;
    Ok((r, caps))
}

/// Open a session up to the EHLO (after STARTTLS if asked), for the side probes.
async fn open(opts: &ProbeOptions) -> Result<(Conn, Reply, Capabilities), ConnError> {
    let mut conn = Conn::connect(&opts.target, opts.timeout).await?;
    if opts.tls == ProbeTls::Implicit {
        conn.upgrade(Arc::clone(&opts.tls_config), &opts.server_name)
            .await?;
    }
    let greet = conn.read_reply("greeting").await?;
    if greet.code != 220 {
        return Err(ConnError::Malformed(Malformed::Greeting {
            code: greet.code,
        }));
    }
    let (mut r, mut caps) = ehlo(&mut conn, &opts.helo).await?;
    if opts.tls == ProbeTls::StartTls {
        conn.send(b"STARTTLS\r\n").await?;
        let r220 = conn.read_reply("STARTTLS reply").await?;
        if r220.code != 220 {
            return Err(ConnError::Tls(TlsFailure::StartTlsRefused {
                code: r220.code,
            }));
        }
        conn.take_unread();
        conn.upgrade(Arc::clone(&opts.tls_config), &opts.server_name)
            .await?;
        (r, caps) = ehlo(&mut conn, &opts.helo).await?;
    }
    Ok((conn, r, caps))
}

/// A TLS record header: content type alert (21) or handshake (22), then the major
/// version 3 that every SSL 3 / TLS record carries (RFC 8446 §5.1).
fn looks_like_tls(bytes: &[u8]) -> Option<[u8; 2]> {
    match bytes {
        [t @ (0x15 | 0x16), 0x03, ..] => Some([*t, 0x03]),
        _ => None,
    }
}

/// A plaintext stream whose first octets were read ahead (to see whether they are TLS):
/// they are served again, then the rest of the stream.
struct ReadAhead {
    head: Vec<u8>,
    at: usize,
    inner: tokio::net::TcpStream,
}

impl tokio::io::AsyncRead for ReadAhead {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at < this.head.len() {
            let n = buf.remaining().min(this.head.len() - this.at);
            buf.put_slice(&this.head[this.at..this.at + n]);
            this.at += n;
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ReadAhead {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The first connection of a plaintext probe. Its first octets are read here: none
/// within the timeout, or a TLS record header, sends the probe to the TLS check at
/// once, so a TLS server that speaks first is recognised without waiting for a
/// greeting line that never ends (issue 17).
async fn connect_plain(opts: &ProbeOptions) -> Result<Conn, ProbeError> {
    use tokio::io::AsyncReadExt as _;
    let stream = match tokio::time::timeout(
        opts.timeout,
        tokio::net::TcpStream::connect(&opts.target),
    )
    .await
    {
        Err(_) => {
            return Err(ConnError::Timeout {
                waiting_for: "connect",
                partial: 0,
            }
            .into());
        }
        Ok(Err(e)) => return Err(ConnError::Connect(e).into()),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let mut stream = stream;
    let mut head = vec![0u8; 512];
    let no_greeting = match tokio::time::timeout(opts.timeout, stream.read(&mut head)).await {
        Err(_) => NoGreeting::Silent {
            secs: opts.timeout.as_secs(),
        },
        Ok(Ok(0)) => return Err(ConnError::Closed { partial: 0 }.into()),
        Ok(Err(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            return Err(ConnError::Closed { partial: 0 }.into());
        }
        Ok(Err(e)) => return Err(ConnError::Io(e).into()),
        Ok(Ok(n)) => {
            head.truncate(n);
            match looks_like_tls(&head) {
                Some(first) => NoGreeting::TlsRecord { first },
                None => {
                    let io = ReadAhead {
                        head,
                        at: 0,
                        inner: stream,
                    };
                    return Ok(Conn::from_io(Box::new(io), opts.timeout));
                }
            }
        }
    };
    drop(stream);
    Err(tls_check(opts, no_greeting).await)
}

/// The error for a port that gave no greeting: implicit TLS, or silent to both.
async fn tls_check(opts: &ProbeOptions, no_greeting: NoGreeting) -> ProbeError {
    match tls_answers(opts).await {
        Ok(answer) => ProbeError::ImplicitTls {
            no_greeting,
            answer,
        },
        Err(tls_attempt) => ProbeError::NoGreeting {
            no_greeting,
            tls_attempt,
        },
    }
}

/// The plaintext greeting, or the reason it did not come. A TLS record that arrived
/// in pieces (so `connect_plain` saw too little of it) is caught here after the read
/// fails, and tried again with a TLS ClientHello, so the error can say "implicit TLS,
/// use --tls" instead of a bare timeout (issue 17).
async fn read_greeting(conn: &mut Conn, opts: &ProbeOptions) -> Result<Reply, ProbeError> {
    let err = match conn.read_reply("greeting").await {
        Ok(r) => return Ok(r),
        Err(e) => e,
    };
    if opts.tls == ProbeTls::Implicit {
        return Err(err.into());
    }
    let unread = conn.take_unread();
    let no_greeting = if let Some(first) = looks_like_tls(&unread) {
        NoGreeting::TlsRecord { first }
    } else if matches!(err, ConnError::Timeout { partial: 0, .. }) {
        NoGreeting::Silent {
            secs: opts.timeout.as_secs(),
        }
    } else {
        // Some other failure (a partial or malformed greeting, a close): the
        // connection error says more than a guess about TLS would.
        return Err(err.into());
    };
    conn.shutdown().await;
    Err(tls_check(opts, no_greeting).await)
}

/// Whether the target answers a TLS ClientHello on a fresh connection. Any
/// certificate is accepted: this only asks "is TLS spoken here", nothing is sent
/// over the result, and `--tls` then applies the real certificate policy.
async fn tls_answers(opts: &ProbeOptions) -> Result<TlsAnswer, TlsSilence> {
    use tokio_rustls::TlsConnector;
    let secs = opts.timeout.as_secs();
    let config = crate::conn::tls_client_config(true, None).map_err(|e| TlsSilence::Connect {
        error: e.to_string(),
    })?;
    let name = rustls::pki_types::ServerName::try_from(opts.server_name.clone()).map_err(|e| {
        TlsSilence::Connect {
            error: format!("bad server name: {e}"),
        }
    })?;
    let stream = match tokio::time::timeout(
        opts.timeout,
        tokio::net::TcpStream::connect(&opts.target),
    )
    .await
    {
        Err(_) => return Err(TlsSilence::Timeout { secs }),
        Ok(Err(e)) => {
            return Err(TlsSilence::Connect {
                error: e.to_string(),
            });
        }
        Ok(Ok(s)) => s,
    };
    let handshake = TlsConnector::from(config).connect(name, stream);
    match tokio::time::timeout(opts.timeout, handshake).await {
        Err(_) => Err(TlsSilence::Timeout { secs }),
        Ok(Ok(tls)) => {
            let version =
                authspec_reference::net::tls::tls_info_from_client(tls.get_ref().1).version;
            Ok(TlsAnswer::Handshake { version })
        }
        Ok(Err(e)) => {
            let rustls_error = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>());
            match rustls_error {
                // Only a TLS peer sends an alert, a certificate, or a well-formed
                // record of the wrong kind.
                Some(
                    r @ (rustls::Error::AlertReceived(_)
                    | rustls::Error::InvalidCertificate(_)
                    | rustls::Error::PeerIncompatible(_)
                    | rustls::Error::PeerMisbehaved(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::InappropriateMessage { .. }
                    | rustls::Error::InappropriateHandshakeMessage { .. }),
                ) => Ok(TlsAnswer::Refused {
                    error: r.to_string(),
                }),
                Some(r) => Err(TlsSilence::NotTls {
                    error: r.to_string(),
                }),
                None if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) =>
                {
                    Err(TlsSilence::Closed)
                }
                None => Err(TlsSilence::NotTls {
                    error: e.to_string(),
                }),
            }
        }
    }
}

fn is_scram(name: &str) -> bool {
    name.len() > 6 && name[..6].eq_ignore_ascii_case("SCRAM-")
}

fn is_plus(name: &str) -> bool {
    is_scram(name) && name.len() > 5 && name[name.len() - 5..].eq_ignore_ascii_case("-PLUS")
}

fn offers(list: &[String], name: &str) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(name))
}

/// The RFC 5802 §7 `server-error-value` in a reply, base64-decoded or as plain text:
/// an `e=` at the start of the message or of a word. Only `cb-name`-like characters
/// are kept (and at most 64), so nothing the server chose reaches a terminal raw.
fn server_error_value(r: &Reply) -> Option<String> {
    for line in &r.lines {
        let text = line.text.trim_ascii();
        let decoded = base64::engine::general_purpose::STANDARD.decode(text).ok();
        for candidate in decoded.as_deref().into_iter().chain([text]) {
            for i in 0..candidate.len() {
                let at_word = i == 0 || matches!(candidate[i - 1], b' ' | b',' | b'(' | b':');
                if !at_word || !candidate[i..].starts_with(b"e=") {
                    continue;
                }
                let value: String = candidate[i + 2..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
                    .take(64)
                    .map(|b| char::from(*b))
                    .collect();
                if !value.is_empty() {
                    return Some(value);
                }
            }
        }
    }
    None
}

/// Where the binding type is defined.
fn binding_rfc(t: CbType) -> &'static str {
    match t {
        CbType::TlsExporter => "RFC 9266",
        CbType::TlsServerEndPoint => "RFC 5929 §4",
        CbType::TlsUnique => "RFC 5929 §3",
    }
}

/// One fresh session up to the post-TLS EHLO, then `AUTH <mech> <client-first>` with
/// `p=<type>`: does the server go on to its server-first message? No credentials: the
/// user name is a fixed placeholder and the exchange is cancelled with `*`.
async fn try_binding(
    opts: &ProbeOptions,
    mechanism: &str,
    t: CbType,
    n: usize,
) -> BindingTypeReport {
    let mut rep = BindingTypeReport {
        cb_type: t.name(),
        rfc: binding_rfc(t),
        outcome: BindingOutcome::NotTried,
        reply_code: None,
        server_error: None,
        detail: String::new(),
    };
    let mut c = match open(opts).await {
        Ok((c, _, _)) => c,
        Err(e) => {
            rep.detail = format!("the session failed before AUTH: {e}");
            return rep;
        }
    };
    // The nonce only has to be printable (RFC 5802 §7); nothing here is secret.
    let client_first = format!("p={},,n=authspec-probe,r=authspecprobe{n}", t.name());
    let b64 = base64::engine::general_purpose::STANDARD.encode(client_first);
    let reply = match c
        .send(format!("AUTH {mechanism} {b64}\r\n").as_bytes())
        .await
    {
        Ok(()) => c.read_reply("AUTH reply").await,
        Err(e) => Err(e),
    };
    match reply {
        Err(e) => {
            rep.outcome = BindingOutcome::Inconclusive;
            rep.detail = format!("no usable reply to the client-first message: {e}");
        }
        Ok(r) => {
            rep.reply_code = Some(r.code);
            rep.server_error = server_error_value(&r);
            let server_first = r.code == 334
                && base64::engine::general_purpose::STANDARD
                    .decode(r.last_text().trim_ascii())
                    .is_ok_and(|d| d.starts_with(b"r="));
            if server_first {
                rep.outcome = BindingOutcome::Accepted;
                rep.detail = "334 with a server-first message (r=...)".into();
            } else if rep.server_error.is_some() || (500..600).contains(&r.code) {
                rep.outcome = BindingOutcome::Refused;
                rep.detail = match &rep.server_error {
                    Some(e) => format!("{} with e={e}", r.code),
                    None => format!("{} without an e= value", r.code),
                };
            } else {
                rep.outcome = BindingOutcome::Inconclusive;
                let text = String::from_utf8_lossy(r.last_text());
                rep.detail = format!(
                    "{} `{}`: neither a server-first message nor a refusal",
                    r.code,
                    text.chars().take(80).collect::<String>()
                );
            }
            // A 334 leaves the exchange open; `*` ends it (RFC 4954 §4).
            if r.code == 334 && c.send(b"*\r\n").await.is_ok() {
                match c.read_reply("cancel reply").await {
                    Ok(cancel) => rep
                        .detail
                        .push_str(&format!("; cancelled with `*`: {}", cancel.code)),
                    Err(e) => rep.detail.push_str(&format!("; cancelled with `*`: {e}")),
                }
            }
        }
    }
    c.send(b"QUIT\r\n").await.ok();
    c.shutdown().await;
    rep
}

/// The channel-binding section (issue 18): which SCRAM-*-PLUS names are offered and
/// where, which binding types the strongest one takes over TLS, and the anomalies.
/// `without_tls` is the list on a connection without TLS (empty under implicit TLS);
/// `over_tls` the list over TLS, `None` when no TLS session was made.
async fn channel_binding(
    opts: &ProbeOptions,
    without_tls: &[String],
    over_tls: Option<&[String]>,
    anomalies: &mut Vec<Anomaly>,
) -> ChannelBindingReport {
    let with_tls = over_tls.unwrap_or(&[]);
    let mut plus_offered: Vec<PlusOffer> = Vec::new();
    for name in without_tls.iter().chain(with_tls) {
        if is_plus(name)
            && !plus_offered
                .iter()
                .any(|p| p.name.eq_ignore_ascii_case(name))
        {
            plus_offered.push(PlusOffer {
                name: name.clone(),
                offered_before_tls: offers(without_tls, name),
                offered_over_tls: offers(with_tls, name),
            });
        }
    }
    for p in plus_offered.iter().filter(|p| p.offered_before_tls) {
        anomalies.push(Anomaly {
            rule: "plus-without-tls",
            detail: format!(
                "{} is offered on a connection without TLS: channel binding needs a secure \
                 channel to bind to (RFC 5802 §6, RFC 5056)",
                p.name
            ),
        });
    }
    for name in with_tls {
        if is_scram(name) && !is_plus(name) && !offers(with_tls, &format!("{name}-PLUS")) {
            anomalies.push(Anomaly {
                rule: "scram-without-plus",
                detail: format!(
                    "{name} is offered over TLS without {name}-PLUS: a client cannot bind the \
                     exchange to the TLS channel, so a man in the middle that terminates TLS \
                     goes unseen (RFC 5802 §4: a server that supports channel binding \
                     advertises both the bare and the -PLUS name; RFC 5802 §6)"
                ),
            });
        }
    }
    // The strongest -PLUS by authspec's order (SHA-512, SHA-256, SHA-1), else the
    // first unknown one offered.
    let tried_with = Mechanism::ALL
        .iter()
        .filter(|m| m.channel_binding())
        .find(|m| offers(with_tls, m.name()))
        .map(|m| m.name().to_string())
        .or_else(|| with_tls.iter().find(|n| is_plus(n)).cloned());
    let mut binding_types = Vec::new();
    let why_not = match (over_tls, &tried_with) {
        (None, _) => Some("no TLS session: channel binding needs one (RFC 5056)"),
        (Some(_), None) => Some("no SCRAM-*-PLUS is offered over TLS"),
        _ => None,
    };
    let side = ProbeOptions {
        target: opts.target.clone(),
        tls: if opts.tls == ProbeTls::Implicit {
            ProbeTls::Implicit
        } else {
            ProbeTls::StartTls
        },
        tls_config: Arc::clone(&opts.tls_config),
        server_name: opts.server_name.clone(),
        helo: opts.helo.clone(),
        timeout: opts.timeout,
    };
    for (n, t) in CbType::ALL.into_iter().enumerate() {
        match (why_not, &tried_with) {
            (None, Some(mechanism)) => {
                binding_types.push(try_binding(&side, mechanism, t, n).await);
            }
            _ => binding_types.push(BindingTypeReport {
                cb_type: t.name(),
                rfc: binding_rfc(t),
                outcome: BindingOutcome::NotTried,
                reply_code: None,
                server_error: None,
                detail: why_not.unwrap_or_default().to_string(),
            }),
        }
    }
    ChannelBindingReport {
        note: BINDING_ACCEPTED_MEANS,
        plus_offered,
        tried_with,
        binding_types,
    }
}

pub async fn probe(opts: &ProbeOptions) -> Result<ProbeReport, ProbeError> {
    let mut anomalies = Vec::new();
    let first = first_session(opts, &mut anomalies).await?;
    let before_list = offered(&first.before);
    let after_list = first.after.as_ref().map(offered).unwrap_or_default();
    let initially_tls = opts.tls == ProbeTls::Implicit;
    let mechanisms = mechanism_table(&before_list, &after_list, initially_tls, &mut anomalies);
    auth_line_anomalies(&first.before, first.after.as_ref(), &mut anomalies);
    let over_tls: Option<&[String]> = if initially_tls {
        Some(&before_list)
    } else if first.after.is_some() {
        Some(&after_list)
    } else {
        None
    };
    let without_tls: &[String] = if initially_tls { &[] } else { &before_list };
    let channel_binding = channel_binding(opts, without_tls, over_tls, &mut anomalies).await;

    // Side probes on fresh sessions, where AUTH is offered.
    let auth_where = if !after_list.is_empty() || (before_list.is_empty() && first.offers_starttls)
    {
        ProbeTls::StartTls
    } else {
        opts.tls
    };
    let side_opts = ProbeOptions {
        target: opts.target.clone(),
        tls: if opts.tls == ProbeTls::Implicit {
            ProbeTls::Implicit
        } else {
            auth_where
        },
        tls_config: Arc::clone(&opts.tls_config),
        server_name: opts.server_name.clone(),
        helo: opts.helo.clone(),
        timeout: opts.timeout,
    };
    let offered_now = if side_opts.tls == ProbeTls::None {
        &before_list
    } else if first.after.is_some() {
        &after_list
    } else {
        &before_list
    };
    if offered_now.iter().any(|m| m.eq_ignore_ascii_case("PLAIN")) {
        probe_plain_cancel(&side_opts, &mut anomalies).await;
    }
    if !offered_now.is_empty() {
        probe_unknown_mechanism(&side_opts, &mut anomalies).await;
    }
    Ok(ProbeReport {
        target: opts.target.clone(),
        banner: first.banner,
        ehlo_before_tls: first.ehlo_before,
        ehlo_after_tls: first.ehlo_after,
        auth: first.before,
        auth_after_tls: first.after,
        mechanisms,
        tls: first.tls,
        anomalies,
        implicit_tls: opts.tls == ProbeTls::Implicit,
        channel_binding,
    })
}

/// What the first session learned: the greeting, EHLO before and after STARTTLS, and
/// the TLS session.
struct FirstSession {
    banner: String,
    ehlo_before: Vec<String>,
    ehlo_after: Option<Vec<String>>,
    before: AuthLines,
    after: Option<AuthLines>,
    tls: Option<TlsReport>,
    offers_starttls: bool,
}

/// Connect (with TLS for `--tls`), read the greeting, EHLO, and STARTTLS where asked
/// for or offered, then QUIT.
async fn first_session(
    opts: &ProbeOptions,
    anomalies: &mut Vec<Anomaly>,
) -> Result<FirstSession, ProbeError> {
    let mut conn = if opts.tls == ProbeTls::Implicit {
        let mut conn = Conn::connect(&opts.target, opts.timeout).await?;
        conn.upgrade(Arc::clone(&opts.tls_config), &opts.server_name)
            .await?;
        conn
    } else {
        connect_plain(opts).await?
    };
    let greet = read_greeting(&mut conn, opts).await?;
    let banner = lines(&greet).join(" / ");
    if greet.code != 220 {
        anomalies.push(Anomaly {
            rule: "greeting-not-220",
            detail: format!("greeting code {} (RFC 5321 §4.2)", greet.code),
        });
    }
    let (r1, caps1) = ehlo(&mut conn, &opts.helo).await?;
    let offers_starttls = caps1.has("STARTTLS");
    let mut after_tls = None;
    if opts.tls == ProbeTls::StartTls || (opts.tls == ProbeTls::None && offers_starttls) {
        if offers_starttls {
            after_tls = starttls(&mut conn, opts, anomalies).await?;
        } else {
            anomalies.push(Anomaly {
                rule: "starttls-not-offered",
                detail: "--starttls was asked for but EHLO does not list STARTTLS".into(),
            });
        }
    }
    let tls = conn.tls_info.as_ref().map(|info| TlsReport {
        version: info.version.clone(),
        cipher: info.cipher.clone(),
        subject: info.peer_subject.clone(),
        not_after: info.peer_not_after.clone(),
    });
    conn.send(b"QUIT\r\n").await.ok();
    conn.shutdown().await;
    let (ehlo_after, after) = match after_tls {
        Some((lines, auth)) => (Some(lines), Some(auth)),
        None => (None, None),
    };
    Ok(FirstSession {
        banner,
        ehlo_before: lines(&r1),
        ehlo_after,
        before: auth_lines(&caps1),
        after,
        tls,
        offers_starttls,
    })
}

/// STARTTLS, the handshake and EHLO again: the EHLO lines and AUTH lines after TLS,
/// or `None` (with the anomaly) when the upgrade did not happen.
async fn starttls(
    conn: &mut Conn,
    opts: &ProbeOptions,
    anomalies: &mut Vec<Anomaly>,
) -> Result<Option<(Vec<String>, AuthLines)>, ProbeError> {
    conn.send(b"STARTTLS\r\n").await?;
    let r = conn.read_reply("STARTTLS reply").await?;
    if r.code != 220 {
        anomalies.push(Anomaly {
            rule: "starttls-refused",
            detail: format!("STARTTLS answered {}", r.code),
        });
        return Ok(None);
    }
    let injected = conn.take_unread();
    if !injected.is_empty() {
        anomalies.push(Anomaly {
            rule: "starttls-response-injection",
            detail: format!(
                "{} octets arrived after the STARTTLS 220 and before the handshake (discarded)",
                injected.len()
            ),
        });
    }
    match conn
        .upgrade(Arc::clone(&opts.tls_config), &opts.server_name)
        .await
    {
        Ok(()) => {
            let (r2, caps2) = ehlo(conn, &opts.helo).await?;
            Ok(Some((lines(&r2), auth_lines(&caps2))))
        }
        Err(e) => {
            anomalies.push(Anomaly {
                rule: "tls-handshake-failed",
                detail: e.to_string(),
            });
            Ok(None)
        }
    }
}

/// The mechanisms an EHLO offers: the `AUTH` line's, else the `AUTH=` line's.
fn offered(a: &AuthLines) -> Vec<String> {
    a.auth
        .clone()
        .or_else(|| a.auth_eq.clone())
        .unwrap_or_default()
}

/// Every mechanism offered before or after TLS, with its properties; a plaintext
/// mechanism offered without TLS is an anomaly.
fn mechanism_table(
    before_list: &[String],
    after_list: &[String],
    initially_tls: bool,
    anomalies: &mut Vec<Anomaly>,
) -> Vec<MechanismReport> {
    let mut names: Vec<String> = before_list.to_vec();
    for n in after_list {
        if !names.iter().any(|x| x.eq_ignore_ascii_case(n)) {
            names.push(n.clone());
        }
    }
    let mut mechanisms = Vec::new();
    for name in &names {
        let m = Mechanism::from_name(name.as_bytes());
        let (properties, hidden_by) = m.map(describe).unwrap_or_default();
        let offered_before = before_list.iter().any(|x| x.eq_ignore_ascii_case(name));
        let offered_after = after_list.iter().any(|x| x.eq_ignore_ascii_case(name));
        if let Some(m) = m {
            if m.properties().plaintext && offered_before && !initially_tls {
                anomalies.push(Anomaly {
                    rule: "plaintext-auth-before-tls",
                    detail: format!(
                        "{m} is offered on a connection without TLS: the password crosses the network in the clear"
                    ),
                });
            }
        }
        mechanisms.push(MechanismReport {
            name: name.clone(),
            known: m.is_some(),
            offered_before_tls: offered_before,
            offered_after_tls: offered_after,
            properties,
            hidden_by,
        });
    }
    mechanisms
}

/// `AUTH=` alone, or `AUTH` and `AUTH=` listing different mechanisms.
fn auth_line_anomalies(
    before: &AuthLines,
    after: Option<&AuthLines>,
    anomalies: &mut Vec<Anomaly>,
) {
    for (label, a) in [("before TLS", Some(before)), ("after TLS", after)] {
        let Some(a) = a else { continue };
        match (&a.auth, &a.auth_eq) {
            (None, Some(_)) => anomalies.push(Anomaly {
                rule: "auth-eq-only",
                detail: format!(
                    "{label}: only the non-standard AUTH= line is present; RFC 4954 clients look for AUTH"
                ),
            }),
            (Some(x), Some(y)) if x != y => anomalies.push(Anomaly {
                rule: "auth-lines-differ",
                detail: format!(
                    "{label}: AUTH lists `{}` but AUTH= lists `{}`",
                    x.join(" "),
                    y.join(" ")
                ),
            }),
            _ => {}
        }
    }
}

/// `AUTH PLAIN` without an initial response, then `*`: the empty challenge's form,
/// the cancel's 501 (RFC 4954 §4) and its enhanced code (RFC 2034 §3).
async fn probe_plain_cancel(side_opts: &ProbeOptions, anomalies: &mut Vec<Anomaly>) {
    let Ok((mut c, _, caps)) = open(side_opts).await else {
        return;
    };
    let enhanced = caps.has("ENHANCEDSTATUSCODES");
    if c.send(b"AUTH PLAIN\r\n").await.is_ok() {
        let reply = c.read_reply("AUTH PLAIN reply").await;
        if let Err(e) = &reply {
            anomalies.push(Anomaly {
                rule: "auth-probe-failed",
                detail: format!("`AUTH PLAIN` got no usable reply: {e}"),
            });
        }
        if let Ok(r) = reply {
            if r.code == 334 && r.is_bare_334() {
                anomalies.push(Anomaly {
                    rule: "bare-334",
                    detail: "the empty challenge came as `334` without the space RFC 4954 §4 requires (`334 `)".into(),
                });
            }
            if r.code == 334 && c.send(b"*\r\n").await.is_ok() {
                if let Ok(r) = c.read_reply("cancel reply").await {
                    if r.code != 501 {
                        anomalies.push(Anomaly {
                            rule: "cancel-not-501",
                            detail: format!("`*` was answered {} (RFC 4954 §4 MUST 501)", r.code),
                        });
                    }
                    if enhanced && r.enhanced().is_none() {
                        anomalies.push(Anomaly {
                            rule: "missing-enhanced-code",
                            detail: "ENHANCEDSTATUSCODES is advertised but the cancel reply has none (RFC 2034 §3)".into(),
                        });
                    }
                }
            }
        }
    }
    c.send(b"QUIT\r\n").await.ok();
    c.shutdown().await;
}

/// `AUTH` with a mechanism nobody implements: RFC 4954 §4 answers 504.
async fn probe_unknown_mechanism(side_opts: &ProbeOptions, anomalies: &mut Vec<Anomaly>) {
    let Ok((mut c, _, _)) = open(side_opts).await else {
        return;
    };
    if c.send(b"AUTH X-AUTHSPEC-PROBE\r\n").await.is_ok() {
        let reply = c.read_reply("AUTH reply").await;
        if let Err(e) = &reply {
            anomalies.push(Anomaly {
                rule: "auth-probe-failed",
                detail: format!("`AUTH` with an unknown mechanism got no usable reply: {e}"),
            });
        }
        if let Ok(r) = reply {
            if r.code != 504 {
                anomalies.push(Anomaly {
                    rule: "unknown-mechanism-not-504",
                    detail: format!(
                        "an unknown mechanism was answered {} (RFC 4954 §4: 504)",
                        r.code
                    ),
                });
            }
        }
    }
    c.send(b"QUIT\r\n").await.ok();
    c.shutdown().await;
}

/// The human form of a probe report.
pub fn render_human(r: &ProbeReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "target   {}", r.target);
    let _ = writeln!(s, "banner   {}", r.banner);
    let first = if r.implicit_tls {
        "over implicit TLS"
    } else {
        "before TLS"
    };
    let _ = writeln!(s, "EHLO ({first}):");
    for l in &r.ehlo_before_tls {
        let _ = writeln!(s, "    {l}");
    }
    if let Some(after) = &r.ehlo_after_tls {
        let _ = writeln!(s, "EHLO (after STARTTLS):");
        for l in after {
            let _ = writeln!(s, "    {l}");
        }
    }
    let show = |a: &AuthLines| {
        format!(
            "AUTH: {}   AUTH=: {}",
            a.auth
                .as_ref()
                .map(|v| v.join(" "))
                .unwrap_or_else(|| "(absent)".into()),
            a.auth_eq
                .as_ref()
                .map(|v| v.join(" "))
                .unwrap_or_else(|| "(absent)".into())
        )
    };
    let _ = writeln!(s, "auth {first:<12} {}", show(&r.auth));
    if let Some(a) = &r.auth_after_tls {
        let _ = writeln!(s, "auth after TLS    {}", show(a));
    }
    if let Some(t) = &r.tls {
        let _ = writeln!(
            s,
            "TLS      {} {} subject={} not_after={}",
            t.version,
            t.cipher,
            t.subject.as_deref().unwrap_or("?"),
            t.not_after.as_deref().unwrap_or("?")
        );
    }
    let _ = writeln!(s, "mechanisms:");
    for m in &r.mechanisms {
        let _ = writeln!(
            s,
            "    {:<14} {:<5} before-TLS={:<5} after-TLS={:<5} properties=[{}] hidden-by=[{}]",
            m.name,
            if m.known { "" } else { "(?)" },
            m.offered_before_tls,
            m.offered_after_tls,
            m.properties.join(","),
            m.hidden_by.join(",")
        );
    }
    let cb = &r.channel_binding;
    let _ = writeln!(s, "channel binding ({}):", cb.note);
    if cb.plus_offered.is_empty() {
        let _ = writeln!(s, "    -PLUS offered: none");
    }
    for p in &cb.plus_offered {
        let place = if r.implicit_tls {
            "over implicit TLS"
        } else {
            match (p.offered_before_tls, p.offered_over_tls) {
                (true, true) => "before and after TLS",
                (true, false) => "before TLS only",
                _ => "after TLS only",
            }
        };
        let _ = writeln!(s, "    -PLUS offered: {} ({place})", p.name);
    }
    if let Some(m) = &cb.tried_with {
        let _ = writeln!(s, "    binding types tried with {m}:");
    }
    for b in &cb.binding_types {
        let _ = writeln!(
            s,
            "    {:<21} {:<12} {:<12} {}",
            b.cb_type,
            b.outcome.to_string(),
            b.rfc,
            b.detail
        );
    }
    if r.anomalies.is_empty() {
        let _ = writeln!(s, "anomalies: none");
    } else {
        let _ = writeln!(s, "anomalies:");
        for a in &r.anomalies {
            let _ = writeln!(s, "    {}: {}", a.rule, a.detail);
        }
    }
    s
}
