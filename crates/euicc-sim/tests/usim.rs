//! The USIM of an installed profile answers AUTHENTICATE (3GPP TS 31.102 7.1.2, 3G
//! context): Milenage keys read from the UPP at installation, the TS 33.102 Annex C SEQ
//! array persisted in the state file, AUTS on resynchronisation, `9862` on a wrong MAC.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use clap::Parser;
use common::*;
use euicc_sim::Euicc;
use euicc_sim::cli::{self, EuiccCommand};
use euicc_sim::usim::{self, AuthOutcome, UsimError, UsimState};
use rsp_asn1::download::FinalResult;
use saip::milenage::Milenage;
use saip::{AlgorithmId, OperatorKey, PeBody, Personalization, Template, Upp};

const ADDR: &str = "smdp.example.com";
const ICCID: &str = "8949001234567890128";
const IMSI: &str = "262011234567890";

// 3GPP TS 35.207 / TS 35.208 Milenage test set 1.
const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
const RAND: &str = "23553cbe9637a89d218ae64dae47bf35";
const SQN: &str = "ff9bb4d0b607";
const AMF: &str = "b9b9";
const OP: &str = "cdc202d5123e20f62b6d676ac72cb318";
const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";
const F1: &str = "4a9ffac354dfafb3";
const F2: &str = "a54211d5e3ba50bf";
const F3: &str = "b40ba9a3c58b2a05bbf0d987b21bf8cb";
const F4: &str = "f769bcd751044604127672711c6d3441";
const F5: &str = "aa689c648370";
const F1_STAR: &str = "01cfaf9ec4e871e9";
const F5_STAR: &str = "451e8beca43b";

fn h<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn u48(b: &[u8]) -> u64 {
    b.iter().fold(0, |a, &x| (a << 8) | u64::from(x))
}

fn be48(v: u64) -> [u8; 6] {
    v.to_be_bytes()[2..].try_into().unwrap()
}

fn sqn_of(seq: u64, ind: u64) -> [u8; 6] {
    be48((seq << 5) | ind)
}

fn milenage() -> Milenage {
    Milenage::new(&h(K), &h(OPC)).unwrap()
}

/// `AUTN = SQN xor AK || AMF || MAC-A`, as an AuC builds it.
fn autn(m: &Milenage, rand: &[u8; 16], sqn: &[u8; 6], amf: &[u8; 2]) -> [u8; 16] {
    let ak = m.f2345(rand).unwrap().ak;
    let mac = m.f1(rand, sqn, amf).unwrap();
    let mut a = [0u8; 16];
    for i in 0..6 {
        a[i] = sqn[i] ^ ak[i];
    }
    a[6..8].copy_from_slice(amf);
    a[8..].copy_from_slice(&mac);
    a
}

fn rand_n(n: u8) -> [u8; 16] {
    let mut r = [0u8; 16];
    for (i, b) in r.iter_mut().enumerate() {
        *b = n.wrapping_mul(31).wrapping_add(i as u8);
    }
    r
}

/// The built-in template personalized with the test set 1 Ki and OP (OPc derived), each
/// `akaParameter` then edited by `edit`.
fn upp_with(edit: impl Fn(&mut saip::AkaParameter)) -> Vec<u8> {
    let p = Personalization {
        iccid: ICCID.into(),
        imsi: IMSI.into(),
        mnc_len: 2,
        ki: K.into(),
        operator_key: OperatorKey::Op(OP.into()),
        pin1: "4711".into(),
        puk1: "31415926".into(),
        pin2: "0815".into(),
        puk2: "27182818".into(),
        adm1: "16180339".into(),
        spn: Some("Example Mobile".into()),
        home_plmn: None,
        file_overrides: Vec::new(),
    };
    let mut upp = Template::usim_isim_milenage()
        .unwrap()
        .personalize(&p)
        .unwrap();
    for pe in &mut upp.elements {
        if let PeBody::AkaParameter(a) = &mut pe.body {
            edit(a);
        }
    }
    upp.encode()
}

fn plain_upp() -> Vec<u8> {
    upp_with(|_| {})
}

