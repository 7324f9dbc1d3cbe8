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

/// `send:` — a line to send. The short form `send: "EHLO x"` sends the line and CRLF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Send {
    Line(String),
    Options(SendOptions),
}

/// `send: { line, raw, crlf }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendOptions {
    /// The text to send.
    pub line: String,
    /// Resolve `\r \n \t \0 \\ \xHH` escapes, and append no CRLF unless `crlf: true`, so
    /// bare LF, bare CR, NUL and 8-bit bytes can be sent.
    #[serde(default, skip_serializing_if = "is_false")]
    pub raw: bool,
    /// Append CRLF. Defaults to `true`, or `false` when `raw` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crlf: Option<bool>,
}

short_or_long!(
    Send,
    Line,
    Options,
    SendOptions,
    "a line (CRLF is appended) or { line, raw, crlf }",
    "A line; CRLF is appended."
);

impl Send {
    /// The text as written.
    pub fn line(&self) -> &str {
        match self {
            Send::Line(l) => l,
            Send::Options(o) => &o.line,
        }
    }

    /// Whether escapes apply.
    pub fn raw(&self) -> bool {
        matches!(self, Send::Options(o) if o.raw)
    }

    /// Whether CRLF is appended.
    pub fn crlf(&self) -> bool {
        match self {
            Send::Line(_) => true,
            Send::Options(o) => o.crlf.unwrap_or(!o.raw),
        }
    }

    /// The bytes to write (after [`Step::expand`]).
    pub fn bytes(&self) -> Result<Vec<u8>, super::bytes::EscapeError> {
        let mut out = if self.raw() {
            super::bytes::unescape(self.line())?
        } else {
            self.line().as_bytes().to_vec()
        };
        if self.crlf() {
            out.extend_from_slice(b"\r\n");
        }
        Ok(out)
    }

    fn line_mut(&mut self) -> &mut String {
        match self {
            Send::Line(l) => l,
            Send::Options(o) => &mut o.line,
        }
    }
}

/// `send_bytes: { hex: "45484c4f0d0a" }` — exact bytes, written as hex (spaces allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBytes {
    pub hex: String,
}

impl SendBytes {
    /// The bytes to write.
    pub fn bytes(&self) -> Result<Vec<u8>, super::bytes::EscapeError> {
        super::bytes::decode_hex(&self.hex)
    }
}

// ---------------------------------------------------------------------------------------
// Expectations on replies

/// A reply code condition: `250`, `"2xx"` / `"25x"`, or a list of those.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeSpec {
    Exact(u16),
    /// Three characters, each a digit or `x`: `2xx`, `53x`.
    Pattern(String),
    AnyOf(Vec<CodeSpec>),
}

/// Why a scenario's `code` is not a reply code (RFC 5321 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeSpecError {
    /// Not three characters, each a digit or `x`, starting with 1-5.
    Shape {
        text: String,
    },
    OutOfRange {
        code: u64,
    },
}

impl fmt::Display for CodeSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeSpecError::Shape { text } => write!(
                f,
                "bad reply code {text:?}: expected three characters, each a digit or `x`, \
                 starting with 1-5 (e.g. 250, \"2xx\", \"53x\")"
            ),
            CodeSpecError::OutOfRange { code } => {
                write!(f, "reply code {code} is not between 100 and 599")
            }
        }
    }
}

impl std::error::Error for CodeSpecError {}

impl CodeSpec {
    fn parse_str(s: &str) -> Result<CodeSpec, CodeSpecError> {
        let b = s.as_bytes();
        let ok = b.len() == 3
            && matches!(b[0], b'1'..=b'5' | b'x' | b'X')
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_digit() || matches!(c, b'x' | b'X'));
        if !ok {
            return Err(CodeSpecError::Shape { text: s.to_owned() });
        }
        if b.iter().all(u8::is_ascii_digit) {
            return CodeSpec::exact(u64::from(s.parse::<u16>().unwrap_or(0)));
        }
        Ok(CodeSpec::Pattern(s.to_ascii_lowercase()))
    }

    fn exact(v: u64) -> Result<CodeSpec, CodeSpecError> {
        // RFC 5321 §4.2: a reply code is three digits, the first 1 to 5.
        match u16::try_from(v) {
            Ok(code @ 100..=599) => Ok(CodeSpec::Exact(code)),
            _ => Err(CodeSpecError::OutOfRange { code: v }),
        }
    }

    /// Whether `code` (three ASCII digits) satisfies the condition.
    pub fn matches(&self, code: u16) -> bool {
        match self {
            CodeSpec::Exact(c) => *c == code,
            CodeSpec::Pattern(p) => {
                let digits = format!("{code:03}");
                p.bytes()
                    .zip(digits.bytes())
                    .all(|(p, d)| p == b'x' || p == d)
            }
            CodeSpec::AnyOf(list) => list.iter().any(|c| c.matches(code)),
        }
    }
}

