//! `smdpp operators ...` (ES2+ tenants) and `smdpp orders ...` (the ES2+ functions for
//! operators without an ES2+ client). Orders go through the same [`Es2Engine`] functions as
//! ES2+ over HTTPS; `--operator` selects the tenant. Every command takes the same
//! `--data-dir` / `--database-url` / `--config` as `smdpp serve`.
//!
//! The `smdpp` binary mounts them:
//!
//! ```ignore
//! /// ES2+ operators (tenants) and their client certificates.
//! Operators {
//!     #[command(subcommand)]
//!     command: smdpp_service::es2_cli::OperatorsCommand,
//! },
//! /// Download orders (ES2+ functions from the command line).
//! Orders {
//!     #[command(subcommand)]
//!     command: smdpp_service::es2_cli::OrdersCommand,
//! },
//! // Command::Operators { command } => smdpp_service::es2_cli::operators_blocking(command),
//! // Command::Orders { command } => smdpp_service::es2_cli::orders_blocking(command),
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use smdpp_core::es2_json::{
    CancelOrderRequest, ConfirmOrderRequest, ConfirmationCode, DownloadOrderRequest, Eid, Es2Error,
    Es2RequestHeader, FinalProfileStatusIndicator, Iccid, ReleaseProfileRequest,
    validate_matching_id,
};
use smdpp_store::{ProfileFilter, ProfileState, Store};

use crate::audit_cli::cli_actor;
use crate::cli::{DataArgs, activation_code, data_location, load_file, open_store};
use smdpp_service::config::{Limits, ServiceConfig};
use smdpp_service::es2::Es2Engine;
pub use smdpp_service::inventory::import_inventory;
use smdpp_service::operators::subject_text;
pub use smdpp_service::operators::{add_operator, add_operator_with_ca};
use smdpp_service::sidecar::Sidecar;

/// `smdpp operators ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum OperatorsCommand {
    /// Register an operator and the TLS client certificate it calls ES2+ with.
    Add {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
        /// Operator id (also its functionRequesterIdentifier).
        #[arg(long)]
        id: String,
        /// The operator's client certificate (PEM; the first certificate is used).
        #[arg(long)]
        cert: PathBuf,
        /// Base URL (`https://` with a host) that ES2+.HandleDownloadProgressInfo calls are
        /// delivered to by `smdpp serve`.
        #[arg(long)]
        callback_url: Option<String>,
        /// PEM bundle of the CA certificates that sign the callback receiver's TLS
        /// certificate: trusted instead of the system's trust roots for this operator.
        #[arg(long)]
        callback_ca: Option<PathBuf>,
    },
    /// List the operators.
    List {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Show one operator.
    Show {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
        /// Operator id.
        id: String,
    },
}

/// The tenant and data location of an `orders` command.
#[derive(Args, Debug, Clone)]
pub struct OrderScope {
    /// Data location and configuration file.
    #[command(flatten)]
    pub data: DataArgs,
    /// The operator (tenant) to act as.
    #[arg(long)]
    pub operator: String,
}

/// CancelOrder's final profile status (Table 29).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalStatus {
    /// Back to the inventory.
    Available,
    /// Retired.
    Unavailable,
}

