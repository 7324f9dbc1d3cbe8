//! SASL mechanisms as step functions over raw bytes, client side and server side.
//!
//! Base64 is not done here: the SMTP layer ([`crate::smtp::sasl_frame`]) decodes what
//! arrives on the wire and hands the mechanisms raw octets. "No input" (`None`) and
//! "empty input" (`Some(&[])`) are different things, as RFC 4954's `=` makes them.
//!
//! Every mechanism declares its [`SecurityProperties`] the way Cyrus SASL classifies
//! them, so Postfix's `smtpd_sasl_security_options` can filter the list.

pub mod anonymous;
pub mod channel_binding;
pub mod cram_md5;
pub mod credentials;
pub mod digest_md5;
pub(crate) mod external;
pub mod keys;
pub mod login;
pub mod oauthbearer;
pub mod passwd_file;
pub mod plain;
pub mod random;
pub mod scram;
pub(crate) mod secret;
pub mod xoauth2;

use std::fmt;
use std::sync::Arc;

pub use credentials::{CredentialStore, StoredCredential};
pub use random::{RandomSource, SeededRandom};
pub use secret::Secret;

/// Every mechanism the core implements, in the order the reference server offers them
/// by default (strongest first, as Cyrus orders its list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum Mechanism {
    /// SCRAM-SHA-512 with channel binding (RFC 5802 §6; SHA-512 per draft-melnikov-scram-sha-512).
    ScramSha512Plus,
    /// SCRAM-SHA-256 with channel binding (RFC 7677, RFC 5802 §6).
    ScramSha256Plus,
    /// SCRAM-SHA-1 with channel binding (RFC 5802 §6).
    ScramSha1Plus,
    /// SCRAM-SHA-512 (draft-melnikov-scram-sha-512), no channel binding.
    ScramSha512,
    /// SCRAM-SHA-256 (RFC 7677), no channel binding.
    ScramSha256,
    /// SCRAM-SHA-1 (RFC 5802), no channel binding.
    ScramSha1,
    /// DIGEST-MD5 (RFC 2831; historic per RFC 6331), server-first.
    DigestMd5,
    /// CRAM-MD5 (RFC 2195), server-first.
    CramMd5,
    /// OAUTHBEARER (RFC 7628): an OAuth 2.0 bearer token in a GS2 header.
    OAuthBearer,
    /// XOAUTH2 (Google's pre-RFC bearer-token mechanism).
    XOAuth2,
    /// PLAIN (RFC 4616): authzid, authcid and password in one message.
    Plain,
    /// LOGIN (draft-murchison-sasl-login): user name and password in two challenges.
    Login,
    /// ANONYMOUS (RFC 4505): trace information, no identity.
    Anonymous,
    /// EXTERNAL (RFC 4422 Appendix A): the identity the TLS client certificate established.
    External,
}

impl Mechanism {
    /// Every mechanism, strongest first; the order [`Mechanism::from_name`] searches.
    pub const ALL: [Mechanism; 14] = [
        Mechanism::ScramSha512Plus,
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha512,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::DigestMd5,
        Mechanism::CramMd5,
        Mechanism::OAuthBearer,
        Mechanism::XOAuth2,
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::Anonymous,
        Mechanism::External,
    ];

    /// What `authspec serve` offers when `authspec_sasl_mech_list` is empty: every
    /// mechanism but SCRAM-SHA-512 and SCRAM-SHA-512-PLUS, which (as in Postfix with
    /// Cyrus or Dovecot 2.3) must be listed to be offered. The -PLUS ones appear only
    /// over TLS.
    pub const DEFAULT_SERVER: [Mechanism; 12] = [
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::DigestMd5,
        Mechanism::CramMd5,
        Mechanism::OAuthBearer,
        Mechanism::XOAuth2,
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::Anonymous,
        Mechanism::External,
    ];