impl fmt::Display for CodeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeSpec::Exact(c) => write!(f, "{c}"),
            CodeSpec::Pattern(p) => f.write_str(p),
            CodeSpec::AnyOf(list) => {
                let parts: Vec<String> = list.iter().map(ToString::to_string).collect();
                write!(f, "one of {}", parts.join(", "))
            }
        }
    }
}

impl Serialize for CodeSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CodeSpec::Exact(c) => s.serialize_u16(*c),
            CodeSpec::Pattern(p) => s.serialize_str(p),
            CodeSpec::AnyOf(list) => list.serialize(s),
        }
    }
}

struct CodeVisitor {
    allow_list: bool,
}

impl<'de> Visitor<'de> for CodeVisitor {
    type Value = CodeSpec;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.allow_list {
            f.write_str("a reply code (250), a pattern (\"2xx\") or a list of them")
        } else {
            f.write_str("a reply code (250) or a pattern (\"2xx\")")
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<CodeSpec, E> {
        CodeSpec::exact(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<CodeSpec, E> {
        CodeSpec::exact(u64::try_from(v).unwrap_or(0)).map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<CodeSpec, E> {
        CodeSpec::parse_str(v).map_err(E::custom)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CodeSpec, A::Error> {
        if !self.allow_list {
            return Err(de::Error::custom("a code list cannot contain a list"));
        }
        let mut list = Vec::new();
        while let Some(c) = seq.next_element_seed(CodeSeed)? {
            list.push(c);
        }
        if list.is_empty() {
            return Err(de::Error::custom(
                "an empty list of reply codes matches nothing",
            ));
        }
        Ok(CodeSpec::AnyOf(list))
    }
}

struct CodeSeed;

impl<'de> de::DeserializeSeed<'de> for CodeSeed {
    type Value = CodeSpec;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<CodeSpec, D::Error> {
        d.deserialize_any(CodeVisitor { allow_list: false })
    }
}

impl<'de> Deserialize<'de> for CodeSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CodeSpec, D::Error> {
        d.deserialize_any(CodeVisitor { allow_list: true })
    }
}

impl JsonSchema for CodeSpec {
    fn schema_name() -> String {
        "CodeSpec".to_owned()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let single = || {
            any_of(
                vec![
                    instance(InstanceType::Integer),
                    string_with_pattern("^[1-5xX][0-9xX]{2}$", "A code pattern: 2xx, 53x."),
                ],
                "A reply code or a code pattern.",
            )
        };
        any_of(
            vec![single(), array_of(single())],
            "A reply code (250), a pattern (\"2xx\"), or a list of them (any may match).",
        )
    }
}

/// A condition on one EHLO keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapabilityCheck {
    /// `present`: the keyword is advertised.
    Present,
    /// `absent`: it is not.
    Absent,
    /// `[PLAIN, LOGIN]`: advertised with at least these parameters.
    With(Vec<String>),
}

impl Serialize for CapabilityCheck {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CapabilityCheck::Present => s.serialize_str("present"),
            CapabilityCheck::Absent => s.serialize_str("absent"),
            CapabilityCheck::With(list) => list.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for CapabilityCheck {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CapabilityCheck, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CapabilityCheck;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`present`, `absent` or a list of parameters")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CapabilityCheck, E> {
                match v {
                    "present" => Ok(CapabilityCheck::Present),
                    "absent" => Ok(CapabilityCheck::Absent),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CapabilityCheck, A::Error> {
                let mut list = Vec::new();
                while let Some(p) = seq.next_element::<String>()? {
                    list.push(p);
                }
                Ok(CapabilityCheck::With(list))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for CapabilityCheck {
    fn schema_name() -> String {
        "CapabilityCheck".to_owned()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        any_of(
            vec![
                string_enum(&["present", "absent"]),
                array_of(instance(InstanceType::String)),
            ],
            "`present`, `absent`, or parameters that must all be advertised.",
        )
    }
}

/// `expect:` — conditions on the next reply. All given conditions must hold; at least
/// one must be given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The reply code: `250`, `"2xx"`, `[235, 503]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeSpec>,
    /// The enhanced status code (RFC 3463) of the last line, as a glob: `2.7.0`, `5.7.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhanced: Option<String>,
    /// A glob matched against the text of each line (after `NNN-`/`NNN `, enhanced code
    /// included); holds when any line matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Globs for whole lines, as a transcript writes them. The first and last patterns
    /// must match the first and last lines; the others must match lines in between, in
    /// order, and further lines in between are allowed (capabilities vary).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reply_lines: Vec<String>,
    /// EHLO keyword conditions: `{ AUTH: [PLAIN] }`, `{ STARTTLS: present }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capability: BTreeMap<String, CapabilityCheck>,
    /// EHLO keywords that must not be advertised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_absent: Vec<String>,
    /// The exact number of lines in the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<usize>,
    /// `true`: the reply is exactly `334` with no space; `false`: it is `334 ` + text
    /// (RFC 4954 §4 requires the space).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bare_334: Option<bool>,
    /// A glob for the base64-decoded text of a `334` challenge: `"<*@*>"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded: Option<String>,
    /// Keep this reply under a name, for a later `same_as`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remember: Option<String>,
    /// The reply has exactly the lines of the reply kept with `remember` (the target's
    /// own answer to a wrong password, say), whatever their wording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_as: Option<String>,
    /// Replies also accepted, with a non-strict verdict: what the RFC allows or what
    /// widespread servers do instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Expect>,
    /// Why an alternative is acceptable; reported with the non-strict verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// In an alternative: when it matches, the scenario ends here with its verdict,
    /// because the steps after this one assume the primary outcome (a 421 closes the
    /// session; a refused STARTTLS leaves nothing to check under TLS).
    #[serde(default, skip_serializing_if = "is_false")]
    pub end: bool,
    /// The level of this check, when it differs from the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Requirement>,
    /// The RFC sentence this check enforces, when it differs from the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
}

impl Expect {
    /// An expectation of just a code.
    pub fn code(code: u16) -> Expect {
        Expect {
            code: Some(CodeSpec::Exact(code)),
            ..Expect::default()
        }
    }

    /// Whether any condition is given (alternatives and note are not conditions).
    pub fn has_condition(&self) -> bool {
        self.code.is_some()
            || self.enhanced.is_some()
            || self.text.is_some()
            || !self.reply_lines.is_empty()
            || !self.capability.is_empty()
            || !self.capability_absent.is_empty()
            || self.lines.is_some()
            || self.bare_334.is_some()
            || self.decoded.is_some()
            || self.same_as.is_some()
    }

    fn strings_mut(&mut self, f: &mut dyn FnMut(&mut String, Slot)) {
        if let Some(e) = &mut self.enhanced {
            f(e, Slot::Pattern);
        }
        if let Some(t) = &mut self.text {
            f(t, Slot::Pattern);
        }
        if let Some(d) = &mut self.decoded {
            f(d, Slot::Pattern);
        }
        for l in &mut self.reply_lines {
            f(l, Slot::Pattern);
        }
        if let Some(n) = &mut self.note {
            f(n, Slot::Plain);
        }
        for alt in &mut self.alternatives {
            alt.strings_mut(f);
        }
    }
}

/// `expect_close:` — the server closes the connection, optionally after a final reply.
/// Written `expect_close: true`, `expect_close: {}` or `expect_close: { code: 421 }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExpectClose {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Requirement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ExpectCloseOptions")]
struct ExpectCloseFields {
    /// A reply the server sends before closing.
    #[serde(default)]
    code: Option<CodeSpec>,
    /// The level of this check, when it differs from the scenario's.
    #[serde(default)]
    level: Option<Requirement>,
    /// The RFC sentence this check enforces, when it differs from the scenario's.
    #[serde(default)]
    quote: Option<String>,
}

impl<'de> Deserialize<'de> for ExpectClose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ExpectClose, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ExpectClose;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`true`, `{}` or `{ code: … }`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ExpectClose, E> {
                if v {
                    Ok(ExpectClose::default())
                } else {
                    Err(E::custom(
                        "`expect_close: false` checks nothing; remove the step",
                    ))
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<ExpectClose, E> {
                Ok(ExpectClose::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ExpectClose, A::Error> {
                let f = ExpectCloseFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ExpectClose {
                    code: f.code,
                    level: f.level,
                    quote: f.quote,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ExpectClose {
    fn schema_name() -> String {
        "ExpectClose".to_owned()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        any_of(
            vec![
                instance(InstanceType::Boolean),
                subschema::<ExpectCloseFields>(g),
            ],
            "The peer closes the connection, optionally after a reply with this code.",
        )
    }
}

// ---------------------------------------------------------------------------------------
// SASL, TLS, timing

/// Whether an `auth` step sends an initial response with the AUTH command (RFC 4954 §4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InitialResponse {
    /// When the mechanism is client-first (PLAIN, EXTERNAL, …).
    #[default]
    Auto,
    Always,
    Never,
}

impl Serialize for InitialResponse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            InitialResponse::Auto => s.serialize_str("auto"),
            InitialResponse::Always => s.serialize_bool(true),
            InitialResponse::Never => s.serialize_bool(false),
        }
    }
}

impl<'de> Deserialize<'de> for InitialResponse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<InitialResponse, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = InitialResponse;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or \"auto\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<InitialResponse, E> {
                Ok(if v {
                    InitialResponse::Always
                } else {
                    InitialResponse::Never
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<InitialResponse, E> {
                match v {
                    "auto" => Ok(InitialResponse::Auto),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for InitialResponse {
    fn schema_name() -> String {
        "InitialResponse".to_owned()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        any_of(
            vec![instance(InstanceType::Boolean), string_enum(&["auto"])],
            "Send the first response with the AUTH command: true, false, or auto (when the \
             mechanism is client-first).",
        )
    }
}

fn is_auto(v: &InitialResponse) -> bool {
    *v == InitialResponse::Auto
}

/// `auth:` — a whole SASL exchange (RFC 4954 §4). The runner sends AUTH, computes each
/// response from the challenge the server really sent, and checks the final reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// The SASL mechanism name as sent (RFC 4422 §3.1).
    pub mechanism: String,
    /// Authentication identity; defaults to `${user}` when that variable is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Defaults to `${password}` when that variable is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Authorization identity, for mechanisms that carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authzid: Option<String>,
    /// Bearer token for OAUTHBEARER / XOAUTH2; defaults to `${token}` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "is_auto")]
    pub initial_response: InitialResponse,
    /// The final reply; defaults to `{ code: 235 }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    /// SCRAM channel binding (RFC 5802 §6): which binding type a -PLUS mechanism sends,
    /// and whether its data is this connection's or a man in the middle's. Without it a
    /// -PLUS mechanism binds to the first type the TLS connection has; a non-PLUS SCRAM
    /// always sends the `n` flag (hand-write `y` with `sasl` steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_binding: Option<AuthBinding>,
}

/// Whose binding data an `auth` step's `c=` carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BindingData {
    /// This TLS connection's data: what an honest client sends.
    #[default]
    Connection,
    /// Data of another TLS connection (this one's with every octet inverted, same
    /// length), as a client behind a TLS-terminating proxy computes it: the proxy's
    /// connection to the client is not the server's connection to the proxy.
    Mitm,
}

/// `auth: { channel_binding: { type: tls-exporter, data: mitm, c_header: "n,," } }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthBinding {
    /// The binding type (`tls-exporter`, `tls-server-end-point`); defaults to the first
    /// the connection has.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub cb_type: Option<String>,
    #[serde(default, skip_serializing_if = "is_default_binding_data")]
    pub data: BindingData,
    /// A GS2 header to put into `c=` in place of the one the client sent first
    /// (RFC 5802 §5.1: `c=` carries "the base64-encoded GS2 header and channel
    /// binding data"), to see whether the server compares them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c_header: Option<String>,
}

fn is_default_binding_data(d: &BindingData) -> bool {
    *d == BindingData::Connection
}

impl Auth {
    /// The expectation on the final reply.
    pub fn expectation(&self) -> Expect {
        self.expect.clone().unwrap_or_else(|| Expect::code(235))
    }
}

/// `sasl:` — one hand-written line during a SASL exchange, for malformed responses.
/// Exactly one of `send`, `base64_of`, `cancel` is given; CRLF is appended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sasl {
    /// The line exactly (a raw string: escapes apply), e.g. `"!!not base64"` or `"="`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// A payload (raw string) that is base64-encoded and sent, e.g. `"\\0alice\\0"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64_of: Option<String>,
    /// Send `*`, cancelling the exchange (RFC 4954 §4).
    #[serde(default, skip_serializing_if = "is_false")]
    pub cancel: bool,
}

impl Sasl {
    /// The bytes to write, CRLF included (after [`Step::expand`]).
    pub fn bytes(&self) -> Result<Vec<u8>, super::bytes::EscapeError> {
        use base64::Engine as _;
        let mut out = if self.cancel {
            b"*".to_vec()
        } else if let Some(line) = &self.send {
            super::bytes::unescape(line)?
        } else if let Some(payload) = &self.base64_of {
            base64::engine::general_purpose::STANDARD
                .encode(super::bytes::unescape(payload)?)
                .into_bytes()
        } else {
            Vec::new()
        };
        out.extend_from_slice(b"\r\n");
        Ok(out)
    }

    pub(crate) fn forms(&self) -> usize {
        usize::from(self.send.is_some())
            + usize::from(self.base64_of.is_some())
            + usize::from(self.cancel)
    }
}

/// `starttls:` — send STARTTLS, expect 220 (RFC 3207 §4), and run the TLS handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Starttls {
    /// The reply to STARTTLS; defaults to `{ code: 220 }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    /// Run the handshake after the reply (set `false` to test a refusal).
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub handshake: bool,
}

impl Default for Starttls {
    fn default() -> Starttls {
        Starttls {
            expect: None,
            handshake: true,
        }
    }
}

impl Starttls {
    /// The expectation on the reply to STARTTLS.
    pub fn expectation(&self) -> Expect {
        self.expect.clone().unwrap_or_else(|| Expect::code(220))
    }
}

/// `accept_starttls: {}` (server role) — the client's next line must be STARTTLS
/// (RFC 3207 §4); the harness answers `220 2.0.0 Ready to start TLS` and runs the TLS
/// handshake as the server, with a self-signed certificate. Afterwards `expect_auth`
/// serves the `-PLUS` mechanisms with this connection's channel bindings (RFC 5802 §6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptStarttls {}

/// `quit: {}` — send QUIT, expect 221, expect the close (RFC 5321 §4.1.1.10).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quit {}

/// The longest `wait` or `expect_no_command` a scenario may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// A duration written `500ms`, `2s` or `1.5s`, at most [`MAX_WAIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WaitDuration(Duration);

/// Why a `wait` or `expect_no_command` duration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitDurationError {
    /// Not `500ms`, `2s` or `1.5s`.
    Syntax { text: String },
    /// Longer than [`MAX_WAIT`], which keeps a scenario from stalling a run.
    TooLong { duration: Duration },
}

impl fmt::Display for WaitDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitDurationError::Syntax { text } => {
                write!(
                    f,
                    "bad duration {text:?}: expected e.g. `500ms`, `2s` or `1.5s`"
                )
            }
            WaitDurationError::TooLong { duration } => write!(
                f,
                "duration {} exceeds the {} s bound",
                WaitDuration(*duration),
                MAX_WAIT.as_secs()
            ),
        }
    }
}

impl std::error::Error for WaitDurationError {}

impl WaitDuration {
    /// A duration within the bound.
    pub fn new(d: Duration) -> Result<WaitDuration, WaitDurationError> {
        if d > MAX_WAIT {
            return Err(WaitDurationError::TooLong { duration: d });
        }
        Ok(WaitDuration(d))
    }

    pub fn duration(self) -> Duration {
        self.0
    }
}

impl FromStr for WaitDuration {
    type Err = WaitDurationError;
    fn from_str(s: &str) -> Result<WaitDuration, WaitDurationError> {
        let bad = || WaitDurationError::Syntax { text: s.to_owned() };
        let s = s.trim();
        let (number, millis_per_unit) = if let Some(n) = s.strip_suffix("ms") {
            (n, 1u64)
        } else if let Some(n) = s.strip_suffix('s') {
            (n, 1000u64)
        } else {
            return Err(bad());
        };
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if int.is_empty() || int.len() > 6 || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 3 {
            return Err(bad());
        }
        if number.contains('.') && (frac.is_empty() || millis_per_unit == 1) {
            return Err(bad());
        }
        let int: u64 = int.parse().map_err(|_| bad())?;
        let mut frac_millis: u64 = 0;
        for (i, d) in frac.bytes().enumerate() {
            let scale = [100u64, 10, 1][i];
            frac_millis += u64::from(d - b'0') * scale;
        }
        let millis = int
            .checked_mul(millis_per_unit)
            .and_then(|m| m.checked_add(frac_millis))
            .ok_or_else(bad)?;
        WaitDuration::new(Duration::from_millis(millis))
    }
}

impl fmt::Display for WaitDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Serialize for WaitDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WaitDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<WaitDuration, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = WaitDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `500ms` or `2s`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<WaitDuration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<WaitDuration, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: `{v}s` or `{v}ms`"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<WaitDuration, E> {
                Err(E::custom(format!("bad duration {v}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<WaitDuration, E> {
                Err(E::custom(format!("a duration needs a unit: `{v}s`")))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for WaitDuration {
    fn schema_name() -> String {
        "Duration".to_owned()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        string_with_pattern(
            r"^[0-9]{1,6}(ms|(\.[0-9]{1,3})?s)$",
            "A duration: 500ms, 2s, 1.5s; at most 60 s.",
        )
    }
}

// ---------------------------------------------------------------------------------------
// Server-role steps

/// `reply:` — the harness, as server, sends a reply. The short form is the reply text,
/// one line per line (`"250-mail.example\n250 AUTH PLAIN"`), each sent with CRLF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Text(String),
    Lines(ReplyLines),
}

/// `reply: { code: 250, lines: [mail.example, AUTH PLAIN] }` → `250-mail.example`,
/// `250 AUTH PLAIN` (RFC 5321 §4.2.1 continuation markers added).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyLines {
    pub code: u16,
    #[serde(default)]
    pub lines: Vec<String>,
}

short_or_long!(
    Reply,
    Text,
    Lines,
    ReplyLines,
    "the reply text (one line per line) or { code, lines }",
    "Reply lines as sent, without CRLF."
);

impl Reply {
    /// The bytes to write (after [`Step::expand`]).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Reply::Text(text) => {
                for line in text.lines() {
                    out.extend_from_slice(line.strip_suffix('\r').unwrap_or(line).as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
            }
            Reply::Lines(r) => {
                if r.lines.is_empty() {
                    out.extend_from_slice(format!("{}\r\n", r.code).as_bytes());
                }
                for (i, line) in r.lines.iter().enumerate() {
                    let sep = if i + 1 == r.lines.len() { ' ' } else { '-' };
                    out.extend_from_slice(format!("{}{sep}{line}\r\n", r.code).as_bytes());
                }
            }
        }
        out
    }

    fn strings_mut(&mut self, f: &mut dyn FnMut(&mut String, Slot)) {
        match self {
            Reply::Text(t) => f(t, Slot::Plain),
            Reply::Lines(r) => r.lines.iter_mut().for_each(|l| f(l, Slot::Plain)),
        }
    }
}

/// `expect_command:` — the client's next line. At least one condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectCommand {
    /// The verb, compared ignoring case (RFC 5321 §2.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    /// A glob for everything after the verb and one space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    /// A glob for the whole line (what a transcript's `C:` line compiles to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// The line is `AUTH <mechanism> …` for this mechanism (compared ignoring case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_mechanism: Option<String>,
    /// An initial response on this AUTH line answers the next `challenge`: that
    /// challenge is not sent and the next `expect_response` judges the initial response
    /// (RFC 4954 §4 lets a client send its first response with AUTH; servers accept
    /// `AUTH LOGIN <user>` too).
    #[serde(default, skip_serializing_if = "is_false")]
    pub initial_response_answers_challenge: bool,
    /// The level of this check, when it differs from the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Requirement>,
    /// The RFC sentence this check enforces, when it differs from the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
}

/// `challenge:` — send `334 <base64>` (RFC 4954 §4). Short form: the base64 text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Base64(String),
    Options(ChallengeOptions),
}

/// `challenge: { base64 | encode, bare }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeOptions {
    /// The challenge, already base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    /// Text that the harness base64-encodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encode: Option<String>,
    /// Send `334` without the space that RFC 4954 §4 requires (some servers do).
    #[serde(default, skip_serializing_if = "is_false")]
    pub bare: bool,
}

