//! Digit codings of identifiers: ICCID (plain BCD in the ProfileHeader, nibble-swapped in
//! EF.ICCID) and IMSI (EF.IMSI, 3GPP TS 31.102 4.2.2).

use crate::SaipError;

fn digits(s: &str, what: &'static str, min: usize, max: usize) -> Result<Vec<u8>, SaipError> {
    if s.len() < min || s.len() > max {
        return Err(SaipError::InvalidValue {
            what,
            why: "wrong number of digits",
        });
    }
    s.bytes()
        .map(|b| {
            if b.is_ascii_digit() {
                Ok(b - b'0')
            } else {
                Err(SaipError::InvalidValue {
                    what,
                    why: "not a decimal digit",
                })
            }
        })
        .collect()
}

/// Read nibbles (high first when `swapped` is false) as digits; `F` only as trailing
/// padding.
fn nibbles_to_digits(bytes: &[u8], swapped: bool, what: &'static str) -> Result<String, SaipError> {
    let mut s = String::with_capacity(bytes.len() * 2);
    let mut ended = false;
    for &b in bytes {
        let (a, c) = if swapped {
            (b & 0x0F, b >> 4)
        } else {
            (b >> 4, b & 0x0F)
        };
        for n in [a, c] {
            match n {
                0..=9 if !ended => s.push(char::from(b'0' + n)),
                0x0F => ended = true,
                _ => {
                    return Err(SaipError::InvalidValue {
                        what,
                        why: "not BCD digits",
                    });
                }
            }
        }
    }
    Ok(s)
}

fn pack(d: &[u8], swapped: bool) -> Vec<u8> {
    d.chunks(2)
        .map(|p| {
            let a = p.first().copied().unwrap_or(0x0F);
            let b = p.get(1).copied().unwrap_or(0x0F);
            if swapped { (b << 4) | a } else { (a << 4) | b }
        })
        .collect()
}

fn to_ten(v: Vec<u8>) -> [u8; 10] {
    let mut out = [0xFFu8; 10];
    for (o, b) in out.iter_mut().zip(v) {
        *o = b;
    }
    out
}

/// The ProfileHeader `iccid` coding: 19 or 20 digits, plain BCD, `F`-padded.
pub fn iccid_to_plain(iccid: &str) -> Result<[u8; 10], SaipError> {
    Ok(to_ten(pack(&digits(iccid, "ICCID", 19, 20)?, false)))
}

/// Digits of a ProfileHeader `iccid`.
pub fn iccid_from_plain(bytes: &[u8]) -> Result<String, SaipError> {
    let s = nibbles_to_digits(bytes, false, "ICCID")?;
    check_iccid_len(s)
}

/// The EF.ICCID coding: 19 or 20 digits, nibble-swapped BCD, `F`-padded.
pub fn iccid_to_ef(iccid: &str) -> Result<[u8; 10], SaipError> {
    Ok(to_ten(pack(&digits(iccid, "ICCID", 19, 20)?, true)))
}

/// Digits of an EF.ICCID content.
pub fn iccid_from_ef(bytes: &[u8]) -> Result<String, SaipError> {
    let s = nibbles_to_digits(bytes, true, "ICCID")?;
    check_iccid_len(s)
}

fn check_iccid_len(s: String) -> Result<String, SaipError> {
    if s.len() == 19 || s.len() == 20 {
        Ok(s)
    } else {
        Err(SaipError::InvalidValue {
            what: "ICCID",
            why: "wrong number of digits",
        })
    }
}

/// The EF.IMSI coding (9 octets): length of the IMSI data, then the parity/type nibble and
/// the digits nibble-swapped, `F`-padded.
pub fn imsi_to_ef(imsi: &str) -> Result<[u8; 9], SaipError> {
    let d = digits(imsi, "IMSI", 6, 15)?;
    let parity: u8 = if d.len() % 2 == 1 { 0x09 } else { 0x01 };
    let mut nibbles = Vec::with_capacity(16);
    nibbles.push(parity);
    nibbles.extend_from_slice(&d);
    let packed = pack(&nibbles, true);
    let mut out = [0xFFu8; 9];
    out[0] = packed.len() as u8;
    for (o, b) in out.iter_mut().skip(1).zip(packed) {
        *o = b;
    }
    Ok(out)
}

