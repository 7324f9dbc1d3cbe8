//! Every step kind survives a YAML round trip; transcripts compile; variables expand;
//! expectations judge replies.

use authspec::scenario::{
    self, Auth, CapabilityCheck, Challenge, ChallengeOptions, CodeSpec, Expect, ExpectAuth,
    ExpectClientClose, ExpectClose, ExpectCommand, ExpectResponse, InitialResponse, Outcome, Quit,
    Reply, ReplyLines, Role, STEP_KINDS, Sasl, ScenarioFile, Send, SendBytes, SendOptions,
    Starttls, Step, VarError, Vars, WaitDuration,
};

fn file(role: Role, steps: Vec<Step>) -> ScenarioFile {
    ScenarioFile {
        id: "t/round-trip".into(),
        title: "round trip".into(),
        spec: vec!["RFC4954 §4 MUST".parse().unwrap()],
        tags: vec!["x".into()],
        requires: Default::default(),
        level: Some(authspec::scenario::Requirement::MUST),
        quote: Some("RFC 4954 §4: the client MUST …".into()),
        profile: [("smtpd_sasl_auth_enable".to_owned(), "yes".to_owned())].into(),
        role,
        vars: [("n".to_owned(), "1".to_owned())].into(),
        for_each_mechanism: Vec::new(),
        steps: Some(steps),
        transcript: None,
    }
}

