//! OAUTHBEARER (RFC 7628): a GS2 header, then `key=value` pairs separated by `^A`
//! (0x01), carrying an OAuth 2.0 bearer token.
//!
//! RFC 7628 §3.1:
//!
//! ```text
//! kvsep          = %x01
//! key            = 1*(ALPHA)
//! value          = *(VCHAR / SP / HTAB / CR / LF )
//! kvpair         = key "=" value kvsep
//! client-resp    = (gs2-header kvsep *kvpair kvsep) / kvsep
//! ```
//!
//! The RFC 7628 §4.1 initial response, for example, is
//! `n,a=user@example.com,^Ahost=server.example.com^Aport=143^Aauth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==^A^A`.
//!
//! The reference server has no authorization server to ask, so it treats the token
//! as the user's password: the user (the GS2 `a=` authzid, which the client must send)
//! is looked up in the credential store and the token checked against the stored
//! secret, so a passwd-file entry `user:{PLAIN}<token>` grants that token. A bad token
//! gets RFC 7628 §3.2.2's JSON error as a challenge, the client must answer with a lone
//! `^A` (§3.2.3), and then the exchange fails.

use super::credentials::{resolve_user, verify_dummy, verify_plaintext};
use super::{
    Authenticated, ClientCredentials, ClientMechanism, Mechanism, SaslError, Secret, ServerContext,
    ServerMechanism, ServerStep,
};

/// RFC 7628 §3.2.2: what the reference server sends when the token does not verify.
pub const ERROR_CHALLENGE: &[u8] = br#"{"status":"invalid_token"}"#;

/// The client's error challenge bound: longer JSON is refused rather than parsed.
pub(crate) const MAX_ERROR_CHALLENGE: usize = 4096;

const KVSEP: u8 = 0x01;

/// Rules of RFC 7628 (and the RFC 5801 GS2 header it borrows) that a peer can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OAuthBearerError {
    /// RFC 5801 §4: `gs2-header = [gs2-nonstd-flag ","] gs2-cb-flag "," [gs2-authzid] ","`,
    /// where OAUTHBEARER is no GSS-API mechanism, so no `F,` flag.
    MalformedGs2Header,
    /// RFC 7628 §3.1: OAUTHBEARER has no channel binding, so `p=` cannot be used.
    ChannelBindingNotSupported,
    /// RFC 5801 §4: in a saslname, `=` only starts `=2C` or `=3D`.
    BadSaslnameEscape,
    /// RFC 7628 §3.1 with RFC 4422 §5: identities are UTF-8.
    InvalidUtf8,
    /// RFC 7628 §3.1: the GS2 header is followed by a kvsep (0x01).
    MissingKvsep,
    /// RFC 7628 §3.1: `kvpair = key "=" value kvsep`, `key = 1*(ALPHA)`.
    MalformedKvpair,
    /// RFC 7628 §3.1: `value = *(VCHAR / SP / HTAB / CR / LF)`.
    BadValueCharacter,
    /// RFC 7628 §3.1: the message ends with an empty kvpair: `kvsep kvsep`.
    MissingTerminator,
    /// RFC 7628 §3.1: nothing follows the final kvsep.
    TrailingData,
    /// RFC 7628 §3.1: each key appears once.
    DuplicateKey,
    /// RFC 7628 §3.1: the `auth` key is REQUIRED.
    MissingAuth,
    /// RFC 7628 §3.1 / RFC 6750 §2.1: `auth` is `"Bearer" 1*SP b64token`.
    NotBearerScheme,
    /// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
    BadToken,
    /// RFC 7628 §3.1: `port` is the decimal port number.
    BadPort,
    /// RFC 7628 §3.1: a lone kvsep is "only valid" as the answer to an error challenge.
    DummyResponseFirst,
    /// RFC 7628 §3.2.3: after an error challenge the client MUST send a single kvsep.
    ErrorNotAcknowledged,
    /// The caller gave no client message after the empty challenge.
    MissingResponse,
    /// RFC 7628 §3.2.2: an error challenge is a JSON object with a string "status".
    MalformedErrorChallenge,
    /// RFC 7628 §3.2: only one error challenge; the exchange then fails.
    UnexpectedChallenge,
    /// The server reported success before the client had sent its token.
    PrematureSuccess,
    /// RFC 7628 §3.2.1: success carries no additional data.
    UnexpectedSuccessData,
}

