//! Scenario variables: `${name}` and `${name|filter}`.
//!
//! Values come, from weakest to strongest, from the scenario's `vars:` defaults, the
//! runner's defaults (the embedded reference's `user=alice`, `password=wonderland`), the
//! environment (`AUTHSPEC_VAR_<NAME>`), `--var-file` and `--var`. The CLI layers them with
//! [`Vars::extend`]; this module only parses and expands.
//!
//! Syntax: `${name}`, `${name|f1|f2}` (filters applied left to right), `$$` for a literal
//! `$`. A `$` followed by anything else is literal, so reply text with dollars needs no
//! escaping. Filters: `base64` (RFC 4648 §4, with padding), `xtext` (RFC 3461 §4, as used
//! by `AUTH=` on MAIL FROM, RFC 4954 §5), `hex`.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;

/// The longest value or expansion result we accept; a bound, not a protocol limit.
const MAX_EXPANSION: usize = 64 * 1024;

/// A variable error; each names the variable or text at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarError {
    /// `${name}` with no value from any source.
    Unknown { name: String },
    /// `${name|filter}` with a filter we do not know.
    UnknownFilter { name: String, filter: String },
    /// `${` without the closing `}`.
    Unterminated { offset: usize },
    /// A name that is empty or has characters outside `[A-Za-z0-9_.-]`.
    InvalidName { name: String },
    /// A `--var` argument or var-file line that is not `name=value` or `name-env=VAR`.
    MalformedAssignment { text: String },
    /// `name-env=VAR` where the environment variable `VAR` is not set (or not UTF-8).
    EnvNotSet { name: String, env: String },
    /// An error on a line of a var file.
    InFile { line: usize, error: Box<VarError> },
    /// The expansion grew past the bound.
    TooLong,
}

impl fmt::Display for VarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarError::Unknown { name } => write!(
                f,
                "unknown variable `{name}` (set it with --var {name}=… or AUTHSPEC_VAR_{})",
                name.to_ascii_uppercase()
            ),
            VarError::UnknownFilter { name, filter } => write!(
                f,
                "unknown filter `{filter}` on variable `{name}` (known: base64, xtext, hex)"
            ),
            VarError::Unterminated { offset } => {
                write!(f, "`${{` at byte {offset} has no closing `}}`")
            }
            VarError::InvalidName { name } => write!(
                f,
                "invalid variable name {name:?} (letters, digits, `_`, `.`, `-`)"
            ),
            VarError::MalformedAssignment { text } => {
                write!(f, "expected `name=value` or `name-env=VAR`, found {text:?}")
            }
            VarError::EnvNotSet { name, env } => write!(
                f,
                "variable `{name}` should come from environment variable `{env}`, which is not set"
            ),
            VarError::InFile { line, error } => write!(f, "line {line}: {error}"),
            VarError::TooLong => write!(f, "expansion longer than {MAX_EXPANSION} bytes"),
        }
    }
}

impl std::error::Error for VarError {}

/// Whether a variable's value must never be shown: any name containing `password`,
/// `token` or `secret` (ASCII case-insensitive).
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["password", "token", "secret"]
        .iter()
        .any(|word| lower.contains(word))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A set of variable values. `Debug` hides secret values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Vars {
    values: BTreeMap<String, String>,
}

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.values {
            if is_secret_name(k) {
                map.entry(k, &"***");
            } else {
                map.entry(k, v);
            }
        }
        map.finish()
    }
}

/// How an expanded value is inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// As is.
    Plain,
    /// Glob-escaped, so `*` in a value is not a wildcard.
    Pattern,
    /// Backslash-escaped, so a `raw` string's escapes apply only to what the author wrote.
    Raw,
}

impl Vars {
    /// No variables.
    pub fn new() -> Vars {
        Vars::default()
    }

    /// Sets (or replaces) a value.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    /// The value of a variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether no variable is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Variable names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Overrides values in `self` with those of `stronger`.
    pub fn extend(&mut self, stronger: &Vars) {
        for (k, v) in &stronger.values {
            self.values.insert(k.clone(), v.clone());
        }
    }

    /// Fills in a scenario's `vars:` defaults where `self` has no value.
    pub fn with_defaults(&self, defaults: &BTreeMap<String, String>) -> Vars {
        let mut out = Vars {
            values: defaults.clone(),
        };
        out.extend(self);
        out
    }

    /// Parses one `--var` argument: `name=value`, or `name-env=VAR` to read the value of
    /// `name` from environment variable `VAR` (so secrets stay out of shell history).
    /// `env` looks environment variables up; pass `|k| std::env::var(k).ok()`.
    pub fn parse_assignment(
        &mut self,
        arg: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), VarError> {
        let Some((name, value)) = arg.split_once('=') else {
            return Err(VarError::MalformedAssignment {
                text: arg.to_owned(),
            });
        };
        let name = name.trim();
        if let Some(target) = name.strip_suffix("-env") {
            if !valid_name(target) {
                return Err(VarError::InvalidName {
                    name: target.to_owned(),
                });
            }
            let env_name = value.trim();
            let Some(v) = env(env_name) else {
                return Err(VarError::EnvNotSet {
                    name: target.to_owned(),
                    env: env_name.to_owned(),
                });
            };
            self.set(target, v);
            return Ok(());
        }
        if !valid_name(name) {
            return Err(VarError::InvalidName {
                name: name.to_owned(),
            });
        }
        self.set(name, value);
        Ok(())
    }

