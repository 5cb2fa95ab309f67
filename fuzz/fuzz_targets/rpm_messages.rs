#![no_main]
//! The SGP.22 v3 Remote Profile Management messages of `rsp_asn1::rpm` (RpmPackage, SmdpSigned3, AuthenticateClientOkRpm, ContactPcmpResponse, LoadRpmPackageRequest/Result, RpmCommand(Result), UpdateMetadataRequest, the contactPcmp result element): each decoder in turn; decode never panics, decode -> encode -> decode is stable.

use libfuzzer_sys::fuzz_target;
use rsp_asn1::rpm::{
    AuthenticateClientOkRpm, ContactPcmpResponse, LoadRpmPackageRequest, LoadRpmPackageResult,
    RpmCommand, RpmCommandResult, RpmPackage, SmdpSigned3, UpdateMetadataRequest,
};
use smdpp_fuzz::{codec_roundtrip, roundtrip_with};

fuzz_target!(|data: &[u8]| {
    codec_roundtrip::<LoadRpmPackageResult>(data);
    codec_roundtrip::<RpmPackage>(data);
    codec_roundtrip::<SmdpSigned3>(data);
    codec_roundtrip::<AuthenticateClientOkRpm>(data);
    codec_roundtrip::<LoadRpmPackageRequest>(data);
    codec_roundtrip::<RpmCommand>(data);
    codec_roundtrip::<RpmCommandResult>(data);
    codec_roundtrip::<UpdateMetadataRequest>(data);
    roundtrip_with(
        data,
        ContactPcmpResponse::decode_result_element,
        ContactPcmpResponse::encode_result_element,
    );
});
