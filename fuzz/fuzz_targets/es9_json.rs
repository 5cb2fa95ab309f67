#![no_main]
//! ES9+ JSON bodies: the five request bodies the server parses (`parse_request`) and the three response bodies the LPA parses (`ResponseMessage<T>`). The first input byte picks the shape, the rest is the body. Parsing never panics; parse -> serialize -> parse gives an equal value.

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use smdpp_core::es9_json::{
    AuthenticateClientAnswer, AuthenticateClientRequest, CancelSessionRequest, Es9Request,
    GetBoundProfilePackageRequest, GetBoundProfilePackageResponse, HandleNotificationRequest,
    InitiateAuthenticationRequest, InitiateAuthenticationResponse, ResponseMessage, parse_request,
};

fn request<T: Es9Request + PartialEq + std::fmt::Debug>(body: &[u8]) {
    if let Ok(req) = parse_request::<T>(body) {
        let json = serde_json::to_vec(&req).expect("a parsed request serializes");
        let again = parse_request::<T>(&json).expect("its own JSON parses");
        assert_eq!(req, again, "parse -> serialize -> parse");
    }
}

fn response<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(body: &[u8]) {
    if let Ok(msg) = serde_json::from_slice::<ResponseMessage<T>>(body) {
        let json = serde_json::to_vec(&msg).expect("a parsed response serializes");
        let again: ResponseMessage<T> = serde_json::from_slice(&json).expect("its own JSON parses");
        assert_eq!(msg, again, "parse -> serialize -> parse");
        let _ = msg.into_result();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => request::<InitiateAuthenticationRequest>(body),
        1 => request::<AuthenticateClientRequest>(body),
        2 => request::<GetBoundProfilePackageRequest>(body),
        3 => request::<HandleNotificationRequest>(body),
        4 => request::<CancelSessionRequest>(body),
        5 => response::<InitiateAuthenticationResponse>(body),
        6 => response::<AuthenticateClientAnswer>(body),
        _ => response::<GetBoundProfilePackageResponse>(body),
    }
});
