//! The typed-message layer shared by every SGP.22 type in this crate.
//!
//! - [`Codec`]: `decode(&[u8])` (total, strict DER, rejects trailing bytes) and
//!   `encode() -> Vec<u8>` (DER) for every message type.
//! - [`SeqCodec`]: a SEQUENCE type whose *contents* can be read and written under any tag.
//!   This is what AUTOMATIC TAGS needs: a component of type `DeviceInfo` inside
//!   `CtxParamsForCommonAuthentication` is encoded with the implicit tag `[1]` (`A1`), not
//!   with the universal SEQUENCE tag.
//! - [`FieldValue`]: a component value whose contents are decoded after the caller has
//!   matched its (possibly implicit) tag.
//! - [`Signed`]: a signed part (`euiccSigned1`, `euiccSigned2`, `tbsOtherNotification`, ...)
//!   kept together with the exact bytes it was received as, because SGP.22 signatures are
//!   verified over the DER exactly as received (SGP.22 v2.2 section 5.7.13 / 5.7.5).
//! - [`Certificate`]: an X.509 certificate kept as raw DER (validated by the PKI layer).
//! - [`BitString`]: a named-bit BIT STRING (`UICCCapability`, `RspCapability`, `PprIds`, ...).
//! - [`Extensions`]: unknown trailing components of an extensible SEQUENCE, kept verbatim.

use crate::error::DecodeError;
use crate::prim;
use crate::tlv::{Reader, Tag, Tlv, parse_single, write_tlv};

/// A complete SGP.22 message or component type with a DER codec.
///
/// `decode` is total: it never panics, enforces strict DER and rejects trailing bytes.
pub trait Codec: Sized {
    /// Decode from one element; the element's tag must be the type's own tag.
    fn decode_tlv(t: &Tlv<'_>) -> Result<Self, DecodeError>;
    /// Append the DER encoding.
    fn encode_into(&self, out: &mut Vec<u8>);

    /// Decode exactly one element that fills all of `input`.
    fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_tlv(&parse_single(input)?)
    }

