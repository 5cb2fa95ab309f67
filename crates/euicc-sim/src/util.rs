//! Small helpers: randomness, hashing, tags.

use crate::error::SimError;

/// Fill `buf` with cryptographically secure random bytes.
pub fn random_fill(buf: &mut [u8]) -> Result<(), SimError> {
    aws_lc_rs::rand::fill(buf).map_err(|_| SimError::Crypto("random generator failed".into()))
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The Hashed Confirmation Code of SGP.22 section 3.1.3:
/// `SHA256(SHA256(Confirmation Code) || TransactionID)`.
pub fn hash_confirmation_code(cc: &str, transaction_id: &[u8]) -> [u8; 32] {
    let mut buf = sha256(cc.as_bytes()).to_vec();
    buf.extend_from_slice(transaction_id);
    sha256(&buf)
}

/// Parse a BER tag list (`5C` contents: concatenated tags) into tag numbers as written
/// (`0x5A`, `0x9F70`, `0xBF25`, ...).
pub fn parse_tag_list(list: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&first) = list.get(i) {
        let mut tag = u32::from(first);
        i += 1;
        if first & 0x1F == 0x1F {
            while let Some(&b) = list.get(i) {
                tag = (tag << 8) | u32::from(b);
                i += 1;
                if b & 0x80 == 0 || tag > 0x00FF_FFFF {
                    break;
                }
            }
        }
        out.push(tag);
    }
    out
}

/// Read a BER-TLV header (tag and definite length); returns `(tag, header_len, value_len)`.
pub fn tlv_header(data: &[u8]) -> Option<(u32, usize, usize)> {
    let first = *data.first()?;
    let mut tag = u32::from(first);
    let mut i = 1;
    if first & 0x1F == 0x1F {
        loop {
            let b = *data.get(i)?;
            tag = (tag << 8) | u32::from(b);
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            if i > 4 {
                return None;
            }
        }
    }
    let l0 = *data.get(i)?;
    i += 1;
    let len = if l0 < 0x80 {
        usize::from(l0)
    } else {
        let n = usize::from(l0 & 0x7F);
        if n == 0 || n > 3 {
            return None;
        }
        let mut len = 0usize;
        for _ in 0..n {
            len = (len << 8) | usize::from(*data.get(i)?);
            i += 1;
        }
        len
    };
    Some((tag, i, len))
}
