//! The inventory a run downloads: M distinct UPPs imported through the server's own import
//! path ([`smdpp_service::inventory::add_profile`], what `smdpp profiles add --upp` calls), each a
//! Released order with a fresh MatchingID.
//!
//! Every profile is a copy of one template (the demo UPP of
//! [`smdpp_service::upp::demo_upp`], or a UPP file) with its own ICCID written into the
//! ProfileHeader. ICCIDs are in the test range `89999 8 RRRRRR NNNNNN L`: `RRRRRR` a random
//! run number (so repeated runs against one database do not collide), `NNNNNN` the profile's
//! index and `L` the Luhn check digit (19 digits in all).

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use smdpp_service::inventory::add_profile;
use smdpp_service::sidecar::Sidecar;
use smdpp_store::Store;

/// Most profiles one run can create (six index digits in the ICCID).
pub const MAX_DOWNLOADS: usize = 1_000_000;

/// Tag of the filler element that pads the demo UPP to `--profile-bytes`: a universal
/// OCTET STRING between the ProfileHeader and the End PE. Neither the SM-DP+ nor the virtual
/// eUICC looks inside the package beyond the header, so it only adds bytes to encrypt, MAC,
/// store and transfer, like the file contents of a real profile.
const FILLER_TAG: u8 = 0x04;

/// Appends the Luhn check digit to a string of decimal digits (`0` for a non-digit input).
pub fn with_luhn(digits: &str) -> String {
    format!(
        "{digits}{}",
        saip::personalize::luhn_digit(digits).unwrap_or(0)
    )
}

/// Whether `iccid` is all digits with a correct Luhn check digit.
pub fn luhn_ok(iccid: &str) -> bool {
    match iccid.len().checked_sub(1) {
        Some(n) if n > 0 && iccid.bytes().all(|b| b.is_ascii_digit()) => {
            with_luhn(&iccid[..n]) == iccid
        }
        _ => false,
    }
}

/// The ICCID of profile `index` of run `run` (`run` < 1,000,000, `index` < [`MAX_DOWNLOADS`]).
pub fn bench_iccid(run: u32, index: usize) -> String {
    with_luhn(&format!("899998{:06}{:06}", run % 1_000_000, index))
}

/// A random run number (0..1,000,000) from the system CSPRNG.
pub fn random_run_number() -> Result<u32> {
    let b = smdpp_service::upp::random_bytes::<4>().map_err(|e| anyhow!("{e}"))?;
    Ok(u32::from_be_bytes(b) % 1_000_000)
}

/// ICCID digits as the ProfileHeader carries them: plain BCD, high nibble first, `F`-padded.
fn iccid_bcd(iccid: &str) -> Result<[u8; 10]> {
    if !(iccid.len() == 19 || iccid.len() == 20) || !iccid.bytes().all(|b| b.is_ascii_digit()) {
        bail!("ICCID {iccid:?} is not 19 or 20 digits");
    }
    let mut nibbles: Vec<u8> = iccid.bytes().map(|b| b - b'0').collect();
    if nibbles.len() == 19 {
        nibbles.push(0x0F);
    }
    let mut out = [0u8; 10];
    for (o, p) in out.iter_mut().zip(nibbles.chunks(2)) {
        *o = (p[0] << 4) | p[1];
    }
    Ok(out)
}

/// One TLV header: (tag length, length-field length, value length).
fn tlv_header(b: &[u8]) -> Option<(usize, usize, usize)> {
    let first = *b.first()?;
    let mut t = 1;
    if first & 0x1F == 0x1F {
        while b.get(t)? & 0x80 != 0 {
            t += 1;
        }
        t += 1;
    }
    let l0 = *b.get(t)?;
    if l0 < 0x80 {
        return Some((t, 1, usize::from(l0)));
    }
    let n = usize::from(l0 & 0x7F);
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | usize::from(*b.get(t + 1 + i)?);
    }
    Some((t, 1 + n, len))
}

