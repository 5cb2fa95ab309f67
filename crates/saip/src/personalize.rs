//! Per-subscription personalization of a compiled [`Template`]: validated subscriber
//! values written at their places in a copy of the template's package.
//!
//! [`Template::personalize`] writes:
//!
//! | value | where |
//! |---|---|
//! | ICCID | ProfileHeader `iccid` (plain BCD) and MF `ef-iccid` (swapped BCD) |
//! | IMSI | USIM `ef-imsi` (TS 31.102 4.2.2: length, parity nibble, swapped BCD) |
//! | MNC length | USIM `ef-ad` octet 4 (low nibble) |
//! | access class | USIM `ef-acc`: class = last IMSI digit (TS 22.011 4.2) |
//! | SPN | USIM `ef-spn` octets 2..17, GSM default alphabet, `FF`-padded (display condition kept) |
//! | home PLMN | OPT-USIM `ef-hplmnwact` entry 1 (TS 24.008 PLMN coding + template AcT) |
//! | IMPI / IMPU / domain | ISIM `ef-impi`, `ef-impu` record 1, `ef-domain` (TS 23.003 13.2/13.3) |
//! | Ki, OPc | every `akaParameter` `algoParameter` (USIM and ISIM) |
//! | PIN1, PIN2, ADM1 | `pinCodes` key references 01, 81, 0A |
//! | PUK1, PUK2 | `pukCodes` key references 01, 81 |
//!
//! plus any [`FileOverride`] the template lists as overridable.
//!
//! # Validation
//!
//! - ICCID: 19 or 20 decimal digits starting with `89` (ITU-T E.118), the last digit
//!   being the Luhn check digit of the others (both lengths are checked; use
//!   [`iccid_with_luhn`] to append one). A wrong digit is reported with the expected one.
//! - IMSI: 6..15 digits, starting with the home PLMN (MCC + MNC of `mnc_len` digits);
//!   `mnc_len` is 2 or 3.
//! - Ki, OPc, OP: exactly 16 octets as 32 hex digits. With OP, OPc = AES_Ki(OP) xor OP
//!   (Milenage, TS 35.206).
//! - PIN1/PIN2: 4..8 digits; PUK1/PUK2: 8 digits; ADM1: 8 digits (ASCII) or 16 hex
//!   digits (raw octets).
//! - SPN: at most 16 characters of the GSM default alphabet subset `A-Z a-z 0-9`, space,
//!   ``!"#%&'()*+,-./:;<=>?@$_``.
//!
//! Error messages never contain Ki, OP/OPc, PIN, PUK or ADM values; `Debug` of
//! [`Personalization`] redacts them.

use zeroize::Zeroizing;

use crate::bcd;
use crate::milenage::{self, MilenageError};
use crate::pe::PeType;
use crate::secret::Secret;
use crate::template::{Template, TemplateError, invalid};
use crate::upp::Upp;
use crate::{File, SaipError};

/// Files personalization writes (never overridable).
pub(crate) const TARGETS: &[(PeType, &str)] = &[
    (PeType::Mf, "ef-iccid"),
    (PeType::Usim, "ef-imsi"),
    (PeType::Usim, "ef-ad"),
    (PeType::Usim, "ef-spn"),
    (PeType::Usim, "ef-acc"),
    (PeType::OptUsim, "ef-hplmnwact"),
    (PeType::Isim, "ef-impi"),
    (PeType::Isim, "ef-impu"),
    (PeType::Isim, "ef-domain"),
];

/// PIN key references written: PIN1 (global), PIN2 (local), ADM1.
const PIN1: u8 = 0x01;
const PIN2: u8 = 0x81;
const ADM1: u8 = 0x0A;
/// PUK key references written.
const PUK1: u8 = 0x01;
const PUK2: u8 = 0x81;

/// Text that must not be printed (Ki, OP/OPc, PINs, PUKs, ADM): wiped on drop,
/// `Debug` shows only its length.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretText(Zeroizing<String>);

