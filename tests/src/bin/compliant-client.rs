//! A compliant-but-different SMTP AUTH client, the test double that keeps the client
//! scenarios honest (tests/tests/compliant_client.rs). It follows RFC 4954 but makes its
//! own legitimate choices, unlike the reference client and Postfix: only PLAIN and
//! LOGIN, its own preference order (not the server's), no pipelining, an initial
//! response or not, QUIT or a plain close after a failure, `*` on a challenge it cannot
//! decode, an address literal or a name as EHLO argument.
//!
//! `compliant-client [options] HOST PORT`, credentials from AUTHSPEC_USER and
//! AUTHSPEC_PASSWORD. Options:
//!   --prefer plain|login       which of the two it tries first when both are offered
//!   --initial-response         send the first response with AUTH (PLAIN's message,
//!                              LOGIN's user name)
//!   --after-failure quit|close QUIT after a refused AUTH, or just close
//!   --ehlo NAME                the EHLO argument (default `[127.0.0.1]`)
//!   --break RULE               break exactly one MUST: `answer-garbage` (answer an
//!                              undecodable challenge instead of `*`), `raw-response`
//!                              (send the password unencoded), `close-on-garbage`
//!                              (drop the connection instead of `*`)
//! Exit: 0 mail accepted, 1 authentication refused, 2 usage, 3 no usable mechanism,
//! 4 protocol or network error. What it sends and receives goes to stderr (no secret).
#![forbid(unsafe_code)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Break {
    None,
    AnswerGarbage,
    RawResponse,
    CloseOnGarbage,
}

#[derive(Debug)]
struct Options {
    prefer_login: bool,
    initial_response: bool,
    quit_after_failure: bool,
    ehlo: String,
    broken: Break,
    host: String,
    port: u16,
}

fn usage(why: &str) -> ! {
    eprintln!("compliant-client: {why}");
    std::process::exit(2);
}

fn options() -> Options {
    let mut o = Options {
        prefer_login: false,
        initial_response: false,
        quit_after_failure: true,
        ehlo: "[127.0.0.1]".into(),
        broken: Break::None,
        host: String::new(),
        port: 0,
    };
    let mut args = std::env::args().skip(1);
    let mut rest = Vec::new();
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--prefer" => match value().as_str() {
                "plain" => o.prefer_login = false,
                "login" => o.prefer_login = true,
                v => usage(&format!("--prefer {v}")),
            },
            "--initial-response" => o.initial_response = true,
            "--after-failure" => match value().as_str() {
                "quit" => o.quit_after_failure = true,
                "close" => o.quit_after_failure = false,
                v => usage(&format!("--after-failure {v}")),
            },
            "--ehlo" => o.ehlo = value(),
            "--break" => {
                o.broken = match value().as_str() {
                    "none" => Break::None,
                    "answer-garbage" => Break::AnswerGarbage,
                    "raw-response" => Break::RawResponse,
                    "close-on-garbage" => Break::CloseOnGarbage,
                    v => usage(&format!("--break {v}")),
                }
            }
            _ => rest.push(a),
        }
    }
    if rest.len() != 2 {
        usage("usage: compliant-client [options] HOST PORT");
    }
    o.host = rest[0].clone();
    o.port = rest[1]
        .parse()
        .unwrap_or_else(|_| usage(&format!("bad port {}", rest[1])));
    o
}

/// A reply: code and the text of each line.
struct Reply {
    code: u16,
    lines: Vec<String>,
    /// `334` with nothing after it (no space): not RFC 4954's grammar, read as empty.
    bare: bool,
}

struct Session {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

enum End {
    Refused,
    Protocol(String),
}

impl Session {
    fn send(&mut self, line: &str, shown: &str) -> Result<(), End> {
        eprintln!("C: {shown}");
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .map_err(|e| End::Protocol(format!("write: {e}")))
    }

    fn reply(&mut self) -> Result<Reply, End> {
        let mut lines = Vec::new();
        // RFC 5321 §4.5.3.1.5 caps a reply line at 512 octets; a few hundred lines
        // bound the reply.
        for _ in 0..256 {
            let mut buf = Vec::new();
            let n = (&mut self.reader)
                .take(2048)
                .read_until(b'\n', &mut buf)
                .map_err(|e| End::Protocol(format!("read: {e}")))?;
            if n == 0 {
                return Err(End::Protocol("the server closed the connection".into()));
            }
            let text = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\r', '\n'])
                .to_owned();
            eprintln!("S: {text}");
            let code = text
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| End::Protocol(format!("not a reply: {text:?}")))?;
            let sep = text.as_bytes().get(3).copied();
            lines.push(text.get(4..).unwrap_or("").to_owned());
            match sep {
                Some(b'-') => continue,
                None => {
                    return Ok(Reply {
                        code,
                        lines,
                        bare: true,
                    });
                }
                _ => {
                    return Ok(Reply {
                        code,
                        lines,
                        bare: false,
                    });
                }
            }
        }
        Err(End::Protocol("reply too long".into()))
    }

