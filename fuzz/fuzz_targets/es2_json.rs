#![no_main]
//! ES2+ JSON request bodies (DownloadOrder, ConfirmOrder, CancelOrder, ReleaseProfile, RpmOrder, DeactivateSubscription) as the server parses them (`parse_es2_call`). The first input byte picks the function, the rest is the body. Parsing never panics; parse -> serialize -> parse gives an equal request with the same digest.

use libfuzzer_sys::fuzz_target;
use smdpp_core::es2_json::{Es2Call, Es2Function, parse_es2_call};

fn to_json(call: &Es2Call) -> Vec<u8> {
    match call {
        Es2Call::DownloadOrder(r) => serde_json::to_vec(r),
        Es2Call::ConfirmOrder(r) => serde_json::to_vec(r),
        Es2Call::CancelOrder(r) => serde_json::to_vec(r),
        Es2Call::ReleaseProfile(r) => serde_json::to_vec(r),
        Es2Call::RpmOrder(r) => serde_json::to_vec(r),
        Es2Call::DeactivateSubscription(r) => serde_json::to_vec(r),
    }
    .expect("a parsed request serializes")
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let function = Es2Function::ALL[usize::from(which) % Es2Function::ALL.len()];
    if let Ok(call) = parse_es2_call(function, body) {
        assert_eq!(call.function(), function);
        let json = to_json(&call);
        let again = parse_es2_call(function, &json).expect("its own JSON parses");
        assert_eq!(call, again, "parse -> serialize -> parse");
        assert_eq!(call.digest(), again.digest());
    }
});
