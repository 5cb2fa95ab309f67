//! Authentication parameters: `PE-PINCodes`, `PE-PUKCodes`, `PE-AKAParameter` and
//! `PE-CDMAParameter`. Secret values are [`Secret`]s (redacted in `Debug`).

use rsp_asn1::tlv::{Tag, Tlv};

use crate::der::{
    Res, cctx, ctx, finish, fixed, not_default, octets, opt, req, uint, uint8, write, write_cons,
    write_uint,
};
use crate::error::{At, Fail};
use crate::header::PeHeader;
use crate::secret::Secret;

/// `PINConfiguration`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinConfig {
    /// `keyReference` (`PINKeyReferenceValue`: 1..8 global PINs, 10..14 / 138..142 ADM,
    /// 129..136 local PINs).
    pub key_reference: u8,
    /// `pinValue`: 8 octets (digits in ASCII, padded with `FF`).
    pub pin_value: Secret,
    /// `unblockingPINReference` (a `PUKKeyReferenceValue`).
    pub unblocking_pin_reference: Option<u8>,
    /// `pinAttributes` (DEFAULT 7).
    pub pin_attributes: u8,
    /// `maxNumOfAttemps-retryNumLeft` (DEFAULT 51): max attempts in the high nibble,
    /// retries left in the low nibble.
    pub max_attempts_retry_left: u8,
}

/// `pinCodes` CHOICE of `PE-PINCodes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinCodesChoice {
    /// `pinconfig`: 1..26 PIN definitions.
    PinConfig(Vec<PinConfig>),
    /// `filePath`: the PINs are shared with another DF/ADF.
    FilePath(Vec<u8>),
}

/// `PE-PINCodes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinCodes {
    /// `pin-Header`.
    pub header: PeHeader,
    /// `pinCodes`.
    pub codes: PinCodesChoice,
}

impl PinCodes {
    pub(crate) fn decode(t: &Tlv<'_>) -> Res<Self> {
        let mut r = t.reader()?;
        let header = PeHeader::read(&mut r, "pin-Header")?;
        let choice = req(&mut r, cctx(1), "pinCodes")?;
        finish(&r)?;
        let codes = decode_pin_choice(&choice).at("pinCodes")?;
        Ok(PinCodes { header, codes })
    }

    pub(crate) fn encode(&self, tag: Tag, out: &mut Vec<u8>) {
        write_cons(out, tag, |o| {
            self.header.encode(cctx(0), o);
            write_cons(o, cctx(1), |o| match &self.codes {
                PinCodesChoice::PinConfig(list) => write_cons(o, cctx(0), |o| {
                    for p in list {
                        write_cons(o, Tag::SEQUENCE, |o| {
                            write_uint(o, ctx(0), u64::from(p.key_reference));
                            write(o, ctx(1), p.pin_value.expose());
                            if let Some(u) = p.unblocking_pin_reference {
                                write_uint(o, ctx(2), u64::from(u));
                            }
                            if p.pin_attributes != 7 {
                                write_uint(o, ctx(3), u64::from(p.pin_attributes));
                            }
                            if p.max_attempts_retry_left != 51 {
                                write_uint(o, ctx(4), u64::from(p.max_attempts_retry_left));
                            }
                        });
                    }
                }),
                PinCodesChoice::FilePath(p) => write(o, ctx(1), p),
            });
        });
    }
}

fn decode_pin_choice(t: &Tlv<'_>) -> Res<PinCodesChoice> {
    let mut r = t.reader()?;
    let alt = r.read()?;
    finish(&r)?;
    if alt.tag == ctx(1) {
        return octets(&alt, 0, 8)
            .map(PinCodesChoice::FilePath)
            .at("filePath");
    }
    if alt.tag != cctx(0) {
        return Err(Fail::unexpected(alt.tag));
    }
    let mut lr = alt.reader().at("pinconfig")?;
    let mut list = Vec::new();
    while !lr.is_empty() {
        let i = list.len();
        let seg = || format!("pinconfig[{i}]");
        let e = lr.read_expect(Tag::SEQUENCE).at_with(seg)?;
        list.push(decode_pin_config(&e).at_with(seg)?);
    }
    if list.is_empty() || list.len() > 26 {
        return Err(Fail::constraint("SIZE (1..26) violated")).at("pinconfig");
    }
    Ok(PinCodesChoice::PinConfig(list))
}

