//! Test PKI generator: CI, EUM, eUICC, DPauth, DPpb and DPtls certificates on either curve,
//! following the SGP.22 section 4.5.2.1 profiles.
//!
//! Certificates are built as hand-written DER and signed through
//! [`rsp_crypto::KeyCustody::sign`] (TR-03111 `r || s`, converted to X9.62 DER), so
//! brainpoolP256r1 works and HSM-held keys can sign later.
//!
//! Criticality follows the profile tables: keyUsage, basicConstraints, nameConstraints and
//! (except for DPtls) certificatePolicies critical; extKeyUsage critical on DPtls;
//! SKI, AKI, subjectAltName, cRLDistributionPoints non-critical. The GSMA permittedEins
//! extension is written non-critical so that OpenSSL (which refuses unknown critical
//! extensions) accepts the chain.

use std::path::Path;

use rsp_crypto::{Curve, KeyCustody, SoftwareKey};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::cert::Certificate;
use crate::dertlv::{self, tag};
use crate::validate::{DpRole, TrustStore, is_eid_syntax};
use crate::{PkiError, oids};

/// How the generated EUM certificate expresses its permitted EID range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EumRangeForm {
    /// The GSMA `permittedEins` extension (2.23.146.1.2.2.0), non-critical. OpenSSL accepts
    /// the chain. Default.
    #[default]
    PermittedEins,
    /// SGP.22 v2 "variant O": critical nameConstraints, permittedSubtrees directoryName
    /// `O=<org>, serialNumber=<IIN>`. The IIN is an EID *prefix*, so generic RFC 5280
    /// validators (OpenSSL) reject the eUICC certificate; our validator accepts it.
    NameConstraintsPrefix,
}

/// Options for [`generate`].
#[derive(Clone, Debug)]
pub struct PkiOptions {
    /// The curve of every key and certificate.
    pub curve: Curve,
    /// SM-DP+ FQDN or IP literal: DPtls subjectAltName dNSName (plus iPAddress for a
    /// literal) and commonName.
    pub smdp_address: String,
    /// SM-DP+ OID: subjectAltName registeredID of DPauth, DPpb and DPtls.
    pub smdp_oid: String,
    /// The eUICC's EID; its first 8 digits (IIN) become the EUM's permitted range. When
    /// `None`, an EID under IIN `89049032` with valid check digits is generated.
    pub eid: Option<String>,
    /// How the EUM states its EID range.
    pub eum_range_form: EumRangeForm,
    /// CI OID (subjectAltName registeredID of the CI certificate).
    pub ci_oid: String,
    /// EUM OID (subjectAltName registeredID of the EUM certificate).
    pub eum_oid: String,
    /// The organization (O) of the EUM and eUICC subjects and name constraints.
    pub eum_organization: String,
}

impl PkiOptions {
    /// Defaults for `curve`: address `testsmdpplus1.example.com`, SM-DP+ OID `2.999.10`
    /// (the SGP.26 values), CI OID `2.999.1`, EUM OID `2.999.5`, permittedEins form.
    pub fn new(curve: Curve) -> PkiOptions {
        PkiOptions {
            curve,
            smdp_address: "testsmdpplus1.example.com".into(),
            smdp_oid: "2.999.10".into(),
            eid: None,
            eum_range_form: EumRangeForm::PermittedEins,
            ci_oid: "2.999.1".into(),
            eum_oid: "2.999.5".into(),
            eum_organization: "RSP Test EUM".into(),
        }
    }
}

impl Default for PkiOptions {
    fn default() -> PkiOptions {
        PkiOptions::new(Curve::NistP256)
    }
}

/// A certificate and its private key.
#[derive(Debug)]
pub struct IssuedCert {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The private key.
    pub key: SoftwareKey,
}

impl IssuedCert {
    /// Parses the certificate.
    pub fn cert(&self) -> Result<Certificate, PkiError> {
        Certificate::from_der(&self.der)
    }

    /// The certificate as PEM.
    pub fn cert_pem(&self) -> String {
        crate::cert::der_to_pem(&self.der)
    }
}

/// A generated (or loaded) test PKI.
#[derive(Debug)]
pub struct TestPki {
    /// The options it was generated with.
    pub options: PkiOptions,
    /// The eUICC's EID.
    pub eid: String,
    /// CERT.CI.ECDSA + SK.CI.ECDSA.
    pub ci: IssuedCert,
    /// CERT.EUM.ECDSA + SK.EUM.ECDSA.
    pub eum: IssuedCert,
    /// CERT.EUICC.ECDSA + SK.EUICC.ECDSA.
    pub euicc: IssuedCert,
    /// CERT.DPauth.ECDSA + SK.DPauth.ECDSA.
    pub dpauth: IssuedCert,
    /// CERT.DPpb.ECDSA + SK.DPpb.ECDSA.
    pub dppb: IssuedCert,
    /// CERT.DP.TLS + SK.DP.TLS.
    pub dptls: IssuedCert,
}

