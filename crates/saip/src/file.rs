//! File-system content: `Fcp`, `ProprietaryInfo`, `File` (the SEQUENCE OF CHOICE used by
//! template PEs), the template PEs themselves and `PE-GenericFileManagement`.

use rsp_asn1::prim::Oid;
use rsp_asn1::tlv::{Reader, Tag, Tlv};

use crate::der::{
    Res, cctx, ctx, finish, fixed, not_default, null, octets, opt, req, uint16, write, write_cons,
    write_uint,
};
use crate::error::{At, Fail};
use crate::header::PeHeader;
use crate::templates::FileField;

/// `ProprietaryInfo` (`proprietaryEFInfo [5]` of an `Fcp`). DEFAULT components are held
/// resolved and omitted on encoding when they equal their default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProprietaryInfo {
    /// `specialFileInformation [PRIVATE 0]` (DEFAULT `00`).
    pub special_file_information: u8,
    /// `fillPattern [PRIVATE 1]` (1..200 octets).
    pub fill_pattern: Option<Vec<u8>>,
    /// `repeatPattern [PRIVATE 2]` (1..200 octets).
    pub repeat_pattern: Option<Vec<u8>>,
    /// `maximumFileSize [6]` (BER-TLV files).
    pub maximum_file_size: Option<Vec<u8>>,
    /// `fileDetails [4]` (DEFAULT `01`).
    pub file_details: u8,
}

impl Default for ProprietaryInfo {
    fn default() -> Self {
        ProprietaryInfo {
            special_file_information: 0x00,
            fill_pattern: None,
            repeat_pattern: None,
            maximum_file_size: None,
            file_details: 0x01,
        }
    }
}

const PRIV0: Tag = Tag(0xC0);
const PRIV1: Tag = Tag(0xC1);
const PRIV2: Tag = Tag(0xC2);
const PRIV6: Tag = Tag(0xC6);
const PRIV7: Tag = Tag(0xC7);

impl ProprietaryInfo {
    fn decode(t: &Tlv<'_>) -> Res<Self> {
        let mut r = t.reader()?;
        let mut p = ProprietaryInfo::default();
        if let Some(t) = opt(&mut r, PRIV0, "specialFileInformation")? {
            let [v] = fixed::<1>(&t).at("specialFileInformation")?;
            p.special_file_information = not_default(v, 0x00).at("specialFileInformation")?;
        }
        if let Some(t) = opt(&mut r, PRIV1, "fillPattern")? {
            p.fill_pattern = Some(octets(&t, 1, 200).at("fillPattern")?);
        }
        if let Some(t) = opt(&mut r, PRIV2, "repeatPattern")? {
            p.repeat_pattern = Some(octets(&t, 1, 200).at("repeatPattern")?);
        }
        if let Some(t) = opt(&mut r, ctx(6), "maximumFileSize")? {
            p.maximum_file_size = Some(octets(&t, 0, usize::MAX).at("maximumFileSize")?);
        }
        if let Some(t) = opt(&mut r, ctx(4), "fileDetails")? {
            let [v] = fixed::<1>(&t).at("fileDetails")?;
            p.file_details = not_default(v, 0x01).at("fileDetails")?;
        }
        finish(&r)?;
        Ok(p)
    }

    fn encode(&self, tag: Tag, out: &mut Vec<u8>) {
        write_cons(out, tag, |o| {
            if self.special_file_information != 0x00 {
                write(o, PRIV0, &[self.special_file_information]);
            }
            if let Some(v) = &self.fill_pattern {
                write(o, PRIV1, v);
            }
            if let Some(v) = &self.repeat_pattern {
                write(o, PRIV2, v);
            }
            if let Some(v) = &self.maximum_file_size {
                write(o, ctx(6), v);
            }
            if self.file_details != 0x01 {
                write(o, ctx(4), &[self.file_details]);
            }
        });
    }
}

