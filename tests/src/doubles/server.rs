//! A compliant-but-different SMTP AUTH server: it follows RFC 5321, RFC 4954,
//! RFC 4616, RFC 2195, RFC 3207, RFC 2034, RFC 2920 and RFC 4422, and wherever those
//! leave a choice it makes one unlike Postfix's (and so unlike the reference's). Each
//! choice is an [`Options`] switch. The bundled suite must give no fail and no error
//! against it in any combination: a fail here means a scenario encodes Postfix's
//! behaviour as if it were a requirement (issue 13, item 6).
//!
//! The SMTP layer (reading lines, commands, replies, the session state machine) is
//! written here from the RFCs and shares nothing with `authspec_reference::smtp`, so it
//! cannot inherit the reference's choices. Only the SASL mechanism arithmetic (PLAIN,
//! LOGIN and CRAM-MD5 verification) and the self-signed certificate come from the
//! reference crate.
//!
//! A [`Flaw`] makes a variant that breaks exactly one MUST of those RFCs; the suite
//! must catch each one.
//!
//! Every wait is bounded: reads time out after [`IDLE_TIMEOUT`], lines and message
//! bodies have limits, and the number of errors per session is capped.

use authspec_reference::net::tls;
use authspec_reference::sasl::channel_binding::{CbType, ChannelBindings, ServerBinding};
use authspec_reference::sasl::cram_md5::CramMd5Server;
use authspec_reference::sasl::credentials::MemoryStore;
use authspec_reference::sasl::login::{LoginServer, PASSWORD_PROMPT, USERNAME_PROMPT};
use authspec_reference::sasl::plain::PlainServer;
use authspec_reference::sasl::scram::{ScramHash, ScramServer};
use authspec_reference::sasl::{
    CredentialStore, RandomSource, SaslError, Secret, SeededRandom, ServerContext, ServerMechanism,
    ServerStep,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The double's host name, in its greeting, EHLO reply and CRAM-MD5 challenges.
pub const HOSTNAME: &str = "mx.double.test";

/// How long the double waits for a client line before it gives up (RFC 5321 §4.5.3.2.7
/// asks for at least 5 minutes; a test server needs far less, and every wait is bounded).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The pause after a failed AUTH when [`Options::tarpit`] is on.
pub const TARPIT: Duration = Duration::from_millis(1500);

/// The pause before the greeting when [`Options::slow_greeting`] is on.
pub const GREETING_DELAY: Duration = Duration::from_secs(1);

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets, CRLF included.
const COMMAND_LINE: usize = 512;
/// RFC 4954 §5: with AUTH advertised, MAIL FROM may be 500 octets longer.
const MAIL_LINE_WITH_AUTH: usize = COMMAND_LINE + 500;
/// RFC 4954 §4: a server MUST accept SASL lines (and AUTH lines) of 12288 octets,
/// CRLF included. The double accepts exactly that and no more.
const SASL_LINE: usize = 12288;
/// The largest message body the double takes (it keeps none of it).
const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// After this many error replies the double closes with 421.
const ERROR_LIMIT: u32 = 30;

/// The choices the RFCs leave open. `Options::default()` (all off) is already unlike
/// Postfix in its texts, EHLO order, LOGIN prompts, CRAM-MD5 challenge style, smuggled
/// text kept as body, and no ENHANCEDSTATUSCODES or PIPELINING; each switch changes
/// one more choice. Some choices are not switches: reply texts are always the
/// double's own, LOGIN prompts are draft-murchison §2.2's "User Name" and "Password",
/// text after a bare-LF "." in DATA stays body (one message, one 250), a bare LF or
/// CR in a command gets 500 and the session goes on, STARTTLS under TLS gets 503, and
/// unauthenticated relaying is allowed when `require_auth` is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Advertise ENHANCEDSTATUSCODES and put an RFC 3463 code (the one RFC 4954 §6 or
    /// RFC 5248 names) on every 2xx/4xx/5xx reply but the greeting and EHLO/HELO
    /// (RFC 2034 §3). Off: no keyword and no code anywhere.
    pub enhanced_codes: bool,
    /// AUTH is the last EHLO keyword (the `250 ` line) and the others come in reverse;
    /// off: AUTH is the first keyword. Postfix puts AUTH in the middle.
    pub auth_last: bool,
    /// Advertise PIPELINING (RFC 2920). Off: not advertised, and each command is
    /// answered and flushed before the next one is read.
    pub pipelining: bool,
    /// MAIL before a successful AUTH is refused with `530` (RFC 4954 §6).
    pub require_auth: bool,
    /// AUTH is advertised and accepted only under TLS (after STARTTLS); before TLS,
    /// AUTH gets `538` (RFC 4954 §6) and MAIL gets `530` (RFC 3207 §4).
    pub tls_auth_only: bool,
    /// Sleep [`TARPIT`] before answering a failed AUTH.
    pub tarpit: bool,
    /// Sleep [`GREETING_DELAY`] before the greeting.
    pub slow_greeting: bool,
    /// CRAM-MD5 challenges are `<hex@host>` (RFC 2195 §2 asks only for an RFC 822
    /// msg-id); off: `<digits.digits@host>` as Cyrus makes them.
    pub hex_cram_challenge: bool,
    /// End TLS sessions by closing the socket without a close_notify alert.
    pub no_close_notify: bool,
}

impl Options {
    /// The number of switches, for covering arrays.
    pub const COUNT: usize = 9;

    /// The switch names, in [`Options::from_bits`] order.
    pub const NAMES: [&'static str; Options::COUNT] = [
        "enhanced_codes",
        "auth_last",
        "pipelining",
        "require_auth",
        "tls_auth_only",
        "tarpit",
        "slow_greeting",
        "hex_cram_challenge",
        "no_close_notify",
    ];

