#![no_main]
//! `EUICCInfo1` (BF20), received in ES9+.InitiateAuthentication: decode never panics, decode -> encode -> decode is stable.

use libfuzzer_sys::fuzz_target;
use rsp_asn1::euicc_info::EuiccInfo1;
use smdpp_fuzz::codec_roundtrip;

fuzz_target!(|data: &[u8]| {
    codec_roundtrip::<EuiccInfo1>(data);
});
