//! Delivery of `core-network` outbox rows: the subscriber of a profile is provisioned in (or
//! removed from) the operator's core network through a [`CoreNetwork`] connector (first
//! implementation: [`OsmoHlr`], Osmocom's HLR through its CTRL interface), at the signal its profile type names (see `smdpp_store`'s `operator` module).
//!
//! Each row carries the desired state of one subscriber (provision, delete or block), never
//! a secret: the Ki and OPc are opened from the sealed subscriber record at delivery time and
//! dropped (zeroized) after the call. A row for which a newer `core-network` row of the same
//! profile exists is superseded (the newer one holds the newer desired state) and is marked
//! delivered without a call, so a provisioning retried after the HLR came back can never undo
//! a later deactivation. The connector's calls are idempotent, so a retry after a lost answer
//! is harmless. Retries: `CoreError::Unavailable` (HLR down, time-out) is
//! retried with the outbox's back-off; a refusal (e.g. the IMSI exists in the HLR with other
//! keys) fails the row at once with the HLR's reason in `last_error`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use anyhow::anyhow;
use smdpp_store::{CoreAction, OutboxKind, OutboxRow, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use crate::factory::Factory;
use crate::outbox::PermanentError;

fn permanent(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(PermanentError(msg.into()))
}

/// Delivers one `core-network` row (see the module documentation).
pub(crate) async fn deliver(
    store: &Store,
    factory: Option<&Factory>,
    row: &OutboxRow,
    timeout: Duration,
) -> anyhow::Result<()> {
    let action = CoreAction::from_json(&row.body).map_err(|e| permanent(e.to_string()))?;
    if store
        .newer_outbox_row(OutboxKind::CoreNetwork, &action.iccid, row.seq)
        .await?
    {
        tracing::info!(id = %row.id, iccid = %action.iccid, "core-network call superseded by a newer one");
        return Ok(());
    }
    let name = row
        .target
        .as_deref()
        .ok_or_else(|| permanent("core-network row without a target"))?;
    let Some(cn) = store.get_core_network(name).await? else {
        return Err(permanent(format!(
            "core network {name:?} is not registered"
        )));
    };
    let connector: Box<dyn CoreNetwork> = match cn.kind.as_str() {
        "osmo-hlr" => Box::new(OsmoHlr::new(&cn.address, timeout)),
        other => return Err(permanent(format!("unknown core network kind {other:?}"))),
    };
    let result = match action.action.as_str() {
        "provision" => {
            let Some(factory) = factory else {
                return Err(anyhow!(
                    "no profile factory: subscriber secrets cannot be opened"
                ));
            };
            let Some(sealed) = store.get_sealed_secrets(&action.iccid).await? else {
                return Err(permanent(format!(
                    "profile {} has no subscriber data to provision",
                    action.iccid
                )));
            };
            if sealed.imsi != action.imsi {
                return Err(permanent(
                    "the profile's IMSI changed since the call was queued",
                ));
            }
            let secrets = factory.open_secrets(&sealed).await?;
            let ki = Zeroizing::new(secrets.ki.expose().to_ascii_uppercase());
            let (kind, key) = match &secrets.operator_key {
                saip::OperatorKey::Opc(k) => {
                    ("OPC", Zeroizing::new(k.expose().to_ascii_uppercase()))
                }
                saip::OperatorKey::Op(k) => ("OP", Zeroizing::new(k.expose().to_ascii_uppercase())),
            };
            connector
                .provision(&Subscriber {
                    imsi: &action.imsi,
                    ki: &ki,
                    key_kind: kind,
                    key: &key,
                })
                .await
        }
        "delete" => connector.deprovision(&action.imsi, false).await,
        "block" => connector.deprovision(&action.imsi, true).await,
        other => return Err(permanent(format!("unknown core-network action {other:?}"))),
    };
    match result {
        Ok(what) => {
            tracing::info!(id = %row.id, iccid = %action.iccid, network = %cn.name, outcome = what, "core network updated");
            Ok(())
        }
        Err(CoreError::Unavailable(m)) => Err(anyhow!("core network {}: {m}", cn.name)),
        Err(CoreError::Refused(m)) => {
            Err(permanent(format!("core network {} refused: {m}", cn.name)))
        }
    }
}

/// A subscriber to provision: hex Ki and OPc (or OP), upper case. Never logged.
pub struct Subscriber<'a> {
    /// The IMSI.
    pub imsi: &'a str,
    /// Ki (32 hex digits).
    pub ki: &'a str,
    /// `OPC` or `OP`.
    pub key_kind: &'static str,
    /// OPc or OP (32 hex digits).
    pub key: &'a str,
}

