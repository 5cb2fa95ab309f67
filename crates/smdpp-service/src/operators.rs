//! Operators, the tenants of ES2+ (SGP.22 section 5.3): registering one with the client
//! certificate it authenticates with and its callback settings (`smdpp operators add`).

use anyhow::{Result, anyhow, bail};
use smdpp_store::{NewOperator, Store, StoreError};

use crate::es2::cert_fingerprint;

/// The subject of a certificate as `K=V, K=V`, or `None` if it does not parse.
pub fn subject_text(cert_der: &[u8]) -> Option<String> {
    rsp_pki::Certificate::from_der(cert_der)
        .ok()
        .and_then(|c| c.subject_attributes().ok())
        .map(|attrs| {
            attrs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
}

/// Registers an operator with the certificate in `cert_pem` (a PEM file); returns the
/// certificate fingerprint. Callbacks are trusted through the system's roots; see
/// [`add_operator_with_ca`].
pub async fn add_operator(
    store: &Store,
    id: &str,
    cert_der: &[u8],
    callback_url: Option<String>,
) -> Result<String> {
    add_operator_with_ca(store, id, cert_der, callback_url, None).await
}

/// [`add_operator`] with `callback_ca`, the PEM bundle of the CAs trusted for the callback
/// receiver instead of the system's roots. Refuses a callback URL that fails
/// [`crate::outbox::check_callback_url`] and a CA bundle that fails
/// [`crate::outbox::callback_roots`].
pub async fn add_operator_with_ca(
    store: &Store,
    id: &str,
    cert_der: &[u8],
    callback_url: Option<String>,
    callback_ca: Option<String>,
) -> Result<String> {
    if let Some(url) = &callback_url {
        crate::outbox::check_callback_url(url).map_err(|e| anyhow!("callback URL: {e}"))?;
    }
    if let Some(pem) = &callback_ca {
        crate::outbox::callback_roots(pem).map_err(|e| anyhow!("callback CA: {e}"))?;
    }
    let fp = cert_fingerprint(cert_der);
    match store
        .insert_operator(&NewOperator {
            id: id.to_owned(),
            cert_sha256: Some(fp.clone()),
            cert_subject: subject_text(cert_der),
            callback_url,
            callback_ca,
        })
        .await
    {
        Ok(_) => Ok(fp),
        Err(StoreError::Duplicate { key }) => {
            bail!("an operator with this {key} is already registered")
        }
        Err(e) => Err(e.into()),
    }
}
