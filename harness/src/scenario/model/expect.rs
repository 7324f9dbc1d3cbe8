//! Expectations on the server's replies (`expect`, `expect_close`): reply codes,
//! capability checks and the text patterns they use.

use super::*;

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

    pub(super) fn strings_mut(&mut self, f: &mut dyn FnMut(&mut String, Slot)) {
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
