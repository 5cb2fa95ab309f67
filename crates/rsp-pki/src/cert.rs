//! A parsed SGP.22 certificate that keeps its original encoding.

use std::ops::Range;

use der::{Decode, Encode, Tagged};
use rsp_crypto::Curve;
use time::OffsetDateTime;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};

use crate::dertlv::{self, Tlv, tag};
use crate::{PkiError, oids};

/// keyUsage bits (RFC 5280 section 4.2.1.3), as bit positions.
pub mod key_usage {
    /// digitalSignature (0).
    pub const DIGITAL_SIGNATURE: u16 = 1 << 0;
    /// keyCertSign (5).
    pub const KEY_CERT_SIGN: u16 = 1 << 5;
    /// cRLSign (6).
    pub const CRL_SIGN: u16 = 1 << 6;
}

/// An extension value together with its `critical` flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ext<T> {
    /// The extension's `critical` flag.
    pub critical: bool,
    /// The decoded value.
    pub value: T,
}

/// basicConstraints (RFC 5280 section 4.2.1.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Basic {
    /// cA.
    pub ca: bool,
    /// pathLenConstraint.
    pub path_len: Option<u8>,
}

/// The subjectAltName entries SGP.22 uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectAltNames {
    /// dNSName entries (CERT.DP.TLS host names).
    pub dns_names: Vec<String>,
    /// registeredID entries, dotted (CI OID, EUM OID, SM-DP+ OID; may be under `2.999`).
    pub registered_ids: Vec<String>,
    /// iPAddress entries (a CERT.DP.TLS for an SM-DP+ reached by an IP literal).
    pub ip_addresses: Vec<std::net::IpAddr>,
}

/// One directoryName subtree of an EUM nameConstraints extension, reduced to what SGP.22
/// section 4.5.2.1.0.3 uses: organization name and IIN (serialNumber, an EID *prefix*).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectorySubtree {
    /// The `O` attribute, if present.
    pub organization: Option<String>,
    /// The `serialNumber` attribute (IIN, 1st to 8th digit of the EID), if present.
    pub serial_number: Option<String>,
    /// Whether an attribute value of the directoryName is in a string type we do not decode
    /// (e.g. BMPString, UniversalString) or is not a string. Such a subtree cannot be
    /// evaluated, so EID validation against it fails closed (the EUM is refused).
    pub unreadable: bool,
}

/// The EUM nameConstraints extension, reduced to its directoryName subtrees.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EidNameConstraints {
    /// permittedSubtrees with a directoryName base.
    pub permitted: Vec<DirectorySubtree>,
    /// excludedSubtrees with a directoryName base.
    pub excluded: Vec<DirectorySubtree>,
    /// Whether subtrees of other GeneralName forms (dNSName, rfc822Name, ...) were present.
    /// They never express an EID range: an extension with only such subtrees is refused as
    /// not restricting the EIDs. They are otherwise ignored for eUICC certificates, which
    /// SGP.22 gives no subjectAltName; an eUICC certificate that does carry one under such an
    /// EUM is refused, since we do not match other GeneralName forms.
    pub other_forms: bool,
}

/// A parsed certificate plus its original DER encoding and the SGP.22-relevant fields.
///
/// Parsing is strict DER (via `x509-cert`) with one exception: OIDs inside
/// subjectAltName are decoded leniently so that `2.999.x` registeredIDs (SGP.26 test
/// certificates) are accepted.
#[derive(Clone, Debug)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: Range<usize>,
    issuer: Range<usize>,
    subject: Range<usize>,
    parsed: x509_cert::Certificate,
    sig_alg: String,
    tbs_sig_alg: String,
    signature: Vec<u8>,
    curve: Curve,
    public_key: Vec<u8>,
    ski: Option<Vec<u8>>,
    aki: Option<Vec<u8>>,
    policies: Option<Ext<Vec<String>>>,
    key_usage: Option<Ext<u16>>,
    basic: Option<Ext<Basic>>,
    ext_key_usage: Option<Ext<Vec<String>>>,
    san: Option<Ext<SubjectAltNames>>,
    name_constraints: Option<Ext<EidNameConstraints>>,
    permitted_eins: Option<Ext<Vec<String>>>,
    critical_unknown: Vec<String>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

