//! `smtp_sasl_password_maps` lookup order, end to end: `authspec send` against a
//! scripted one-connection server that records which credentials arrive, and the
//! `PasswordMap::lookup` API for the next-hop-domain step. Postfix's SASL_README: the
//! client looks up the remote host (`[host]:port`, `[host]`, `host`) first, then the
//! next-hop destination.
//!
//! The scenario format cannot express this: a server-role scenario configures the
//! embedded client from `${user}`/`${password}`, not from a password file.

use authspec_reference::policy::client::PasswordMap;
use base64::Engine as _;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::thread;

const BIN: &str = env!("CARGO_BIN_EXE_authspec");

/// What the scripted server saw: the decoded `AUTH PLAIN` initial response, or `None`
/// when the client sent MAIL without authenticating.
fn serve_once(listener: TcpListener) -> thread::JoinHandle<Option<Vec<u8>>> {
    thread::spawn(move || {
        let (stream, _) = listener.accept().ok()?;
        let mut w = stream.try_clone().ok()?;
        let mut r = BufReader::new(stream);
        let mut seen = None;
        let mut line = String::new();
        let say = |w: &mut std::net::TcpStream, s: &str| {
            let _ = w.write_all(s.as_bytes());
        };
        say(&mut w, "220 mx.example.com ESMTP\r\n");
        loop {
            line.clear();
            if r.read_line(&mut line).ok()? == 0 {
                return seen;
            }
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("EHLO") {
                say(&mut w, "250-mx.example.com\r\n250 AUTH PLAIN\r\n");
            } else if let Some(ir) = line.strip_prefix("AUTH PLAIN ") {
                seen = base64::engine::general_purpose::STANDARD
                    .decode(ir.trim_end())
                    .ok();
                say(&mut w, "235 2.7.0 Authentication successful\r\n");
            } else if upper.starts_with("DATA") {
                say(&mut w, "354 go ahead\r\n");
                loop {
                    line.clear();
                    if r.read_line(&mut line).ok()? == 0 || line == ".\r\n" {
                        break;
                    }
                }
                say(&mut w, "250 2.0.0 Ok: queued\r\n");
            } else if upper.starts_with("QUIT") {
                say(&mut w, "221 2.0.0 Bye\r\n");
                return seen;
            } else {
                say(&mut w, "250 2.0.0 Ok\r\n");
            }
        }
    })
}

/// Run `authspec send` with `map` as smtp_sasl_password_maps; returns what the server
/// received as credentials.
fn send_with_map(map: &str) -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = serve_once(listener);
    let path = dir.path().join("sasl_passwd");
    std::fs::write(&path, map.replace("PORT", &port.to_string())).unwrap();
    let status = Command::new(BIN)
        .args(["send", "--server", &format!("127.0.0.1:{port}")])
        .args(["--from", "alice@authspec.test", "--to", "bob@authspec.test"])
        .args(["--timeout", "10"])
        .arg("-o")
        .arg(format!(
            "smtp_sasl_password_maps=texthash:{}",
            path.display()
        ))
        .args(["-o", "smtp_sasl_auth_enable=yes"])
        // PLAIN is what the scripted server offers; Postfix's default forbids it.
        .args(["-o", "smtp_sasl_security_options=noanonymous"])
        .status()
        .expect("run authspec send");
    let seen = server.join().unwrap();
    assert!(status.success(), "authspec send failed: {status}");
    seen
}

#[test]
fn host_and_port_entry_wins_over_host_entries() {
    let seen = send_with_map(
        "127.0.0.1 plainhost:pw1\n[127.0.0.1] brackets:pw2\n[127.0.0.1]:PORT withport:pw3\n",
    );
    assert_eq!(seen.as_deref(), Some(&b"\0withport\0pw3"[..]));
}

#[test]
fn bracketed_host_wins_over_bare_host() {
    let seen = send_with_map("127.0.0.1 plainhost:pw1\n[127.0.0.1] brackets:p w:2\n");
    // The password is everything after the first colon, spaces and colons included.
    assert_eq!(seen.as_deref(), Some(&b"\0brackets\0p w:2"[..]));
}

#[test]
fn bare_host_entry_is_used_when_it_is_the_only_match() {
    let seen = send_with_map("elsewhere.example other:x\n127.0.0.1 plainhost:pw1\n");
    assert_eq!(seen.as_deref(), Some(&b"\0plainhost\0pw1"[..]));
}

#[test]
fn no_entry_means_no_auth() {
    // Postfix sends the mail without AUTH when the map has nothing for the server.
    let seen = send_with_map("elsewhere.example other:x\n");
    assert_eq!(seen, None);
}

#[test]
fn host_first_then_next_hop_domain() {
    // With an IP literal there is no next-hop domain to fall back to, so this step is
    // checked on the API with host names.
    let map = PasswordMap::parse(
        "example.com domainuser:d\nmx.example.com hostuser:h\n",
        "(test)",
    )
    .unwrap();
    let (user, _) = map.lookup("mx.example.com", 587, "example.com").unwrap();
    assert_eq!(user, "hostuser");
    let (user, _) = map.lookup("mx2.example.com", 587, "example.com").unwrap();
    assert_eq!(user, "domainuser");
    let (user, _) = map.lookup("MX.Example.COM", 25, "example.com").unwrap();
    assert_eq!(user, "hostuser", "keys compare ignoring case");
    assert!(map.lookup("mx.example.net", 25, "example.net").is_none());
}
