//! Inventory parsing: good files, every rejection with its exact message, in CSV and JSON
//! lines, and agreement with saip personalization.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use saip::{OperatorKey, Template};
use smdpp_inventory::{Field, Format, ImportError, Options, Report, Row, RowError, RowReader};

const HEADER: &str = "iccid,imsi,ki,opc,pin1,puk1,pin2,puk2,adm1";
const KI: &str = "000102030405060708090a0b0c0d0e0f";
const OPC: &str = "00112233445566778899AABBCCDDEEFF";

/// A valid ICCID for index `i`.
fn iccid(i: u64) -> String {
    saip::personalize::iccid_with_luhn(&format!("894900{i:012}")).unwrap()
}

fn imsi(i: u64) -> String {
    format!("00101{i:010}")
}

/// A valid CSV line for index `i`, in the column order of [`HEADER`].
fn line(i: u64) -> String {
    format!(
        "{},{},{KI},{OPC},1234,12345678,5678,87654321,12345678",
        iccid(i),
        imsi(i)
    )
}

/// A valid CSV line with one column replaced.
fn line_with(i: u64, column: usize, value: &str) -> String {
    let l = line(i);
    let mut parts: Vec<&str> = l.split(',').collect();
    parts[column] = value;
    parts.join(",")
}

fn all(format: Format, input: &str) -> Vec<Result<Row, RowError>> {
    let reader = RowReader::new(format, input.as_bytes(), Options::default()).unwrap();
    reader.map(|r| r.unwrap()).collect()
}

