//! Milenage (3GPP TS 35.206): the example AKA algorithm set `f1`, `f1*`, `f2`..`f5`,
//! `f5*` over AES-128, and the OPc derivation `OPc = AES_K(OP) xor OP`.
//!
//! The rotation constants `r1..r5` (in bits) and the xoring constants `c1..c5` are
//! configurable, as in the SAIP `AlgoParameter` (`rotationConstants`, `xoringConstants`);
//! [`Milenage::new`] uses the standard values of TS 35.206 4.1.
//!
//! Used by the personalization to derive OPc from an operator's OP and by tests to prove
//! that a Ki/OPc pair answers a known challenge; it is not an authentication centre.

use aws_lc_rs::cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::params::{DEFAULT_ROTATION_CONSTANTS, DEFAULT_XORING_CONSTANTS};

/// A 128-bit block.
type Block = [u8; 16];

/// The AES backend refused a key or a block (not expected for 16-octet inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("AES-128 backend failure in Milenage")]
pub struct MilenageError;

/// Outputs of `f2`..`f5` for one RAND.
#[derive(Clone, PartialEq, Eq)]
pub struct F2345 {
    /// `f2`: RES / XRES (64 bits).
    pub res: [u8; 8],
    /// `f3`: CK.
    pub ck: [u8; 16],
    /// `f4`: IK.
    pub ik: [u8; 16],
    /// `f5`: AK (48 bits).
    pub ak: [u8; 6],
}

impl std::fmt::Debug for F2345 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("F2345(<redacted>)")
    }
}

/// Milenage keyed with K and OPc. `Debug` never shows key material.
pub struct Milenage {
    aes: EncryptingKey,
    opc: Zeroizing<Block>,
    r: [u8; 5],
    c: [Block; 5],
}

impl std::fmt::Debug for Milenage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Milenage")
            .field("r", &self.r)
            .finish_non_exhaustive()
    }
}

fn aes_key(k: &Block) -> Result<EncryptingKey, MilenageError> {
    let key = UnboundCipherKey::new(&AES_128, k).map_err(|_| MilenageError)?;
    EncryptingKey::ecb(key).map_err(|_| MilenageError)
}

fn encrypt(aes: &EncryptingKey, mut block: Block) -> Result<Block, MilenageError> {
    aes.less_safe_encrypt(&mut block, EncryptionContext::None)
        .map_err(|_| MilenageError)?;
    Ok(block)
}

fn xor(a: &Block, b: &Block) -> Block {
    let mut out = [0u8; 16];
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x ^ y;
    }
    out
}

/// Cyclic rotation of a 128-bit value towards the most significant bit by `r` bits.
fn rot(x: &Block, r: u8) -> Block {
    u128::from_be_bytes(*x)
        .rotate_left(u32::from(r))
        .to_be_bytes()
}

/// `OPc = AES_K(OP) xor OP` (TS 35.206 4.1).
pub fn compute_opc(k: &[u8; 16], op: &[u8; 16]) -> Result<[u8; 16], MilenageError> {
    let aes = aes_key(k)?;
    Ok(xor(&encrypt(&aes, *op)?, op))
}

impl Milenage {
    /// Milenage with the standard constants (`r` = 64, 0, 32, 64, 96; `c1` = 0,
    /// `c2..c5` = 1, 2, 4, 8).
    pub fn new(k: &[u8; 16], opc: &[u8; 16]) -> Result<Self, MilenageError> {
        Self::with_saip_constants(
            k,
            opc,
            DEFAULT_ROTATION_CONSTANTS,
            &DEFAULT_XORING_CONSTANTS,
        )
    }

    /// Milenage with operator-chosen constants: `r` in bits, `c` as five 128-bit values.
    pub fn with_constants(
        k: &[u8; 16],
        opc: &[u8; 16],
        r: [u8; 5],
        c: [[u8; 16]; 5],
    ) -> Result<Self, MilenageError> {
        Ok(Milenage {
            aes: aes_key(k)?,
            opc: Zeroizing::new(*opc),
            r: r.map(|v| v & 0x7F),
            c,
        })
    }

    /// Milenage with constants in the SAIP `AlgoParameter` layout: `rotationConstants`
    /// (5 octets, bits) and `xoringConstants` (80 octets, `c1 || .. || c5`).
    pub fn with_saip_constants(
        k: &[u8; 16],
        opc: &[u8; 16],
        rotation: [u8; 5],
        xoring: &[u8; 80],
    ) -> Result<Self, MilenageError> {
        let mut c = [[0u8; 16]; 5];
        for (ci, chunk) in c.iter_mut().zip(xoring.chunks_exact(16)) {
            ci.copy_from_slice(chunk);
        }
        Self::with_constants(k, opc, rotation, c)
    }

