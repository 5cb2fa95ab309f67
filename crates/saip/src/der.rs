//! Small strict-DER helpers over `rsp_asn1::tlv`, with error paths.

use rsp_asn1::prim;
use rsp_asn1::tlv::{Reader, Tag, Tlv, write_tlv};

use crate::error::{At, Fail};

pub(crate) type Res<T> = Result<T, Fail>;

/// Read a mandatory component.
pub(crate) fn req<'a>(r: &mut Reader<'a>, tag: Tag, name: &str) -> Res<Tlv<'a>> {
    r.read_expect(tag).at(name)
}

/// Read an OPTIONAL component (malformed identifier octets are reported by the next read).
pub(crate) fn opt<'a>(r: &mut Reader<'a>, tag: Tag, name: &str) -> Res<Option<Tlv<'a>>> {
    r.read_optional(tag).at(name)
}

/// Require that a SEQUENCE has no component left; report the tag of the first extra one.
pub(crate) fn finish(r: &Reader<'_>) -> Res<()> {
    if r.is_empty() {
        return Ok(());
    }
    match r.peek_tag() {
        Some(t) => Err(Fail::unexpected(t)),
        None => {
            // Malformed identifier octets: let the TLV layer say why.
            let mut r2 = r.clone();
            r2.read()?;
            Err(Fail::constraint("unexpected trailing data"))
        }
    }
}

/// A primitive OCTET STRING with a SIZE constraint.
pub(crate) fn octets(t: &Tlv<'_>, min: usize, max: usize) -> Res<Vec<u8>> {
    Ok(prim::decode_octets(t, "OCTET STRING", min, max)?.to_vec())
}

/// A primitive OCTET STRING of exactly `N` octets.
pub(crate) fn fixed<const N: usize>(t: &Tlv<'_>) -> Res<[u8; N]> {
    Ok(prim::decode_fixed::<N>(t, "OCTET STRING")?)
}

/// An INTEGER in `0..=max`.
pub(crate) fn uint(t: &Tlv<'_>, max: u64) -> Res<u64> {
    if t.tag.is_constructed() {
        return Err(Fail::constraint("constructed INTEGER"));
    }
    let v = prim::decode_uint(t, "INTEGER")?;
    if v > max {
        return Err(Fail::constraint("INTEGER out of range"));
    }
    Ok(v)
}

/// An INTEGER in `0..=255`.
pub(crate) fn uint8(t: &Tlv<'_>) -> Res<u8> {
    uint(t, 0xFF).map(|v| v as u8)
}

/// An INTEGER in `0..=65535`.
pub(crate) fn uint16(t: &Tlv<'_>) -> Res<u16> {
    uint(t, 0xFFFF).map(|v| v as u16)
}

/// NULL.
pub(crate) fn null(t: &Tlv<'_>) -> Res<()> {
    if t.tag.is_constructed() {
        return Err(Fail::constraint("constructed NULL"));
    }
    Ok(prim::decode_null(t, "NULL")?)
}

/// Reject a DEFAULT component encoded with its default value (X.690 11.5).
pub(crate) fn not_default<T: PartialEq>(v: T, default: T) -> Res<T> {
    if v == default {
        Err(Fail::constraint(
            "DEFAULT value encoded explicitly (not DER)",
        ))
    } else {
        Ok(v)
    }
}

/// Append an unsigned INTEGER.
pub(crate) fn write_uint(out: &mut Vec<u8>, tag: Tag, v: u64) {
    // Values written here come from u8/u16/u32 fields, so they fit in i64.
    prim::write_int(out, tag, i64::try_from(v).unwrap_or(i64::MAX));
}

/// Append a primitive element.
pub(crate) fn write(out: &mut Vec<u8>, tag: Tag, value: &[u8]) {
    write_tlv(out, tag, value);
}

/// Append a constructed element built by `f`.
pub(crate) fn write_cons(out: &mut Vec<u8>, tag: Tag, f: impl FnOnce(&mut Vec<u8>)) {
    rsp_asn1::tlv::write_constructed(out, tag, f);
}

/// Context-specific primitive `[n]`.
pub(crate) const fn ctx(n: u32) -> Tag {
    Tag::context(n)
}

/// Context-specific constructed `[n]`.
pub(crate) const fn cctx(n: u32) -> Tag {
    Tag::context_constructed(n)
}
