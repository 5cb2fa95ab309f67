//! The APDU face of the virtual eUICC (SGP.22 section 5.7.1-5.7.2, ISO/IEC 7816-4,
//! GlobalPlatform STORE DATA), covering exactly what lpac and a plain PC/SC LPA send:
//!
//! - `SELECT` by DF name (CLA `0X`, INS `A4`, P1 `04`) of the ISD-R AID;
//! - `MANAGE CHANNEL` open (P1 `00`, card-assigned or explicit channel) and close (P1 `80`);
//! - ES10 commands in `STORE DATA` (CLA `80`-`83` or `C0`-`CF`, INS `E2`, P1 `11` more blocks /
//!   `91` last block, P2 block number from 0, wrapping), Le optional;
//! - the segmented LoadBoundProfilePackage of section 2.5.5 (each segment its own STORE DATA
//!   chain; intermediate segments answered with a bare `9000`, the ProfileInstallationResult
//!   after the last one);
//! - responses over 256 bytes: the first 256 bytes with `61xx`, the rest by `GET RESPONSE`
//!   (INS `C0`, CLA `0X` or `8X`).
//!
//! Status words: `9000`, `61xx`, `6700` (wrong length), `6881` (channel not supported),
//! `6882` (secure messaging not supported), `6985`, `6A80`, `6A82` (AID not found), `6A86`
//! (incorrect P1/P2, including bad block order), `6A88`, `6D00` (INS), `6E00` (CLA).

use crate::error::Es10Error;
use crate::euicc::Euicc;
use crate::state::ISD_R_AID;

/// Status words used by the card.
pub mod sw {
    /// Success.
    pub const OK: u16 = 0x9000;
    /// Wrong length (Lc inconsistent with the APDU, extended length).
    pub const WRONG_LENGTH: u16 = 0x6700;
    /// Logical channel not supported / not open.
    pub const CHANNEL_NOT_SUPPORTED: u16 = 0x6881;
    /// Secure messaging not supported.
    pub const SM_NOT_SUPPORTED: u16 = 0x6882;
    /// Conditions of use not satisfied.
    pub const CONDITIONS: u16 = 0x6985;
    /// Incorrect values in the command data.
    pub const WRONG_DATA: u16 = 0x6A80;
    /// File or application not found.
    pub const NOT_FOUND: u16 = 0x6A82;
    /// Incorrect P1/P2.
    pub const WRONG_P1P2: u16 = 0x6A86;
    /// Reference data not found.
    pub const REF_NOT_FOUND: u16 = 0x6A88;
    /// Instruction not supported.
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    /// Class not supported.
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
}

/// Number of logical channels (0 = basic channel, 1..3).
pub const CHANNELS: usize = 4;

/// A parsed command APDU (short length only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command<'a> {
    /// Class byte.
    pub cla: u8,
    /// Instruction.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (empty when Lc is absent).
    pub data: &'a [u8],
    /// Le: `None` when absent; `Some(256)` for `00`.
    pub le: Option<usize>,
}

