//! Regression: an ANONYMOUS login must not satisfy `permit_sasl_authenticated`
//! (RFC 4505 §2; Postfix behaves so, as the :2526 peer showed). Found by the scenario
//! `mechanisms/anonymous/cannot-relay`.

use authspec_tests::{exchange, server};

#[test]
fn anonymous_login_does_not_permit_relaying() {
    let mut s = server(&[
        ("mynetworks", ""),
        ("smtpd_sasl_security_options", "noplaintext"),
        ("smtpd_relay_restrictions", "permit_sasl_authenticated, reject"),
    ]);
    s.take_output();
    exchange(&mut s, "EHLO client.example.com\r\n");
    assert_eq!(
        exchange(&mut s, "AUTH ANONYMOUS =\r\n"),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert!(s.is_authenticated());
    assert_eq!(exchange(&mut s, "MAIL FROM:<a@example.com>\r\n"), "250 2.1.0 Ok\r\n");
    assert_eq!(
        exchange(&mut s, "RCPT TO:<b@elsewhere.example>\r\n"),
        "554 5.7.1 <b@elsewhere.example>: Recipient address rejected: Access denied\r\n"
    );
}

#[test]
fn identified_login_still_permits_relaying() {
    let mut s = server(&[
        ("mynetworks", ""),
        ("smtpd_relay_restrictions", "permit_sasl_authenticated, reject"),
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
