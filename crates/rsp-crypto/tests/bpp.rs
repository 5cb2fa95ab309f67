//! Builder -> opener round trips on both curves and all protection modes, and the
//! `rejects_*` cases mapped to ProfileInstallationResult error reasons.

use rsp_asn1::bpp::{BoundProfilePackage, StoreMetadataRequest};
use rsp_crypto::bpp::{
    BppCommandId, BppParams, BuiltBpp, ErrorReason, OpenParams, ProfileProtection,
    ProtectedProfile, build_bpp, open_bpp,
};
use rsp_crypto::kdf::SessionKeys;
use rsp_crypto::otk::{AgreementKey, EphemeralKey};
use rsp_crypto::{Curve, KeyCustody, SoftwareKey};

const EID: [u8; 16] = [
    0x89, 0x04, 0x90, 0x32, 0x12, 0x34, 0x51, 0x23, 0x45, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x35,
];
const TID: [u8; 16] = [0x42; 16];

fn fake_profile(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

/// A StoreMetadata with a 1 KB icon: more than one `88` segment.
fn big_store_metadata() -> Vec<u8> {
    let hex = "bf252d5a0a98001032547698103214910947534d415f54455354921147534d415f544553545f50524f46494c45950100";
    let der = hex::decode(hex).expect("hex");
    let mut smr = StoreMetadataRequest::decode(&der).expect("smr");
    smr.icon_type = Some(1);
    smr.icon = Some(vec![0xA5; 1024]);
    let out = smr.encode();
    assert!(out.len() > 1008);
    out
}

struct Fixture {
    curve: Curve,
    dp_pb: SoftwareKey,
    euicc_otk: Option<EphemeralKey>,
    euicc_otpk: Vec<u8>,
    store_metadata: Vec<u8>,
    upp: Vec<u8>,
}

impl Fixture {
    fn new(curve: Curve) -> Fixture {
        let euicc_otk = EphemeralKey::generate(curve).expect("otk");
        let euicc_otpk = euicc_otk.public_key().to_vec();
        Fixture {
            curve,
            dp_pb: SoftwareKey::generate(curve).expect("dppb"),
            euicc_otk: Some(euicc_otk),
            euicc_otpk,
            store_metadata: big_store_metadata(),
            upp: fake_profile(20 * 1024),
        }
    }

    fn params(&self) -> BppParams<'_> {
        BppParams {
            dp_pb: &self.dp_pb,
            transaction_id: &TID,
            euicc_otpk: &self.euicc_otpk,
            eid: &EID,
            host_id: b"mahlzeit",
            configure_isdp: &[0xBF, 0x24, 0x00],
            store_metadata: &self.store_metadata,
        }
    }

    fn build(&self, mode: ProfileProtection<'_>) -> BuiltBpp {
        build_bpp(&self.params(), mode, None).expect("build")
    }

    fn open_params(&self) -> OpenParams<'_> {
        OpenParams {
            curve: self.curve,
            dp_pb_public: self.dp_pb.public_key(),
            euicc_otpk: &self.euicc_otpk,
            eid: &EID,
            expected_transaction_id: Some(&TID),
        }
    }

    fn open(
        &mut self,
        der: &[u8],
    ) -> Result<rsp_crypto::bpp::OpenedBpp, rsp_crypto::bpp::BppError> {
        let otk = self.euicc_otk.take().expect("one-time key already used");
        open_bpp(der, &self.open_params(), AgreementKey::OneTime(otk))
    }
}

