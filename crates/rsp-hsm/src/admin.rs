//! Token administration for `smdpp keys hsm`: import a PEM EC private key, generate EC key
//! pairs and the AES KEK, list the objects. Nothing here returns a private value.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use rsp_crypto::keys::PUBLIC_KEY_LEN;
use rsp_crypto::{Curve, KeyCustody, SoftwareKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::error::HsmError;
use crate::key::{curve_of_params, params_of_curve, point_of_attribute, public_of};
use crate::token::Token;

/// What kind of key an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// An EC key pair (private key object, with its public key object when present).
    Ec(Option<Curve>),
    /// An AES secret key (the vault KEK).
    Aes,
    /// Another secret or private key type.
    Other,
}

/// One key on the token, as `smdpp keys hsm list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    /// `CKA_LABEL`.
    pub label: String,
    /// The key type and curve.
    pub kind: ObjectKind,
    /// SHA-256 of the uncompressed public point, hex (EC keys with a public key object).
    pub public_fingerprint: Option<String>,
}

impl std::fmt::Display for ObjectSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            ObjectKind::Ec(Some(c)) => format!("EC {c}"),
            ObjectKind::Ec(None) => "EC (other curve)".to_owned(),
            ObjectKind::Aes => "AES".to_owned(),
            ObjectKind::Other => "other".to_owned(),
        };
        write!(f, "{}\t{kind}", self.label)?;
        if let Some(fp) = &self.public_fingerprint {
            write!(f, "\tpublic key SHA-256 {fp}")?;
        }
        Ok(())
    }
}

/// SHA-256 of a public point, hex.
pub fn fingerprint(point: &[u8]) -> String {
    hex::encode(Sha256::digest(point))
}

fn refuse_existing(token: &Token, label: &str) -> Result<(), HsmError> {
    for class in [
        ObjectClass::PRIVATE_KEY,
        ObjectClass::PUBLIC_KEY,
        ObjectClass::SECRET_KEY,
    ] {
        if !token.find(class, label)?.is_empty() {
            return Err(HsmError::Exists {
                label: label.to_owned(),
                token: token.label().to_owned(),
            });
        }
    }
    Ok(())
}

fn random_id(token: &Token) -> Result<Vec<u8>, HsmError> {
    let mut id = vec![0u8; 8];
    token
        .session()
        .generate_random_slice(&mut id)
        .map_err(HsmError::call("C_GenerateRandom"))?;
    Ok(id)
}

fn public_template(curve: Curve, label: &str, id: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(params_of_curve(curve)),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ]
}

fn private_template(label: &str, id: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Derive(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ]
}

/// Imports the EC private key of a PEM file (PKCS#8 or SEC1, P-256 or brainpoolP256r1) as
/// a token private key labelled `label` (`CKA_SENSITIVE=true`, `CKA_EXTRACTABLE=false`),
/// with its public key object. Refuses a label in use. The caller should delete the file.
pub fn import_pem(token: &Token, label: &str, pem: &str) -> Result<ObjectSummary, HsmError> {
    let key = SoftwareKey::from_pem(pem)?;
    refuse_existing(token, label)?;
    let curve = key.curve();
    let id = random_id(token)?;
    let mut point_der = Vec::with_capacity(PUBLIC_KEY_LEN + 2);
    point_der.extend_from_slice(&[0x04, 0x41]);
    point_der.extend_from_slice(key.public_key());
    let mut public = public_template(curve, label, &id);
    public.extend([
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcPoint(point_der),
    ]);
    let mut private = private_template(label, &id);
    private.extend([
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(params_of_curve(curve)),
        Attribute::Value(key.expose_scalar().to_vec()),
    ]);
    let session = token.session();
    let created = session.create_object(&private);
    for a in &mut private {
        if let Attribute::Value(v) = a {
            v.zeroize();
        }
    }
    let private_handle = created.map_err(HsmError::call("C_CreateObject"))?;
    if let Err(e) = session.create_object(&public) {
        // Do not leave half a key pair behind.
        let _ = session.destroy_object(private_handle);
        return Err(HsmError::call("C_CreateObject")(e));
    }
    Ok(ObjectSummary {
        label: label.to_owned(),
        kind: ObjectKind::Ec(Some(curve)),
        public_fingerprint: Some(fingerprint(key.public_key())),
    })
}