    /// Options from a bit set: bit `i` is switch `NAMES[i]`.
    pub fn from_bits(bits: u32) -> Options {
        let b = |i: u32| bits & (1 << i) != 0;
        Options {
            enhanced_codes: b(0),
            auth_last: b(1),
            pipelining: b(2),
            require_auth: b(3),
            tls_auth_only: b(4),
            tarpit: b(5),
            slow_greeting: b(6),
            hex_cram_challenge: b(7),
            no_close_notify: b(8),
        }
    }

    /// The switches that are on, by name.
    pub fn describe(&self) -> String {
        let bits = [
            self.enhanced_codes,
            self.auth_last,
            self.pipelining,
            self.require_auth,
            self.tls_auth_only,
            self.tarpit,
            self.slow_greeting,
            self.hex_cram_challenge,
            self.no_close_notify,
        ];
        let on: Vec<&str> = Options::NAMES
            .iter()
            .zip(bits)
            .filter(|(_, b)| *b)
            .map(|(n, _)| *n)
            .collect();
        if on.is_empty() {
            "all off".to_owned()
        } else {
            on.join("+")
        }
    }
}

/// One broken MUST, for the variants the suite must catch. Each names the clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    /// Decodes SASL responses leniently, skipping characters outside the alphabet and
    /// misplaced padding. RFC 4954 §4: "servers and clients MUST reject (and not
    /// ignore) any character not explicitly allowed by the BASE64 alphabet".
    LenientBase64,
    /// Answers a `*` response with another challenge, keeping the exchange open.
    /// RFC 4954 §4: "If the server receives such a response, it MUST reject the AUTH
    /// command by sending a 501 reply."
    CancelKeepsExchangeOpen,
    /// Runs a second AUTH after a successful one. RFC 4954 §4: "After a successful
    /// AUTH command completes, a server MUST reject any further AUTH commands with a
    /// 503 reply."
    SecondAuthAccepted,
    /// Runs AUTH inside a mail transaction. RFC 4954 §4: "An AUTH command issued
    /// during a mail transaction MUST be rejected with a 503 reply."
    AuthInTransaction,
    /// Advertises ENHANCEDSTATUSCODES but sends no codes. RFC 2034 §3: the server
    /// "MUST preface the text part of almost all response lines with a status code".
    EnhancedAdvertisedButMissing,
    /// Ends DATA at a bare-LF `.` line, so text after it runs as commands (SMTP
    /// smuggling). RFC 5321 §4.1.1.4: the mail data is terminated by a line
    /// containing only a period, i.e. "<CRLF>.<CRLF>".
    BareLfDotEndsData,
    /// Keeps plaintext pipelined after STARTTLS and runs it under TLS
    /// (CVE-2011-0411). RFC 3207 §4.2: "The server MUST discard any knowledge
    /// obtained from the client ... which was not obtained from the TLS negotiation
    /// itself."
    StarttlsInjection,
    /// Answers QUIT with 221 and leaves the connection open. RFC 5321 §4.1.1.10:
    /// "The receiver MUST send a "221 OK" reply, and then close the transmission
    /// channel."
    NoCloseAfterQuit,
    /// Cuts SASL lines at 1000 octets and reads the rest as another line. RFC 4954 §4
    /// requires servers to accept 12288-octet lines.
    SaslLineCut,
    /// Sends an empty challenge as `334` with no space. RFC 4954 §4 grammar:
    /// `continue-req = "334" SP [base64] CRLF`.
    Bare334,
    /// Keeps advertising STARTTLS after the TLS handshake. RFC 3207 §4.2: "A server
    /// MUST NOT return the STARTTLS extension in response to an EHLO command received
    /// after a TLS handshake has completed."
    StarttlsAfterTls,
    /// (With [`Config::scram`].) Takes the client's word for the channel-binding data:
    /// SCRAM-SHA-256-PLUS accepts any `c=`, so a TLS-terminating man in the middle
    /// goes unnoticed. RFC 5802 §6: "If the server supports channel binding, it MUST
    /// ... check ... the channel binding data"; §5.1 `c`: the attribute carries the
    /// GS2 header and the channel binding data.
    IgnoresChannelBinding,
    /// (With [`Config::scram`].) Accepts gs2 flag `y` on SCRAM-SHA-256 although it
    /// advertised SCRAM-SHA-256-PLUS. RFC 5802 §6: "If the flag is set to "y" and the
    /// server supports channel binding, the server MUST fail authentication."
    AcceptsYWithPlus,
}

impl Flaw {
    pub const ALL: [Flaw; 13] = [
        Flaw::LenientBase64,
        Flaw::CancelKeepsExchangeOpen,
        Flaw::SecondAuthAccepted,
        Flaw::AuthInTransaction,
        Flaw::EnhancedAdvertisedButMissing,
        Flaw::BareLfDotEndsData,
        Flaw::StarttlsInjection,
        Flaw::NoCloseAfterQuit,
        Flaw::SaslLineCut,
        Flaw::Bare334,
        Flaw::StarttlsAfterTls,
        Flaw::IgnoresChannelBinding,
        Flaw::AcceptsYWithPlus,
    ];
}

/// Everything one double serves with.
#[derive(Debug, Clone)]
pub struct Config {
    pub options: Options,
    pub flaw: Option<Flaw>,
    /// Users and their plaintext passwords.
    pub users: Vec<(String, String)>,
    /// Offer SCRAM-SHA-256 (RFC 7677) and, under TLS, SCRAM-SHA-256-PLUS bound with
    /// `tls-exporter` only (RFC 9266; the reference also takes tls-server-end-point),
    /// and send the server-final message in a `334` answered by an empty line. Off by
    /// default, so the covering set of the switches stays what it was.
    pub scram: bool,
}