fn decode_pin_config(t: &Tlv<'_>) -> Res<PinConfig> {
    let mut r = t.reader()?;
    let key_reference = uint8(&req(&mut r, ctx(0), "keyReference")?).at("keyReference")?;
    let pin_value = Secret::from(octets(&req(&mut r, ctx(1), "pinValue")?, 8, 8).at("pinValue")?);
    let unblocking_pin_reference = match opt(&mut r, ctx(2), "unblockingPINReference")? {
        Some(t) => Some(uint8(&t).at("unblockingPINReference")?),
        None => None,
    };
    let pin_attributes = match opt(&mut r, ctx(3), "pinAttributes")? {
        Some(t) => not_default(uint8(&t).at("pinAttributes")?, 7).at("pinAttributes")?,
        None => 7,
    };
    let max_attempts_retry_left = match opt(&mut r, ctx(4), "maxNumOfAttemps-retryNumLeft")? {
        Some(t) => not_default(uint8(&t).at("maxNumOfAttemps-retryNumLeft")?, 51)
            .at("maxNumOfAttemps-retryNumLeft")?,
        None => 51,
    };
    finish(&r)?;
    Ok(PinConfig {
        key_reference,
        pin_value,
        unblocking_pin_reference,
        pin_attributes,
        max_attempts_retry_left,
    })
}

/// `PUKConfiguration`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PukConfig {
    /// `keyReference` (`PUKKeyReferenceValue`: 1..8, 129..136).
    pub key_reference: u8,
    /// `pukValue`: 8 octets.
    pub puk_value: Secret,
    /// `maxNumOfAttemps-retryNumLeft` (DEFAULT 170).
    pub max_attempts_retry_left: u8,
}

/// `PE-PUKCodes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PukCodes {
    /// `puk-Header`.
    pub header: PeHeader,
    /// `pukCodes`: 1..16 PUK definitions.
    pub codes: Vec<PukConfig>,
}

impl PukCodes {
    pub(crate) fn decode(t: &Tlv<'_>) -> Res<Self> {
        let mut r = t.reader()?;
        let header = PeHeader::read(&mut r, "puk-Header")?;
        let list = req(&mut r, cctx(1), "pukCodes")?;
        finish(&r)?;
        let mut lr = list.reader().at("pukCodes")?;
        let mut codes = Vec::new();
        while !lr.is_empty() {
            let i = codes.len();
            let seg = || format!("pukCodes[{i}]");
            let e = lr.read_expect(Tag::SEQUENCE).at_with(seg)?;
            codes.push(decode_puk_config(&e).at_with(seg)?);
        }
        if codes.is_empty() || codes.len() > 16 {
            return Err(Fail::constraint("SIZE (1..16) violated")).at("pukCodes");
        }
        Ok(PukCodes { header, codes })
    }

    pub(crate) fn encode(&self, tag: Tag, out: &mut Vec<u8>) {
        write_cons(out, tag, |o| {
            self.header.encode(cctx(0), o);
            write_cons(o, cctx(1), |o| {
                for p in &self.codes {
                    write_cons(o, Tag::SEQUENCE, |o| {
                        write_uint(o, ctx(0), u64::from(p.key_reference));
                        write(o, ctx(1), p.puk_value.expose());
                        if p.max_attempts_retry_left != 170 {
                            write_uint(o, ctx(2), u64::from(p.max_attempts_retry_left));
                        }
                    });
                }
            });
        });
    }
}

fn decode_puk_config(t: &Tlv<'_>) -> Res<PukConfig> {
    let mut r = t.reader()?;
    let key_reference = uint8(&req(&mut r, ctx(0), "keyReference")?).at("keyReference")?;
    let puk_value = Secret::from(octets(&req(&mut r, ctx(1), "pukValue")?, 8, 8).at("pukValue")?);
    let max_attempts_retry_left = match opt(&mut r, ctx(2), "maxNumOfAttemps-retryNumLeft")? {
        Some(t) => not_default(uint8(&t).at("maxNumOfAttemps-retryNumLeft")?, 170)
            .at("maxNumOfAttemps-retryNumLeft")?,
        None => 170,
    };
    finish(&r)?;
    Ok(PukConfig {
        key_reference,
        puk_value,
        max_attempts_retry_left,
    })
}

/// `MappingParameter`: the AKA PE reuses the algorithm parameters of another NAA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingParameter {
    /// `mappingOptions` (1 octet).
    pub mapping_options: u8,
    /// `mappingSource`: AID of the source application (5..16 octets).
    pub mapping_source: Vec<u8>,
}

/// `algorithmID` of `AlgoParameter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgorithmId {
    /// `milenage(1)`.
    Milenage,
    /// `tuak(2)`.
    Tuak,
    /// `usim-test-algorithm(3)`.
    UsimTestAlgorithm,
    /// A value not named in SAIP 3.3.1.
    Other(u64),
}

