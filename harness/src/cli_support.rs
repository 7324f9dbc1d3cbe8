//! Address helpers shared by the CLI, the runner, `load` and `fuzz`.

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

/// Load generators and fuzzers only go to loopback unless the user says otherwise.
pub fn require_loopback(addr: &str, allow_remote: bool) -> Result<(), String> {
    if allow_remote {
        return Ok(());
    }
    let host = host_of(addr);
    let ok = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{addr} is not a loopback address; pass --allow-remote to target another host"
        ))
    }
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
}
