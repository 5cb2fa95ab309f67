#![no_main]
//! Activation Codes (SGP.22 section 4.1, with or without `LPA:`): parsing never panics; a parsed code validates, and `parse(to_string(parse(x)))` equals `parse(x)`.

use libfuzzer_sys::fuzz_target;
use smdpp_core::ActivationCode;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ac) = ActivationCode::parse(text) {
        ac.validate().expect("a parsed Activation Code validates");
        let printed = ac.to_string();
        let again = ActivationCode::parse(&printed).expect("its own text parses");
        assert_eq!(ac, again, "parse -> display -> parse");
        assert_eq!(printed, again.to_string());
        let qr = ActivationCode::parse(&ac.to_qr_string()).expect("its QR text parses");
        assert_eq!(ac, qr);
    }
});
