//! The SGP.26 test certificates (read from /work/shared at test time) parse and validate.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{patch, read_sgp26};
use rsp_crypto::Curve;
use rsp_pki::{
    CertRole, Certificate, DpRole, PkiError, TrustStore, check_same_smdp_oid, validate_dp_chain,
};

const VARIANTS: [(&str, Curve); 2] = [("NIST", Curve::NistP256), ("BRP", Curve::BrainpoolP256r1)];

fn store(variant: &str) -> TrustStore {
    let mut s = TrustStore::new();
    s.add_ci_der(&read_sgp26(&format!(
        "CertificateIssuer/CERT_CI_ECDSA_{variant}.der"
    )))
    .unwrap();
    s
}

#[test]
fn sgp26_ci_certificates_are_accepted_as_trust_anchors() {
    for (v, curve) in VARIANTS {
        let s = store(v);
        assert_eq!(s.len(), 1);
        let ci = s.iter().next().unwrap();
        assert_eq!(ci.curve(), curve);
        assert!(ci.has_policy(rsp_pki::oids::ROLE_CI));
        assert_eq!(ci.registered_ids(), ["2.999.1"]);
        // PEM and DER forms agree.
        let pem = std::fs::read_to_string(common::sgp26(&format!(
            "CertificateIssuer/CERT_CI_ECDSA_{v}.pem"
        )))
        .unwrap();
        assert_eq!(Certificate::from_pem(&pem).unwrap().der(), ci.der());
    }
}

#[test]
fn sgp26_parsing_is_lossless() {
    for rel in [
        "CertificateIssuer/CERT_CI_ECDSA_NIST.der",
        "DPauth/CERT_S_SM_DPauth_ECDSA_BRP.der",
        "DPpb/CERT_S_SM_DPpb_ECDSA_NIST.der",
        "DPtls/CERT_S_SM_DP_TLS_BRP.der",
    ] {
        let der = read_sgp26(rel);
        let c = Certificate::from_der(&der).unwrap();
        assert_eq!(c.der(), der.as_slice());
        assert_eq!(c.reencode().unwrap(), der, "{rel}");
    }
}

#[test]
fn sgp26_dpauth_and_dppb_validate_on_both_curves() {
    let now = common::utc(2026, 1, 1);
    for (v, curve) in VARIANTS {
        let s = store(v);
        let auth = validate_dp_chain(
            &s,
            &read_sgp26(&format!("DPauth/CERT_S_SM_DPauth_ECDSA_{v}.der")),
            DpRole::Auth,
            now,
        )
        .unwrap();
        let pb = validate_dp_chain(
            &s,
            &read_sgp26(&format!("DPpb/CERT_S_SM_DPpb_ECDSA_{v}.der")),
            DpRole::Pb,
            now,
        )
        .unwrap();
        assert_eq!(auth.curve, curve);
        assert_eq!(auth.smdp_oid, "2.999.10");
        assert_eq!(pb.smdp_oid, "2.999.10");
        assert_eq!(
            check_same_smdp_oid(&auth.cert, &pb.cert).unwrap(),
            "2.999.10"
        );
        // The second SGP.26 SM-DP+ (DP2) validates too, with its own OID.
        let auth2 = validate_dp_chain(
            &s,
            &read_sgp26(&format!("DPauth/CERT_S_SM_DP2auth_ECDSA_{v}.der")),
            DpRole::Auth,
            now,
        )
        .unwrap();
        assert_eq!(auth2.smdp_oid, "2.999.12");
        // The SGP.26 key files match the certificates.
        let key = rsp_crypto::SoftwareKey::from_pem(
            &std::fs::read_to_string(common::sgp26(&format!(
                "DPauth/SK_S_SM_DPauth_ECDSA_{v}.pem"
            )))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            rsp_crypto::KeyCustody::public_key(&key),
            auth.public_key.as_slice()
        );
    }
}

#[test]
fn sgp26_dptls_validates_before_expiry() {
    let now = common::utc(2026, 7, 1);
    for (v, _) in VARIANTS {
        let tls = validate_dp_chain(
            &store(v),
            &read_sgp26(&format!("DPtls/CERT_S_SM_DP_TLS_{v}.der")),
            DpRole::Tls,
            now,
        )
        .unwrap();
        assert_eq!(tls.dns_names, ["testsmdpplus1.example.com"]);
        assert_eq!(tls.smdp_oid, "2.999.10");
    }
}

#[test]
fn rejects_expired_sgp26_dptls() {
    let now = common::utc(2026, 8, 3);
    for (v, _) in VARIANTS {
        let err = validate_dp_chain(
            &store(v),
            &read_sgp26(&format!("DPtls/CERT_S_SM_DP_TLS_{v}.der")),
            DpRole::Tls,
            now,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                PkiError::Expired {
                    role: CertRole::DpTls,
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[test]
fn rejects_sgp26_dpauth_under_the_other_curves_ci() {
    let now = common::utc(2026, 1, 1);
    let err = validate_dp_chain(
        &store("NIST"),
        &read_sgp26("DPauth/CERT_S_SM_DPauth_ECDSA_BRP.der"),
        DpRole::Auth,
        now,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            PkiError::UnknownCi {
                role: CertRole::DpAuth,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_sgp26_dppb_as_dpauth() {
    let now = common::utc(2026, 1, 1);
    let err = validate_dp_chain(
        &store("NIST"),
        &read_sgp26("DPpb/CERT_S_SM_DPpb_ECDSA_NIST.der"),
        DpRole::Auth,
        now,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            PkiError::WrongRole {
                role: CertRole::DpAuth,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_mismatched_sgp26_smdp_oids() {
    let a = Certificate::from_der(&read_sgp26("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der")).unwrap();
    let b = Certificate::from_der(&read_sgp26("DPpb/CERT_S_SM_DP2pb_ECDSA_NIST.der")).unwrap();
    let err = check_same_smdp_oid(&a, &b).unwrap_err();
    assert_eq!(
        err,
        PkiError::SmdpOidMismatch {
            first: "2.999.10".into(),
            second: "2.999.12".into()
        }
    );
}

#[test]
fn rejects_tampered_sgp26_dpauth() {
    let now = common::utc(2026, 1, 1);
    let der = read_sgp26("DPauth/CERT_S_SM_DPauth_ECDSA_BRP.der");
    // Change the subject CN "TEST SM-DP+" to "TEST SM-DQ+".
    let bad = patch(&der, b"SM-DP+", b"SM-DQ+");
    let err = validate_dp_chain(&store("BRP"), &bad, DpRole::Auth, now).unwrap_err();
    assert_eq!(
        err,
        PkiError::InvalidSignature {
            role: CertRole::DpAuth
        }
    );
}