    /// The DER encoding as a new vector.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// A SEQUENCE type: its components can be decoded from / encoded into the contents of an
/// element carrying any tag (its own [`SeqCodec::TAG`], or an implicit tag chosen by the
/// enclosing type under AUTOMATIC TAGS).
pub trait SeqCodec: Sized {
    /// The type's own tag (`0x30` for an untagged SEQUENCE, `0xBF20` for `[32] SEQUENCE`).
    const TAG: Tag;
    /// Decode the components. The reader covers the contents; implementations either call
    /// [`Reader::finish`] or keep the remaining elements as [`Extensions`].
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// Append the encoded components (contents octets only).
    fn encode_body(&self, out: &mut Vec<u8>);
}

impl<T: SeqCodec> Codec for T {
    fn decode_tlv(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        let t = t.expect(T::TAG)?;
        decode_seq_contents(&t)
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        encode_seq_as(self, T::TAG, out);
    }
}

/// Decode the contents of a constructed element (whatever its tag) as the SEQUENCE `T`.
pub fn decode_seq_contents<T: SeqCodec>(t: &Tlv<'_>) -> Result<T, DecodeError> {
    let mut r = t.reader()?;
    T::decode_body(&mut r)
}

/// Append `v` as a SEQUENCE carrying `tag` (its own tag or an implicit one).
pub fn encode_seq_as<T: SeqCodec>(v: &T, tag: Tag, out: &mut Vec<u8>) {
    let mut inner = Vec::new();
    v.encode_body(&mut inner);
    write_tlv(out, tag, &inner);
}

/// A component value decoded from the contents of an element whose tag the caller has
/// already matched (so it works under IMPLICIT and AUTOMATIC tags alike).
pub trait FieldValue: Sized {
    /// Decode from an element whose tag has been checked by the caller.
    fn decode_value(t: &Tlv<'_>, field: &'static str) -> Result<Self, DecodeError>;
    /// Append the element with the given tag.
    fn encode_value(&self, tag: Tag, out: &mut Vec<u8>);
}

impl<T: SeqCodec> FieldValue for T {
    fn decode_value(t: &Tlv<'_>, _field: &'static str) -> Result<Self, DecodeError> {
        decode_seq_contents(t)
    }
    fn encode_value(&self, tag: Tag, out: &mut Vec<u8>) {
        encode_seq_as(self, tag, out);
    }
}

/// An OCTET STRING of any size.
impl FieldValue for Vec<u8> {
    fn decode_value(t: &Tlv<'_>, field: &'static str) -> Result<Self, DecodeError> {
        prim::decode_octets(t, field, 0, usize::MAX).map(<[u8]>::to_vec)
    }
    fn encode_value(&self, tag: Tag, out: &mut Vec<u8>) {
        write_tlv(out, tag, self);
    }
}

/// A UTF8String of any size.
impl FieldValue for String {
    fn decode_value(t: &Tlv<'_>, field: &'static str) -> Result<Self, DecodeError> {
        prim::decode_utf8(t, field, 0, usize::MAX)
    }
    fn encode_value(&self, tag: Tag, out: &mut Vec<u8>) {
        write_tlv(out, tag, self.as_bytes());
    }
}

/// BOOLEAN.
impl FieldValue for bool {
    fn decode_value(t: &Tlv<'_>, field: &'static str) -> Result<Self, DecodeError> {
        prim::decode_bool(t, field)
    }
    fn encode_value(&self, tag: Tag, out: &mut Vec<u8>) {
        prim::write_bool(out, tag, *self);
    }
}

/// INTEGER (signed, 64-bit range).
impl FieldValue for i64 {
    fn decode_value(t: &Tlv<'_>, field: &'static str) -> Result<Self, DecodeError> {
        if t.tag.is_constructed() {
            return Err(DecodeError::invalid(field, "INTEGER must be primitive"));
        }
        prim::decode_int(t, field)
    }
    fn encode_value(&self, tag: Tag, out: &mut Vec<u8>) {
        prim::write_int(out, tag, *self);
    }
}

/// OBJECT IDENTIFIER.
impl FieldValue for prim::Oid {
    fn decode_value(t: &Tlv<'_>, field: &'static str) -> Result<Self, DecodeError> {
        if t.tag.is_constructed() {
            return Err(DecodeError::invalid(
                field,
                "OBJECT IDENTIFIER must be primitive",
            ));
        }
        prim::Oid::decode(t, field)
    }
    fn encode_value(&self, tag: Tag, out: &mut Vec<u8>) {
        self.write(out, tag);
    }
}

/// NULL, as a unit marker.
impl FieldValue for () {
    fn decode_value(t: &Tlv<'_>, field: &'static str) -> Result<Self, DecodeError> {
        if t.tag.is_constructed() {
            return Err(DecodeError::invalid(field, "NULL must be primitive"));
        }
        prim::decode_null(t, field)
    }
    fn encode_value(&self, tag: Tag, out: &mut Vec<u8>) {
        write_tlv(out, tag, &[]);
    }
}

/// Read a mandatory component with `tag`.
pub fn req<T: FieldValue>(
    r: &mut Reader<'_>,
    tag: Tag,
    field: &'static str,
) -> Result<T, DecodeError> {
    let t = r.read_expect(tag)?;
    T::decode_value(&t, field)
}

/// Read an OPTIONAL component with `tag`.
pub fn opt<T: FieldValue>(
    r: &mut Reader<'_>,
    tag: Tag,
    field: &'static str,
) -> Result<Option<T>, DecodeError> {
    match r.read_optional(tag)? {
        Some(t) => T::decode_value(&t, field).map(Some),
        None => Ok(None),
    }
}

/// Append a component.
pub fn put<T: FieldValue>(out: &mut Vec<u8>, tag: Tag, v: &T) {
    v.encode_value(tag, out);
}

/// Append an OPTIONAL component when present.
pub fn put_opt<T: FieldValue>(out: &mut Vec<u8>, tag: Tag, v: &Option<T>) {
    if let Some(v) = v {
        v.encode_value(tag, out);
    }
}

/// Check the size of an OCTET STRING or UTF8String component (in octets).
pub fn check_size(
    len: usize,
    field: &'static str,
    min: usize,
    max: usize,
) -> Result<(), DecodeError> {
    if len < min || len > max {
        Err(DecodeError::invalid(field, "size out of range"))
    } else {
        Ok(())
    }
}

/// Read a mandatory UTF8String with a SIZE constraint in octets.
pub fn req_utf8(
    r: &mut Reader<'_>,
    tag: Tag,
    field: &'static str,
    max: usize,
) -> Result<String, DecodeError> {
    let t = r.read_expect(tag)?;
    prim::decode_utf8(&t, field, 0, max)
}

/// Read an OPTIONAL UTF8String with a SIZE constraint in octets.
pub fn opt_utf8(
    r: &mut Reader<'_>,
    tag: Tag,
    field: &'static str,
    max: usize,
) -> Result<Option<String>, DecodeError> {
    match r.read_optional(tag)? {
        Some(t) => prim::decode_utf8(&t, field, 0, max).map(Some),
        None => Ok(None),
    }
}

/// A SEQUENCE OF whose elements all carry `elem_tag`.
impl<T: FieldValue + SeqOfElement> FieldValue for Vec<T> {
    fn decode_value(t: &Tlv<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let mut r = t.reader()?;
        let mut v = Vec::new();
        while !r.is_empty() {
            let e = r.read_expect(T::ELEM_TAG)?;
            v.push(T::decode_value(&e, field)?);
        }
        Ok(v)
    }
    fn encode_value(&self, tag: Tag, out: &mut Vec<u8>) {
        let mut inner = Vec::new();
        for e in self {
            e.encode_value(T::ELEM_TAG, &mut inner);
        }
        write_tlv(out, tag, &inner);
    }
}

/// A type that can be the element of a `SEQUENCE OF` (with a fixed element tag).
pub trait SeqOfElement {
    /// The tag of each element.
    const ELEM_TAG: Tag;
}

/// Decode a SEQUENCE OF whose elements are complete [`Codec`] values (which may be CHOICEs).
pub fn decode_seq_of<T: Codec>(t: &Tlv<'_>) -> Result<Vec<T>, DecodeError> {
    let mut r = t.reader()?;
    let mut v = Vec::new();
    while !r.is_empty() {
        v.push(T::decode_tlv(&r.read()?)?);
    }
    Ok(v)
}

/// Append a SEQUENCE OF [`Codec`] values with the given tag.
pub fn encode_seq_of<T: Codec>(items: &[T], tag: Tag, out: &mut Vec<u8>) {
    let mut inner = Vec::new();
    for e in items {
        e.encode_into(&mut inner);
    }
    write_tlv(out, tag, &inner);
}

/// A signed part together with the exact bytes it was received as.
///
/// Decoding keeps the received encoding (header included); [`Signed::raw`] is what the
/// signature is verified over. Encoding writes those bytes back unchanged, so a relayed
/// message stays byte-identical. A value built locally with [`Signed::new`] gets the DER
/// encoding of the value as its bytes. The fields are private so value and bytes cannot
/// drift apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed<T> {
    value: T,
    raw: Vec<u8>,
}