impl<'a> Command<'a> {
    /// Parse a short C-APDU (cases 1 to 4). Returns `6700` for inconsistent lengths.
    pub fn parse(apdu: &'a [u8]) -> Result<Command<'a>, u16> {
        let [cla, ins, p1, p2, rest @ ..] = apdu else {
            return Err(sw::WRONG_LENGTH);
        };
        let le_of = |b: u8| if b == 0 { 256 } else { usize::from(b) };
        let (data, le) = match rest {
            [] => (&[][..], None),
            [le] => (&[][..], Some(le_of(*le))),
            [0, ..] => return Err(sw::WRONG_LENGTH), // extended length: not supported
            [lc, body @ ..] => {
                let lc = usize::from(*lc);
                if body.len() == lc {
                    (body, None)
                } else if body.len() == lc + 1 {
                    (&body[..lc], body.get(lc).map(|b| le_of(*b)))
                } else {
                    return Err(sw::WRONG_LENGTH);
                }
            }
        };
        Ok(Command {
            cla: *cla,
            ins: *ins,
            p1: *p1,
            p2: *p2,
            data,
            le,
        })
    }
}

#[derive(Debug)]
struct Chain {
    channel: usize,
    next_block: u8,
    data: Vec<u8>,
}

#[derive(Debug)]
struct BppAssembly {
    expected_total: usize,
    data: Vec<u8>,
}

/// The virtual eUICC behind APDUs.
#[derive(Debug)]
pub struct ApduCard {
    euicc: Euicc,
    open: [bool; CHANNELS],
    isd_r_selected: [bool; CHANNELS],
    chain: Option<Chain>,
    pending: Option<(usize, Vec<u8>)>,
    bpp: Option<BppAssembly>,
}

fn with_sw(mut data: Vec<u8>, sw: u16) -> Vec<u8> {
    data.extend_from_slice(&sw.to_be_bytes());
    data
}

fn sw_only(sw: u16) -> Vec<u8> {
    sw.to_be_bytes().to_vec()
}

/// The logical channel of a CLA byte, or the status word refusing it.
fn channel_of(cla: u8) -> Result<usize, u16> {
    match cla {
        // First interindustry / GP proprietary: b1-b2 channel, b3-b4 secure messaging.
        0x00..=0x0F | 0x80..=0x8F => {
            if cla & 0x0C != 0 {
                Err(sw::SM_NOT_SUPPORTED)
            } else {
                Ok(usize::from(cla & 0x03))
            }
        }
        // Further interindustry: channels 4..19, not supported here.
        0x40..=0x7F | 0xC0..=0xFF => {
            let ch = 4 + usize::from(cla & 0x0F);
            if ch < CHANNELS {
                Ok(ch)
            } else {
                Err(sw::CHANNEL_NOT_SUPPORTED)
            }
        }
        _ => Err(sw::CLA_NOT_SUPPORTED),
    }
}

impl ApduCard {
    /// Wrap an eUICC. Only the basic channel is open; the ISD-R is not selected anywhere.
    pub fn new(euicc: Euicc) -> ApduCard {
        ApduCard {
            euicc,
            open: [true, false, false, false],
            isd_r_selected: [false; CHANNELS],
            chain: None,
            pending: None,
            bpp: None,
        }
    }

    /// The eUICC.
    pub fn euicc(&self) -> &Euicc {
        &self.euicc
    }

    /// The eUICC, mutably (e.g. to save its state).
    pub fn euicc_mut(&mut self) -> &mut Euicc {
        &mut self.euicc
    }

    /// Unwrap.
    pub fn into_euicc(self) -> Euicc {
        self.euicc
    }

    /// Card reset (power cycle): closes logical channels, drops partial commands and the RSP
    /// session.
    pub fn reset(&mut self) {
        self.open = [true, false, false, false];
        self.isd_r_selected = [false; CHANNELS];
        self.chain = None;
        self.pending = None;
        self.bpp = None;
        self.euicc.reset();
    }

    /// What lpac's `logic_channel_open` does: MANAGE CHANNEL open + SELECT `aid` on it.
    /// Returns the channel number (1..3).
    pub fn open_logical_channel(&mut self, aid: &[u8]) -> Result<u8, u16> {
        if aid != ISD_R_AID {
            return Err(sw::NOT_FOUND);
        }
        let ch = (1..CHANNELS)
            .find(|c| !self.open[*c])
            .ok_or(sw::CHANNEL_NOT_SUPPORTED)?;
        self.open[ch] = true;
        self.isd_r_selected[ch] = true;
        u8::try_from(ch).map_err(|_| sw::CHANNEL_NOT_SUPPORTED)
    }

    /// What lpac's `logic_channel_close` does.
    pub fn close_logical_channel(&mut self, channel: u8) -> Result<(), u16> {
        let ch = usize::from(channel);
        if ch == 0 || ch >= CHANNELS || !self.open[ch] {
            return Err(sw::CHANNEL_NOT_SUPPORTED);
        }
        self.close(ch);
        Ok(())
    }

    fn close(&mut self, ch: usize) {
        self.open[ch] = false;
        self.isd_r_selected[ch] = false;
        if self.chain.as_ref().is_some_and(|c| c.channel == ch) {
            self.chain = None;
        }
        if self.pending.as_ref().is_some_and(|p| p.0 == ch) {
            self.pending = None;
        }
    }

