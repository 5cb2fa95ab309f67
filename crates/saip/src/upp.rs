//! [`Upp`]: an Unprotected Profile Package (a concatenation of ProfileElement DER values),
//! with listing and personalization.

use rsp_asn1::tlv::Reader;

use crate::bcd;
use crate::error::{Fail, SaipError};
use crate::file::{File, TemplatePe};
use crate::header::ProfileHeader;
use crate::params::{AkaParameter, PinCodesChoice};
use crate::pe::{PeBody, PeType, ProfileElement};
use crate::secret::Secret;

/// One line of [`Upp::summary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeInfo {
    /// Position in the package (0-based).
    pub index: usize,
    /// The PE type.
    pub pe_type: PeType,
    /// The PE header's `identification` (none for the ProfileHeader and raw PEs).
    pub identification: Option<u16>,
}

/// An Unprotected Profile Package: the ordered Profile Elements.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Upp {
    /// The PEs in package order.
    pub elements: Vec<ProfileElement>,
}

impl Upp {
    /// Decode a package. Strict DER; the first PE must be the ProfileHeader. Completeness
    /// (an `end` PE last) is checked separately by [`Upp::check_complete`], so any prefix
    /// of a package that ends on a PE boundary decodes.
    pub fn decode(input: &[u8]) -> Result<Self, SaipError> {
        if input.is_empty() {
            return Err(Fail::from(rsp_asn1::DecodeError::Truncated)
                .into_failure(None, None)
                .into());
        }
        let mut r = Reader::new(input);
        let mut elements = Vec::new();
        while !r.is_empty() {
            let index = elements.len();
            let name = r
                .peek_tag()
                .filter(|t| t.is_constructed() && t.class() == rsp_asn1::tlv::Class::Context)
                .map(|t| PeType::from_number(t.number()).name());
            let t = r
                .read()
                .map_err(|e| Fail::from(e).into_failure(Some(index), name))?;
            let pe =
                ProfileElement::decode_tlv(&t).map_err(|f| f.into_failure(Some(index), name))?;
            if (index == 0) != (pe.pe_type == PeType::Header) {
                let why = if index == 0 {
                    "the first PE must be the ProfileHeader"
                } else {
                    "only the first PE may be a ProfileHeader"
                };
                return Err(Fail::constraint(why).into_failure(Some(index), name).into());
            }
            elements.push(pe);
        }
        Ok(Upp { elements })
    }

