//! From the two byte streams of a proxied session to a list of events: client lines,
//! message bodies, server replies, TLS, closes, notes. No IO: the proxy feeds what it
//! reads and is told how much to forward and when STARTTLS begins.
//!
//! The recorder follows the dialog only as far as framing needs: which client lines
//! are a message body (after `354`, RFC 5321 §4.1.1.4), which octets are a `BDAT`
//! chunk (RFC 3030 §2), and where STARTTLS's `220` ends (RFC 3207 §4), after which
//! neither side may send plaintext.

use authspec_reference::smtp::reply::{self, Reply, ReplyLimits};
use std::collections::VecDeque;

/// How a client line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Crlf,
    /// A bare LF (RFC 5321 §2.3.8 forbids it; recorded so a replay sends it too).
    Lf,
    /// The session ended before the line did.
    None,
}

impl Ending {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Ending::Crlf => b"\r\n",
            Ending::Lf => b"\n",
            Ending::None => b"",
        }
    }
}

/// One line from the client, without its line end.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientLine {
    pub bytes: Vec<u8>,
    pub ending: Ending,
}

/// A client line may be a SASL response carrying a password: `Debug` shows its verb
/// and length only.
impl std::fmt::Debug for ClientLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientLine")
            .field("verb", &self.verb())
            .field("octets", &self.bytes.len())
            .field("ending", &self.ending)
            .finish()
    }
}

impl ClientLine {
    /// The verb, upper-cased (RFC 5321 §2.4: verbs are case-insensitive).
    pub fn verb(&self) -> String {
        let end = self
            .bytes
            .iter()
            .position(|b| *b == b' ')
            .unwrap_or(self.bytes.len());
        String::from_utf8_lossy(&self.bytes[..end]).to_ascii_uppercase()
    }
}

/// What happened in a session, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A command line or a SASL response.
    Client(ClientLine),
    /// A message body after `354`, through the final `.` line.
    Body(Vec<ClientLine>),
    /// The octets of a `BDAT` chunk.
    Chunk(Vec<u8>),
    /// A complete reply, and the octets it was made of.
    Server {
        reply: Reply,
        raw: Vec<u8>,
    },
    /// STARTTLS was intercepted: TLS is up with both sides and recording goes on.
    Tls,
    /// STARTTLS was let through (`--no-tls-intercept`): the recording ends here.
    TlsPassthrough,
    /// A remark for the recorded file.
    Note(String),
    ClientClosed,
    ServerClosed,
}

/// Bounds on what one session records. A recorded file must load again
/// ([`crate::scenario::MAX_FILE_SIZE`]), and escapes can make a byte four characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Client lines and reply lines.
    pub max_lines: usize,
    /// Octets of both streams.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_lines: 10_000,
            max_bytes: 192 * 1024,
        }
    }
}

/// The longest client line buffered while waiting for its LF: RFC 4954 §4's 12288
/// octets for an AUTH line, with room to spare.
const MAX_PENDING_LINE: usize = 64 * 1024;
/// Commands awaiting a reply, pipelined (RFC 2920). More than this is not a client
/// we can follow.
const MAX_OUTSTANDING: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Data,
    StartTls,
    Bdat,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ClientState {
    Commands,
    Body(Vec<ClientLine>),
    /// Octets of a BDAT chunk still to come, and those seen so far.
    Chunk(usize, Vec<u8>),
    /// STARTTLS sent; nothing more is read from the client until the reply.
    AfterStartTls,
}

/// What the proxy does with a chunk from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientFeed {
    /// Octets to forward from the start of the chunk.
    pub forward: usize,
    /// The client sent STARTTLS: stop reading from it until the server replies.
    pub starttls: bool,
}

/// What the proxy does with a chunk from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerFeed {
    pub forward: usize,
    /// The reply to STARTTLS arrived: `Some(true)` for 220 (start TLS now), `Some(false)`
    /// for a refusal (go on in plaintext).
    pub starttls: Option<bool>,
}

