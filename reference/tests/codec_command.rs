//! Command parsing: the RFC examples byte for byte, and one table row per error rule.

use authspec_reference::smtp::command::{
    Body, Command, CommandError, ForwardPath, InitialResponse, MailAuth, Param, ReversePath, parse,
};
use authspec_reference::smtp::sasl_frame;
use authspec_reference::smtp::xtext::XtextError;

fn ok(line: &str) -> Command {
    match parse(line.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("{line:?} rejected: {e:?}"),
    }
}

fn err(line: &[u8]) -> CommandError {
    match parse(line) {
        Ok(c) => panic!("{:?} accepted as {c:?}", String::from_utf8_lossy(line)),
        Err(e) => e,
    }
}

#[test]
fn rfc4954_auth_plain_with_initial_response() {
    // RFC 4954 §4 example.
    let cmd = ok("AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=");
    assert_eq!(
        cmd,
        Command::Auth {
            mechanism: "PLAIN".into(),
            initial_response: Some(InitialResponse::Base64("dGVzdAB0ZXN0ADEyMzQ=".into())),
        }
    );
    let Command::Auth {
        initial_response: Some(InitialResponse::Base64(text)),
        ..
    } = &cmd
    else {
        unreachable!()
    };
    assert_eq!(
        sasl_frame::decode_initial_response(text.as_bytes()).unwrap(),
        b"test\0test\x001234"
    );
    assert_eq!(cmd.format(), b"AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=");
}

#[test]
fn rfc4954_mail_auth_xtext_mailbox() {
    // RFC 4954 §5 example: AUTH=e+3Dmc2@example.com decodes to e=mc2@example.com.
    let cmd = ok("MAIL FROM:<e=mc2@example.com> AUTH=e+3Dmc2@example.com");
    assert_eq!(
        cmd,
        Command::Mail {
            from: ReversePath::Mailbox("e=mc2@example.com".into()),
            params: vec![Param::Auth(MailAuth::Mailbox("e=mc2@example.com".into()))],
        }
    );
    assert_eq!(
        cmd.format(),
        b"MAIL FROM:<e=mc2@example.com> AUTH=e+3Dmc2@example.com"
    );
}

#[test]
fn rfc4954_mail_null_path_auth_unknown() {
    // RFC 4954 §5: AUTH=<> when the submitter is not known.
    let cmd = ok("MAIL FROM:<> AUTH=<>");
    assert_eq!(
        cmd,
        Command::Mail {
            from: ReversePath::Null,
            params: vec![Param::Auth(MailAuth::Unknown)],
        }
    );
    assert_eq!(cmd.format(), b"MAIL FROM:<> AUTH=<>");
}

#[test]
fn mail_auth_identity_spelled_like_the_null_marker_keeps_its_escapes() {
    // Found while reviewing the round trip: "+3C+3E" decodes to "<>", which must not
    // be formatted as the `AUTH=<>` marker.
    let cmd = ok("MAIL FROM:<> AUTH=+3C+3E");
    assert_eq!(cmd.mail_auth(), Some(&MailAuth::Mailbox("<>".into())));
    assert_eq!(cmd.format(), b"MAIL FROM:<> AUTH=+3C+3E");
    assert_eq!(
        ok("MAIL FROM:<> AUTH=<>").mail_auth(),
        Some(&MailAuth::Unknown)
    );
}

#[test]
fn auth_empty_initial_response_and_none() {
    assert_eq!(
        ok("AUTH EXTERNAL ="),
        Command::Auth {
            mechanism: "EXTERNAL".into(),
            initial_response: Some(InitialResponse::Empty)
        }
    );
    assert_eq!(
        ok("AUTH CRAM-MD5"),
        Command::Auth {
            mechanism: "CRAM-MD5".into(),
            initial_response: None
        }
    );
    assert_eq!(ok("AUTH SCRAM-SHA-256-PLUS").verb(), "AUTH");
}

