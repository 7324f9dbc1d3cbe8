//! The floor server of `tests/bench/server-vs-postfix.sh`: the socket work of one
//! AUTH PLAIN session and nothing else.
//!
//! It accepts, sets TCP_NODELAY, writes a greeting, and answers each CRLF-terminated
//! line with a canned reply of the same size as `authspec serve`'s (EHLO: the
//! multi-line capability list; AUTH: 235; QUIT: 221, then it shuts the socket down and
//! closes; anything else: 250). One write per read, as the reference server's driver
//! does. There is no parsing, no policy, no SASL and no logging, so its CPU time per
//! session approximates what the kernel and tokio cost for a session: the floor
//! against which `authspec serve` is compared.
//!
//!   cargo run --release -p authspec --example floor_server -- [ADDR]
//!
//! ADDR defaults to 127.0.0.1:0; it prints `listening on ADDR` as `authspec serve` does.
//! It refuses a non-loopback address, and it holds at most 10,000 connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const GREETING: &[u8] = b"220 localhost ESMTP authspec\r\n";
const EHLO: &[u8] = b"250-localhost\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH SCRAM-SHA-256 SCRAM-SHA-1 DIGEST-MD5 CRAM-MD5 OAUTHBEARER XOAUTH2 PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n";
const AUTH: &[u8] = b"235 2.7.0 Authentication successful\r\n";
const QUIT: &[u8] = b"221 2.0.0 Bye\r\n";
const OTHER: &[u8] = b"250 2.0.0 Ok\r\n";
const MAX_CONNECTIONS: usize = 10_000;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() {
        eprintln!("floor_server: {local} is not a loopback address");
        std::process::exit(2);
    }
    println!("listening on {local}");
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (mut stream, _) = listener.accept().await?;
        if open.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::Relaxed);
            continue;
        }
        let open = Arc::clone(&open);
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let _ = session(&mut stream).await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn session(stream: &mut tokio::net::TcpStream) -> std::io::Result<()> {
    stream.write_all(GREETING).await?;
    let mut buf = vec![0u8; 4096];
    let mut line_start = true;
    let mut first = 0u8;
    let mut out = Vec::with_capacity(512);
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let mut quit = false;
        for &b in &buf[..n] {
            if line_start {
                first = b.to_ascii_uppercase();
                line_start = false;
            }
            if b == b'\n' {
                line_start = true;
                out.extend_from_slice(match first {
                    b'E' => EHLO,
                    b'A' => AUTH,
                    b'Q' => {
                        quit = true;
                        QUIT
                    }
                    _ => OTHER,
                });
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if quit {
            return stream.shutdown().await;
        }
    }
}