fn range_of(whole: &[u8], part: &[u8]) -> Range<usize> {
    // `part` is always a sub-slice of `whole` (both come from the same buffer).
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

fn to_datetime(t: &x509_cert::time::Time) -> Result<OffsetDateTime, PkiError> {
    let secs = i64::try_from(t.to_unix_duration().as_secs())
        .map_err(|_| PkiError::malformed("validity time out of range"))?;
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| PkiError::malformed("validity time out of range"))
}

/// Decodes a directory string (PrintableString, UTF8String, IA5String, TeletexString as
/// Latin-1) to a Rust string.
pub(crate) fn directory_string(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        tag::PRINTABLE_STRING | tag::IA5_STRING | tag::UTF8_STRING => {
            std::str::from_utf8(bytes).ok().map(str::to_owned)
        }
        tag::TELETEX_STRING => Some(bytes.iter().map(|b| char::from(*b)).collect()),
        _ => None,
    }
}

/// Extracts the attributes of a DER `Name` (RDNSequence) as `(dotted type, string value)`,
/// in order. Values that are not strings are skipped.
pub(crate) fn name_attributes(name_der: &[u8]) -> Result<Vec<(String, String)>, PkiError> {
    let name = dertlv::read_single(name_der, tag::SEQUENCE, "Name")?;
    let mut out = Vec::new();
    for rdn in dertlv::children(name.value)? {
        if rdn.tag != tag::SET {
            return Err(PkiError::malformed("RDN is not a SET"));
        }
        for atv in dertlv::children(rdn.value)? {
            let parts = dertlv::children(atv.value)?;
            let [t, v] = parts.as_slice() else {
                return Err(PkiError::malformed("bad AttributeTypeAndValue"));
            };
            if atv.tag != tag::SEQUENCE || t.tag != tag::OID {
                return Err(PkiError::malformed("bad AttributeTypeAndValue"));
            }
            if let Some(s) = directory_string(v.tag, v.value) {
                out.push((dertlv::oid_to_dotted(t.value)?, s));
            }
        }
    }
    Ok(out)
}

/// How many attributes a DER `Name` holds, decodable or not (see [`name_attributes`], which
/// skips values it cannot decode).
fn name_attribute_count(name_der: &[u8]) -> Result<usize, PkiError> {
    let name = dertlv::read_single(name_der, tag::SEQUENCE, "Name")?;
    let mut count = 0;
    for rdn in dertlv::children(name.value)? {
        count += dertlv::children(rdn.value)?.len();
    }
    Ok(count)
}

fn first_attr(attrs: &[(String, String)], oid: &str) -> Option<String> {
    attrs.iter().find(|(t, _)| t == oid).map(|(_, v)| v.clone())
}

fn parse_policies(value: &[u8]) -> Result<Vec<String>, PkiError> {
    let outer = dertlv::read_single(value, tag::SEQUENCE, "certificatePolicies")?;
    let mut out = Vec::new();
    for info in dertlv::children(outer.value)? {
        let parts = dertlv::children(info.value)?;
        match parts.first() {
            Some(Tlv {
                tag: tag::OID,
                value,
                ..
            }) if info.tag == tag::SEQUENCE => {
                out.push(dertlv::oid_to_dotted(value)?);
            }
            _ => return Err(PkiError::malformed("bad PolicyInformation")),
        }
    }
    if out.is_empty() {
        return Err(PkiError::malformed("empty certificatePolicies"));
    }
    Ok(out)
}

fn parse_san(value: &[u8]) -> Result<SubjectAltNames, PkiError> {
    let outer = dertlv::read_single(value, tag::SEQUENCE, "subjectAltName")?;
    let mut san = SubjectAltNames::default();
    for gn in dertlv::children(outer.value)? {
        match gn.tag {
            // dNSName [2] IA5String
            0x82 => san.dns_names.push(
                std::str::from_utf8(gn.value)
                    .map_err(|_| PkiError::malformed("non-ASCII dNSName"))?
                    .to_owned(),
            ),
            // registeredID [8] OBJECT IDENTIFIER
            0x88 => san.registered_ids.push(dertlv::oid_to_dotted(gn.value)?),
            // iPAddress [7] OCTET STRING: 4 (IPv4) or 16 (IPv6) octets (RFC 5280 4.2.1.6)
            0x87 => san.ip_addresses.push(match gn.value.len() {
                4 => {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(gn.value);
                    std::net::IpAddr::from(a)
                }
                16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(gn.value);
                    std::net::IpAddr::from(a)
                }
                _ => return Err(PkiError::malformed("iPAddress of bad length")),
            }),
            _ => {}
        }
    }
    Ok(san)
}

