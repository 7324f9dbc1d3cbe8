//! Property tests for the codec: round trips of commands, replies, capabilities,
//! xtext and base64; no parser panics on any bytes; line framing is independent
//! of how the input is chunked.

use authspec_reference::fuzz_oracles;
use authspec_reference::smtp::command::{
    self, Body, Command, ForwardPath, InitialResponse, MailAuth, Param, ReversePath,
};
use authspec_reference::smtp::line::{Line, LineReader};
use authspec_reference::smtp::reply::{
    Capabilities, Capability, Reply, ReplyLimits, ReplyLine, Separator, parse_ehlo, parse_reply,
};
use authspec_reference::smtp::{sasl_frame, xtext};
use proptest::prelude::*;

fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?"
}

fn domain() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 1..4).prop_map(|l| l.join("."))
}

fn address_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| format!("[{}.{}.{}.{}]", a[0], a[1], a[2], a[3])),
        any::<[u16; 8]>().prop_map(|a| format!("[IPv6:{}]", std::net::Ipv6Addr::from(a))),
    ]
}

const ATEXT: &str = "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]";

fn atom() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("{ATEXT}{{1,8}}")).unwrap()
}

fn quoted() -> impl Strategy<Value = String> {
    "\"([ a-zA-Z0-9.@,;<>()]|\\\\[\"\\\\]){0,10}\""
}

fn local_part() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(atom(), 1..3).prop_map(|a| a.join(".")),
        1 => quoted(),
        1 => "[a-z]{1,4}[é日本]{1,3}",
    ]
}

fn mailbox() -> impl Strategy<Value = String> {
    (
        local_part(),
        prop_oneof![3 => domain(), 1 => address_literal()],
    )
        .prop_map(|(l, d)| format!("{l}@{d}"))
}

fn other_param() -> impl Strategy<Value = Param> {
    (
        "[A-Za-z0-9][A-Za-z0-9-]{0,8}",
        prop::option::of("[!-<>-~]{1,10}"),
    )
        .prop_filter("keyword taken by a known parameter", |(k, _)| {
            !["SIZE", "BODY", "AUTH", "SMTPUTF8"]
                .iter()
                .any(|known| k.eq_ignore_ascii_case(known))
        })
        .prop_map(|(keyword, value)| Param::Other { keyword, value })
}

fn key(p: &Param) -> String {
    match p {
        Param::Size(_) => "SIZE".into(),
        Param::Body(_) => "BODY".into(),
        Param::SmtpUtf8 => "SMTPUTF8".into(),
        Param::Auth(_) => "AUTH".into(),
        Param::Other { keyword, .. } => keyword.to_ascii_uppercase(),
    }
}

fn dedup(params: Vec<Param>) -> Vec<Param> {
    let mut seen = std::collections::HashSet::new();
    params.into_iter().filter(|p| seen.insert(key(p))).collect()
}

fn mail_param() -> impl Strategy<Value = Param> {
    prop_oneof![
        any::<u64>().prop_map(Param::Size),
        prop_oneof![
            Just(Body::SevenBit),
            Just(Body::EightBitMime),
            Just(Body::BinaryMime)
        ]
        .prop_map(Param::Body),
        Just(Param::SmtpUtf8),
        Just(Param::Auth(MailAuth::Unknown)),
        // `AUTH=` needs a value (esmtp-value = 1*...), so the identity is never empty.
        prop_oneof![Just("<>".to_string()), any::<String>()]
            .prop_filter("non-empty", |s| !s.is_empty())
            .prop_map(|s| Param::Auth(MailAuth::Mailbox(s))),
        other_param(),
    ]
}

