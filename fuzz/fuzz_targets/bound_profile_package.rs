#![no_main]
//! `BoundProfilePackage` (BF36) and the ES8+ commands inside it (InitialiseSecureChannel, ConfigureISDP, StoreMetadata, ReplaceSessionKeys): decode never panics, decode -> encode -> decode is stable.

use libfuzzer_sys::fuzz_target;
use rsp_asn1::bpp::{
    BoundProfilePackage, ConfigureIsdpRequest, InitialiseSecureChannelRequest,
    ReplaceSessionKeysRequest, StoreMetadataRequest,
};
use smdpp_fuzz::roundtrip_with;

fuzz_target!(|data: &[u8]| {
    if let Ok(bpp) = BoundProfilePackage::decode(data) {
        let encoded = bpp.encode();
        let again = BoundProfilePackage::decode(&encoded).expect("re-encoded BPP decodes");
        assert_eq!(bpp, again, "BPP: decode(encode(v)) != v");
        assert_eq!(encoded, again.encode(), "BPP: encoding is not stable");
    }
    if let Ok(iscr) = InitialiseSecureChannelRequest::decode(data) {
        let encoded = iscr.encode();
        let again = InitialiseSecureChannelRequest::decode(&encoded).expect("re-encoded decodes");
        assert_eq!(iscr, again);
        assert_eq!(encoded, again.encode());
    }
    roundtrip_with(
        data,
        ConfigureIsdpRequest::decode,
        ConfigureIsdpRequest::encode,
    );
    roundtrip_with(
        data,
        StoreMetadataRequest::decode,
        StoreMetadataRequest::encode,
    );
    roundtrip_with(
        data,
        ReplaceSessionKeysRequest::decode,
        ReplaceSessionKeysRequest::encode,
    );
});