/// Generates an EC key pair on `curve` on the token (`CKM_EC_KEY_PAIR_GEN`), labelled
/// `label`. Returns the summary, whose fingerprint identifies the public key.
pub fn generate_ec(token: &Token, label: &str, curve: Curve) -> Result<ObjectSummary, HsmError> {
    refuse_existing(token, label)?;
    let id = random_id(token)?;
    token
        .session()
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &public_template(curve, label, &id),
            &private_template(label, &id),
        )
        .map_err(HsmError::call("C_GenerateKeyPair"))?;
    let (curve, point) = public_of(token, label)?;
    Ok(ObjectSummary {
        label: label.to_owned(),
        kind: ObjectKind::Ec(Some(curve)),
        public_fingerprint: Some(fingerprint(&point)),
    })
}

/// Generates the vault KEK: an AES-256 token key labelled `label` that can encrypt and
/// decrypt but never leaves the token (`CKA_SENSITIVE=true`, `CKA_EXTRACTABLE=false`).
pub fn generate_aes(token: &Token, label: &str) -> Result<ObjectSummary, HsmError> {
    refuse_existing(token, label)?;
    let id = random_id(token)?;
    token
        .session()
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id),
            ],
        )
        .map_err(HsmError::call("C_GenerateKey"))?;
    Ok(ObjectSummary {
        label: label.to_owned(),
        kind: ObjectKind::Aes,
        public_fingerprint: None,
    })
}

/// Every private and secret key on the token, sorted by label. Reads labels, key types,
/// curves and public points only.
pub fn list(token: &Token) -> Result<Vec<ObjectSummary>, HsmError> {
    let mut out = Vec::new();
    for class in [ObjectClass::PRIVATE_KEY, ObjectClass::SECRET_KEY] {
        let handles = token
            .session()
            .find_objects(&[Attribute::Class(class)])
            .map_err(HsmError::call("C_FindObjects"))?;
        for h in handles {
            let attrs = token.attributes(
                h,
                &[
                    AttributeType::Label,
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                ],
            )?;
            let mut label = String::new();
            let mut key_type = None;
            let mut curve = None;
            for a in &attrs {
                match a {
                    Attribute::Label(l) => label = String::from_utf8_lossy(l).into_owned(),
                    Attribute::KeyType(t) => key_type = Some(*t),
                    Attribute::EcParams(p) => curve = curve_of_params(p),
                    _ => {}
                }
            }
            let kind = match key_type {
                Some(KeyType::EC) => ObjectKind::Ec(curve),
                Some(KeyType::AES) => ObjectKind::Aes,
                _ => ObjectKind::Other,
            };
            let public_fingerprint = if matches!(kind, ObjectKind::Ec(_)) {
                public_point(token, &label)?.map(|p| fingerprint(&p))
            } else {
                None
            };
            out.push(ObjectSummary {
                label,
                kind,
                public_fingerprint,
            });
        }
    }
    out.sort_by(|a, b| a.label.cmp(&b.label));
    Ok(out)
}

fn public_point(token: &Token, label: &str) -> Result<Option<Vec<u8>>, HsmError> {
    let Some(h) = token
        .find(ObjectClass::PUBLIC_KEY, label)?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let attrs = token.attributes(h, &[AttributeType::EcPoint])?;
    Ok(attrs.iter().find_map(|a| match a {
        Attribute::EcPoint(p) => point_of_attribute(p).map(<[u8]>::to_vec),
        _ => None,
    }))
}

/// Destroys every key object labelled `label` (private, public and secret keys); returns
/// how many there were. Used by `smdpp bench hsm` to remove its throwaway keys.
pub fn destroy(token: &Token, label: &str) -> Result<usize, HsmError> {
    let mut n = 0;
    for class in [
        ObjectClass::PRIVATE_KEY,
        ObjectClass::PUBLIC_KEY,
        ObjectClass::SECRET_KEY,
    ] {
        for h in token.find(class, label)? {
            token
                .session()
                .destroy_object(h)
                .map_err(HsmError::call("C_DestroyObject"))?;
            n += 1;
        }
    }
    Ok(n)
}
