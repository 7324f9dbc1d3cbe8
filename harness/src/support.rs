//! Address and text helpers shared by the CLI, the runner, the load generator and `fuzz`.

/// `host:port` → host, for SNI and certificate checks (`[::1]:25` → `::1`).
pub fn host_of(addr: &str) -> String {
    let host = match addr.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => addr,
    };
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_string()
}

pub fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

/// A target refused because it is not loopback and `--allow-remote` was not given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotLoopback {
    pub addr: String,
}

impl std::fmt::Display for NotLoopback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is not a loopback address; pass --allow-remote to target another host",
            self.addr
        )
    }
}

impl std::error::Error for NotLoopback {}

/// Load generators and fuzzers only go to loopback unless the user says otherwise.
pub fn require_loopback(addr: &str, allow_remote: bool) -> Result<(), NotLoopback> {
    if allow_remote {
        return Ok(());
    }
    if resolves_to_loopback_only(addr) {
        Ok(())
    } else {
        Err(NotLoopback {
            addr: addr.to_owned(),
        })
    }
}

/// Whether every address `addr` (`host:port`) stands for is a loopback address. A
/// name is resolved, not trusted: `localhost` may be mapped elsewhere in /etc/hosts,
/// and a name that does not resolve is not loopback.
pub fn resolves_to_loopback_only(addr: &str) -> bool {
    use std::net::ToSocketAddrs as _;
    let host = host_of(addr);
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let port = port_of(addr).unwrap_or(0);
    match (host.as_str(), port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

/// `text` with every control character (C0, DEL, C1) written as `\x1b`-style
/// escapes, so a peer's text cannot move the cursor, retitle the terminal or hide
/// what follows. Tabs are kept.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let u = u32::from(c);
        if (c.is_control() && c != '\t') || (0x80..=0x9f).contains(&u) {
            if u <= 0xff {
                out.push_str(&format!("\\x{u:02x}"));
            } else {
                out.push_str(&format!("\\u{{{u:x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports() {
        assert_eq!(host_of("[::1]:25"), "::1");
        assert_eq!(host_of("mail.example.com:587"), "mail.example.com");
        assert_eq!(port_of("127.0.0.1:2525"), Some(2525));
        assert!(require_loopback("127.0.0.1:25", false).is_ok());
        assert!(require_loopback("[::1]:25", false).is_ok());
        assert!(require_loopback("192.0.2.1:25", false).is_err());
        assert!(require_loopback("192.0.2.1:25", true).is_ok());
    }

    /// Issue 15, finding 11: terminal escapes in a server's text are shown, not run.
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            escape_controls("250 ok\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}x\tend"),
            "250 ok\\x1b]0;pwned\\x07\\x1b[2J\\x9bx\tend"
        );
    }

    /// Issue 15, finding 12: the name is resolved, not trusted.
    #[test]
    fn loopback_names_are_resolved() {
        assert!(require_loopback("localhost:25", false).is_ok());
        // Does not resolve (the .invalid TLD, RFC 2606): not loopback.
        assert!(require_loopback("localhost.invalid:25", false).is_err());
        assert!(require_loopback("0.0.0.0:25", false).is_err());
        assert!(!resolves_to_loopback_only("[::]:25"));
    }
}
