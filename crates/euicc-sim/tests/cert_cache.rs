//! The opt-in [`CertCache`] of the virtual eUICC (`smdpp bench --cache-server-certs`): it
//! saves the chain validation of CERT.DPauth/DPpb already validated for the same trust
//! store, and weakens no check: other certificates (untrusted, forged, any byte different)
//! are validated in full and refused as without the cache, and the server's signatures are
//! verified every time with the key of the cached certificate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use euicc_sim::{CertCache, CertCacheStats, Euicc};
use rsp_asn1::auth::{
    AuthenticateErrorCode, AuthenticateServerRequest, AuthenticateServerResponse,
};
use rsp_asn1::download::{
    DownloadErrorCode, FinalResult, PrepareDownloadRequest, PrepareDownloadResponse,
};
use rsp_crypto::KeyCustody;
use rsp_pki::{DpRole, TestPki};

const ADDR: &str = "smdp.example.com";
const TID: [u8; 16] = [0x22; 16];

fn cached_card(pki: &TestPki, cache: &CertCache) -> Euicc {
    let mut e = euicc_for(pki);
    assert!(!e.caches_server_certs(), "the default card caches nothing");
    e.set_cert_cache(Some(cache.clone()));
    assert!(e.caches_server_certs());
    e
}

fn auth(
    euicc: &mut Euicc,
    req: &AuthenticateServerRequest,
) -> Result<Vec<u8>, AuthenticateErrorCode> {
    match euicc.authenticate_server(req, Some(ADDR)) {
        AuthenticateServerResponse::Ok(ok) => Ok(ok.euicc_signature1),
        AuthenticateServerResponse::Error(e) => Err(e.authenticate_error_code),
    }
}

fn prepare(euicc: &mut Euicc, req: &PrepareDownloadRequest) -> Result<Vec<u8>, DownloadErrorCode> {
    match euicc.prepare_download(req) {
        PrepareDownloadResponse::Ok(ok) => Ok(ok.euicc_signed2.value().euicc_otpk.clone()),
        PrepareDownloadResponse::Error(e) => Err(e.download_error_code),
    }
}

/// AuthenticateServer with `cert` signed by `key` on a fresh session.
fn auth_with(
    pki: &TestPki,
    euicc: &mut Euicc,
    cert: &[u8],
    key: &dyn KeyCustody,
) -> Result<Vec<u8>, AuthenticateErrorCode> {
    let ch = euicc.get_euicc_challenge().unwrap();
    let req = auth_request(pki, &TID, &ch, ADDR, cert, key);
    auth(euicc, &req)
}

/// One complete session with the genuine DPauth and DPpb: installs a profile.
fn full_download(pki: &TestPki, euicc: &mut Euicc, iccid: &str) {
    let sig1 = auth_with(pki, euicc, &pki.dpauth.der, &pki.dpauth.key).unwrap();
    let pd = prepare_request(&TID, &sig1, false, None, &pki.dppb.der, &pki.dppb.key, None);
    let otpk = prepare(euicc, &pd).unwrap();
    let bpp = make_bpp(pki, &TID, &otpk, &pki.eid, iccid, ADDR);
    let pir = euicc.load_bound_profile_package(&bpp).unwrap();
    assert!(matches!(
        pir.profile_installation_result_data.value().final_result,
        FinalResult::Success(_)
    ));
}

fn stats(hits: u64, misses: u64, entries: usize) -> CertCacheStats {
    CertCacheStats {
        hits,
        misses,
        entries,
    }
}

#[test]
fn cache_validates_each_chain_once_across_cards_and_downloads() {
    let pki = pki();
    let cache = CertCache::new();
    let mut a = cached_card(&pki, &cache);
    let mut b = cached_card(&pki, &cache);
    full_download(&pki, &mut a, "8944000000000000017");
    assert_eq!(
        cache.stats(),
        stats(0, 2, 2),
        "first sight: DPauth and DPpb in full"
    );
    full_download(&pki, &mut b, "8944000000000000017");
    full_download(&pki, &mut a, "8944000000000000025");
    assert_eq!(cache.stats(), stats(4, 2, 2));
}

