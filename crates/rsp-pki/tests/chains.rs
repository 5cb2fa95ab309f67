//! Generated chains validate; every SGP.22 section 4.5.2.2 rule has a failing test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{patch, pki, pki_with_form};
use rsp_crypto::{Curve, KeyCustody, SoftwareKey};
use rsp_pki::{
    CertBuilder, CertRole, Certificate, DpRole, EumRangeForm, PkiError, TestPki, TrustStore,
    check_same_smdp_oid, dp_template, eid_check_digits_ok, eid_with_check_digits, encode_name,
    euicc_template, eum_template, ext, issue_euicc, oids, validate_dp_chain, validate_euicc_chain,
};
use time::{Duration, OffsetDateTime};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn cert(der: &[u8]) -> Certificate {
    Certificate::from_der(der).unwrap()
}

fn validate(p: &TestPki, eum: &[u8], euicc: &[u8]) -> Result<rsp_pki::ValidatedEuicc, PkiError> {
    validate_euicc_chain(&p.trust_store().unwrap(), eum, euicc, now())
}

/// An EUM template for `p` (same CI, fresh key), and the key.
fn eum_builder(p: &TestPki, form: EumRangeForm) -> (CertBuilder, SoftwareKey) {
    let key = SoftwareKey::generate(p.options.curve).unwrap();
    let b = eum_template(
        &cert(&p.ci.der),
        p.options.curve,
        key.public_key(),
        &p.options.eum_organization,
        &p.options.eum_oid,
        &[&p.eid[..8]],
        form,
    )
    .unwrap();
    (b, key)
}

/// An eUICC template under `p`'s EUM with a fresh key.
fn euicc_builder(p: &TestPki, eid: &str) -> CertBuilder {
    let key = SoftwareKey::generate(p.options.curve).unwrap();
    euicc_template(&cert(&p.eum.der), p.options.curve, key.public_key(), eid).unwrap()
}

fn dp_builder(p: &TestPki, role: DpRole) -> CertBuilder {
    let key = SoftwareKey::generate(p.options.curve).unwrap();
    dp_template(
        &cert(&p.ci.der),
        role,
        p.options.curve,
        key.public_key(),
        &p.options.smdp_address,
        &p.options.smdp_oid,
    )
    .unwrap()
}

fn expect_err<T: std::fmt::Debug>(r: Result<T, PkiError>) -> PkiError {
    r.expect_err("validation should fail")
}

// ----------------------------------------------------------------------------------------
// Positive
// ----------------------------------------------------------------------------------------

#[test]
fn generated_euicc_chain_validates_on_both_curves() {
    for curve in Curve::ALL {
        let p = pki(curve);
        let v = validate(&p, &p.eum.der, &p.euicc.der).unwrap();
        assert_eq!(v.eid, p.eid);
        assert_eq!(v.curve, curve);
        assert_eq!(v.public_key, p.euicc.key.public_key());
        assert_eq!(Some(v.ci_ski.as_slice()), cert(&p.ci.der).ski());
        assert_eq!(v.organization.as_deref(), Some("RSP Test EUM"));
        assert!(eid_check_digits_ok(&v.eid));
        assert_eq!(v.euicc.not_after(), rsp_pki::no_expiry());
    }
}

#[test]
fn generated_dp_chains_validate_on_both_curves() {
    for curve in Curve::ALL {
        let p = pki(curve);
        let s = p.trust_store().unwrap();
        let auth = validate_dp_chain(&s, &p.dpauth.der, DpRole::Auth, now()).unwrap();
        let pb = validate_dp_chain(&s, &p.dppb.der, DpRole::Pb, now()).unwrap();
        let tls = validate_dp_chain(&s, &p.dptls.der, DpRole::Tls, now()).unwrap();
        assert_eq!(
            check_same_smdp_oid(&auth.cert, &pb.cert).unwrap(),
            "2.999.10"
        );
        assert_eq!(tls.dns_names, ["testsmdpplus1.example.com"]);
        assert_eq!(
            tls.cert.common_name().as_deref(),
            Some("testsmdpplus1.example.com")
        );
        assert_eq!(auth.public_key, p.dpauth.key.public_key());
        for v in [&auth, &pb, &tls] {
            assert_eq!(v.curve, curve);
        }
    }
}

#[test]
fn generated_criticality_follows_the_profiles() {
    let p = pki(Curve::NistP256);
    let eum = cert(&p.eum.der);
    let tls = cert(&p.dptls.der);
    let auth = cert(&p.dpauth.der);
    let euicc = cert(&p.euicc.der);
    assert!(eum.policies().unwrap().critical);
    assert!(eum.key_usage().unwrap().critical);
    assert!(eum.basic_constraints().unwrap().critical);
    assert_eq!(eum.basic_constraints().unwrap().value.path_len, Some(0));
    assert!(!eum.permitted_eins().unwrap().critical);
    assert!(euicc.policies().unwrap().critical && euicc.key_usage().unwrap().critical);
    assert!(auth.policies().unwrap().critical);
    assert!(!tls.policies().unwrap().critical);
    assert!(tls.ext_key_usage().unwrap().critical);
    assert!(!tls.subject_alt_names().unwrap().critical);
}

#[test]
fn name_constraints_prefix_form_is_accepted() {
    for curve in Curve::ALL {
        let p = pki_with_form(curve, EumRangeForm::NameConstraintsPrefix);
        let eum = cert(&p.eum.der);
        assert!(eum.permitted_eins().is_none());
        let nc = eum.name_constraints().unwrap();
        assert!(nc.critical);
        assert_eq!(
            nc.value.permitted[0].serial_number.as_deref(),
            Some("89049032")
        );
        let v = validate(&p, &p.eum.der, &p.euicc.der).unwrap();
        assert_eq!(v.eid, p.eid);
    }
}

