//! Certificate Revocation Lists (SGP.22 section 4.6, RFC 5280 section 5): parsing, signature
//! verification, a set of verified CRLs checked against eUICC and SM-DP+ chains, and a CRL
//! builder for tests and `smdpp pki crl`.
//!
//! # Parsing
//!
//! [`Crl::from_der`] / [`Crl::from_pem`] / [`Crl::from_bytes`] parse an X.509 v2 CRL strictly
//! (structure via `x509-cert`, DER length rules via [`crate::dertlv`]); every failure is a
//! [`CrlError`], never a panic. Inputs above [`MAX_CRL_LEN`] are refused before parsing. The
//! signature is verified over the *received* `tbsCertList` bytes, never a re-encoding.
//!
//! Refused at parse time (each is a [`CrlError::Unsupported`]): version other than v2
//! (SGP.22 Table 17 "SHALL be 2"); a CRL without nextUpdate; delta CRLs
//! (`deltaCRLIndicator`) and segmented CRLs (`id-rsp-partialCrlNumber`, section 4.6.1; a
//! relying party uses the complete standard form); indirect CRLs (`certificateIssuer`
//! entries); any other critical CRL or entry extension. Known non-critical extensions
//! (cRLReasons, invalidityDate, id-rsp-expDate, freshestCRL) are accepted and ignored: every
//! listed serial is definitively revoked (section 4.6: "the 'Hold' state is not considered").
//!
//! # Checking
//!
//! A [`RevocationSet`] holds at most one CRL per issuer key (the CRL's
//! AuthorityKeyIdentifier), the newest by CRL number. A CRL whose AKI names a trusted CI is
//! verified against that CI when added. Any other CRL is taken as an EUM's CRL (the
//! "EUM CRLs where present" of issue #13; SGP.22 v2.2 itself only has CI CRLs): its issuer
//! certificate only arrives with an eUICC, so it is verified, at first use, against the EUM
//! certificate whose SubjectKeyIdentifier equals its AKI, after that certificate's chain was
//! validated; the verified key is remembered.
//!
//! [`RevocationSet::check_euicc`] refuses a chain when the CI or EUM serial is on the CI's
//! CRL, or the eUICC serial on the EUM's CRL ([`PkiError::Revoked`]). A CRL past its
//! nextUpdate is handled by the [`StalePolicy`]: [`StalePolicy::Refuse`] (default) answers
//! [`PkiError::RevocationUnknown`]; [`StalePolicy::Warn`] uses it anyway and reports it in
//! [`RevocationCheck::stale`]. An issuer without a CRL is not checked (accepted).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use der::Decode;
use rsp_crypto::KeyCustody;
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::AuthorityKeyIdentifier;

use crate::cert::Certificate;
use crate::dertlv::{self, Tlv, tag};
use crate::validate::{TrustStore, ValidatedEuicc, rfc3339};
use crate::{CertRole, PkiError, oids};

/// The largest CRL accepted, in bytes (4 MiB; a GSMA CI CRL is a few kilobytes).
pub const MAX_CRL_LEN: usize = 4 * 1024 * 1024;

/// How far in the future a CRL's thisUpdate may be (clock skew) before it is refused.
const THIS_UPDATE_SKEW: Duration = Duration::minutes(5);

/// Why a CRL could not be parsed, verified or installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CrlError {
    /// The input is larger than [`MAX_CRL_LEN`].
    #[error("CRL too large: {len} bytes (at most {max})")]
    TooLarge {
        /// Size of the input.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The encoding is not a well-formed DER/PEM X.509 CRL (truncated, wrong tag, trailing
    /// bytes...).
    #[error("malformed CRL: {0}")]
    Malformed(String),
    /// The signature algorithm is not ecdsa-with-SHA256 (SGP.22 section 4.5.2.1.1), or the
    /// TBS algorithm differs from signatureAlgorithm.
    #[error("unsupported CRL signature algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// A well-formed CRL of a kind this implementation does not use (see the module
    /// documentation).
    #[error("unsupported CRL: {0}")]
    Unsupported(String),
    /// The CRL's issuer name or AuthorityKeyIdentifier does not match the certificate it
    /// was checked against.
    #[error("CRL issuer mismatch: {0}")]
    IssuerMismatch(String),
    /// The signature does not verify with the issuer's public key.
    #[error("CRL signature does not verify with the issuer's key")]
    InvalidSignature,
    /// thisUpdate lies in the future.
    #[error("CRL thisUpdate {this_update} is in the future")]
    NotYetValid {
        /// thisUpdate, RFC 3339.
        this_update: String,
    },
    /// The CRL is older (lower CRL number, or same number and earlier thisUpdate) than the
    /// one already held for its issuer.
    #[error("CRL is older than the one held for its issuer (CRL number {offered} < {held})")]
    Older {
        /// CRL number (hex) of the CRL offered.
        offered: String,
        /// CRL number (hex) of the CRL held.
        held: String,
    },
}

fn malformed(detail: impl Into<String>) -> CrlError {
    CrlError::Malformed(detail.into())
}

fn from_pki(e: PkiError) -> CrlError {
    CrlError::Malformed(e.to_string())
}

/// Strips the leading zero octets of a non-negative INTEGER's contents (a serial number or
/// CRL number), so that `00 80` and `80` compare equal.
fn normalize(int: &[u8]) -> Vec<u8> {
    let skip = int.iter().take_while(|b| **b == 0).count();
    int[skip..].to_vec()
}