short_or_long!(
    Challenge,
    Base64,
    Options,
    ChallengeOptions,
    "the base64 challenge or { base64, encode, bare }",
    "The challenge, already base64."
);

impl Challenge {
    /// The bytes to write (after [`Step::expand`]).
    pub fn bytes(&self) -> Vec<u8> {
        use base64::Engine as _;
        let (text, bare) = match self {
            Challenge::Base64(b) => (b.clone(), false),
            Challenge::Options(o) => {
                let text = match (&o.base64, &o.encode) {
                    (Some(b), _) => b.clone(),
                    (None, Some(plain)) => {
                        base64::engine::general_purpose::STANDARD.encode(plain.as_bytes())
                    }
                    (None, None) => String::new(),
                };
                (text, o.bare)
            }
        };
        if bare {
            b"334\r\n".to_vec()
        } else {
            format!("334 {text}\r\n").into_bytes()
        }
    }
}

/// `expect_response:` — the client's next SASL response line. At least one condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectResponse {
    /// A glob for the decoded response (invalid base64 fails the step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded: Option<String>,
    /// A glob for the line as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    /// The client cancels with `*`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cancel: bool,
    /// The level of this check, when it differs from the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Requirement>,
    /// The RFC sentence this check enforces, when it differs from the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
}