/// The in-process download path of the other tests, with a given UPP.
fn install_upp(pki: &rsp_pki::TestPki, euicc: &mut Euicc, tid: &[u8], iccid: &str, upp: &[u8]) {
    let otpk = authenticate_and_prepare(pki, euicc, tid, ADDR);
    let bpp = make_bpp_with_upp(pki, tid, &otpk, &pki.eid, iccid, ADDR, upp);
    let pir = euicc.load_bound_profile_package(&bpp).unwrap();
    let data = pir.profile_installation_result_data.value();
    assert!(
        matches!(data.final_result, FinalResult::Success(_)),
        "{:?}",
        data.final_result
    );
}

fn card_with(upp: &[u8]) -> Euicc {
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    install_upp(&pki, &mut euicc, &[0x41; 16], ICCID, upp);
    euicc
}

fn seq_array(e: &Euicc) -> [u64; 32] {
    *e.state()
        .find_profile(ICCID)
        .unwrap()
        .usim
        .as_ref()
        .unwrap()
        .seq_array()
}

fn sw(resp: &[u8]) -> u16 {
    u16::from_be_bytes(resp[resp.len() - 2..].try_into().unwrap())
}

/// Send AUTHENTICATE for (rand, SQN) with a correct MAC.
fn auth(e: &mut Euicc, rand: &[u8; 16], sqn: &[u8; 6]) -> AuthOutcome {
    let a = autn(&milenage(), rand, sqn, &h(AMF));
    let resp = e
        .usim_apdu(ICCID, &usim::authenticate_apdu(rand, &a))
        .unwrap();
    usim::parse_response(&resp).unwrap()
}

/// SQN_MS and MAC-S check of an AUTS, as an AuC does: returns SQN_MS.
fn check_auts(rand: &[u8; 16], auts: &[u8; 14]) -> [u8; 6] {
    let m = milenage();
    let ak_star = m.f5_star(rand).unwrap();
    let mut sqn_ms = [0u8; 6];
    for i in 0..6 {
        sqn_ms[i] = auts[i] ^ ak_star[i];
    }
    assert_eq!(
        m.f1_star(rand, &sqn_ms, &[0, 0]).unwrap(),
        auts[6..],
        "MAC-S"
    );
    sqn_ms
}

#[test]
fn milenage_test_set_1_through_the_apdu() {
    let m = milenage();
    let (rand, sqn, amf) = (h::<16>(RAND), h::<6>(SQN), h::<2>(AMF));
    // The test set itself, with the saip Milenage the AUTN is built with.
    assert_eq!(
        hex::encode(saip::milenage::compute_opc(&h(K), &h(OP)).unwrap()),
        OPC
    );
    assert_eq!(hex::encode(m.f1(&rand, &sqn, &amf).unwrap()), F1);
    assert_eq!(hex::encode(m.f1_star(&rand, &sqn, &amf).unwrap()), F1_STAR);
    assert_eq!(hex::encode(m.f2345(&rand).unwrap().ak), F5);
    assert_eq!(hex::encode(m.f5_star(&rand).unwrap()), F5_STAR);
    let a = autn(&m, &rand, &sqn, &amf);
    assert_eq!(hex::encode(&a[8..]), F1);

    // The SQN of test set 1 is far beyond 2^28: the profile's sqnInit puts the card's
    // array just below it (SAIP sqnInit values are SEQ, without IND).
    let seq = u48(&sqn) >> 5;
    let ind = u48(&sqn) & 31;
    assert_eq!(ind, 7);
    let mut euicc = card_with(&upp_with(|a| a.sqn_init = Some(vec![be48(seq - 1); 32])));
    assert_eq!(seq_array(&euicc), [seq - 1; 32]);

    let apdu = usim::authenticate_apdu(&rand, &a);
    assert_eq!(&apdu[..6], [0x00, 0x88, 0x00, 0x81, 0x22, 0x10]);
    let resp = euicc.usim_apdu(ICCID, &apdu).unwrap();
    let want = format!("db08{F2}10{F3}10{F4}9000");
    assert_eq!(hex::encode(&resp), want);
    assert!(euicc.is_dirty());
    let mut expected = [seq - 1; 32];
    expected[7] = seq;
    assert_eq!(seq_array(&euicc), expected);

    // The same challenge again: SQN_MS (the accepted SQN, SEQ || IND 7) concealed with
    // f5* of test set 1.
    let resp = euicc.usim_apdu(ICCID, &apdu).unwrap();
    assert_eq!(sw(&resp), 0x9000);
    assert_eq!(&resp[..2], [0xDC, 0x0E]);
    let auts: [u8; 14] = resp[2..16].try_into().unwrap();
    let f5s = h::<6>(F5_STAR);
    let concealed: Vec<u8> = sqn.iter().zip(f5s).map(|(s, k)| s ^ k).collect();
    assert_eq!(auts[..6], concealed[..]);
    assert_eq!(check_auts(&rand, &auts), sqn);
}

