//! What the virtual eUICC reads from the Unprotected Profile Package (UPP) it installs:
//! the ICCID (ProfileHeader and EF.ICCID), the IMSI (EF.IMSI) and the service provider name
//! (EF.SPN), decoded with the `saip` codec.
//!
//! This is information for the tester, never a condition of the installation: a UPP that is
//! not a valid SAIP package (or lacks a file) installs exactly as before, and the values
//! it does not yield are `None`. [`UppInfo`] holds nothing secret (no Ki, OPc, PIN or PUK).
//!
//! The card does keep secrets of the package, as a real card keeps them in its NVM: the
//! installed UPP itself and the USIM's Ki/OPc with its accepted sequence numbers
//! ([`crate::state::ProfileRecord::usim`], read by [`crate::usim::UsimState::from_upp`] from
//! the same decoded package). They are stored in the state file (mode 0600) and never
//! printed.

use saip::{PeType, Upp};
use serde::{Deserialize, Serialize};

/// Identifiers found inside an installed profile's UPP. Every field is `None` when the
/// package is not a parsable SAIP package or does not contain (a decodable) value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UppInfo {
    /// The ICCID of the SAIP ProfileHeader (19 or 20 digits).
    #[serde(default)]
    pub header_iccid: Option<String>,
    /// The ICCID written in EF.ICCID (MF, or IoT PE), 19 or 20 digits.
    #[serde(default)]
    pub ef_iccid: Option<String>,
    /// The IMSI digits of EF.IMSI (first USIM, or IoT PE; 3GPP TS 31.102 4.2.2).
    #[serde(default)]
    pub imsi: Option<String>,
    /// The service provider name of EF.SPN (first USIM; 3GPP TS 31.102 4.2.12).
    #[serde(default)]
    pub ef_spn: Option<String>,
}

impl UppInfo {
    /// Read the identifiers of a UPP (DER). Never fails: whatever cannot be decoded is `None`.
    pub fn from_upp(upp: &[u8]) -> UppInfo {
        match Upp::decode(upp) {
            Ok(u) => UppInfo::from_decoded(&u),
            Err(_) => UppInfo::default(),
        }
    }

    /// The identifiers of an already decoded package.
    pub fn from_decoded(upp: &Upp) -> UppInfo {
        UppInfo {
            header_iccid: upp.iccid().ok(),
            ef_iccid: upp.ef_iccid().ok(),
            imsi: upp.imsi().ok(),
            ef_spn: upp
                .template_file(PeType::Usim, "ef-spn")
                .and_then(saip::File::content)
                .and_then(decode_ef_spn),
        }
    }

    /// Whether nothing was found (not a SAIP package, or one without these values).
    pub fn is_empty(&self) -> bool {
        self == &UppInfo::default()
    }

    /// The ICCID the package states (EF.ICCID, else the ProfileHeader's), if any.
    pub fn iccid(&self) -> Option<&str> {
        self.ef_iccid.as_deref().or(self.header_iccid.as_deref())
    }

    /// The package ICCIDs that differ from `iccid` (the one of the profile metadata), as
    /// `(where, value)` pairs (`"ProfileHeader ICCID"`, `"EF.ICCID"`); empty when they
    /// agree or are absent.
    pub fn iccid_mismatches(&self, iccid: &str) -> Vec<(&'static str, &str)> {
        [
            ("ProfileHeader ICCID", self.header_iccid.as_deref()),
            ("EF.ICCID", self.ef_iccid.as_deref()),
        ]
        .into_iter()
        .filter_map(|(w, v)| v.filter(|v| *v != iccid).map(|v| (w, v)))
        .collect()
    }
}

/// The service provider name of an EF.SPN content (3GPP TS 31.102 4.2.12): octet 1 is the
/// display condition, octets 2..17 the name, in the SMS default 7-bit alphabet (3GPP TS
/// 23.038 6.2.1, one character per octet, escape to the extension table) or in one of the
/// UCS2 codings `80` / `81` / `82` of ETSI TS 102 221 Annex A, `FF`-padded. `None` when
/// the name is empty or not validly coded.
pub fn decode_ef_spn(content: &[u8]) -> Option<String> {
    let name = content.get(1..)?;
    let name = &name[..name.len().min(16)];
    let s = match name.first()? {
        0x80 => ucs2_80(name.get(1..)?)?,
        0x81 => {
            let (&n, rest) = name.get(1..)?.split_first()?;
            let (&b, chars) = rest.split_first()?;
            ucs2_base(u32::from(b) << 7, chars.get(..usize::from(n))?)?
        }
        0x82 => {
            let (&n, rest) = name.get(1..)?.split_first()?;
            let base = u32::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
            ucs2_base(base, rest.get(2..)?.get(..usize::from(n))?)?
        }
        _ => {
            let end = name.iter().position(|&b| b == 0xFF).unwrap_or(name.len());
            gsm7(&name[..end])?
        }
    };
    (!s.is_empty()).then_some(s)
}