#[test]
fn round_trip_both_curves_all_modes() {
    for curve in Curve::ALL {
        for mode in 0..3 {
            let mut fx = Fixture::new(curve);
            let pre = ProtectedProfile::protect(&fx.upp, Some(SessionKeys::random().expect("ppk")))
                .expect("pre");
            let protection = match mode {
                0 => ProfileProtection::SessionKeys { upp: &fx.upp },
                1 => ProfileProtection::RandomPpk { upp: &fx.upp },
                _ => ProfileProtection::PreProtected(&pre),
            };
            let built = fx.build(protection);
            assert_eq!(built.smdp_otpk.len(), 65);
            let bpp = BoundProfilePackage::decode(&built.der).expect("decode");
            assert!(
                bpp.sequence_of_88.len() >= 2,
                "StoreMetadata must span several 88 segments"
            );
            assert!(bpp.sequence_of_86.len() >= 21);
            assert!(
                bpp.sequence_of_86
                    .iter()
                    .chain(&bpp.sequence_of_88)
                    .all(|s| s.len() <= 1020)
            );
            assert_eq!(bpp.second_sequence_of_87.is_some(), mode != 0);
            assert_eq!(
                bpp.initialise_secure_channel.smdp_otpk,
                built.smdp_otpk.as_slice()
            );

            let opened = fx.open(&built.der).expect("open");
            assert_eq!(opened.configure_isdp, [0xBF, 0x24, 0x00]);
            assert_eq!(opened.store_metadata, fx.store_metadata);
            assert_eq!(opened.upp.as_slice(), fx.upp.as_slice());
            assert_eq!(opened.transaction_id, TID);
            assert_eq!(opened.ppk.is_some(), mode != 0);
            if mode == 2 {
                assert_eq!(opened.ppk.as_ref(), Some(pre.ppk()));
            }
        }
    }
}

#[test]
fn supplied_one_time_key_is_reused() {
    let fx = Fixture::new(Curve::NistP256);
    let stored = SoftwareKey::generate(Curve::NistP256).expect("stored otk");
    let a = build_bpp(
        &fx.params(),
        ProfileProtection::SessionKeys { upp: &fx.upp },
        Some(AgreementKey::Custody(&stored)),
    )
    .expect("a");
    let b = build_bpp(
        &fx.params(),
        ProfileProtection::SessionKeys { upp: &fx.upp },
        Some(AgreementKey::Custody(&stored)),
    )
    .expect("b");
    assert_eq!(a.smdp_otpk, stored.public_key());
    assert_eq!(a.smdp_otpk, b.smdp_otpk);
    // Same keys, so the segments are identical; only smdpSign (randomised ECDSA) differs.
    let (da, db) = (
        BoundProfilePackage::decode(&a.der).expect("a"),
        BoundProfilePackage::decode(&b.der).expect("b"),
    );
    assert_eq!(da.sequence_of_86, db.sequence_of_86);
}

fn first_error(fx: &mut Fixture, der: &[u8]) -> (BppCommandId, ErrorReason) {
    let e = fx.open(der).expect_err("must be refused");
    (e.command, e.reason)
}

/// Rebuild a BPP after modifying its parts.
fn rebuild(
    der: &[u8],
    f: impl FnOnce(&mut Vec<Vec<u8>>, &mut Vec<Vec<u8>>, &mut Vec<Vec<u8>>),
) -> Vec<u8> {
    let bpp = BoundProfilePackage::decode(der).expect("decode");
    let mut s87: Vec<Vec<u8>> = bpp
        .first_sequence_of_87
        .iter()
        .map(|s| s.to_vec())
        .collect();
    let mut s88: Vec<Vec<u8>> = bpp.sequence_of_88.iter().map(|s| s.to_vec()).collect();
    let mut s86: Vec<Vec<u8>> = bpp.sequence_of_86.iter().map(|s| s.to_vec()).collect();
    f(&mut s87, &mut s88, &mut s86);
    BoundProfilePackage {
        initialise_secure_channel: bpp.initialise_secure_channel,
        first_sequence_of_87: s87.iter().map(Vec::as_slice).collect(),
        sequence_of_88: s88.iter().map(Vec::as_slice).collect(),
        second_sequence_of_87: None,
        sequence_of_86: s86.iter().map(Vec::as_slice).collect(),
    }
    .encode()
}