fn string_arg() -> impl Strategy<Value = String> {
    prop_oneof![atom(), quoted()]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        domain().prop_map(|domain| Command::Helo { domain }),
        prop_oneof![domain(), address_literal()].prop_map(|domain| Command::Ehlo { domain }),
        (
            prop_oneof![
                1 => Just(ReversePath::Null),
                4 => mailbox().prop_map(ReversePath::Mailbox)
            ],
            prop::collection::vec(mail_param(), 0..5).prop_map(dedup)
        )
            .prop_map(|(from, params)| Command::Mail { from, params }),
        (
            prop_oneof![
                1 => Just(ForwardPath::Postmaster),
                4 => mailbox().prop_map(ForwardPath::Mailbox)
            ],
            prop::collection::vec(
                (
                    "[A-Za-z0-9][A-Za-z0-9-]{0,8}",
                    prop::option::of("[!-<>-~]{1,10}")
                )
                    .prop_map(|(keyword, value)| Param::Other { keyword, value }),
                0..3
            )
            .prop_map(dedup)
        )
            .prop_map(|(to, params)| Command::Rcpt { to, params }),
        Just(Command::Data),
        Just(Command::Rset),
        Just(Command::Quit),
        Just(Command::StartTls),
        (any::<u64>(), any::<bool>()).prop_map(|(size, last)| Command::Bdat { size, last }),
        string_arg().prop_map(|arg| Command::Vrfy { arg }),
        string_arg().prop_map(|arg| Command::Expn { arg }),
        prop::option::of(string_arg()).prop_map(|arg| Command::Help { arg }),
        prop::option::of(string_arg()).prop_map(|arg| Command::Noop { arg }),
        (
            "[A-Z0-9_-]{1,20}",
            prop::option::of(prop_oneof![
                Just(InitialResponse::Empty),
                prop::collection::vec(any::<u8>(), 1..40)
                    .prop_map(|d| InitialResponse::Base64(sasl_frame::encode_initial_response(&d))),
            ])
        )
            .prop_map(|(mechanism, initial_response)| Command::Auth {
                mechanism,
                initial_response
            }),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    let code = (2u16..=5, 0u16..=5, 0u16..=9).prop_map(|(a, b, c)| a * 100 + b * 10 + c);
    let text = proptest::collection::vec(prop_oneof![Just(9u8), 32u8..=126], 0..40);
    (code, prop::collection::vec(text, 1..6), any::<bool>()).prop_map(|(code, texts, bare)| {
        let n = texts.len();
        let mut lines: Vec<ReplyLine> = texts
            .into_iter()
            .enumerate()
            .map(|(i, text)| ReplyLine {
                code,
                sep: if i + 1 == n {
                    Separator::Space
                } else {
                    Separator::Hyphen
                },
                text,
            })
            .collect();
        if bare {
            if let Some(last) = lines.last_mut() {
                last.sep = Separator::None;
                last.text.clear();
            }
        }
        Reply {
            code,
            lines,
            deviations: Vec::new(),
        }
    })
}

fn capabilities() -> impl Strategy<Value = Capabilities> {
    let keyword = "[A-Za-z0-9][A-Za-z0-9-]{0,8}";
    let params = prop::collection::vec("[!-~]{1,8}", 0..4);
    let mechs = prop::collection::vec("[A-Z0-9_-]{1,20}", 1..5);
    (
        domain(),
        prop::option::of("[ -~]{1,20}"),
        prop::collection::vec((keyword, params), 0..6),
        prop::option::of(mechs.clone()),
        prop::option::of(mechs),
    )
        .prop_map(|(domain, greeting, kws, auth, auth_eq)| {
            let mut seen = std::collections::HashSet::new();
            let mut keywords: Vec<Capability> = kws
                .into_iter()
                .filter(|(k, _)| {
                    !k.eq_ignore_ascii_case("AUTH") && seen.insert(k.to_ascii_uppercase())
                })
                .map(|(keyword, params)| Capability { keyword, params })
                .collect();
            if let Some(m) = &auth {
                keywords.push(Capability {
                    keyword: "AUTH".into(),
                    params: m.clone(),
                });
            }
            Capabilities {
                domain,
                greeting,
                keywords,
                auth,
                auth_eq,
            }
        })
}

