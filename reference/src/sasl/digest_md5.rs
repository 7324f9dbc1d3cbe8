//! DIGEST-MD5 (RFC 2831), initial authentication only, `qop=auth` only.
//!
//! RFC 6331 moved DIGEST-MD5 to Historic, but Postfix with Cyrus or Dovecot still
//! offers it, so the reference speaks it and judges peers by RFC 2831. Subsequent
//! authentication (§2.2) and the security layers (`auth-int`, `auth-conf`) are not
//! offered: every exchange uses a fresh nonce, so a nonce count other than 1 is a replay.
//!
//! ```text
//!   server                                   client
//!   Start --step(None)--> challenge  ----->  AwaitChallenge --step--> response
//!   Challenged <------------------------------------------------------'
//!   Challenged --step(Some(response))--> Success{rspauth=…} ---> AwaitRspauth
//!                                                                  --step(rspauth)--> ""
//!   Done                                                           Verified
//! ```
//!
//! The directive list grammar (§7.1, the `#rule` of RFC 2616 §2.1) is parsed by
//! [`parse_directives`]; quoted and token values are both accepted for every
//! directive because deployed servers differ (Dovecot quotes `charset` and `algorithm`,
//! Cyrus does not), and RFC 7230 §3.2.6 treats the two forms as equivalent.

use super::credentials::StoredCredential;
use super::secret::ct_eq;
use super::{
    Authenticated, ClientCredentials, ClientMechanism, Mechanism, RandomSource, SaslError, Secret,
    ServerContext, ServerMechanism, ServerStep,
};
use md5::{Digest, Md5};
use std::borrow::Cow;

/// RFC 2831 §2.1.1: "The size of a digest-challenge MUST be less than 2048 bytes."
pub(crate) const MAX_CHALLENGE_LEN: usize = 2048;
/// RFC 2831 §2.1.2: "The size of a digest-response MUST be less than 4096 bytes."
pub(crate) const MAX_RESPONSE_LEN: usize = 4096;
/// The `rspauth` message (RFC 2831 §2.1.3) is one 32-hex-digit directive.
const MAX_RSPAUTH_LEN: usize = 256;
/// Length of the nonce and cnonce we draw. RFC 2831 §2.1.1 asks for at least 64 bits
/// of entropy; 32 base64 characters carry 192.
const NONCE_LEN: usize = 32;

