#![no_main]
//! X.509 certificates in DER: `rsp_pki::Certificate::from_der` (the SGP.22 profile's parser: extensions, EID name constraints, policies...) and the raw `rsp_asn1::Certificate`: parsing never panics; a parsed certificate keeps its exact bytes and every accessor is total.

use libfuzzer_sys::fuzz_target;
use smdpp_fuzz::codec_roundtrip;

fuzz_target!(|data: &[u8]| {
    codec_roundtrip::<rsp_asn1::Certificate>(data);
    if let Ok(cert) = rsp_pki::Certificate::from_der(data) {
        assert_eq!(cert.der(), data, "a parsed certificate keeps its bytes");
        let again = rsp_pki::Certificate::from_der(cert.der()).expect("its own DER parses");
        assert_eq!(again.tbs_der(), cert.tbs_der());
        let pem = cert.to_pem();
        let from_pem = rsp_pki::Certificate::from_pem(&pem).expect("its PEM parses");
        assert_eq!(from_pem.der(), data, "DER -> PEM -> DER");
        let _ = (
            cert.ski(),
            cert.aki(),
            cert.key_usage(),
            cert.basic_constraints(),
        );
        let _ = (
            cert.policies(),
            cert.ext_key_usage(),
            cert.subject_alt_names(),
        );
        let _ = (
            cert.name_constraints(),
            cert.permitted_eins(),
            cert.registered_ids(),
        );
        let _ = (
            cert.not_before(),
            cert.not_after(),
            cert.subject_attributes(),
        );
        let _ = (cert.curve(), cert.public_key(), cert.signature());
    }
});