    /// The IANA-registered name (RFC 4422 §3.1), upper case.
    pub const fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha512Plus => "SCRAM-SHA-512-PLUS",
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Mechanism::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::DigestMd5 => "DIGEST-MD5",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::Anonymous => "ANONYMOUS",
            Mechanism::External => "EXTERNAL",
        }
    }

    /// Mechanism names are case-insensitive (RFC 4422 §3.1: "SASL mechanism names
    /// are ... case-insensitive" in protocols that say so; RFC 4954 §4 says so).
    pub fn from_name(name: &[u8]) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// The `-PLUS` mechanisms bind to the TLS channel (RFC 5802 §6): offered only over
    /// TLS with binding data.
    pub const fn channel_binding(self) -> bool {
        matches!(
            self,
            Mechanism::ScramSha1Plus | Mechanism::ScramSha256Plus | Mechanism::ScramSha512Plus
        )
    }

    /// Server-first mechanisms send a challenge before the client says anything, so
    /// an initial response to them is a protocol error (RFC 4954 §4).
    pub const fn server_first(self) -> bool {
        matches!(self, Mechanism::CramMd5 | Mechanism::DigestMd5)
    }

    /// The properties Cyrus SASL gives the mechanism (see `sasl.h`, `SASL_SEC_*`).
    pub const fn properties(self) -> SecurityProperties {
        let weak = SecurityProperties {
            plaintext: false,
            anonymous: false,
            dictionary: false,
            active: false,
            mutual_auth: false,
            forward_secrecy: false,
        };
        match self {
            // Cyrus: SASL_SEC_NOANONYMOUS only.
            Mechanism::Plain | Mechanism::Login => SecurityProperties {
                plaintext: true,
                dictionary: true,
                active: true,
                ..weak
            },
            // Cyrus: NOPLAINTEXT | NOANONYMOUS. Still open to dictionary and active attacks.
            Mechanism::CramMd5 => SecurityProperties {
                dictionary: true,
                active: true,
                ..weak
            },
            // Cyrus: NOPLAINTEXT | NOANONYMOUS | MUTUAL_AUTH.
            Mechanism::DigestMd5 => SecurityProperties {
                dictionary: true,
                active: true,
                mutual_auth: true,
                ..weak
            },
            // Cyrus: NOPLAINTEXT | NOANONYMOUS | NOACTIVE | MUTUAL_AUTH. A captured
            // exchange still allows an offline guess at the password.
            Mechanism::ScramSha1 | Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                SecurityProperties {
                    dictionary: true,
                    mutual_auth: true,
                    ..weak
                }
            }
            // The same; the binding also defeats a TLS-terminating man in the middle,
            // which Cyrus's flags do not express.
            Mechanism::ScramSha1Plus | Mechanism::ScramSha256Plus | Mechanism::ScramSha512Plus => {
                SecurityProperties {
                    dictionary: true,
                    mutual_auth: true,
                    ..weak
                }
            }
            // A bearer token crosses the wire in the clear: replayable like a password.
            Mechanism::OAuthBearer | Mechanism::XOAuth2 => SecurityProperties {
                plaintext: true,
                active: true,
                ..weak
            },
            // Cyrus: NOPLAINTEXT only.
            Mechanism::Anonymous => SecurityProperties {
                anonymous: true,
                dictionary: true,
                active: true,
                ..weak
            },
            // Cyrus: NOPLAINTEXT | NOANONYMOUS | NODICTIONARY | NOACTIVE (the TLS layer
            // authenticated the client already).
            Mechanism::External => weak,
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a mechanism is exposed to, as Cyrus SASL classifies it. Each `true` flag is
/// a weakness, except `mutual_auth` and `forward_secrecy`, which are strengths. Postfix's
/// `no*` options hide mechanisms with the weakness; `mutual_auth` and
/// `forward_secrecy` hide mechanisms without the strength.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SecurityProperties {
    /// Sends a reusable secret in the clear (hidden by `noplaintext`).
    pub plaintext: bool,
    /// Allows anonymous login (hidden by `noanonymous`).
    pub anonymous: bool,
    /// Open to a passive offline dictionary attack (hidden by `nodictionary`).
    pub dictionary: bool,
    /// Open to active, non-dictionary attacks (hidden by `noactive`).
    pub active: bool,
    /// Authenticates the server to the client too (required by `mutual_auth`).
    pub mutual_auth: bool,
    /// Protects earlier sessions if the secret leaks (required by `forward_secrecy`).
    pub forward_secrecy: bool,
}

/// What the server side learned on success. The authorization identity is the one the
/// session acts as; `authcid` is whose credentials were checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    /// The authentication identity whose credentials were checked (RFC 4422 §2).
    pub authcid: String,
    /// The authorization identity the client asked to act as, if it named one.
    pub authzid: Option<String>,
}

