//! The per-target expectations file: known deviations and scenarios to skip.
//!
//! ```yaml
//! # expectations/postfix-3.7.yaml
//! deviations:
//!   rfc4954/auth-unknown-mechanism: "Postfix answers 535, not 504"
//!   "rfc4954/lowercase-*": "mechanism names are matched case-sensitively"
//! skip:
//!   rfc4954/auth-before-ehlo: "the target requires EHLO, tested elsewhere"
//! ```
//!
//! Keys are scenario ids or globs over ids (`*`, `?`); an exact id wins over a glob, and
//! among globs the first in sorted order wins.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::scenario::pattern::Glob;

/// Known deviations and skips for one target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// Scenario id or glob → why the target is known to fail it.
    #[serde(default)]
    pub deviations: BTreeMap<String, String>,
    /// Scenario id or glob → why it is not run against the target.
    #[serde(default)]
    pub skip: BTreeMap<String, String>,
}

/// An expectations file that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectationsError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ExpectationsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, "{l}:{c}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExpectationsError {}

fn lookup<'a>(map: &'a BTreeMap<String, String>, id: &str) -> Option<(&'a str, &'a str)> {
    if let Some((k, v)) = map.get_key_value(id) {
        return Some((k, v));
    }
    map.iter()
        .find(|(k, _)| Glob::new(k).is_match(id))
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

impl Expectations {
    /// Parses the YAML text of an expectations file.
    pub fn load_str(text: &str) -> Result<Expectations, ExpectationsError> {
        if text.trim().is_empty() {
            return Ok(Expectations::default());
        }
        crate::input::check_yaml(text).map_err(|e| ExpectationsError {
            line: e.location().map(|(l, _)| l),
            column: e.location().map(|(_, c)| c),
            message: e.to_string(),
        })?;
        serde_yaml::from_str(text).map_err(|e| {
            let loc = e.location();
            ExpectationsError {
                line: loc.as_ref().map(serde_yaml::Location::line),
                column: loc.as_ref().map(serde_yaml::Location::column),
                message: e.to_string(),
            }
        })
    }

    /// The reason a scenario is a known deviation, if it is listed.
    pub fn deviation(&self, id: &str) -> Option<&str> {
        lookup(&self.deviations, id).map(|(_, v)| v)
    }

    /// The reason a scenario is to be skipped, if it is listed. The runner asks before
    /// running a scenario.
    pub fn skip_reason(&self, id: &str) -> Option<&str> {
        lookup(&self.skip, id).map(|(_, v)| v)
    }

    pub(crate) fn deviation_key(&self, id: &str) -> Option<(&str, &str)> {
        lookup(&self.deviations, id)
    }

    pub(crate) fn skip_key(&self, id: &str) -> Option<(&str, &str)> {
        lookup(&self.skip, id)
    }
}
