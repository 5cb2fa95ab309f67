#![no_main]
//! `PendingNotification` (ES9+.HandleNotification; v2 and v3 alternatives) and `ProfileInstallationResult` (BF37) with its signed data: decode never panics, decode -> encode -> decode is stable.

use libfuzzer_sys::fuzz_target;
use rsp_asn1::download::{ProfileInstallationResult, ProfileInstallationResultData};
use rsp_asn1::notification::{OtherSignedNotification, PendingNotification};
use smdpp_fuzz::codec_roundtrip;

fuzz_target!(|data: &[u8]| {
    codec_roundtrip::<PendingNotification>(data);
    codec_roundtrip::<ProfileInstallationResult>(data);
    codec_roundtrip::<ProfileInstallationResultData>(data);
    codec_roundtrip::<OtherSignedNotification>(data);
});
