//! Profile templates written as readable TOML and compiled into a [`Upp`].
//!
//! The project ships its own template, [`TemplateSource::usim_isim_milenage`]
//! (`crates/saip/templates/usim-isim-milenage.toml`, embedded with `include_str!`), and
//! [`Template::compile`] accepts any source in the same format. A compiled [`Template`] is
//! personalized per subscription with [`Template::personalize`] (see
//! [`crate::personalize`]).
//!
//! # Source format
//!
//! ```toml
//! name = "usim-isim-milenage"          # required
//! description = "..."                  # optional
//!
//! [header]                             # the ProfileHeader
//! major_version = 2
//! minor_version = 3
//! profile_type = "..."                 # optional
//! iccid = "8999000000000000005"        # placeholder, 19/20 digits, Luhn-checked
//! services = ["usim", "isim", "milenage"]      # ServicesList names
//! gfste = ["mf", "usim", "opt-usim", "isim"]   # template names or dotted OIDs
//!
//! [personalization]                    # optional
//! hplmn_act = "C880"                   # AcT written with the home PLMN
//! overridable = ["usim/ef-fplmn"]      # files a Personalization may replace
//!
//! [[pe]]                               # one PE per table, in package order
//! type = "usim"                        # schema name of the ProfileElement alternative
//! mandated = true                      # PEHeader.mandated (default false)
//! template = "2.23.143.1.2.4"          # template PEs: OID, default from `type`
//!
//! [pe.files.ef-imsi]                   # template PEs: one File component by schema name
//! structure = "transparent"            # transparent | linear-fixed | cyclic | df | adf
//! fid = "6F07"                         # fileID
//! aid = "A000..."                      # dfName (ADFs)
//! arr = "6F0602"                       # securityAttributesReferenced
//! size = 9                             # efFileSize (linear: record_len * records_count)
//! record_len = 32                      # linear-fixed / cyclic
//! records_count = 2
//! pin_status = "01810A"                # pinStatusTemplateDO (DF/ADF)
//! sfi = "38"                           # shortEFID ("" = no SFI)
//! lcsi = "05"; special = "40"; fill_pattern = "FF"; repeat_pattern = "..."
//! do_not_create = false
//! content = "08 09 10 ..."             # fillFileContent at offset 0 (hex, spaces allowed)
//! records = ["61 18 ...", "..."]       # or: records, each padded with FF to record_len
//! services = [19, 33]                  # or: a service table bitmap of `size` octets
//! ```
//!
//! Other PE types: `pinCodes` (`pins = [{ key_ref, value, puk, attributes, retries }]`,
//! `value` 4..8 digits stored as ASCII padded with `FF`, or 16 hex digits stored raw),
//! `pukCodes` (`puks = [{ key_ref, value, retries }]`), `akaParameter` (`algorithm` =
//! `milenage` | `tuak` | `usim-test-algorithm`, `algorithm_options`, `key`, `opc` in hex),
//! `securityDomain` (`[pe.instance]`: `load_package_aid`, `class_aid`, `instance_aid`,
//! `privileges`, `lifecycle`, `parameters_c9`) and `end`. PE identifications are assigned
//! in order (1, 2, ...). Unknown keys are errors.
//!
//! `compile` checks what the codec cannot: file names exist in their PE, mandatory files
//! are present, contents fit their files, the header ICCID matches EF.ICCID, and the
//! personalization targets ([`Template::personalize`]) exist. It then round-trips the
//! package through [`Upp::decode`] so a template the codec would refuse never compiles.

use std::collections::BTreeMap;

use rsp_asn1::prim::Oid;
use rsp_asn1::tlv::{Tag, write_constructed, write_tlv};
use serde::Deserialize;

use crate::bcd;
use crate::file::{Fcp, File, FileItem, ProprietaryInfo, TemplateFile, TemplatePe};
use crate::header::{PeHeader, ProfileHeader, SERVICE_NAMES, ServicesList};
use crate::params::{
    AkaParameter, AlgoConfiguration, AlgoParameter, AlgorithmId, DEFAULT_ROTATION_CONSTANTS,
    DEFAULT_SQN_DELTA, DEFAULT_XORING_CONSTANTS, PinCodes, PinCodesChoice, PinConfig, PukCodes,
    PukConfig,
};
use crate::pe::{GenericPe, PeBody, PeType, ProfileElement, RawComponent};
use crate::secret::Secret;
use crate::upp::Upp;
use crate::{SaipError, personalize};

