//! Command parsing, authspec against smtp-proto (Stalwart), the speed anchor.
//!
//!     cargo bench -p authspec-reference --bench parser
//!
//! Two figures, side by side in one run:
//! 1. **Parser**: each parser on the same framed command lines (authspec's
//!    `command::parse` on the line, smtp-proto's `Request::parse` on the line with its
//!    CRLF). This is the figure the project's goal (ratio ≥ 1.0) is about.
//! 2. **Stream**: framing and parsing together, from 4096-octet reads.
//!
//! Both parsers get the same realistic client stream (EHLO, AUTH with initial
//! responses, MAIL with ESMTP parameters, RCPT, DATA, RSET, NOOP, QUIT …) in 4096-octet
//! reads, as the server driver receives it, and must frame every line and parse it
//! into a command. Printed: lines/s for each (median of ROUNDS timed rounds after a
//! warm-up, the two sides of a ratio alternating round by round) and the ratio
//! authspec / smtp-proto (goal ≥ 1.0).
//!
//! The work is not identical and the numbers should be read with that in mind:
//! authspec also records framing deviations (bare LF, NUL, 8-bit, over-long lines)
//! per line, where smtp-proto accepts a bare LF silently. Both sides borrow: the
//! ratios use `LineReader::next_command_line_ref` (the line borrows from the
//! reader's buffer) and `command::parse_ref` (the command borrows from the line), as
//! smtp-proto's `Request<Cow<str>>` borrows from its input. The figures with owned
//! commands (`command::parse`) and owned lines (`next_command_line`, a `Vec` per
//! line) are printed after them.

use authspec_reference::smtp::command;
use authspec_reference::smtp::line::LineReader;
use smtp_proto::request::receiver::RequestReceiver;
use std::hint::black_box;
use std::time::{Duration, Instant};

const LINES: &[&str] = &[
    "EHLO client.example.com",
    "STARTTLS",
    "EHLO client.example.com",
    "AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=",
    "AUTH CRAM-MD5",
    "AUTH SCRAM-SHA-256 biwsbj1hbGljZSxyPWZ5a28rZDJsYmJGZ09OUnY5cWt4ZGF3TA==",
    "MAIL FROM:<alice@example.com> SIZE=12345 BODY=8BITMIME AUTH=<>",
    "MAIL FROM:<bounce+list-1234@lists.example.org>",
    "RCPT TO:<bob@example.net>",
    "RCPT TO:<carol.smith@sub.example.co.uk> NOTIFY=SUCCESS,FAILURE",
    "DATA",
    "RSET",
    "NOOP",
    "HELO relay.example.com",
    "VRFY postmaster",
    "QUIT",
];

/// How many times the line set is repeated in one round.
const REPEAT: usize = 2000;
const ROUNDS: usize = 15;
const CHUNK: usize = 4096;

