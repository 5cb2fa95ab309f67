//! The profile inventory: profile types built from their parts, subscriber data imported
//! into the profile factory, and the demo inventory `smdpp serve` seeds into an empty
//! database.
//!
//! # Import
//!
//! [`import_file`] reads a CSV or JSON-lines file (columns in [`smdpp_inventory`]) as a
//! stream (`smdpp profiles import` and the demo inventory go through it). A reader
//! thread validates each row (the checks of personalization, duplicates within the file) and
//! seals its secrets; the database side inserts batches of rows, each row as its `profiles`
//! row + `profile_secrets` row (both or neither). Rows are then:
//! - **imported** (Available, of the type, owned by the operator when given);
//! - **already present**: the same ICCID with the same IMSI, type and operator is in the
//!   inventory (a re-run of the same file): skipped, not an error, so re-running is harmless;
//! - **rejected**: a bad value, a duplicate within the file, or an ICCID/IMSI held by another
//!   profile, each with its line, field and reason.
//!
//! By default every good row is imported (one transaction per batch of [`BATCH_ROWS`]). With
//! [`ImportOptions::all_or_nothing`] the whole file is one transaction, rolled back if any
//! row is rejected. Memory is bounded: the in-file duplicate sets (about 40 bytes per row)
//! and two batches.

use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use saip::{Template, TemplateSource};
use sha2::{Digest, Sha256};
use smdpp_inventory::{Format, Options, RowError, RowReader};
use smdpp_store::{
    EventRecord, Expect, ImportOutcome, ImportRow, NewProfile, Patch, ProfileState, ProfileType,
    ProfileUpdate, SealedSecrets, Store, StoreError, normalize_iccid, now_ms,
};

use crate::factory::{Factory, SubscriberSecrets};
use crate::sidecar::{ProfileMetadata, Sidecar};
use crate::upp::{generate_matching_id, iccid_from_upp};

/// Rows per database batch (and per transaction without `--all-or-nothing`).
pub const BATCH_ROWS: usize = 5000;

/// Counts of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Rows read (excluding the header and blank lines).
    pub rows: u64,
    /// Rows inserted (and committed).
    pub imported: u64,
    /// Rows already present (re-run).
    pub already_present: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// With `--all-or-nothing` and a rejected row: the rows that would have been imported
    /// and were rolled back.
    pub rolled_back: u64,
    /// The first rejected rows.
    pub errors: Vec<RowError>,
}

/// Settings of [`import_file`] beyond the file and the store.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Profile type.
    pub profile_type: String,
    /// Owning operator.
    pub operator: Option<String>,
    /// One transaction for everything.
    pub all_or_nothing: bool,
    /// Reader settings (MNC length default, home PLMN).
    pub reader: Options,
    /// Rows per batch.
    pub batch_rows: usize,
}

/// One batch from the reader thread: the rows to insert with their line numbers, and the
/// rows the reader rejected.
struct Batch {
    rows: Vec<ImportRow>,
    lines: Vec<u64>,
    rejected: Vec<RowError>,
    bytes_read: u64,
}

fn row_error(line: u64, field: &str, message: &str) -> RowError {
    // RowError's constructor is crate-private in smdpp-inventory; build it by its fields.
    RowError {
        line,
        field: Some(field.to_owned()),
        message: message.to_owned(),
    }
}

