#![no_main]
//! `EUICCInfo2` (BF22), inside AuthenticateServerResponse: decode never panics, decode -> encode -> decode is stable.

use libfuzzer_sys::fuzz_target;
use rsp_asn1::euicc_info::EuiccInfo2;
use smdpp_fuzz::codec_roundtrip;

fuzz_target!(|data: &[u8]| {
    codec_roundtrip::<EuiccInfo2>(data);
});