impl AlgorithmId {
    /// From the INTEGER value.
    pub fn from_u64(v: u64) -> Self {
        match v {
            1 => AlgorithmId::Milenage,
            2 => AlgorithmId::Tuak,
            3 => AlgorithmId::UsimTestAlgorithm,
            n => AlgorithmId::Other(n),
        }
    }

    /// The INTEGER value.
    pub fn to_u64(self) -> u64 {
        match self {
            AlgorithmId::Milenage => 1,
            AlgorithmId::Tuak => 2,
            AlgorithmId::UsimTestAlgorithm => 3,
            AlgorithmId::Other(n) => n,
        }
    }
}

/// Default `rotationConstants` (Milenage r1..r5).
pub const DEFAULT_ROTATION_CONSTANTS: [u8; 5] = [0x40, 0x00, 0x20, 0x40, 0x60];

/// Default `xoringConstants` (Milenage c1..c5).
pub const DEFAULT_XORING_CONSTANTS: [u8; 80] = {
    let mut c = [0u8; 80];
    c[31] = 1;
    c[47] = 2;
    c[63] = 4;
    c[79] = 8;
    c
};

/// `AlgoParameter`: the network authentication algorithm and its secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlgoParameter {
    /// `algorithmID`.
    pub algorithm_id: AlgorithmId,
    /// `algorithmOptions` (1 octet).
    pub algorithm_options: u8,
    /// `key`: Ki (K).
    pub key: Secret,
    /// `opc`: OPc for Milenage, TOPc for TUAK.
    pub opc: Secret,
    /// `rotationConstants` (DEFAULT [`DEFAULT_ROTATION_CONSTANTS`]).
    pub rotation_constants: [u8; 5],
    /// `xoringConstants` (DEFAULT [`DEFAULT_XORING_CONSTANTS`]).
    pub xoring_constants: [u8; 80],
    /// `authCounterMax` (3 octets).
    pub auth_counter_max: Option<[u8; 3]>,
    /// `numberOfKeccak` (DEFAULT 1).
    pub number_of_keccak: u8,
}

/// `algoConfiguration` CHOICE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlgoConfiguration {
    /// `mappingParameter [0]`.
    Mapping(MappingParameter),
    /// `algoParameter [1]`.
    Algo(AlgoParameter),
}

/// Default `sqnDelta` and `sqnAgeLimit`.
pub const DEFAULT_SQN_DELTA: [u8; 6] = [0x00, 0x00, 0x10, 0x00, 0x00, 0x00];

/// `PE-AKAParameter`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AkaParameter {
    /// `aka-header`.
    pub header: PeHeader,
    /// `algoConfiguration`.
    pub algo: AlgoConfiguration,
    /// `sqnOptions` (DEFAULT `02`).
    pub sqn_options: u8,
    /// `sqnDelta` (DEFAULT [`DEFAULT_SQN_DELTA`]).
    pub sqn_delta: [u8; 6],
    /// `sqnAgeLimit` (DEFAULT [`DEFAULT_SQN_DELTA`]).
    pub sqn_age_limit: [u8; 6],
    /// `sqnInit`: 32 values when present. The schema's DEFAULT for this SEQUENCE OF is
    /// written as a single octet string (ill-typed), so absence is kept as `None` rather
    /// than expanded.
    pub sqn_init: Option<Vec<[u8; 6]>>,
}

impl AkaParameter {
    /// The algorithm parameters, when this PE carries them (not a mapping).
    pub fn algo_parameter(&self) -> Option<&AlgoParameter> {
        match &self.algo {
            AlgoConfiguration::Algo(a) => Some(a),
            AlgoConfiguration::Mapping(_) => None,
        }
    }

    /// The algorithm parameters, mutable.
    pub fn algo_parameter_mut(&mut self) -> Option<&mut AlgoParameter> {
        match &mut self.algo {
            AlgoConfiguration::Algo(a) => Some(a),
            AlgoConfiguration::Mapping(_) => None,
        }
    }