#[test]
fn rejects_untrusted_and_forged_dpauth_with_the_cache_on() {
    let pki = pki();
    let other = pki_other();
    let cache = CertCache::new();
    let mut euicc = cached_card(&pki, &cache);
    // Warm the cache with the genuine CERT.DPauth.
    auth_with(&pki, &mut euicc, &pki.dpauth.der, &pki.dpauth.key).unwrap();
    assert_eq!(cache.stats(), stats(0, 1, 1));
    // A DPauth of another CI: unknown CI, as without the cache.
    assert_eq!(
        auth_with(&pki, &mut euicc, &other.dpauth.der, &other.dpauth.key),
        Err(AuthenticateErrorCode::CiPkUnknown)
    );
    // A forgery: the genuine DPauth's key, issuer name and AKI of the trusted CI, but signed
    // by another CI's key. It is a miss and the CI's signature over it fails.
    let forged = rsp_pki::dp_template(
        &pki.ci.cert().unwrap(),
        DpRole::Auth,
        pki.options.curve,
        pki.dpauth.key.public_key(),
        &pki.options.smdp_address,
        &pki.options.smdp_oid,
    )
    .unwrap()
    .sign(&other.ci.key)
    .unwrap();
    assert_eq!(
        auth_with(&pki, &mut euicc, &forged, &pki.dpauth.key),
        Err(AuthenticateErrorCode::InvalidCertificate)
    );
    // The same forgery again: refusals are never cached, it is validated in full again.
    assert_eq!(
        auth_with(&pki, &mut euicc, &forged, &pki.dpauth.key),
        Err(AuthenticateErrorCode::InvalidCertificate)
    );
    // A cached DPpb presented as DPauth: the role is part of the key (wrong role).
    assert_eq!(
        auth_with(&pki, &mut euicc, &pki.dppb.der, &pki.dppb.key),
        Err(AuthenticateErrorCode::InvalidOid)
    );
    let s = cache.stats();
    assert_eq!((s.hits, s.entries), (0, 1), "{s:?}");
    // The same refusals on a card without the cache.
    let mut plain = euicc_for(&pki);
    assert_eq!(
        auth_with(&pki, &mut plain, &forged, &pki.dpauth.key),
        Err(AuthenticateErrorCode::InvalidCertificate)
    );
}

#[test]
fn rejects_bad_signatures_under_a_cached_certificate() {
    let pki = pki();
    let cache = CertCache::new();
    let mut euicc = cached_card(&pki, &cache);
    full_download(&pki, &mut euicc, "8944000000000000017");
    assert_eq!(cache.stats(), stats(0, 2, 2));
    // serverSignature1 altered, CERT.DPauth a cache hit: invalidSignature.
    let ch = euicc.get_euicc_challenge().unwrap();
    let mut req = auth_request(&pki, &TID, &ch, ADDR, &pki.dpauth.der, &pki.dpauth.key);
    req.server_signature1[10] ^= 0x40;
    assert_eq!(
        auth(&mut euicc, &req),
        Err(AuthenticateErrorCode::InvalidSignature)
    );
    // serverSigned1 signed by another key (DPpb's) under the cached DPauth: invalidSignature.
    assert_eq!(
        auth_with(&pki, &mut euicc, &pki.dpauth.der, &pki.dppb.key),
        Err(AuthenticateErrorCode::InvalidSignature)
    );
    assert_eq!(cache.stats().hits, 2);
    // smdpSignature2 altered, CERT.DPpb a cache hit: invalidSignature.
    let sig1 = auth_with(&pki, &mut euicc, &pki.dpauth.der, &pki.dpauth.key).unwrap();
    let mut pd = prepare_request(&TID, &sig1, false, None, &pki.dppb.der, &pki.dppb.key, None);
    pd.smdp_signature2[5] ^= 0x01;
    assert_eq!(
        prepare(&mut euicc, &pd),
        Err(DownloadErrorCode::InvalidSignature)
    );
    // smdpSignature2 made with DPauth's key under the cached DPpb: invalidSignature.
    let pd = prepare_request(
        &TID,
        &sig1,
        false,
        None,
        &pki.dppb.der,
        &pki.dpauth.key,
        None,
    );
    assert_eq!(
        prepare(&mut euicc, &pd),
        Err(DownloadErrorCode::InvalidSignature)
    );
    assert_eq!(cache.stats(), stats(5, 2, 2));
}

