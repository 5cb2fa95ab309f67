//! [`HsmError`]: why a token, key or operation failed.

use cryptoki::error::{Error as CkError, RvError};

/// A PKCS#11 failure, with what was being done. Messages never contain a PIN or a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// The module could not be loaded or initialised.
    #[error("cannot load the PKCS#11 module {module}: {reason}")]
    Module {
        /// The module path.
        module: String,
        /// What went wrong.
        reason: String,
    },
    /// No initialised token has this label.
    #[error("no PKCS#11 token labelled {label:?} in {module}")]
    NoToken {
        /// The label asked for.
        label: String,
        /// The module path.
        module: String,
    },
    /// The token refused the user PIN.
    #[error("the PKCS#11 token {token:?} refused the PIN (CKR_PIN_INCORRECT)")]
    WrongPin {
        /// The token label.
        token: String,
    },
    /// The user PIN is locked.
    #[error("the PIN of the PKCS#11 token {token:?} is locked (CKR_PIN_LOCKED)")]
    PinLocked {
        /// The token label.
        token: String,
    },
    /// The PIN could not be read.
    #[error("PKCS#11 PIN: {0}")]
    Pin(String),
    /// No object of the expected kind has this label.
    #[error("no {kind} labelled {label:?} on the PKCS#11 token {token:?}")]
    MissingObject {
        /// "EC private key", "EC public key" or "AES key".
        kind: &'static str,
        /// The object label.
        label: String,
        /// The token label.
        token: String,
    },
    /// More than one object of the kind has this label.
    #[error("{count} objects of kind {kind} are labelled {label:?} on the PKCS#11 token {token:?}")]
    Ambiguous {
        /// The object kind.
        kind: &'static str,
        /// The object label.
        label: String,
        /// How many were found.
        count: usize,
        /// The token label.
        token: String,
    },
    /// An object with this label exists already (import and generate refuse to overwrite).
    #[error("an object labelled {label:?} exists already on the PKCS#11 token {token:?}")]
    Exists {
        /// The object label.
        label: String,
        /// The token label.
        token: String,
    },
    /// The key's curve is neither P-256 nor brainpoolP256r1, or its attributes are malformed.
    #[error("the key {label:?} on the PKCS#11 token: {reason}")]
    BadKey {
        /// The object label.
        label: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A PKCS#11 call failed.
    #[error("PKCS#11 {op} failed: {source}")]
    Call {
        /// The operation.
        op: &'static str,
        /// The module's answer.
        source: CkError,
    },
    /// A key file could not be used.
    #[error("{0}")]
    Crypto(#[from] rsp_crypto::CryptoError),
}

impl HsmError {
    pub(crate) fn call(op: &'static str) -> impl FnOnce(CkError) -> HsmError {
        move |source| HsmError::Call { op, source }
    }
}

/// The return value of a failed call, if it came from the module.
pub(crate) fn rv(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}