/// Compares two normalized big-endian magnitudes.
fn cmp_magnitude(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn to_datetime(t: &x509_cert::time::Time) -> Result<OffsetDateTime, CrlError> {
    let secs = i64::try_from(t.to_unix_duration().as_secs())
        .map_err(|_| malformed("time out of range"))?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| malformed("time out of range"))
}

fn range_of(whole: &[u8], part: &[u8]) -> Range<usize> {
    // `part` is always a sub-slice of `whole` (both come from the same buffer).
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// A parsed X.509 v2 CRL that keeps its original encoding.
#[derive(Clone, Debug)]
pub struct Crl {
    der: Vec<u8>,
    tbs: Range<usize>,
    issuer: Range<usize>,
    signature: Vec<u8>,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    aki: Option<Vec<u8>>,
    crl_number: Option<Vec<u8>>,
    revoked: BTreeMap<Vec<u8>, OffsetDateTime>,
}

impl Crl {
    /// Parses a DER CRL (`CertificateList`). Trailing bytes are refused.
    pub fn from_der(der: &[u8]) -> Result<Crl, CrlError> {
        if der.len() > MAX_CRL_LEN {
            return Err(CrlError::TooLarge {
                len: der.len(),
                max: MAX_CRL_LEN,
            });
        }
        // Slice the original encoding first: CertificateList ::= SEQUENCE { tbs, alg, sig }.
        let outer = dertlv::read_single(der, tag::SEQUENCE, "CertificateList").map_err(from_pki)?;
        let top = dertlv::children(outer.value).map_err(from_pki)?;
        let [tbs, sig_alg, sig_value] = top.as_slice() else {
            return Err(malformed("CertificateList must have three fields"));
        };
        if tbs.tag != tag::SEQUENCE {
            return Err(malformed("tbsCertList is not a SEQUENCE"));
        }
        let tbs_fields = dertlv::children(tbs.value).map_err(from_pki)?;
        // version INTEGER (v2 = 1) is mandatory in SGP.22 (Table 17).
        match tbs_fields.first() {
            Some(Tlv {
                tag: tag::INTEGER,
                value: [1],
                ..
            }) => {}
            Some(Tlv {
                tag: tag::INTEGER, ..
            }) => return Err(CrlError::Unsupported("CRL version is not v2".into())),
            _ => return Err(malformed("tbsCertList has no version (v2 required)")),
        }
        let (Some(tbs_alg), Some(issuer)) = (tbs_fields.get(1), tbs_fields.get(2)) else {
            return Err(malformed("truncated tbsCertList"));
        };
        let alg_oid = |t: &Tlv<'_>| -> Result<(String, usize), CrlError> {
            if t.tag != tag::SEQUENCE {
                return Err(malformed("bad AlgorithmIdentifier"));
            }
            let parts = dertlv::children(t.value).map_err(from_pki)?;
            match parts.first() {
                Some(o) if o.tag == tag::OID => Ok((
                    dertlv::oid_to_dotted(o.value).map_err(from_pki)?,
                    parts.len(),
                )),
                _ => Err(malformed("bad AlgorithmIdentifier")),
            }
        };
        let (outer_alg, outer_n) = alg_oid(sig_alg)?;
        let (inner_alg, inner_n) = alg_oid(tbs_alg)?;
        if outer_alg != oids::ECDSA_WITH_SHA256 || outer_n != 1 {
            return Err(CrlError::UnsupportedAlgorithm(outer_alg));
        }
        // SGP.22 Table 17: the TBS `signature` SHALL be the same as signatureAlgorithm.
        if inner_alg != outer_alg || inner_n != outer_n || tbs_alg.raw != sig_alg.raw {
            return Err(CrlError::UnsupportedAlgorithm(
                "tbsCertList signature differs from signatureAlgorithm".into(),
            ));
        }
        if sig_value.tag != tag::BIT_STRING || sig_value.value.first() != Some(&0) {
            return Err(malformed("bad signatureValue"));
        }
        let signature = sig_value.value[1..].to_vec();

        // The strict structural parse (times, serial numbers, extensions).
        let parsed =
            x509_cert::crl::CertificateList::<x509_cert::certificate::Rfc5280>::from_der(der)
                .map_err(|e| malformed(format!("X.509 CRL decode: {e}")))?;
        let t = &parsed.tbs_cert_list;
        let this_update = to_datetime(&t.this_update)?;
        let next_update = match &t.next_update {
            Some(n) => to_datetime(n)?,
            None => {
                // RFC 5280 section 5.1.2.5 and SGP.22 Table 17 require it; without it the
                // CRL's freshness cannot be judged.
                return Err(CrlError::Unsupported("CRL without nextUpdate".into()));
            }
        };
        if next_update < this_update {
            return Err(malformed("nextUpdate is before thisUpdate"));
        }

        let mut aki = None;
        let mut crl_number = None;
        let mut seen = std::collections::HashSet::new();
        for ext in t.crl_extensions.iter().flatten() {
            let id = ext.extn_id.to_string();
            if !seen.insert(id.clone()) {
                return Err(malformed(format!("duplicate CRL extension {id}")));
            }
            let value = ext.extn_value.as_bytes();
            match id.as_str() {
                oids::EXT_AKI => {
                    let v = AuthorityKeyIdentifier::from_der(value)
                        .map_err(|e| malformed(format!("authorityKeyIdentifier: {e}")))?;
                    aki = v.key_identifier.map(|k| k.as_bytes().to_vec());
                }
                oids::EXT_CRL_NUMBER => {
                    let n =
                        dertlv::read_single(value, tag::INTEGER, "cRLNumber").map_err(from_pki)?;
                    if n.value.is_empty() || n.value[0] & 0x80 != 0 {
                        return Err(malformed("cRLNumber is not a non-negative INTEGER"));
                    }
                    crl_number = Some(normalize(n.value));
                }
                oids::EXT_DELTA_CRL_INDICATOR => {
                    return Err(CrlError::Unsupported(
                        "delta CRL (deltaCRLIndicator); give the complete base CRL".into(),
                    ));
                }
                oids::EXT_RSP_PARTIAL_CRL_NUMBER | oids::EXT_RSP_TOTAL_PARTIAL_CRL_NUMBER => {
                    return Err(CrlError::Unsupported(
                        "segmented CRL (SGP.22 section 4.6.1); give the standard form".into(),
                    ));
                }
                // issuingDistributionPoint (critical in SGP.22 Table 17) only names where the
                // CRL is published; freshestCRL points to delta CRLs, which are not used.
                oids::EXT_ISSUING_DP | oids::EXT_FRESHEST_CRL => {}
                _ if ext.critical => {
                    return Err(CrlError::Unsupported(format!(
                        "unknown critical CRL extension {id}"
                    )));
                }
                _ => {}
            }
        }

        let mut revoked = BTreeMap::new();
        for entry in t.revoked_certificates.iter().flatten() {
            for ext in entry.crl_entry_extensions.iter().flatten() {
                let id = ext.extn_id.to_string();
                match id.as_str() {
                    oids::EXT_CERTIFICATE_ISSUER => {
                        return Err(CrlError::Unsupported(
                            "indirect CRL (certificateIssuer entry extension)".into(),
                        ));
                    }
                    oids::EXT_CRL_REASON | oids::EXT_INVALIDITY_DATE | oids::EXT_RSP_EXP_DATE => {}
                    _ if ext.critical => {
                        return Err(CrlError::Unsupported(format!(
                            "unknown critical CRL entry extension {id}"
                        )));
                    }
                    _ => {}
                }
            }
            let serial = normalize(entry.serial_number.as_bytes());
            revoked.insert(serial, to_datetime(&entry.revocation_date)?);
        }

        Ok(Crl {
            der: der.to_vec(),
            tbs: range_of(der, tbs.raw),
            issuer: range_of(der, issuer.raw),
            signature,
            this_update,
            next_update,
            aki,
            crl_number,
            revoked,
        })
    }

    /// Parses a PEM `X509 CRL` block (exactly one).
    pub fn from_pem(pem: &str) -> Result<Crl, CrlError> {
        if pem.len() > MAX_CRL_LEN * 2 {
            return Err(CrlError::TooLarge {
                len: pem.len(),
                max: MAX_CRL_LEN * 2,
            });
        }
        let (label, der) = der::pem::decode_vec(pem.trim().as_bytes())
            .map_err(|e| malformed(format!("PEM: {e}")))?;
        if label != "X509 CRL" {
            return Err(malformed(format!("PEM label {label:?}, expected X509 CRL")));
        }
        Crl::from_der(&der)
    }

    /// Parses a CRL given either as DER or as PEM text (what a file or an HTTP body holds).
    pub fn from_bytes(bytes: &[u8]) -> Result<Crl, CrlError> {
        match bytes.first() {
            Some(0x30) => Crl::from_der(bytes),
            _ => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| malformed("neither DER (SEQUENCE) nor PEM text"))?;
                Crl::from_pem(text)
            }
        }
    }

    /// The exact DER the CRL was parsed from.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The received `tbsCertList` bytes (what the signature covers).
    pub fn tbs_der(&self) -> &[u8] {
        &self.der[self.tbs.clone()]
    }

    /// The issuer Name, DER, as received.
    pub fn issuer_der(&self) -> &[u8] {
        &self.der[self.issuer.clone()]
    }

    /// The PEM encoding (`X509 CRL`) of the original DER.
    pub fn to_pem(&self) -> String {
        crl_to_pem(&self.der)
    }

    /// thisUpdate.
    pub fn this_update(&self) -> OffsetDateTime {
        self.this_update
    }

    /// nextUpdate.
    pub fn next_update(&self) -> OffsetDateTime {
        self.next_update
    }

    /// The AuthorityKeyIdentifier keyIdentifier (the issuer's SKI), if present.
    pub fn aki(&self) -> Option<&[u8]> {
        self.aki.as_deref()
    }

    /// The CRL number, big-endian without leading zeros (empty for 0), if present.
    pub fn crl_number(&self) -> Option<&[u8]> {
        self.crl_number.as_deref()
    }

    /// The CRL number in hex (`"-"` when absent), for messages.
    pub fn crl_number_hex(&self) -> String {
        match &self.crl_number {
            Some(n) if n.is_empty() => "00".into(),
            Some(n) => hex::encode(n),
            None => "-".into(),
        }
    }

    /// Number of revoked serials listed.
    pub fn revoked_count(&self) -> usize {
        self.revoked.len()
    }

    /// The revoked serials (big-endian, leading zeros stripped) with their revocation dates.
    pub fn revoked(&self) -> impl Iterator<Item = (&[u8], OffsetDateTime)> {
        self.revoked.iter().map(|(s, d)| (s.as_slice(), *d))
    }

    /// Whether `serial` (INTEGER contents, e.g. [`Certificate::serial_number`]) is listed.
    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        self.revoked.contains_key(&normalize(serial))
    }

    /// Whether `now` is past nextUpdate.
    pub fn is_stale(&self, now: OffsetDateTime) -> bool {
        now > self.next_update
    }

    /// Checks that `issuer` issued this CRL: AuthorityKeyIdentifier present and equal to the
    /// issuer's SubjectKeyIdentifier, issuer name equal to the issuer's subject (SGP.22
    /// Table 17: "the same as the one used for issuing certificates"), and the ECDSA
    /// signature over the received tbsCertList with the issuer's key.
    pub fn verify_issued_by(&self, issuer: &Certificate) -> Result<(), CrlError> {
        let Some(aki) = self.aki() else {
            return Err(CrlError::IssuerMismatch(
                "CRL has no authorityKeyIdentifier (required by SGP.22 Table 17)".into(),
            ));
        };
        if Some(aki) != issuer.ski() {
            return Err(CrlError::IssuerMismatch(
                "authorityKeyIdentifier differs from the issuer's subjectKeyIdentifier".into(),
            ));
        }
        if self.issuer_der() != issuer.subject_der() {
            return Err(CrlError::IssuerMismatch(
                "issuer name differs from the issuer certificate's subject".into(),
            ));
        }
        rsp_crypto::ecdsa::verify_der(
            issuer.curve(),
            issuer.public_key(),
            self.tbs_der(),
            &self.signature,
        )
        .map_err(|_| CrlError::InvalidSignature)
    }

    /// Whether `self` is newer than `other`: higher CRL number, or (same or absent numbers)
    /// later thisUpdate.
    fn is_newer_than(&self, other: &Crl) -> bool {
        match (&self.crl_number, &other.crl_number) {
            (Some(a), Some(b)) if a != b => cmp_magnitude(a, b).is_gt(),
            _ => self.this_update > other.this_update,
        }
    }
}