/// `expect_auth:` — the harness runs the server side of a SASL exchange for `mechanism`
/// and checks the client proves these credentials; then it sends `reply` (default
/// `235 2.7.0 Authentication successful`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectAuth {
    pub mechanism: String,
    /// Defaults to `${user}` when that variable is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Defaults to `${password}` when that variable is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authzid: Option<String>,
    /// The reply after a successful exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
    /// The level of this check, when it differs from the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Requirement>,
    /// The RFC sentence this check enforces, when it differs from the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
}

impl ExpectAuth {
    /// The reply sent after success.
    pub fn success_reply(&self) -> Reply {
        use authspec_reference::smtp::auth_server::AuthReply;
        let ok = AuthReply::Success;
        self.reply
            .clone()
            .unwrap_or_else(|| Reply::Text(format!("{} {}", ok.code(), ok.text())))
    }
}

/// `expect_smuggling: {}` — after a DATA payload that hides a second transaction behind
/// a line end other than CRLF "." CRLF, tell a safe server from a vulnerable one by what
/// it answers: a refusal, a close, or one reply for one message are safe; a reply to the
/// smuggled MAIL means it ran as a command (SMTP smuggling, CVE-2023-51764).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectSmuggling {
    /// The level of this check, when it differs from the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Requirement>,
    /// The RFC sentence this check enforces, when it differs from the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
}

