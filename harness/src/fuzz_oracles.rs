//! Entry points for the fuzz targets (one line each in `fuzz/fuzz_targets`). Hidden:
//! not part of the API.

use crate::scenario::{self, Vars};

/// The scenario loader on arbitrary bytes: it must return an error, never panic; a
/// scenario that loads must survive expansion, checking and a YAML round trip.
pub fn fuzz_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(s) = scenario::load_str(text, "fuzz.yaml") else {
        return;
    };
    let mut vars = Vars::new();
    vars.set("user", "alice");
    vars.set("password", "wonderland");
    for step in s.steps() {
        if let Ok(step) = step.expand(&vars) {
            match &step {
                scenario::Step::Expect(e) => {
                    let _ = e.evaluate(&["250-a".to_owned(), "250 AUTH PLAIN".to_owned()]);
                }
                scenario::Step::Send(s) => {
                    let _ = s.bytes();
                }
                scenario::Step::Sasl(s) => {
                    let _ = s.bytes();
                }
                _ => {}
            }
        }
    }
    if let Ok(yaml) = serde_yaml::to_string(&s.to_file()) {
        let again = scenario::load_str(&yaml, "fuzz.yaml");
        assert!(
            again.is_ok(),
            "a loaded scenario must load again after a round trip: {again:?}"
        );
    }
}

/// Glob matching on arbitrary (pattern, text): bounded time, no panic.
pub fn fuzz_glob(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (pattern, subject) = text.split_once('\n').unwrap_or((&text, ""));
    let _ = scenario::pattern::Glob::new(pattern).is_match(subject);
}