#[test]
fn permitted_eins_form_is_accepted() {
    let p = pki_with_form(Curve::BrainpoolP256r1, EumRangeForm::PermittedEins);
    assert_eq!(
        cert(&p.eum.der).permitted_eins().unwrap().value,
        ["89049032"]
    );
    validate(&p, &p.eum.der, &p.euicc.der).unwrap();
}

#[test]
fn eum_with_both_range_forms_requires_both() {
    let p = pki(Curve::NistP256);
    let (mut b, key) = eum_builder(&p, EumRangeForm::PermittedEins);
    b.set_extension(
        oids::EXT_NAME_CONSTRAINTS,
        true,
        ext::name_constraints_o(&[("RSP Test EUM", "89049032")]).unwrap(),
    );
    let eum_der = b.sign(&p.ci.key).unwrap();
    let eum = cert(&eum_der);
    let (ok, _) = issue_euicc(
        &eum,
        &key,
        &eid_with_check_digits("890490320000000000000000000777").unwrap(),
    )
    .unwrap();
    validate(&p, &eum_der, &ok).unwrap();
    // nameConstraints naming another IIN while permittedEins names the right one: refused.
    let (mut b, key) = eum_builder(&p, EumRangeForm::PermittedEins);
    b.set_extension(
        oids::EXT_NAME_CONSTRAINTS,
        true,
        ext::name_constraints_o(&[("RSP Test EUM", "89049099")]).unwrap(),
    );
    let eum_der = b.sign(&p.ci.key).unwrap();
    let (euicc, _) = issue_euicc(&cert(&eum_der), &key, &p.eid).unwrap();
    let err = expect_err(validate(&p, &eum_der, &euicc));
    assert!(matches!(err, PkiError::EidOutsideEumRange { .. }), "{err}");
}

#[test]
fn issue_euicc_under_existing_eum_validates() {
    for curve in Curve::ALL {
        let p = pki(curve);
        let eid = eid_with_check_digits("890490320000000000000000012345").unwrap();
        let (der, key) = issue_euicc(&cert(&p.eum.der), &p.eum.key, &eid).unwrap();
        let v = validate(&p, &p.eum.der, &der).unwrap();
        assert_eq!(v.eid, eid);
        assert_eq!(v.public_key, key.public_key());
        assert_eq!(key.curve(), curve);
    }
}

#[test]
fn custom_eid_sets_the_eum_range() {
    let mut o = rsp_pki::PkiOptions::new(Curve::NistP256);
    o.eid = Some(eid_with_check_digits("891234560000000000000000000042").unwrap());
    let p = rsp_pki::generate(o).unwrap();
    assert_eq!(
        cert(&p.eum.der).permitted_eins().unwrap().value,
        ["89123456"]
    );
    assert_eq!(validate(&p, &p.eum.der, &p.euicc.der).unwrap().eid, p.eid);
}

#[test]
fn trust_store_holds_several_cis_and_chooses_by_euicc_order() {
    let a = pki(Curve::NistP256);
    let b = pki(Curve::BrainpoolP256r1);
    let mut s = TrustStore::new();
    s.add_ci_der(&a.ci.der).unwrap();
    s.add_ci_pem(&b.ci.cert_pem()).unwrap();
    s.add_ci_der(&a.ci.der).unwrap(); // duplicate ignored
    assert_eq!(s.len(), 2);
    let ska = cert(&a.ci.der).ski().unwrap().to_vec();
    let skb = cert(&b.ci.der).ski().unwrap().to_vec();
    let unknown = vec![0u8; 20];
    assert_eq!(
        s.choose_ci(&[unknown.clone(), skb.clone(), ska.clone()])
            .unwrap()
            .ski(),
        Some(skb.as_slice())
    );
    assert_eq!(
        s.choose_ci(&[ska.clone(), skb.clone()]).unwrap().ski(),
        Some(ska.as_slice())
    );
    assert!(s.choose_ci(&[unknown]).is_none());
    assert_eq!(
        s.choose_ci_for(
            &[ska.clone(), skb.clone()],
            Some(Curve::BrainpoolP256r1),
            now()
        )
        .unwrap()
        .ski(),
        Some(skb.as_slice())
    );
    // Both chains validate against the combined store.
    validate_euicc_chain(&s, &a.eum.der, &a.euicc.der, now()).unwrap();
    validate_euicc_chain(&s, &b.eum.der, &b.euicc.der, now()).unwrap();
}