/// `Fcp`: the file control parameters of a file to create (ETSI TS 102 222 coding inside
/// each octet string). DEFAULT components are held resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fcp {
    /// `fileDescriptor [2]` (2..4 octets).
    pub file_descriptor: Option<Vec<u8>>,
    /// `fileID [3]` (2 octets).
    pub file_id: Option<[u8; 2]>,
    /// `dfName [4]` (ADF AID, 5..16 octets).
    pub df_name: Option<Vec<u8>>,
    /// `lcsi [10]` (DEFAULT `05`).
    pub lcsi: u8,
    /// `securityAttributesReferenced [11]` (1..3 octets).
    pub security_attributes_referenced: Option<Vec<u8>>,
    /// `efFileSize [0]` (minimal octets).
    pub ef_file_size: Option<Vec<u8>>,
    /// `pinStatusTemplateDO [PRIVATE 6]`.
    pub pin_status_template_do: Option<Vec<u8>>,
    /// `shortEFID [8]` (0..1 octet; empty means "no SFI").
    pub short_ef_id: Option<Vec<u8>>,
    /// `proprietaryEFInfo [5]`.
    pub proprietary_ef_info: Option<ProprietaryInfo>,
    /// `linkPath [PRIVATE 7]` (0..8 octets).
    pub link_path: Option<Vec<u8>>,
}

impl Default for Fcp {
    fn default() -> Self {
        Fcp {
            file_descriptor: None,
            file_id: None,
            df_name: None,
            lcsi: 0x05,
            security_attributes_referenced: None,
            ef_file_size: None,
            pin_status_template_do: None,
            short_ef_id: None,
            proprietary_ef_info: None,
            link_path: None,
        }
    }
}

impl Fcp {
    /// Decode the contents of an element carrying an `Fcp` (under any implicit tag).
    pub(crate) fn decode(t: &Tlv<'_>) -> Res<Self> {
        let mut r = t.reader()?;
        let mut f = Fcp::default();
        if let Some(t) = opt(&mut r, ctx(2), "fileDescriptor")? {
            f.file_descriptor = Some(octets(&t, 2, 4).at("fileDescriptor")?);
        }
        if let Some(t) = opt(&mut r, ctx(3), "fileID")? {
            f.file_id = Some(fixed::<2>(&t).at("fileID")?);
        }
        if let Some(t) = opt(&mut r, ctx(4), "dfName")? {
            f.df_name = Some(octets(&t, 5, 16).at("dfName")?);
        }
        if let Some(t) = opt(&mut r, ctx(10), "lcsi")? {
            let [v] = fixed::<1>(&t).at("lcsi")?;
            f.lcsi = not_default(v, 0x05).at("lcsi")?;
        }
        if let Some(t) = opt(&mut r, ctx(11), "securityAttributesReferenced")? {
            f.security_attributes_referenced =
                Some(octets(&t, 1, 3).at("securityAttributesReferenced")?);
        }
        if let Some(t) = opt(&mut r, ctx(0), "efFileSize")? {
            let v = octets(&t, 1, usize::MAX).at("efFileSize")?;
            if v.len() > 1 && v.first() == Some(&0) {
                return Err(Fail::constraint("efFileSize has a leading 00 octet")).at("efFileSize");
            }
            f.ef_file_size = Some(v);
        }
        if let Some(t) = opt(&mut r, PRIV6, "pinStatusTemplateDO")? {
            f.pin_status_template_do = Some(octets(&t, 0, usize::MAX).at("pinStatusTemplateDO")?);
        }
        if let Some(t) = opt(&mut r, ctx(8), "shortEFID")? {
            f.short_ef_id = Some(octets(&t, 0, 1).at("shortEFID")?);
        }
        if let Some(t) = opt(&mut r, cctx(5), "proprietaryEFInfo")? {
            f.proprietary_ef_info = Some(ProprietaryInfo::decode(&t).at("proprietaryEFInfo")?);
        }
        if let Some(t) = opt(&mut r, PRIV7, "linkPath")? {
            f.link_path = Some(octets(&t, 0, 8).at("linkPath")?);
        }
        finish(&r)?;
        Ok(f)
    }