#[test]
fn verbs_are_case_insensitive_and_format_upper_case() {
    let cases: &[(&str, Command, &str)] = &[
        (
            "ehlo Client.Example",
            Command::Ehlo {
                domain: "Client.Example".into(),
            },
            "EHLO Client.Example",
        ),
        ("HeLo x", Command::Helo { domain: "x".into() }, "HELO x"),
        ("data", Command::Data, "DATA"),
        ("Quit", Command::Quit, "QUIT"),
        ("rset", Command::Rset, "RSET"),
        ("starttls", Command::StartTls, "STARTTLS"),
        ("noop", Command::Noop { arg: None }, "NOOP"),
        (
            "NOOP hello",
            Command::Noop {
                arg: Some("hello".into()),
            },
            "NOOP hello",
        ),
        (
            "help \"a b\"",
            Command::Help {
                arg: Some("\"a b\"".into()),
            },
            "HELP \"a b\"",
        ),
        (
            "vrfy Smith",
            Command::Vrfy {
                arg: "Smith".into(),
            },
            "VRFY Smith",
        ),
        (
            "expn list",
            Command::Expn { arg: "list".into() },
            "EXPN list",
        ),
        (
            "bdat 100 last",
            Command::Bdat {
                size: 100,
                last: true,
            },
            "BDAT 100 LAST",
        ),
        (
            "BDAT 0",
            Command::Bdat {
                size: 0,
                last: false,
            },
            "BDAT 0",
        ),
        (
            "EHLO [192.0.2.1]",
            Command::Ehlo {
                domain: "[192.0.2.1]".into(),
            },
            "EHLO [192.0.2.1]",
        ),
        (
            "EHLO [IPv6:2001:db8::1]",
            Command::Ehlo {
                domain: "[IPv6:2001:db8::1]".into(),
            },
            "EHLO [IPv6:2001:db8::1]",
        ),
        (
            "rcpt to:<Postmaster>",
            Command::Rcpt {
                to: ForwardPath::Postmaster,
                params: vec![],
            },
            "RCPT TO:<Postmaster>",
        ),
    ];
    for (line, cmd, canonical) in cases {
        assert_eq!(&ok(line), cmd, "{line}");
        assert_eq!(cmd.format(), canonical.as_bytes(), "{line}");
    }
}

#[test]
fn mail_parameters() {
    let cmd =
        ok("MAIL FROM:<a.b@example.org> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x+2By");
    assert_eq!(
        cmd,
        Command::Mail {
            from: ReversePath::Mailbox("a.b@example.org".into()),
            params: vec![
                Param::Size(1000),
                Param::Body(Body::EightBitMime),
                Param::SmtpUtf8,
                Param::Other {
                    keyword: "RET".into(),
                    value: Some("HDRS".into())
                },
                Param::Other {
                    keyword: "ENVID".into(),
                    value: Some("x+2By".into())
                },
            ],
        }
    );
    assert_eq!(
        ok("MAIL FROM:<a@b> body=binarymime").format(),
        b"MAIL FROM:<a@b> BODY=BINARYMIME"
    );
    assert_eq!(
        ok("MAIL FROM:<a@b> BODY=7bit"),
        Command::Mail {
            from: ReversePath::Mailbox("a@b".into()),
            params: vec![Param::Body(Body::SevenBit)],
        }
    );
}

