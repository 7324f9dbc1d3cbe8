//! The runner against hostile targets: each ends within its timeout with a clear error
//! verdict, never a hang and never unbounded memory. A dead target stops the whole run
//! at the preflight, with one error, instead of timing out scenario by scenario.

use authspec::report::Verdict;
use authspec::runner::{self, RemoteTarget, RunConfig, Target, TlsMode};
use authspec::scenario::{Scenario, load_str};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PLAIN_IR: &str = r#"
id: test/plain-ir
title: AUTH PLAIN with an initial response
spec: ["RFC4954 §4 MUST"]
quote: 'RFC 4954 §4: "the server ... MUST reject the AUTH command" or complete it'
steps:
  - expect: { code: 220 }
  - send: EHLO client.example.com
  - expect: { code: 250 }
  - auth: { mechanism: PLAIN }
  - send: QUIT
  - expect: { code: 221 }
"#;

fn scenarios(n: usize) -> Vec<Scenario> {
    (0..n)
        .map(|i| {
            load_str(
                &PLAIN_IR.replace("test/plain-ir", &format!("test/plain-ir-{i}")),
                "inline.yaml",
            )
            .unwrap()
        })
        .collect()
}

fn config(addr: String, timeout: Duration) -> RunConfig {
    let mut cfg = RunConfig::embedded();
    cfg.target = Target::Remote(RemoteTarget {
        addr,
        tls: TlsMode::Plain,
        tls_insecure: true,
        ca_file: None,
        sni: None,
    });
    cfg.timeout = timeout;
    // One at a time, so a runner that timed out scenario by scenario would blow the
    // bound by far (100 scenarios × the timeout).
    cfg.jobs = 1;
    cfg
}

/// Accepts connections and hands each to `behave`.
async fn hostile<F, Fut>(behave: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let behave = std::sync::Arc::new(behave);
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let b = std::sync::Arc::clone(&behave);
            tokio::spawn(async move { b(s).await });
        }
    });
    addr
}