    /// Process one C-APDU; returns the R-APDU (data followed by SW1 SW2).
    pub fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        let cmd = match Command::parse(apdu) {
            Ok(c) => c,
            Err(sw) => return sw_only(sw),
        };
        let ch = match channel_of(cmd.cla) {
            Ok(c) => c,
            Err(sw) => return sw_only(sw),
        };
        if !self.open[ch] {
            return sw_only(sw::CHANNEL_NOT_SUPPORTED);
        }
        if cmd.ins != 0xC0 {
            // Any other command discards response data not yet fetched.
            self.pending = None;
        }
        if cmd.ins != 0xE2 {
            self.chain = None;
        }
        match cmd.ins {
            0xA4 => self.select(ch, &cmd),
            0x70 => self.manage_channel(ch, &cmd),
            0xC0 => self.get_response(ch, &cmd),
            0xE2 => self.store_data(ch, &cmd),
            _ => sw_only(sw::INS_NOT_SUPPORTED),
        }
    }

    fn select(&mut self, ch: usize, cmd: &Command<'_>) -> Vec<u8> {
        if cmd.cla & 0x80 != 0 {
            return sw_only(sw::CLA_NOT_SUPPORTED);
        }
        if cmd.p1 != 0x04 || !matches!(cmd.p2, 0x00 | 0x0C) {
            return sw_only(sw::WRONG_P1P2);
        }
        if cmd.data.is_empty() || cmd.data.len() > 16 || !ISD_R_AID.starts_with(cmd.data) {
            self.isd_r_selected[ch] = false;
            return sw_only(sw::NOT_FOUND);
        }
        self.isd_r_selected[ch] = true;
        if cmd.p2 == 0x0C {
            return sw_only(sw::OK);
        }
        // FCI: 6F { 84 AID, A5 { 9F65 01 FF } }
        let mut inner = vec![0x84, 0x10];
        inner.extend_from_slice(&ISD_R_AID);
        inner.extend_from_slice(&[0xA5, 0x04, 0x9F, 0x65, 0x01, 0xFF]);
        let mut fci = vec![0x6F, 0x18];
        fci.extend_from_slice(&inner);
        with_sw(fci, sw::OK)
    }

    fn manage_channel(&mut self, ch: usize, cmd: &Command<'_>) -> Vec<u8> {
        if cmd.cla & 0x80 != 0 {
            return sw_only(sw::CLA_NOT_SUPPORTED);
        }
        match cmd.p1 {
            0x00 => {
                let target = if cmd.p2 == 0 {
                    match (1..CHANNELS).find(|c| !self.open[*c]) {
                        Some(c) => c,
                        None => return sw_only(sw::CHANNEL_NOT_SUPPORTED),
                    }
                } else {
                    let c = usize::from(cmd.p2);
                    if c >= CHANNELS || self.open[c] {
                        return sw_only(sw::CHANNEL_NOT_SUPPORTED);
                    }
                    c
                };
                self.open[target] = true;
                self.isd_r_selected[target] = false;
                if cmd.p2 == 0 {
                    // Only values 1..3: the cast cannot truncate.
                    with_sw(vec![target as u8], sw::OK)
                } else {
                    sw_only(sw::OK)
                }
            }
            0x80 => {
                let target = if cmd.p2 == 0 { ch } else { usize::from(cmd.p2) };
                if target == 0 || target >= CHANNELS || !self.open[target] {
                    return sw_only(sw::CHANNEL_NOT_SUPPORTED);
                }
                self.close(target);
                sw_only(sw::OK)
            }
            _ => sw_only(sw::WRONG_P1P2),
        }
    }

