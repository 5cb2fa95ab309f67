//! SGP.22 certificate path validation (section 4.5.2.2), not WebPKI.
//!
//! Chains are short and fixed: `CI -> EUM -> eUICC` and `CI -> DPauth | DPpb | DPtls`.
//! Every rule that fails yields a distinct [`PkiError`] variant tagged with the
//! [`CertRole`] of the offending certificate.
//!
//! Deliberate choices (see the crate documentation for the full list):
//!
//! * Signatures are verified over the exact received `tbsCertificate` bytes.
//! * Criticality flags are *not* enforced to match the profile tables (real-world
//!   certificates vary); presence and content of the mandatory extensions are enforced, and an
//!   unknown extension marked critical is rejected (RFC 5280 section 4.2).
//! * The EUM's EID range is checked with the GSMA prefix rule (the IIN in
//!   nameConstraints/serialNumber is a *prefix* of the EID), not an RFC 5280 whole-value match.
//! * Revocation (CRLs, section 4.6) is checked separately, on a validated chain, by
//!   [`crate::RevocationSet`].

use rsp_crypto::Curve;
use time::OffsetDateTime;

use crate::cert::{Certificate, key_usage};
use crate::{CertRole, PkiError, oids};

/// A set of trusted GSMA CI certificates (SGP.22 allows several CIs), indexed by their
/// SubjectKeyIdentifier, which is what `euiccCiPKIdListForVerification` /
/// `euiccCiPKIdListForSigning` carry (SGP.22 section 5.7.x, `EUICCInfo1`).
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    cis: Vec<Certificate>,
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> TrustStore {
        TrustStore::default()
    }

    /// Adds a CI certificate after checking it against the CERT.CI.ECDSA profile
    /// (SGP.22 section 4.5.2.1.0.1): self-signed (issuer = subject, signature verifies with its
    /// own key), `id-rspRole-ci` policy, basicConstraints cA=true, keyUsage keyCertSign, and a
    /// SubjectKeyIdentifier. A CI whose SKI is already present is ignored.
    ///
    /// Validity is not checked here but at chain validation time.
    pub fn add_ci(&mut self, ci: Certificate) -> Result<(), PkiError> {
        let invalid = |e: PkiError| PkiError::InvalidCi(e.to_string());
        check_ca_profile(&ci, CertRole::Ci, oids::ROLE_CI).map_err(invalid)?;
        let ski = ci
            .ski()
            .ok_or_else(|| PkiError::InvalidCi("no SubjectKeyIdentifier".into()))?;
        if ci.issuer_der() != ci.subject_der() {
            return Err(PkiError::InvalidCi(
                "not self-signed (issuer != subject)".into(),
            ));
        }
        if let Some(aki) = ci.aki()
            && aki != ski
        {
            return Err(PkiError::InvalidCi(
                "AuthorityKeyIdentifier differs from SKI".into(),
            ));
        }
        verify_signature(&ci, CertRole::Ci, &ci).map_err(invalid)?;
        if self.get(ski).is_none() {
            self.cis.push(ci);
        }
        Ok(())
    }

    /// Parses and adds a DER CI certificate.
    pub fn add_ci_der(&mut self, der: &[u8]) -> Result<(), PkiError> {
        let ci = Certificate::from_der(der).map_err(|e| PkiError::InvalidCi(e.to_string()))?;
        self.add_ci(ci)
    }

    /// Parses and adds every certificate of a PEM bundle; returns how many were read.
    pub fn add_ci_pem(&mut self, pem: &str) -> Result<usize, PkiError> {
        let certs =
            Certificate::from_pem_bundle(pem).map_err(|e| PkiError::InvalidCi(e.to_string()))?;
        let n = certs.len();
        for c in certs {
            self.add_ci(c)?;
        }
        Ok(n)
    }

    /// The CI whose SubjectKeyIdentifier is `ski`.
    pub fn get(&self, ski: &[u8]) -> Option<&Certificate> {
        self.cis.iter().find(|c| c.ski() == Some(ski))
    }

    /// All trusted CIs, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Certificate> {
        self.cis.iter()
    }

    /// Number of trusted CIs.
    pub fn len(&self) -> usize {
        self.cis.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.cis.is_empty()
    }

    /// The SubjectKeyIdentifiers of all trusted CIs.
    pub fn ci_skis(&self) -> Vec<Vec<u8>> {
        self.cis
            .iter()
            .filter_map(|c| c.ski().map(<[u8]>::to_vec))
            .collect()
    }

    /// Picks the CI to use from an eUICC's list of CI key identifiers
    /// (`euiccCiPKIdListForSigning` or `...ForVerification`): the first entry of the
    /// eUICC's list (the eUICC's order of preference) that this store trusts.
    ///
    /// Returns `None` when no CI is shared, which maps to "CI public key unknown".
    pub fn choose_ci(&self, euicc_ci_pkid_list: &[Vec<u8>]) -> Option<&Certificate> {
        euicc_ci_pkid_list.iter().find_map(|id| self.get(id))
    }

    /// Like [`TrustStore::choose_ci`], also requiring the CI to be valid at `now` and, when
    /// given, on `curve`.
    pub fn choose_ci_for(
        &self,
        euicc_ci_pkid_list: &[Vec<u8>],
        curve: Option<Curve>,
        now: OffsetDateTime,
    ) -> Option<&Certificate> {
        euicc_ci_pkid_list.iter().find_map(|id| {
            self.get(id)
                .filter(|c| c.is_valid_at(now) && curve.is_none_or(|k| c.curve() == k))
        })
    }
}