fn csv(lines: &[String]) -> String {
    let mut s = String::from(HEADER);
    s.push('\n');
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// The only result of a one-row CSV file must be this rejection.
fn assert_csv_rejects(row: &str, field: &str, message: &str) {
    let out = all(Format::Csv, &csv(&[row.to_owned()]));
    assert_eq!(out.len(), 1);
    let e = out[0].as_ref().unwrap_err();
    assert_eq!(
        (e.line, e.field.as_deref(), e.message.as_str()),
        (2, Some(field), message)
    );
}

fn header_error(input: &str) -> ImportError {
    match RowReader::new(Format::Csv, input.as_bytes(), Options::default()) {
        Ok(_) => panic!("header accepted"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------- CSV

#[test]
fn good_csv_file() {
    let input = format!(
        "iccid,imsi,ki,op,pin1,puk1,pin2,puk2,adm1,spn,mnc_len\n{},{},{KI},{OPC},1234,12345678,5678,87654321,0102030405060708,Acme,3\n{}\n",
        iccid(1),
        imsi(1),
        line_with(2, 0, &iccid(2)) + ",,"
    );
    let out = all(Format::Csv, &input);
    assert_eq!(out.len(), 2);
    let r = out[0].as_ref().unwrap();
    assert_eq!(r.line, 2);
    assert_eq!(r.iccid, iccid(1));
    assert_eq!(r.imsi, imsi(1));
    assert_eq!(r.mnc_len, 3);
    assert_eq!(r.ki.expose(), KI);
    assert!(matches!(&r.operator_key, OperatorKey::Op(k) if k.expose() == OPC));
    assert_eq!(r.adm1.expose(), "0102030405060708");
    assert_eq!(r.spn.as_deref(), Some("Acme"));
    // Second row: op given in the op column (header says op), spn and mnc_len empty.
    let r2 = out[1].as_ref().unwrap();
    assert_eq!((r2.line, r2.mnc_len, r2.spn.clone()), (3, 2, None));
}

#[test]
fn accepted_rows_personalize() {
    let t = Template::usim_isim_milenage().unwrap();
    let input = csv(&(0..5).map(line).collect::<Vec<_>>());
    for r in all(Format::Csv, &input) {
        let p = r.unwrap().personalization();
        t.personalize(&p).unwrap();
    }
}

#[test]
fn header_is_case_and_space_insensitive_and_any_order() {
    let input = format!(
        " PIN1 ,IMSI,Ki,OPc,ICCID,puk1,pin2,puk2,adm1\n1234,{},{KI},{OPC},{},12345678,5678,87654321,12345678\n",
        imsi(0),
        iccid(0)
    );
    let out = all(Format::Csv, &input);
    assert_eq!(out[0].as_ref().unwrap().iccid, iccid(0));
}

#[test]
fn rejects_bad_luhn() {
    let good = iccid(1);
    let bad = format!("{}{}", &good[..18], (good.as_bytes()[18] - b'0' + 1) % 10);
    let expected = good.as_bytes()[18] - b'0';
    assert_csv_rejects(
        &line_with(1, 0, &bad),
        "iccid",
        &format!(
            "ICCID {bad}: Luhn check digit should be {expected}, got {}",
            (expected + 1) % 10
        ),
    );
    assert_csv_rejects(
        &line_with(1, 0, "8949000000000000017"),
        "iccid",
        "ICCID 8949000000000000017: Luhn check digit should be 8, got 7",
    );
}

#[test]
fn rejects_bad_iccid_shape() {
    assert_csv_rejects(
        &line_with(1, 0, "89490000000018"),
        "iccid",
        "ICCID 89490000000018: 14 digits; accepted are 19 or 20 digits whose last one is the Luhn check digit",
    );
    assert_csv_rejects(
        &line_with(1, 0, "1949000000000000014"),
        "iccid",
        "ICCID 1949000000000000014: must start with 89 (ITU-T E.118)",
    );
}

#[test]
fn rejects_short_ki() {
    assert_csv_rejects(
        &line_with(1, 2, "000102030405060708090a0b0c0d0e"),
        "ki",
        "Ki must be exactly 16 bytes (32 hex digits), got 30 hex digits",
    );
    assert_csv_rejects(
        &line_with(1, 3, "x0112233445566778899AABBCCDDEEFF"),
        "opc",
        "OPc must be 32 hex digits: character 1 is not a hex digit",
    );
}

#[test]
fn rejects_bad_imsi() {
    assert_csv_rejects(
        &line_with(1, 1, "00101000000000A"),
        "imsi",
        "IMSI 00101000000000A: character 15 is not a decimal digit",
    );
    assert_csv_rejects(
        &line_with(1, 1, "0010100000000001"),
        "imsi",
        "IMSI 0010100000000001: 16 digits; expected 6 to 15",
    );
}

#[test]
fn rejects_bad_mnc_len() {
    let input = format!("{HEADER},mnc_len\n{},4\n{},x\n", line(1), line(2));
    let out = all(Format::Csv, &input);
    let e = out[0].as_ref().unwrap_err();
    assert_eq!(
        (e.field.as_deref(), e.message.as_str()),
        (Some("mnc_len"), "MNC length must be 2 or 3, got 4")
    );
    let e = out[1].as_ref().unwrap_err();
    assert_eq!(e.message, "MNC length must be 2 or 3, got \"x\"");
}

#[test]
fn rejects_imsi_outside_home_plmn() {
    let opts = Options {
        home_plmn: Some("00102".into()),
        ..Options::default()
    };
    let input = csv(&[line(1)]);
    let out: Vec<_> = RowReader::csv(input.as_bytes(), opts).unwrap().collect();
    let e = out[0].as_ref().unwrap().as_ref().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "line 2: imsi: IMSI {}: MCC/MNC 00101 does not match the home PLMN 00102",
            imsi(1)
        )
    );
}

#[test]
fn rejects_pin_letters() {
    assert_csv_rejects(
        &line_with(1, 4, "1a34"),
        "pin1",
        "PIN1 must be 4 to 8 decimal digits (got 4 characters, character 2 is not a decimal digit)",
    );
    assert_csv_rejects(
        &line_with(1, 7, "8765432"),
        "puk2",
        "PUK2 must be exactly 8 decimal digits (got 7 characters)",
    );
    assert_csv_rejects(
        &line_with(1, 8, "1234567Z"),
        "adm1",
        "ADM1 must be 8 decimal digits or 16 hex digits (got 8 characters)",
    );
}

#[test]
fn rejects_missing_value() {
    assert_csv_rejects(&line_with(1, 5, ""), "puk1", "required value missing");
    assert_csv_rejects(
        &line_with(1, 3, ""),
        "opc",
        "required value missing (opc or op)",
    );
    let input = format!("{HEADER},op\n{},{OPC}\n", line(1));
    let out = all(Format::Csv, &input);
    assert_eq!(
        out[0].as_ref().unwrap_err().message,
        "give either opc or op, not both"
    );
}

#[test]
fn rejects_bad_spn() {
    let input = format!(
        "{HEADER},spn\n{},Caf\u{e9}\n{},ABCDEFGHIJKLMNOPQ\n",
        line(1),
        line(2)
    );
    let out = all(Format::Csv, &input);
    assert_eq!(
        out[0].as_ref().unwrap_err().message,
        "SPN \"Caf\u{e9}\": character '\u{e9}' is not in the supported GSM default alphabet subset"
    );
    assert_eq!(
        out[1].as_ref().unwrap_err().message,
        "SPN \"ABCDEFGHIJKLMNOPQ\": 17 characters; at most 16"
    );
}

#[test]
fn rejects_unknown_column() {
    let e = header_error(&format!("{HEADER},msisdn\n{},1\n", line(1)));
    assert!(matches!(&e, ImportError::UnknownColumn { column, line: 1 } if column == "msisdn"));
    assert_eq!(
        e.to_string(),
        "line 1: unknown column \"msisdn\"; known columns are iccid, imsi, ki, opc, op, pin1, puk1, pin2, puk2, adm1, spn, mnc_len"
    );
}

#[test]
fn rejects_missing_column() {
    let e = header_error("iccid,imsi,opc,pin1,puk1,pin2,puk2,adm1\n");
    assert_eq!(e.to_string(), "missing required column ki");
    let e = header_error("iccid,imsi,ki,pin1,puk1,pin2,puk2,adm1\n");
    assert_eq!(e.to_string(), "missing required column opc (or op)");
}

#[test]
fn rejects_duplicate_column_and_empty_file() {
    let e = header_error(&format!("{HEADER},KI\n"));
    assert_eq!(e.to_string(), "line 1: column \"ki\" appears twice");
    assert!(matches!(header_error(""), ImportError::Empty));
    assert!(matches!(header_error("\n\r\n\n"), ImportError::Empty));
    assert!(matches!(header_error("\u{feff}"), ImportError::Empty));
}

#[test]
fn rejects_duplicate_iccid() {
    let dup = line_with(3, 0, &iccid(1));
    let out = all(Format::Csv, &csv(&[line(1), line(2), dup, line(4)]));
    assert_eq!(out.iter().filter(|r| r.is_ok()).count(), 3);
    let e = out[2].as_ref().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "line 4: iccid: duplicate ICCID {}: already on an earlier row of this file",
            iccid(1)
        )
    );
}

