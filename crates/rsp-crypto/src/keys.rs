//! Long-term keys: the [`KeyCustody`] abstraction (software keys today, HSM keys later) and
//! [`SoftwareKey`], an in-memory key on P-256 or brainpoolP256r1.
//!
//! Key files are read in the formats SGP.26 and OpenSSL produce: PKCS#8 `PRIVATE KEY`,
//! SEC1 / RFC 5915 `EC PRIVATE KEY`, optionally preceded by an `EC PARAMETERS` block.
//! Secret scalars live in [`Zeroizing`] buffers and never appear in `Debug` output.

use crate::curve::{Curve, EC_PUBLIC_KEY_OID_BYTES};
use crate::error::CryptoError;
use crate::pem;
use aws_lc_rs::agreement::{self, ECDH_P256, UnparsedPublicKey};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use bp256::BrainpoolP256r1;
use elliptic_curve::sec1::ToSec1Point;
use rsp_asn1::tlv::{Tag, parse_single, write_tlv};
use zeroize::Zeroizing;

/// Length of an uncompressed SEC1 point on a 256-bit curve.
pub const PUBLIC_KEY_LEN: usize = 65;

/// Something that holds an EC private key and can sign and agree with it, without
/// necessarily exposing it (a software key, an HSM object, ...).
pub trait KeyCustody: Send + Sync {
    /// The curve of the key.
    fn curve(&self) -> Curve;
    /// The public key as an uncompressed SEC1 point (65 bytes).
    fn public_key(&self) -> &[u8];
    /// ECDSA with SHA-256 over `msg`, as a TR-03111 `r || s` signature.
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], CryptoError>;
    /// ECKA-DH (BSI TR-03111): the x-coordinate of `d * peer`, 32 bytes.
    fn ecdh(&self, peer_public: &[u8]) -> Result<SharedSecret, CryptoError>;
}

/// An ECKA shared secret `ShS` (x-coordinate, 32 bytes), zeroized on drop.
pub struct SharedSecret(Zeroizing<[u8; 32]>);

impl SharedSecret {
    /// The 32 secret bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Wrap a secret computed elsewhere (for example by an HSM).
    pub fn from_bytes(bytes: [u8; 32]) -> SharedSecret {
        SharedSecret(Zeroizing::new(bytes))
    }

    pub(crate) fn from_slice(bytes: &[u8]) -> Result<SharedSecret, CryptoError> {
        let mut z = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return Err(CryptoError::Agreement);
        }
        z.copy_from_slice(bytes);
        Ok(SharedSecret(z))
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}

/// An EC private key held in process memory.
pub struct SoftwareKey {
    curve: Curve,
    public: [u8; PUBLIC_KEY_LEN],
    scalar: Zeroizing<[u8; 32]>,
    inner: Inner,
}

enum Inner {
    P256 {
        signer: EcdsaKeyPair,
        agreement: agreement::PrivateKey,
    },
    Brainpool {
        signer: ecdsa::SigningKey<BrainpoolP256r1>,
        secret: elliptic_curve::SecretKey<BrainpoolP256r1>,
    },
}

impl std::fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareKey")
            .field("curve", &self.curve)
            .field("public_key", &HexFmt(&self.public))
            .finish_non_exhaustive()
    }
}

struct HexFmt<'a>(&'a [u8]);

impl std::fmt::Debug for HexFmt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl SoftwareKey {
    /// Generate a fresh random key on `curve`.
    pub fn generate(curve: Curve) -> Result<SoftwareKey, CryptoError> {
        let scalar = random_scalar(curve)?;
        SoftwareKey::from_scalar(curve, scalar.as_slice())
    }