fn round_trip(f: &ScenarioFile) {
    let yaml = serde_yaml::to_string(f).unwrap();
    let s = scenario::load_str(&yaml, "rt.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(&s.to_file(), f, "{yaml}");
}

fn client_steps() -> Vec<Step> {
    let full_expect = Expect {
        code: Some(CodeSpec::AnyOf(vec![
            CodeSpec::Exact(235),
            CodeSpec::Pattern("5xx".into()),
        ])),
        enhanced: Some("5.7.*".into()),
        text: Some("*${user}*".into()),
        reply_lines: vec!["250-*".into(), "250 *".into()],
        capability: [
            (
                "AUTH".to_owned(),
                CapabilityCheck::With(vec!["PLAIN".into()]),
            ),
            ("STARTTLS".to_owned(), CapabilityCheck::Present),
            ("X-FOO".to_owned(), CapabilityCheck::Absent),
        ]
        .into(),
        capability_absent: vec!["CHUNKING".into()],
        lines: Some(3),
        bare_334: Some(false),
        decoded: Some("<*@*>".into()),
        remember: Some("first".into()),
        same_as: Some("first".into()),
        alternatives: vec![Expect {
            code: Some(CodeSpec::Exact(535)),
            note: Some("Postfix".into()),
            end: true,
            ..Expect::default()
        }],
        note: None,
        end: false,
        level: Some(authspec::scenario::Requirement::Rfc(
            authspec::scenario::Level::Should,
        )),
        quote: Some("a SHOULD".into()),
    };
    vec![
        Step::Send(Send::Line("EHLO client.example.com".into())),
        Step::Send(Send::Options(SendOptions {
            line: r"EHLO a\nb\0\xFF".into(),
            raw: true,
            crlf: Some(true),
        })),
        Step::SendBytes(SendBytes {
            hex: "45484c4f0d0a".into(),
        }),
        Step::Pipeline(vec!["MAIL FROM:<a@b>".into(), "RCPT TO:<c@d>".into()]),
        Step::Expect(full_expect),
        Step::ExpectClose(ExpectClose::default()),
        Step::ExpectSmuggling(authspec::scenario::ExpectSmuggling::default()),
        Step::ExpectClose(ExpectClose {
            code: Some(CodeSpec::Exact(421)),
            level: Some(authspec::scenario::Requirement::Reference),
            quote: None,
        }),
        Step::Auth(Auth {
            mechanism: "SCRAM-SHA-256".into(),
            user: Some("${user}".into()),
            password: Some("${password}".into()),
            authzid: Some("admin".into()),
            token: None,
            initial_response: InitialResponse::Never,
            expect: Some(Expect::code(235)),
            channel_binding: Some(authspec::scenario::AuthBinding {
                cb_type: Some("tls-exporter".into()),
                data: authspec::scenario::BindingData::Mitm,
                c_header: Some("n,,".into()),
            }),
        }),
        Step::Auth(Auth {
            mechanism: "PLAIN".into(),
            user: None,
            password: None,
            authzid: None,
            token: None,
            initial_response: InitialResponse::Always,
            expect: None,
            channel_binding: None,
        }),
        Step::Sasl(Sasl {
            send: Some("!!not-base64".into()),
            ..Sasl::default()
        }),
        Step::Sasl(Sasl {
            base64_of: Some(r"\0${user}\0".into()),
            ..Sasl::default()
        }),
        Step::Sasl(Sasl {
            cancel: true,
            ..Sasl::default()
        }),
        Step::Starttls(Starttls::default()),
        Step::Starttls(Starttls {
            expect: Some(Expect::code(454)),
            handshake: false,
        }),
        Step::Wait("1500ms".parse::<WaitDuration>().unwrap()),
        Step::Quit(Quit {}),
    ]
}

fn server_steps() -> Vec<Step> {
    vec![
        Step::Reply(Reply::Text("220 mx.example ESMTP".into())),
        Step::ExpectCommand(ExpectCommand {
            verb: Some("EHLO".into()),
            args: Some("*".into()),
            ..ExpectCommand::default()
        }),
        Step::Reply(Reply::Lines(ReplyLines {
            code: 250,
            lines: vec!["mx.example".into(), "AUTH PLAIN LOGIN".into()],
        })),
        Step::ExpectCommand(ExpectCommand {
            auth_mechanism: Some("LOGIN".into()),
            line: Some("AUTH LOGIN".into()),
            ..ExpectCommand::default()
        }),
        Step::Challenge(Challenge::Base64("VXNlcm5hbWU6".into())),
        Step::ExpectResponse(ExpectResponse {
            decoded: Some("${user}".into()),
            ..ExpectResponse::default()
        }),
        Step::Challenge(Challenge::Options(ChallengeOptions {
            encode: Some("Password:".into()),
            ..ChallengeOptions::default()
        })),
        Step::Challenge(Challenge::Options(ChallengeOptions {
            bare: true,
            ..ChallengeOptions::default()
        })),
        Step::ExpectResponse(ExpectResponse {
            base64: Some("*".into()),
            cancel: true,
            ..ExpectResponse::default()
        }),
        Step::ExpectAuth(ExpectAuth {
            mechanism: "CRAM-MD5".into(),
            user: Some("${user}".into()),
            password: None,
            authzid: None,
            reply: Some(Reply::Text("235 ok".into())),
            level: Some(authspec::scenario::Requirement::Robustness),
            quote: None,
        }),
        Step::ExpectNoCommand("500ms".parse().unwrap()),
        Step::AcceptStarttls(authspec::scenario::AcceptStarttls::default()),
        Step::Send(Send::Line("421 bye".into())),
        Step::Wait("2s".parse().unwrap()),
        Step::ExpectClientClose(ExpectClientClose::default()),
        Step::ExpectClientClose(ExpectClientClose {
            reply_to_others: Some(Reply::Text("504 no".into())),
            max_commands: Some(2),
            level: Some(authspec::scenario::Requirement::Robustness),
            quote: None,
        }),
        Step::ExpectExit(authspec::scenario::ExpectExit {
            success: false,
            level: None,
            quote: None,
        }),
    ]
}

#[test]
fn every_step_kind_round_trips() {
    let client = client_steps();
    let server = server_steps();
    let mut covered: Vec<&str> = client.iter().chain(&server).map(Step::kind).collect();
    covered.sort();
    covered.dedup();
    let mut all = STEP_KINDS.to_vec();
    all.sort();
    assert_eq!(covered, all, "a step kind lacks a round-trip case");
    round_trip(&file(Role::Client, client));
    round_trip(&file(Role::Server, server));
}

#[test]
fn short_and_long_forms_mean_the_same() {
    let text = "id: t/f\ntitle: T\nsteps:\n  - expect_close: true\n  - expect_close: {}\n  - send: EHLO x\n  - send: { line: EHLO x }\n";
    let s = scenario::load_str(text, "f.yaml").unwrap();
    assert_eq!(s.steps()[0], s.steps()[1]);
    let (Step::Send(a), Step::Send(b)) = (&s.steps()[2], &s.steps()[3]) else {
        panic!()
    };
    assert_eq!(a.bytes().unwrap(), b.bytes().unwrap());
}

#[test]
fn bytes_of_send_steps() {
    let line = Send::Line("EHLO x".into());
    assert_eq!(line.bytes().unwrap(), b"EHLO x\r\n");
    let raw = Send::Options(SendOptions {
        line: r"EHLO x\nMAIL\0\x80".into(),
        raw: true,
        crlf: None,
    });
    // raw: no CRLF unless asked.
    assert_eq!(raw.bytes().unwrap(), b"EHLO x\nMAIL\0\x80");
    let hex = SendBytes {
        hex: "41 55 54 48 0a".into(),
    };
    assert_eq!(hex.bytes().unwrap(), b"AUTH\n");
    let plain = Sasl {
        base64_of: Some(r"\0alice\0wonderland".into()),
        ..Sasl::default()
    };
    assert_eq!(plain.bytes().unwrap(), b"AGFsaWNlAHdvbmRlcmxhbmQ=\r\n");
    let cancel = Sasl {
        cancel: true,
        ..Sasl::default()
    };
    assert_eq!(cancel.bytes().unwrap(), b"*\r\n");
    assert_eq!(
        Reply::Lines(ReplyLines {
            code: 250,
            lines: vec!["mx".into(), "AUTH PLAIN".into()]
        })
        .bytes(),
        b"250-mx\r\n250 AUTH PLAIN\r\n"
    );
    assert_eq!(
        Reply::Text("250-mx\n250 OK\n".into()).bytes(),
        b"250-mx\r\n250 OK\r\n"
    );
    assert_eq!(
        Challenge::Options(ChallengeOptions {
            encode: Some("Username:".into()),
            ..Default::default()
        })
        .bytes(),
        b"334 VXNlcm5hbWU6\r\n"
    );
    assert_eq!(
        Challenge::Options(ChallengeOptions {
            bare: true,
            ..Default::default()
        })
        .bytes(),
        b"334\r\n"
    );
}

/// Lines 01-23 of the Postfix SMTP AUTH guide's dialog, numbering included.
const POSTFIX_DIALOG: &str = "\
01: S: 220 saslserve.example.com ESMTP
02: C: EHLO saslclient.example.com
03: S: 250-saslserve.example.com
04: S: 250-PIPELINING
05: S: 250-SIZE 10240000
06: S: 250-ETRN
07: S: 250-AUTH LOGIN DIGEST-MD5 CRAM-MD5 PLAIN
08: S: 250 8BITMIME
09: C: AUTH LOGIN
10: S: 334 VXNlcm5hbWU6
11: C: Ym9maA==
12: S: 334 UGFzc3dvcmQ6
13: C: Ym9maA==
14: S: 235 Authentication successful
15: C: MAIL FROM: SIZE=697
16: S: 250 Ok
17: C: RCPT TO:
18: S: 250 Ok
19: C: DATA
20: S: 354 End data with .
21: S: 250 Ok: queued as 1CF2E1D962
22: C: QUIT
23: S: 221 Bye
";

fn expect_lines(step: &Step) -> Vec<&str> {
    match step {
        Step::Expect(e) => e.reply_lines.iter().map(String::as_str).collect(),
        other => panic!("not an expect: {other:?}"),
    }
}

fn sent(step: &Step) -> &str {
    match step {
        Step::Send(s) => s.line(),
        other => panic!("not a send: {other:?}"),
    }
}

#[test]
fn postfix_dialog_compiles_for_the_client_role() {
    let steps = scenario::transcript::compile(POSTFIX_DIALOG, Role::Client).unwrap();
    let kinds: Vec<&str> = steps.iter().map(Step::kind).collect();
    assert_eq!(
        kinds,
        [
            "expect", "send", "expect", "send", "expect", "send", "expect", "send", "expect",
            "send", "expect", "send", "expect", "send", "expect", "expect", "send", "expect",
        ]
    );
    assert_eq!(expect_lines(&steps[0]), ["220 saslserve.example.com ESMTP"]);
    assert_eq!(sent(&steps[1]), "EHLO saslclient.example.com");
    // Lines 03-08: one multi-line reply.
    assert_eq!(
        expect_lines(&steps[2]),
        [
            "250-saslserve.example.com",
            "250-PIPELINING",
            "250-SIZE 10240000",
            "250-ETRN",
            "250-AUTH LOGIN DIGEST-MD5 CRAM-MD5 PLAIN",
            "250 8BITMIME",
        ]
    );
    assert_eq!(sent(&steps[5]), "Ym9maA==");
    // Lines 20 and 21 are two replies (354 ends its reply), not one.
    assert_eq!(expect_lines(&steps[14]), ["354 End data with ."]);
    assert_eq!(expect_lines(&steps[15]), ["250 Ok: queued as 1CF2E1D962"]);
    assert_eq!(sent(&steps[16]), "QUIT");
}

#[test]
fn postfix_dialog_compiles_for_the_server_role() {
    let steps = scenario::transcript::compile(POSTFIX_DIALOG, Role::Server).unwrap();
    let Step::Reply(r) = &steps[2] else { panic!() };
    assert_eq!(
        r.bytes(),
        b"250-saslserve.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-ETRN\r\n250-AUTH LOGIN DIGEST-MD5 CRAM-MD5 PLAIN\r\n250 8BITMIME\r\n"
    );
    let Step::ExpectCommand(c) = &steps[3] else {
        panic!()
    };
    assert_eq!(c.line.as_deref(), Some("AUTH LOGIN"));
    assert_eq!(c.evaluate("AUTH LOGIN"), Outcome::Pass);
    assert!(!c.evaluate("AUTH PLAIN").is_acceptable());
}

#[test]
fn transcript_errors_name_the_line() {
    let e = scenario::transcript::compile("S: 220 x\nX: what\n", Role::Client).unwrap_err();
    assert_eq!(
        e,
        scenario::TranscriptError::NotADialogLine {
            line: 2,
            text: "X: what".into()
        }
    );
    assert_eq!(
        scenario::transcript::compile("# only a comment\n\n", Role::Client).unwrap_err(),
        scenario::TranscriptError::Empty
    );
    let text = "id: t/x\ntitle: T\ntranscript: |\n  S: 220 x\n  C: EHLO x\n  oops\n";
    let err = scenario::load_str(text, "t.yaml").unwrap_err();
    assert_eq!(err.line, Some(6), "{err}");
}

#[test]
fn design_transcript_matches_a_real_postfix_banner() {
    let s = scenario::load_bundled()
        .unwrap()
        .into_iter()
        .find(|s| s.id == "rfc4954/seed-postfix-login-dialog")
        .unwrap();
    let Step::Expect(ehlo) = &s.steps()[2] else {
        panic!()
    };
    // The EHLO reply of Postfix on :2525 in /work/shared/peers (AUTH then AUTH=).
    let reply: Vec<String> = [
        "250-smtp.peers.test",
        "250-PIPELINING",
        "250-SIZE 10240000",
        "250-AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5",
        "250-AUTH=PLAIN LOGIN CRAM-MD5 DIGEST-MD5",
        "250-ENHANCEDSTATUSCODES",
        "250 8BITMIME",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(ehlo.evaluate(&reply), Outcome::Pass);
    let no_login: Vec<String> = ["250-x", "250-AUTH PLAIN CRAM-MD5", "250 8BITMIME"]
        .map(String::from)
        .to_vec();
    assert!(!ehlo.evaluate(&no_login).is_acceptable());
    // The credentials line is a variable with a filter, expanded at run time.
    let mut vars = Vars::new();
    vars.set("user", "alice");
    let Step::Send(user) = s.steps()[5].expand(&vars).unwrap() else {
        panic!()
    };
    assert_eq!(user.bytes().unwrap(), b"YWxpY2U=\r\n");
}

#[test]
fn expectations_judge_replies() {
    let lines = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let e = Expect {
        code: Some(CodeSpec::Exact(235)),
        enhanced: Some("2.7.*".into()),
        text: Some("*successful".into()),
        ..Expect::default()
    };
    assert_eq!(
        e.evaluate(&lines(&["235 2.7.0 Authentication successful"])),
        Outcome::Pass
    );
    let Outcome::Fail {
        expected,
        actual,
        reason,
    } = e.evaluate(&lines(&["535 5.7.8 Authentication credentials invalid"]))
    else {
        panic!()
    };
    assert!(expected.contains("code 235"));
    assert_eq!(actual, "535 5.7.8 Authentication credentials invalid");
    assert_eq!(reason, "code 535 is not 235");
    let no_enhanced = e.evaluate(&lines(&["235 Authentication successful"]));
    assert!(matches!(no_enhanced, Outcome::Fail { reason, .. } if reason.contains("no enhanced")));

    let unknown = Expect {
        code: Some(CodeSpec::Exact(504)),
        alternatives: vec![Expect {
            code: Some(CodeSpec::Exact(535)),
            note: Some("Postfix answers 535".into()),
            ..Expect::default()
        }],
        ..Expect::default()
    };
    assert_eq!(
        unknown.evaluate(&lines(&["504 5.5.4 Unrecognized authentication type"])),
        Outcome::Pass
    );
    assert_eq!(
        unknown.evaluate(&lines(&["535 5.7.8 Error: authentication failed"])),
        Outcome::NonStrict {
            note: "Postfix answers 535".into()
        }
    );
    assert!(!unknown.evaluate(&lines(&["250 OK"])).is_acceptable());

    let ehlo = Expect {
        capability: [
            (
                "auth".to_owned(),
                CapabilityCheck::With(vec!["plain".into()]),
            ),
            ("STARTTLS".to_owned(), CapabilityCheck::Absent),
        ]
        .into(),
        capability_absent: vec!["CHUNKING".into()],
        lines: Some(3),
        ..Expect::default()
    };
    assert_eq!(
        ehlo.evaluate(&lines(&["250-mx", "250-AUTH LOGIN PLAIN", "250 8BITMIME"])),
        Outcome::Pass
    );
    // `AUTH=` (the pre-RFC form) is not `AUTH`.
    assert!(
        !ehlo
            .evaluate(&lines(&["250-mx", "250-AUTH=LOGIN PLAIN", "250 8BITMIME"]))
            .is_acceptable()
    );
    assert!(
        !ehlo
            .evaluate(&lines(&["250-mx", "250-AUTH PLAIN", "250 STARTTLS"]))
            .is_acceptable()
    );

    let bare = Expect {
        code: Some(CodeSpec::Exact(334)),
        bare_334: Some(false),
        ..Expect::default()
    };
    assert_eq!(bare.evaluate(&lines(&["334 "])), Outcome::Pass);
    assert!(!bare.evaluate(&lines(&["334"])).is_acceptable());
    assert!(!Expect::code(250).evaluate(&[]).is_acceptable());
}

#[test]
fn server_role_checks() {
    let r = ExpectResponse {
        decoded: Some("\0alice\0*".into()),
        ..Default::default()
    };
    assert_eq!(r.evaluate("AGFsaWNlAHdvbmRlcmxhbmQ="), Outcome::Pass);
    assert!(!r.evaluate("not base64!").is_acceptable());
    assert!(
        !ExpectResponse {
            cancel: true,
            ..Default::default()
        }
        .evaluate("=")
        .is_acceptable()
    );
    let c = ExpectCommand {
        verb: Some("ehlo".into()),
        args: Some("*.example.com".into()),
        ..Default::default()
    };
    assert_eq!(c.evaluate("EHLO client.example.com"), Outcome::Pass);
    assert!(!c.evaluate("HELO client.example.com").is_acceptable());
}

#[test]
fn variables_expand_with_filters() {
    let mut vars = Vars::new();
    vars.set("user", "alice");
    vars.set("password", "p@ss w0rd:x");
    vars.set("who", "a+b=c@example.com");
    assert_eq!(
        vars.expand("${user} ${user|base64} ${password|base64}")
            .unwrap(),
        "alice YWxpY2U= cEBzcyB3MHJkOng="
    );
    assert_eq!(
        vars.expand("AUTH=${who|xtext}").unwrap(),
        "AUTH=a+2Bb+3Dc@example.com"
    );
    assert_eq!(
        vars.expand("${user|base64|hex}").unwrap(),
        "595778705932553d"
    );
    assert_eq!(vars.expand("$${user}").unwrap(), "${user}");
    assert_eq!(
        vars.expand("${nobody}"),
        Err(VarError::Unknown {
            name: "nobody".into()
        })
    );
    assert!(
        vars.expand("${nobody}")
            .unwrap_err()
            .to_string()
            .contains("`nobody`")
    );
    assert_eq!(
        vars.expand("${user|rot13}"),
        Err(VarError::UnknownFilter {
            name: "user".into(),
            filter: "rot13".into()
        })
    );
    assert_eq!(
        vars.expand("x ${user"),
        Err(VarError::Unterminated { offset: 2 })
    );
}

#[test]
fn expansion_respects_where_the_value_goes() {
    let mut vars = Vars::new();
    vars.set("user", "a*b");
    vars.set("password", r"back\slash");
    // In a pattern a value is literal: `*` in it is not a wildcard.
    let step = Step::Expect(Expect {
        text: Some("hello ${user}".into()),
        ..Expect::default()
    })
    .expand(&vars)
    .unwrap();
    let Step::Expect(e) = step else { panic!() };
    assert_eq!(e.evaluate(&["250 hello a*b".to_owned()]), Outcome::Pass);
    assert!(!e.evaluate(&["250 hello aXXb".to_owned()]).is_acceptable());
    // In a raw string a value's backslashes are not escapes.
    let step = Step::Sasl(Sasl {
        base64_of: Some(r"\0${user}\0${password}".into()),
        ..Sasl::default()
    })
    .expand(&vars)
    .unwrap();
    let Step::Sasl(s) = step else { panic!() };
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode(b"\0a*b\0back\\slash");
    assert_eq!(s.bytes().unwrap(), format!("{expected}\r\n").into_bytes());
}

#[test]
fn auth_credentials_default_to_the_variables() {
    let mut vars = Vars::new();
    vars.set("user", "alice");
    vars.set("password", "wonderland");
    let step = Step::Auth(Auth {
        mechanism: "PLAIN".into(),
        user: None,
        password: None,
        authzid: None,
        token: None,
        initial_response: InitialResponse::Auto,
        expect: None,
        channel_binding: None,
    });
    let Step::Auth(a) = step.expand(&vars).unwrap() else {
        panic!()
    };
    assert_eq!(a.user.as_deref(), Some("alice"));
    assert_eq!(a.password.as_deref(), Some("wonderland"));
    assert_eq!(a.token, None);
    assert_eq!(a.expectation(), Expect::code(235));
}

#[test]
fn vars_from_arguments_files_and_environment() {
    let env = |k: &str| (k == "PW").then(|| "s3cret".to_owned());
    let mut vars = Vars::new();
    vars.parse_assignment("user=alice", &env).unwrap();
    vars.parse_assignment("password-env=PW", &env).unwrap();
    vars.parse_assignment("empty=", &env).unwrap();
    assert_eq!(vars.get("password"), Some("s3cret"));
    assert_eq!(vars.get("empty"), Some(""));
    assert_eq!(
        vars.parse_assignment("token-env=NOPE", &env),
        Err(VarError::EnvNotSet {
            name: "token".into(),
            env: "NOPE".into()
        })
    );
    assert!(matches!(
        vars.parse_assignment("novalue", &env),
        Err(VarError::MalformedAssignment { .. })
    ));

    let mut from_file = Vars::new();
    from_file
        .parse_file(
            "# credentials\n\nhost=mx.example\napi_token=t0k=en \n",
            &env,
        )
        .unwrap();
    assert_eq!(from_file.get("host"), Some("mx.example"));
    // The value is the rest of the line, `=` and trailing space included.
    assert_eq!(from_file.get("api_token"), Some("t0k=en "));
    assert_eq!(
        Vars::new().parse_file("a=1\nbroken\n", &env),
        Err(VarError::InFile {
            line: 2,
            error: Box::new(VarError::MalformedAssignment {
                text: "broken".into()
            })
        })
    );

    let env_vars = Vars::from_env(vec![
        ("AUTHSPEC_VAR_PASSWORD".to_owned(), "pw".to_owned()),
        ("HOME".to_owned(), "/root".to_owned()),
    ]);
    assert_eq!(env_vars.get("password"), Some("pw"));
    assert_eq!(env_vars.names().count(), 1);

    // Layering: scenario defaults < environment < file < arguments.
    let defaults = [
        ("user".to_owned(), "bob".to_owned()),
        ("n".to_owned(), "1".to_owned()),
    ]
    .into();
    let mut layered = env_vars.clone();
    layered.extend(&from_file);
    layered.extend(&vars);
    let effective = layered.with_defaults(&defaults);
    assert_eq!(effective.get("user"), Some("alice"));
    assert_eq!(effective.get("n"), Some("1"));
    assert_eq!(effective.get("password"), Some("s3cret"));

    let mut secrets = effective.secret_values();
    secrets.sort();
    assert_eq!(secrets, ["s3cret", "t0k=en "]);
    let debug = format!("{effective:?}");
    assert!(
        !debug.contains("s3cret") && !debug.contains("t0k=en"),
        "{debug}"
    );
    assert!(debug.contains("alice"));
    assert!(scenario::is_secret_name("SMTP_Password") && scenario::is_secret_name("client_secret"));
    assert!(!scenario::is_secret_name("user"));
}

#[test]
fn auth_equals_is_its_own_capability_keyword() {
    // README: "`AUTH=` (the pre-standard form) is a different keyword from `AUTH`";
    // its mechanisms are its parameters.
    let lines = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let reply = lines(&[
        "250-mx",
        "250-AUTH PLAIN LOGIN",
        "250-AUTH=PLAIN LOGIN",
        "250 8BITMIME",
    ]);
    let with_list = Expect {
        capability: [(
            "AUTH=".to_owned(),
            CapabilityCheck::With(vec!["login".into(), "PLAIN".into()]),
        )]
        .into(),
        ..Expect::default()
    };
    assert_eq!(with_list.evaluate(&reply), Outcome::Pass);
    let absent = Expect {
        capability_absent: vec!["AUTH=".into()],
        ..Expect::default()
    };
    assert!(!absent.evaluate(&reply).is_acceptable());
    assert_eq!(
        absent.evaluate(&lines(&["250-mx", "250-AUTH PLAIN LOGIN", "250 8BITMIME"])),
        Outcome::Pass
    );
    let cram = Expect {
        capability: [(
            "AUTH=".to_owned(),
            CapabilityCheck::With(vec!["CRAM-MD5".into()]),
        )]
        .into(),
        ..Expect::default()
    };
    assert!(!cram.evaluate(&reply).is_acceptable());
}
