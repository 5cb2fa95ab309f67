//! The `ProfileElement` CHOICE: [`PeType`] (which alternative), [`ProfileElement`] (one
//! decoded PE) and the typed bodies.

use rsp_asn1::prim::Oid;
use rsp_asn1::tlv::{Tag, Tlv};

use crate::der::{Res, cctx, ctx, finish, fixed, octets, opt, req, write, write_cons};
use crate::error::{At, Fail};
use crate::file::{GenericFileManagement, TemplatePe};
use crate::header::{PeHeader, ProfileHeader};
use crate::params::{AkaParameter, CdmaParameter, PinCodes, PukCodes};
use crate::templates::{self, FileField};

macro_rules! pe_types {
    ($( $var:ident = $n:literal, $name:literal; )*) => {
        /// An alternative of the `ProfileElement` CHOICE, by its automatic tag number.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum PeType {
            $(
                #[doc = concat!("`", $name, "` (`[", stringify!($n), "]`).")]
                $var,
            )*
            /// An alternative added after SAIP 3.3.1 (the CHOICE is extensible).
            Unknown(u32),
        }

        impl PeType {
            /// The alternative for a tag number.
            pub fn from_number(n: u32) -> Self {
                match n {
                    $( $n => PeType::$var, )*
                    other => PeType::Unknown(other),
                }
            }

            /// The automatic tag number.
            pub fn number(self) -> u32 {
                match self {
                    $( PeType::$var => $n, )*
                    PeType::Unknown(n) => n,
                }
            }

            /// The alternative's name in the schema (`usim`, `akaParameter`, ...).
            pub fn name(self) -> &'static str {
                match self {
                    $( PeType::$var => $name, )*
                    PeType::Unknown(_) => "unknown",
                }
            }
        }
    };
}

pe_types! {
    Header = 0, "header";
    GenericFileManagement = 1, "genericFileManagement";
    PinCodes = 2, "pinCodes";
    PukCodes = 3, "pukCodes";
    AkaParameter = 4, "akaParameter";
    CdmaParameter = 5, "cdmaParameter";
    SecurityDomain = 6, "securityDomain";
    Rfm = 7, "rfm";
    Application = 8, "application";
    NonStandard = 9, "nonStandard";
    End = 10, "end";
    Rfu1 = 11, "rfu1";
    Rfu2 = 12, "rfu2";
    Rfu3 = 13, "rfu3";
    Rfu4 = 14, "rfu4";
    Rfu5 = 15, "rfu5";
    Mf = 16, "mf";
    Cd = 17, "cd";
    Telecom = 18, "telecom";
    Usim = 19, "usim";
    OptUsim = 20, "opt-usim";
    Isim = 21, "isim";
    OptIsim = 22, "opt-isim";
    Phonebook = 23, "phonebook";
    GsmAccess = 24, "gsm-access";
    Csim = 25, "csim";
    OptCsim = 26, "opt-csim";
    Eap = 27, "eap";
    Df5gs = 28, "df-5gs";
    DfSaip = 29, "df-saip";
    DfSnpn = 30, "df-snpn";
    Df5gprose = 31, "df-5gprose";
    Iot = 32, "iot";
    OptIot = 33, "opt-iot";
}

impl PeType {
    /// The PE's outer tag (`[n]` constructed).
    pub fn tag(self) -> Tag {
        cctx(self.number())
    }