    fn get_response(&mut self, ch: usize, cmd: &Command<'_>) -> Vec<u8> {
        if !matches!(cmd.cla & 0xF0, 0x00 | 0x80) {
            return sw_only(sw::CLA_NOT_SUPPORTED);
        }
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return sw_only(sw::WRONG_P1P2);
        }
        match self.pending.take() {
            Some((pch, data)) if pch == ch => self.respond(ch, data, cmd.le),
            other => {
                self.pending = other;
                sw_only(sw::CONDITIONS)
            }
        }
    }

    /// Return up to `le` (default 256) bytes; keep the rest for GET RESPONSE.
    fn respond(&mut self, ch: usize, mut data: Vec<u8>, le: Option<usize>) -> Vec<u8> {
        let max = le.unwrap_or(256).min(256);
        if data.len() <= max {
            return with_sw(data, sw::OK);
        }
        let rest = data.split_off(max);
        let avail = u16::try_from(rest.len().min(256) & 0xFF).unwrap_or(0);
        self.pending = Some((ch, rest));
        with_sw(data, 0x6100 | avail)
    }

    fn store_data(&mut self, ch: usize, cmd: &Command<'_>) -> Vec<u8> {
        if !matches!(cmd.cla, 0x80..=0x83 | 0xC0..=0xCF) {
            self.chain = None;
            return sw_only(sw::CLA_NOT_SUPPORTED);
        }
        if !self.isd_r_selected[ch] {
            self.chain = None;
            return sw_only(sw::CONDITIONS);
        }
        if !matches!(cmd.p1, 0x11 | 0x91) {
            self.chain = None;
            return sw_only(sw::WRONG_P1P2);
        }
        let expected = match &self.chain {
            Some(c) if c.channel == ch => c.next_block,
            _ => 0,
        };
        if cmd.p2 != expected {
            self.chain = None;
            return sw_only(sw::WRONG_P1P2);
        }
        let mut chain = match self.chain.take() {
            Some(c) if c.channel == ch => c,
            _ => Chain {
                channel: ch,
                next_block: 0,
                data: Vec::new(),
            },
        };
        chain.data.extend_from_slice(cmd.data);
        chain.next_block = chain.next_block.wrapping_add(1);
        if cmd.p1 == 0x11 {
            self.chain = Some(chain);
            return sw_only(sw::OK);
        }
        let response = self.es10(&chain.data);
        match response {
            Ok(data) => self.respond(ch, data, cmd.le),
            Err(e) => sw_only(e.sw()),
        }
    }

    /// One complete ES10 command (after STORE DATA reassembly), including the segmented BPP.
    fn es10(&mut self, data: &[u8]) -> Result<Vec<u8>, Es10Error> {
        let header = crate::util::tlv_header(data);
        if let Some((0xBF36, hlen, vlen)) = header {
            // First segment of a BPP: BF36 header + InitialiseSecureChannel.
            self.bpp = None;
            if !self.euicc.ready_for_bpp() {
                return Err(Es10Error::ConditionsNotSatisfied);
            }
            let total = hlen + vlen;
            if data.len() > total {
                return Err(Es10Error::InvalidData);
            }
            self.bpp = Some(BppAssembly {
                expected_total: total,
                data: data.to_vec(),
            });
            return self.bpp_progress();
        }
        if self.bpp.is_some() && data.first().is_some_and(|b| *b != 0xBF) {
            let Some(asm) = self.bpp.as_mut() else {
                return Err(Es10Error::ConditionsNotSatisfied);
            };
            if asm.data.len() + data.len() > asm.expected_total {
                self.bpp = None;
                return Err(Es10Error::InvalidData);
            }
            asm.data.extend_from_slice(data);
            return self.bpp_progress();
        }
        self.bpp = None;
        if data.first().is_some_and(|b| *b != 0xBF) {
            // A BPP segment with no BPP in progress.
            return Err(Es10Error::UnknownCommand);
        }
        self.euicc.handle_es10(data)
    }

    fn bpp_progress(&mut self) -> Result<Vec<u8>, Es10Error> {
        let complete = self
            .bpp
            .as_ref()
            .is_some_and(|a| a.data.len() == a.expected_total);
        if !complete {
            return Ok(Vec::new());
        }
        let Some(asm) = self.bpp.take() else {
            return Ok(Vec::new());
        };
        self.euicc
            .load_bound_profile_package(&asm.data)
            .map(|pir| rsp_asn1::Codec::encode(&pir))
    }
}
