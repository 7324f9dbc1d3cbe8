//! Command parser throughput: authspec against smtp-proto 0.2 on the same corpus.
//!
//! Besides criterion's report, prints lines/s for both parsers and their ratio
//! (authspec / smtp-proto; the goal is ≥ 1.0). smtp-proto parses from an iterator
//! over the line with its CRLF, authspec from the line without it, which is how
//! each is used after framing.

use authspec_reference::smtp::command;
use criterion::{Criterion, black_box, criterion_group};
use std::time::{Duration, Instant};

const CORPUS: &[&str] = &[
    "EHLO client.example.com",
    "EHLO [192.0.2.25]",
    "HELO mx1.example.org",
    "MAIL FROM:<alice@example.com>",
    "MAIL FROM:<bounce-12345@lists.example.net> SIZE=48213 BODY=8BITMIME",
    "MAIL FROM:<> SIZE=1024",
    "MAIL FROM:<e=mc2@example.com> AUTH=e+3Dmc2@example.com",
    "MAIL FROM:<user@example.com> BODY=8BITMIME SMTPUTF8",
    "RCPT TO:<bob@example.org>",
    "RCPT TO:<carol.smith@mail.example.co.uk>",
    "RCPT TO:<Postmaster>",
    "rcpt to:<dave@example.com>",
    "AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=",
    "AUTH LOGIN",
    "AUTH CRAM-MD5",
    "DATA",
    "QUIT",
    "NOOP",
    "RSET",
    "STARTTLS",
    "VRFY postmaster",
    "HELP",
];

fn authspec_all(lines: &[Vec<u8>]) -> usize {
    let mut ok = 0;
    for l in lines {
        if command::parse(black_box(l)).is_ok() {
            ok += 1;
        }
    }
    ok
}

fn smtp_proto_all(lines: &[Vec<u8>]) -> usize {
    let mut ok = 0;
    for l in lines {
        if smtp_proto::Request::parse(&mut black_box(l).iter()).is_ok() {
            ok += 1;
        }
    }
    ok
}

fn corpora() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let bare = CORPUS.iter().map(|l| l.as_bytes().to_vec()).collect();
    let crlf = CORPUS
        .iter()
        .map(|l| format!("{l}\r\n").into_bytes())
        .collect();
    (bare, crlf)
}

/// Lines per second of `f` over `lines`, timed over about `budget`.
fn lines_per_second(lines: &[Vec<u8>], budget: Duration, f: fn(&[Vec<u8>]) -> usize) -> f64 {
    // Warm up, then time whole passes until the budget is spent.
    for _ in 0..1000 {
        black_box(f(lines));
    }
    let start = Instant::now();
    let mut passes = 0u64;
    while start.elapsed() < budget {
        for _ in 0..1000 {
            black_box(f(lines));
        }
        passes += 1000;
    }
    (passes as f64 * lines.len() as f64) / start.elapsed().as_secs_f64()
}

fn report() {
    let (bare, crlf) = corpora();
    let a_ok = authspec_all(&bare);
    let s_ok = smtp_proto_all(&crlf);
    println!(
        "corpus: {} lines; accepted by authspec: {a_ok}, by smtp-proto: {s_ok}",
        CORPUS.len()
    );
    let budget = Duration::from_secs(2);
    // Alternate to spread noise from the shared machine over both.
    let mut a = Vec::new();
    let mut s = Vec::new();
    for _ in 0..3 {
        a.push(lines_per_second(&bare, budget, authspec_all));
        s.push(lines_per_second(&crlf, budget, smtp_proto_all));
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (a, s) = (best(&a), best(&s));
    println!("authspec   command::parse        {:>12.0} lines/s", a);
    println!("smtp-proto Request::parse        {:>12.0} lines/s", s);
    println!("ratio authspec / smtp-proto      {:>12.2}x", a / s);
}

fn bench(c: &mut Criterion) {
    let (bare, crlf) = corpora();
    let mut g = c.benchmark_group("command corpus");
    g.throughput(criterion::Throughput::Elements(CORPUS.len() as u64));
    g.bench_function("authspec", |b| b.iter(|| authspec_all(&bare)));
    g.bench_function("smtp-proto", |b| b.iter(|| smtp_proto_all(&crlf)));
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
