//! A driver for lpac's `stdio` APDU backend (`LPAC_APDU=stdio`): lpac writes one JSON line
//! per APDU operation on its stdout, `{"type":"apdu","payload":{"func":F,"param":P}}`, and
//! reads exactly one reply line on its stdin, `{"type":"apdu","payload":{"ecode":N[,"data":HEX]}}`.
//!
//! [`serve`] reads lpac's lines from a reader and writes the replies to a writer, driving an
//! [`ApduCard`]. Lines of other types (`progress`, `lpa`, `driver`, `http`) are lpac's own
//! output: they get no reply and are handed to a callback. A malformed line gets an error
//! reply (`ecode` -1) instead of stopping the loop. After every operation that changed the
//! eUICC state, the state is saved (when the eUICC has a file).

use std::io::{BufRead, Write};

use serde_json::{Value, json};

use crate::apdu::ApduCard;

fn reply(ecode: i64, data: Option<&[u8]>) -> Value {
    match data {
        Some(d) => json!({"type": "apdu", "payload": {"ecode": ecode, "data": hex::encode(d)}}),
        None => json!({"type": "apdu", "payload": {"ecode": ecode}}),
    }
}

/// Handle one line of lpac output. Returns the reply line (without newline) for APDU
/// requests, `None` for lpac's other output (and blank lines).
pub fn handle_line(card: &mut ApduCard, line: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let Ok(v) = serde_json::from_str::<Value>(line) else {
        return Some(reply(-1, None).to_string());
    };
    match v.get("type").and_then(Value::as_str) {
        Some("apdu") => {}
        Some(_) => return None,
        None => return Some(reply(-1, None).to_string()),
    }
    let payload = v.get("payload");
    let func = payload.and_then(|p| p.get("func")).and_then(Value::as_str);
    let param = payload.and_then(|p| p.get("param")).and_then(Value::as_str);
    let hex_param = param.and_then(|p| hex::decode(p.trim()).ok());
    let r = match func {
        Some("connect") => {
            card.reset();
            reply(0, None)
        }
        Some("disconnect") => reply(0, None),
        Some("logic_channel_open") => match hex_param.map(|aid| card.open_logical_channel(&aid)) {
            Some(Ok(ch)) => reply(i64::from(ch), None),
            _ => reply(-1, None),
        },
        Some("logic_channel_close") => {
            let ch = hex_param
                .as_deref()
                .and_then(|b| b.last().copied())
                .or_else(|| param.and_then(|p| p.trim().parse::<u8>().ok()));
            match ch.map(|c| card.close_logical_channel(c)) {
                Some(Ok(())) => reply(0, None),
                _ => reply(-1, None),
            }
        }
        Some("transmit") => match hex_param {
            Some(apdu) => {
                let rapdu = card.transmit(&apdu);
                match card.euicc_mut().save_if_dirty() {
                    Ok(()) => reply(0, Some(&rapdu)),
                    Err(e) => {
                        eprintln!("euicc-sim: saving the eUICC state failed: {e}");
                        reply(-1, None)
                    }
                }
            }
            None => reply(-1, None),
        },
        _ => reply(-1, None),
    };
    Some(r.to_string())
}

/// Serve lpac's stdio APDU protocol until `input` ends. `other` receives every non-APDU
/// line lpac printed (parsed JSON, or the raw text if it was not JSON).
pub fn serve<R: BufRead, W: Write>(
    card: &mut ApduCard,
    input: R,
    mut output: W,
    mut other: impl FnMut(&str),
) -> std::io::Result<()> {
    for line in input.lines() {
        let line = line?;
        match handle_line(card, &line) {
            Some(r) => {
                output.write_all(r.as_bytes())?;
                output.write_all(b"\n")?;
                output.flush()?;
            }
            None => {
                if !line.trim().is_empty() {
                    other(&line);
                }
            }
        }
    }
    card.euicc_mut()
        .save_if_dirty()
        .map_err(|e| std::io::Error::other(e.to_string()))
}