#[test]
fn rejects_duplicate_imsi() {
    let dup = line_with(3, 1, &imsi(2));
    let out = all(Format::Csv, &csv(&[line(1), line(2), dup]));
    let e = out[2].as_ref().unwrap_err();
    assert_eq!(
        (e.line, e.field.as_deref(), e.message.clone()),
        (
            4,
            Some("imsi"),
            format!(
                "duplicate IMSI {}: already on an earlier row of this file",
                imsi(2)
            )
        )
    );
}

#[test]
fn rejected_row_does_not_reserve_its_identifiers() {
    // Row 2 is rejected (bad PIN); row 3 reuses its ICCID and is accepted.
    let out = all(Format::Csv, &csv(&[line_with(1, 4, "12"), line(1)]));
    assert!(out[0].is_err());
    assert!(out[1].is_ok());
}

#[test]
fn quoted_fields_with_commas() {
    let input = format!(
        "{HEADER},spn\n\"{}\",\"{}\",{KI},\"{OPC}\",1234,12345678,5678,87654321,12345678,\"Acme, \"\"Mobile\"\"\"\n",
        iccid(1),
        imsi(1)
    );
    let out = all(Format::Csv, &input);
    let r = out[0].as_ref().unwrap();
    assert_eq!(r.spn.as_deref(), Some("Acme, \"Mobile\""));
    assert_eq!(r.iccid, iccid(1));
}