fn parse_subtrees(
    value: &[u8],
    nc: &mut EidNameConstraints,
    permitted: bool,
) -> Result<(), PkiError> {
    for subtree in dertlv::children(value)? {
        if subtree.tag != tag::SEQUENCE {
            return Err(PkiError::malformed("bad GeneralSubtree"));
        }
        let parts = dertlv::children(subtree.value)?;
        let base = parts
            .first()
            .ok_or_else(|| PkiError::malformed("empty GeneralSubtree"))?;
        if base.tag == 0xA4 {
            // directoryName [4] EXPLICIT Name
            let attrs = name_attributes(base.value)?;
            let entry = DirectorySubtree {
                organization: first_attr(&attrs, oids::AT_O),
                serial_number: first_attr(&attrs, oids::AT_SERIAL_NUMBER),
                unreadable: attrs.len() != name_attribute_count(base.value)?,
            };
            if permitted {
                nc.permitted.push(entry);
            } else {
                nc.excluded.push(entry);
            }
        } else {
            nc.other_forms = true;
        }
    }
    Ok(())
}

fn parse_name_constraints(value: &[u8]) -> Result<EidNameConstraints, PkiError> {
    let outer = dertlv::read_single(value, tag::SEQUENCE, "nameConstraints")?;
    let mut nc = EidNameConstraints::default();
    for part in dertlv::children(outer.value)? {
        match part.tag {
            0xA0 => parse_subtrees(part.value, &mut nc, true)?,
            0xA1 => parse_subtrees(part.value, &mut nc, false)?,
            _ => return Err(PkiError::malformed("bad nameConstraints")),
        }
    }
    Ok(nc)
}

/// `PermittedEins ::= SEQUENCE OF PrintableString` (SGP.22 v3 ASN.1).
fn parse_permitted_eins(value: &[u8]) -> Result<Vec<String>, PkiError> {
    let outer = dertlv::read_single(value, tag::SEQUENCE, "permittedEins")?;
    dertlv::children(outer.value)?
        .into_iter()
        .map(|s| {
            if s.tag != tag::PRINTABLE_STRING {
                return Err(PkiError::malformed(
                    "permittedEins entry is not a PrintableString",
                ));
            }
            std::str::from_utf8(s.value)
                .map(str::to_owned)
                .map_err(|_| PkiError::malformed("permittedEins entry is not ASCII"))
        })
        .collect()
}

fn set_once<T>(slot: &mut Option<Ext<T>>, critical: bool, value: T) -> Result<(), PkiError> {
    if slot.is_some() {
        return Err(PkiError::malformed("duplicate extension"));
    }
    *slot = Some(Ext { critical, value });
    Ok(())
}