/// Imports `input` (see the module docs). `on_reject` sees every rejected row as it is
/// found (the report file); `progress` gets `(bytes read, summary so far)` after each batch.
pub async fn import_file<R: std::io::BufRead + Send + 'static>(
    store: &Store,
    factory: &Arc<Factory>,
    format: Format,
    input: R,
    opts: &ImportOptions,
    mut on_reject: impl FnMut(&RowError) -> Result<()>,
    mut progress: impl FnMut(u64, &ImportSummary),
) -> Result<ImportSummary> {
    let ptype = store
        .get_profile_type(&opts.profile_type)
        .await?
        .ok_or_else(|| {
            anyhow!(
                "unknown profile type {:?} (create it with `smdpp types add`)",
                opts.profile_type
            )
        })?;
    if let Some(op) = &opts.operator
        && store.get_operator(op).await?.is_none()
    {
        bail!("unknown operator {op:?} (register it with `smdpp operators add`)");
    }
    // Fails on a bad header before anything is written.
    let mut reader = RowReader::new(format, input, opts.reader.clone())?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Batch>>(2);
    let batch_rows = opts.batch_rows.max(1);
    let fac = Arc::clone(factory);
    // Every row is personalized once with the type's template (and the result dropped):
    // a row the template cannot take is rejected now, not at download time.
    let compiled = factory
        .profile_type(&ptype.name)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let template = ImportRow {
        secrets: SealedSecrets {
            iccid: String::new(),
            imsi: String::new(),
            dek_id: 0,
            sealed: Vec::new(),
        },
        profile_type: ptype.name.clone(),
        operator_id: opts.operator.clone(),
        cc_attempt_limit: ptype.cc_attempt_limit,
        download_attempt_limit: ptype.download_attempt_limit,
    };
    // Reading, validation and sealing run on a blocking thread, one batch ahead of the
    // database (the channel holds two batches: memory stays bounded).
    let producer = tokio::task::spawn_blocking(move || {
        let mut batch = Batch {
            rows: Vec::with_capacity(batch_rows),
            lines: Vec::with_capacity(batch_rows),
            rejected: Vec::new(),
            bytes_read: 0,
        };
        loop {
            let next = match reader.next_row() {
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.blocking_send(Err(anyhow!(e)));
                    return;
                }
            };
            let done = next.is_none();
            match next {
                Some(Ok(row)) => {
                    let p = row.personalization();
                    if let Err(e) = compiled.template.personalize(&p) {
                        batch.rejected.push(RowError {
                            line: row.line,
                            field: None,
                            message: format!(
                                "does not fit the template of type {:?}: {e}",
                                compiled.row.name
                            ),
                        });
                        continue;
                    }
                    let secrets = SubscriberSecrets::from_personalization(&p);
                    match fac.seal_secrets(&row.iccid, &row.imsi, &secrets) {
                        Ok((sealed, dek_id)) => {
                            let mut r = template.clone();
                            r.secrets = SealedSecrets {
                                iccid: row.iccid.clone(),
                                imsi: row.imsi.clone(),
                                dek_id,
                                sealed,
                            };
                            batch.rows.push(r);
                            batch.lines.push(row.line);
                        }
                        Err(e) => {
                            let _ = tx.blocking_send(Err(anyhow!(e)));
                            return;
                        }
                    }
                }
                Some(Err(e)) => batch.rejected.push(e),
                None => {}
            }
            // Fix: rejected rows count towards the batch too. Counting only good rows, a
            // file whose rows are all rejected (a wrong --home-plmn, say) kept every
            // RowError of the file in memory and reported no progress until its end.
            if done || batch.rows.len() + batch.rejected.len() >= batch_rows {
                batch.bytes_read = reader.bytes_read();
                let full = std::mem::replace(
                    &mut batch,
                    Batch {
                        rows: Vec::with_capacity(batch_rows),
                        lines: Vec::with_capacity(batch_rows),
                        rejected: Vec::new(),
                        bytes_read: 0,
                    },
                );
                if tx.blocking_send(Ok(full)).is_err() || done {
                    return;
                }
            }
        }
    });

    let mut summary = ImportSummary::default();
    let mut pending_rollback = 0u64;
    let mut one_tx = if opts.all_or_nothing {
        Some(store.begin_import().await?)
    } else {
        None
    };
    let mut reject = |summary: &mut ImportSummary, e: RowError| -> Result<()> {
        summary.rejected += 1;
        on_reject(&e)?;
        if summary.errors.len() < 1000 {
            summary.errors.push(e);
        }
        Ok(())
    };
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        summary.rows += (batch.rows.len() + batch.rejected.len()) as u64;
        for e in batch.rejected {
            reject(&mut summary, e)?;
        }
        // Once a row is rejected in all-or-nothing mode nothing will be committed: keep
        // reading to report every bad row, but stop writing.
        let writing = !(opts.all_or_nothing && summary.rejected > 0);
        if !batch.rows.is_empty() {
            // A re-run row is "already present" only with the same secrets.
            let same = |r: &ImportRow, stored: &[u8]| {
                factory.same_secrets(&r.secrets.iccid, &r.secrets.imsi, &r.secrets.sealed, stored)
            };
            let outcomes = match (&mut one_tx, writing) {
                (Some(t), true) => t.insert_batch_checked(&batch.rows, same).await?,
                (Some(_), false) => Vec::new(),
                (None, _) => {
                    let mut t = store.begin_import().await?;
                    let o = t.insert_batch_checked(&batch.rows, same).await?;
                    t.commit().await?;
                    o
                }
            };
            if !writing {
                // Not written: each row counts as "would have been imported".
                pending_rollback += batch.rows.len() as u64;
            }
            for (o, line) in outcomes.iter().zip(&batch.lines) {
                match o {
                    ImportOutcome::Inserted if opts.all_or_nothing => pending_rollback += 1,
                    ImportOutcome::Inserted => summary.imported += 1,
                    ImportOutcome::AlreadyPresent => summary.already_present += 1,
                    ImportOutcome::DuplicateIccid => reject(
                        &mut summary,
                        row_error(
                            *line,
                            "iccid",
                            "ICCID already in the inventory with other subscriber data, type \
                             or operator",
                        ),
                    )?,
                    ImportOutcome::DuplicateImsi => reject(
                        &mut summary,
                        row_error(*line, "imsi", "IMSI already used by another ICCID"),
                    )?,
                    ImportOutcome::ChangedSecrets => reject(
                        &mut summary,
                        row_error(
                            *line,
                            "iccid",
                            "ICCID already imported with other values (Ki, OPc/OP, PIN, PUK, \
                             ADM1, SPN or MNC length differ); nothing changed",
                        ),
                    )?,
                }
            }
        }
        progress(batch.bytes_read, &summary);
    }
    producer.await.map_err(|e| anyhow!("reader thread: {e}"))?;
    if let Some(t) = one_tx {
        if summary.rejected == 0 {
            t.commit().await?;
            summary.imported = pending_rollback;
        } else {
            t.rollback().await?;
            summary.rolled_back = pending_rollback;
        }
    }
    Ok(summary)
}