impl SecretText {
    /// The text. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SecretText {
    fn from(s: &str) -> Self {
        SecretText(Zeroizing::new(s.to_owned()))
    }
}

impl From<String> for SecretText {
    fn from(s: String) -> Self {
        SecretText(Zeroizing::new(s))
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} chars redacted>", self.0.len())
    }
}

/// The operator variant key: OPc directly, or OP from which OPc is derived with Ki.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperatorKey {
    /// OPc (32 hex digits), written as is.
    Opc(SecretText),
    /// OP (32 hex digits); OPc = AES_Ki(OP) xor OP is written.
    Op(SecretText),
}

/// Replace the content of one template file (listed in the template's `overridable`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileOverride {
    /// The template PE holding the file (`PeType::Usim`, ...).
    pub pe: PeType,
    /// The file's schema name (`ef-fplmn`).
    pub file: String,
    /// The new content, written at offset 0 (at most the file size).
    pub content: Vec<u8>,
}

/// Subscriber values for one profile. `Debug` redacts every secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Personalization {
    /// ICCID: 19 or 20 digits, Luhn check digit last.
    pub iccid: String,
    /// IMSI: 6..15 digits (normally 15).
    pub imsi: String,
    /// Number of MNC digits in the IMSI: 2 or 3.
    pub mnc_len: u8,
    /// Ki: 32 hex digits.
    pub ki: SecretText,
    /// OPc, or OP to derive it from.
    pub operator_key: OperatorKey,
    /// PIN1: 4..8 digits.
    pub pin1: SecretText,
    /// PUK1: 8 digits.
    pub puk1: SecretText,
    /// PIN2: 4..8 digits.
    pub pin2: SecretText,
    /// PUK2: 8 digits.
    pub puk2: SecretText,
    /// ADM1: 8 digits or 16 hex digits.
    pub adm1: SecretText,
    /// Service provider name; `None` keeps the template's.
    pub spn: Option<String>,
    /// Home PLMN (MCC + MNC digits); `None` takes it from the IMSI.
    pub home_plmn: Option<String>,
    /// Extra file contents (only files the template lists as overridable).
    pub file_overrides: Vec<FileOverride>,
}

