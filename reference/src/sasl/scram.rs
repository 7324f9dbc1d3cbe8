//! SCRAM-SHA-1 (RFC 5802), SCRAM-SHA-256 (RFC 7677) and SCRAM-SHA-512
//! (draft-melnikov-scram-sha-512), each with its -PLUS variant: channel binding to the
//! TLS connection (RFC 5802 §6) with `tls-exporter` (RFC 9266) or
//! `tls-server-end-point` (RFC 5929), whose bytes the TLS driver supplies (see
//! [`super::channel_binding`]).
//!
//! ```text
//!   client                                              server
//!   client-first  n,[a=authzid],n=user,r=cnonce  ---->  Start
//!                 r=cnonce+snonce,s=salt,i=iter  <----  AwaitClientFinal
//!   client-final  c=biws,r=cnonce+snonce,p=proof ---->  (verify proof)
//!                 v=ServerSignature              <----  Success { additional }
//!   (verify v=)   ""                             ---->  Done
//! ```
//!
//! Attribute order is fixed (RFC 5802 §5: "the order of attributes in client or server
//! messages is fixed, with the exception of extension attributes"), so messages are
//! read left to right against the grammar of §7, and every departure has its own
//! [`ScramError`] variant.
//!
//! Where the server's keys come from: a stored `{SCRAM-SHA-*}` credential (Dovecot's
//! layout: iterations, salt, StoredKey, ServerKey) is used as it is. A plaintext
//! password is salted with 16 octets derived from the user name and a secret the server
//! draws from its [`RandomSource`] when it is created, with [`DEFAULT_ITERATIONS`]
//! (4096, RFC 7677 §4's minimum and what Cyrus and Dovecot use). An unknown user gets a
//! salt made the same way and the same iteration count, so the server-first message does
//! not tell an unknown user from a known one (RFC 5802 §9); the exchange then fails at
//! the proof with the same [`SaslError::InvalidCredentials`]. Because the secret lives
//! for one exchange (the constructor takes no longer-lived key), the salt of a plaintext
//! or unknown user changes between exchanges while a stored key's salt does not; a
//! driver that wants those indistinguishable too must store SCRAM keys.