/// profileClass of a profile type (SGP.22 section 2.4a.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileClass {
    /// test(0).
    Test,
    /// provisioning(1).
    Provisioning,
    /// operational(2).
    Operational,
}

/// Profile management operations (notificationConfigurationInfo bits, SGP.22 5.5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOn {
    /// notificationInstall(0).
    Install,
    /// notificationEnable(1).
    Enable,
    /// notificationDisable(2).
    Disable,
    /// notificationDelete(3).
    Delete,
}

/// Profile Policy Rules (PprIds bits, SGP.22 2.4a.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ppr {
    /// ppr1: disabling of this profile is not allowed.
    Ppr1,
    /// ppr2: deletion of this profile is not allowed.
    Ppr2,
}

/// The notifications a type asks for by default: every operation (SGP.22 section 3.5), so
/// that the server's view of each installed profile follows the eUICC's.
pub const ALL_NOTIFY: [NotifyOn; 4] = [
    NotifyOn::Install,
    NotifyOn::Enable,
    NotifyOn::Disable,
    NotifyOn::Delete,
];

/// A profile type from its parts, validated: the template compiles, the names fit
/// StoreMetadataRequest (section 5.5.3), the icon is a PNG or JPEG of at most 1024 bytes.
#[allow(clippy::too_many_arguments)]
pub fn build_profile_type(
    name: &str,
    template: &TemplateSource,
    spn: &str,
    profile_name: &str,
    class: Option<ProfileClass>,
    icon: Option<Vec<u8>>,
    notify: &[NotifyOn],
    ppr: &[Ppr],
    cc_attempts: Option<i64>,
    download_attempts: Option<i64>,
) -> Result<ProfileType> {
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        bail!("profile type name must be 1 to 64 printable characters");
    }
    Template::compile(template).map_err(|e| anyhow!("template: {e}"))?;
    if spn.len() > 32 {
        bail!("service provider name is longer than 32 bytes");
    }
    if profile_name.len() > 64 {
        bail!("profile name is longer than 64 bytes");
    }
    let icon_type = match &icon {
        None => None,
        Some(i) if i.len() > 1024 => bail!("icon is {} bytes; at most 1024 are allowed", i.len()),
        Some(i) if i.starts_with(&[0x89, b'P', b'N', b'G']) => Some(1),
        Some(i) if i.starts_with(&[0xFF, 0xD8]) => Some(0),
        Some(_) => bail!("icon must be a PNG or JPEG file"),
    };
    for (what, v) in [
        ("cc-attempts", cc_attempts),
        ("download-attempts", download_attempts),
    ] {
        if let Some(n) = v
            && !(1..=1000).contains(&n)
        {
            bail!("--{what} must be 1 to 1000");
        }
    }
    let notification_events = notify.iter().fold(0i64, |m, n| {
        m | 1
            << match n {
                NotifyOn::Install => 0,
                NotifyOn::Enable => 1,
                NotifyOn::Disable => 2,
                NotifyOn::Delete => 3,
            }
    });
    let ppr_bits = ppr.iter().fold(0i64, |m, p| {
        m | 1
            << match p {
                Ppr::Ppr1 => 1,
                Ppr::Ppr2 => 2,
            }
    });
    Ok(ProfileType {
        name: name.to_owned(),
        // The TOML source; `Factory::add_profile_type` seals it before it is stored.
        template: template.text().as_bytes().to_vec(),
        service_provider_name: spn.to_owned(),
        profile_name: profile_name.to_owned(),
        profile_class: class.map(|c| match c {
            ProfileClass::Test => 0,
            ProfileClass::Provisioning => 1,
            ProfileClass::Operational => 2,
        }),
        icon_type,
        icon,
        notification_events,
        ppr_bits: (ppr_bits != 0).then_some(ppr_bits),
        cc_attempt_limit: cc_attempts,
        download_attempt_limit: download_attempts,
        created_at: now_ms(),
        on_delete: smdpp_store::OnDelete::default(),
    })
}

