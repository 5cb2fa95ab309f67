//! Object identifiers used by SGP.22 certificates, in dotted form.
//!
//! Role OIDs come from SGP.22 v2.2 Annex H (`RSPDefinitions`):
//! `id-rsp ::= {2 23 146 1}`, `id-rsp-cert-objects ::= {id-rsp 2}`,
//! `id-rspRole ::= {id-rsp-cert-objects 1}`, then `ci(0) euicc(1) eum(2) dp-tls(3) dp-auth(4)
//! dp-pb(5) ds-tls(6) ds-auth(7)`. The SGP.26 test certificates carry exactly these values
//! (CI `2.23.146.1.2.1.0`, DPauth `…1.4`, DPpb `…1.5`, DPtls `…1.3`).
//!
//! `id-rsp-extension-permitted-eins ::= {id-rsp-cert-objects 2 0}` (= `2.23.146.1.2.2.0`,
//! `PermittedEins ::= SEQUENCE OF PrintableString`) is defined in the SGP.22 v3 ASN.1 module and
//! used by the "Ov3/A/B/C" EUM certificate variants instead of nameConstraints.

/// `id-rspRole-ci` (SGP.22 Annex H).
pub const ROLE_CI: &str = "2.23.146.1.2.1.0";
/// `id-rspRole-euicc` (SGP.22 Annex H).
pub const ROLE_EUICC: &str = "2.23.146.1.2.1.1";
/// `id-rspRole-eum` (SGP.22 Annex H).
pub const ROLE_EUM: &str = "2.23.146.1.2.1.2";
/// `id-rspRole-dp-tls` (SGP.22 Annex H).
pub const ROLE_DP_TLS: &str = "2.23.146.1.2.1.3";
/// `id-rspRole-dp-auth` (SGP.22 Annex H).
pub const ROLE_DP_AUTH: &str = "2.23.146.1.2.1.4";
/// `id-rspRole-dp-pb` (SGP.22 Annex H).
pub const ROLE_DP_PB: &str = "2.23.146.1.2.1.5";
/// `id-rspRole-ds-tls` (SGP.22 Annex H).
pub const ROLE_DS_TLS: &str = "2.23.146.1.2.1.6";
/// `id-rspRole-ds-auth` (SGP.22 Annex H).
pub const ROLE_DS_AUTH: &str = "2.23.146.1.2.1.7";
/// `id-rsp-extension-permitted-eins` (SGP.22 v3 ASN.1).
pub const EXT_PERMITTED_EINS: &str = "2.23.146.1.2.2.0";

/// id-ecPublicKey (RFC 5480).
pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
/// ecdsa-with-SHA256 (RFC 5758), the only signature algorithm of SGP.22 section 4.5.2.1.1.
pub const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";

/// id-ce-subjectKeyIdentifier.
pub const EXT_SKI: &str = "2.5.29.14";
/// id-ce-keyUsage.
pub const EXT_KEY_USAGE: &str = "2.5.29.15";
/// id-ce-subjectAltName.
pub const EXT_SAN: &str = "2.5.29.17";
/// id-ce-basicConstraints.
pub const EXT_BASIC_CONSTRAINTS: &str = "2.5.29.19";
/// id-ce-nameConstraints.
pub const EXT_NAME_CONSTRAINTS: &str = "2.5.29.30";
/// id-ce-cRLDistributionPoints.
pub const EXT_CRL_DP: &str = "2.5.29.31";
/// id-ce-certificatePolicies.
pub const EXT_CERT_POLICIES: &str = "2.5.29.32";
/// id-ce-authorityKeyIdentifier.
pub const EXT_AKI: &str = "2.5.29.35";
/// id-ce-extKeyUsage.
pub const EXT_EXT_KEY_USAGE: &str = "2.5.29.37";

/// id-kp-serverAuth.
pub const KP_SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
/// id-kp-clientAuth.
pub const KP_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";

/// id-at-commonName.
pub const AT_CN: &str = "2.5.4.3";
/// id-at-serialNumber.
pub const AT_SERIAL_NUMBER: &str = "2.5.4.5";
/// id-at-countryName.
pub const AT_C: &str = "2.5.4.6";
/// id-at-organizationName.
pub const AT_O: &str = "2.5.4.10";
/// id-at-organizationalUnitName.
pub const AT_OU: &str = "2.5.4.11";

// CRL extensions (RFC 5280 section 5.2 and 5.3; SGP.22 section 4.6.2).

/// id-ce-cRLNumber.
pub const EXT_CRL_NUMBER: &str = "2.5.29.20";
/// id-ce-cRLReasons (entry extension).
pub const EXT_CRL_REASON: &str = "2.5.29.21";
/// id-ce-invalidityDate (entry extension).
pub const EXT_INVALIDITY_DATE: &str = "2.5.29.24";
/// id-ce-deltaCRLIndicator.
pub const EXT_DELTA_CRL_INDICATOR: &str = "2.5.29.27";
/// id-ce-issuingDistributionPoint.
pub const EXT_ISSUING_DP: &str = "2.5.29.28";
/// id-ce-certificateIssuer (entry extension of indirect CRLs).
pub const EXT_CERTIFICATE_ISSUER: &str = "2.5.29.29";
/// id-ce-freshestCRL.
pub const EXT_FRESHEST_CRL: &str = "2.5.29.46";
/// id-rsp-expDate (SGP.22 section 4.6.2, entry extension): expiry of the revoked certificate.
pub const EXT_RSP_EXP_DATE: &str = "2.23.146.1.2.0.1";
/// id-rsp-totalPartialCrlNumber (SGP.22 section 4.6.2).
pub const EXT_RSP_TOTAL_PARTIAL_CRL_NUMBER: &str = "2.23.146.1.2.0.2";
/// id-rsp-partialCrlNumber (SGP.22 section 4.6.2).
pub const EXT_RSP_PARTIAL_CRL_NUMBER: &str = "2.23.146.1.2.0.3";