/// The file names of the on-disk layout, in `(certificate, key)` pairs.
pub const LAYOUT: [(&str, &str); 6] = [
    ("ci.pem", "ci.key"),
    ("eum.pem", "eum.key"),
    ("euicc.pem", "euicc.key"),
    ("dpauth.pem", "dpauth.key"),
    ("dppb.pem", "dppb.key"),
    ("dptls.pem", "dptls.key"),
];

/// Sub-directory of extra trusted CI certificates (`*.pem`) read by [`load_dir`].
pub const EXTRA_CI_DIR: &str = "trusted-ci";

impl TestPki {
    /// A trust store holding the CI.
    pub fn trust_store(&self) -> Result<TrustStore, PkiError> {
        let mut s = TrustStore::new();
        s.add_ci_der(&self.ci.der)?;
        Ok(s)
    }

    fn entries(&self) -> [&IssuedCert; 6] {
        [
            &self.ci,
            &self.eum,
            &self.euicc,
            &self.dpauth,
            &self.dppb,
            &self.dptls,
        ]
    }

    /// Writes the PKI as PEM files into `dir` (created if needed): `ci.pem` + `ci.key`,
    /// `eum.pem` + `eum.key`, `euicc.pem` + `euicc.key`, `dpauth.pem` + `dpauth.key`,
    /// `dppb.pem` + `dppb.key`, `dptls.pem` + `dptls.key`. Keys are PKCS#8 PEM, mode 0600 on
    /// Unix.
    pub fn write_to(&self, dir: &Path) -> Result<(), PkiError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, &e))?;
        for ((cert_name, key_name), issued) in LAYOUT.iter().zip(self.entries()) {
            write_file(&dir.join(cert_name), issued.cert_pem().as_bytes(), false)?;
            write_file(
                &dir.join(key_name),
                issued.key.to_pkcs8_pem().as_bytes(),
                true,
            )?;
        }
        Ok(())
    }
}

fn io_err(path: &Path, e: &std::io::Error) -> PkiError {
    PkiError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<(), PkiError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = opts.open(path).map_err(|e| io_err(path, &e))?;
    f.write_all(data).map_err(|e| io_err(path, &e))
}

// ---------------------------------------------------------------------------------------------
// Names, times, extensions
// ---------------------------------------------------------------------------------------------

/// Encodes a distinguished name, one attribute per RDN, in the given order.
/// `C` and `serialNumber` are PrintableString (X.520), everything else UTF8String.
pub fn encode_name(attrs: &[(&str, &str)]) -> Result<Vec<u8>, PkiError> {
    let mut rdns = Vec::new();
    for (oid, value) in attrs {
        let v = if *oid == oids::AT_C || *oid == oids::AT_SERIAL_NUMBER {
            if !value.bytes().all(is_printable) {
                return Err(PkiError::InvalidOption(format!(
                    "{value:?} is not a PrintableString"
                )));
            }
            dertlv::tlv(tag::PRINTABLE_STRING, value.as_bytes())
        } else {
            dertlv::tlv(tag::UTF8_STRING, value.as_bytes())
        };
        let atv = dertlv::seq(&[&dertlv::oid(oid)?, &v]);
        rdns.extend(dertlv::set(&[&atv]));
    }
    Ok(dertlv::tlv(tag::SEQUENCE, &rdns))
}

fn is_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b)
}

pub(crate) fn encode_time(t: OffsetDateTime) -> Vec<u8> {
    // RFC 5280 section 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    let (h, mi, s) = (t.hour(), t.minute(), t.second());
    if (1950..2050).contains(&y) {
        let text = format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100);
        dertlv::tlv(tag::UTC_TIME, text.as_bytes())
    } else {
        let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z");
        dertlv::tlv(tag::GENERALIZED_TIME, text.as_bytes())
    }
}

