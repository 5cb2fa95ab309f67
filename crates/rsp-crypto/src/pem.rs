//! Minimal PEM (RFC 7468) reading and writing for key files.

use crate::error::CryptoError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// One PEM block: its label and decoded contents (zeroized on drop: they may hold a key).
pub(crate) struct Block {
    pub label: String,
    pub der: Zeroizing<Vec<u8>>,
}

/// All blocks of a PEM document, in order. Text outside blocks is ignored (RFC 7468
/// explanatory text); a BEGIN without its matching END is an error.
pub(crate) fn parse(text: &str) -> Result<Vec<Block>, CryptoError> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = Zeroizing::new(String::new());
        let mut closed = false;
        for l in lines.by_ref() {
            if l == end {
                closed = true;
                break;
            }
            if l.starts_with("-----") {
                return Err(CryptoError::Pem("unexpected boundary inside block"));
            }
            body.push_str(l);
        }
        if !closed {
            return Err(CryptoError::Pem("missing END line"));
        }
        let der = Zeroizing::new(
            STANDARD
                .decode(body.as_bytes())
                .map_err(|_| CryptoError::Pem("invalid base64"))?,
        );
        blocks.push(Block {
            label: label.to_owned(),
            der,
        });
    }
    if blocks.is_empty() {
        return Err(CryptoError::Pem("no PEM block found"));
    }
    Ok(blocks)
}

/// Encode one PEM block with 64-character lines.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = Zeroizing::new(STANDARD.encode(der));
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}
