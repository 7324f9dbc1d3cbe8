//! Fuzz entry points for the policy parsers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::policy::{ClientConfig, MainCf, PasswordMap, ServerConfig};

/// Parse arbitrary bytes as a main.cf (lossy UTF-8), apply each line again as a `-o`
/// override, and build both configurations. Must never panic; every error must name a
/// source.
pub fn main_cf(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for parsed in [
        MainCf::parse(&text, "fuzz.cf"),
        MainCf::parse_lenient(&text, "fuzz.cf"),
    ] {
        let mut cf = match parsed {
            Ok(cf) => cf,
            Err(e) => {
                assert!(!e.source.is_empty());
                let _ = e.to_string();
                continue;
            }
        };
        for line in text.lines().take(16) {
            let _ = cf.set_override(line);
        }
        let _ = cf.print(true);
        if let Ok(server) = ServerConfig::from_main_cf(&cf) {
            for ip in [
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
            ] {
                for tls in [false, true] {
                    if let Some(list) = server.auth_mechanisms_offered(tls, ip) {
                        assert!(!list.is_empty());
                    }
                }
            }
        }
        if let Ok(client) = ClientConfig::from_main_cf(&cf) {
            let offered: Vec<String> = text.split_whitespace().take(8).map(str::to_owned).collect();
            let _ = client.choose_mechanism(&offered, false);
        }
    }
}

/// Parse arbitrary bytes as an smtp_sasl_password_maps text file and look up keys
/// taken from the input. Must never panic, and `Debug` must not print passwords.
pub fn password_map(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(map) = PasswordMap::parse(&text, "fuzz_passwd") else {
        return;
    };
    let _ = format!("{map:?}");
    for word in text.split_whitespace().take(8) {
        let _ = map.lookup(word, 587, word);
    }
}