/// `9999-12-31T23:59:59Z`, the RFC 5280 "no well-defined expiration" value used as eUICC
/// certificate notAfter.
pub fn no_expiry() -> OffsetDateTime {
    // 253402300799 is 9999-12-31T23:59:59Z; within `time`'s default range.
    OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The key identifier this generator uses: the first 20 bytes of SHA-256 over the
/// subjectPublicKey bits (RFC 7093 section 2, method 1).
pub fn key_identifier(public_key: &[u8]) -> Vec<u8> {
    Sha256::digest(public_key)[..20].to_vec()
}

fn spki(curve: Curve, public_key: &[u8]) -> Result<Vec<u8>, PkiError> {
    let alg = dertlv::seq(&[
        &dertlv::oid(oids::EC_PUBLIC_KEY)?,
        &dertlv::oid(curve.oid())?,
    ]);
    Ok(dertlv::seq(&[&alg, &dertlv::bit_string(public_key)]))
}

/// A certificate under construction. Templates for each SGP.22 role are provided
/// ([`ci_template`], [`eum_template`], [`euicc_template`], [`dp_template`]); tests tweak them
/// (remove or replace extensions, change validity) to produce invalid certificates.
#[derive(Clone, Debug)]
pub struct CertBuilder {
    /// Serial number magnitude (big-endian).
    pub serial: Vec<u8>,
    /// Issuer Name, DER.
    pub issuer: Vec<u8>,
    /// Subject Name, DER.
    pub subject: Vec<u8>,
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
    /// Subject key curve.
    pub curve: Curve,
    /// Subject public key, SEC1 uncompressed.
    pub public_key: Vec<u8>,
    /// Extensions: `(dotted OID, critical, extnValue contents)`, in order.
    pub extensions: Vec<(String, bool, Vec<u8>)>,
}

impl CertBuilder {
    /// A builder with no extensions, valid from one hour ago for `lifetime`.
    pub fn new(
        issuer: Vec<u8>,
        subject: Vec<u8>,
        curve: Curve,
        public_key: &[u8],
        lifetime: Duration,
    ) -> CertBuilder {
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or(OffsetDateTime::now_utc());
        let not_before = now - Duration::hours(1);
        let mut serial_src = Sha256::new();
        serial_src.update(public_key);
        serial_src.update(&subject);
        serial_src.update(now.unix_timestamp_nanos().to_be_bytes());
        let mut serial = Sha256::digest(serial_src.finalize())[..16].to_vec();
        serial[0] = (serial[0] & 0x7F) | 0x01;
        CertBuilder {
            serial,
            issuer,
            subject,
            not_before,
            not_after: not_before + lifetime,
            curve,
            public_key: public_key.to_vec(),
            extensions: Vec::new(),
        }
    }

    /// Appends (or replaces, keeping position) an extension.
    pub fn set_extension(&mut self, oid: &str, critical: bool, value: Vec<u8>) -> &mut CertBuilder {
        if let Some(e) = self.extensions.iter_mut().find(|e| e.0 == oid) {
            e.1 = critical;
            e.2 = value;
        } else {
            self.extensions.push((oid.to_owned(), critical, value));
        }
        self
    }

    /// Removes an extension.
    pub fn remove_extension(&mut self, oid: &str) -> &mut CertBuilder {
        self.extensions.retain(|e| e.0 != oid);
        self
    }

    /// The TBSCertificate DER.
    pub fn tbs_der(&self) -> Result<Vec<u8>, PkiError> {
        let sig_alg = dertlv::seq(&[&dertlv::oid(oids::ECDSA_WITH_SHA256)?]);
        let version = dertlv::tlv(0xA0, &dertlv::uint(&[2]));
        let validity = dertlv::seq(&[&encode_time(self.not_before), &encode_time(self.not_after)]);
        let mut exts = Vec::new();
        for (oid, critical, value) in &self.extensions {
            let o = dertlv::oid(oid)?;
            let v = dertlv::octet_string(value);
            let ext = if *critical {
                dertlv::seq(&[&o, &dertlv::bool_true(), &v])
            } else {
                dertlv::seq(&[&o, &v])
            };
            exts.extend(ext);
        }
        let mut parts: Vec<Vec<u8>> = vec![
            version,
            dertlv::uint(&self.serial),
            sig_alg,
            self.issuer.clone(),
            validity,
            self.subject.clone(),
            spki(self.curve, &self.public_key)?,
        ];
        if !exts.is_empty() {
            parts.push(dertlv::tlv(0xA3, &dertlv::tlv(tag::SEQUENCE, &exts)));
        }
        Ok(dertlv::tlv(tag::SEQUENCE, &parts.concat()))
    }

    /// Signs with `issuer_key` (ECDSA-SHA256) and returns the certificate DER.
    pub fn sign(&self, issuer_key: &dyn KeyCustody) -> Result<Vec<u8>, PkiError> {
        let tbs = self.tbs_der()?;
        let raw = issuer_key.sign(&tbs)?;
        let sig = rsp_crypto::ecdsa::raw_to_der(&raw);
        let alg = dertlv::seq(&[&dertlv::oid(oids::ECDSA_WITH_SHA256)?]);
        Ok(dertlv::seq(&[&tbs, &alg, &dertlv::bit_string(&sig)]))
    }
}

/// Extension value encoders (the `extnValue` contents).
pub mod ext {
    use super::*;

    /// SubjectKeyIdentifier.
    pub fn ski(id: &[u8]) -> Vec<u8> {
        dertlv::octet_string(id)
    }

    /// AuthorityKeyIdentifier with `keyIdentifier [0]` only.
    pub fn aki(id: &[u8]) -> Vec<u8> {
        dertlv::seq(&[&dertlv::tlv(0x80, id)])
    }

    /// keyUsage from bit positions (0 digitalSignature, 5 keyCertSign, 6 cRLSign).
    pub fn key_usage(bits: &[u8]) -> Vec<u8> {
        dertlv::named_bits(bits)
    }

    /// basicConstraints.
    pub fn basic_constraints(ca: bool, path_len: Option<u8>) -> Vec<u8> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        if ca {
            parts.push(dertlv::bool_true());
        }
        if let Some(n) = path_len {
            parts.push(dertlv::uint(&[n]));
        }
        dertlv::tlv(tag::SEQUENCE, &parts.concat())
    }

    /// certificatePolicies with bare policy OIDs.
    pub fn policies(policy_oids: &[&str]) -> Result<Vec<u8>, PkiError> {
        let mut infos = Vec::new();
        for p in policy_oids {
            infos.extend(dertlv::seq(&[&dertlv::oid(p)?]));
        }
        Ok(dertlv::tlv(tag::SEQUENCE, &infos))
    }

    /// subjectAltName with dNSName and registeredID entries.
    pub fn subject_alt_name(
        dns_names: &[&str],
        registered_ids: &[&str],
    ) -> Result<Vec<u8>, PkiError> {
        let mut names = Vec::new();
        for d in dns_names {
            names.extend(dertlv::tlv(0x82, d.as_bytes()));
        }
        for r in registered_ids {
            names.extend(dertlv::tlv(0x88, &dertlv::dotted_to_oid(r)?));
        }
        Ok(dertlv::tlv(tag::SEQUENCE, &names))
    }

    /// subjectAltName with dNSName, iPAddress (4 or 16 octets, RFC 5280 section 4.2.1.6)
    /// and registeredID entries, in that order.
    pub fn subject_alt_name_with_ips(
        dns_names: &[&str],
        ip_addresses: &[std::net::IpAddr],
        registered_ids: &[&str],
    ) -> Result<Vec<u8>, PkiError> {
        let mut names = Vec::new();
        for d in dns_names {
            names.extend(dertlv::tlv(0x82, d.as_bytes()));
        }
        for ip in ip_addresses {
            let octets = match ip {
                std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            names.extend(dertlv::tlv(0x87, &octets));
        }
        for r in registered_ids {
            names.extend(dertlv::tlv(0x88, &dertlv::dotted_to_oid(r)?));
        }
        Ok(dertlv::tlv(tag::SEQUENCE, &names))
    }

    /// extKeyUsage.
    pub fn ext_key_usage(purposes: &[&str]) -> Result<Vec<u8>, PkiError> {
        let mut v = Vec::new();
        for p in purposes {
            v.extend(dertlv::oid(p)?);
        }
        Ok(dertlv::tlv(tag::SEQUENCE, &v))
    }

    /// nameConstraints "variant O" (SGP.22 section 4.5.2.1.0.3): permittedSubtrees of
    /// directoryName `O=<org>, serialNumber=<iin>`, one subtree per pair.
    pub fn name_constraints_o(pairs: &[(&str, &str)]) -> Result<Vec<u8>, PkiError> {
        let mut subtrees = Vec::new();
        for (org, iin) in pairs {
            let name = encode_name(&[(oids::AT_O, org), (oids::AT_SERIAL_NUMBER, iin)])?;
            subtrees.extend(dertlv::seq(&[&dertlv::tlv(0xA4, &name)]));
        }
        Ok(dertlv::seq(&[&dertlv::tlv(0xA0, &subtrees)]))
    }

    /// permittedEins (`SEQUENCE OF PrintableString`).
    pub fn permitted_eins(prefixes: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        for p in prefixes {
            v.extend(dertlv::tlv(tag::PRINTABLE_STRING, p.as_bytes()));
        }
        dertlv::tlv(tag::SEQUENCE, &v)
    }

    /// cRLDistributionPoints with one distributionPoint fullName URI.
    pub fn crl_distribution_point(uri: &str) -> Vec<u8> {
        let gn = dertlv::tlv(0x86, uri.as_bytes());
        let full_name = dertlv::tlv(0xA0, &gn);
        let dp_name = dertlv::tlv(0xA0, &full_name);
        dertlv::seq(&[&dertlv::seq(&[&dp_name])])
    }
}

// ---------------------------------------------------------------------------------------------
// Role templates (SGP.22 section 4.5.2.1.0.x)
// ---------------------------------------------------------------------------------------------

const CRL_URI: &str = "http://ci.test.example.com/ci.crl";

fn ski_of(cert: &Certificate) -> Result<Vec<u8>, PkiError> {
    cert.ski()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| PkiError::InvalidOption("issuer certificate has no SKI".into()))
}

