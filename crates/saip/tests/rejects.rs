//! Bad input: each malformed form is an error with the PE index and component path, never
//! a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use saip::{ErrorKind, SaipError, Upp};

fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_vec();
    let mut v = Vec::new();
    rsp_asn1::tlv::write_len(&mut v, value.len());
    out.extend_from_slice(&v);
    out.extend_from_slice(value);
    out
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// ProfileHeader contents with the given ICCID element.
fn header_with(iccid: Vec<u8>) -> Vec<u8> {
    tlv(
        &[0xA0],
        &cat(&[
            tlv(&[0x80], &[2]),
            tlv(&[0x81], &[3]),
            tlv(&[0x82], b"test"),
            iccid,
            tlv(&[0xA5], &tlv(&[0x81], &[])),
            tlv(
                &[0xA6],
                &tlv(&[0x06], &[0x67, 0x81, 0x0F, 0x01, 0x02, 0x01]),
            ),
        ]),
    )
}

fn header() -> Vec<u8> {
    header_with(tlv(
        &[0x83],
        &[0x89, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0x01, 0x23, 0x41],
    ))
}

fn pe_header(id: u8) -> Vec<u8> {
    tlv(&[0xA0], &cat(&[tlv(&[0x80], &[]), tlv(&[0x81], &[id])]))
}

fn end(id: u8) -> Vec<u8> {
    tlv(&[0xAA], &pe_header(id))
}

fn pin_codes(config: Vec<u8>) -> Vec<u8> {
    tlv(
        &[0xA2],
        &cat(&[
            pe_header(2),
            tlv(&[0xA1], &tlv(&[0xA0], &tlv(&[0x30], &config))),
        ]),
    )
}

fn pin_config(extra: &[Vec<u8>]) -> Vec<u8> {
    let mut parts = vec![tlv(&[0x80], &[0x01]), tlv(&[0x81], b"1234\xFF\xFF\xFF\xFF")];
    parts.extend_from_slice(extra);
    cat(&parts)
}

fn usim(files: &[Vec<u8>]) -> Vec<u8> {
    let mut parts = vec![
        pe_header(3),
        tlv(&[0x81], &[0x67, 0x81, 0x0F, 0x01, 0x02, 0x04]),
    ];
    parts.extend_from_slice(files);
    tlv(&[0xB3], &cat(&parts))
}

/// The mandatory USIM files: adf-usim [2], ef-imsi [3], ef-arr [4], ef-ust [8], ef-spn [13],
/// ef-est [14], ef-acc [18], ef-ecc [22]; each an empty File.
fn usim_files(skip: u8) -> Vec<Vec<u8>> {
    [0xA2u8, 0xA3, 0xA4, 0xA8, 0xAD, 0xAE, 0xB2, 0xB6]
        .iter()
        .filter(|&&t| t != skip)
        .map(|&t| tlv(&[t], &[]))
        .collect()
}

fn decode_err(bytes: &[u8]) -> String {
    match Upp::decode(bytes) {
        Ok(_) => panic!("accepted bad input {}", hex::encode(bytes)),
        Err(e) => e.to_string(),
    }
}

#[test]
fn minimal_package_decodes_and_round_trips() {
    let bytes = cat(&[
        header(),
        pin_codes(pin_config(&[])),
        usim(&usim_files(0)),
        end(4),
    ]);
    let upp = Upp::decode(&bytes).unwrap();
    upp.check_complete().unwrap();
    assert_eq!(upp.encode(), bytes);
}

#[test]
fn rejects_empty_input() {
    assert_eq!(decode_err(&[]), "UPP: truncated input");
}

#[test]
fn rejects_truncated_pe() {
    let mut bytes = cat(&[header(), end(4)]);
    bytes.pop();
    assert_eq!(decode_err(&bytes), "PE #1 (end): truncated input");
}