use super::channel_binding::{CbType, ClientBinding, ServerBinding};
use super::credentials::StoredCredential;
use super::credentials::lookup_user as lookup;
pub use super::keys::ScramHash;
use super::keys::scram_keys;
use super::{
    Authenticated, ClientCredentials, ClientMechanism, Mechanism, RandomSource, SaslError, Secret,
    ServerContext, ServerMechanism, ServerStep,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::borrow::Cow;

/// Iteration count for keys derived from a plaintext password, and the fake count
/// shown for unknown users. RFC 7677 §4: "at least 4096".
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// The most iterations a client computes unless told otherwise: a hostile server could
/// otherwise ask for 2^31 and stall the client (RFC 5802 §9 leaves the count to the
/// server).
pub(crate) const MAX_CLIENT_ITERATIONS: u32 = 1_000_000;
/// No RFC limit; authspec's own bound on a SCRAM message so nothing buffers without end.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Base64-alphabet nonce characters, all `printable` (RFC 5802 §7).
const NONCE_LEN: usize = 24;
const SALT_LEN: usize = 16;

/// The SCRAM mechanism of `hash`, with or without `-PLUS`.
pub(crate) const fn mechanism_of(hash: ScramHash, plus: bool) -> Mechanism {
    match (hash, plus) {
        (ScramHash::Sha1, false) => Mechanism::ScramSha1,
        (ScramHash::Sha1, true) => Mechanism::ScramSha1Plus,
        (ScramHash::Sha256, false) => Mechanism::ScramSha256,
        (ScramHash::Sha256, true) => Mechanism::ScramSha256Plus,
        (ScramHash::Sha512, false) => Mechanism::ScramSha512,
        (ScramHash::Sha512, true) => Mechanism::ScramSha512Plus,
    }
}

/// The hash and the `-PLUS` flag of a SCRAM mechanism; `None` for other mechanisms.
pub const fn family(mechanism: Mechanism) -> Option<(ScramHash, bool)> {
    match mechanism {
        Mechanism::ScramSha1 => Some((ScramHash::Sha1, false)),
        Mechanism::ScramSha1Plus => Some((ScramHash::Sha1, true)),
        Mechanism::ScramSha256 => Some((ScramHash::Sha256, false)),
        Mechanism::ScramSha256Plus => Some((ScramHash::Sha256, true)),
        Mechanism::ScramSha512 => Some((ScramHash::Sha512, false)),
        Mechanism::ScramSha512Plus => Some((ScramHash::Sha512, true)),
        _ => None,
    }
}

/// The stored form of `password` (RFC 5802 §3), as Dovecot's `{SCRAM-SHA-*}` scheme and
/// `doveadm pw` keep it. The password is SASLprep'd first where that succeeds.
pub fn stored_credential(
    hash: ScramHash,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> StoredCredential {
    let keys = scram_keys(hash, password, salt, iterations);
    StoredCredential::Scram {
        hash,
        iterations,
        salt: salt.to_vec(),
        stored_key: keys.stored_key,
        server_key: keys.server_key,
    }
}

/// Rules of RFC 5802 (and RFC 4013 SASLprep) that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScramError {
    /// authspec's own bound ([`MAX_MESSAGE_LEN`]); RFC 5802 sets none.
    MessageTooLong,
    /// RFC 5802 §7 `gs2-header = gs2-cbind-flag "," [ authzid ] ","` with
    /// `gs2-cbind-flag = ("p=" cb-name) / "n" / "y"`.
    MalformedGs2Header,
    /// RFC 5802 §6: the client asked for channel binding (`p=`) with a mechanism that
    /// has none (not `-PLUS`), so the server "MUST fail authentication"
    /// (`e=channel-binding-not-supported`).
    ChannelBindingNotSupported,
    /// RFC 5802 §6: "If the flag is set to "y" and the server supports channel binding,
    /// the server MUST fail authentication": the client did not see the -PLUS this
    /// server advertised, so something removed it (`e=server-does-support-channel-binding`).
    ServerDoesSupportChannelBinding,
    /// RFC 5802 §6: "If the channel binding flag was "p" and the server does not
    /// support the indicated channel binding type, then the server MUST fail
    /// authentication" (`e=unsupported-channel-binding-type`). `tls-unique` is always
    /// here: rustls does not expose it.
    UnsupportedChannelBindingType,
    /// RFC 5802 §4 and RFC 5801 §5: a `-PLUS` mechanism is the one that binds; its
    /// client-first message carries `p=`, not `n` or `y`.
    PlusWithoutChannelBinding,
    /// Client side: a `-PLUS` mechanism was chosen but the connection has no binding
    /// data of a type the client may use (no TLS, or no type in common).
    NoChannelBindingData,
    /// RFC 5802 §7 `attr-val = ALPHA "=" value` with `value = 1*value-char`: an empty
    /// element, a missing `=`, an empty value or a NUL.
    MalformedAttribute,
    /// RFC 5802 §5.1 `m`: "its presence in a client or a server message MUST cause
    /// authentication failure".
    MandatoryExtension,
    /// RFC 5802 §7: the message ended where this attribute is mandatory.
    AttributeMissing {
        /// The attribute letter the grammar requires next.
        expected: char,
    },
    /// RFC 5802 §5: "The order of attributes in client or server messages is fixed":
    /// an attribute SCRAM defines came where another one must.
    AttributeOutOfOrder {
        /// The attribute letter the grammar requires next.
        expected: char,
        /// The letter that came instead.
        found: char,
    },
    /// RFC 5802 §5 (fixed order): an attribute SCRAM defines appeared again, or in the
    /// place of the extensions.
    MisplacedAttribute {
        /// The repeated or misplaced letter.
        found: char,
    },
    /// RFC 5802 §7: an attribute SCRAM does not define stands where a mandatory one must.
    UnexpectedAttribute {
        /// The attribute letter the grammar requires next.
        expected: char,
        /// The letter that came instead.
        found: char,
    },
    /// RFC 5802 §5.1 `n`: "If the server receives a username that contains '=' not
    /// followed by either '2C' or '3D', then the server MUST fail the authentication";
    /// also `saslname` is `1*` UTF-8 characters without NUL.
    MalformedSaslname,
    /// RFC 5802 §5.1 `n` / RFC 4013 §2.3: the name holds a character SASLprep prohibits,
    /// or prepares to the empty string.
    SaslPrepFailed,
    /// RFC 5802 §7 `nonce = "r=" c-nonce [s-nonce]` with `printable` characters
    /// (`%x21-2B / %x2D-7E`), at least one.
    MalformedNonce,
    /// RFC 5802 §5.1 `c`: the channel binding data must be the base64 of the GS2 header
    /// the client sent first, followed with -PLUS by the channel's binding data; a man
    /// in the middle that terminates TLS produces other data
    /// (`e=channel-bindings-dont-match`).
    ChannelBindingMismatch,
    /// RFC 5802 §5.1 `r`: in the client-final message it must be exactly the nonce the
    /// server sent.
    NonceMismatch,
    /// RFC 5802 §5.1 `r`: the server's nonce must start with the client's and append
    /// its own (`c-nonce [s-nonce]`, and "the server's part MUST be non-empty" in effect
    /// since it is what makes the exchange fresh).
    ServerNonceNotExtended,
    /// RFC 5802 §7 `base64`: `c=`, `s=`, `p=` or `v=` is not valid base64.
    MalformedBase64,
    /// RFC 5802 §5.1 `s`: the salt is empty.
    EmptySalt,
    /// RFC 5802 §7 `iteration-count = posit-number` (`%x31-39 *DIGIT`).
    MalformedIterationCount,
    /// The server asked for more iterations than this client computes (RFC 5802 §9:
    /// the count is the server's, so a client bounds it).
    IterationCountTooHigh {
        /// The largest count this client accepts.
        max: u32,
    },
    /// RFC 5802 §3: ClientProof and ServerSignature are as long as `H()`'s output.
    MalformedProof,
    /// RFC 5802 §7: `client-final-message` ends with `proof`, and nothing follows.
    TrailingAttribute,
    /// RFC 4422 §5: a client-first mechanism's first server challenge is empty.
    NonEmptyInitialChallenge,
}

impl ScramError {
    /// RFC 5802 §7 `server-error-value` naming this failure, for an `e=` message.
    pub fn server_error_value(&self) -> &'static str {
        match self {
            ScramError::ChannelBindingMismatch => "channel-bindings-dont-match",
            ScramError::ServerDoesSupportChannelBinding => "server-does-support-channel-binding",
            ScramError::ChannelBindingNotSupported => "channel-binding-not-supported",
            ScramError::UnsupportedChannelBindingType => "unsupported-channel-binding-type",
            ScramError::MandatoryExtension => "extensions-not-supported",
            ScramError::MalformedSaslname | ScramError::SaslPrepFailed => {
                "invalid-username-encoding"
            }
            ScramError::MalformedBase64
            | ScramError::MalformedAttribute
            | ScramError::MalformedGs2Header
            | ScramError::MalformedNonce
            | ScramError::MalformedProof => "invalid-encoding",
            _ => "other-error",
        }
    }
}