#[test]
fn rejects_wrong_mac() {
    let mut euicc = card_with(&plain_upp());
    let rand = rand_n(1);
    let mut a = autn(&milenage(), &rand, &sqn_of(1, 0), &h(AMF));
    a[15] ^= 0x01;
    let before = seq_array(&euicc);
    let dirty_before = euicc.is_dirty();
    let resp = euicc
        .usim_apdu(ICCID, &usim::authenticate_apdu(&rand, &a))
        .unwrap();
    assert_eq!(resp, [0x98, 0x62]);
    assert_eq!(seq_array(&euicc), before);
    assert_eq!(euicc.is_dirty(), dirty_before);
    // A changed AMF invalidates the MAC too; so does another key.
    let mut a = autn(&milenage(), &rand, &sqn_of(1, 0), &h(AMF));
    a[6] ^= 0x80;
    assert_eq!(
        euicc.usim_authenticate(ICCID, &rand, &a),
        Err(UsimError::MacFailure)
    );
    let other = Milenage::new(&[0x11; 16], &h(OPC)).unwrap();
    let a = autn(&other, &rand, &sqn_of(1, 0), &h(AMF));
    let e = euicc.usim_authenticate(ICCID, &rand, &a).unwrap_err();
    assert_eq!(e, UsimError::MacFailure);
    assert_eq!(
        e.to_string(),
        "authentication failed: incorrect MAC (SW 9862)"
    );
    assert_eq!(seq_array(&euicc), before);
    // The right MAC afterwards is accepted: nothing was consumed.
    assert!(matches!(
        auth(&mut euicc, &rand, &sqn_of(1, 0)),
        AuthOutcome::Success { .. }
    ));
}

#[test]
fn rejects_replayed_sqn() {
    let mut euicc = card_with(&plain_upp());
    let rand = rand_n(2);
    let sqn = sqn_of(3, 4);
    let AuthOutcome::Success { res, ck, ik } = auth(&mut euicc, &rand, &sqn) else {
        panic!("first authentication refused")
    };
    let out = milenage().f2345(&rand).unwrap();
    assert_eq!((res.as_slice(), ck, ik), (&out.res[..], out.ck, out.ik));
    let after_first = seq_array(&euicc);
    assert_eq!(after_first[4], 3);

    let AuthOutcome::SyncFailure { auts } = auth(&mut euicc, &rand, &sqn) else {
        panic!("replay accepted")
    };
    // SQN_MS is the accepted SQN itself (highest SEQ with its IND).
    assert_eq!(check_auts(&rand, &auts), sqn);
    assert_eq!(seq_array(&euicc), after_first);

    // A fresh RAND with the same SQN: still a replay, AUTS under that RAND.
    let rand2 = rand_n(3);
    let AuthOutcome::SyncFailure { auts } = auth(&mut euicc, &rand2, &sqn) else {
        panic!("replay accepted")
    };
    assert_eq!(check_auts(&rand2, &auts), sqn);
    // The AuC resynchronises: SEQ_MS + 1 with any IND is accepted.
    let next = sqn_of((u48(&sqn) >> 5) + 1, 0);
    assert!(matches!(
        auth(&mut euicc, &rand2, &next),
        AuthOutcome::Success { .. }
    ));
}

