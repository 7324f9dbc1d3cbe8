//! Whole SMTP AUTH sessions through the sans-IO [`ServerSession`], in memory: what the
//! server costs per session with the network taken out.
//!
//!     cargo bench -p authspec-reference --bench session
//!
//! Each iteration: greeting, EHLO, AUTH (the client side is the reference SASL client,
//! answering the server's real challenges), QUIT. Criterion prints `thrpt` in
//! elements/s, one element being one session, i.e. sessions/s on one core.
//! SCRAM-SHA-256 is dominated by PBKDF2 (4096 iterations, RFC 7677 §4) on both sides,
//! because the user's password is stored in plaintext here.

use authspec_reference::policy::maincf::MainCf;
use authspec_reference::policy::server::ServerConfig;
use authspec_reference::sasl::credentials::MemoryStore;
use authspec_reference::sasl::{
    self, ClientCredentials, CredentialStore, Mechanism, Secret, SeededRandom,
};
use authspec_reference::smtp::reply::{ReplyLimits, parse_reply};
use authspec_reference::smtp::sasl_frame;
use authspec_reference::smtp::server::{Peer, ServerSession};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

struct Fixture {
    config: Arc<ServerConfig>,
    store: Arc<dyn CredentialStore>,
    creds: ClientCredentials,
}

fn fixture() -> Fixture {
    let cf = MainCf::parse("", "(bench)").expect("empty main.cf parses");
    let config = ServerConfig::from_main_cf(&cf).expect("default configuration is valid");
    Fixture {
        config: Arc::new(config),
        store: Arc::new(
            MemoryStore::new().with_plain("alice", Secret::from("wonderland".to_string())),
        ),
        creds: ClientCredentials {
            authcid: "alice".into(),
            password: Secret::from("wonderland".to_string()),
            authzid: None,
            host: "localhost".into(),
            port: Some(25),
        },
    }
}

/// Feeds `line` and returns the one reply it produced (code, first line's text).
fn exchange(s: &mut ServerSession, line: &[u8]) -> (u16, Vec<u8>) {
    s.receive(line);
    reply_of(s)
}

fn reply_of(s: &mut ServerSession) -> (u16, Vec<u8>) {
    let out = s.take_output();
    let (r, _) = parse_reply(&out, &ReplyLimits::default())
        .expect("the reference server sends well-formed replies")
        .expect("one complete reply");
    let text = r.lines.first().map(|l| l.text.clone()).unwrap_or_default();
    (r.code, text)
}

fn session(f: &Fixture, mech: Mechanism, seed: u64) {
    let mut s = ServerSession::new(
        Arc::clone(&f.config),
        Arc::clone(&f.store),
        Box::new(SeededRandom::from_seed(seed)),
        Peer {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            tls: false,
        },
    );
    assert_eq!(reply_of(&mut s).0, 220);
    assert_eq!(exchange(&mut s, b"EHLO bench.example\r\n").0, 250);
    let mut rng = SeededRandom::from_seed(!seed);
    let mut client = sasl::client(mech, &f.creds, &mut rng);
    let ir = if mech.server_first() {
        None
    } else {
        client.initial_response().expect("initial response")
    };
    let line = match ir {
        Some(ir) => format!(
            "AUTH {} {}\r\n",
            mech.name(),
            sasl_frame::encode_initial_response(&ir)
        ),
        None => format!("AUTH {}\r\n", mech.name()),
    };
    let (mut code, mut text) = exchange(&mut s, line.as_bytes());
    while code == 334 {
        let challenge = sasl_frame::decode_challenge(&text).expect("base64 challenge");
        let resp = client.step(&challenge).expect("client answers");
        let mut out = sasl_frame::encode_response(&resp).into_bytes();
        out.extend_from_slice(b"\r\n");
        (code, text) = exchange(&mut s, &out);
    }
    assert_eq!(code, 235, "{mech}: {}", String::from_utf8_lossy(&text));
    client.verify_success(None).expect("server proved itself");
    assert_eq!(exchange(&mut s, b"QUIT\r\n").0, 221);
    black_box(s.is_closed());
}

fn sessions(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Elements(1));
    for mech in [Mechanism::Plain, Mechanism::CramMd5, Mechanism::ScramSha256] {
        let mut seed = 0u64;
        g.bench_function(mech.name(), |b| {
            b.iter(|| {
                seed = seed.wrapping_add(1);
                session(&f, mech, seed);
            });
        });
    }
    g.finish();
}

criterion_group!(benches, sessions);
criterion_main!(benches);