    /// Build a key from its private scalar `d` (big-endian, at most 32 significant bytes).
    /// Fails if `d` is zero or not below the group order.
    pub fn from_scalar(curve: Curve, d: &[u8]) -> Result<SoftwareKey, CryptoError> {
        let scalar = fixed_scalar(d)?;
        let (public, inner) = match curve {
            Curve::NistP256 => {
                let agreement =
                    agreement::PrivateKey::from_private_key(&ECDH_P256, scalar.as_slice())
                        .map_err(|_| {
                            CryptoError::InvalidPrivateKey("scalar out of range for P-256")
                        })?;
                let pk = agreement
                    .compute_public_key()
                    .map_err(|_| CryptoError::Backend("P-256 public key computation"))?;
                let public = to_point(pk.as_ref(), curve)?;
                let signer = EcdsaKeyPair::from_private_key_and_public_key(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    scalar.as_slice(),
                    &public,
                )
                .map_err(|_| CryptoError::InvalidPrivateKey("scalar out of range for P-256"))?;
                (public, Inner::P256 { signer, agreement })
            }
            Curve::BrainpoolP256r1 => {
                let secret =
                    elliptic_curve::SecretKey::<BrainpoolP256r1>::from_slice(scalar.as_slice())
                        .map_err(|_| {
                            CryptoError::InvalidPrivateKey(
                                "scalar out of range for brainpoolP256r1",
                            )
                        })?;
                let signer = ecdsa::SigningKey::<BrainpoolP256r1>::from_slice(scalar.as_slice())
                    .map_err(|_| {
                        CryptoError::InvalidPrivateKey("scalar out of range for brainpoolP256r1")
                    })?;
                let point = secret.public_key().to_sec1_point(false);
                let public = to_point(point.as_bytes(), curve)?;
                (public, Inner::Brainpool { signer, secret })
            }
        };
        Ok(SoftwareKey {
            curve,
            public,
            scalar,
            inner,
        })
    }

    /// Read a PEM key file: `PRIVATE KEY` (PKCS#8) or `EC PRIVATE KEY` (SEC1), optionally
    /// preceded by an `EC PARAMETERS` block (the SGP.26 layout). Other blocks are refused.
    pub fn from_pem(pem_text: &str) -> Result<SoftwareKey, CryptoError> {
        let blocks = pem::parse(pem_text)?;
        let mut hint = None;
        for block in &blocks {
            match block.label.as_str() {
                "EC PARAMETERS" => {
                    let t = parse_single(&block.der)?;
                    if t.tag != Tag::OID {
                        return Err(CryptoError::Pem("EC PARAMETERS is not a named curve"));
                    }
                    hint = Some(Curve::from_oid_bytes(t.value).ok_or(CryptoError::CurveMismatch)?);
                }
                "PRIVATE KEY" | "EC PRIVATE KEY" => {
                    let key = SoftwareKey::from_der_hinted(&block.der, hint)?;
                    if hint.is_some_and(|c| c != key.curve) {
                        return Err(CryptoError::CurveMismatch);
                    }
                    return Ok(key);
                }
                _ => {
                    return Err(CryptoError::Pem(
                        "unexpected PEM block (want a private key)",
                    ));
                }
            }
        }
        Err(CryptoError::Pem("no private key block"))
    }

    /// Read a DER private key: PKCS#8 `PrivateKeyInfo` or SEC1 `ECPrivateKey` (RFC 5915).
    /// A SEC1 key must carry its named-curve parameters.
    pub fn from_der(der: &[u8]) -> Result<SoftwareKey, CryptoError> {
        SoftwareKey::from_der_hinted(der, None)
    }

