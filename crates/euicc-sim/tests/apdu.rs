//! The APDU face and the lpac stdio driver.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use euicc_sim::ApduCard;
use rsp_asn1::Codec;
use rsp_asn1::auth::AuthenticateServerResponse;
use rsp_asn1::download::{FinalResult, PrepareDownloadResponse, ProfileInstallationResult};
use rsp_asn1::tlv::{Reader, parse_single};

const ISDR: &str = "A0000005591010FFFFFFFF8900000100";
const ADDR: &str = "smdp.example.com";
const TID: [u8; 16] = [0x11; 16];

fn sw(r: &[u8]) -> u16 {
    u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]])
}

/// Send one ES10 command like lpac: STORE DATA blocks of at most `mss` bytes, no Le, then
/// GET RESPONSE while 61xx. Returns (data, final SW).
fn es10(card: &mut ApduCard, ch: u8, cmd: &[u8], mss: usize) -> (Vec<u8>, u16) {
    let blocks: Vec<&[u8]> = cmd.chunks(mss).collect();
    let mut resp = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let last = i + 1 == blocks.len();
        let mut apdu = vec![
            0x80 | ch,
            0xE2,
            if last { 0x91 } else { 0x11 },
            i as u8,
            b.len() as u8,
        ];
        apdu.extend_from_slice(b);
        resp = card.transmit(&apdu);
        if !last {
            assert_eq!(resp, [0x90, 0x00], "intermediate block");
        }
    }
    let mut data = resp[..resp.len() - 2].to_vec();
    let mut s = sw(&resp);
    while s >> 8 == 0x61 {
        let r = card.transmit(&[0x80 | ch, 0xC0, 0, 0, (s & 0xFF) as u8]);
        data.extend_from_slice(&r[..r.len() - 2]);
        s = sw(&r);
    }
    (data, s)
}

/// Segments of a BPP as lpac / SGP.22 section 2.5.5 cut it.
fn segments(bpp: &[u8]) -> Vec<Vec<u8>> {
    let top = parse_single(bpp).unwrap();
    let hdr_len = top.raw.len() - top.value.len();
    let mut r = Reader::new(top.value);
    let iscr = r.read().unwrap();
    let mut out = vec![[&bpp[..hdr_len], iscr.raw].concat()];
    while !r.is_empty() {
        let t = r.read().unwrap();
        let h = t.raw.len() - t.value.len();
        match t.tag.0 {
            0xA0 | 0xA2 => out.push(t.raw.to_vec()),
            _ => {
                out.push(t.raw[..h].to_vec());
                let mut inner = Reader::new(t.value);
                while !inner.is_empty() {
                    out.push(inner.read().unwrap().raw.to_vec());
                }
            }
        }
    }
    out
}

fn card() -> (rsp_pki::TestPki, ApduCard, u8) {
    let pki = pki();
    let mut card = ApduCard::new(euicc_for(&pki));
    let ch = card
        .open_logical_channel(&hex::decode(ISDR).unwrap())
        .unwrap();
    (pki, card, ch)
}

#[test]
fn full_download_over_apdus_with_segmented_bpp_and_get_response() {
    let (pki, mut card, ch) = card();
    assert_eq!(ch, 1);
    let (eid, s) = es10(&mut card, ch, &hex::decode("BF3E035C015A").unwrap(), 120);
    assert_eq!(s, 0x9000);
    assert_eq!(&eid[5..], &eid_bytes(&pki.eid));

    let (r, _) = es10(&mut card, ch, &hex::decode("BF2E00").unwrap(), 120);
    let challenge = r[r.len() - 16..].to_vec();
    let req = auth_request(
        &pki,
        &TID,
        &challenge,
        ADDR,
        &pki.dpauth.der,
        &pki.dpauth.key,
    );
    let (r, s) = es10(&mut card, ch, &req.encode(), 120);
    assert_eq!(s, 0x9000);
    assert!(
        r.len() > 256,
        "AuthenticateServer response used GET RESPONSE"
    );
    let AuthenticateServerResponse::Ok(ok) = AuthenticateServerResponse::decode(&r).unwrap() else {
        panic!()
    };
    let pd = prepare_request(
        &TID,
        &ok.euicc_signature1,
        false,
        None,
        &pki.dppb.der,
        &pki.dppb.key,
        None,
    );
    let (r, _) = es10(&mut card, ch, &pd.encode(), 120);
    let PrepareDownloadResponse::Ok(pok) = PrepareDownloadResponse::decode(&r).unwrap() else {
        panic!()
    };
    let bpp = make_bpp(
        &pki,
        &TID,
        &pok.euicc_signed2.value().euicc_otpk,
        &pki.eid,
        "8944000000000000017",
        ADDR,
    );
    let segs = segments(&bpp);
    assert!(segs.len() > 5);
    let mut last = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        let (r, s) = es10(&mut card, ch, seg, 255);
        assert_eq!(s, 0x9000, "segment {i}");
        if i + 1 < segs.len() {
            assert!(r.is_empty(), "segment {i} must answer bare 9000");
        }
        last = r;
    }
    let pir = ProfileInstallationResult::decode(&last).unwrap();
    assert!(matches!(
        pir.profile_installation_result_data.value().final_result,
        FinalResult::Success(_)
    ));
    let (list, s) = es10(&mut card, ch, &hex::decode("BF2D00").unwrap(), 120);
    assert_eq!(s, 0x9000);
    assert_eq!(&list[..2], &[0xBF, 0x2D]);
    let (n, _) = es10(&mut card, ch, &hex::decode("BF2800").unwrap(), 120);
    assert_eq!(&n[..2], &[0xBF, 0x28]);
    card.close_logical_channel(ch).unwrap();
    assert_eq!(
        card.transmit(&hex::decode("81E2910003BF2D00").unwrap()),
        [0x68, 0x81]
    );
}