/// CERT.CI.ECDSA template (table 10): self-signed, 30 years.
pub fn ci_template(curve: Curve, public_key: &[u8], ci_oid: &str) -> Result<CertBuilder, PkiError> {
    let name = encode_name(&[
        (oids::AT_CN, "RSP Test CI"),
        (oids::AT_OU, "TESTCERT"),
        (oids::AT_O, "RSPTEST"),
        (oids::AT_C, "XX"),
    ])?;
    let mut b = CertBuilder::new(
        name.clone(),
        name,
        curve,
        public_key,
        Duration::days(365 * 30),
    );
    b.set_extension(oids::EXT_SKI, false, ext::ski(&key_identifier(public_key)))
        .set_extension(
            oids::EXT_BASIC_CONSTRAINTS,
            true,
            ext::basic_constraints(true, None),
        )
        .set_extension(
            oids::EXT_CERT_POLICIES,
            true,
            ext::policies(&[oids::ROLE_CI])?,
        )
        .set_extension(oids::EXT_KEY_USAGE, true, ext::key_usage(&[5, 6]))
        .set_extension(oids::EXT_SAN, false, ext::subject_alt_name(&[], &[ci_oid])?)
        .set_extension(
            oids::EXT_CRL_DP,
            false,
            ext::crl_distribution_point(CRL_URI),
        );
    Ok(b)
}