    /// For a file-system template PE: its `File` component table and header name.
    pub(crate) fn template(self) -> Option<(&'static [FileField], &'static str)> {
        Some(match self {
            PeType::Mf => (templates::MF, "mf-header"),
            PeType::Cd => (templates::CD, "cd-header"),
            PeType::Telecom => (templates::TELECOM, "telecom-header"),
            PeType::Usim => (templates::USIM, "usim-header"),
            PeType::OptUsim => (templates::OPT_USIM, "optusim-header"),
            PeType::Isim => (templates::ISIM, "isim-header"),
            PeType::OptIsim => (templates::OPT_ISIM, "optisim-header"),
            PeType::Phonebook => (templates::PHONEBOOK, "phonebook-header"),
            PeType::GsmAccess => (templates::GSM_ACCESS, "gsm-access-header"),
            PeType::Csim => (templates::CSIM, "csim-header"),
            PeType::OptCsim => (templates::OPT_CSIM, "optcsim-header"),
            PeType::Eap => (templates::EAP, "eap-header"),
            PeType::Df5gs => (templates::DF_5GS, "df-5gs-header"),
            PeType::DfSaip => (templates::DF_SAIP, "df-saip-header"),
            PeType::DfSnpn => (templates::DF_SNPN, "df-snpn-header"),
            PeType::Df5gprose => (templates::DF_5GPROSE, "df-5g-prose-header"),
            PeType::Iot => (templates::IOT, "iot-header"),
            PeType::OptIot => (templates::OPT_IOT, "optiot-header"),
            _ => return None,
        })
    }
}

/// A component kept as its exact DER bytes (checked well-formed). `Debug` shows only the
/// tag and length: such components can hold keys (security domain key lists).
#[derive(Clone, PartialEq, Eq)]
pub struct RawComponent {
    /// The component's tag.
    pub tag: Tag,
    /// The complete element (identifier, length, contents).
    pub raw: Vec<u8>,
    /// Length of the identifier and length octets in `raw`.
    hdr: usize,
}

impl RawComponent {
    pub(crate) fn from_tlv(t: &Tlv<'_>) -> Res<Self> {
        rsp_asn1::codec::check_well_formed(t)?;
        Ok(RawComponent {
            tag: t.tag,
            raw: t.raw.to_vec(),
            hdr: t.raw.len() - t.value.len(),
        })
    }

    /// The contents octets.
    pub fn value(&self) -> &[u8] {
        self.raw.get(self.hdr..).unwrap_or(&[])
    }
}

impl std::fmt::Debug for RawComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawComponent({}, {} bytes)", self.tag, self.raw.len())
    }
}

/// A PE kept as typed header + raw components (`securityDomain`, `application`): every
/// component after the header is preserved byte-exact, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenericPe {
    /// The PE header (`[0]`).
    pub header: PeHeader,
    /// The other components, in order.
    pub components: Vec<RawComponent>,
}

impl GenericPe {
    /// Decode an automatically tagged PE whose component names are `names` (`names[0]` is
    /// the header) and whose mandatory components are `mandatory` (tag numbers).
    fn decode(t: &Tlv<'_>, names: &[&str], mandatory: &[u32]) -> Res<Self> {
        let mut r = t.reader()?;
        let header = PeHeader::read(&mut r, names.first().copied().unwrap_or("header"))?;
        let mut components: Vec<RawComponent> = Vec::new();
        let mut next = 1u32;
        while !r.is_empty() {
            let e = r.read()?;
            let n = e.tag.number();
            let seg = || {
                names
                    .get(n as usize)
                    .map_or_else(|| format!("[{n}]"), |s| (*s).to_owned())
            };
            let ok_class = e.tag == ctx(n) || e.tag == cctx(n);
            if !ok_class || n < next {
                return Err(Fail::unexpected(e.tag)).at_with(seg);
            }
            if let Some(&m) = mandatory.iter().find(|&&m| m >= next && m < n) {
                return Err(Fail::from(rsp_asn1::DecodeError::Missing(cctx(m))))
                    .at(names.get(m as usize).copied().unwrap_or("component"));
            }
            next = n + 1;
            components.push(RawComponent::from_tlv(&e).at_with(seg)?);
        }
        if let Some(&m) = mandatory.iter().find(|&&m| m >= next) {
            return Err(Fail::from(rsp_asn1::DecodeError::Missing(cctx(m))))
                .at(names.get(m as usize).copied().unwrap_or("component"));
        }
        Ok(GenericPe { header, components })
    }

    fn encode(&self, tag: Tag, out: &mut Vec<u8>) {
        write_cons(out, tag, |o| {
            self.header.encode(cctx(0), o);
            for c in &self.components {
                o.extend_from_slice(&c.raw);
            }
        });
    }
}