/// The result of feeding one client message to a server mechanism.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerStep {
    /// Send this challenge (raw octets; the SMTP layer base64-encodes it) and wait.
    Challenge(Vec<u8>),
    /// Authentication succeeded. `additional` is data the server must still deliver
    /// (SCRAM's `v=`, DIGEST-MD5's `rspauth=`); RFC 4954 §4 carries it in a `334`
    /// challenge that the client answers with an empty line before the `235`.
    Success {
        /// Who authenticated, and as whom they act.
        identity: Authenticated,
        /// Final server data to deliver before `235`, if the mechanism has any.
        additional: Option<Vec<u8>>,
    },
    /// Authentication failed; the error names the rule that was broken.
    Failure(SaslError),
}

/// Server side of one mechanism, for one exchange.
pub trait ServerMechanism: Send + fmt::Debug {
    /// The mechanism this instance speaks.
    fn mechanism(&self) -> Mechanism;
    /// Feed one client message. `None` means the client sent nothing yet (AUTH with no
    /// initial response); `Some(&[])` is an empty message.
    fn step(&mut self, input: Option<&[u8]>) -> ServerStep;
}

/// Client side of one mechanism, for one exchange.
pub trait ClientMechanism: Send + fmt::Debug {
    /// The mechanism this instance speaks.
    fn mechanism(&self) -> Mechanism;
    /// The initial response to put on the AUTH line, if this mechanism is client-first.
    /// `Some(vec![])` is an empty initial response (sent as `=`).
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError>;
    /// Answer one server challenge.
    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError>;
    /// Called when the server reports success with `235`. `additional` is data the
    /// server put on the `235` line itself, if any (decoded). A final `334` carrying the
    /// server's proof arrives through [`ClientMechanism::step`] instead. Mechanisms with
    /// mutual authentication fail here if the server never proved itself.
    fn verify_success(&mut self, additional: Option<&[u8]>) -> Result<(), SaslError>;
}

/// What the server knows about the connection, which some mechanisms need.
#[derive(Clone, Debug)]
pub struct ServerContext {
    /// The server's name: CRAM-MD5's challenge and DIGEST-MD5's digest-uri use it.
    pub hostname: String,
    /// `smtpd_sasl_local_domain`: DIGEST-MD5's realm, and appended to unqualified
    /// user names when looking them up if no entry matches the bare name.
    pub realm: Option<String>,
    /// The identity a TLS client certificate established, for EXTERNAL.
    pub external_identity: Option<String>,
    /// Where the mechanisms look up the stored secret for an authcid.
    pub credentials: Arc<dyn CredentialStore>,
}

/// What a client authenticates with. `Debug` prints no secret.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    /// The authentication identity: whose credentials these are.
    pub authcid: String,
    /// The password, or for XOAUTH2/OAUTHBEARER the bearer token.
    pub password: Secret,
    /// The identity to act as, if not the authcid itself (RFC 4422 §2).
    pub authzid: Option<String>,
    /// The server host name, for DIGEST-MD5's digest-uri (`smtp/host`) and OAUTHBEARER.
    pub host: String,
    /// The server port, for OAUTHBEARER's `port=` key.
    pub port: Option<u16>,
}

/// Why a SASL exchange failed, one variant per kind of broken rule. Mechanism-specific
/// rules live in each mechanism's own error enum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaslError {
    /// Wrong password, unknown user or bad proof. Deliberately one variant: RFC 4954 §6
    /// asks servers not to reveal which of these it was.
    InvalidCredentials,
    /// The authorization identity may not be used by this authentication identity
    /// (RFC 4616 §2: the server "MUST ... verify that the authcid is permitted to act as
    /// the authzid").
    AuthzidNotPermitted,
    /// The client sent `*` (RFC 4954 §4).
    Cancelled,
    /// The stored credential's scheme cannot serve this mechanism (a SCRAM key cannot
    /// serve CRAM-MD5). Reported to the operator; the client sees a temporary failure.
    SchemeUnusable {
        /// The mechanism the client chose.
        mechanism: Mechanism,
        /// The stored credential's scheme, as passwd-file names it (`CRAM-MD5`, `SCRAM-SHA-256`...).
        scheme: &'static str,
    },
    /// An initial response was given to a server-first mechanism.
    InitialResponseToServerFirst(Mechanism),
    /// A message arrived after the exchange had ended.
    ExchangeOver,
    /// EXTERNAL was used on a connection with no external identity.
    NoExternalIdentity,
    /// The server's proof of its identity did not verify (mutual authentication).
    ServerProofMismatch(Mechanism),
    /// The server reported an error through the mechanism (XOAUTH2/OAUTHBEARER).
    ServerReportedError(Mechanism),
    /// A rule of PLAIN (RFC 4616 §2) was broken.
    Plain(plain::PlainError),
    /// A rule of LOGIN (draft-murchison-sasl-login) was broken.
    Login(login::LoginError),
    /// A rule of CRAM-MD5 (RFC 2195 §2) was broken.
    CramMd5(cram_md5::CramMd5Error),
    /// A rule of DIGEST-MD5 (RFC 2831 §2) was broken.
    DigestMd5(digest_md5::DigestMd5Error),
    /// A rule of SCRAM (RFC 5802 §5, §7) was broken.
    Scram(scram::ScramError),
    /// A rule of XOAUTH2 was broken.
    XOAuth2(xoauth2::XOAuth2Error),
    /// A rule of OAUTHBEARER (RFC 7628 §3) was broken.
    OAuthBearer(oauthbearer::OAuthBearerError),
    /// A rule of ANONYMOUS (RFC 4505 §3) was broken.
    Anonymous(anonymous::AnonymousError),
    /// A rule of EXTERNAL (RFC 4422 Appendix A) was broken.
    External(external::ExternalError),
}