#[test]
fn rejects_overlong_length() {
    // The End PE claims one more byte than there is.
    let bytes = cat(&[header(), vec![0xAA, 0x08], pe_header(4)]);
    assert_eq!(decode_err(&bytes), "PE #1 (end): truncated input");
    // And an inner length that overruns its parent.
    let bytes = cat(&[
        header(),
        vec![0xAA, 0x07, 0xA0, 0x06, 0x80, 0x00, 0x81, 0x01, 0x04],
    ]);
    assert_eq!(
        decode_err(&bytes),
        "PE #1 (end) / end-header: truncated input"
    );
}

#[test]
fn rejects_non_minimal_length() {
    let bytes = cat(&[header(), vec![0xAA, 0x81, 0x07], pe_header(4)]);
    assert!(decode_err(&bytes).contains("non-minimal length"));
}

#[test]
fn rejects_indefinite_length() {
    let bytes = cat(&[header(), vec![0xAA, 0x80], pe_header(4), vec![0, 0]]);
    assert!(decode_err(&bytes).contains("indefinite length"));
}

#[test]
fn rejects_trailing_bytes_inside_a_pe() {
    let bytes = cat(&[
        header(),
        tlv(&[0xAA], &cat(&[pe_header(4), tlv(&[0x81], &[1])])),
    ]);
    assert_eq!(
        decode_err(&bytes),
        "PE #1 (end): unexpected component with tag 81"
    );
}

#[test]
fn rejects_garbage_after_the_last_pe() {
    let bytes = cat(&[header(), end(4), vec![0x00]]);
    assert_eq!(decode_err(&bytes), "PE #2: truncated input");
    let bytes = cat(&[header(), end(4), vec![0x30, 0x00]]);
    assert_eq!(
        decode_err(&bytes),
        "PE #2: unexpected component with tag 30"
    );
}

#[test]
fn rejects_a_package_not_starting_with_the_header() {
    let bytes = cat(&[end(4), header()]);
    assert_eq!(
        decode_err(&bytes),
        "PE #0 (end): the first PE must be the ProfileHeader"
    );
    let bytes = cat(&[header(), header()]);
    assert_eq!(
        decode_err(&bytes),
        "PE #1 (header): only the first PE may be a ProfileHeader"
    );
}

#[test]
fn rejects_wrong_tag_in_profile_header() {
    let bytes = header_with(tlv(&[0x84], &[0x89; 10]));
    assert_eq!(
        decode_err(&bytes),
        "PE #0 (header) / iccid: expected tag 83, found 84"
    );
}

#[test]
fn rejects_bad_iccid_size() {
    let bytes = header_with(tlv(&[0x83], &[0x89; 9]));
    assert_eq!(
        decode_err(&bytes),
        "PE #0 (header) / iccid: invalid OCTET STRING: size out of range"
    );
}

#[test]
fn rejects_explicit_default_value() {
    // pinAttributes 7 is the DEFAULT: DER forbids encoding it.
    let bytes = cat(&[header(), pin_codes(pin_config(&[tlv(&[0x83], &[7])]))]);
    assert_eq!(
        decode_err(&bytes),
        "PE #1 (pinCodes) / pinCodes / pinconfig[0] / pinAttributes: DEFAULT value encoded explicitly (not DER)"
    );
}

#[test]
fn rejects_pin_value_of_wrong_size() {
    let cfg = cat(&[tlv(&[0x80], &[0x01]), tlv(&[0x81], b"1234")]);
    let bytes = cat(&[header(), pin_codes(cfg)]);
    assert_eq!(
        decode_err(&bytes),
        "PE #1 (pinCodes) / pinCodes / pinconfig[0] / pinValue: invalid OCTET STRING: size out of range"
    );
}

#[test]
fn rejects_non_minimal_integer() {
    let cfg = cat(&[
        tlv(&[0x80], &[0x00, 0x01]),
        tlv(&[0x81], b"1234\xFF\xFF\xFF\xFF"),
    ]);
    let bytes = cat(&[header(), pin_codes(cfg)]);
    assert!(decode_err(&bytes).ends_with("keyReference: invalid INTEGER: non-minimal integer"));
}