/// PEM-encodes DER bytes with the `X509 CRL` label.
pub fn crl_to_pem(der: &[u8]) -> String {
    // Encoding into a String cannot fail for a constant label; no panic either way.
    der::pem::encode_string("X509 CRL", der::pem::LineEnding::LF, der).unwrap_or_default()
}

/// What to do with a CRL whose nextUpdate has passed (SGP.22 section 4.6.1: the relying
/// party "SHALL retrieve the new CRL at the date indicated by the 'nextUpdate'"; a CRL past
/// it may miss revocations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StalePolicy {
    /// Refuse the certificates the stale CRL covers ([`PkiError::RevocationUnknown`]): the
    /// default, fail closed.
    #[default]
    Refuse,
    /// Use the stale CRL anyway (its listed serials stay revoked) and report it in
    /// [`RevocationCheck::stale`] so the caller can warn.
    Warn,
}

impl std::str::FromStr for StalePolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<StalePolicy, String> {
        match s {
            "refuse" => Ok(StalePolicy::Refuse),
            "warn" => Ok(StalePolicy::Warn),
            other => Err(format!(
                "invalid stale-CRL policy {other:?} (expected refuse or warn)"
            )),
        }
    }
}

/// Who a CRL of a [`RevocationSet`] was verified against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrlIssuerKind {
    /// A trusted CI (verified when added).
    Ci,
    /// Not a trusted CI: taken as an EUM's CRL, verified at first use against the EUM
    /// certificate whose SKI equals the CRL's AKI.
    Eum,
}