#[test]
fn paths() {
    // Source routes are accepted and dropped (RFC 5321 Appendix C).
    assert_eq!(
        ok("MAIL FROM:<@a.example,@b.example:user@c.example>"),
        Command::Mail {
            from: ReversePath::Mailbox("user@c.example".into()),
            params: vec![]
        }
    );
    assert_eq!(
        ok("RCPT TO:<\"john smith\"@example.com>"),
        Command::Rcpt {
            to: ForwardPath::Mailbox("\"john smith\"@example.com".into()),
            params: vec![]
        }
    );
    assert_eq!(
        ok("RCPT TO:<postmaster@example.com>"),
        Command::Rcpt {
            to: ForwardPath::Mailbox("postmaster@example.com".into()),
            params: vec![]
        }
    );
    assert_eq!(
        ok("RCPT TO:<u@[192.0.2.7]> NOTIFY=NEVER"),
        Command::Rcpt {
            to: ForwardPath::Mailbox("u@[192.0.2.7]".into()),
            params: vec![Param::Other {
                keyword: "NOTIFY".into(),
                value: Some("NEVER".into())
            }]
        }
    );
    // RFC 6531: UTF-8 in mailboxes.
    assert_eq!(
        ok("MAIL FROM:<用户@例子.广告> SMTPUTF8"),
        Command::Mail {
            from: ReversePath::Mailbox("用户@例子.广告".into()),
            params: vec![Param::SmtpUtf8]
        }
    );
}