/// Follows one session.
pub struct Recorder {
    limits: Limits,
    intercept: bool,
    recording: bool,
    events: Vec<Event>,
    lines: usize,
    bytes: usize,
    client_buf: Vec<u8>,
    server_buf: Vec<u8>,
    client: ClientState,
    waiting: VecDeque<Waiting>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("recording", &self.recording)
            .field("events", &self.events.len())
            .field("lines", &self.lines)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// `intercept`: STARTTLS will be intercepted (`--starttls-intercept`), so octets
    /// pipelined after it are dropped rather than forwarded.
    pub fn new(limits: Limits, intercept: bool) -> Recorder {
        Recorder {
            limits,
            intercept,
            recording: true,
            events: Vec::new(),
            lines: 0,
            bytes: 0,
            client_buf: Vec::new(),
            server_buf: Vec::new(),
            client: ClientState::Commands,
            waiting: VecDeque::new(),
        }
    }

    /// Whether the recorder still follows the session; once it stops, the proxy just
    /// forwards.
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Ends the recording with a note; the proxy keeps forwarding.
    pub fn stop(&mut self, why: impl Into<String>) {
        if self.recording {
            self.flush_partial();
            self.events.push(Event::Note(why.into()));
            self.recording = false;
            self.client_buf = Vec::new();
            self.server_buf = Vec::new();
        }
    }

    pub fn note(&mut self, text: impl Into<String>) {
        if self.recording {
            self.events.push(Event::Note(text.into()));
        }
    }

    fn count(&mut self, lines: usize, bytes: usize) -> bool {
        self.lines = self.lines.saturating_add(lines);
        self.bytes = self.bytes.saturating_add(bytes);
        if self.lines > self.limits.max_lines || self.bytes > self.limits.max_bytes {
            let (l, b) = (self.limits.max_lines, self.limits.max_bytes);
            self.stop(format!(
                "recording stopped at the per-session bound ({l} lines / {b} octets); \
                 the session went on unrecorded"
            ));
            return false;
        }
        true
    }

    fn push_wait(&mut self, w: Waiting) {
        if self.waiting.len() >= MAX_OUTSTANDING {
            self.stop(format!(
                "recording stopped: more than {MAX_OUTSTANDING} commands without a reply"
            ));
        } else {
            self.waiting.push_back(w);
        }
    }

    /// Octets from the client.
    pub fn client_data(&mut self, data: &[u8]) -> ClientFeed {
        let all = ClientFeed {
            forward: data.len(),
            starttls: false,
        };
        if !self.recording {
            return all;
        }
        if self.client == ClientState::AfterStartTls {
            self.drop_after_starttls(data.len());
            return ClientFeed {
                forward: if self.intercept { 0 } else { data.len() },
                starttls: false,
            };
        }
        if !self.count(0, data.len()) {
            return all;
        }
        let mut pos = 0;
        while pos < data.len() && self.recording {
            if let ClientState::Chunk(left, chunk) = &mut self.client {
                let take = (*left).min(data.len() - pos);
                chunk.extend_from_slice(&data[pos..pos + take]);
                *left -= take;
                pos += take;
                if *left == 0 {
                    let chunk = std::mem::take(chunk);
                    self.events.push(Event::Chunk(chunk));
                    self.client = ClientState::Commands;
                }
                continue;
            }
            let rest = &data[pos..];
            let Some(lf) = rest.iter().position(|b| *b == b'\n') else {
                self.client_buf.extend_from_slice(rest);
                if self.client_buf.len() > MAX_PENDING_LINE {
                    self.stop(format!(
                        "recording stopped: a client line longer than {MAX_PENDING_LINE} octets"
                    ));
                }
                return all;
            };
            self.client_buf.extend_from_slice(&rest[..lf]);
            pos += lf + 1;
            let mut bytes = std::mem::take(&mut self.client_buf);
            let ending = if bytes.last() == Some(&b'\r') {
                bytes.pop();
                Ending::Crlf
            } else {
                Ending::Lf
            };
            if self.client_line(ClientLine { bytes, ending }) {
                let dropped = data.len() - pos;
                if dropped > 0 {
                    self.drop_after_starttls(dropped);
                }
                return ClientFeed {
                    forward: if self.intercept { pos } else { data.len() },
                    starttls: true,
                };
            }
        }
        all
    }