fn err(e: OAuthBearerError) -> SaslError {
    SaslError::OAuthBearer(e)
}

/// Why a bearer credential was refused (shared with XOAUTH2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BearerProblem {
    NotBearer,
    BadToken,
}

/// RFC 6750 §2.1's `b64token`.
pub(crate) fn is_b64token(token: &[u8]) -> bool {
    let body_len = token.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    body_len > 0
        && token[..body_len].iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// RFC 6750 §2.1: `credentials = "Bearer" 1*SP b64token`; the scheme name is
/// case-insensitive as every HTTP authentication scheme (RFC 7235 §2.1).
pub(crate) fn bearer_token(value: &[u8]) -> Result<&[u8], BearerProblem> {
    if value.len() < 7 || !value[..6].eq_ignore_ascii_case(b"Bearer") || value[6] != b' ' {
        return Err(BearerProblem::NotBearer);
    }
    let spaces = value[6..].iter().take_while(|&&b| b == b' ').count();
    let token = &value[6 + spaces..];
    if is_b64token(token) {
        Ok(token)
    } else {
        Err(BearerProblem::BadToken)
    }
}

/// What a server's JSON error challenge said (RFC 7628 §3.2.2, or Google's XOAUTH2
/// error, which has the same shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthErrorReport {
    /// RFC 7628: `invalid_token` etc.; Google: an HTTP status such as `401`.
    pub status: String,
    /// The OAuth scope the token would need, if the server named it.
    pub scope: Option<String>,
    /// Google's XOAUTH2 `schemes` field.
    pub schemes: Option<String>,
    /// RFC 7628 §3.2.2 `openid-configuration`: where to discover the provider.
    pub openid_configuration: Option<String>,
}

/// Parse an error challenge: a JSON object whose `status` is a string.
pub(crate) fn parse_error_challenge(challenge: &[u8]) -> Option<OAuthErrorReport> {
    if challenge.len() > MAX_ERROR_CHALLENGE {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(challenge).ok()?;
    let object = value.as_object()?;
    let field = |name: &str| {
        object
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    Some(OAuthErrorReport {
        status: field("status")?,
        scope: field("scope"),
        schemes: field("schemes"),
        openid_configuration: field("openid-configuration"),
    })
}

/// A parsed client response. `Debug` hides the token.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    /// The GS2 authzid (`a=`), unescaped.
    pub authzid: Option<String>,
    /// The `host=` key (RFC 7628 §3.1), if present.
    pub host: Option<String>,
    /// The `port=` key, if present.
    pub port: Option<u16>,
    /// The bearer token from `auth=Bearer <token>` (RFC 6750 §2.1).
    pub token: Secret,
}

/// RFC 5801 §4 saslname: `=2C` is `,` and `=3D` is `=`; a raw `,` cannot occur.
fn unescape_saslname(raw: &[u8]) -> Result<String, OAuthBearerError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'=' {
            match raw.get(i + 1..i + 3) {
                Some(b"2C") => out.push(b','),
                Some(b"3D") => out.push(b'='),
                _ => return Err(OAuthBearerError::BadSaslnameEscape),
            }
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| OAuthBearerError::InvalidUtf8)
}

