//! The typed scenario: what a YAML file says, after parsing.
//!
//! Every struct denies unknown fields, so a misspelt key is an error with a line number
//! rather than a silently ignored check. Strings may contain `${var}` references; they are
//! kept as written here and expanded by [`Step::expand`] when the runner has the values.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::JsonSchema;
use schemars::r#gen::SchemaGenerator;
use schemars::schema::{InstanceType, Schema};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::schema_util::{
    any_of, array_of, described, instance, single_key, string_enum, string_with_pattern, subschema,
};

// ---------------------------------------------------------------------------------------
// Spec clauses

/// A requirement level keyword (RFC 2119 §1–§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Must,
    MustNot,
    Should,
    ShouldNot,
    May,
}

impl Level {
    /// The keyword as the RFCs write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::MustNot => "MUST NOT",
            Level::Should => "SHOULD",
            Level::ShouldNot => "SHOULD NOT",
            Level::May => "MAY",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "MUST" => Level::Must,
            "MUST NOT" => Level::MustNot,
            "SHOULD" => Level::Should,
            "SHOULD NOT" => Level::ShouldNot,
            "MAY" => Level::May,
            _ => return None,
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How strongly a check binds the peer, and so what a mismatch yields. Only an absolute
/// requirement of an RFC (or its grammar) fails a peer; a broken recommendation is
/// non-strict, and a behaviour that merely differs from Postfix or the reference is
/// informational (DESIGN.md, "Verdicts people can trust"; h2spec and the rustls BoGo
/// runner judge the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Requirement {
    /// An RFC 2119 keyword: `MUST`, `MUST NOT`, `SHOULD`, `SHOULD NOT`, `MAY`.
    Rfc(Level),
    /// authspec breaks the grammar on purpose and watches the peer cope; no RFC
    /// sentence says how it must.
    Robustness,
    /// What Postfix or the reference does, where the RFCs leave the choice open.
    Reference,
}

/// What a check that does not hold turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consequence {
    Fail,
    NonStrict,
    Info,
}

impl Requirement {
    pub const MUST: Requirement = Requirement::Rfc(Level::Must);

    /// The level as scenarios and reports write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Requirement::Rfc(l) => l.as_str(),
            Requirement::Robustness => "robustness",
            Requirement::Reference => "reference",
        }
    }

    fn parse(s: &str) -> Option<Requirement> {
        match s {
            "robustness" => Some(Requirement::Robustness),
            "reference" => Some(Requirement::Reference),
            other => Level::parse(other).map(Requirement::Rfc),
        }
    }

    /// Whether a broken check at this level fails the peer without `--strict`.
    pub const fn is_absolute(self) -> bool {
        matches!(self, Requirement::Rfc(Level::Must | Level::MustNot))
    }

    /// What a check at this level that does not hold yields. `--strict` turns a broken
    /// SHOULD into a fail, as h2spec's strict mode does; robustness and reference
    /// checks never fail a peer.
    pub const fn consequence(self, strict: bool) -> Consequence {
        match self {
            Requirement::Rfc(Level::Must | Level::MustNot) => Consequence::Fail,
            Requirement::Rfc(Level::Should | Level::ShouldNot) if strict => Consequence::Fail,
            Requirement::Rfc(Level::Should | Level::ShouldNot) | Requirement::Robustness => {
                Consequence::NonStrict
            }
            Requirement::Rfc(Level::May) | Requirement::Reference => Consequence::Info,
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Requirement {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Requirement {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Requirement, D::Error> {
        let s = String::deserialize(d)?;
        Requirement::parse(&s).ok_or_else(|| {
            de::Error::custom(format!(
                "bad level {s:?}: expected MUST, MUST NOT, SHOULD, SHOULD NOT, MAY, \
                 robustness or reference"
            ))
        })
    }
}

impl JsonSchema for Requirement {
    fn schema_name() -> String {
        "Requirement".to_owned()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        described(
            string_enum(&[
                "MUST",
                "MUST NOT",
                "SHOULD",
                "SHOULD NOT",
                "MAY",
                "robustness",
                "reference",
            ]),
            "How strongly the check binds the peer: a broken MUST fails, a broken SHOULD \
             is non-strict (a fail under --strict), robustness is non-strict, MAY and \
             reference are informational.",
        )
    }
}

/// One spec clause a scenario checks, written `RFC4954 §4 MUST` (the level is optional).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Clause {
    /// `RFC4954`.
    pub rfc: String,
    /// `4`, `4.1`, `A.2`.
    pub section: String,
    pub level: Option<Level>,
}

/// Why a clause string does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClauseError {
    pub text: String,
}

impl fmt::Display for ClauseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad spec clause {:?}: expected `RFC<number> §<section>` and optionally one of \
             MUST, MUST NOT, SHOULD, SHOULD NOT, MAY (e.g. \"RFC4954 §4 MUST\")",
            self.text
        )
    }
}

impl std::error::Error for ClauseError {}