fn corpus() -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..REPEAT {
        for l in LINES {
            out.extend_from_slice(l.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Returns (lines framed, commands parsed without error). Lines borrowed from the
/// reader's buffer (`next_command_line_ref`), as smtp-proto's receiver borrows from
/// its input; the deviations are recorded all the same. `parses` is monomorphised,
/// so the parser is called as directly as smtp-proto's.
fn borrowed_lines(input: &[u8], parses: impl Fn(&[u8]) -> bool) -> (usize, usize) {
    let mut reader = LineReader::new();
    let (mut lines, mut ok) = (0, 0);
    for chunk in input.chunks(CHUNK) {
        reader.push(chunk);
        while let Some(line) = reader.next_command_line_ref() {
            lines += 1;
            black_box(&line.deviations);
            if parses(line.bytes) {
                ok += 1;
            }
        }
    }
    (lines, ok)
}

/// Borrowed lines, borrowed commands (`command::parse_ref`): the ratio's figure.
fn authspec(input: &[u8]) -> (usize, usize) {
    borrowed_lines(input, |l| black_box(command::parse_ref(l)).is_ok())
}

/// Borrowed lines, owned commands (`command::parse`).
fn authspec_owned_commands(input: &[u8]) -> (usize, usize) {
    borrowed_lines(input, |l| black_box(command::parse(l)).is_ok())
}

/// Owned lines (`next_command_line`, one `Vec` per line) and owned commands, as the
/// server reads its input.
fn authspec_owned(input: &[u8]) -> (usize, usize) {
    let mut reader = LineReader::new();
    let (mut lines, mut ok) = (0, 0);
    for chunk in input.chunks(CHUNK) {
        reader.push(chunk);
        while let Some(line) = reader.next_command_line() {
            lines += 1;
            if black_box(command::parse(&line.bytes)).is_ok() {
                ok += 1;
            }
        }
    }
    (lines, ok)
}

/// Framing alone: the LineReader with its deviation scan, no command parsing.
fn authspec_framing(input: &[u8]) -> (usize, usize) {
    let mut reader = LineReader::new();
    let mut lines = 0;
    for chunk in input.chunks(CHUNK) {
        reader.push(chunk);
        while let Some(line) = reader.next_command_line_ref() {
            black_box(&line);
            lines += 1;
        }
    }
    (lines, lines)
}

fn smtp_proto(input: &[u8]) -> (usize, usize) {
    let mut receiver = RequestReceiver::default();
    let (mut lines, mut ok) = (0, 0);
    for chunk in input.chunks(CHUNK) {
        let mut iter = chunk.iter();
        loop {
            match receiver.ingest(&mut iter) {
                Ok(req) => {
                    black_box(req);
                    lines += 1;
                    ok += 1;
                }
                Err(smtp_proto::Error::NeedsMoreData { .. }) => break,
                Err(e) => {
                    black_box(e);
                    lines += 1;
                }
            }
        }
    }
    (lines, ok)
}

/// Parser only: each parser on the framed lines, as each is called after framing.
fn authspec_lines(_input: &[u8]) -> (usize, usize) {
    let (mut lines, mut ok) = (0, 0);
    for _ in 0..REPEAT {
        for l in LINES {
            lines += 1;
            if black_box(command::parse_ref(black_box(l.as_bytes()))).is_ok() {
                ok += 1;
            }
        }
    }
    (lines, ok)
}

fn smtp_proto_lines(_input: &[u8]) -> (usize, usize) {
    let crlf: Vec<Vec<u8>> = LINES
        .iter()
        .map(|l| format!("{l}\r\n").into_bytes())
        .collect();
    let (mut lines, mut ok) = (0, 0);
    for _ in 0..REPEAT {
        for l in &crlf {
            lines += 1;
            if black_box(smtp_proto::Request::parse(&mut black_box(l).iter())).is_ok() {
                ok += 1;
            }
        }
    }
    (lines, ok)
}

fn median_round(f: fn(&[u8]) -> (usize, usize), input: &[u8]) -> Duration {
    for _ in 0..3 {
        black_box(f(black_box(input)));
    }
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            black_box(f(black_box(input)));
            t.elapsed()
        })
        .collect();
    times.sort();
    times[ROUNDS / 2]
}

/// Medians of two functions timed in alternating rounds, so that a change in the
/// machine's load (it is shared) falls on both sides of a ratio alike.
fn median_rounds_paired(
    fa: fn(&[u8]) -> (usize, usize),
    fb: fn(&[u8]) -> (usize, usize),
    input: &[u8],
) -> (Duration, Duration) {
    for _ in 0..3 {
        black_box(fa(black_box(input)));
        black_box(fb(black_box(input)));
    }
    let time = |f: fn(&[u8]) -> (usize, usize)| {
        let t = Instant::now();
        black_box(f(black_box(input)));
        t.elapsed()
    };
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        ta.push(time(fa));
        tb.push(time(fb));
    }
    ta.sort();
    tb.sort();
    (ta[ROUNDS / 2], tb[ROUNDS / 2])
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and only
    // wants to know the bench still runs, so do one small round then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let input = corpus();
    let expected = LINES.len() * REPEAT;
    let (a_lines, a_ok) = authspec(&input);
    assert_eq!(authspec_owned(&input), (a_lines, a_ok));
    assert_eq!(authspec_owned_commands(&input), (a_lines, a_ok));
    let (s_lines, s_ok) = smtp_proto(&input);
    println!(
        "corpus: {} lines, {} octets, read in {CHUNK}-octet chunks",
        expected,
        input.len()
    );
    println!("authspec:   framed {a_lines}, parsed {a_ok}");
    println!("smtp-proto: framed {s_lines}, parsed {s_ok}");
    assert_eq!(a_lines, expected, "authspec framed a different line count");
    assert_eq!(
        s_lines, expected,
        "smtp-proto framed a different line count"
    );
    if quick {
        return;
    }
    let rate = |t: Duration| expected as f64 / t.as_secs_f64();
    let (tpa, tps) = median_rounds_paired(authspec_lines, smtp_proto_lines, &input);
    let (pa, ps) = (rate(tpa), rate(tps));
    println!("parser only (framed lines):");
    println!("  authspec   command::parse_ref {:>10.0} lines/s", pa);
    println!("  smtp-proto Request::parse   {:>12.0} lines/s", ps);
    println!(
        "  ratio authspec / smtp-proto: {:.2} (goal >= 1.0)",
        pa / ps
    );
    println!("stream (framing + parsing from {CHUNK}-octet reads):");
    let (ta, ts) = median_rounds_paired(authspec, smtp_proto, &input);
    let (ra, rs) = (rate(ta), rate(ts));
    println!(
        "authspec   {:>12.0} lines/s  ({:.1} ns/line, median of {ROUNDS})",
        ra,
        1e9 / ra
    );
    println!(
        "smtp-proto {:>12.0} lines/s  ({:.1} ns/line, median of {ROUNDS})",
        rs,
        1e9 / rs
    );
    println!("ratio authspec / smtp-proto: {:.2} (goal >= 1.0)", ra / rs);
    let rc = rate(median_round(authspec_owned_commands, &input));
    println!(
        "  authspec with owned commands (command::parse): {:>12.0} lines/s ({:.1} ns/line), ratio {:.2}",
        rc,
        1e9 / rc,
        rc / rs
    );
    let ro = rate(median_round(authspec_owned, &input));
    println!(
        "  authspec with owned lines and commands (next_command_line, parse): {:>12.0} lines/s ({:.1} ns/line), ratio {:.2}",
        ro,
        1e9 / ro,
        ro / rs
    );
    // Where authspec's time goes, for whoever tunes the codec.
    let tf = median_round(authspec_framing, &input);
    let tp = median_round(authspec_lines, &input);
    println!(
        "  of which framing (LineReader, deviation scan): {:.1} ns/line; parsing (command::parse_ref): {:.1} ns/line",
        tf.as_secs_f64() * 1e9 / expected as f64,
        tp.as_secs_f64() * 1e9 / expected as f64
    );
}