/// What a line server does with one command line (upper-cased).
enum Answer {
    Reply(&'static [u8]),
    /// Send these bytes, then close.
    Close(&'static [u8]),
    Nothing,
}

/// A server that greets with `greeting`, then answers each line as `answer` says.
async fn line_server(greeting: &'static [u8], answer: fn(&str) -> Answer) -> String {
    hostile(move |mut s| async move {
        let mut buf = Vec::new();
        let _ = s.write_all(greeting).await;
        let mut b = [0u8; 1024];
        loop {
            let n = match s.read(&mut b).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            buf.extend_from_slice(&b[..n]);
            while let Some(pos) = buf.iter().position(|c| *c == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                match answer(&String::from_utf8_lossy(&line).to_ascii_uppercase()) {
                    Answer::Reply(r) => {
                        let _ = s.write_all(r).await;
                    }
                    Answer::Close(r) => {
                        let _ = s.write_all(r).await;
                        return;
                    }
                    Answer::Nothing => {}
                }
            }
        }
    })
    .await
}

/// The bound every case must end within: a few timeouts, not one per scenario. This is
/// a functional bound (the run must not wait once per scenario), with slack for a
/// loaded machine, not a speed figure.
fn bounded(start: Instant, timeout: Duration) {
    assert!(
        start.elapsed() < timeout * 4 + Duration::from_secs(10),
        "took {:?} with a {:?} timeout",
        start.elapsed(),
        timeout
    );
}

#[tokio::test]
async fn silent_server_stops_the_run_at_the_preflight() {
    let addr = hostile(|mut s| async move {
        let mut b = [0u8; 64];
        // Read and never answer.
        while let Ok(n) = s.read(&mut b).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let err = runner::run(scenarios(100), &config(addr, timeout))
        .await
        .expect_err("a silent target is unusable");
    bounded(start, timeout);
    assert!(err.to_string().contains("greeting"), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn endless_line_is_cut_off_with_bounded_memory() {
    let addr = hostile(|mut s| async move {
        let chunk = vec![b'x'; 64 * 1024];
        let _ = s.write_all(b"220-").await;
        for _ in 0..10_000 {
            if s.write_all(&chunk).await.is_err() {
                break;
            }
        }
    })
    .await;
    let timeout = Duration::from_secs(2);
    let start = Instant::now();
    let err = runner::run(scenarios(3), &config(addr, timeout))
        .await
        .expect_err("an endless greeting is unusable");
    bounded(start, timeout);
    assert!(err.to_string().contains("malformed"), "{err}");
}

#[tokio::test]
async fn endless_multiline_reply_is_cut_off() {
    let addr = hostile(|mut s| async move {
        let _ = s.write_all(b"220 hi\r\n").await;
        let mut b = [0u8; 512];
        let _ = s.read(&mut b).await;
        for _ in 0..200_000 {
            if s.write_all(b"250-CAPABILITY\r\n").await.is_err() {
                break;
            }
        }
    })
    .await;
    let timeout = Duration::from_secs(2);
    let start = Instant::now();
    let err = runner::run(scenarios(3), &config(addr, timeout))
        .await
        .expect_err("100,000 capability lines are refused");
    bounded(start, timeout);
    assert!(
        err.to_string().contains("EHLO") || err.to_string().contains("malformed"),
        "{err}"
    );
}

#[tokio::test]
async fn refused_connection_stops_the_run() {
    // Bind then drop, so the port is (very likely) closed.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().to_string()
    };
    let start = Instant::now();
    let err = runner::run(scenarios(5), &config(addr, Duration::from_secs(1)))
        .await
        .expect_err("nothing listens");
    bounded(start, Duration::from_secs(1));
    assert!(err.to_string().contains("connect"), "{err}");
}

#[tokio::test]
async fn drop_in_the_middle_of_auth_is_a_verdict_not_a_hang() {
    let addr = line_server(b"220 hostile ESMTP\r\n", |line| {
        if line.starts_with("EHLO") {
            Answer::Reply(b"250-hostile\r\n250 AUTH PLAIN LOGIN\r\n")
        } else if line.starts_with("QUIT") {
            Answer::Close(b"221 bye\r\n")
        } else if line.starts_with("AUTH") {
            // Half an answer, then gone.
            Answer::Close(b"334")
        } else {
            Answer::Nothing
        }
    })
    .await;
    let timeout = Duration::from_secs(1);
    let start = Instant::now();
    let report = runner::run(scenarios(4), &config(addr, timeout))
        .await
        .expect("the preflight works");
    bounded(start, timeout);
    assert_eq!(report.results.len(), 4);
    for r in &report.results {
        assert!(
            matches!(r.verdict, Verdict::Fail { .. } | Verdict::Error { .. }),
            "{:?}",
            r.verdict
        );
        let reason = r.verdict.reason().unwrap_or_default();
        assert!(reason.contains("closed"), "{reason}");
    }
    assert_ne!(report.exit_code(), 0);
}

#[tokio::test]
async fn server_that_never_answers_auth_times_out_per_step() {
    let addr = hostile(|mut s| async move {
        let _ = s.write_all(b"220 slow ESMTP\r\n").await;
        let mut buf = Vec::new();
        let mut b = [0u8; 1024];
        loop {
            let n = match s.read(&mut b).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            buf.extend_from_slice(&b[..n]);
            while let Some(pos) = buf.iter().position(|c| *c == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let upper = String::from_utf8_lossy(&line).to_ascii_uppercase();
                if upper.starts_with("EHLO") {
                    let _ = s.write_all(b"250-slow\r\n250 AUTH PLAIN\r\n").await;
                } else if upper.starts_with("QUIT") {
                    let _ = s.write_all(b"221 bye\r\n").await;
                    return;
                }
                // AUTH: silence.
            }
        }
    })
    .await;
    let timeout = Duration::from_millis(400);
    let start = Instant::now();
    let report = runner::run(scenarios(2), &config(addr, timeout))
        .await
        .expect("the preflight works");
    bounded(start, timeout);
    for r in &report.results {
        let reason = r.verdict.reason().unwrap_or_default();
        assert!(
            matches!(r.verdict, Verdict::Error { .. }),
            "{:?}",
            r.verdict
        );
        assert!(reason.contains("timed out"), "{reason}");
    }
}

/// A server that answers NOOP with 421 and closes: a scenario that accepts the 421 as
/// an ending alternative stops there, instead of failing the step after it on the
/// closed connection (the "accepts 421, then expects NOOP to get 250" slip).
#[tokio::test]
async fn an_ending_alternative_stops_the_scenario() {
    let addr = line_server(b"220 terse ESMTP\r\n", |line| {
        if line.starts_with("EHLO") {
            Answer::Reply(b"250 terse\r\n")
        } else {
            Answer::Close(b"421 closing\r\n")
        }
    })
    .await;
    let text = "id: t/end\ntitle: t\nspec: [\"RFC5321 §4.1.1.9 MUST\"]\nquote: q\nsteps:\n  - expect: { code: 220 }\n  - send: EHLO x\n  - expect: { code: 250 }\n  - send: NOOP\n  - expect:\n      code: 250\n      alternatives:\n        - { code: 421, end: true, note: closes }\n  - send: NOOP\n  - expect: { code: 250 }\n";
    let sc = load_str(text, "inline.yaml").unwrap();
    let report = runner::run(vec![sc], &config(addr, Duration::from_secs(2)))
        .await
        .expect("the preflight works");
    assert_eq!(
        report.results[0].verdict,
        Verdict::NonStrict {
            note: "closes".into()
        }
    );
}