impl FromStr for Clause {
    type Err = ClauseError;

    fn from_str(s: &str) -> Result<Clause, ClauseError> {
        let err = || ClauseError { text: s.to_owned() };
        let mut words = s.split_whitespace();
        let rfc = words.next().ok_or_else(err)?;
        let number = rfc.strip_prefix("RFC").ok_or_else(err)?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let section = words
            .next()
            .and_then(|w| w.strip_prefix('§'))
            .ok_or_else(err)?;
        let section_ok = !section.is_empty()
            && !section.starts_with('.')
            && !section.ends_with('.')
            && section
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.');
        if !section_ok {
            return Err(err());
        }
        let rest: Vec<&str> = words.collect();
        let level = if rest.is_empty() {
            None
        } else {
            Some(Level::parse(&rest.join(" ")).ok_or_else(err)?)
        };
        Ok(Clause {
            rfc: rfc.to_owned(),
            section: section.to_owned(),
            level,
        })
    }
}

impl fmt::Display for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} §{}", self.rfc, self.section)?;
        if let Some(level) = self.level {
            write!(f, " {level}")?;
        }
        Ok(())
    }
}

impl Serialize for Clause {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Clause {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Clause, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for Clause {
    fn schema_name() -> String {
        "Clause".to_owned()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_with_pattern(
            r"^RFC[0-9]+ §[0-9A-Za-z]+(\.[0-9A-Za-z]+)*( (MUST|MUST NOT|SHOULD|SHOULD NOT|MAY))?$",
            "A spec clause: `RFC4954 §4 MUST`. The requirement level is optional.",
        )
    }
}

// ---------------------------------------------------------------------------------------
// Scenario header

/// Which side the harness plays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The harness is the client and judges a server (the default).
    #[default]
    Client,
    /// The harness is the server and judges a client.
    Server,
}

impl Role {
    fn is_client(&self) -> bool {
        *self == Role::Client
    }
}

/// What a target must offer for the scenario to be meaningful; when it does not, the
/// scenario is skipped with the reason, not failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    /// EHLO keywords the target must advertise (`STARTTLS`, `PIPELINING`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
    /// SASL mechanisms the target must offer in its AUTH capability.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mechanisms: Vec<String>,
    /// The target must support TLS (STARTTLS or implicit).
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls: bool,
    /// The scenario needs working credentials (`user`/`password` variables).
    #[serde(default, skip_serializing_if = "is_false")]
    pub auth: bool,
}

impl Requires {
    /// Whether nothing is required.
    pub fn is_empty(&self) -> bool {
        *self == Requires::default()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_true(b: &bool) -> bool {
    *b
}

fn default_true() -> bool {
    true
}

/// A YAML scalar read as text: Postfix parameters are text (`yes`, `20`, `10240000`), and
/// YAML would otherwise reject an unquoted number where a string is expected.
struct ScalarText {
    text: String,
}

struct ScalarVisitor {
    yes_no: bool,
}

impl Visitor<'_> for ScalarVisitor {
    type Value = ScalarText;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
        Ok(ScalarText { text: v.to_owned() })
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarText, E> {
        let text = match (self.yes_no, v) {
            (true, true) => "yes",
            (true, false) => "no",
            (false, true) => "true",
            (false, false) => "false",
        };
        Ok(ScalarText {
            text: text.to_owned(),
        })
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
        Ok(ScalarText {
            text: v.to_string(),
        })
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
        Ok(ScalarText {
            text: v.to_string(),
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarText, E> {
        Ok(ScalarText {
            text: v.to_string(),
        })
    }
}

struct ScalarMapVisitor {
    yes_no: bool,
}

struct ScalarSeed {
    yes_no: bool,
}

impl<'de> de::DeserializeSeed<'de> for ScalarSeed {
    type Value = ScalarText;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ScalarText, D::Error> {
        d.deserialize_any(ScalarVisitor {
            yes_no: self.yes_no,
        })
    }
}

impl<'de> Visitor<'de> for ScalarMapVisitor {
    type Value = BTreeMap<String, String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of names to values")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(ScalarSeed {
                yes_no: self.yes_no,
            })?;
            if out.insert(key.clone(), value.text).is_some() {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
        }
        Ok(out)
    }
}

fn profile_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    d.deserialize_map(ScalarMapVisitor { yes_no: true })
}

fn vars_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    d.deserialize_map(ScalarMapVisitor { yes_no: false })
}

/// Schema stand-in for a scalar value (string, number or boolean).
struct ScalarSchema;

impl JsonSchema for ScalarSchema {
    fn schema_name() -> String {
        "Scalar".to_owned()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        any_of(
            vec![
                instance(InstanceType::String),
                instance(InstanceType::Number),
                instance(InstanceType::Boolean),
            ],
            "A value; numbers and booleans are read as text (booleans as yes/no in profile).",
        )
    }
}