/// Rules of RFC 2831 that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DigestMd5Error {
    /// RFC 2831 §2.1.1: "The size of a digest-challenge MUST be less than 2048 bytes."
    ChallengeTooLong,
    /// RFC 2831 §2.1.2: "The size of a digest-response MUST be less than 4096 bytes."
    ResponseTooLong,
    /// The message is not a directive list: RFC 2831 §7.1 (`#rule`, `token`,
    /// `quoted-string`, `quoted-pair`) and §2.1.1/§2.1.2 (`name "=" value`).
    MalformedDirectiveList,
    /// A directive that RFC 2831 §2.1.1/§2.1.2 says "MUST appear exactly once" or "may
    /// appear at most once" appeared again.
    DirectiveRepeated(&'static str),
    /// A directive that RFC 2831 §2.1.1/§2.1.2 calls "required" is absent.
    DirectiveMissing(&'static str),
    /// RFC 2831 §2.1.2 `nonce`: the client must echo "the server-specified data string
    /// received in the preceding digest-challenge".
    NonceMismatch,
    /// RFC 2831 §2.1.2 `nc-value = 8LHEX`.
    MalformedNonceCount,
    /// Bad nonce count. RFC 2831 §2.1.2: the first response to a nonce sends
    /// `nc=00000001`, and "if the same nc-value is seen twice, then the request is a
    /// replay"; this server never accepts subsequent authentication (§2.2), so any other
    /// count replays or continues an exchange it did not start.
    BadNonceCount,
    /// RFC 2831 §2.1.2 `qop`: "The value MUST be one of the alternatives the server
    /// indicated it supports" (this server offers only `auth`).
    QopNotOffered,
    /// RFC 2831 §2.1.2 `digest-uri-value = serv-type "/" host [ "/" serv-name ]`.
    MalformedDigestUri,
    /// RFC 2831 §2.1.2 `serv-type` is the SASL service name, which RFC 4954 §4 makes
    /// `smtp`.
    DigestUriServTypeNotSmtp,
    /// RFC 2831 §2.1.2 `host`: "Servers SHOULD check that the supplied value is correct."
    DigestUriHostMismatch,
    /// RFC 2831 §2.1.2 `serv-name` names a replicated service; for SMTP that is the mail
    /// domain an MX lookup started from, so it must be this server's realm or host name.
    DigestUriServNameMismatch,
    /// RFC 2831 §2.1.2 `realm`: "required if the server provided any realms in the
    /// digest-challenge".
    RealmMissing,
    /// RFC 2831 §2.1.2 `realm`: "its value SHOULD be one of those realms" offered.
    RealmNotOffered,
    /// RFC 2831 §2.1.1/§2.1.2: `charset = "charset" "=" "utf-8"`, no other value.
    CharsetNotUtf8,
    /// RFC 2831 §2.1.2 `charset`: with `charset=utf-8` the username (and the authzid,
    /// always) is UTF-8; this value is not.
    ValueNotUtf8(&'static str),
    /// RFC 2831 §2.1.2 `response-value = 32LHEX`.
    MalformedResponseValue,
    /// RFC 2831 §2.1.1 `algorithm = "algorithm" "=" "md5-sess"`: no other value.
    AlgorithmNotMd5Sess,
    /// RFC 2831 §2.1.1 `qop-options`: the server offered no `auth`, the only quality of
    /// protection this client performs.
    QopAuthNotOffered,
    /// RFC 2831 §2.1.2 `charset`: without `charset=utf-8` from the server, user name and
    /// password "must be encoded in ISO 8859-1", and these are not representable in it.
    CredentialsNotLatin1,
    /// RFC 2831 §2.1.3 `response-auth = "rspauth" "=" response-value`: the server's last
    /// challenge is not that.
    MalformedRspauth,
}

impl From<DigestMd5Error> for SaslError {
    fn from(e: DigestMd5Error) -> SaslError {
        SaslError::DigestMd5(e)
    }
}

// ---------------------------------------------------------------------------------
// Directive lists (RFC 2831 §7.1)
// ---------------------------------------------------------------------------------

/// One `name=value` element of a directive list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// The directive name as sent; names compare case-insensitively (RFC 2616 §3.6).
    pub name: String,
    /// The value with quoting undone (octets: ISO 8859-1 or UTF-8 depending on
    /// `charset`).
    pub value: Vec<u8>,
    /// Whether it was a `quoted-string` rather than a `token`.
    pub quoted: bool,
}

/// RFC 2616 §2.2 `separators`.
fn is_separator(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')'
            | b'<'
            | b'>'
            | b'@'
            | b','
            | b';'
            | b':'
            | b'\\'
            | b'"'
            | b'/'
            | b'['
            | b']'
            | b'?'
            | b'='
            | b'{'
            | b'}'
            | b' '
            | b'\t'
    )
}

/// RFC 2616 §2.2 `token = 1*<any CHAR except CTLs or separators>`.
fn is_token_char(b: u8) -> bool {
    b.is_ascii() && !b.is_ascii_control() && !is_separator(b)
}

/// Skips `LWS = [CRLF] 1*( SP | HT )`, any number of times.
fn skip_lws(input: &[u8], mut pos: usize) -> usize {
    loop {
        match input.get(pos..) {
            Some([b' ' | b'\t', ..]) => pos += 1,
            Some([b'\r', b'\n', b' ' | b'\t', ..]) => pos += 3,
            _ => return pos,
        }
    }
}