#[test]
fn rejects_wrong_cla_ins_chaining_lc_and_get_response() {
    let (_pki, mut card, ch) = card();
    let c = 0x80 | ch;
    // Wrong CLA for STORE DATA (ISO class), unknown INS.
    assert_eq!(
        card.transmit(&[ch, 0xE2, 0x91, 0x00, 0x03, 0xBF, 0x2D, 0x00]),
        [0x6E, 0x00]
    );
    assert_eq!(card.transmit(&[c, 0xCA, 0x00, 0x00, 0x00]), [0x6D, 0x00]);
    // Bad P1, bad chaining order (first block numbered 1; block 0 then block 2).
    assert_eq!(
        card.transmit(&[c, 0xE2, 0x01, 0x00, 0x03, 0xBF, 0x2D, 0x00]),
        [0x6A, 0x86]
    );
    assert_eq!(
        card.transmit(&[c, 0xE2, 0x91, 0x01, 0x03, 0xBF, 0x2D, 0x00]),
        [0x6A, 0x86]
    );
    assert_eq!(
        card.transmit(&[c, 0xE2, 0x11, 0x00, 0x02, 0xBF, 0x2D]),
        [0x90, 0x00]
    );
    assert_eq!(
        card.transmit(&[c, 0xE2, 0x91, 0x02, 0x01, 0x00]),
        [0x6A, 0x86]
    );
    // After the refused block the chain restarts at 0.
    let ok = card.transmit(&[c, 0xE2, 0x91, 0x00, 0x03, 0xBF, 0x2D, 0x00]);
    assert_eq!(sw(&ok), 0x9000);
    // Lc mismatch (Lc says 5, 3 bytes follow) and too-short APDU.
    assert_eq!(
        card.transmit(&[c, 0xE2, 0x91, 0x00, 0x05, 0xBF, 0x2D, 0x00]),
        [0x67, 0x00]
    );
    assert_eq!(card.transmit(&[c, 0xE2, 0x91]), [0x67, 0x00]);
    // GET RESPONSE without pending data.
    assert_eq!(card.transmit(&[c, 0xC0, 0x00, 0x00, 0x10]), [0x69, 0x85]);
    // Unknown ES10 tag, malformed DER, channel not open, BPP segment without session.
    assert_eq!(
        card.transmit(&[c, 0xE2, 0x91, 0x00, 0x03, 0xBF, 0x7E, 0x00]),
        [0x6A, 0x88]
    );
    assert_eq!(
        card.transmit(&[c, 0xE2, 0x91, 0x00, 0x03, 0xBF, 0x2D, 0x05]),
        [0x6A, 0x80]
    );
    assert_eq!(
        card.transmit(&[0x82, 0xE2, 0x91, 0x00, 0x03, 0xBF, 0x2D, 0x00]),
        [0x68, 0x81]
    );
    assert_eq!(
        card.transmit(&[
            c, 0xE2, 0x91, 0x00, 0x06, 0xBF, 0x36, 0x10, 0xBF, 0x23, 0x00
        ]),
        [0x69, 0x85]
    );
    assert_eq!(
        card.transmit(&[c, 0xE2, 0x91, 0x00, 0x03, 0xA0, 0x01, 0x00]),
        [0x6A, 0x88]
    );
    // Secure messaging bits in CLA.
    assert_eq!(
        card.transmit(&[0x84 | ch, 0xE2, 0x91, 0x00, 0x03, 0xBF, 0x2D, 0x00]),
        [0x68, 0x82]
    );
}

