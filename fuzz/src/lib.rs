//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! Every target feeds libFuzzer's input to one decoder (or one family of decoders, each
//! tried in turn: a decoder rejects a wrong outer tag first, so the fuzzer reaches all of
//! them) and checks two properties:
//!
//! 1. decoding never panics, overflows (targets are built with debug assertions) or
//!    runs away: every input is either a value or an error;
//! 2. where an encoder exists, decode -> encode -> decode is stable: the second decode
//!    succeeds, gives an equal value, and encoding that value again gives the same bytes.

use std::fmt::Debug;

use rsp_asn1::Codec;

/// Decode `data` as `T`; when it decodes, check the round trip. Returns whether it decoded.
pub fn codec_roundtrip<T: Codec + PartialEq + Debug>(data: &[u8]) -> bool {
    let Ok(value) = T::decode(data) else {
        return false;
    };
    let encoded = value.encode();
    let again = match T::decode(&encoded) {
        Ok(v) => v,
        Err(e) => panic!(
            "{}: re-encoding of a decoded value does not decode: {e:?}\nvalue: {value:?}\nencoding: {}",
            std::any::type_name::<T>(),
            hex(&encoded)
        ),
    };
    assert_eq!(
        value,
        again,
        "{}: decode(encode(v)) != v",
        std::any::type_name::<T>()
    );
    assert_eq!(
        encoded,
        again.encode(),
        "{}: encoding is not stable",
        std::any::type_name::<T>()
    );
    true
}

/// Decode -> encode -> decode for a decoder/encoder pair given as closures (types that
/// borrow from their input, or that are not [`Codec`]).
pub fn roundtrip_with<T, E>(
    data: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, E>,
    encode: impl Fn(&T) -> Vec<u8>,
) -> bool
where
    T: PartialEq + Debug,
    E: Debug,
{
    let Ok(value) = decode(data) else {
        return false;
    };
    let encoded = encode(&value);
    let again = match decode(&encoded) {
        Ok(v) => v,
        Err(e) => panic!(
            "re-encoding of a decoded value does not decode: {e:?}\nvalue: {value:?}\nencoding: {}",
            hex(&encoded)
        ),
    };
    assert_eq!(value, again, "decode(encode(v)) != v");
    assert_eq!(encoded, encode(&again), "encoding is not stable");
    true
}

/// Lower-case hex, for panic messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
