//! Strict DER tag-length-value reading and writing.
//!
//! This is the layer every SGP.22 type is built on. Reading is total: any input, however
//! malformed, gives a [`DecodeError`] and never a panic. It enforces DER rules:
//! definite lengths only, minimal length octets, minimal tag-number octets, a bounded
//! nesting depth, and no bytes after the last element when [`Reader::finish`] is called.
//!
//! A [`Tag`] holds the identifier octets as they appear on the wire, big-endian, so the
//! SGP.22 tags read the way the specification writes them (`0xBF36`, `0x5F37`, `0x80`).

use crate::error::DecodeError;

/// Maximum nesting depth accepted by the reader. SGP.22 messages nest about 8 deep; a
/// Bound Profile Package with its certificates stays well under this.
pub const MAX_DEPTH: u8 = 32;

/// Largest length accepted for a single element (16 MiB). Larger values are refused before
/// any allocation is made.
pub const MAX_LEN: usize = 16 * 1024 * 1024;

/// An ASN.1 tag as its identifier octets, big-endian (`0x30` SEQUENCE, `0xBF36` `[54]`
/// constructed context-specific, `0x5F37` [APPLICATION 55] primitive).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u32);

impl std::fmt::Debug for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tag({:02X})", self.0)
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02X}", self.0)
    }
}

/// The class bits of a tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// UNIVERSAL (00).
    Universal,
    /// APPLICATION (01).
    Application,
    /// Context-specific (10).
    Context,
    /// PRIVATE (11).
    Private,
}

impl Tag {
    /// BOOLEAN.
    pub const BOOLEAN: Tag = Tag(0x01);
    /// INTEGER.
    pub const INTEGER: Tag = Tag(0x02);
    /// BIT STRING.
    pub const BIT_STRING: Tag = Tag(0x03);
    /// OCTET STRING.
    pub const OCTET_STRING: Tag = Tag(0x04);
    /// NULL.
    pub const NULL: Tag = Tag(0x05);
    /// OBJECT IDENTIFIER.
    pub const OID: Tag = Tag(0x06);
    /// ENUMERATED.
    pub const ENUMERATED: Tag = Tag(0x0A);
    /// UTF8String.
    pub const UTF8_STRING: Tag = Tag(0x0C);
    /// SEQUENCE / SEQUENCE OF.
    pub const SEQUENCE: Tag = Tag(0x30);
    /// SET / SET OF.
    pub const SET: Tag = Tag(0x31);

    /// Context-specific primitive tag `[n]` (IMPLICIT on a primitive type).
    pub const fn context(n: u32) -> Tag {
        Tag::build(0x80, n)
    }

    /// Context-specific constructed tag `[n]` (on a SEQUENCE, CHOICE or EXPLICIT wrapper).
    pub const fn context_constructed(n: u32) -> Tag {
        Tag::build(0xA0, n)
    }

    /// APPLICATION primitive tag.
    pub const fn application(n: u32) -> Tag {
        Tag::build(0x40, n)
    }

    /// APPLICATION constructed tag.
    pub const fn application_constructed(n: u32) -> Tag {
        Tag::build(0x60, n)
    }

    /// PRIVATE constructed tag.
    pub const fn private_constructed(n: u32) -> Tag {
        Tag::build(0xE0, n)
    }

    /// Build the identifier octets from the leading-octet class/constructed bits and a number.
    pub const fn build(lead: u32, n: u32) -> Tag {
        if n < 31 {
            Tag(lead | n)
        } else if n < 0x80 {
            Tag(((lead | 0x1F) << 8) | n)
        } else if n < 0x4000 {
            Tag(((lead | 0x1F) << 16) | ((0x80 | (n >> 7)) << 8) | (n & 0x7F))
        } else {
            // SGP.22 and SAIP never use tag numbers this large; clamp to the 3-byte form's limit.
            Tag(((lead | 0x1F) << 16) | (0xFF << 8) | 0x7F)
        }
    }

    /// The first identifier octet.
    pub fn lead(self) -> u8 {
        let bytes = self.0.to_be_bytes();
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(3);
        bytes.get(first).copied().unwrap_or(0)
    }