/// `smdpp orders ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum OrdersCommand {
    /// Import a UPP into the operator's inventory as an Available profile of a type.
    Import {
        /// Tenant and data location.
        #[command(flatten)]
        scope: OrderScope,
        /// The Unprotected Profile Package (DER); the ICCID is read from it.
        #[arg(long)]
        upp: PathBuf,
        /// Profile type (what DownloadOrder picks by).
        #[arg(long)]
        profile_type: String,
        /// Service provider name shown by the LPA.
        #[arg(long, default_value = "smdpp")]
        spn: String,
        /// Profile name shown by the LPA (default: `Profile <ICCID>`).
        #[arg(long)]
        name: Option<String>,
    },
    /// ES2+.DownloadOrder: reserve a profile (by ICCID or type), optionally for an EID.
    Create {
        /// Tenant and data location.
        #[command(flatten)]
        scope: OrderScope,
        /// ICCID to reserve.
        #[arg(long)]
        iccid: Option<String>,
        /// Profile type to pick from.
        #[arg(long)]
        profile_type: Option<String>,
        /// EID (32 digits).
        #[arg(long)]
        eid: Option<String>,
    },
    /// ES2+.ConfirmOrder: MatchingID (given or generated), Confirmation Code, release.
    Confirm {
        /// Tenant and data location.
        #[command(flatten)]
        scope: OrderScope,
        /// ICCID.
        iccid: String,
        /// EID (32 digits).
        #[arg(long)]
        eid: Option<String>,
        /// MatchingID (0-9 A-Z '-'; empty for the default SM-DP+); generated when absent.
        #[arg(long)]
        matching_id: Option<String>,
        /// Confirmation Code (only its SHA-256 is stored).
        #[arg(long, env = "SMDPP_CONFIRMATION_CODE", hide_env_values = true)]
        confirmation_code: Option<String>,
        /// SM-DS address for Event Registration (stored).
        #[arg(long)]
        smds_address: Option<String>,
        /// Release immediately (releaseFlag=true).
        #[arg(long)]
        release: bool,
        /// SM-DP+ address for the printed Activation Code (default: the file's
        /// `smdp_address`, else the one `serve` last served this data at, else as `serve`
        /// resolves it).
        #[arg(long, env = "SMDPP_SMDP_ADDRESS")]
        smdp_address: Option<String>,
    },
    /// ES2+.ReleaseProfile.
    Release {
        /// Tenant and data location.
        #[command(flatten)]
        scope: OrderScope,
        /// ICCID.
        iccid: String,
    },
    /// ES2+.CancelOrder.
    Cancel {
        /// Tenant and data location.
        #[command(flatten)]
        scope: OrderScope,
        /// ICCID.
        iccid: String,
        /// What becomes of the profile.
        #[arg(long, value_enum)]
        final_status: FinalStatus,
        /// EID of the order, if one is associated.
        #[arg(long)]
        eid: Option<String>,
        /// MatchingID of the order, if one is allocated.
        #[arg(long)]
        matching_id: Option<String>,
    },
    /// ES2+.RpmOrder (SGP.22 v3 Remote Profile Management): queue commands for an installed
    /// profile; the device's LPA runs them when it next asks (`smdpp euicc poll`).
    Rpm {
        /// Tenant and data location.
        #[command(flatten)]
        scope: OrderScope,
        /// ICCID.
        iccid: String,
        /// A command (repeat for several, run in order).
        #[arg(long = "command", value_enum, required = true)]
        commands: Vec<RpmCommandArg>,
        /// Go on with the next command when one fails.
        #[arg(long)]
        continue_on_failure: bool,
    },
    /// Deactivate a subscription (device lost or stolen, or contract ended): cancels the
    /// pending order, retires a delivered profile, or queues an RPM disable/delete.
    Deactivate {
        /// Tenant and data location.
        #[command(flatten)]
        scope: OrderScope,
        /// ICCID.
        iccid: String,
        /// Why.
        #[arg(long, value_enum)]
        reason: ReasonArg,
        /// What to do with a profile that is on an eUICC.
        #[arg(long, value_enum, default_value_t = ModeArg::Disable)]
        mode: ModeArg,
    },
    /// Send installed profiles their type's current metadata (after `smdpp types update`)
    /// through RPM updateMetadata: one profile, or every installed profile of a type.
    UpdateMetadata {
        /// Tenant and data location.
        #[command(flatten)]
        scope: OrderScope,
        /// ICCID (or use --type).
        #[arg(
            required_unless_present = "profile_type",
            conflicts_with = "profile_type"
        )]
        iccid: Option<String>,
        /// Every installed profile of this type (of this operator).
        #[arg(long = "type")]
        profile_type: Option<String>,
    },
    /// Show one of the operator's profiles and its history.
    Show {
        /// Tenant and data location.
        #[command(flatten)]
        scope: OrderScope,
        /// ICCID.
        iccid: String,
    },
    /// List the operator's profiles.
    List {
        /// Tenant and data location.
        #[command(flatten)]
        scope: OrderScope,
    },
    /// Print the Activation Code of an order (`LPA:1$<address>$<matchingId>[$$1]`).
    Qr {
        /// Tenant and data location.
        #[command(flatten)]
        scope: OrderScope,
        /// ICCID.
        iccid: String,
        /// SM-DP+ address (default: the file's `smdp_address`, else the one `serve` last
        /// served this data at, else as `serve` resolves it).
        #[arg(long, env = "SMDPP_SMDP_ADDRESS")]
        smdp_address: Option<String>,
        /// Also write the QR code (content `LPA:` + Activation Code) as a PNG image here.
        #[arg(long)]
        png: Option<PathBuf>,
        /// Also write the QR code as an SVG document here.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
}