/// CERT.EUM.ECDSA template (table 12), issued by `ci`, permitted range `iins` (EID
/// prefixes) in the given form, 20 years.
pub fn eum_template(
    ci: &Certificate,
    curve: Curve,
    public_key: &[u8],
    organization: &str,
    eum_oid: &str,
    iins: &[&str],
    form: EumRangeForm,
) -> Result<CertBuilder, PkiError> {
    let subject = encode_name(&[
        (oids::AT_C, "XX"),
        (oids::AT_O, organization),
        (oids::AT_CN, &format!("{organization} CA")),
    ])?;
    let mut b = CertBuilder::new(
        ci.subject_der().to_vec(),
        subject,
        curve,
        public_key,
        Duration::days(365 * 20),
    );
    b.set_extension(oids::EXT_AKI, false, ext::aki(&ski_of(ci)?))
        .set_extension(oids::EXT_SKI, false, ext::ski(&key_identifier(public_key)))
        .set_extension(oids::EXT_KEY_USAGE, true, ext::key_usage(&[5]))
        .set_extension(
            oids::EXT_CERT_POLICIES,
            true,
            ext::policies(&[oids::ROLE_EUM])?,
        )
        .set_extension(
            oids::EXT_SAN,
            false,
            ext::subject_alt_name(&[], &[eum_oid])?,
        )
        .set_extension(
            oids::EXT_BASIC_CONSTRAINTS,
            true,
            ext::basic_constraints(true, Some(0)),
        )
        .set_extension(
            oids::EXT_CRL_DP,
            false,
            ext::crl_distribution_point(CRL_URI),
        );
    match form {
        EumRangeForm::PermittedEins => {
            b.set_extension(oids::EXT_PERMITTED_EINS, false, ext::permitted_eins(iins));
        }
        EumRangeForm::NameConstraintsPrefix => {
            let pairs: Vec<(&str, &str)> = iins.iter().map(|i| (organization, *i)).collect();
            b.set_extension(
                oids::EXT_NAME_CONSTRAINTS,
                true,
                ext::name_constraints_o(&pairs)?,
            );
        }
    }
    Ok(b)
}

/// CERT.EUICC.ECDSA template (table 11), issued by `eum`: subject `O` = the EUM's O,
/// `serialNumber` = EID; notAfter 9999-12-31T23:59:59Z.
pub fn euicc_template(
    eum: &Certificate,
    curve: Curve,
    public_key: &[u8],
    eid: &str,
) -> Result<CertBuilder, PkiError> {
    let org = eum
        .subject_attribute(oids::AT_O)
        .ok_or_else(|| PkiError::InvalidOption("EUM subject has no organization".into()))?;
    let subject = encode_name(&[(oids::AT_O, &org), (oids::AT_SERIAL_NUMBER, eid)])?;
    let mut b = CertBuilder::new(
        eum.subject_der().to_vec(),
        subject,
        curve,
        public_key,
        Duration::days(1),
    );
    b.not_after = no_expiry();
    b.set_extension(oids::EXT_AKI, false, ext::aki(&ski_of(eum)?))
        .set_extension(oids::EXT_SKI, false, ext::ski(&key_identifier(public_key)))
        .set_extension(oids::EXT_KEY_USAGE, true, ext::key_usage(&[0]))
        .set_extension(
            oids::EXT_CERT_POLICIES,
            true,
            ext::policies(&[oids::ROLE_EUICC])?,
        );
    Ok(b)
}