/// `expect_client_close: {}` — the client closes the connection (QUIT is answered 221
/// and allowed first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectClientClose {
    /// Answer other commands with this reply instead of failing at the first one…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_others: Option<Reply>,
    /// …as long as there are at most this many (default 0 without `reply_to_others`,
    /// 3 with it); one more is a retry storm and does not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_commands: Option<u32>,
    /// The level of this check, when it differs from the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Requirement>,
    /// The RFC sentence this check enforces, when it differs from the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
}

/// `expect_exit: { success: false }` — the client command ends by itself with a
/// status of 0 (`success: true`) or not 0 (`success: false`), within the run's timeout.
/// Only `--client-command` clients have an exit status; for others the step is skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectExit {
    pub success: bool,
    /// The level of this check, when it differs from the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Requirement>,
    /// The RFC sentence this check enforces, when it differs from the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Steps

/// Which role a step kind belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepRole {
    Client,
    Server,
    Either,
}

/// How a string field is expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Plain,
    Pattern,
    Raw,
}

macro_rules! steps {
    ($( $(#[$doc:meta])* $variant:ident($ty:ty) = $key:literal, $role:ident; )*) => {
        /// One step of a scenario. In YAML a step is a map with exactly one key, the kind.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Step {
            $( $(#[$doc])* $variant($ty), )*
        }

        /// Every step kind, as written in YAML.
        pub const STEP_KINDS: &[&str] = &[$($key),*];

        impl Step {
            /// The kind as written in YAML (`send`, `expect`, …).
            pub fn kind(&self) -> &'static str {
                match self { $( Step::$variant(_) => $key, )* }
            }

            /// Which role may use this step.
            pub fn role(&self) -> StepRole {
                match self { $( Step::$variant(_) => StepRole::$role, )* }
            }
        }

        impl Serialize for Step {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(1))?;
                match self { $( Step::$variant(v) => map.serialize_entry($key, v)?, )* }
                map.end()
            }
        }

        impl<'de> Deserialize<'de> for Step {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Step, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Step;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a step: a map with one key naming the kind, e.g. `send: EHLO x`")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
                        let Some(key) = map.next_key::<String>()? else {
                            return Err(de::Error::custom(
                                "empty step: expected one key naming the kind",
                            ));
                        };
                        let step = match key.as_str() {
                            $( $key => Step::$variant(map.next_value()?), )*
                            other => return Err(de::Error::unknown_variant(other, STEP_KINDS)),
                        };
                        if let Some(extra) = map.next_key::<String>()? {
                            return Err(de::Error::custom(format!(
                                "a step has exactly one key, but `{key}` is followed by `{extra}`; \
                                 put options inside the step, e.g. `{key}: {{ … }}`"
                            )));
                        }
                        Ok(step)
                    }
                }
                d.deserialize_map(V)
            }
        }

        impl JsonSchema for Step {
            fn schema_name() -> String {
                "Step".to_owned()
            }
            fn json_schema(g: &mut SchemaGenerator) -> Schema {
                let variants = vec![ $( single_key($key, subschema::<$ty>(g)), )* ];
                Schema::Object(schemars::schema::SchemaObject {
                    subschemas: Some(Box::new(schemars::schema::SubschemaValidation {
                        one_of: Some(variants),
                        ..Default::default()
                    })),
                    ..Default::default()
                })
            }
        }
    };
}

