//! Loading scenario files: the bundled examples, and the errors a user sees.

use std::path::Path;

use authspec::scenario::{
    self, CapabilityCheck, Clause, CodeSpec, Level, LoadErrorKind, Role, Step, ValidationError,
};

fn scenarios_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

#[test]
fn loads_every_example_file_from_disk() {
    let all = scenario::load_dir(&scenarios_dir()).unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
    for id in [
        "rfc4954/seed-postfix-login-dialog",
        "rfc4954/auth-plain-initial-response",
        "rfc4954/auth-unknown-mechanism",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    // Sorted by path.
    let paths: Vec<&str> = all.iter().map(|s| s.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
}

#[test]
fn bundled_set_matches_the_directory() {
    let bundled = scenario::load_bundled().unwrap();
    let on_disk = scenario::load_dir(&scenarios_dir()).unwrap();
    assert_eq!(bundled.len(), on_disk.len());
    assert!(
        scenario::BUNDLED
            .iter()
            .all(|(p, _)| p.starts_with("scenarios/") && p.ends_with(".yaml"))
    );
    for (b, d) in bundled.iter().zip(&on_disk) {
        assert_eq!(b.id, d.id);
        assert_eq!(b.steps(), d.steps());
    }
}

#[test]
fn plain_initial_response_example() {
    let s = scenario::load_bundled()
        .unwrap()
        .into_iter()
        .find(|s| s.id == "rfc4954/auth-plain-initial-response")
        .unwrap();
    assert_eq!(s.role, Role::Client);
    assert_eq!(
        s.spec[0],
        Clause {
            rfc: "RFC4954".into(),
            section: "4".into(),
            level: Some(Level::Must)
        }
    );
    assert_eq!(s.profile["smtpd_sasl_auth_enable"], "yes");
    assert_eq!(s.profile["smtpd_tls_auth_only"], "no");
    assert_eq!(s.requires.mechanisms, ["PLAIN"]);
    let kinds: Vec<&str> = s.steps().iter().map(Step::kind).collect();
    assert_eq!(kinds, ["expect", "send", "expect", "auth", "quit"]);
    let Step::Expect(e) = &s.steps()[2] else {
        panic!()
    };
    assert_eq!(
        e.capability["AUTH"],
        CapabilityCheck::With(vec!["PLAIN".into()])
    );
    let Step::Auth(a) = &s.steps()[3] else {
        panic!()
    };
    assert_eq!(a.mechanism, "PLAIN");
    assert_eq!(a.expectation().code, Some(CodeSpec::Exact(235)));
    assert_eq!(a.expectation().enhanced.as_deref(), Some("2.7.0"));
}

#[test]
fn unknown_mechanism_example_has_a_non_strict_alternative() {
    let s = scenario::load_bundled()
        .unwrap()
        .into_iter()
        .find(|s| s.id == "rfc4954/auth-unknown-mechanism")
        .unwrap();
    let Step::Expect(e) = &s.steps()[4] else {
        panic!("{:?}", s.steps()[4])
    };
    assert_eq!(e.code, Some(CodeSpec::Exact(504)));
    assert_eq!(e.alternatives.len(), 1);
    assert_eq!(e.alternatives[0].code, Some(CodeSpec::Exact(535)));
    assert!(
        e.alternatives[0]
            .note
            .as_deref()
            .unwrap()
            .contains("Postfix")
    );
}

/// Loads `text` expecting an error; returns (line, column, message).
fn error_of(text: &str) -> (Option<usize>, Option<usize>, String, LoadErrorKind) {
    let e = scenario::load_str(text, "bad.yaml").unwrap_err();
    assert_eq!(e.path, "bad.yaml");
    let shown = e.to_string();
    assert!(shown.starts_with("bad.yaml"), "{shown}");
    (e.line, e.column, shown, e.kind)
}

const HEADER: &str = "id: t/x\ntitle: T\n";

#[test]
fn misspelt_key_is_located() {
    let text =
        format!("{HEADER}steps:\n  - send: EHLO x\n  - expect: {{ code: 250, txet: \"*\" }}\n");
    let (line, column, msg, _) = error_of(&text);
    assert_eq!(line, Some(5), "{msg}");
    assert!(column.is_some());
    assert!(msg.contains("unknown field `txet`"), "{msg}");
    assert!(msg.contains("expected one of"), "{msg}");
    assert!(msg.starts_with("bad.yaml:5:"), "{msg}");
}

#[test]
fn misspelt_top_level_key_is_located() {
    let text = format!("{HEADER}tittle: again\nsteps:\n  - send: x\n");
    let (line, _, msg, _) = error_of(&text);
    assert_eq!(line, Some(3), "{msg}");
    assert!(msg.contains("unknown field `tittle`"), "{msg}");
}

#[test]
fn wrong_type_is_located() {
    let text = format!("{HEADER}steps:\n  - expect: {{ lines: many }}\n");
    let (line, _, msg, _) = error_of(&text);
    assert_eq!(line, Some(4), "{msg}");
    assert!(msg.contains("invalid type"), "{msg}");
}

#[test]
fn missing_id() {
    let (line, _, msg, _) = error_of("title: T\nsteps:\n  - send: x\n");
    assert!(line.is_some(), "{msg}");
    assert!(msg.contains("missing field `id`"), "{msg}");
}

#[test]
fn both_steps_and_transcript() {
    let text = format!("{HEADER}steps:\n  - send: x\ntranscript: |\n  C: x\n");
    let (line, _, msg, kind) = error_of(&text);
    assert_eq!(line, Some(5), "{msg}");
    assert!(matches!(
        kind,
        LoadErrorKind::Invalid(ValidationError::BothStepsAndTranscript)
    ));
}

#[test]
fn neither_steps_nor_transcript() {
    let (_, _, _, kind) = error_of(HEADER);
    assert!(matches!(
        kind,
        LoadErrorKind::Invalid(ValidationError::NoSteps)
    ));
}

#[test]
fn unknown_step_kind_is_located() {
    let text = format!("{HEADER}steps:\n  - send: EHLO x\n  - sned: QUIT\n");
    let (line, _, msg, _) = error_of(&text);
    assert_eq!(line, Some(5), "{msg}");
    assert!(msg.contains("unknown variant `sned`"), "{msg}");
    assert!(msg.contains("`send`"), "{msg}");
}

#[test]
fn step_options_at_the_wrong_level() {
    let text = format!("{HEADER}steps:\n  - send: EHLO x\n    raw: true\n");
    let (_, _, msg, _) = error_of(&text);
    assert!(msg.contains("a step has exactly one key"), "{msg}");
}

#[test]
fn bad_clause_is_located() {
    for clause in [
        "RFC4954 MUST",
        "rfc4954 §4",
        "RFC4954 §4 MUSTN'T",
        "RFC §4",
        "RFC4954 §",
        "RFC4954 §4. MUST",
    ] {
        let text = format!(
            "id: t/x\ntitle: T\nspec: [\"RFC4954 §6\", \"{clause}\"]\nsteps:\n  - send: x\n"
        );
        let (line, _, msg, _) = error_of(&text);
        assert_eq!(line, Some(3), "{clause}: {msg}");
        assert!(msg.contains("bad spec clause"), "{msg}");
    }
}

#[test]
fn clauses_parse_every_level() {
    for (text, level) in [
        ("RFC4954 §4 MUST", Some(Level::Must)),
        ("RFC4954 §4 MUST NOT", Some(Level::MustNot)),
        ("RFC4954 §4.1 SHOULD", Some(Level::Should)),
        ("RFC4422 §3.1 SHOULD NOT", Some(Level::ShouldNot)),
        ("RFC4954 §5 MAY", Some(Level::May)),
        ("RFC4954 §6", None),
    ] {
        let c: Clause = text.parse().unwrap();
        assert_eq!(c.level, level);
        assert_eq!(c.to_string(), text);
    }
}

#[test]
fn wait_is_bounded() {
    let text = format!("{HEADER}steps:\n  - send: x\n  - wait: 61s\n");
    let (line, _, msg, _) = error_of(&text);
    assert_eq!(line, Some(5), "{msg}");
    assert!(msg.contains("60 s bound"), "{msg}");
    let ok = format!("{HEADER}steps:\n  - wait: 60s\n  - wait: 500ms\n  - wait: 1.5s\n");
    let s = scenario::load_str(&ok, "ok.yaml").unwrap();
    let waits: Vec<u128> = s
        .steps()
        .iter()
        .map(|st| match st {
            Step::Wait(w) => w.duration().as_millis(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(waits, [60_000, 500, 1_500]);
    let unitless = format!("{HEADER}steps:\n  - wait: 2\n");
    assert!(error_of(&unitless).2.contains("needs a unit"));
}

#[test]
fn server_steps_only_in_server_scenarios() {
    let text = format!("{HEADER}steps:\n  - send: x\n  - reply: 250 OK\n");
    let (line, _, msg, kind) = error_of(&text);
    assert_eq!(line, Some(5), "{msg}");
    assert!(matches!(
        kind,
        LoadErrorKind::Invalid(ValidationError::WrongRole {
            step: 2,
            kind: "reply",
            role: Role::Client
        })
    ));
    let text = format!("{HEADER}role: server\nsteps:\n  - expect: {{ code: 250 }}\n");
    let (_, _, _, kind) = error_of(&text);
    assert!(matches!(
        kind,
        LoadErrorKind::Invalid(ValidationError::WrongRole { kind: "expect", .. })
    ));
}

#[test]
fn expect_needs_a_condition() {
    for body in [
        "  - expect: {}\n",
        "  - auth: { mechanism: PLAIN, expect: {} }\n",
        "  - expect: { code: 504, alternatives: [ { note: only a note } ] }\n",
    ] {
        let text = format!("{HEADER}steps:\n{body}");
        let (line, _, msg, kind) = error_of(&text);
        assert_eq!(line, Some(4), "{msg}");
        assert!(
            matches!(
                kind,
                LoadErrorKind::Invalid(ValidationError::EmptyExpect { step: 1 })
            ),
            "{msg}"
        );
    }
}

#[test]
fn other_rules() {
    type Case = (&'static str, fn(&ValidationError) -> bool);
    let cases: &[Case] = &[
        ("  - sasl: {}\n", |v| {
            matches!(v, ValidationError::SaslForm { .. })
        }),
        ("  - sasl: { send: x, cancel: true }\n", |v| {
            matches!(v, ValidationError::SaslForm { .. })
        }),
        ("  - send: { line: 'a\\qb', raw: true }\n", |v| {
            matches!(v, ValidationError::BadBytes { .. })
        }),
        ("  - send: \"EHLO a\\r\\nQUIT\"\n", |v| {
            matches!(v, ValidationError::LineBreakInLine { .. })
        }),
        ("  - send_bytes: { hex: \"4g\" }\n", |v| {
            matches!(v, ValidationError::BadBytes { .. })
        }),
        ("  - send: \"AUTH PLAIN ${user|rot13}\"\n", |v| {
            matches!(v, ValidationError::BadVariable { .. })
        }),
        ("  - send: \"AUTH PLAIN ${user\"\n", |v| {
            matches!(v, ValidationError::BadVariable { .. })
        }),
        ("  - auth: { mechanism: \"PLAIN LOGIN\" }\n", |v| {
            matches!(v, ValidationError::BadMechanism { .. })
        }),
        ("  - pipeline: []\n", |v| {
            matches!(v, ValidationError::EmptyPipeline { .. })
        }),
        ("  - expect: { code: 250, note: orphan }\n", |v| {
            matches!(v, ValidationError::NoteOutsideAlternative { .. })
        }),
    ];
    for (body, check) in cases {
        let text = format!("{HEADER}steps:\n{body}");
        let e = scenario::load_str(&text, "bad.yaml").unwrap_err();
        let v = e.validation().unwrap_or_else(|| panic!("{body}: {e}"));
        assert!(check(v), "{body}: {e}");
    }
}

#[test]
fn bad_codes_are_rejected() {
    for code in ["700", "\"2x\"", "\"abc\"", "[]", "99"] {
        let text = format!("{HEADER}steps:\n  - expect: {{ code: {code} }}\n");
        let (line, _, msg, _) = error_of(&text);
        assert_eq!(line, Some(4), "{code}: {msg}");
    }
    let text = format!("{HEADER}steps:\n  - expect: {{ code: [235, \"5xx\"] }}\n");
    let s = scenario::load_str(&text, "ok.yaml").unwrap();
    let Step::Expect(e) = &s.steps()[0] else {
        panic!()
    };
    let code = e.code.as_ref().unwrap();
    assert!(code.matches(235) && code.matches(535) && !code.matches(250));
}

#[test]
fn duplicate_ids_across_a_set() {
    let a = "id: t/same\ntitle: A\nsteps:\n  - send: x\n";
    let b = "id: t/same\ntitle: B\nsteps:\n  - send: y\n";
    let errors = scenario::load_embedded(&[("b.yaml", b), ("a.yaml", a)]).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "b.yaml");
    assert!(matches!(
        errors[0].validation(),
        Some(ValidationError::DuplicateId { first, .. }) if first == "a.yaml"
    ));
}

#[test]
fn load_dir_reports_every_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(
        dir.path().join("ok.yaml"),
        "id: t/ok\ntitle: T\nsteps:\n  - send: x\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("sub/bad.yml"), "id: t/bad\ntitle: T\n").unwrap();
    std::fs::write(dir.path().join("sub/worse.yaml"), "id: [\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a scenario").unwrap();
    let errors = scenario::load_dir(dir.path()).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].path.ends_with("bad.yml"));
    assert!(errors[1].path.ends_with("worse.yaml"));
    assert!(errors[1].line.is_some());
}

#[test]
fn profile_values_may_be_unquoted_scalars() {
    let text = format!(
        "{HEADER}profile:\n  smtpd_hard_error_limit: 20\n  smtpd_sasl_auth_enable: yes\n  smtpd_tls_auth_only: false\nvars:\n  n: 3\nsteps:\n  - send: x\n"
    );
    let s = scenario::load_str(&text, "ok.yaml").unwrap();
    assert_eq!(s.profile["smtpd_hard_error_limit"], "20");
    assert_eq!(s.profile["smtpd_sasl_auth_enable"], "yes");
    assert_eq!(s.profile["smtpd_tls_auth_only"], "no");
    assert_eq!(s.vars["n"], "3");
}

#[test]
fn hostile_inputs_do_not_panic() {
    let inputs: Vec<String> = vec![
        String::new(),
        "\u{0}".into(),
        "[".repeat(10_000),
        "a: &a [*a]".into(),
        "- - - -".into(),
        "id: !send x\ntitle: y".into(),
        format!("{HEADER}steps:\n  - !send x\n"),
        format!("{HEADER}steps:\n  - expect: {{ alternatives: [{{ alternatives: [] }}] }}\n"),
        format!("{HEADER}transcript: \"\"\n"),
        format!("{HEADER}transcript: \"X: hello\"\n"),
        "x".repeat(scenario::MAX_FILE_SIZE + 1),
        "a: &a [1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d]".into(),
    ];
    for input in &inputs {
        authspec::fuzz_oracles::fuzz_load(input.as_bytes());
        assert!(scenario::load_str(input, "x.yaml").is_err());
    }
}

#[test]
fn schema_describes_the_format() {
    let schema = scenario::json_schema();
    let props = &schema["properties"];
    for key in [
        "id",
        "title",
        "spec",
        "tags",
        "requires",
        "profile",
        "role",
        "vars",
        "steps",
        "transcript",
    ] {
        assert!(props.get(key).is_some(), "schema lacks {key}");
    }
    assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    assert_eq!(schema["required"], serde_json::json!(["id", "title"]));
    let step = &schema["definitions"]["Step"]["oneOf"];
    let kinds: Vec<&str> = step
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["required"][0].as_str().unwrap())
        .collect();
    assert_eq!(kinds, scenario::STEP_KINDS);
    assert!(schema["definitions"]["Clause"]["pattern"].is_string());
}

/// Every complete scenario shown in `scenarios/README.md` loads (README examples are
/// tests, so the documentation cannot drift from the format).
#[test]
fn readme_examples_load() {
    let readme = std::fs::read_to_string(scenarios_dir().join("README.md")).unwrap();
    let mut loaded = 0;
    for block in readme.split("```yaml\n").skip(1) {
        let Some(end) = block.find("```") else {
            continue;
        };
        let yaml = &block[..end];
        if !yaml.lines().any(|l| l.starts_with("id: ")) {
            continue;
        }
        scenario::load_str(yaml, "README.md").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        loaded += 1;
    }
    assert!(loaded >= 4, "only {loaded} README examples found");
    // The expectations example parses too.
    let start = readme.find("# expectations/postfix-3.7.yaml").unwrap();
    let text = &readme[start..];
    let text = &text[..text.find("```").unwrap()];
    let e = authspec::report::Expectations::load_str(text).unwrap();
    assert_eq!(e.deviations.len(), 2);
    assert_eq!(e.skip.len(), 1);
}

#[test]
fn schema_accepts_both_forms_of_send() {
    let schema = scenario::json_schema();
    let send = &schema["definitions"]["Send"]["anyOf"];
    assert_eq!(send[0]["type"], "string");
    assert_eq!(send[1]["$ref"], "#/definitions/SendOptions");
    let options = &schema["definitions"]["SendOptions"];
    assert_eq!(options["additionalProperties"], serde_json::json!(false));
    assert_eq!(options["required"], serde_json::json!(["line"]));
}
