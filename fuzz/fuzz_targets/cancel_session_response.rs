#![no_main]
//! `CancelSessionResponse` (BF41), received in ES9+.CancelSession: decode never panics, decode -> encode -> decode is stable.

use libfuzzer_sys::fuzz_target;
use rsp_asn1::cancel::CancelSessionResponse;
use smdpp_fuzz::codec_roundtrip;

fuzz_target!(|data: &[u8]| {
    codec_roundtrip::<CancelSessionResponse>(data);
});