    /// Whether the constructed bit is set.
    pub fn is_constructed(self) -> bool {
        self.lead() & 0x20 != 0
    }

    /// The class of the tag.
    pub fn class(self) -> Class {
        match self.lead() >> 6 {
            0 => Class::Universal,
            1 => Class::Application,
            2 => Class::Context,
            _ => Class::Private,
        }
    }

    /// The tag number.
    pub fn number(self) -> u32 {
        let lead = self.lead();
        if lead & 0x1F != 0x1F {
            return u32::from(lead & 0x1F);
        }
        let bytes = self.0.to_be_bytes();
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(3);
        let mut n = 0u32;
        for b in bytes.iter().skip(first + 1) {
            n = (n << 7) | u32::from(b & 0x7F);
        }
        n
    }

    /// Append the identifier octets.
    pub fn write(self, out: &mut Vec<u8>) {
        let bytes = self.0.to_be_bytes();
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(3);
        out.extend_from_slice(bytes.get(first..).unwrap_or(&[0]));
    }
}

/// One decoded element: its tag, its contents and the complete encoding (header included),
/// borrowed from the input. `raw` is what signatures are checked over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag.
    pub tag: Tag,
    /// The contents octets.
    pub value: &'a [u8],
    /// The whole element: identifier, length and contents octets exactly as received.
    pub raw: &'a [u8],
    depth: u8,
}

impl<'a> Tlv<'a> {
    /// A reader over the contents of this (constructed) element, one level deeper.
    pub fn reader(&self) -> Result<Reader<'a>, DecodeError> {
        if !self.tag.is_constructed() {
            return Err(DecodeError::ExpectedConstructed(self.tag));
        }
        if self.depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        Ok(Reader {
            rest: self.value,
            depth: self.depth + 1,
        })
    }

    /// The nesting depth of this element (0 at the top).
    pub fn depth(&self) -> u8 {
        self.depth
    }

    /// Fail with [`DecodeError::UnexpectedTag`] unless the tag is `expected`.
    pub fn expect(self, expected: Tag) -> Result<Self, DecodeError> {
        if self.tag == expected {
            Ok(self)
        } else {
            Err(DecodeError::UnexpectedTag {
                expected,
                found: self.tag,
            })
        }
    }
}

/// A cursor over a sequence of DER elements.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
    depth: u8,
}

impl<'a> Reader<'a> {
    /// A reader over top-level input.
    pub fn new(input: &'a [u8]) -> Self {
        Reader {
            rest: input,
            depth: 0,
        }
    }

    /// Whether all input has been consumed.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    /// The tag of the next element, without consuming it. `None` at the end of input or when
    /// the next identifier octets are malformed (the following `read` reports why).
    pub fn peek_tag(&self) -> Option<Tag> {
        read_tag(self.rest).ok().map(|(t, _)| t)
    }

    /// Read the next element.
    pub fn read(&mut self) -> Result<Tlv<'a>, DecodeError> {
        if self.rest.is_empty() {
            return Err(DecodeError::Truncated);
        }
        let (tag, after_tag) = read_tag(self.rest)?;
        let hdr_tag = self.rest.len() - after_tag.len();
        let (len, after_len) = read_len(after_tag)?;
        let hdr = hdr_tag + (after_tag.len() - after_len.len());
        if after_len.len() < len {
            return Err(DecodeError::Truncated);
        }
        let total = hdr + len;
        let raw = self.rest.get(..total).ok_or(DecodeError::Truncated)?;
        let value = raw.get(hdr..).ok_or(DecodeError::Truncated)?;
        self.rest = self.rest.get(total..).unwrap_or(&[]);
        Ok(Tlv {
            tag,
            value,
            raw,
            depth: self.depth,
        })
    }

    /// Read the next element and require its tag.
    pub fn read_expect(&mut self, tag: Tag) -> Result<Tlv<'a>, DecodeError> {
        match self.peek_tag() {
            Some(t) if t == tag => self.read(),
            Some(found) => Err(DecodeError::UnexpectedTag {
                expected: tag,
                found,
            }),
            None if self.rest.is_empty() => Err(DecodeError::Missing(tag)),
            None => self.read(),
        }
    }

    /// Read the next element if it carries `tag`.
    pub fn read_optional(&mut self, tag: Tag) -> Result<Option<Tlv<'a>>, DecodeError> {
        if self.peek_tag() == Some(tag) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Require that nothing is left.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.rest.len()))
        }
    }

    /// Skip the elements that remain (each must still be well-formed). Used for the
    /// extension marker of extensible SEQUENCEs, where newer peers add components.
    pub fn skip_rest(&mut self) -> Result<(), DecodeError> {
        while !self.is_empty() {
            self.read()?;
        }
        Ok(())
    }
}