/// Parses a whole directive list: `1#( name "=" value )` with `#rule`'s null elements
/// and implied LWS. Trailing data after the last element is an error, never ignored.
pub fn parse_directives(input: &[u8]) -> Result<Vec<Directive>, DigestMd5Error> {
    let malformed = DigestMd5Error::MalformedDirectiveList;
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        pos = skip_lws(input, pos);
        if pos >= input.len() {
            break;
        }
        if input[pos] == b',' {
            // RFC 2616 §2.1 `#rule`: "null elements are allowed".
            pos += 1;
            continue;
        }
        let start = pos;
        while pos < input.len() && is_token_char(input[pos]) {
            pos += 1;
        }
        if pos == start {
            return Err(malformed);
        }
        // Tokens are ASCII, so this never fails.
        let name = String::from_utf8_lossy(&input[start..pos]).into_owned();
        pos = skip_lws(input, pos);
        if input.get(pos) != Some(&b'=') {
            return Err(malformed);
        }
        pos = skip_lws(input, pos + 1);
        let (value, quoted) = if input.get(pos) == Some(&b'"') {
            pos += 1;
            let mut value = Vec::new();
            loop {
                match input.get(pos) {
                    None => return Err(malformed),
                    Some(b'"') => {
                        pos += 1;
                        break;
                    }
                    // `quoted-pair = "\" CHAR`, CHAR being US-ASCII.
                    Some(b'\\') => match input.get(pos + 1) {
                        Some(&c) if c.is_ascii() => {
                            value.push(c);
                            pos += 2;
                        }
                        _ => return Err(malformed),
                    },
                    // `qdtext`: TEXT except `"`; TEXT excludes CTLs but includes LWS.
                    Some(b'\r') => {
                        if let Some([b'\n', c @ (b' ' | b'\t')]) = input.get(pos + 1..pos + 3) {
                            value.extend_from_slice(&[b'\r', b'\n', *c]);
                            pos += 3;
                        } else {
                            return Err(malformed);
                        }
                    }
                    Some(&c) if c == b'\t' || !(c.is_ascii_control()) => {
                        value.push(c);
                        pos += 1;
                    }
                    Some(_) => return Err(malformed),
                }
            }
            (value, true)
        } else {
            let vstart = pos;
            while pos < input.len() && is_token_char(input[pos]) {
                pos += 1;
            }
            if pos == vstart {
                return Err(malformed);
            }
            (input[vstart..pos].to_vec(), false)
        };
        out.push(Directive {
            name,
            value,
            quoted,
        });
        pos = skip_lws(input, pos);
        match input.get(pos) {
            None => break,
            Some(b',') => pos += 1,
            Some(_) => return Err(malformed),
        }
    }
    if out.is_empty() {
        // `1#` needs at least one element.
        return Err(malformed);
    }
    Ok(out)
}

/// Writes a directive list that [`parse_directives`] reads back unchanged. A value that
/// was a token but cannot be one (empty, or with separators) is quoted.
pub fn format_directives(directives: &[Directive]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, d) in directives.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_directive(&mut out, &d.name, &d.value, d.quoted);
    }
    out
}