#[test]
fn write_to_and_load_dir_round_trip() {
    let p = pki(Curve::BrainpoolP256r1);
    let other = pki(Curve::NistP256);
    let dir = common::temp_dir("roundtrip");
    p.write_to(&dir).unwrap();
    for (c, k) in rsp_pki::LAYOUT {
        assert!(dir.join(c).is_file() && dir.join(k).is_file(), "{c} {k}");
    }
    std::fs::create_dir_all(dir.join(rsp_pki::EXTRA_CI_DIR)).unwrap();
    std::fs::write(
        dir.join(rsp_pki::EXTRA_CI_DIR).join("other.pem"),
        other.ci.cert_pem(),
    )
    .unwrap();
    let loaded = rsp_pki::load_dir(&dir).unwrap();
    assert_eq!(loaded.cis.len(), 2);
    assert_eq!(loaded.cis[0].der(), p.ci.der.as_slice());
    assert_eq!(loaded.dpauth.der, p.dpauth.der);
    assert_eq!(loaded.dptls.key.public_key(), p.dptls.key.public_key());
    assert!(loaded.ci_key.is_some());
    let euicc = loaded.euicc.as_ref().unwrap();
    let s = loaded.trust_store().unwrap();
    assert_eq!(s.len(), 2);
    validate_euicc_chain(&s, &loaded.eum.as_ref().unwrap().der, &euicc.der, now()).unwrap();
    validate_euicc_chain(&s, &other.eum.der, &other.euicc.der, now()).unwrap();
    // A production-like directory without CI key, EUM and eUICC still loads.
    for f in ["ci.key", "eum.pem", "eum.key", "euicc.pem", "euicc.key"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    let loaded = rsp_pki::load_dir(&dir).unwrap();
    assert!(loaded.ci_key.is_none() && loaded.eum.is_none() && loaded.euicc.is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rejects_key_file_that_does_not_match_certificate() {
    let p = pki(Curve::NistP256);
    let dir = common::temp_dir("mismatch");
    p.write_to(&dir).unwrap();
    std::fs::copy(dir.join("dppb.key"), dir.join("dpauth.key")).unwrap();
    let err = rsp_pki::load_dir(&dir).unwrap_err();
    assert!(matches!(err, PkiError::InvalidOption(_)), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eid_check_digits() {
    let eid = eid_with_check_digits("890490320000000000000000000001").unwrap();
    assert!(eid_check_digits_ok(&eid));
    let mut wrong = eid.clone().into_bytes();
    wrong[31] = if wrong[31] == b'9' {
        b'0'
    } else {
        wrong[31] + 1
    };
    assert!(!eid_check_digits_ok(std::str::from_utf8(&wrong).unwrap()));
    // The SGP.22 example EID (section 4.5.2.1.0.2) has valid check digits.
    assert!(eid_check_digits_ok("89049032123451234512345678901235"));
}

// ----------------------------------------------------------------------------------------
// Negative: EUM
// ----------------------------------------------------------------------------------------

#[test]
fn rejects_eum_without_role_policy() {
    let p = pki(Curve::NistP256);
    let (mut b, key) = eum_builder(&p, EumRangeForm::PermittedEins);
    b.remove_extension(oids::EXT_CERT_POLICIES);
    let eum = b.sign(&p.ci.key).unwrap();
    let (euicc, _) = issue_euicc(&cert(&eum), &key, &p.eid).unwrap();
    let err = expect_err(validate(&p, &eum, &euicc));
    assert!(
        matches!(
            err,
            PkiError::WrongRole {
                role: CertRole::Eum,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_eum_with_euicc_policy() {
    let p = pki(Curve::NistP256);
    let (mut b, key) = eum_builder(&p, EumRangeForm::PermittedEins);
    b.set_extension(
        oids::EXT_CERT_POLICIES,
        true,
        ext::policies(&[oids::ROLE_EUICC]).unwrap(),
    );
    let eum = b.sign(&p.ci.key).unwrap();
    let (euicc, _) = issue_euicc(&cert(&eum), &key, &p.eid).unwrap();
    let err = expect_err(validate(&p, &eum, &euicc));
    assert!(
        matches!(
            err,
            PkiError::WrongRole {
                role: CertRole::Eum,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_eum_not_ca() {
    let p = pki(Curve::NistP256);
    let (mut b, key) = eum_builder(&p, EumRangeForm::PermittedEins);
    b.set_extension(
        oids::EXT_BASIC_CONSTRAINTS,
        true,
        ext::basic_constraints(false, None),
    );
    let eum = b.sign(&p.ci.key).unwrap();
    let (euicc, _) = issue_euicc(&cert(&eum), &key, &p.eid).unwrap();
    let err = expect_err(validate(&p, &eum, &euicc));
    assert!(
        matches!(
            err,
            PkiError::BadBasicConstraints {
                role: CertRole::Eum,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_eum_without_path_len_zero() {
    let p = pki(Curve::NistP256);
    for path_len in [None, Some(1)] {
        let (mut b, key) = eum_builder(&p, EumRangeForm::PermittedEins);
        b.set_extension(
            oids::EXT_BASIC_CONSTRAINTS,
            true,
            ext::basic_constraints(true, path_len),
        );
        let eum = b.sign(&p.ci.key).unwrap();
        let (euicc, _) = issue_euicc(&cert(&eum), &key, &p.eid).unwrap();
        let err = expect_err(validate(&p, &eum, &euicc));
        assert!(
            matches!(
                err,
                PkiError::BadBasicConstraints {
                    role: CertRole::Eum,
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[test]
fn rejects_eum_without_key_cert_sign() {
    let p = pki(Curve::NistP256);
    let (mut b, key) = eum_builder(&p, EumRangeForm::PermittedEins);
    b.set_extension(oids::EXT_KEY_USAGE, true, ext::key_usage(&[0]));
    let eum = b.sign(&p.ci.key).unwrap();
    let (euicc, _) = issue_euicc(&cert(&eum), &key, &p.eid).unwrap();
    let err = expect_err(validate(&p, &eum, &euicc));
    assert!(
        matches!(
            err,
            PkiError::BadKeyUsage {
                role: CertRole::Eum,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_eum_without_eid_range() {
    let p = pki(Curve::NistP256);
    let (mut b, key) = eum_builder(&p, EumRangeForm::PermittedEins);
    b.remove_extension(oids::EXT_PERMITTED_EINS);
    let eum = b.sign(&p.ci.key).unwrap();
    let (euicc, _) = issue_euicc(&cert(&eum), &key, &p.eid).unwrap();
    assert_eq!(
        expect_err(validate(&p, &eum, &euicc)),
        PkiError::EumWithoutEidRange
    );
}

#[test]
fn rejects_bad_eum_signature() {
    let p = pki(Curve::BrainpoolP256r1);
    let (b, key) = eum_builder(&p, EumRangeForm::PermittedEins);
    // Signed by an impostor key on the right curve, but naming the real CI.
    let impostor = SoftwareKey::generate(Curve::BrainpoolP256r1).unwrap();
    let eum = b.sign(&impostor).unwrap();
    let (euicc, _) = issue_euicc(&cert(&eum), &key, &p.eid).unwrap();
    assert_eq!(
        expect_err(validate(&p, &eum, &euicc)),
        PkiError::InvalidSignature {
            role: CertRole::Eum
        }
    );
}

#[test]
fn rejects_eum_not_yet_valid() {
    let p = pki(Curve::NistP256);
    let (mut b, key) = eum_builder(&p, EumRangeForm::PermittedEins);
    b.not_before = now() + Duration::days(1);
    let eum = b.sign(&p.ci.key).unwrap();
    let (euicc, _) = issue_euicc(&cert(&eum), &key, &p.eid).unwrap();
    let err = expect_err(validate(&p, &eum, &euicc));
    assert!(
        matches!(
            err,
            PkiError::NotYetValid {
                role: CertRole::Eum,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_untrusted_ci() {
    let p = pki(Curve::NistP256);
    let other = pki(Curve::NistP256);
    let err = expect_err(validate_euicc_chain(
        &other.trust_store().unwrap(),
        &p.eum.der,
        &p.euicc.der,
        now(),
    ));
    assert!(
        matches!(
            err,
            PkiError::UnknownCi {
                role: CertRole::Eum,
                ..
            }
        ),
        "{err}"
    );
    let err = expect_err(validate_euicc_chain(
        &TrustStore::new(),
        &p.eum.der,
        &p.euicc.der,
        now(),
    ));
    assert!(matches!(err, PkiError::UnknownCi { .. }), "{err}");
}

#[test]
fn rejects_expired_ci() {
    let p = pki(Curve::NistP256);
    let future = now() + Duration::days(365 * 31);
    let err = expect_err(validate_euicc_chain(
        &p.trust_store().unwrap(),
        &p.eum.der,
        &p.euicc.der,
        future,
    ));
    assert!(
        matches!(
            err,
            PkiError::Expired {
                role: CertRole::Ci,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_non_ci_as_trust_anchor() {
    let p = pki(Curve::NistP256);
    let mut s = TrustStore::new();
    for der in [&p.eum.der, &p.dpauth.der, &p.euicc.der] {
        let err = s.add_ci_der(der).unwrap_err();
        assert!(matches!(err, PkiError::InvalidCi(_)), "{err}");
    }
    assert!(s.is_empty());
}

// ----------------------------------------------------------------------------------------
// Negative: eUICC
// ----------------------------------------------------------------------------------------

#[test]
fn rejects_eid_outside_eum_range() {
    let p = pki(Curve::NistP256);
    let eid = eid_with_check_digits("890490330000000000000000000001").unwrap();
    let (euicc, _) = issue_euicc(&cert(&p.eum.der), &p.eum.key, &eid).unwrap();
    assert_eq!(
        expect_err(validate(&p, &p.eum.der, &euicc)),
        PkiError::EidOutsideEumRange { eid }
    );
}

#[test]
fn rejects_eid_outside_eum_range_in_name_constraints_form() {
    let p = pki_with_form(Curve::BrainpoolP256r1, EumRangeForm::NameConstraintsPrefix);
    let eid = eid_with_check_digits("890490420000000000000000000001").unwrap();
    let (euicc, _) = issue_euicc(&cert(&p.eum.der), &p.eum.key, &eid).unwrap();
    assert_eq!(
        expect_err(validate(&p, &p.eum.der, &euicc)),
        PkiError::EidOutsideEumRange { eid }
    );
}

/// DER TLV with a short or long length (test helper; lengths < 64 KiB).
fn der(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match value.len() {
        n @ 0..=0x7f => out.push(n as u8),
        n @ 0x80..=0xff => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

/// nameConstraints with these permitted GeneralSubtree bases (already DER-encoded).
fn name_constraints_with(bases: &[Vec<u8>]) -> Vec<u8> {
    let subtrees: Vec<u8> = bases.iter().flat_map(|b| der(0x30, b)).collect();
    der(0x30, &der(0xA0, &subtrees))
}

/// A directoryName GeneralName ([4] EXPLICIT Name) from a DER Name.
fn directory_name(name: &[u8]) -> Vec<u8> {
    der(0xA4, name)
}

/// Validates `p`'s eUICC (same EID) under a fresh EUM whose nameConstraints is `nc`.
fn validate_with_eum_name_constraints(p: &TestPki, nc: Vec<u8>) -> Result<(), PkiError> {
    let (mut b, key) = eum_builder(p, EumRangeForm::NameConstraintsPrefix);
    b.set_extension(oids::EXT_NAME_CONSTRAINTS, true, nc);
    let eum_der = b.sign(&p.ci.key).unwrap();
    let (euicc, _) = issue_euicc(&cert(&eum_der), &key, &p.eid).unwrap();
    validate(p, &eum_der, &euicc).map(|_| ())
}

#[test]
fn rejects_eum_name_constraints_without_directory_name() {
    let p = pki_with_form(Curve::NistP256, EumRangeForm::NameConstraintsPrefix);
    // Only a dNSName subtree: it says nothing about EIDs (before: every EID was accepted).
    let nc = name_constraints_with(&[der(0x82, b"example.com")]);
    let err = expect_err(validate_with_eum_name_constraints(&p, nc));
    assert_eq!(err, PkiError::EumWithoutEidRange);
    // Only excluded subtrees: no permitted range either.
    let excluded = der(
        0x30,
        &der(
            0xA1,
            &der(
                0x30,
                &directory_name(&encode_name(&[(oids::AT_SERIAL_NUMBER, "89049099")]).unwrap()),
            ),
        ),
    );
    let err = expect_err(validate_with_eum_name_constraints(&p, excluded));
    assert_eq!(err, PkiError::EumWithoutEidRange);
}

#[test]
fn rejects_eum_name_constraints_with_empty_serial_prefix() {
    let p = pki_with_form(Curve::NistP256, EumRangeForm::NameConstraintsPrefix);
    let org = p.options.eum_organization.clone();
    let nc = ext::name_constraints_o(&[(&org, "")]).unwrap();
    let err = expect_err(validate_with_eum_name_constraints(&p, nc));
    assert_eq!(err, PkiError::EumWithoutEidRange);
}

#[test]
fn rejects_eum_name_constraints_subtree_without_serial_number() {
    let p = pki_with_form(Curve::NistP256, EumRangeForm::NameConstraintsPrefix);
    let org = p.options.eum_organization.clone();
    // One good subtree plus one naming only the organization (which would permit any EID).
    let nc = name_constraints_with(&[
        directory_name(
            &encode_name(&[(oids::AT_O, &org), (oids::AT_SERIAL_NUMBER, &p.eid[..8])]).unwrap(),
        ),
        directory_name(&encode_name(&[(oids::AT_O, &org)]).unwrap()),
    ]);
    let err = expect_err(validate_with_eum_name_constraints(&p, nc));
    assert_eq!(err, PkiError::EumWithoutEidRange);
}

/// `O=<org>, serialNumber=<serial>` with the serialNumber in `string_tag`/`encoded`.
fn name_with_serial(org: &str, string_tag: u8, encoded: &[u8]) -> Vec<u8> {
    let o = der(
        0x31,
        &der(
            0x30,
            &[der(0x06, &[0x55, 0x04, 0x0A]), der(0x0C, org.as_bytes())].concat(),
        ),
    );
    let sn = der(
        0x31,
        &der(
            0x30,
            &[der(0x06, &[0x55, 0x04, 0x05]), der(string_tag, encoded)].concat(),
        ),
    );
    der(0x30, &[o, sn].concat())
}

#[test]
fn rejects_eum_name_constraints_with_bmpstring_serial() {
    let p = pki_with_form(Curve::NistP256, EumRangeForm::NameConstraintsPrefix);
    let org = p.options.eum_organization.clone();
    // The right IIN, but as BMPString (UTF-16BE) and as UniversalString (UTF-32BE): before,
    // the value was dropped and the subtree put no limit on the EID.
    let iin = &p.eid[..8];
    let bmp: Vec<u8> = iin.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let universal: Vec<u8> = iin
        .chars()
        .flat_map(|c| u32::from(c).to_be_bytes())
        .collect();
    for (tag, encoded) in [(0x1E, bmp), (0x1C, universal)] {
        let nc = name_constraints_with(&[directory_name(&name_with_serial(&org, tag, &encoded))]);
        let err = expect_err(validate_with_eum_name_constraints(&p, nc));
        assert!(
            matches!(
                err,
                PkiError::Malformed {
                    role: Some(CertRole::Eum),
                    ..
                }
            ),
            "tag {tag:#x}: {err}"
        );
    }
    // The same subtree as UTF8String is accepted (the helper itself is sound).
    let nc = name_constraints_with(&[directory_name(&name_with_serial(
        &org,
        0x0C,
        iin.as_bytes(),
    ))]);
    validate_with_eum_name_constraints(&p, nc).unwrap();
}

#[test]
fn name_constraints_other_forms_are_ignored_for_euicc_without_san() {
    let p = pki_with_form(Curve::NistP256, EumRangeForm::NameConstraintsPrefix);
    let org = p.options.eum_organization.clone();
    let good = directory_name(
        &encode_name(&[(oids::AT_O, &org), (oids::AT_SERIAL_NUMBER, &p.eid[..8])]).unwrap(),
    );
    let nc = name_constraints_with(&[good.clone(), der(0x82, b"example.com")]);
    validate_with_eum_name_constraints(&p, nc).unwrap();
    // A wrong IIN is still refused when other forms are present.
    let wrong = directory_name(
        &encode_name(&[(oids::AT_O, &org), (oids::AT_SERIAL_NUMBER, "89049099")]).unwrap(),
    );
    let nc = name_constraints_with(&[wrong, der(0x82, b"example.com")]);
    let err = expect_err(validate_with_eum_name_constraints(&p, nc));
    assert!(matches!(err, PkiError::EidOutsideEumRange { .. }), "{err}");
}

#[test]
fn rejects_euicc_organization_not_permitted_by_name_constraints() {
    let p = pki_with_form(Curve::NistP256, EumRangeForm::NameConstraintsPrefix);
    let mut b = euicc_builder(&p, &p.eid);
    b.subject = encode_name(&[
        (oids::AT_O, "Somebody Else"),
        (oids::AT_SERIAL_NUMBER, &p.eid),
    ])
    .unwrap();
    let euicc = b.sign(&p.eum.key).unwrap();
    let err = expect_err(validate(&p, &p.eum.der, &euicc));
    assert!(
        matches!(err, PkiError::OrganizationNotPermitted { .. }),
        "{err}"
    );
}

#[test]
fn rejects_expired_euicc_cert() {
    let p = pki(Curve::NistP256);
    let mut b = euicc_builder(&p, &p.eid);
    b.not_before = now() - Duration::days(10);
    b.not_after = now() - Duration::days(1);
    let euicc = b.sign(&p.eum.key).unwrap();
    let err = expect_err(validate(&p, &p.eum.der, &euicc));
    assert!(
        matches!(
            err,
            PkiError::Expired {
                role: CertRole::Euicc,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_bad_euicc_signature() {
    let p = pki(Curve::BrainpoolP256r1);
    // Tamper the TBS: change the last EID digit in the subject (still in range).
    let eid = p.eid.as_bytes();
    let mut tampered_eid = eid.to_vec();
    tampered_eid[31] = if eid[31] == b'9' { b'0' } else { eid[31] + 1 };
    let bad = patch(&p.euicc.der, eid, &tampered_eid);
    assert_eq!(
        expect_err(validate(&p, &p.eum.der, &bad)),
        PkiError::InvalidSignature {
            role: CertRole::Euicc
        }
    );
}

#[test]
fn rejects_euicc_with_wrong_key_usage() {
    let p = pki(Curve::NistP256);
    for bits in [&[5u8][..], &[0, 5], &[2]] {
        let mut b = euicc_builder(&p, &p.eid);
        b.set_extension(oids::EXT_KEY_USAGE, true, ext::key_usage(bits));
        let euicc = b.sign(&p.eum.key).unwrap();
        let err = expect_err(validate(&p, &p.eum.der, &euicc));
        assert!(
            matches!(
                err,
                PkiError::BadKeyUsage {
                    role: CertRole::Euicc,
                    ..
                }
            ),
            "{bits:?}: {err}"
        );
    }
}

#[test]
fn rejects_euicc_without_key_usage() {
    let p = pki(Curve::NistP256);
    let mut b = euicc_builder(&p, &p.eid);
    b.remove_extension(oids::EXT_KEY_USAGE);
    let euicc = b.sign(&p.eum.key).unwrap();
    let err = expect_err(validate(&p, &p.eum.der, &euicc));
    assert!(
        matches!(
            err,
            PkiError::MissingExtension {
                role: CertRole::Euicc,
                extension: "keyUsage"
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_euicc_that_is_a_ca() {
    let p = pki(Curve::NistP256);
    let mut b = euicc_builder(&p, &p.eid);
    b.set_extension(
        oids::EXT_BASIC_CONSTRAINTS,
        true,
        ext::basic_constraints(true, None),
    );
    let euicc = b.sign(&p.eum.key).unwrap();
    let err = expect_err(validate(&p, &p.eum.der, &euicc));
    assert!(
        matches!(
            err,
            PkiError::BadBasicConstraints {
                role: CertRole::Euicc,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_euicc_without_role_policy() {
    let p = pki(Curve::NistP256);
    let mut b = euicc_builder(&p, &p.eid);
    b.set_extension(
        oids::EXT_CERT_POLICIES,
        true,
        ext::policies(&[oids::ROLE_DP_AUTH]).unwrap(),
    );
    let euicc = b.sign(&p.eum.key).unwrap();
    let err = expect_err(validate(&p, &p.eum.der, &euicc));
    assert!(
        matches!(
            err,
            PkiError::WrongRole {
                role: CertRole::Euicc,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_curve_mismatch_in_chain() {
    let p = pki(Curve::NistP256);
    let bp = SoftwareKey::generate(Curve::BrainpoolP256r1).unwrap();
    let euicc = euicc_template(
        &cert(&p.eum.der),
        Curve::BrainpoolP256r1,
        bp.public_key(),
        &p.eid,
    )
    .unwrap()
    .sign(&p.eum.key)
    .unwrap();
    let err = expect_err(validate(&p, &p.eum.der, &euicc));
    assert_eq!(
        err,
        PkiError::CurveMismatch {
            role: CertRole::Euicc,
            expected: Curve::NistP256,
            found: Curve::BrainpoolP256r1
        }
    );
}

#[test]
fn rejects_euicc_with_invalid_eid() {
    let p = pki(Curve::NistP256);
    for eid in [
        "8904903200000000000000000000001",
        "8904903200000000000000000000000A",
    ] {
        let b = euicc_builder(&p, &p.eid);
        let mut b = b.clone();
        b.subject =
            encode_name(&[(oids::AT_O, "RSP Test EUM"), (oids::AT_SERIAL_NUMBER, eid)]).unwrap();
        let euicc = b.sign(&p.eum.key).unwrap();
        let err = expect_err(validate(&p, &p.eum.der, &euicc));
        assert!(matches!(err, PkiError::InvalidEid(_)), "{err}");
    }
}

#[test]
fn rejects_euicc_with_wrong_authority_key_identifier() {
    let p = pki(Curve::NistP256);
    let mut b = euicc_builder(&p, &p.eid);
    b.set_extension(oids::EXT_AKI, false, ext::aki(&[0x42; 20]));
    let euicc = b.sign(&p.eum.key).unwrap();
    let err = expect_err(validate(&p, &p.eum.der, &euicc));
    assert!(
        matches!(
            err,
            PkiError::IssuerMismatch {
                role: CertRole::Euicc,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_euicc_issued_by_another_eum() {
    let p = pki(Curve::NistP256);
    let (b, key) = eum_builder(&p, EumRangeForm::PermittedEins);
    let eum2 = b.sign(&p.ci.key).unwrap();
    let (euicc2, _) = issue_euicc(&cert(&eum2), &key, &p.eid).unwrap();
    validate(&p, &eum2, &euicc2).unwrap();
    let err = expect_err(validate(&p, &p.eum.der, &euicc2));
    assert!(
        matches!(
            err,
            PkiError::IssuerMismatch {
                role: CertRole::Euicc,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_euicc_without_subject_key_identifier() {
    let p = pki(Curve::NistP256);
    let mut b = euicc_builder(&p, &p.eid);
    b.remove_extension(oids::EXT_SKI);
    let euicc = b.sign(&p.eum.key).unwrap();
    let err = expect_err(validate(&p, &p.eum.der, &euicc));
    assert!(
        matches!(
            err,
            PkiError::MissingExtension {
                role: CertRole::Euicc,
                extension: "subjectKeyIdentifier"
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_unknown_critical_extension() {
    let p = pki(Curve::NistP256);
    let mut b = euicc_builder(&p, &p.eid);
    b.set_extension("1.3.6.1.4.1.99999.1", true, vec![0x05, 0x00]);
    let euicc = b.sign(&p.eum.key).unwrap();
    let err = expect_err(validate(&p, &p.eum.der, &euicc));
    assert!(
        matches!(
            err,
            PkiError::UnsupportedCriticalExtension {
                role: CertRole::Euicc,
                ..
            }
        ),
        "{err}"
    );
    // The same extension non-critical is ignored.
    let mut b = euicc_builder(&p, &p.eid);
    b.set_extension("1.3.6.1.4.1.99999.1", false, vec![0x05, 0x00]);
    validate(&p, &p.eum.der, &b.sign(&p.eum.key).unwrap()).unwrap();
}

// ----------------------------------------------------------------------------------------
// Negative: encoding
// ----------------------------------------------------------------------------------------

#[test]
fn rejects_truncated_certificate() {
    let p = pki(Curve::NistP256);
    for cut in [1, 10, p.euicc.der.len() / 2] {
        let bad = &p.euicc.der[..p.euicc.der.len() - cut];
        let err = expect_err(validate(&p, &p.eum.der, bad));
        assert!(
            matches!(
                err,
                PkiError::Malformed {
                    role: Some(CertRole::Euicc),
                    ..
                }
            ),
            "{err}"
        );
    }
    let err = expect_err(validate(&p, &[], &p.euicc.der));
    assert!(
        matches!(
            err,
            PkiError::Malformed {
                role: Some(CertRole::Eum),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_trailing_bytes_after_certificate() {
    let p = pki(Curve::NistP256);
    let mut bad = p.euicc.der.clone();
    bad.push(0x00);
    let err = expect_err(validate(&p, &p.eum.der, &bad));
    assert!(
        matches!(
            err,
            PkiError::Malformed {
                role: Some(CertRole::Euicc),
                ..
            }
        ),
        "{err}"
    );
    let mut bad = p.dpauth.der.clone();
    bad.extend_from_slice(&[0x05, 0x00]);
    let err = expect_err(validate_dp_chain(
        &p.trust_store().unwrap(),
        &bad,
        DpRole::Auth,
        now(),
    ));
    assert!(
        matches!(
            err,
            PkiError::Malformed {
                role: Some(CertRole::DpAuth),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_unexpected_signature_algorithm() {
    let p = pki(Curve::NistP256);
    // ecdsa-with-SHA256 (..04 03 02) -> ecdsa-with-SHA384 (..04 03 03) in the outer
    // signatureAlgorithm (the last occurrence).
    let alg = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];
    let pos = p
        .euicc
        .der
        .windows(alg.len())
        .rposition(|w| w == alg)
        .unwrap();
    let mut bad = p.euicc.der.clone();
    bad[pos + alg.len() - 1] = 0x03;
    let err = expect_err(validate(&p, &p.eum.der, &bad));
    assert!(
        matches!(
            err,
            PkiError::UnsupportedAlgorithm {
                role: Some(CertRole::Euicc),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_pem_with_wrong_label() {
    let p = pki(Curve::NistP256);
    let pem = p.ci.cert_pem().replace("CERTIFICATE", "X509 CRL");
    assert!(matches!(
        Certificate::from_pem(&pem),
        Err(PkiError::Malformed { .. })
    ));
    assert_eq!(
        Certificate::from_pem(&p.ci.cert_pem()).unwrap().der(),
        p.ci.der.as_slice()
    );
}

// ----------------------------------------------------------------------------------------
// Negative: SM-DP+
// ----------------------------------------------------------------------------------------

#[test]
fn rejects_dpauth_with_dppb_policy() {
    let p = pki(Curve::BrainpoolP256r1);
    let s = p.trust_store().unwrap();
    let err = expect_err(validate_dp_chain(&s, &p.dppb.der, DpRole::Auth, now()));
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
    let err = expect_err(validate_dp_chain(&s, &p.dpauth.der, DpRole::Pb, now()));
    assert!(
        matches!(
            err,
            PkiError::WrongRole {
                role: CertRole::DpPb,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_dp_with_both_auth_and_pb_policies() {
    let p = pki(Curve::NistP256);
    let mut b = dp_builder(&p, DpRole::Auth);
    b.set_extension(
        oids::EXT_CERT_POLICIES,
        true,
        ext::policies(&[oids::ROLE_DP_AUTH, oids::ROLE_DP_PB]).unwrap(),
    );
    let der = b.sign(&p.ci.key).unwrap();
    let err = expect_err(validate_dp_chain(
        &p.trust_store().unwrap(),
        &der,
        DpRole::Auth,
        now(),
    ));
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
fn rejects_dpauth_without_smdp_oid() {
    let p = pki(Curve::NistP256);
    let mut b = dp_builder(&p, DpRole::Auth);
    b.remove_extension(oids::EXT_SAN);
    let der = b.sign(&p.ci.key).unwrap();
    let err = expect_err(validate_dp_chain(
        &p.trust_store().unwrap(),
        &der,
        DpRole::Auth,
        now(),
    ));
    assert!(
        matches!(
            err,
            PkiError::BadSmdpOid {
                role: CertRole::DpAuth,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_mismatched_smdp_oids() {
    let p = pki(Curve::NistP256);
    let mut b = dp_builder(&p, DpRole::Pb);
    b.set_extension(
        oids::EXT_SAN,
        false,
        ext::subject_alt_name(&[], &["2.999.11"]).unwrap(),
    );
    let pb = b.sign(&p.ci.key).unwrap();
    let s = p.trust_store().unwrap();
    let pb = validate_dp_chain(&s, &pb, DpRole::Pb, now()).unwrap();
    let auth = validate_dp_chain(&s, &p.dpauth.der, DpRole::Auth, now()).unwrap();
    assert_eq!(
        check_same_smdp_oid(&auth.cert, &pb.cert).unwrap_err(),
        PkiError::SmdpOidMismatch {
            first: "2.999.10".into(),
            second: "2.999.11".into()
        }
    );
}

#[test]
fn rejects_dptls_with_wrong_extended_key_usage() {
    let p = pki(Curve::NistP256);
    for purposes in [
        &[oids::KP_SERVER_AUTH][..],
        &[
            oids::KP_SERVER_AUTH,
            oids::KP_CLIENT_AUTH,
            "1.3.6.1.5.5.7.3.4",
        ],
    ] {
        let mut b = dp_builder(&p, DpRole::Tls);
        b.set_extension(
            oids::EXT_EXT_KEY_USAGE,
            true,
            ext::ext_key_usage(purposes).unwrap(),
        );
        let der = b.sign(&p.ci.key).unwrap();
        let err = expect_err(validate_dp_chain(
            &p.trust_store().unwrap(),
            &der,
            DpRole::Tls,
            now(),
        ));
        assert!(
            matches!(
                err,
                PkiError::BadExtendedKeyUsage {
                    role: CertRole::DpTls,
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[test]
fn rejects_dptls_without_dns_name() {
    let p = pki(Curve::NistP256);
    let mut b = dp_builder(&p, DpRole::Tls);
    b.set_extension(
        oids::EXT_SAN,
        false,
        ext::subject_alt_name(&[], &["2.999.10"]).unwrap(),
    );
    let der = b.sign(&p.ci.key).unwrap();
    let err = expect_err(validate_dp_chain(
        &p.trust_store().unwrap(),
        &der,
        DpRole::Tls,
        now(),
    ));
    assert_eq!(
        err,
        PkiError::MissingDnsName {
            role: CertRole::DpTls
        }
    );
}

#[test]
fn rejects_dptls_with_wrong_policy_but_accepts_absent_policy() {
    let p = pki(Curve::NistP256);
    let s = p.trust_store().unwrap();
    let mut b = dp_builder(&p, DpRole::Tls);
    b.set_extension(
        oids::EXT_CERT_POLICIES,
        false,
        ext::policies(&[oids::ROLE_DP_AUTH]).unwrap(),
    );
    let err = expect_err(validate_dp_chain(
        &s,
        &b.sign(&p.ci.key).unwrap(),
        DpRole::Tls,
        now(),
    ));
    assert!(
        matches!(
            err,
            PkiError::WrongRole {
                role: CertRole::DpTls,
                ..
            }
        ),
        "{err}"
    );
    // SGP.22 section 4.5.2.2: the policy of CERT.DP.TLS is optional.
    b.remove_extension(oids::EXT_CERT_POLICIES);
    validate_dp_chain(&s, &b.sign(&p.ci.key).unwrap(), DpRole::Tls, now()).unwrap();
}

#[test]
fn rejects_expired_dptls() {
    let p = pki(Curve::BrainpoolP256r1);
    let later = now() + Duration::days(365 * 6);
    let err = expect_err(validate_dp_chain(
        &p.trust_store().unwrap(),
        &p.dptls.der,
        DpRole::Tls,
        later,
    ));
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

#[test]
fn rejects_dpauth_signed_by_untrusted_ci() {
    let p = pki(Curve::NistP256);
    let other = pki(Curve::NistP256);
    let err = expect_err(validate_dp_chain(
        &other.trust_store().unwrap(),
        &p.dpauth.der,
        DpRole::Auth,
        now(),
    ));
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
fn errors_name_the_failing_certificate() {
    assert_eq!(PkiError::EumWithoutEidRange.role(), Some(CertRole::Eum));
    assert_eq!(
        PkiError::InvalidSignature {
            role: CertRole::DpPb
        }
        .role(),
        Some(CertRole::DpPb)
    );
    assert_eq!(
        PkiError::SmdpOidMismatch {
            first: "1.2".into(),
            second: "1.3".into()
        }
        .role(),
        None
    );
}
