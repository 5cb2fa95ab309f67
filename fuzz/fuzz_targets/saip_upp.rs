#![no_main]
//! The SAIP profile package (`saip::Upp`, PE_Definitions 3.3.1) and single Profile Elements: decode never panics; the codec is byte-exact, so `encode(decode(x)) == x`, and decode -> encode -> decode is stable.

use libfuzzer_sys::fuzz_target;
use saip::{ProfileElement, Upp};
use smdpp_fuzz::hex;

fuzz_target!(|data: &[u8]| {
    if let Ok(upp) = Upp::decode(data) {
        let encoded = upp.encode();
        assert!(encoded == data, "Upp: encode(decode(x)) != x");
        let again = Upp::decode(&encoded).expect("re-encoded UPP decodes");
        assert_eq!(again.encode(), encoded, "Upp: encoding is not stable");
        // What the server and the virtual eUICC read from a package.
        let _ = upp.iccid();
        let _ = upp.imsi();
    }
    if let Ok(pe) = ProfileElement::decode(data) {
        let encoded = pe.encode();
        assert!(
            encoded == data,
            "PE: encode(decode(x)) != x: {}",
            hex(&encoded)
        );
    }
});