/// `ADFRFMAccess`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdfRfmAccess {
    /// `adfAID`.
    pub adf_aid: Vec<u8>,
    /// `adfAccessDomain`.
    pub adf_access_domain: Vec<u8>,
    /// `adfAdminAccessDomain`.
    pub adf_admin_access_domain: Vec<u8>,
}

/// `PE-RFM`: a Remote File Management application instance. This SEQUENCE carries its
/// own tags (no automatic tagging).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rfm {
    /// `rfm-header [0]`.
    pub header: PeHeader,
    /// `instanceAID [APPLICATION 15]`.
    pub instance_aid: Vec<u8>,
    /// `securityDomainAID [APPLICATION 15]`.
    pub security_domain_aid: Option<Vec<u8>>,
    /// `tarList [0]`: 3-octet TARs.
    pub tar_list: Option<Vec<[u8; 3]>>,
    /// `minimumSecurityLevel [1]`.
    pub minimum_security_level: u8,
    /// `uiccAccessDomain`.
    pub uicc_access_domain: Vec<u8>,
    /// `uiccAdminAccessDomain`.
    pub uicc_admin_access_domain: Vec<u8>,
    /// `adfRFMAccess`.
    pub adf_rfm_access: Option<AdfRfmAccess>,
}

const APP15: Tag = Tag(0x4F);

impl Rfm {
    fn decode(t: &Tlv<'_>) -> Res<Self> {
        let mut r = t.reader()?;
        let header = PeHeader::read(&mut r, "rfm-header")?;
        let instance_aid = octets(&req(&mut r, APP15, "instanceAID")?, 5, 16).at("instanceAID")?;
        let security_domain_aid = match opt(&mut r, APP15, "securityDomainAID")? {
            Some(t) => Some(octets(&t, 5, 16).at("securityDomainAID")?),
            None => None,
        };
        let tar_list = match opt(&mut r, cctx(0), "tarList")? {
            Some(t) => {
                let mut lr = t.reader().at("tarList")?;
                let mut v = Vec::new();
                while !lr.is_empty() {
                    let i = v.len();
                    let e = lr
                        .read_expect(Tag::OCTET_STRING)
                        .at_with(|| format!("tarList[{i}]"))?;
                    v.push(fixed::<3>(&e).at_with(|| format!("tarList[{i}]"))?);
                }
                if v.is_empty() {
                    return Err(Fail::constraint("SIZE (1..MAX): empty")).at("tarList");
                }
                Some(v)
            }
            None => None,
        };
        let minimum_security_level = fixed::<1>(&req(&mut r, ctx(1), "minimumSecurityLevel")?)
            .at("minimumSecurityLevel")?[0];
        let uicc_access_domain = octets(
            &req(&mut r, Tag::OCTET_STRING, "uiccAccessDomain")?,
            0,
            usize::MAX,
        )
        .at("uiccAccessDomain")?;
        let uicc_admin_access_domain = octets(
            &req(&mut r, Tag::OCTET_STRING, "uiccAdminAccessDomain")?,
            0,
            usize::MAX,
        )
        .at("uiccAdminAccessDomain")?;
        let adf_rfm_access = match opt(&mut r, Tag::SEQUENCE, "adfRFMAccess")? {
            Some(t) => Some(decode_adf_access(&t).at("adfRFMAccess")?),
            None => None,
        };
        finish(&r)?;
        Ok(Rfm {
            header,
            instance_aid,
            security_domain_aid,
            tar_list,
            minimum_security_level,
            uicc_access_domain,
            uicc_admin_access_domain,
            adf_rfm_access,
        })
    }

    fn encode(&self, tag: Tag, out: &mut Vec<u8>) {
        write_cons(out, tag, |o| {
            self.header.encode(cctx(0), o);
            write(o, APP15, &self.instance_aid);
            if let Some(a) = &self.security_domain_aid {
                write(o, APP15, a);
            }
            if let Some(list) = &self.tar_list {
                write_cons(o, cctx(0), |o| {
                    for t in list {
                        write(o, Tag::OCTET_STRING, t);
                    }
                });
            }
            write(o, ctx(1), &[self.minimum_security_level]);
            write(o, Tag::OCTET_STRING, &self.uicc_access_domain);
            write(o, Tag::OCTET_STRING, &self.uicc_admin_access_domain);
            if let Some(a) = &self.adf_rfm_access {
                write_cons(o, Tag::SEQUENCE, |o| {
                    write(o, ctx(0), &a.adf_aid);
                    write(o, ctx(1), &a.adf_access_domain);
                    write(o, ctx(2), &a.adf_admin_access_domain);
                });
            }
        });
    }
}

