//! QR codes for Activation Codes (SGP.22 section 4.1: the QR form is `LPA:` followed by the
//! Activation Code, ISO/IEC 18004), rendered as SVG or PNG.
//!
//! Error correction level M (15 %) with a 4-module quiet zone, which phone cameras read well
//! at the sizes operators print. The content is always the `LPA:` form.

use crate::ActivationCode;
use qrcode::{EcLevel, QrCode};

/// Why a QR code could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QrError {
    /// The text does not fit in any QR version at level M.
    #[error("the activation code is too long for a QR code: {0}")]
    Encode(String),
    /// PNG encoding failed.
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

/// Pixels per module in the PNG rendering.
pub const PNG_MODULE_PX: usize = 8;
/// Quiet-zone width in modules (ISO/IEC 18004 asks for 4).
pub const QUIET_ZONE: usize = 4;

fn code_for(ac: &ActivationCode) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(ac.to_qr_string().as_bytes(), EcLevel::M)
        .map_err(|e| QrError::Encode(e.to_string()))
}

/// The QR code of `ac` as an SVG document.
pub fn svg(ac: &ActivationCode) -> Result<String, QrError> {
    let code = code_for(ac)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .module_dimensions(PNG_MODULE_PX as u32, PNG_MODULE_PX as u32)
        .build())
}

/// The dark/light module matrix with the quiet zone, row by row (`true` = dark).
pub fn modules(ac: &ActivationCode) -> Result<Vec<Vec<bool>>, QrError> {
    let code = code_for(ac)?;
    let width = code.width();
    let colors = code.to_colors();
    let full = width + 2 * QUIET_ZONE;
    let mut rows = vec![vec![false; full]; full];
    for (i, c) in colors.iter().enumerate() {
        let (y, x) = (i / width + QUIET_ZONE, i % width + QUIET_ZONE);
        if let Some(cell) = rows.get_mut(y).and_then(|r| r.get_mut(x)) {
            *cell = *c == qrcode::Color::Dark;
        }
    }
    Ok(rows)
}

/// The QR code of `ac` as a grayscale PNG image.
pub fn png(ac: &ActivationCode) -> Result<Vec<u8>, QrError> {
    let rows = modules(ac)?;
    let side = rows.len() * PNG_MODULE_PX;
    let mut pixels = Vec::with_capacity(side * side);
    for row in &rows {
        let line: Vec<u8> = row
            .iter()
            .flat_map(|&dark| std::iter::repeat_n(if dark { 0u8 } else { 255u8 }, PNG_MODULE_PX))
            .collect();
        for _ in 0..PNG_MODULE_PX {
            pixels.extend_from_slice(&line);
        }
    }
    let mut out = Vec::new();
    {
        let side = u32::try_from(side).map_err(|e| QrError::Png(e.to_string()))?;
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc
            .write_header()
            .map_err(|e| QrError::Png(e.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| QrError::Png(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ac() -> ActivationCode {
        ActivationCode::parse("1$SMDP.EXAMPLE.COM$04386-AGYFT-A74Y8-3F815$$1").expect("ac")
    }

    #[test]
    fn svg_is_an_svg_document() {
        let s = svg(&ac()).expect("svg");
        assert!(s.starts_with("<?xml") && s.contains("<svg"), "{}", &s[..60]);
    }

    #[test]
    fn png_decodes_to_the_module_matrix() {
        let bytes = png(&ac()).expect("png");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("frame");
        let rows = modules(&ac()).expect("modules");
        assert_eq!(info.width as usize, rows.len() * PNG_MODULE_PX);
        // Sample the centre pixel of every module.
        for (y, row) in rows.iter().enumerate() {
            for (x, &dark) in row.iter().enumerate() {
                let px = (y * PNG_MODULE_PX + PNG_MODULE_PX / 2) * info.width as usize
                    + x * PNG_MODULE_PX
                    + PNG_MODULE_PX / 2;
                assert_eq!(buf[px] == 0, dark, "module ({x},{y})");
            }
        }
        // Quiet zone is light, finder pattern corner is dark.
        assert!(!rows[0][0]);
        assert!(rows[QUIET_ZONE][QUIET_ZONE]);
    }

    #[test]
    fn qr_content_is_the_lpa_form() {
        // Version/size depends only on the content; the `LPA:` form is what gets encoded.
        let expected = QrCode::with_error_correction_level(
            b"LPA:1$SMDP.EXAMPLE.COM$04386-AGYFT-A74Y8-3F815$$1",
            EcLevel::M,
        )
        .expect("code");
        let rows = modules(&ac()).expect("modules");
        assert_eq!(rows.len(), expected.width() + 2 * QUIET_ZONE);
    }
}