    /// The DER encoding (every PE re-encoded, lengths recomputed).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for pe in &self.elements {
            pe.encode_into(&mut out);
        }
        out
    }

    /// Require the package to end with an `end` PE (and have no other `end`).
    pub fn check_complete(&self) -> Result<(), SaipError> {
        let ends = self
            .elements
            .iter()
            .filter(|p| p.pe_type == PeType::End)
            .count();
        match self.elements.last() {
            Some(last) if last.pe_type == PeType::End && ends == 1 => Ok(()),
            _ => Err(SaipError::NotFound(
                "a single end PE at the end of the package",
            )),
        }
    }

    /// Index, type and identification of every PE.
    pub fn summary(&self) -> Vec<PeInfo> {
        self.elements
            .iter()
            .enumerate()
            .map(|(index, pe)| PeInfo {
                index,
                pe_type: pe.pe_type,
                identification: pe.pe_header().map(|h| h.identification),
            })
            .collect()
    }

    /// The ProfileHeader.
    pub fn header(&self) -> Result<&ProfileHeader, SaipError> {
        self.elements
            .iter()
            .find_map(|p| match &p.body {
                PeBody::Header(h) => Some(h),
                _ => None,
            })
            .ok_or(SaipError::NotFound("ProfileHeader"))
    }

    /// The ProfileHeader, mutable.
    pub fn header_mut(&mut self) -> Result<&mut ProfileHeader, SaipError> {
        self.elements
            .iter_mut()
            .find_map(|p| match &mut p.body {
                PeBody::Header(h) => Some(h),
                _ => None,
            })
            .ok_or(SaipError::NotFound("ProfileHeader"))
    }

    /// The first template PE of this type (`PeType::Usim`, ...).
    pub fn template(&self, pe_type: PeType) -> Option<&TemplatePe> {
        self.elements.iter().find_map(|p| match &p.body {
            PeBody::Template(t) if p.pe_type == pe_type => Some(t),
            _ => None,
        })
    }

    /// The first template PE of this type, mutable.
    pub fn template_mut(&mut self, pe_type: PeType) -> Option<&mut TemplatePe> {
        self.elements.iter_mut().find_map(|p| match &mut p.body {
            PeBody::Template(t) if p.pe_type == pe_type => Some(t),
            _ => None,
        })
    }

    /// The `File` component `field` (`ef-imsi`) of the first template PE of `pe_type`.
    pub fn template_file(&self, pe_type: PeType, field: &str) -> Option<&File> {
        self.template(pe_type)?.file(field)
    }

    /// The `File` component `field` of the first template PE of `pe_type`, mutable.
    pub fn template_file_mut(&mut self, pe_type: PeType, field: &str) -> Option<&mut File> {
        self.template_mut(pe_type)?.file_mut(field)
    }

    /// EF.ICCID: `ef-iccid` of the MF PE, else of the IoT PE.
    fn ef_iccid_file(&self) -> Option<&File> {
        self.template_file(PeType::Mf, "ef-iccid")
            .or_else(|| self.template_file(PeType::Iot, "ef-iccid"))
    }

    /// EF.IMSI: `ef-imsi` of the first USIM PE, else of the IoT PE.
    fn ef_imsi_file(&self) -> Option<&File> {
        self.template_file(PeType::Usim, "ef-imsi")
            .or_else(|| self.template_file(PeType::Iot, "ef-imsi"))
    }

    /// The ICCID of the ProfileHeader (19 or 20 digits).
    pub fn iccid(&self) -> Result<String, SaipError> {
        self.header()?.iccid_digits()
    }

    /// The ICCID written in EF.ICCID (`fillFileContent` of `ef-iccid`).
    pub fn ef_iccid(&self) -> Result<String, SaipError> {
        let content = self
            .ef_iccid_file()
            .and_then(File::content)
            .ok_or(SaipError::NotFound("EF.ICCID content"))?;
        bcd::iccid_from_ef(content)
    }

    /// Set the ICCID in the ProfileHeader and in EF.ICCID (when the package has an MF or
    /// IoT PE with `ef-iccid`).
    pub fn set_iccid(&mut self, iccid: &str) -> Result<(), SaipError> {
        let plain = bcd::iccid_to_plain(iccid)?;
        let ef = bcd::iccid_to_ef(iccid)?;
        let has_mf = self.template_file(PeType::Mf, "ef-iccid").is_some();
        let file = if has_mf {
            self.template_file_mut(PeType::Mf, "ef-iccid")
        } else {
            self.template_file_mut(PeType::Iot, "ef-iccid")
        };
        if let Some(f) = file {
            f.set_content(&ef)?;
        }
        self.header_mut()?.iccid = plain;
        Ok(())
    }

    /// The IMSI written in EF.IMSI of the first USIM (or IoT) PE.
    pub fn imsi(&self) -> Result<String, SaipError> {
        let content = self
            .ef_imsi_file()
            .and_then(File::content)
            .ok_or(SaipError::NotFound("EF.IMSI content"))?;
        bcd::imsi_from_ef(content)
    }

    /// Write the IMSI (6..15 digits) in EF.IMSI of the first USIM (or IoT) PE.
    pub fn set_imsi(&mut self, imsi: &str) -> Result<(), SaipError> {
        let ef = bcd::imsi_to_ef(imsi)?;
        let has_usim = self.template_file(PeType::Usim, "ef-imsi").is_some();
        let file = if has_usim {
            self.template_file_mut(PeType::Usim, "ef-imsi")
        } else {
            self.template_file_mut(PeType::Iot, "ef-imsi")
        };
        file.ok_or(SaipError::NotFound("EF.IMSI"))?.set_content(&ef)
    }

    /// Every `akaParameter` PE with its index.
    pub fn aka_parameters(&self) -> Vec<(usize, &AkaParameter)> {
        self.elements
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match &p.body {
                PeBody::AkaParameter(a) => Some((i, a)),
                _ => None,
            })
            .collect()
    }

    /// Set Ki (`key`) and OPc (`opc`) in every `akaParameter` PE that carries an
    /// `algoParameter` (a profile has one per NAA: USIM, ISIM). Both must be 16 or 32
    /// octets. Returns the number of PEs changed.
    pub fn set_ki_opc(&mut self, ki: &[u8], opc: &[u8]) -> Result<usize, SaipError> {
        for (what, v) in [("Ki", ki), ("OPc", opc)] {
            if v.len() != 16 && v.len() != 32 {
                return Err(SaipError::InvalidValue {
                    what,
                    why: "must be 16 or 32 octets",
                });
            }
        }
        let mut n = 0;
        for pe in &mut self.elements {
            if let PeBody::AkaParameter(a) = &mut pe.body
                && let Some(p) = a.algo_parameter_mut()
            {
                p.key = Secret::new(ki);
                p.opc = Secret::new(opc);
                n += 1;
            }
        }
        if n == 0 {
            return Err(SaipError::NotFound("akaParameter with algoParameter"));
        }
        Ok(n)
    }

    /// Set the value of every PIN with this `keyReference` (a local PIN may be defined in
    /// several ADFs). Returns the number changed; `NotFound` when none.
    pub fn set_pin(&mut self, key_reference: u8, value: [u8; 8]) -> Result<usize, SaipError> {
        let mut n = 0;
        for pe in &mut self.elements {
            if let PeBody::PinCodes(p) = &mut pe.body
                && let PinCodesChoice::PinConfig(list) = &mut p.codes
            {
                for c in list.iter_mut().filter(|c| c.key_reference == key_reference) {
                    c.pin_value = Secret::new(&value);
                    n += 1;
                }
            }
        }
        if n == 0 {
            return Err(SaipError::NotFound("PIN with this keyReference"));
        }
        Ok(n)
    }

    /// Set the value of every PUK with this `keyReference`. Returns the number changed.
    pub fn set_puk(&mut self, key_reference: u8, value: [u8; 8]) -> Result<usize, SaipError> {
        let mut n = 0;
        for pe in &mut self.elements {
            if let PeBody::PukCodes(p) = &mut pe.body {
                for c in p
                    .codes
                    .iter_mut()
                    .filter(|c| c.key_reference == key_reference)
                {
                    c.puk_value = Secret::new(&value);
                    n += 1;
                }
            }
        }
        if n == 0 {
            return Err(SaipError::NotFound("PUK with this keyReference"));
        }
        Ok(n)
    }

    /// The value of the first PIN with this `keyReference`.
    pub fn pin(&self, key_reference: u8) -> Option<&Secret> {
        self.elements.iter().find_map(|pe| match &pe.body {
            PeBody::PinCodes(p) => match &p.codes {
                PinCodesChoice::PinConfig(list) => list
                    .iter()
                    .find(|c| c.key_reference == key_reference)
                    .map(|c| &c.pin_value),
                PinCodesChoice::FilePath(_) => None,
            },
            _ => None,
        })
    }

    /// The value of the first PUK with this `keyReference`.
    pub fn puk(&self, key_reference: u8) -> Option<&Secret> {
        self.elements.iter().find_map(|pe| match &pe.body {
            PeBody::PukCodes(p) => p
                .codes
                .iter()
                .find(|c| c.key_reference == key_reference)
                .map(|c| &c.puk_value),
            _ => None,
        })
    }
}