/// `smdpp orders rpm --command`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpmCommandArg {
    /// Enable the profile.
    Enable,
    /// Disable the profile.
    Disable,
    /// Delete the profile.
    Delete,
    /// Read the profile's ProfileInfo.
    ListProfileInfo,
    /// Send the profile type's current metadata.
    UpdateMetadata,
}

/// `smdpp orders deactivate --reason`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonArg {
    /// The device was lost.
    Lost,
    /// The device was stolen.
    Stolen,
    /// The subscription ended.
    Terminated,
}

/// `smdpp orders deactivate --mode`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeArg {
    /// Disable the profile on the eUICC.
    Disable,
    /// Delete the profile from the eUICC.
    Delete,
}

fn read_cert_der(path: &PathBuf) -> Result<Vec<u8>> {
    let cert = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .next()
        .ok_or_else(|| anyhow!("no certificate in {}", path.display()))?
        .with_context(|| format!("parsing {}", path.display()))?;
    Ok(cert.as_ref().to_vec())
}

/// The `--callback-ca` file as PEM text holding at least one certificate, every one of
/// which parses.
fn read_callback_ca(path: &PathBuf) -> Result<String> {
    let shown = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("--callback-ca {shown}"))?;
    let pem =
        String::from_utf8(bytes).map_err(|_| anyhow!("--callback-ca {shown}: not PEM text"))?;
    smdpp_service::outbox::callback_roots(&pem)
        .map_err(|e| anyhow!("--callback-ca {shown}: {e}"))?;
    Ok(pem)
}

/// How `operators show` describes a stored callback CA bundle: the subject of its first
/// certificate and how many there are, `system roots` without one.
pub fn describe_callback_ca(callback_ca: Option<&str>) -> String {
    let Some(pem) = callback_ca else {
        return "system roots".to_owned();
    };
    if let Err(e) = smdpp_service::outbox::callback_roots(pem) {
        return format!("unusable ({e})");
    }
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .collect();
    let first = certs
        .first()
        .and_then(|c| subject_text(c.as_ref()))
        .unwrap_or_else(|| "-".to_owned());
    let n = certs.len();
    format!("{first} ({n} certificate{})", if n == 1 { "" } else { "s" })
}

fn cli_header(operator: &str) -> Result<Es2RequestHeader> {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| anyhow!("no randomness"))?;
    Ok(Es2RequestHeader {
        function_requester_identifier: operator.to_owned(),
        function_call_identifier: format!("cli-{}", hex::encode(b)),
    })
}

fn es2_fail(e: Es2Error) -> anyhow::Error {
    anyhow!("{} ({}/{})", e.message, e.code.subject(), e.code.reason())
}

fn iccid_arg(s: &str) -> Result<Iccid> {
    Iccid::parse(s).ok_or_else(|| anyhow!("ICCID must be 19 or 20 digits (optionally with F)"))
}

fn eid_arg(s: Option<String>) -> Result<Option<Eid>> {
    s.map(|s| {
        let e = Eid::parse(&s).ok_or_else(|| anyhow!("EID must be 32 digits"))?;
        if !e.check_digits_ok() {
            bail!("the EID check digits are wrong");
        }
        Ok(e)
    })
    .transpose()
}