fn escape_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// Parse RFC 7628 §3.1's `client-resp` (the full form; the lone kvsep is the
/// caller's to recognise).
pub fn parse_client_response(message: &[u8]) -> Result<ClientResponse, OAuthBearerError> {
    // gs2-header: cb-flag "," [ "a=" saslname ] ","
    let (cb_flag, rest) = match message.iter().position(|&b| b == b',') {
        Some(i) => (&message[..i], &message[i + 1..]),
        None => return Err(OAuthBearerError::MalformedGs2Header),
    };
    match cb_flag {
        b"n" | b"y" => {}
        flag if flag.starts_with(b"p=") => {
            return Err(OAuthBearerError::ChannelBindingNotSupported);
        }
        _ => return Err(OAuthBearerError::MalformedGs2Header),
    }
    let Some(comma) = rest.iter().position(|&b| b == b',') else {
        return Err(OAuthBearerError::MalformedGs2Header);
    };
    let (authzid_field, rest) = (&rest[..comma], &rest[comma + 1..]);
    let authzid = match authzid_field {
        b"" => None,
        field => match field.strip_prefix(b"a=") {
            Some(name) if !name.is_empty() => Some(unescape_saslname(name)?),
            _ => return Err(OAuthBearerError::MalformedGs2Header),
        },
    };
    let Some(mut rest) = rest.strip_prefix(&[KVSEP]) else {
        return Err(OAuthBearerError::MissingKvsep);
    };

    let mut host = None;
    let mut port = None;
    let mut auth: Option<&[u8]> = None;
    let mut seen_keys: Vec<&[u8]> = Vec::new();
    loop {
        let Some(end) = rest.iter().position(|&b| b == KVSEP) else {
            return Err(OAuthBearerError::MissingTerminator);
        };
        let (pair, after) = (&rest[..end], &rest[end + 1..]);
        if pair.is_empty() {
            // The terminating empty pair.
            if !after.is_empty() {
                return Err(OAuthBearerError::TrailingData);
            }
            break;
        }
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            return Err(OAuthBearerError::MalformedKvpair);
        };
        let (key, value) = (&pair[..eq], &pair[eq + 1..]);
        if key.is_empty() || !key.iter().all(u8::is_ascii_alphabetic) {
            return Err(OAuthBearerError::MalformedKvpair);
        }
        if !value
            .iter()
            .all(|&b| b.is_ascii_graphic() || matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            return Err(OAuthBearerError::BadValueCharacter);
        }
        if seen_keys.contains(&key) {
            return Err(OAuthBearerError::DuplicateKey);
        }
        seen_keys.push(key);
        match key {
            b"auth" => auth = Some(value),
            // Value characters were checked above, so this is ASCII.
            b"host" => host = Some(String::from_utf8_lossy(value).into_owned()),
            b"port" => {
                let digits_only = !value.is_empty() && value.iter().all(u8::is_ascii_digit);
                let parsed = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u16>().ok());
                match parsed {
                    Some(p) if digits_only => port = Some(p),
                    _ => return Err(OAuthBearerError::BadPort),
                }
            }
            // RFC 7628 §3.1 lets mechanisms define further keys; unknown ones are
            // ignored so that extensions do not break the exchange.
            _ => {}
        }
        rest = after;
    }
    let Some(auth) = auth else {
        return Err(OAuthBearerError::MissingAuth);
    };
    let token = bearer_token(auth).map_err(|p| match p {
        BearerProblem::NotBearer => OAuthBearerError::NotBearerScheme,
        BearerProblem::BadToken => OAuthBearerError::BadToken,
    })?;
    Ok(ClientResponse {
        authzid,
        host,
        port,
        token: Secret::new(token.to_vec()),
    })
}

/// Build RFC 7628 §3.1's `client-resp`; refuses what [`parse_client_response`] would.
pub(crate) fn encode_client_response(
    authzid: Option<&str>,
    host: Option<&str>,
    port: Option<u16>,
    token: &[u8],
) -> Result<Vec<u8>, OAuthBearerError> {
    let mut out = b"n,".to_vec();
    if let Some(a) = authzid.filter(|a| !a.is_empty()) {
        out.extend_from_slice(b"a=");
        out.extend_from_slice(escape_saslname(a).as_bytes());
    }
    out.push(b',');
    out.push(KVSEP);
    if let Some(h) = host.filter(|h| !h.is_empty()) {
        out.extend_from_slice(b"host=");
        out.extend_from_slice(h.as_bytes());
        out.push(KVSEP);
    }
    if let Some(p) = port {
        out.extend_from_slice(format!("port={p}").as_bytes());
        out.push(KVSEP);
    }
    out.extend_from_slice(b"auth=Bearer ");
    out.extend_from_slice(token);
    out.push(KVSEP);
    out.push(KVSEP);
    parse_client_response(&out)?;
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Start,
    AwaitResponse,
    /// The JSON error went out; the client's lone kvsep comes next.
    AwaitErrorAck,
    Done,
}