/// The result of a successful [`validate_euicc_chain`].
#[derive(Clone, Debug)]
pub struct ValidatedEuicc {
    /// The EID (32 decimal digits) from the eUICC subject serialNumber.
    pub eid: String,
    /// The curve of the whole chain.
    pub curve: Curve,
    /// PK.EUICC.ECDSA, SEC1 uncompressed.
    pub public_key: Vec<u8>,
    /// SubjectKeyIdentifier of the CI the chain ends in.
    pub ci_ski: Vec<u8>,
    /// SubjectKeyIdentifier of the EUM certificate.
    pub eum_ski: Vec<u8>,
    /// The eUICC subject organization (O), if present.
    pub organization: Option<String>,
    /// The parsed eUICC certificate.
    pub euicc: Certificate,
    /// The parsed EUM certificate.
    pub eum: Certificate,
}

/// The three SM-DP+ certificate roles (SGP.22 sections 4.5.2.1.0.4 and 4.5.2.1.0.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DpRole {
    /// CERT.DPauth.ECDSA (`id-rspRole-dp-auth`).
    Auth,
    /// CERT.DPpb.ECDSA (`id-rspRole-dp-pb`).
    Pb,
    /// CERT.DP.TLS (`id-rspRole-dp-tls`).
    Tls,
}

impl DpRole {
    /// The certificate role used in errors.
    pub fn cert_role(self) -> CertRole {
        match self {
            DpRole::Auth => CertRole::DpAuth,
            DpRole::Pb => CertRole::DpPb,
            DpRole::Tls => CertRole::DpTls,
        }
    }

    /// The role's certificatePolicies OID.
    pub fn policy_oid(self) -> &'static str {
        match self {
            DpRole::Auth => oids::ROLE_DP_AUTH,
            DpRole::Pb => oids::ROLE_DP_PB,
            DpRole::Tls => oids::ROLE_DP_TLS,
        }
    }
}