/// CERT.DPauth.ECDSA / CERT.DPpb.ECDSA (table 13) or CERT.DP.TLS (table 14) template,
/// issued by `ci`, 5 years. DPauth/DPpb: CN "RSP Test SM-DP+", SAN registeredID.
/// DPtls: CN = `smdp_address`, non-critical dp-tls policy, critical extKeyUsage
/// serverAuth + clientAuth, SAN dNSName + registeredID.
///
/// When `smdp_address` is an IP literal (a lab server on `127.0.0.1`), CERT.DP.TLS still
/// carries a dNSName, because section 4.5.2.1.0.5 (Table 14) requires "at least one dNSName
/// entry" and a CN matching one of them: the literal's text for IPv4, `localhost` for IPv6
/// (whose text is not a host name). An iPAddress entry with the address is added, so that
/// TLS clients that check IP literals against iPAddress (RFC 6125, curl/OpenSSL, rustls) accept
/// the certificate.
pub fn dp_template(
    ci: &Certificate,
    role: DpRole,
    curve: Curve,
    public_key: &[u8],
    smdp_address: &str,
    smdp_oid: &str,
) -> Result<CertBuilder, PkiError> {
    let ip: Option<std::net::IpAddr> = smdp_address.parse().ok();
    let tls_dns_name = match ip {
        Some(std::net::IpAddr::V6(_)) => "localhost",
        _ => smdp_address,
    };
    let cn = match role {
        DpRole::Tls => tls_dns_name,
        DpRole::Auth | DpRole::Pb => "RSP Test SM-DP+",
    };
    let subject = encode_name(&[(oids::AT_O, "RSP Test SM-DP+"), (oids::AT_CN, cn)])?;
    let mut b = CertBuilder::new(
        ci.subject_der().to_vec(),
        subject,
        curve,
        public_key,
        Duration::days(365 * 5),
    );
    b.set_extension(oids::EXT_AKI, false, ext::aki(&ski_of(ci)?))
        .set_extension(oids::EXT_SKI, false, ext::ski(&key_identifier(public_key)))
        .set_extension(oids::EXT_KEY_USAGE, true, ext::key_usage(&[0]));
    match role {
        DpRole::Auth | DpRole::Pb => {
            b.set_extension(
                oids::EXT_CERT_POLICIES,
                true,
                ext::policies(&[role.policy_oid()])?,
            )
            .set_extension(
                oids::EXT_SAN,
                false,
                ext::subject_alt_name(&[], &[smdp_oid])?,
            );
        }
        DpRole::Tls => {
            b.set_extension(
                oids::EXT_CERT_POLICIES,
                false,
                ext::policies(&[oids::ROLE_DP_TLS])?,
            )
            .set_extension(
                oids::EXT_EXT_KEY_USAGE,
                true,
                ext::ext_key_usage(&[oids::KP_SERVER_AUTH, oids::KP_CLIENT_AUTH])?,
            )
            .set_extension(
                oids::EXT_SAN,
                false,
                ext::subject_alt_name_with_ips(&[tls_dns_name], ip.as_slice(), &[smdp_oid])?,
            );
        }
    }
    b.set_extension(
        oids::EXT_CRL_DP,
        false,
        ext::crl_distribution_point(CRL_URI),
    );
    Ok(b)
}

// ---------------------------------------------------------------------------------------------
// EIDs
// ---------------------------------------------------------------------------------------------

/// Completes 30 EID digits with the two check digits (ISO 7064 MOD 97-10, so that the
/// 32-digit number mod 97 equals 1).
pub fn eid_with_check_digits(first30: &str) -> Result<String, PkiError> {
    if first30.len() != 30 || !first30.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PkiError::InvalidOption(format!(
            "{first30:?} is not 30 digits"
        )));
    }
    let rem = format!("{first30}00")
        .bytes()
        .fold(0u32, |acc, d| (acc * 10 + u32::from(d - b'0')) % 97);
    Ok(format!("{first30}{:02}", 98 - rem))
}

// ---------------------------------------------------------------------------------------------
// Top-level API
// ---------------------------------------------------------------------------------------------

fn validate_fqdn(s: &str) -> Result<(), PkiError> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(PkiError::InvalidOption(format!("{s:?} is not a host name")))
    }
}

/// A host name, or an IPv4/IPv6 literal (without brackets or port).
fn validate_host(s: &str) -> Result<(), PkiError> {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    validate_fqdn(s)
}