// ------------------------------------------------------------------ demo

/// Name of the demo profile type.
pub const DEMO_TYPE: &str = "demo";
/// Demo profiles seeded.
pub const DEMO_PROFILES: u32 = 5;

/// The demo inventory file (CSV): test MCC/MNC 001/01, ICCIDs in the test range
/// `89 999 01 ...`, random Ki and OPc per profile, test PINs.
pub fn demo_csv(count: u32) -> Result<String> {
    let mut s = String::from("iccid,imsi,ki,opc,pin1,puk1,pin2,puk2,adm1,spn\n");
    for i in 1..=count {
        let iccid = saip::personalize::iccid_with_luhn(&format!("8999901{:011}", i))
            .map_err(|e| anyhow!("{e}"))?;
        let imsi = format!("00101{:010}", i);
        let ki = crate::upp::random_bytes::<16>().map_err(|e| anyhow!("{e}"))?;
        let opc = crate::upp::random_bytes::<16>().map_err(|e| anyhow!("{e}"))?;
        s.push_str(&format!(
            "{iccid},{imsi},{},{},0000,12345678,0000,12345678,88888888,smdpp demo\n",
            hex::encode_upper(ki),
            hex::encode_upper(opc)
        ));
    }
    Ok(s)
}

/// Seeds the demo type and [`DEMO_PROFILES`] demo profiles through the import path and
/// releases the first one as a download order. Returns `(ICCID, MatchingID)`.
pub async fn seed_demo(store: &Store, factory: &Arc<Factory>) -> Result<(String, String)> {
    if store.get_profile_type(DEMO_TYPE).await?.is_none() {
        let t = build_profile_type(
            DEMO_TYPE,
            &TemplateSource::usim_isim_milenage(),
            "smdpp demo",
            "Demo profile (test network 001/01)",
            None,
            None,
            &ALL_NOTIFY,
            &[],
            None,
            None,
        )?;
        match factory.add_profile_type(&t).await {
            Ok(())
            | Err(crate::factory::FactoryError::Store(smdpp_store::StoreError::Duplicate {
                ..
            })) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let csv = demo_csv(DEMO_PROFILES)?;
    let first_iccid = csv
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("demo inventory"))?;
    let summary = import_file(
        store,
        factory,
        Format::Csv,
        std::io::Cursor::new(csv.into_bytes()),
        &ImportOptions {
            profile_type: DEMO_TYPE.to_owned(),
            operator: None,
            all_or_nothing: true,
            reader: Options::default(),
            batch_rows: BATCH_ROWS,
        },
        |_| Ok(()),
        |_, _| {},
    )
    .await?;
    if summary.rejected > 0 {
        bail!("demo inventory rejected: {:?}", summary.errors);
    }
    let mid = crate::upp::generate_matching_id().map_err(|e| anyhow!("{e}"))?;
    store
        .transition(
            &first_iccid,
            &Expect::states(&[ProfileState::Available]),
            &ProfileUpdate {
                state: Some(ProfileState::Released),
                matching_id: Patch::Set(mid.clone()),
                ..ProfileUpdate::default()
            },
            &EventRecord::by("serve").with_cause("demo order"),
        )
        .await?;
    Ok((first_iccid, mid))
}

/// Imports a UPP as a Released order; returns `(matching id, iccid)`.
#[allow(clippy::too_many_arguments)]
pub async fn add_profile(
    store: &Store,
    sidecar: &Sidecar,
    factory: &Factory,
    upp: &[u8],
    matching_id: Option<String>,
    confirmation_code: Option<&str>,
    spn: &str,
    name: Option<String>,
) -> Result<(String, String)> {
    let iccid = iccid_from_upp(upp)?;
    let iccid = normalize_iccid(&iccid)?;
    let matching_id = match matching_id {
        Some(m) => {
            smdpp_core::activation_code::validate_matching_id(&m).map_err(|e| anyhow!("{e}"))?;
            m
        }
        None => generate_matching_id().map_err(|e| anyhow!("{e}"))?,
    };
    if spn.len() > 32 {
        bail!("service provider name is longer than 32 bytes");
    }
    let name = name.unwrap_or_else(|| format!("Profile {iccid}"));
    if name.len() > 64 {
        bail!("profile name is longer than 64 bytes");
    }
    let p = NewProfile {
        iccid: iccid.clone(),
        operator_id: None,
        profile_type: None,
        state: ProfileState::Released,
        matching_id: Some(matching_id.clone()),
        eid: None,
        // Only SHA-256(CC) is kept (SGP.22 section 4.7).
        cc_hash: confirmation_code.map(|cc| Sha256::digest(cc.as_bytes()).to_vec()),
        cc_attempt_limit: None,
        download_attempt_limit: None,
        // Sealed at rest (its keys are secrets).
        upp: Some(factory.seal_upp(&iccid, upp)?),
        smds_address: None,
        expires_at: None,
    };
    match store
        .insert_profile(
            &p,
            &EventRecord::by(crate::assembly::cli_actor()).with_cause("profiles add"),
        )
        .await
    {
        Ok(_) => {}
        Err(StoreError::Duplicate { key }) => bail!("a profile with this {key} already exists"),
        Err(e) => return Err(e.into()),
    }
    sidecar
        .put_metadata(
            &iccid,
            &ProfileMetadata {
                service_provider_name: spn.to_owned(),
                profile_name: name,
                profile_class: None,
            },
        )
        .await?;
    Ok((matching_id, iccid))
}

/// Imports a UPP as an Available inventory profile of `operator` with `profile_type`;
/// returns the ICCID.
#[allow(clippy::too_many_arguments)]
pub async fn import_inventory(
    store: &Store,
    sidecar: &Sidecar,
    factory: &crate::factory::Factory,
    operator: &str,
    upp: &[u8],
    profile_type: &str,
    spn: &str,
    name: Option<String>,
) -> Result<String> {
    let iccid = normalize_iccid(&iccid_from_upp(upp)?)?;
    let name = name.unwrap_or_else(|| format!("Profile {iccid}"));
    if spn.len() > 32 || name.len() > 64 {
        bail!("service provider name (32) or profile name (64 bytes) too long");
    }
    let mut p = NewProfile::available(iccid.clone(), Some(profile_type));
    p.operator_id = Some(operator.to_owned());
    // Sealed at rest (its keys are secrets).
    p.upp = Some(factory.seal_upp(&iccid, upp)?);
    match store
        .insert_profile(
            &p,
            &EventRecord::by(crate::assembly::cli_actor()).with_cause("orders import"),
        )
        .await
    {
        Ok(_) => {}
        Err(StoreError::Duplicate { key }) => bail!("a profile with this {key} already exists"),
        Err(e) => return Err(e.into()),
    }
    sidecar
        .put_metadata(
            &iccid,
            &ProfileMetadata {
                service_provider_name: spn.to_owned(),
                profile_name: name,
                profile_class: None,
            },
        )
        .await?;
    Ok(iccid)
}