impl Config {
    /// alice/wonderland (the runner's default variables) and bob.
    pub fn new(options: Options) -> Config {
        Config {
            options,
            flaw: None,
            users: vec![
                (crate::ALICE.0.to_owned(), crate::ALICE.1.to_owned()),
                (crate::BOB.0.to_owned(), crate::BOB.1.to_owned()),
            ],
            scram: false,
        }
    }

    /// With SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (see [`Config::scram`]).
    pub fn with_scram(mut self) -> Config {
        self.scram = true;
        self
    }

    pub fn with_flaw(mut self, flaw: Flaw) -> Config {
        self.flaw = Some(flaw);
        self
    }
}

/// A running double. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct Double {
    pub addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Drop for Double {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// What every connection shares.
struct Shared {
    cfg: Config,
    tls: TlsAcceptor,
    sasl: ServerContext,
}

/// Start a double on 127.0.0.1 on an ephemeral port. Must run inside a tokio runtime.
pub async fn start(cfg: Config) -> io::Result<Double> {
    let cert = tls::self_signed(&[HOSTNAME.to_owned(), "localhost".to_owned()])
        .map_err(|e| io::Error::other(e.to_string()))?;
    let tls_config = tls::server_config(cert.certs, cert.key, &tls::ClientAuth::None)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut store = MemoryStore::new();
    for (u, p) in &cfg.users {
        store.insert_plain(u.clone(), p.clone());
    }
    let credentials: Arc<dyn CredentialStore> = Arc::new(store);
    let shared = Arc::new(Shared {
        cfg,
        tls: TlsAcceptor::from(tls_config),
        sasl: ServerContext {
            hostname: HOSTNAME.to_owned(),
            realm: None,
            external_identity: None,
            credentials,
        },
    });
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accept = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let mut s = Session::new(shared, stream);
                s.run().await;
            });
        }
    });
    Ok(Double { addr, accept })
}

// ---------------------------------------------------------------------------------
// Transport

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
            Stream::Gone => Ok(0),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Stream::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

/// What reading one line gave.
enum Line {
    /// A line that ended in CRLF (CRLF removed).
    Crlf(Vec<u8>),
    /// A line that ended in a bare LF (LF removed).
    BareLf,
    /// Longer than the limit; it was read to its end and thrown away.
    TooLong,
    /// The client closed, the read failed or timed out.
    Gone,
}

/// Where the session is (RFC 5321 §4.1.4 ordering, RFC 4954 §4 for AUTH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Greeted {
    No,
    Helo,
    Ehlo,
}

struct Session {
    shared: Arc<Shared>,
    opts: Options,
    flaw: Option<Flaw>,
    stream: Stream,
    inbuf: Vec<u8>,
    greeted: Greeted,
    authenticated: bool,
    /// A MAIL was accepted; RCPT count follows.
    in_transaction: bool,
    recipients: usize,
    errors: u32,
    rng: SeededRandom,
    /// This TLS connection's `tls-exporter` data, once TLS is on.
    exporter: Option<Vec<u8>>,
}

impl Session {
    fn new(shared: Arc<Shared>, stream: TcpStream) -> Session {
        let opts = shared.cfg.options;
        let flaw = shared.cfg.flaw;
        Session {
            shared,
            opts,
            flaw,
            stream: Stream::Plain(stream),
            inbuf: Vec::new(),
            greeted: Greeted::No,
            authenticated: false,
            in_transaction: false,
            recipients: 0,
            errors: 0,
            rng: SeededRandom::from_entropy(),
            exporter: None,
        }
    }

    fn flaw(&self, f: Flaw) -> bool {
        self.flaw == Some(f)
    }

    /// Whether enhanced codes go on replies (RFC 2034 §3: only when advertised).
    fn codes(&self) -> bool {
        self.opts.enhanced_codes && !self.flaw(Flaw::EnhancedAdvertisedButMissing)
    }

    fn advertises_enhanced(&self) -> bool {
        self.opts.enhanced_codes || self.flaw(Flaw::EnhancedAdvertisedButMissing)
    }

    fn auth_offered(&self) -> bool {
        !self.opts.tls_auth_only || self.stream.is_tls()
    }

    /// SCRAM-SHA-256-PLUS is offered only under TLS with binding data (RFC 5802 §6).
    fn plus_offered(&self) -> bool {
        self.shared.cfg.scram && self.stream.is_tls() && self.exporter.is_some()
    }

    /// The server side of SCRAM-SHA-256 or its -PLUS variant on this connection.
    fn scram_server(&mut self, plus: bool) -> Box<dyn ServerMechanism> {
        let bindings = match &self.exporter {
            Some(e) => ChannelBindings::new().with(CbType::TlsExporter, e.clone()),
            None => ChannelBindings::new(),
        };
        let binding = ServerBinding {
            bindings,
            plus_advertised: self.plus_offered() && !self.flaw(Flaw::AcceptsYWithPlus),
        };
        let nonce = self.rng.nonce(24);
        let mut secret = vec![0u8; 32];
        self.rng.fill(&mut secret);
        if plus && self.flaw(Flaw::IgnoresChannelBinding) {
            return Box::new(TrustingScram {
                ctx: self.shared.sasl.clone(),
                nonce,
                secret,
                binding,
                first: None,
                inner: None,
            });
        }
        Box::new(
            ScramServer::with_nonce(
                ScramHash::Sha256,
                &self.shared.sasl,
                nonce,
                Secret::new(secret),
            )
            .with_binding(plus, binding),
        )
    }