/// The result of a successful [`validate_dp_chain`].
#[derive(Clone, Debug)]
pub struct ValidatedDp {
    /// The role the certificate was validated for.
    pub role: DpRole,
    /// The curve of the chain.
    pub curve: Curve,
    /// The certificate's public key, SEC1 uncompressed.
    pub public_key: Vec<u8>,
    /// SubjectKeyIdentifier of the CI.
    pub ci_ski: Vec<u8>,
    /// The SM-DP+ OID (subjectAltName registeredID).
    pub smdp_oid: String,
    /// subjectAltName dNSName entries (non-empty for [`DpRole::Tls`]).
    pub dns_names: Vec<String>,
    /// subjectAltName iPAddress entries.
    pub ip_addresses: Vec<std::net::IpAddr>,
    /// The parsed certificate.
    pub cert: Certificate,
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Checks notBefore <= now <= notAfter.
fn check_validity(cert: &Certificate, role: CertRole, now: OffsetDateTime) -> Result<(), PkiError> {
    if now < cert.not_before() {
        return Err(PkiError::NotYetValid {
            role,
            not_before: rfc3339(cert.not_before()),
        });
    }
    if now > cert.not_after() {
        return Err(PkiError::Expired {
            role,
            not_after: rfc3339(cert.not_after()),
        });
    }
    Ok(())
}

/// Verifies `cert`'s signature with `issuer`'s public key, over the received TBS bytes.
fn verify_signature(
    cert: &Certificate,
    role: CertRole,
    issuer: &Certificate,
) -> Result<(), PkiError> {
    // SGP.22 section 4.5.2.1.1: TBS `signature` must equal the outer signatureAlgorithm.
    if cert.tbs_signature_algorithm() != cert.signature_algorithm() {
        return Err(PkiError::UnsupportedAlgorithm {
            role: Some(role),
            detail: "TBS signature algorithm differs from signatureAlgorithm".into(),
        });
    }
    rsp_crypto::ecdsa::verify_der(
        issuer.curve(),
        issuer.public_key(),
        cert.tbs_der(),
        cert.signature(),
    )
    .map_err(|_| PkiError::InvalidSignature { role })
}

/// Role policy: must contain `expected`, and no other `id-rspRole` OID (one role per
/// certificate, SGP.22 section 4.5.2.2).
fn check_policy(
    cert: &Certificate,
    role: CertRole,
    expected: &'static str,
    optional: bool,
) -> Result<(), PkiError> {
    let Some(p) = cert.policies() else {
        if optional {
            return Ok(());
        }
        return Err(PkiError::WrongRole {
            role,
            expected,
            found: Vec::new(),
        });
    };
    let role_prefix = "2.23.146.1.2.1.";
    let other_role = p
        .value
        .iter()
        .any(|o| o.starts_with(role_prefix) && o != expected);
    if !cert.has_policy(expected) || other_role {
        return Err(PkiError::WrongRole {
            role,
            expected,
            found: p.value.clone(),
        });
    }
    Ok(())
}

fn check_no_unknown_critical(cert: &Certificate, role: CertRole) -> Result<(), PkiError> {
    match cert.unknown_critical_extensions().first() {
        Some(oid) => Err(PkiError::UnsupportedCriticalExtension {
            role,
            oid: oid.clone(),
        }),
        None => Ok(()),
    }
}

/// CI / EUM profile: policy, keyCertSign, cA=true (and pathLen 0 for the EUM), SKI.
fn check_ca_profile(
    cert: &Certificate,
    role: CertRole,
    policy: &'static str,
) -> Result<(), PkiError> {
    check_no_unknown_critical(cert, role)?;
    check_policy(cert, role, policy, false)?;
    let ku = cert.key_usage().ok_or(PkiError::MissingExtension {
        role,
        extension: "keyUsage",
    })?;
    if ku.value & key_usage::KEY_CERT_SIGN == 0 {
        return Err(PkiError::BadKeyUsage {
            role,
            detail: "keyCertSign not set".into(),
        });
    }
    let bc = cert.basic_constraints().ok_or(PkiError::MissingExtension {
        role,
        extension: "basicConstraints",
    })?;
    if !bc.value.ca {
        return Err(PkiError::BadBasicConstraints {
            role,
            detail: "cA is not true".into(),
        });
    }
    // SGP.22 section 4.5.2.2: EUM "path length restriction SHALL be set to 0".
    if role == CertRole::Eum && bc.value.path_len != Some(0) {
        return Err(PkiError::BadBasicConstraints {
            role,
            detail: format!("pathLenConstraint is {:?}, must be 0", bc.value.path_len),
        });
    }
    if cert.ski().is_none() {
        return Err(PkiError::MissingExtension {
            role,
            extension: "subjectKeyIdentifier",
        });
    }
    if role != CertRole::Ci && cert.aki().is_none() {
        return Err(PkiError::MissingExtension {
            role,
            extension: "authorityKeyIdentifier",
        });
    }
    Ok(())
}

/// End-entity profile: policy, digitalSignature (and no keyCertSign), not a CA, SKI + AKI.
fn check_leaf_profile(
    cert: &Certificate,
    role: CertRole,
    policy: &'static str,
    policy_optional: bool,
) -> Result<(), PkiError> {
    check_no_unknown_critical(cert, role)?;
    check_policy(cert, role, policy, policy_optional)?;
    let ku = cert.key_usage().ok_or(PkiError::MissingExtension {
        role,
        extension: "keyUsage",
    })?;
    if ku.value & key_usage::DIGITAL_SIGNATURE == 0 {
        return Err(PkiError::BadKeyUsage {
            role,
            detail: "digitalSignature not set".into(),
        });
    }
    if ku.value & (key_usage::KEY_CERT_SIGN | key_usage::CRL_SIGN) != 0 {
        return Err(PkiError::BadKeyUsage {
            role,
            detail: "end-entity certificate with keyCertSign/cRLSign".into(),
        });
    }
    if let Some(bc) = cert.basic_constraints()
        && bc.value.ca
    {
        return Err(PkiError::BadBasicConstraints {
            role,
            detail: "end-entity certificate with cA=true".into(),
        });
    }
    for (present, extension) in [
        (cert.ski().is_some(), "subjectKeyIdentifier"),
        (cert.aki().is_some(), "authorityKeyIdentifier"),
    ] {
        if !present {
            return Err(PkiError::MissingExtension { role, extension });
        }
    }
    Ok(())
}

/// Checks that `cert` (of `role`) was issued by `issuer`: same curve, AKI = issuer SKI,
/// issuer name = issuer subject, then the signature.
fn check_issued_by(
    cert: &Certificate,
    role: CertRole,
    issuer: &Certificate,
) -> Result<(), PkiError> {
    // SGP.22 section 4.5.2: "The Algorithm Identifiers of all certificates of a certificate
    // chain SHALL point to the same curve."
    if cert.curve() != issuer.curve() {
        return Err(PkiError::CurveMismatch {
            role,
            expected: issuer.curve(),
            found: cert.curve(),
        });
    }
    if cert.aki() != issuer.ski() {
        return Err(PkiError::IssuerMismatch {
            role,
            detail: "authorityKeyIdentifier does not match the issuer's subjectKeyIdentifier"
                .into(),
        });
    }
    if cert.issuer_der() != issuer.subject_der() {
        return Err(PkiError::IssuerMismatch {
            role,
            detail: "issuer name does not match the issuer's subject".into(),
        });
    }
    verify_signature(cert, role, issuer)
}

/// Finds the trusted CI that issued `cert`, by AuthorityKeyIdentifier.
fn find_ci<'s>(
    store: &'s TrustStore,
    cert: &Certificate,
    role: CertRole,
) -> Result<&'s Certificate, PkiError> {
    let aki = cert.aki().ok_or(PkiError::MissingExtension {
        role,
        extension: "authorityKeyIdentifier",
    })?;
    store.get(aki).ok_or_else(|| PkiError::UnknownCi {
        role,
        aki_hex: hex::encode(aki),
    })
}