/// The project's USIM + ISIM Milenage template source (TOML).
pub const USIM_ISIM_MILENAGE_TOML: &str = include_str!("../templates/usim-isim-milenage.toml");

/// A template in source form (TOML text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateSource {
    text: std::borrow::Cow<'static, str>,
}

impl TemplateSource {
    /// The built-in USIM + ISIM Milenage template (embedded; no file needed at run time).
    pub fn usim_isim_milenage() -> Self {
        TemplateSource {
            text: std::borrow::Cow::Borrowed(USIM_ISIM_MILENAGE_TOML),
        }
    }

    /// A template from TOML text (for example an operator-specific file).
    pub fn from_toml(text: impl Into<String>) -> Self {
        TemplateSource {
            text: std::borrow::Cow::Owned(text.into()),
        }
    }

    /// The TOML text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Why a template source does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// Not TOML, or not the template format (unknown key, wrong type, missing key).
    #[error("template source: {0}")]
    Syntax(String),
    /// A value is unusable; `path` names it (`pe[4] (usim) / ef-imsi / content`).
    #[error("template {path}: {why}")]
    Invalid {
        /// Where in the source.
        path: String,
        /// Why.
        why: String,
    },
    /// The compiled package does not decode with this crate's codec.
    #[error("compiled template is not a valid package: {0}")]
    Codec(#[from] SaipError),
}

pub(crate) fn invalid(path: impl Into<String>, why: impl Into<String>) -> TemplateError {
    TemplateError::Invalid {
        path: path.into(),
        why: why.into(),
    }
}

/// A compiled template: the placeholder [`Upp`] and what personalization needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    name: String,
    description: Option<String>,
    upp: Upp,
    pub(crate) hplmn_act: [u8; 2],
    pub(crate) overridable: Vec<(PeType, String)>,
}

