//! `smdpp pki crl`: writes a CRL (SGP.22 section 4.6, Table 17) signed with a CI or EUM key,
//! for tests and for `smdpp serve --crl`.
//!
//! The output is PEM (`X509 CRL`), or DER when the file name ends in `.der`. Times are
//! RFC 3339; `--this-update`/`--next-update` in the past write an already-expired CRL (for
//! testing the stale-CRL policy).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use rsp_crypto::{KeyCustody, SoftwareKey};
use rsp_pki::{Certificate, CrlBuilder};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `smdpp pki crl`.
#[derive(Args, Debug)]
pub struct CrlArgs {
    /// The issuer's certificate (PEM or DER): a CI, or an EUM for an EUM CRL.
    #[arg(long)]
    pub issuer_cert: PathBuf,
    /// The issuer's private key (PKCS#8 PEM).
    #[arg(long)]
    pub issuer_key: PathBuf,
    /// Serial number to list as revoked, hex (`:` separators allowed); repeatable.
    #[arg(long = "revoke", value_name = "SERIAL")]
    pub revoke: Vec<String>,
    /// Certificate (PEM or DER) whose serial number to list as revoked; repeatable.
    #[arg(long = "revoke-cert", value_name = "FILE")]
    pub revoke_cert: Vec<PathBuf>,
    /// nextUpdate, days after thisUpdate (default 7); ignored with --next-update.
    #[arg(long, default_value_t = 7)]
    pub next_update_days: u32,
    /// thisUpdate, RFC 3339 (default now).
    #[arg(long, value_parser = parse_time)]
    pub this_update: Option<OffsetDateTime>,
    /// nextUpdate, RFC 3339 (overrides --next-update-days).
    #[arg(long, value_parser = parse_time)]
    pub next_update: Option<OffsetDateTime>,
    /// cRLNumber (default 0; SGP.22 section 4.6.1: incremented by one at each publication).
    #[arg(long, default_value_t = 0)]
    pub crl_number: u64,
    /// Output file: PEM, or DER when the name ends in `.der`.
    #[arg(long)]
    pub out: PathBuf,
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| format!("{text:?} is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)"))
}

/// A serial number in hex (`:` separators allowed), at most 20 octets (RFC 5280 4.1.2.2).
fn parse_serial(text: &str) -> Result<Vec<u8>> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    let digits = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits
    };
    let bytes = hex::decode(&digits)
        .ok()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| anyhow!("--revoke {text:?}: not a hexadecimal serial number"))?;
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    if bytes.len() - skip > 20 {
        bail!("--revoke {text:?}: longer than 20 octets");
    }
    Ok(bytes)
}

fn read_cert(path: &Path) -> Result<Certificate> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let cert = if bytes.starts_with(b"-----") {
        let text = String::from_utf8(bytes).context("PEM is not UTF-8")?;
        Certificate::from_pem_bundle(&text)?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("no certificate"))
    } else {
        Certificate::from_der(&bytes).map_err(anyhow::Error::new)
    };
    cert.with_context(|| format!("parsing {}", path.display()))
}

/// Runs `smdpp pki crl`.
pub fn run(a: CrlArgs) -> Result<()> {
    let issuer = read_cert(&a.issuer_cert)?;
    let key_text = std::fs::read_to_string(&a.issuer_key)
        .with_context(|| format!("reading {}", a.issuer_key.display()))?;
    let key = SoftwareKey::from_pem(&key_text)
        .with_context(|| format!("parsing {}", a.issuer_key.display()))?;
    if key.public_key() != issuer.public_key() {
        bail!(
            "{} is not the key of {}",
            a.issuer_key.display(),
            a.issuer_cert.display()
        );
    }
    let mut serials = Vec::new();
    for s in &a.revoke {
        serials.push(parse_serial(s)?);
    }
    for f in &a.revoke_cert {
        serials.push(read_cert(f)?.serial_number().to_vec());
    }
    let mut b = CrlBuilder::for_issuer(&issuer, time::Duration::days(a.next_update_days.into()))
        .with_context(|| format!("issuer {}", a.issuer_cert.display()))?;
    if let Some(t) = a.this_update {
        b.this_update = t;
        b.next_update = t + time::Duration::days(a.next_update_days.into());
    }
    if let Some(t) = a.next_update {
        b.next_update = t;
    }
    if b.next_update < b.this_update {
        bail!("--next-update is before --this-update");
    }
    b.crl_number = a.crl_number;
    for s in &serials {
        b.revoke(s);
    }
    let der = b.sign(&key).context("signing the CRL")?;
    let is_der = a.out.extension().is_some_and(|x| x == "der");
    let data = if is_der {
        der.clone()
    } else {
        rsp_pki::crl_to_pem(&der).into_bytes()
    };
    std::fs::write(&a.out, data).with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "CRL written to {} ({}, issuer {}, CRL number {}, {} revoked, nextUpdate {})",
        a.out.display(),
        if is_der { "DER" } else { "PEM" },
        issuer.common_name().unwrap_or_default(),
        a.crl_number,
        serials.len(),
        b.next_update
            .format(&Rfc3339)
            .unwrap_or_else(|_| b.next_update.to_string()),
    );
    Ok(())
}
