//! Errors of the simulator.

use std::path::Path;

/// Errors of state handling and setup (not protocol results: those are typed ES10 responses).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// File system error.
    #[error("{path}: {detail}")]
    Io {
        /// The path involved.
        path: String,
        /// The OS error.
        detail: String,
    },
    /// Certificate or key problem.
    #[error("PKI: {0}")]
    Pki(String),
    /// Bad input from the user or caller.
    #[error("{0}")]
    InvalidInput(String),
    /// Crypto backend failure.
    #[error("crypto: {0}")]
    Crypto(String),
}

impl SimError {
    pub(crate) fn io(path: &Path, e: &std::io::Error) -> SimError {
        SimError::Io {
            path: path.display().to_string(),
            detail: e.to_string(),
        }
    }
}

impl From<rsp_crypto::CryptoError> for SimError {
    fn from(e: rsp_crypto::CryptoError) -> Self {
        SimError::Crypto(e.to_string())
    }
}

/// An ES10 command refused at the transport level (SGP.22 section 5.7.2): these become status
/// words on the APDU face. Function-specific errors are carried in the response data instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Es10Error {
    /// Not a DER data object, or malformed for its tag: `6A80`.
    #[error("incorrect values in command data (6A80)")]
    InvalidData,
    /// Unknown or unsupported command tag: `6A88`.
    #[error("reference data not found / unsupported command (6A88)")]
    UnknownCommand,
    /// Command not allowed now (e.g. LoadBoundProfilePackage without an RSP session): `6985`.
    #[error("conditions of use not satisfied (6985)")]
    ConditionsNotSatisfied,
}

impl Es10Error {
    /// The status word.
    pub fn sw(self) -> u16 {
        match self {
            Es10Error::InvalidData => 0x6A80,
            Es10Error::UnknownCommand => 0x6A88,
            Es10Error::ConditionsNotSatisfied => 0x6985,
        }
    }
}
