//! The verdict model: levels decide what a check that does not hold yields, MUST-level
//! checks need a quote, and conditions depend on what the peer advertised.

use authspec::scenario::{Advertised, Consequence, Expect, Level, Outcome, Requirement, load_str};

#[test]
fn only_an_absolute_requirement_fails() {
    let cases = [
        (Requirement::Rfc(Level::Must), false, Consequence::Fail),
        (Requirement::Rfc(Level::MustNot), false, Consequence::Fail),
        (
            Requirement::Rfc(Level::Should),
            false,
            Consequence::NonStrict,
        ),
        (Requirement::Rfc(Level::Should), true, Consequence::Fail),
        (Requirement::Rfc(Level::ShouldNot), true, Consequence::Fail),
        (Requirement::Robustness, false, Consequence::NonStrict),
        (Requirement::Robustness, true, Consequence::NonStrict),
        (Requirement::Rfc(Level::May), true, Consequence::Info),
        (Requirement::Reference, true, Consequence::Info),
    ];
    for (level, strict, want) in cases {
        assert_eq!(level.consequence(strict), want, "{level} strict={strict}");
    }
}

const BODY: &str = "steps:\n  - expect: { code: 220 }\n";

#[test]
fn a_must_without_a_quote_does_not_load() {
    let text = format!("id: t/x\ntitle: t\nspec: [\"RFC4954 §4 MUST\"]\n{BODY}");
    let err = load_str(&text, "x.yaml").unwrap_err().to_string();
    assert!(err.contains("MUST level") && err.contains("quote"), "{err}");
    let quoted = format!("id: t/x\ntitle: t\nspec: [\"RFC4954 §4 MUST\"]\nquote: s\n{BODY}");
    assert!(load_str(&quoted, "x.yaml").is_ok());
    // A step that lowers its own level needs no quote for itself.
    let lowered = "id: t/x\ntitle: t\nspec: [\"RFC4954 §4\"]\nsteps:\n  - expect: { code: 220, level: SHOULD }\n";
    assert!(load_str(lowered, "x.yaml").is_ok());
    let raised = "id: t/x\ntitle: t\nsteps:\n  - expect: { code: 220, level: MUST }\n";
    assert!(load_str(raised, "x.yaml").is_err());
}