    /// Format one reply line: `code [enhanced] text`.
    fn line(&self, code: u16, enhanced: &str, text: &str) -> String {
        if self.codes() && !enhanced.is_empty() {
            format!("{code} {enhanced} {text}\r\n")
        } else {
            format!("{code} {text}\r\n")
        }
    }

    async fn send(&mut self, code: u16, enhanced: &str, text: &str) -> bool {
        if code >= 400 {
            self.errors += 1;
        }
        let line = self.line(code, enhanced, text);
        self.stream.write(line.as_bytes()).await.is_ok()
    }

    async fn send_raw(&mut self, bytes: &[u8]) -> bool {
        self.stream.write(bytes).await.is_ok()
    }

    /// End the session. With TLS, a close_notify goes first unless the option says not.
    async fn close(&mut self) {
        let stream = std::mem::replace(&mut self.stream, Stream::Gone);
        match stream {
            Stream::Plain(mut s) => {
                let _ = s.shutdown().await;
            }
            Stream::Tls(mut s) => {
                if !self.opts.no_close_notify {
                    let _ = tokio::time::timeout(Duration::from_secs(2), s.shutdown()).await;
                }
                // Without the shutdown, dropping the stream closes the socket with no
                // alert (an "unclean" TLS close, as many servers do).
            }
            Stream::Gone => {}
        }
    }

