//! SAIP profile packages: decode, inspect, personalize and re-encode an Unprotected Profile
//! Package (UPP), the concatenation of `ProfileElement` DER values defined by the TCA eUICC
//! Profile Package specification (PE_Definitions 3.3.1, "SAIP").
//!
//! # Representation
//!
//! A [`Upp`] is an ordered `Vec<`[`ProfileElement`]`>`. Each PE is its CHOICE alternative
//! ([`PeType`], all 34 alternatives of 3.3.1 named) and a body ([`PeBody`]):
//!
//! - **Typed** where personalization and inspection need it: [`ProfileHeader`] (versions,
//!   profileType, ICCID, mandatory services / GFSTE list / AIDs, ...), [`PinCodes`],
//!   [`PukCodes`], [`AkaParameter`] (algorithm, Ki, OPc, rotation/xoring constants, SQN
//!   options), [`CdmaParameter`], [`Rfm`], [`NonStandard`], `end`, and
//!   [`GenericFileManagement`] (filePath / createFCP / fillFileOffset / fillFileContent).
//! - **File-system templates** (`mf`, `usim`, `opt-usim`, `isim`, `csim`, `telecom`,
//!   `df-5gs`, ... — every template PE of 3.3.1) are a [`TemplatePe`]: header,
//!   `templateID`, and the `File` components present, each with its tag number and schema
//!   name (`ef-iccid`, `ef-imsi`, `ef-spn`, ...). A [`File`] is its list of
//!   [`FileItem`]s: `doNotCreate`, `fileDescriptor` ([`Fcp`] with [`ProprietaryInfo`]),
//!   `fillFileOffset`, `fillFileContent`.
//! - **Raw**: the components of `securityDomain` and `application` after their typed
//!   header, and the `rfu*` / post-3.3.1 alternatives, are [`RawComponent`]s — the exact
//!   DER bytes, checked well-formed, re-emitted unchanged.
//!
//! DEFAULT components are held resolved (`pinAttributes` is `7` when absent) and are left
//! out on encoding when they equal the default, as DER requires; an input that encodes a
//! DEFAULT value explicitly is rejected. Since every other component is kept in schema
//! order with its value, `Upp::decode(x)?.encode() == x` for every valid DER input, and
//! after any change the encoder recomputes every length.
//!
//! # Strictness
//!
//! Decoding is total (never panics) and strict DER through `rsp_asn1::tlv`: definite
//! minimal lengths, minimal tags, bounded depth, components in schema order, SIZE and
//! range constraints, no trailing bytes in any SEQUENCE, no explicit DEFAULT values.
//! Failures are a [`DecodeFailure`] naming the PE index, its type and the component path,
//! e.g. `PE #7 (usim) / templateID: expected tag 81, found 80`. Unknown components of
//! typed SEQUENCEs are rejected; only template PEs accept `File` components with tag
//! numbers beyond the 3.3.1 list (kept, unnamed).
//!
//! # Personalization
//!
//! [`Upp::set_iccid`] (ProfileHeader plain BCD and EF.ICCID swapped BCD),
//! [`Upp::set_imsi`] (EF.IMSI of the first USIM), [`Upp::set_ki_opc`] (every
//! `akaParameter` with an `algoParameter`), [`Upp::set_pin`] / [`Upp::set_puk`] by key
//! reference; the generic [`Upp::template_file_mut`] reaches any template file. Secrets
//! are [`Secret`]s: zeroized on drop and redacted in `Debug`.
//!
//! # Templates
//!
//! The project's own profile template is TOML source compiled into a UPP
//! ([`template`]: [`Template::compile`], [`TemplateSource::usim_isim_milenage`]);
//! [`Template::personalize`] validates a [`Personalization`] (ICCID with Luhn, IMSI vs home
//! PLMN, Ki/OPc or OP, PIN/PUK/ADM, SPN) and writes it at its places ([`personalize`]).
//! [`milenage`] implements Milenage (TS 35.206) for the OPc derivation and key checks.

pub mod bcd;
mod der;
pub mod error;
pub mod file;
pub mod header;
pub mod milenage;
pub mod params;
pub mod pe;
pub mod personalize;
pub mod secret;
pub mod template;
mod templates;
pub mod upp;

pub use error::{DecodeFailure, ErrorKind, SaipError};
pub use file::{
    Fcp, File, FileItem, FmItem, GenericFileManagement, ProprietaryInfo, TemplateFile, TemplatePe,
};
pub use header::{MandatoryAid, PeHeader, ProfileHeader, ServicesList};
pub use params::{
    AkaParameter, AlgoConfiguration, AlgoParameter, AlgorithmId, CdmaParameter, MappingParameter,
    PinCodes, PinCodesChoice, PinConfig, PukCodes, PukConfig,
};
pub use pe::{
    AdfRfmAccess, GenericPe, NonStandard, PeBody, PeType, ProfileElement, RawComponent, Rfm,
};
pub use personalize::{
    FileOverride, OperatorKey, Personalization, PersonalizationError, SecretText,
};
pub use secret::Secret;
pub use template::{Template, TemplateError, TemplateSource};
pub use upp::{PeInfo, Upp};
