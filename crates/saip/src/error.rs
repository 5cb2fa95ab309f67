//! Errors: where in the package a decode failed (PE index, PE type, component path) and
//! why, plus the errors of the personalization API.

use rsp_asn1::{DecodeError, Tag};

/// Why a component could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A DER-level or constraint error reported by the `rsp-asn1` TLV layer.
    #[error(transparent)]
    Der(#[from] DecodeError),
    /// A component whose tag the schema does not allow at this position (out of order,
    /// duplicated, or unknown).
    #[error("unexpected component with tag {0}")]
    UnexpectedComponent(Tag),
    /// A schema rule that is not a plain DER rule (DEFAULT value encoded, size, order...).
    #[error("{0}")]
    Constraint(&'static str),
}

/// A decode failure located in the package: `PE #3 (usim) / templateID: expected tag 80,
/// found 81`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeFailure {
    /// Index of the Profile Element (0-based) in the package, when the failure is inside one.
    pub index: Option<usize>,
    /// The ProfileElement alternative name (`usim`, `akaParameter`, ...) when known.
    pub pe: Option<&'static str>,
    /// Component names from the PE down to the faulty element (`ef-imsi`, `fileDescriptor`,
    /// `fileID`).
    pub path: Vec<String>,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl std::fmt::Display for DecodeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.index, self.pe) {
            (Some(i), Some(pe)) => write!(f, "PE #{i} ({pe})")?,
            (Some(i), None) => write!(f, "PE #{i}")?,
            _ => write!(f, "UPP")?,
        }
        for seg in &self.path {
            write!(f, " / {seg}")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for DecodeFailure {}

/// Every error of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaipError {
    /// The package (or one PE) is not a valid SAIP 3.3.1 DER encoding.
    #[error("{0}")]
    Decode(#[from] DecodeFailure),
    /// The element the operation needs is not in the package.
    #[error("not found in the profile package: {0}")]
    NotFound(&'static str),
    /// A value given to the personalization API (or found in the package) is unusable.
    #[error("invalid {what}: {why}")]
    InvalidValue {
        /// The value at fault (`ICCID`, `IMSI`, `Ki`, ...).
        what: &'static str,
        /// Why.
        why: &'static str,
    },
}

/// An error on its way out of nested decoders; segments are pushed innermost first.
#[derive(Debug)]
pub(crate) struct Fail {
    pub(crate) path: Vec<String>,
    pub(crate) kind: ErrorKind,
}

impl Fail {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Fail {
            path: Vec::new(),
            kind,
        }
    }

    pub(crate) fn constraint(why: &'static str) -> Self {
        Fail::new(ErrorKind::Constraint(why))
    }

    pub(crate) fn unexpected(tag: Tag) -> Self {
        Fail::new(ErrorKind::UnexpectedComponent(tag))
    }

    /// Attach the PE index and type, reversing the collected path into reading order.
    pub(crate) fn into_failure(
        self,
        index: Option<usize>,
        pe: Option<&'static str>,
    ) -> DecodeFailure {
        let mut path = self.path;
        path.reverse();
        DecodeFailure {
            index,
            pe,
            path,
            kind: self.kind,
        }
    }
}

impl From<DecodeError> for Fail {
    fn from(e: DecodeError) -> Self {
        Fail::new(ErrorKind::Der(e))
    }
}

/// Prefix a path segment to an error on its way out.
pub(crate) trait At<T> {
    /// Add the component name `seg` to the path of an error.
    fn at(self, seg: &str) -> Result<T, Fail>;
    /// Like [`At::at`] with a segment built only when there is an error.
    fn at_with(self, seg: impl FnOnce() -> String) -> Result<T, Fail>;
}

impl<T, E: Into<Fail>> At<T> for Result<T, E> {
    fn at(self, seg: &str) -> Result<T, Fail> {
        self.map_err(|e| {
            let mut f = e.into();
            f.path.push(seg.to_owned());
            f
        })
    }
    fn at_with(self, seg: impl FnOnce() -> String) -> Result<T, Fail> {
        self.map_err(|e| {
            let mut f = e.into();
            f.path.push(seg());
            f
        })
    }
}