#[test]
fn each_rule_has_its_error() {
    use CommandError::*;
    let long_local = format!("MAIL FROM:<{}@x>", "a".repeat(65));
    let long_domain = format!("EHLO {}", vec!["a".repeat(60); 5].join("."));
    let long_path = format!(
        "MAIL FROM:<{}@{}>",
        "a".repeat(60),
        vec!["b".repeat(60); 4].join(".")
    );
    let long_label = format!("EHLO {}", "a".repeat(64));
    let cases: Vec<(&[u8], CommandError)> = vec![
        (b"", EmptyLine),
        (b"FOO", UnknownVerb),
        (b"FOOBAR", UnknownVerb),
        (b"QUITE", UnknownVerb),
        (b"STARTTLSX", UnknownVerb),
        (b"QUIT\0", Nul { offset: 4 }),
        (b"EHLO a\tb", ControlCharacter { offset: 6 }),
        (b"EHLO a\rb", ControlCharacter { offset: 6 }),
        (b"EHLO a\xff", InvalidUtf8 { offset: 6 }),
        (b"EHLO", MissingArgument { verb: "EHLO" }),
        (b"EHLO ", MissingArgument { verb: "EHLO" }),
        (b"VRFY", MissingArgument { verb: "VRFY" }),
        (b"AUTH", MissingArgument { verb: "AUTH" }),
        (b"DATA x", UnexpectedArgument { verb: "DATA" }),
        (b"STARTTLS now", UnexpectedArgument { verb: "STARTTLS" }),
        (b"QUIT ", TrailingWhitespace { offset: 4 }),
        (b"EHLO x ", TrailingWhitespace { offset: 6 }),
        (b"MAIL FROM:<a@b> ", TrailingWhitespace { offset: 15 }),
        (b"NOOP ", TrailingWhitespace { offset: 4 }),
        (b"EHLO  x", ExtraSpace { offset: 5 }),
        (b"MAIL FROM:<a@b>  SIZE=1", ExtraSpace { offset: 16 }),
        (b"HELO a b", TrailingData { offset: 6 }),
        (b"MAIL FROM:<a@b>x", TrailingData { offset: 15 }),
        (b"MAIL TO:<a@b>", ExpectedFromColon),
        (b"MAIL FROM<a@b>", ExpectedFromColon),
        (b"RCPT FROM:<a@b>", ExpectedToColon),
        (b"MAIL FROM: <a@b>", SpaceAroundColon { offset: 10 }),
        (b"MAIL FROM :<a@b>", SpaceAroundColon { offset: 9 }),
        (b"RCPT TO: <a@b>", SpaceAroundColon { offset: 8 }),
        (b"MAIL FROM:a@b", PathNotInAngleBrackets { offset: 10 }),
        (b"MAIL FROM:<a@b", PathNotInAngleBrackets { offset: 14 }),
        (b"RCPT TO:<>", EmptyForwardPath),
        (b"MAIL FROM:<@a,b:c@d>", InvalidSourceRoute { offset: 14 }),
        (b"MAIL FROM:<@-a:c@d>", InvalidSourceRoute { offset: 12 }),
        (b"MAIL FROM:<a..b@c>", InvalidLocalPart { offset: 13 }),
        (b"MAIL FROM:<.a@c>", InvalidLocalPart { offset: 11 }),
        (b"MAIL FROM:<\"a@c>", InvalidLocalPart { offset: 16 }),
        (b"MAIL FROM:<ab>", MissingAtSign { offset: 13 }),
        (b"MAIL FROM:<a@-b>", InvalidDomain { offset: 13 }),
        (b"MAIL FROM:<a@b->", InvalidDomain { offset: 14 }),
        (b"EHLO a..b", InvalidDomain { offset: 7 }),
        (b"HELO [1.2.3.4]", InvalidDomain { offset: 5 }),
        (b"EHLO [1.2.3.256]", InvalidAddressLiteral { offset: 5 }),
        (b"EHLO [IPv6:zz]", InvalidAddressLiteral { offset: 5 }),
        (b"EHLO [1.2.3.4", InvalidAddressLiteral { offset: 5 }),
        (b"EHLO [\xc3\xa9]", EightBitNotAllowed { offset: 6 }),
        (long_local.as_bytes(), LocalPartTooLong { length: 65 }),
        (long_domain.as_bytes(), DomainTooLong { length: 304 }),
        (long_path.as_bytes(), PathTooLong { length: 306 }),
        (long_label.as_bytes(), InvalidDomain { offset: 5 }),
        (b"VRFY <a@b>", InvalidString { offset: 5 }),
        (b"HELP \"a", InvalidString { offset: 7 }),
        (b"MAIL FROM:<a@b> -X=1", InvalidParamKeyword { offset: 16 }),
        (b"MAIL FROM:<a@b> X_Y=1", InvalidParamKeyword { offset: 17 }),
        (b"MAIL FROM:<a@b> X=", InvalidParamValue { offset: 18 }),
        (b"MAIL FROM:<a@b> X=a=b", InvalidParamValue { offset: 19 }),
        (
            b"MAIL FROM:<a@b> SIZE",
            MissingParamValue { keyword: "SIZE" },
        ),
        (
            b"MAIL FROM:<a@b> BODY",
            MissingParamValue { keyword: "BODY" },
        ),
        (
            b"MAIL FROM:<a@b> AUTH",
            MissingParamValue { keyword: "AUTH" },
        ),
        (
            b"MAIL FROM:<a@b> SMTPUTF8=yes",
            UnexpectedParamValue {
                keyword: "SMTPUTF8",
            },
        ),
        (
            b"MAIL FROM:<a@b> SIZE=1 size=2",
            DuplicateParam {
                keyword: "SIZE".into(),
            },
        ),
        (
            b"MAIL FROM:<a@b> X=1 x=2",
            DuplicateParam {
                keyword: "x".into(),
            },
        ),
        (b"MAIL FROM:<a@b> SIZE=1k", SizeNotNumeric { offset: 22 }),
        (b"MAIL FROM:<a@b> SIZE=18446744073709551616", SizeTooLarge),
        (b"MAIL FROM:<a@b> SIZE=000000000000000000001", SizeTooLarge),
        (b"MAIL FROM:<a@b> BODY=9BIT", UnknownBodyValue),
        (
            b"MAIL FROM:<a@b> AUTH=a+2b",
            Xtext(XtextError::LowercaseHex { offset: 3 }),
        ),
        (
            b"MAIL FROM:<a@b> AUTH=a+2",
            Xtext(XtextError::TruncatedEscape { offset: 1 }),
        ),
        (b"MAIL FROM:<a@b> AUTH=+FF", AuthParamNotUtf8),
        (b"AUTH PL@IN", InvalidMechanismName { offset: 7 }),
        (
            b"AUTH ABCDEFGHIJKLMNOPQRSTU",
            InvalidMechanismName { offset: 25 },
        ),
        (b"AUTH plain", MechanismNameNotUpperCase { offset: 5 }),
        (b"AUTH PL\xc3\x89IN", EightBitNotAllowed { offset: 7 }),
        (b"AUTH PLAIN a-b=", InvalidInitialResponse { offset: 12 }),
        (b"AUTH PLAIN ab=c", InvalidInitialResponse { offset: 14 }),
        (b"AUTH PLAIN abc x", TrailingData { offset: 14 }),
        (b"AUTH PLAIN ", TrailingWhitespace { offset: 10 }),
        (b"AUTH PLAIN  x", ExtraSpace { offset: 11 }),
        (b"BDAT x", InvalidBdat { offset: 5 }),
        (b"BDAT 1 FIRST", InvalidBdat { offset: 7 }),
    ];
    let wrong: Vec<String> = cases
        .into_iter()
        .filter_map(|(line, expected)| {
            let got = err(line);
            (got != expected).then(|| {
                format!(
                    "{:?}: got {got:?}, expected {expected:?}",
                    String::from_utf8_lossy(line)
                )
            })
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn smuggling_shapes_are_not_commands() {
    // A command line handed over with stray line-end octets (framing gone wrong)
    // never parses as a command.
    for line in [&b"DATA\r"[..], b"QUIT\n", b".\r", b"\n.", b"RSET\r\n.\n"] {
        assert!(parse(line).is_err(), "{line:?}");
    }
}

#[test]
fn initial_response_debug_hides_the_secret() {
    let cmd = ok("AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=");
    let shown = format!("{cmd:?}");
    assert!(!shown.contains("dGVzdAB0ZXN0ADEyMzQ"), "{shown}");
}

/// `parse_ref` hands out the line's own octets (no copy), and owning its result gives
/// exactly what `parse` gives, for accepted and rejected lines alike.
#[test]
fn borrowed_parse_borrows_from_the_line_and_agrees_with_parse() {
    use authspec_reference::smtp::command::parse_ref;
    let within = |line: &[u8], s: &str| {
        let (l, p) = (line.as_ptr() as usize, s.as_ptr() as usize);
        p >= l && p + s.len() <= l + line.len()
    };
    let line = b"MAIL FROM:<alice@example.com> SIZE=10 X-TRACE=abc AUTH=<>";
    match parse_ref(line) {
        Ok(Command::Mail {
            from: ReversePath::Mailbox(m),
            params,
        }) => {
            assert_eq!(m, "alice@example.com");
            assert!(within(line, m), "the mailbox is a copy");
            let Some(Param::Other {
                keyword,
                value: Some(value),
            }) = params.get(1)
            else {
                panic!("X-TRACE not parsed as another parameter: {params:?}");
            };
            assert!(within(line, keyword) && within(line, value));
        }
        other => panic!("{other:?}"),
    }
    let line = b"AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=";
    match parse_ref(line) {
        Ok(Command::Auth {
            mechanism,
            initial_response: Some(InitialResponse::Base64(t)),
        }) => assert!(within(line, mechanism) && within(line, t)),
        other => panic!("{other:?}"),
    }
    for line in [
        &b"EHLO [192.0.2.1]"[..],
        b"HELO relay.example.com",
        b"RCPT TO:<Postmaster> NOTIFY=SUCCESS,FAILURE",
        b"RCPT TO:<@a.example,@b.example:bob@c.example>",
        b"VRFY \"quoted user\"",
        b"NOOP",
        b"HELP auth",
        b"BDAT 100 LAST",
        b"AUTH CRAM-MD5 =",
        b"MAIL FROM:<> AUTH=alice+40example.com BODY=8BITMIME SMTPUTF8",
        b"MAIL FROM:<a@b> SIZE=1 SIZE=2",
        b"auth plain",
        b"EHLO",
        b"RCPT TO:<>",
        b"MAIL FROM:<\xff@example.com>",
    ] {
        assert_eq!(
            parse_ref(line).map(Command::into_owned),
            parse(line),
            "{}",
            String::from_utf8_lossy(line)
        );
        if let Ok(c) = parse_ref(line) {
            assert_eq!(
                c.format(),
                parse(line).map(|c| c.format()).unwrap_or_default()
            );
        }
    }
}
