//! Support code shared by the integration tests: builders for configurations and
//! credential stores, and an in-memory [`Pair`] that steps a client session against a
//! server session with no sockets (the quinn-proto pattern).
#![forbid(unsafe_code)]

pub mod doubles;

use authspec_reference::policy::maincf::MainCf;
use authspec_reference::policy::server::ServerConfig;
use authspec_reference::sasl::credentials::MemoryStore;
use authspec_reference::sasl::{CredentialStore, SeededRandom};
use authspec_reference::smtp::client::{ClientEvent, ClientSession};
use authspec_reference::smtp::server::{Delivery, Envelope, Event, Peer, ServerSession};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// The users every test and peer shares (see `tests/interop/peers.env`).
pub const ALICE: (&str, &str) = ("alice", "wonderland");
pub const BOB: (&str, &str) = ("bob", "p@ss w0rd:x");

/// A server configuration from main.cf parameters, on top of authspec's defaults.
pub fn server_config(params: &[(&str, &str)]) -> Arc<ServerConfig> {
    let mut cf = MainCf::parse("myhostname = mx.authspec.test\n", "test").expect("base main.cf");
    for (k, v) in params {
        cf.set_override(&format!("{k}={v}"))
            .unwrap_or_else(|e| panic!("bad test parameter {k}={v}: {e}"));
    }
    Arc::new(ServerConfig::from_main_cf(&cf).expect("test main.cf"))
}

/// alice and bob with plaintext passwords.
pub fn users() -> Arc<dyn CredentialStore> {
    let mut store = MemoryStore::default();
    store.insert_plain(ALICE.0, ALICE.1);
    store.insert_plain(BOB.0, BOB.1);
    Arc::new(store)
}

pub fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// A server session on a fixed seed, from 127.0.0.1, without TLS.
pub fn server(params: &[(&str, &str)]) -> ServerSession {
    ServerSession::new(
        server_config(params),
        users(),
        Box::new(SeededRandom::from_seed(7)),
        Peer {
            ip: loopback(),
            tls: false,
        },
    )
}

/// Feed `input` to `s` and return what it answered, as text. A message that ends
/// is answered as a driver with working storage would ([`Delivery::Queued`]); its
/// events stay queued for [`events`] and [`message`].
pub fn exchange(s: &mut ServerSession, input: &str) -> String {
    s.receive(input.as_bytes());
    let mut out = s.take_output();
    while s.awaiting_delivery() {
        s.delivered(Delivery::Queued);
        out.extend(s.take_output());
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first complete message among `events`: its envelope and its data joined.
pub fn message(events: &[Event]) -> Option<(Envelope, Vec<u8>)> {
    let mut current: Option<(Envelope, Vec<u8>)> = None;
    for e in events {
        match e {
            Event::MessageBegin(env) => current = Some((env.clone(), Vec::new())),
            Event::MessageData(d) => {
                if let Some((_, data)) = current.as_mut() {
                    data.extend_from_slice(d);
                }
            }
            Event::MessageEnd => return current,
            Event::MessageAbort => current = None,
            _ => {}
        }
    }
    None
}

/// The server's events so far.
pub fn events(s: &mut ServerSession) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// Steps a client session against a server session in memory. `tls` upgrades are
/// simulated: both sides are told the handshake succeeded.
#[derive(Debug)]
pub struct Pair {
    pub server: ServerSession,
    pub client: ClientSession,
    pub server_events: Vec<Event>,
    pub client_result: Option<ClientEvent>,
    /// Everything that crossed the wire, for assertions and debugging.
    pub wire: Vec<(char, Vec<u8>)>,
}

impl Pair {
    pub fn new(server: ServerSession, client: ClientSession) -> Pair {
        Pair {
            server,
            client,
            server_events: Vec::new(),
            client_result: None,
            wire: Vec::new(),
        }
    }

    /// Run until the client is done or nothing moves, bounded in steps.
    pub fn run(&mut self) {
        for _ in 0..10_000 {
            let s_out = self.server.take_output();
            let mut moved = false;
            if !s_out.is_empty() {
                moved = true;
                self.wire.push(('S', s_out.clone()));
                self.client.receive(&s_out);
            }
            let c_out = self.client.take_output();
            if !c_out.is_empty() {
                moved = true;
                self.wire.push(('C', c_out.clone()));
                self.server.receive(&c_out);
            }
            let mut server_tls = false;
            while let Some(ev) = self.server.poll_event() {
                if ev == Event::StartTls {
                    server_tls = true;
                }
                self.server_events.push(ev);
            }
            let mut client_tls = false;
            while let Some(ev) = self.client.poll_event() {
                match ev {
                    ClientEvent::StartTls => client_tls = true,
                    done @ ClientEvent::Done(_) => self.client_result = Some(done),
                }
            }
            if server_tls && client_tls {
                moved = true;
                // The server's pending output (the 220) was delivered above.
                self.server.tls_established(None);
                self.client.tls_established();
            }
            if self.client_result.is_some() && !self.server.has_output() {
                // Let the server see the QUIT the client may have queued.
                let c_out = self.client.take_output();
                if !c_out.is_empty() {
                    self.server.receive(&c_out);
                }
                return;
            }
            if !moved {
                return;
            }
        }
    }
}
