//! Structured session fuzzing: whole SMTP dialogs against the server and client
//! session state machines, decoded from the fuzzer's bytes with `arbitrary`.
//!
//! The byte-level targets (`command`, `reply`, the mechanisms) check one parser each;
//! these check the rules that only show over a dialog: who may authenticate, what
//! survives STARTTLS, when the session must close, and that nothing grows without
//! bound. The oracles are written from the RFCs and Postfix's documented behaviour,
//! not from the session code, so a disagreement is a bug in one of the two.
//!
//! The user's password is 24 random alphanumerics fixed at build time. The fuzzer
//! cannot guess it, so a session that authenticates without an operation that
//! carried it (a [`ServerOp::ValidCredentials`], or bytes in which the oracle finds
//! the password raw or base64-decoded) has authenticated someone it should not have.
//! It is a constant rather than drawn per run so that a crash replays byte for byte.

use crate::policy::client::ClientConfig;
use crate::policy::maincf::MainCf;
use crate::policy::server::ServerConfig;
use crate::sasl::credentials::MemoryStore;
use crate::sasl::{ClientCredentials, CredentialStore, Mechanism, Secret, SeededRandom};
use crate::smtp::client::{
    AuthPlan, ClientEvent, ClientPlan, ClientSession, MailPlan, MechanismChooser, StartTlsPolicy,
};
use crate::smtp::reply::{self, ReplyLimits, Separator};
use crate::smtp::sasl_frame;
use crate::smtp::server::{Delivery, Event, Peer, ServerSession};
use arbitrary::{Arbitrary, Unstructured};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

/// The one user of the server's store, and the client's identity.
pub const USER: &str = "fuzzuser@example.org";
/// See the module documentation: unguessable, constant for replay.
pub const PASSWORD: &[u8] = b"wRlnyFRASZzBCao55igAj3BT";

/// At most this many operations per input: long enough for EHLO, STARTTLS, EHLO,
/// AUTH with a few steps, a transaction and QUIT, short enough to stay fast.
const MAX_OPS: usize = 64;

// ---- server ------------------------------------------------------------------

/// A well-formed command, rendered by [`CommandOp::render`]. Arguments are picked
/// from small sets so that the fuzzer spends its effort on orderings, not spelling.
#[derive(Arbitrary, Debug, Clone)]
pub enum CommandOp {
    Ehlo(Domain),
    Helo(Domain),
    Auth {
        mech: Mechanism,
        ir: Option<Vec<u8>>,
    },
    /// `AUTH` with a name that is not a mechanism.
    AuthUnknown,
    Mail {
        from: Address,
        size: Option<u32>,
        auth: Option<Address>,
        unknown_param: bool,
    },
    Rcpt(Address),
    Data,
    /// A message body, dot-stuffed and ended with `.`.
    Body(Vec<u8>),
    StartTls,
    Rset,
    Noop,
    Vrfy,
    Expn,
    Help,
    Bdat,
    Quit,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Domain {
    Client,
    Literal,
    Uppercase,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Address {
    Null,
    User,
    Other,
    Postmaster,
    Remote,
}

impl Domain {
    fn text(self) -> &'static str {
        match self {
            Domain::Client => "client.example.com",
            Domain::Literal => "[192.0.2.1]",
            Domain::Uppercase => "CLIENT.EXAMPLE.COM",
        }
    }
}

impl Address {
    fn path(self) -> &'static str {
        match self {
            Address::Null => "<>",
            Address::User => "<fuzzuser@example.org>",
            Address::Other => "<other@example.org>",
            Address::Postmaster => "<Postmaster>",
            Address::Remote => "<someone@remote.example.net>",
        }
    }

    fn xtext(self) -> &'static str {
        match self {
            Address::Null => "<>",
            Address::User => "fuzzuser@example.org",
            Address::Other => "other@example.org",
            Address::Postmaster => "postmaster",
            Address::Remote => "someone+2Bx@remote.example.net",
        }
    }
}