#[test]
fn accepts_lower_seq_with_another_ind() {
    let mut euicc = card_with(&plain_upp());
    let ok = |o: AuthOutcome| matches!(o, AuthOutcome::Success { .. });
    assert!(ok(auth(&mut euicc, &rand_n(4), &sqn_of(10, 3))));
    // Annex C array: SEQ 7 < 10, but IND 9 has seen nothing higher.
    assert!(ok(auth(&mut euicc, &rand_n(5), &sqn_of(7, 9))));
    // Not for IND 3 (SEQ 7 <= 10) nor IND 9 again (7 <= 7).
    for (seq, ind) in [(7, 3), (10, 3), (7, 9), (6, 9)] {
        let AuthOutcome::SyncFailure { auts } = auth(&mut euicc, &rand_n(6), &sqn_of(seq, ind))
        else {
            panic!("SEQ {seq} IND {ind} accepted")
        };
        assert_eq!(check_auts(&rand_n(6), &auts), sqn_of(10, 3));
    }
    assert!(ok(auth(&mut euicc, &rand_n(7), &sqn_of(8, 9))));
    assert!(ok(auth(&mut euicc, &rand_n(8), &sqn_of(11, 3))));
    assert!(ok(auth(&mut euicc, &rand_n(9), &sqn_of(1, 31))));
    let a = seq_array(&euicc);
    assert_eq!((a[3], a[9], a[31], a[0]), (11, 8, 1, 0));
}

#[test]
fn rejects_sqn_too_far_ahead() {
    let mut euicc = card_with(&plain_upp());
    let delta = 1u64 << 28;
    assert_eq!(
        euicc.state().profiles[0].usim.as_ref().unwrap().sqn_delta(),
        delta
    );
    let AuthOutcome::SyncFailure { auts } = auth(&mut euicc, &rand_n(10), &sqn_of(delta + 1, 0))
    else {
        panic!("SEQ beyond the limit accepted")
    };
    // Nothing accepted yet: SQN_MS is zero.
    assert_eq!(check_auts(&rand_n(10), &auts), [0; 6]);
    assert!(matches!(
        auth(&mut euicc, &rand_n(11), &sqn_of(delta, 1)),
        AuthOutcome::Success { .. }
    ));
    assert!(matches!(
        auth(&mut euicc, &rand_n(12), &sqn_of(2 * delta, 2)),
        AuthOutcome::Success { .. }
    ));
    assert!(matches!(
        auth(&mut euicc, &rand_n(13), &sqn_of(3 * delta + 1, 3)),
        AuthOutcome::SyncFailure { .. }
    ));
    // A profile with another sqnDelta.
    let mut euicc = card_with(&upp_with(|a| a.sqn_delta = be48(16)));
    assert!(matches!(
        auth(&mut euicc, &rand_n(14), &sqn_of(17, 0)),
        AuthOutcome::SyncFailure { .. }
    ));
    assert!(matches!(
        auth(&mut euicc, &rand_n(15), &sqn_of(16, 0)),
        AuthOutcome::Success { .. }
    ));
}

fn good_apdu() -> Vec<u8> {
    let rand = rand_n(20);
    usim::authenticate_apdu(&rand, &autn(&milenage(), &rand, &sqn_of(1, 1), &h(AMF)))
}

#[test]
fn rejects_truncated_apdu() {
    let mut euicc = card_with(&plain_upp());
    let good = good_apdu();
    // Every truncation (no Le, Lc 22 with 33 octets, ...) is refused with 6700.
    for n in 0..good.len() - 1 {
        let resp = euicc.usim_apdu(ICCID, &good[..n]).unwrap();
        assert_eq!(resp, [0x67, 0x00], "{n} octets");
    }
    // A consistent Lc but too little data.
    let mut short = good[..4].to_vec();
    short.push(0x21);
    short.extend_from_slice(&good[5..38]);
    assert_eq!(euicc.usim_apdu(ICCID, &short).unwrap(), [0x67, 0x00]);
    // Inner lengths other than 16 (the total still 34).
    let mut bad = good.clone();
    bad[5] = 0x0F;
    assert_eq!(euicc.usim_apdu(ICCID, &bad).unwrap(), [0x67, 0x00]);
    let mut bad = good.clone();
    bad[22] = 0x11;
    assert_eq!(euicc.usim_apdu(ICCID, &bad).unwrap(), [0x67, 0x00]);
    assert_eq!(seq_array(&euicc), [0; 32]);
    // Without Le it is accepted.
    let resp = euicc.usim_apdu(ICCID, &good[..good.len() - 1]).unwrap();
    assert_eq!(sw(&resp), 0x9000);
}

