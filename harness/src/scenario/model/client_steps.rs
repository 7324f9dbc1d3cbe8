//! The client-role steps: what the harness sends and how it authenticates
//! (`send`, `send_bytes`, `auth`, `sasl`, `starttls`, `quit`, `wait`).

use super::*;

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
    pub fn bytes(&self) -> Result<Vec<u8>, crate::scenario::bytes::EscapeError> {
        let mut out = if self.raw() {
            crate::scenario::bytes::unescape(self.line())?
        } else {
            self.line().as_bytes().to_vec()
        };
        if self.crlf() {
            out.extend_from_slice(b"\r\n");
        }
        Ok(out)
    }

    pub(super) fn line_mut(&mut self) -> &mut String {
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
    pub fn bytes(&self) -> Result<Vec<u8>, crate::scenario::bytes::EscapeError> {
        crate::scenario::bytes::decode_hex(&self.hex)
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
    pub fn bytes(&self) -> Result<Vec<u8>, crate::scenario::bytes::EscapeError> {
        use base64::Engine as _;
        let mut out = if self.cancel {
            b"*".to_vec()
        } else if let Some(line) = &self.send {
            crate::scenario::bytes::unescape(line)?
        } else if let Some(payload) = &self.base64_of {
            base64::engine::general_purpose::STANDARD
                .encode(crate::scenario::bytes::unescape(payload)?)
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