/// One CRL held by a [`RevocationSet`].
#[derive(Debug)]
pub struct CrlEntry {
    crl: Crl,
    source: String,
    kind: CrlIssuerKind,
    /// The EUM public key this (EUM) CRL was verified with.
    verified_key: OnceLock<Vec<u8>>,
}

impl CrlEntry {
    /// The CRL.
    pub fn crl(&self) -> &Crl {
        &self.crl
    }

    /// Where it came from (a file path or URL).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether its issuer is a trusted CI or (presumably) an EUM.
    pub fn kind(&self) -> CrlIssuerKind {
        self.kind
    }
}

/// The outcome of a successful revocation check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevocationCheck {
    /// Sources of CRLs past nextUpdate that were used anyway ([`StalePolicy::Warn`]).
    pub stale: Vec<String>,
}

/// An immutable set of CRLs, at most one per issuer key (AuthorityKeyIdentifier). Build
/// one, then share it behind an `Arc` and replace it as a whole on refresh.
#[derive(Debug, Default, Clone)]
pub struct RevocationSet {
    by_aki: HashMap<Vec<u8>, Arc<CrlEntry>>,
}

/// Whether [`RevocationSet::add`] installed the CRL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// The CRL is now the one held for its issuer.
    Installed,
    /// The set already held the same CRL (same number and thisUpdate).
    Same,
}

impl RevocationSet {
    /// An empty set (nothing is revoked).
    pub fn new() -> RevocationSet {
        RevocationSet::default()
    }

    /// Adds `crl`, read from `source`: verified now against the trusted CI its AKI names,
    /// otherwise held as an EUM CRL (see the module documentation). A CRL whose thisUpdate
    /// is more than five minutes after `now` is refused; an older CRL than the one held for
    /// the same issuer is refused with [`CrlError::Older`].
    pub fn add(
        &mut self,
        crl: Crl,
        source: &str,
        trust: &TrustStore,
        now: OffsetDateTime,
    ) -> Result<Added, CrlError> {
        let Some(aki) = crl.aki().map(<[u8]>::to_vec) else {
            return Err(CrlError::IssuerMismatch(
                "CRL has no authorityKeyIdentifier (required by SGP.22 Table 17)".into(),
            ));
        };
        if crl.this_update() > now + THIS_UPDATE_SKEW {
            return Err(CrlError::NotYetValid {
                this_update: rfc3339(crl.this_update()),
            });
        }
        let kind = match trust.get(&aki) {
            Some(ci) => {
                crl.verify_issued_by(ci)?;
                CrlIssuerKind::Ci
            }
            None => CrlIssuerKind::Eum,
        };
        if let Some(held) = self.by_aki.get(&aki) {
            if held.crl.der == crl.der {
                return Ok(Added::Same);
            }
            if !crl.is_newer_than(&held.crl) {
                return Err(CrlError::Older {
                    offered: crl.crl_number_hex(),
                    held: held.crl.crl_number_hex(),
                });
            }
        }
        self.by_aki.insert(
            aki,
            Arc::new(CrlEntry {
                crl,
                source: source.to_owned(),
                kind,
                verified_key: OnceLock::new(),
            }),
        );
        Ok(Added::Installed)
    }

