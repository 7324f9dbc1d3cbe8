//! TLS plumbing for the tokio drivers: certificates, rustls configurations and a
//! summary of a finished handshake.
//!
//! SMTP reaches TLS in two ways, both built on the configurations made here:
//! STARTTLS (RFC 3207) upgrades a plain connection after a `220` reply, and implicit
//! TLS (RFC 8314 §3) starts the handshake at once. Either way RFC 4954 §4 lets a server
//! refuse plaintext mechanisms until TLS is up, and RFC 4422 §5 EXTERNAL may take its
//! identity from the client certificate, so the server side can optionally ask for one.
//!
//! Every configuration names the `ring` provider explicitly rather than relying on a
//! process-wide default, so two crates in one binary that picked different providers
//! cannot make `builder()` panic at run time.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::SignatureScheme;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CommonState, DistinguishedName, ProtocolVersion, RootCertStore};

/// PEM files bigger than this are refused before parsing: a certificate chain or a CA
/// bundle is a few hundred KiB at most, and the driver must bound every buffer.
pub const MAX_PEM_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// What went wrong while preparing TLS. Each variant names the file or the step, so a
/// user who passed `--tls-cert`/`--tls-key`/`--tls-ca-file` knows what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate file could not be opened or read.
    CertFileUnreadable {
        /// The file as given.
        path: PathBuf,
        /// The underlying error, in words.
        reason: String,
    },
    /// The private key file could not be opened or read.
    KeyFileUnreadable {
        /// The file as given.
        path: PathBuf,
        /// The underlying error, in words.
        reason: String,
    },
    /// A PEM file is larger than [`MAX_PEM_FILE_BYTES`].
    FileTooLarge {
        /// The file as given.
        path: PathBuf,
        /// The bound in octets.
        limit: u64,
    },
    /// A PEM section in the file is broken (bad base64, missing END line, ...).
    MalformedPem {
        /// The file as given.
        path: PathBuf,
        /// The underlying error, in words.
        reason: String,
    },
    /// The certificate file holds no `CERTIFICATE` section.
    NoCertificateInFile {
        /// The file as given.
        path: PathBuf,
    },
    /// The key file holds no `PRIVATE KEY` / `RSA PRIVATE KEY` / `EC PRIVATE KEY` section.
    NoPrivateKeyInFile {
        /// The file as given.
        path: PathBuf,
    },
    /// The CA file is unreadable, malformed, or holds no certificate usable as a trust anchor.
    InvalidCaFile {
        /// The file as given.
        path: PathBuf,
        /// The underlying error, in words.
        reason: String,
    },
    /// The private key does not belong to the first certificate of the chain.
    KeyDoesNotMatchCertificate,
    /// `self_signed` was given no host name to put in the certificate.
    NoHostnames,
    /// rustls refused the configuration.
    Rustls(String),
    /// rcgen could not generate the certificate.
    Rcgen(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::CertFileUnreadable { path, reason } => {
                write!(
                    f,
                    "cannot read certificate file {}: {reason}",
                    path.display()
                )
            }
            TlsError::KeyFileUnreadable { path, reason } => {
                write!(
                    f,
                    "cannot read private key file {}: {reason}",
                    path.display()
                )
            }
            TlsError::FileTooLarge { path, limit } => {
                write!(f, "{} is larger than {limit} bytes", path.display())
            }
            TlsError::MalformedPem { path, reason } => {
                write!(f, "malformed PEM in {}: {reason}", path.display())
            }
            TlsError::NoCertificateInFile { path } => {
                write!(f, "no CERTIFICATE section in {}", path.display())
            }
            TlsError::NoPrivateKeyInFile { path } => {
                write!(f, "no PRIVATE KEY section in {}", path.display())
            }
            TlsError::InvalidCaFile { path, reason } => {
                write!(f, "invalid CA file {}: {reason}", path.display())
            }
            TlsError::KeyDoesNotMatchCertificate => {
                f.write_str("the private key does not match the certificate")
            }
            TlsError::NoHostnames => f.write_str("a certificate needs at least one host name"),
            TlsError::Rustls(e) => write!(f, "TLS configuration rejected: {e}"),
            TlsError::Rcgen(e) => write!(f, "certificate generation failed: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// A certificate chain and its private key, both as PEM text (to write to disk or hand
/// to a real peer such as Postfix) and as DER (to give to rustls).
pub struct CertAndKey {
    /// The chain as PEM `CERTIFICATE` sections.
    pub cert_pem: String,
    /// The private key as PEM.
    pub key_pem: String,
    /// The chain as DER, leaf first.
    pub certs: Vec<CertificateDer<'static>>,
    /// The private key as DER.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for CertAndKey {
    fn clone(&self) -> Self {
        CertAndKey {
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
            certs: self.certs.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// The private key never appears in logs.
impl fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAndKey")
            .field("certs", &self.certs.len())
            .field("key", &"***")
            .finish()
    }
}

/// A self-signed ECDSA P-256 certificate valid for `hostnames`, with the first one as
/// subject CN. It is an end-entity certificate (no CA basic constraint), so a client
/// can trust it directly as its own anchor with `--tls-ca-file`.
pub fn self_signed(hostnames: &[String]) -> Result<CertAndKey, TlsError> {
    let first = hostnames.first().ok_or(TlsError::NoHostnames)?;
    let mut params = rcgen::CertificateParams::new(hostnames.to_vec())
        .map_err(|e| TlsError::Rcgen(e.to_string()))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, first.as_str());
    let key_pair = rcgen::KeyPair::generate().map_err(|e| TlsError::Rcgen(e.to_string()))?;
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| TlsError::Rcgen(e.to_string()))?;
    let key = PrivateKeyDer::try_from(key_pair.serialize_der())
        .map_err(|e| TlsError::Rcgen(e.to_string()))?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key_pair.serialize_pem(),
        certs: vec![cert.der().clone()],
        key,
    })
}