/// Why a connector call failed.
#[derive(Debug)]
pub enum CoreError {
    /// The core cannot be reached or did not answer: retry later.
    Unavailable(String),
    /// The core refused (e.g. the IMSI exists there with other keys): retrying cannot help.
    Refused(String),
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, CoreError>> + Send + 'a>>;

/// A core network connector. Each call is one attempt and idempotent (the outbox retries).
pub trait CoreNetwork: Send + Sync {
    /// Creates the subscriber (or finds it with the same keys) and enables it.
    fn provision<'a>(&'a self, s: &'a Subscriber<'a>) -> BoxFut<'a, &'static str>;
    /// Deletes the subscriber (`block`: keeps it, with CS/PS disabled and no
    /// authentication data). An absent subscriber is not an error.
    fn deprovision<'a>(&'a self, imsi: &'a str, block: bool) -> BoxFut<'a, &'static str>;
}

/// osmo-hlr's CTRL interface (IPA-framed text commands on TCP, default port 4259; the
/// variables `subscriber.create`, `subscriber.delete`, `subscriber.by-imsi-<IMSI>.aud3g`,
/// `.cs-enabled`, `.ps-enabled` of osmo-hlr 1.5). osmo-hlr 1.5 cannot set the SQN over CTRL:
/// a new subscriber starts at SQN 0, as a freshly installed profile does.
pub struct OsmoHlr {
    address: String,
    timeout: Duration,
}

impl OsmoHlr {
    /// A connector for the CTRL interface at `address` (`host:port`).
    pub fn new(address: &str, timeout: Duration) -> OsmoHlr {
        OsmoHlr {
            address: address.to_owned(),
            timeout,
        }
    }

    async fn session(&self) -> Result<CtrlSession, CoreError> {
        let s = tokio::time::timeout(self.timeout, TcpStream::connect(&self.address))
            .await
            .map_err(|_| CoreError::Unavailable("connect: time-out".into()))?
            .map_err(|e| CoreError::Unavailable(format!("connect: {e}")))?;
        Ok(CtrlSession {
            stream: s,
            next_id: 1,
            timeout: self.timeout,
        })
    }
}

/// IPA protocol byte of Osmocom extensions, and the CTRL extension.
const IPA_OSMO: u8 = 0xEE;
const IPA_EXT_CTRL: u8 = 0x00;
const IPA_CCM: u8 = 0xFE;

struct CtrlSession {
    stream: TcpStream,
    next_id: u32,
    timeout: Duration,
}

/// A CTRL answer: `Ok(value)` or `Err(reason)` (an `ERROR` reply).
type CtrlReply = Result<String, String>;

impl CtrlSession {
    async fn call(
        &mut self,
        verb: &str,
        var: &str,
        value: Option<&str>,
    ) -> Result<CtrlReply, CoreError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut text = format!("{verb} {id} {var}");
        if let Some(v) = value {
            text.push(' ');
            text.push_str(v);
        }
        let text = Zeroizing::new(text);
        let len = u16::try_from(text.len() + 1)
            .map_err(|_| CoreError::Refused("CTRL command too long".into()))?;
        let mut frame = Zeroizing::new(Vec::with_capacity(text.len() + 4));
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&[IPA_OSMO, IPA_EXT_CTRL]);
        frame.extend_from_slice(text.as_bytes());
        let io = |e: std::io::Error| CoreError::Unavailable(format!("CTRL: {e}"));
        tokio::time::timeout(self.timeout, self.stream.write_all(&frame))
            .await
            .map_err(|_| CoreError::Unavailable("CTRL write time-out".into()))?
            .map_err(io)?;
        loop {
            let mut head = [0u8; 3];
            tokio::time::timeout(self.timeout, self.stream.read_exact(&mut head))
                .await
                .map_err(|_| CoreError::Unavailable("CTRL answer time-out".into()))?
                .map_err(io)?;
            let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
            let mut body = vec![0u8; len];
            tokio::time::timeout(self.timeout, self.stream.read_exact(&mut body))
                .await
                .map_err(|_| CoreError::Unavailable("CTRL answer time-out".into()))?
                .map_err(io)?;
            if head[2] == IPA_CCM {
                if body.first() == Some(&0x00) {
                    // PING -> PONG.
                    let _ = self.stream.write_all(&[0, 1, IPA_CCM, 0x01]).await;
                }
                continue;
            }
            if head[2] != IPA_OSMO || body.first() != Some(&IPA_EXT_CTRL) {
                continue;
            }
            let text = String::from_utf8_lossy(&body[1..]).into_owned();
            let mut parts = text.splitn(3, ' ');
            let kind = parts.next().unwrap_or_default();
            let rid = parts.next().unwrap_or_default();
            let rest = parts.next().unwrap_or_default();
            if rid != id.to_string() {
                continue; // a TRAP or an answer to something else
            }
            return match kind {
                "ERROR" => Ok(Err(rest.to_owned())),
                "GET_REPLY" | "SET_REPLY" => {
                    let value = rest.split_once(' ').map_or("", |(_, v)| v);
                    Ok(Ok(value.to_owned()))
                }
                _ => Err(CoreError::Unavailable(format!(
                    "CTRL: unexpected answer {kind:?}"
                ))),
            };
        }
    }

    async fn set(&mut self, var: &str, value: &str) -> Result<CtrlReply, CoreError> {
        self.call("SET", var, Some(value)).await
    }

    async fn set_ok(&mut self, var: &str, value: &str) -> Result<(), CoreError> {
        match self.set(var, value).await? {
            Ok(_) => Ok(()),
            Err(reason) => Err(CoreError::Refused(format!("SET {var}: {reason}"))),
        }
    }
}