    fn drop_after_starttls(&mut self, n: usize) {
        let what = if self.intercept {
            "dropped by the proxy"
        } else {
            "forwarded unrecorded"
        };
        self.note(format!(
            "the client sent {n} octets after STARTTLS before the reply ({what}); \
             RFC 3207 §4 forbids pipelining after STARTTLS"
        ));
    }

    /// Takes one complete client line; true when it was STARTTLS.
    fn client_line(&mut self, line: ClientLine) -> bool {
        if !self.count(1, 0) {
            return false;
        }
        match &mut self.client {
            ClientState::Body(lines) => {
                let end = line.bytes == b".";
                lines.push(line);
                if end {
                    let body = std::mem::take(lines);
                    self.events.push(Event::Body(body));
                    self.client = ClientState::Commands;
                    self.push_wait(Waiting::Other);
                }
                false
            }
            _ => {
                let verb = line.verb();
                let args = line.bytes.get(verb.len() + 1..).unwrap_or(&[]).to_vec();
                self.events.push(Event::Client(line));
                match verb.as_str() {
                    "DATA" => self.push_wait(Waiting::Data),
                    "STARTTLS" => {
                        self.push_wait(Waiting::StartTls);
                        self.client = ClientState::AfterStartTls;
                        return true;
                    }
                    "BDAT" => {
                        // RFC 3030 §2: `BDAT <chunk-size> [LAST]`, then exactly that
                        // many octets.
                        let size = String::from_utf8_lossy(&args)
                            .split(' ')
                            .next()
                            .and_then(|n| n.parse::<usize>().ok());
                        match size {
                            Some(0) => self.push_wait(Waiting::Bdat),
                            Some(n) if n <= self.limits.max_bytes => {
                                self.client = ClientState::Chunk(n, Vec::new());
                                self.push_wait(Waiting::Bdat);
                            }
                            _ => self.stop(
                                "recording stopped: a BDAT chunk too large to record (or \
                                 without a size)",
                            ),
                        }
                    }
                    _ => self.push_wait(Waiting::Other),
                }
                false
            }
        }
    }

    /// Octets from the server.
    pub fn server_data(&mut self, data: &[u8]) -> ServerFeed {
        let all = ServerFeed {
            forward: data.len(),
            starttls: None,
        };
        if !self.recording || !self.count(0, data.len()) {
            return all;
        }
        self.server_buf.extend_from_slice(data);
        let mut used_total = 0;
        let mut starttls = None;
        loop {
            let buf = &self.server_buf[used_total..];
            let (r, used) = match reply::parse_reply(buf, &ReplyLimits::default()) {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(e) => {
                    self.stop(format!(
                        "recording stopped: the server sent a malformed reply ({e}); \
                         RFC 5321 §4.2"
                    ));
                    return all;
                }
            };
            let raw = buf[..used].to_vec();
            used_total += used;
            let lines = r.lines.len();
            let code = r.code;
            self.events.push(Event::Server { reply: r, raw });
            if !self.count(lines, 0) {
                return all;
            }
            match self.waiting.pop_front() {
                Some(Waiting::Data) if code == 354 => {
                    self.client = ClientState::Body(Vec::new());
                }
                // A refused STARTTLS (454, 502) leaves the session in plaintext.
                Some(Waiting::StartTls) if code != 220 => {
                    self.client = ClientState::Commands;
                    starttls = Some(false);
                }
                Some(Waiting::StartTls) => {
                    self.client = ClientState::Commands;
                    let rest = self.server_buf.len() - used_total;
                    self.server_buf.clear();
                    if rest > 0 {
                        let what = if self.intercept {
                            "dropped by the proxy"
                        } else {
                            "forwarded"
                        };
                        self.note(format!(
                            "the server sent {rest} octets after its STARTTLS 220 ({what}); \
                             RFC 3207 §4: nothing may follow it before the handshake"
                        ));
                    }
                    if !self.intercept {
                        self.events.push(Event::Note(
                            "STARTTLS let through untouched (--no-tls-intercept): the \
                             recording ends here"
                                .into(),
                        ));
                        self.events.push(Event::TlsPassthrough);
                        self.recording = false;
                        return ServerFeed {
                            forward: data.len(),
                            starttls: Some(true),
                        };
                    }
                    return ServerFeed {
                        forward: data.len().saturating_sub(rest),
                        starttls: Some(true),
                    };
                }
                _ => {}
            }
        }
        self.server_buf.drain(..used_total);
        if self.server_buf.len() > 256 * 1024 {
            self.stop("recording stopped: more than 256 KiB without a complete reply");
        }
        ServerFeed {
            forward: data.len(),
            starttls,
        }
    }