    fn from_der_hinted(der: &[u8], hint: Option<Curve>) -> Result<SoftwareKey, CryptoError> {
        let top = parse_single(der)?.expect(Tag::SEQUENCE)?;
        let mut r = top.reader()?;
        let version = r.read_expect(Tag::INTEGER)?;
        match r.peek_tag() {
            Some(Tag::SEQUENCE) => {
                // PKCS#8 PrivateKeyInfo (RFC 5208 / 5958): version 0 or 1.
                if version.value != [0] && version.value != [1] {
                    return Err(CryptoError::InvalidPrivateKey("unsupported PKCS#8 version"));
                }
                let alg = r.read_expect(Tag::SEQUENCE)?;
                let mut ar = alg.reader()?;
                let oid = ar.read_expect(Tag::OID)?;
                if oid.value != EC_PUBLIC_KEY_OID_BYTES {
                    return Err(CryptoError::InvalidPrivateKey("not an EC key"));
                }
                let params = ar.read_expect(Tag::OID)?;
                ar.finish()?;
                let curve =
                    Curve::from_oid_bytes(params.value).ok_or(CryptoError::CurveMismatch)?;
                let inner = r.read_expect(Tag::OCTET_STRING)?;
                // attributes [0] and publicKey [1] (RFC 5958) may follow; both are ignored.
                r.read_optional(Tag::context_constructed(0))?;
                r.read_optional(Tag::context(1))?;
                r.finish()?;
                let (key, _) = parse_sec1(inner.value, Some(curve))?;
                Ok(key)
            }
            Some(Tag::OCTET_STRING) => {
                let (key, _) = parse_sec1(der, hint)?;
                Ok(key)
            }
            _ => Err(CryptoError::InvalidPrivateKey("neither PKCS#8 nor SEC1")),
        }
    }

    /// The private scalar `d` (32 bytes, big-endian). Only for moving the key into an HSM
    /// (`smdpp keys hsm import`); the caller must not copy it anywhere else.
    pub fn expose_scalar(&self) -> &[u8; 32] {
        &self.scalar
    }

    /// The key as unencrypted PKCS#8 DER (`PrivateKeyInfo` with the named-curve OID and an
    /// RFC 5915 `ECPrivateKey` inside, including the public key).
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        let mut ec = Zeroizing::new(Vec::with_capacity(128));
        write_tlv(&mut ec, Tag::INTEGER, &[1]);
        write_tlv(&mut ec, Tag::OCTET_STRING, self.scalar.as_slice());
        let mut bits = Vec::with_capacity(PUBLIC_KEY_LEN + 1);
        bits.push(0);
        bits.extend_from_slice(&self.public);
        let mut bit_string = Vec::with_capacity(70);
        write_tlv(&mut bit_string, Tag::BIT_STRING, &bits);
        write_tlv(&mut ec, Tag::context_constructed(1), &bit_string);
        let mut ec_seq = Zeroizing::new(Vec::with_capacity(140));
        write_tlv(&mut ec_seq, Tag::SEQUENCE, &ec);

        let mut alg = Vec::with_capacity(24);
        write_tlv(&mut alg, Tag::OID, EC_PUBLIC_KEY_OID_BYTES);
        write_tlv(&mut alg, Tag::OID, self.curve.oid_bytes());
        let mut body = Zeroizing::new(Vec::with_capacity(180));
        write_tlv(&mut body, Tag::INTEGER, &[0]);
        write_tlv(&mut body, Tag::SEQUENCE, &alg);
        write_tlv(&mut body, Tag::OCTET_STRING, &ec_seq);
        let mut out = Zeroizing::new(Vec::with_capacity(200));
        write_tlv(&mut out, Tag::SEQUENCE, &body);
        out
    }

    /// The key as a `-----BEGIN PRIVATE KEY-----` PKCS#8 PEM document (loadable by OpenSSL
    /// for both curves). The caller owns the returned secret text.
    pub fn to_pkcs8_pem(&self) -> String {
        pem::encode("PRIVATE KEY", &self.to_pkcs8_der())
    }
}