struct Ctx {
    store: Store,
    sidecar: Sidecar,
    address: String,
    limits: Limits,
    /// The profile factory when the data directory has its key file (for generating types).
    factory: Option<std::sync::Arc<smdpp_service::factory::Factory>>,
}

async fn open(data: &DataArgs, smdp_address: Option<String>) -> Result<Ctx> {
    let f = load_file(data)?;
    let (dir, url) = data_location(data, &f)?;
    let mut limits = Limits::default();
    if let Some(v) = f.download_attempt_limit {
        limits.download_attempt_limit = v;
    }
    if let Some(v) = f.cc_attempt_limit {
        limits.cc_attempt_limit = v;
    }
    let (store, sidecar) = open_store(&dir, &url).await?;
    let address = smdpp_service::config::public_address(&store, smdp_address, &f).await?;
    let kek = crate::factory_cli::kek_location(data, &f, &dir);
    let factory = if kek.exists() {
        Some(crate::factory_cli::open_factory_with(&store, &kek, false).await?)
    } else {
        None
    };
    Ok(Ctx {
        store,
        sidecar,
        address,
        limits,
        factory,
    })
}

impl Ctx {
    fn engine(&self) -> Es2Engine {
        Es2Engine::new(
            self.store.clone(),
            self.sidecar.clone(),
            ServiceConfig {
                smdp_address: self.address.clone(),
                limits: self.limits.clone(),
            },
        )
        .with_factory(self.factory.clone())
    }

    async fn owned(&self, operator: &str, iccid: &str) -> Result<smdpp_store::Profile> {
        match self.store.get_profile(iccid).await? {
            Some(p) if p.operator_id.as_deref() == Some(operator) => Ok(p),
            _ => bail!("no profile {iccid} for operator {operator}"),
        }
    }
}

/// `smdpp operators ...`.
pub async fn operators(cmd: OperatorsCommand) -> Result<()> {
    match cmd {
        OperatorsCommand::Add {
            data,
            id,
            cert,
            callback_url,
            callback_ca,
        } => {
            let der = read_cert_der(&cert)?;
            if let Some(url) = &callback_url {
                smdpp_service::outbox::check_callback_url(url)
                    .map_err(|e| anyhow!("--callback-url: {e}"))?;
            }
            let callback_ca = callback_ca.as_ref().map(read_callback_ca).transpose()?;
            let ctx = open(&data, None).await?;
            let added =
                add_operator_with_ca(&ctx.store, &id, &der, callback_url, callback_ca).await;
            let fp = match added {
                Ok(fp) => fp,
                Err(e) => {
                    ctx.store.close().await;
                    return Err(e);
                }
            };
            let recorded = crate::audit_cli::record(
                &ctx.store,
                "operator.add",
                &id,
                serde_json::json!({ "certSha256": fp }),
            )
            .await;
            ctx.store.close().await;
            recorded?;
            println!("operator {id} registered; client certificate SHA-256 {fp}");
        }
        OperatorsCommand::List { data } => {
            let ctx = open(&data, None).await?;
            for o in ctx.store.list_operators().await? {
                println!(
                    "{}  cert-sha256={}  callback={}",
                    o.id,
                    o.cert_sha256.as_deref().unwrap_or("-"),
                    o.callback_url.as_deref().unwrap_or("-")
                );
            }
            ctx.store.close().await;
        }
        OperatorsCommand::Show { data, id } => {
            let ctx = open(&data, None).await?;
            let o = ctx
                .store
                .get_operator(&id)
                .await?
                .ok_or_else(|| anyhow!("no operator {id}"))?;
            println!("id:            {}", o.id);
            println!("cert sha-256:  {}", o.cert_sha256.as_deref().unwrap_or("-"));
            println!(
                "cert subject:  {}",
                o.cert_subject.as_deref().unwrap_or("-")
            );
            println!(
                "callback url:  {}",
                o.callback_url.as_deref().unwrap_or("-")
            );
            println!(
                "callback ca:   {}",
                describe_callback_ca(o.callback_ca.as_deref())
            );
            println!(
                "created at:    {}",
                smdpp_service::display::rfc3339(o.created_at)
            );
            ctx.store.close().await;
        }
    }
    Ok(())
}