impl<T: Codec> Signed<T> {
    /// Wrap a locally built value; its bytes are its DER encoding.
    pub fn new(value: T) -> Self {
        let raw = value.encode();
        Signed { value, raw }
    }

    /// Decode from an element, keeping its exact bytes.
    pub fn decode_tlv(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        let value = T::decode_tlv(t)?;
        Ok(Signed {
            value,
            raw: t.raw.to_vec(),
        })
    }

    /// Decode a complete input, keeping its exact bytes.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_tlv(&parse_single(input)?)
    }

    /// The typed value.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The exact bytes (identifier, length and contents) the signature covers.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The typed value, dropping the bytes.
    pub fn into_value(self) -> T {
        self.value
    }

    /// Append the kept bytes.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.raw);
    }
}

impl<T: SeqCodec> Signed<T> {
    /// Decode a SEQUENCE carried under an implicit tag `tag`, keeping its bytes retagged
    /// with the type's own tag ([`SeqCodec::TAG`]): the received contents octets under
    /// the universal header. Used where the signature covers the untagged form although
    /// the element travels under a context tag (`AuthenticateClientOkRpm.smdpSigned3`).
    pub fn decode_implicit_retagged(t: &Tlv<'_>, tag: Tag) -> Result<Self, DecodeError> {
        let t = t.expect(tag)?;
        let value = decode_seq_contents(&t)?;
        Ok(Signed {
            value,
            raw: crate::tlv::tlv(T::TAG, t.value),
        })
    }