impl std::fmt::Display for ScramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScramError::ChannelBindingMismatch => f.write_str(
                "the channel binding data (c=) does not match this connection (RFC 5802 §5.1; a TLS-terminating proxy causes this)",
            ),
            ScramError::ServerDoesSupportChannelBinding => f.write_str(
                "the client sent gs2 flag y although -PLUS was advertised: a downgrade (RFC 5802 §6)",
            ),
            ScramError::UnsupportedChannelBindingType => {
                f.write_str("the channel binding type asked for is not supported here (RFC 5802 §6)")
            }
            ScramError::ChannelBindingNotSupported => f.write_str(
                "channel binding (p=) asked for with a mechanism that has none (RFC 5802 §6)",
            ),
            ScramError::PlusWithoutChannelBinding => {
                f.write_str("a -PLUS mechanism used without p= (RFC 5802 §4)")
            }
            ScramError::NoChannelBindingData => {
                f.write_str("no channel binding data for a -PLUS mechanism on this connection")
            }
            // The other variants are self-describing rule names: in words, never Debug.
            other => f.write_str(&crate::human::describe(other)),
        }
    }
}

impl From<ScramError> for SaslError {
    fn from(e: ScramError) -> SaslError {
        SaslError::Scram(e)
    }
}

// ---------------------------------------------------------------------------------
// GS2 header and channel binding (RFC 5802 §6, §7)
// ---------------------------------------------------------------------------------

/// The GS2 channel-binding flag (RFC 5802 §7 `gs2-cbind-flag`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gs2Flag {
    /// `n`: the client does not support channel binding.
    NotSupported,
    /// `y`: the client supports it but thinks the server does not.
    SupportedButNotUsed,
    /// `p=<cb-name>`: the client binds to the channel with this type.
    Used(CbType),
}

/// RFC 5802 §7 `cb-name = 1*(ALPHA / DIGIT / "." / "-")`.
fn is_cb_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// RFC 5802 §5.1: "," and "=" in a saslname are sent as "=2C" and "=3D".
pub fn escape_saslname(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes [`escape_saslname`], rejecting what RFC 5802 §5.1 says the server "MUST fail".
pub(crate) fn unescape_saslname(value: &[u8]) -> Result<String, ScramError> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'=' => {
                // ABNF literals are case-insensitive (RFC 5234 §2.3).
                match value.get(i + 1..i + 3) {
                    Some(hex) if hex.eq_ignore_ascii_case(b"2C") => out.push(b','),
                    Some(hex) if hex.eq_ignore_ascii_case(b"3D") => out.push(b'='),
                    _ => return Err(ScramError::MalformedSaslname),
                }
                i += 3;
            }
            0 => return Err(ScramError::MalformedSaslname),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    if out.is_empty() {
        return Err(ScramError::MalformedSaslname);
    }
    String::from_utf8(out).map_err(|_| ScramError::MalformedSaslname)
}

// ---------------------------------------------------------------------------------
// SASLprep (RFC 4013)
// ---------------------------------------------------------------------------------

/// RFC 4013 SASLprep ([`super::keys::saslprep`], the `stringprep` crate), with the
/// failure named as SCRAM's rule.
pub fn saslprep(input: &str) -> Result<Cow<'_, str>, ScramError> {
    super::keys::saslprep(input).map_err(|_| ScramError::SaslPrepFailed)
}

fn prepare_username(name: &str) -> Result<String, ScramError> {
    let p = saslprep(name)?;
    if p.is_empty() {
        return Err(ScramError::SaslPrepFailed);
    }
    Ok(p.into_owned())
}

// ---------------------------------------------------------------------------------
// Attribute reading (RFC 5802 §7)
// ---------------------------------------------------------------------------------

/// Attributes RFC 5802 defines; anything else is an extension.
const DEFINED: &[u8] = b"acimnprsve";

/// `attr-val = ALPHA "=" value`, `value = 1*value-char` (no NUL; `,` was the split).
fn split_attr(part: &[u8]) -> Result<(u8, &[u8]), ScramError> {
    match part {
        [name, b'=', value @ ..]
            if name.is_ascii_alphabetic() && !value.is_empty() && !value.contains(&0) =>
        {
            Ok((*name, value))
        }
        _ => Err(ScramError::MalformedAttribute),
    }
}

/// Reads the comma-separated attributes of one message in their fixed order.
struct Reader<'a> {
    parts: Vec<&'a [u8]>,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(message: &'a [u8]) -> Reader<'a> {
        Reader {
            parts: message.split(|&b| b == b',').collect(),
            pos: 0,
        }
    }

    fn classify(expected: u8, found: u8) -> ScramError {
        if found == b'm' {
            ScramError::MandatoryExtension
        } else if DEFINED.contains(&found) {
            ScramError::AttributeOutOfOrder {
                expected: char::from(expected),
                found: char::from(found),
            }
        } else {
            ScramError::UnexpectedAttribute {
                expected: char::from(expected),
                found: char::from(found),
            }
        }
    }

    /// The value of the mandatory attribute `name`, which must come next.
    fn expect(&mut self, name: u8) -> Result<&'a [u8], ScramError> {
        let Some(part) = self.parts.get(self.pos) else {
            return Err(ScramError::AttributeMissing {
                expected: char::from(name),
            });
        };
        let (found, value) = split_attr(part)?;
        if found != name {
            return Err(Self::classify(name, found));
        }
        self.pos += 1;
        Ok(value)
    }

    /// Skips `["," extensions]`, stopping before an attribute named `stop`. Unknown
    /// extensions are ignored; `m` and attributes SCRAM defines are out of place there.
    fn extensions(&mut self, stop: Option<u8>) -> Result<(), ScramError> {
        while let Some(part) = self.parts.get(self.pos) {
            let (found, _) = split_attr(part)?;
            if Some(found) == stop {
                break;
            }
            if found == b'm' {
                return Err(ScramError::MandatoryExtension);
            }
            if DEFINED.contains(&found) {
                return Err(ScramError::MisplacedAttribute {
                    found: char::from(found),
                });
            }
            self.pos += 1;
        }
        Ok(())
    }

    fn at_end(&self) -> bool {
        self.pos >= self.parts.len()
    }
}

