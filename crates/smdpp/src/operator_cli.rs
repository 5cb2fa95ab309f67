//! The command line of the operator's systems: generation policies (`smdpp types generator`),
//! pools generated ahead of time (`smdpp profiles generate`), core networks
//! (`smdpp core-networks add|list|remove`) and the binding of a type to one
//! (`smdpp types core-network`).

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use saip::SecretText;
use smdpp_store::{CoreNetworkRow, Signal, StoreError, TypeCoreNetwork};
use zeroize::Zeroizing;

use crate::cli::DataArgs;
use crate::factory_cli::{block_on, open_all_with};
use smdpp_service::generate::{GenerateError, GenerationPolicy, parse_range};

/// `smdpp types generator`: profiles of the type are created on demand.
#[derive(Args, Debug, Clone)]
pub struct TypeGeneratorArgs {
    /// Data location and configuration file.
    #[command(flatten)]
    pub data: DataArgs,
    /// The type's name.
    pub name: String,
    /// ICCID range without check digits, `FIRST-LAST` (18 or 19 digits each; the Luhn digit
    /// is appended).
    #[arg(long)]
    pub iccid_range: String,
    /// IMSI range `FIRST-LAST` (MCC, MNC and MSIN; 6 to 15 digits each, same width).
    #[arg(long)]
    pub imsi_range: String,
    /// Number of MNC digits of the IMSIs.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub mnc_length: u8,
    /// Digits of the generated PIN1/PIN2.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(4..=8))]
    pub pin_digits: u8,
    /// File holding the operator's OP (32 hex digits): OPc = AES_Ki(OP) xor OP per profile.
    /// Without it, OPc is drawn at random for each profile.
    #[arg(long)]
    pub op_file: Option<std::path::PathBuf>,
}

/// When a type's subscribers are provisioned in its core network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProvisionAtArg {
    /// At ConfirmOrder with releaseFlag / ReleaseProfile (before the download).
    Released,
    /// Once the eUICC reported the installation.
    Installed,
}

/// What deactivation and deletion do to the subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnDeactivateArg {
    /// Delete the subscriber.
    Delete,
    /// Keep the record, disable CS/PS and remove its authentication data.
    Block,
}

/// `smdpp types core-network`.
#[derive(Args, Debug, Clone)]
pub struct TypeCoreNetworkArgs {
    /// Data location and configuration file.
    #[command(flatten)]
    pub data: DataArgs,
    /// The type's name.
    pub name: String,
    /// The core network (see `smdpp core-networks add`).
    #[arg(long)]
    pub network: String,
    /// When the subscriber is provisioned.
    #[arg(long, value_enum, default_value_t = ProvisionAtArg::Released)]
    pub provision_at: ProvisionAtArg,
    /// What deactivation and deletion do.
    #[arg(long, value_enum, default_value_t = OnDeactivateArg::Delete)]
    pub on_deactivate: OnDeactivateArg,
}

/// `smdpp profiles generate`.
#[derive(Args, Debug, Clone)]
pub struct GenerateArgs {
    /// Data location and configuration file.
    #[command(flatten)]
    pub data: DataArgs,
    /// The generating profile type.
    #[arg(long = "type")]
    pub profile_type: String,
    /// How many profiles to create.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub count: u32,
    /// Owning operator (ES2+ tenant).
    #[arg(long)]
    pub operator: Option<String>,
}

/// Connector kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CoreKindArg {
    /// Osmocom's osmo-hlr, through its CTRL interface (TCP, default port 4259).
    OsmoHlr,
}

/// `smdpp core-networks ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum CoreNetworksCommand {
    /// Register a core network.
    Add {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
        /// Its name.
        name: String,
        /// Connector kind.
        #[arg(long, value_enum, default_value_t = CoreKindArg::OsmoHlr)]
        kind: CoreKindArg,
        /// Address of its management interface, `host:port` (osmo-hlr: CTRL, port 4259).
        #[arg(long)]
        address: String,
    },
    /// List the core networks.
    List {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Remove a core network no profile type uses.
    Remove {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
        /// Its name.
        name: String,
    },
}

