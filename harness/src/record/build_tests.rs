//! The builder end to end: dialogs played through a recorder, built, rendered and
//! loaded again, checked for what each role replays and for every secret form.

use super::*;
use crate::record::events::{Limits, Recorder};
use base64::Engine as _;

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Plays a dialog through a recorder: `C:` lines from the client, `S:` from the
/// server (each with CRLF unless it ends in `\n` already).
fn record(script: &[(&str, &[u8])]) -> Vec<Event> {
    let mut r = Recorder::new(Limits::default(), true);
    for (who, bytes) in script {
        let mut b = bytes.to_vec();
        if !b.ends_with(b"\n") {
            b.extend_from_slice(b"\r\n");
        }
        match *who {
            "C" => {
                r.client_data(&b);
            }
            "S" => {
                r.server_data(&b);
            }
            _ => unreachable!(),
        }
    }
    r.server_closed();
    r.finish()
}

fn info() -> SessionInfo {
    SessionInfo {
        number: 7,
        stamp: "20250113T101500Z".into(),
        client: "127.0.0.1:5000".into(),
        target: "127.0.0.1:25".into(),
    }
}

fn yaml(rec: &Recording, role: Role, redact: bool) -> String {
    let (file, notes) = match role {
        Role::Client => (rec.client.as_ref().unwrap(), &rec.client_notes),
        Role::Server => (rec.server.as_ref().unwrap(), &rec.server_notes),
    };
    let text = render(file, &info(), notes, redact).unwrap();
    let sc =
        crate::scenario::load_str(&text, "recorded.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(sc.role, role);
    text
}

fn assert_no_secret(text: &str, secrets: &[&[u8]]) {
    for s in secrets {
        for form in crate::record::text::secret_forms(s) {
            assert!(!text.contains(&form), "{form:?} in\n{text}");
        }
    }
}

fn greeting_and_ehlo() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("S", b"220 mx.example.org ESMTP ready"),
        ("C", b"EHLO client.example.com"),
        (
            "S",
            b"250-mx.example.org\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN CRAM-MD5 NTLM\r\n",
        ),
    ]
}

#[test]
fn plain_with_initial_response_becomes_auth_and_expect_auth() {
    let ir = format!("AUTH PLAIN {}", b64(b"\0alice\0wonderland"));
    let mut s = greeting_and_ehlo();
    s.push(("C", ir.as_bytes()));
    s.push(("S", b"235 2.7.0 Authentication successful"));
    s.push(("C", b"QUIT"));
    s.push(("S", b"221 2.0.0 Bye"));
    let rec = build(&record(&s), &info(), &Options::default());
    assert_eq!(rec.secrets, vec![b"wonderland".to_vec()]);
    let c = yaml(&rec, Role::Client, false);
    assert!(c.contains("mechanism: PLAIN"), "{c}");
    assert!(c.contains("initial_response: true"), "{c}");
    assert!(c.contains("password: ${password}"), "{c}");
    assert!(c.contains("enhanced: 2.7.0"), "{c}");
    assert!(
        c.contains("id: recorded/20250113T101500Z-007-client"),
        "{c}"
    );
    assert!(c.contains("- expect_close: {}"), "{c}");
    let srv = yaml(&rec, Role::Server, false);
    assert!(srv.contains("expect_auth:"), "{srv}");
    assert!(
        srv.contains("reply: 235 2.7.0 Authentication successful"),
        "{srv}"
    );
    for t in [&c, &srv] {
        assert_no_secret(t, &[b"wonderland", b"\0alice\0wonderland"]);
    }
}

