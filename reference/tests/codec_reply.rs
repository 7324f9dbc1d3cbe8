//! Replies, enhanced codes and EHLO capabilities.

use authspec_reference::smtp::line::Deviation;
use authspec_reference::smtp::reply::{
    Capabilities, Capability, EhloError, EnhancedCode, Reply, ReplyError, ReplyLimits, Separator,
    parse_ehlo, parse_reply,
};

fn one(buf: &[u8]) -> Reply {
    let (r, n) = parse_reply(buf, &ReplyLimits::default())
        .unwrap()
        .expect("complete reply");
    assert_eq!(n, buf.len());
    r
}

#[test]
fn multiline_reply_and_consumed_count() {
    let buf = b"250-mail.example.com Hello\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 1000\r\n220 next";
    let (r, n) = parse_reply(buf, &ReplyLimits::default()).unwrap().unwrap();
    assert_eq!(n, buf.len() - b"220 next".len());
    assert_eq!(r.code, 250);
    assert_eq!(r.lines.len(), 3);
    assert_eq!(r.lines[2].sep, Separator::Space);
    assert_eq!(
        r.text(),
        "mail.example.com Hello\nAUTH PLAIN LOGIN\nSIZE 1000"
    );
    assert!(r.deviations.is_empty());
    assert_eq!(r.format(), &buf[..n]);
}

#[test]
fn incomplete_reply_needs_more() {
    let limits = ReplyLimits::default();
    assert_eq!(parse_reply(b"", &limits), Ok(None));
    assert_eq!(parse_reply(b"250-a\r\n250 b", &limits), Ok(None));
    assert_eq!(parse_reply(b"250-a\r\n", &limits), Ok(None));
}

#[test]
fn bare_334_is_distinct_from_334_space() {
    let bare = one(b"334\r\n");
    assert!(bare.is_bare_334());
    assert_eq!(bare.lines[0].sep, Separator::None);
    let spaced = one(b"334 \r\n");
    assert!(!spaced.is_bare_334());
    assert_eq!(spaced.lines[0].sep, Separator::Space);
    assert_eq!(spaced.last_text(), b"");
    assert_eq!(bare.format(), b"334\r\n");
    assert_eq!(spaced.format(), b"334 \r\n");
}

#[test]
fn rfc4954_cram_md5_challenge() {
    // RFC 4954 §6 (CRAM-MD5 example from RFC 2195).
    let r = one(b"334 PDI4OTkuMTU4MjU3MzNAc3lzdGVtLmV4YW1wbGUuY29tPg==\r\n");
    assert_eq!(r.code, 334);
    assert_eq!(
        r.last_text(),
        b"PDI4OTkuMTU4MjU3MzNAc3lzdGVtLmV4YW1wbGUuY29tPg=="
    );
}

#[test]
fn deviations_are_recorded_not_normalised() {
    let r = one(b"250-a\n250 b\x80\0\r\n");
    assert_eq!(
        r.deviations,
        vec![
            Deviation::BareLf { offset: 5 },
            Deviation::EightBit { offset: 11 },
            Deviation::Nul { offset: 12 }
        ]
    );
    assert_eq!(r.lines[1].text, b"b\x80\0");
}

#[test]
fn structural_errors() {
    let l = ReplyLimits::default();
    assert_eq!(
        parse_reply(b"25\r\n", &l),
        Err(ReplyError::InvalidCode { line: 0 })
    );
    assert_eq!(
        parse_reply(b"650 x\r\n", &l),
        Err(ReplyError::InvalidCode { line: 0 })
    );
    assert_eq!(
        parse_reply(b"260 x\r\n", &l),
        Err(ReplyError::InvalidCode { line: 0 })
    );
    assert_eq!(
        parse_reply(b"2a0 x\r\n", &l),
        Err(ReplyError::InvalidCode { line: 0 })
    );
    assert_eq!(
        parse_reply(b"250_x\r\n", &l),
        Err(ReplyError::InvalidSeparator {
            line: 0,
            byte: b'_'
        })
    );
    assert_eq!(
        parse_reply(b"250-a\r\n251 b\r\n", &l),
        Err(ReplyError::CodeMismatchAcrossLines {
            line: 1,
            expected: 250,
            found: 251
        })
    );
    let small = ReplyLimits {
        max_line: 8,
        max_lines: 2,
    };
    assert_eq!(
        parse_reply(b"250 abcdefgh", &small),
        Err(ReplyError::LineTooLong { line: 0, limit: 8 })
    );
    assert_eq!(parse_reply(b"250 ab\r\n", &small).unwrap().unwrap().1, 8);
    assert_eq!(
        parse_reply(b"250-a\r\n250-b\r\n250 c\r\n", &small),
        Err(ReplyError::TooManyLines { limit: 2 })
    );
}