/// Reads at most [`MAX_PEM_FILE_BYTES`] of `path`; `unreadable` builds the error for
/// this file's role (certificate, key or CA).
fn read_bounded(
    path: &Path,
    unreadable: impl Fn(PathBuf, String) -> TlsError,
) -> Result<Vec<u8>, TlsError> {
    let file =
        std::fs::File::open(path).map_err(|e| unreadable(path.to_path_buf(), e.to_string()))?;
    let mut bytes = Vec::new();
    // Read one byte past the limit so "exactly at the limit" and "over it" differ.
    file.take(MAX_PEM_FILE_BYTES.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(path.to_path_buf(), e.to_string()))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_PEM_FILE_BYTES {
        return Err(TlsError::FileTooLarge {
            path: path.to_path_buf(),
            limit: MAX_PEM_FILE_BYTES,
        });
    }
    Ok(bytes)
}

fn parse_certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        certs.push(item.map_err(|e| TlsError::MalformedPem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?);
    }
    Ok(certs)
}

/// Loads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1
/// or SEC1), as Postfix's `smtpd_tls_cert_file` / `smtpd_tls_key_file` hold them.
pub fn load_cert_and_key(cert_path: &Path, key_path: &Path) -> Result<CertAndKey, TlsError> {
    let cert_bytes = read_bounded(cert_path, |path, reason| TlsError::CertFileUnreadable {
        path,
        reason,
    })?;
    let certs = parse_certs(cert_path, &cert_bytes)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificateInFile {
            path: cert_path.to_path_buf(),
        });
    }

    let key_bytes = read_bounded(key_path, |path, reason| TlsError::KeyFileUnreadable {
        path,
        reason,
    })?;
    let key = match PrivateKeyDer::from_pem_slice(&key_bytes) {
        Ok(key) => key,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            return Err(TlsError::NoPrivateKeyInFile {
                path: key_path.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(TlsError::MalformedPem {
                path: key_path.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };

    Ok(CertAndKey {
        cert_pem: String::from_utf8_lossy(&cert_bytes).into_owned(),
        key_pem: String::from_utf8_lossy(&key_bytes).into_owned(),
        certs,
        key,
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS 1.2 stays enabled because submission servers in the field still speak it, and a
/// conformance tool must be able to reach them.
const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn rustls_error(e: rustls::Error) -> TlsError {
    match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyDoesNotMatchCertificate,
        other => TlsError::Rustls(other.to_string()),
    }
}

fn load_roots(ca_file: &Path) -> Result<RootCertStore, TlsError> {
    let invalid = |reason: String| TlsError::InvalidCaFile {
        path: ca_file.to_path_buf(),
        reason,
    };
    let bytes = read_bounded(ca_file, |_, reason| invalid(reason))?;
    let certs = parse_certs(ca_file, &bytes).map_err(|e| invalid(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(invalid("no usable CERTIFICATE section".to_owned()));
    }
    Ok(roots)
}

/// Whether the server asks the client for a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// No CertificateRequest: the usual SMTP server.
    None,
    /// Ask for a certificate, accept any (or none), and only check that the client
    /// holds its key. For SASL EXTERNAL tests, where the identity is then read from
    /// [`TlsInfo::peer_subject`]; it proves nothing about who the client is.
    AcceptAny,
    /// Ask for a certificate and accept only one that chains to a CA in `ca_file`;
    /// a client without a certificate is still let in.
    WebPki {
        /// PEM file of the CAs to trust.
        ca_file: PathBuf,
    },
}

/// A rustls server configuration (TLS 1.3 and 1.2, `ring`) presenting `certs` and `key`.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_auth: &ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = provider();
    let verifier: Arc<dyn ClientCertVerifier> = match client_auth {
        ClientAuth::None => Arc::new(rustls::server::NoClientAuth),
        ClientAuth::AcceptAny => Arc::new(AcceptAnyClientCert {
            algorithms: provider.signature_verification_algorithms,
        }),
        ClientAuth::WebPki { ca_file } => WebPkiClientVerifier::builder_with_provider(
            Arc::new(load_roots(ca_file)?),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Rustls(e.to_string()))?,
    };
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(rustls_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(rustls_error)?;
    Ok(Arc::new(config))
}

/// How the client checks the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerVerification {
    /// Full WebPKI path and name validation, against `ca_file` when given and otherwise
    /// against the Mozilla roots compiled in from `webpki-roots` (not the system store,
    /// so results do not depend on the machine).
    WebPki {
        /// PEM file of the CAs to trust instead of the built-in roots.
        ca_file: Option<PathBuf>,
    },
    /// Accept any certificate for any name. Only for `--tls-insecure`: it keeps the
    /// channel encrypted against a passive observer but not against an active one.
    Insecure,
}

fn client_builder(
    verification: &ServerVerification,
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>, TlsError>
{
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(rustls_error)?;
    Ok(match verification {
        ServerVerification::WebPki { ca_file: Some(ca) } => {
            builder.with_root_certificates(load_roots(ca)?)
        }
        ServerVerification::WebPki { ca_file: None } => {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            builder.with_root_certificates(roots)
        }
        ServerVerification::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert { algorithms })),
    })
}

/// A rustls client configuration (TLS 1.3 and 1.2, `ring`) with no client certificate.
pub fn client_config(
    verification: &ServerVerification,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    Ok(Arc::new(
        client_builder(verification)?.with_no_client_auth(),
    ))
}

/// Like [`client_config`], presenting `certs`/`key` when the server asks (RFC 4422
/// EXTERNAL over TLS).
pub fn client_config_with_cert(
    verification: &ServerVerification,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let config = client_builder(verification)?
        .with_client_auth_cert(certs, key)
        .map_err(rustls_error)?;
    Ok(Arc::new(config))
}

/// `--tls-insecure`: trusts every certificate, but still checks the handshake
/// signatures so the peer must at least hold the key of the certificate it sent.
#[derive(Debug)]
struct AcceptAnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// See [`ClientAuth::AcceptAny`].
#[derive(Debug)]
struct AcceptAnyClientCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AcceptAnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // An empty list tells the client any certificate it has will do.
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What a report says about a TLS session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `"TLSv1.3"`, `"TLSv1.2"`, or `"none"` before the handshake finished.
    pub version: String,
    /// IANA-style suite name, e.g. `"TLS13_AES_256_GCM_SHA384"`; `"none"` before the handshake.
    pub cipher: String,
    /// Subject DN of the peer's end-entity certificate, e.g. `"CN=smtp.peers.test"`.
    pub peer_subject: Option<String>,
    /// The certificate's notAfter, RFC 3339 in UTC, e.g. `"2030-01-01T00:00:00Z"`.
    pub peer_not_after: Option<String>,
    /// The server name indication: what the client asked for, as the server saw it.
    /// rustls does not expose it on the client side, see [`TlsInfo::with_sni`].
    pub sni: Option<String>,
}

impl TlsInfo {
    /// Records the name the client put in its ClientHello, which the client's caller knows.
    pub fn with_sni(mut self, sni: Option<String>) -> TlsInfo {
        self.sni = sni;
        self
    }
}

fn version_name(version: Option<ProtocolVersion>) -> String {
    match version {
        None => "none".to_owned(),
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(other) => format!("{other:?}"),
    }
}

fn rfc3339(t: x509_parser::time::ASN1Time) -> String {
    let dt = t.to_datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

fn tls_info(common: &CommonState, sni: Option<String>) -> TlsInfo {
    let cipher = match common.negotiated_cipher_suite() {
        None => "none".to_owned(),
        Some(suite) => {
            let id = suite.suite();
            id.as_str().map_or_else(|| format!("{id:?}"), str::to_owned)
        }
    };
    // The leaf comes first (RFC 8446 §4.4.2). A certificate x509-parser cannot read is
    // reported as having no subject rather than failing the session.
    let leaf = common
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|der| x509_parser::parse_x509_certificate(der.as_ref()).ok())
        .map(|(_, cert)| {
            (
                cert.subject().to_string(),
                rfc3339(cert.validity().not_after),
            )
        });
    let (peer_subject, peer_not_after) = match leaf {
        Some((subject, not_after)) => (Some(subject), Some(not_after)),
        None => (None, None),
    };
    TlsInfo {
        version: version_name(common.protocol_version()),
        cipher,
        peer_subject,
        peer_not_after,
        sni,
    }
}

/// The client's view: the peer is the server. `sni` is `None`; add it with [`TlsInfo::with_sni`].
pub fn tls_info_from_client(conn: &rustls::ClientConnection) -> TlsInfo {
    tls_info(conn, None)
}

/// The server's view: the peer is the client (subject only when it sent a certificate).
pub fn tls_info_from_server(conn: &rustls::ServerConnection) -> TlsInfo {
    tls_info(conn, conn.server_name().map(str::to_owned))
}

/// RFC 9266 `tls-exporter` for this connection: the exporter with the label
/// `EXPORTER-Channel-Binding`, an empty context and 32 octets. rustls refuses
/// exporting before the handshake completes; then there is no binding.
pub fn tls_exporter<Data>(conn: &rustls::ConnectionCommon<Data>) -> Option<Vec<u8>> {
    use crate::sasl::channel_binding::{TLS_EXPORTER_LABEL, TLS_EXPORTER_LEN};
    conn.export_keying_material(vec![0u8; TLS_EXPORTER_LEN], TLS_EXPORTER_LABEL, Some(&[]))
        .ok()
}

/// RFC 5929 §4.1 `tls-server-end-point` for `cert_der`, with the hash its signature
/// algorithm calls for; `None` when the certificate does not parse or its algorithm
/// has no single hash (Ed25519).
pub fn tls_server_end_point(cert_der: &[u8]) -> Option<Vec<u8>> {
    use crate::sasl::channel_binding::{server_end_point_hash, signature_hash_of_oid};
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    server_end_point_hash(signature_hash_of_oid(&oid), cert_der)
}

/// The bindings a server hands its session: `tls-exporter` from the connection, and
/// `tls-server-end-point` from its own certificate, computed once by the caller.
pub fn server_channel_bindings(
    conn: &rustls::ServerConnection,
    end_point: Option<&[u8]>,
) -> crate::sasl::channel_binding::ChannelBindings {
    use crate::sasl::channel_binding::{CbType, ChannelBindings};
    let mut b = ChannelBindings::new();
    if let Some(e) = tls_exporter(conn) {
        b = b.with(CbType::TlsExporter, e);
    }
    if let Some(p) = end_point {
        b = b.with(CbType::TlsServerEndPoint, p.to_vec());
    }
    b
}

/// The bindings a client can use: `tls-exporter`, and `tls-server-end-point` from the
/// certificate the server presented.
pub fn client_channel_bindings(
    conn: &rustls::ClientConnection,
) -> crate::sasl::channel_binding::ChannelBindings {
    use crate::sasl::channel_binding::{CbType, ChannelBindings};
    let mut b = ChannelBindings::new();
    if let Some(e) = tls_exporter(conn) {
        b = b.with(CbType::TlsExporter, e);
    }
    if let Some(p) = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| tls_server_end_point(c.as_ref()))
    {
        b = b.with(CbType::TlsServerEndPoint, p);
    }
    b
}
