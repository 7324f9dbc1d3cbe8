//! The reference server's driver against hostile clients: slowloris, floods, huge
//! lines, NUL and invalid UTF-8, endless AUTH exchanges, abusive pipelining and
//! half-closed sockets. Each case checks the server's answer and that it keeps serving
//! new sessions; memory is measured and printed (figures, not timed assertions).

use authspec_reference::net::server::{ServerShared, serve};
use authspec_tests::{server_config, users};
use base64::Engine as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(params: &[(&str, &str)]) -> (String, Arc<ServerShared>) {
    let shared = Arc::new(ServerShared::new(
        server_config(params),
        users(),
        None,
        None,
        Some(9),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(serve(listener, Arc::clone(&shared)));
    (addr, shared)
}

/// Send `input`, then read everything until the server closes or `within` passes.
async fn converse(addr: &str, input: &[u8], within: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut out = Vec::new();
    let writer = async {
        for chunk in input.chunks(64 * 1024) {
            if s.write_all(chunk).await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(within, writer).await;
    let _ = tokio::time::timeout(within, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn plain(user: &str, pw: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pw}"))
}

/// A full, quick AUTH session: proves the server still serves new clients.
async fn healthy_session(addr: &str) -> bool {
    let input = format!(
        "EHLO ok.example\r\nAUTH PLAIN {}\r\nQUIT\r\n",
        plain("alice", "wonderland")
    );
    let r = converse(addr, input.as_bytes(), Duration::from_secs(10)).await;
    r.contains("235 2.7.0") && r.contains("221 ")
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn fd_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_shed_by_smtpd_timeout_while_new_sessions_work() {
    let (addr, _shared) = start(&[
        ("smtpd_timeout", "2s"),
        ("smtpd_client_connection_count_limit", "0"),
    ])
    .await;
    // Each slow connection costs two descriptors in this process.
    let n = 1000.min(fd_limit().saturating_sub(200) / 2);
    let rss_before = rss_kib();
    let mut slow = Vec::with_capacity(n);
    for _ in 0..n {
        slow.push(TcpStream::connect(&addr).await.unwrap());
    }
    let started = Instant::now();
    // Trickle: one byte of a command that never ends, every 300 ms.
    let trickle = tokio::spawn(async move {
        let mut closed = vec![false; slow.len()];
        let mut buf = vec![0u8; 256];
        for round in 0..40 {
            for (i, s) in slow.iter_mut().enumerate() {
                if closed[i] {
                    continue;
                }
                if s.write_all(b"E").await.is_err() {
                    closed[i] = true;
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            if round % 4 == 3 {
                for (i, s) in slow.iter_mut().enumerate() {
                    if closed[i] {
                        continue;
                    }
                    // Drain replies without blocking; EOF means shed.
                    loop {
                        match tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await
                        {
                            Ok(Ok(0)) | Ok(Err(_)) => {
                                closed[i] = true;
                                break;
                            }
                            Ok(Ok(k)) => {
                                let t = String::from_utf8_lossy(&buf[..k]);
                                if t.contains("421 4.4.2") {
                                    closed[i] = true;
                                    break;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                }
            }
            if closed.iter().all(|c| *c) {
                break;
            }
        }
        closed.iter().filter(|c| **c).count()
    });
    // While the slow connections trickle, new sessions are served.
    let mut healthy = 0;
    for _ in 0..10 {
        if healthy_session(&addr).await {
            healthy += 1;
        }
    }
    let rss_during = rss_kib();
    let shed = trickle.await.unwrap();
    let took = started.elapsed();
    if let (Some(a), Some(b)) = (rss_before, rss_during) {
        eprintln!(
            "slowloris: {n} connections, RSS {a} KiB -> {b} KiB ({} KiB per connection, client and server sides together); shed {shed} in {took:?}",
            b.saturating_sub(a) / n.max(1) as u64
        );
    }
    assert_eq!(healthy, 10, "new sessions must be served during the attack");
    assert_eq!(
        shed, n,
        "every trickling connection is closed by smtpd_timeout"
    );
}

#[tokio::test]
async fn one_megabyte_line_is_refused_once_and_the_session_survives() {
    let (addr, _) = start(&[]).await;
    let mut input = vec![b'A'; 1 << 20];
    input.extend_from_slice(b"\r\nNOOP\r\nQUIT\r\n");
    let r = converse(&addr, &input, Duration::from_secs(10)).await;
    assert_eq!(
        r.matches("500 5.5.2 Error: line too long").count(),
        1,
        "{r}"
    );
    assert!(r.contains("250 2.0.0 Ok"), "{r}");
    assert!(r.ends_with("221 2.0.0 Bye\r\n"), "{r}");
}

#[tokio::test]
async fn nul_bytes_and_invalid_utf8_are_refused() {
    let (addr, _) = start(&[]).await;
    let r = converse(
        &addr,
        b"EHLO a\0b\r\nEHLO \xff\xfe\r\nNOOP\r\nQUIT\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(r.contains("500 5.5.2 Error: NUL character received"), "{r}");
    assert!(
        r.contains("500 5.5.2 Error: 8-bit character in command"),
        "{r}"
    );
    assert!(r.ends_with("221 2.0.0 Bye\r\n"), "{r}");
}

#[tokio::test]
async fn huge_base64_response_is_cut_at_the_sasl_limit() {
    let (addr, _) = start(&[]).await;
    let mut input = b"EHLO a\r\nAUTH PLAIN\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'Q', 200_000));
    input.extend_from_slice(b"\r\nNOOP\r\nQUIT\r\n");
    let r = converse(&addr, &input, Duration::from_secs(10)).await;
    assert!(
        r.contains("500 5.5.6 Authentication Exchange line is too long"),
        "{r}"
    );
    assert!(r.contains("250 2.0.0 Ok"), "{r}");
}

#[tokio::test]
async fn endless_auth_attempts_hit_the_hard_error_limit() {
    let (addr, _) = start(&[("smtpd_hard_error_limit", "5")]).await;
    let mut input = b"EHLO a\r\n".to_vec();
    for _ in 0..1000 {
        input.extend_from_slice(format!("AUTH PLAIN {}\r\n", plain("alice", "nope")).as_bytes());
    }
    let r = converse(&addr, &input, Duration::from_secs(10)).await;
    assert_eq!(r.matches("535 5.7.8").count(), 5, "{r}");
    assert!(
        r.ends_with("421 4.7.0 mx.authspec.test Error: too many errors\r\n"),
        "{r}"
    );
}

#[tokio::test]
async fn abusive_pipelining_gets_every_reply_in_order() {
    let (addr, _) = start(&[]).await;
    let mut input = b"EHLO a\r\n".to_vec();
    for _ in 0..20_000 {
        input.extend_from_slice(b"NOOP\r\n");
    }
    input.extend_from_slice(b"QUIT\r\n");
    let r = converse(&addr, &input, Duration::from_secs(30)).await;
    assert_eq!(r.matches("250 2.0.0 Ok\r\n").count(), 20_000);
    assert!(r.ends_with("221 2.0.0 Bye\r\n"));
}

#[tokio::test]
async fn half_closed_socket_gets_its_replies_then_close() {
    let (addr, _) = start(&[]).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"EHLO a\r\nNOOP\r\n").await.unwrap();
    s.shutdown().await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the server closes after the client's EOF")
        .unwrap();
    let r = String::from_utf8_lossy(&out);
    assert!(r.contains("250 2.0.0 Ok"), "{r}");
}

#[tokio::test]
async fn garbage_flood_is_bounded_by_the_error_limit() {
    let (addr, shared) = start(&[("smtpd_error_sleep_time", "0s")]).await;
    let garbage: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let r = converse(&addr, &garbage, Duration::from_secs(10)).await;
    assert!(r.contains("421 4.7.0"), "{r}");
    assert!(healthy_session(&addr).await);
    drop(shared);
}
