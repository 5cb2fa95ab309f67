//! [`Field`] names, the validated [`Row`], and the validation of raw values with the rules
//! and messages of `saip` personalization.

use saip::{OperatorKey, Personalization, PersonalizationError, SecretText};

use crate::RowError;
use crate::reader::Options;

/// A column (CSV) or key (JSON lines) of an inventory file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `iccid`
    Iccid,
    /// `imsi`
    Imsi,
    /// `ki`
    Ki,
    /// `opc`
    Opc,
    /// `op`
    Op,
    /// `pin1`
    Pin1,
    /// `puk1`
    Puk1,
    /// `pin2`
    Pin2,
    /// `puk2`
    Puk2,
    /// `adm1`
    Adm1,
    /// `spn`
    Spn,
    /// `mnc_len`
    MncLen,
}

/// Number of [`Field`]s.
pub(crate) const FIELD_COUNT: usize = 12;

impl Field {
    /// Every field, in the order of the documentation.
    pub const ALL: [Field; FIELD_COUNT] = [
        Field::Iccid,
        Field::Imsi,
        Field::Ki,
        Field::Opc,
        Field::Op,
        Field::Pin1,
        Field::Puk1,
        Field::Pin2,
        Field::Puk2,
        Field::Adm1,
        Field::Spn,
        Field::MncLen,
    ];

    /// The fields every row needs (besides `opc` or `op`).
    pub const REQUIRED: [Field; 8] = [
        Field::Iccid,
        Field::Imsi,
        Field::Ki,
        Field::Pin1,
        Field::Puk1,
        Field::Pin2,
        Field::Puk2,
        Field::Adm1,
    ];

    /// The name in files.
    pub fn name(self) -> &'static str {
        match self {
            Field::Iccid => "iccid",
            Field::Imsi => "imsi",
            Field::Ki => "ki",
            Field::Opc => "opc",
            Field::Op => "op",
            Field::Pin1 => "pin1",
            Field::Puk1 => "puk1",
            Field::Pin2 => "pin2",
            Field::Puk2 => "puk2",
            Field::Adm1 => "adm1",
            Field::Spn => "spn",
            Field::MncLen => "mnc_len",
        }
    }

    /// The field of a name (exact, lowercase).
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A validated inventory row. `Debug` redacts every secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based line where the row starts.
    pub line: u64,
    /// ICCID (19 or 20 digits, Luhn checked).
    pub iccid: String,
    /// IMSI (6..15 digits).
    pub imsi: String,
    /// Number of MNC digits in the IMSI (2 or 3).
    pub mnc_len: u8,
    /// Ki (32 hex digits, as given).
    pub ki: SecretText,
    /// OPc, or OP (32 hex digits, as given).
    pub operator_key: OperatorKey,
    /// PIN1 (4..8 digits).
    pub pin1: SecretText,
    /// PUK1 (8 digits).
    pub puk1: SecretText,
    /// PIN2 (4..8 digits).
    pub pin2: SecretText,
    /// PUK2 (8 digits).
    pub puk2: SecretText,
    /// ADM1 (8 digits or 16 hex digits).
    pub adm1: SecretText,
    /// Service provider name, when given.
    pub spn: Option<String>,
}

impl Row {
    /// The values as a `saip` [`Personalization`] (home PLMN taken from the IMSI, no file
    /// overrides).
    pub fn personalization(&self) -> Personalization {
        Personalization {
            iccid: self.iccid.clone(),
            imsi: self.imsi.clone(),
            mnc_len: self.mnc_len,
            ki: self.ki.clone(),
            operator_key: self.operator_key.clone(),
            pin1: self.pin1.clone(),
            puk1: self.puk1.clone(),
            pin2: self.pin2.clone(),
            puk2: self.puk2.clone(),
            adm1: self.adm1.clone(),
            spn: self.spn.clone(),
            home_plmn: None,
            file_overrides: Vec::new(),
        }
    }
}

/// The raw values of one row, by [`Field::index`]; empty values are `None`.
pub(crate) type Values<'a> = [Option<&'a str>; FIELD_COUNT];

