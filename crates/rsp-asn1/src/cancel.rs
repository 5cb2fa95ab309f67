//! Cancel Session (SGP.22 v2.2 sections 3.1.5, 5.6.5, 5.7.14): ES10b
//! `CancelSessionRequest` (`BF41`), `CancelSessionResponse` (`BF41` CHOICE) with
//! `EuiccCancelSessionSigned` kept as received, and the ES9+ ASN.1 binding
//! `CancelSessionRequestEs9` / `CancelSessionResponseEs9` (`BF41`).
//!
//! # The `CancelSessionRequestEs9` ambiguity
//!
//! `CancelSessionRequestEs9 ::= [65] SEQUENCE { transactionId TransactionId,
//! cancelSessionResponse CancelSessionResponse }` lives in an AUTOMATIC TAGS module, so the
//! second component receives the automatic tag `[1]`; its type is `[65] CHOICE`.
//! X.680 31.2.7 makes `[1]` implicit (only an *untagged* CHOICE forces explicit tagging),
//! so `[1]` replaces `[65]`: `A1 03 81 01 05` for an error — the form rasn and Eclipse
//! Titan produce. Python asn1tools and Erlang asn1ct keep the CHOICE tag inside:
//! `A1 06 BF41 03 81 01 05`.
//!
//! **Choice:** this crate encodes the X.680 form by default
//! ([`TaggedChoiceForm::Implicit`]) and **decodes both**; the `form` field records which was
//! received and re-encoding uses it, so relayed messages stay byte-identical. The signed
//! `euiccCancelSessionSigned` bytes are the same in both forms.

use crate::codec::{
    Codec, Extensions, FieldValue, SeqCodec, Signed, TaggedChoiceForm, explicit_inner, int_enum,
    ok_error_choice, put, req, tagged_choice_alternative, write_wrapped,
};
use crate::common::{TAG_SIGNATURE, TransactionId, read_signature};
use crate::error::DecodeError;
use crate::prim::Oid;
use crate::tlv::{Reader, Tag, Tlv, write_tlv};

fn c(n: u32) -> Tag {
    Tag::context(n)
}
fn cc(n: u32) -> Tag {
    Tag::context_constructed(n)
}

int_enum!(
    /// `CancelSessionReason ::= INTEGER` (v2.2 values included).
    CancelSessionReason {
        EndUserRejection = 0,
        Postponed = 1,
        Timeout = 2,
        PprNotAllowed = 3,
        MetadataMismatch = 4,
        LoadBppExecutionError = 5,
        UndefinedReason = 127,
    }
);

/// `CancelSessionRequest ::= [65] SEQUENCE { transactionId TransactionId, reason
/// CancelSessionReason }` (tag `BF41`; AUTOMATIC `80`, `81`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelSessionRequest {
    /// Transaction ID.
    pub transaction_id: TransactionId,
    /// Why.
    pub reason: CancelSessionReason,
}

impl SeqCodec for CancelSessionRequest {
    const TAG: Tag = Tag(0xBF41);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = CancelSessionRequest {
            transaction_id: req(r, c(0), "transactionId")?,
            reason: req(r, c(1), "reason")?,
        };
        r.finish()?;
        Ok(v)
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.transaction_id);
        put(out, c(1), &self.reason);
    }
}

/// `EuiccCancelSessionSigned ::= SEQUENCE { transactionId, smdpOid OBJECT IDENTIFIER,
/// reason }` (AUTOMATIC `80`, `81`, `82`) — signed by the eUICC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EuiccCancelSessionSigned {
    /// Transaction ID.
    pub transaction_id: TransactionId,
    /// SM-DP+ OID as in CERT.DPauth.ECDSA.
    pub smdp_oid: Oid,
    /// Why.
    pub reason: CancelSessionReason,
    /// Unknown trailing components, kept verbatim.
    pub extensions: Extensions,
}

impl SeqCodec for EuiccCancelSessionSigned {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(EuiccCancelSessionSigned {
            transaction_id: req(r, c(0), "transactionId")?,
            smdp_oid: req(r, c(1), "smdpOid")?,
            reason: req(r, c(2), "reason")?,
            extensions: Extensions::read_rest(r)?,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.transaction_id);
        put(out, c(1), &self.smdp_oid);
        put(out, c(2), &self.reason);
        self.extensions.encode_into(out);
    }
}

/// `CancelSessionResponseOk ::= SEQUENCE { euiccCancelSessionSigned,
/// euiccCancelSessionSignature [APPLICATION 55] }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelSessionResponseOk {
    /// The signed part with its exact received bytes.
    pub euicc_cancel_session_signed: Signed<EuiccCancelSessionSigned>,
    /// The signature (contents of `5F37`).
    pub euicc_cancel_session_signature: Vec<u8>,
}

