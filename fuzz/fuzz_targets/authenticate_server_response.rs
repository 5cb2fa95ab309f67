#![no_main]
//! `AuthenticateServerResponse` (BF38), the eUICC's answer the SM-DP+ receives in ES9+.AuthenticateClient: decode never panics, decode -> encode -> decode is stable.

use libfuzzer_sys::fuzz_target;
use rsp_asn1::auth::AuthenticateServerResponse;
use smdpp_fuzz::codec_roundtrip;

fuzz_target!(|data: &[u8]| {
    codec_roundtrip::<AuthenticateServerResponse>(data);
});