#[test]
fn rejects_a_certificate_that_differs_in_any_byte_from_a_cached_one() {
    let pki = pki();
    let cache = CertCache::new();
    let mut euicc = cached_card(&pki, &cache);
    auth_with(&pki, &mut euicc, &pki.dpauth.der, &pki.dpauth.key).unwrap();
    // The cached DPauth with one bit of the CI's signature flipped (its last byte): a miss,
    // validated in full, refused.
    let mut altered = pki.dpauth.der.clone();
    *altered.last_mut().unwrap() ^= 0x01;
    assert_eq!(
        auth_with(&pki, &mut euicc, &altered, &pki.dpauth.key),
        Err(AuthenticateErrorCode::InvalidCertificate)
    );
    assert_eq!(cache.stats(), stats(0, 2, 1));
    // Every single-bit change in the TBS part too (a sample of positions past the header).
    for i in (8..pki.dpauth.der.len() - 80).step_by(37) {
        let mut altered = pki.dpauth.der.clone();
        altered[i] ^= 0x01;
        if rsp_asn1::Certificate::from_der(&altered).is_err() {
            continue; // not even a TLV: the LPA could not send it
        }
        assert!(
            auth_with(&pki, &mut euicc, &altered, &pki.dpauth.key).is_err(),
            "byte {i} altered and accepted"
        );
    }
    assert_eq!(cache.stats().hits, 0);
    assert_eq!(cache.stats().entries, 1);
    // Another valid DPauth of the same CI (new key, same OID): a miss, accepted, a new entry.
    let (der, key) = dp_cert_with_oid(&pki, DpRole::Auth, &pki.options.smdp_oid);
    auth_with(&pki, &mut euicc, &der, &key).unwrap();
    let s = cache.stats();
    assert_eq!((s.hits, s.entries), (0, 2), "{s:?}");
    // The exact cached bytes again: a hit.
    auth_with(&pki, &mut euicc, &pki.dpauth.der, &pki.dpauth.key).unwrap();
    assert_eq!(cache.stats().hits, 1);
}

#[test]
fn rejects_a_cached_certificate_on_a_card_with_other_trusted_cis() {
    let pki = pki();
    let other = pki_other();
    let cache = CertCache::new();
    let mut ours = cached_card(&pki, &cache);
    auth_with(&pki, &mut ours, &pki.dpauth.der, &pki.dpauth.key).unwrap();
    // A card of the other PKI shares the cache: our DPauth is not a hit for it.
    let mut theirs = cached_card(&other, &cache);
    let ch = theirs.get_euicc_challenge().unwrap();
    let mut req = auth_request(&other, &TID, &ch, ADDR, &pki.dpauth.der, &pki.dpauth.key);
    // It names its own CI as the one to use, so only the chain check can refuse.
    req.euicc_ci_pkid_to_be_used =
        rsp_asn1::common::SubjectKeyIdentifier::new(&ci_ski(&other)).unwrap();
    assert_eq!(
        auth(&mut theirs, &req),
        Err(AuthenticateErrorCode::CiPkUnknown)
    );
    assert_eq!(cache.stats(), stats(0, 2, 1));
}

/// A second, independent test PKI (another CI).
fn pki_other() -> TestPki {
    common::pki()
}