steps! {
    /// Send a line (both roles: raw bytes to the peer).
    Send(Send) = "send", Either;
    /// Send bytes written as hex.
    SendBytes(SendBytes) = "send_bytes", Either;
    /// Send several command lines in one write (RFC 2920).
    Pipeline(Vec<String>) = "pipeline", Client;
    /// Check the next reply.
    Expect(Expect) = "expect", Client;
    /// The server closes the connection.
    ExpectClose(ExpectClose) = "expect_close", Client;
    /// A SASL exchange computed from the server's challenges.
    Auth(Auth) = "auth", Client;
    /// A hand-written SASL response line.
    Sasl(Sasl) = "sasl", Client;
    /// STARTTLS and the TLS handshake.
    Starttls(Starttls) = "starttls", Client;
    /// Judge the answer to a smuggling payload: safe or vulnerable.
    ExpectSmuggling(ExpectSmuggling) = "expect_smuggling", Client;
    /// Pause.
    Wait(WaitDuration) = "wait", Either;
    /// QUIT, 221, close.
    Quit(Quit) = "quit", Client;
    /// Send a reply (server role).
    Reply(Reply) = "reply", Server;
    /// Check the client's next line (server role).
    ExpectCommand(ExpectCommand) = "expect_command", Server;
    /// Send a 334 challenge (server role).
    Challenge(Challenge) = "challenge", Server;
    /// Check the client's SASL response (server role).
    ExpectResponse(ExpectResponse) = "expect_response", Server;
    /// Run the server side of a SASL exchange and check the credentials (server role).
    ExpectAuth(ExpectAuth) = "expect_auth", Server;
    /// The client closes the connection (server role).
    ExpectClientClose(ExpectClientClose) = "expect_client_close", Server;
    /// Read STARTTLS, answer 220 and run the TLS handshake as the server (server role).
    AcceptStarttls(AcceptStarttls) = "accept_starttls", Server;
    /// The client sends nothing for this long (server role).
    ExpectNoCommand(WaitDuration) = "expect_no_command", Server;
    /// The client command's exit status (server role, `--client-command`).
    ExpectExit(ExpectExit) = "expect_exit", Server;
}