    /// TLS is up on both sides; the dialog goes on inside it.
    pub fn tls_established(&mut self, detail: &str) {
        if self.recording {
            self.events.push(Event::Tls);
            self.events
                .push(Event::Note(format!("STARTTLS intercepted: {detail}")));
        }
    }

    pub fn client_closed(&mut self) {
        if self.recording {
            self.flush_partial();
            self.events.push(Event::ClientClosed);
        }
    }

    pub fn server_closed(&mut self) {
        if self.recording {
            self.events.push(Event::ServerClosed);
        }
    }

    /// Records a partial line or body when the session ends inside it.
    fn flush_partial(&mut self) {
        if !self.client_buf.is_empty() {
            let bytes = std::mem::take(&mut self.client_buf);
            let line = ClientLine {
                bytes,
                ending: Ending::None,
            };
            match &mut self.client {
                ClientState::Body(lines) => lines.push(line),
                _ => self.events.push(Event::Client(line)),
            }
        }
        match std::mem::replace(&mut self.client, ClientState::Commands) {
            ClientState::Body(lines) => {
                self.events.push(Event::Body(lines));
                self.events.push(Event::Note(
                    "the session ended inside the message body".into(),
                ));
            }
            ClientState::Chunk(_, chunk) => self.events.push(Event::Chunk(chunk)),
            _ => {}
        }
    }