#[test]
fn quoted_field_over_two_lines_keeps_line_numbers() {
    // The record on lines 2-3 has a line break inside a quoted SPN (rejected by the SPN
    // rule); the next record starts on line 4.
    let input = format!("{HEADER},spn\n{},\"two\nlines\"\n{},ok\n", line(1), line(2));
    let out = all(Format::Csv, &input);
    let e = out[0].as_ref().unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (2, Some("spn")));
    assert_eq!(out[1].as_ref().unwrap().line, 4);
}

#[test]
fn crlf_line_ends() {
    let input = format!("{HEADER}\r\n{}\r\n{}\r\n", line(1), line(2));
    let out = all(Format::Csv, &input);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].as_ref().unwrap().adm1.expose(), "12345678");
}

#[test]
fn empty_lines_are_skipped() {
    let input = format!("\n{HEADER}\n\n{}\n\r\n\n{}\n\n", line(1), line(2));
    let out = all(Format::Csv, &input);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].as_ref().unwrap().line, 4);
    assert_eq!(out[1].as_ref().unwrap().line, 7);
}

#[test]
fn bom_is_ignored() {
    let input = format!("\u{feff}{HEADER}\n{}\n", line(1));
    assert!(all(Format::Csv, &input)[0].is_ok());
    let input = format!("\u{feff}{}\n", json(1));
    assert!(all(Format::JsonLines, &input)[0].is_ok());
}

#[test]
fn no_final_newline() {
    let input = format!("{HEADER}\n{}", line(1));
    assert!(all(Format::Csv, &input)[0].is_ok());
}

#[test]
fn rejects_wrong_field_count() {
    let out = all(Format::Csv, &csv(&[format!("{},extra", line(1)), line(2)]));
    assert_eq!(
        out[0].as_ref().unwrap_err().to_string(),
        "line 2: 10 fields, but the header has 9 columns"
    );
    assert!(out[1].is_ok());
}

#[test]
fn rejects_malformed_quotes() {
    let out = all(
        Format::Csv,
        &csv(&[
            line_with(1, 8, "12\"345678"),
            line_with(2, 8, "\"12345678\"x"),
        ]),
    );
    assert_eq!(
        out[0].as_ref().unwrap_err().to_string(),
        "line 2: field 9: a quote inside an unquoted field (quote the whole field and double the quote)"
    );
    assert_eq!(
        out[1].as_ref().unwrap_err().to_string(),
        "line 3: field 9: unexpected character after a closing quote"
    );
    let out = all(Format::Csv, &format!("{HEADER}\n{},\"open", line(1)));
    assert_eq!(
        out[0].as_ref().unwrap_err().to_string(),
        "line 2: field 10: quoted field not closed before the end of the file"
    );
}

#[test]
fn rejects_invalid_utf8() {
    let mut input = csv(&[]).into_bytes();
    input.extend_from_slice(line(1).replace("1234,", "12\u{0}4,").as_bytes());
    let bytes: Vec<u8> = input
        .iter()
        .map(|&b| if b == 0 { 0xFF } else { b })
        .collect();
    let reader = RowReader::csv(&bytes[..], Options::default()).unwrap();
    let out: Vec<_> = reader.map(|r| r.unwrap()).collect();
    assert_eq!(
        out[0].as_ref().unwrap_err().to_string(),
        "line 2: pin1: not valid UTF-8"
    );
}

#[test]
fn rejects_overlong_record_fatally() {
    let opts = Options {
        max_record_bytes: 200,
        ..Options::default()
    };
    let input = csv(&[line(1), format!("{},{}", line(2), "x".repeat(300))]);
    let mut reader = RowReader::csv(input.as_bytes(), opts).unwrap();
    assert!(reader.next().unwrap().unwrap().is_ok());
    let e = reader.next().unwrap().unwrap_err();
    assert_eq!(e.to_string(), "line 3: record longer than 200 bytes");
    assert!(reader.next().is_none());
}