/// RFC 5802 §7 `printable = %x21-2B / %x2D-7E`, one or more.
fn is_printable(nonce: &[u8]) -> bool {
    !nonce.is_empty()
        && nonce
            .iter()
            .all(|&b| (0x21..=0x7E).contains(&b) && b != b',')
}

/// RFC 5802 §7 `posit-number = %x31-39 *DIGIT`, as a u32.
fn parse_iterations(value: &[u8]) -> Result<u32, ScramError> {
    let bad = ScramError::MalformedIterationCount;
    match value.first() {
        Some(b'1'..=b'9') => {}
        _ => return Err(bad),
    }
    let mut n: u32 = 0;
    for &d in value {
        if !d.is_ascii_digit() {
            return Err(bad);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u32::from(d - b'0')))
            .ok_or(ScramError::MalformedIterationCount)?;
    }
    Ok(n)
}

/// RFC 5802 §7 `gs2-cbind-flag` as sent. A `p=` name is checked for its form only:
/// whether the server knows it decides which error is due ([`ScramServer`]).
enum SentFlag<'a> {
    N,
    Y,
    P(&'a [u8]),
}

fn split_cbind_flag(message: &[u8]) -> Result<(SentFlag<'_>, &[u8]), ScramError> {
    match message {
        [b'n', b',', rest @ ..] => Ok((SentFlag::N, rest)),
        [b'y', b',', rest @ ..] => Ok((SentFlag::Y, rest)),
        [b'p', b'=', after @ ..] => {
            let end = after
                .iter()
                .position(|&b| b == b',')
                .ok_or(ScramError::MalformedGs2Header)?;
            let name = &after[..end];
            if !is_cb_name(name) {
                return Err(ScramError::MalformedGs2Header);
            }
            Ok((SentFlag::P(name), &after[end + 1..]))
        }
        _ => Err(ScramError::MalformedGs2Header),
    }
}

/// The rest of a client-first-message after its flag.
struct ClientFirst<'a> {
    authzid: Option<String>,
    /// Unescaped, not yet SASLprep'd.
    user: String,
    nonce: &'a [u8],
    /// The GS2 header's length: the bare message starts there.
    header_len: usize,
}

/// `[authzid] ","` then `client-first-message-bare = [reserved-mext ","] username ","
/// nonce ["," extensions]` (RFC 5802 §7); `rest` is what follows the flag's comma.
fn read_after_flag<'a>(message: &'a [u8], rest: &[u8]) -> Result<ClientFirst<'a>, ScramError> {
    let comma = rest
        .iter()
        .position(|&b| b == b',')
        .ok_or(ScramError::MalformedGs2Header)?;
    let authzid = match &rest[..comma] {
        [] => None,
        [b'a', b'=', name @ ..] => Some(unescape_saslname(name)?),
        _ => return Err(ScramError::MalformedGs2Header),
    };
    let header_len = message.len() - rest.len() + comma + 1;
    let mut reader = Reader::new(&message[header_len..]);
    let name = reader.expect(b'n')?;
    let nonce = reader.expect(b'r')?;
    reader.extensions(None)?;
    Ok(ClientFirst {
        authzid,
        user: unescape_saslname(name)?,
        nonce,
        header_len,
    })
}

/// The names a client-first-message carries: the GS2 authzid and the user name, both
/// unescaped (RFC 5802 §5.1), neither SASLprep'd. The message is read as the server
/// reads it, except that the channel-binding flag is not judged against an offer.
pub fn client_first_names(message: &[u8]) -> Result<(Option<String>, String), ScramError> {
    if message.len() > MAX_MESSAGE_LEN {
        return Err(ScramError::MessageTooLong);
    }
    let (_, rest) = split_cbind_flag(message)?;
    let first = read_after_flag(message, rest)?;
    Ok((first.authzid, first.user))
}