    /// Answers one 334 challenge with `data`, or with `*` if it cannot be decoded.
    fn answer(&mut self, r: &Reply, data: &[u8], secret: bool, o: &Options) -> Result<(), End> {
        let challenge = if r.bare {
            ""
        } else {
            r.lines.first().map_or("", String::as_str)
        };
        if STANDARD.decode(challenge.trim_end()).is_err() {
            match o.broken {
                Break::AnswerGarbage => {}
                Break::CloseOnGarbage => {
                    return Err(End::Protocol("undecodable challenge; closing".into()));
                }
                _ => {
                    // RFC 4954 §4: cancel with "*".
                    self.send("*", "*")?;
                    let r = self.reply()?;
                    return Err(End::Protocol(format!(
                        "cancelled; the server said {}",
                        r.code
                    )));
                }
            }
        }
        let line = if o.broken == Break::RawResponse {
            String::from_utf8_lossy(data).into_owned()
        } else {
            STANDARD.encode(data)
        };
        self.send(&line, if secret { "<secret>" } else { &line })
    }
}

fn run(o: &Options) -> Result<(), End> {
    let user = std::env::var("AUTHSPEC_USER").unwrap_or_default();
    let password = std::env::var("AUTHSPEC_PASSWORD").unwrap_or_default();
    let stream = TcpStream::connect((o.host.as_str(), o.port))
        .map_err(|e| End::Protocol(format!("connect: {e}")))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let writer = stream
        .try_clone()
        .map_err(|e| End::Protocol(e.to_string()))?;
    let mut s = Session {
        reader: BufReader::new(stream),
        writer,
    };
    let greeting = s.reply()?;
    if greeting.code != 220 {
        return Err(End::Protocol(format!("greeting {}", greeting.code)));
    }
    s.send(&format!("EHLO {}", o.ehlo), &format!("EHLO {}", o.ehlo))?;
    let ehlo = s.reply()?;
    if ehlo.code != 250 {
        return Err(End::Protocol(format!("EHLO answered {}", ehlo.code)));
    }
    // Both the standard "AUTH x y" and the pre-standard "AUTH=x y".
    let mut offered: Vec<String> = Vec::new();
    for l in ehlo.lines.iter().skip(1) {
        let up = l.to_ascii_uppercase();
        let list = up
            .strip_prefix("AUTH ")
            .or_else(|| up.strip_prefix("AUTH="));
        if let Some(list) = list {
            offered.extend(list.split_whitespace().map(str::to_owned));
        }
    }
    let order: &[&str] = if o.prefer_login {
        &["LOGIN", "PLAIN"]
    } else {
        &["PLAIN", "LOGIN"]
    };
    let Some(mech) = order.iter().find(|m| offered.iter().any(|x| x == *m)) else {
        eprintln!("compliant-client: no mechanism I implement is offered ({offered:?})");
        let _ = s.send("QUIT", "QUIT");
        let _ = s.reply();
        std::process::exit(3);
    };
    let plain = format!("\0{user}\0{password}");
    let mut r = match (*mech, o.initial_response) {
        ("PLAIN", true) => {
            s.send(
                &format!("AUTH PLAIN {}", STANDARD.encode(plain.as_bytes())),
                "AUTH PLAIN <secret>",
            )?;
            s.reply()?
        }
        ("LOGIN", true) => {
            let u = STANDARD.encode(user.as_bytes());
            s.send(&format!("AUTH LOGIN {u}"), &format!("AUTH LOGIN {u}"))?;
            s.reply()?
        }
        (m, _) => {
            s.send(&format!("AUTH {m}"), &format!("AUTH {m}"))?;
            s.reply()?
        }
    };
    // The responses still to give, in order, whatever the prompts say.
    let mut pending: Vec<(Vec<u8>, bool)> = match (*mech, o.initial_response) {
        ("PLAIN", true) => vec![],
        ("PLAIN", false) => vec![(plain.into_bytes(), true)],
        ("LOGIN", true) => vec![(password.into_bytes(), true)],
        _ => vec![(user.into_bytes(), false), (password.into_bytes(), true)],
    };
    pending.reverse();
    for _ in 0..4 {
        if r.code != 334 {
            break;
        }
        let Some((data, secret)) = pending.pop() else {
            // A challenge after the last response: nothing more to say; cancel.
            s.send("*", "*")?;
            r = s.reply()?;
            break;
        };
        s.answer(&r, &data, secret, o)?;
        r = s.reply()?;
    }
    if r.code != 235 {
        if o.quit_after_failure {
            let _ = s.send("QUIT", "QUIT");
            let _ = s.reply();
        }
        return Err(End::Refused);
    }
    for (cmd, want) in [
        ("MAIL FROM:<alice@compliant.test>", 250),
        ("RCPT TO:<bob@example.net>", 250),
        ("DATA", 354),
    ] {
        s.send(cmd, cmd)?;
        let r = s.reply()?;
        if r.code != want {
            let _ = s.send("QUIT", "QUIT");
            return Err(End::Protocol(format!("{cmd} answered {}", r.code)));
        }
    }
    s.send("Subject: compliant client\r\n\r\nhello\r\n.", "<message>")?;
    let r = s.reply()?;
    let _ = s.send("QUIT", "QUIT");
    let _ = s.reply();
    if r.code == 250 {
        Ok(())
    } else {
        Err(End::Protocol(format!(
            "the message was answered {}",
            r.code
        )))
    }
}

fn main() {
    let o = options();
    match run(&o) {
        Ok(()) => println!("compliant-client: message accepted"),
        Err(End::Refused) => {
            eprintln!("compliant-client: authentication refused");
            std::process::exit(1);
        }
        Err(End::Protocol(why)) => {
            eprintln!("compliant-client: {why}");
            std::process::exit(4);
        }
    }
}