fn decode_adf_access(t: &Tlv<'_>) -> Res<AdfRfmAccess> {
    let mut r = t.reader()?;
    let adf_aid = octets(&req(&mut r, ctx(0), "adfAID")?, 5, 16).at("adfAID")?;
    let adf_access_domain =
        octets(&req(&mut r, ctx(1), "adfAccessDomain")?, 0, usize::MAX).at("adfAccessDomain")?;
    let adf_admin_access_domain =
        octets(&req(&mut r, ctx(2), "adfAdminAccessDomain")?, 0, usize::MAX)
            .at("adfAdminAccessDomain")?;
    finish(&r)?;
    Ok(AdfRfmAccess {
        adf_aid,
        adf_access_domain,
        adf_admin_access_domain,
    })
}

/// `PE-NonStandard`: proprietary content identified by an issuer OID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonStandard {
    /// `nonStandard-header`.
    pub header: PeHeader,
    /// `issuerID`.
    pub issuer_id: Oid,
    /// `content`.
    pub content: Vec<u8>,
}

impl NonStandard {
    fn decode(t: &Tlv<'_>) -> Res<Self> {
        let mut r = t.reader()?;
        let header = PeHeader::read(&mut r, "nonStandard-header")?;
        let issuer_id = Oid::decode(&req(&mut r, ctx(1), "issuerID")?, "issuerID")
            .map_err(Fail::from)
            .at("issuerID")?;
        let content = octets(&req(&mut r, ctx(2), "content")?, 0, usize::MAX).at("content")?;
        finish(&r)?;
        Ok(NonStandard {
            header,
            issuer_id,
            content,
        })
    }

    fn encode(&self, tag: Tag, out: &mut Vec<u8>) {
        write_cons(out, tag, |o| {
            self.header.encode(cctx(0), o);
            self.issuer_id.write(o, ctx(1));
            write(o, ctx(2), &self.content);
        });
    }
}

/// The decoded body of a PE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeBody {
    /// `header`: the ProfileHeader.
    Header(ProfileHeader),
    /// `genericFileManagement`.
    GenericFileManagement(GenericFileManagement),
    /// `pinCodes`.
    PinCodes(PinCodes),
    /// `pukCodes`.
    PukCodes(PukCodes),
    /// `akaParameter`.
    AkaParameter(AkaParameter),
    /// `cdmaParameter`.
    CdmaParameter(CdmaParameter),
    /// `securityDomain`: typed header, other components raw (instance, keyList,
    /// sdPersoData, openPersoData, catTpParameters).
    SecurityDomain(GenericPe),
    /// `rfm`.
    Rfm(Rfm),
    /// `application`: typed header, `loadBlock` and `instanceList` raw.
    Application(GenericPe),
    /// `nonStandard`.
    NonStandard(NonStandard),
    /// `end`: only its header.
    End(PeHeader),
    /// A file-system template PE (`mf`, `usim`, `isim`, `csim`, ...).
    Template(TemplatePe),
    /// `rfu1`..`rfu5` or an alternative after SAIP 3.3.1: the whole PE, raw.
    Raw(RawComponent),
}

/// One Profile Element: which alternative, and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileElement {
    /// The CHOICE alternative.
    pub pe_type: PeType,
    /// The decoded contents.
    pub body: PeBody,
}

