//! Every client-side command (`run`, `send`, `probe`, `load`, `fuzz`) against hostile
//! servers: silent, endless line, endless multi-line reply, invalid reply code, close
//! in the middle of AUTH, a TLS handshake that fails, a certificate for the wrong name.
//! Each must end on its own timeout with a clear message and a failing exit code (or,
//! for the wrong certificate with `--tls-insecure`, succeed).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_authspec");

#[derive(Clone, Copy, Debug)]
enum Hostile {
    Silent,
    EndlessLine,
    EndlessMultiline,
    InvalidCode,
    CloseMidAuth,
    BrokenTls,
}

fn read_line(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut l = String::new();
    match r.read_line(&mut l) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(l.to_ascii_uppercase()),
    }
}

fn serve_one(mut s: TcpStream, kind: Hostile) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut r = BufReader::new(s.try_clone().unwrap());
    match kind {
        Hostile::Silent => {
            let mut b = [0u8; 256];
            while matches!(s.read(&mut b), Ok(n) if n > 0) {}
        }
        Hostile::EndlessLine => {
            let chunk = vec![b'x'; 64 * 1024];
            let _ = s.write_all(b"220-");
            for _ in 0..2_000 {
                if s.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
        Hostile::EndlessMultiline => {
            let _ = s.write_all(b"220 hostile ESMTP\r\n");
            if read_line(&mut r).is_some() {
                for _ in 0..100_000 {
                    if s.write_all(b"250-CAPABILITY-LINE\r\n").is_err() {
                        break;
                    }
                }
            }
        }
        Hostile::InvalidCode => {
            let _ = s.write_all(b"220 hostile ESMTP\r\n");
            while let Some(_line) = read_line(&mut r) {
                if s.write_all(b"999 what is this\r\n").is_err() {
                    break;
                }
            }
        }
        Hostile::CloseMidAuth => {
            let _ = s.write_all(b"220 hostile ESMTP\r\n");
            while let Some(line) = read_line(&mut r) {
                if line.starts_with("EHLO") {
                    let _ = s.write_all(b"250-hostile\r\n250 AUTH PLAIN LOGIN CRAM-MD5\r\n");
                } else if line.starts_with("AUTH") {
                    let _ = s.write_all(b"334 ");
                    return;
                } else if line.starts_with("QUIT") {
                    let _ = s.write_all(b"221 bye\r\n");
                    return;
                } else {
                    let _ = s.write_all(b"250 ok\r\n");
                }
            }
        }
        Hostile::BrokenTls => {
            let _ = s.write_all(b"220 hostile ESMTP\r\n");
            while let Some(line) = read_line(&mut r) {
                if line.starts_with("EHLO") {
                    let _ = s.write_all(b"250-hostile\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n");
                } else if line.starts_with("STARTTLS") {
                    let _ = s.write_all(b"220 go ahead\r\n");
                    // Not a TLS ServerHello.
                    let _ = s.write_all(b"this is not TLS at all\r\n");
                    std::thread::sleep(Duration::from_millis(200));
                    return;
                } else {
                    let _ = s.write_all(b"250 ok\r\n");
                }
            }
        }
    }
}

fn start(kind: Hostile) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || serve_one(s, kind));
        }
    });
    addr
}

/// Run `authspec args…`; it must exit on its own within `bound`.
fn authspec(args: &[&str], bound: Duration) -> (i32, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("PW", "wonderland")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            return (status.code().unwrap_or(-1), out);
        }
        if start.elapsed() > bound {
            let _ = child.kill();
            panic!("authspec {args:?} did not end within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn commands(addr: &str) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        s(&[
            "run",
            "--target",
            addr,
            "--timeout",
            "1",
            "--filter",
            "mechanisms/plain/*",
            "--var",
            "user=alice",
            "--var",
            "password-env=PW",
        ]),
        s(&[
            "send",
            "--server",
            addr,
            "--from",
            "a@example.com",
            "--to",
            "b@example.net",
            "--user",
            "alice",
            "--password-env",
            "PW",
            "--timeout",
            "1",
        ]),
        s(&["probe", addr, "--timeout", "1"]),
        s(&[
            "load",
            "--target",
            addr,
            "--sessions",
            "3",
            "--concurrency",
            "2",
            "--timeout",
            "1",
            "--var",
            "user=alice",
            "--var",
            "password-env=PW",
        ]),
        s(&[
            "fuzz",
            "--target",
            addr,
            "--sessions",
            "5",
            "--timeout",
            "1",
            "--var",
            "user=alice",
            "--var",
            "password-env=PW",
            "--out",
            "/tmp/authspec-hostile-findings",
        ]),
    ]
}

