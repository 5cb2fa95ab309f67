//! The two elliptic curves SGP.22 allows (section 2.6.5: NIST P-256 and brainpoolP256r1).

/// An elliptic curve usable for RSP signatures and key agreement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (secp256r1, prime256v1).
    NistP256,
    /// brainpoolP256r1 (RFC 5639).
    BrainpoolP256r1,
}

/// DER contents octets of the P-256 named-curve OID 1.2.840.10045.3.1.7.
pub(crate) const P256_OID_BYTES: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// DER contents octets of the brainpoolP256r1 OID 1.3.36.3.3.2.8.1.1.7.
pub(crate) const BP256_OID_BYTES: &[u8] = &[0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07];
/// DER contents octets of id-ecPublicKey 1.2.840.10045.2.1.
pub(crate) const EC_PUBLIC_KEY_OID_BYTES: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];

impl Curve {
    /// Both curves, P-256 first.
    pub const ALL: [Curve; 2] = [Curve::NistP256, Curve::BrainpoolP256r1];

    /// The named-curve OID in dotted form.
    pub fn oid(self) -> &'static str {
        match self {
            Curve::NistP256 => "1.2.840.10045.3.1.7",
            Curve::BrainpoolP256r1 => "1.3.36.3.3.2.8.1.1.7",
        }
    }

    /// The curve for a dotted named-curve OID, if it is one of the two supported curves.
    pub fn from_oid(dotted: &str) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.oid() == dotted)
    }

    /// The curve's usual name ("P-256", "brainpoolP256r1").
    pub fn name(self) -> &'static str {
        match self {
            Curve::NistP256 => "P-256",
            Curve::BrainpoolP256r1 => "brainpoolP256r1",
        }
    }

    /// The DER contents octets of the named-curve OID.
    pub fn oid_bytes(self) -> &'static [u8] {
        match self {
            Curve::NistP256 => P256_OID_BYTES,
            Curve::BrainpoolP256r1 => BP256_OID_BYTES,
        }
    }

    /// The curve whose OID has these DER contents octets.
    pub fn from_oid_bytes(bytes: &[u8]) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.oid_bytes() == bytes)
    }
}

impl std::fmt::Display for Curve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_round_trip() {
        for c in Curve::ALL {
            assert_eq!(Curve::from_oid(c.oid()), Some(c));
            assert_eq!(Curve::from_oid_bytes(c.oid_bytes()), Some(c));
            let dotted = rsp_asn1::prim::Oid(c.oid_bytes().to_vec()).to_dotted();
            assert_eq!(dotted, c.oid());
        }
        assert_eq!(Curve::from_oid("1.3.132.0.34"), None);
    }
}