#[test]
fn login_with_initial_response_is_written_with_variables() {
    let ir = format!("AUTH LOGIN {}", b64(b"alice"));
    let pw = b64(b"wonderland");
    let mut s = greeting_and_ehlo();
    s.push(("C", ir.as_bytes()));
    s.push(("S", b"334 UGFzc3dvcmQ6"));
    s.push(("C", pw.as_bytes()));
    s.push(("S", b"235 2.7.0 Authentication successful"));
    let rec = build(&record(&s), &info(), &Options::default());
    let c = yaml(&rec, Role::Client, false);
    assert!(c.contains("send: AUTH LOGIN ${user|base64}"), "{c}");
    assert!(c.contains("base64_of: ${password}"), "{c}");
    assert_no_secret(&c, &[b"wonderland"]);
    let srv = yaml(&rec, Role::Server, false);
    assert!(srv.contains("mechanism: LOGIN"), "{srv}");
    assert_no_secret(&srv, &[b"wonderland"]);
}

#[test]
fn refused_cram_md5_replays_with_a_wrong_password_and_recorded_challenge() {
    let challenge = b64(b"<1896.697170952@mx.example.org>");
    let resp = b64(b"alice b913a602c7eda7a495b4e6e7334d3890");
    let mut s = greeting_and_ehlo();
    s.push(("C", b"AUTH CRAM-MD5"));
    let line = format!("334 {challenge}");
    s.push(("S", line.as_bytes()));
    s.push(("C", resp.as_bytes()));
    s.push(("S", b"535 5.7.8 Error: authentication failed"));
    let rec = build(&record(&s), &info(), &Options::default());
    let c = yaml(&rec, Role::Client, false);
    assert!(c.contains("password: ${wrong_password}"), "{c}");
    assert!(c.contains("initial_response: false"), "{c}");
    assert!(c.contains("code: 535"), "{c}");
    assert!(!c.contains(&resp), "{c}");
    let srv = yaml(&rec, Role::Server, false);
    assert!(srv.contains(&format!("challenge: {challenge}")), "{srv}");
    assert!(srv.contains("base64: '*'"), "{srv}");
    assert!(!srv.contains(&resp), "{srv}");
    assert!(!srv.contains("wrong_password"), "{srv}");
}

#[test]
fn unknown_mechanism_is_non_portable_and_its_payloads_withheld() {
    let mut s = greeting_and_ehlo();
    s.push((
        "C",
        b"AUTH NTLM TlRMTVNTUAABAAAAB4IIAAAAAAAAAAAAAAAAAAAAAAA=",
    ));
    s.push(("S", b"334 TlRMTVNTUAACAAAADAAMADAAAAA1AoEAq2zJn5kTrmc="));
    s.push(("C", b"TlRMTVNTUAADAAAAGAAYAEgAAAAYABgAYAAAAA=="));
    s.push(("S", b"235 2.7.0 Authentication successful"));
    let rec = build(&record(&s), &info(), &Options::default());
    let c = yaml(&rec, Role::Client, false);
    assert!(c.contains("- non-portable"), "{c}");
    assert!(c.contains("[non-portable: NTLM"), "{c}");
    assert!(c.contains("send: AUTH NTLM d2l0aGhlbGQ="), "{c}");
    assert!(c.contains("send: d2l0aGhlbGQ="), "{c}");
    // NTLM's responses derive from the password: none is written.
    assert!(!c.contains("TlRMTVNTUAAB"), "{c}");
    assert!(!c.contains("TlRMTVNTUAAD"), "{c}");
    let srv = yaml(&rec, Role::Server, false);
    assert!(srv.contains("auth_mechanism: NTLM"), "{srv}");
    assert!(
        srv.contains("challenge: TlRMTVNTUAACAAAADAAMADAAAAA1AoEAq2zJn5kTrmc="),
        "{srv}"
    );
}