    async fn fill(&mut self) -> bool {
        let mut buf = [0u8; 8192];
        match tokio::time::timeout(IDLE_TIMEOUT, self.stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                self.inbuf.extend_from_slice(&buf[..n]);
                true
            }
            _ => false,
        }
    }

    /// Read one line of at most `limit` octets, terminator included. An over-long line
    /// is read to its end (bounded by the idle timeout and a total cap) and reported.
    async fn read_line(&mut self, limit: usize) -> Line {
        self.read_line_cut(limit, None).await
    }

    /// [`Session::read_line`], but a line still unfinished after `cut` octets is
    /// returned there and its rest read as another line (a flawed variant only).
    async fn read_line_cut(&mut self, limit: usize, cut: Option<usize>) -> Line {
        let mut discarded = 0usize;
        let mut too_long = false;
        loop {
            if let Some(pos) = self.inbuf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.inbuf.drain(..=pos).collect();
                if too_long || line.len() > limit {
                    return Line::TooLong;
                }
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                    return Line::Crlf(line);
                }
                return Line::BareLf;
            }
            if let Some(cut) = cut.filter(|&c| self.inbuf.len() >= c) {
                let line: Vec<u8> = self.inbuf.drain(..cut).collect();
                return Line::Crlf(line);
            }
            if self.inbuf.len() > limit {
                too_long = true;
                discarded += self.inbuf.len();
                self.inbuf.clear();
                if discarded > 16 * 1024 * 1024 {
                    return Line::Gone;
                }
            }
            if !self.fill().await {
                return Line::Gone;
            }
        }
    }

    async fn run(&mut self) {
        if self.opts.slow_greeting {
            tokio::time::sleep(GREETING_DELAY).await;
        }
        let greeting = format!("220 {HOSTNAME} double SMTP service at your disposal\r\n");
        if !self.send_raw(greeting.as_bytes()).await {
            return;
        }
        // Bounded: each round reads at least one line or ends the session, and every
        // read is bounded by the idle timeout.
        loop {
            if self.errors >= ERROR_LIMIT {
                self.send(421, "4.7.0", "Too many errors, closing").await;
                break;
            }
            let limit = if self.auth_offered() {
                SASL_LINE
            } else {
                MAIL_LINE_WITH_AUTH
            };
            let line = match self.read_line(limit).await {
                Line::Crlf(l) => l,
                Line::BareLf => {
                    // RFC 5321 §2.3.8: lines end with CRLF only. The double refuses the
                    // line and goes on (Postfix 3.9 would disconnect).
                    if !self
                        .send(500, "5.5.2", "Refused: line ended in a bare LF")
                        .await
                    {
                        break;
                    }
                    continue;
                }
                Line::TooLong => {
                    if !self.send(500, "5.5.2", "That line is far too long").await {
                        break;
                    }
                    continue;
                }
                Line::Gone => {
                    let _ = self.send(421, "4.4.2", "Idle for too long, goodbye").await;
                    break;
                }
            };
            match self.command(&line).await {
                Next::Continue => {}
                Next::Close => break,
                Next::Linger => {
                    // A flawed variant: stay connected after QUIT until the client
                    // leaves (bounded by the idle timeout).
                    while self.fill().await {
                        self.inbuf.clear();
                    }
                    break;
                }
            }
        }
        self.close().await;
    }

    async fn command(&mut self, line: &[u8]) -> Next {
        let keep = |ok: bool| if ok { Next::Continue } else { Next::Close };
        if line.iter().any(|&b| b == b'\r' || b == 0 || b >= 0x80) {
            // RFC 5321 §2.3.8 (bare CR), §4.1.1 (commands are ASCII).
            return keep(
                self.send(
                    500,
                    "5.5.2",
                    "Refused: stray CR, NUL or 8-bit octet in command",
                )
                .await,
            );
        }
        let text = String::from_utf8_lossy(line).into_owned();
        let (verb, rest) = match text.find(' ') {
            Some(i) => (&text[..i], text[i + 1..].to_owned()),
            None => (text.as_str(), String::new()),
        };
        let verb = verb.to_ascii_uppercase();
        // Every command but MAIL (and AUTH, which has its own limit) must fit 512.
        let limit = match verb.as_str() {
            "AUTH" => SASL_LINE,
            "MAIL" if self.auth_offered() => MAIL_LINE_WITH_AUTH,
            _ => COMMAND_LINE,
        };
        if line.len() + 2 > limit {
            return keep(self.send(500, "5.5.2", "That line is far too long").await);
        }
        match verb.as_str() {
            "EHLO" | "HELO" => keep(self.hello(&verb, &rest).await),
            "MAIL" => keep(self.mail(&rest).await),
            "RCPT" => keep(self.rcpt(&rest).await),
            "DATA" => self.data(&rest).await,
            "RSET" => {
                self.in_transaction = false;
                self.recipients = 0;
                keep(self.send(250, "2.0.0", "State cleared").await)
            }
            "NOOP" => keep(self.send(250, "2.0.0", "Nothing done, as asked").await),
            "VRFY" => keep(
                self.send(252, "2.5.0", "Will not verify, but will try to deliver")
                    .await,
            ),
            "HELP" => keep(self.send(214, "2.0.0", "See RFC 5321 and RFC 4954").await),
            "QUIT" => {
                let ok = self.send(221, "2.0.0", "Closing, see you").await;
                if ok && self.flaw(Flaw::NoCloseAfterQuit) {
                    Next::Linger
                } else {
                    Next::Close
                }
            }
            "STARTTLS" => self.starttls(&rest).await,
            "AUTH" => keep(self.auth(&rest).await),
            _ => keep(self.send(500, "5.5.1", "Unknown command").await),
        }
    }

    async fn hello(&mut self, verb: &str, arg: &str) -> bool {
        if arg.trim().is_empty() {
            return self.send(501, "5.5.4", "Say who you are").await;
        }
        self.in_transaction = false;
        self.recipients = 0;
        if verb == "HELO" {
            self.greeted = Greeted::Helo;
            return self
                .send_raw(format!("250 {HOSTNAME}\r\n").as_bytes())
                .await;
        }
        self.greeted = Greeted::Ehlo;
        let mut keywords: Vec<String> = Vec::new();
        if self.advertises_enhanced() {
            keywords.push("ENHANCEDSTATUSCODES".into());
        }
        keywords.push("HELP".into());
        if !self.stream.is_tls() || self.flaw(Flaw::StarttlsAfterTls) {
            keywords.push("STARTTLS".into());
        }
        if self.opts.pipelining {
            keywords.push("PIPELINING".into());
        }
        let mut auth = "AUTH CRAM-MD5 LOGIN PLAIN".to_owned();
        if self.shared.cfg.scram {
            auth.push_str(" SCRAM-SHA-256");
            if self.plus_offered() {
                auth.push_str(" SCRAM-SHA-256-PLUS");
            }
        }
        if self.auth_offered() {
            if self.opts.auth_last {
                keywords.reverse();
                keywords.push(auth);
            } else {
                keywords.insert(0, auth);
            }
        }
        let mut out = format!("250-{HOSTNAME} greets you\r\n");
        for (i, k) in keywords.iter().enumerate() {
            let sep = if i + 1 == keywords.len() { ' ' } else { '-' };
            out.push_str(&format!("250{sep}{k}\r\n"));
        }
        if keywords.is_empty() {
            out = format!("250 {HOSTNAME} greets you\r\n");
        }
        self.send_raw(out.as_bytes()).await
    }

    fn mail_refusal(&self) -> Option<(u16, &'static str, &'static str)> {
        if self.greeted == Greeted::No {
            return Some((503, "5.5.1", "Say EHLO first"));
        }
        if self.in_transaction {
            return Some((503, "5.5.1", "One sender at a time"));
        }
        if self.opts.tls_auth_only && !self.stream.is_tls() {
            // RFC 3207 §4: "530 Must issue a STARTTLS command first".
            return Some((530, "5.7.0", "Issue STARTTLS first"));
        }
        if self.opts.require_auth && !self.authenticated {
            // RFC 4954 §6: "530 5.7.0 Authentication required".
            return Some((530, "5.7.0", "Log in first"));
        }
        None
    }

    async fn mail(&mut self, rest: &str) -> bool {
        if let Some((code, enh, text)) = self.mail_refusal() {
            return self.send(code, enh, text).await;
        }
        let Some(args) = strip_prefix_ci(rest, "FROM:") else {
            return self
                .send(501, "5.5.4", "Expected MAIL FROM:<address>")
                .await;
        };
        let Some((_path, params)) = split_path(args.trim_start()) else {
            return self.send(501, "5.1.7", "Malformed sender address").await;
        };
        for param in params.split(' ').filter(|p| !p.is_empty()) {
            let (name, value) = match param.find('=') {
                Some(i) => (&param[..i], Some(&param[i + 1..])),
                None => (param, None),
            };
            if name.eq_ignore_ascii_case("AUTH")
                && self.greeted == Greeted::Ehlo
                && self.auth_offered()
            {
                // RFC 4954 §5: AUTH=<mailbox> as xtext, or AUTH=<>.
                let ok = match value {
                    Some("<>") => true,
                    Some(v) => xtext_valid(v),
                    None => false,
                };
                if !ok {
                    return self.send(501, "5.5.4", "Bad AUTH= value").await;
                }
            } else {
                // RFC 5321 §4.1.1.11: parameters of extensions not offered.
                return self
                    .send(555, "5.5.4", "Parameter not recognised here")
                    .await;
            }
        }
        self.in_transaction = true;
        self.recipients = 0;
        self.send(250, "2.1.0", "Sender noted").await
    }

    async fn rcpt(&mut self, rest: &str) -> bool {
        if !self.in_transaction {
            return self.send(503, "5.5.1", "MAIL comes before RCPT").await;
        }
        let Some(args) = strip_prefix_ci(rest, "TO:") else {
            return self.send(501, "5.5.4", "Expected RCPT TO:<address>").await;
        };
        match split_path(args.trim_start()) {
            Some((path, params)) if !path.is_empty() && params.trim().is_empty() => {}
            Some((_, params)) if !params.trim().is_empty() => {
                return self
                    .send(555, "5.5.4", "Parameter not recognised here")
                    .await;
            }
            _ => return self.send(501, "5.1.3", "Malformed recipient address").await,
        }
        if self.recipients >= 100 {
            return self.send(452, "4.5.3", "Enough recipients for now").await;
        }
        self.recipients += 1;
        self.send(250, "2.1.5", "Recipient noted").await
    }

    async fn data(&mut self, rest: &str) -> Next {
        let keep = |ok: bool| if ok { Next::Continue } else { Next::Close };
        if !rest.trim().is_empty() {
            return keep(self.send(501, "5.5.4", "DATA takes no argument").await);
        }
        if !self.in_transaction {
            return keep(self.send(503, "5.5.1", "MAIL comes before DATA").await);
        }
        if self.recipients == 0 {
            return keep(self.send(503, "5.5.1", "RCPT comes before DATA").await);
        }
        if !self
            .send_raw(b"354 Go ahead, finish with a line holding only a period\r\n")
            .await
        {
            return Next::Close;
        }
        // RFC 5321 §4.1.1.4: the data ends at CRLF "." CRLF, and only there. The
        // virtual CRLF before the first octet lets an immediate "." end it.
        let mut tail: Vec<u8> = b"\r\n".to_vec();
        let mut size = 0usize;
        let lenient = self.flaw(Flaw::BareLfDotEndsData);
        loop {
            let mut end = None;
            for (i, &b) in self.inbuf.iter().enumerate() {
                tail.push(b);
                if tail.len() > 5 {
                    tail.remove(0);
                }
                let strict_end = tail.ends_with(b"\r\n.\r\n");
                let lenient_end = tail.ends_with(b"\n.\n") || tail.ends_with(b"\n.\r\n");
                if strict_end || (lenient && lenient_end) {
                    end = Some(i);
                    break;
                }
            }
            match end {
                Some(i) => {
                    size += i;
                    self.inbuf.drain(..=i);
                    break;
                }
                None => {
                    size += self.inbuf.len();
                    self.inbuf.clear();
                    if size > 8 * MAX_MESSAGE {
                        self.send(552, "5.3.4", "Message far too big, closing")
                            .await;
                        return Next::Close;
                    }
                    if !self.fill().await {
                        return Next::Close;
                    }
                }
            }
        }
        self.in_transaction = false;
        self.recipients = 0;
        if size > MAX_MESSAGE {
            return keep(self.send(552, "5.3.4", "Message too big").await);
        }
        keep(
            self.send(250, "2.0.0", "Message accepted for delivery")
                .await,
        )
    }

    async fn starttls(&mut self, rest: &str) -> Next {
        let keep = |ok: bool| if ok { Next::Continue } else { Next::Close };
        if !rest.is_empty() {
            // RFC 3207 §4: "STARTTLS" has no parameters.
            return keep(self.send(501, "5.5.4", "STARTTLS takes no argument").await);
        }
        if self.stream.is_tls() {
            return keep(self.send(503, "5.5.1", "TLS is already on").await);
        }
        if !self.send(220, "2.0.0", "Go ahead with TLS").await {
            return Next::Close;
        }
        if !self.flaw(Flaw::StarttlsInjection) {
            // RFC 3207 §4.2 / CVE-2011-0411: nothing sent before the handshake counts.
            self.inbuf.clear();
        }
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Next::Close;
        };
        let accept = self.shared.tls.accept(tcp);
        match tokio::time::timeout(IDLE_TIMEOUT, accept).await {
            Ok(Ok(tls)) => {
                self.exporter = tls::tls_exporter(tls.get_ref().1);
                self.stream = Stream::Tls(Box::new(tls));
                // RFC 3207 §4.2: back to the initial state; EHLO again.
                self.greeted = Greeted::No;
                self.authenticated = false;
                self.in_transaction = false;
                self.recipients = 0;
                Next::Continue
            }
            _ => Next::Close,
        }
    }

    async fn auth(&mut self, rest: &str) -> bool {
        if self.greeted != Greeted::Ehlo {
            // AUTH is a service extension; HELO opens none (RFC 5321 §4.1.1.1).
            return self.send(503, "5.5.1", "Say EHLO before AUTH").await;
        }
        if self.authenticated && !self.flaw(Flaw::SecondAuthAccepted) {
            return self.send(503, "5.5.1", "You are logged in already").await;
        }
        if self.in_transaction && !self.flaw(Flaw::AuthInTransaction) {
            return self
                .send(503, "5.5.1", "Not inside a mail transaction")
                .await;
        }
        let mut words = rest.split(' ');
        let mech = words.next().unwrap_or("").to_ascii_uppercase();
        let initial = words.next();
        if mech.is_empty() || words.next().is_some() {
            return self
                .send(501, "5.5.4", "Usage: AUTH mechanism [response]")
                .await;
        }
        let scram = match mech.as_str() {
            "SCRAM-SHA-256" if self.shared.cfg.scram => Some(false),
            "SCRAM-SHA-256-PLUS" if self.plus_offered() => Some(true),
            _ => None,
        };
        if scram.is_none() && !matches!(mech.as_str(), "PLAIN" | "LOGIN" | "CRAM-MD5") {
            // RFC 4954 §4: an unsupported mechanism gets 504.
            return self
                .auth_failed(504, "5.5.4", "No such mechanism here")
                .await;
        }
        if !self.auth_offered() {
            // RFC 4954 §6: 538 5.7.11, encryption required for the mechanism.
            return self
                .send(538, "5.7.11", "Use STARTTLS before logging in")
                .await;
        }
        if mech == "CRAM-MD5" && initial.is_some() {
            // RFC 4954 §4: an initial response to a mechanism in which the client does
            // not begin "MUST" get 501; with enhanced codes it "SHOULD" be 5.7.0.
            return self
                .auth_failed(501, "5.7.0", "CRAM-MD5 takes no initial response")
                .await;
        }
        let mut mechanism: Box<dyn ServerMechanism> = match mech.as_str() {
            _ if scram.is_some() => self.scram_server(scram == Some(true)),
            "PLAIN" => Box::new(PlainServer::new(&self.shared.sasl)),
            "LOGIN" => Box::new(LoginServer::new(&self.shared.sasl)),
            "CRAM-MD5" => {
                let challenge = self.cram_challenge();
                Box::new(CramMd5Server::with_challenge(&self.shared.sasl, challenge))
            }
            _ => {
                // RFC 4954 §4: an unsupported mechanism gets 504.
                return self
                    .auth_failed(504, "5.5.4", "No such mechanism here")
                    .await;
            }
        };
        let first = match initial {
            None => None,
            // RFC 4954 §4: "=" is an empty initial response.
            Some("=") => Some(Vec::new()),
            Some(b64) => match self.decode(b64) {
                Some(bytes) => Some(bytes),
                None => {
                    return self
                        .auth_failed(501, "5.5.2", "Initial response is not base64")
                        .await;
                }
            },
        };
        let mut step = mechanism.step(first.as_deref());
        // Bounded: each mechanism ends within a few steps, and each round reads a line.
        for _ in 0..8 {
            match step {
                ServerStep::Challenge(c) => {
                    let c = match c.as_slice() {
                        c if c == USERNAME_PROMPT => b"User Name".to_vec(),
                        c if c == PASSWORD_PROMPT => b"Password".to_vec(),
                        _ => c,
                    };
                    let line = if c.is_empty() && self.flaw(Flaw::Bare334) {
                        "334\r\n".to_owned()
                    } else {
                        format!("334 {}\r\n", STANDARD.encode(&c))
                    };
                    if !self.send_raw(line.as_bytes()).await {
                        return false;
                    }
                    // A flawed variant cuts lines where its small buffer ends.
                    let cut = self.flaw(Flaw::SaslLineCut).then_some(1000);
                    let reply = match self.read_line_cut(SASL_LINE, cut).await {
                        Line::Crlf(l) => l,
                        Line::BareLf => {
                            return self
                                .auth_failed(501, "5.5.2", "Response must end in CRLF")
                                .await;
                        }
                        Line::TooLong => {
                            // RFC 4954 §6.
                            return self
                                .auth_failed(500, "5.5.6", "Response line too long")
                                .await;
                        }
                        Line::Gone => return false,
                    };
                    if reply == b"*" {
                        if self.flaw(Flaw::CancelKeepsExchangeOpen) {
                            step = ServerStep::Challenge(Vec::new());
                            continue;
                        }
                        // RFC 4954 §4 and §6: 501 5.7.0 for a cancelled exchange.
                        return self
                            .auth_failed(501, "5.7.0", "Cancelled, as you wish")
                            .await;
                    }
                    let Some(bytes) = std::str::from_utf8(&reply)
                        .ok()
                        .and_then(|s| self.decode(s))
                    else {
                        return self
                            .auth_failed(501, "5.5.2", "Response is not base64")
                            .await;
                    };
                    step = mechanism.step(Some(&bytes));
                }
                ServerStep::Success {
                    additional: Some(data),
                    ..
                } => {
                    // RFC 4954 §4 lets the server put additional data on the 235 line;
                    // this double sends it as a last challenge (RFC 4422 §3.6) and
                    // wants an empty response (Postfix and the reference do the same).
                    let line = format!("334 {}\r\n", STANDARD.encode(&data));
                    if !self.send_raw(line.as_bytes()).await {
                        return false;
                    }
                    match self.read_line(SASL_LINE).await {
                        Line::Crlf(l) if l.is_empty() => {
                            self.authenticated = true;
                            return self.send(235, "2.7.0", "Welcome aboard").await;
                        }
                        Line::Crlf(l) if l == b"*" => {
                            return self
                                .auth_failed(501, "5.7.0", "Cancelled, as you wish")
                                .await;
                        }
                        Line::Gone => return false,
                        _ => {
                            return self
                                .auth_failed(501, "5.5.2", "Expected an empty response")
                                .await;
                        }
                    }
                }
                ServerStep::Success { .. } => {
                    self.authenticated = true;
                    return self.send(235, "2.7.0", "Welcome aboard").await;
                }
                ServerStep::Failure(e) => {
                    return match e {
                        SaslError::SchemeUnusable { .. } => {
                            self.auth_failed(454, "4.7.0", "Try again later").await
                        }
                        e if e.is_malformed() => {
                            self.auth_failed(501, "5.5.2", "Malformed SASL message")
                                .await
                        }
                        _ => {
                            self.auth_failed(535, "5.7.8", "Those credentials do not work")
                                .await
                        }
                    };
                }
            }
        }
        self.auth_failed(454, "4.7.0", "Exchange went on too long")
            .await
    }

    async fn auth_failed(&mut self, code: u16, enhanced: &str, text: &str) -> bool {
        if self.opts.tarpit {
            tokio::time::sleep(TARPIT).await;
        }
        self.send(code, enhanced, text).await
    }

    /// Strict base64 (RFC 4648 §4 alphabet, padding only at the end, RFC 4954 §4), or
    /// for the flawed variant whatever survives dropping the other characters.
    fn decode(&self, s: &str) -> Option<Vec<u8>> {
        if self.flaw(Flaw::LenientBase64) {
            let kept: String = s
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '+' || *c == '/')
                .collect();
            let padded = format!("{kept}{}", "=".repeat((4 - kept.len() % 4) % 4));
            return STANDARD
                .decode(padded.as_bytes())
                .ok()
                .or_else(|| Some(Vec::new()));
        }
        STANDARD.decode(s.as_bytes()).ok()
    }

    fn cram_challenge(&mut self) -> Vec<u8> {
        let a = self.rng.next_u64();
        let b = self.rng.next_u64();
        if self.opts.hex_cram_challenge {
            format!("<{a:016x}{b:08x}@{HOSTNAME}>").into_bytes()
        } else {
            format!("<{}.{}@{HOSTNAME}>", a % 100_000, b % 10_000_000_000).into_bytes()
        }
    }
}