#[test]
fn rejects_tampered_mac_with_scp03t_security_error() {
    for curve in Curve::ALL {
        let mut fx = Fixture::new(curve);
        let built = fx.build(ProfileProtection::SessionKeys { upp: &fx.upp });
        let der = rebuild(&built.der, |_, _, s86| {
            let seg = &mut s86[3];
            let n = seg.len();
            seg[n - 1] ^= 0x01;
        });
        assert_eq!(
            first_error(&mut fx, &der),
            (
                BppCommandId::LoadProfileElements,
                ErrorReason::Scp03tSecurityError
            )
        );
    }
}

#[test]
fn rejects_tampered_ciphertext_and_metadata() {
    let mut fx = Fixture::new(Curve::NistP256);
    let built = fx.build(ProfileProtection::SessionKeys { upp: &fx.upp });
    let der = rebuild(&built.der, |_, s88, _| s88[0][10] ^= 0x40);
    assert_eq!(
        first_error(&mut fx, &der),
        (
            BppCommandId::StoreMetadata,
            ErrorReason::Scp03tSecurityError
        )
    );
}

#[test]
fn rejects_reordered_segments() {
    let mut fx = Fixture::new(Curve::NistP256);
    let built = fx.build(ProfileProtection::SessionKeys { upp: &fx.upp });
    let der = rebuild(&built.der, |_, _, s86| s86.swap(0, 1));
    assert_eq!(
        first_error(&mut fx, &der),
        (
            BppCommandId::LoadProfileElements,
            ErrorReason::Scp03tSecurityError
        )
    );
}

#[test]
fn rejects_wrong_smdp_sign() {
    for curve in Curve::ALL {
        let mut fx = Fixture::new(curve);
        let built = fx.build(ProfileProtection::SessionKeys { upp: &fx.upp });
        let mut der = built.der.clone();
        // Flip a byte of smdpSign (5F37 40 ..).
        let pos = der
            .windows(3)
            .position(|w| w == [0x5F, 0x37, 0x40])
            .expect("smdpSign")
            + 10;
        der[pos] ^= 0x01;
        assert_eq!(
            first_error(&mut fx, &der),
            (
                BppCommandId::InitialiseSecureChannel,
                ErrorReason::InvalidSignature
            )
        );
    }
}

#[test]
fn rejects_signature_by_another_key() {
    let mut fx = Fixture::new(Curve::BrainpoolP256r1);
    let built = fx.build(ProfileProtection::SessionKeys { upp: &fx.upp });
    fx.dp_pb = SoftwareKey::generate(Curve::BrainpoolP256r1).expect("other");
    assert_eq!(
        first_error(&mut fx, &built.der),
        (
            BppCommandId::InitialiseSecureChannel,
            ErrorReason::InvalidSignature
        )
    );
}

#[test]
fn rejects_wrong_transaction_id() {
    let mut fx = Fixture::new(Curve::NistP256);
    let built = fx.build(ProfileProtection::SessionKeys { upp: &fx.upp });
    let otk = fx.euicc_otk.take().expect("otk");
    let mut p = fx.open_params();
    p.expected_transaction_id = Some(&[1, 2, 3]);
    let e = open_bpp(&built.der, &p, AgreementKey::OneTime(otk)).expect_err("refused");
    assert_eq!(e.reason, ErrorReason::InvalidTransactionId);
}