impl Certificate {
    /// Parses a DER certificate. Trailing bytes after the certificate are rejected.
    ///
    /// The public key must be an `id-ecPublicKey` on P-256 or brainpoolP256r1
    /// (SGP.22 section 4.5.2.1.1).
    pub fn from_der(der: &[u8]) -> Result<Certificate, PkiError> {
        let parsed = x509_cert::Certificate::from_der(der)
            .map_err(|e| PkiError::malformed(format!("X.509 decode: {e}")))?;

        // Slice the original encoding: Certificate ::= SEQUENCE { tbs, sigAlg, sig }.
        let outer = dertlv::read_single(der, tag::SEQUENCE, "Certificate")?;
        let top = dertlv::children(outer.value)?;
        let [tbs, sig_alg, sig_value] = top.as_slice() else {
            return Err(PkiError::malformed("Certificate must have three fields"));
        };
        let tbs_fields = dertlv::children(tbs.value)?;
        // version [0] is present in any v3 certificate; SGP.22 requires v3.
        if tbs_fields.first().map(|t| t.tag) != Some(0xA0)
            || parsed.tbs_certificate().version() != x509_cert::certificate::Version::V3
        {
            return Err(PkiError::malformed("certificate version is not v3"));
        }
        // [0] version, serialNumber, signature, issuer, validity, subject, spki, ...
        let (Some(tbs_alg), Some(issuer), Some(subject)) =
            (tbs_fields.get(2), tbs_fields.get(3), tbs_fields.get(5))
        else {
            return Err(PkiError::malformed("truncated TBSCertificate"));
        };

        let alg_oid = |t: &Tlv<'_>| -> Result<(String, usize), PkiError> {
            let parts = dertlv::children(t.value)?;
            match parts.first() {
                Some(o) if o.tag == tag::OID => Ok((dertlv::oid_to_dotted(o.value)?, parts.len())),
                _ => Err(PkiError::malformed("bad AlgorithmIdentifier")),
            }
        };
        let (sig_alg_oid, sig_alg_n) = alg_oid(sig_alg)?;
        let (tbs_sig_alg_oid, _) = alg_oid(tbs_alg)?;
        if sig_alg_oid != oids::ECDSA_WITH_SHA256 || sig_alg_n != 1 {
            // SGP.22 section 4.5.2.1.1: ecdsa-with-SHA256, parameters omitted.
            return Err(PkiError::UnsupportedAlgorithm {
                role: None,
                detail: format!("signature algorithm {sig_alg_oid}"),
            });
        }
        if sig_value.tag != tag::BIT_STRING || sig_value.value.first() != Some(&0) {
            return Err(PkiError::malformed("bad signatureValue"));
        }
        let signature = sig_value.value[1..].to_vec();