    /// The contents octets of the kept bytes (without identifier and length).
    pub fn contents(&self) -> Vec<u8> {
        match parse_single(&self.raw) {
            Ok(t) => t.value.to_vec(),
            // The kept bytes are always one element; re-encode if that ever fails.
            Err(_) => {
                let mut v = Vec::new();
                self.value.encode_body(&mut v);
                v
            }
        }
    }

    /// The kept contents octets under another tag (a new header, the same contents).
    pub fn retagged(&self, tag: Tag) -> Vec<u8> {
        crate::tlv::tlv(tag, &self.contents())
    }

    /// Append the kept contents octets under `tag`.
    pub fn encode_as(&self, tag: Tag, out: &mut Vec<u8>) {
        write_tlv(out, tag, &self.contents());
    }
}

/// An X.509 `Certificate` (PKIX1Explicit88) kept as its raw DER bytes.
///
/// Decoding checks only the outer shape (a SEQUENCE of `tbsCertificate` SEQUENCE,
/// `signatureAlgorithm` SEQUENCE and `signatureValue` BIT STRING, each well-formed DER);
/// full parsing and path validation happen in the PKI layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate(Vec<u8>);

impl Certificate {
    /// Check the outer shape of DER certificate bytes and wrap them.
    pub fn from_der(der: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_tlv(&parse_single(der)?)
    }

    /// The complete DER encoding.
    pub fn as_der(&self) -> &[u8] {
        &self.0
    }

    /// Read a certificate from the next element of `r`.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::decode_tlv(&r.read_expect(Tag::SEQUENCE)?)
    }
}

impl Codec for Certificate {
    fn decode_tlv(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        let t = t.expect(Tag::SEQUENCE)?;
        let mut r = t.reader()?;
        let tbs = r.read_expect(Tag::SEQUENCE)?;
        tbs.reader()?.skip_rest()?;
        r.read_expect(Tag::SEQUENCE)?.reader()?.skip_rest()?;
        let sig = r.read_expect(Tag::BIT_STRING)?;
        prim::decode_bit_string(&sig, "Certificate.signatureValue")?;
        r.finish()?;
        Ok(Certificate(t.raw.to_vec()))
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

/// A BIT STRING value kept exactly as its unused-bit count and octets, with named-bit
/// accessors. Used for `UICCCapability`, `RspCapability`, `PprIds`, `NotificationEvent`,
/// `CertificateInfo`, `LpaRspCapability` and similar named-bit types.
///
/// [`BitString::from_bits`] builds the DER form (trailing zero bits removed, X.690
/// 11.2.2). The strict decoder ([`FieldValue::decode_value`]) requires that form; the
/// lenient one ([`BitString::decode_lenient`]) also accepts trailing zero bits, which
/// some eUICCs send in `EUICCInfo1/2` — the octets are kept so re-encoding reproduces them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct BitString {
    unused: u8,
    bytes: Vec<u8>,
}

impl BitString {
    /// A named-bit string with the given bit positions set (bit 0 is the leading bit),
    /// in DER form.
    pub fn from_bits(bits: &[u32]) -> Self {
        let mut v = Vec::new();
        prim::write_named_bits(&mut v, Tag::BIT_STRING, bits);
        let (unused, bytes) = match v.get(2..) {
            Some([u, rest @ ..]) => (*u, rest.to_vec()),
            _ => (0, Vec::new()),
        };
        BitString { unused, bytes }
    }