    pub(crate) fn decode(t: &Tlv<'_>) -> Res<Self> {
        let mut r = t.reader()?;
        let header = PeHeader::read(&mut r, "aka-header")?;
        let choice = req(&mut r, cctx(1), "algoConfiguration")?;
        let algo = decode_algo_choice(&choice).at("algoConfiguration")?;
        let sqn_options = match opt(&mut r, ctx(2), "sqnOptions")? {
            Some(t) => not_default(fixed::<1>(&t).at("sqnOptions")?[0], 0x02).at("sqnOptions")?,
            None => 0x02,
        };
        let sqn_delta = match opt(&mut r, ctx(3), "sqnDelta")? {
            Some(t) => {
                not_default(fixed::<6>(&t).at("sqnDelta")?, DEFAULT_SQN_DELTA).at("sqnDelta")?
            }
            None => DEFAULT_SQN_DELTA,
        };
        let sqn_age_limit = match opt(&mut r, ctx(4), "sqnAgeLimit")? {
            Some(t) => not_default(fixed::<6>(&t).at("sqnAgeLimit")?, DEFAULT_SQN_DELTA)
                .at("sqnAgeLimit")?,
            None => DEFAULT_SQN_DELTA,
        };
        let sqn_init = match opt(&mut r, cctx(5), "sqnInit")? {
            Some(t) => {
                let mut lr = t.reader().at("sqnInit")?;
                let mut v = Vec::new();
                while !lr.is_empty() {
                    let i = v.len();
                    let seg = || format!("sqnInit[{i}]");
                    let e = lr.read_expect(Tag::OCTET_STRING).at_with(seg)?;
                    v.push(fixed::<6>(&e).at_with(seg)?);
                }
                if v.len() != 32 {
                    return Err(Fail::constraint("SIZE (32) violated")).at("sqnInit");
                }
                Some(v)
            }
            None => None,
        };
        finish(&r)?;
        Ok(AkaParameter {
            header,
            algo,
            sqn_options,
            sqn_delta,
            sqn_age_limit,
            sqn_init,
        })
    }

    pub(crate) fn encode(&self, tag: Tag, out: &mut Vec<u8>) {
        write_cons(out, tag, |o| {
            self.header.encode(cctx(0), o);
            write_cons(o, cctx(1), |o| match &self.algo {
                AlgoConfiguration::Mapping(m) => write_cons(o, cctx(0), |o| {
                    write(o, ctx(0), &[m.mapping_options]);
                    write(o, ctx(1), &m.mapping_source);
                }),
                AlgoConfiguration::Algo(a) => write_cons(o, cctx(1), |o| {
                    write_uint(o, ctx(0), a.algorithm_id.to_u64());
                    write(o, ctx(1), &[a.algorithm_options]);
                    write(o, ctx(2), a.key.expose());
                    write(o, ctx(3), a.opc.expose());
                    if a.rotation_constants != DEFAULT_ROTATION_CONSTANTS {
                        write(o, ctx(4), &a.rotation_constants);
                    }
                    if a.xoring_constants != DEFAULT_XORING_CONSTANTS {
                        write(o, ctx(5), &a.xoring_constants);
                    }
                    if let Some(c) = &a.auth_counter_max {
                        write(o, ctx(6), c);
                    }
                    if a.number_of_keccak != 1 {
                        write_uint(o, ctx(7), u64::from(a.number_of_keccak));
                    }
                }),
            });
            if self.sqn_options != 0x02 {
                write(o, ctx(2), &[self.sqn_options]);
            }
            if self.sqn_delta != DEFAULT_SQN_DELTA {
                write(o, ctx(3), &self.sqn_delta);
            }
            if self.sqn_age_limit != DEFAULT_SQN_DELTA {
                write(o, ctx(4), &self.sqn_age_limit);
            }
            if let Some(list) = &self.sqn_init {
                write_cons(o, cctx(5), |o| {
                    for s in list {
                        write(o, Tag::OCTET_STRING, s);
                    }
                });
            }
        });
    }
}

fn decode_algo_choice(t: &Tlv<'_>) -> Res<AlgoConfiguration> {
    let mut r = t.reader()?;
    let alt = r.read()?;
    finish(&r)?;
    if alt.tag == cctx(0) {
        let mut m = alt.reader().at("mappingParameter")?;
        let mapping_options = fixed::<1>(&req(&mut m, ctx(0), "mappingOptions")?)
            .at("mappingOptions")
            .at("mappingParameter")?[0];
        let mapping_source = octets(&req(&mut m, ctx(1), "mappingSource")?, 5, 16)
            .at("mappingSource")
            .at("mappingParameter")?;
        finish(&m).at("mappingParameter")?;
        return Ok(AlgoConfiguration::Mapping(MappingParameter {
            mapping_options,
            mapping_source,
        }));
    }
    if alt.tag != cctx(1) {
        return Err(Fail::unexpected(alt.tag));
    }
    decode_algo_parameter(&alt)
        .map(AlgoConfiguration::Algo)
        .at("algoParameter")
}