    /// The CRL held for the issuer whose SKI is `aki`.
    pub fn get(&self, aki: &[u8]) -> Option<&CrlEntry> {
        self.by_aki.get(aki).map(Arc::as_ref)
    }

    /// All CRLs held (in no particular order).
    pub fn iter(&self) -> impl Iterator<Item = &CrlEntry> {
        self.by_aki.values().map(Arc::as_ref)
    }

    /// Number of CRLs held.
    pub fn len(&self) -> usize {
        self.by_aki.len()
    }

    /// Whether no CRL is held.
    pub fn is_empty(&self) -> bool {
        self.by_aki.is_empty()
    }

    /// Staleness handling for the CRL covering a certificate of `role`.
    fn freshness(
        entry: &CrlEntry,
        role: CertRole,
        now: OffsetDateTime,
        policy: StalePolicy,
        out: &mut RevocationCheck,
    ) -> Result<(), PkiError> {
        if !entry.crl.is_stale(now) {
            return Ok(());
        }
        match policy {
            StalePolicy::Refuse => Err(PkiError::RevocationUnknown {
                role,
                detail: format!(
                    "the CRL {} is past its nextUpdate {}",
                    entry.source,
                    rfc3339(entry.crl.next_update())
                ),
            }),
            StalePolicy::Warn => {
                out.stale.push(entry.source.clone());
                Ok(())
            }
        }
    }

    fn revoked(cert: &Certificate, role: CertRole) -> PkiError {
        PkiError::Revoked {
            role,
            serial_hex: hex::encode(normalize(cert.serial_number())),
        }
    }

    /// Checks a validated eUICC chain (SGP.22 section 4.5.2.2: "Not have been revoked, and no
    /// certificate in the trust chain has been revoked"): the CI's CRL for the CI and EUM
    /// serials, the EUM's CRL (if any) for the eUICC serial.
    pub fn check_euicc(
        &self,
        trust: &TrustStore,
        chain: &ValidatedEuicc,
        now: OffsetDateTime,
        policy: StalePolicy,
    ) -> Result<RevocationCheck, PkiError> {
        let mut out = RevocationCheck::default();
        if let Some(entry) = self.get(&chain.ci_ski) {
            if let Some(ci) = trust.get(&chain.ci_ski)
                && entry.crl.is_revoked(ci.serial_number())
            {
                return Err(Self::revoked(ci, CertRole::Ci));
            }
            if entry.crl.is_revoked(chain.eum.serial_number()) {
                return Err(Self::revoked(&chain.eum, CertRole::Eum));
            }
            Self::freshness(entry, CertRole::Eum, now, policy, &mut out)?;
        }
        if let Some(entry) = self.get(&chain.eum_ski) {
            if entry.kind == CrlIssuerKind::Eum {
                let key = chain.eum.public_key();
                if entry.verified_key.get().map(Vec::as_slice) != Some(key) {
                    entry.crl.verify_issued_by(&chain.eum).map_err(|e| {
                        PkiError::RevocationUnknown {
                            role: CertRole::Euicc,
                            detail: format!("the EUM CRL {} is unusable: {e}", entry.source),
                        }
                    })?;
                    let _ = entry.verified_key.set(key.to_vec());
                }
            }
            if entry.crl.is_revoked(chain.euicc.serial_number()) {
                return Err(Self::revoked(&chain.euicc, CertRole::Euicc));
            }
            Self::freshness(entry, CertRole::Euicc, now, policy, &mut out)?;
        }
        Ok(out)
    }

    /// Checks one of our own certificates (DPauth, DPpb, DPtls: `role`) issued by the CI
    /// whose SKI is `ci_ski` against that CI's CRL (CI serial included).
    pub fn check_issued(
        &self,
        trust: &TrustStore,
        cert: &Certificate,
        role: CertRole,
        now: OffsetDateTime,
        policy: StalePolicy,
    ) -> Result<RevocationCheck, PkiError> {
        let mut out = RevocationCheck::default();
        let Some(aki) = cert.aki() else {
            return Ok(out);
        };
        if let Some(entry) = self.get(aki) {
            if let Some(ci) = trust.get(aki)
                && entry.crl.is_revoked(ci.serial_number())
            {
                return Err(Self::revoked(ci, CertRole::Ci));
            }
            if entry.crl.is_revoked(cert.serial_number()) {
                return Err(Self::revoked(cert, role));
            }
            Self::freshness(entry, role, now, policy, &mut out)?;
        }
        Ok(out)
    }
}

/// A CRL under construction (tests and `smdpp pki crl`), following SGP.22 Table 17:
/// v2, ecdsa-with-SHA256, the issuer's subject as issuer, AuthorityKeyIdentifier (critical,
/// as Table 17 says) and cRLNumber extensions.
#[derive(Clone, Debug)]
pub struct CrlBuilder {
    /// Issuer Name, DER (the issuer certificate's subject).
    pub issuer: Vec<u8>,
    /// The issuer's SubjectKeyIdentifier, written as AuthorityKeyIdentifier.
    pub aki: Vec<u8>,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// cRLNumber.
    pub crl_number: u64,
    /// Revoked serials (big-endian magnitude) and revocation dates, in order.
    pub revoked: Vec<(Vec<u8>, OffsetDateTime)>,
}