impl Step {
    /// The level and quote this step names for its own check, if it names one.
    pub fn own_level(&self) -> (Option<Requirement>, Option<&str>) {
        fn pick<'a>(
            l: &Option<Requirement>,
            q: &'a Option<String>,
        ) -> (Option<Requirement>, Option<&'a str>) {
            (*l, q.as_deref())
        }
        match self {
            Step::Expect(e) => pick(&e.level, &e.quote),
            Step::ExpectClose(c) => pick(&c.level, &c.quote),
            Step::ExpectSmuggling(c) => pick(&c.level, &c.quote),
            Step::Auth(a) => a
                .expect
                .as_ref()
                .map_or((None, None), |e| pick(&e.level, &e.quote)),
            Step::Starttls(s) => s
                .expect
                .as_ref()
                .map_or((None, None), |e| pick(&e.level, &e.quote)),
            Step::ExpectCommand(c) => pick(&c.level, &c.quote),
            Step::ExpectResponse(r) => pick(&r.level, &r.quote),
            Step::ExpectAuth(a) => pick(&a.level, &a.quote),
            Step::ExpectClientClose(c) => pick(&c.level, &c.quote),
            Step::ExpectExit(x) => pick(&x.level, &x.quote),
            _ => (None, None),
        }
    }

    /// Visits every string that may hold `${…}`, with how it is to be expanded.
    pub(crate) fn strings_mut(&mut self, f: &mut dyn FnMut(&mut String, Slot)) {
        match self {
            Step::Send(s) => {
                let slot = if s.raw() { Slot::Raw } else { Slot::Plain };
                f(s.line_mut(), slot);
            }
            Step::SendBytes(_)
            | Step::ExpectSmuggling(_)
            | Step::ExpectClose(_)
            | Step::Wait(_)
            | Step::Quit(_)
            | Step::ExpectExit(_)
            | Step::AcceptStarttls(_)
            | Step::ExpectNoCommand(_) => {}
            Step::ExpectClientClose(c) => {
                if let Some(r) = &mut c.reply_to_others {
                    r.strings_mut(f);
                }
            }
            Step::Pipeline(lines) => lines.iter_mut().for_each(|l| f(l, Slot::Plain)),
            Step::Expect(e) => e.strings_mut(f),
            Step::Auth(a) => {
                f(&mut a.mechanism, Slot::Plain);
                for s in [&mut a.user, &mut a.password, &mut a.authzid, &mut a.token]
                    .into_iter()
                    .flatten()
                {
                    f(s, Slot::Plain);
                }
                if let Some(e) = &mut a.expect {
                    e.strings_mut(f);
                }
            }
            Step::Sasl(s) => {
                for v in [&mut s.send, &mut s.base64_of].into_iter().flatten() {
                    f(v, Slot::Raw);
                }
            }
            Step::Starttls(s) => {
                if let Some(e) = &mut s.expect {
                    e.strings_mut(f);
                }
            }
            Step::Reply(r) => r.strings_mut(f),
            Step::ExpectCommand(c) => {
                for v in [&mut c.verb, &mut c.auth_mechanism].into_iter().flatten() {
                    f(v, Slot::Plain);
                }
                for v in [&mut c.args, &mut c.line].into_iter().flatten() {
                    f(v, Slot::Pattern);
                }
            }
            Step::Challenge(c) => match c {
                Challenge::Base64(b) => f(b, Slot::Plain),
                Challenge::Options(o) => {
                    for v in [&mut o.base64, &mut o.encode].into_iter().flatten() {
                        f(v, Slot::Plain);
                    }
                }
            },
            Step::ExpectResponse(r) => {
                for v in [&mut r.decoded, &mut r.base64].into_iter().flatten() {
                    f(v, Slot::Pattern);
                }
            }
            Step::ExpectAuth(a) => {
                f(&mut a.mechanism, Slot::Plain);
                for s in [&mut a.user, &mut a.password, &mut a.authzid]
                    .into_iter()
                    .flatten()
                {
                    f(s, Slot::Plain);
                }
                if let Some(r) = &mut a.reply {
                    r.strings_mut(f);
                }
            }
        }
    }

    /// The step with every `${…}` replaced by its value: plainly in text that is sent,
    /// glob-escaped in patterns, backslash-escaped in raw strings. Credentials left out
    /// of `auth`/`expect_auth` are filled from `user`, `password` and `token` when set.
    pub fn expand(&self, vars: &super::Vars) -> Result<Step, super::VarError> {
        let mut step = self.clone();
        match &mut step {
            Step::Auth(a) => {
                fill_default(&mut a.user, "user", vars);
                fill_default(&mut a.password, "password", vars);
                fill_default(&mut a.token, "token", vars);
            }
            Step::ExpectAuth(a) => {
                fill_default(&mut a.user, "user", vars);
                fill_default(&mut a.password, "password", vars);
            }
            _ => {}
        }
        let mut result = Ok(());
        step.strings_mut(&mut |s, slot| {
            if result.is_err() {
                return;
            }
            let context = match slot {
                Slot::Plain => super::vars::Context::Plain,
                Slot::Pattern => super::vars::Context::Pattern,
                Slot::Raw => super::vars::Context::Raw,
            };
            match vars.expand_in(s, context) {
                Ok(v) => *s = v,
                Err(e) => result = Err(e),
            }
        });
        result.map(|()| step)
    }
}

fn fill_default(field: &mut Option<String>, name: &str, vars: &super::Vars) {
    if field.is_none() && vars.get(name).is_some() {
        *field = Some(format!("${{{name}}}"));
    }
}