#[derive(Debug)]
pub(crate) struct OAuthBearerServer {
    ctx: ServerContext,
    state: ServerState,
}

impl OAuthBearerServer {
    pub fn new(ctx: &ServerContext) -> Self {
        OAuthBearerServer {
            ctx: ctx.clone(),
            state: ServerState::Start,
        }
    }

    fn verify(&mut self, message: &[u8]) -> ServerStep {
        if message == [KVSEP] {
            self.state = ServerState::Done;
            return ServerStep::Failure(err(OAuthBearerError::DummyResponseFirst));
        }
        let response = match parse_client_response(message) {
            Ok(r) => r,
            Err(e) => {
                self.state = ServerState::Done;
                return ServerStep::Failure(err(e));
            }
        };
        // Without `a=` there is nobody to look up (a real server would ask the
        // token's issuer); that is an invalid token here, not a syntax error.
        let found = response
            .authzid
            .as_deref()
            .and_then(|user| resolve_user(&self.ctx, user));
        let (name, ok) = match found {
            Some((name, stored)) => {
                let ok = verify_plaintext(&stored, response.token.expose());
                (Some(name), ok)
            }
            None => (None, verify_dummy(response.token.expose())),
        };
        match name {
            Some(authcid) if ok => {
                self.state = ServerState::Done;
                ServerStep::Success {
                    identity: Authenticated {
                        authcid,
                        authzid: None,
                    },
                    additional: None,
                }
            }
            _ => {
                self.state = ServerState::AwaitErrorAck;
                ServerStep::Challenge(ERROR_CHALLENGE.to_vec())
            }
        }
    }
}

impl ServerMechanism for OAuthBearerServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::OAuthBearer
    }

    fn step(&mut self, input: Option<&[u8]>) -> ServerStep {
        match (self.state, input) {
            (ServerState::Start, None) => {
                self.state = ServerState::AwaitResponse;
                ServerStep::Challenge(Vec::new())
            }
            (ServerState::Start | ServerState::AwaitResponse, Some(message)) => {
                self.verify(message)
            }
            (ServerState::AwaitErrorAck, Some(ack)) => {
                self.state = ServerState::Done;
                if ack == [KVSEP] {
                    ServerStep::Failure(SaslError::InvalidCredentials)
                } else {
                    ServerStep::Failure(err(OAuthBearerError::ErrorNotAcknowledged))
                }
            }
            (ServerState::AwaitResponse | ServerState::AwaitErrorAck, None) => {
                self.state = ServerState::Done;
                ServerStep::Failure(err(OAuthBearerError::MissingResponse))
            }
            (ServerState::Done, _) => ServerStep::Failure(SaslError::ExchangeOver),
        }
    }
}

/// Client side of OAUTHBEARER (RFC 7628): sends the GS2 header and the token.
#[derive(Debug)]
pub struct OAuthBearerClient {
    authzid: String,
    host: String,
    port: Option<u16>,
    token: Secret,
    sent: bool,
    error: Option<OAuthErrorReport>,
}

impl OAuthBearerClient {
    /// The GS2 `a=` is the authzid if one is given, else the authcid (the user the
    /// token was issued for, as in RFC 7628 §4.1).
    pub fn new(creds: &ClientCredentials) -> Self {
        OAuthBearerClient {
            authzid: creds
                .authzid
                .clone()
                .unwrap_or_else(|| creds.authcid.clone()),
            host: creds.host.clone(),
            port: creds.port,
            token: creds.password.clone(),
            sent: false,
            error: None,
        }
    }

    /// The server's JSON error, once it sent one.
    pub fn server_error(&self) -> Option<&OAuthErrorReport> {
        self.error.as_ref()
    }

    fn message(&mut self) -> Result<Vec<u8>, SaslError> {
        self.sent = true;
        encode_client_response(
            Some(&self.authzid),
            Some(&self.host),
            self.port,
            self.token.expose(),
        )
        .map_err(err)
    }
}