/// A UPP template: bytes plus where the 10 ICCID bytes of the ProfileHeader are.
#[derive(Clone, Debug)]
pub struct UppTemplate {
    bytes: Vec<u8>,
    iccid_at: usize,
}

impl UppTemplate {
    /// A template from a UPP (SAIP DER) whose first element is a ProfileHeader (`A0`) with a
    /// 10-byte `iccid [3]`.
    pub fn from_upp(bytes: Vec<u8>) -> Result<UppTemplate> {
        let bad = |why: &str| anyhow!("UPP template: {why}");
        let (t, l, len) = tlv_header(&bytes).ok_or_else(|| bad("not a TLV"))?;
        if bytes[0] != 0xA0 {
            return Err(bad("the first element is not a ProfileHeader (A0)"));
        }
        let start = t + l;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| bad("the ProfileHeader overruns the package"))?;
        let mut at = start;
        while at < end {
            let (t, l, len) = tlv_header(&bytes[at..end]).ok_or_else(|| bad("bad header TLV"))?;
            if bytes[at] == 0x83 {
                if len != 10 {
                    return Err(bad("the ProfileHeader iccid is not 10 bytes"));
                }
                return Ok(UppTemplate {
                    iccid_at: at + t + l,
                    bytes,
                });
            }
            at = at + t + l + len;
        }
        Err(bad("the ProfileHeader has no iccid [3]"))
    }

    /// The demo UPP (ProfileHeader + End PE) padded with one filler element to about
    /// `profile_bytes` bytes (no padding when it is already larger).
    pub fn demo(profile_bytes: usize) -> Result<UppTemplate> {
        let base = smdpp_service::upp::demo_upp(&bench_iccid(0, 0))
            .ok_or_else(|| anyhow!("demo UPP refused the bench ICCID"))?;
        let (t, l, len) = tlv_header(&base).ok_or_else(|| anyhow!("demo UPP is not a TLV"))?;
        let header_end = t + l + len;
        let mut out = base[..header_end].to_vec();
        // Filler: tag, 4-byte long-form length, zero-valued contents.
        let overhead = 1 + 5;
        if let Some(fill) = profile_bytes
            .checked_sub(base.len() + overhead)
            .filter(|&f| f > 0)
        {
            let n = u32::try_from(fill).context("--profile-bytes is too large")?;
            out.push(FILLER_TAG);
            out.push(0x84);
            out.extend_from_slice(&n.to_be_bytes());
            out.resize(out.len() + fill, 0x5A);
        }
        out.extend_from_slice(&base[header_end..]);
        UppTemplate::from_upp(out)
    }

    /// A template read from a UPP file.
    pub fn from_file(path: &Path) -> Result<UppTemplate> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        UppTemplate::from_upp(bytes).with_context(|| path.display().to_string())
    }

    /// The package size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the package is empty (never, for a parsed template).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// A copy with `iccid` in the ProfileHeader.
    pub fn with_iccid(&self, iccid: &str) -> Result<Vec<u8>> {
        let bcd = iccid_bcd(iccid)?;
        let mut out = self.bytes.clone();
        out[self.iccid_at..self.iccid_at + 10].copy_from_slice(&bcd);
        Ok(out)
    }
}

/// The server's database, opened the way `smdpp profiles add` opens it.
pub struct Inventory {
    store: Store,
    sidecar: Sidecar,
    factory: std::sync::Arc<smdpp_service::factory::Factory>,
}

impl std::fmt::Debug for Inventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inventory").finish_non_exhaustive()
    }
}

/// The SQLite file of a `sqlite:` URL, if it names one.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then_some(path)
}