/// Decode exactly one element that fills all of `input`.
pub fn parse_single(input: &[u8]) -> Result<Tlv<'_>, DecodeError> {
    let mut r = Reader::new(input);
    let tlv = r.read()?;
    r.finish()?;
    Ok(tlv)
}

fn read_tag(input: &[u8]) -> Result<(Tag, &[u8]), DecodeError> {
    let (&first, mut rest) = input.split_first().ok_or(DecodeError::Truncated)?;
    let mut tag = u32::from(first);
    if first & 0x1F != 0x1F {
        return Ok((Tag(tag), rest));
    }
    // High tag number form: at most 3 subsequent octets, first not 0x80, number >= 31.
    let mut count = 0;
    let mut number: u32 = 0;
    loop {
        let (&b, r) = rest.split_first().ok_or(DecodeError::Truncated)?;
        rest = r;
        if count == 0 && b == 0x80 {
            return Err(DecodeError::BadTag);
        }
        count += 1;
        if count > 3 {
            return Err(DecodeError::BadTag);
        }
        tag = (tag << 8) | u32::from(b);
        number = (number << 7) | u32::from(b & 0x7F);
        if b & 0x80 == 0 {
            break;
        }
    }
    if number < 31 {
        return Err(DecodeError::BadTag);
    }
    Ok((Tag(tag), rest))
}

fn read_len(input: &[u8]) -> Result<(usize, &[u8]), DecodeError> {
    let (&first, rest) = input.split_first().ok_or(DecodeError::Truncated)?;
    if first < 0x80 {
        return Ok((usize::from(first), rest));
    }
    if first == 0x80 {
        return Err(DecodeError::IndefiniteLength);
    }
    let n = usize::from(first & 0x7F);
    if n > 4 {
        return Err(DecodeError::BadLength);
    }
    let bytes = rest.get(..n).ok_or(DecodeError::Truncated)?;
    if bytes.first() == Some(&0) {
        return Err(DecodeError::NonMinimalLength);
    }
    let len = bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    if len < 0x80 {
        return Err(DecodeError::NonMinimalLength);
    }
    if len > MAX_LEN {
        return Err(DecodeError::TooLong(len));
    }
    Ok((len, rest.get(n..).unwrap_or(&[])))
}

/// Append a DER length.
pub fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(7);
        let tail = bytes.get(first..).unwrap_or(&[]);
        out.push(0x80 | tail.len() as u8);
        out.extend_from_slice(tail);
    }
}

/// Append a complete element.
pub fn write_tlv(out: &mut Vec<u8>, tag: Tag, value: &[u8]) {
    tag.write(out);
    write_len(out, value.len());
    out.extend_from_slice(value);
}

/// Build a complete element as a new vector.
pub fn tlv(tag: Tag, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    write_tlv(&mut out, tag, value);
    out
}

/// Append a constructed element whose contents are produced by `f`.
pub fn write_constructed(out: &mut Vec<u8>, tag: Tag, f: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    f(&mut inner);
    write_tlv(out, tag, &inner);
}