#[test]
fn select_and_manage_channel_on_the_basic_channel() {
    let pki = pki();
    let mut card = ApduCard::new(euicc_for(&pki));
    // STORE DATA before SELECT is refused.
    assert_eq!(
        card.transmit(&hex::decode("80E2910003BF2D00").unwrap()),
        [0x69, 0x85]
    );
    // MANAGE CHANNEL open → channel 1, SELECT ISD-R there.
    let r = card.transmit(&[0x00, 0x70, 0x00, 0x00, 0x01]);
    assert_eq!(r, [0x01, 0x90, 0x00]);
    let mut sel = vec![0x01, 0xA4, 0x04, 0x00, 0x10];
    sel.extend_from_slice(&hex::decode(ISDR).unwrap());
    let r = card.transmit(&sel);
    assert_eq!(sw(&r), 0x9000);
    assert_eq!(r[0], 0x6F);
    let r = card.transmit(&hex::decode("81E2910006BF3E035C015A").unwrap());
    assert_eq!(sw(&r), 0x9000);
    assert_eq!(&r[..3], &[0xBF, 0x3E, 0x12]);
    // Unknown AID.
    let r = card.transmit(&[0x01, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x00, 0x87]);
    assert_eq!(r, [0x6A, 0x82]);
    // Close channel 1; it is gone.
    assert_eq!(card.transmit(&[0x00, 0x70, 0x80, 0x01]), [0x90, 0x00]);
    assert_eq!(
        card.transmit(&hex::decode("81E2910003BF2D00").unwrap()),
        [0x68, 0x81]
    );
}

#[test]
fn lpac_stdio_protocol_and_malformed_lines() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let mut e = euicc_for(&pki);
    e.set_path(Some(path.clone()));
    e.save_if_dirty().unwrap();
    let mut card = ApduCard::new(e);
    // SetDefaultDpAddress "a.b" (changes state → saved).
    let input = [
        r#"{"type":"apdu","payload":{"func":"connect","param":null}}"#,
        r#"{"type":"apdu","payload":{"func":"logic_channel_open","param":"a0000005591010ffffffff8900000100"}}"#,
        r#"{"type":"apdu","payload":{"func":"transmit","param":"81e2910006bf3e035c015a"}}"#,
        r#"{"type":"progress","payload":{"code":0,"message":"x","data":null}}"#,
        r#"this is not json"#,
        r#"{"type":"apdu","payload":{"func":"transmit","param":"zz"}}"#,
        r#"{"type":"apdu","payload":{"func":"frobnicate"}}"#,
        r#"{"type":"apdu","payload":{"func":"transmit","param":"81e2910008bf3f0580036162630000"}}"#,
        r#"{"type":"apdu","payload":{"func":"transmit","param":"81e2910008bf3f058003616263"}}"#,
        r#"{"type":"lpa","payload":{"code":0,"message":"success","data":{}}}"#,
        r#"{"type":"apdu","payload":{"func":"logic_channel_close","param":"01"}}"#,
        r#"{"type":"apdu","payload":{"func":"disconnect","param":null}}"#,
    ]
    .join("\n");
    let mut out = Vec::new();
    let mut others = Vec::new();
    euicc_sim::lpac::serve(&mut card, input.as_bytes(), &mut out, |l| {
        others.push(l.to_owned())
    })
    .unwrap();
    let replies: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ecodes: Vec<i64> = replies
        .iter()
        .map(|r| r["payload"]["ecode"].as_i64().unwrap())
        .collect();
    assert_eq!(ecodes, [0, 1, 0, -1, -1, -1, 0, 0, 0, 0]);
    let eid = replies[2]["payload"]["data"].as_str().unwrap();
    assert!(
        eid.starts_with("bf3e125a10") && eid.ends_with("9000"),
        "{eid}"
    );
    // Lc mismatch in the first SetDefaultDpAddress → 6700, second one OK.
    assert_eq!(replies[6]["payload"]["data"], "6700");
    assert_eq!(replies[7]["payload"]["data"], "bf3f038001009000");
    assert_eq!(others.len(), 2);
    let saved = euicc_sim::EuiccState::load(&path).unwrap();
    assert_eq!(saved.default_smdp_address.as_deref(), Some("abc"));
}
