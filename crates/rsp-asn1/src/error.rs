//! The decode error type shared by every codec in this crate.

use crate::tlv::Tag;

/// Why a DER input could not be decoded. Every malformed input maps to one of these; the
/// decoders never panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside an element.
    #[error("truncated input")]
    Truncated,
    /// Indefinite length (BER) is not DER.
    #[error("indefinite length is not allowed in DER")]
    IndefiniteLength,
    /// Length octets were not in minimal form.
    #[error("non-minimal length encoding")]
    NonMinimalLength,
    /// More than four length octets.
    #[error("bad length encoding")]
    BadLength,
    /// An element longer than the decoder accepts.
    #[error("element of {0} bytes is too long")]
    TooLong(usize),
    /// Identifier octets were malformed or not minimal.
    #[error("malformed tag")]
    BadTag,
    /// A different tag than the one the schema requires at this position.
    #[error("expected tag {expected}, found {found}")]
    UnexpectedTag {
        /// The tag the schema requires.
        expected: Tag,
        /// The tag found.
        found: Tag,
    },
    /// A mandatory component is absent.
    #[error("missing mandatory element {0}")]
    Missing(Tag),
    /// A primitive element was found where a constructed one is required.
    #[error("element {0} must be constructed")]
    ExpectedConstructed(Tag),
    /// Bytes remain after the last element.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// Nesting deeper than [`crate::tlv::MAX_DEPTH`].
    #[error("nesting too deep")]
    TooDeep,
    /// A value that breaks a constraint of the type (size, range, DER form).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The ASN.1 component or type at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl DecodeError {
    /// Shorthand for [`DecodeError::Invalid`].
    pub fn invalid(field: &'static str, reason: &'static str) -> Self {
        DecodeError::Invalid { field, reason }
    }
}
