#![no_main]
//! PEM text: certificate bundles (`rsp_pki::Certificate::from_pem_bundle`), private keys (`rsp_crypto::SoftwareKey::from_pem`) and public keys (`rsp_crypto::keys::public_key_from_pem`): parsing never panics; PEM -> DER -> PEM -> DER is stable.

use libfuzzer_sys::fuzz_target;
fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(certs) = rsp_pki::Certificate::from_pem_bundle(text) {
        for cert in certs {
            let again = rsp_pki::Certificate::from_pem(&cert.to_pem()).expect("own PEM parses");
            assert_eq!(again.der(), cert.der(), "PEM -> DER -> PEM -> DER");
        }
    }
    let _ = rsp_pki::Certificate::from_pem(text);
    if let Ok(key) = rsp_crypto::SoftwareKey::from_pem(text) {
        let again = rsp_crypto::SoftwareKey::from_pem(&key.to_pkcs8_pem()).expect("own PEM parses");
        assert_eq!(
            again.to_pkcs8_pem(),
            key.to_pkcs8_pem(),
            "key PEM round trip"
        );
    }
    let _ = rsp_crypto::keys::public_key_from_pem(text);
});