/// A scenario file as written. [`super::load_str`] turns it into a [`Scenario`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Unique id, by convention `<group>/<name>`: `rfc4954/auth-plain-initial-response`.
    pub id: String,
    /// One line saying what is checked.
    pub title: String,
    /// The spec clauses checked: `["RFC4954 §4 MUST", "RFC4954 §6"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spec: Vec<Clause>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Requires::is_empty")]
    pub requires: Requires,
    /// How strongly the scenario's checks bind the peer, unless a step says otherwise.
    /// Defaults to the strongest level among the `spec` clauses, or `reference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Requirement>,
    /// The RFC sentence a MUST-level check enforces, quoted; reports show it with the
    /// failure. Required when the scenario's level (or a step's) is MUST or MUST NOT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    /// main.cf parameters for the embedded reference server (`name: value`).
    #[serde(
        default,
        deserialize_with = "profile_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(with = "BTreeMap<String, ScalarSchema>")]
    pub profile: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Role::is_client")]
    pub role: Role,
    /// Default values for `${name}` variables.
    #[serde(
        default,
        deserialize_with = "vars_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(with = "BTreeMap<String, ScalarSchema>")]
    pub vars: BTreeMap<String, String>,
    /// Server role: play the scenario once per SASL mechanism listed here that the
    /// client implements, with `${mechanism}` set (ids get `/<mechanism>` appended).
    /// Generic behaviours (stop on 535, cancel a bad challenge) are written once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub for_each_mechanism: Vec<String>,
    /// The steps. Exactly one of `steps` and `transcript` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
    /// An RFC-style `S:`/`C:` dialog, compiled into steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
}

/// A loaded, validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Where it came from (a file path or a bundled name).
    pub path: String,
    pub id: String,
    pub title: String,
    pub spec: Vec<Clause>,
    pub tags: Vec<String>,
    pub requires: Requires,
    /// As written; [`Scenario::level`] gives the effective level.
    pub level: Option<Requirement>,
    pub quote: Option<String>,
    pub profile: BTreeMap<String, String>,
    pub role: Role,
    /// Default variable values from the file.
    pub vars: BTreeMap<String, String>,
    /// The transcript, when the file used the shorthand.
    pub transcript: Option<String>,
    /// See [`ScenarioFile::for_each_mechanism`]; empty once expanded
    /// ([`super::expand_mechanisms`]).
    pub for_each_mechanism: Vec<String>,
    pub(crate) steps: Vec<Step>,
}

impl Scenario {
    /// The steps to run: the file's `steps`, or its transcript compiled into steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The scenario as a file again (with steps, or with its original transcript).
    pub fn to_file(&self) -> ScenarioFile {
        ScenarioFile {
            id: self.id.clone(),
            title: self.title.clone(),
            spec: self.spec.clone(),
            tags: self.tags.clone(),
            requires: self.requires.clone(),
            level: self.level,
            quote: self.quote.clone(),
            profile: self.profile.clone(),
            role: self.role,
            vars: self.vars.clone(),
            for_each_mechanism: self.for_each_mechanism.clone(),
            steps: if self.transcript.is_some() {
                None
            } else {
                Some(self.steps.clone())
            },
            transcript: self.transcript.clone(),
        }
    }

    /// The level of every check that does not name its own: the file's `level`, else
    /// the strongest RFC 2119 keyword among the `spec` clauses, else `reference`.
    pub fn level(&self) -> Requirement {
        self.level.unwrap_or_else(|| {
            self.spec
                .iter()
                .filter_map(|c| c.level)
                .map(|l| match l {
                    Level::Must | Level::MustNot => (0, Level::Must),
                    Level::Should | Level::ShouldNot => (1, Level::Should),
                    Level::May => (2, Level::May),
                })
                .min()
                .map_or(Requirement::Reference, |(_, l)| Requirement::Rfc(l))
        })
    }

    /// The first spec clause, which reports group by.
    pub fn primary_clause(&self) -> Option<&Clause> {
        self.spec.first()
    }
}

// ---------------------------------------------------------------------------------------
// "A string or a map" types

macro_rules! short_or_long {
    ($ty:ident, $short:ident, $long:ident, $opts:ty, $expecting:literal, $short_doc:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        Ok($ty::$short(v.to_owned()))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$ty, A::Error> {
                        <$opts>::deserialize(de::value::MapAccessDeserializer::new(map))
                            .map($ty::$long)
                    }
                }
                d.deserialize_any(V)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $ty::$short(v) => v.serialize(s),
                    $ty::$long(v) => v.serialize(s),
                }
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> String {
                stringify!($ty).to_owned()
            }
            fn json_schema(g: &mut SchemaGenerator) -> Schema {
                any_of(
                    vec![
                        described(instance(InstanceType::String), $short_doc),
                        subschema::<$opts>(g),
                    ],
                    $expecting,
                )
            }
        }
    };
}

mod client_steps;
mod expect;
mod server_steps;
mod step;

pub use client_steps::*;
pub use expect::*;
pub use server_steps::*;
pub use step::*;