#[test]
fn rejects_oversized_apdu() {
    let mut euicc = card_with(&plain_upp());
    let good = good_apdu();
    // Trailing octets after Le.
    let mut v = good.clone();
    v.push(0x00);
    assert_eq!(euicc.usim_apdu(ICCID, &v).unwrap(), [0x67, 0x00]);
    // Lc 23 with an extra data octet.
    let mut v = good[..good.len() - 1].to_vec();
    v[4] = 0x23;
    v.push(0xAA);
    assert_eq!(euicc.usim_apdu(ICCID, &v).unwrap(), [0x67, 0x00]);
    // Extended length.
    let mut v = good[..4].to_vec();
    v.extend_from_slice(&[0x00, 0x00, 0x22]);
    v.extend_from_slice(&good[5..39]);
    assert_eq!(euicc.usim_apdu(ICCID, &v).unwrap(), [0x67, 0x00]);
    // Very long garbage.
    assert_eq!(euicc.usim_apdu(ICCID, &[0u8; 600]).unwrap(), [0x67, 0x00]);
    assert_eq!(seq_array(&euicc), [0; 32]);
}

#[test]
fn rejects_wrong_p2_p1_ins_and_cla() {
    let mut euicc = card_with(&plain_upp());
    let good = good_apdu();
    let with = |i: usize, b: u8| {
        let mut v = good.clone();
        v[i] = b;
        v
    };
    for p2 in [0x80, 0x82, 0x84, 0x85, 0x01, 0x00, 0xFF] {
        assert_eq!(
            euicc.usim_apdu(ICCID, &with(3, p2)).unwrap(),
            [0x6A, 0x86],
            "P2 {p2:02X}"
        );
    }
    assert_eq!(
        euicc.usim_apdu(ICCID, &with(2, 0x01)).unwrap(),
        [0x6A, 0x86]
    );
    assert_eq!(
        euicc.usim_apdu(ICCID, &with(1, 0x89)).unwrap(),
        [0x6D, 0x00]
    );
    assert_eq!(
        euicc.usim_apdu(ICCID, &with(0, 0x80)).unwrap(),
        [0x6E, 0x00]
    );
    assert_eq!(
        euicc.usim_apdu(ICCID, &with(0, 0xA0)).unwrap(),
        [0x6E, 0x00]
    );
    assert_eq!(
        euicc.usim_apdu(ICCID, &with(0, 0x0C)).unwrap(),
        [0x68, 0x82]
    );
    assert_eq!(
        euicc.usim_apdu(ICCID, &with(0, 0x10)).unwrap(),
        [0x68, 0x84]
    );
    assert_eq!(seq_array(&euicc), [0; 32]);
    // A logical channel CLA is fine.
    let resp = euicc.usim_apdu(ICCID, &with(0, 0x01)).unwrap();
    assert_eq!(sw(&resp), 0x9000);
}

#[test]
fn arbitrary_apdus_never_panic() {
    let mut st = UsimState::milenage(&h(K), &h(OPC));
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let good = good_apdu();
    for i in 0..20_000u32 {
        let mut v = if i % 2 == 0 {
            good.clone()
        } else {
            vec![0; (next() % 48) as usize]
        };
        let flips = next() % 4;
        for _ in 0..=flips {
            if v.is_empty() {
                break;
            }
            let at = (next() as usize) % v.len();
            v[at] = next() as u8;
        }
        if next() % 5 == 0 {
            v.truncate((next() as usize) % (v.len() + 1));
        }
        let r = usim::process_apdu(Some(&mut st), &v);
        assert!(r.len() >= 2);
        let _ = usim::parse_response(&r);
        let r = usim::process_apdu(None, &v);
        assert_eq!(r.len(), 2);
    }
}

