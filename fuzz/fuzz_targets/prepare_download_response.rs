#![no_main]
//! `PrepareDownloadResponse` (BF21), received in ES9+.GetBoundProfilePackage: decode never panics, decode -> encode -> decode is stable.

use libfuzzer_sys::fuzz_target;
use rsp_asn1::download::PrepareDownloadResponse;
use smdpp_fuzz::codec_roundtrip;

fuzz_target!(|data: &[u8]| {
    codec_roundtrip::<PrepareDownloadResponse>(data);
});