/// The length of the header (tag + length octets) of an element with this tag and length.
pub fn header_len(tag: Tag, len: usize) -> usize {
    let mut v = Vec::with_capacity(8);
    tag.write(&mut v);
    write_len(&mut v, len);
    v.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_forms_round_trip() {
        for (tag, bytes) in [
            (Tag::context(0), vec![0x80]),
            (Tag::context_constructed(54), vec![0xBF, 0x36]),
            (Tag::application(55), vec![0x5F, 0x37]),
            (Tag::application_constructed(33), vec![0x7F, 0x21]),
            (Tag::private_constructed(3), vec![0xE3]),
            (Tag::context_constructed(200), vec![0xBF, 0x81, 0x48]),
        ] {
            let mut out = Vec::new();
            tag.write(&mut out);
            assert_eq!(out, bytes, "{tag:?}");
            let (parsed, rest) = read_tag(&bytes).expect("tag");
            assert_eq!(parsed, tag);
            assert!(rest.is_empty());
        }
        assert_eq!(Tag::context_constructed(54).number(), 54);
        assert_eq!(Tag::context_constructed(200).number(), 200);
        assert_eq!(Tag::application(55).class(), Class::Application);
        assert!(Tag::context_constructed(54).is_constructed());
    }

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536, 1 << 20] {
            let mut out = Vec::new();
            write_len(&mut out, len);
            let (parsed, rest) = read_len(&out).expect("len");
            assert_eq!(parsed, len);
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn rejects_indefinite_length() {
        assert_eq!(
            Reader::new(&[0x30, 0x80, 0, 0]).read(),
            Err(DecodeError::IndefiniteLength)
        );
    }

    #[test]
    fn rejects_non_minimal_length() {
        assert_eq!(
            Reader::new(&[0x04, 0x81, 0x01, 0]).read(),
            Err(DecodeError::NonMinimalLength)
        );
        assert_eq!(
            Reader::new(&[0x04, 0x82, 0x00, 0x81]).read(),
            Err(DecodeError::NonMinimalLength)
        );
    }

    #[test]
    fn rejects_truncated_element() {
        assert_eq!(
            Reader::new(&[0x04, 0x05, 1, 2]).read(),
            Err(DecodeError::Truncated)
        );
        assert_eq!(Reader::new(&[0xBF]).read(), Err(DecodeError::Truncated));
        assert_eq!(
            Reader::new(&[0x04, 0x82, 0x01]).read(),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn rejects_oversized_length() {
        assert_eq!(
            Reader::new(&[0x04, 0x85, 1, 0, 0, 0, 0]).read(),
            Err(DecodeError::BadLength)
        );
        assert!(matches!(
            Reader::new(&[0x04, 0x84, 0x7F, 0, 0, 0]).read(),
            Err(DecodeError::TooLong(_))
        ));
    }

    #[test]
    fn rejects_non_minimal_tag() {
        assert_eq!(
            Reader::new(&[0xBF, 0x80, 0x36, 0x00]).read(),
            Err(DecodeError::BadTag)
        );
        assert_eq!(
            Reader::new(&[0xBF, 0x1E, 0x00]).read(),
            Err(DecodeError::BadTag)
        );
    }

    #[test]
    fn rejects_trailing_bytes() {
        assert_eq!(
            parse_single(&[0x04, 0x00, 0x00]),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn rejects_excessive_nesting() {
        let mut v = vec![0x04, 0x00];
        for _ in 0..40 {
            v = tlv(Tag::SEQUENCE, &v);
        }
        fn walk(t: Tlv<'_>) -> Result<(), DecodeError> {
            if t.tag.is_constructed() {
                let mut r = t.reader()?;
                while !r.is_empty() {
                    walk(r.read()?)?;
                }
            }
            Ok(())
        }
        assert_eq!(
            walk(parse_single(&v).expect("outer")),
            Err(DecodeError::TooDeep)
        );
    }

    #[test]
    fn raw_keeps_received_bytes() {
        let bytes = [0x30, 0x03, 0x80, 0x01, 0x07, 0x04, 0x00];
        let mut r = Reader::new(&bytes);
        let first = r.read().expect("first");
        assert_eq!(first.raw, &bytes[..5]);
        assert_eq!(first.value, &bytes[2..5]);
        let inner = first.reader().expect("reader").read().expect("inner");
        assert_eq!(inner.tag, Tag::context(0));
        assert_eq!(inner.value, &[7]);
    }
}
