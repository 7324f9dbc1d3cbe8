//! The server-role steps: what the scripted server sends and what it checks of the
//! client (`reply`, `challenge`, `expect_command`, `expect_response`, `expect_auth`, ...).

use super::*;

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

    pub(super) fn strings_mut(&mut self, f: &mut dyn FnMut(&mut String, Slot)) {
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