fn frame_all(stream: &[u8], chunks: &[usize], limit: usize) -> Vec<Line> {
    let mut r = LineReader::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut sizes = chunks.iter().cycle();
    while pos < stream.len() {
        let size = sizes.next().copied().unwrap_or(stream.len()).max(1);
        let end = (pos + size).min(stream.len());
        r.push(&stream[pos..end]);
        pos = end;
        out.extend(std::iter::from_fn(|| r.next_line(limit)));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn command_parse_format_round_trip(cmd in command()) {
        let line = cmd.format();
        let parsed = command::parse(&line);
        prop_assert_eq!(parsed.as_ref(), Ok(&cmd), "{}", String::from_utf8_lossy(&line));
        // The formatted line is canonical: it formats back to itself.
        prop_assert_eq!(parsed.unwrap().format(), line);
    }

    #[test]
    fn verb_case_does_not_matter(cmd in command(), mask in any::<u8>()) {
        let mut line = cmd.format();
        let verb_len = cmd.verb().len();
        for (i, b) in line.iter_mut().take(verb_len).enumerate() {
            if mask & (1 << (i % 8)) != 0 {
                b.make_ascii_lowercase();
            }
        }
        prop_assert_eq!(command::parse(&line), Ok(cmd));
    }

    #[test]
    fn reply_format_parse_round_trip(r in reply(), tail in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut bytes = r.format();
        let len = bytes.len();
        bytes.extend_from_slice(&tail);
        let parsed = parse_reply(&bytes, &ReplyLimits::default());
        prop_assert_eq!(parsed, Ok(Some((r, len))));
    }

    #[test]
    fn reply_needs_more_until_the_last_line(r in reply()) {
        let bytes = r.format();
        for cut in 0..bytes.len() {
            prop_assert_eq!(parse_reply(&bytes[..cut], &ReplyLimits::default()), Ok(None));
        }
    }

    #[test]
    fn capabilities_round_trip(caps in capabilities()) {
        prop_assert_eq!(parse_ehlo(&caps.format_reply()), Ok(caps));
    }

    #[test]
    fn xtext_round_trip(raw in prop::collection::vec(any::<u8>(), 0..64)) {
        let text = xtext::encode(&raw);
        prop_assert!(xtext::is_canonical(text.as_bytes()));
        prop_assert_eq!(xtext::decode(text.as_bytes()), Ok(raw));
    }

    #[test]
    fn xtext_canonical_text_is_a_fixed_point(text in "([!-*,-<>-~]|\\+[0-9A-F]{2}){0,20}") {
        let raw = xtext::decode(text.as_bytes()).unwrap();
        if xtext::is_canonical(text.as_bytes()) {
            prop_assert_eq!(xtext::encode(&raw), text);
        }
    }

    #[test]
    fn base64_round_trip(raw in prop::collection::vec(any::<u8>(), 0..64)) {
        let text = sasl_frame::encode_strict(&raw);
        prop_assert_eq!(sasl_frame::decode_strict(text.as_bytes()), Ok(raw.clone()));
        prop_assert_eq!(
            sasl_frame::decode_initial_response(sasl_frame::encode_initial_response(&raw).as_bytes()),
            Ok(raw)
        );
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        fuzz_oracles::command(&data);
        fuzz_oracles::reply(&data);
        fuzz_oracles::line_framer(&data);
        fuzz_oracles::xtext(&data);
        fuzz_oracles::sasl_base64(&data);
    }

    #[test]
    fn mutated_commands_never_panic(cmd in command(), at in any::<usize>(), byte in any::<u8>()) {
        let mut line = cmd.format();
        let i = at % line.len();
        line[i] = byte;
        fuzz_oracles::command(&line);
        line.truncate(i);
        fuzz_oracles::command(&line);
    }

    #[test]
    fn mutated_replies_never_panic(r in reply(), at in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = r.format();
        let i = at % bytes.len();
        bytes[i] = byte;
        fuzz_oracles::reply(&bytes);
    }

    #[test]
    fn line_reader_is_chunking_invariant(
        stream in prop::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(0u8), Just(0x80u8), Just(b'a'), any::<u8>()],
            0..400,
        ),
        chunks in prop::collection::vec(1usize..40, 1..10),
        limit in prop_oneof![Just(0usize), 1usize..20, Just(512usize)],
    ) {
        let whole = frame_all(&stream, &[stream.len().max(1)], limit);
        let chunked = frame_all(&stream, &chunks, limit);
        prop_assert_eq!(chunked, whole);
    }
}

/// The committed seed corpus of every codec fuzz target passes its entry point, so
/// the seeds stay valid as the code changes.
#[test]
fn fuzz_seed_corpus_passes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    type Target = fn(&[u8]);
    let targets: [(&str, Target); 5] = [
        ("command", fuzz_oracles::command),
        ("reply", fuzz_oracles::reply),
        ("line_framer", fuzz_oracles::line_framer),
        ("xtext", fuzz_oracles::xtext),
        ("sasl_base64", fuzz_oracles::sasl_base64),
    ];
    for (name, target) in targets {
        let dir = root.join(name);
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            let path = entry.unwrap().path();
            target(&std::fs::read(&path).unwrap());
            seen += 1;
        }
        assert!(seen > 0, "no seeds for {name}");
    }
}