// ----------------------------------------------------------------------------- source

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Src {
    name: String,
    description: Option<String>,
    header: HeaderSrc,
    #[serde(default)]
    personalization: PersoSrc,
    pe: Vec<PeSrc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderSrc {
    major_version: u8,
    minor_version: u8,
    profile_type: Option<String>,
    iccid: String,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    gfste: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PersoSrc {
    hplmn_act: Option<String>,
    #[serde(default)]
    overridable: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeSrc {
    #[serde(rename = "type")]
    pe_type: String,
    #[serde(default)]
    mandated: bool,
    template: Option<String>,
    files: Option<BTreeMap<String, FileSrc>>,
    pins: Option<Vec<PinSrc>>,
    puks: Option<Vec<PukSrc>>,
    algorithm: Option<String>,
    algorithm_options: Option<String>,
    key: Option<String>,
    opc: Option<String>,
    instance: Option<InstanceSrc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSrc {
    structure: Option<String>,
    fid: Option<String>,
    aid: Option<String>,
    arr: Option<String>,
    size: Option<u32>,
    record_len: Option<u8>,
    records_count: Option<u8>,
    pin_status: Option<String>,
    sfi: Option<String>,
    lcsi: Option<String>,
    special: Option<String>,
    fill_pattern: Option<String>,
    repeat_pattern: Option<String>,
    #[serde(default)]
    do_not_create: bool,
    content: Option<String>,
    records: Option<Vec<String>>,
    services: Option<Vec<u16>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinSrc {
    key_ref: u8,
    value: String,
    puk: Option<u8>,
    attributes: Option<u8>,
    retries: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PukSrc {
    key_ref: u8,
    value: String,
    retries: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstanceSrc {
    load_package_aid: String,
    class_aid: String,
    instance_aid: String,
    privileges: String,
    lifecycle: Option<String>,
    parameters_c9: String,
}

// ----------------------------------------------------------------------------- helpers

/// Hex digits (whitespace ignored) to octets.
pub(crate) fn parse_hex(s: &str) -> Result<Vec<u8>, &'static str> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => Ok(b - b'0'),
            b'a'..=b'f' => Ok(b - b'a' + 10),
            b'A'..=b'F' => Ok(b - b'A' + 10),
            _ => Err("not hexadecimal"),
        })
        .collect::<Result<_, _>>()?;
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits");
    }
    Ok(digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

fn hex_at(s: &str, path: &str) -> Result<Vec<u8>, TemplateError> {
    parse_hex(s).map_err(|why| invalid(path, why))
}

fn hex_fixed<const N: usize>(s: &str, path: &str) -> Result<[u8; N], TemplateError> {
    let v = hex_at(s, path)?;
    <[u8; N]>::try_from(v.as_slice())
        .map_err(|_| invalid(path, format!("must be {N} octets, got {}", v.len())))
}

/// The PE alternative with this schema name.
fn pe_type_named(name: &str) -> Option<PeType> {
    (0..=33).map(PeType::from_number).find(|t| t.name() == name)
}

/// Template OIDs (SAIP annex B, `id-...` under 2.23.143.1.2) of the templates this crate
/// names; other templates need an explicit dotted OID.
fn default_template_oid(t: PeType) -> Option<&'static str> {
    Some(match t {
        PeType::Mf => "2.23.143.1.2.1",
        PeType::Telecom => "2.23.143.1.2.3",
        PeType::Usim => "2.23.143.1.2.4",
        PeType::OptUsim => "2.23.143.1.2.5",
        PeType::GsmAccess => "2.23.143.1.2.7",
        PeType::Isim => "2.23.143.1.2.8",
        PeType::OptIsim => "2.23.143.1.2.9",
        PeType::Csim => "2.23.143.1.2.10",
        PeType::OptCsim => "2.23.143.1.2.11",
        PeType::Df5gs => "2.23.143.1.2.13",
        PeType::DfSaip => "2.23.143.1.2.14",
        _ => return None,
    })
}

fn oid_from(s: &str, path: &str) -> Result<Oid, TemplateError> {
    let dotted = match pe_type_named(s).and_then(default_template_oid) {
        Some(d) => d,
        None => s,
    };
    Oid::from_dotted(dotted).ok_or_else(|| {
        invalid(
            path,
            format!("'{s}' is neither a known template name nor a dotted OID"),
        )
    })
}

/// Minimal big-endian octets of a size (at least one octet).
fn size_octets(n: u32) -> Vec<u8> {
    let b = n.to_be_bytes();
    let first = b.iter().position(|&x| x != 0).unwrap_or(3);
    b[first..].to_vec()
}

/// A service table: bit `(n-1) % 8` of octet `(n-1) / 8` for each service `n`.
fn service_table(services: &[u16], size: usize, path: &str) -> Result<Vec<u8>, TemplateError> {
    let mut t = vec![0u8; size];
    for &n in services {
        let i = usize::from(n.checked_sub(1).ok_or_else(|| invalid(path, "service 0"))?);
        let octet = t
            .get_mut(i / 8)
            .ok_or_else(|| invalid(path, format!("service {n} beyond a {size}-octet table")))?;
        *octet |= 1 << (i % 8);
    }
    Ok(t)
}

/// A PIN/PUK/ADM value: 4..8 decimal digits (ASCII, `FF`-padded) or 16 hex digits (raw).
pub(crate) fn key_value(s: &str) -> Option<[u8; 8]> {
    if (4..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        let mut v = [0xFFu8; 8];
        for (o, b) in v.iter_mut().zip(s.bytes()) {
            *o = b;
        }
        return Some(v);
    }
    if s.len() == 16 {
        return parse_hex(s).ok().and_then(|v| <[u8; 8]>::try_from(v).ok());
    }
    None
}

// ----------------------------------------------------------------------------- compile

fn compile_file(f: &FileSrc, path: &str) -> Result<File, TemplateError> {
    let mut items = Vec::new();
    if f.do_not_create {
        items.push(FileItem::DoNotCreate);
    }
    let structure = f.structure.as_deref();
    let is_df = matches!(structure, Some("df" | "adf"));
    let record_len = f.record_len.map(usize::from);
    let descriptor = match structure {
        None | Some("df" | "adf") => None,
        Some("transparent") => Some(vec![0x41, 0x21]),
        Some(s @ ("linear-fixed" | "cyclic")) => {
            let len = f.record_len.ok_or_else(|| {
                invalid(format!("{path} / record_len"), format!("required for {s}"))
            })?;
            let fdb = if s == "cyclic" { 0x46 } else { 0x42 };
            Some(vec![fdb, 0x21, 0x00, len])
        }
        Some(other) => {
            return Err(invalid(
                format!("{path} / structure"),
                format!("'{other}': expected transparent, linear-fixed, cyclic, df or adf"),
            ));
        }
    };
    if structure == Some("adf") && f.aid.is_none() {
        return Err(invalid(path, "an ADF needs an aid"));
    }
    if is_df && (f.size.is_some() || f.content.is_some() || f.records.is_some()) {
        return Err(invalid(path, "a DF has no size or content"));
    }
    let size = match (f.size, record_len, f.records_count) {
        (Some(s), _, _) => Some(s),
        (None, Some(l), Some(n)) => Some(u32::try_from(l * usize::from(n)).unwrap_or(u32::MAX)),
        _ => None,
    };
    if let (Some(s), Some(l), Some(n)) = (f.size, record_len, f.records_count)
        && s as usize != l * usize::from(n)
    {
        return Err(invalid(
            format!("{path} / size"),
            "differs from record_len * records_count",
        ));
    }
    let proprietary =
        if f.special.is_some() || f.fill_pattern.is_some() || f.repeat_pattern.is_some() {
            let special = match &f.special {
                Some(s) => hex_fixed::<1>(s, &format!("{path} / special"))?[0],
                None => 0,
            };
            Some(ProprietaryInfo {
                special_file_information: special,
                fill_pattern: f
                    .fill_pattern
                    .as_deref()
                    .map(|s| hex_at(s, &format!("{path} / fill_pattern")))
                    .transpose()?,
                repeat_pattern: f
                    .repeat_pattern
                    .as_deref()
                    .map(|s| hex_at(s, &format!("{path} / repeat_pattern")))
                    .transpose()?,
                ..ProprietaryInfo::default()
            })
        } else {
            None
        };
    let opt_hex = |v: &Option<String>, key: &str| -> Result<Option<Vec<u8>>, TemplateError> {
        v.as_deref()
            .map(|s| hex_at(s, &format!("{path} / {key}")))
            .transpose()
    };
    let fcp = Fcp {
        file_descriptor: descriptor,
        file_id: f
            .fid
            .as_deref()
            .map(|s| hex_fixed::<2>(s, &format!("{path} / fid")))
            .transpose()?,
        df_name: opt_hex(&f.aid, "aid")?,
        lcsi: match &f.lcsi {
            Some(s) => hex_fixed::<1>(s, &format!("{path} / lcsi"))?[0],
            None => 0x05,
        },
        security_attributes_referenced: opt_hex(&f.arr, "arr")?,
        ef_file_size: size.map(size_octets),
        pin_status_template_do: opt_hex(&f.pin_status, "pin_status")?,
        short_ef_id: opt_hex(&f.sfi, "sfi")?,
        proprietary_ef_info: proprietary,
        link_path: None,
    };
    if fcp != Fcp::default() {
        items.push(FileItem::FileDescriptor(Box::new(fcp)));
    }

    let sources = [
        f.content.is_some(),
        f.records.is_some(),
        f.services.is_some(),
    ];
    if sources.iter().filter(|&&b| b).count() > 1 {
        return Err(invalid(
            path,
            "give only one of content, records and services",
        ));
    }
    let content = if let Some(c) = &f.content {
        Some(hex_at(c, &format!("{path} / content"))?)
    } else if let Some(records) = &f.records {
        let len = record_len.ok_or_else(|| invalid(path, "records need record_len"))?;
        if let Some(n) = f.records_count
            && records.len() > usize::from(n)
        {
            return Err(invalid(
                format!("{path} / records"),
                format!("{} records for a file of {n}", records.len()),
            ));
        }
        let mut all = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let rpath = format!("{path} / records[{i}]");
            let mut rec = hex_at(r, &rpath)?;
            if rec.len() > len {
                return Err(invalid(
                    rpath,
                    format!("{} octets for {len}-octet records", rec.len()),
                ));
            }
            rec.resize(len, 0xFF);
            all.extend_from_slice(&rec);
        }
        Some(all)
    } else if let Some(services) = &f.services {
        let size = size.ok_or_else(|| invalid(path, "services need size"))?;
        Some(service_table(
            services,
            size as usize,
            &format!("{path} / services"),
        )?)
    } else {
        None
    };
    if let Some(c) = content {
        if let Some(s) = size
            && c.len() > s as usize
        {
            return Err(invalid(
                format!("{path} / content"),
                format!("{} octets for a {s}-octet file", c.len()),
            ));
        }
        items.push(FileItem::FillFileContent(c));
    }
    Ok(File(items))
}

fn compile_template_pe(
    t: PeType,
    src: &PeSrc,
    header: PeHeader,
    path: &str,
) -> Result<TemplatePe, TemplateError> {
    let (fields, _) = t
        .template()
        .ok_or_else(|| invalid(path, "not a template PE"))?;
    let oid = match &src.template {
        Some(s) => oid_from(s, &format!("{path} / template"))?,
        None => {
            let d = default_template_oid(t)
                .ok_or_else(|| invalid(path, "no default template OID: give `template`"))?;
            oid_from(d, path)?
        }
    };
    let mut files = Vec::new();
    for (name, f) in src.files.iter().flatten() {
        let fpath = format!("{path} / {name}");
        let pos = fields
            .iter()
            .position(|(n, _)| *n == name.as_str())
            .ok_or_else(|| invalid(&fpath, format!("no such file in {}", t.name())))?;
        let (static_name, _) = fields[pos];
        files.push(TemplateFile {
            number: u32::try_from(pos + 2).unwrap_or(u32::MAX),
            name: Some(static_name),
            file: compile_file(f, &fpath)?,
        });
    }
    files.sort_by_key(|f| f.number);
    for (name, optional) in fields {
        if !optional && !files.iter().any(|f| f.name == Some(*name)) {
            return Err(invalid(path, format!("mandatory file {name} missing")));
        }
    }
    Ok(TemplatePe {
        header,
        template_id: oid,
        files,
    })
}

fn compile_instance(i: &InstanceSrc, path: &str) -> Result<RawComponent, TemplateError> {
    let app15 = Tag(0x4F);
    let aid = |s: &str, key: &str| -> Result<Vec<u8>, TemplateError> {
        let p = format!("{path} / instance / {key}");
        let v = hex_at(s, &p)?;
        if !(5..=16).contains(&v.len()) {
            return Err(invalid(p, "an AID has 5 to 16 octets"));
        }
        Ok(v)
    };
    let load = aid(&i.load_package_aid, "load_package_aid")?;
    let class = aid(&i.class_aid, "class_aid")?;
    let inst = aid(&i.instance_aid, "instance_aid")?;
    let privileges = hex_at(&i.privileges, &format!("{path} / instance / privileges"))?;
    let lifecycle = match &i.lifecycle {
        Some(s) => hex_fixed::<1>(s, &format!("{path} / instance / lifecycle"))?[0],
        None => 0x07,
    };
    let c9 = hex_at(
        &i.parameters_c9,
        &format!("{path} / instance / parameters_c9"),
    )?;
    let mut out = Vec::new();
    write_constructed(&mut out, Tag::context_constructed(1), |o| {
        write_tlv(o, app15, &load);
        write_tlv(o, app15, &class);
        write_tlv(o, app15, &inst);
        write_tlv(o, Tag::context(2), &privileges);
        if lifecycle != 0x07 {
            write_tlv(o, Tag::context(3), &[lifecycle]);
        }
        write_tlv(o, Tag(0xC9), &c9);
    });
    let tlv = rsp_asn1::tlv::parse_single(&out)
        .map_err(|e| invalid(format!("{path} / instance"), e.to_string()))?;
    RawComponent::from_tlv(&tlv)
        .map_err(|f| invalid(format!("{path} / instance"), f.kind.to_string()))
}

fn compile_pe(
    index: usize,
    src: &PeSrc,
    overridable_check: &mut Vec<PeType>,
) -> Result<ProfileElement, TemplateError> {
    let t = pe_type_named(&src.pe_type)
        .filter(|t| *t != PeType::Header)
        .ok_or_else(|| {
            invalid(
                format!("pe[{index}]"),
                format!("unknown PE type '{}'", src.pe_type),
            )
        })?;
    let path = format!("pe[{index}] ({})", t.name());
    let header = PeHeader {
        mandated: src.mandated,
        identification: u16::try_from(index + 1).unwrap_or(u16::MAX),
    };
    // Which keys each type accepts.
    let allowed: &[&str] = match t {
        PeType::PinCodes => &["pins"],
        PeType::PukCodes => &["puks"],
        PeType::AkaParameter => &["algorithm", "algorithm_options", "key", "opc"],
        PeType::SecurityDomain => &["instance"],
        PeType::End => &[],
        _ if t.template().is_some() => &["template", "files"],
        _ => {
            return Err(invalid(
                &path,
                "PE type not supported by the template format",
            ));
        }
    };
    let present = [
        ("template", src.template.is_some()),
        ("files", src.files.is_some()),
        ("pins", src.pins.is_some()),
        ("puks", src.puks.is_some()),
        ("algorithm", src.algorithm.is_some()),
        ("algorithm_options", src.algorithm_options.is_some()),
        ("key", src.key.is_some()),
        ("opc", src.opc.is_some()),
        ("instance", src.instance.is_some()),
    ];
    if let Some((k, _)) = present.iter().find(|(k, p)| *p && !allowed.contains(k)) {
        return Err(invalid(
            &path,
            format!("key `{k}` does not apply to this PE"),
        ));
    }
    let body = match t {
        PeType::PinCodes => {
            let pins = src.pins.as_deref().unwrap_or(&[]);
            if pins.is_empty() || pins.len() > 26 {
                return Err(invalid(&path, "pins: 1 to 26 entries"));
            }
            let codes = pins
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let value = key_value(&p.value).ok_or_else(|| {
                        invalid(
                            format!("{path} / pins[{i}] / value"),
                            "4..8 digits or 16 hex digits",
                        )
                    })?;
                    Ok(PinConfig {
                        key_reference: p.key_ref,
                        pin_value: Secret::new(&value),
                        unblocking_pin_reference: p.puk,
                        pin_attributes: p.attributes.unwrap_or(7),
                        max_attempts_retry_left: p.retries.unwrap_or(51),
                    })
                })
                .collect::<Result<Vec<_>, TemplateError>>()?;
            PeBody::PinCodes(PinCodes {
                header,
                codes: PinCodesChoice::PinConfig(codes),
            })
        }
        PeType::PukCodes => {
            let puks = src.puks.as_deref().unwrap_or(&[]);
            if puks.is_empty() || puks.len() > 16 {
                return Err(invalid(&path, "puks: 1 to 16 entries"));
            }
            let codes = puks
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let value = key_value(&p.value).ok_or_else(|| {
                        invalid(
                            format!("{path} / puks[{i}] / value"),
                            "8 digits or 16 hex digits",
                        )
                    })?;
                    Ok(PukConfig {
                        key_reference: p.key_ref,
                        puk_value: Secret::new(&value),
                        max_attempts_retry_left: p.retries.unwrap_or(170),
                    })
                })
                .collect::<Result<Vec<_>, TemplateError>>()?;
            PeBody::PukCodes(PukCodes { header, codes })
        }
        PeType::AkaParameter => {
            let algorithm_id = match src.algorithm.as_deref() {
                Some("milenage") => AlgorithmId::Milenage,
                Some("tuak") => AlgorithmId::Tuak,
                Some("usim-test-algorithm") => AlgorithmId::UsimTestAlgorithm,
                other => {
                    return Err(invalid(
                        format!("{path} / algorithm"),
                        format!("{other:?}: expected milenage, tuak or usim-test-algorithm"),
                    ));
                }
            };
            let options = match &src.algorithm_options {
                Some(s) => hex_fixed::<1>(s, &format!("{path} / algorithm_options"))?[0],
                None => 0,
            };
            let key = hex_at(src.key.as_deref().unwrap_or(""), &format!("{path} / key"))?;
            let opc = hex_at(src.opc.as_deref().unwrap_or(""), &format!("{path} / opc"))?;
            for (what, v) in [("key", &key), ("opc", &opc)] {
                if v.len() != 16 && v.len() != 32 {
                    return Err(invalid(format!("{path} / {what}"), "16 or 32 octets"));
                }
            }
            PeBody::AkaParameter(AkaParameter {
                header,
                algo: AlgoConfiguration::Algo(AlgoParameter {
                    algorithm_id,
                    algorithm_options: options,
                    key: Secret::new(&key),
                    opc: Secret::new(&opc),
                    rotation_constants: DEFAULT_ROTATION_CONSTANTS,
                    xoring_constants: DEFAULT_XORING_CONSTANTS,
                    auth_counter_max: None,
                    number_of_keccak: 1,
                }),
                sqn_options: 0x02,
                sqn_delta: DEFAULT_SQN_DELTA,
                sqn_age_limit: DEFAULT_SQN_DELTA,
                sqn_init: None,
            })
        }
        PeType::SecurityDomain => {
            let inst = src
                .instance
                .as_ref()
                .ok_or_else(|| invalid(&path, "securityDomain needs [pe.instance]"))?;
            PeBody::SecurityDomain(GenericPe {
                header,
                components: vec![compile_instance(inst, &path)?],
            })
        }
        PeType::End => PeBody::End(header),
        _ => {
            overridable_check.push(t);
            PeBody::Template(compile_template_pe(t, src, header, &path)?)
        }
    };
    Ok(ProfileElement { pe_type: t, body })
}

