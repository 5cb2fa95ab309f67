//! Keys in an HSM (PKCS#11): the token settings of `smdpp serve`, key references of the
//! form `pkcs11:object=LABEL`, and `smdpp keys hsm import|list|generate|rewrap`.
//!
//! - The token is named by `--pkcs11-module PATH` and `--pkcs11-token LABEL` (environment
//!   `SMDPP_PKCS11_MODULE`, `SMDPP_PKCS11_TOKEN`; configuration file `pkcs11_module`,
//!   `pkcs11_token`). The user PIN is read from `--pkcs11-pin-file FILE`
//!   (`SMDPP_PKCS11_PIN_FILE`, `pkcs11_pin_file`) or else from the environment variable
//!   `SMDPP_PKCS11_PIN`; never from a flag value.
//! - Any key setting (`--dpauth-key`, `--dppb-key`, `--dptls-key`, the key files of extra key
//!   sets, `--kek-file` / `kek_file`) whose value is `pkcs11:object=LABEL` (RFC 7512 syntax;
//!   only the `object` attribute, the `CKA_LABEL`) names an object on that token instead of a
//!   file. Other values stay file paths: software keys remain the default.
//! - The one-shot commands that open the vault (`smdpp profiles ...`, `smdpp keys status`,
//!   ...) take the token from the environment variables above when their `--kek-file` is a
//!   `pkcs11:` reference.
//! - rustls signs TLS with P-256 only: the DPtls key on the token must be a P-256 key (a
//!   brainpool key set still gets a P-256 DPtls certificate for TLS).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use rsp_crypto::Curve;
use rsp_hsm::{HsmKek, Token, admin};
use smdpp_vault::Kek;

use crate::cli::DataArgs;
pub use smdpp_service::hsm::{
    Pkcs11Options, Pkcs11Settings, URI_PREFIX, object_label, token_kek, token_key,
};

/// The token options shared by `serve` and `keys hsm`.
#[derive(Args, Debug, Clone, Default)]
pub struct Pkcs11Args {
    /// PKCS#11 module (shared library), e.g. /usr/lib/softhsm/libsofthsm2.so; with it, key
    /// settings of the form `pkcs11:object=LABEL` name objects on the token.
    #[arg(long, env = "SMDPP_PKCS11_MODULE")]
    pub pkcs11_module: Option<PathBuf>,
    /// Label of the PKCS#11 token.
    #[arg(long, env = "SMDPP_PKCS11_TOKEN")]
    pub pkcs11_token: Option<String>,
    /// File holding the token's user PIN (first line). Without it the PIN is read from the
    /// environment variable SMDPP_PKCS11_PIN.
    #[arg(long, env = "SMDPP_PKCS11_PIN_FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,
}

impl Pkcs11Args {
    /// The engine's view of these flags.
    pub fn options(&self) -> Pkcs11Options {
        Pkcs11Options {
            pkcs11_module: self.pkcs11_module.clone(),
            pkcs11_token: self.pkcs11_token.clone(),
            pkcs11_pin_file: self.pkcs11_pin_file.clone(),
        }
    }

    /// Flags/environment over the configuration file values; `None` without a module
    /// ([`Pkcs11Options::resolve`]).
    pub fn resolve(
        &self,
        module: Option<&PathBuf>,
        token: Option<&String>,
        pin_file: Option<&PathBuf>,
    ) -> Result<Option<Pkcs11Settings>> {
        self.options().resolve(module, token, pin_file)
    }

    /// The token named by these options (required).
    pub fn open(&self) -> Result<Arc<Token>> {
        let s = self
            .resolve(None, None, None)?
            .ok_or_else(|| anyhow!("give --pkcs11-module and --pkcs11-token"))?;
        s.open()
    }
}

/// Curves for `smdpp keys hsm generate --curve`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum HsmCurve {
    /// NIST P-256.
    Nist,
    /// brainpoolP256r1.
    Brainpool,
}

impl From<HsmCurve> for Curve {
    fn from(c: HsmCurve) -> Curve {
        match c {
            HsmCurve::Nist => Curve::NistP256,
            HsmCurve::Brainpool => Curve::BrainpoolP256r1,
        }
    }
}

/// `smdpp keys hsm ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum HsmCommand {
    /// Import a PEM EC private key (P-256 or brainpoolP256r1; PKCS#8 or SEC1) as a
    /// non-extractable token key with its public key. Delete the file afterwards.
    Import {
        /// The token.
        #[command(flatten)]
        token: Pkcs11Args,
        /// Label of the new objects (CKA_LABEL), e.g. dpauth.
        #[arg(long)]
        label: String,
        /// The PEM key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// List the keys on the token: labels, types, curves, public-key fingerprints.
    List {
        /// The token.
        #[command(flatten)]
        token: Pkcs11Args,
    },
    /// Generate an EC key pair (--curve) or the vault's AES-256 key-encryption key (--aes)
    /// on the token.
    Generate {
        /// The token.
        #[command(flatten)]
        token: Pkcs11Args,
        /// Label of the new objects (CKA_LABEL).
        #[arg(long)]
        label: String,
        /// Curve of an EC key pair.
        #[arg(long, value_enum, required_unless_present = "aes")]
        curve: Option<HsmCurve>,
        /// An AES-256 key for the vault (then set --kek-file pkcs11:object=LABEL).
        #[arg(long, conflicts_with = "curve")]
        aes: bool,
    },
    /// Re-wrap the database's data-encryption keys under the AES key LABEL on the token
    /// (moving the vault from a key file to the HSM; no stored secret is re-sealed).
    Rewrap {
        /// Data location (its --kek-file is the current key).
        #[command(flatten)]
        data: DataArgs,
        /// The token.
        #[command(flatten)]
        token: Pkcs11Args,
        /// Label of the AES key on the token.
        #[arg(long)]
        label: String,
    },
}

/// Runs `smdpp keys hsm ...`.
pub async fn hsm_command(cmd: HsmCommand) -> Result<()> {
    match cmd {
        HsmCommand::Import { token, label, key } => {
            let pem = zeroize::Zeroizing::new(
                std::fs::read_to_string(&key)
                    .with_context(|| format!("reading {}", key.display()))?,
            );
            let token = token.open()?;
            let s = admin::import_pem(&token, &label, &pem)
                .with_context(|| format!("importing {}", key.display()))?;
            println!("imported {s}");
        }
        HsmCommand::List { token } => {
            let token = token.open()?;
            for s in admin::list(&token)? {
                println!("{s}");
            }
        }
        HsmCommand::Generate {
            token,
            label,
            curve,
            aes,
        } => {
            let token = token.open()?;
            let s = match (aes, curve) {
                (true, _) => admin::generate_aes(&token, &label)?,
                (false, Some(c)) => admin::generate_ec(&token, &label, c.into())?,
                (false, None) => bail!("give --curve nist|brainpool or --aes"),
            };
            println!("generated {s}");
        }
        HsmCommand::Rewrap { data, token, label } => {
            let token = token.open()?;
            let kek: Arc<dyn Kek> = Arc::new(HsmKek::open(token, &label)?);
            let (store, factory) = crate::factory_cli::open_all_with(&data, false).await?;
            let id = factory.rewrap(kek).await;
            store.close().await;
            let id = id?;
            println!(
                "data-encryption keys re-wrapped under key-encryption key {id}; set --kek-file \
                 (SMDPP_KEK_FILE, kek_file) to pkcs11:object={label} before the next start"
            );
        }
    }
    Ok(())
}