impl CrlBuilder {
    /// A CRL of `issuer`, thisUpdate now (whole seconds), nextUpdate `validity` later, CRL
    /// number 0, nothing revoked.
    pub fn for_issuer(issuer: &Certificate, validity: Duration) -> Result<CrlBuilder, PkiError> {
        let aki = issuer
            .ski()
            .ok_or_else(|| PkiError::InvalidOption("issuer certificate has no SKI".into()))?
            .to_vec();
        let now = OffsetDateTime::now_utc();
        let now = now.replace_nanosecond(0).unwrap_or(now);
        Ok(CrlBuilder {
            issuer: issuer.subject_der().to_vec(),
            aki,
            this_update: now,
            next_update: now + validity,
            crl_number: 0,
            revoked: Vec::new(),
        })
    }

    /// Lists `serial` (INTEGER contents or magnitude) as revoked at thisUpdate.
    pub fn revoke(&mut self, serial: &[u8]) -> &mut CrlBuilder {
        self.revoked.push((normalize(serial), self.this_update));
        self
    }

    /// The tbsCertList DER.
    pub fn tbs_der(&self) -> Result<Vec<u8>, PkiError> {
        use crate::generate::encode_time;
        let sig_alg = dertlv::seq(&[&dertlv::oid(oids::ECDSA_WITH_SHA256)?]);
        let mut parts: Vec<Vec<u8>> = vec![
            dertlv::uint(&[1]),
            sig_alg,
            self.issuer.clone(),
            encode_time(self.this_update),
            encode_time(self.next_update),
        ];
        if !self.revoked.is_empty() {
            let mut entries = Vec::new();
            for (serial, at) in &self.revoked {
                entries.extend(dertlv::seq(&[&dertlv::uint(serial), &encode_time(*at)]));
            }
            parts.push(dertlv::tlv(tag::SEQUENCE, &entries));
        }
        let aki = dertlv::seq(&[
            &dertlv::oid(oids::EXT_AKI)?,
            &dertlv::bool_true(),
            &dertlv::octet_string(&crate::generate::ext::aki(&self.aki)),
        ]);
        let number = dertlv::seq(&[
            &dertlv::oid(oids::EXT_CRL_NUMBER)?,
            &dertlv::octet_string(&dertlv::uint(&self.crl_number.to_be_bytes())),
        ]);
        let exts = dertlv::seq(&[&aki, &number]);
        parts.push(dertlv::tlv(0xA0, &exts));
        Ok(dertlv::tlv(tag::SEQUENCE, &parts.concat()))
    }