/// UCS2 big-endian pairs, up to an `FFFF` pair (or a lone trailing `FF`).
fn ucs2_80(bytes: &[u8]) -> Option<String> {
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| match c {
            [a, b] => u16::from_be_bytes([*a, *b]),
            _ => 0xFFFF,
        })
        .take_while(|&u| u != 0xFFFF)
        .collect();
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// `81`/`82` coding: an octet with bit 8 clear is a default-alphabet character, else the
/// UCS2 character `base + (octet & 0x7F)`.
fn ucs2_base(base: u32, chars: &[u8]) -> Option<String> {
    let mut out = String::new();
    let mut run = Vec::new();
    for &b in chars {
        if b & 0x80 == 0 {
            run.push(b);
        } else {
            out.push_str(&gsm7(&run)?);
            run.clear();
            out.push(char::from_u32(base + u32::from(b & 0x7F))?);
        }
    }
    out.push_str(&gsm7(&run)?);
    Some(out)
}

/// The GSM 7-bit default alphabet (3GPP TS 23.038 6.2.1), code points 0..127.
const GSM7: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The extension table (after the escape `1B`); other codes show the default character.
fn gsm7_ext(b: u8) -> Option<char> {
    Some(match b {
        0x0A => '\u{0C}',
        0x14 => '^',
        0x28 => '{',
        0x29 => '}',
        0x2F => '\\',
        0x3C => '[',
        0x3D => '~',
        0x3E => ']',
        0x40 => '|',
        0x65 => '€',
        _ => return None,
    })
}

/// Unpacked 7-bit default-alphabet octets (bit 8 clear) as text.
fn gsm7(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut escaped = false;
    for &b in bytes {
        let c = *GSM7.get(usize::from(b))?;
        if escaped {
            escaped = false;
            out.push(gsm7_ext(b).unwrap_or(c));
        } else if b == 0x1B {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spn_default_alphabet_with_padding_and_escape() {
        let mut ef = vec![0x01];
        ef.extend_from_slice(b"smdpp");
        ef.resize(17, 0xFF);
        assert_eq!(decode_ef_spn(&ef).as_deref(), Some("smdpp"));
        // '@', '$', '_' and the escaped euro sign.
        let ef = [0x00, 0x00, 0x02, 0x11, 0x1B, 0x65, 0x41, 0xFF];
        assert_eq!(decode_ef_spn(&ef).as_deref(), Some("@$_€A"));
        // Empty name, too short, bit 8 set inside a default-alphabet name.
        assert_eq!(decode_ef_spn(&[0x01; 1]), None);
        assert_eq!(decode_ef_spn(&[0x01, 0xFF, 0xFF]), None);
        assert_eq!(decode_ef_spn(&[]), None);
        assert_eq!(decode_ef_spn(&[0x01, 0x41, 0xC1]), None);
    }

    #[test]
    fn spn_ucs2_codings() {
        // 80: UCS2 pairs, FFFF-padded.
        let ef = [0x01, 0x80, 0x00, 0x4F, 0x04, 0x1F, 0xFF, 0xFF];
        assert_eq!(decode_ef_spn(&ef).as_deref(), Some("OП"));
        // 81: 3 characters, base 0x0400 (0x08 << 7): 'П' = 0x041F, then 'a', 'Б' = 0x0411.
        let ef = [0x01, 0x81, 0x03, 0x08, 0x9F, 0x61, 0x91, 0xFF];
        assert_eq!(decode_ef_spn(&ef).as_deref(), Some("ПaБ"));
        // 82: 2 characters, base 0x0410: 'А' (0x0410), 'x'.
        let ef = [0x01, 0x82, 0x02, 0x04, 0x10, 0x80, 0x78, 0xFF];
        assert_eq!(decode_ef_spn(&ef).as_deref(), Some("Аx"));
        // Length beyond the content.
        assert_eq!(decode_ef_spn(&[0x01, 0x81, 0x09, 0x08, 0x9F]), None);
    }

    #[test]
    fn not_a_package_gives_nothing() {
        assert!(UppInfo::from_upp(&[]).is_empty());
        assert!(UppInfo::from_upp(&[0xA0, 0x03, 0x01, 0x02]).is_empty());
        let junk: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        assert!(UppInfo::from_upp(&junk).is_empty());
    }
}
