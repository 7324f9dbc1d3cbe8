//! Channel bindings (RFC 5056) for SCRAM-*-PLUS (RFC 5802 §6). The core computes none
//! of these bytes: the TLS driver hands them in after the handshake
//! ([`crate::smtp::server::ServerSession::set_channel_bindings`],
//! [`crate::smtp::client::ClientSession::set_channel_bindings`]), and the mechanisms
//! only compare and carry them.
//!
//! - `tls-exporter` (RFC 9266 §2): 32 octets of the TLS exporter with the label
//!   `EXPORTER-Channel-Binding` and an empty context. The only type defined for TLS 1.3
//!   (RFC 9266 §3: tls-unique "MUST NOT" be used with TLS 1.3).
//! - `tls-server-end-point` (RFC 5929 §4.1): a hash of the server's certificate, with
//!   the certificate's own signature hash, except that MD5 and SHA-1 become SHA-256
//!   ([`server_end_point_hash`]).
//! - `tls-unique` (RFC 5929 §3): the first Finished message of TLS ≤ 1.2. rustls does not
//!   expose it, so authspec never offers it; a client that asks for it is answered with
//!   RFC 5802 §7's `unsupported-channel-binding-type`.

use super::Secret;
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::fmt;

/// RFC 9266 §2: the exporter label of `tls-exporter`.
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";
/// RFC 9266 §2: "the length of the exported keying material is 32 bytes".
pub const TLS_EXPORTER_LEN: usize = 32;

/// A channel-binding type (`cb-name` of RFC 5802 §7), as registered with IANA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CbType {
    /// `tls-exporter` (RFC 9266): the TLS exporter, defined for TLS 1.3 and 1.2.
    TlsExporter,
    /// `tls-server-end-point` (RFC 5929 §4): a hash of the server's certificate.
    TlsServerEndPoint,
    /// `tls-unique` (RFC 5929 §3): never available here (rustls does not expose it).
    TlsUnique,
}

impl CbType {
    /// Every type authspec knows the name of, in its order of preference.
    pub const ALL: [CbType; 3] = [
        CbType::TlsExporter,
        CbType::TlsServerEndPoint,
        CbType::TlsUnique,
    ];

    /// The types a TLS connection here can bind with, in the default order of preference
    /// (`authspec_sasl_channel_binding_types`, `authspec_smtp_channel_binding_types`).
    pub const AVAILABLE: [CbType; 2] = [CbType::TlsExporter, CbType::TlsServerEndPoint];

    /// The IANA-registered name, as in the GS2 header's `p=` (RFC 5802 §7).
    pub const fn name(self) -> &'static str {
        match self {
            CbType::TlsExporter => "tls-exporter",
            CbType::TlsServerEndPoint => "tls-server-end-point",
            CbType::TlsUnique => "tls-unique",
        }
    }

    /// `cb-name = 1*(ALPHA / DIGIT / "." / "-")` is compared exactly: RFC 5056 §7
    /// registers names in lower case and SCRAM does not fold them.
    pub fn from_name(name: &[u8]) -> Option<CbType> {
        CbType::ALL
            .into_iter()
            .find(|t| t.name().as_bytes() == name)
    }
}

impl fmt::Display for CbType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The binding data of one TLS connection, one entry per type the driver could compute.
/// `Debug` shows which types are present and their lengths, not the octets (they are not
/// secret, RFC 9266 §4, but they identify a session).
#[derive(Clone, Default)]
pub struct ChannelBindings {
    tls_exporter: Option<Secret>,
    tls_server_end_point: Option<Secret>,
}

impl ChannelBindings {
    /// A connection with no binding data: -PLUS is not offered.
    pub fn new() -> ChannelBindings {
        ChannelBindings::default()
    }

    /// Adds the data of `cb_type` (`tls-unique` is dropped: it is never offered).
    pub fn with(mut self, cb_type: CbType, data: Vec<u8>) -> ChannelBindings {
        match cb_type {
            CbType::TlsExporter => self.tls_exporter = Some(Secret::new(data)),
            CbType::TlsServerEndPoint => self.tls_server_end_point = Some(Secret::new(data)),
            // Never supplied by rustls; kept out so nothing can offer it.
            CbType::TlsUnique => {}
        }
        self
    }

    /// The data for `cb_type`, if this connection has it.
    pub fn get(&self, cb_type: CbType) -> Option<&[u8]> {
        match cb_type {
            CbType::TlsExporter => self.tls_exporter.as_ref().map(Secret::expose),
            CbType::TlsServerEndPoint => self.tls_server_end_point.as_ref().map(Secret::expose),
            CbType::TlsUnique => None,
        }
    }

    /// The types this connection has data for, in order of preference.
    pub fn types(&self) -> Vec<CbType> {
        CbType::ALL
            .into_iter()
            .filter(|t| self.get(*t).is_some())
            .collect()
    }

    /// True when the connection has data of no type, so -PLUS cannot be used.
    pub fn is_empty(&self) -> bool {
        self.types().is_empty()
    }