impl SaslError {
    /// True when the failure is the client's malformed message rather than bad
    /// credentials; the SMTP layer answers these with `501 5.5.2`.
    pub fn is_malformed(&self) -> bool {
        !matches!(
            self,
            SaslError::InvalidCredentials
                | SaslError::AuthzidNotPermitted
                | SaslError::Cancelled
                | SaslError::SchemeUnusable { .. }
                | SaslError::NoExternalIdentity
                | SaslError::ServerProofMismatch(_)
                | SaslError::ServerReportedError(_)
                // RFC 5802 §6 says of each of these well-formed messages that the
                // server "MUST fail authentication": a binding that does not match (a
                // man in the middle), a downgrade, a binding type this server does not
                // support (tls-unique: rustls has none) or binding asked of a mechanism
                // without it. A failed authentication is 535, not "malformed" 501.
                | SaslError::Scram(
                    scram::ScramError::ChannelBindingMismatch
                        | scram::ScramError::ServerDoesSupportChannelBinding
                        | scram::ScramError::UnsupportedChannelBindingType
                        | scram::ScramError::ChannelBindingNotSupported
                )
        )
    }
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Rule names in words; they never hold secrets.
        use crate::human::describe;
        match self {
            SaslError::InvalidCredentials => write!(f, "invalid credentials"),
            SaslError::AuthzidNotPermitted => {
                write!(f, "this user may not act as the authorization identity")
            }
            SaslError::Cancelled => write!(f, "cancelled by the client (*)"),
            SaslError::SchemeUnusable { mechanism, scheme } => {
                write!(f, "the stored {scheme} credential cannot serve {mechanism}")
            }
            SaslError::InitialResponseToServerFirst(m) => {
                write!(
                    f,
                    "initial response sent to {m}, where the server speaks first"
                )
            }
            SaslError::ExchangeOver => write!(f, "message after the exchange ended"),
            SaslError::NoExternalIdentity => {
                write!(
                    f,
                    "EXTERNAL without an external identity (no client certificate)"
                )
            }
            SaslError::ServerProofMismatch(m) => {
                write!(f, "{m}: the server's proof did not verify")
            }
            SaslError::ServerReportedError(m) => write!(f, "{m}: the server reported an error"),
            SaslError::Plain(e) => write!(f, "PLAIN: {}", describe(e)),
            SaslError::Login(e) => write!(f, "LOGIN: {}", describe(e)),
            SaslError::CramMd5(e) => write!(f, "CRAM-MD5: {}", describe(e)),
            SaslError::DigestMd5(e) => write!(f, "DIGEST-MD5: {}", describe(e)),
            SaslError::Scram(e) => write!(f, "SCRAM: {}", describe(e)),
            SaslError::XOAuth2(e) => write!(f, "XOAUTH2: {}", describe(e)),
            SaslError::OAuthBearer(e) => write!(f, "OAUTHBEARER: {}", describe(e)),
            SaslError::Anonymous(e) => write!(f, "ANONYMOUS: {}", describe(e)),
            SaslError::External(e) => write!(f, "EXTERNAL: {}", describe(e)),
        }
    }
}

impl std::error::Error for SaslError {}