impl ClientMechanism for OAuthBearerClient {
    fn mechanism(&self) -> Mechanism {
        Mechanism::OAuthBearer
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        self.message().map(Some)
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if !self.sent && challenge.is_empty() {
            // The empty challenge of a server that got no initial response.
            return self.message();
        }
        if !self.sent || self.error.is_some() {
            return Err(err(OAuthBearerError::UnexpectedChallenge));
        }
        let report = parse_error_challenge(challenge)
            .ok_or_else(|| err(OAuthBearerError::MalformedErrorChallenge))?;
        self.error = Some(report);
        // RFC 7628 §3.2.3: the dummy response, a single kvsep ("AQ==" in base64).
        Ok(vec![KVSEP])
    }

    fn verify_success(&mut self, additional: Option<&[u8]>) -> Result<(), SaslError> {
        if self.error.is_some() {
            return Err(SaslError::ServerReportedError(Mechanism::OAuthBearer));
        }
        if !self.sent {
            return Err(err(OAuthBearerError::PrematureSuccess));
        }
        match additional {
            None => Ok(()),
            Some(_) => Err(err(OAuthBearerError::UnexpectedSuccessData)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC7628_41: &[u8] = b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";

    #[test]
    fn rfc7628_41_parses() {
        let r = parse_client_response(RFC7628_41).expect("RFC example");
        assert_eq!(r.authzid.as_deref(), Some("user@example.com"));
        assert_eq!(r.host.as_deref(), Some("server.example.com"));
        assert_eq!(r.port, Some(143));
        assert!(r.token.ct_eq(b"vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="));
    }

    #[test]
    fn malformed_responses_name_the_rule() {
        use OAuthBearerError::*;
        let cases: [(&[u8], OAuthBearerError); 14] = [
            (b"", MalformedGs2Header),
            (b"x,,\x01auth=Bearer t\x01\x01", MalformedGs2Header),
            (b"F,n,,\x01auth=Bearer t\x01\x01", MalformedGs2Header),
            (
                b"p=tls-unique,,\x01auth=Bearer t\x01\x01",
                ChannelBindingNotSupported,
            ),
            (b"n,a=us=2Xer,\x01auth=Bearer t\x01\x01", BadSaslnameEscape),
            (b"n,,auth=Bearer t\x01\x01", MissingKvsep),
            (b"n,,\x01auth=Bearer t\x01", MissingTerminator),
            (b"n,,\x01auth=Bearer t\x01\x01x", TrailingData),
            (b"n,,\x01au th=Bearer t\x01\x01", MalformedKvpair),
            (b"n,,\x01auth=Bearer t\x00\x01\x01", BadValueCharacter),
            (
                b"n,,\x01auth=Bearer t\x01auth=Bearer t\x01\x01",
                DuplicateKey,
            ),
            (b"n,,\x01host=h\x01\x01", MissingAuth),
            (b"n,,\x01auth=Basic dDp0\x01\x01", NotBearerScheme),
            (b"n,,\x01port=99999\x01auth=Bearer t\x01\x01", BadPort),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_client_response(input).map(|_| ()),
                Err(expected),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(
            parse_client_response(b"n,,\x01auth=Bearer a b\x01\x01").map(|_| ()),
            Err(BadToken)
        );
    }

    #[test]
    fn saslname_escapes_round_trip() {
        let out = encode_client_response(Some("a,b=c"), None, None, b"tok").expect("valid");
        assert!(out.starts_with(b"n,a=a=2Cb=3Dc,\x01"));
        let back = parse_client_response(&out).expect("parses");
        assert_eq!(back.authzid.as_deref(), Some("a,b=c"));
    }

    #[test]
    fn error_challenge_needs_a_status_string() {
        assert_eq!(
            parse_error_challenge(ERROR_CHALLENGE).map(|r| r.status),
            Some("invalid_token".to_owned())
        );
        assert!(parse_error_challenge(b"{\"status\":401}").is_none());
        assert!(parse_error_challenge(b"[]").is_none());
        assert!(parse_error_challenge(b"not json").is_none());
    }
}