impl Inventory {
    /// Opens the server's database. A SQLite file must already exist (the server creates it
    /// on its first start): the bench never creates an empty database in the wrong place.
    pub async fn open(database_url: &str, kek_file: &Path) -> Result<Inventory> {
        if let Some(file) = sqlite_file(database_url)
            && !Path::new(file).exists()
        {
            bail!(
                "no server database at {file}: start `smdpp serve` first, and give the bench \
                 the server's --data-dir (or --database-url)"
            );
        }
        let store = Store::connect(database_url)
            .await
            .context("opening the server's database")?;
        let sidecar = Sidecar::new(store.clone());
        // The server's key file: the imported packages are sealed at rest like the server's.
        let factory = smdpp_service::assembly::open_factory(&store, kek_file).await?;
        Ok(Inventory {
            store,
            sidecar,
            factory,
        })
    }

    /// Imports `count` profiles (copies of `template`, ICCIDs of run `run`) and returns their
    /// MatchingIDs in order.
    pub async fn import(
        &self,
        template: &UppTemplate,
        run: u32,
        count: usize,
    ) -> Result<Vec<String>> {
        if count > MAX_DOWNLOADS {
            bail!("at most {MAX_DOWNLOADS} downloads per run");
        }
        let mut ids = Vec::with_capacity(count);
        for i in 0..count {
            let iccid = bench_iccid(run, i);
            let upp = template.with_iccid(&iccid)?;
            let (mid, _) = add_profile(
                &self.store,
                &self.sidecar,
                &self.factory,
                &upp,
                None,
                None,
                "smdpp bench",
                Some(format!("bench {iccid}")),
            )
            .await
            .with_context(|| format!("importing profile {iccid}"))?;
            ids.push(mid);
        }
        Ok(ids)
    }

    /// Closes the database pools.
    pub async fn close(self) {
        self.sidecar.close().await;
        self.store.close().await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use smdpp_service::upp::iccid_from_upp;

    #[test]
    fn iccids_are_distinct_with_valid_luhn() {
        let a = bench_iccid(123_456, 0);
        let b = bench_iccid(123_456, 1);
        assert_ne!(a, b);
        assert_eq!(a.len(), 19);
        assert!(luhn_ok(&a) && luhn_ok(&b));
        assert!(a.starts_with("899998123456000000"));
        assert_eq!(with_luhn("7992739871"), "79927398713");
    }

    #[test]
    fn demo_template_is_padded_and_carries_each_iccid() {
        let t = UppTemplate::demo(20 * 1024).unwrap();
        assert!(
            (20 * 1024 - 8..=20 * 1024 + 8).contains(&t.len()),
            "{}",
            t.len()
        );
        let iccid = bench_iccid(42, 7);
        let upp = t.with_iccid(&iccid).unwrap();
        assert_eq!(iccid_from_upp(&upp).unwrap(), iccid);
        // Ends with the End PE.
        assert!(upp.ends_with(&[0xAA, 0x05, 0xA0, 0x03, 0x81, 0x01, 0x01]));
        let small = UppTemplate::demo(0).unwrap();
        assert!(small.len() < 100);
    }

    #[test]
    fn ts48_template_when_present() {
        let path = Path::new("/work/shared/profiles/ts48/TS48v2_SAIP2.3_NoBERTLV.der");
        if path.exists() {
            let t = UppTemplate::from_file(path).unwrap();
            let iccid = bench_iccid(1, 2);
            assert_eq!(
                iccid_from_upp(&t.with_iccid(&iccid).unwrap()).unwrap(),
                iccid
            );
        }
    }

    #[test]
    fn rejects_a_template_without_header() {
        assert!(UppTemplate::from_upp(vec![0x30, 0x00]).is_err());
        assert!(UppTemplate::from_upp(vec![0xA0, 0x03, 0x80, 0x01, 0x02]).is_err());
        assert!(UppTemplate::from_upp(vec![0xA0, 0x7F]).is_err());
        assert!(UppTemplate::from_upp(Vec::new()).is_err());
    }

    #[test]
    fn sqlite_file_of_urls() {
        assert_eq!(sqlite_file("sqlite:///tmp/x.db?mode=rw"), Some("/tmp/x.db"));
        assert_eq!(sqlite_file("sqlite:x.db"), Some("x.db"));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://h/db"), None);
    }
}