    /// Parses a var file: one `name=value` (or `name-env=VAR`) per line; blank lines and
    /// lines starting with `#` are ignored. The value is the rest of the line, untrimmed,
    /// because passwords may end in spaces.
    pub fn parse_file(
        &mut self,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), VarError> {
        for (i, line) in text.lines().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            self.parse_assignment(trimmed, env)
                .map_err(|e| VarError::InFile {
                    line: i + 1,
                    error: Box::new(e),
                })?;
        }
        Ok(())
    }

    /// Collects `AUTHSPEC_VAR_<NAME>=value` pairs; `<NAME>` is lower-cased, so
    /// `AUTHSPEC_VAR_PASSWORD` sets `password`. Pass `std::env::vars()`.
    pub fn from_env(pairs: impl IntoIterator<Item = (String, String)>) -> Vars {
        let mut vars = Vars::new();
        for (k, v) in pairs {
            if let Some(name) = k.strip_prefix("AUTHSPEC_VAR_") {
                let name = name.to_ascii_lowercase();
                if valid_name(&name) {
                    vars.set(name, v);
                }
            }
        }
        vars
    }

    /// The values that reports must mask: those of variables whose names say they are
    /// secret ([`is_secret_name`]). Empty values are left out (there is nothing to mask).
    pub fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .values
            .iter()
            .filter(|(k, v)| is_secret_name(k) && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Expands every `${…}` in `s`.
    pub fn expand(&self, s: &str) -> Result<String, VarError> {
        self.expand_in(s, Context::Plain)
    }

    /// Expands `s`, inserting values as `context` requires.
    pub fn expand_in(&self, s: &str, context: Context) -> Result<String, VarError> {
        expand_with(s, context, &mut |name| {
            self.get(name).map(str::to_owned).ok_or(VarError::Unknown {
                name: name.to_owned(),
            })
        })
    }
}

/// Checks the `${…}` syntax of `s` (names, filters, braces) without values; the loader
/// calls it so a typo is reported when the file is loaded, not halfway through a run.
pub fn check_syntax(s: &str) -> Result<(), VarError> {
    expand_with(s, Context::Plain, &mut |_| Ok(String::new())).map(|_| ())
}

/// The variable names `s` refers to.
pub fn referenced(s: &str) -> Vec<String> {
    let mut names = Vec::new();
    let _ = expand_with(s, Context::Plain, &mut |name| {
        names.push(name.to_owned());
        Ok(String::new())
    });
    names
}

fn expand_with(
    s: &str,
    context: Context,
    lookup: &mut dyn FnMut(&str) -> Result<String, VarError>,
) -> Result<String, VarError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut offset = 0;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            offset += pos + 2;
            rest = tail;
            continue;
        }
        let Some(body_start) = after.strip_prefix('{') else {
            out.push('$');
            offset += pos + 1;
            rest = after;
            continue;
        };
        let Some(end) = body_start.find('}') else {
            return Err(VarError::Unterminated {
                offset: offset + pos,
            });
        };
        let body = &body_start[..end];
        let mut parts = body.split('|');
        let name = parts.next().unwrap_or("").trim();
        if !valid_name(name) {
            return Err(VarError::InvalidName {
                name: name.to_owned(),
            });
        }
        let mut value = lookup(name)?;
        for filter in parts {
            value = apply_filter(name, filter.trim(), &value)?;
        }
        match context {
            Context::Plain => out.push_str(&value),
            Context::Pattern => out.push_str(&super::pattern::escape(&value)),
            Context::Raw => out.push_str(&super::bytes::escape_backslashes(&value)),
        }
        if out.len() > MAX_EXPANSION {
            return Err(VarError::TooLong);
        }
        let consumed = pos + 2 + end + 1;
        offset += consumed;
        rest = &rest[consumed..];
    }
    out.push_str(rest);
    if out.len() > MAX_EXPANSION {
        return Err(VarError::TooLong);
    }
    Ok(out)
}

fn apply_filter(name: &str, filter: &str, value: &str) -> Result<String, VarError> {
    match filter {
        "base64" => Ok(base64::engine::general_purpose::STANDARD.encode(value.as_bytes())),
        "xtext" => Ok(xtext(value.as_bytes())),
        "hex" => Ok(value.bytes().map(|b| format!("{b:02x}")).collect()),
        _ => Err(VarError::UnknownFilter {
            name: name.to_owned(),
            filter: filter.to_owned(),
        }),
    }
}

/// RFC 3461 §4: xchar is any printable ASCII except `+` and `=`; everything else is
/// `+` and two upper-case hex digits.
fn xtext(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_rfc3461() {
        assert_eq!(xtext(b"alice@example.com"), "alice@example.com");
        assert_eq!(xtext(b"a+b=c d"), "a+2Bb+3Dc+20d");
    }

    #[test]
    fn dollars_that_are_not_variables_stay() {
        let vars = Vars::new();
        assert_eq!(
            vars.expand("cost $5 and $$ and $").unwrap(),
            "cost $5 and $ and $"
        );
    }
}