/// Issue 15, finding 5: the four hostile sessions in which `record` wrote the
/// password, and their neighbours. Every role, with and without `--redact`.
#[test]
fn hostile_auth_sessions_never_write_the_password() {
    let pw: &[u8] = b"Tr0ub4dor&3";
    let plain = b64(b"\0alice\0Tr0ub4dor&3");
    let pw64 = b64(pw);
    let cases: Vec<Vec<(&str, Vec<u8>)>> = vec![
        // Two spaces after AUTH.
        vec![
            ("C", format!("AUTH  PLAIN {plain}").into_bytes()),
            ("S", b"501 5.5.4 Syntax error".to_vec()),
        ],
        // An unknown mechanism name carrying a PLAIN payload.
        vec![
            ("C", format!("AUTH XPLAIN {plain}").into_bytes()),
            ("S", b"504 5.5.4 Unrecognized authentication type".to_vec()),
        ],
        // Trailing words after the initial response.
        vec![
            ("C", format!("AUTH PLAIN {plain} x").into_bytes()),
            ("S", b"501 5.5.4 Syntax error".to_vec()),
        ],
        // The password line after a 535 (LOGIN, the server gave up early).
        vec![
            ("C", b"AUTH LOGIN".to_vec()),
            ("S", b"334 VXNlcm5hbWU6".to_vec()),
            ("C", b64(b"alice").into_bytes()),
            ("S", b"535 5.7.8 Error: authentication failed".to_vec()),
            ("C", pw64.clone().into_bytes()),
            ("S", b"502 5.5.2 Error: command not recognized".to_vec()),
        ],
        // The password line after a `*` cancel.
        vec![
            ("C", b"AUTH LOGIN".to_vec()),
            ("S", b"334 VXNlcm5hbWU6".to_vec()),
            ("C", b"*".to_vec()),
            ("S", b"501 5.7.0 Authentication aborted".to_vec()),
            ("C", pw64.clone().into_bytes()),
            ("S", b"502 5.5.2 Error: command not recognized".to_vec()),
        ],
        // The password in plain text on a line of its own after AUTH.
        vec![
            ("C", b"AUTH LOGIN".to_vec()),
            ("S", b"334 VXNlcm5hbWU6".to_vec()),
            ("C", b"*".to_vec()),
            ("S", b"501 5.7.0 Authentication aborted".to_vec()),
            ("C", pw.to_vec()),
            ("S", b"502 5.5.2 Error: command not recognized".to_vec()),
        ],
    ];
    for case in cases {
        let mut s: Vec<(&str, &[u8])> = greeting_and_ehlo();
        for (who, line) in &case {
            s.push((*who, line.as_slice()));
        }
        s.push(("C", b"QUIT"));
        s.push(("S", b"221 2.0.0 Bye"));
        for redact in [false, true] {
            let rec = build(&record(&s), &info(), &Options { redact });
            for role in [Role::Client, Role::Server] {
                let text = yaml(&rec, role, redact);
                assert_no_secret(&text, &[pw, pw64.as_bytes(), plain.as_bytes()]);
            }
        }
    }
}

#[test]
fn bad_line_endings_are_kept_byte_for_byte() {
    let s: Vec<(&str, &[u8])> = vec![
        ("S", b"220 mx ESMTP"),
        ("C", b"EHLO a\n"),
        ("S", b"250 mx"),
        ("C", b"NOOP\r\r\n"),
        ("S", b"250 2.0.0 Ok"),
    ];
    let rec = build(&record(&s), &info(), &Options::default());
    let c = yaml(&rec, Role::Client, false);
    assert!(c.contains(r"line: EHLO a\n"), "{c}");
    assert!(c.contains(r"line: NOOP\r\r\n"), "{c}");
    let sc = crate::scenario::load_str(&c, "x").unwrap();
    let sends: Vec<Vec<u8>> = sc
        .steps()
        .iter()
        .filter_map(|s| match s {
            Step::Send(s) => s.bytes().ok(),
            _ => None,
        })
        .collect();
    assert_eq!(sends, vec![b"EHLO a\n".to_vec(), b"NOOP\r\r\n".to_vec()]);
}