/// Why a personalization was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PersonalizationError {
    /// Wrong number of ICCID digits.
    #[error(
        "ICCID {iccid}: {len} digits; accepted are 19 or 20 digits whose last one is the Luhn check digit"
    )]
    IccidLength {
        /// The ICCID given.
        iccid: String,
        /// Its length.
        len: usize,
    },
    /// A character of the ICCID is not a digit.
    #[error("ICCID {iccid}: character {position} is not a decimal digit")]
    IccidNotDigits {
        /// The ICCID given.
        iccid: String,
        /// 1-based position of the first bad character.
        position: usize,
    },
    /// The ICCID does not start with the telecom industry identifier 89.
    #[error("ICCID {iccid}: must start with 89 (ITU-T E.118)")]
    IccidPrefix {
        /// The ICCID given.
        iccid: String,
    },
    /// The last ICCID digit is not the Luhn check digit of the others.
    #[error("ICCID {iccid}: Luhn check digit should be {expected}, got {got}")]
    IccidLuhn {
        /// The ICCID given.
        iccid: String,
        /// The correct check digit.
        expected: u8,
        /// The digit given.
        got: u8,
    },
    /// Wrong number of IMSI digits.
    #[error("IMSI {imsi}: {len} digits; expected 6 to 15")]
    ImsiLength {
        /// The IMSI given.
        imsi: String,
        /// Its length.
        len: usize,
    },
    /// A character of the IMSI is not a digit.
    #[error("IMSI {imsi}: character {position} is not a decimal digit")]
    ImsiNotDigits {
        /// The IMSI given.
        imsi: String,
        /// 1-based position of the first bad character.
        position: usize,
    },
    /// The MNC length is not 2 or 3.
    #[error("MNC length must be 2 or 3, got {0}")]
    MncLength(u8),
    /// The home PLMN is not MCC + MNC digits of the given MNC length.
    #[error("home PLMN {plmn}: expected {expected} digits (3-digit MCC + {mnc_len}-digit MNC)")]
    HomePlmn {
        /// The home PLMN given.
        plmn: String,
        /// The required number of digits.
        expected: usize,
        /// The MNC length.
        mnc_len: u8,
    },
    /// The IMSI's MCC/MNC is not the home PLMN.
    #[error("IMSI {imsi}: MCC/MNC {imsi_plmn} does not match the home PLMN {home_plmn}")]
    PlmnMismatch {
        /// The IMSI given.
        imsi: String,
        /// Its first 3 + `mnc_len` digits.
        imsi_plmn: String,
        /// The home PLMN.
        home_plmn: String,
    },
    /// A key is not 16 octets.
    #[error("{what} must be exactly 16 bytes (32 hex digits), got {digits} hex digits")]
    KeyLength {
        /// `Ki`, `OPc` or `OP`.
        what: &'static str,
        /// Number of hex digits given.
        digits: usize,
    },
    /// A key is not hexadecimal.
    #[error("{what} must be 32 hex digits: character {position} is not a hex digit")]
    KeyNotHex {
        /// `Ki`, `OPc` or `OP`.
        what: &'static str,
        /// 1-based position of the first bad character.
        position: usize,
    },
    /// A PIN, PUK or ADM value breaks its rule (the value itself is never shown).
    #[error("{what} must be {rule} (got {len} characters{detail})")]
    Code {
        /// `PIN1`, `PUK2`, `ADM1`, ...
        what: &'static str,
        /// The rule.
        rule: &'static str,
        /// Length of the value given.
        len: usize,
        /// `, character 3 is not a digit` or empty.
        detail: String,
    },
    /// The SPN cannot be coded.
    #[error("SPN {spn:?}: {why}")]
    Spn {
        /// The SPN given.
        spn: String,
        /// Why.
        why: String,
    },
    /// A derived value is longer than its file.
    #[error("{what}: {len} octets do not fit the {size}-octet file")]
    TooLong {
        /// The value.
        what: &'static str,
        /// Its coded length.
        len: usize,
        /// The file (or record) size.
        size: usize,
    },
    /// A file override the template does not allow.
    #[error("file override {pe}/{file}: not overridable in template {template}")]
    OverrideNotAllowed {
        /// PE type name.
        pe: &'static str,
        /// File name.
        file: String,
        /// Template name.
        template: String,
    },
    /// A file override longer than the file.
    #[error("file override {pe}/{file}: {len} octets exceed the {size}-octet file")]
    OverrideTooLong {
        /// PE type name.
        pe: &'static str,
        /// File name.
        file: String,
        /// Content length.
        len: usize,
        /// File size.
        size: usize,
    },
    /// The OPc derivation failed in the AES backend.
    #[error("OPc derivation: {0}")]
    Milenage(#[from] MilenageError),
    /// The template package refused a write (should not happen for a compiled template).
    #[error("template package: {0}")]
    Saip(#[from] SaipError),
}

type Res<T> = Result<T, PersonalizationError>;

// ----------------------------------------------------------------------------- checks

/// The Luhn check digit of `digits` (decimal digits only).
pub fn luhn_digit(digits: &str) -> Option<u8> {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    u8::try_from((10 - sum % 10) % 10).ok()
}

/// `base` (18 or 19 digits) with its Luhn check digit appended.
pub fn iccid_with_luhn(base: &str) -> Res<String> {
    let d = luhn_digit(base).ok_or_else(|| PersonalizationError::IccidNotDigits {
        iccid: base.to_owned(),
        position: base.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(0) + 1,
    })?;
    let iccid = format!("{base}{d}");
    check_iccid(&iccid)?;
    Ok(iccid)
}

fn first_non_digit(s: &str) -> Option<usize> {
    s.bytes().position(|b| !b.is_ascii_digit()).map(|p| p + 1)
}

/// Check an ICCID: 19 or 20 digits, prefix 89, Luhn check digit last.
pub fn check_iccid(iccid: &str) -> Res<()> {
    if let Some(position) = first_non_digit(iccid) {
        return Err(PersonalizationError::IccidNotDigits {
            iccid: iccid.to_owned(),
            position,
        });
    }
    if iccid.len() != 19 && iccid.len() != 20 {
        return Err(PersonalizationError::IccidLength {
            iccid: iccid.to_owned(),
            len: iccid.len(),
        });
    }
    if !iccid.starts_with("89") {
        return Err(PersonalizationError::IccidPrefix {
            iccid: iccid.to_owned(),
        });
    }
    let (body, last) = iccid.split_at(iccid.len() - 1);
    let got = last.as_bytes().first().map_or(0, |b| b - b'0');
    let expected = luhn_digit(body).unwrap_or(0);
    if got != expected {
        return Err(PersonalizationError::IccidLuhn {
            iccid: iccid.to_owned(),
            expected,
            got,
        });
    }
    Ok(())
}

/// The home PLMN digits checked against the IMSI.
fn check_imsi(p: &Personalization) -> Res<String> {
    checks::imsi(&p.imsi, p.mnc_len, p.home_plmn.as_deref())
}

/// Field-by-field checks, usable without a template: bulk import validates every row with
/// these before anything is stored, with the same errors `Template::personalize` gives.
pub mod checks {
    use super::{Res, SecretText};

    /// IMSI digits and length, MNC length, and the home PLMN (when given) equal to the IMSI's
    /// MCC+MNC. Returns the home PLMN digits.
    pub fn imsi(imsi: &str, mnc_len: u8, home_plmn: Option<&str>) -> Res<String> {
        super::check_imsi_fields(imsi, mnc_len, home_plmn)
    }

    /// A 16-byte key (Ki, OPc, OP) as 32 hex digits; `what` names it in the error.
    pub fn key(what: &'static str, hex: &str) -> Res<()> {
        super::key16(what, &SecretText::from(hex)).map(drop)
    }

    /// A PIN: 4 to 8 decimal digits.
    pub fn pin(what: &'static str, s: &str) -> Res<()> {
        super::pin_value(what, &SecretText::from(s)).map(drop)
    }

    /// A PUK: exactly 8 decimal digits.
    pub fn puk(what: &'static str, s: &str) -> Res<()> {
        super::puk_value(what, &SecretText::from(s)).map(drop)
    }

    /// An ADM key: 8 decimal digits or 16 hex digits.
    pub fn adm(what: &'static str, s: &str) -> Res<()> {
        super::adm_value(what, &SecretText::from(s)).map(drop)
    }

    /// A service provider name: at most 16 characters of the supported GSM 7-bit subset.
    pub fn spn(spn: &str) -> Res<()> {
        super::spn_octets(spn).map(drop)
    }
}

fn check_imsi_fields(imsi: &str, mnc_len: u8, home_plmn: Option<&str>) -> Res<String> {
    if mnc_len != 2 && mnc_len != 3 {
        return Err(PersonalizationError::MncLength(mnc_len));
    }
    if let Some(position) = first_non_digit(imsi) {
        return Err(PersonalizationError::ImsiNotDigits {
            imsi: imsi.to_owned(),
            position,
        });
    }
    if !(6..=15).contains(&imsi.len()) {
        return Err(PersonalizationError::ImsiLength {
            imsi: imsi.to_owned(),
            len: imsi.len(),
        });
    }
    let plmn_len = 3 + usize::from(mnc_len);
    let imsi_plmn = imsi.get(..plmn_len).unwrap_or_default().to_owned();
    let home = match home_plmn {
        Some(h) => {
            if h.len() != plmn_len || first_non_digit(h).is_some() {
                return Err(PersonalizationError::HomePlmn {
                    plmn: h.to_owned(),
                    expected: plmn_len,
                    mnc_len,
                });
            }
            h.to_owned()
        }
        None => imsi_plmn.clone(),
    };
    if home != imsi_plmn {
        return Err(PersonalizationError::PlmnMismatch {
            imsi: imsi.to_owned(),
            imsi_plmn,
            home_plmn: home,
        });
    }
    Ok(home)
}

fn key16(what: &'static str, s: &SecretText) -> Res<Zeroizing<[u8; 16]>> {
    let s = s.expose();
    if let Some(i) = s.bytes().position(|b| !b.is_ascii_hexdigit()) {
        return Err(PersonalizationError::KeyNotHex {
            what,
            position: i + 1,
        });
    }
    if s.len() != 32 {
        return Err(PersonalizationError::KeyLength {
            what,
            digits: s.len(),
        });
    }
    let mut out = Zeroizing::new([0u8; 16]);
    let v = Zeroizing::new(crate::template::parse_hex(s).map_err(|_| {
        PersonalizationError::KeyLength {
            what,
            digits: s.len(),
        }
    })?);
    out.copy_from_slice(&v);
    Ok(out)
}

fn code_err(
    what: &'static str,
    rule: &'static str,
    s: &str,
    detail: String,
) -> PersonalizationError {
    PersonalizationError::Code {
        what,
        rule,
        len: s.len(),
        detail,
    }
}

fn digits_detail(s: &str) -> String {
    first_non_digit(s).map_or_else(String::new, |p| {
        format!(", character {p} is not a decimal digit")
    })
}

/// PIN: 4..8 digits as ASCII padded with `FF`.
fn pin_value(what: &'static str, s: &SecretText) -> Res<Zeroizing<[u8; 8]>> {
    const RULE: &str = "4 to 8 decimal digits";
    let s = s.expose();
    if first_non_digit(s).is_some() || !(4..=8).contains(&s.len()) {
        return Err(code_err(what, RULE, s, digits_detail(s)));
    }
    let v = bcd::pin_from_digits(s).map_err(|_| code_err(what, RULE, s, String::new()))?;
    Ok(Zeroizing::new(v))
}

/// PUK: exactly 8 digits as ASCII.
fn puk_value(what: &'static str, s: &SecretText) -> Res<Zeroizing<[u8; 8]>> {
    const RULE: &str = "exactly 8 decimal digits";
    let s = s.expose();
    if first_non_digit(s).is_some() || s.len() != 8 {
        return Err(code_err(what, RULE, s, digits_detail(s)));
    }
    let v = bcd::pin_from_digits(s).map_err(|_| code_err(what, RULE, s, String::new()))?;
    Ok(Zeroizing::new(v))
}

/// ADM: 8 digits (ASCII) or 16 hex digits (raw).
fn adm_value(what: &'static str, s: &SecretText) -> Res<Zeroizing<[u8; 8]>> {
    const RULE: &str = "8 decimal digits or 16 hex digits";
    let s = s.expose();
    let ok = match s.len() {
        8 => first_non_digit(s).is_none(),
        16 => s.bytes().all(|b| b.is_ascii_hexdigit()),
        _ => false,
    };
    if !ok {
        return Err(code_err(what, RULE, s, String::new()));
    }
    crate::template::key_value(s)
        .map(Zeroizing::new)
        .ok_or_else(|| code_err(what, RULE, s, String::new()))
}

/// GSM 03.38 default alphabet code of the characters accepted in an SPN.
fn gsm7(c: char) -> Option<u8> {
    match c {
        'A'..='Z'
        | 'a'..='z'
        | '0'..='9'
        | ' '
        | '!'
        | '"'
        | '#'
        | '%'
        | '&'
        | '\''
        | '('
        | ')'
        | '*'
        | '+'
        | ','
        | '-'
        | '.'
        | '/'
        | ':'
        | ';'
        | '<'
        | '='
        | '>'
        | '?' => u8::try_from(u32::from(c)).ok(),
        '@' => Some(0x00),
        '$' => Some(0x02),
        '_' => Some(0x11),
        _ => None,
    }
}

fn spn_octets(spn: &str) -> Res<Vec<u8>> {
    let err = |why: String| PersonalizationError::Spn {
        spn: spn.to_owned(),
        why,
    };
    if spn.chars().count() > 16 {
        return Err(err(format!(
            "{} characters; at most 16",
            spn.chars().count()
        )));
    }
    spn.chars()
        .map(|c| {
            gsm7(c).ok_or_else(|| {
                err(format!(
                    "character {c:?} is not in the supported GSM default alphabet subset"
                ))
            })
        })
        .collect()
}

/// A PLMN in the 3-octet coding of TS 24.008 10.5.1.3 (MNC digit 3 = F for 2-digit MNCs).
pub fn plmn_octets(plmn: &str) -> [u8; 3] {
    let d: Vec<u8> = plmn.bytes().map(|b| b.wrapping_sub(b'0')).collect();
    let at = |i: usize| d.get(i).copied().unwrap_or(0x0F);
    let mnc3 = if d.len() == 6 { at(5) } else { 0x0F };
    [
        (at(1) << 4) | at(0),
        (mnc3 << 4) | at(2),
        (at(4) << 4) | at(3),
    ]
}

/// EF.ACC: the access class (0..9) of the last IMSI digit.
fn acc_octets(imsi: &str) -> [u8; 2] {
    let class = imsi.bytes().last().map_or(0, |b| b.wrapping_sub(b'0'));
    let bits = 1u16 << class.min(15);
    bits.to_be_bytes()
}

/// The size of a template file and its record length, from its FCP.
fn geometry(f: &File) -> (Option<usize>, Option<usize>) {
    let Some(fcp) = f.fcp() else {
        return (None, None);
    };
    let size = fcp
        .ef_file_size
        .as_ref()
        .map(|b| b.iter().fold(0usize, |a, &x| (a << 8) | usize::from(x)));
    let rec = fcp
        .file_descriptor
        .as_ref()
        .filter(|d| d.len() == 4)
        .and_then(|d| d.get(2..4))
        .map(|b| (usize::from(b[0]) << 8) | usize::from(b[1]));
    (size, rec)
}

fn file<'a>(upp: &'a Upp, pe: PeType, name: &'static str) -> Res<&'a File> {
    upp.template_file(pe, name)
        .ok_or(PersonalizationError::Saip(SaipError::NotFound(name)))
}

fn write(upp: &mut Upp, pe: PeType, name: &'static str, content: &[u8]) -> Res<()> {
    upp.template_file_mut(pe, name)
        .ok_or(PersonalizationError::Saip(SaipError::NotFound(name)))?
        .set_content(content)?;
    Ok(())
}

/// A `80 len value` TLV padded with `FF` to `size`.
fn tlv80(what: &'static str, value: &str, size: usize) -> Res<Vec<u8>> {
    let len = value.len();
    if len > 127 || len + 2 > size {
        return Err(PersonalizationError::TooLong {
            what,
            len: len + 2,
            size,
        });
    }
    let mut v = Vec::with_capacity(size);
    v.push(0x80);
    v.push(u8::try_from(len).unwrap_or(0x7F));
    v.extend_from_slice(value.as_bytes());
    v.resize(size, 0xFF);
    Ok(v)
}

/// Check at compile time that a template has every place personalization writes.
pub(crate) fn check_targets(t: &Template) -> Result<(), TemplateError> {
    let upp = t.upp();
    for &(pe, name) in TARGETS {
        let required = matches!(pe, PeType::Mf | PeType::Usim) || upp.template(pe).is_some();
        if !required {
            continue;
        }
        let path = format!("{} / {name}", pe.name());
        let f = upp
            .template_file(pe, name)
            .ok_or_else(|| invalid(&path, "personalization target missing"))?;
        let content = f
            .content()
            .ok_or_else(|| invalid(&path, "needs content at offset 0"))?;
        let (size, rec) = geometry(f);
        let min = match name {
            "ef-ad" => 4,
            "ef-spn" => 17,
            "ef-hplmnwact" => 5,
            "ef-acc" => 2,
            _ => 0,
        };
        if content.len() < min {
            return Err(invalid(&path, format!("content shorter than {min} octets")));
        }
        if matches!(name, "ef-impi" | "ef-domain") && size.is_none() {
            return Err(invalid(&path, "needs a size"));
        }
        if name == "ef-impu" && rec.is_none() {
            return Err(invalid(&path, "needs a record length"));
        }
    }
    let has_algo = upp
        .aka_parameters()
        .iter()
        .any(|(_, a)| a.algo_parameter().is_some());
    if !has_algo {
        return Err(invalid(
            "akaParameter",
            "no akaParameter with algoParameter",
        ));
    }
    for (k, what) in [
        (PIN1, "PIN1 (01)"),
        (PIN2, "PIN2 (81)"),
        (ADM1, "ADM1 (0A)"),
    ] {
        if upp.pin(k).is_none() {
            return Err(invalid("pinCodes", format!("{what} not defined")));
        }
    }
    for (k, what) in [(PUK1, "PUK1 (01)"), (PUK2, "PUK2 (81)")] {
        if upp.puk(k).is_none() {
            return Err(invalid("pukCodes", format!("{what} not defined")));
        }
    }
    Ok(())
}

impl Template {
    /// A personalized copy of the template's package. Every input is validated first
    /// (see the module docs); nothing is written when one is refused.
    pub fn personalize(&self, p: &Personalization) -> Res<Upp> {
        // ---- validate everything before writing anything
        check_iccid(&p.iccid)?;
        let home = check_imsi(p)?;
        let ki = key16("Ki", &p.ki)?;
        let opc = match &p.operator_key {
            OperatorKey::Opc(s) => key16("OPc", s)?,
            OperatorKey::Op(s) => {
                let op = key16("OP", s)?;
                Zeroizing::new(milenage::compute_opc(&ki, &op)?)
            }
        };
        let pin1 = pin_value("PIN1", &p.pin1)?;
        let pin2 = pin_value("PIN2", &p.pin2)?;
        let puk1 = puk_value("PUK1", &p.puk1)?;
        let puk2 = puk_value("PUK2", &p.puk2)?;
        let adm1 = adm_value("ADM1", &p.adm1)?;
        let spn = p.spn.as_deref().map(spn_octets).transpose()?;
        for o in &p.file_overrides {
            if !self
                .overridable
                .iter()
                .any(|(pe, f)| *pe == o.pe && *f == o.file)
            {
                return Err(PersonalizationError::OverrideNotAllowed {
                    pe: o.pe.name(),
                    file: o.file.clone(),
                    template: self.name().to_owned(),
                });
            }
        }

        let mut upp = self.upp().clone();
        // ---- identifiers
        upp.set_iccid(&p.iccid)?;
        upp.set_imsi(&p.imsi)?;
        let mut ad = file(&upp, PeType::Usim, "ef-ad")?
            .content()
            .unwrap_or_default()
            .to_vec();
        if let Some(b) = ad.get_mut(3) {
            *b = (*b & 0xF0) | p.mnc_len;
        }
        write(&mut upp, PeType::Usim, "ef-ad", &ad)?;
        write(&mut upp, PeType::Usim, "ef-acc", &acc_octets(&p.imsi))?;
        if let Some(name) = spn {
            let mut v = file(&upp, PeType::Usim, "ef-spn")?
                .content()
                .unwrap_or_default()
                .to_vec();
            v.resize(17, 0xFF);
            for (i, o) in v.iter_mut().skip(1).enumerate() {
                *o = name.get(i).copied().unwrap_or(0xFF);
            }
            write(&mut upp, PeType::Usim, "ef-spn", &v)?;
        }
        if upp.template_file(PeType::OptUsim, "ef-hplmnwact").is_some() {
            let mut v = file(&upp, PeType::OptUsim, "ef-hplmnwact")?
                .content()
                .unwrap_or_default()
                .to_vec();
            if v.len() < 5 {
                v.resize(5, 0xFF);
            }
            v[..3].copy_from_slice(&plmn_octets(&home));
            v[3..5].copy_from_slice(&self.hplmn_act);
            write(&mut upp, PeType::OptUsim, "ef-hplmnwact", &v)?;
        }
        if upp.template(PeType::Isim).is_some() {
            let (mcc, mnc) = home.split_at(3);
            let domain = format!("ims.mnc{mnc:0>3}.mcc{mcc}.3gppnetwork.org");
            let impi = format!("{}@{domain}", p.imsi);
            let impu = format!("sip:{impi}");
            let (size, _) = geometry(file(&upp, PeType::Isim, "ef-impi")?);
            let v = tlv80("IMPI", &impi, size.unwrap_or(0))?;
            write(&mut upp, PeType::Isim, "ef-impi", &v)?;
            let (size, _) = geometry(file(&upp, PeType::Isim, "ef-domain")?);
            let v = tlv80("home network domain", &domain, size.unwrap_or(0))?;
            write(&mut upp, PeType::Isim, "ef-domain", &v)?;
            let f = file(&upp, PeType::Isim, "ef-impu")?;
            let (_, rec) = geometry(f);
            let rec = rec.unwrap_or(0);
            let mut v = tlv80("IMPU", &impu, rec)?;
            v.extend_from_slice(f.content().unwrap_or_default().get(rec..).unwrap_or(&[]));
            write(&mut upp, PeType::Isim, "ef-impu", &v)?;
        }
        // ---- secrets
        upp.set_ki_opc(ki.as_slice(), opc.as_slice())?;
        upp.set_pin(PIN1, *pin1)?;
        upp.set_pin(PIN2, *pin2)?;
        upp.set_pin(ADM1, *adm1)?;
        upp.set_puk(PUK1, *puk1)?;
        upp.set_puk(PUK2, *puk2)?;
        // ---- overrides
        for o in &p.file_overrides {
            let f = upp
                .template_file_mut(o.pe, &o.file)
                .ok_or(SaipError::NotFound("overridable file"))?;
            let (size, _) = geometry(f);
            if let Some(size) = size
                && o.content.len() > size
            {
                return Err(PersonalizationError::OverrideTooLong {
                    pe: o.pe.name(),
                    file: o.file.clone(),
                    len: o.content.len(),
                    size,
                });
            }
            f.set_content(&o.content)?;
        }
        Ok(upp)
    }
}

/// The PIN/PUK values as [`Secret`]s the way personalization stores them (ASCII digits,
/// `FF`-padded), for comparisons in tests and tools.
pub fn code_secret(digits: &str) -> Option<Secret> {
    crate::template::key_value(digits).map(|v| Secret::new(&v))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_codings() {
        assert_eq!(luhn_digit("899900000000000000"), Some(5));
        assert_eq!(luhn_digit("7992739871"), Some(3));
        assert_eq!(plmn_octets("00101"), [0x00, 0xF1, 0x10]);
        assert_eq!(plmn_octets("310410"), [0x13, 0x00, 0x14]);
        assert_eq!(plmn_octets("26201"), [0x62, 0xF2, 0x10]);
        assert_eq!(acc_octets("001010000000003"), [0x00, 0x08]);
        assert_eq!(acc_octets("001010000000009"), [0x02, 0x00]);
        assert_eq!(
            spn_octets("A@$_b").unwrap(),
            vec![0x41, 0x00, 0x02, 0x11, 0x62]
        );
        assert!(spn_octets("caf\u{e9}").is_err());
    }
}