#[test]
fn profile_without_milenage_answers_not_supported() {
    // Not a SAIP package.
    let pki = pki();
    let mut euicc = euicc_for(&pki);
    install_upp(&pki, &mut euicc, &[0x51; 16], ICCID, &junk_upp());
    let other = "8944000000000000017";
    let tuak = upp_with(|a| {
        if let saip::AlgoConfiguration::Algo(p) = &mut a.algo {
            p.algorithm_id = AlgorithmId::Tuak;
        }
    });
    install_upp(&pki, &mut euicc, &[0x52; 16], other, &tuak);
    assert!(euicc.state().profiles.iter().all(|p| p.usim.is_none()));
    let good = good_apdu();
    for id in [ICCID, other] {
        assert_eq!(euicc.usim_apdu(id, &good).unwrap(), [0x69, 0x85]);
    }
    // Format errors still come first.
    assert_eq!(euicc.usim_apdu(ICCID, &good[..10]).unwrap(), [0x67, 0x00]);
    let (rand, a) = (rand_n(1), [0u8; 16]);
    let e = euicc.usim_authenticate(ICCID, &rand, &a).unwrap_err();
    assert!(matches!(e, UsimError::NotSupported(_)), "{e:?}");
    assert!(
        e.to_string().contains("not a decodable SAIP package"),
        "{e}"
    );
    let e = euicc
        .usim_authenticate(other, &rand, &a)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tuak") && e.contains("only Milenage") && e.contains("6985"),
        "{e}"
    );
    // Unknown profile.
    let e = euicc.usim_apdu("8944000000000000025", &good).unwrap_err();
    assert_eq!(e, UsimError::UnknownProfile("8944000000000000025".into()));
    // A package without any akaParameter.
    let mut upp = Upp::decode(&plain_upp()).unwrap();
    upp.elements
        .retain(|e| !matches!(e.body, PeBody::AkaParameter(_)));
    let e = UsimState::from_upp(&upp).unwrap_err().to_string();
    assert!(e.contains("no akaParameter"), "{e}");
}

#[test]
fn usim_keys_come_from_the_usim_aka_parameter() {
    // The ISIM's akaParameter (the second one) has other keys: the USIM's are used.
    let mut upp = Upp::decode(&plain_upp()).unwrap();
    let akas: Vec<usize> = upp.aka_parameters().iter().map(|(i, _)| *i).collect();
    assert_eq!(akas.len(), 2);
    if let PeBody::AkaParameter(a) = &mut upp.elements[akas[1]].body {
        a.algo_parameter_mut().unwrap().key = saip::Secret::new(&[0x77; 16]);
    }
    let mut st = UsimState::from_upp(&upp).unwrap();
    let rand = rand_n(30);
    let a = autn(&milenage(), &rand, &sqn_of(1, 0), &h(AMF));
    assert!(matches!(
        st.authenticate(&rand, &a),
        Ok(AuthOutcome::Success { .. })
    ));
    // Only the ISIM one has Milenage: the USIM is TUAK, not supported.
    if let PeBody::AkaParameter(a) = &mut upp.elements[akas[0]].body {
        a.algo_parameter_mut().unwrap().algorithm_id = AlgorithmId::Tuak;
    }
    assert!(UsimState::from_upp(&upp).is_err());
}

