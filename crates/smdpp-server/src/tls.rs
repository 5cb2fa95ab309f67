//! TLS for ES9+ (SGP.22 v2.2 sections 2.6.6 and 6.1): a rustls `ServerConfig` on the aws-lc-rs
//! provider, with the DPtls certificate chain and key from PEM files.
//!
//! What section 2.6.6 asks and what this configuration does:
//!
//! - TLS 1.2 is the minimum: we offer TLS 1.2 and TLS 1.3 (TLS 1.3 is what lpac/libcurl
//!   negotiates when offered; 2.6.6 anticipates it).
//! - The server SHALL support **TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256** (offered; the only
//!   TLS 1.2 suite we offer) **and TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256**. rustls has no
//!   CBC suites at all, so the second one **cannot be offered**: a client that supports only
//!   the CBC suite (allowed by 2.6.6, "at least one of") cannot connect to this backend; the
//!   OpenSSL backend ([`crate::tls_openssl`], `--tls-backend openssl`) serves them.
//! - For TLS 1.2 the server SHALL select sha256/ecdsa: with a P-256 key rustls signs the
//!   ServerKeyExchange with `ecdsa_secp256r1_sha256`.
//! - Named curves: TLS 1.2 key exchange uses secp256r1 (23) only; TLS 1.3 also accepts X25519
//!   (what TLS 1.3 clients such as libcurl/OpenSSL send first). The group is the first one in
//!   the client's list that we support. **brainpoolP256r1 (26) and FRP256V1 (0xFE00)**,
//!   which 2.6.6 also lists, are not implemented by rustls or aws-lc-rs, neither as key
//!   exchange groups nor as certificate keys: a brainpool-only client, or a brainpool DPtls
//!   certificate (SGP.26 `CERT_S_SM_DP_TLS_BRP`), needs the OpenSSL backend too.
//! - TLS 1.3 suites: AES-128-GCM-SHA256, AES-256-GCM-SHA384, CHACHA20-POLY1305-SHA256.
//! - ALPN: `h2` and `http/1.1` (lpac via libcurl picks `h2`); a client without ALPN gets
//!   HTTP/1.1.
//! - ES9+ uses server authentication only (section 6.1), ES2+ mutual authentication. Both are
//!   served on one listener: [`server_config_with_client_auth`] *requests* a client certificate
//!   but does not require one (devices present none). A presented certificate must prove
//!   possession of its key (the CertificateVerify signature is checked), but its chain is not
//!   validated here: ES2+ callers are authorised by the SHA-256 fingerprint of their
//!   certificate, pinned per operator, in the ES2+ handler ([`crate::es2`]).
//!
//! The key must be ECDSA on P-256, as PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`); other
//! keys (RSA, Ed25519, P-384, brainpool) are refused at load time, and the key must match the
//! first certificate of the chain.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::aws_lc_rs;
use rustls::crypto::{ActiveKeyExchange, CompletedKeyExchange, CryptoProvider, SupportedKxGroup};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    DigitallySignedStruct, DistinguishedName, NamedGroup, ProtocolVersion, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {what} from {path}: {source}")]
    Pem {
        /// "certificate chain" or "private key".
        what: &'static str,
        /// The file.
        path: String,
        /// The underlying error.
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate found in {0}")]
    NoCertificate(String),
    /// The key is not an ECDSA P-256 key usable by the provider.
    #[error("the TLS private key must be an ECDSA P-256 key (PKCS#8 or SEC1)")]
    UnsupportedKey,
    /// The key does not belong to the first certificate.
    #[error("the TLS private key does not match the certificate: {0}")]
    KeyMismatch(rustls::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration error: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider for ES9+: aws-lc-rs with the SGP.22 2.6.6 suite list and P-256 first.
pub fn es9_crypto_provider() -> CryptoProvider {
    use aws_lc_rs::cipher_suite as cs;
    use aws_lc_rs::kx_group as kx;
    let mut provider = aws_lc_rs::default_provider();
    provider.cipher_suites = vec![
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ];
    provider.kx_groups = vec![kx::SECP256R1, &X25519_TLS13_ONLY];
    provider
}

/// X25519 restricted to TLS 1.3: section 2.6.6 names the curves usable in TLS 1.2
/// (secp256r1, brainpoolP256r1, FRP256V1), and X25519 is not among them.
static X25519_TLS13_ONLY: Tls13Only = Tls13Only(aws_lc_rs::kx_group::X25519);

/// A key exchange group offered for TLS 1.3 only.
#[derive(Debug)]
struct Tls13Only(&'static dyn SupportedKxGroup);

impl SupportedKxGroup for Tls13Only {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, rustls::Error> {
        self.0.start()
    }

    fn start_and_complete(
        &self,
        peer_pub_key: &[u8],
    ) -> Result<CompletedKeyExchange, rustls::Error> {
        self.0.start_and_complete(peer_pub_key)
    }

    fn ffdhe_group(&self) -> Option<rustls::ffdhe_groups::FfdheGroup<'static>> {
        self.0.ffdhe_group()
    }

    fn name(&self) -> NamedGroup {
        self.0.name()
    }

    fn fips(&self) -> bool {
        self.0.fips()
    }

    fn usable_for_version(&self, version: ProtocolVersion) -> bool {
        version == ProtocolVersion::TLSv1_3
    }
}

/// Reads a PEM certificate chain (leaf first).
pub fn load_certificate_chain(
    path: impl AsRef<Path>,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsSetupError::Pem {
            what: "certificate chain",
            path: shown.clone(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsSetupError::NoCertificate(shown));
    }
    Ok(chain)
}

/// Reads a PEM private key (`PRIVATE KEY` or `EC PRIVATE KEY`; the first key in the file).
pub fn load_private_key(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    let path = path.as_ref();
    PrivateKeyDer::from_pem_file(path).map_err(|source| TlsSetupError::Pem {
        what: "private key",
        path: path.display().to_string(),
        source,
    })
}

/// Builds the ES9+ `ServerConfig` from a DER chain (leaf first) and its P-256 key (no client
/// certificates).
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, TlsSetupError> {
    build_server_config(chain, key, false)
}

/// Like [`server_config`], but the server requests (without requiring) a TLS client
/// certificate, which the listener hands to the ES2+ handler (SGP.22 section 6.1: ES2+ uses
/// mutual authentication; ES9+ clients send none and are unaffected).
pub fn server_config_with_client_auth(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, TlsSetupError> {
    build_server_config(chain, key, true)
}

/// Like [`server_config_with_client_auth`], with the DPtls key held by a
/// [`rsp_crypto::KeyCustody`] (an HSM key): every handshake signature is made by it
/// ([`CustodySigningKey`]). The key must be on P-256 (rustls has no brainpool).
pub fn server_config_with_client_auth_custody(
    chain: Vec<CertificateDer<'static>>,
    key: Arc<dyn rsp_crypto::KeyCustody>,
) -> Result<ServerConfig, TlsSetupError> {
    if chain.is_empty() {
        return Err(TlsSetupError::NoCertificate("<memory>".to_owned()));
    }
    let signing_key = CustodySigningKey::new(key).ok_or(TlsSetupError::UnsupportedKey)?;
    finish_server_config(chain, Arc::new(signing_key), true)
}

fn build_server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_auth: bool,
) -> Result<ServerConfig, TlsSetupError> {
    if chain.is_empty() {
        return Err(TlsSetupError::NoCertificate("<memory>".to_owned()));
    }
    if matches!(key, PrivateKeyDer::Pkcs1(_)) {
        return Err(TlsSetupError::UnsupportedKey);
    }
    let provider = es9_crypto_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|_| TlsSetupError::UnsupportedKey)?;
    finish_server_config(chain, signing_key, client_auth)
}

fn finish_server_config(
    chain: Vec<CertificateDer<'static>>,
    signing_key: Arc<dyn rustls::sign::SigningKey>,
    client_auth: bool,
) -> Result<ServerConfig, TlsSetupError> {
    let provider = Arc::new(es9_crypto_provider());
    if signing_key
        .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
        .is_none()
    {
        return Err(TlsSetupError::UnsupportedKey);
    }
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(TlsSetupError::KeyMismatch)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = if client_auth {
        builder.with_client_cert_verifier(Arc::new(OptionalClientCert { provider }))
    } else {
        builder.with_no_client_auth()
    };
    let mut config =
        builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(Arc::new(certified))));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ignore_client_order = true;
    Ok(config)
}

