//! Regressions found by the bundled scenarios (scen2 branch):
//! - an ANONYMOUS login must not satisfy `permit_sasl_authenticated` (RFC 4505 §2;
//!   Postfix behaves so, as the :2526 peer showed) — `mechanisms/anonymous/cannot-relay`;
//! - a message text line over 1000 octets was cut and the truncated message accepted;
//!   it is refused at the end of DATA (RFC 5321 §4.5.3.1.6) — `robustness/data-line-over-1000`.

use authspec_tests::{exchange, server};

#[test]
fn anonymous_login_does_not_permit_relaying() {
    let mut s = server(&[
        ("mynetworks", ""),
        ("smtpd_sasl_security_options", "noplaintext"),
        (
            "smtpd_relay_restrictions",
            "permit_sasl_authenticated, reject",
        ),
    ]);
    s.take_output();
    exchange(&mut s, "EHLO client.example.com\r\n");
    assert_eq!(
        exchange(&mut s, "AUTH ANONYMOUS =\r\n"),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert!(s.is_authenticated());
    assert_eq!(
        exchange(&mut s, "MAIL FROM:<a@example.com>\r\n"),
        "250 2.1.0 Ok\r\n"
    );
    assert_eq!(
        exchange(&mut s, "RCPT TO:<b@elsewhere.example>\r\n"),
        "554 5.7.1 <b@elsewhere.example>: Recipient address rejected: Access denied\r\n"
    );
}

#[test]
fn identified_login_still_permits_relaying() {
    let mut s = server(&[
        ("mynetworks", ""),
        (
            "smtpd_relay_restrictions",
            "permit_sasl_authenticated, reject",
        ),
    ]);
    s.take_output();
    exchange(&mut s, "EHLO client.example.com\r\n");
    exchange(&mut s, "AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n");
    exchange(&mut s, "MAIL FROM:<a@example.com>\r\n");
    assert_eq!(
        exchange(&mut s, "RCPT TO:<b@elsewhere.example>\r\n"),
        "250 2.1.5 Ok\r\n"
    );
}

fn data_with_line(len: usize) -> String {
    let mut s = server(&[]);
    s.take_output();
    exchange(&mut s, "EHLO client.example.com\r\n");
    exchange(&mut s, "MAIL FROM:<a@example.com>\r\n");
    exchange(&mut s, "RCPT TO:<b@example.com>\r\n");
    assert!(exchange(&mut s, "DATA\r\n").starts_with("354 "));
    let body = format!("Subject: x\r\n\r\n{}\r\n.\r\n", "y".repeat(len));
    let reply = exchange(&mut s, &body);
    // The session goes on either way.
    assert_eq!(exchange(&mut s, "NOOP\r\n"), "250 2.0.0 Ok\r\n");
    reply
}

#[test]
fn text_line_of_1000_octets_is_accepted() {
    assert_eq!(data_with_line(998), "250 2.0.0 Ok: queued\r\n");
}

#[test]
fn text_line_over_1000_octets_refuses_the_message_instead_of_truncating_it() {
    assert_eq!(
        data_with_line(999),
        "500 5.5.2 Error: message text line too long\r\n"
    );
    assert_eq!(
        data_with_line(5000),
        "500 5.5.2 Error: message text line too long\r\n"
    );
}