    /// Signs with `issuer_key` (ECDSA-SHA256) and returns the CRL DER.
    pub fn sign(&self, issuer_key: &dyn KeyCustody) -> Result<Vec<u8>, PkiError> {
        let tbs = self.tbs_der()?;
        let raw = issuer_key.sign(&tbs)?;
        let sig = rsp_crypto::ecdsa::raw_to_der(&raw);
        let alg = dertlv::seq(&[&dertlv::oid(oids::ECDSA_WITH_SHA256)?]);
        Ok(dertlv::seq(&[&tbs, &alg, &dertlv::bit_string(&sig)]))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::{PkiOptions, generate};
    use rsp_crypto::Curve;

    fn pki(curve: Curve) -> crate::TestPki {
        generate(PkiOptions::new(curve)).unwrap()
    }

    fn ci_crl(p: &crate::TestPki, revoke: &[&[u8]]) -> Vec<u8> {
        let ci = p.ci.cert().unwrap();
        let mut b = CrlBuilder::for_issuer(&ci, Duration::days(7)).unwrap();
        for s in revoke {
            b.revoke(s);
        }
        b.crl_number = 5;
        b.sign(&p.ci.key).unwrap()
    }

    /// A revocation set holding the one CRL `der`, added as `name`.
    fn set_of(der: &[u8], name: &str, trust: &TrustStore, now: OffsetDateTime) -> RevocationSet {
        let mut set = RevocationSet::new();
        set.add(Crl::from_der(der).unwrap(), name, trust, now)
            .unwrap();
        set
    }

    #[test]
    fn round_trip_and_verify_on_both_curves() {
        for curve in [Curve::NistP256, Curve::BrainpoolP256r1] {
            let p = pki(curve);
            let eum = p.eum.cert().unwrap();
            let der = ci_crl(&p, &[eum.serial_number()]);
            let crl = Crl::from_der(&der).unwrap();
            crl.verify_issued_by(&p.ci.cert().unwrap()).unwrap();
            assert!(crl.is_revoked(eum.serial_number()));
            assert!(!crl.is_revoked(p.euicc.cert().unwrap().serial_number()));
            assert_eq!(crl.crl_number(), Some(&[5u8][..]));
            assert_eq!(crl.revoked_count(), 1);
            let pem = crl.to_pem();
            assert!(pem.starts_with("-----BEGIN X509 CRL-----"));
            assert_eq!(
                Crl::from_bytes(pem.as_bytes()).unwrap().der(),
                der.as_slice()
            );
            assert_eq!(Crl::from_bytes(&der).unwrap().der(), der.as_slice());
        }
    }

    #[test]
    fn rejects_truncated_crl() {
        let p = pki(Curve::NistP256);
        let der = ci_crl(&p, &[&[1, 2, 3]]);
        for n in 0..der.len() {
            assert!(
                matches!(Crl::from_der(&der[..n]), Err(CrlError::Malformed(_))),
                "prefix of {n} bytes"
            );
        }
        let mut long = der.clone();
        long.push(0);
        assert!(matches!(Crl::from_der(&long), Err(CrlError::Malformed(_))));
    }

    #[test]
    fn rejects_wrong_tag() {
        let p = pki(Curve::NistP256);
        let mut der = ci_crl(&p, &[]);
        der[0] = 0x31;
        assert!(matches!(Crl::from_der(&der), Err(CrlError::Malformed(_))));
        // A certificate is not a CRL.
        assert!(matches!(
            Crl::from_der(&p.ci.der),
            Err(CrlError::Malformed(_) | CrlError::Unsupported(_))
        ));
        // A PEM certificate is not a CRL either.
        assert!(matches!(
            Crl::from_bytes(p.ci.cert_pem().as_bytes()),
            Err(CrlError::Malformed(_))
        ));
        assert!(matches!(
            Crl::from_bytes(&[0xFF, 0xFE]),
            Err(CrlError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_bad_signature() {
        let p = pki(Curve::NistP256);
        let der = ci_crl(&p, &[&[9]]);
        let crl = Crl::from_der(&der).unwrap();
        // Flip a byte of the revoked serial inside tbsCertList: still parses, no longer
        // verifies.
        let mut bad = der.clone();
        let pos = bad
            .windows(3)
            .position(|w| w == [0x02, 0x01, 0x09])
            .unwrap();
        bad[pos + 2] = 0x0A;
        let forged = Crl::from_der(&bad).unwrap();
        let ci = p.ci.cert().unwrap();
        crl.verify_issued_by(&ci).unwrap();
        assert_eq!(
            forged.verify_issued_by(&ci),
            Err(CrlError::InvalidSignature)
        );
        // Signed with another key, same names.
        let other = rsp_crypto::SoftwareKey::generate(Curve::NistP256).unwrap();
        let b = CrlBuilder::for_issuer(&ci, Duration::days(1)).unwrap();
        let wrong = Crl::from_der(&b.sign(&other).unwrap()).unwrap();
        assert_eq!(wrong.verify_issued_by(&ci), Err(CrlError::InvalidSignature));
        let mut set = RevocationSet::new();
        assert_eq!(
            set.add(
                wrong,
                "t",
                &p.trust_store().unwrap(),
                OffsetDateTime::now_utc()
            ),
            Err(CrlError::InvalidSignature)
        );
    }

    #[test]
    fn rejects_wrong_issuer() {
        let p = pki(Curve::NistP256);
        let q = pki(Curve::NistP256);
        let crl = Crl::from_der(&ci_crl(&p, &[])).unwrap();
        assert!(matches!(
            crl.verify_issued_by(&q.ci.cert().unwrap()),
            Err(CrlError::IssuerMismatch(_))
        ));
        // Right AKI, wrong issuer name.
        let ci = p.ci.cert().unwrap();
        let mut b = CrlBuilder::for_issuer(&ci, Duration::days(1)).unwrap();
        b.issuer = crate::encode_name(&[(oids::AT_CN, "Someone else")]).unwrap();
        let renamed = Crl::from_der(&b.sign(&p.ci.key).unwrap()).unwrap();
        assert!(matches!(
            renamed.verify_issued_by(&ci),
            Err(CrlError::IssuerMismatch(m)) if m.contains("issuer name")
        ));
    }

    /// Every single-byte change and every truncation of a valid CRL parses or fails with an
    /// error, never a panic (a cheap stand-in for the `crl` fuzz target).
    #[test]
    fn mutations_never_panic() {
        let p = pki(Curve::NistP256);
        let der = ci_crl(&p, &[&[1, 2, 3], &[0x80]]);
        let ci = p.ci.cert().unwrap();
        for i in 0..der.len() {
            for v in [0x00, 0x01, 0x7F, 0x80, 0xFF, der[i] ^ 0x20] {
                let mut m = der.clone();
                m[i] = v;
                if let Ok(c) = Crl::from_der(&m) {
                    let _ = c.verify_issued_by(&ci);
                    let _ = (c.crl_number_hex(), c.revoked_count(), c.to_pem());
                }
                let _ = Crl::from_bytes(&m);
            }
        }
    }

    #[test]
    fn rejects_oversized() {
        let big = vec![0x30u8; MAX_CRL_LEN + 1];
        assert_eq!(
            Crl::from_der(&big).unwrap_err(),
            CrlError::TooLarge {
                len: MAX_CRL_LEN + 1,
                max: MAX_CRL_LEN
            }
        );
        // A length field claiming more than the input.
        assert!(matches!(
            Crl::from_der(&[0x30, 0x84, 0x7F, 0xFF, 0xFF, 0xFF]),
            Err(CrlError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_older_crl_and_keeps_newest() {
        let p = pki(Curve::NistP256);
        let trust = p.trust_store().unwrap();
        let ci = p.ci.cert().unwrap();
        let now = OffsetDateTime::now_utc();
        let mk = |n: u64| {
            let mut b = CrlBuilder::for_issuer(&ci, Duration::days(1)).unwrap();
            b.crl_number = n;
            Crl::from_der(&b.sign(&p.ci.key).unwrap()).unwrap()
        };
        let mut set = RevocationSet::new();
        assert_eq!(set.add(mk(3), "a", &trust, now), Ok(Added::Installed));
        assert!(matches!(
            set.add(mk(2), "b", &trust, now),
            Err(CrlError::Older { .. })
        ));
        assert_eq!(set.add(mk(4), "c", &trust, now), Ok(Added::Installed));
        assert_eq!(set.len(), 1);
        assert_eq!(set.iter().next().unwrap().source(), "c");
    }

    #[test]
    fn revocation_checks_of_the_chain() {
        let p = pki(Curve::NistP256);
        let trust = p.trust_store().unwrap();
        let now = OffsetDateTime::now_utc();
        let chain = crate::validate_euicc_chain(&trust, &p.eum.der, &p.euicc.der, now).unwrap();
        // Nothing configured: accepted.
        RevocationSet::new()
            .check_euicc(&trust, &chain, now, StalePolicy::Refuse)
            .unwrap();
        // EUM on the CI CRL.
        let mut set = RevocationSet::new();
        let eum = p.eum.cert().unwrap();
        set.add(
            Crl::from_der(&ci_crl(&p, &[eum.serial_number()])).unwrap(),
            "ci.crl",
            &trust,
            now,
        )
        .unwrap();
        let e = set
            .check_euicc(&trust, &chain, now, StalePolicy::Refuse)
            .unwrap_err();
        assert!(
            matches!(
                e,
                PkiError::Revoked {
                    role: CertRole::Eum,
                    ..
                }
            ),
            "{e}"
        );
        // eUICC on the EUM CRL (verified lazily against the EUM).
        let mut b = CrlBuilder::for_issuer(&eum, Duration::days(1)).unwrap();
        b.revoke(p.euicc.cert().unwrap().serial_number());
        let set = set_of(&b.sign(&p.eum.key).unwrap(), "eum.crl", &trust, now);
        assert_eq!(set.iter().next().unwrap().kind(), CrlIssuerKind::Eum);
        for _ in 0..2 {
            let e = set
                .check_euicc(&trust, &chain, now, StalePolicy::Refuse)
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    PkiError::Revoked {
                        role: CertRole::Euicc,
                        ..
                    }
                ),
                "{e}"
            );
        }
        // Stale CI CRL: refused or warned.
        let ci = p.ci.cert().unwrap();
        let mut b = CrlBuilder::for_issuer(&ci, Duration::days(1)).unwrap();
        b.this_update = now - Duration::days(10);
        b.next_update = now - Duration::days(3);
        let set = set_of(&b.sign(&p.ci.key).unwrap(), "old.crl", &trust, now);
        let e = set
            .check_euicc(&trust, &chain, now, StalePolicy::Refuse)
            .unwrap_err();
        assert!(
            matches!(
                e,
                PkiError::RevocationUnknown {
                    role: CertRole::Eum,
                    ..
                }
            ),
            "{e}"
        );
        let ok = set
            .check_euicc(&trust, &chain, now, StalePolicy::Warn)
            .unwrap();
        assert_eq!(ok.stale, vec!["old.crl".to_owned()]);
        // The CI itself on its own CRL.
        let set = set_of(&ci_crl(&p, &[ci.serial_number()]), "ci.crl", &trust, now);
        assert!(matches!(
            set.check_euicc(&trust, &chain, now, StalePolicy::Refuse),
            Err(PkiError::Revoked {
                role: CertRole::Ci,
                ..
            })
        ));
        // Own certificates.
        let dpauth = p.dpauth.cert().unwrap();
        let set = set_of(
            &ci_crl(&p, &[dpauth.serial_number()]),
            "ci.crl",
            &trust,
            now,
        );
        assert!(matches!(
            set.check_issued(&trust, &dpauth, CertRole::DpAuth, now, StalePolicy::Refuse),
            Err(PkiError::Revoked {
                role: CertRole::DpAuth,
                ..
            })
        ));
        set.check_issued(
            &trust,
            &p.dppb.cert().unwrap(),
            CertRole::DpPb,
            now,
            StalePolicy::Refuse,
        )
        .unwrap();
    }

    #[test]
    fn rejects_future_and_unsupported_crls() {
        let p = pki(Curve::NistP256);
        let trust = p.trust_store().unwrap();
        let ci = p.ci.cert().unwrap();
        let now = OffsetDateTime::now_utc();
        let mut b = CrlBuilder::for_issuer(&ci, Duration::days(1)).unwrap();
        b.this_update = now + Duration::hours(2);
        b.next_update = now + Duration::days(2);
        let crl = Crl::from_der(&b.sign(&p.ci.key).unwrap()).unwrap();
        assert!(matches!(
            RevocationSet::new().add(crl, "f", &trust, now),
            Err(CrlError::NotYetValid { .. })
        ));
        // Version v1 (version INTEGER 0).
        let b = CrlBuilder::for_issuer(&ci, Duration::days(1)).unwrap();
        let tbs = b.tbs_der().unwrap();
        let mut v1 = tbs.clone();
        // tbs: 30 len 02 01 01 ... (short or long form header)
        let hdr = if v1[1] & 0x80 == 0 {
            2
        } else {
            2 + usize::from(v1[1] & 0x7F)
        };
        assert_eq!(&v1[hdr..hdr + 3], &[0x02, 0x01, 0x01]);
        v1[hdr + 2] = 0;
        let sig = rsp_crypto::ecdsa::raw_to_der(&p.ci.key.sign(&v1).unwrap());
        let alg = dertlv::seq(&[&dertlv::oid(oids::ECDSA_WITH_SHA256).unwrap()]);
        let der = dertlv::seq(&[&v1, &alg, &dertlv::bit_string(&sig)]);
        assert!(matches!(Crl::from_der(&der), Err(CrlError::Unsupported(_))));
    }
}