fn b64(value: &[u8]) -> Result<Vec<u8>, ScramError> {
    B64.decode(value).map_err(|_| ScramError::MalformedBase64)
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

// ---------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------

/// Where the server's StoredKey/ServerKey will come from at the proof step.
#[derive(Debug)]
enum ServerKeys {
    Stored {
        stored_key: Secret,
        server_key: Secret,
    },
    /// Derived from the plaintext password with the salt and count sent.
    Password(Secret),
    /// Unknown user: keys derived from a stand-in so the work matches `Password`.
    Unknown,
}

#[derive(Debug)]
struct Pending {
    /// The GS2 header, followed with -PLUS by the connection's binding data.
    cbind_input: Vec<u8>,
    client_first_bare: Vec<u8>,
    server_first: Vec<u8>,
    nonce: Vec<u8>,
    user: String,
    authzid: Option<String>,
    salt: Vec<u8>,
    iterations: u32,
    keys: ServerKeys,
}

#[derive(Debug)]
enum ServerState {
    Start,
    AwaitClientFinal(Box<Pending>),
    Done,
}

/// The server side of a SCRAM mechanism, -PLUS or not.
#[derive(Debug)]
pub struct ScramServer {
    hash: ScramHash,
    /// The -PLUS variant: `p=` is required and `c=` must carry the binding data.
    plus: bool,
    binding: ServerBinding,
    ctx: ServerContext,
    server_nonce: String,
    /// Keys the per-user salt of plaintext and unknown users.
    secret: Secret,
    state: ServerState,
}

impl ScramServer {
    /// A server for `hash`; its nonce part, and the key that derives salts for plaintext
    /// and unknown users, come from `rng`.
    pub fn new(hash: ScramHash, ctx: &ServerContext, rng: &mut dyn RandomSource) -> Self {
        let server_nonce = rng.nonce(NONCE_LEN);
        let mut secret = vec![0u8; 32];
        rng.fill(&mut secret);
        Self::with_nonce(hash, ctx, server_nonce, Secret::new(secret))
    }

    /// A server whose nonce and salt secret are given rather than drawn: for RFC
    /// vectors, whose nonces fall outside [`RandomSource::nonce`]'s alphabet.
    #[doc(hidden)]
    pub fn with_nonce(
        hash: ScramHash,
        ctx: &ServerContext,
        server_nonce: String,
        secret: Secret,
    ) -> Self {
        ScramServer {
            hash,
            plus: false,
            binding: ServerBinding::default(),
            ctx: ctx.clone(),
            server_nonce,
            secret,
            state: ServerState::Start,
        }
    }

    /// Makes this the `-PLUS` variant (`plus`) and tells it what the connection offers:
    /// the binding data of the types the server accepts, and whether -PLUS was
    /// advertised (which turns a client's `y` into a detected downgrade).
    pub fn with_binding(mut self, plus: bool, binding: ServerBinding) -> Self {
        self.plus = plus;
        self.binding = binding;
        self
    }

    /// RFC 5802 §6, the server's checks of the GS2 flag.
    fn check_flag(&self, flag: Gs2Flag) -> Result<(), ScramError> {
        match (flag, self.plus) {
            (Gs2Flag::Used(cb_type), true) => match self.binding.bindings.get(cb_type) {
                Some(_) => Ok(()),
                None => Err(ScramError::UnsupportedChannelBindingType),
            },
            (Gs2Flag::Used(_), false) => Err(ScramError::ChannelBindingNotSupported),
            (_, true) => Err(ScramError::PlusWithoutChannelBinding),
            (Gs2Flag::SupportedButNotUsed, false) if self.binding.plus_advertised => {
                Err(ScramError::ServerDoesSupportChannelBinding)
            }
            (Gs2Flag::SupportedButNotUsed | Gs2Flag::NotSupported, false) => Ok(()),
        }
    }

    fn derived_salt(&self, user: &str) -> Vec<u8> {
        let mut data = b"authspec scram salt\0".to_vec();
        data.extend_from_slice(user.as_bytes());
        let mut salt = ScramHash::Sha256.hmac(self.secret.expose(), &data);
        salt.truncate(SALT_LEN);
        salt
    }

    fn client_first(&self, message: &[u8]) -> Result<(Box<Pending>, Vec<u8>), SaslError> {
        if message.len() > MAX_MESSAGE_LEN {
            return Err(ScramError::MessageTooLong.into());
        }
        let (sent, rest) = split_cbind_flag(message)?;
        let flag = match sent {
            SentFlag::N => Gs2Flag::NotSupported,
            SentFlag::Y => Gs2Flag::SupportedButNotUsed,
            SentFlag::P(name) => match CbType::from_name(name) {
                Some(t) => Gs2Flag::Used(t),
                // A well-formed name authspec has never heard of.
                None if self.plus => {
                    return Err(ScramError::UnsupportedChannelBindingType.into());
                }
                None => return Err(ScramError::ChannelBindingNotSupported.into()),
            },
        };
        self.check_flag(flag)?;
        let ClientFirst {
            authzid,
            user,
            nonce: c_nonce,
            header_len,
        } = read_after_flag(message, rest)?;
        let gs2_header = message[..header_len].to_vec();
        let bare = &message[header_len..];
        let user = prepare_username(&user)?;
        if !is_printable(c_nonce) {
            return Err(ScramError::MalformedNonce.into());
        }

        let (salt, iterations, keys) = match lookup(&self.ctx, &user) {
            Some(StoredCredential::Scram {
                hash,
                iterations,
                salt,
                stored_key,
                server_key,
            }) if hash == self.hash => (
                salt,
                iterations,
                ServerKeys::Stored {
                    stored_key,
                    server_key,
                },
            ),
            Some(StoredCredential::Plain(password)) => (
                self.derived_salt(&user),
                DEFAULT_ITERATIONS,
                ServerKeys::Password(password),
            ),
            Some(other) => {
                return Err(SaslError::SchemeUnusable {
                    mechanism: mechanism_of(self.hash, self.plus),
                    scheme: other.scheme(),
                });
            }
            None => (
                self.derived_salt(&user),
                DEFAULT_ITERATIONS,
                ServerKeys::Unknown,
            ),
        };

        let mut nonce = c_nonce.to_vec();
        nonce.extend_from_slice(self.server_nonce.as_bytes());
        let mut server_first = b"r=".to_vec();
        server_first.extend_from_slice(&nonce);
        server_first.extend_from_slice(b",s=");
        server_first.extend_from_slice(B64.encode(&salt).as_bytes());
        server_first.extend_from_slice(format!(",i={iterations}").as_bytes());

        // RFC 5802 §7 `cbind-input = gs2-header [ cbind-data ]`: what `c=` must carry.
        let mut cbind_input = gs2_header;
        if let Gs2Flag::Used(cb_type) = flag {
            cbind_input.extend_from_slice(self.binding.bindings.get(cb_type).unwrap_or_default());
        }
        let pending = Box::new(Pending {
            cbind_input,
            client_first_bare: bare.to_vec(),
            server_first: server_first.clone(),
            nonce,
            user,
            authzid,
            salt,
            iterations,
            keys,
        });
        Ok((pending, server_first))
    }

    fn client_final(&self, p: &Pending, message: &[u8]) -> Result<ServerStep, SaslError> {
        if message.len() > MAX_MESSAGE_LEN {
            return Err(ScramError::MessageTooLong.into());
        }
        // client-final-message = channel-binding "," nonce ["," extensions] "," proof
        let mut reader = Reader::new(message);
        let cbind = reader.expect(b'c')?;
        let nonce = reader.expect(b'r')?;
        reader.extensions(Some(b'p'))?;
        let proof_start = reader.parts[..reader.pos]
            .iter()
            .map(|part| part.len() + 1)
            .sum::<usize>();
        let proof = reader.expect(b'p')?;
        if !reader.at_end() {
            return Err(ScramError::TrailingAttribute.into());
        }
        // RFC 5802 §5.1 `c`: for `n` and `y` the binding data is the GS2 header alone.
        // With -PLUS it is the header followed by the channel's binding data, compared
        // in constant time.
        if !super::secret::ct_eq(&b64(cbind)?, &p.cbind_input) {
            return Err(ScramError::ChannelBindingMismatch.into());
        }
        if nonce != p.nonce.as_slice() {
            return Err(ScramError::NonceMismatch.into());
        }
        let proof = b64(proof)?;
        if proof.len() != self.hash.output_len() {
            return Err(ScramError::MalformedProof.into());
        }
        let without_proof = &message[..proof_start.saturating_sub(1)];

        let (stored_key, server_key, known) = match &p.keys {
            ServerKeys::Stored {
                stored_key,
                server_key,
            } => (stored_key.clone(), server_key.clone(), true),
            ServerKeys::Password(password) => {
                let k = scram_keys(self.hash, password.expose(), &p.salt, p.iterations);
                (k.stored_key, k.server_key, true)
            }
            ServerKeys::Unknown => {
                let k = scram_keys(self.hash, b"unknown user", &p.salt, p.iterations);
                (k.stored_key, k.server_key, false)
            }
        };
        // AuthMessage = client-first-message-bare "," server-first-message ","
        //               client-final-message-without-proof   (RFC 5802 §3)
        let mut auth_message = p.client_first_bare.clone();
        auth_message.push(b',');
        auth_message.extend_from_slice(&p.server_first);
        auth_message.push(b',');
        auth_message.extend_from_slice(without_proof);

        let client_signature = self.hash.hmac(stored_key.expose(), &auth_message);
        let client_key = Secret::new(xor(&proof, &client_signature));
        let proof_ok = stored_key.ct_eq(&self.hash.h(client_key.expose()));
        if !(proof_ok & known) {
            return Err(SaslError::InvalidCredentials);
        }
        if let Some(z) = &p.authzid {
            if *z != p.user {
                return Err(SaslError::AuthzidNotPermitted);
            }
        }
        let server_signature = self.hash.hmac(server_key.expose(), &auth_message);
        let mut additional = b"v=".to_vec();
        additional.extend_from_slice(B64.encode(server_signature).as_bytes());
        Ok(ServerStep::Success {
            identity: Authenticated {
                authcid: p.user.clone(),
                authzid: p.authzid.clone(),
            },
            additional: Some(additional),
        })
    }
}

impl ServerMechanism for ScramServer {
    fn mechanism(&self) -> Mechanism {
        mechanism_of(self.hash, self.plus)
    }

    fn step(&mut self, input: Option<&[u8]>) -> ServerStep {
        match (std::mem::replace(&mut self.state, ServerState::Done), input) {
            // AUTH without an initial response: RFC 4422 §5, an empty challenge.
            (ServerState::Start, None) => {
                self.state = ServerState::Start;
                ServerStep::Challenge(Vec::new())
            }
            (ServerState::Start, Some(message)) => match self.client_first(message) {
                Ok((pending, challenge)) => {
                    self.state = ServerState::AwaitClientFinal(pending);
                    ServerStep::Challenge(challenge)
                }
                Err(e) => ServerStep::Failure(e),
            },
            (ServerState::AwaitClientFinal(pending), input) => {
                match self.client_final(&pending, input.unwrap_or_default()) {
                    Ok(step) => step,
                    Err(e) => ServerStep::Failure(e),
                }
            }
            (ServerState::Done, _) => ServerStep::Failure(SaslError::ExchangeOver),
        }
    }
}

// ---------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------

#[derive(Debug)]
enum ClientState {
    Start,
    SentFirst { client_first_bare: Vec<u8> },
    AwaitFinal { server_signature: Secret },
    Verified,
    Failed,
}

/// The client side of a SCRAM mechanism. Without -PLUS it sends gs2 flag `y` when it
/// could bind (TLS with binding data) and `n` otherwise; with -PLUS, `p=<type>`.
#[derive(Debug)]
pub struct ScramClient {
    hash: ScramHash,
    plus: bool,
    binding: ClientBinding,
    authcid: String,
    password: Secret,
    authzid: Option<String>,
    client_nonce: String,
    max_iterations: u32,
    /// See [`ScramClient::with_c_header`].
    c_header: Option<Vec<u8>>,
    state: ClientState,
}

impl ScramClient {
    /// A client for `hash` whose `c-nonce` is drawn from `rng`.
    pub fn new(hash: ScramHash, creds: &ClientCredentials, rng: &mut dyn RandomSource) -> Self {
        let nonce = rng.nonce(NONCE_LEN);
        Self::with_nonce(hash, creds, nonce)
    }

    /// A client whose nonce is given rather than drawn: for RFC vectors.
    #[doc(hidden)]
    pub fn with_nonce(hash: ScramHash, creds: &ClientCredentials, client_nonce: String) -> Self {
        ScramClient {
            hash,
            plus: false,
            binding: ClientBinding::default(),
            authcid: creds.authcid.clone(),
            password: creds.password.clone(),
            authzid: creds.authzid.clone(),
            client_nonce,
            max_iterations: MAX_CLIENT_ITERATIONS,
            c_header: None,
            state: ClientState::Start,
        }
    }

    /// Lowers (or raises) the iteration count this client will compute.
    pub fn max_iterations(mut self, max: u32) -> Self {
        self.max_iterations = max;
        self
    }

    /// Makes this the `-PLUS` variant (`plus`) and tells it what the connection can
    /// bind to.
    pub fn with_binding(mut self, plus: bool, binding: ClientBinding) -> Self {
        self.plus = plus;
        self.binding = binding;
        self
    }

    /// RFC 5802 §6, the client's choice of flag.
    fn flag(&self) -> Result<Gs2Flag, ScramError> {
        match (&self.binding.binding, self.plus) {
            (Some((cb_type, _)), true) => Ok(Gs2Flag::Used(*cb_type)),
            (None, true) => Err(ScramError::NoChannelBindingData),
            (_, false) if self.binding.supported => Ok(Gs2Flag::SupportedButNotUsed),
            (_, false) => Ok(Gs2Flag::NotSupported),
        }
    }

    fn gs2_header(&self) -> Result<String, ScramError> {
        let authzid = match &self.authzid {
            Some(z) => format!("a={}", escape_saslname(&prepare_username(z)?)),
            None => String::new(),
        };
        let flag = match self.flag()? {
            Gs2Flag::NotSupported => Cow::Borrowed("n"),
            Gs2Flag::SupportedButNotUsed => Cow::Borrowed("y"),
            Gs2Flag::Used(t) => Cow::Owned(format!("p={}", t.name())),
        };
        Ok(format!("{flag},{authzid},"))
    }

    /// Puts `header` into `c=` in place of the GS2 header sent in the client-first
    /// message: a deliberately wrong client, for scenarios that check that a server
    /// compares the two (RFC 5802 §5.1 `c`). The proof is computed over what is sent.
    #[doc(hidden)]
    pub fn with_c_header(mut self, header: Vec<u8>) -> Self {
        self.c_header = Some(header);
        self
    }

    /// RFC 5802 §7 `cbind-input = gs2-header [ cbind-data ]`.
    fn cbind_input(&self) -> Result<Vec<u8>, ScramError> {
        let mut input = match &self.c_header {
            Some(h) => h.clone(),
            None => self.gs2_header()?.into_bytes(),
        };
        if self.plus {
            if let Some((_, data)) = &self.binding.binding {
                input.extend_from_slice(data);
            }
        }
        Ok(input)
    }

    fn client_first(&mut self) -> Result<Vec<u8>, SaslError> {
        let user = prepare_username(&self.authcid)?;
        let bare = format!("n={},r={}", escape_saslname(&user), self.client_nonce);
        let mut message = self.gs2_header()?.into_bytes();
        message.extend_from_slice(bare.as_bytes());
        self.state = ClientState::SentFirst {
            client_first_bare: bare.into_bytes(),
        };
        Ok(message)
    }

    fn client_final(
        &self,
        client_first_bare: &[u8],
        server_first: &[u8],
    ) -> Result<(Vec<u8>, Secret), SaslError> {
        if server_first.len() > MAX_MESSAGE_LEN {
            return Err(ScramError::MessageTooLong.into());
        }
        // server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count
        //                        ["," extensions]
        let mut reader = Reader::new(server_first);
        let nonce = reader.expect(b'r')?;
        let salt = reader.expect(b's')?;
        let iterations = reader.expect(b'i')?;
        reader.extensions(None)?;
        if !is_printable(nonce) {
            return Err(ScramError::MalformedNonce.into());
        }
        let ours = self.client_nonce.as_bytes();
        if nonce.len() <= ours.len() || !nonce.starts_with(ours) {
            return Err(ScramError::ServerNonceNotExtended.into());
        }
        let salt = b64(salt)?;
        if salt.is_empty() {
            return Err(ScramError::EmptySalt.into());
        }
        let iterations = parse_iterations(iterations)?;
        if iterations > self.max_iterations {
            return Err(ScramError::IterationCountTooHigh {
                max: self.max_iterations,
            }
            .into());
        }

        let mut without_proof = b"c=".to_vec();
        without_proof.extend_from_slice(B64.encode(self.cbind_input()?).as_bytes());
        without_proof.extend_from_slice(b",r=");
        without_proof.extend_from_slice(nonce);

        let mut auth_message = client_first_bare.to_vec();
        auth_message.push(b',');
        auth_message.extend_from_slice(server_first);
        auth_message.push(b',');
        auth_message.extend_from_slice(&without_proof);

        let keys = scram_keys(self.hash, self.password.expose(), &salt, iterations);
        let client_signature = self.hash.hmac(keys.stored_key.expose(), &auth_message);
        let proof = xor(keys.client_key.expose(), &client_signature);
        let server_signature = Secret::new(self.hash.hmac(keys.server_key.expose(), &auth_message));

        let mut message = without_proof;
        message.extend_from_slice(b",p=");
        message.extend_from_slice(B64.encode(proof).as_bytes());
        Ok((message, server_signature))
    }

    /// server-final-message = (server-error / verifier) ["," extensions] (RFC 5802 §7).
    fn check_server_final(&self, expected: &Secret, message: &[u8]) -> Result<(), SaslError> {
        let mechanism = mechanism_of(self.hash, self.plus);
        if message.len() > MAX_MESSAGE_LEN {
            return Err(ScramError::MessageTooLong.into());
        }
        let mut reader = Reader::new(message);
        let Some(first) = reader.parts.first() else {
            return Err(ScramError::AttributeMissing { expected: 'v' }.into());
        };
        if let Ok((b'e', _)) = split_attr(first) {
            return Err(SaslError::ServerReportedError(mechanism));
        }
        let verifier = reader.expect(b'v')?;
        reader.extensions(None)?;
        let signature = b64(verifier)?;
        if expected.ct_eq(&signature) {
            Ok(())
        } else {
            Err(SaslError::ServerProofMismatch(mechanism))
        }
    }
}

impl ClientMechanism for ScramClient {
    fn mechanism(&self) -> Mechanism {
        mechanism_of(self.hash, self.plus)
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        match self.state {
            ClientState::Start => self.client_first().map(Some),
            _ => Err(SaslError::ExchangeOver),
        }
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        match std::mem::replace(&mut self.state, ClientState::Failed) {
            // No initial response was sent: the server's empty challenge asks for it.
            ClientState::Start if challenge.is_empty() => self.client_first(),
            ClientState::Start => Err(ScramError::NonEmptyInitialChallenge.into()),
            ClientState::SentFirst { client_first_bare } => {
                let (message, server_signature) =
                    self.client_final(&client_first_bare, challenge)?;
                self.state = ClientState::AwaitFinal { server_signature };
                Ok(message)
            }
            // Postfix sends v= in a 334 and waits for an empty line (peers/README).
            ClientState::AwaitFinal { server_signature } => {
                self.check_server_final(&server_signature, challenge)?;
                self.state = ClientState::Verified;
                Ok(Vec::new())
            }
            ClientState::Verified | ClientState::Failed => Err(SaslError::ExchangeOver),
        }
    }

    fn verify_success(&mut self, additional: Option<&[u8]>) -> Result<(), SaslError> {
        match (
            std::mem::replace(&mut self.state, ClientState::Failed),
            additional,
        ) {
            (ClientState::AwaitFinal { server_signature }, Some(data)) => {
                self.check_server_final(&server_signature, data)?;
                self.state = ClientState::Verified;
                Ok(())
            }
            (ClientState::Verified, None) => {
                self.state = ClientState::Verified;
                Ok(())
            }
            // RFC 5802 §5: the server's proof is the mutual authentication; a success
            // without a verified `v=` (or with extra data after it) is not accepted.
            _ => Err(SaslError::ServerProofMismatch(mechanism_of(
                self.hash, self.plus,
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_display_in_words_not_debug() {
        for e in [
            ScramError::AttributeOutOfOrder {
                expected: 'r',
                found: 's',
            },
            ScramError::AttributeMissing { expected: 'p' },
            ScramError::IterationCountTooHigh { max: 100_000 },
            ScramError::NonceMismatch,
        ] {
            let text = e.to_string();
            assert!(
                !text.contains('{') && !text.contains("Scram") && !text.contains("Nonce"),
                "{text}"
            );
        }
        assert_eq!(ScramError::NonceMismatch.to_string(), "nonce mismatch");
    }

    #[test]
    fn saslname_escaping_round_trips() {
        assert_eq!(escape_saslname("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(unescape_saslname(b"a=2Cb=3Dc").as_deref(), Ok("a,b=c"));
        assert_eq!(
            unescape_saslname(b"a=2"),
            Err(ScramError::MalformedSaslname)
        );
        assert_eq!(
            unescape_saslname(b"a=41"),
            Err(ScramError::MalformedSaslname)
        );
    }

    #[test]
    fn saslprep_maps_and_prohibits() {
        assert_eq!(saslprep("I\u{00AD}X").as_deref(), Ok("IX"));
        assert_eq!(saslprep("a\u{00A0}b").as_deref(), Ok("a b"));
        assert_eq!(saslprep("user").as_deref(), Ok("user"));
        assert_eq!(saslprep("\u{0007}"), Err(ScramError::SaslPrepFailed));
        assert_eq!(saslprep("a\u{E000}"), Err(ScramError::SaslPrepFailed));
        assert_eq!(saslprep("ü€").as_deref(), Ok("ü€"));
    }

    #[test]
    fn iteration_count_grammar() {
        assert_eq!(parse_iterations(b"4096"), Ok(4096));
        assert_eq!(
            parse_iterations(b"0"),
            Err(ScramError::MalformedIterationCount)
        );
        assert_eq!(
            parse_iterations(b"04096"),
            Err(ScramError::MalformedIterationCount)
        );
        assert_eq!(
            parse_iterations(b"99999999999"),
            Err(ScramError::MalformedIterationCount)
        );
    }
}