impl ProfileElement {
    /// Decode one PE element (tag and contents). Errors carry the component path but no
    /// PE index; [`crate::Upp::decode`] adds it.
    pub(crate) fn decode_tlv(t: &Tlv<'_>) -> Res<Self> {
        let n = t.tag.number();
        if t.tag != cctx(n) {
            return Err(Fail::unexpected(t.tag));
        }
        let pe_type = PeType::from_number(n);
        let body = match pe_type {
            PeType::Header => PeBody::Header(ProfileHeader::decode(t)?),
            PeType::GenericFileManagement => {
                PeBody::GenericFileManagement(GenericFileManagement::decode(t)?)
            }
            PeType::PinCodes => PeBody::PinCodes(PinCodes::decode(t)?),
            PeType::PukCodes => PeBody::PukCodes(PukCodes::decode(t)?),
            PeType::AkaParameter => PeBody::AkaParameter(AkaParameter::decode(t)?),
            PeType::CdmaParameter => PeBody::CdmaParameter(CdmaParameter::decode(t)?),
            PeType::SecurityDomain => PeBody::SecurityDomain(GenericPe::decode(
                t,
                &[
                    "sd-Header",
                    "instance",
                    "keyList",
                    "sdPersoData",
                    "openPersoData",
                    "catTpParameters",
                ],
                &[1],
            )?),
            PeType::Rfm => PeBody::Rfm(Rfm::decode(t)?),
            PeType::Application => PeBody::Application(GenericPe::decode(
                t,
                &["app-Header", "loadBlock", "instanceList"],
                &[],
            )?),
            PeType::NonStandard => PeBody::NonStandard(NonStandard::decode(t)?),
            PeType::End => {
                let mut r = t.reader()?;
                let h = PeHeader::read(&mut r, "end-header")?;
                finish(&r)?;
                PeBody::End(h)
            }
            other => match other.template() {
                Some((fields, hdr)) => PeBody::Template(TemplatePe::decode(t, fields, hdr)?),
                None => PeBody::Raw(RawComponent::from_tlv(t)?),
            },
        };
        Ok(ProfileElement { pe_type, body })
    }

    /// Decode one complete PE (exactly one element, no trailing bytes).
    pub fn decode(input: &[u8]) -> Result<Self, crate::SaipError> {
        let t = rsp_asn1::tlv::parse_single(input)
            .map_err(|e| Fail::from(e).into_failure(None, None))?;
        let name =
            (t.tag == cctx(t.tag.number())).then(|| PeType::from_number(t.tag.number()).name());
        Self::decode_tlv(&t).map_err(|f| f.into_failure(None, name).into())
    }

    /// Append the DER encoding.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let tag = self.pe_type.tag();
        match &self.body {
            PeBody::Header(h) => h.encode(tag, out),
            PeBody::GenericFileManagement(g) => g.encode(tag, out),
            PeBody::PinCodes(p) => p.encode(tag, out),
            PeBody::PukCodes(p) => p.encode(tag, out),
            PeBody::AkaParameter(a) => a.encode(tag, out),
            PeBody::CdmaParameter(c) => c.encode(tag, out),
            PeBody::SecurityDomain(g) | PeBody::Application(g) => g.encode(tag, out),
            PeBody::Rfm(r) => r.encode(tag, out),
            PeBody::NonStandard(n) => n.encode(tag, out),
            PeBody::End(h) => write_cons(out, tag, |o| h.encode(cctx(0), o)),
            PeBody::Template(t) => t.encode(tag, out),
            PeBody::Raw(r) => out.extend_from_slice(&r.raw),
        }
    }

    /// The DER encoding as a new vector.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// The PE header (`identification`, `mandated`); `None` for the ProfileHeader and raw
    /// PEs.
    pub fn pe_header(&self) -> Option<&PeHeader> {
        match &self.body {
            PeBody::Header(_) | PeBody::Raw(_) => None,
            PeBody::GenericFileManagement(g) => Some(&g.header),
            PeBody::PinCodes(p) => Some(&p.header),
            PeBody::PukCodes(p) => Some(&p.header),
            PeBody::AkaParameter(a) => Some(&a.header),
            PeBody::CdmaParameter(c) => Some(&c.header),
            PeBody::SecurityDomain(g) | PeBody::Application(g) => Some(&g.header),
            PeBody::Rfm(r) => Some(&r.header),
            PeBody::NonStandard(n) => Some(&n.header),
            PeBody::End(h) => Some(h),
            PeBody::Template(t) => Some(&t.header),
        }
    }
}