impl CommandOp {
    pub fn render(&self) -> Vec<u8> {
        let line = match self {
            CommandOp::Ehlo(d) => format!("EHLO {}", d.text()),
            CommandOp::Helo(d) => format!("HELO {}", d.text()),
            CommandOp::Auth { mech, ir: None } => format!("AUTH {}", mech.name()),
            CommandOp::Auth { mech, ir: Some(ir) } => format!(
                "AUTH {} {}",
                mech.name(),
                sasl_frame::encode_initial_response(ir)
            ),
            CommandOp::AuthUnknown => "AUTH X-UNKNOWN".into(),
            CommandOp::Mail {
                from,
                size,
                auth,
                unknown_param,
            } => {
                let mut l = format!("MAIL FROM:{}", from.path());
                if let Some(s) = size {
                    l.push_str(&format!(" SIZE={s}"));
                }
                if let Some(a) = auth {
                    l.push_str(&format!(" AUTH={}", a.xtext()));
                }
                if *unknown_param {
                    l.push_str(" X-FUZZ=1");
                }
                l
            }
            CommandOp::Rcpt(a) => format!("RCPT TO:{}", a.path()),
            CommandOp::Data => "DATA".into(),
            CommandOp::Body(body) => {
                let mut out = crate::smtp::client::dot_stuff(body);
                out.extend_from_slice(b".\r\n");
                return out;
            }
            CommandOp::StartTls => "STARTTLS".into(),
            CommandOp::Rset => "RSET".into(),
            CommandOp::Noop => "NOOP".into(),
            CommandOp::Vrfy => "VRFY fuzzuser".into(),
            CommandOp::Expn => "EXPN staff".into(),
            CommandOp::Help => "HELP".into(),
            CommandOp::Bdat => "BDAT 0 LAST".into(),
            CommandOp::Quit => "QUIT".into(),
        };
        let mut out = line.into_bytes();
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// One thing the client (or the network, or the clock) does to the server.
#[derive(Arbitrary, Debug, Clone)]
pub enum ServerOp {
    Command(CommandOp),
    /// Any bytes in one `receive`.
    Raw(Vec<u8>),
    /// A command split over several `receive` calls at the given chunk sizes.
    Partial {
        command: CommandOp,
        cuts: Vec<u8>,
    },
    /// Several commands in one `receive` (pipelining, and injection after STARTTLS).
    Pipeline(Vec<CommandOp>),
    /// The driver finished a TLS handshake the server asked for.
    TlsEstablished,
    TlsFailed,
    Timeout,
    Eof,
    /// One line answering a `334`: base64 of the bytes.
    SaslResponse(Vec<u8>),
    /// `*`.
    SaslCancel,
    /// A correct exchange for [`USER`]: `AUTH PLAIN` with an initial response, or
    /// `AUTH LOGIN` with the user and then the password pipelined.
    ValidCredentials {
        login: bool,
    },
}

/// The server configurations the input chooses between: each turns on a different
/// part of the session's rules.
const SERVER_PROFILES: &[&str] = &[
    // STARTTLS offered, AUTH in plaintext too.
    "smtpd_tls_security_level = may\n",
    // AUTH only after STARTTLS (RFC 4954 §4, Postfix smtpd_tls_auth_only).
    "smtpd_tls_security_level = may\nsmtpd_tls_auth_only = yes\n",
    // The `AUTH=` capability line for old clients; bare newlines tolerated.
    "broken_sasl_auth_clients = yes\nsmtpd_forbid_bare_newline = no\n",
    // A small hard error limit and message size, to reach the limits quickly.
    "smtpd_hard_error_limit = 3\nmessage_size_limit = 200\nsmtpd_tls_security_level = may\n",
    // Everything but EHLO/STARTTLS/NOOP/RSET/QUIT refused before TLS.
    "smtpd_tls_security_level = encrypt\n",
    // Relay only for authenticated clients; plaintext mechanisms only under TLS.
    "smtpd_tls_security_level = may\nsmtpd_relay_restrictions = permit_sasl_authenticated, reject\n\
     smtpd_sasl_security_options = noanonymous, noplaintext\n\
     smtpd_sasl_tls_security_options = noanonymous\n",
    // Wrapper mode: TLS from the first byte, no STARTTLS.
    "smtpd_tls_wrappermode = yes\nsmtpd_tls_security_level = may\nsmtpd_hard_error_limit = 5\n",
];

/// A server configuration and whether it is a wrapper-mode (TLS from the start)
/// listener.
type Profile = (Arc<ServerConfig>, bool);

fn load_server_config(profile: usize) -> Option<Profile> {
    let text = SERVER_PROFILES.get(profile)?;
    let cf = MainCf::parse(
        &format!("myhostname = mx.example.org\nsmtpd_sasl_local_domain = example.org\n{text}"),
        "fuzz",
    )
    .ok()?;
    let config = ServerConfig::from_main_cf(&cf).ok()?;
    let wrapper = config.tls_wrappermode;
    Some((Arc::new(config), wrapper))
}

/// The profiles, parsed once per process: configurations are immutable and shared
/// by `Arc`, and parsing main.cf on every input cost a third of the executions.
fn server_config(profile: usize) -> Option<Profile> {
    static CONFIGS: OnceLock<Vec<Option<Profile>>> = OnceLock::new();
    CONFIGS
        .get_or_init(|| (0..SERVER_PROFILES.len()).map(load_server_config).collect())
        .get(profile)
        .cloned()
        .flatten()
}

fn server_store() -> Arc<dyn CredentialStore> {
    static STORE: OnceLock<Arc<dyn CredentialStore>> = OnceLock::new();
    Arc::clone(STORE.get_or_init(|| {
        let mut store = MemoryStore::new();
        store.insert_plain(USER, Secret::new(PASSWORD.to_vec()));
        Arc::new(store)
    }))
}

/// The password, as the fuzzer might have slipped it in: raw, or inside a base64
/// token of any line (PLAIN's `\0user\0password`, LOGIN's second response).
fn carries_password(bytes: &[u8]) -> bool {
    if contains(bytes, PASSWORD) {
        return true;
    }
    bytes
        .split(|&b| b == b'\n' || b == b'\r' || b == b' ')
        // Base64 decodes at most 3 octets per 4 characters, so a token shorter than
        // this cannot hold the password; decoding it (twice) would only cost time.
        .filter(|t| t.len() >= MIN_BASE64_TOKEN)
        .any(|t| {
            sasl_frame::decode_strict(t).is_ok_and(|d| contains(&d, PASSWORD))
                || lenient_base64(t).is_some_and(|d| contains(&d, PASSWORD))
        })
}

fn lenient_base64(t: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(t).ok()
}

/// The shortest base64 text that decodes to [`PASSWORD`]'s length.
const MIN_BASE64_TOKEN: usize = (PASSWORD.len() * 4).div_ceil(3);

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    // memmem rather than a comparison per window: under the fuzzer each of those
    // comparisons is an intercepted memcmp, and this runs over every input and output.
    !needle.is_empty() && memchr::memmem::find(hay, needle).is_some()
}

fn valid_credentials(login: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if login {
        out.extend_from_slice(b"AUTH LOGIN ");
        out.extend_from_slice(sasl_frame::encode_initial_response(USER.as_bytes()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(sasl_frame::encode_response(PASSWORD).as_bytes());
        out.extend_from_slice(b"\r\n");
    } else {
        let mut msg = vec![0];
        msg.extend_from_slice(USER.as_bytes());
        msg.push(0);
        msg.extend_from_slice(PASSWORD);
        out.extend_from_slice(b"AUTH PLAIN ");
        out.extend_from_slice(sasl_frame::encode_initial_response(&msg).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What the oracle knows about the dialog so far.
#[derive(Debug, Default)]
struct ServerOracle {
    /// The password has been sent (or slipped in): authenticating is allowed.
    credentials_sent: bool,
    /// 4xx/5xx replies that count towards `smtpd_hard_error_limit`.
    errors: u32,
    hard_error_limit: u32,
    /// A reply that ends the session (221, 421, 521) went out, or the driver closed it.
    closed: bool,
    /// The server asked for a TLS handshake that has not happened yet.
    tls_pending: bool,
    tls: bool,
    total_output: usize,
}

/// The limits the server replies are held to: a reply line is at most 512 octets
/// (RFC 5321 §4.5.3.1.5) except a `334` challenge, which RFC 4954 §4 bounds only by
/// the SASL line limit.
const SERVER_REPLY_LIMITS: ReplyLimits = ReplyLimits {
    max_line: 12288 + 6,
    max_lines: 64,
};

impl ServerOracle {
    /// Check the output of one operation that fed `input_len` octets with `lines`
    /// line feeds. Returns the codes of the replies, in order.
    fn check_output(&mut self, out: &[u8], input_len: usize, lines: usize) -> Vec<u16> {
        // Bounded: at most one reply per line, plus one for an over-long piece of
        // each 512 octets, plus the closing 421; no reply is longer than an EHLO.
        let replies_bound = lines + input_len / 256 + 3;
        assert!(
            out.len() <= 1024 * replies_bound,
            "{} octets of output for {input_len} octets of input",
            out.len()
        );
        self.total_output = self.total_output.saturating_add(out.len());

        let mut codes = Vec::new();
        let mut rest = out;
        while !rest.is_empty() {
            assert!(
                !self.closed,
                "reply after the session ended: {:?}",
                String::from_utf8_lossy(rest)
            );
            let (r, used) = match reply::parse_reply(rest, &SERVER_REPLY_LIMITS) {
                Ok(Some(x)) => x,
                other => panic!(
                    "server output is not a complete reply: {other:?} in {:?}",
                    String::from_utf8_lossy(rest)
                ),
            };
            rest = &rest[used..];
            assert!(
                r.deviations.is_empty(),
                "server reply breaks a framing rule: {:?}",
                r.deviations
            );
            assert!((200..=599).contains(&r.code), "reply code {}", r.code);
            // Multi-line consistency (RFC 5321 §4.2.1): every line has the code,
            // all but the last a hyphen, the last a space (or nothing after it).
            let n = r.lines.len();
            for (i, l) in r.lines.iter().enumerate() {
                assert_eq!(l.code, r.code, "multi-line reply mixes codes");
                if i + 1 < n {
                    assert_eq!(l.sep, Separator::Hyphen);
                } else {
                    assert_ne!(l.sep, Separator::Hyphen);
                }
                if r.code != 334 {
                    assert!(l.text.len() + 6 <= 512, "reply line over 512 octets");
                }
            }
            if r.code == 334 {
                assert_eq!(n, 1, "a 334 challenge is one line (RFC 4954 §4)");
            }
            match r.code {
                221 | 421 | 521 => self.closed = true,
                c if c >= 400 => {
                    self.errors = self.errors.saturating_add(1);
                    if self.errors >= self.hard_error_limit {
                        // The limit is reached: the next reply must be the 421 that
                        // ends the session, and it must come in this same output.
                        let next = reply::parse_reply(rest, &SERVER_REPLY_LIMITS);
                        assert!(
                            matches!(&next, Ok(Some((r, _))) if r.code == 421),
                            "error {} reached smtpd_hard_error_limit {} without a 421: {next:?}",
                            self.errors,
                            self.hard_error_limit
                        );
                    }
                }
                _ => {}
            }
            codes.push(r.code);
        }
        codes
    }
}

fn feed(s: &mut ServerSession, o: &mut ServerOracle, bytes: &[u8]) -> (Vec<u16>, bool) {
    if carries_password(bytes) {
        o.credentials_sent = true;
    }
    let was_pending = o.tls_pending;
    s.receive(bytes);
    let mut out = s.take_output();
    let mut events = Vec::new();
    // As a driver does: each finished message is stored, then the session answers it
    // and goes on with what was pipelined behind it.
    loop {
        events.extend(std::iter::from_fn(|| s.poll_event()));
        if !s.awaiting_delivery() {
            break;
        }
        s.delivered(Delivery::Queued);
        out.extend(s.take_output());
    }
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    let codes = o.check_output(&out, bytes.len(), lines);
    let mut starttls = false;
    for ev in events {
        match ev {
            Event::StartTls => {
                assert!(
                    !o.tls && !was_pending,
                    "STARTTLS accepted twice or under TLS"
                );
                starttls = true;
            }
            Event::Close => o.closed = true,
            Event::MessageBegin(_)
            | Event::MessageData(_)
            | Event::MessageEnd
            | Event::MessageAbort
            | Event::Log(_)
            | Event::Pause(_) => {}
        }
    }
    if was_pending {
        // RFC 3207 §4.2 / CVE-2011-0411: between the 220 and the handshake the
        // server executes nothing.
        assert!(
            codes.is_empty(),
            "replies while the TLS handshake is pending"
        );
    }
    if starttls {
        // Whatever came after the STARTTLS line in this receive produced nothing:
        // the 220 is the last reply.
        assert_eq!(
            codes.last(),
            Some(&220),
            "replies after the STARTTLS 220 in the same receive: {codes:?}"
        );
        o.tls_pending = true;
    }
    (codes, starttls)
}

fn check_state(s: &ServerSession, o: &ServerOracle) {
    if s.is_authenticated() {
        assert!(
            o.credentials_sent,
            "authenticated without the password ever being sent"
        );
    }
    assert_eq!(
        s.is_closed(),
        o.closed,
        "session closed state vs. replies seen"
    );
    if o.errors >= o.hard_error_limit {
        assert!(s.is_closed(), "open after smtpd_hard_error_limit errors");
    }
    assert_eq!(s.tls_active(), o.tls);
    if !s.is_closed() && !o.tls_pending {
        assert!(
            s.buffered() <= 12288 + 2,
            "{} octets buffered",
            s.buffered()
        );
    }
    // The session's total output is bounded by its input; a generous absolute cap
    // catches an amplification loop.
    assert!(o.total_output <= 1 << 22);
}

/// Drive a [`ServerSession`] through a dialog decoded from `data`, checking after
/// every operation: replies well formed (RFC 5321 §4.2); no authentication without
/// the password; nothing executed between STARTTLS and the handshake, and no
/// authentication carried across it (RFC 3207 §4.2); `smtpd_hard_error_limit`
/// honoured; silence after the session ends; bounded output and buffers.
pub fn server_session(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(profile) = u.choose_index(SERVER_PROFILES.len()) else {
        return;
    };
    let Ok(seed) = u.arbitrary::<u64>() else {
        return;
    };
    let Some((config, wrapper)) = server_config(profile) else {
        panic!("fuzz profile {profile} does not load");
    };
    let mut s = ServerSession::new(
        Arc::clone(&config),
        server_store(),
        Box::new(SeededRandom::from_seed(seed)),
        Peer {
            ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            tls: wrapper,
        },
    );
    let mut o = ServerOracle {
        hard_error_limit: config.hard_error_limit.max(1),
        tls: wrapper,
        ..ServerOracle::default()
    };
    let greeting = s.take_output();
    assert_eq!(o.check_output(&greeting, 0, 0), [220]);

    let Ok(iter) = u.arbitrary_iter::<ServerOp>() else {
        return;
    };
    for op in iter.take(MAX_OPS) {
        let Ok(op) = op else { break };
        let was_closed = o.closed;
        match op {
            ServerOp::Command(c) => {
                feed(&mut s, &mut o, &c.render());
            }
            ServerOp::Raw(bytes) => {
                feed(&mut s, &mut o, &bytes);
            }
            ServerOp::Pipeline(cmds) => {
                let bytes: Vec<u8> = cmds.iter().flat_map(CommandOp::render).collect();
                feed(&mut s, &mut o, &bytes);
            }
            ServerOp::Partial { command, cuts } => {
                let bytes = command.render();
                let mut pos = 0;
                for c in cuts.iter().take(16) {
                    let end = (pos + usize::from(*c % 8) + 1).min(bytes.len());
                    feed(&mut s, &mut o, &bytes[pos..end]);
                    pos = end;
                }
                feed(&mut s, &mut o, &bytes[pos..]);
            }
            ServerOp::SaslResponse(data) => {
                let mut line = sasl_frame::encode_response(&data).into_bytes();
                line.extend_from_slice(b"\r\n");
                if contains(&data, PASSWORD) {
                    o.credentials_sent = true;
                }
                feed(&mut s, &mut o, &line);
            }
            ServerOp::SaslCancel => {
                feed(&mut s, &mut o, b"*\r\n");
            }
            ServerOp::ValidCredentials { login } => {
                o.credentials_sent = true;
                feed(&mut s, &mut o, &valid_credentials(login));
            }
            ServerOp::TlsEstablished => {
                // A driver calls this only after the StartTls event and only on a
                // session it has not closed.
                if o.tls_pending && !o.closed {
                    s.tls_established(None);
                    o.tls_pending = false;
                    o.tls = true;
                    assert!(!s.has_output(), "output on tls_established");
                    // RFC 3207 §4.2: the session starts over: not authenticated.
                    assert!(!s.is_authenticated(), "authentication survived STARTTLS");
                }
            }
            ServerOp::TlsFailed => {
                if o.tls_pending && !o.closed {
                    s.tls_failed();
                    o.closed = true;
                    o.tls_pending = false;
                    assert!(!s.has_output(), "plaintext after a failed handshake");
                    drain_events(&mut s);
                }
            }
            ServerOp::Timeout => {
                s.timeout();
                let out = s.take_output();
                if was_closed {
                    assert!(out.is_empty(), "timeout reply on a closed session");
                } else {
                    let codes = o.check_output(&out, 0, 0);
                    assert_eq!(codes, [421], "timeout must answer 421 and close");
                    o.tls_pending = false;
                }
                drain_events(&mut s);
            }
            ServerOp::Eof => {
                s.eof();
                assert!(!s.has_output());
                o.closed = true;
                o.tls_pending = false;
                drain_events(&mut s);
            }
        }
        if was_closed {
            assert!(!s.has_output(), "output after the session ended");
        }
        check_state(&s, &o);
    }
}

fn drain_events(s: &mut ServerSession) {
    while let Some(ev) = s.poll_event() {
        assert!(
            !matches!(ev, Event::StartTls | Event::MessageEnd),
            "{ev:?} from a closing session"
        );
    }
}

// ---- client ------------------------------------------------------------------

/// Picks the mechanism as the Postfix client does, from [`ClientConfig`].
#[derive(Debug)]
struct PolicyChooser(ClientConfig);

impl MechanismChooser for PolicyChooser {
    fn choose(&self, offered: &[String], tls: bool) -> Result<Mechanism, String> {
        self.0
            .choose_mechanism(offered, tls)
            .map_err(|e| e.to_string())
    }
}

/// What a (possibly hostile) server sends the client.
#[derive(Arbitrary, Debug, Clone)]
pub enum ClientOp {
    /// Any bytes, delivered in one `receive`.
    Raw(Vec<u8>),
    /// Any bytes, delivered in chunks of the given sizes.
    Chunked {
        bytes: Vec<u8>,
        cuts: Vec<u8>,
    },
    /// `220` greeting.
    Greeting,
    /// A `250` EHLO reply offering these mechanisms.
    Ehlo {
        mechs: Vec<Mechanism>,
        starttls: bool,
        auth_eq: bool,
    },
    /// `334` with this challenge, base64-encoded.
    Challenge(Vec<u8>),
    /// A one-line reply with one of the codes a session sees.
    Code {
        code: ReplyCode,
        text: Vec<u8>,
    },
    TlsEstablished,
    Eof,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ReplyCode {
    C220,
    C235,
    C250,
    C334,
    C354,
    C421,
    C454,
    C501,
    C503,
    C504,
    C530,
    C535,
    C538,
}

impl ReplyCode {
    fn code(self) -> u16 {
        match self {
            ReplyCode::C220 => 220,
            ReplyCode::C235 => 235,
            ReplyCode::C250 => 250,
            ReplyCode::C334 => 334,
            ReplyCode::C354 => 354,
            ReplyCode::C421 => 421,
            ReplyCode::C454 => 454,
            ReplyCode::C501 => 501,
            ReplyCode::C503 => 503,
            ReplyCode::C504 => 504,
            ReplyCode::C530 => 530,
            ReplyCode::C535 => 535,
            ReplyCode::C538 => 538,
        }
    }
}

impl ClientOp {
    fn render(&self) -> Vec<u8> {
        match self {
            ClientOp::Raw(b) | ClientOp::Chunked { bytes: b, .. } => b.clone(),
            ClientOp::Greeting => b"220 mx.example.org ESMTP\r\n".to_vec(),
            ClientOp::Ehlo {
                mechs,
                starttls,
                auth_eq,
            } => {
                let names: Vec<&str> = mechs.iter().take(10).map(|m| m.name()).collect();
                let mut lines = vec!["mx.example.org".to_string()];
                if *starttls {
                    lines.push("STARTTLS".into());
                }
                if !names.is_empty() {
                    lines.push(format!("AUTH {}", names.join(" ")));
                    if *auth_eq {
                        lines.push(format!("AUTH={}", names.join(" ")));
                    }
                }
                lines.push("ENHANCEDSTATUSCODES".into());
                let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
                reply::Reply::new(250, &refs).format()
            }
            ClientOp::Challenge(c) => {
                format!("334 {}\r\n", sasl_frame::encode_challenge(c)).into_bytes()
            }
            ClientOp::Code { code, text } => {
                let mut out = format!("{} ", code.code()).into_bytes();
                out.extend(
                    text.iter()
                        .take(200)
                        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
                );
                out.extend_from_slice(b"\r\n");
                out
            }
            ClientOp::TlsEstablished | ClientOp::Eof => Vec::new(),
        }
    }
}

/// A plaintext client output line that would disclose the password: the password
/// itself, inside any base64 token, or an `AUTH PLAIN`/`AUTH LOGIN` command.
fn discloses_password(out: &[u8]) -> Option<String> {
    if carries_password(out) {
        return Some("the password".into());
    }
    for line in out.split(|&b| b == b'\n') {
        let upper = line.to_ascii_uppercase();
        for verb in [
            &b"AUTH PLAIN"[..],
            b"AUTH LOGIN",
            b"AUTH XOAUTH2",
            b"AUTH OAUTHBEARER",
        ] {
            if upper.starts_with(verb) {
                return Some(String::from_utf8_lossy(line).into_owned());
            }
        }
    }
    None
}

/// `smtp_sasl_security_options = noplaintext` on a plaintext session: the client
/// may use CRAM-MD5, DIGEST-MD5 or SCRAM, never PLAIN, LOGIN or a bearer token.
/// Parsed once per process.
fn client_config() -> Option<ClientConfig> {
    static CONFIG: OnceLock<Option<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let cf = MainCf::parse(
                "myhostname = client.example.com\nsmtp_sasl_auth_enable = yes\n\
                 smtp_sasl_security_options = noplaintext, noanonymous\n\
                 smtp_sasl_tls_security_options = noanonymous\n",
                "fuzz",
            )
            .ok()?;
            ClientConfig::from_main_cf(&cf).ok()
        })
        .clone()
}

/// Drive a [`ClientSession`] with `smtp_sasl_security_options = noplaintext` on a
/// connection without TLS, against server bytes decoded from `data` and delivered in
/// arbitrary chunks. It must never put the password on the wire in plaintext (no
/// PLAIN, LOGIN, XOAUTH2 or OAUTHBEARER: Postfix's `noplaintext`), never panic, and
/// keep its output and buffers bounded; after `Done` it says nothing more.
pub fn client_session(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(starttls), Ok(with_mail), Ok(seed)) = (
        u.arbitrary::<bool>(),
        u.arbitrary::<bool>(),
        u.arbitrary::<u64>(),
    ) else {
        return;
    };
    let Some(config) = client_config() else {
        panic!("client fuzz profile does not load");
    };
    let plan = ClientPlan {
        helo_name: "client.example.com".into(),
        starttls: if starttls {
            StartTlsPolicy::Opportunistic
        } else {
            StartTlsPolicy::Never
        },
        auth: Some(AuthPlan {
            credentials: ClientCredentials {
                authcid: USER.into(),
                password: Secret::new(PASSWORD.to_vec()),
                authzid: None,
                host: "mx.example.org".into(),
                port: Some(25),
            },
            chooser: Box::new(PolicyChooser(config)),
            channel_binding_types: crate::sasl::channel_binding::CbType::AVAILABLE.to_vec(),
        }),
        auth_required: true,
        mail: with_mail.then(|| MailPlan {
            from: USER.into(),
            to: vec!["a@example.net".into(), "b@example.net".into()],
            body: b"Subject: fuzz\r\n\r\n.line\r\n".to_vec(),
        }),
    };
    let mut c = ClientSession::new(plan, Box::new(SeededRandom::from_seed(seed)), false);
    let mut tls = false;
    let mut tls_pending = false;
    let mut done = false;
    let mut total = 0usize;

    let Ok(iter) = u.arbitrary_iter::<ClientOp>() else {
        return;
    };
    for op in iter.take(MAX_OPS) {
        let Ok(op) = op else { break };
        let bytes = op.render();
        match &op {
            ClientOp::TlsEstablished => {
                if tls_pending && !done {
                    c.tls_established();
                    tls = true;
                    tls_pending = false;
                }
            }
            ClientOp::Eof => c.eof(),
            ClientOp::Chunked { cuts, .. } => {
                let mut pos = 0;
                for cut in cuts.iter().take(32) {
                    let end = (pos + usize::from(*cut)).min(bytes.len());
                    c.receive(&bytes[pos..end]);
                    pos = end;
                }
                c.receive(&bytes[pos..]);
            }
            _ => c.receive(&bytes),
        }
        let out = c.take_output();
        if done {
            assert!(out.is_empty(), "client output after Done");
        }
        let lines = bytes.iter().filter(|&&b| b == b'\n').count();
        // One command (or the body) per reply, plus a QUIT.
        assert!(
            out.len() <= 4096 * (lines + 2),
            "{} octets of client output for {lines} lines",
            out.len()
        );
        total = total.saturating_add(out.len());
        assert!(total <= 1 << 20);
        if !tls {
            if let Some(what) = discloses_password(&out) {
                panic!("client disclosed {what} without TLS under noplaintext");
            }
        }
        while let Some(ev) = c.poll_event() {
            match ev {
                ClientEvent::StartTls => {
                    assert!(!tls && !tls_pending, "STARTTLS twice");
                    tls_pending = true;
                }
                ClientEvent::Done(result) => {
                    assert!(!done, "two Done events");
                    done = true;
                    if let Ok(outcome) = result {
                        // noplaintext without TLS: never authenticated with a plaintext
                        // mechanism.
                        if !tls {
                            assert!(!matches!(
                                outcome.authenticated_with,
                                Some(
                                    Mechanism::Plain
                                        | Mechanism::Login
                                        | Mechanism::XOAuth2
                                        | Mechanism::OAuthBearer
                                )
                            ));
                        }
                    }
                }
            }
        }
        assert_eq!(c.is_done(), done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_accept_arbitrary_bytes() {
        for len in [0usize, 1, 7, 64, 300] {
            for seed in 0u8..40 {
                let data: Vec<u8> = (0..len)
                    .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
                    .collect();
                server_session(&data);
                client_session(&data);
            }
        }
    }

    #[test]
    fn every_server_profile_loads() {
        for p in 0..SERVER_PROFILES.len() {
            assert!(server_config(p).is_some(), "profile {p}");
        }
    }

    #[test]
    fn the_oracle_recognises_the_password_in_plain_and_login() {
        assert!(carries_password(&valid_credentials(false)));
        assert!(carries_password(&valid_credentials(true)));
        assert!(!carries_password(b"AUTH PLAIN AGZ1enp1c2VyAHdyb25n\r\n"));
    }

    /// The valid-credentials operation really authenticates, so the oracle's
    /// "authenticated" branch is reachable.
    #[test]
    fn valid_credentials_authenticate() {
        for login in [false, true] {
            let (config, _) = server_config(0).expect("profile 0");
            let mut store = MemoryStore::new();
            store.insert_plain(USER, Secret::new(PASSWORD.to_vec()));
            let mut s = ServerSession::new(
                config,
                Arc::new(store),
                Box::new(SeededRandom::from_seed(1)),
                Peer {
                    ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    tls: false,
                },
            );
            s.receive(b"EHLO client.example.com\r\n");
            s.receive(&valid_credentials(login));
            let out = String::from_utf8_lossy(&s.take_output()).into_owned();
            assert!(s.is_authenticated(), "login={login}: {out}");
            assert!(out.ends_with("235 2.7.0 Authentication successful\r\n"));
        }
    }

    #[test]
    fn the_client_oracle_flags_auth_plain() {
        assert!(discloses_password(b"AUTH PLAIN AGZvbwBiYXI=\r\n").is_some());
        assert!(discloses_password(b"auth login\r\n").is_some());
        assert!(discloses_password(b"AUTH CRAM-MD5\r\n").is_none());
    }
}