    /// Whether the named bit at `bit` is set.
    pub fn is_set(&self, bit: u32) -> bool {
        let byte = (bit / 8) as usize;
        let total_bits = self.bytes.len() * 8 - usize::from(self.unused).min(self.bytes.len() * 8);
        if bit as usize >= total_bits {
            return false;
        }
        self.bytes
            .get(byte)
            .is_some_and(|b| b & (0x80 >> (bit % 8)) != 0)
    }

    /// The set bit positions, ascending.
    pub fn bits(&self) -> Vec<u32> {
        (0..(self.bytes.len() as u32 * 8))
            .filter(|&b| self.is_set(b))
            .collect()
    }

    /// The number of unused bits in the last octet.
    pub fn unused_bits(&self) -> u8 {
        self.unused
    }

    /// The octets.
    pub fn octets(&self) -> &[u8] {
        &self.bytes
    }

    /// Decode accepting trailing zero bits (not DER for a named-bit list), keeping octets.
    pub fn decode_lenient(t: &Tlv<'_>, field: &'static str) -> Result<Self, DecodeError> {
        if t.tag.is_constructed() {
            return Err(DecodeError::invalid(
                field,
                "constructed BIT STRING is not DER",
            ));
        }
        let (unused, bytes) = prim::decode_bit_string(t, field)?;
        Ok(BitString {
            unused,
            bytes: bytes.to_vec(),
        })
    }
}

impl FieldValue for BitString {
    fn decode_value(t: &Tlv<'_>, field: &'static str) -> Result<Self, DecodeError> {
        if t.tag.is_constructed() {
            return Err(DecodeError::invalid(
                field,
                "constructed BIT STRING is not DER",
            ));
        }
        prim::decode_named_bits(t, field)?;
        Self::decode_lenient(t, field)
    }
    fn encode_value(&self, tag: Tag, out: &mut Vec<u8>) {
        let mut v = Vec::with_capacity(self.bytes.len() + 1);
        v.push(self.unused);
        v.extend_from_slice(&self.bytes);
        write_tlv(out, tag, &v);
    }
}

/// A BIT STRING component that is allowed the lenient form (see [`BitString`]).
pub fn req_bits_lenient(
    r: &mut Reader<'_>,
    tag: Tag,
    field: &'static str,
) -> Result<BitString, DecodeError> {
    BitString::decode_lenient(&r.read_expect(tag)?, field)
}

/// An OPTIONAL BIT STRING component that is allowed the lenient form.
pub fn opt_bits_lenient(
    r: &mut Reader<'_>,
    tag: Tag,
    field: &'static str,
) -> Result<Option<BitString>, DecodeError> {
    r.read_optional(tag)?
        .map(|t| BitString::decode_lenient(&t, field))
        .transpose()
}

/// Unknown trailing components of an extensible SEQUENCE (`EXTENSIBILITY IMPLIED`), each
/// kept as its complete, well-formed DER element so re-encoding reproduces the input.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Extensions(pub Vec<Vec<u8>>);

impl Extensions {
    /// Take every remaining element of `r` (each must be well-formed DER).
    pub fn read_rest(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut v = Vec::new();
        while !r.is_empty() {
            let t = r.read()?;
            check_well_formed(&t)?;
            v.push(t.raw.to_vec());
        }
        Ok(Extensions(v))
    }