/// `smdpp orders ...`.
pub async fn orders(cmd: OrdersCommand) -> Result<()> {
    match cmd {
        OrdersCommand::Import {
            scope,
            upp,
            profile_type,
            spn,
            name,
        } => {
            let bytes =
                std::fs::read(&upp).with_context(|| format!("reading {}", upp.display()))?;
            let ctx = open(&scope.data, None).await?;
            if ctx.store.get_operator(&scope.operator).await?.is_none() {
                ctx.store.close().await;
                bail!(
                    "unknown operator {}: register it first with `smdpp operators add`",
                    scope.operator
                );
            }
            let f = load_file(&scope.data)?;
            let (dir, _) = data_location(&scope.data, &f)?;
            let factory = crate::factory_cli::open_factory(
                &ctx.store,
                &crate::factory_cli::kek_location(&scope.data, &f, &dir),
            )
            .await?;
            let iccid = import_inventory(
                &ctx.store,
                &ctx.sidecar,
                &factory,
                &scope.operator,
                &bytes,
                &profile_type,
                &spn,
                name,
            )
            .await?;
            let recorded = crate::audit_cli::record(
                &ctx.store,
                "order.import",
                &iccid,
                serde_json::json!({ "operator": scope.operator, "profileType": profile_type }),
            )
            .await;
            ctx.store.close().await;
            recorded?;
            println!("imported {iccid} (Available, type {profile_type})");
        }
        OrdersCommand::Create {
            scope,
            iccid,
            profile_type,
            eid,
        } => {
            let req = DownloadOrderRequest {
                header: cli_header(&scope.operator)?,
                eid: eid_arg(eid)?,
                iccid: iccid.as_deref().map(iccid_arg).transpose()?,
                profile_type,
            };
            smdpp_core::es2_json::Es2Request::validate(&req).map_err(es2_fail)?;
            let ctx = open(&scope.data, None).await?;
            let engine = ctx.engine();
            let r = engine
                .download_order(&scope.operator, &req)
                .await
                .map_err(es2_fail)?;
            engine
                .audit_order(
                    &cli_actor(),
                    &scope.operator,
                    "order.download",
                    r.iccid.as_str(),
                    smdpp_service::es2::download_details(&req),
                )
                .await;
            println!("reserved {}", r.iccid);
            ctx.store.close().await;
        }
        OrdersCommand::Confirm {
            scope,
            iccid,
            eid,
            matching_id,
            confirmation_code,
            smds_address,
            release,
            smdp_address,
        } => {
            if let Some(m) = &matching_id {
                validate_matching_id(m).map_err(es2_fail)?;
            }
            let req = ConfirmOrderRequest {
                header: cli_header(&scope.operator)?,
                iccid: iccid_arg(&iccid)?,
                eid: eid_arg(eid)?,
                matching_id,
                confirmation_code: confirmation_code.map(ConfirmationCode::new),
                smds_address,
                release_flag: release,
            };
            smdpp_core::es2_json::Es2Request::validate(&req).map_err(es2_fail)?;
            let ctx = open(&scope.data, smdp_address).await?;
            let engine = ctx.engine();
            let r = engine
                .confirm_order(&scope.operator, &req)
                .await
                .map_err(es2_fail)?;
            engine
                .audit_order(
                    &cli_actor(),
                    &scope.operator,
                    "order.confirm",
                    req.iccid.as_str(),
                    smdpp_service::es2::confirm_details(&req),
                )
                .await;
            println!(
                "confirmed {} ({})",
                req.iccid,
                if release { "Released" } else { "Confirmed" }
            );
            if !r.matching_id.is_empty() {
                println!(
                    "Activation Code: {}",
                    activation_code(
                        &ctx.address,
                        &r.matching_id,
                        req.confirmation_code.is_some()
                    )
                );
            }
            ctx.store.close().await;
        }
        OrdersCommand::Release { scope, iccid } => {
            let req = ReleaseProfileRequest {
                header: cli_header(&scope.operator)?,
                iccid: iccid_arg(&iccid)?,
            };
            let ctx = open(&scope.data, None).await?;
            let engine = ctx.engine();
            engine
                .release_profile(&scope.operator, &req)
                .await
                .map_err(es2_fail)?;
            engine
                .audit_order(
                    &cli_actor(),
                    &scope.operator,
                    "order.release",
                    req.iccid.as_str(),
                    serde_json::json!({}),
                )
                .await;
            println!("released {}", req.iccid);
            ctx.store.close().await;
        }
        OrdersCommand::Cancel {
            scope,
            iccid,
            final_status,
            eid,
            matching_id,
        } => {
            let req = CancelOrderRequest {
                header: cli_header(&scope.operator)?,
                iccid: iccid_arg(&iccid)?,
                eid: eid_arg(eid)?,
                matching_id,
                final_profile_status_indicator: match final_status {
                    FinalStatus::Available => FinalProfileStatusIndicator::Available,
                    FinalStatus::Unavailable => FinalProfileStatusIndicator::Unavailable,
                },
            };
            let ctx = open(&scope.data, None).await?;
            let engine = ctx.engine();
            engine
                .cancel_order(&scope.operator, &req)
                .await
                .map_err(es2_fail)?;
            engine
                .audit_order(
                    &cli_actor(),
                    &scope.operator,
                    "order.cancel",
                    req.iccid.as_str(),
                    smdpp_service::es2::cancel_details(&req),
                )
                .await;
            println!("cancelled {}", req.iccid);
            ctx.store.close().await;
        }
        OrdersCommand::Rpm {
            scope,
            iccid,
            commands,
            continue_on_failure,
        } => {
            use smdpp_core::rpm_json::{RpmCommandName, RpmCommandSpec, RpmOrderRequest};
            let req = RpmOrderRequest {
                header: cli_header(&scope.operator)?,
                eid: None,
                rpm_script: None,
                iccid: Some(iccid_arg(&iccid)?),
                commands: Some(
                    commands
                        .iter()
                        .map(|c| RpmCommandSpec {
                            command: match c {
                                RpmCommandArg::Enable => RpmCommandName::Enable,
                                RpmCommandArg::Disable => RpmCommandName::Disable,
                                RpmCommandArg::Delete => RpmCommandName::Delete,
                                RpmCommandArg::ListProfileInfo => RpmCommandName::ListProfileInfo,
                                RpmCommandArg::UpdateMetadata => RpmCommandName::UpdateMetadata,
                            },
                            continue_on_failure,
                            metadata: None,
                        })
                        .collect(),
                ),
                matching_id: None,
            };
            smdpp_core::es2_json::Es2Request::validate(&req).map_err(es2_fail)?;
            let ctx = open(&scope.data, None).await?;
            let engine = ctx.engine();
            let r = engine.rpm_order(&scope.operator, &req).await;
            if let Ok(ok) = &r {
                engine
                    .audit_order(
                        &cli_actor(),
                        &scope.operator,
                        "order.rpm",
                        req.iccid.as_ref().map_or("", |i| i.as_str()),
                        smdpp_service::es2::rpm_details(&req, &ok.matching_id),
                    )
                    .await;
            }
            ctx.store.close().await;
            let r = r.map_err(es2_fail)?;
            println!(
                "rpm order {} queued for {}",
                r.matching_id,
                req.iccid.as_ref().map_or("", |i| i.as_str())
            );
        }
        OrdersCommand::Deactivate {
            scope,
            iccid,
            reason,
            mode,
        } => {
            use smdpp_core::rpm_json::{DeactivateRequest, DeactivationMode, DeactivationReason};
            let req = DeactivateRequest {
                header: cli_header(&scope.operator)?,
                iccid: iccid_arg(&iccid)?,
                reason: match reason {
                    ReasonArg::Lost => DeactivationReason::Lost,
                    ReasonArg::Stolen => DeactivationReason::Stolen,
                    ReasonArg::Terminated => DeactivationReason::Terminated,
                },
                mode: match mode {
                    ModeArg::Disable => DeactivationMode::Disable,
                    ModeArg::Delete => DeactivationMode::Delete,
                },
            };
            let ctx = open(&scope.data, None).await?;
            let engine = ctx.engine();
            let r = engine.deactivate(&scope.operator, &req).await;
            if let Ok(ok) = &r {
                engine
                    .audit_order(
                        &cli_actor(),
                        &scope.operator,
                        "order.deactivate",
                        req.iccid.as_str(),
                        smdpp_service::es2::deactivate_details(&req, ok),
                    )
                    .await;
            }
            ctx.store.close().await;
            let r = r.map_err(es2_fail)?;
            match r.matching_id {
                Some(m) => println!(
                    "deactivated {}: {} (state {}, rpm order {m})",
                    req.iccid, r.action, r.state
                ),
                None => println!(
                    "deactivated {}: {} (state {})",
                    req.iccid, r.action, r.state
                ),
            }
        }
        OrdersCommand::UpdateMetadata {
            scope,
            iccid,
            profile_type,
        } => {
            let ctx = open(&scope.data, None).await?;
            let engine = ctx.engine();
            let targets: Vec<String> = match (&iccid, &profile_type) {
                (Some(i), _) => vec![i.clone()],
                (None, Some(t)) => {
                    let mut v = Vec::new();
                    let mut after = None;
                    loop {
                        let page = ctx
                            .store
                            .list_profiles(&ProfileFilter {
                                operator_id: Some(scope.operator.clone()),
                                profile_type: Some(t.clone()),
                                after_iccid: after.clone(),
                                limit: Some(500),
                                ..ProfileFilter::default()
                            })
                            .await?;
                        v.extend(
                            page.iter()
                                .filter(|p| p.state.is_on_euicc())
                                .map(|p| p.iccid.clone()),
                        );
                        match page.last() {
                            Some(p) if page.len() == 500 => after = Some(p.iccid.clone()),
                            _ => break,
                        }
                    }
                    v
                }
                (None, None) => bail!("give an ICCID or --type"),
            };
            let total = targets.len();
            let (mut queued, mut skipped) = (0usize, 0usize);
            for (n, i) in targets.iter().enumerate() {
                match engine.queue_metadata_update(&scope.operator, i).await {
                    Ok(o) => {
                        queued += 1;
                        engine
                            .audit_order(
                                &cli_actor(),
                                &scope.operator,
                                "order.update-metadata",
                                i,
                                serde_json::json!({
                                    "matchingId": smdpp_store::mask_matching_id(&o.id),
                                }),
                            )
                            .await;
                        println!("[{}/{total}] {i}: rpm order {} queued", n + 1, o.id);
                    }
                    Err(e) => {
                        skipped += 1;
                        println!("[{}/{total}] {i}: not queued: {}", n + 1, es2_fail(e));
                    }
                }
            }
            ctx.store.close().await;
            println!("{queued} queued, {skipped} not queued, of {total} installed profiles");
            if iccid.is_some() && queued == 0 {
                bail!("no update queued");
            }
        }
        OrdersCommand::Show { scope, iccid } => {
            let ctx = open(&scope.data, None).await?;
            let p = ctx.owned(&scope.operator, &iccid).await?;
            println!("iccid:              {}", p.iccid);
            println!("state:              {}", p.state);
            println!(
                "profile type:       {}",
                p.profile_type.as_deref().unwrap_or("-")
            );
            println!(
                "matching id:        {}",
                p.matching_id.as_deref().unwrap_or("-")
            );
            println!("eid:                {}", p.eid.as_deref().unwrap_or("-"));
            println!("cc required:        {}", p.cc_hash.is_some());
            println!(
                "download attempts:  {}/{}",
                p.download_attempts,
                p.download_attempt_limit
                    .map_or("-".into(), |l| l.to_string())
            );
            println!(
                "cc attempts:        {}/{}",
                p.cc_attempts,
                p.cc_attempt_limit.map_or("-".into(), |l| l.to_string())
            );
            println!(
                "sm-ds address:      {}",
                p.smds_address.as_deref().unwrap_or("-")
            );
            println!(
                "error cause:        {}",
                p.error_cause.as_deref().unwrap_or("-")
            );
            for o in ctx.store.rpm_orders_for(&p.iccid).await? {
                println!(
                    "rpm order:          {}  {}  {}  {}{}",
                    o.id,
                    o.commands,
                    o.state,
                    smdpp_service::display::rfc3339(o.updated_at),
                    o.result_summary
                        .as_deref()
                        .map_or(String::new(), |r| format!("  ({r})"))
                );
            }
            println!("history:");
            for e in ctx.store.events_for(&p.iccid).await? {
                println!(
                    "  {}  {} -> {}  {}  {}{}",
                    smdpp_service::display::rfc3339(e.at),
                    e.from_state.map_or("-".to_owned(), |s| s.to_string()),
                    e.to_state,
                    e.actor,
                    e.cause.as_deref().unwrap_or(""),
                    e.detail
                        .as_deref()
                        .map_or(String::new(), |d| format!("  ({d})"))
                );
            }
            ctx.store.close().await;
        }
        OrdersCommand::List { scope } => {
            let ctx = open(&scope.data, None).await?;
            let mut after = None;
            loop {
                let page = ctx
                    .store
                    .list_profiles(&ProfileFilter {
                        operator_id: Some(scope.operator.clone()),
                        after_iccid: after.clone(),
                        limit: Some(500),
                        ..ProfileFilter::default()
                    })
                    .await?;
                for p in &page {
                    println!(
                        "{}  {:<11}  type={}  mid={}  eid={}",
                        p.iccid,
                        p.state,
                        p.profile_type.as_deref().unwrap_or("-"),
                        p.matching_id.as_deref().unwrap_or("-"),
                        p.eid.as_deref().unwrap_or("-")
                    );
                }
                match page.last() {
                    Some(p) if page.len() == 500 => after = Some(p.iccid.clone()),
                    _ => break,
                }
            }
            ctx.store.close().await;
        }
        OrdersCommand::Qr {
            scope,
            iccid,
            smdp_address,
            png,
            svg,
        } => {
            let ctx = open(&scope.data, smdp_address).await?;
            let p = ctx.owned(&scope.operator, &iccid).await?;
            if !matches!(
                p.state,
                ProfileState::Confirmed | ProfileState::Released | ProfileState::Downloaded
            ) {
                bail!("profile {} is {}: no Activation Code", p.iccid, p.state);
            }
            let mid = p
                .matching_id
                .as_deref()
                .ok_or_else(|| anyhow!("order without MatchingID (default SM-DP+)"))?;
            let code = activation_code(&ctx.address, mid, p.cc_hash.is_some());
            println!("{code}");
            ctx.store.close().await;
            if png.is_some() || svg.is_some() {
                let ac = smdpp_core::ActivationCode::parse(&code)
                    .map_err(|e| anyhow!("activation code {code}: {e}"))?;
                if let Some(path) = png {
                    let bytes = smdpp_core::qr::png(&ac)?;
                    std::fs::write(&path, bytes)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("QR code (PNG): {}", path.display());
                }
                if let Some(path) = svg {
                    let text = smdpp_core::qr::svg(&ac)?;
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("QR code (SVG): {}", path.display());
                }
            }
        }
    }
    Ok(())
}

/// [`operators`] on a current-thread tokio runtime.
pub fn operators_blocking(cmd: OperatorsCommand) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(operators(cmd))
}

/// [`orders`] on a current-thread tokio runtime.
pub fn orders_blocking(cmd: OrdersCommand) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(orders(cmd))
}