    /// `TEMP = E_K(RAND xor OPc)`.
    fn temp(&self, rand: &[u8; 16]) -> Result<Zeroizing<Block>, MilenageError> {
        Ok(Zeroizing::new(encrypt(&self.aes, xor(rand, &self.opc))?))
    }

    /// `OUT1`: `f1 || f1*`.
    fn out1(
        &self,
        rand: &[u8; 16],
        sqn: &[u8; 6],
        amf: &[u8; 2],
    ) -> Result<Zeroizing<Block>, MilenageError> {
        let temp = self.temp(rand)?;
        let mut in1 = [0u8; 16];
        in1[..6].copy_from_slice(sqn);
        in1[6..8].copy_from_slice(amf);
        in1[8..14].copy_from_slice(sqn);
        in1[14..].copy_from_slice(amf);
        let x = xor(
            &xor(&temp, &rot(&xor(&in1, &self.opc), self.r[0])),
            &self.c[0],
        );
        Ok(Zeroizing::new(xor(&encrypt(&self.aes, x)?, &self.opc)))
    }

    /// `OUTn` for n = 2..=5: `E_K(rot(TEMP xor OPc, rn) xor cn) xor OPc`.
    fn out(&self, temp: &Block, n: usize) -> Result<Zeroizing<Block>, MilenageError> {
        let (r, c) = match (self.r.get(n - 1), self.c.get(n - 1)) {
            (Some(r), Some(c)) => (*r, c),
            _ => return Err(MilenageError),
        };
        let x = xor(&rot(&xor(temp, &self.opc), r), c);
        Ok(Zeroizing::new(xor(&encrypt(&self.aes, x)?, &self.opc)))
    }

    /// `f1`: the network authentication code MAC-A.
    pub fn f1(
        &self,
        rand: &[u8; 16],
        sqn: &[u8; 6],
        amf: &[u8; 2],
    ) -> Result<[u8; 8], MilenageError> {
        let o = self.out1(rand, sqn, amf)?;
        let mut mac = [0u8; 8];
        mac.copy_from_slice(&o[..8]);
        Ok(mac)
    }

    /// `f1*`: the resynchronisation authentication code MAC-S.
    pub fn f1_star(
        &self,
        rand: &[u8; 16],
        sqn: &[u8; 6],
        amf: &[u8; 2],
    ) -> Result<[u8; 8], MilenageError> {
        let o = self.out1(rand, sqn, amf)?;
        let mut mac = [0u8; 8];
        mac.copy_from_slice(&o[8..]);
        Ok(mac)
    }

    /// `f2` (RES), `f3` (CK), `f4` (IK) and `f5` (AK).
    pub fn f2345(&self, rand: &[u8; 16]) -> Result<F2345, MilenageError> {
        let temp = self.temp(rand)?;
        let o2 = self.out(&temp, 2)?;
        let mut res = [0u8; 8];
        res.copy_from_slice(&o2[8..]);
        let mut ak = [0u8; 6];
        ak.copy_from_slice(&o2[..6]);
        Ok(F2345 {
            res,
            ck: *self.out(&temp, 3)?,
            ik: *self.out(&temp, 4)?,
            ak,
        })
    }

    /// `f5*`: the resynchronisation anonymity key AK.
    pub fn f5_star(&self, rand: &[u8; 16]) -> Result<[u8; 6], MilenageError> {
        let temp = self.temp(rand)?;
        let o5 = self.out(&temp, 5)?;
        let mut ak = [0u8; 6];
        ak.copy_from_slice(&o5[..6]);
        Ok(ak)
    }
}

/// Whether `Ki`/`OPc` answer `rand` with `expected_res` (standard constants). The
/// comparison is constant-time. Use it to prove a key pair against a known test vector
/// (for example a 3GPP TS 35.208 test set, or a challenge from the operator's AuC).
pub fn verify_milenage(
    ki: &[u8; 16],
    opc: &[u8; 16],
    rand: &[u8; 16],
    expected_res: &[u8],
) -> Result<bool, MilenageError> {
    let out = Milenage::new(ki, opc)?.f2345(rand)?;
    Ok(expected_res.len() == out.res.len() && bool::from(out.res.ct_eq(expected_res)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rotation_is_towards_msb() {
        let mut x = [0u8; 16];
        x[15] = 1;
        let r = rot(&x, 8);
        assert_eq!(r[14], 1);
        assert_eq!(rot(&x, 0), x);
        let y = rot(&[0x80; 16], 1);
        assert_eq!(y, [0x01; 16]);
    }
}