    /// The events of a finished session.
    pub fn finish(mut self) -> Vec<Event> {
        if self.recording {
            self.flush_partial();
        }
        self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::Client(l) => format!("C:{}", String::from_utf8_lossy(&l.bytes)),
                Event::Body(b) => format!("B:{}", b.len()),
                Event::Chunk(c) => format!("K:{}", c.len()),
                Event::Server { reply, .. } => format!("S:{}", reply.code),
                Event::Tls => "TLS".into(),
                Event::TlsPassthrough => "PASS".into(),
                Event::Note(_) => "NOTE".into(),
                Event::ClientClosed => "CC".into(),
                Event::ServerClosed => "SC".into(),
            })
            .collect()
    }

    #[test]
    fn pipelined_data_and_body() {
        let mut r = Recorder::new(Limits::default(), true);
        r.server_data(b"220 mx ESMTP\r\n");
        r.client_data(b"EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
        r.server_data(b"250 mx\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
        r.server_data(b"354 go\r\n");
        r.client_data(b"Subject: x\r\n\r\nhi\n.\r\nQUIT\r\n");
        r.server_data(b"250 2.0.0 queued as X1\r\n221 Bye\r\n");
        r.server_closed();
        let ev = r.finish();
        assert_eq!(
            kinds(&ev),
            [
                "S:220",
                "C:EHLO a",
                "C:MAIL FROM:<a@b>",
                "C:RCPT TO:<c@d>",
                "C:DATA",
                "S:250",
                "S:250",
                "S:250",
                "S:354",
                "B:4",
                "C:QUIT",
                "S:250",
                "S:221",
                "SC"
            ]
        );
        let Event::Body(lines) = &ev[9] else {
            panic!("{ev:?}")
        };
        assert_eq!(lines[2].ending, Ending::Lf);
    }

    #[test]
    fn starttls_stops_forwarding_at_the_line_and_the_reply() {
        let mut r = Recorder::new(Limits::default(), true);
        r.server_data(b"220 mx\r\n");
        let f = r.client_data(b"STARTTLS\r\nEHLO injected\r\n");
        assert_eq!(
            f,
            ClientFeed {
                forward: 10,
                starttls: true
            }
        );
        let s = r.server_data(b"220 2.0.0 Ready\r\n250 injected\r\n");
        assert_eq!(
            s,
            ServerFeed {
                forward: 17,
                starttls: Some(true)
            }
        );
        r.tls_established("TLSv1.3");
        r.client_data(b"EHLO a\r\n");
        let ev = r.finish();
        assert_eq!(
            kinds(&ev),
            [
                "S:220",
                "C:STARTTLS",
                "NOTE",
                "S:220",
                "NOTE",
                "TLS",
                "NOTE",
                "C:EHLO a"
            ]
        );
    }

    #[test]
    fn no_intercept_ends_the_recording_at_starttls() {
        let mut r = Recorder::new(Limits::default(), false);
        r.server_data(b"220 mx\r\n");
        assert!(r.client_data(b"STARTTLS\r\n").starttls);
        let s = r.server_data(b"220 go\r\n");
        assert_eq!(s.starttls, Some(true));
        assert!(!r.is_recording());
        assert_eq!(r.client_data(b"\x16\x03\x01").forward, 3);
        assert_eq!(
            kinds(&r.finish()),
            ["S:220", "C:STARTTLS", "S:220", "NOTE", "PASS"]
        );
    }

    #[test]
    fn refused_starttls_goes_on_in_plaintext() {
        let mut r = Recorder::new(Limits::default(), true);
        r.client_data(b"STARTTLS\r\n");
        assert_eq!(r.server_data(b"454 4.7.0 no\r\n").starttls, Some(false));
        assert!(!r.client_data(b"QUIT\r\n").starttls);
        assert_eq!(kinds(&r.finish()), ["C:STARTTLS", "S:454", "C:QUIT"]);
    }

    #[test]
    fn bounded_session_stops_recording_and_keeps_forwarding() {
        let mut r = Recorder::new(
            Limits {
                max_lines: 3,
                max_bytes: 1000,
            },
            true,
        );
        r.client_data(b"NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n");
        assert!(!r.is_recording());
        assert_eq!(r.client_data(b"STARTTLS\r\n").forward, 10);
        let ev = r.finish();
        assert_eq!(kinds(&ev), ["C:NOOP", "C:NOOP", "C:NOOP", "NOTE"]);
        let mut r = Recorder::new(
            Limits {
                max_lines: 100,
                max_bytes: 10,
            },
            true,
        );
        r.client_data(b"EHLO a-very-long-name\r\n");
        assert!(!r.is_recording());
    }

    #[test]
    fn bdat_chunk_is_not_read_as_lines() {
        let mut r = Recorder::new(Limits::default(), true);
        r.client_data(b"BDAT 5 LAST\r\na\nb\r");
        r.client_data(b"\nQUIT\r\n");
        assert_eq!(kinds(&r.finish()), ["C:BDAT 5 LAST", "K:5", "C:QUIT"]);
    }

    #[test]
    fn partial_line_is_kept_at_the_end() {
        let mut r = Recorder::new(Limits::default(), true);
        r.client_data(b"QUIT");
        r.client_closed();
        let ev = r.finish();
        assert_eq!(
            ev[0],
            Event::Client(ClientLine {
                bytes: b"QUIT".to_vec(),
                ending: Ending::None
            })
        );
    }
}