#[test]
fn enhanced_codes() {
    let r = one(b"535 5.7.8 Authentication credentials invalid\r\n");
    assert_eq!(r.enhanced(), Some(EnhancedCode::new(5, 7, 8)));
    assert_eq!(r.enhanced().unwrap().to_string(), "5.7.8");
    assert_eq!(
        "2.0.0".parse::<EnhancedCode>(),
        Ok(EnhancedCode::new(2, 0, 0))
    );
    assert_eq!(
        "4.123.999".parse::<EnhancedCode>(),
        Ok(EnhancedCode::new(4, 123, 999))
    );
    for bad in ["3.0.0", "5.7", "5.7.8x", "5..8", "5.1234.1", "5.7.8 "] {
        assert!(bad.parse::<EnhancedCode>().is_err(), "{bad}");
    }
    assert_eq!(one(b"250 ok\r\n").enhanced(), None);
    let built = Reply::with_enhanced(235, EnhancedCode::new(2, 7, 0), "Authentication successful");
    assert_eq!(built.format(), b"235 2.7.0 Authentication successful\r\n");
}

#[test]
fn reply_new_formats_hyphens_then_space() {
    assert_eq!(
        Reply::new(250, &["a", "b", "c"]).format(),
        b"250-a\r\n250-b\r\n250 c\r\n"
    );
    assert_eq!(Reply::new(334, &[]).format(), b"334\r\n");
}

#[test]
fn ehlo_capabilities_postfix_broken_sasl_auth_clients() {
    // Postfix with broken_sasl_auth_clients = yes sends both AUTH lines.
    let r = one(
        b"250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n\
250-AUTH PLAIN LOGIN CRAM-MD5\r\n250-AUTH=PLAIN LOGIN CRAM-MD5\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
    );
    let caps = parse_ehlo(&r).unwrap();
    assert_eq!(caps.domain, "mail.example.com");
    assert_eq!(caps.greeting, None);
    assert!(caps.has("pipelining"));
    assert!(caps.has("SMTPUTF8"));
    assert!(!caps.has("STARTTLS"));
    assert_eq!(
        caps.get("SIZE"),
        Some(&Capability {
            keyword: "SIZE".into(),
            params: vec!["10240000".into()]
        })
    );
    let mechs = vec!["PLAIN".to_string(), "LOGIN".into(), "CRAM-MD5".into()];
    assert_eq!(caps.auth.as_ref(), Some(&mechs));
    assert_eq!(caps.auth_eq.as_ref(), Some(&mechs));
    assert!(caps.offers_mechanism("cram-md5"));
    assert_eq!(parse_ehlo(&caps.format_reply()), Ok(caps));
}

#[test]
fn ehlo_errors() {
    assert_eq!(
        parse_ehlo(&one(b"502 no\r\n")),
        Err(EhloError::NotOk { code: 502 })
    );
    assert_eq!(
        parse_ehlo(&one(b"250 -bad-\r\n")),
        Err(EhloError::InvalidDomain)
    );
    assert_eq!(
        parse_ehlo(&one(b"250-a.example\r\n250 AU_TH\r\n")),
        Err(EhloError::InvalidKeyword { line: 1 })
    );
    assert_eq!(
        parse_ehlo(&one(b"250-a.example\r\n250 AUTH  PLAIN\r\n")),
        Err(EhloError::InvalidParam { line: 1 })
    );
    assert_eq!(
        parse_ehlo(&one(b"250-a.example\r\n250-SIZE\r\n250 size 1\r\n")),
        Err(EhloError::DuplicateKeyword { line: 2 })
    );
    let greeted = parse_ehlo(&one(b"250 [192.0.2.1] Hi there\r\n")).unwrap();
    assert_eq!(
        greeted,
        Capabilities {
            domain: "[192.0.2.1]".into(),
            greeting: Some("Hi there".into()),
            ..Capabilities::default()
        }
    );
}