#[test]
fn sqn_persisted_across_save_and_load() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("euicc.json");
    // A pre-existing file with loose permissions: saving makes it 0600.
    std::fs::write(&path, b"{}").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut euicc = euicc_for(&pki);
    euicc.set_path(Some(path.clone()));
    install_upp(&pki, &mut euicc, &[0x61; 16], ICCID, &plain_upp());
    euicc.save_if_dirty().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let rand = rand_n(40);
    let sqn = sqn_of(5, 2);
    assert!(matches!(
        auth(&mut euicc, &rand, &sqn),
        AuthOutcome::Success { .. }
    ));
    assert!(euicc.is_dirty());
    euicc.save_if_dirty().unwrap();
    drop(euicc);

    let mut again = Euicc::open(&path).unwrap();
    assert_eq!(seq_array(&again)[2], 5);
    let AuthOutcome::SyncFailure { auts } = auth(&mut again, &rand, &sqn) else {
        panic!("replay accepted after reload")
    };
    assert_eq!(check_auts(&rand, &auts), sqn);
    assert!(!again.is_dirty(), "a refused SQN changes nothing");

    // The state file holds the keys (base64) like a card's NVM; Debug never shows them.
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let u = &v["profiles"][0]["usim"];
    assert_eq!(u["algorithm"], "milenage");
    assert_eq!(u["seq_ms"][2], 5);
    let p = &again.state().profiles[0];
    let dbg = format!("{p:?} {:?} {:?}", p.usim, again.state());
    for secret in [K, OPC, &K.to_uppercase(), &OPC.to_uppercase()] {
        assert!(!dbg.contains(secret), "Debug shows a key");
    }
    assert!(dbg.contains("redacted"), "{dbg}");
    let out = auth(&mut again, &rand_n(41), &sqn_of(6, 2));
    let dbg = format!("{out:?}");
    let AuthOutcome::Success { ck, ik, .. } = out else {
        panic!()
    };
    assert!(!dbg.contains(&hex::encode(ck)) && !dbg.contains(&hex::encode(ik)));
}

#[test]
fn state_file_without_usim_still_loads_and_is_backfilled() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.json");
    let mut euicc = euicc_for(&pki);
    euicc.set_path(Some(path.clone()));
    install_upp(&pki, &mut euicc, &[0x71; 16], ICCID, &plain_upp());
    euicc.save_if_dirty().unwrap();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        v["profiles"][0]
            .as_object_mut()
            .unwrap()
            .remove("usim")
            .is_some()
    );
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let mut old = Euicc::open(&path).unwrap();
    assert_eq!(seq_array(&old), [0; 32]);
    assert!(matches!(
        auth(&mut old, &rand_n(50), &sqn_of(1, 0)),
        AuthOutcome::Success { .. }
    ));
}

#[derive(Parser, Debug)]
#[command(name = "euicc")]
struct T {
    #[command(subcommand)]
    cmd: EuiccCommand,
}

fn cli_run(args: &[&str]) -> anyhow::Result<()> {
    let mut v = vec!["euicc"];
    v.extend_from_slice(args);
    cli::run(
        T::try_parse_from(v)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .cmd,
    )
}