impl SeqCodec for CancelSessionResponseOk {
    const TAG: Tag = Tag::SEQUENCE;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = CancelSessionResponseOk {
            euicc_cancel_session_signed: Signed::decode_tlv(&r.read_expect(Tag::SEQUENCE)?)?,
            euicc_cancel_session_signature: read_signature(r, "euiccCancelSessionSignature")?,
        };
        r.finish()?;
        Ok(v)
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        self.euicc_cancel_session_signed.encode_into(out);
        write_tlv(out, TAG_SIGNATURE, &self.euicc_cancel_session_signature);
    }
}

int_enum!(
    /// `cancelSessionResponseError INTEGER {invalidTransactionId(5), undefinedError(127)}`.
    CancelSessionResponseError { InvalidTransactionId = 5, UndefinedError = 127 }
);

/// `CancelSessionResponse ::= [65] CHOICE` (tag `BF41`; `A0` ok, `81` error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelSessionResponse {
    /// `cancelSessionResponseOk`.
    Ok(CancelSessionResponseOk),
    /// `cancelSessionResponseError`.
    Error(CancelSessionResponseError),
}

ok_error_choice!(
    CancelSessionResponse,
    Tag(0xBF41),
    Ok(CancelSessionResponseOk, cc(0)),
    Error(CancelSessionResponseError, c(1))
);

/// `CancelSessionRequestEs9 ::= [65] SEQUENCE { transactionId TransactionId,
/// cancelSessionResponse CancelSessionResponse }` (tag `BF41`; AUTOMATIC `80`, `A1`).
/// See the module docs for the two accepted encodings of `A1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelSessionRequestEs9 {
    /// Transaction ID.
    pub transaction_id: TransactionId,
    /// The ES10b.CancelSession response relayed by the LPA.
    pub cancel_session_response: CancelSessionResponse,
    /// The encoding form of `cancelSessionResponse` (received / to encode).
    pub form: TaggedChoiceForm,
}

impl SeqCodec for CancelSessionRequestEs9 {
    const TAG: Tag = Tag(0xBF41);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let transaction_id = req(r, c(0), "transactionId")?;
        let t = r.read_expect(cc(1))?;
        let (alt, form) = tagged_choice_alternative(&t, CancelSessionResponse::TAG)?;
        let cancel_session_response = CancelSessionResponse::decode_alternative(&alt)?;
        r.finish()?;
        Ok(CancelSessionRequestEs9 {
            transaction_id,
            cancel_session_response,
            form,
        })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        put(out, c(0), &self.transaction_id);
        match self.form {
            TaggedChoiceForm::Implicit => write_wrapped(out, cc(1), |o| {
                self.cancel_session_response.encode_alternative(o)
            }),
            TaggedChoiceForm::Nested => {
                write_wrapped(out, cc(1), |o| self.cancel_session_response.encode_into(o))
            }
        }
    }
}

int_enum!(
    /// `cancelSessionError INTEGER` of `CancelSessionResponseEs9`.
    CancelSessionEs9Error { InvalidTransactionId = 1, EuiccSignatureInvalid = 2, UndefinedError = 127 }
);

/// `CancelSessionResponseEs9 ::= [65] CHOICE { cancelSessionOk CancelSessionOk (empty
/// SEQUENCE), cancelSessionError INTEGER }` (tag `BF41`; `A0`, `81`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelSessionResponseEs9 {
    /// `cancelSessionOk`.
    Ok,
    /// `cancelSessionError`.
    Error(CancelSessionEs9Error),
}

impl Codec for CancelSessionResponseEs9 {
    fn decode_tlv(t: &Tlv<'_>) -> Result<Self, DecodeError> {
        let i = explicit_inner(t, Tag(0xBF41))?;
        match i.tag {
            x if x == cc(0) => {
                // CancelSessionOk is extensible: tolerate (and drop) later components.
                let mut r = i.reader()?;
                let _ = Extensions::read_rest(&mut r)?;
                Ok(Self::Ok)
            }
            x if x == c(1) => Ok(Self::Error(FieldValue::decode_value(&i, "error")?)),
            found => Err(DecodeError::UnexpectedTag {
                expected: cc(0),
                found,
            }),
        }
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        write_wrapped(out, Tag(0xBF41), |o| match self {
            Self::Ok => write_tlv(o, cc(0), &[]),
            Self::Error(e) => put(o, c(1), e),
        });
    }
}