fn check_all(kind: Hostile, must_mention: &[&str]) {
    let addr = start(kind);
    for cmd in commands(&addr) {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let (code, out) = authspec(&args, Duration::from_secs(60));
        if args[0] == "probe" && code == 0 {
            // probe got far enough to report; what went wrong is an anomaly.
            assert!(out.contains("anomalies:\n"), "{kind:?}: {out}");
            assert!(!out.contains("anomalies: none"), "{kind:?}: {out}");
            continue;
        }
        if args[0] == "fuzz" && code == 0 {
            // A clear verdict: fuzz ran its sessions and says what ended them.
            assert!(out.contains("sessions in"), "{kind:?}: {out}");
            assert!(out.contains("closed by the server"), "{kind:?}: {out}");
            continue;
        }
        assert_ne!(code, 0, "{kind:?} {args:?} must fail:\n{out}");
        assert!(
            must_mention.iter().any(|m| out.to_lowercase().contains(m)),
            "{kind:?} {}: the message should say what happened ({must_mention:?}):\n{out}",
            args[0]
        );
        assert!(
            !out.contains("panicked"),
            "{kind:?} {args:?} panicked:\n{out}"
        );
        assert!(
            !out.contains("wonderland"),
            "{kind:?} {args:?} leaked the password"
        );
    }
}

#[test]
fn silent_server() {
    check_all(
        Hostile::Silent,
        &["timed out", "timeout", "no greeting", "unusable"],
    );
}

#[test]
fn endless_line() {
    check_all(
        Hostile::EndlessLine,
        &[
            "malformed",
            "too long",
            "longer than",
            "unusable",
            "timeout",
            "timed out",
        ],
    );
}

#[test]
fn endless_multiline_reply() {
    check_all(
        Hostile::EndlessMultiline,
        &[
            "malformed",
            "too many",
            "longer than",
            "unusable",
            "timeout",
            "timed out",
        ],
    );
}

#[test]
fn invalid_reply_code() {
    check_all(
        Hostile::InvalidCode,
        &["999", "invalid", "malformed", "unusable", "ehlo"],
    );
}

#[test]
fn close_in_the_middle_of_auth() {
    check_all(
        Hostile::CloseMidAuth,
        &[
            "closed",
            "close",
            "malformed",
            "finding",
            "eof",
            "connection",
        ],
    );
}

#[test]
fn tls_handshake_failure() {
    let addr = start(Hostile::BrokenTls);
    for args in [
        vec![
            "send",
            "--server",
            &addr,
            "--starttls",
            "--tls-insecure",
            "--from",
            "a@example.com",
            "--to",
            "b@example.net",
            "--user",
            "alice",
            "--password-env",
            "PW",
            "--timeout",
            "2",
        ],
        vec!["probe", &addr, "--starttls", "--timeout", "2"],
        vec![
            "run",
            "--target",
            &addr,
            "--starttls",
            "--tls-insecure",
            "--timeout",
            "2",
            "--var",
            "user=alice",
            "--var",
            "password-env=PW",
        ],
    ] {
        let (code, out) = authspec(&args, Duration::from_secs(60));
        if args[0] == "probe" {
            // probe reports what it found, the failed handshake included.
            assert!(out.contains("tls-handshake-failed"), "{out}");
        } else {
            assert_ne!(code, 0, "{args:?}: {out}");
        }
        assert!(
            out.to_lowercase().contains("tls"),
            "{args:?} should name TLS: {out}"
        );
    }
}

#[test]
fn wrong_certificate_fails_verification_unless_insecure() {
    // The real reference server, with a certificate for another name.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users"), "alice:{PLAIN}wonderland\n").unwrap();
    let mut serve = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "-o",
            "smtpd_tls_security_level=may",
        ])
        .args(["-o", "myhostname=wrong.example"])
        .arg("--users")
        .arg(dir.path().join("users"))
        .arg("--write-cert")
        .arg(dir.path().join("cert.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    // The certificate names wrong.example and localhost; 127.0.0.1 is neither.
    let by_name = addr.clone();
    let base = |extra: &[&str]| {
        let mut v = vec![
            "send",
            "--server",
            &by_name,
            "--starttls",
            "--from",
            "a@example.com",
            "--to",
            "b@example.net",
            "--user",
            "alice",
            "--password-env",
            "PW",
            "--timeout",
            "5",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    // Verified against the web PKI roots: an unknown issuer.
    let args = base(&["-o", "smtp_tls_security_level=verify"]);
    let (code, out) = authspec(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        Duration::from_secs(60),
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("TLS"), "{out}");
    // Trusting its own certificate, but reached as 127.0.0.1: not valid for that name.
    let ca = dir.path().join("cert.pem");
    let ca = ca.to_str().unwrap();
    let args = base(&[
        "-o",
        "smtp_tls_security_level=verify",
        "-o",
        &format!("smtp_tls_CAfile={ca}"),
    ]);
    let (code, out) = authspec(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        Duration::from_secs(60),
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.to_lowercase().contains("name"), "{out}");
    // --tls-insecure accepts it.
    let args = base(&["--tls-insecure"]);
    let (code, out) = authspec(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}");
    let _ = serve.kill();
    let _ = serve.wait();
}