fn decode_algo_parameter(t: &Tlv<'_>) -> Res<AlgoParameter> {
    let mut r = t.reader()?;
    let algorithm_id = AlgorithmId::from_u64(
        uint(&req(&mut r, ctx(0), "algorithmID")?, u64::MAX).at("algorithmID")?,
    );
    let algorithm_options =
        fixed::<1>(&req(&mut r, ctx(1), "algorithmOptions")?).at("algorithmOptions")?[0];
    let key = Secret::from(octets(&req(&mut r, ctx(2), "key")?, 0, usize::MAX).at("key")?);
    let opc = Secret::from(octets(&req(&mut r, ctx(3), "opc")?, 0, usize::MAX).at("opc")?);
    let rotation_constants = match opt(&mut r, ctx(4), "rotationConstants")? {
        Some(t) => not_default(
            fixed::<5>(&t).at("rotationConstants")?,
            DEFAULT_ROTATION_CONSTANTS,
        )
        .at("rotationConstants")?,
        None => DEFAULT_ROTATION_CONSTANTS,
    };
    let xoring_constants = match opt(&mut r, ctx(5), "xoringConstants")? {
        Some(t) => not_default(
            fixed::<80>(&t).at("xoringConstants")?,
            DEFAULT_XORING_CONSTANTS,
        )
        .at("xoringConstants")?,
        None => DEFAULT_XORING_CONSTANTS,
    };
    let auth_counter_max = match opt(&mut r, ctx(6), "authCounterMax")? {
        Some(t) => Some(fixed::<3>(&t).at("authCounterMax")?),
        None => None,
    };
    let number_of_keccak = match opt(&mut r, ctx(7), "numberOfKeccak")? {
        Some(t) => not_default(uint8(&t).at("numberOfKeccak")?, 1).at("numberOfKeccak")?,
        None => 1,
    };
    finish(&r)?;
    Ok(AlgoParameter {
        algorithm_id,
        algorithm_options,
        key,
        opc,
        rotation_constants,
        xoring_constants,
        auth_counter_max,
        number_of_keccak,
    })
}

/// `PE-CDMAParameter`. Every value is secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CdmaParameter {
    /// `cdma-header`.
    pub header: PeHeader,
    /// `authenticationKey` (A-Key, 8 octets).
    pub authentication_key: Secret,
    /// `ssd` (16 octets).
    pub ssd: Option<Secret>,
    /// `hrpdAccessAuthenticationData` (2..32 octets).
    pub hrpd_access_authentication_data: Option<Secret>,
    /// `simpleIPAuthenticationData` (3..483 octets).
    pub simple_ip_authentication_data: Option<Secret>,
    /// `mobileIPAuthenticationData` (5..957 octets).
    pub mobile_ip_authentication_data: Option<Secret>,
}

impl CdmaParameter {
    pub(crate) fn decode(t: &Tlv<'_>) -> Res<Self> {
        let mut r = t.reader()?;
        let header = PeHeader::read(&mut r, "cdma-header")?;
        let authentication_key = Secret::from(
            octets(&req(&mut r, ctx(1), "authenticationKey")?, 8, 8).at("authenticationKey")?,
        );
        let mut optional = |n: u32, name: &str, min: usize, max: usize| -> Res<Option<Secret>> {
            match opt(&mut r, ctx(n), name)? {
                Some(t) => Ok(Some(Secret::from(octets(&t, min, max).at(name)?))),
                None => Ok(None),
            }
        };
        let ssd = optional(2, "ssd", 16, 16)?;
        let hrpd = optional(3, "hrpdAccessAuthenticationData", 2, 32)?;
        let simple = optional(4, "simpleIPAuthenticationData", 3, 483)?;
        let mobile = optional(5, "mobileIPAuthenticationData", 5, 957)?;
        finish(&r)?;
        Ok(CdmaParameter {
            header,
            authentication_key,
            ssd,
            hrpd_access_authentication_data: hrpd,
            simple_ip_authentication_data: simple,
            mobile_ip_authentication_data: mobile,
        })
    }

    pub(crate) fn encode(&self, tag: Tag, out: &mut Vec<u8>) {
        write_cons(out, tag, |o| {
            self.header.encode(cctx(0), o);
            write(o, ctx(1), self.authentication_key.expose());
            for (n, v) in [
                (2, &self.ssd),
                (3, &self.hrpd_access_authentication_data),
                (4, &self.simple_ip_authentication_data),
                (5, &self.mobile_ip_authentication_data),
            ] {
                if let Some(v) = v {
                    write(o, ctx(n), v.expose());
                }
            }
        });
    }
}