    /// Append the kept elements.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        for e in &self.0 {
            out.extend_from_slice(e);
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Recursively check that a constructed element's contents are well-formed DER elements
/// (bounded by the reader's depth limit).
pub fn check_well_formed(t: &Tlv<'_>) -> Result<(), DecodeError> {
    if t.tag.is_constructed() {
        let mut r = t.reader()?;
        while !r.is_empty() {
            check_well_formed(&r.read()?)?;
        }
    }
    Ok(())
}

/// Declare an INTEGER type with named numbers. Values outside the named list decode to
/// `Unknown(n)` because the module is `EXTENSIBILITY IMPLIED` and peers of newer versions
/// send new codes.
macro_rules! int_enum {
    (
        $(#[$m:meta])*
        $name:ident { $( $(#[$vm:meta])* $var:ident = $val:expr ),* $(,)? }
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                $(#[$vm])*
                #[doc = concat!("Named value ", stringify!($val), ".")]
                $var,
            )*
            /// A value not named in the schema version this crate follows.
            Unknown(i64),
        }

        impl $name {
            /// Map an integer to the named value (or `Unknown`).
            pub fn from_i64(v: i64) -> Self {
                match v {
                    $( $val => $name::$var, )*
                    other => $name::Unknown(other),
                }
            }

            /// The integer value.
            pub fn to_i64(self) -> i64 {
                match self {
                    $( $name::$var => $val, )*
                    $name::Unknown(v) => v,
                }
            }
        }

        impl $crate::codec::FieldValue for $name {
            fn decode_value(
                t: &$crate::tlv::Tlv<'_>,
                field: &'static str,
            ) -> Result<Self, $crate::error::DecodeError> {
                <i64 as $crate::codec::FieldValue>::decode_value(t, field).map($name::from_i64)
            }
            fn encode_value(&self, tag: $crate::tlv::Tag, out: &mut Vec<u8>) {
                $crate::prim::write_int(out, tag, self.to_i64());
            }
        }
    };
}
pub(crate) use int_enum;

/// Implement a tagged two-alternative `[n] CHOICE { ok, error }` (the ES10b responses
/// AuthenticateServerResponse, PrepareDownloadResponse, CancelSessionResponse): the
/// `decode_alternative` / `encode_alternative` pair used where the CHOICE is a component, and
/// [`Codec`] for the CHOICE with its own tag. `Ok`'s payload may be boxed.
macro_rules! ok_error_choice {
    ($name:ident, $tag:expr, Ok($ok:ty, $ok_tag:expr), Error($err:ty, $err_tag:expr)) => {
        impl $name {
            /// The CHOICE's own tag.
            pub const TAG: $crate::tlv::Tag = $tag;

            /// Decode from the alternative's element.
            pub fn decode_alternative(
                t: &$crate::tlv::Tlv<'_>,
            ) -> Result<Self, $crate::error::DecodeError> {
                match t.tag {
                    x if x == $ok_tag => Ok(Self::Ok(
                        <$ok as $crate::codec::FieldValue>::decode_value(t, "ok")?.into(),
                    )),
                    x if x == $err_tag => Ok(Self::Error(
                        <$err as $crate::codec::FieldValue>::decode_value(t, "error")?,
                    )),
                    found => Err($crate::error::DecodeError::UnexpectedTag {
                        expected: $ok_tag,
                        found,
                    }),
                }
            }

            /// Append the alternative's element.
            pub fn encode_alternative(&self, out: &mut Vec<u8>) {
                match self {
                    Self::Ok(v) => {
                        $crate::codec::put::<$ok>(out, $ok_tag, std::borrow::Borrow::borrow(v))
                    }
                    Self::Error(v) => $crate::codec::put(out, $err_tag, v),
                }
            }
        }

        impl $crate::codec::Codec for $name {
            fn decode_tlv(t: &$crate::tlv::Tlv<'_>) -> Result<Self, $crate::error::DecodeError> {
                Self::decode_alternative(&$crate::codec::explicit_inner(t, Self::TAG)?)
            }
            fn encode_into(&self, out: &mut Vec<u8>) {
                $crate::codec::write_wrapped(out, Self::TAG, |o| self.encode_alternative(o));
            }
        }
    };
}
pub(crate) use ok_error_choice;

/// Declare a fixed-size or size-constrained OCTET STRING newtype.
macro_rules! octets_type {
    ($(#[$m:meta])* $name:ident, $field:literal, $min:expr, $max:expr) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub struct $name(Vec<u8>);

        impl $name {
            /// Minimum size in octets.
            pub const MIN: usize = $min;
            /// Maximum size in octets.
            pub const MAX: usize = $max;

            /// Wrap bytes, checking the SIZE constraint.
            pub fn new(bytes: &[u8]) -> Result<Self, $crate::error::DecodeError> {
                $crate::codec::check_size(bytes.len(), $field, $min, $max)?;
                Ok($name(bytes.to_vec()))
            }

            /// The octets.
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl $crate::codec::FieldValue for $name {
            fn decode_value(
                t: &$crate::tlv::Tlv<'_>,
                _field: &'static str,
            ) -> Result<Self, $crate::error::DecodeError> {
                $crate::prim::decode_octets(t, $field, $min, $max).map(|v| $name(v.to_vec()))
            }
            fn encode_value(&self, tag: $crate::tlv::Tag, out: &mut Vec<u8>) {
                $crate::tlv::write_tlv(out, tag, &self.0);
            }
        }
    };
}
pub(crate) use octets_type;

/// The single alternative element inside an explicitly tagged CHOICE (`[n] CHOICE`, always
/// explicit per X.680 31.2.7): checks the outer tag and that exactly one element is inside.
pub fn explicit_inner<'a>(t: &Tlv<'a>, tag: Tag) -> Result<Tlv<'a>, DecodeError> {
    let t = t.expect(tag)?;
    let mut r = t.reader()?;
    let inner = r.read()?;
    r.finish()?;
    Ok(inner)
}

/// Append an element whose contents are produced by `f` (an explicit tag around a CHOICE
/// alternative, or a SEQUENCE body).
pub fn write_wrapped(out: &mut Vec<u8>, tag: Tag, f: impl FnOnce(&mut Vec<u8>)) {
    crate::tlv::write_constructed(out, tag, f);
}

/// How a component whose type is a *tagged CHOICE* (`X ::= [n] CHOICE {...}`) is encoded
/// when the component carries its own (textual or automatic) tag `[m]`, e.g.
/// `CancelSessionRequestEs9.cancelSessionResponse` (`[1]` over `[65] CHOICE`),
/// `AuthenticateClientRequest.authenticateServerResponse` (`[56]` over `[56] CHOICE`),
/// `GetBoundProfilePackageRequest.prepareDownloadResponse` (`[33]` over `[33] CHOICE`).
///
/// X.680 31.2.7 makes `[m]` IMPLICIT here (only an *untagged* CHOICE forces an explicit
/// tag), so `[m]` replaces `[n]` and the contents are the chosen alternative:
/// [`TaggedChoiceForm::Implicit`] — what rasn and Eclipse Titan produce and this crate's
/// default. Python asn1tools and Erlang asn1ct instead keep `[n]` inside `[m]`:
/// [`TaggedChoiceForm::Nested`]. Decoders in this crate accept both forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TaggedChoiceForm {
    /// `[m]` replaces the CHOICE's own tag (X.680 31.2.7; the default).
    #[default]
    Implicit,
    /// `[m]` wraps the CHOICE's complete encoding, own tag included (asn1tools form).
    Nested,
}

/// Decode a component of tagged-CHOICE type accepting both [`TaggedChoiceForm`]s. `t` is
/// the component's element (tag already matched); `choice_tag` is the CHOICE's own tag.
/// Returns the alternative's element and the form found.
pub fn tagged_choice_alternative<'a>(
    t: &Tlv<'a>,
    choice_tag: Tag,
) -> Result<(Tlv<'a>, TaggedChoiceForm), DecodeError> {
    let mut r = t.reader()?;
    let inner = r.read()?;
    r.finish()?;
    if inner.tag == choice_tag {
        Ok((
            explicit_inner(&inner, choice_tag)?,
            TaggedChoiceForm::Nested,
        ))
    } else {
        Ok((inner, TaggedChoiceForm::Implicit))
    }
}