enum Next {
    Continue,
    Close,
    /// Stay after QUIT (a flawed variant only).
    Linger,
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `<path> params`: the path without brackets, and the rest.
fn split_path(s: &str) -> Option<(&str, &str)> {
    let s = s.strip_prefix('<')?;
    let end = s.find('>')?;
    let path = &s[..end];
    if path.contains('<') || path.contains(' ') {
        return None;
    }
    let rest = &s[end + 1..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    Some((path, rest))
}

/// RFC 3461 §4: xtext = *( xchar / hexchar ); xchar is `!`..`~` except `+` and `=`;
/// hexchar is `+` and two upper-case hex digits.
fn xtext_valid(v: &str) -> bool {
    let b = v.as_bytes();
    if b.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex = |c: u8| c.is_ascii_digit() || (b'A'..=b'F').contains(&c);
                if i + 2 >= b.len() {
                    return false;
                }
                if !(hex(b[i + 1]) && hex(b[i + 2])) {
                    return false;
                }
                i += 3;
            }
            b'=' => return false,
            c if (b'!'..=b'~').contains(&c) => i += 1,
            _ => return false,
        }
    }
    true
}

/// The flawed SCRAM-SHA-256-PLUS of [`Flaw::IgnoresChannelBinding`]: it takes the
/// binding data from the client's own `c=` instead of from the TLS connection. Built
/// from the reference's SCRAM arithmetic: the client-final message is checked by a
/// fresh server with the same nonce and salt secret, given the client's claimed data.
#[derive(Debug)]
struct TrustingScram {
    ctx: ServerContext,
    nonce: String,
    secret: Vec<u8>,
    binding: ServerBinding,
    first: Option<Vec<u8>>,
    inner: Option<ScramServer>,
}