fn read_op(path: &std::path::Path) -> Result<SecretText> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let op = text.trim();
    if op.len() != 32 || !op.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{}: the OP must be 32 hex digits", path.display());
    }
    Ok(SecretText::from(op))
}

/// `smdpp types generator`.
pub async fn type_generator(a: TypeGeneratorArgs) -> Result<()> {
    let (iccid_first, iccid_count) =
        parse_range(&a.iccid_range, "ICCID", 18..=19).map_err(|e| anyhow!(e))?;
    let (imsi_first, imsi_count) =
        parse_range(&a.imsi_range, "IMSI", 6..=15).map_err(|e| anyhow!(e))?;
    let op = a.op_file.as_deref().map(read_op).transpose()?;
    let policy = GenerationPolicy {
        iccid_first,
        imsi_first,
        mnc_len: a.mnc_length,
        size: iccid_count.min(imsi_count),
        opc_from_op: op.is_some(),
        pin_digits: a.pin_digits,
    };
    let (store, factory) = open_all_with(&a.data, false).await?;
    let r = factory.add_generator(&a.name, &policy, op.as_ref()).await;
    let recorded = match &r {
        Ok(()) => {
            // The policy without the OP (only whether there is one).
            let details = serde_json::json!({
                "iccidFirst": policy.iccid_first,
                "imsiFirst": policy.imsi_first,
                "size": policy.size,
                "opcFromOp": policy.opc_from_op,
            });
            crate::audit_cli::record(&store, "type.generator", &a.name, details).await
        }
        Err(_) => Ok(()),
    };
    store.close().await;
    recorded?;
    match r {
        Ok(()) => {
            println!(
                "profile type {} generates its profiles: {} ICCIDs from {} and IMSIs from {}{}",
                a.name,
                policy.size,
                policy.iccid_at(0).unwrap_or_default(),
                policy.imsi_first,
                if policy.opc_from_op {
                    ", OPc derived from the operator's OP"
                } else {
                    ", OPc random"
                }
            );
            Ok(())
        }
        Err(GenerateError::Store(StoreError::Duplicate { .. })) => {
            bail!("profile type {:?} already has a generation policy", a.name)
        }
        Err(e) => Err(e.into()),
    }
}

/// `smdpp types core-network`.
pub async fn type_core_network(a: TypeCoreNetworkArgs) -> Result<()> {
    let (store, _factory) = open_all_with(&a.data, false).await?;
    if store.get_profile_type(&a.name).await?.is_none() {
        bail!("no profile type {:?}", a.name);
    }
    if store.get_core_network(&a.network).await?.is_none() {
        bail!(
            "no core network {:?} (register it with `smdpp core-networks add`)",
            a.network
        );
    }
    store
        .set_type_core_network(&TypeCoreNetwork {
            profile_type: a.name.clone(),
            core_network: a.network.clone(),
            provision_at: match a.provision_at {
                ProvisionAtArg::Released => Signal::Released,
                ProvisionAtArg::Installed => Signal::Installed,
            },
            on_deactivate: match a.on_deactivate {
                OnDeactivateArg::Delete => "delete",
                OnDeactivateArg::Block => "block",
            }
            .to_owned(),
        })
        .await?;
    let details = serde_json::json!({
        "coreNetwork": a.network,
        "provisionAt": format!("{:?}", a.provision_at).to_lowercase(),
        "onDeactivate": format!("{:?}", a.on_deactivate).to_lowercase(),
    });
    let recorded = crate::audit_cli::record(&store, "type.core-network", &a.name, details).await;
    store.close().await;
    recorded?;
    println!(
        "subscribers of profile type {} are provisioned in {} when {}",
        a.name,
        a.network,
        match a.provision_at {
            ProvisionAtArg::Released => "released",
            ProvisionAtArg::Installed => "installed",
        }
    );
    Ok(())
}

