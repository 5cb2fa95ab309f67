//! Keys on a PKCS#11 token (HSM): the resolved token settings, key references of the form
//! `pkcs11:object=LABEL`, and opening the keys and the vault KEK they name.
//!
//! Any key setting of the server (the DPauth, DPpb and DPtls keys, the key files of extra key
//! sets, the vault's KEK file) whose value is `pkcs11:object=LABEL` (RFC 7512 syntax; only
//! the `object` attribute, the `CKA_LABEL`) names an object on the token instead of a file.
//! Other values stay file paths: software keys remain the default. How the token is named
//! on the command line (`--pkcs11-module`, `--pkcs11-token`, `--pkcs11-pin-file`) is the
//! command-line code's business; this module takes the resolved [`Pkcs11Settings`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Result, anyhow, bail};
use rsp_crypto::KeyCustody;
use rsp_hsm::{HsmKek, HsmKey, Token, TokenConfig};
use smdpp_vault::Kek;

/// The prefix of a key reference on the token.
pub const URI_PREFIX: &str = "pkcs11:";

/// The object label of a `pkcs11:object=LABEL` reference; `None` for a file path.
pub fn object_label(value: &Path) -> Result<Option<String>> {
    let Some(text) = value.to_str() else {
        return Ok(None);
    };
    let Some(rest) = text.strip_prefix(URI_PREFIX) else {
        return Ok(None);
    };
    let mut label = None;
    for attr in rest.split(';').filter(|a| !a.is_empty()) {
        match attr.split_once('=') {
            Some(("object", v)) if !v.is_empty() => label = Some(v.to_owned()),
            _ => bail!(
                "PKCS#11 key reference {text:?}: only `pkcs11:object=LABEL` is supported \
                 (the token is --pkcs11-token)"
            ),
        }
    }
    label.map(Some).ok_or_else(|| {
        anyhow!("PKCS#11 key reference {text:?} names no object (pkcs11:object=LABEL)")
    })
}

/// The token resolved from flags, environment and file.
#[derive(Debug, Clone)]
pub struct Pkcs11Settings {
    /// The module.
    pub module: PathBuf,
    /// The token label.
    pub token: String,
    /// The PIN file (else `SMDPP_PKCS11_PIN`).
    pub pin_file: Option<PathBuf>,
}

/// The token as given (flags or environment), before [`Pkcs11Options::resolve`] layers it
/// over the configuration file.
#[derive(Debug, Clone, Default)]
pub struct Pkcs11Options {
    /// PKCS#11 module (shared library).
    pub pkcs11_module: Option<PathBuf>,
    /// Label of the PKCS#11 token.
    pub pkcs11_token: Option<String>,
    /// File holding the token's user PIN (else `SMDPP_PKCS11_PIN`).
    pub pkcs11_pin_file: Option<PathBuf>,
}

impl Pkcs11Options {
    /// Flags/environment over the configuration file values; `None` without a module.
    pub fn resolve(
        &self,
        module: Option<&PathBuf>,
        token: Option<&String>,
        pin_file: Option<&PathBuf>,
    ) -> Result<Option<Pkcs11Settings>> {
        let module = self.pkcs11_module.clone().or(module.cloned());
        let token = self.pkcs11_token.clone().or(token.cloned());
        let pin_file = self.pkcs11_pin_file.clone().or(pin_file.cloned());
        match (module, token) {
            (None, None) => Ok(None),
            (Some(module), Some(token)) => Ok(Some(Pkcs11Settings {
                module,
                token,
                pin_file,
            })),
            (Some(_), None) => bail!("--pkcs11-module needs --pkcs11-token (the token label)"),
            (None, Some(_)) => bail!("--pkcs11-token needs --pkcs11-module (the module path)"),
        }
    }
}

impl Pkcs11Settings {
    /// The token from `SMDPP_PKCS11_MODULE`, `SMDPP_PKCS11_TOKEN` and
    /// `SMDPP_PKCS11_PIN_FILE` (one-shot commands).
    pub fn from_env() -> Result<Pkcs11Settings> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let module = var("SMDPP_PKCS11_MODULE").map(PathBuf::from);
        let token = var("SMDPP_PKCS11_TOKEN").and_then(|t| t.into_string().ok());
        match (module, token) {
            (Some(module), Some(token)) => Ok(Pkcs11Settings {
                module,
                token,
                pin_file: var("SMDPP_PKCS11_PIN_FILE").map(PathBuf::from),
            }),
            _ => bail!(
                "the key-encryption key is on a PKCS#11 token: set SMDPP_PKCS11_MODULE and \
                 SMDPP_PKCS11_TOKEN (and SMDPP_PKCS11_PIN_FILE or SMDPP_PKCS11_PIN)"
            ),
        }
    }

    /// Reads the PIN, loads the module, finds the token and logs in. A token opened before
    /// in this process (same module and label) is returned again: one login and one
    /// session pool per token, whichever part of the server asks.
    pub fn open(&self) -> Result<Arc<Token>> {
        type Opened = Mutex<HashMap<(PathBuf, String), Arc<Token>>>;
        static OPENED: OnceLock<Opened> = OnceLock::new();
        let mut opened = OPENED
            .get_or_init(Opened::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let k = (self.module.clone(), self.token.clone());
        if let Some(t) = opened.get(&k) {
            return Ok(Arc::clone(t));
        }
        let pin = TokenConfig::read_pin(self.pin_file.as_deref())?;
        let token = Token::open(&TokenConfig {
            module: self.module.clone(),
            token_label: self.token.clone(),
            pin,
            pool_size: 0,
        })?;
        opened.insert(k, Arc::clone(&token));
        Ok(token)
    }
}

/// The key at `value`: an object on `token` for `pkcs11:object=LABEL`, else `None` (the
/// caller reads the file).
pub fn token_key(value: &Path, token: Option<&Arc<Token>>) -> Result<Option<Arc<dyn KeyCustody>>> {
    let Some(label) = object_label(value)? else {
        return Ok(None);
    };
    let token = token.ok_or_else(|| {
        anyhow!(
            "{} is a PKCS#11 key: give --pkcs11-module and --pkcs11-token",
            value.display()
        )
    })?;
    let key = HsmKey::open(Arc::clone(token), &label)?;
    tracing::info!(label = %label, curve = %key.curve(), token = %token.label(), "key on the PKCS#11 token");
    Ok(Some(Arc::new(key)))
}

/// The KEK at `kek_file` when it is a `pkcs11:object=LABEL` reference: on `token`, or on
/// the token of the environment ([`Pkcs11Settings::from_env`]) when `token` is `None`.
pub fn token_kek(kek_file: &Path, token: Option<&Arc<Token>>) -> Result<Option<Arc<dyn Kek>>> {
    let Some(label) = object_label(kek_file)? else {
        return Ok(None);
    };
    let token = match token {
        Some(t) => Arc::clone(t),
        None => Pkcs11Settings::from_env()?.open()?,
    };
    Ok(Some(Arc::new(HsmKek::open(token, &label)?)))
}
