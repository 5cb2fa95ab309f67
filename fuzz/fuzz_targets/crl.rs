#![no_main]
//! Certificate Revocation Lists: `rsp_pki::Crl::from_bytes` (DER or PEM; what `serve --crl`
//! files and `--crl-url` bodies hold): parsing never panics; a parsed CRL keeps its exact bytes,
//! survives DER -> PEM -> DER, and its accessors and checks are total.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(crl) = rsp_pki::Crl::from_bytes(data) {
        let again = rsp_pki::Crl::from_der(crl.der()).expect("its own DER parses");
        assert_eq!(again.tbs_der(), crl.tbs_der());
        let from_pem = rsp_pki::Crl::from_pem(&crl.to_pem()).expect("its PEM parses");
        assert_eq!(from_pem.der(), crl.der(), "DER -> PEM -> DER");
        if data.first() == Some(&0x30) {
            assert_eq!(crl.der(), data, "a parsed DER CRL keeps its bytes");
        }
        let _ = (
            crl.issuer_der(),
            crl.aki(),
            crl.crl_number(),
            crl.crl_number_hex(),
        );
        let _ = (crl.this_update(), crl.next_update(), crl.revoked_count());
        for (serial, _) in crl.revoked() {
            assert!(crl.is_revoked(serial));
        }
        assert!(
            !crl.is_stale(crl.next_update()),
            "stale only after nextUpdate"
        );
    }
});