    /// Append with the given (implicit) tag.
    pub(crate) fn encode(&self, tag: Tag, out: &mut Vec<u8>) {
        write_cons(out, tag, |o| {
            if let Some(v) = &self.file_descriptor {
                write(o, ctx(2), v);
            }
            if let Some(v) = &self.file_id {
                write(o, ctx(3), v);
            }
            if let Some(v) = &self.df_name {
                write(o, ctx(4), v);
            }
            if self.lcsi != 0x05 {
                write(o, ctx(10), &[self.lcsi]);
            }
            if let Some(v) = &self.security_attributes_referenced {
                write(o, ctx(11), v);
            }
            if let Some(v) = &self.ef_file_size {
                write(o, ctx(0), v);
            }
            if let Some(v) = &self.pin_status_template_do {
                write(o, PRIV6, v);
            }
            if let Some(v) = &self.short_ef_id {
                write(o, ctx(8), v);
            }
            if let Some(v) = &self.proprietary_ef_info {
                v.encode(cctx(5), o);
            }
            if let Some(v) = &self.link_path {
                write(o, PRIV7, v);
            }
        });
    }
}

/// One alternative of the `File` SEQUENCE OF CHOICE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileItem {
    /// `doNotCreate NULL` `[0]`.
    DoNotCreate,
    /// `fileDescriptor Fcp` `[1]`.
    FileDescriptor(Box<Fcp>),
    /// `fillFileOffset UInt16` `[2]`.
    FillFileOffset(u16),
    /// `fillFileContent OCTET STRING` `[3]`.
    FillFileContent(Vec<u8>),
}

/// `File ::= SEQUENCE OF CHOICE {...}`: how one file of a template is created and filled.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct File(pub Vec<FileItem>);

impl File {
    /// Decode the contents of a `File` component (any implicit tag).
    pub(crate) fn decode(t: &Tlv<'_>) -> Res<Self> {
        let mut r = t.reader()?;
        let mut items = Vec::new();
        while !r.is_empty() {
            let i = items.len();
            let e = r.read().at_with(|| format!("[{i}]"))?;
            let item = match e.tag {
                t if t == ctx(0) => null(&e).map(|()| FileItem::DoNotCreate).at("doNotCreate"),
                t if t == cctx(1) => Fcp::decode(&e)
                    .map(|f| FileItem::FileDescriptor(Box::new(f)))
                    .at("fileDescriptor"),
                t if t == ctx(2) => uint16(&e)
                    .map(FileItem::FillFileOffset)
                    .at("fillFileOffset"),
                t if t == ctx(3) => octets(&e, 0, usize::MAX)
                    .map(FileItem::FillFileContent)
                    .at("fillFileContent"),
                other => Err(Fail::unexpected(other)),
            }
            .at_with(|| format!("[{i}]"))?;
            items.push(item);
        }
        Ok(File(items))
    }

    /// Append with the given (implicit) tag.
    pub(crate) fn encode(&self, tag: Tag, out: &mut Vec<u8>) {
        write_cons(out, tag, |o| {
            for item in &self.0 {
                match item {
                    FileItem::DoNotCreate => write(o, ctx(0), &[]),
                    FileItem::FileDescriptor(f) => f.encode(cctx(1), o),
                    FileItem::FillFileOffset(n) => write_uint(o, ctx(2), u64::from(*n)),
                    FileItem::FillFileContent(c) => write(o, ctx(3), c),
                }
            }
        });
    }

    /// The first `fileDescriptor`, if any.
    pub fn fcp(&self) -> Option<&Fcp> {
        self.0.iter().find_map(|i| match i {
            FileItem::FileDescriptor(f) => Some(&**f),
            _ => None,
        })
    }

    /// The content written at offset 0: the first `fillFileContent` when no
    /// `fillFileOffset` precedes it. `None` when the file keeps its template default.
    pub fn content(&self) -> Option<&[u8]> {
        for item in &self.0 {
            match item {
                FileItem::FillFileOffset(_) => return None,
                FileItem::FillFileContent(c) => return Some(c),
                _ => {}
            }
        }
        None
    }