/// Generates a complete test PKI: CI, EUM, one eUICC, DPauth, DPpb and DPtls.
/// `opts.smdp_address` may be a host name or an IP literal (see [`dp_template`]).
pub fn generate(opts: PkiOptions) -> Result<TestPki, PkiError> {
    validate_host(&opts.smdp_address)?;
    for oid in [&opts.smdp_oid, &opts.ci_oid, &opts.eum_oid] {
        dertlv::dotted_to_oid(oid)?;
    }
    let eid = match &opts.eid {
        Some(e) if is_eid_syntax(e) => e.clone(),
        Some(e) => {
            return Err(PkiError::InvalidOption(format!(
                "EID {e:?} is not 32 digits"
            )));
        }
        None => eid_with_check_digits("890490320000000000000000000001")?,
    };
    let curve = opts.curve;

    let ci_key = SoftwareKey::generate(curve)?;
    let ci_der = ci_template(curve, ci_key.public_key(), &opts.ci_oid)?.sign(&ci_key)?;
    let ci_cert = Certificate::from_der(&ci_der)?;

    let eum_key = SoftwareKey::generate(curve)?;
    let eum_der = eum_template(
        &ci_cert,
        curve,
        eum_key.public_key(),
        &opts.eum_organization,
        &opts.eum_oid,
        &[&eid[..8]],
        opts.eum_range_form,
    )?
    .sign(&ci_key)?;
    let eum_cert = Certificate::from_der(&eum_der)?;
    let (euicc_der, euicc_key) = issue_euicc(&eum_cert, &eum_key, &eid)?;

    let mut dp = Vec::with_capacity(3);
    for role in [DpRole::Auth, DpRole::Pb, DpRole::Tls] {
        let key = SoftwareKey::generate(curve)?;
        let der = dp_template(
            &ci_cert,
            role,
            curve,
            key.public_key(),
            &opts.smdp_address,
            &opts.smdp_oid,
        )?
        .sign(&ci_key)?;
        dp.push(IssuedCert { der, key });
    }
    let mut dp = dp.into_iter();
    let (Some(dpauth), Some(dppb), Some(dptls)) = (dp.next(), dp.next(), dp.next()) else {
        // Invariant: the loop above pushed exactly three entries.
        return Err(PkiError::InvalidOption(
            "internal: DP certificates missing".into(),
        ));
    };

    Ok(TestPki {
        options: opts,
        eid,
        ci: IssuedCert {
            der: ci_der,
            key: ci_key,
        },
        eum: IssuedCert {
            der: eum_der,
            key: eum_key,
        },
        euicc: IssuedCert {
            der: euicc_der,
            key: euicc_key,
        },
        dpauth,
        dppb,
        dptls,
    })
}

/// Issues a CERT.EUICC.ECDSA for `eid` under an existing EUM, with a fresh key on the EUM's
/// curve. The EID should lie within the EUM's permitted range (not checked here, so tests can
/// produce out-of-range certificates).
pub fn issue_euicc(
    eum_cert: &Certificate,
    eum_key: &dyn KeyCustody,
    eid: &str,
) -> Result<(Vec<u8>, SoftwareKey), PkiError> {
    if !is_eid_syntax(eid) {
        return Err(PkiError::InvalidOption(format!(
            "EID {eid:?} is not 32 digits"
        )));
    }
    if eum_key.public_key() != eum_cert.public_key() {
        return Err(PkiError::InvalidOption(
            "EUM key does not match the EUM certificate".into(),
        ));
    }
    let key = SoftwareKey::generate(eum_cert.curve())?;
    let der = euicc_template(eum_cert, eum_cert.curve(), key.public_key(), eid)?.sign(eum_key)?;
    Ok((der, key))
}

/// A PKI directory read back by [`load_dir`].
#[derive(Debug)]
pub struct PkiDir {
    /// `ci.pem` first, then `trusted-ci/*.pem` (sorted by file name).
    pub cis: Vec<Certificate>,
    /// `ci.key`, if present.
    pub ci_key: Option<SoftwareKey>,
    /// `eum.pem` + `eum.key`, if present.
    pub eum: Option<IssuedCert>,
    /// `euicc.pem` + `euicc.key`, if present.
    pub euicc: Option<IssuedCert>,
    /// `dpauth.pem` + `dpauth.key`.
    pub dpauth: IssuedCert,
    /// `dppb.pem` + `dppb.key`.
    pub dppb: IssuedCert,
    /// `dptls.pem` + `dptls.key`.
    pub dptls: IssuedCert,
}

impl PkiDir {
    /// A trust store with every CI of the directory.
    pub fn trust_store(&self) -> Result<TrustStore, PkiError> {
        let mut s = TrustStore::new();
        for c in &self.cis {
            s.add_ci(c.clone())?;
        }
        Ok(s)
    }
}

fn read_text(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|e| io_err(path, &e))
}

fn read_pair(dir: &Path, cert: &str, key: &str) -> Result<IssuedCert, PkiError> {
    let c = Certificate::from_pem(&read_text(&dir.join(cert))?)?;
    let key_path = dir.join(key);
    let k = SoftwareKey::from_pem(&read_text(&key_path)?)?;
    if k.public_key() != c.public_key() {
        return Err(PkiError::InvalidOption(format!(
            "{} does not match {cert}",
            key_path.display()
        )));
    }
    Ok(IssuedCert {
        der: c.der().to_vec(),
        key: k,
    })
}

fn read_optional_pair(dir: &Path, cert: &str, key: &str) -> Result<Option<IssuedCert>, PkiError> {
    if dir.join(cert).exists() && dir.join(key).exists() {
        read_pair(dir, cert, key).map(Some)
    } else {
        Ok(None)
    }
}

