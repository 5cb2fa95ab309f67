//! Activation Codes (SGP.22 section 4.1, Table 8) and MatchingIDs (section 4.1.1).
//!
//! `1$<SM-DP+ address>$<MatchingID>[$<SM-DP+ OID>[$1]]`, where a delimiter appears only when a
//! later optional field is present (so "no OID but CC required" is `...$$1`). The QR-code form
//! carries the prefix `LPA:`. The whole string is at most 255 characters.
//!
//! Decisions where the specification leaves room:
//! - The SM-DP+ address is restricted by the spec to the ISO/IEC 18004 alphanumeric set (upper
//!   case). Deployed codes use lower-case host names, which every LPA accepts, so we accept
//!   letters of either case, digits, `-` and `.` plus an optional `:port`, and keep the case.
//! - The MatchingID is strict: `0-9`, `A-Z` and `-` only, or empty.
//! - An `AC_Format` other than `1` is refused (as a Phase 1 Device must). Fields after the
//!   Confirmation Code Required Flag are refused too: we cannot know their meaning, and
//!   silently dropping them would break the round trip.

use std::fmt;

/// Maximum length of an Activation Code (Table 8 note), without the `LPA:` prefix.
pub const MAX_LEN: usize = 255;

/// A parsed Activation Code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivationCode {
    /// The SM-DP+ address (FQDN, optionally with `:port`).
    pub smdp_address: String,
    /// The MatchingID (AC_Token); may be empty.
    pub matching_id: String,
    /// The SM-DP+ OID (as in CERT.DPauth.ECDSA), dotted decimal.
    pub smdp_oid: Option<String>,
    /// Whether a Confirmation Code is required.
    pub confirmation_code_required: bool,
}

/// Why a string is not a valid Activation Code. The `Display` text is meant for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActivationCodeError {
    /// Longer than 255 characters.
    #[error("activation code is {0} characters long; the maximum is 255")]
    TooLong(usize),
    /// AC_Format is not "1".
    #[error("unsupported activation code format {0:?}: only \"1\" is defined")]
    UnsupportedFormat(String),
    /// Fewer than the three mandatory fields.
    #[error("activation code needs at least 1$<SM-DP+ address>$<matching ID>")]
    MissingFields,
    /// More fields than Table 8 defines.
    #[error("activation code has {0} fields; at most 5 are defined")]
    TooManyFields(usize),
    /// The SM-DP+ address is empty or has characters outside the allowed set.
    #[error("invalid SM-DP+ address {0:?}: expected a host name like smdp.example.com[:port]")]
    BadAddress(String),
    /// The MatchingID has characters other than 0-9, A-Z and '-'.
    #[error("invalid matching ID {0:?}: only 0-9, A-Z and '-' are allowed")]
    BadMatchingId(String),
    /// The SM-DP+ OID is not dotted decimal.
    #[error("invalid SM-DP+ OID {0:?}: expected dotted decimal like 1.3.6.1.4.1.31746")]
    BadOid(String),
    /// The Confirmation Code Required Flag is present but not "1".
    #[error("invalid confirmation code flag {0:?}: it must be \"1\" or absent")]
    BadCcFlag(String),
}