fn push_directive(out: &mut Vec<u8>, name: &str, value: &[u8], quoted: bool) {
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    let as_token = !quoted && !value.is_empty() && value.iter().all(|&b| is_token_char(b));
    if as_token {
        out.extend_from_slice(value);
    } else {
        out.push(b'"');
        for &b in value {
            // `quoted-pair` also carries CTLs, which `qdtext` may not hold bare.
            if b == b'"' || b == b'\\' || (b.is_ascii_control() && b != b'\t') {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    }
}

/// The directives this mechanism knows, with how often each may appear, so one
/// place enforces RFC 2831's "at most once" / "exactly once" rules.
struct Known<'a> {
    list: &'a [Directive],
}

impl<'a> Known<'a> {
    /// The single value of `name`, if present; repeated → error.
    fn once(&self, name: &'static str) -> Result<Option<&'a Directive>, DigestMd5Error> {
        let mut found = None;
        for d in self.list {
            if d.name.eq_ignore_ascii_case(name) {
                if found.is_some() {
                    return Err(DigestMd5Error::DirectiveRepeated(name));
                }
                found = Some(d);
            }
        }
        Ok(found)
    }

    fn required(&self, name: &'static str) -> Result<&'a Directive, DigestMd5Error> {
        self.once(name)?
            .ok_or(DigestMd5Error::DirectiveMissing(name))
    }

    fn all(&self, name: &'static str) -> impl Iterator<Item = &'a Directive> + use<'a> {
        self.list
            .iter()
            .filter(move |d| d.name.eq_ignore_ascii_case(name))
    }
}

// ---------------------------------------------------------------------------------
// The computation (RFC 2831 §2.1.2.1, §2.1.3)
// ---------------------------------------------------------------------------------

/// The inputs of the response computation, already in the octets that are hashed
/// (user name, realm and password converted per §2.1.2.1, see `hash_form`).
#[derive(Clone, Copy)]
pub struct DigestParams<'a> {
    /// `username-value`, in the hashed form.
    pub username: &'a [u8],
    /// `realm-value`, in the hashed form (possibly empty).
    pub realm: &'a [u8],
    /// The password, in the hashed form.
    pub password: &'a [u8],
    /// The server's `nonce`.
    pub nonce: &'a [u8],
    /// The client's `cnonce`.
    pub cnonce: &'a [u8],
    /// `nc-value`: eight hex digits, `00000001` on a first authentication.
    pub nc: &'a [u8],
    /// `qop-value` (`auth`; RFC 2831 §2.1.2.1 A2 depends on it).
    pub qop: &'a [u8],
    /// `digest-uri-value`, such as `smtp/mail.example.com`.
    pub digest_uri: &'a [u8],
    /// `authzid-value`, when the client sent one (then it enters A1).
    pub authzid: Option<&'a [u8]>,
}

impl std::fmt::Debug for DigestParams<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestParams { .. }")
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// `HEX(H(A1))`, RFC 2831 §2.1.2.1:
/// `A1 = { H( { username-value, ":", realm-value, ":", passwd } ), ":", nonce-value,
/// ":", cnonce-value [, ":", authzid-value] }`.
fn hex_ha1(p: &DigestParams<'_>) -> Secret {
    let mut inner = Md5::new();
    inner.update(p.username);
    inner.update(b":");
    inner.update(p.realm);
    inner.update(b":");
    inner.update(p.password);
    let inner = inner.finalize();
    let mut a1 = Md5::new();
    a1.update(inner);
    a1.update(b":");
    a1.update(p.nonce);
    a1.update(b":");
    a1.update(p.cnonce);
    if let Some(authzid) = p.authzid {
        a1.update(b":");
        a1.update(authzid);
    }
    Secret::new(hex(&a1.finalize()).into_bytes())
}

/// `HEX(KD(HEX(H(A1)), nonce ":" nc ":" cnonce ":" qop ":" HEX(H(A2))))` for the given
/// A2 prefix. Only `qop=auth` is computed, so A2 never carries the 32 zeros.
fn kd(p: &DigestParams<'_>, a2_prefix: &[u8]) -> String {
    let mut a2 = Md5::new();
    a2.update(a2_prefix);
    a2.update(b":");
    a2.update(p.digest_uri);
    let ha2 = hex(&a2.finalize());
    let mut kd = Md5::new();
    kd.update(hex_ha1(p).expose());
    kd.update(b":");
    kd.update(p.nonce);
    kd.update(b":");
    kd.update(p.nc);
    kd.update(b":");
    kd.update(p.cnonce);
    kd.update(b":");
    kd.update(p.qop);
    kd.update(b":");
    kd.update(ha2.as_bytes());
    hex(&kd.finalize())
}

/// The client's `response-value` (RFC 2831 §2.1.2.1), with
/// `A2 = { "AUTHENTICATE:", digest-uri-value }`.
pub fn response_value(p: &DigestParams<'_>) -> String {
    kd(p, b"AUTHENTICATE")
}

/// The server's `rspauth` value (RFC 2831 §2.1.3), with `A2 = { ":", digest-uri-value }`.
pub fn rspauth_value(p: &DigestParams<'_>) -> String {
    kd(p, b"")
}

/// The octets RFC 2831 §2.1.2.1 hashes for a UTF-8 user name, realm or password: "If
/// "charset=UTF-8" is present, and all the characters of either "username-value" or
/// "passwd" are in the ISO 8859-1 character set, then it must be converted to ISO
/// 8859-1 before being hashed". Anything else (not UTF-8, or outside 8859-1) is hashed
/// as it is.
pub(crate) fn hash_form(utf8: &[u8]) -> Cow<'_, [u8]> {
    match std::str::from_utf8(utf8) {
        Ok(s) if !s.is_ascii() => match to_latin1(s) {
            Some(l) => Cow::Owned(l),
            None => Cow::Borrowed(utf8),
        },
        _ => Cow::Borrowed(utf8),
    }
}

fn to_latin1(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

fn from_latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

// ---------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Start,
    Challenged,
    Done,
}

/// The server side: one challenge, one response, then success with `rspauth`.
#[derive(Debug)]
pub struct DigestMd5Server {
    ctx: ServerContext,
    realm: String,
    nonce: String,
    state: ServerState,
}

impl DigestMd5Server {
    /// A server whose nonce is drawn from `rng` (RFC 2831 §2.1.1).
    pub fn new(ctx: &ServerContext, rng: &mut dyn RandomSource) -> Self {
        let nonce = rng.nonce(NONCE_LEN);
        Self::with_nonce(ctx, nonce)
    }

    /// A server whose nonce is given rather than drawn: for test vectors only.
    #[doc(hidden)]
    pub fn with_nonce(ctx: &ServerContext, nonce: String) -> Self {
        let realm = ctx.realm.clone().unwrap_or_else(|| ctx.hostname.clone());
        DigestMd5Server {
            ctx: ctx.clone(),
            realm,
            nonce,
            state: ServerState::Start,
        }
    }

    /// RFC 2831 §2.1.1 digest-challenge, in Cyrus's layout but with realm first.
    fn challenge(&self) -> Vec<u8> {
        let mut out = Vec::new();
        push_directive(&mut out, "realm", self.realm.as_bytes(), true);
        out.push(b',');
        push_directive(&mut out, "nonce", self.nonce.as_bytes(), true);
        out.extend_from_slice(b",qop=\"auth\",charset=utf-8,algorithm=md5-sess");
        out
    }

    fn verify(&self, input: &[u8]) -> Result<ServerStep, SaslError> {
        if input.len() >= MAX_RESPONSE_LEN {
            return Err(DigestMd5Error::ResponseTooLong.into());
        }
        let list = parse_directives(input)?;
        let known = Known { list: &list };
        // Directives of §2.1.2 that may appear at most once; checked before any is used
        // so the error is the same whatever order they come in.
        for name in [
            "username",
            "realm",
            "nonce",
            "cnonce",
            "nc",
            "qop",
            "digest-uri",
            "response",
            "maxbuf",
            "charset",
            "cipher",
            "authzid",
        ] {
            known.once(name)?;
        }
        let utf8 = match known.once("charset")? {
            Some(d) if d.value.eq_ignore_ascii_case(b"utf-8") => true,
            Some(_) => return Err(DigestMd5Error::CharsetNotUtf8.into()),
            None => false,
        };
        let username = known.required("username")?;
        let nonce = known.required("nonce")?;
        let cnonce = known.required("cnonce")?;
        let nc = known.required("nc")?;
        let digest_uri = known.required("digest-uri")?;
        let response = known.required("response")?;

        if nonce.value != self.nonce.as_bytes() {
            return Err(DigestMd5Error::NonceMismatch.into());
        }
        if nc.value.len() != 8 || !nc.value.iter().all(u8::is_ascii_hexdigit) {
            return Err(DigestMd5Error::MalformedNonceCount.into());
        }
        if nc.value != b"00000001" {
            return Err(DigestMd5Error::BadNonceCount.into());
        }
        // §2.1.2 qop: "If not present, it defaults to "auth"."
        let qop: &[u8] = match known.once("qop")? {
            Some(d) if d.value.eq_ignore_ascii_case(b"auth") => &d.value,
            Some(_) => return Err(DigestMd5Error::QopNotOffered.into()),
            None => b"auth",
        };
        self.check_digest_uri(&digest_uri.value)?;
        let realm = match known.once("realm")? {
            Some(d) => d,
            None => return Err(DigestMd5Error::RealmMissing.into()),
        };
        // §2.1.2.1: the realm is hashed in the same form as the user name.
        let realm_hashed: Cow<'_, [u8]> = if utf8 {
            hash_form(&realm.value)
        } else {
            Cow::Borrowed(&realm.value)
        };
        if !realm_hashed.eq_ignore_ascii_case(&hash_form(self.realm.as_bytes())) {
            return Err(DigestMd5Error::RealmNotOffered.into());
        }
        if response.value.len() != 32 || !response.value.iter().all(u8::is_ascii_hexdigit) {
            return Err(DigestMd5Error::MalformedResponseValue.into());
        }
        // §2.1.2 charset: with it the user name is UTF-8, without it ISO 8859-1.
        let user = if utf8 {
            String::from_utf8(username.value.clone())
                .map_err(|_| DigestMd5Error::ValueNotUtf8("username"))?
        } else {
            from_latin1(&username.value)
        };
        let user_hashed: Cow<'_, [u8]> = if utf8 {
            hash_form(&username.value)
        } else {
            Cow::Borrowed(&username.value)
        };
        // RFC 2831 §2.1.2 authzid: "encoded in UTF-8" whatever the charset.
        let authzid = match known.once("authzid")? {
            Some(d) => Some(
                String::from_utf8(d.value.clone())
                    .map_err(|_| DigestMd5Error::ValueNotUtf8("authzid"))?,
            ),
            None => None,
        };

        let (password, known_user) = match super::credentials::lookup_user(&self.ctx, &user) {
            Some(StoredCredential::Plain(pw)) => (pw, true),
            Some(other) => {
                return Err(SaslError::SchemeUnusable {
                    mechanism: Mechanism::DigestMd5,
                    scheme: other.scheme(),
                });
            }
            // The same computation on a stand-in password, so that an unknown user
            // costs what a wrong password costs (RFC 4954 §6 asks not to tell them apart).
            None => (Secret::new(vec![0u8; 16]), false),
        };
        let password_hashed = hash_form(password.expose());
        let params = DigestParams {
            username: &user_hashed,
            realm: &realm_hashed,
            password: &password_hashed,
            nonce: &nonce.value,
            cnonce: &cnonce.value,
            nc: &nc.value,
            qop,
            digest_uri: &digest_uri.value,
            authzid: authzid.as_deref().map(str::as_bytes),
        };
        let expected = response_value(&params);
        let given = response.value.to_ascii_lowercase();
        let proof_ok = ct_eq(expected.as_bytes(), &given);
        if !(proof_ok & known_user) {
            return Err(SaslError::InvalidCredentials);
        }
        // RFC 4616 §2 semantics: a user may act only as itself.
        if let Some(z) = &authzid {
            if *z != user {
                return Err(SaslError::AuthzidNotPermitted);
            }
        }
        let rspauth = rspauth_value(&params);
        Ok(ServerStep::Success {
            identity: Authenticated {
                authcid: user,
                authzid,
            },
            additional: Some(format!("rspauth={rspauth}").into_bytes()),
        })
    }

    /// RFC 2831 §2.1.2 `digest-uri-value = serv-type "/" host [ "/" serv-name ]`.
    fn check_digest_uri(&self, uri: &[u8]) -> Result<(), DigestMd5Error> {
        let mut parts = uri.split(|&b| b == b'/');
        let (Some(serv_type), Some(host)) = (parts.next(), parts.next()) else {
            return Err(DigestMd5Error::MalformedDigestUri);
        };
        let serv_name = parts.next();
        if parts.next().is_some() || host.is_empty() || serv_name.is_some_and(<[u8]>::is_empty) {
            return Err(DigestMd5Error::MalformedDigestUri);
        }
        if serv_type != b"smtp" {
            return Err(DigestMd5Error::DigestUriServTypeNotSmtp);
        }
        // The SHOULD is kept for names, but a client that connected by address (swaks
        // and gsasl to 127.0.0.1) can only name the address; Cyrus accepts it too.
        let by_address = std::str::from_utf8(host)
            .ok()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .is_some_and(|h| h.parse::<std::net::IpAddr>().is_ok() || h == "localhost");
        if !by_address && !host.eq_ignore_ascii_case(self.ctx.hostname.as_bytes()) {
            return Err(DigestMd5Error::DigestUriHostMismatch);
        }
        if let Some(name) = serv_name {
            let ok = name.eq_ignore_ascii_case(self.ctx.hostname.as_bytes())
                || name.eq_ignore_ascii_case(self.realm.as_bytes());
            if !ok {
                return Err(DigestMd5Error::DigestUriServNameMismatch);
            }
        }
        Ok(())
    }
}