impl KeyCustody for SoftwareKey {
    fn curve(&self) -> Curve {
        self.curve
    }

    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], CryptoError> {
        let mut out = [0u8; 64];
        match &self.inner {
            Inner::P256 { signer, .. } => {
                let sig = signer
                    .sign(&SystemRandom::new(), msg)
                    .map_err(|_| CryptoError::Backend("P-256 signing"))?;
                if sig.as_ref().len() != 64 {
                    return Err(CryptoError::Backend("P-256 signature length"));
                }
                out.copy_from_slice(sig.as_ref());
            }
            Inner::Brainpool { signer, .. } => {
                use ecdsa::signature::Signer;
                let sig: ecdsa::Signature<BrainpoolP256r1> = signer
                    .try_sign(msg)
                    .map_err(|_| CryptoError::Backend("brainpool signing"))?;
                out.copy_from_slice(&sig.to_bytes());
            }
        }
        Ok(out)
    }

    fn ecdh(&self, peer_public: &[u8]) -> Result<SharedSecret, CryptoError> {
        match &self.inner {
            Inner::P256 { agreement, .. } => agreement::agree(
                agreement,
                UnparsedPublicKey::new(&ECDH_P256, peer_public),
                CryptoError::InvalidPublicKey(self.curve),
                SharedSecret::from_slice,
            ),
            Inner::Brainpool { secret, .. } => {
                let peer =
                    elliptic_curve::PublicKey::<BrainpoolP256r1>::from_sec1_bytes(peer_public)
                        .map_err(|_| CryptoError::InvalidPublicKey(self.curve))?;
                let shared = secret.diffie_hellman(&peer);
                SharedSecret::from_slice(shared.raw_secret_bytes().as_slice())
            }
        }
    }
}

/// Parse a SEC1 `ECPrivateKey` (RFC 5915). `hint` supplies the curve when the structure
/// carries no parameters. Returns the key and whether the structure carried a public key.
fn parse_sec1(der: &[u8], hint: Option<Curve>) -> Result<(SoftwareKey, bool), CryptoError> {
    let top = parse_single(der)?.expect(Tag::SEQUENCE)?;
    let mut r = top.reader()?;
    let version = r.read_expect(Tag::INTEGER)?;
    if version.value != [1] {
        return Err(CryptoError::InvalidPrivateKey(
            "ECPrivateKey version must be 1",
        ));
    }
    let d = r.read_expect(Tag::OCTET_STRING)?;
    let mut curve = hint;
    if let Some(params) = r.read_optional(Tag::context_constructed(0))? {
        let oid = parse_single(params.value)?.expect(Tag::OID)?;
        let c = Curve::from_oid_bytes(oid.value).ok_or(CryptoError::CurveMismatch)?;
        if curve.is_some_and(|h| h != c) {
            return Err(CryptoError::CurveMismatch);
        }
        curve = Some(c);
    }
    let public = match r.read_optional(Tag::context_constructed(1))? {
        Some(p) => {
            let bits = parse_single(p.value)?.expect(Tag::BIT_STRING)?;
            match bits.value.split_first() {
                Some((0, point)) => Some(point),
                _ => return Err(CryptoError::InvalidPrivateKey("bad public key BIT STRING")),
            }
        }
        None => None,
    };
    r.finish()?;
    let curve = curve.ok_or(CryptoError::InvalidPrivateKey(
        "EC key without curve parameters",
    ))?;
    let key = SoftwareKey::from_scalar(curve, d.value)?;
    if public.is_some_and(|p| p != key.public.as_slice()) {
        return Err(CryptoError::InvalidPrivateKey(
            "public key does not match private key",
        ));
    }
    Ok((key, public.is_some()))
}

/// Left-pad a big-endian scalar to 32 bytes (leading zero octets beyond 32 are allowed).
fn fixed_scalar(d: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let first = d.iter().position(|&b| b != 0).unwrap_or(d.len());
    let digits = d.get(first..).unwrap_or(&[]);
    if digits.is_empty() {
        return Err(CryptoError::InvalidPrivateKey("zero scalar"));
    }
    let mut out = Zeroizing::new([0u8; 32]);
    let start = 32usize
        .checked_sub(digits.len())
        .ok_or(CryptoError::InvalidPrivateKey(
            "scalar longer than 32 bytes",
        ))?;
    out.get_mut(start..)
        .ok_or(CryptoError::InvalidPrivateKey("scalar length"))?
        .copy_from_slice(digits);
    Ok(out)
}

