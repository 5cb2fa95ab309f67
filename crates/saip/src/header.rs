//! `PEHeader` (common to every PE) and the `ProfileHeader` PE.

use rsp_asn1::prim::Oid;
use rsp_asn1::tlv::{Reader, Tag, Tlv};

use crate::der::{
    Res, cctx, ctx, finish, fixed, null, octets, opt, req, uint, uint8, write, write_cons,
    write_uint,
};
use crate::error::{At, Fail};

/// `PEHeader ::= SEQUENCE { mandated NULL OPTIONAL, identification UInt15 }`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PeHeader {
    /// `mandated`: support of this PE is mandatory.
    pub mandated: bool,
    /// `identification`: the PE's identification number (0..=32767).
    pub identification: u16,
}

impl PeHeader {
    /// Decode the contents of the header element (its tag already matched).
    pub(crate) fn decode(t: &Tlv<'_>) -> Res<Self> {
        let mut r = t.reader()?;
        let mandated = match opt(&mut r, ctx(0), "mandated")? {
            Some(n) => {
                null(&n).at("mandated")?;
                true
            }
            None => false,
        };
        let id = req(&mut r, ctx(1), "identification")?;
        let identification = uint(&id, 32767).at("identification")? as u16;
        finish(&r)?;
        Ok(PeHeader {
            mandated,
            identification,
        })
    }

    /// Append with the given (implicit) tag.
    pub(crate) fn encode(&self, tag: Tag, out: &mut Vec<u8>) {
        write_cons(out, tag, |o| {
            if self.mandated {
                write(o, ctx(0), &[]);
            }
            write_uint(o, ctx(1), u64::from(self.identification));
        });
    }

    /// Read the mandatory `[0]` header component of a PE.
    pub(crate) fn read(r: &mut Reader<'_>, name: &str) -> Res<Self> {
        let t = req(r, cctx(0), name)?;
        PeHeader::decode(&t).at(name)
    }
}

/// Names of the `ServicesList` components, by automatic tag number.
pub const SERVICE_NAMES: &[&str] = &[
    "contactless",
    "usim",
    "isim",
    "csim",
    "milenage",
    "tuak128",
    "cave",
    "gba-usim",
    "gba-isim",
    "mbms",
    "eap",
    "javacard",
    "multos",
    "multiple-usim",
    "multiple-isim",
    "multiple-csim",
    "tuak256",
    "usim-test-algorithm",
    "ber-tlv",
    "dfLink",
    "cat-tp",
    "get-identity",
    "profile-a-x25519",
    "profile-b-p256",
    "suciCalculatorApi",
    "dns-resolution",
    "scp11ac",
    "scp11c-authorization-mechanism",
    "s16mode",
    "eaka",
];

/// `ServicesList`: a SEQUENCE of `NULL OPTIONAL` flags, kept as the tag numbers present
/// (ascending). Numbers beyond [`SERVICE_NAMES`] are extensions of a newer schema.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ServicesList(pub Vec<u32>);

impl ServicesList {
    /// The names of the services present (`[n]` for numbers this crate does not name).
    pub fn names(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|&n| match SERVICE_NAMES.get(n as usize) {
                Some(s) => (*s).to_owned(),
                None => format!("[{n}]"),
            })
            .collect()
    }

    /// Whether the named service is required.
    pub fn contains(&self, name: &str) -> bool {
        SERVICE_NAMES
            .iter()
            .position(|&s| s == name)
            .is_some_and(|n| self.0.contains(&(n as u32)))
    }

    fn decode(t: &Tlv<'_>) -> Res<Self> {
        let mut r = t.reader()?;
        let mut v: Vec<u32> = Vec::new();
        while !r.is_empty() {
            let e = r.read()?;
            let n = e.tag.number();
            let name = SERVICE_NAMES
                .get(n as usize)
                .copied()
                .unwrap_or("extension");
            if e.tag != ctx(n) || v.last().is_some_and(|&last| last >= n) {
                return Err(Fail::unexpected(e.tag)).at(name);
            }
            null(&e).at(name)?;
            v.push(n);
        }
        Ok(ServicesList(v))
    }

    fn encode(&self, tag: Tag, out: &mut Vec<u8>) {
        write_cons(out, tag, |o| {
            for &n in &self.0 {
                write(o, ctx(n), &[]);
            }
        });
    }
}

/// One `eUICC-Mandatory-AIDs` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MandatoryAid {
    /// `aid` (5..16 octets).
    pub aid: Vec<u8>,
    /// `version` (2 octets).
    pub version: [u8; 2],
}

/// The `ProfileHeader` PE (`header [0]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileHeader {
    /// `major-version`.
    pub major_version: u8,
    /// `minor-version`.
    pub minor_version: u8,
    /// `profileType` (1..100 octets of UTF-8).
    pub profile_type: Option<String>,
    /// `iccid`: 10 octets, plain BCD (not nibble-swapped), `F`-padded for 19 digits.
    pub iccid: [u8; 10],
    /// `pol`.
    pub pol: Option<Vec<u8>>,
    /// `eUICC-Mandatory-services`.
    pub mandatory_services: ServicesList,
    /// `eUICC-Mandatory-GFSTEList`: template OIDs the eUICC must support.
    pub mandatory_gfste_list: Vec<Oid>,
    /// `connectivityParameters`.
    pub connectivity_parameters: Option<Vec<u8>>,
    /// `eUICC-Mandatory-AIDs`.
    pub mandatory_aids: Option<Vec<MandatoryAid>>,
    /// `iotOptions.pix` (7..11 octets).
    pub iot_options_pix: Option<Vec<u8>>,
}