#[test]
fn rejects_wrong_template_id_tag() {
    let mut bytes = cat(&[header(), usim(&usim_files(0))]);
    let at = header().len() + 2 + 7;
    assert_eq!(bytes[at], 0x81);
    bytes[at] = 0x80;
    assert_eq!(
        decode_err(&bytes),
        "PE #1 (usim) / templateID: expected tag 81, found 80"
    );
}

#[test]
fn rejects_missing_mandatory_template_file() {
    let bytes = cat(&[header(), usim(&usim_files(0xA3))]);
    assert_eq!(
        decode_err(&bytes),
        "PE #1 (usim) / ef-imsi: missing mandatory element A3"
    );
}

#[test]
fn rejects_out_of_order_template_files() {
    // ef-imsi twice.
    let mut files = usim_files(0);
    files.insert(2, tlv(&[0xA3], &[]));
    let bytes = cat(&[header(), usim(&files)]);
    assert_eq!(
        decode_err(&bytes),
        "PE #1 (usim) / ef-imsi: unexpected component with tag A3"
    );
}

#[test]
fn rejects_unknown_file_item() {
    let mut files = usim_files(0);
    files[1] = tlv(&[0xA3], &tlv(&[0x84], &[1]));
    let bytes = cat(&[header(), usim(&files)]);
    assert_eq!(
        decode_err(&bytes),
        "PE #1 (usim) / ef-imsi / [0]: unexpected component with tag 84"
    );
}

#[test]
fn rejects_primitive_pe() {
    let bytes = cat(&[header(), vec![0x8A, 0x00]]);
    assert_eq!(
        decode_err(&bytes),
        "PE #1: unexpected component with tag 8A"
    );
}

#[test]
fn rejects_malformed_tag() {
    // High-tag-number form for a number below 31 is not minimal.
    let bytes = cat(&[header(), vec![0xBF, 0x0A, 0x00]]);
    assert!(decode_err(&bytes).contains("malformed tag"));
}

#[test]
fn rejects_bad_personalization_values() {
    let bytes = cat(&[header(), usim(&usim_files(0)), end(4)]);
    let mut upp = Upp::decode(&bytes).unwrap();
    assert!(matches!(
        upp.set_iccid("12345"),
        Err(SaipError::InvalidValue { what: "ICCID", .. })
    ));
    assert!(matches!(
        upp.set_imsi("00101012345678X"),
        Err(SaipError::InvalidValue { what: "IMSI", .. })
    ));
    assert!(matches!(
        upp.set_ki_opc(&[0; 15], &[0; 16]),
        Err(SaipError::InvalidValue { what: "Ki", .. })
    ));
    assert!(matches!(
        upp.set_ki_opc(&[0; 16], &[0; 16]),
        Err(SaipError::NotFound(_))
    ));
    assert!(matches!(
        upp.set_pin(1, [0x30; 8]),
        Err(SaipError::NotFound(_))
    ));
    // EF.IMSI has no content yet: set_imsi adds it, imsi() reads it back.
    assert!(upp.imsi().is_err());
    upp.set_imsi("001010000000001").unwrap();
    assert_eq!(upp.imsi().unwrap(), "001010000000001");
}

#[test]
fn error_kinds_are_structured() {
    let bytes = header_with(tlv(&[0x84], &[0x89; 10]));
    match Upp::decode(&bytes) {
        Err(SaipError::Decode(f)) => {
            assert_eq!(f.index, Some(0));
            assert_eq!(f.pe, Some("header"));
            assert_eq!(f.path, vec!["iccid".to_owned()]);
            assert!(matches!(f.kind, ErrorKind::Der(_)));
        }
        other => panic!("{other:?}"),
    }
}