impl ActivationCode {
    /// Parse an Activation Code, with or without the `LPA:` QR prefix.
    pub fn parse(input: &str) -> Result<Self, ActivationCodeError> {
        let s = input.strip_prefix("LPA:").unwrap_or(input);
        let len = s.chars().count();
        if len > MAX_LEN {
            return Err(ActivationCodeError::TooLong(len));
        }
        let fields: Vec<&str> = s.split('$').collect();
        let format = fields.first().copied().unwrap_or_default();
        if format != "1" {
            return Err(ActivationCodeError::UnsupportedFormat(format.to_owned()));
        }
        if fields.len() < 3 {
            return Err(ActivationCodeError::MissingFields);
        }
        if fields.len() > 5 {
            return Err(ActivationCodeError::TooManyFields(fields.len()));
        }
        let address = fields.get(1).copied().unwrap_or_default();
        validate_address(address)?;
        let matching_id = fields.get(2).copied().unwrap_or_default();
        validate_matching_id(matching_id)?;
        let smdp_oid = match fields.get(3).copied() {
            None | Some("") => None,
            Some(oid) => {
                validate_oid(oid)?;
                Some(oid.to_owned())
            }
        };
        let confirmation_code_required = match fields.get(4).copied() {
            None => false,
            Some("1") => true,
            Some(other) => return Err(ActivationCodeError::BadCcFlag(other.to_owned())),
        };
        // "$$" with nothing after it would be a delimiter with no optional field behind it.
        if fields.len() == 4 && smdp_oid.is_none() {
            return Err(ActivationCodeError::BadOid(String::new()));
        }
        Ok(ActivationCode {
            smdp_address: address.to_owned(),
            matching_id: matching_id.to_owned(),
            smdp_oid,
            confirmation_code_required,
        })
    }

    /// The form to put in a QR code: `LPA:` followed by the Activation Code.
    pub fn to_qr_string(&self) -> String {
        format!("LPA:{self}")
    }

    /// Check every field, as [`ActivationCode::parse`] would, before handing a code out.
    pub fn validate(&self) -> Result<(), ActivationCodeError> {
        validate_address(&self.smdp_address)?;
        validate_matching_id(&self.matching_id)?;
        if let Some(oid) = &self.smdp_oid {
            validate_oid(oid)?;
        }
        let len = self.to_string().chars().count();
        if len > MAX_LEN {
            return Err(ActivationCodeError::TooLong(len));
        }
        Ok(())
    }
}

impl fmt::Display for ActivationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1${}${}", self.smdp_address, self.matching_id)?;
        match (&self.smdp_oid, self.confirmation_code_required) {
            (Some(oid), true) => write!(f, "${oid}$1"),
            (Some(oid), false) => write!(f, "${oid}"),
            (None, true) => write!(f, "$$1"),
            (None, false) => Ok(()),
        }
    }
}

impl std::str::FromStr for ActivationCode {
    type Err = ActivationCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActivationCode::parse(s)
    }
}

/// Check a MatchingID: empty, or only `0-9`, `A-Z` and `-` (section 4.1.1).
pub fn validate_matching_id(id: &str) -> Result<(), ActivationCodeError> {
    if id
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase() || b == b'-')
    {
        Ok(())
    } else {
        Err(ActivationCodeError::BadMatchingId(id.to_owned()))
    }
}