#[test]
fn cli_authenticate_end_to_end() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let s = path.to_str().unwrap();
    let mut euicc = euicc_for(&pki);
    euicc.set_path(Some(path.clone()));
    install_upp(&pki, &mut euicc, &[0x81; 16], ICCID, &plain_upp());
    let junk_iccid = "8944000000000000017";
    install_upp(&pki, &mut euicc, &[0x82; 16], junk_iccid, &junk_upp());
    euicc.save_if_dirty().unwrap();
    drop(euicc);

    let rand = rand_n(60);
    let sqn = sqn_of(2, 5);
    let a = autn(&milenage(), &rand, &sqn, &h(AMF));
    let (rh, ah) = (hex::encode(rand), hex::encode_upper(a));
    let args = |iccid: &'static str, r: &str, au: &str| {
        vec![
            "authenticate".to_owned(),
            "--state".into(),
            s.into(),
            "--iccid".into(),
            iccid.into(),
            "--rand".into(),
            r.into(),
            "--autn".into(),
            au.into(),
        ]
    };
    let run = |v: Vec<String>| cli_run(&v.iter().map(String::as_str).collect::<Vec<_>>());

    // Success: the new SQN is saved.
    run(args(ICCID, &rh, &ah)).unwrap();
    let card = Euicc::open(&path).unwrap();
    assert_eq!(seq_array(&card)[5], 2);
    // The same again: AUTS, exit 0, nothing changes.
    let mut j = args(ICCID, &rh, &ah);
    j.push("--json".into());
    run(j).unwrap();
    assert_eq!(seq_array(&Euicc::open(&path).unwrap())[5], 2);

    // What it prints, from the same outcomes.
    let mut mem = Euicc::open(&path).unwrap();
    mem.set_path(None);
    let out = milenage().f2345(&rand).unwrap();
    let ok = mem
        .usim_authenticate(
            ICCID,
            &rand,
            &autn(&milenage(), &rand, &sqn_of(3, 5), &h(AMF)),
        )
        .unwrap();
    assert_eq!(
        cli::authenticate_lines(&ok),
        [
            format!("RES {}", hex::encode(out.res)),
            format!("CK {}", hex::encode(out.ck)),
            format!("IK {}", hex::encode(out.ik)),
        ]
    );
    assert_eq!(cli::authenticate_json(&ok)["result"], "success");
    assert_eq!(cli::authenticate_json(&ok)["res"], hex::encode(out.res));
    let sync = mem.usim_authenticate(ICCID, &rand, &a).unwrap();
    let AuthOutcome::SyncFailure { auts } = &sync else {
        panic!()
    };
    assert_eq!(
        cli::authenticate_lines(&sync),
        [format!("AUTS {}", hex::encode(auts))]
    );
    assert_eq!(
        cli::authenticate_json(&sync),
        serde_json::json!({"result": "syncFailure", "auts": hex::encode(auts)})
    );

    // Wrong MAC: an error, the state unchanged.
    let mut bad = a;
    bad[9] ^= 0x40;
    let e = run(args(ICCID, &rh, &hex::encode(bad)))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "authentication failed: incorrect MAC (SW 9862)");
    assert_eq!(seq_array(&Euicc::open(&path).unwrap())[5], 2);
    // Bad hex, wrong lengths.
    let e = run(args(ICCID, "zz", &ah)).unwrap_err().to_string();
    assert!(e.contains("--rand") && e.contains("not hexadecimal"), "{e}");
    let e = run(args(ICCID, &rh, &ah[..30])).unwrap_err().to_string();
    assert!(
        e.contains("--autn") && e.contains("16 octets") && e.contains("15"),
        "{e}"
    );
    let e = run(args(ICCID, &format!("{rh}00"), &ah))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--rand") && e.contains("17 octet"), "{e}");
    // Unknown ICCID; a profile without USIM keys.
    let e = run(args("8944000000000000025", &rh, &ah))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no installed profile") && e.contains("8944000000000000025"),
        "{e}"
    );
    let e = run(args(junk_iccid, &rh, &ah)).unwrap_err().to_string();
    assert!(
        e.contains("not supported") && e.contains("SAIP") && e.contains("6985"),
        "{e}"
    );
    // Missing flags: clap names them.
    let e = cli_run(&[
        "authenticate",
        "--state",
        s,
        "--iccid",
        ICCID,
        "--rand",
        &rh,
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("--autn"), "{e}");
    // Missing state file.
    let e = cli_run(&[
        "authenticate",
        "--state",
        "/nonexistent/card.json",
        "--iccid",
        ICCID,
        "--rand",
        &rh,
        "--autn",
        &ah,
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("euicc init"), "{e}");
}

#[test]
fn pure_api_without_apdus() {
    let mut st = UsimState::milenage(&h(K), &h(OPC));
    let rand = rand_n(70);
    let sqn = sqn_of(1, 0);
    assert!(st.sqn_acceptable(&sqn));
    let a = autn(&milenage(), &rand, &sqn, &h(AMF));
    let AuthOutcome::Success { res, .. } = st.authenticate(&rand, &a).unwrap() else {
        panic!()
    };
    assert_eq!(res, milenage().f2345(&rand).unwrap().res);
    assert!(!st.sqn_acceptable(&sqn));
    assert_eq!(st.sqn_ms(), sqn);
    assert!(matches!(
        st.authenticate(&rand, &a),
        Ok(AuthOutcome::SyncFailure { .. })
    ));
    // The serialized state round-trips.
    let json = serde_json::to_string(&st).unwrap();
    let back: UsimState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, st);
    assert!(!format!("{st:?}").contains(K));
}