/// Whether `eid` is 32 decimal digits.
pub fn is_eid_syntax(eid: &str) -> bool {
    eid.len() == 32 && eid.bytes().all(|b| b.is_ascii_digit())
}

/// Whether the EID check digits are correct (the 32-digit number mod 97 equals 1, as for
/// IBAN-style ISO 7064 MOD 97-10 check digits used by EIDs).
pub fn eid_check_digits_ok(eid: &str) -> bool {
    is_eid_syntax(eid)
        && eid
            .bytes()
            .fold(0u32, |acc, d| (acc * 10 + u32::from(d - b'0')) % 97)
            == 1
}

fn org_eq(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The EUM's permitted EID range (SGP.22 section 4.5.2.1.0.3 nameConstraints "variant O",
/// and the permittedEins extension of later variants), with the GSMA prefix rule.
///
/// nameConstraints fails closed: it must have at least one permitted directoryName subtree,
/// every permitted one with a non-empty `serialNumber` prefix; a directoryName attribute in a
/// string type we cannot read makes the EUM malformed; other GeneralName forms are ignored
/// unless the eUICC certificate has a subjectAltName (then refused, see
/// [`crate::cert::EidNameConstraints::other_forms`]).
fn check_eid_range(
    eum: &Certificate,
    eid: &str,
    organization: Option<&str>,
    euicc_has_san: bool,
) -> Result<(), PkiError> {
    let nc = eum.name_constraints();
    let eins = eum.permitted_eins();
    if nc.is_none() && eins.is_none() {
        return Err(PkiError::EumWithoutEidRange);
    }
    let outside = || PkiError::EidOutsideEumRange {
        eid: eid.to_owned(),
    };
    if let Some(eins) = eins
        && !eins
            .value
            .iter()
            .any(|p| !p.is_empty() && eid.starts_with(p.as_str()))
    {
        return Err(outside());
    }
    if let Some(nc) = nc {
        // Fail closed (the extension is the EUM's EID range): at least one permitted
        // directoryName subtree, each with a non-empty serialNumber prefix, and every
        // directoryName subtree readable.
        if nc
            .value
            .permitted
            .iter()
            .chain(&nc.value.excluded)
            .any(|s| s.unreadable)
        {
            return Err(PkiError::Malformed {
                role: Some(CertRole::Eum),
                detail: "nameConstraints directoryName attribute in an unsupported string type"
                    .into(),
            });
        }
        let unbounded = |s: &crate::cert::DirectorySubtree| {
            s.serial_number.as_deref().is_none_or(str::is_empty)
        };
        if nc.value.permitted.is_empty() || nc.value.permitted.iter().any(unbounded) {
            return Err(PkiError::EumWithoutEidRange);
        }
        // Other GeneralName forms say nothing about the EID; we do not match them, so an
        // eUICC certificate with a subjectAltName they might constrain is refused.
        if nc.value.other_forms && euicc_has_san {
            return Err(PkiError::UnsupportedCriticalExtension {
                role: CertRole::Eum,
                oid: crate::oids::EXT_NAME_CONSTRAINTS.to_owned(),
            });
        }
        let eid_match = |s: &crate::cert::DirectorySubtree| {
            s.serial_number
                .as_deref()
                .is_none_or(|p| eid.starts_with(p))
        };
        let org_match = |s: &crate::cert::DirectorySubtree| {
            s.organization
                .as_deref()
                .is_none_or(|o| organization.is_some_and(|e| org_eq(o, e)))
        };
        let permitted = &nc.value.permitted;
        if !permitted.is_empty() && !permitted.iter().any(|s| eid_match(s) && org_match(s)) {
            if permitted.iter().any(eid_match) {
                return Err(PkiError::OrganizationNotPermitted {
                    organization: organization.map(str::to_owned),
                });
            }
            return Err(outside());
        }
        if nc
            .value
            .excluded
            .iter()
            .any(|s| eid_match(s) && org_match(s))
        {
            return Err(outside());
        }
    }
    Ok(())
}

/// Validates `CERT.EUM.ECDSA` and `CERT.EUICC.ECDSA` up to a trusted CI (SGP.22 section
/// 4.5.2.2), at time `now`, and extracts the EID.
///
/// Checks, in order: parsing; CI lookup by the EUM's AuthorityKeyIdentifier; profiles of the
/// CI, EUM (id-rspRole-eum, keyCertSign, cA with pathLen 0) and eUICC (id-rspRole-euicc,
/// digitalSignature, not a CA); curve, AKI/SKI, issuer name and signature of each link;
/// validity of all three certificates (the eUICC notAfter is typically
/// 9999-12-31T23:59:59Z); EID syntax; the EID/organization against the EUM's
/// nameConstraints (prefix rule) and/or permittedEins.
pub fn validate_euicc_chain(
    store: &TrustStore,
    eum_der: &[u8],
    euicc_der: &[u8],
    now: OffsetDateTime,
) -> Result<ValidatedEuicc, PkiError> {
    let eum = Certificate::from_der(eum_der).map_err(|e| e.with_role(CertRole::Eum))?;
    let euicc = Certificate::from_der(euicc_der).map_err(|e| e.with_role(CertRole::Euicc))?;

    let ci = find_ci(store, &eum, CertRole::Eum)?;
    check_ca_profile(&eum, CertRole::Eum, oids::ROLE_EUM)?;
    check_leaf_profile(&euicc, CertRole::Euicc, oids::ROLE_EUICC, false)?;

    check_issued_by(&eum, CertRole::Eum, ci)?;
    check_issued_by(&euicc, CertRole::Euicc, &eum)?;

    check_validity(ci, CertRole::Ci, now)?;
    check_validity(&eum, CertRole::Eum, now)?;
    check_validity(&euicc, CertRole::Euicc, now)?;

    let attrs = euicc.subject_attributes()?;
    let eid = attrs
        .iter()
        .find(|(t, _)| t == oids::AT_SERIAL_NUMBER)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| PkiError::InvalidEid("no serialNumber in eUICC subject".into()))?;
    if !is_eid_syntax(&eid) {
        return Err(PkiError::InvalidEid(format!(
            "{eid:?} is not 32 decimal digits"
        )));
    }
    let organization = attrs
        .iter()
        .find(|(t, _)| t == oids::AT_O)
        .map(|(_, v)| v.clone());
    check_eid_range(
        &eum,
        &eid,
        organization.as_deref(),
        euicc.subject_alt_names().is_some(),
    )?;

    Ok(ValidatedEuicc {
        eid,
        curve: euicc.curve(),
        public_key: euicc.public_key().to_vec(),
        ci_ski: ci.ski().map(<[u8]>::to_vec).unwrap_or_default(),
        eum_ski: eum.ski().map(<[u8]>::to_vec).unwrap_or_default(),
        organization,
        euicc,
        eum,
    })
}