fn compile_header(h: &HeaderSrc) -> Result<ProfileHeader, TemplateError> {
    personalize::check_iccid(&h.iccid).map_err(|e| invalid("header / iccid", e.to_string()))?;
    let iccid =
        bcd::iccid_to_plain(&h.iccid).map_err(|e| invalid("header / iccid", e.to_string()))?;
    let mut services = Vec::new();
    for s in &h.services {
        let n = SERVICE_NAMES
            .iter()
            .position(|x| x == s)
            .ok_or_else(|| invalid("header / services", format!("unknown service '{s}'")))?;
        services.push(u32::try_from(n).unwrap_or(u32::MAX));
    }
    services.sort_unstable();
    services.dedup();
    let gfste = h
        .gfste
        .iter()
        .map(|s| oid_from(s, "header / gfste"))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(p) = &h.profile_type
        && (p.is_empty() || p.len() > 100)
    {
        return Err(invalid("header / profile_type", "1 to 100 octets"));
    }
    Ok(ProfileHeader {
        major_version: h.major_version,
        minor_version: h.minor_version,
        profile_type: h.profile_type.clone(),
        iccid,
        pol: None,
        mandatory_services: ServicesList(services),
        mandatory_gfste_list: gfste,
        connectivity_parameters: None,
        mandatory_aids: None,
        iot_options_pix: None,
    })
}