#[test]
fn rejects_truncated_segment() {
    let mut fx = Fixture::new(Curve::NistP256);
    let built = fx.build(ProfileProtection::SessionKeys { upp: &fx.upp });
    // A segment cut short but re-wrapped as a well-formed TLV: ciphertext not whole blocks.
    let der = rebuild(&built.der, |_, _, s86| {
        let seg = &s86[0];
        let body = &seg[4..seg.len() - 9];
        let mut short = Vec::new();
        rsp_asn1::tlv::write_tlv(&mut short, rsp_asn1::Tag(0x86), body);
        s86[0] = short;
    });
    assert_eq!(
        first_error(&mut fx, &der),
        (
            BppCommandId::LoadProfileElements,
            ErrorReason::Scp03tStructureError
        )
    );
    // And a BPP cut in the middle of the 86 sequence does not decode at all.
    let mut fx = Fixture::new(Curve::NistP256);
    let built = fx.build(ProfileProtection::SessionKeys { upp: &fx.upp });
    let cut = &built.der[..built.der.len() - 100];
    assert_eq!(
        first_error(&mut fx, cut).1,
        ErrorReason::IncorrectInputValues
    );
}

#[test]
fn rejects_wrong_segment_tag() {
    let mut fx = Fixture::new(Curve::NistP256);
    let built = fx.build(ProfileProtection::SessionKeys { upp: &fx.upp });
    // An 88 (MAC-only) segment where ConfigureISDP's 87 belongs: the sequence decoder refuses it.
    let der = rebuild(&built.der, |s87, s88, _| s87[0] = s88[0].clone());
    assert_eq!(
        first_error(&mut fx, &der),
        (
            BppCommandId::ConfigureIsdp,
            ErrorReason::Scp03tStructureError
        )
    );
}

#[test]
fn rejects_bad_public_key_point() {
    let fx = Fixture::new(Curve::NistP256);
    let mut bad = fx.euicc_otpk.clone();
    bad[40] ^= 0xFF;
    let mut p = fx.params();
    p.euicc_otpk = &bad;
    let e = build_bpp(&p, ProfileProtection::SessionKeys { upp: &fx.upp }, None)
        .expect_err("bad point");
    assert_eq!(
        e,
        rsp_crypto::CryptoError::InvalidPublicKey(Curve::NistP256)
    );
}

#[test]
fn rejects_wrong_curve() {
    // eUICC otPK on brainpool while the DPpb key (and so the session) is P-256.
    let fx = Fixture::new(Curve::NistP256);
    let bp = EphemeralKey::generate(Curve::BrainpoolP256r1).expect("bp");
    let mut p = fx.params();
    p.euicc_otpk = bp.public_key();
    assert!(build_bpp(&p, ProfileProtection::SessionKeys { upp: &fx.upp }, None).is_err());
    // A supplied one-time key on the other curve.
    let other = SoftwareKey::generate(Curve::BrainpoolP256r1).expect("other");
    let e = build_bpp(
        &fx.params(),
        ProfileProtection::SessionKeys { upp: &fx.upp },
        Some(AgreementKey::Custody(&other)),
    )
    .expect_err("curve");
    assert_eq!(e, rsp_crypto::CryptoError::CurveMismatch);
    // Opening with a key on the wrong curve.
    let mut fx = Fixture::new(Curve::NistP256);
    let built = fx.build(ProfileProtection::SessionKeys { upp: &fx.upp });
    let p = fx.open_params();
    let wrong = EphemeralKey::generate(Curve::BrainpoolP256r1).expect("w");
    assert!(open_bpp(&built.der, &p, AgreementKey::OneTime(wrong)).is_err());
    fx.euicc_otk = None;
}

#[test]
fn rejects_other_eid() {
    let mut fx = Fixture::new(Curve::NistP256);
    let built = fx.build(ProfileProtection::SessionKeys { upp: &fx.upp });
    let otk = fx.euicc_otk.take().expect("otk");
    let mut p = fx.open_params();
    let other = [0x89u8; 16];
    p.eid = &other;
    let e = open_bpp(&built.der, &p, AgreementKey::OneTime(otk)).expect_err("refused");
    assert_eq!(
        (e.command, e.reason),
        (
            BppCommandId::ConfigureIsdp,
            ErrorReason::Scp03tSecurityError
        )
    );
}