impl ServerMechanism for DigestMd5Server {
    fn mechanism(&self) -> Mechanism {
        Mechanism::DigestMd5
    }

    fn step(&mut self, input: Option<&[u8]>) -> ServerStep {
        match (self.state, input) {
            (ServerState::Start, None) => {
                self.state = ServerState::Challenged;
                ServerStep::Challenge(self.challenge())
            }
            (ServerState::Start, Some(_)) => {
                self.state = ServerState::Done;
                ServerStep::Failure(SaslError::InitialResponseToServerFirst(
                    Mechanism::DigestMd5,
                ))
            }
            (ServerState::Challenged, input) => {
                self.state = ServerState::Done;
                match self.verify(input.unwrap_or_default()) {
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
    AwaitChallenge,
    /// Holds the `rspauth` value the server must send (RFC 2831 §2.1.3).
    AwaitRspauth(Secret),
    Verified,
    Failed,
}

/// The client side: answers the challenge, then checks the server's `rspauth`.
#[derive(Debug)]
pub struct DigestMd5Client {
    authcid: String,
    password: Secret,
    authzid: Option<String>,
    host: String,
    cnonce: String,
    state: ClientState,
}

impl DigestMd5Client {
    /// A client whose `cnonce` is drawn from `rng` (RFC 2831 §2.1.2).
    pub fn new(creds: &ClientCredentials, rng: &mut dyn RandomSource) -> Self {
        let cnonce = rng.nonce(NONCE_LEN);
        Self::with_cnonce(creds, cnonce)
    }

    /// A client whose cnonce is given rather than drawn: for test vectors only.
    #[doc(hidden)]
    pub fn with_cnonce(creds: &ClientCredentials, cnonce: String) -> Self {
        DigestMd5Client {
            authcid: creds.authcid.clone(),
            password: creds.password.clone(),
            authzid: creds.authzid.clone(),
            host: creds.host.clone(),
            cnonce,
            state: ClientState::AwaitChallenge,
        }
    }

    fn respond(&self, challenge: &[u8]) -> Result<(Vec<u8>, Secret), DigestMd5Error> {
        if challenge.len() >= MAX_CHALLENGE_LEN {
            return Err(DigestMd5Error::ChallengeTooLong);
        }
        let list = parse_directives(challenge)?;
        let known = Known { list: &list };
        // §2.1.1: these appear at most once (nonce and algorithm exactly once); realm
        // may repeat.
        for name in [
            "nonce",
            "qop",
            "stale",
            "maxbuf",
            "charset",
            "algorithm",
            "cipher",
        ] {
            known.once(name)?;
        }
        let nonce = known.required("nonce")?;
        match known.required("algorithm")? {
            d if d.value.eq_ignore_ascii_case(b"md5-sess") => {}
            _ => return Err(DigestMd5Error::AlgorithmNotMd5Sess),
        }
        // §2.1.1 qop-options: a quoted list of tokens; "If not present it defaults to
        // "auth"".
        if let Some(qop) = known.once("qop")? {
            let offers_auth = qop
                .value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"auth"));
            if !offers_auth {
                return Err(DigestMd5Error::QopAuthNotOffered);
            }
        }
        let utf8 = match known.once("charset")? {
            Some(d) if d.value.eq_ignore_ascii_case(b"utf-8") => true,
            Some(_) => return Err(DigestMd5Error::CharsetNotUtf8),
            None => false,
        };
        // §2.1.1 realm: several may be offered and the client chooses; we take the
        // first. With none, the realm is empty (§2.1.2: a missing realm hashes as "").
        let realm: Option<&[u8]> = known.all("realm").next().map(|d| d.value.as_slice());

        // What goes on the wire and what is hashed (§2.1.2.1).
        let (user_wire, user_hashed, password_hashed) = if utf8 {
            (
                self.authcid.as_bytes().to_vec(),
                hash_form(self.authcid.as_bytes()).into_owned(),
                Secret::new(hash_form(self.password.expose()).into_owned()),
            )
        } else {
            let user = to_latin1(&self.authcid).ok_or(DigestMd5Error::CredentialsNotLatin1)?;
            let password = match std::str::from_utf8(self.password.expose()) {
                Ok(s) => to_latin1(s).ok_or(DigestMd5Error::CredentialsNotLatin1)?,
                Err(_) => return Err(DigestMd5Error::CredentialsNotLatin1),
            };
            (user.clone(), user, Secret::new(password))
        };
        let realm_hashed: Vec<u8> = match realm {
            Some(r) if utf8 => hash_form(r).into_owned(),
            Some(r) => r.to_vec(),
            None => Vec::new(),
        };
        let digest_uri = format!("smtp/{}", self.host);
        let params = DigestParams {
            username: &user_hashed,
            realm: &realm_hashed,
            password: password_hashed.expose(),
            nonce: &nonce.value,
            cnonce: self.cnonce.as_bytes(),
            nc: b"00000001",
            qop: b"auth",
            digest_uri: digest_uri.as_bytes(),
            authzid: self.authzid.as_deref().map(str::as_bytes),
        };
        let response = response_value(&params);
        let rspauth = Secret::new(rspauth_value(&params).into_bytes());

        // The order of RFC 2831 §4's example.
        let mut out = Vec::new();
        if utf8 {
            out.extend_from_slice(b"charset=utf-8,");
        }
        push_directive(&mut out, "username", &user_wire, true);
        if let Some(r) = realm {
            out.push(b',');
            push_directive(&mut out, "realm", r, true);
        }
        out.push(b',');
        push_directive(&mut out, "nonce", &nonce.value, true);
        out.extend_from_slice(b",nc=00000001,");
        push_directive(&mut out, "cnonce", self.cnonce.as_bytes(), true);
        out.push(b',');
        push_directive(&mut out, "digest-uri", digest_uri.as_bytes(), true);
        out.extend_from_slice(b",response=");
        out.extend_from_slice(response.as_bytes());
        out.extend_from_slice(b",qop=auth");
        if let Some(z) = &self.authzid {
            out.push(b',');
            push_directive(&mut out, "authzid", z.as_bytes(), true);
        }
        Ok((out, rspauth))
    }
}

/// Checks `response-auth = "rspauth" "=" response-value` (RFC 2831 §2.1.3).
fn check_rspauth(expected: &Secret, message: &[u8]) -> Result<(), SaslError> {
    if message.len() > MAX_RSPAUTH_LEN {
        return Err(DigestMd5Error::MalformedRspauth.into());
    }
    let list = parse_directives(message).map_err(|_| DigestMd5Error::MalformedRspauth)?;
    let known = Known { list: &list };
    let value = known
        .once("rspauth")
        .map_err(|_| DigestMd5Error::MalformedRspauth)?
        .ok_or(DigestMd5Error::MalformedRspauth)?;
    if value.value.len() != 32 || !value.value.iter().all(u8::is_ascii_hexdigit) {
        return Err(DigestMd5Error::MalformedRspauth.into());
    }
    if expected.ct_eq(&value.value.to_ascii_lowercase()) {
        Ok(())
    } else {
        Err(SaslError::ServerProofMismatch(Mechanism::DigestMd5))
    }
}

impl ClientMechanism for DigestMd5Client {
    fn mechanism(&self) -> Mechanism {
        Mechanism::DigestMd5
    }

    /// Server-first: there is never an initial response.
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Ok(None)
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        match std::mem::replace(&mut self.state, ClientState::Failed) {
            ClientState::AwaitChallenge => {
                let (response, rspauth) = self.respond(challenge)?;
                self.state = ClientState::AwaitRspauth(rspauth);
                Ok(response)
            }
            // Postfix sends rspauth in a 334 and waits for an empty line (peers/README).
            ClientState::AwaitRspauth(expected) => {
                check_rspauth(&expected, challenge)?;
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
            (ClientState::AwaitRspauth(expected), Some(data)) => {
                check_rspauth(&expected, data)?;
                self.state = ClientState::Verified;
                Ok(())
            }
            (ClientState::Verified, None) => {
                self.state = ClientState::Verified;
                Ok(())
            }
            // The server was proven already; more data on the 235 is not in RFC 2831.
            (ClientState::Verified, Some(_)) => Err(DigestMd5Error::MalformedRspauth.into()),
            // Success without the server ever proving it knows the password: RFC 2831
            // §2.1.3 makes rspauth the mutual authentication.
            _ => Err(SaslError::ServerProofMismatch(Mechanism::DigestMd5)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2831_section4_vector() {
        let p = DigestParams {
            username: b"chris",
            realm: b"elwood.innosoft.com",
            password: b"secret",
            nonce: b"OA6MG9tEQGm2hh",
            cnonce: b"OA6MHXh6VqTrRk",
            nc: b"00000001",
            qop: b"auth",
            digest_uri: b"imap/elwood.innosoft.com",
            authzid: None,
        };
        assert_eq!(response_value(&p), "d388dad90d4bbd760a152321f2143af7");
        assert_eq!(rspauth_value(&p), "ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn parser_handles_lws_empty_elements_and_escapes() {
        let list = parse_directives(b" ,a=\"x\\\"y\" ,, b = tok ,\r\n c=\"\",").unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].value, b"x\"y");
        assert!(list[0].quoted);
        assert_eq!(list[1].value, b"tok");
        assert!(!list[1].quoted);
        assert_eq!(list[2].value, b"");
        assert_eq!(
            parse_directives(b"a=\"unterminated"),
            Err(DigestMd5Error::MalformedDirectiveList)
        );
        assert_eq!(
            parse_directives(b"a=b c=d"),
            Err(DigestMd5Error::MalformedDirectiveList)
        );
        assert_eq!(
            parse_directives(b" , "),
            Err(DigestMd5Error::MalformedDirectiveList)
        );
    }

    #[test]
    fn hash_form_converts_latin1_only() {
        assert_eq!(&*hash_form("ü".as_bytes()), &[0xfc]);
        assert_eq!(&*hash_form("€".as_bytes()), "€".as_bytes());
        assert_eq!(&*hash_form(b"abc"), b"abc");
    }
}