#[test]
fn secrets_elsewhere_become_variables_and_dollars_stay_literal() {
    let ir = format!("AUTH PLAIN {}", b64(b"\0alice\0s3cr3t-pw"));
    let mut s = greeting_and_ehlo();
    s.push(("C", ir.as_bytes()));
    s.push(("S", b"235 2.7.0 Authentication successful"));
    s.push(("C", b"MAIL FROM:<s3cr3t-pw@x.example> ${user} $5"));
    s.push(("S", b"250 2.1.0 Ok"));
    let rec = build(&record(&s), &info(), &Options::default());
    let c = yaml(&rec, Role::Client, false);
    assert!(
        c.contains("send: MAIL FROM:<${password}@x.example> $${user} $$5"),
        "{c}"
    );
    assert_no_secret(&c, &[b"s3cr3t-pw"]);
    let srv = yaml(&rec, Role::Server, false);
    assert_no_secret(&srv, &[b"s3cr3t-pw"]);
}

#[test]
fn redact_replaces_user_and_host_names() {
    let ir = format!("AUTH PLAIN {}", b64(b"\0alice\0wonderland"));
    let mut s = greeting_and_ehlo();
    s.push(("C", ir.as_bytes()));
    s.push(("S", b"235 2.7.0 Authentication successful"));
    s.push(("C", b"MAIL FROM:<alice@client.example.com>"));
    s.push(("S", b"250 2.1.0 Ok"));
    let rec = build(&record(&s), &info(), &Options { redact: true });
    let c = yaml(&rec, Role::Client, true);
    assert!(!c.contains("alice"), "{c}");
    assert!(!c.contains("mx.example.org"), "{c}");
    assert!(!c.contains("127.0.0.1"), "{c}");
    assert!(c.contains("send: EHLO client.example.com"), "{c}");
    assert!(c.contains("MAIL FROM:<${user}@client.example.com>"), "{c}");
    let srv = yaml(&rec, Role::Server, true);
    assert!(!srv.contains("alice"), "{srv}");
    assert!(!srv.contains("mx.example.org"), "{srv}");
    assert!(srv.contains("220 mx.example.net ESMTP ready"), "{srv}");
    assert!(srv.contains("line: EHLO *"), "{srv}");
}

/// Regression: a SCRAM user name with `,` or `=` travels escaped (`=2C`, `=3D`);
/// `--redact` must hide the name as people write it, not only its wire form.
#[test]
fn redact_hides_scram_user_names_with_escaped_characters() {
    for (name, wire) in [("bob=smith", "bob=3Dsmith"), ("bob,smith", "bob=2Csmith")] {
        let ir = format!(
            "AUTH SCRAM-SHA-256 {}",
            b64(format!("n,,n={wire},r=fyko+d2lbbFgONRv9qkxdawL").as_bytes())
        );
        let mail = format!("MAIL FROM:<{name}@client.example.com>");
        let mut s = greeting_and_ehlo();
        s.push(("C", ir.as_bytes()));
        s.push(("S", b"535 5.7.8 Authentication failed"));
        s.push(("C", mail.as_bytes()));
        s.push(("S", b"250 2.1.0 Ok"));
        let rec = build(&record(&s), &info(), &Options { redact: true });
        for role in [Role::Client, Role::Server] {
            let text = yaml(&rec, role, true);
            assert!(!text.contains(name), "{text}");
            assert!(!text.contains(wire), "{text}");
        }
    }
}

#[test]
fn cancelled_exchange_records_the_cancel_not_the_payloads() {
    let mut s = greeting_and_ehlo();
    s.push(("C", b"AUTH LOGIN"));
    s.push(("S", b"334 VXNlcm5hbWU6"));
    s.push(("C", b"*"));
    s.push(("S", b"501 5.7.0 Authentication aborted"));
    let rec = build(&record(&s), &info(), &Options::default());
    let c = yaml(&rec, Role::Client, false);
    assert!(c.contains("cancel: true"), "{c}");
    assert!(c.contains("code: 501"), "{c}");
    let srv = yaml(&rec, Role::Server, false);
    assert!(srv.contains("cancel: true"), "{srv}");
}

/// A session: greeting and EHLO, one AUTH line answered by `reply`, then `more`.
fn one_auth(auth: &str, reply: &str, more: &[(&str, &[u8])], redact: bool) -> Recording {
    let mut s = greeting_and_ehlo();
    s.push(("C", auth.as_bytes()));
    s.push(("S", reply.as_bytes()));
    s.extend_from_slice(more);
    build(&record(&s), &info(), &Options { redact })
}

