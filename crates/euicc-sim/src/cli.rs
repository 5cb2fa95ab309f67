//! `smdpp euicc ...`: a clap subcommand tree for the `smdpp` binary to mount, and [`run`].
//!
//! ```text
//! smdpp euicc init --state FILE --pki DIR [--eid EID] [--svn 2.2.2|3.1.0]
//! smdpp euicc poll --state FILE [--iccid ICCID] [--no-consent] [--imei IMEI] [--insecure|--http]
//! smdpp euicc download --state FILE 'LPA:1$host:port$MATCHING-ID' [--cc CODE] [--imei IMEI] [--insecure|--http]
//! smdpp euicc notifications list|process --state FILE
//! smdpp euicc profiles list|enable|disable|delete|nickname --state FILE [ICCID|AID]
//! smdpp euicc info --state FILE
//! smdpp euicc lpac-stdio --state FILE
//! smdpp euicc authenticate --state FILE --iccid ICCID --rand HEX --autn HEX
//! ```
//! Output is human-readable by default, JSON with `--json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rsp_asn1::common::{Iccid, OctetTo16, ProfileIdentifier};
use serde_json::json;

use crate::euicc::Euicc;
use crate::lpa::{
    DownloadOptions, DownloadOutcome, Lpa, LpaError, PollOptions, PollReport, Transport,
};
use crate::state::{EuiccState, ProfileRecord, ProfileStateRec, Provisioning};
use crate::upp_info::UppInfo;
use crate::usim::AuthOutcome;

/// The state file argument.
#[derive(Args, Debug, Clone)]
pub struct StateArg {
    /// The eUICC state file (JSON; holds the eUICC private key).
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,
}

/// How to reach the SM-DP+.
#[derive(Args, Debug, Clone, Default)]
pub struct TransportArgs {
    /// Do not verify the SM-DP+ TLS certificate (labs only).
    #[arg(long)]
    pub insecure: bool,
    /// Plain HTTP (for a TLS-terminating proxy in front of the SM-DP+).
    #[arg(long, conflicts_with = "insecure")]
    pub http: bool,
}

