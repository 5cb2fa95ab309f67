//! The error type of this crate.

use crate::curve::Curve;

/// Why a cryptographic operation failed. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A public key is not a valid point on the expected curve (or not a SEC1 encoding).
    #[error("invalid public key for {0}")]
    InvalidPublicKey(Curve),
    /// A signature failed to verify.
    #[error("signature verification failed")]
    BadSignature,
    /// A signature is not well formed (wrong length, bad DER, zero or out-of-range r/s).
    #[error("malformed signature: {0}")]
    MalformedSignature(&'static str),
    /// A private key could not be parsed or is out of range.
    #[error("invalid private key: {0}")]
    InvalidPrivateKey(&'static str),
    /// A PEM document could not be parsed.
    #[error("invalid PEM: {0}")]
    Pem(&'static str),
    /// The curve of a key or parameter does not match (or is not supported).
    #[error("curve mismatch or unsupported curve")]
    CurveMismatch,
    /// Key agreement failed (for example the peer point is the identity).
    #[error("key agreement failed")]
    Agreement,
    /// A secure-channel (SCP03t) check failed: MAC mismatch or bad padding.
    #[error("SCP03t security error: {0}")]
    Scp03tSecurity(&'static str),
    /// A secure-channel (SCP03t) segment is not structured as expected.
    #[error("SCP03t structure error: {0}")]
    Scp03tStructure(&'static str),
    /// A value is too large for the operation (for example a segment over 1020 bytes).
    #[error("length error: {0}")]
    Length(&'static str),
    /// DER decoding failed.
    #[error("decode error: {0}")]
    Decode(#[from] rsp_asn1::DecodeError),
    /// The random generator or the crypto backend failed.
    #[error("crypto backend failure: {0}")]
    Backend(&'static str),
}