    /// Keeps only the types in `allowed` (the server's policy).
    pub(crate) fn restrict(&self, allowed: &[CbType]) -> ChannelBindings {
        let mut out = ChannelBindings::new();
        for t in self.types() {
            if allowed.contains(&t) {
                if let Some(d) = self.get(t) {
                    out = out.with(t, d.to_vec());
                }
            }
        }
        out
    }
}

impl fmt::Debug for ChannelBindings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_map();
        for t in self.types() {
            l.entry(
                &t.name(),
                &format_args!("{} octets", self.get(t).map_or(0, <[u8]>::len)),
            );
        }
        l.finish()
    }
}

/// What the server side of SCRAM knows about channel binding on this connection.
#[derive(Clone, Debug, Default)]
pub struct ServerBinding {
    /// The data of the types the server accepts here (policy applied).
    pub bindings: ChannelBindings,
    /// Whether this session advertised a -PLUS mechanism. RFC 5802 §6: a client that
    /// sends `y` to such a server is being downgraded, and the server "MUST fail".
    pub plus_advertised: bool,
}

/// What the client side of SCRAM uses.
#[derive(Clone, Debug, Default)]
pub struct ClientBinding {
    /// The binding to send with a -PLUS mechanism (`p=<type>`), if the connection has
    /// one the client wants.
    pub binding: Option<(CbType, Vec<u8>)>,
    /// The client could bind (it runs over TLS with binding data) but uses a non-PLUS
    /// mechanism: it sends `y` (RFC 5802 §6), which lets a server that did offer -PLUS
    /// catch a downgrade. Without it the client sends `n`.
    pub supported: bool,
}

/// A certificate signature's hash, as far as RFC 5929 §4.1 needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureHash {
    /// MD5. RFC 5929 §4.1 replaces it with SHA-256.
    Md5,
    /// SHA-1. RFC 5929 §4.1 replaces it with SHA-256.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// A signature algorithm with no single hash (Ed25519, Ed448) or an unknown one.
    Other,
}

/// RFC 5929 §4.1 `tls-server-end-point`: "if the certificate's signatureAlgorithm uses a
/// single hash function and that hash function is either MD5 or SHA-1, then use SHA-256;
/// if the certificate's signatureAlgorithm uses a single hash function and that hash
/// function neither MD5 nor SHA-1, then use the hash function associated with the
/// certificate's signatureAlgorithm; if the certificate's signatureAlgorithm uses no
/// hash functions or uses multiple hash functions, then this channel binding type's
/// channel bindings are undefined at this time". `None` for the last case.
pub fn server_end_point_hash(sig: SignatureHash, certificate_der: &[u8]) -> Option<Vec<u8>> {
    match sig {
        SignatureHash::Md5 | SignatureHash::Sha1 | SignatureHash::Sha256 => {
            Some(Sha256::digest(certificate_der).to_vec())
        }
        SignatureHash::Sha384 => Some(Sha384::digest(certificate_der).to_vec()),
        SignatureHash::Sha512 => Some(Sha512::digest(certificate_der).to_vec()),
        SignatureHash::Other => None,
    }
}

/// The hash of a certificate's `signatureAlgorithm` OID (dotted form), for
/// [`server_end_point_hash`]. RSA PKCS#1 v1.5 and ECDSA are single-hash; RSASSA-PSS
/// names its hash in parameters this function does not read, so it is `Other`.
pub fn signature_hash_of_oid(oid: &str) -> SignatureHash {
    match oid {
        "1.2.840.113549.1.1.4" => SignatureHash::Md5,
        "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" | "1.3.14.3.2.29" => SignatureHash::Sha1,
        "1.2.840.113549.1.1.11" | "1.2.840.10045.4.3.2" => SignatureHash::Sha256,
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => SignatureHash::Sha384,
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => SignatureHash::Sha512,
        _ => SignatureHash::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5929_hash_choice() {
        let cert = b"not really DER";
        assert_eq!(
            server_end_point_hash(SignatureHash::Sha1, cert),
            Some(Sha256::digest(cert).to_vec())
        );
        assert_eq!(
            server_end_point_hash(SignatureHash::Md5, cert),
            Some(Sha256::digest(cert).to_vec())
        );
        assert_eq!(
            server_end_point_hash(SignatureHash::Sha384, cert).map(|h| h.len()),
            Some(48)
        );
        assert_eq!(server_end_point_hash(SignatureHash::Other, cert), None);
        assert_eq!(
            signature_hash_of_oid("1.2.840.10045.4.3.2"),
            SignatureHash::Sha256
        );
        assert_eq!(signature_hash_of_oid("1.3.101.112"), SignatureHash::Other);
    }

    #[test]
    fn tls_unique_is_never_held() {
        let b = ChannelBindings::new()
            .with(CbType::TlsUnique, vec![1; 12])
            .with(CbType::TlsExporter, vec![2; 32]);
        assert_eq!(b.types(), vec![CbType::TlsExporter]);
        let dbg = format!("{b:?}");
        assert!(
            dbg.contains("tls-exporter") && dbg.contains("32 octets"),
            "{dbg}"
        );
        assert_eq!(CbType::from_name(b"TLS-EXPORTER"), None);
        assert_eq!(
            CbType::from_name(b"tls-server-end-point"),
            Some(CbType::TlsServerEndPoint)
        );
    }
}