/// Reads the [`TestPki::write_to`] layout back. `ci.pem` and the three SM-DP+ pairs are
/// required; `ci.key`, the EUM and eUICC pairs are optional (a production SM-DP+ holds no CI
/// or EUM key); every `trusted-ci/*.pem` file adds CI certificates.
pub fn load_dir(dir: &Path) -> Result<PkiDir, PkiError> {
    let mut cis = Certificate::from_pem_bundle(&read_text(&dir.join("ci.pem"))?)?;
    if cis.is_empty() {
        return Err(PkiError::malformed("ci.pem holds no certificate"));
    }
    let extra = dir.join(EXTRA_CI_DIR);
    if extra.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(&extra)
            .map_err(|e| io_err(&extra, &e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
            .collect();
        files.sort();
        for f in files {
            cis.extend(Certificate::from_pem_bundle(&read_text(&f)?)?);
        }
    }
    let ci_key_path = dir.join("ci.key");
    let ci_key = if ci_key_path.exists() {
        Some(SoftwareKey::from_pem(&read_text(&ci_key_path)?)?)
    } else {
        None
    };
    Ok(PkiDir {
        cis,
        ci_key,
        eum: read_optional_pair(dir, "eum.pem", "eum.key")?,
        euicc: read_optional_pair(dir, "euicc.pem", "euicc.key")?,
        dpauth: read_pair(dir, "dpauth.pem", "dpauth.key")?,
        dppb: read_pair(dir, "dppb.pem", "dppb.key")?,
        dptls: read_pair(dir, "dptls.pem", "dptls.key")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn dptls_san(address: &str) -> (crate::cert::SubjectAltNames, Vec<Vec<u8>>, TestPki) {
        let mut o = PkiOptions::new(Curve::NistP256);
        o.smdp_address = address.into();
        let pki = generate(o).unwrap();
        let cert = pki.dptls.cert().unwrap();
        let san = cert.subject_alt_names().unwrap().value.clone();
        // iPAddress entries, read from the raw DER (the parser keeps only what SGP.22
        // validation needs).
        let ips = raw_ip_entries(&pki.dptls.der);
        (san, ips, pki)
    }

    /// The iPAddress entries of the subjectAltName extension.
    fn raw_ip_entries(der: &[u8]) -> Vec<Vec<u8>> {
        let cert = crate::cert::Certificate::from_der(der).unwrap();
        let san = cert
            .x509()
            .tbs_certificate()
            .extensions()
            .unwrap()
            .iter()
            .find(|x| x.extn_id.to_string() == oids::EXT_SAN)
            .unwrap();
        let outer = dertlv::read_single(san.extn_value.as_bytes(), tag::SEQUENCE, "san").unwrap();
        dertlv::children(outer.value)
            .unwrap()
            .into_iter()
            .filter(|gn| gn.tag == 0x87)
            .map(|gn| gn.value.to_vec())
            .collect()
    }

    #[test]
    fn ipv4_literal_gets_dns_name_and_ip_address() {
        let (san, ips, pki) = dptls_san("127.0.0.1");
        assert_eq!(san.dns_names, ["127.0.0.1"]);
        assert!(ips.contains(&vec![127, 0, 0, 1]), "{ips:?}");
        // Still a valid CERT.DP.TLS (at least one dNSName, one registeredID).
        let mut trust = crate::TrustStore::new();
        trust.add_ci_der(&pki.ci.der).unwrap();
        crate::validate_dp_chain(
            &trust,
            &pki.dptls.der,
            crate::DpRole::Tls,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        // OpenSSL accepts it for the IP (when installed).
        let openssl = std::path::Path::new("/usr/bin/openssl");
        if openssl.exists() {
            let dir = std::env::temp_dir().join(format!("rsp-pki-ip-{}", std::process::id()));
            pki.write_to(&dir).unwrap();
            let out = std::process::Command::new(openssl)
                .args([
                    "verify",
                    "-CAfile",
                    "ci.pem",
                    "-verify_ip",
                    "127.0.0.1",
                    "dptls.pem",
                ])
                .current_dir(&dir)
                .output()
                .unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn ipv6_literal_gets_localhost_and_ip_address() {
        let (san, ips, _) = dptls_san("::1");
        assert_eq!(san.dns_names, ["localhost"]);
        let mut one = vec![0u8; 16];
        one[15] = 1;
        assert!(ips.contains(&one), "{ips:?}");
    }

    #[test]
    fn host_names_get_no_ip_address() {
        let (san, ips, _) = dptls_san("smdp.example.com");
        assert_eq!(san.dns_names, ["smdp.example.com"]);
        assert!(ips.is_empty());
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in ["", "a b", "-x.example", "[::1]", "127.0.0.1:8443"] {
            let mut o = PkiOptions::new(Curve::NistP256);
            o.smdp_address = bad.into();
            assert!(generate(o).is_err(), "{bad:?}");
        }
    }
}