    /// Replace the content at offset 0 (see [`File::content`]) or add it when the file has
    /// no content item yet. Files whose first content item follows a `fillFileOffset` are
    /// refused (the replacement would move the later items).
    pub fn set_content(&mut self, content: &[u8]) -> Result<(), crate::SaipError> {
        for item in self.0.iter_mut() {
            match item {
                FileItem::FillFileOffset(_) => {
                    return Err(crate::SaipError::InvalidValue {
                        what: "file content",
                        why: "the file is filled at an offset; replace its items directly",
                    });
                }
                FileItem::FillFileContent(c) => {
                    *c = content.to_vec();
                    return Ok(());
                }
                _ => {}
            }
        }
        self.0.push(FileItem::FillFileContent(content.to_vec()));
        Ok(())
    }
}

/// One `File` component of a template PE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateFile {
    /// The component's automatic tag number (`[n]`, `n >= 2`).
    pub number: u32,
    /// The component name in the schema (`ef-imsi`), `None` for a number beyond the
    /// SAIP 3.3.1 definition (an extension).
    pub name: Option<&'static str>,
    /// The file.
    pub file: File,
}

/// A file-system template PE (`mf`, `usim`, `opt-usim`, `isim`, `csim`, `telecom`,
/// `df-5gs`, ...): header, `templateID` and the `File` components present, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplatePe {
    /// The PE header (`[0]`).
    pub header: PeHeader,
    /// `templateID [1]`.
    pub template_id: Oid,
    /// The `File` components present, ascending by tag number.
    pub files: Vec<TemplateFile>,
}

impl TemplatePe {
    pub(crate) fn decode(t: &Tlv<'_>, fields: &'static [FileField], hdr_name: &str) -> Res<Self> {
        let mut r = t.reader()?;
        let header = PeHeader::read(&mut r, hdr_name)?;
        let tid = req(&mut r, ctx(1), "templateID")?;
        let template_id = Oid::decode(&tid, "templateID")
            .map_err(Fail::from)
            .at("templateID")?;
        let mut files: Vec<TemplateFile> = Vec::new();
        // Next automatic tag number whose presence is still to be checked.
        let mut next = 2u32;
        while !r.is_empty() {
            let e = r.read()?;
            let n = e.tag.number();
            let name = fields.get((n as usize).wrapping_sub(2)).map(|f| f.0);
            let seg = || name.map_or_else(|| format!("[{n}]"), str::to_owned);
            if e.tag != cctx(n) || n < next {
                return Err(Fail::unexpected(e.tag)).at_with(seg);
            }
            check_mandatory(fields, next, n)?;
            next = n + 1;
            let file = File::decode(&e).at_with(seg)?;
            files.push(TemplateFile {
                number: n,
                name,
                file,
            });
        }
        check_mandatory(fields, next, u32::MAX)?;
        Ok(TemplatePe {
            header,
            template_id,
            files,
        })
    }

    pub(crate) fn encode(&self, tag: Tag, out: &mut Vec<u8>) {
        write_cons(out, tag, |o| {
            self.header.encode(cctx(0), o);
            self.template_id.write(o, ctx(1));
            for f in &self.files {
                f.file.encode(cctx(f.number), o);
            }
        });
    }

    /// The file component with this schema name (`ef-imsi`).
    pub fn file(&self, name: &str) -> Option<&File> {
        self.files
            .iter()
            .find(|f| f.name == Some(name))
            .map(|f| &f.file)
    }

    /// The file component with this schema name, mutable.
    pub fn file_mut(&mut self, name: &str) -> Option<&mut File> {
        self.files
            .iter_mut()
            .find(|f| f.name == Some(name))
            .map(|f| &mut f.file)
    }
}