/// Digits of an EF.IMSI content.
pub fn imsi_from_ef(bytes: &[u8]) -> Result<String, SaipError> {
    let bad = |why| SaipError::InvalidValue { what: "IMSI", why };
    let (&len, rest) = bytes.split_first().ok_or(bad("empty EF.IMSI"))?;
    let data = rest
        .get(..usize::from(len))
        .filter(|d| !d.is_empty())
        .ok_or(bad("bad length octet"))?;
    let first = data.first().copied().unwrap_or(0);
    if first & 0x07 != 0x01 {
        return Err(bad("identity type is not IMSI"));
    }
    let odd = first & 0x08 != 0;
    let mut s = String::new();
    s.push(char::from(
        b'0' + digit(first >> 4).ok_or(bad("not BCD digits"))?,
    ));
    s.push_str(&nibbles_to_digits(
        data.get(1..).unwrap_or(&[]),
        true,
        "IMSI",
    )?);
    if (s.len() % 2 == 1) != odd {
        return Err(bad("parity does not match the number of digits"));
    }
    Ok(s)
}

fn digit(n: u8) -> Option<u8> {
    (n <= 9).then_some(n)
}

/// A PIN or PUK value from its digits (4..8): ASCII digits padded with `FF` to 8 octets
/// (ETSI TS 102 221 9.5.1).
pub fn pin_from_digits(pin: &str) -> Result<[u8; 8], SaipError> {
    let d = digits(pin, "PIN", 4, 8)?;
    let mut out = [0xFFu8; 8];
    for (o, v) in out.iter_mut().zip(d) {
        *o = b'0' + v;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn iccid_codings() {
        let plain = iccid_to_plain("89000123456789012341").unwrap();
        assert_eq!(
            plain,
            [0x89, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0x01, 0x23, 0x41]
        );
        let ef = iccid_to_ef("89000123456789012341").unwrap();
        assert_eq!(
            ef,
            [0x98, 0x00, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x14]
        );
        assert_eq!(iccid_from_ef(&ef).unwrap(), "89000123456789012341");
        let ef19 = iccid_to_ef("8949000000000000017").unwrap();
        assert_eq!(ef19[9], 0xF7);
        assert_eq!(iccid_from_ef(&ef19).unwrap(), "8949000000000000017");
        assert_eq!(
            iccid_from_plain(&iccid_to_plain("8949000000000000017").unwrap()).unwrap(),
            "8949000000000000017"
        );
    }

    #[test]
    fn imsi_codings() {
        let ef = imsi_to_ef("001010123456063").unwrap();
        assert_eq!(ef, [0x08, 0x09, 0x10, 0x10, 0x10, 0x32, 0x54, 0x06, 0x36]);
        assert_eq!(imsi_from_ef(&ef).unwrap(), "001010123456063");
        let even = imsi_to_ef("00101012345606").unwrap();
        assert_eq!(imsi_from_ef(&even).unwrap(), "00101012345606");
    }

    #[test]
    fn rejects_bad_digits() {
        assert!(iccid_to_plain("8900012345678901234X").is_err());
        assert!(iccid_to_plain("123").is_err());
        assert!(imsi_to_ef("1234567890123456").is_err());
        assert!(imsi_from_ef(&[0x09, 0x09]).is_err());
        assert!(
            iccid_from_ef(&[0x98, 0xF0, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x14]).is_err()
        );
        assert!(pin_from_digits("12a4").is_err());
        assert_eq!(
            pin_from_digits("0000").unwrap(),
            [0x30, 0x30, 0x30, 0x30, 0xFF, 0xFF, 0xFF, 0xFF]
        );
    }
}
