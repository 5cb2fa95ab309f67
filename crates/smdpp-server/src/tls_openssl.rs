//! The OpenSSL TLS backend (`smdpp serve --tls-backend openssl`): what SGP.22 v2.2 section
//! 2.6.6 asks of the ES9+ server and rustls cannot do.
//!
//! | 2.6.6 | this backend |
//! |---|---|
//! | TLS 1.2 (1.3 anticipated) | TLS 1.2 and TLS 1.3 |
//! | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 | offered (`ECDHE-ECDSA-AES128-GCM-SHA256`) |
//! | TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 | offered (`ECDHE-ECDSA-AES128-SHA256`) |
//! | sha256/ecdsa for the ServerKeyExchange | the only TLS 1.2 signature algorithm offered |
//! | named curves secp256r1 (23), brainpoolP256r1 (26) | both, for key exchange and as the curve of CERT.DP.TLS |
//! | FRP256V1 (0xFE00) | not offered: no TLS stack we can link implements it |
//!
//! In TLS 1.3 (not the subject of 2.6.6) the suites are AES-128-GCM, AES-256-GCM and
//! ChaCha20-Poly1305 and the groups P-256 and X25519 (OpenSSL 3.0 has no TLS 1.3 brainpool
//! group). The server's suite and group order wins over the client's.
//!
//! The DPtls certificate may be on P-256 or brainpoolP256r1 (SGP.26 `CERT_S_SM_DP_TLS_BRP`);
//! its key is a PEM file (PKCS#8 or SEC1) and must match the certificate. Like the rustls
//! backend ([`crate::tls`]), the server *requests* a client certificate without requiring one:
//! ES2+ callers are authorised by its fingerprint in the ES2+ handler, so the chain is not
//! validated here, while OpenSSL still checks the client's CertificateVerify signature.
//! ALPN: `h2` and `http/1.1`, as with rustls.

use std::path::Path;
use std::sync::Arc;

use openssl::ec::EcKey;
use openssl::pkey::PKey;
use openssl::ssl::{
    AlpnError, SslAcceptor, SslMethod, SslOptions, SslVerifyMode, SslVersion, select_next_proto,
};
use openssl::x509::X509;

/// TLS 1.2 suites, in the server's order of preference (SGP.22 2.6.6).
pub const TLS12_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256";
/// TLS 1.3 suites.
pub const TLS13_CIPHERSUITES: &str =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
/// Key exchange groups, in the server's order of preference: the two curves of 2.6.6, then
/// X25519 for TLS 1.3 clients.
pub const GROUPS: &str = "P-256:brainpoolP256r1:X25519";
/// Signature algorithms: ECDSA with SHA-256 (in TLS 1.2 not tied to a curve, so it serves
/// a brainpool certificate too; in TLS 1.3 only P-256).
pub const SIGALGS: &str = "ECDSA+SHA256";

/// Why the OpenSSL TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenSslSetupError {
    /// A file could not be read.
    #[error("cannot read {what} from {path}: {source}")]
    Read {
        /// "certificate chain" or "private key".
        what: &'static str,
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate found in {0}")]
    NoCertificate(String),
    /// The key is not an EC key on P-256 or brainpoolP256r1.
    #[error("the TLS private key must be an EC key on P-256 or brainpoolP256r1 (PKCS#8 or SEC1)")]
    UnsupportedKey,
    /// The key does not belong to the first certificate.
    #[error("the TLS private key does not match the certificate")]
    KeyMismatch,
    /// OpenSSL refused a part of the configuration.
    #[error("OpenSSL TLS configuration ({what}): {source}")]
    OpenSsl {
        /// The step that failed.
        what: &'static str,
        /// OpenSSL's error stack.
        source: openssl::error::ErrorStack,
    },
}

fn step(what: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> OpenSslSetupError {
    move |source| OpenSslSetupError::OpenSsl { what, source }
}

/// Curve names (OpenSSL NIDs) a DPtls key may use.
fn supported_curve(key: &EcKey<openssl::pkey::Private>) -> bool {
    let nid = key.group().curve_name();
    nid == Some(openssl::nid::Nid::X9_62_PRIME256V1)
        || nid == Some(openssl::nid::Nid::BRAINPOOL_P256R1)
}

/// Builds the acceptor from a PEM chain (leaf first) and the PEM key of its leaf.
pub fn acceptor_from_pem(
    chain_pem: &[u8],
    chain_shown: &str,
    key_pem: &[u8],
) -> Result<SslAcceptor, OpenSslSetupError> {
    let chain = X509::stack_from_pem(chain_pem).map_err(step("certificate chain"))?;
    let mut certs = chain.into_iter();
    let Some(leaf) = certs.next() else {
        return Err(OpenSslSetupError::NoCertificate(chain_shown.to_owned()));
    };
    let key = PKey::private_key_from_pem(key_pem).map_err(|_| OpenSslSetupError::UnsupportedKey)?;
    let ec = key
        .ec_key()
        .map_err(|_| OpenSslSetupError::UnsupportedKey)?;
    if !supported_curve(&ec) {
        return Err(OpenSslSetupError::UnsupportedKey);
    }
    let leaf_key = leaf.public_key().map_err(step("certificate public key"))?;
    if !leaf_key.public_eq(&key) {
        return Err(OpenSslSetupError::KeyMismatch);
    }

    let mut b =
        SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).map_err(step("context"))?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(step("protocol versions"))?;
    b.set_max_proto_version(Some(SslVersion::TLS1_3))
        .map_err(step("protocol versions"))?;
    b.set_cipher_list(TLS12_CIPHERS)
        .map_err(step("TLS 1.2 cipher list"))?;
    b.set_ciphersuites(TLS13_CIPHERSUITES)
        .map_err(step("TLS 1.3 cipher suites"))?;
    b.set_groups_list(GROUPS).map_err(step("groups"))?;
    b.set_sigalgs_list(SIGALGS)
        .map_err(step("signature algorithms"))?;
    b.set_options(
        SslOptions::CIPHER_SERVER_PREFERENCE | SslOptions::NO_RENEGOTIATION | SslOptions::NO_TICKET,
    );
    b.set_certificate(&leaf).map_err(step("certificate"))?;
    for extra in certs {
        b.add_extra_chain_cert(extra)
            .map_err(step("certificate chain"))?;
    }
    b.set_private_key(&key).map_err(step("private key"))?;
    b.check_private_key()
        .map_err(|_| OpenSslSetupError::KeyMismatch)?;
    // Request, do not require, a client certificate (ES2+ mutual TLS, SGP.22 section 6.1);
    // its chain is not validated here (authorisation by pinned fingerprint, crate::es2).
    b.set_verify_callback(SslVerifyMode::PEER, |_preverified, _ctx| true);
    b.set_alpn_select_callback(|_, client| {
        select_next_proto(b"\x02h2\x08http/1.1", client).ok_or(AlpnError::NOACK)
    });
    Ok(b.build())
}

/// Reads the chain and key PEM files and builds the acceptor ([`acceptor_from_pem`]).
pub fn acceptor_from_pem_files(
    cert_chain_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
) -> Result<Arc<SslAcceptor>, OpenSslSetupError> {
    let read = |what: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| OpenSslSetupError::Read {
            what,
            path: path.display().to_string(),
            source,
        })
    };
    let chain_path = cert_chain_path.as_ref();
    let chain = read("certificate chain", chain_path)?;
    let key = read("private key", key_path.as_ref())?;
    Ok(Arc::new(acceptor_from_pem(
        &chain,
        &chain_path.display().to_string(),
        &key,
    )?))
}