#[test]
fn the_level_defaults_to_the_strongest_clause_then_reference() {
    let sc = |spec: &str| {
        load_str(
            &format!("id: t/x\ntitle: t\nspec: {spec}\nquote: q\n{BODY}"),
            "x.yaml",
        )
        .unwrap()
        .level()
    };
    assert_eq!(
        sc("[\"RFC4954 §6\", \"RFC4954 §4 MUST\"]"),
        Requirement::MUST
    );
    assert_eq!(
        sc("[\"RFC4954 §4 SHOULD NOT\"]"),
        Requirement::Rfc(Level::Should)
    );
    assert_eq!(sc("[\"RFC4954 §6\"]"), Requirement::Reference);
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn enhanced_codes_are_owed_only_after_enhancedstatuscodes() {
    let e = Expect {
        code: Some(authspec::scenario::CodeSpec::Exact(235)),
        enhanced: Some("2.7.0".into()),
        ..Expect::default()
    };
    let bare = lines(&["235 Authentication successful"]);
    let none = Advertised {
        enhanced_status_codes: false,
    };
    assert_eq!(e.evaluate_in(&bare, none), Outcome::Pass);
    assert!(matches!(
        e.evaluate_in(&bare, Advertised::ALL),
        Outcome::Fail { .. }
    ));
    // Advertised: a wrong class is still judged.
    let wrong = lines(&["235 5.7.8 odd"]);
    assert!(matches!(
        e.evaluate_in(&wrong, Advertised::ALL),
        Outcome::Fail { .. }
    ));
    // Transcript patterns with an enhanced code match a reply without one.
    let t = Expect {
        reply_lines: vec!["235 2.7.0 *".into()],
        ..Expect::default()
    };
    assert_eq!(t.evaluate_in(&bare, none), Outcome::Pass);
}

#[test]
fn ehlo_keyword_order_and_continuation_marks_are_not_pinned() {
    let e = Expect {
        reply_lines: vec!["250-*".into(), "250-AUTH *PLAIN*".into(), "250 *".into()],
        ..Expect::default()
    };
    let auth_last = lines(&["250-mx.example", "250-SIZE 1000", "250 AUTH LOGIN PLAIN"]);
    assert_eq!(e.evaluate(&auth_last), Outcome::Pass);
    let no_auth = lines(&["250-mx.example", "250-SIZE 1000", "250 HELP"]);
    assert!(matches!(e.evaluate(&no_auth), Outcome::Fail { .. }));
}

#[test]
fn a_reference_level_alternative_is_info() {
    let text = "id: t/x\ntitle: t\nsteps:\n  - expect:\n      code: 250\n      alternatives:\n        - code: 530\n          level: reference\n          note: policy\n";
    let sc = load_str(text, "x.yaml").unwrap();
    let authspec::scenario::Step::Expect(e) = &sc.steps()[0] else {
        panic!("an expect step")
    };
    assert_eq!(
        e.evaluate(&lines(&["530 5.7.0 Authentication required"])),
        Outcome::Info {
            note: "policy".into()
        }
    );
}

#[test]
fn decoded_challenges_are_matched_on_their_text() {
    let e = Expect {
        decoded: Some("<*@*>".into()),
        ..Expect::default()
    };
    // "<a3f9@mx>" in base64: random hex is as good a msg-id as digits.
    assert_eq!(e.evaluate(&lines(&["334 PGEzZjlAbXg+"])), Outcome::Pass);
    // "hello"
    assert!(matches!(
        e.evaluate(&lines(&["334 aGVsbG8="])),
        Outcome::Fail { .. }
    ));
}

#[test]
fn end_belongs_to_alternatives_only() {
    let primary = "id: t/x\ntitle: t\nsteps:\n  - expect: { code: 250, end: true }\n";
    let err = load_str(primary, "x.yaml").unwrap_err().to_string();
    assert!(err.contains("`end`"), "{err}");
    let alt = "id: t/x\ntitle: t\nsteps:\n  - expect:\n      code: 250\n      alternatives:\n        - { code: 421, end: true }\n  - send: NOOP\n";
    assert!(load_str(alt, "x.yaml").is_ok());
}

#[test]
fn another_enhanced_detail_of_the_right_class_is_non_strict() {
    let e = Expect {
        code: Some(authspec::scenario::CodeSpec::Exact(235)),
        enhanced: Some("2.7.0".into()),
        ..Expect::default()
    };
    assert!(matches!(
        e.evaluate(&lines(&["235 2.0.0 Authentication succeeded"])),
        Outcome::NonStrict { .. }
    ));
    assert!(matches!(
        e.evaluate(&lines(&["235 5.7.0 odd"])),
        Outcome::Fail { .. }
    ));
}

#[test]
fn a_missing_enhanced_code_breaks_rfc_2034_once_advertised() {
    let e = Expect {
        code: Some(authspec::scenario::CodeSpec::Exact(535)),
        enhanced: Some("5.7.8".into()),
        ..Expect::default()
    };
    let bare = lines(&["535 Authentication failed"]);
    assert!(e.enhanced_rule_broken(&bare, Advertised::ALL).is_some());
    let none = Advertised {
        enhanced_status_codes: false,
    };
    assert!(e.enhanced_rule_broken(&bare, none).is_none());
    // Another detail of the right class is not this rule's business.
    assert!(
        e.enhanced_rule_broken(&lines(&["535 5.7.0 no"]), Advertised::ALL)
            .is_none()
    );
    assert!(
        e.enhanced_rule_broken(&lines(&["535 2.7.0 no"]), Advertised::ALL)
            .is_some()
    );
    // A different reply code is judged by the step, not by this rule.
    assert!(
        e.enhanced_rule_broken(&lines(&["250 ok"]), Advertised::ALL)
            .is_none()
    );
}
