//! `authspec-interop-lettre HOST PORT [MECHANISMS]`: send one message through lettre's
//! synchronous SMTP transport, authenticating as $AUTHSPEC_USER with $AUTHSPEC_PASSWORD
//! (environment, never argv). MECHANISMS is a comma-separated list in lettre's order of
//! preference (PLAIN, LOGIN, XOAUTH2); without it lettre's default list is used.
//! Exit 0 when the message was accepted, 1 otherwise (the error on stderr).
#![forbid(unsafe_code)]

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::{Message, SmtpTransport, Transport};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: authspec-interop-lettre HOST PORT [PLAIN,LOGIN,XOAUTH2]");
        std::process::exit(2);
    }
    let host = &args[1];
    let Ok(port) = args[2].parse::<u16>() else {
        eprintln!("bad port {}", args[2]);
        std::process::exit(2);
    };
    let user = std::env::var("AUTHSPEC_USER").unwrap_or_default();
    let password = std::env::var("AUTHSPEC_PASSWORD").unwrap_or_default();
    let mut builder = SmtpTransport::builder_dangerous(host.as_str())
        .port(port)
        .timeout(Some(Duration::from_secs(10)))
        .credentials(Credentials::new(user, password));
    if let Some(list) = args.get(3) {
        let mut mechs = Vec::new();
        for m in list.split(',') {
            mechs.push(match m.to_ascii_uppercase().as_str() {
                "PLAIN" => Mechanism::Plain,
                "LOGIN" => Mechanism::Login,
                "XOAUTH2" => Mechanism::Xoauth2,
                other => {
                    eprintln!("lettre has no mechanism {other}");
                    std::process::exit(2);
                }
            });
        }
        builder = builder.authentication(mechs);
    }
    let mailer = builder.build();
    let email = match Message::builder()
        .from("alice@authspec.test".parse().expect("literal address"))
        .to("bob@example.net".parse().expect("literal address"))
        .subject("authspec interop (lettre)")
        .body(String::from("hello from lettre\r\n"))
    {
        Ok(m) => m,
        Err(e) => {
            eprintln!("building the message: {e}");
            std::process::exit(2);
        }
    };
    match mailer.send(&email) {
        Ok(r) => {
            println!("accepted: {} {}", r.code(), r.message().collect::<Vec<_>>().join(" "));
        }
        Err(e) => {
            eprintln!("lettre: {e}");
            std::process::exit(1);
        }
    }
}