/// The SCRAM names come from the reference parser for every SCRAM mechanism, the
/// GS2 authzid included, in both the written and the wire form.
#[test]
fn redact_hides_scram_sha_512_user_and_authzid() {
    let ir = b64(b"n,a=bo=2Css,n=carol,r=fyko+d2lbbFgONRv9qkxdawL");
    let mail: &[u8] = b"MAIL FROM:<carol@client.example.com> bo,ss bo=2Css";
    let rec = one_auth(
        &format!("AUTH SCRAM-SHA-512 {ir}"),
        "535 5.7.8 Authentication failed",
        &[("C", mail), ("S", b"250 2.1.0 Ok")],
        true,
    );
    for role in [Role::Client, Role::Server] {
        let text = yaml(&rec, role, true);
        for name in ["carol", "bo,ss", "bo=2Css"] {
            assert!(!text.contains(name), "{name} in\n{text}");
        }
    }
}

/// A token message its parser refuses (no final 0x01) still gives its token up as a
/// secret, so a server that echoes it does not put it in the recording.
#[test]
fn unparsed_xoauth2_message_still_hides_its_token() {
    let token = "ya29.tok3n-XYZ";
    let ir = b64(format!("user=alice\x01auth=Bearer {token}\x01").as_bytes());
    let rec = one_auth(
        &format!("AUTH XOAUTH2 {ir}"),
        &format!("535 5.7.8 token {token} rejected"),
        &[],
        false,
    );
    assert!(rec.secrets.contains(&token.as_bytes().to_vec()));
    for role in [Role::Client, Role::Server] {
        assert_no_secret(&yaml(&rec, role, false), &[token.as_bytes()]);
    }
}

#[test]
fn oauthbearer_token_and_authzid_come_from_the_rfc_7628_parser() {
    let token = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==";
    let ir = b64(format!("n,a=alice,\x01host=mx\x01auth=Bearer {token}\x01\x01").as_bytes());
    let rec = one_auth(
        &format!("AUTH OAUTHBEARER {ir}"),
        &format!("235 2.7.0 ok {token}"),
        &[
            ("C", b"MAIL FROM:<alice@client.example.com>"),
            ("S", b"250 2.1.0 Ok"),
        ],
        true,
    );
    assert_eq!(rec.secrets, vec![token.as_bytes().to_vec()]);
    for role in [Role::Client, Role::Server] {
        let text = yaml(&rec, role, true);
        assert_no_secret(&text, &[token.as_bytes()]);
        assert!(!text.contains("alice"), "{text}");
    }
}

/// RFC 4954 §4 compares mechanism names without case: a lower-case name is still an
/// exchange authspec replays.
#[test]
fn lower_case_mechanism_name_is_replayed() {
    let ir = b64(b"\0alice\0wonderland");
    let rec = one_auth(
        &format!("AUTH plain {ir}"),
        "235 2.7.0 Authentication successful",
        &[],
        false,
    );
    assert_eq!(rec.secrets, vec![b"wonderland".to_vec()]);
    let c = yaml(&rec, Role::Client, false);
    assert!(c.contains("mechanism: PLAIN"), "{c}");
    assert_no_secret(&c, &[b"wonderland"]);
}

/// An initial response with octets outside base64 breaks RFC 4954 §4's grammar: the
/// line is replaced as any AUTH line the command parser refuses.
#[test]
fn initial_response_outside_base64_is_withheld() {
    let rec = one_auth(
        "AUTH PLAIN AGFsaWNl$AHdvbmRlcmxhbmQ=",
        "501 5.5.2 Syntax error",
        &[],
        false,
    );
    let c = yaml(&rec, Role::Client, false);
    assert!(c.contains("send: AUTH d2l0aGhlbGQ="), "{c}");
    assert!(c.contains("- non-portable"), "{c}");
    assert!(!c.contains("AGFsaWNl"), "{c}");
}