/// The single SM-DP+ OID (subjectAltName registeredID) of a DPauth/DPpb/DPtls certificate.
pub fn smdp_oid(cert: &Certificate, role: CertRole) -> Result<String, PkiError> {
    match cert.registered_ids() {
        [one] => Ok(one.clone()),
        [] => Err(PkiError::BadSmdpOid {
            role,
            detail: "no registeredID in subjectAltName".into(),
        }),
        _ => Err(PkiError::BadSmdpOid {
            role,
            detail: "more than one registeredID in subjectAltName".into(),
        }),
    }
}

/// Validates an SM-DP+ certificate (`CERT.DPauth.ECDSA`, `CERT.DPpb.ECDSA` or `CERT.DP.TLS`)
/// directly under a trusted CI (SGP.22 sections 4.5.2.1.0.4, 4.5.2.1.0.5 and 4.5.2.2).
///
/// DPauth/DPpb: role policy (and no other role), digitalSignature, SM-DP+ OID in
/// subjectAltName. DPtls: digitalSignature; extKeyUsage exactly serverAuth + clientAuth;
/// certificatePolicies, if present, `id-rspRole-dp-tls`; subjectAltName with at least one
/// dNSName and exactly one registeredID.
pub fn validate_dp_chain(
    store: &TrustStore,
    cert_der: &[u8],
    role: DpRole,
    now: OffsetDateTime,
) -> Result<ValidatedDp, PkiError> {
    let r = role.cert_role();
    let cert = Certificate::from_der(cert_der).map_err(|e| e.with_role(r))?;
    let ci = find_ci(store, &cert, r)?;
    check_leaf_profile(&cert, r, role.policy_oid(), role == DpRole::Tls)?;
    if role == DpRole::Tls {
        let eku = cert.ext_key_usage().ok_or(PkiError::MissingExtension {
            role: r,
            extension: "extKeyUsage",
        })?;
        let mut got = eku.value.clone();
        got.sort();
        let mut want = vec![
            oids::KP_SERVER_AUTH.to_owned(),
            oids::KP_CLIENT_AUTH.to_owned(),
        ];
        want.sort();
        if got != want {
            return Err(PkiError::BadExtendedKeyUsage {
                role: r,
                detail: format!(
                    "must be exactly serverAuth and clientAuth, found {:?}",
                    eku.value
                ),
            });
        }
    }
    let smdp_oid = smdp_oid(&cert, r)?;
    let dns_names = cert
        .subject_alt_names()
        .map(|s| s.value.dns_names.clone())
        .unwrap_or_default();
    if role == DpRole::Tls && dns_names.is_empty() {
        return Err(PkiError::MissingDnsName { role: r });
    }
    let ip_addresses = cert
        .subject_alt_names()
        .map(|s| s.value.ip_addresses.clone())
        .unwrap_or_default();
    check_issued_by(&cert, r, ci)?;
    check_validity(ci, CertRole::Ci, now)?;
    check_validity(&cert, r, now)?;
    Ok(ValidatedDp {
        role,
        curve: cert.curve(),
        public_key: cert.public_key().to_vec(),
        ci_ski: ci.ski().map(<[u8]>::to_vec).unwrap_or_default(),
        smdp_oid,
        dns_names,
        ip_addresses,
        cert,
    })
}

/// Checks that two SM-DP+ certificates (typically CERT.DPauth.ECDSA and CERT.DPpb.ECDSA,
/// which SGP.22 section 4.5.2.1.0.4 requires to be identical apart from key, serial, policy
/// and SKI) carry the same SM-DP+ OID; returns it.
pub fn check_same_smdp_oid(first: &Certificate, second: &Certificate) -> Result<String, PkiError> {
    let a = smdp_oid(first, CertRole::DpAuth)?;
    let b = smdp_oid(second, CertRole::DpPb)?;
    if a != b {
        return Err(PkiError::SmdpOidMismatch {
            first: a,
            second: b,
        });
    }
    Ok(a)
}