impl TrustingScram {
    fn server(&self, binding: ServerBinding) -> ScramServer {
        ScramServer::with_nonce(
            ScramHash::Sha256,
            &self.ctx,
            self.nonce.clone(),
            Secret::new(self.secret.clone()),
        )
        .with_binding(true, binding)
    }

    /// What the client's own `c=` claims: a GS2 header and binding data. The header
    /// in the client-first message is not part of SCRAM's AuthMessage (RFC 5802 §3),
    /// so the replayed client-first carries the header from `c=` and the exchange
    /// verifies whatever `c=` says: the header is not compared either.
    fn claimed(first: &[u8], last: &[u8]) -> Option<(ServerBinding, Vec<u8>)> {
        let c = std::str::from_utf8(last)
            .ok()?
            .split(',')
            .next()?
            .strip_prefix("c=")?;
        let c = STANDARD.decode(c).ok()?;
        let header_len = c.iter().enumerate().filter(|(_, b)| **b == b',').nth(1)?.0 + 1;
        let (header, data) = c.split_at(header_len);
        let name = header.strip_prefix(b"p=")?.split(|b| *b == b',').next()?;
        let cb_type = CbType::from_name(name)?;
        let first_header_len = first
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b',')
            .nth(1)?
            .0
            + 1;
        let mut replayed = header.to_vec();
        replayed.extend_from_slice(&first[first_header_len..]);
        let binding = ServerBinding {
            bindings: ChannelBindings::new().with(cb_type, data.to_vec()),
            plus_advertised: true,
        };
        Some((binding, replayed))
    }
}

impl ServerMechanism for TrustingScram {
    fn mechanism(&self) -> authspec_reference::sasl::Mechanism {
        authspec_reference::sasl::Mechanism::ScramSha256Plus
    }

    fn step(&mut self, input: Option<&[u8]>) -> ServerStep {
        if let Some(inner) = &mut self.inner {
            return inner.step(input);
        }
        match (&self.first, input) {
            (None, None) => ServerStep::Challenge(Vec::new()),
            (None, Some(first)) => {
                self.first = Some(first.to_vec());
                self.server(self.binding.clone()).step(Some(first))
            }
            (Some(first), last) => {
                let first = first.clone();
                let last = last.unwrap_or_default();
                let (binding, first) =
                    Self::claimed(&first, last).unwrap_or_else(|| (self.binding.clone(), first));
                let mut inner = self.server(binding);
                let _ = inner.step(Some(&first));
                let step = inner.step(Some(last));
                self.inner = Some(inner);
                step
            }
        }
    }
}