fn imsi_ok(imsi: &str) -> Result<(), CoreError> {
    if (6..=15).contains(&imsi.len()) && imsi.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(CoreError::Refused("invalid IMSI".into()))
    }
}

impl CoreNetwork for OsmoHlr {
    fn provision<'a>(&'a self, s: &'a Subscriber<'a>) -> BoxFut<'a, &'static str> {
        Box::pin(async move {
            imsi_ok(s.imsi)?;
            let mut c = self.session().await?;
            let sel = format!("subscriber.by-imsi-{}", s.imsi);
            let want = Zeroizing::new(format!("milenage,{},{},{}", s.ki, s.key_kind, s.key));
            let outcome = match c.set("subscriber.create", s.imsi).await? {
                Ok(_) => "created",
                Err(reason) if reason.contains("already exists") => {
                    // Ours from an earlier attempt (same keys), or someone else's.
                    let have = match c.call("GET", &format!("{sel}.aud3g"), None).await? {
                        Ok(v) => Zeroizing::new(v),
                        Err(r) => return Err(CoreError::Refused(format!("GET aud3g: {r}"))),
                    };
                    let same = have
                        .to_ascii_uppercase()
                        .starts_with(&want.to_ascii_uppercase());
                    let none = have.trim() == "none";
                    if !same && !none {
                        return Err(CoreError::Refused(format!(
                            "IMSI {} already exists in the HLR with other authentication data",
                            s.imsi
                        )));
                    }
                    if same {
                        // Never rewrite the same keys: osmo-hlr's aud3g SET replaces the row
                        // and resets its SQN, which the card has moved past.
                        c.set_ok(&format!("{sel}.cs-enabled"), "1").await?;
                        c.set_ok(&format!("{sel}.ps-enabled"), "1").await?;
                        return Ok("already present");
                    }
                    "completed"
                }
                Err(reason) => return Err(CoreError::Refused(format!("create: {reason}"))),
            };
            c.set_ok(&format!("{sel}.aud3g"), &want).await?;
            c.set_ok(&format!("{sel}.cs-enabled"), "1").await?;
            c.set_ok(&format!("{sel}.ps-enabled"), "1").await?;
            Ok(outcome)
        })
    }

    fn deprovision<'a>(&'a self, imsi: &'a str, block: bool) -> BoxFut<'a, &'static str> {
        Box::pin(async move {
            imsi_ok(imsi)?;
            let mut c = self.session().await?;
            if !block {
                return match c.set("subscriber.delete", imsi).await? {
                    Ok(_) => Ok("deleted"),
                    Err(r) if r.contains("doesn't exist") => Ok("absent"),
                    Err(r) => Err(CoreError::Refused(format!("delete: {r}"))),
                };
            }
            let sel = format!("subscriber.by-imsi-{imsi}");
            match c.call("GET", &format!("{sel}.aud3g"), None).await? {
                Err(r) if r.contains("No such subscriber") => return Ok("absent"),
                Err(r) => return Err(CoreError::Refused(format!("aud3g: {r}"))),
                // Removing absent data is refused by osmo-hlr ("Update aud3g failed."): only
                // remove what is there, so a second block succeeds.
                Ok(v) if v.trim() == "none" => {}
                Ok(_) => c.set_ok(&format!("{sel}.aud3g"), "none").await?,
            }
            c.set_ok(&format!("{sel}.cs-enabled"), "0").await?;
            c.set_ok(&format!("{sel}.ps-enabled"), "0").await?;
            Ok("blocked")
        })
    }
}
