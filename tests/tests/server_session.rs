//! The server session state machine in memory: every RFC 4954 reply rule it enforces,
//! and Postfix parity where Postfix is the reference.

use authspec_reference::smtp::server::{Event, LogRecord};
use authspec_tests::{events, exchange, server};

fn b64(s: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn ehlo(s: &mut authspec_reference::smtp::server::ServerSession) -> String {
    exchange(s, "EHLO client.example.com\r\n")
}

#[test]
fn greeting_and_ehlo_advertise_auth() {
    let mut s = server(&[]);
    let greet = String::from_utf8(s.take_output()).unwrap();
    assert!(greet.starts_with("220 mx.authspec.test ESMTP"), "{greet}");
    let r = ehlo(&mut s);
    assert!(r.starts_with("250-mx.authspec.test\r\n"), "{r}");
    assert!(
        r.contains("250-AUTH SCRAM-SHA-256 SCRAM-SHA-1 DIGEST-MD5 CRAM-MD5"),
        "{r}"
    );
    // Postfix's default smtpd_sasl_security_options = noanonymous hides ANONYMOUS.
    assert!(!r.contains("ANONYMOUS"), "{r}");
    assert!(
        !r.contains("AUTH="),
        "broken_sasl_auth_clients defaults to no: {r}"
    );
    assert!(r.ends_with("250 8BITMIME\r\n"), "{r}");
}

#[test]
fn broken_sasl_auth_clients_adds_auth_eq_line_after_auth_line() {
    let mut s = server(&[("broken_sasl_auth_clients", "yes")]);
    s.take_output();
    let r = ehlo(&mut s);
    let auth = r.lines().position(|l| l.starts_with("250-AUTH ")).unwrap();
    let auth_eq = r.lines().position(|l| l.starts_with("250-AUTH=")).unwrap();
    assert_eq!(auth_eq, auth + 1, "Postfix 3.x order: AUTH then AUTH=: {r}");
    let list = |l: &str| l[9..].to_string();
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(list(lines[auth]), list(lines[auth_eq]));
}

#[test]
fn rfc4954_plain_initial_response_succeeds() {
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    let ir = b64(b"\0alice\0wonderland");
    let r = exchange(&mut s, &format!("AUTH PLAIN {ir}\r\n"));
    assert_eq!(r, "235 2.7.0 Authentication successful\r\n");
    assert!(s.is_authenticated());
    let ev = events(&mut s);
    assert!(ev.iter().any(|e| matches!(e,
        Event::Log(LogRecord::AuthSuccess { username, .. }) if username == "alice")));
}

#[test]
fn plain_without_initial_response_gets_empty_334_with_space() {
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    assert_eq!(exchange(&mut s, "AUTH PLAIN\r\n"), "334 \r\n");
    let r = exchange(&mut s, &format!("{}\r\n", b64(b"\0alice\0wonderland")));
    assert_eq!(r, "235 2.7.0 Authentication successful\r\n");
}

#[test]
fn login_prompts_are_username_then_password() {
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    assert_eq!(exchange(&mut s, "AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(
        exchange(&mut s, &format!("{}\r\n", b64(b"alice"))),
        "334 UGFzc3dvcmQ6\r\n"
    );
    assert_eq!(
        exchange(&mut s, &format!("{}\r\n", b64(b"wonderland"))),
        "235 2.7.0 Authentication successful\r\n"
    );
}

#[test]
fn wrong_password_and_unknown_user_get_the_same_535() {
    for creds in [&b"\0alice\0wrong"[..], &b"\0mallory\0wonderland"[..]] {
        let mut s = server(&[]);
        s.take_output();
        ehlo(&mut s);
        let r = exchange(&mut s, &format!("AUTH PLAIN {}\r\n", b64(creds)));
        assert_eq!(r, "535 5.7.8 Error: authentication failed\r\n");
    }
}

#[test]
fn cancel_gives_501() {
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    exchange(&mut s, "AUTH LOGIN\r\n");
    assert_eq!(
        exchange(&mut s, "*\r\n"),
        "501 5.7.0 Authentication aborted\r\n"
    );
}

#[test]
fn bad_base64_gives_501_5_5_2() {
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    exchange(&mut s, "AUTH LOGIN\r\n");
    assert_eq!(
        exchange(&mut s, "!!!!\r\n"),
        "501 5.5.2 Cannot decode response\r\n"
    );
    assert_eq!(
        exchange(&mut s, "AUTH PLAIN a=b=\r\n"),
        "501 5.5.2 Cannot decode response\r\n"
    );
}

#[test]
fn unknown_mechanism_gives_504() {
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    assert_eq!(
        exchange(&mut s, "AUTH FOOBAR\r\n"),
        "504 5.5.4 Unrecognized authentication type\r\n"
    );
}

#[test]
fn filtered_mechanism_is_refused_by_name() {
    let mut s = server(&[("smtpd_sasl_security_options", "noplaintext, noanonymous")]);
    s.take_output();
    let r = ehlo(&mut s);
    assert!(!r.contains("PLAIN"), "{r}");
    let r = exchange(
        &mut s,
        &format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0wonderland")),
    );
    assert_eq!(r, "504 5.5.4 Unrecognized authentication type\r\n");
    assert!(!s.is_authenticated());
}

#[test]
fn auth_twice_in_transaction_and_before_ehlo_give_503() {
    let mut s = server(&[]);
    s.take_output();
    let r = exchange(&mut s, "AUTH PLAIN =\r\n");
    assert_eq!(r, "503 5.5.1 Error: send EHLO first\r\n");
    ehlo(&mut s);
    exchange(&mut s, "MAIL FROM:<a@example.com>\r\n");
    let r = exchange(
        &mut s,
        &format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0wonderland")),
    );
    assert_eq!(r, "503 5.5.1 Error: MAIL transaction in progress\r\n");
    exchange(&mut s, "RSET\r\n");
    let r = exchange(
        &mut s,
        &format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0wonderland")),
    );
    assert!(r.starts_with("235 "), "{r}");
    let r = exchange(
        &mut s,
        &format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0wonderland")),
    );
    assert_eq!(r, "503 5.5.1 Error: already authenticated\r\n");
}

#[test]
fn initial_response_to_server_first_mechanism_gives_501() {
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    let r = exchange(&mut s, "AUTH CRAM-MD5 dGVzdA==\r\n");
    assert!(r.starts_with("501 "), "{r}");
}

#[test]
fn auth_line_over_the_response_limit_gives_500_5_5_6() {
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    exchange(&mut s, "AUTH LOGIN\r\n");
    let long = "A".repeat(12_300);
    let r = exchange(&mut s, &format!("{long}\r\n"));
    assert_eq!(r, "500 5.5.6 Authentication Exchange line is too long\r\n");
    // The session survives and the rest of the long line was discarded.
    assert_eq!(exchange(&mut s, "NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

#[test]
fn auth_exchange_of_12288_octets_is_accepted() {
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    exchange(&mut s, "AUTH PLAIN\r\n");
    // 12286 base64 characters + CRLF = 12288 octets: at the limit, not over it.
    let payload = vec![b'x'; 12_286 / 4 * 3];
    let mut line = b64(&payload);
    line.truncate(12_286 / 4 * 4);
    let r = exchange(&mut s, &format!("{line}\r\n"));
    assert!(!r.starts_with("500"), "{r}");
}

#[test]
fn tls_auth_only_hides_auth_and_answers_538() {
    let mut s = server(&[
        ("smtpd_tls_security_level", "may"),
        ("smtpd_tls_auth_only", "yes"),
    ]);
    s.take_output();
    let r = ehlo(&mut s);
    assert!(r.contains("250-STARTTLS"), "{r}");
    assert!(!r.contains("AUTH"), "{r}");
    let r = exchange(
        &mut s,
        &format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0wonderland")),
    );
    assert_eq!(
        r,
        "538 5.7.11 Encryption required for requested authentication mechanism\r\n"
    );
}

#[test]
fn starttls_discards_pipelined_plaintext_and_resets() {
    let mut s = server(&[("smtpd_tls_security_level", "may")]);
    s.take_output();
    ehlo(&mut s);
    let injected = format!("STARTTLS\r\nAUTH PLAIN {}\r\n", b64(b"\0alice\0wonderland"));
    let r = exchange(&mut s, &injected);
    assert_eq!(r, "220 2.0.0 Ready to start TLS\r\n");
    let ev = events(&mut s);
    assert!(ev.contains(&Event::StartTls));
    assert!(ev.iter().any(|e| matches!(e,
        Event::Log(LogRecord::InjectionDiscarded { octets, .. }) if *octets > 0)));
    s.tls_established(None);
    assert!(!s.is_authenticated());
    // The session reset: AUTH needs a new EHLO.
    let r = exchange(&mut s, "AUTH PLAIN =\r\n");
    assert!(r.starts_with("503 "), "{r}");
    let r = ehlo(&mut s);
    assert!(!r.contains("STARTTLS"), "{r}");
    assert!(r.contains("AUTH "), "{r}");
}

#[test]
fn hard_error_limit_closes_with_421() {
    let mut s = server(&[("smtpd_hard_error_limit", "3")]);
    s.take_output();
    let r = exchange(&mut s, "BOGUS\r\nBOGUS\r\nBOGUS\r\nNOOP\r\n");
    assert!(
        r.ends_with("421 4.7.0 mx.authspec.test Error: too many errors\r\n"),
        "{r}"
    );
    assert!(s.is_closed());
    assert!(events(&mut s).contains(&Event::Close));
}

#[test]
fn bare_lf_and_nul_are_refused_not_normalised() {
    let mut s = server(&[]);
    s.take_output();
    assert_eq!(
        exchange(&mut s, "NOOP\n"),
        "500 5.5.2 Error: bare <LF> received\r\n"
    );
    assert_eq!(
        exchange(&mut s, "NO\0OP\r\n"),
        "500 5.5.2 Error: NUL character received\r\n"
    );
}

#[test]
fn require_auth_gives_530_on_mail() {
    let mut s = server(&[("authspec_require_auth", "yes")]);
    s.take_output();
    ehlo(&mut s);
    assert_eq!(
        exchange(&mut s, "MAIL FROM:<a@example.com>\r\n"),
        "530 5.7.0 Authentication required\r\n"
    );
}

#[test]
fn mail_auth_parameter_accepted_from_unauthenticated_client() {
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    let r = exchange(
        &mut s,
        "MAIL FROM:<e=mc2@example.com> AUTH=e+3Dmc2@example.com\r\n",
    );
    assert_eq!(r, "250 2.1.0 Ok\r\n");
    exchange(&mut s, "RSET\r\n");
    assert_eq!(
        exchange(&mut s, "MAIL FROM:<> AUTH=<>\r\n"),
        "250 2.1.0 Ok\r\n"
    );
}

#[test]
fn unauthenticated_relay_is_refused_authenticated_relay_is_accepted() {
    let mut s = server(&[("mynetworks", "")]);
    s.take_output();
    ehlo(&mut s);
    exchange(&mut s, "MAIL FROM:<a@example.com>\r\n");
    let r = exchange(&mut s, "RCPT TO:<b@elsewhere.example>\r\n");
    // Postfix's default smtpd_relay_restrictions ends in defer_unauth_destination.
    assert_eq!(
        r,
        "454 4.7.1 <b@elsewhere.example>: Relay access denied\r\n"
    );
    exchange(&mut s, "RSET\r\n");
    exchange(
        &mut s,
        &format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0wonderland")),
    );
    exchange(&mut s, "MAIL FROM:<alice@example.com>\r\n");
    assert_eq!(
        exchange(&mut s, "RCPT TO:<b@elsewhere.example>\r\n"),
        "250 2.1.5 Ok\r\n"
    );
    assert!(exchange(&mut s, "DATA\r\n").starts_with("354 "));
    let r = exchange(&mut s, "Subject: hi\r\n\r\n..dot\r\n.\r\n");
    assert_eq!(r, "250 2.0.0 Ok: queued\r\n");
    let (msg, data) = authspec_tests::message(&events(&mut s)).unwrap();
    assert_eq!(data, b"Subject: hi\r\n\r\n.dot\r\n");
    assert_eq!(msg.sasl_username.as_deref(), Some("alice"));
}

#[test]
fn smuggling_shape_in_data_is_refused() {
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    exchange(
        &mut s,
        &format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0wonderland")),
    );
    exchange(
        &mut s,
        "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n",
    );
    let r = exchange(&mut s, "x\r\n.\nMAIL FROM:<evil@example.com>\r\n");
    assert!(r.starts_with("521 5.5.2"), "{r}");
    assert!(s.is_closed());
    assert!(
        !events(&mut s)
            .iter()
            .any(|e| matches!(e, Event::MessageEnd))
    );
}

#[test]
fn timeout_answers_421_and_closes() {
    let mut s = server(&[]);
    s.take_output();
    s.timeout();
    let r = String::from_utf8(s.take_output()).unwrap();
    assert_eq!(r, "421 4.4.2 mx.authspec.test Error: timeout exceeded\r\n");
    assert!(s.is_closed());
}

#[test]
fn lower_case_mechanism_name_is_tolerated_like_postfix() {
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    let r = exchange(
        &mut s,
        &format!("auth plain {}\r\n", b64(b"\0alice\0wonderland")),
    );
    assert_eq!(r, "235 2.7.0 Authentication successful\r\n");
}

#[test]
fn initial_response_to_server_first_mechanism_carries_5_7_0() {
    // RFC 4954 §4: 501, and servers with enhanced status codes SHOULD use 5.7.0.
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    let r = exchange(&mut s, "AUTH CRAM-MD5 dGVzdA==\r\n");
    assert_eq!(
        r,
        "501 5.7.0 Initial response not allowed for this mechanism\r\n"
    );
}

#[test]
fn auth_command_line_over_the_buffer_gives_500_5_5_6() {
    // RFC 4954 §4: an initial response that overflows the authentication buffer is
    // the same failure as an over-long response line: 500 5.5.6, not the generic
    // 500 5.5.2 for command lines; the truncated line is never parsed.
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    let ir = "QUFB".repeat(3_070);
    let r = exchange(&mut s, &format!("AUTH PLAIN {ir}\r\n"));
    assert_eq!(r, "500 5.5.6 Authentication Exchange line is too long\r\n");
    assert!(!s.is_authenticated());
    assert_eq!(exchange(&mut s, "NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

#[test]
fn anonymous_login_does_not_satisfy_permit_sasl_authenticated() {
    // RFC 4505 §3: ANONYMOUS establishes no identity; Postfix's
    // permit_sasl_authenticated does not match it (seen on the :2526 peer).
    let mut s = server(&[
        ("smtpd_sasl_security_options", "noplaintext"),
        ("mynetworks", ""),
        (
            "smtpd_relay_restrictions",
            "permit_sasl_authenticated, reject",
        ),
    ]);
    s.take_output();
    ehlo(&mut s);
    let r = exchange(&mut s, &format!("AUTH ANONYMOUS {}\r\n", b64(b"trace")));
    assert!(r.starts_with("235 "), "{r}");
    assert!(exchange(&mut s, "MAIL FROM:<a@example.com>\r\n").starts_with("250 "));
    let r = exchange(&mut s, "RCPT TO:<b@elsewhere.example.net>\r\n");
    assert!(r.starts_with("554 5.7.1 "), "{r}");
}

#[test]
fn digest_md5_initial_response_gets_a_fresh_challenge() {
    // RFC 2831 §2.2.1: subsequent authentication is not supported, so the server
    // answers with a digest-challenge and initial authentication proceeds.
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    let r = exchange(&mut s, "AUTH DIGEST-MD5 dXNlcm5hbWU9ImFsaWNlIg==\r\n");
    assert!(r.starts_with("334 "), "{r}");
    use base64::Engine as _;
    let challenge = base64::engine::general_purpose::STANDARD
        .decode(r[4..].trim_end())
        .unwrap();
    assert!(String::from_utf8(challenge).unwrap().contains("nonce=\""));
}

#[test]
fn errors_past_the_soft_limit_ask_the_driver_to_pause() {
    // Postfix's smtpd_soft_error_limit / smtpd_error_sleep_time: the session asks for
    // a pause before each error reply past the limit; the driver sleeps.
    let mut s = server(&[
        ("smtpd_soft_error_limit", "2"),
        ("smtpd_error_sleep_time", "1s"),
        ("smtpd_hard_error_limit", "5"),
    ]);
    s.take_output();
    let r = exchange(&mut s, "X1\r\nX2\r\nX3\r\nX4\r\n");
    assert_eq!(r.matches("502 5.5.2").count(), 4, "{r}");
    let pauses: Vec<_> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            Event::Pause(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(pauses, vec![std::time::Duration::from_secs(1); 2]);
}

#[test]
fn trace_headers_name_the_protocol_and_the_authenticated_sender() {
    let mut s = server(&[]);
    s.take_output();
    ehlo(&mut s);
    exchange(
        &mut s,
        &format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0wonderland")),
    );
    exchange(
        &mut s,
        "MAIL FROM:<alice@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n",
    );
    exchange(&mut s, "hi\r\n.\r\n");
    let (msg, _) = authspec_tests::message(&events(&mut s)).unwrap();
    let h = msg.trace_headers(authspec_tests::loopback(), "mx.authspec.test", true, "DATE");
    assert_eq!(
        h,
        "Return-Path: <alice@example.com>\r\nReceived: from client.example.com ([127.0.0.1])\r\n\tby mx.authspec.test (authspec) with ESMTPA\r\n\t(Authenticated sender: alice)\r\n\tfor <b@example.net>; DATE\r\n"
    );
    let h = msg.trace_headers(
        authspec_tests::loopback(),
        "mx.authspec.test",
        false,
        "DATE",
    );
    assert!(!h.contains("Authenticated sender"));
}
