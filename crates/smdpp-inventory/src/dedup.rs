//! Duplicate ICCID / IMSI detection within one file, with exact 8-byte keys.
//!
//! - ICCID (validated: 19 or 20 digits, Luhn digit last): the check digit follows from the
//!   others, so the 18 or 19 digits before it identify the ICCID. A 19-digit body is below
//!   10^19 and is its own key; an 18-digit body (below 10^18) is offset by 10^19. Both fit
//!   in a `u64` (max 1.8 * 10^19) and never collide.
//! - IMSI (validated: 6..15 digits): value * 16 + number of digits (below 2^54), so
//!   `001010...` and `1010...` differ.
//!
//! Two `HashSet<u64>`s cost about 9 bytes per slot at up to 2^21 slots each for a million
//! rows: about 38 MB in all.

use std::collections::HashSet;

const TEN_POW_19: u64 = 10_000_000_000_000_000_000;

fn digits_value(s: &str) -> Option<u64> {
    s.bytes().try_fold(0u64, |acc, b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// The key of a validated ICCID.
pub(crate) fn iccid_key(iccid: &str) -> Option<u64> {
    let body = iccid.get(..iccid.len().checked_sub(1)?)?;
    let v = digits_value(body)?;
    match body.len() {
        19 => Some(v),
        18 => v.checked_add(TEN_POW_19),
        _ => None,
    }
}

/// The key of a validated IMSI.
pub(crate) fn imsi_key(imsi: &str) -> Option<u64> {
    if imsi.len() > 15 {
        return None;
    }
    let len = u64::try_from(imsi.len()).ok()?;
    digits_value(imsi)?.checked_mul(16)?.checked_add(len)
}

/// Which of the two identifiers repeats an earlier row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dup {
    Iccid,
    Imsi,
}

/// The ICCIDs and IMSIs of the rows accepted so far.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    iccids: HashSet<u64>,
    imsis: HashSet<u64>,
}

impl Seen {
    /// Records the row's identifiers unless one repeats an earlier row (then nothing is
    /// recorded, so a rejected row never shadows a later one).
    pub(crate) fn insert(&mut self, iccid: &str, imsi: &str) -> Result<(), Dup> {
        // Both were validated, so the keys exist; an absent key skips the check.
        let ik = iccid_key(iccid);
        let mk = imsi_key(imsi);
        if ik.is_some_and(|k| self.iccids.contains(&k)) {
            return Err(Dup::Iccid);
        }
        if mk.is_some_and(|k| self.imsis.contains(&k)) {
            return Err(Dup::Imsi);
        }
        if let Some(k) = ik {
            self.iccids.insert(k);
        }
        if let Some(k) = mk {
            self.imsis.insert(k);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_exact() {
        // Largest and smallest bodies of both lengths.
        assert_eq!(
            iccid_key("89999999999999999999"),
            Some(8_999_999_999_999_999_999)
        );
        assert_eq!(
            iccid_key("8999999999999999999"),
            Some(TEN_POW_19 + 899_999_999_999_999_999)
        );
        // Same leading digits, different lengths: different keys.
        assert_ne!(
            iccid_key("8949000000000000018"),
            iccid_key("89490000000000000180")
        );
        assert_ne!(imsi_key("001010000000001"), imsi_key("01010000000001"));
        assert_eq!(
            imsi_key("999999999999999"),
            Some(999_999_999_999_999 * 16 + 15)
        );
    }
}