/// Fail with `Missing` for the first mandatory field numbered in `from..to`.
fn check_mandatory(fields: &'static [FileField], from: u32, to: u32) -> Res<()> {
    for (i, (name, optional)) in fields.iter().enumerate() {
        let n = i as u32 + 2;
        if n >= from && n < to && !optional {
            return Err(Fail::from(rsp_asn1::DecodeError::Missing(cctx(n)))).at(name);
        }
    }
    Ok(())
}

/// One command of a `FileManagement` sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FmItem {
    /// `filePath [0]` (0..8 octets; temporary file ID for an ADF).
    FilePath(Vec<u8>),
    /// `createFCP [APPLICATION 2]`.
    CreateFcp(Box<Fcp>),
    /// `fillFileOffset` (UNIVERSAL INTEGER).
    FillFileOffset(u16),
    /// `fillFileContent [1]`.
    FillFileContent(Vec<u8>),
}

const APP2: Tag = Tag(0x62);

/// `PE-GenericFileManagement`: file creation and update commands outside templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenericFileManagement {
    /// `gfm-header`.
    pub header: PeHeader,
    /// `fileManagementCMD`: at least one `FileManagement`, each at least one item.
    pub commands: Vec<Vec<FmItem>>,
}

impl GenericFileManagement {
    pub(crate) fn decode(t: &Tlv<'_>) -> Res<Self> {
        let mut r = t.reader()?;
        let header = PeHeader::read(&mut r, "gfm-header")?;
        let cmds = req(&mut r, cctx(1), "fileManagementCMD")?;
        finish(&r)?;
        let commands = decode_cmds(&cmds).at("fileManagementCMD")?;
        Ok(GenericFileManagement { header, commands })
    }

    pub(crate) fn encode(&self, tag: Tag, out: &mut Vec<u8>) {
        write_cons(out, tag, |o| {
            self.header.encode(cctx(0), o);
            write_cons(o, cctx(1), |o| {
                for cmd in &self.commands {
                    write_cons(o, Tag::SEQUENCE, |o| {
                        for item in cmd {
                            match item {
                                FmItem::FilePath(p) => write(o, ctx(0), p),
                                FmItem::CreateFcp(f) => f.encode(APP2, o),
                                FmItem::FillFileOffset(n) => {
                                    write_uint(o, Tag::INTEGER, u64::from(*n))
                                }
                                FmItem::FillFileContent(c) => write(o, ctx(1), c),
                            }
                        }
                    });
                }
            });
        });
    }
}

fn decode_cmds(t: &Tlv<'_>) -> Res<Vec<Vec<FmItem>>> {
    let mut r = t.reader()?;
    let mut cmds = Vec::new();
    while !r.is_empty() {
        let ci = cmds.len();
        let seg = || format!("[{ci}]");
        let c = r.read_expect(Tag::SEQUENCE).at_with(seg)?;
        cmds.push(decode_items(&c).at_with(seg)?);
    }
    if cmds.is_empty() {
        return Err(Fail::constraint("SIZE (1..MAX): empty"));
    }
    Ok(cmds)
}

fn decode_items(t: &Tlv<'_>) -> Res<Vec<FmItem>> {
    let mut r: Reader<'_> = t.reader()?;
    let mut items = Vec::new();
    while !r.is_empty() {
        let i = items.len();
        let e = r.read().at_with(|| format!("[{i}]"))?;
        let item = match e.tag {
            t if t == ctx(0) => octets(&e, 0, 8).map(FmItem::FilePath).at("filePath"),
            t if t == APP2 => Fcp::decode(&e)
                .map(|f| FmItem::CreateFcp(Box::new(f)))
                .at("createFCP"),
            t if t == Tag::INTEGER => uint16(&e).map(FmItem::FillFileOffset).at("fillFileOffset"),
            t if t == ctx(1) => octets(&e, 0, usize::MAX)
                .map(FmItem::FillFileContent)
                .at("fillFileContent"),
            other => Err(Fail::unexpected(other)),
        }
        .at_with(|| format!("[{i}]"))?;
        items.push(item);
    }
    if items.is_empty() {
        return Err(Fail::constraint("SIZE (1..MAX): empty"));
    }
    Ok(items)
}