impl Template {
    /// Compile a template source into its placeholder package. See the module docs for the
    /// checks made.
    pub fn compile(source: &TemplateSource) -> Result<Template, TemplateError> {
        let src: Src =
            toml::from_str(source.text()).map_err(|e| TemplateError::Syntax(e.to_string()))?;
        let mut elements = vec![ProfileElement {
            pe_type: PeType::Header,
            body: PeBody::Header(compile_header(&src.header)?),
        }];
        let mut template_pes = Vec::new();
        for (i, pe) in src.pe.iter().enumerate() {
            elements.push(compile_pe(i, pe, &mut template_pes)?);
        }
        let upp = Upp { elements };

        let hplmn_act = match &src.personalization.hplmn_act {
            Some(s) => hex_fixed::<2>(s, "personalization / hplmn_act")?,
            None => [0xC0, 0x80],
        };
        let mut overridable = Vec::new();
        for entry in &src.personalization.overridable {
            let p = format!("personalization / overridable / {entry}");
            let (pe, file) = entry
                .split_once('/')
                .ok_or_else(|| invalid(&p, "expected <pe type>/<file>"))?;
            let t = pe_type_named(pe)
                .filter(|t| template_pes.contains(t))
                .ok_or_else(|| invalid(&p, "no such template PE in this template"))?;
            if upp.template_file(t, file).is_none() {
                return Err(invalid(&p, "no such file in this template"));
            }
            if personalize::TARGETS.contains(&(t, file)) {
                return Err(invalid(
                    &p,
                    "written by personalization; cannot be overridden",
                ));
            }
            overridable.push((t, file.to_owned()));
        }

        // Round trip through the codec: the template must be a package we accept.
        let decoded = Upp::decode(&upp.encode())?;
        if decoded != upp {
            return Err(invalid(
                "package",
                "does not survive a decode/encode round trip",
            ));
        }
        upp.check_complete()?;
        let header_iccid = upp.iccid()?;
        if upp.ef_iccid()? != header_iccid {
            return Err(invalid(
                "mf / ef-iccid",
                "content differs from the header ICCID",
            ));
        }
        let template = Template {
            name: src.name,
            description: src.description,
            upp,
            hplmn_act,
            overridable,
        };
        personalize::check_targets(&template)?;
        Ok(template)
    }

    /// Compile the built-in [`TemplateSource::usim_isim_milenage`].
    pub fn usim_isim_milenage() -> Result<Template, TemplateError> {
        Self::compile(&TemplateSource::usim_isim_milenage())
    }

    /// The template's `name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The template's `description`.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The compiled package with its placeholder values.
    pub fn upp(&self) -> &Upp {
        &self.upp
    }

    /// The files a [`crate::personalize::Personalization`] may override, as
    /// (PE type, file name).
    pub fn overridable(&self) -> &[(PeType, String)] {
        &self.overridable
    }
}