/// Start the server side of `mechanism` for one exchange. Server-first mechanisms draw
/// their nonce from `rng` here.
pub fn server(
    mechanism: Mechanism,
    ctx: &ServerContext,
    rng: &mut dyn RandomSource,
) -> Box<dyn ServerMechanism> {
    server_with_binding(
        mechanism,
        ctx,
        &channel_binding::ServerBinding::default(),
        rng,
    )
}

/// [`server`] on a connection with channel-binding data (RFC 5802 §6): SCRAM uses it,
/// the other mechanisms ignore it.
pub fn server_with_binding(
    mechanism: Mechanism,
    ctx: &ServerContext,
    binding: &channel_binding::ServerBinding,
    rng: &mut dyn RandomSource,
) -> Box<dyn ServerMechanism> {
    use scram::ScramHash::{Sha1, Sha256, Sha512};
    let mut scram = |hash, plus| -> Box<dyn ServerMechanism> {
        Box::new(scram::ScramServer::new(hash, ctx, rng).with_binding(plus, binding.clone()))
    };
    match mechanism {
        Mechanism::ScramSha1 => scram(Sha1, false),
        Mechanism::ScramSha1Plus => scram(Sha1, true),
        Mechanism::ScramSha256 => scram(Sha256, false),
        Mechanism::ScramSha256Plus => scram(Sha256, true),
        Mechanism::ScramSha512 => scram(Sha512, false),
        Mechanism::ScramSha512Plus => scram(Sha512, true),
        Mechanism::Plain => Box::new(plain::PlainServer::new(ctx)),
        Mechanism::Login => Box::new(login::LoginServer::new(ctx)),
        Mechanism::CramMd5 => Box::new(cram_md5::CramMd5Server::new(ctx, rng)),
        Mechanism::DigestMd5 => Box::new(digest_md5::DigestMd5Server::new(ctx, rng)),
        Mechanism::XOAuth2 => Box::new(xoauth2::XOAuth2Server::new(ctx)),
        Mechanism::OAuthBearer => Box::new(oauthbearer::OAuthBearerServer::new(ctx)),
        Mechanism::Anonymous => Box::new(anonymous::AnonymousServer::new(ctx)),
        Mechanism::External => Box::new(external::ExternalServer::new(ctx)),
    }
}

/// Start the client side of `mechanism`. Client nonces (DIGEST-MD5 cnonce, SCRAM
/// c-nonce) come from `rng`.
pub fn client(
    mechanism: Mechanism,
    creds: &ClientCredentials,
    rng: &mut dyn RandomSource,
) -> Box<dyn ClientMechanism> {
    client_with_binding(
        mechanism,
        creds,
        &channel_binding::ClientBinding::default(),
        rng,
    )
}

/// [`client`] on a connection with channel-binding data: a -PLUS mechanism sends
/// `p=<type>`, a non-PLUS SCRAM sends `y` when `binding.supported`.
pub fn client_with_binding(
    mechanism: Mechanism,
    creds: &ClientCredentials,
    binding: &channel_binding::ClientBinding,
    rng: &mut dyn RandomSource,
) -> Box<dyn ClientMechanism> {
    use scram::ScramHash::{Sha1, Sha256, Sha512};
    let mut scram = |hash, plus| -> Box<dyn ClientMechanism> {
        Box::new(scram::ScramClient::new(hash, creds, rng).with_binding(plus, binding.clone()))
    };
    match mechanism {
        Mechanism::ScramSha1 => scram(Sha1, false),
        Mechanism::ScramSha1Plus => scram(Sha1, true),
        Mechanism::ScramSha256 => scram(Sha256, false),
        Mechanism::ScramSha256Plus => scram(Sha256, true),
        Mechanism::ScramSha512 => scram(Sha512, false),
        Mechanism::ScramSha512Plus => scram(Sha512, true),
        Mechanism::Plain => Box::new(plain::PlainClient::new(creds)),
        Mechanism::Login => Box::new(login::LoginClient::new(creds)),
        Mechanism::CramMd5 => Box::new(cram_md5::CramMd5Client::new(creds)),
        Mechanism::DigestMd5 => Box::new(digest_md5::DigestMd5Client::new(creds, rng)),
        Mechanism::XOAuth2 => Box::new(xoauth2::XOAuth2Client::new(creds)),
        Mechanism::OAuthBearer => Box::new(oauthbearer::OAuthBearerClient::new(creds)),
        Mechanism::Anonymous => Box::new(anonymous::AnonymousClient::new(creds)),
        Mechanism::External => Box::new(external::ExternalClient::new(creds)),
    }
}