impl ProfileHeader {
    /// Decode the contents of a `header [0]` element.
    pub(crate) fn decode(t: &Tlv<'_>) -> Res<Self> {
        let mut r = t.reader()?;
        let major_version = uint8(&req(&mut r, ctx(0), "major-version")?).at("major-version")?;
        let minor_version = uint8(&req(&mut r, ctx(1), "minor-version")?).at("minor-version")?;
        let profile_type = match opt(&mut r, ctx(2), "profileType")? {
            Some(t) => Some(
                rsp_asn1::prim::decode_utf8(&t, "profileType", 1, 100)
                    .map_err(Fail::from)
                    .at("profileType")?,
            ),
            None => None,
        };
        let iccid = fixed::<10>(&req(&mut r, ctx(3), "iccid")?).at("iccid")?;
        let pol = match opt(&mut r, ctx(4), "pol")? {
            Some(t) => Some(octets(&t, 0, usize::MAX).at("pol")?),
            None => None,
        };
        let services = req(&mut r, cctx(5), "eUICC-Mandatory-services")?;
        let mandatory_services = ServicesList::decode(&services).at("eUICC-Mandatory-services")?;
        let gfste = req(&mut r, cctx(6), "eUICC-Mandatory-GFSTEList")?;
        let mandatory_gfste_list = decode_oids(&gfste).at("eUICC-Mandatory-GFSTEList")?;
        let connectivity_parameters = match opt(&mut r, ctx(7), "connectivityParameters")? {
            Some(t) => Some(octets(&t, 0, usize::MAX).at("connectivityParameters")?),
            None => None,
        };
        let mandatory_aids = match opt(&mut r, cctx(8), "eUICC-Mandatory-AIDs")? {
            Some(t) => Some(decode_aids(&t).at("eUICC-Mandatory-AIDs")?),
            None => None,
        };
        let iot_options_pix = match opt(&mut r, cctx(9), "iotOptions")? {
            Some(t) => {
                let mut ir = t.reader().at("iotOptions")?;
                let pix = octets(&req(&mut ir, ctx(0), "pix").at("iotOptions")?, 7, 11)
                    .at("pix")
                    .at("iotOptions")?;
                finish(&ir).at("iotOptions")?;
                Some(pix)
            }
            None => None,
        };
        finish(&r)?;
        Ok(ProfileHeader {
            major_version,
            minor_version,
            profile_type,
            iccid,
            pol,
            mandatory_services,
            mandatory_gfste_list,
            connectivity_parameters,
            mandatory_aids,
            iot_options_pix,
        })
    }

    /// Append the contents wrapped in `tag`.
    pub(crate) fn encode(&self, tag: Tag, out: &mut Vec<u8>) {
        write_cons(out, tag, |o| {
            write_uint(o, ctx(0), u64::from(self.major_version));
            write_uint(o, ctx(1), u64::from(self.minor_version));
            if let Some(p) = &self.profile_type {
                write(o, ctx(2), p.as_bytes());
            }
            write(o, ctx(3), &self.iccid);
            if let Some(p) = &self.pol {
                write(o, ctx(4), p);
            }
            self.mandatory_services.encode(cctx(5), o);
            write_cons(o, cctx(6), |o| {
                for oid in &self.mandatory_gfste_list {
                    oid.write(o, Tag::OID);
                }
            });
            if let Some(c) = &self.connectivity_parameters {
                write(o, ctx(7), c);
            }
            if let Some(aids) = &self.mandatory_aids {
                write_cons(o, cctx(8), |o| {
                    for a in aids {
                        write_cons(o, Tag::SEQUENCE, |o| {
                            write(o, ctx(0), &a.aid);
                            write(o, ctx(1), &a.version);
                        });
                    }
                });
            }
            if let Some(pix) = &self.iot_options_pix {
                write_cons(o, cctx(9), |o| write(o, ctx(0), pix));
            }
        });
    }

    /// The ICCID digits (19 or 20) of the `iccid` field.
    pub fn iccid_digits(&self) -> Result<String, crate::SaipError> {
        crate::bcd::iccid_from_plain(&self.iccid)
    }
}

fn decode_oids(t: &Tlv<'_>) -> Res<Vec<Oid>> {
    let mut r = t.reader()?;
    let mut v = Vec::new();
    while !r.is_empty() {
        let i = v.len();
        let e = r.read_expect(Tag::OID).at_with(|| format!("[{i}]"))?;
        v.push(Oid::decode(&e, "OBJECT IDENTIFIER").at_with(|| format!("[{i}]"))?);
    }
    Ok(v)
}

fn decode_aids(t: &Tlv<'_>) -> Res<Vec<MandatoryAid>> {
    let mut r = t.reader()?;
    let mut v = Vec::new();
    while !r.is_empty() {
        let i = v.len();
        let seg = || format!("[{i}]");
        let e = r.read_expect(Tag::SEQUENCE).at_with(seg)?;
        let mut er = e.reader().at_with(seg)?;
        let aid = octets(&req(&mut er, ctx(0), "aid").at_with(seg)?, 5, 16)
            .at("aid")
            .at_with(seg)?;
        let version = fixed::<2>(&req(&mut er, ctx(1), "version").at_with(seg)?)
            .at("version")
            .at_with(seg)?;
        finish(&er).at_with(seg)?;
        v.push(MandatoryAid { aid, version });
    }
    Ok(v)
}