/// `smdpp euicc ...`: a virtual eUICC and its LPA.
#[derive(Subcommand, Debug, Clone)]
pub enum EuiccCommand {
    /// Create a virtual eUICC: EID in the EUM's range, certificate signed by the EUM of DIR.
    Init {
        /// The state file.
        #[command(flatten)]
        state: StateArg,
        /// PKI directory (eum.pem, eum.key, ci.pem, optional trusted-ci/*.pem).
        #[arg(long, value_name = "DIR")]
        pki: PathBuf,
        /// EID (32 digits, valid check digits, inside the EUM's range); random if absent.
        #[arg(long)]
        eid: Option<String>,
        /// The highest SGP.22 version the eUICC implements: 3.x (default) announces v3 and
        /// Remote Profile Management support; 2.x (e.g. 2.2.2) makes a v2-only card.
        #[arg(long, value_name = "VERSION", default_value = "3.1.0")]
        svn: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Ask the SM-DP+ of every installed profile for Remote Profile Management packages
    /// (SGP.22 v3) and execute them.
    Poll {
        /// The state file.
        #[command(flatten)]
        state: StateArg,
        /// Poll only for this profile (ICCID).
        #[arg(long)]
        iccid: Option<String>,
        /// The end user refuses: do not load packages (the session is cancelled with
        /// endUserRejection).
        #[arg(long)]
        no_consent: bool,
        /// Device IMEI (15 or 16 digits).
        #[arg(long)]
        imei: Option<String>,
        /// Transport options.
        #[command(flatten)]
        transport: TransportArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download and install a profile from an Activation Code.
    Download {
        /// The state file.
        #[command(flatten)]
        state: StateArg,
        /// Activation Code, e.g. 'LPA:1$smdp.example.com:8443$MATCHING-ID' (quote the '$').
        activation_code: String,
        /// Confirmation Code.
        #[arg(long)]
        cc: Option<String>,
        /// Device IMEI (15 or 16 digits).
        #[arg(long)]
        imei: Option<String>,
        /// Transport options.
        #[command(flatten)]
        transport: TransportArgs,
        /// Keep the installation result on the eUICC instead of sending it.
        #[arg(long)]
        no_notify: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pending notifications.
    Notifications {
        /// The subcommand.
        #[command(subcommand)]
        command: NotificationsCommand,
    },
    /// Installed profiles.
    Profiles {
        /// The subcommand.
        #[command(subcommand)]
        command: ProfilesCommand,
    },
    /// EID, eUICC information and profiles.
    Info {
        /// The state file.
        #[command(flatten)]
        state: StateArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the USIM AUTHENTICATE command (3GPP TS 31.102 7.1.2, 3G context) on an installed
    /// profile: prints `RES`, `CK`, `IK` (hex, one per line), or `AUTS` on a synchronisation
    /// failure; a wrong MAC is an error. The accepted SQN is saved in the state file.
    Authenticate {
        /// The state file.
        #[command(flatten)]
        state: StateArg,
        /// The profile: ICCID (19-20 digits) or ISD-P AID (32 hex digits).
        #[arg(long)]
        iccid: String,
        /// RAND, 16 octets (32 hex digits).
        #[arg(long, value_name = "HEX")]
        rand: String,
        /// AUTN, 16 octets (32 hex digits): SQN xor AK || AMF || MAC-A.
        #[arg(long, value_name = "HEX")]
        autn: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Act as the card for lpac's stdio APDU driver: read lpac's stdout on stdin, answer on
    /// stdout (e.g. with two FIFOs). lpac's own output lines go to stderr.
    LpacStdio {
        /// The state file.
        #[command(flatten)]
        state: StateArg,
    },
}

/// `smdpp euicc notifications ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum NotificationsCommand {
    /// List pending notifications.
    List {
        /// The state file.
        #[command(flatten)]
        state: StateArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send every pending notification; remove those the server acknowledged.
    Process {
        /// The state file.
        #[command(flatten)]
        state: StateArg,
        /// Transport options.
        #[command(flatten)]
        transport: TransportArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `smdpp euicc profiles ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum ProfilesCommand {
    /// List installed profiles.
    List {
        /// The state file.
        #[command(flatten)]
        state: StateArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Enable a profile (the enabled one is disabled first).
    Enable {
        /// The state file.
        #[command(flatten)]
        state: StateArg,
        /// ICCID (19-20 digits) or ISD-P AID (32 hex digits).
        id: String,
    },
    /// Disable a profile.
    Disable {
        /// The state file.
        #[command(flatten)]
        state: StateArg,
        /// ICCID (19-20 digits) or ISD-P AID (32 hex digits).
        id: String,
    },
    /// Delete a (disabled) profile.
    Delete {
        /// The state file.
        #[command(flatten)]
        state: StateArg,
        /// ICCID (19-20 digits) or ISD-P AID (32 hex digits).
        id: String,
    },
    /// Set a profile's nickname (empty removes it).
    Nickname {
        /// The state file.
        #[command(flatten)]
        state: StateArg,
        /// ICCID.
        iccid: String,
        /// The nickname (at most 64 bytes).
        nickname: String,
    },
}

/// Parse an ICCID (19-20 digits) or an ISD-P AID (32 hex digits).
pub fn parse_profile_id(s: &str) -> Result<ProfileIdentifier> {
    let s = s.trim();
    if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let aid = hex::decode(s).context("AID")?;
        return Ok(ProfileIdentifier::IsdpAid(
            OctetTo16::new(&aid).map_err(|e| anyhow::anyhow!("AID: {e}"))?,
        ));
    }
    match Iccid::from_digits(s) {
        Some(i) => Ok(ProfileIdentifier::Iccid(i)),
        None => {
            bail!("{s:?} is neither an ICCID (19 or 20 digits) nor an ISD-P AID (32 hex digits)")
        }
    }
}

fn open(state: &Path) -> Result<Euicc> {
    if !state.exists() {
        bail!(
            "{} does not exist; create it with `smdpp euicc init --state {} --pki DIR`",
            state.display(),
            state.display()
        );
    }
    Euicc::open(state).map_err(|e| anyhow::anyhow!("{e}"))
}

fn lpa_for(euicc: &Euicc, t: &TransportArgs) -> Result<Lpa> {
    let transport = if t.http {
        Transport::Http
    } else if t.insecure {
        Transport::HttpsInsecure
    } else {
        Transport::Https(
            euicc
                .state()
                .trust_store()
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        )
    };
    Lpa::new(transport).map_err(|e| anyhow::anyhow!("{e}"))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn class_name(c: i64) -> &'static str {
    match c {
        0 => "test",
        1 => "provisioning",
        _ => "operational",
    }
}

fn profiles_json(st: &EuiccState) -> serde_json::Value {
    st.profiles
        .iter()
        .map(|p| {
            json!({
                "iccid": p.iccid,
                "isdpAid": p.isdp_aid,
                "profileState": if p.state == ProfileStateRec::Enabled { "enabled" } else { "disabled" },
                "profileNickname": p.nickname,
                "serviceProviderName": p.service_provider_name,
                "profileName": p.profile_name,
                "profileClass": class_name(p.profile_class),
                "smdpAddress": p.smdp_address,
                "imsi": p.upp_info.imsi,
                "headerIccid": p.upp_info.header_iccid,
                "efIccid": p.upp_info.ef_iccid,
                "efSpn": p.upp_info.ef_spn,
            })
        })
        .collect()
}

/// What the UPP of a profile yielded, for the human-readable output:
/// `IMSI 262011234567890  EF.SPN "Example"` (`IMSI -` when none), plus
/// `ProfileHeader ICCID ...` / `EF.ICCID ...` for each package ICCID that differs from the
/// metadata's `iccid`.
pub fn upp_summary(iccid: &str, info: &UppInfo) -> String {
    let mut s = format!("IMSI {}", info.imsi.as_deref().unwrap_or("-"));
    if let Some(spn) = &info.ef_spn {
        s.push_str(&format!("  EF.SPN {spn:?}"));
    }
    for (place, other) in info.iccid_mismatches(iccid) {
        s.push_str(&format!("  {place} {other}"));
    }
    s
}

/// The line `smdpp euicc download` prints for an installed profile:
/// `installed ICCID (SPN / NAME) in ISD-P AID, IMSI ...` (see [`upp_summary`]).
pub fn installed_line(o: &DownloadOutcome) -> String {
    format!(
        "installed {} ({} / {}) in ISD-P {}, {}",
        o.iccid,
        o.service_provider_name,
        o.profile_name,
        o.isdp_aid,
        upp_summary(&o.iccid, &o.upp_info)
    )
}

/// One line of `smdpp euicc profiles list`:
/// `ICCID  AID  STATE  SPN / NAME (NICKNAME)  IMSI ...` (see [`upp_summary`]).
pub fn profile_line(p: &ProfileRecord) -> String {
    let state = if p.state == ProfileStateRec::Enabled {
        "enabled"
    } else {
        "disabled"
    };
    format!(
        "{}  {}  {:8}  {} / {}{}  {}",
        p.iccid,
        p.isdp_aid,
        state,
        p.service_provider_name,
        p.profile_name,
        p.nickname
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default(),
        upp_summary(&p.iccid, &p.upp_info)
    )
}

fn print_profiles(st: &EuiccState) {
    if st.profiles.is_empty() {
        println!("no profiles installed");
        return;
    }
    for p in &st.profiles {
        println!("{}", profile_line(p));
    }
}

/// Execute a `smdpp euicc` command (network commands run on a private current-thread tokio
/// runtime, so this must not be called from inside an async context).
pub fn run(cmd: EuiccCommand) -> Result<()> {
    match cmd {
        EuiccCommand::Init {
            state,
            pki,
            eid,
            svn,
            json,
        } => {
            let v3 = parse_svn(&svn)?;
            let prov = Provisioning::from_pki_dir(&pki).map_err(|e| anyhow::anyhow!("{e}"))?;
            let st = EuiccState::create_with(&state.state, &prov, eid.as_deref(), v3)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let version = if v3 { "v3 (RPM)" } else { "v2" };
            if json {
                println!("{}", json!({"eid": st.eid, "state": state.state, "v3": v3}));
            } else {
                println!(
                    "created {version} eUICC {} in {}",
                    st.eid,
                    state.state.display()
                );
            }
            Ok(())
        }
        EuiccCommand::Poll {
            state,
            iccid,
            no_consent,
            imei,
            transport,
            json,
        } => {
            let mut euicc = open(&state.state)?;
            let lpa = lpa_for(&euicc, &transport)?;
            let opts = PollOptions {
                rpm_consent: !no_consent,
                iccid,
                imei,
                ..PollOptions::default()
            };
            let r = runtime()?.block_on(lpa.poll(&mut euicc, &opts));
            euicc.save_if_dirty().map_err(|e| anyhow::anyhow!("{e}"))?;
            let report = r.map_err(describe)?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                for line in poll_lines(&report) {
                    println!("{line}");
                }
            }
            if !report.failures.is_empty() {
                bail!("{} poll(s) failed", report.failures.len());
            }
            Ok(())
        }
        EuiccCommand::Download {
            state,
            activation_code,
            cc,
            imei,
            transport,
            no_notify,
            json,
        } => {
            let mut euicc = open(&state.state)?;
            let lpa = lpa_for(&euicc, &transport)?;
            let opts = DownloadOptions {
                confirmation_code: cc,
                imei,
                send_pir: !no_notify,
            };
            let r = runtime()?.block_on(lpa.download(&mut euicc, &activation_code, &opts));
            euicc.save_if_dirty().map_err(|e| anyhow::anyhow!("{e}"))?;
            match r {
                Ok(o) => {
                    if json {
                        println!("{}", serde_json::to_string(&o)?);
                    } else {
                        println!("{}", installed_line(&o));
                        match (&o.notification_sent, &o.notification_error) {
                            (true, _) => {
                                println!("installation result sent (seq {})", o.seq_number)
                            }
                            (false, Some(e)) => println!(
                                "installation result NOT sent (seq {}): {e}; retry with `notifications process`",
                                o.seq_number
                            ),
                            (false, None) => {
                                println!("installation result kept (seq {})", o.seq_number)
                            }
                        }
                    }
                    Ok(())
                }
                Err(e) => Err(describe(e)),
            }
        }
        EuiccCommand::Notifications { command } => match command {
            NotificationsCommand::List { state, json } => {
                let euicc = open(&state.state)?;
                let n = &euicc.state().notifications;
                if json {
                    let v: Vec<_> = n
                        .iter()
                        .map(|n| {
                            json!({"seqNumber": n.seq_number, "operation": n.operation.name(),
                                   "notificationAddress": n.address, "iccid": n.iccid})
                        })
                        .collect();
                    println!("{}", serde_json::Value::Array(v));
                } else if n.is_empty() {
                    println!("no pending notifications");
                } else {
                    for n in n {
                        println!(
                            "{:>5}  {:8}  {}  {}",
                            n.seq_number,
                            n.operation.name(),
                            n.iccid.as_deref().unwrap_or("-"),
                            n.address
                        );
                    }
                }
                Ok(())
            }
            NotificationsCommand::Process {
                state,
                transport,
                json,
            } => {
                let mut euicc = open(&state.state)?;
                let lpa = lpa_for(&euicc, &transport)?;
                let d = runtime()?.block_on(lpa.process_notifications(&mut euicc));
                euicc.save_if_dirty().map_err(|e| anyhow::anyhow!("{e}"))?;
                if json {
                    println!("{}", serde_json::to_string(&d)?);
                } else if d.is_empty() {
                    println!("no pending notifications");
                } else {
                    for n in &d {
                        match &n.error {
                            None => {
                                println!("sent {} {} to {}", n.seq_number, n.operation, n.address)
                            }
                            Some(e) => println!("FAILED {} {}: {e}", n.seq_number, n.operation),
                        }
                    }
                }
                let failed = d.iter().filter(|n| n.error.is_some()).count();
                if failed > 0 {
                    bail!("{failed} notification(s) could not be delivered");
                }
                Ok(())
            }
        },
        EuiccCommand::Profiles { command } => profiles(command),
        EuiccCommand::Info { state, json } => {
            let euicc = open(&state.state)?;
            let st = euicc.state();
            let info2 = euicc.euicc_info2();
            let ver = |v: &rsp_asn1::common::VersionType| {
                v.as_bytes()
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(".")
            };
            let cis: Vec<String> = info2
                .ci_pkid_list_for_verification
                .iter()
                .map(|s| hex::encode_upper(s.as_bytes()))
                .collect();
            if json {
                println!(
                    "{}",
                    json!({
                        "eid": st.eid,
                        "svn": ver(&info2.svn),
                        "highestSvn": info2.highest_svn.as_ref().map(ver),
                        "rpmSupport": euicc.is_v3(),
                        "profileVersion": ver(&info2.profile_version),
                        "firmwareVersion": ver(&info2.euicc_firmware_ver),
                        "ciPKIdListForVerification": cis,
                        "defaultSmdpAddress": st.default_smdp_address,
                        "rootDsAddress": st.root_ds_address,
                        "profiles": profiles_json(st),
                        "pendingNotifications": st.notifications.len(),
                    })
                );
            } else {
                println!("EID:                   {}", st.eid);
                println!("SVN:                   {}", ver(&info2.svn));
                if let Some(h) = &info2.highest_svn {
                    println!("highest SVN:           {} (RPM supported)", ver(h));
                }
                println!("profile version:       {}", ver(&info2.profile_version));
                println!("trusted CIs (SKI):     {}", cis.join(", "));
                println!(
                    "default SM-DP+:        {}",
                    st.default_smdp_address.as_deref().unwrap_or("-")
                );
                println!("pending notifications: {}", st.notifications.len());
                print_profiles(st);
            }
            Ok(())
        }
        EuiccCommand::Authenticate {
            state,
            iccid,
            rand,
            autn,
            json,
        } => {
            let rand = parse_hex16("--rand", &rand)?;
            let autn = parse_hex16("--autn", &autn)?;
            let mut euicc = open(&state.state)?;
            let r = euicc.usim_authenticate(&iccid, &rand, &autn);
            euicc.save_if_dirty().map_err(|e| anyhow::anyhow!("{e}"))?;
            let outcome = r.map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                println!("{}", authenticate_json(&outcome));
            } else {
                for line in authenticate_lines(&outcome) {
                    println!("{line}");
                }
            }
            Ok(())
        }
        EuiccCommand::LpacStdio { state } => {
            let euicc = open(&state.state)?;
            let mut card = crate::apdu::ApduCard::new(euicc);
            let stdin = std::io::stdin();
            let stdout = std::io::stdout();
            crate::lpac::serve(&mut card, stdin.lock(), stdout.lock(), |line| {
                eprintln!("{line}")
            })
            .context("lpac stdio")
        }
    }
}

/// A 16-octet hex argument (`--rand`, `--autn`); spaces and colons are ignored.
pub fn parse_hex16(what: &str, s: &str) -> Result<[u8; 16]> {
    let clean: String = s.chars().filter(|c| !matches!(c, ' ' | ':')).collect();
    let v = hex::decode(&clean).map_err(|e| anyhow::anyhow!("{what}: not hexadecimal ({e})"))?;
    <[u8; 16]>::try_from(v.as_slice()).map_err(|_| {
        anyhow::anyhow!(
            "{what}: must be 16 octets (32 hex digits), got {} octet(s)",
            v.len()
        )
    })
}

/// The lines `smdpp euicc authenticate` prints: `RES <hex>`, `CK <hex>`, `IK <hex>`, or
/// `AUTS <hex>` for a synchronisation failure (lower-case hex).
pub fn authenticate_lines(o: &AuthOutcome) -> Vec<String> {
    match o {
        AuthOutcome::Success { res, ck, ik } => vec![
            format!("RES {}", hex::encode(res)),
            format!("CK {}", hex::encode(ck)),
            format!("IK {}", hex::encode(ik)),
        ],
        AuthOutcome::SyncFailure { auts } => vec![format!("AUTS {}", hex::encode(auts))],
    }
}

/// The `--json` output of `smdpp euicc authenticate`:
/// `{"result":"success","res":..,"ck":..,"ik":..}` or
/// `{"result":"syncFailure","auts":..}` (lower-case hex).
pub fn authenticate_json(o: &AuthOutcome) -> serde_json::Value {
    match o {
        AuthOutcome::Success { res, ck, ik } => json!({
            "result": "success",
            "res": hex::encode(res),
            "ck": hex::encode(ck),
            "ik": hex::encode(ik),
        }),
        AuthOutcome::SyncFailure { auts } => json!({
            "result": "syncFailure",
            "auts": hex::encode(auts),
        }),
    }
}

/// `--svn`: `true` for 3.x (v3 with RPM), `false` for 2.x.
fn parse_svn(svn: &str) -> Result<bool> {
    let major = svn
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .unwrap_or("");
    match major {
        "3" => Ok(true),
        "2" => Ok(false),
        _ => bail!("--svn {svn:?}: expected a 2.x or 3.x version, e.g. 2.2.2 or 3.1.0"),
    }
}

/// The lines `smdpp euicc poll` prints: one per executed command
/// (`disable 8999...: ok`, `delete 8999...: failed (code 2)`, `enable 8999...: not run`),
/// package-level errors, refusals, and `no pending RPM` when no package was received.
pub fn poll_lines(report: &PollReport) -> Vec<String> {
    let mut lines = Vec::new();
    for p in &report.packages {
        if p.rejected {
            lines.push(format!(
                "RPM package {} from {} rejected by the user ({} command(s))",
                p.transaction_id,
                p.smdp_address,
                p.commands.len()
            ));
            continue;
        }
        if let Some(c) = p.package_error {
            lines.push(format!(
                "RPM package {} from {} refused by the eUICC: error {c}",
                p.transaction_id, p.smdp_address
            ));
        } else {
            for c in &p.commands {
                let what = match (c.ok, c.code) {
                    (true, _) => "ok".to_owned(),
                    (false, Some(code)) => format!("failed (code {code})"),
                    (false, None) => "not run".to_owned(),
                };
                lines.push(format!(
                    "{} {}: {what}",
                    c.command,
                    c.iccid.as_deref().unwrap_or("-")
                ));
            }
        }
        if let Some(e) = &p.result_error {
            lines.push(format!(
                "RPM result NOT sent: {e}; retry with `notifications process`"
            ));
        }
    }
    if report.packages.is_empty() {
        lines.push("no pending RPM".to_owned());
    }
    for f in &report.failures {
        lines.push(format!(
            "poll of {} for {} FAILED: {}",
            f.smdp_address, f.iccid, f.error
        ));
    }
    for n in report.notifications.iter().filter(|n| n.error.is_some()) {
        lines.push(format!(
            "notification {} {} NOT sent: {}",
            n.seq_number,
            n.operation,
            n.error.as_deref().unwrap_or_default()
        ));
    }
    lines
}

fn describe(e: LpaError) -> anyhow::Error {
    match &e {
        LpaError::Server(s) => anyhow::anyhow!(
            "SM-DP+ refused {}: subjectCode {} reasonCode {}{}",
            s.function,
            s.subject_code,
            s.reason_code,
            s.message
                .as_ref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ),
        _ => anyhow::anyhow!("{e}"),
    }
}

fn profiles(cmd: ProfilesCommand) -> Result<()> {
    match cmd {
        ProfilesCommand::List { state, json } => {
            let euicc = open(&state.state)?;
            if json {
                println!("{}", profiles_json(euicc.state()));
            } else {
                print_profiles(euicc.state());
            }
            Ok(())
        }
        ProfilesCommand::Enable { state, id } => {
            let pid = parse_profile_id(&id)?;
            let mut euicc = open(&state.state)?;
            let r = euicc.enable_profile(&pid);
            euicc.save_if_dirty().map_err(|e| anyhow::anyhow!("{e}"))?;
            if r != rsp_asn1::es10c::EnableResult::Ok {
                bail!("enable {id}: {r:?}");
            }
            println!("enabled {id}");
            Ok(())
        }
        ProfilesCommand::Disable { state, id } => {
            let pid = parse_profile_id(&id)?;
            let mut euicc = open(&state.state)?;
            let r = euicc.disable_profile(&pid);
            euicc.save_if_dirty().map_err(|e| anyhow::anyhow!("{e}"))?;
            if r != rsp_asn1::es10c::DisableResult::Ok {
                bail!("disable {id}: {r:?}");
            }
            println!("disabled {id}");
            Ok(())
        }
        ProfilesCommand::Delete { state, id } => {
            let pid = parse_profile_id(&id)?;
            let mut euicc = open(&state.state)?;
            let r = euicc.delete_profile(&pid);
            euicc.save_if_dirty().map_err(|e| anyhow::anyhow!("{e}"))?;
            if r != rsp_asn1::es10c::DeleteResult::Ok {
                bail!("delete {id}: {r:?}");
            }
            println!("deleted {id}");
            Ok(())
        }
        ProfilesCommand::Nickname {
            state,
            iccid,
            nickname,
        } => {
            let Some(i) = Iccid::from_digits(&iccid) else {
                bail!("{iccid:?} is not an ICCID (19 or 20 digits)");
            };
            if nickname.len() > 64 {
                bail!(
                    "the nickname is {} bytes; at most 64 are allowed",
                    nickname.len()
                );
            }
            let mut euicc = open(&state.state)?;
            let r = euicc.set_nickname(&i, &nickname);
            euicc.save_if_dirty().map_err(|e| anyhow::anyhow!("{e}"))?;
            if r != rsp_asn1::es10c::SetNicknameResult::Ok {
                bail!("nickname {iccid}: {r:?}");
            }
            println!("nickname of {iccid} set");
            Ok(())
        }
    }
}