        // subjectPublicKeyInfo: id-ecPublicKey with a named curve.
        let spki = parsed.tbs_certificate().subject_public_key_info();
        let key_alg = spki.algorithm.oid.to_string();
        if key_alg != oids::EC_PUBLIC_KEY {
            return Err(PkiError::UnsupportedAlgorithm {
                role: None,
                detail: format!("public key algorithm {key_alg}"),
            });
        }
        let params = spki
            .algorithm
            .parameters
            .as_ref()
            .ok_or_else(|| PkiError::malformed("EC key without curve parameters"))?;
        if params.tag() != der::Tag::ObjectIdentifier {
            return Err(PkiError::malformed(
                "EC key parameters are not a named curve",
            ));
        }
        let curve_oid = dertlv::oid_to_dotted(params.value())?;
        let curve = Curve::from_oid(&curve_oid).ok_or(PkiError::UnsupportedCurve {
            role: None,
            oid: curve_oid,
        })?;
        let public_key = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| PkiError::malformed("public key bit string has unused bits"))?
            .to_vec();
        if public_key.len() != 65 || public_key[0] != 0x04 {
            return Err(PkiError::malformed(
                "public key is not an uncompressed 256-bit point",
            ));
        }

        let validity = parsed.tbs_certificate().validity();
        let not_before = to_datetime(&validity.not_before)?;
        let not_after = to_datetime(&validity.not_after)?;

        let mut cert = Certificate {
            der: der.to_vec(),
            tbs: range_of(der, tbs.raw),
            issuer: range_of(der, issuer.raw),
            subject: range_of(der, subject.raw),
            sig_alg: sig_alg_oid,
            tbs_sig_alg: tbs_sig_alg_oid,
            signature,
            curve,
            public_key,
            ski: None,
            aki: None,
            policies: None,
            key_usage: None,
            basic: None,
            ext_key_usage: None,
            san: None,
            name_constraints: None,
            permitted_eins: None,
            critical_unknown: Vec::new(),
            not_before,
            not_after,
            parsed,
        };
        cert.parse_extensions()?;
        Ok(cert)
    }

    fn parse_extensions(&mut self) -> Result<(), PkiError> {
        let exts: Vec<(String, bool, Vec<u8>)> = self
            .parsed
            .tbs_certificate()
            .extensions()
            .map(|e| {
                e.iter()
                    .map(|x| {
                        (
                            x.extn_id.to_string(),
                            x.critical,
                            x.extn_value.as_bytes().to_vec(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let bad = |name: &str, e: der::Error| PkiError::malformed(format!("{name}: {e}"));
        let mut seen = std::collections::HashSet::new();
        for (id, critical, value) in exts {
            if !seen.insert(id.clone()) {
                return Err(PkiError::malformed(format!("duplicate extension {id}")));
            }
            match id.as_str() {
                oids::EXT_SKI => {
                    let v = SubjectKeyIdentifier::from_der(&value).map_err(|e| bad("SKI", e))?;
                    self.ski = Some(v.0.as_bytes().to_vec());
                }
                oids::EXT_AKI => {
                    let v = AuthorityKeyIdentifier::from_der(&value).map_err(|e| bad("AKI", e))?;
                    self.aki = v.key_identifier.map(|k| k.as_bytes().to_vec());
                }
                oids::EXT_KEY_USAGE => {
                    let v = KeyUsage::from_der(&value).map_err(|e| bad("keyUsage", e))?;
                    set_once(&mut self.key_usage, critical, v.0.bits())?;
                }
                oids::EXT_BASIC_CONSTRAINTS => {
                    let v = BasicConstraints::from_der(&value)
                        .map_err(|e| bad("basicConstraints", e))?;
                    let b = Basic {
                        ca: v.ca,
                        path_len: v.path_len_constraint,
                    };
                    set_once(&mut self.basic, critical, b)?;
                }
                oids::EXT_EXT_KEY_USAGE => {
                    let v =
                        ExtendedKeyUsage::from_der(&value).map_err(|e| bad("extKeyUsage", e))?;
                    let list = v.0.iter().map(ToString::to_string).collect();
                    set_once(&mut self.ext_key_usage, critical, list)?;
                }
                oids::EXT_CERT_POLICIES => {
                    set_once(&mut self.policies, critical, parse_policies(&value)?)?;
                }
                oids::EXT_SAN => set_once(&mut self.san, critical, parse_san(&value)?)?,
                oids::EXT_NAME_CONSTRAINTS => {
                    let nc = parse_name_constraints(&value)?;
                    set_once(&mut self.name_constraints, critical, nc)?;
                }
                oids::EXT_PERMITTED_EINS => {
                    let eins = parse_permitted_eins(&value)?;
                    set_once(&mut self.permitted_eins, critical, eins)?;
                }
                _ => {
                    if critical {
                        self.critical_unknown.push(id);
                    }
                }
            }
        }
        Ok(())
    }

    /// Parses a PEM `CERTIFICATE` block (exactly one).
    pub fn from_pem(pem: &str) -> Result<Certificate, PkiError> {
        let (label, der) = der::pem::decode_vec(pem.trim().as_bytes())
            .map_err(|e| PkiError::malformed(format!("PEM: {e}")))?;
        if label != "CERTIFICATE" {
            return Err(PkiError::malformed(format!(
                "PEM label {label:?}, expected CERTIFICATE"
            )));
        }
        Certificate::from_der(&der)
    }

    /// Parses every `CERTIFICATE` block of a PEM bundle.
    pub fn from_pem_bundle(pem: &str) -> Result<Vec<Certificate>, PkiError> {
        const END: &str = "-----END CERTIFICATE-----";
        let mut out = Vec::new();
        let mut rest = pem;
        while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
            let after = &rest[start..];
            let end = after
                .find(END)
                .ok_or_else(|| PkiError::malformed("PEM: missing END CERTIFICATE"))?;
            out.push(Certificate::from_pem(&after[..end + END.len()])?);
            rest = &after[end + END.len()..];
        }
        Ok(out)
    }

    /// The PEM encoding of the original DER.
    pub fn to_pem(&self) -> String {
        der_to_pem(&self.der)
    }

    /// The exact DER this certificate was parsed from.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The exact received bytes of `tbsCertificate` (what the signature covers).
    pub fn tbs_der(&self) -> &[u8] {
        &self.der[self.tbs.clone()]
    }

    /// The exact received DER of the issuer `Name`.
    pub fn issuer_der(&self) -> &[u8] {
        &self.der[self.issuer.clone()]
    }

    /// The exact received DER of the subject `Name`.
    pub fn subject_der(&self) -> &[u8] {
        &self.der[self.subject.clone()]
    }

    /// The `x509-cert` view of the certificate.
    pub fn x509(&self) -> &x509_cert::Certificate {
        &self.parsed
    }

    /// The DER-encoded ECDSA signature (contents of signatureValue).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The signature algorithm of the TBS `signature` field (dotted).
    pub fn tbs_signature_algorithm(&self) -> &str {
        &self.tbs_sig_alg
    }

    /// The outer signatureAlgorithm (dotted; always ecdsa-with-SHA256 after parsing).
    pub fn signature_algorithm(&self) -> &str {
        &self.sig_alg
    }

    /// The curve of the subject public key.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// The subject public key, SEC1 uncompressed (65 bytes).
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// SubjectKeyIdentifier, if present.
    pub fn ski(&self) -> Option<&[u8]> {
        self.ski.as_deref()
    }

    /// AuthorityKeyIdentifier keyIdentifier, if present.
    pub fn aki(&self) -> Option<&[u8]> {
        self.aki.as_deref()
    }

    /// certificatePolicies policy OIDs (dotted), with the critical flag.
    pub fn policies(&self) -> Option<&Ext<Vec<String>>> {
        self.policies.as_ref()
    }

    /// Whether certificatePolicies contains `oid`.
    pub fn has_policy(&self, oid: &str) -> bool {
        self.policies
            .as_ref()
            .is_some_and(|p| p.value.iter().any(|o| o == oid))
    }

    /// keyUsage bits (see [`key_usage`]), with the critical flag.
    pub fn key_usage(&self) -> Option<Ext<u16>> {
        self.key_usage.clone()
    }

    /// basicConstraints, with the critical flag.
    pub fn basic_constraints(&self) -> Option<Ext<Basic>> {
        self.basic.clone()
    }

    /// extKeyUsage purposes (dotted), with the critical flag.
    pub fn ext_key_usage(&self) -> Option<&Ext<Vec<String>>> {
        self.ext_key_usage.as_ref()
    }

    /// subjectAltName dNSName / registeredID entries, with the critical flag.
    pub fn subject_alt_names(&self) -> Option<&Ext<SubjectAltNames>> {
        self.san.as_ref()
    }

    /// The registeredID entries of subjectAltName (CI / EUM / SM-DP+ OID).
    pub fn registered_ids(&self) -> &[String] {
        self.san
            .as_ref()
            .map(|s| s.value.registered_ids.as_slice())
            .unwrap_or(&[])
    }

    /// nameConstraints reduced to directoryName subtrees (EUM "variant O").
    pub fn name_constraints(&self) -> Option<&Ext<EidNameConstraints>> {
        self.name_constraints.as_ref()
    }

    /// The GSMA permittedEins extension (2.23.146.1.2.2.0): EID prefixes.
    pub fn permitted_eins(&self) -> Option<&Ext<Vec<String>>> {
        self.permitted_eins.as_ref()
    }

    /// OIDs of critical extensions this crate does not interpret.
    pub fn unknown_critical_extensions(&self) -> &[String] {
        &self.critical_unknown
    }

    /// notBefore.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// notAfter.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Subject attributes as `(dotted type, value)` in order.
    pub fn subject_attributes(&self) -> Result<Vec<(String, String)>, PkiError> {
        name_attributes(self.subject_der())
    }

    /// The first subject attribute of the given type (e.g. [`oids::AT_SERIAL_NUMBER`]).
    pub fn subject_attribute(&self, oid: &str) -> Option<String> {
        self.subject_attributes()
            .ok()
            .and_then(|a| first_attr(&a, oid))
    }

    /// The subject commonName, if any.
    pub fn common_name(&self) -> Option<String> {
        self.subject_attribute(oids::AT_CN)
    }

    /// The serial number, big-endian magnitude as encoded.
    pub fn serial_number(&self) -> &[u8] {
        self.parsed.tbs_certificate().serial_number().as_bytes()
    }

    /// Whether the certificate is valid at `now` (notBefore <= now <= notAfter).
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// Re-encodes the parsed certificate (used only in tests to check that parsing is
    /// lossless; never used for signature checks).
    #[doc(hidden)]
    pub fn reencode(&self) -> Result<Vec<u8>, PkiError> {
        self.parsed
            .to_der()
            .map_err(|e| PkiError::malformed(format!("re-encode: {e}")))
    }
}

/// PEM-encodes DER bytes with the `CERTIFICATE` label (64-column base64, LF line endings).
pub fn der_to_pem(der: &[u8]) -> String {
    // Encoding into a String cannot fail for a valid label and in-memory buffers; fall back
    // to an empty string rather than panicking (invariant: the label is a constant).
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap_or_default()
}