/// A uniformly random scalar in `[1, n-1]` by rejection sampling.
pub(crate) fn random_scalar(curve: Curve) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let mut candidate = Zeroizing::new([0u8; 32]);
    // The order of either curve is above 2^255, so each try succeeds with probability > 1/2;
    // 128 failures in a row means the RNG is broken.
    for _ in 0..128 {
        aws_lc_rs::rand::fill(candidate.as_mut_slice())
            .map_err(|_| CryptoError::Backend("random generator"))?;
        let ok = match curve {
            Curve::NistP256 => {
                agreement::PrivateKey::from_private_key(&ECDH_P256, candidate.as_slice()).is_ok()
            }
            Curve::BrainpoolP256r1 => {
                elliptic_curve::SecretKey::<BrainpoolP256r1>::from_slice(candidate.as_slice())
                    .is_ok()
            }
        };
        if ok {
            return Ok(candidate);
        }
    }
    Err(CryptoError::Backend("random generator"))
}

/// Check that `bytes` is an uncompressed point of the right length and copy it.
fn to_point(bytes: &[u8], curve: Curve) -> Result<[u8; PUBLIC_KEY_LEN], CryptoError> {
    let mut out = [0u8; PUBLIC_KEY_LEN];
    if bytes.len() != PUBLIC_KEY_LEN || bytes.first() != Some(&0x04) {
        return Err(CryptoError::InvalidPublicKey(curve));
    }
    out.copy_from_slice(bytes);
    Ok(out)
}

/// Check that `point` is a valid SEC1 point on `curve` and return it uncompressed.
pub fn normalize_public_key(
    curve: Curve,
    point: &[u8],
) -> Result<[u8; PUBLIC_KEY_LEN], CryptoError> {
    let pk = elliptic_curve_point(curve, point)?;
    to_point(&pk, curve)
}

fn elliptic_curve_point(curve: Curve, point: &[u8]) -> Result<Vec<u8>, CryptoError> {
    match curve {
        Curve::NistP256 => {
            use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey};
            // Only the uncompressed form is normalised on P-256 (aws-lc-rs does not export
            // point decompression); SGP.22 always transmits uncompressed points.
            if point.len() != PUBLIC_KEY_LEN {
                return Err(CryptoError::InvalidPublicKey(curve));
            }
            ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .map_err(|_| CryptoError::InvalidPublicKey(curve))?;
            Ok(point.to_vec())
        }
        Curve::BrainpoolP256r1 => {
            let pk = elliptic_curve::PublicKey::<BrainpoolP256r1>::from_sec1_bytes(point)
                .map_err(|_| CryptoError::InvalidPublicKey(curve))?;
            Ok(pk.to_sec1_point(false).as_bytes().to_vec())
        }
    }
}

/// Extract `(curve, uncompressed point)` from a DER `SubjectPublicKeyInfo`.
pub fn public_key_from_spki(der: &[u8]) -> Result<(Curve, Vec<u8>), CryptoError> {
    let top = parse_single(der)?.expect(Tag::SEQUENCE)?;
    let mut r = top.reader()?;
    let alg = r.read_expect(Tag::SEQUENCE)?;
    let mut ar = alg.reader()?;
    let oid = ar.read_expect(Tag::OID)?;
    if oid.value != EC_PUBLIC_KEY_OID_BYTES {
        return Err(CryptoError::CurveMismatch);
    }
    let params = ar.read_expect(Tag::OID)?;
    ar.finish()?;
    let curve = Curve::from_oid_bytes(params.value).ok_or(CryptoError::CurveMismatch)?;
    let bits = r.read_expect(Tag::BIT_STRING)?;
    r.finish()?;
    let point = match bits.value.split_first() {
        Some((0, p)) => p,
        _ => return Err(CryptoError::InvalidPublicKey(curve)),
    };
    let point = normalize_public_key(curve, point)?;
    Ok((curve, point.to_vec()))
}

/// Extract `(curve, uncompressed point)` from a `-----BEGIN PUBLIC KEY-----` PEM document.
pub fn public_key_from_pem(text: &str) -> Result<(Curve, Vec<u8>), CryptoError> {
    let blocks = pem::parse(text)?;
    let block = blocks
        .iter()
        .find(|b| b.label == "PUBLIC KEY")
        .ok_or(CryptoError::Pem("no PUBLIC KEY block"))?;
    public_key_from_spki(&block.der)
}