/// Check an SM-DP+ address: a host name of labels (letters, digits, '-') joined by '.',
/// optionally followed by `:port`.
pub fn validate_address(address: &str) -> Result<(), ActivationCodeError> {
    let bad = || ActivationCodeError::BadAddress(address.to_owned());
    let (host, port) = match address.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (address, None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if p.parse::<u32>().map_or(true, |n| n == 0 || n > 65535) {
            return Err(bad());
        }
    }
    if host.is_empty() || host.len() > 253 {
        return Err(bad());
    }
    for label in host.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

fn validate_oid(oid: &str) -> Result<(), ActivationCodeError> {
    let arcs: Vec<&str> = oid.split('.').collect();
    let ok = arcs.len() >= 2
        && arcs.iter().all(|a| {
            !a.is_empty()
                && a.bytes().all(|b| b.is_ascii_digit())
                && (a.len() == 1 || !a.starts_with('0'))
        });
    if ok {
        Ok(())
    } else {
        Err(ActivationCodeError::BadOid(oid.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> Vec<String> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/vectors/rsp-crypto-vectors.json"
        );
        let text = std::fs::read_to_string(path).expect("shared vectors file");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        v["activation_codes"]["round_trip"]
            .as_array()
            .expect("round_trip array")
            .iter()
            .map(|s| s.as_str().expect("string").to_owned())
            .collect()
    }

    #[test]
    fn shared_vectors_round_trip() {
        let cases = vectors();
        assert!(cases.len() >= 5);
        for s in cases {
            let ac = ActivationCode::parse(&s).expect(&s);
            assert_eq!(ac.to_string(), s);
            assert_eq!(ac.to_qr_string(), format!("LPA:{s}"));
            assert_eq!(ActivationCode::parse(&format!("LPA:{s}")).expect("qr"), ac);
        }
    }

    #[test]
    fn fields_are_read() {
        let ac = ActivationCode::parse("LPA:1$smdp.example.com:8443$AB-12$1.3.6.1.4.1.31746$1")
            .expect("parse");
        assert_eq!(ac.smdp_address, "smdp.example.com:8443");
        assert_eq!(ac.matching_id, "AB-12");
        assert_eq!(ac.smdp_oid.as_deref(), Some("1.3.6.1.4.1.31746"));
        assert!(ac.confirmation_code_required);
        let ac = ActivationCode::parse("1$SMDP.GSMA.COM$04386-AGYFT$$1").expect("parse");
        assert_eq!(ac.smdp_oid, None);
        assert!(ac.confirmation_code_required);
    }

    #[test]
    fn rejects_wrong_format() {
        assert_eq!(
            ActivationCode::parse("2$SMDP.GSMA.COM$X"),
            Err(ActivationCodeError::UnsupportedFormat("2".into()))
        );
        assert_eq!(
            ActivationCode::parse("LPA:"),
            Err(ActivationCodeError::UnsupportedFormat(String::new()))
        );
    }

    #[test]
    fn rejects_missing_fields() {
        assert_eq!(
            ActivationCode::parse("1$SMDP.GSMA.COM"),
            Err(ActivationCodeError::MissingFields)
        );
    }

    #[test]
    fn rejects_too_many_fields() {
        assert_eq!(
            ActivationCode::parse("1$A.COM$X$1.2$1$extra"),
            Err(ActivationCodeError::TooManyFields(6))
        );
    }

    #[test]
    fn rejects_oversized_code() {
        let s = format!("1$A.COM${}", "A".repeat(260));
        assert!(matches!(
            ActivationCode::parse(&s),
            Err(ActivationCodeError::TooLong(_))
        ));
    }

    #[test]
    fn rejects_bad_matching_id() {
        assert_eq!(
            ActivationCode::parse("1$A.COM$abc"),
            Err(ActivationCodeError::BadMatchingId("abc".into()))
        );
        assert!(ActivationCode::parse("1$A.COM$A B").is_err());
    }

    #[test]
    fn rejects_bad_address() {
        for a in [
            "",
            "a..b",
            "-a.com",
            "a.com:",
            "a.com:99999",
            "a_b.com",
            "a.com:0",
        ] {
            let s = format!("1${a}$X");
            assert_eq!(
                ActivationCode::parse(&s),
                Err(ActivationCodeError::BadAddress(a.into())),
                "{a}"
            );
        }
    }

    #[test]
    fn rejects_bad_oid() {
        assert_eq!(
            ActivationCode::parse("1$A.COM$X$1.x"),
            Err(ActivationCodeError::BadOid("1.x".into()))
        );
        assert_eq!(
            ActivationCode::parse("1$A.COM$X$"),
            Err(ActivationCodeError::BadOid(String::new()))
        );
        assert!(ActivationCode::parse("1$A.COM$X$1.02").is_err());
    }

    #[test]
    fn rejects_bad_cc_flag() {
        assert_eq!(
            ActivationCode::parse("1$A.COM$X$$0"),
            Err(ActivationCodeError::BadCcFlag("0".into()))
        );
        assert_eq!(
            ActivationCode::parse("1$A.COM$X$1.2$"),
            Err(ActivationCodeError::BadCcFlag(String::new()))
        );
    }

    #[test]
    fn validate_catches_what_parse_would() {
        let mut ac = ActivationCode::parse("1$A.COM$X").expect("parse");
        assert_eq!(ac.validate(), Ok(()));
        ac.matching_id = "lower".into();
        assert!(ac.validate().is_err());
    }
}