/// Reads the chain and key PEM files and builds the ES9+ `ServerConfig`.
pub fn server_config_from_pem_files(
    cert_chain_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let chain = load_certificate_chain(cert_chain_path)?;
    let key = load_private_key(key_path)?;
    Ok(Arc::new(server_config(chain, key)?))
}

/// Reads the chain and key PEM files and builds [`server_config_with_client_auth`].
pub fn server_config_with_client_auth_from_pem_files(
    cert_chain_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let chain = load_certificate_chain(cert_chain_path)?;
    let key = load_private_key(key_path)?;
    Ok(Arc::new(server_config_with_client_auth(chain, key)?))
}

/// A rustls signing key whose signatures are made by a [`rsp_crypto::KeyCustody`] (for a
/// DPtls key on an HSM): `ecdsa_secp256r1_sha256` only, the token's `r || s` signature
/// re-encoded as the DER `ECDSA-Sig-Value` TLS carries.
#[derive(Clone)]
pub struct CustodySigningKey {
    key: Arc<dyn rsp_crypto::KeyCustody>,
}

impl std::fmt::Debug for CustodySigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustodySigningKey")
            .field("curve", &self.key.curve())
            .finish_non_exhaustive()
    }
}

/// DER prefix of a P-256 `SubjectPublicKeyInfo` (id-ecPublicKey, prime256v1, BIT STRING of
/// 66 bytes), followed by the 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

impl CustodySigningKey {
    /// `None` unless the key is on P-256 (the only ECDSA curve rustls offers for TLS).
    pub fn new(key: Arc<dyn rsp_crypto::KeyCustody>) -> Option<CustodySigningKey> {
        (key.curve() == rsp_crypto::Curve::NistP256).then_some(CustodySigningKey { key })
    }
}

impl rustls::sign::SigningKey for CustodySigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        offered
            .contains(&SignatureScheme::ECDSA_NISTP256_SHA256)
            .then(|| Box::new(self.clone()) as Box<dyn rustls::sign::Signer>)
    }

    fn public_key(&self) -> Option<rustls_pki_types::SubjectPublicKeyInfoDer<'_>> {
        let mut spki = Vec::with_capacity(P256_SPKI_PREFIX.len() + 65);
        spki.extend_from_slice(&P256_SPKI_PREFIX);
        spki.extend_from_slice(self.key.public_key());
        Some(spki.into())
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ECDSA
    }
}

impl rustls::sign::Signer for CustodySigningKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let raw = self
            .key
            .sign(message)
            .map_err(|e| rustls::Error::General(format!("DPtls signature: {e}")))?;
        Ok(rsp_crypto::ecdsa::raw_to_der(&raw))
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP256_SHA256
    }
}

/// Requests a client certificate, accepts its absence, and accepts any presented certificate
/// whose holder proves possession of the key (handshake signature). Authorisation is by
/// fingerprint, later, in the ES2+ handler.
#[derive(Debug)]
struct OptionalClientCert {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for OptionalClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Pinned by fingerprint in the ES2+ handler; no chain validation here.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