/// `smdpp profiles generate`.
pub async fn profiles_generate(a: GenerateArgs) -> Result<()> {
    let (store, factory) = open_all_with(&a.data, false).await?;
    let ptype = store
        .get_profile_type(&a.profile_type)
        .await?
        .ok_or_else(|| anyhow!("no profile type {:?}", a.profile_type))?;
    if let Some(op) = &a.operator
        && store.get_operator(op).await?.is_none()
    {
        bail!("unknown operator {op:?} (register it with `smdpp operators add`)");
    }
    let mut made = 0usize;
    let want = usize::try_from(a.count).unwrap_or(usize::MAX);
    let mut result = Ok(());
    // Chunks, so that a long run reports progress and an exhausted range keeps what it made.
    while made < want {
        let n = (want - made).min(500);
        match factory.generate(&ptype, a.operator.as_deref(), n).await {
            Ok(v) => made += v.len(),
            Err(GenerateError::Exhausted(_)) => {
                let left = store.get_generator(&a.profile_type).await?;
                let size = left.map_or(0, |g| g.size);
                result = Err(anyhow!(
                    "the ICCID/IMSI range of profile type {:?} is exhausted ({size} profiles); \
                     {made} of {want} generated",
                    a.profile_type
                ));
                break;
            }
            Err(GenerateError::NoPolicy(t)) => {
                result = Err(anyhow!(
                    "profile type {t:?} has no generation policy (set one with `smdpp types generator`)"
                ));
                break;
            }
            Err(e) => {
                result = Err(anyhow!("{e}; {made} of {want} generated"));
                break;
            }
        }
    }
    let recorded = if made > 0 {
        let details = serde_json::json!({ "operator": a.operator, "generated": made });
        crate::audit_cli::record(&store, "profiles.generate", &a.profile_type, details).await
    } else {
        Ok(())
    };
    store.close().await;
    recorded?;
    if result.is_ok() {
        println!("{made} profiles of type {} generated", a.profile_type);
    }
    result
}

/// `smdpp core-networks ...`.
pub async fn core_networks_command(cmd: CoreNetworksCommand) -> Result<()> {
    match cmd {
        CoreNetworksCommand::Add {
            data,
            name,
            kind,
            address,
        } => {
            if name.is_empty() || name.len() > 64 || name.contains(char::is_whitespace) {
                bail!("a core network name is 1 to 64 characters without spaces");
            }
            check_address(&address)?;
            let (store, _f) = open_all_with(&data, false).await?;
            let r = store
                .insert_core_network(&CoreNetworkRow {
                    name: name.clone(),
                    kind: match kind {
                        CoreKindArg::OsmoHlr => "osmo-hlr".into(),
                    },
                    address: address.clone(),
                    created_at: 0,
                })
                .await;
            let recorded = match &r {
                Ok(()) => {
                    let details = serde_json::json!({ "kind": "osmo-hlr", "address": address });
                    crate::audit_cli::record(&store, "core-network.add", &name, details).await
                }
                Err(_) => Ok(()),
            };
            store.close().await;
            recorded?;
            match r {
                Ok(()) => println!("core network {name} ({address}) added"),
                Err(StoreError::Duplicate { .. }) => {
                    bail!("a core network named {name:?} already exists")
                }
                Err(e) => return Err(e.into()),
            }
        }
        CoreNetworksCommand::List { data } => {
            let (store, _f) = open_all_with(&data, false).await?;
            let list = store.list_core_networks().await?;
            store.close().await;
            for c in list {
                println!("{}\t{}\t{}", c.name, c.kind, c.address);
            }
        }
        CoreNetworksCommand::Remove { data, name } => {
            let (store, _f) = open_all_with(&data, false).await?;
            let r = store.delete_core_network(&name).await;
            let recorded = match &r {
                Ok(true) => {
                    let details = serde_json::json!({});
                    crate::audit_cli::record(&store, "core-network.remove", &name, details).await
                }
                _ => Ok(()),
            };
            store.close().await;
            recorded?;
            match r {
                Ok(true) => println!("core network {name} removed"),
                Ok(false) => bail!("no core network {name:?}"),
                Err(StoreError::Conflict { .. }) => {
                    bail!("core network {name:?} is used by a profile type")
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// `host:port` with a port.
fn check_address(a: &str) -> Result<()> {
    let Some((host, port)) = a.rsplit_once(':') else {
        bail!("address {a:?}: expected host:port");
    };
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        bail!("address {a:?}: expected host:port");
    }
    Ok(())
}

/// [`core_networks_command`] on a new tokio runtime.
pub fn core_networks_blocking(cmd: CoreNetworksCommand) -> Result<()> {
    block_on(core_networks_command(cmd))
}