/// Validates one row's raw values.
pub(crate) fn validate(line: u64, v: &Values<'_>, opts: &Options) -> Result<Row, RowError> {
    let err = |field: Field, e: PersonalizationError| {
        RowError::new(line, Some(field.name()), e.to_string())
    };
    let get = |field: Field| v[field.index()];
    let required = |field: Field| {
        get(field).ok_or_else(|| RowError::new(line, Some(field.name()), "required value missing"))
    };

    let iccid = required(Field::Iccid)?;
    saip::personalize::check_iccid(iccid).map_err(|e| err(Field::Iccid, e))?;

    let imsi = required(Field::Imsi)?;
    let mnc_len = match get(Field::MncLen) {
        None => opts.default_mnc_len,
        Some(s) => match s.parse::<u8>() {
            Ok(n) => n,
            Err(_) => {
                return Err(RowError::new(
                    line,
                    Some(Field::MncLen.name()),
                    format!("MNC length must be 2 or 3, got {s:?}"),
                ));
            }
        },
    };
    check_imsi(imsi, mnc_len, opts.home_plmn.as_deref()).map_err(|e| {
        let field = match e {
            PersonalizationError::MncLength(_) => Field::MncLen,
            _ => Field::Imsi,
        };
        err(field, e)
    })?;

    let ki = required(Field::Ki)?;
    check_key("Ki", ki).map_err(|e| err(Field::Ki, e))?;
    let operator_key = match (get(Field::Opc), get(Field::Op)) {
        (Some(_), Some(_)) => {
            return Err(RowError::new(
                line,
                Some(Field::Op.name()),
                "give either opc or op, not both",
            ));
        }
        (None, None) => {
            return Err(RowError::new(
                line,
                Some(Field::Opc.name()),
                "required value missing (opc or op)",
            ));
        }
        (Some(opc), None) => {
            check_key("OPc", opc).map_err(|e| err(Field::Opc, e))?;
            OperatorKey::Opc(SecretText::from(opc))
        }
        (None, Some(op)) => {
            check_key("OP", op).map_err(|e| err(Field::Op, e))?;
            OperatorKey::Op(SecretText::from(op))
        }
    };

    let pin1 = required(Field::Pin1)?;
    check_pin("PIN1", pin1).map_err(|e| err(Field::Pin1, e))?;
    let puk1 = required(Field::Puk1)?;
    check_puk("PUK1", puk1).map_err(|e| err(Field::Puk1, e))?;
    let pin2 = required(Field::Pin2)?;
    check_pin("PIN2", pin2).map_err(|e| err(Field::Pin2, e))?;
    let puk2 = required(Field::Puk2)?;
    check_puk("PUK2", puk2).map_err(|e| err(Field::Puk2, e))?;
    let adm1 = required(Field::Adm1)?;
    check_adm("ADM1", adm1).map_err(|e| err(Field::Adm1, e))?;
    let spn = get(Field::Spn);
    if let Some(s) = spn {
        check_spn(s).map_err(|e| err(Field::Spn, e))?;
    }

    Ok(Row {
        line,
        iccid: iccid.to_owned(),
        imsi: imsi.to_owned(),
        mnc_len,
        ki: SecretText::from(ki),
        operator_key,
        pin1: SecretText::from(pin1),
        puk1: SecretText::from(puk1),
        pin2: SecretText::from(pin2),
        puk2: SecretText::from(puk2),
        adm1: SecretText::from(adm1),
        spn: spn.map(str::to_owned),
    })
}

// Field checks come from saip (`saip::personalize::checks`), so a row is refused here for
// exactly the reasons, and with the messages, that personalization would give.
use saip::personalize::checks::{
    adm as check_adm, key as check_key, pin as check_pin, puk as check_puk, spn as check_spn,
};

fn check_imsi(
    imsi: &str,
    mnc_len: u8,
    home_plmn: Option<&str>,
) -> Result<(), PersonalizationError> {
    saip::personalize::checks::imsi(imsi, mnc_len, home_plmn).map(drop)
}