#[test]
fn debug_redacts_secrets() {
    let out = all(Format::Csv, &csv(&[line(1)]));
    let text = format!("{:?}", out[0].as_ref().unwrap());
    for secret in [KI, OPC, "12345678", "87654321", "1234", "5678"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(text.contains(&iccid(1)));
}

#[test]
fn messages_never_contain_secrets() {
    let secret_ki = "ffffffffffffffffffffffffffffff"; // 30 digits: rejected
    let out = all(Format::Csv, &csv(&[line_with(1, 2, secret_ki)]));
    assert!(!out[0].as_ref().unwrap_err().to_string().contains("ffff"));
    let out = all(
        Format::JsonLines,
        "\"9999888877776666\"\n[\"4444333322221111\"]\n",
    );
    for r in &out {
        let m = r.as_ref().unwrap_err().to_string();
        assert!(!m.contains("9999") && !m.contains("4444"), "{m}");
    }
}

/// Every rejection message for a personalization value is the one saip itself gives.
#[test]
fn messages_match_saip_personalization() {
    let t = Template::usim_isim_milenage().unwrap();
    let cases: &[(usize, &str)] = &[
        (0, "8949000000000000017"),
        (0, "89490000000018"),
        (0, "8949x00000000000018"),
        (0, "1949000000000000014"),
        (1, "00101000000000A"),
        (1, "0010"),
        (2, "000102030405060708090a0b0c0d0e"),
        (2, "000102030405060708090a0b0c0d0eZZ"),
        (3, "0011"),
        (4, "1a34"),
        (4, "123"),
        (4, "123456789"),
        (5, "1234567"),
        (5, "1234567a"),
        (6, "x"),
        (7, ""),
        (8, "1234567Z"),
        (8, "0102030405060g08"),
        (8, "123"),
    ];
    for &(col, value) in cases {
        let out = all(Format::Csv, &csv(&[line_with(1, col, value)]));
        let ours = out[0].as_ref().unwrap_err();
        let mut p = all(Format::Csv, &csv(&[line(1)]))[0]
            .as_ref()
            .unwrap()
            .personalization();
        let s = value.to_owned();
        match col {
            0 => p.iccid = s,
            1 => p.imsi = s,
            2 => p.ki = s.into(),
            3 => p.operator_key = OperatorKey::Opc(s.into()),
            4 => p.pin1 = s.into(),
            5 => p.puk1 = s.into(),
            6 => p.pin2 = s.into(),
            7 => p.puk2 = s.into(),
            _ => p.adm1 = s.into(),
        }
        let theirs = t.personalize(&p).unwrap_err().to_string();
        if value.is_empty() {
            assert_eq!(ours.message, "required value missing");
        } else {
            assert_eq!(ours.message, theirs, "column {col} value {value:?}");
        }
    }
}

#[test]
fn report_counts_and_keeps_first_errors() {
    let mut lines = Vec::new();
    for i in 0..20 {
        lines.push(if i % 4 == 0 {
            line_with(i, 4, "x")
        } else {
            line(i)
        });
    }
    let reader = RowReader::csv(
        csv(&lines).as_bytes().to_vec().as_slice(),
        Options::default(),
    )
    .unwrap()
    .collect::<Vec<_>>();
    let mut report = Report::new(3);
    for r in reader {
        report.record(r.unwrap());
    }
    assert_eq!((report.accepted(), report.rejected()), (15, 5));
    assert_eq!(report.errors().len(), 3);
    assert!(report.truncated());
    assert_eq!(
        report.errors().iter().map(|e| e.line).collect::<Vec<_>>(),
        vec![2, 6, 10]
    );
    let text = report.to_string();
    assert!(text.starts_with("15 rows accepted, 5 rejected\n  line 2: pin1: PIN1 must be"));
    assert!(text.ends_with("  ... and 2 more rejected rows\n"));
}

#[test]
fn format_from_path() {
    use std::path::Path;
    assert_eq!(Format::from_path(Path::new("a/b.CSV")), Some(Format::Csv));
    assert_eq!(
        Format::from_path(Path::new("x.jsonl")),
        Some(Format::JsonLines)
    );
    assert_eq!(Format::from_path(Path::new("x.txt")), None);
    assert_eq!(Field::from_name("mnc_len"), Some(Field::MncLen));
}

// ---------------------------------------------------------------------------- JSON lines

fn json(i: u64) -> String {
    format!(
        r#"{{"iccid":"{}","imsi":"{}","ki":"{KI}","opc":"{OPC}","pin1":"1234","puk1":"12345678","pin2":"5678","puk2":"87654321","adm1":"12345678"}}"#,
        iccid(i),
        imsi(i)
    )
}

/// `json(i)` with `"key":"value"` replaced by `"key":<raw>` (or removed when `raw` is None).
fn json_with(i: u64, key: &str, raw: Option<&str>) -> String {
    let j = json(i);
    let start = j.find(&format!("\"{key}\":")).unwrap();
    let value_start = start + key.len() + 3;
    let end = value_start + 1 + j[value_start + 1..].find('"').unwrap() + 1;
    match raw {
        Some(raw) => format!("{}{raw}{}", &j[..value_start], &j[end..]),
        None => {
            let (a, b) = (&j[..start], &j[end..]);
            format!(
                "{}{}",
                a.trim_end_matches(','),
                if a.ends_with('{') {
                    b.trim_start_matches(',')
                } else {
                    b
                }
            )
        }
    }
}

fn assert_json_rejects(row: &str, field: Option<&str>, message: &str) {
    let out = all(Format::JsonLines, &format!("{row}\n"));
    let e = out[0].as_ref().unwrap_err();
    assert_eq!(
        (e.line, e.field.as_deref(), e.message.as_str()),
        (1, field, message),
        "{row}"
    );
}

#[test]
fn good_json_lines_file() {
    let input = format!(
        "{}\n\n{}\r\n   \n{}",
        json(1),
        json_with(
            2,
            "opc",
            Some(&format!("\"{OPC}\",\"spn\":\"Acme, Inc\",\"mnc_len\":3"))
        ),
        json_with(3, "opc", None).replace('}', &format!(",\"op\":\"{OPC}\",\"spn\":null}}"))
    );
    let out = all(Format::JsonLines, &input);
    assert_eq!(out.len(), 3);
    let r = out[1].as_ref().unwrap();
    assert_eq!(
        (r.line, r.mnc_len, r.spn.as_deref()),
        (3, 3, Some("Acme, Inc"))
    );
    let r = out[2].as_ref().unwrap();
    assert_eq!(r.line, 5);
    assert!(matches!(&r.operator_key, OperatorKey::Op(_)));
    assert_eq!(r.spn, None);
    let csv_row = all(Format::Csv, &csv(&[line(1)])).remove(0).unwrap();
    assert_eq!(out[0].as_ref().unwrap(), &Row { line: 1, ..csv_row });
}

#[test]
fn rejects_bad_luhn_json() {
    assert_json_rejects(
        &json_with(1, "iccid", Some("\"8949000000000000017\"")),
        Some("iccid"),
        "ICCID 8949000000000000017: Luhn check digit should be 8, got 7",
    );
}

#[test]
fn rejects_short_ki_json() {
    assert_json_rejects(
        &json_with(1, "ki", Some("\"000102030405060708090a0b0c0d0e\"")),
        Some("ki"),
        "Ki must be exactly 16 bytes (32 hex digits), got 30 hex digits",
    );
}

#[test]
fn rejects_bad_imsi_json() {
    assert_json_rejects(
        &json_with(1, "imsi", Some("\"00101000000000A\"")),
        Some("imsi"),
        "IMSI 00101000000000A: character 15 is not a decimal digit",
    );
}

#[test]
fn rejects_pin_letters_json() {
    assert_json_rejects(
        &json_with(1, "pin1", Some("\"1a34\"")),
        Some("pin1"),
        "PIN1 must be 4 to 8 decimal digits (got 4 characters, character 2 is not a decimal digit)",
    );
}

#[test]
fn rejects_unknown_field_json() {
    assert_json_rejects(
        &json_with(1, "pin1", Some("\"1234\",\"msisdn\":\"123\"")),
        Some("msisdn"),
        "unknown field \"msisdn\"",
    );
}

#[test]
fn rejects_missing_field_json() {
    assert_json_rejects(
        &json_with(1, "ki", None),
        Some("ki"),
        "required value missing",
    );
    assert_json_rejects(
        &json_with(1, "iccid", None),
        Some("iccid"),
        "required value missing",
    );
    assert_json_rejects(
        &json_with(1, "opc", Some("null")),
        Some("opc"),
        "required value missing (opc or op)",
    );
}

#[test]
fn rejects_wrong_types_json() {
    assert_json_rejects(
        &json_with(1, "pin1", Some("1234")),
        Some("pin1"),
        "must be a JSON string, not a number (leading zeros would be lost)",
    );
    assert_json_rejects(
        &json_with(1, "ki", Some("[1,2]")),
        Some("ki"),
        "must be a JSON string, not an array",
    );
    assert_json_rejects(
        &json_with(1, "pin1", Some("\"1234\",\"pin1\":\"1234\"")),
        Some("pin1"),
        "field given twice",
    );
    assert_json_rejects(
        &json_with(1, "opc", Some(&format!("\"{OPC}\",\"mnc_len\":4"))),
        Some("mnc_len"),
        "MNC length must be 2 or 3, got 4",
    );
}

#[test]
fn rejects_invalid_json() {
    assert_json_rejects(
        "{\"iccid\":",
        None,
        "invalid JSON: the line ends inside a value",
    );
    assert_json_rejects("{\"iccid\" 1}", None, "invalid JSON at column 10");
    assert_json_rejects("[1,2]", None, "expected one JSON object per line");
    assert_json_rejects(
        &format!("{} {{}}", json(1)),
        None,
        &format!("invalid JSON at column {}", json(1).len() + 2),
    );
}

#[test]
fn rejects_duplicate_iccid_and_imsi_json() {
    let input = format!(
        "{}\n{}\n{}\n",
        json(1),
        json_with(2, "iccid", Some(&format!("\"{}\"", iccid(1)))),
        json_with(3, "imsi", Some(&format!("\"{}\"", imsi(1))))
    );
    let out = all(Format::JsonLines, &input);
    assert!(out[0].is_ok());
    assert_eq!(
        out[1].as_ref().unwrap_err().to_string(),
        format!(
            "line 2: iccid: duplicate ICCID {}: already on an earlier row of this file",
            iccid(1)
        )
    );
    assert_eq!(
        out[2].as_ref().unwrap_err().to_string(),
        format!(
            "line 3: imsi: duplicate IMSI {}: already on an earlier row of this file",
            imsi(1)
        )
    );
}

#[test]
fn json_string_escapes() {
    let row = json_with(
        1,
        "opc",
        Some(&format!("\"{OPC}\",\"spn\":\"A\\u0042C \\\"x\\\"\"")),
    );
    let out = all(Format::JsonLines, &row);
    assert_eq!(out[0].as_ref().unwrap().spn.as_deref(), Some("ABC \"x\""));
}

// ---------------------------------------------------------------------------- volume

/// A generated 200,000-row file: every row accepted, one per line, duplicates caught.
#[test]
fn parses_200k_generated_rows() {
    use std::io::{BufReader, BufWriter, Seek, Write};
    let mut f = tempfile::tempfile().unwrap();
    {
        let mut w = BufWriter::new(&mut f);
        writeln!(w, "{HEADER}").unwrap();
        for i in 0..200_000u64 {
            writeln!(w, "{}", line(i)).unwrap();
        }
        // Two duplicates at the end.
        writeln!(w, "{}", line(7)).unwrap();
        writeln!(w, "{}", line_with(200_001, 1, &imsi(99_999))).unwrap();
        w.flush().unwrap();
    }
    f.rewind().unwrap();
    let mut reader = RowReader::csv(BufReader::new(f), Options::default()).unwrap();
    let mut report = Report::new(10);
    while let Some(r) = reader.next_row().unwrap() {
        report.record(r);
    }
    assert_eq!((report.accepted(), report.rejected()), (200_000, 2));
    assert_eq!(report.errors()[0].line, 200_002);
    assert_eq!(report.errors()[1].field.as_deref(), Some("imsi"));
    assert_eq!(reader.lines_read(), 200_003);
}
