//! A real core network in the loop: Osmocom's osmo-hlr (Debian package `osmo-hlr`, started
//! here as a process with its own SQLite file on its own 127.0.0.N, since osmo-hlr 1.5 always
//! binds GSUP 4222 and CTRL 4259). A generating profile type bound to it: ES2+ DownloadOrder
//! and ConfirmOrder(releaseFlag) over HTTPS → the outbox provisions the subscriber through the
//! CTRL interface (IMSI, Ki, OPc, Milenage) → the subscriber is in the HLR's own database
//! with exactly the profile's keys → deactivation → the HLR no longer has it. HLR down:
//! the row is retried and delivered when it is back, nothing lost. An IMSI the HLR already
//! holds with other keys: the row fails at once with the HLR's reason. And the proof that a
//! downloaded profile authenticates: the virtual eUICC downloads the generated profile over
//! HTTPS, a GSUP client (IPA on TCP 4222, as an MSC/SGSN) gets an auth vector from the real
//! HLR, the card's USIM AUTHENTICATE gives RES == XRES with the same CK/IK, a replay gives
//! AUTS, and after deactivation the HLR refuses the IMSI.
//!
//! The HLR's state is read from its SQLite file (tables `subscriber`, `auc_3g`), not through
//! our connector. Skipped with a notice without osmo-hlr unless `SMDPP_REQUIRE_OSMO_HLR=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../smdpp-service/tests/common/mod.rs"]
mod common;
#[path = "../../smdpp-service/tests/common/webhook_receiver.rs"]
mod webhook_receiver;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use common::*;
use rsp_crypto::Curve;
use saip::{OperatorKey, TemplateSource};
use serde_json::json;
use smdpp_service::core_network::{CoreNetwork, OsmoHlr, Subscriber};
use smdpp_service::generate::GenerationPolicy;
use smdpp_service::inventory::{ALL_NOTIFY, build_profile_type};
use smdpp_service::operators::add_operator;
use smdpp_service::outbox::OutboxConfig;
use smdpp_store::{CoreNetworkRow, OutboxKind, OutboxState, Signal, TypeCoreNetwork};

// ------------------------------------------------------------------ the HLR

fn osmo_hlr_available() -> bool {
    let ok = Command::new("osmo-hlr")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            std::env::var("SMDPP_REQUIRE_OSMO_HLR").as_deref() != Ok("1"),
            "SMDPP_REQUIRE_OSMO_HLR=1 but osmo-hlr is not installed"
        );
        eprintln!("SKIPPED: osmo-hlr not installed (apt-get install osmo-hlr)");
    }
    ok
}

static NEXT_IP: AtomicU8 = AtomicU8::new(0);

/// An osmo-hlr process on its own 127.0.0.N with its own database, killed on drop.
struct Hlr {
    ip: Ipv4Addr,
    dir: PathBuf,
    child: Option<Child>,
}

impl Hlr {
    fn start(dir: &Path) -> Hlr {
        // Distinct per test and per test binary run (pid), away from 127.0.0.1.
        let base = u8::try_from(std::process::id() % 100).unwrap();
        let n = 20 + (base + NEXT_IP.fetch_add(1, Ordering::Relaxed)) % 200;
        let ip = Ipv4Addr::new(127, 0, 0, n);
        let dir = dir.join("hlr");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("hlr.cfg"),
            format!(
                "log stderr\n logging level all notice\nline vty\n bind {ip}\nctrl\n bind {ip}\nhlr\n gsup\n  bind ip {ip}\n"
            ),
        )
        .unwrap();
        let mut h = Hlr {
            ip,
            dir,
            child: None,
        };
        h.up();
        h
    }

    fn up(&mut self) {
        let log = std::fs::File::create(self.dir.join("hlr.log")).unwrap();
        let child = Command::new("osmo-hlr")
            .arg("-c")
            .arg(self.dir.join("hlr.cfg"))
            .arg("-l")
            .arg(self.dir.join("hlr.db"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect((self.ip, 4259)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "osmo-hlr did not start: {}",
                std::fs::read_to_string(self.dir.join("hlr.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn ctrl(&self) -> String {
        format!("{}:4259", self.ip)
    }

    /// `(ki, opc, nam_cs, nam_ps)` of `imsi` in the HLR's database, if it is there.
    async fn subscriber(&self, imsi: &str) -> Option<(Option<String>, Option<String>, i64, i64)> {
        use sqlx::Row;
        let url = format!("sqlite://{}?mode=ro", self.dir.join("hlr.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let row = sqlx::query(
            "SELECT s.nam_cs, s.nam_ps, a.k, a.opc FROM subscriber s \
             LEFT JOIN auc_3g a ON a.subscriber_id = s.id WHERE s.imsi = ?",
        )
        .bind(imsi)
        .fetch_optional(&pool)
        .await
        .unwrap();
        pool.close().await;
        row.map(|r| {
            (
                r.try_get::<Option<String>, _>("k").unwrap(),
                r.try_get::<Option<String>, _>("opc").unwrap(),
                r.try_get::<i64, _>("nam_cs").unwrap(),
                r.try_get::<i64, _>("nam_ps").unwrap(),
            )
        })
    }
}

impl Drop for Hlr {
    fn drop(&mut self) {
        self.down();
    }
}

// ------------------------------------------------------------------ the server

struct Env {
    server: Server,
    op: ClientCert,
    hlr: Hlr,
    pki: rsp_pki::TestPki,
}

async fn env(dir: &Path, db: &Db, on_deactivate: &str) -> Env {
    let hlr = Hlr::start(dir);
    let (pki, mut s) = pki_settings(dir, db, Curve::NistP256);
    s.limits.outbox = OutboxConfig {
        poll_interval: Duration::from_millis(20),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        max_attempts: 1000,
        request_timeout: Duration::from_secs(2),
        ..OutboxConfig::default()
    };
    let server = Server::start_lpa(s).await;
    let op = client_cert("operator-a.example");
    add_operator(server.store(), "op-a", &op.cert_der, None)
        .await
        .unwrap();
    let t = build_profile_type(
        "gen",
        &TemplateSource::usim_isim_milenage(),
        "Gen SP",
        "Generated",
        None,
        None,
        &ALL_NOTIFY,
        &[],
        None,
        None,
    )
    .unwrap();
    let f = server.factory();
    f.add_profile_type(&t).await.unwrap();
    f.add_generator(
        "gen",
        &GenerationPolicy {
            iccid_first: "894400000000000000".into(),
            imsi_first: "001010000000001".into(),
            mnc_len: 2,
            size: 100,
            opc_from_op: false,
            pin_digits: 4,
        },
        None,
    )
    .await
    .unwrap();
    let store = server.store();
    store
        .insert_core_network(&CoreNetworkRow {
            name: "hlr".into(),
            kind: "osmo-hlr".into(),
            address: hlr.ctrl(),
            created_at: 0,
        })
        .await
        .unwrap();
    store
        .set_type_core_network(&TypeCoreNetwork {
            profile_type: "gen".into(),
            core_network: "hlr".into(),
            provision_at: Signal::Released,
            on_deactivate: on_deactivate.into(),
        })
        .await
        .unwrap();
    Env {
        server,
        op,
        hlr,
        pki,
    }
}

impl Env {
    /// DownloadOrder by type + ConfirmOrder(releaseFlag): (ICCID, IMSI).
    async fn release(&self) -> (String, String) {
        let (iccid, imsi, _) = self.release_mid().await;
        (iccid, imsi)
    }

    /// As [`Env::release`], with the MatchingID.
    async fn release_mid(&self) -> (String, String, String) {
        let v = es2_call(
            &self.server,
            "op-a",
            &self.op,
            "downloadOrder",
            json!({"profileType": "gen"}),
        )
        .await;
        assert_es2_success("downloadOrder", &v);
        let iccid = v["iccid"].as_str().unwrap().to_owned();
        let v = es2_call(
            &self.server,
            "op-a",
            &self.op,
            "confirmOrder",
            json!({"iccid": iccid, "releaseFlag": true}),
        )
        .await;
        assert_es2_success("confirmOrder", &v);
        let mid = v["matchingId"].as_str().unwrap().to_owned();
        let s = self
            .server
            .store()
            .get_sealed_secrets(&iccid)
            .await
            .unwrap()
            .unwrap();
        (iccid, s.imsi, mid)
    }

    async fn keys(&self, iccid: &str) -> (String, String) {
        let sealed = self
            .server
            .store()
            .get_sealed_secrets(iccid)
            .await
            .unwrap()
            .unwrap();
        let s = self.server.factory().open_secrets(&sealed).await.unwrap();
        let OperatorKey::Opc(opc) = &s.operator_key else {
            panic!("OPc expected")
        };
        (
            s.ki.expose().to_ascii_lowercase(),
            opc.expose().to_ascii_lowercase(),
        )
    }

    async fn core_rows(&self, iccid: &str) -> Vec<smdpp_store::OutboxRow> {
        self.server
            .store()
            .list_outbox(None, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == OutboxKind::CoreNetwork && r.iccid.as_deref() == Some(iccid))
            .collect()
    }

    async fn wait_rows(
        &self,
        iccid: &str,
        n: usize,
        state: OutboxState,
    ) -> Vec<smdpp_store::OutboxRow> {
        let start = Instant::now();
        loop {
            let rows = self.core_rows(iccid).await;
            if rows.len() == n && rows.iter().all(|r| r.state == state) {
                return rows;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{rows:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn deactivate(&self, iccid: &str) {
        let engine = smdpp_service::Es2Engine::new(
            self.server.store().clone(),
            self.server.sidecar().await,
            smdpp_service::ServiceConfig {
                smdp_address: self.server.address(),
                limits: smdpp_service::Limits::default(),
            },
        );
        let req: smdpp_core::rpm_json::DeactivateRequest = serde_json::from_value(json!({
            "header": {"functionRequesterIdentifier": "op-a", "functionCallIdentifier": fci()},
            "iccid": iccid, "reason": "terminated", "mode": "delete"
        }))
        .unwrap();
        engine.deactivate("op-a", &req).await.unwrap();
    }
}

async fn released_profile_is_provisioned_and_deactivation_removes_it(dir: &Path, db: &Db) {
    if !osmo_hlr_available() {
        return;
    }
    let e = env(dir, db, "delete").await;
    let (iccid, imsi) = e.release().await;
    let rows = e.wait_rows(&iccid, 1, OutboxState::Delivered).await;
    assert_eq!(rows[0].target.as_deref(), Some("hlr"));
    assert!(
        !rows[0].body.contains(&e.keys(&iccid).await.0),
        "no Ki in the outbox"
    );
    let (ki, opc) = e.keys(&iccid).await;
    let (k, o, cs, ps) = e
        .hlr
        .subscriber(&imsi)
        .await
        .expect("subscriber in the HLR");
    assert_eq!(k.unwrap().to_ascii_lowercase(), ki);
    assert_eq!(o.unwrap().to_ascii_lowercase(), opc);
    assert_eq!((cs, ps), (1, 1));

    e.deactivate(&iccid).await;
    e.wait_rows(&iccid, 2, OutboxState::Delivered).await;
    assert_eq!(e.hlr.subscriber(&imsi).await, None, "deleted from the HLR");
    e.server.stop().await;
}

async fn block_policy_keeps_the_record_without_keys(dir: &Path, db: &Db) {
    if !osmo_hlr_available() {
        return;
    }
    let e = env(dir, db, "block").await;
    let (iccid, imsi) = e.release().await;
    e.wait_rows(&iccid, 1, OutboxState::Delivered).await;
    e.deactivate(&iccid).await;
    e.wait_rows(&iccid, 2, OutboxState::Delivered).await;
    let (k, _, cs, ps) = e.hlr.subscriber(&imsi).await.expect("record kept");
    assert_eq!(k, None, "authentication data removed");
    assert_eq!((cs, ps), (0, 0), "CS and PS disabled");
    // Blocking again (a retried row) succeeds.
    let hlr = OsmoHlr::new(&e.hlr.ctrl(), Duration::from_secs(2));
    assert_eq!(hlr.deprovision(&imsi, true).await.unwrap(), "blocked");
    e.server.stop().await;
}

async fn rejects_hlr_down_then_delivers_when_it_is_back(dir: &Path, db: &Db) {
    if !osmo_hlr_available() {
        return;
    }
    let mut e = env(dir, db, "delete").await;
    e.hlr.down();
    let (iccid, imsi) = e.release().await;
    // Attempts fail and the row stays pending.
    let start = Instant::now();
    loop {
        let rows = e.core_rows(&iccid).await;
        if rows.len() == 1 && rows[0].attempts >= 2 {
            assert_eq!(rows[0].state, OutboxState::Pending);
            assert!(
                rows[0].last_error.as_deref().unwrap().contains("connect"),
                "{rows:?}"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    e.hlr.up();
    e.wait_rows(&iccid, 1, OutboxState::Delivered).await;
    assert!(e.hlr.subscriber(&imsi).await.is_some());
    e.server.stop().await;
}

async fn rejects_duplicate_imsi_with_other_keys(dir: &Path, db: &Db) {
    if !osmo_hlr_available() {
        return;
    }
    let e = env(dir, db, "delete").await;
    // Someone else's subscriber already holds the first IMSI of the range.
    let other = OsmoHlr::new(&e.hlr.ctrl(), Duration::from_secs(2));
    other
        .provision(&Subscriber {
            imsi: "001010000000001",
            ki: "000102030405060708090A0B0C0D0E0F",
            key_kind: "OPC",
            key: "0F0E0D0C0B0A09080706050403020100",
        })
        .await
        .unwrap();
    let (iccid, imsi) = e.release().await;
    assert_eq!(imsi, "001010000000001");
    let rows = e.wait_rows(&iccid, 1, OutboxState::Failed).await;
    assert_eq!(rows[0].attempts, 1, "refused at once, not retried");
    assert!(
        rows[0].last_error.as_deref().unwrap().contains(
            "IMSI 001010000000001 already exists in the HLR with other authentication data"
        ),
        "{rows:?}"
    );
    // The other subscriber's keys are untouched.
    let (k, ..) = e.hlr.subscriber(&imsi).await.unwrap();
    assert_eq!(
        k.unwrap().to_ascii_uppercase(),
        "000102030405060708090A0B0C0D0E0F"
    );
    // Provisioning the same keys again is idempotent.
    let again = other
        .provision(&Subscriber {
            imsi: "001010000000001",
            ki: "000102030405060708090A0B0C0D0E0F",
            key_kind: "OPC",
            key: "0F0E0D0C0B0A09080706050403020100",
        })
        .await
        .unwrap();
    assert_eq!(again, "already present");
    e.server.stop().await;
}

// ------------------------------------------------------------------ GSUP (the MSC/SGSN side)

/// An authentication vector from the HLR.
#[derive(Debug)]
struct AuthVector {
    rand: [u8; 16],
    autn: [u8; 16],
    xres: Vec<u8>,
    ck: Vec<u8>,
    ik: Vec<u8>,
}

fn ipa(proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = u16::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    f.push(proto);
    f.extend_from_slice(payload);
    f
}

fn read_ipa(s: &mut std::net::TcpStream) -> (u8, Vec<u8>) {
    use std::io::Read;
    let mut h = [0u8; 3];
    s.read_exact(&mut h).unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes([h[0], h[1]]))];
    s.read_exact(&mut body).unwrap();
    (h[2], body)
}

fn bcd(digits: &str) -> Vec<u8> {
    let d: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
    d.chunks(2)
        .map(|c| c[0] | (c.get(1).copied().unwrap_or(0xF) << 4))
        .collect()
}

/// GSUP SendAuthInfo (osmo-hlr's IPA-framed protocol on TCP 4222): one vector, or the
/// GSUP cause of the error answer.
fn send_auth_info(ip: Ipv4Addr, imsi: &str) -> Result<AuthVector, u8> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect((ip, 4222)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The server asks who we are (IPA CCM ID_GET); it routes by the serial-number tag.
    // It needs the serial number (routing name, tag 0x00) and the unit ID (tag 0x08).
    let mut resp = vec![0x05];
    for (tag, value) in [(0x00u8, &b"SMDPP-TEST-MSC\0"[..]), (0x08, &b"0/0/0\0"[..])] {
        resp.extend_from_slice(&u16::try_from(value.len() + 1).unwrap().to_be_bytes());
        resp.push(tag);
        resp.extend_from_slice(value);
    }
    let mut req = vec![0x05, 0x08, 0x01]; // GSUP ext, SendAuthInfo Request, IMSI IE
    let b = bcd(imsi);
    req.push(u8::try_from(b.len()).unwrap());
    req.extend_from_slice(&b);
    let mut sent_id = false;
    loop {
        let (proto, body) = read_ipa(&mut s);
        match (proto, body.first()) {
            (0xFE, Some(0x04)) => {
                s.write_all(&ipa(0xFE, &resp)).unwrap();
                sent_id = true;
                s.write_all(&ipa(0xEE, &req)).unwrap();
            }
            (0xFE, Some(0x00)) => s.write_all(&ipa(0xFE, &[0x01])).unwrap(),
            (0xFE, _) => {}
            (0xEE, Some(0x05)) if sent_id => {
                let msg = &body[1..];
                let ies = tlvs(&msg[1..]);
                return match msg[0] {
                    0x0A => {
                        let t = ies.iter().find(|(t, _)| *t == 0x03).expect("auth tuple");
                        let inner = tlvs(&t.1);
                        let get = |tag: u8| {
                            inner
                                .iter()
                                .find(|(t, _)| *t == tag)
                                .map(|(_, v)| v.clone())
                                .unwrap_or_default()
                        };
                        Ok(AuthVector {
                            rand: get(0x20).try_into().unwrap(),
                            autn: get(0x25).try_into().unwrap(),
                            xres: get(0x27),
                            ck: get(0x24),
                            ik: get(0x23),
                        })
                    }
                    0x09 => Err(ies.iter().find(|(t, _)| *t == 0x02).map_or(0, |c| c.1[0])),
                    other => panic!("unexpected GSUP message 0x{other:02x}"),
                };
            }
            _ => {}
        }
    }
}

fn tlvs(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while b.len() >= 2 {
        let (t, l) = (b[0], usize::from(b[1]));
        out.push((t, b[2..2 + l].to_vec()));
        b = &b[2 + l..];
    }
    out
}

async fn downloaded_profile_authenticates_against_the_hlr(dir: &Path, db: &Db) {
    if !osmo_hlr_available() {
        return;
    }
    let e = env(dir, db, "delete").await;
    // Billing listens: a signed webhook for every event.
    let rx = webhook_receiver::WebhookReceiver::http().await;
    let added = smdpp::webhooks_cli::add_webhook(&smdpp::webhooks_cli::WebhookAddArgs {
        data: smdpp::cli::DataArgs {
            data_dir: Some(e.server.settings.data_dir.clone()),
            database_url: Some(db.url.clone()),
            config: None,
            kek_file: Some(e.server.settings.kek_file.clone()),
        },
        url: rx.url("/billing"),
        events: "*".into(),
        operator: None,
        ca: None,
        secret_file: None,
    })
    .await
    .unwrap();
    rx.set_secret(added.secret.unwrap().as_bytes());
    let (iccid, imsi, mid) = e.release_mid().await;
    e.wait_rows(&iccid, 1, OutboxState::Delivered).await;
    // The virtual eUICC downloads and installs the generated profile over HTTPS.
    let mut euicc = sim_euicc(&e.pki);
    let lpa = sim_lpa(&[&e.pki]);
    let out = lpa
        .download(
            &mut euicc,
            &format!("LPA:1${}${mid}", e.server.address()),
            &euicc_sim::lpa::DownloadOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.iccid, iccid);
    // The real HLR's vector, answered by the card: RES == XRES, same CK and IK.
    let ip = e.hlr.ip;
    let imsi2 = imsi.clone();
    let v = tokio::task::spawn_blocking(move || send_auth_info(ip, &imsi2))
        .await
        .unwrap()
        .expect("the HLR serves the subscriber");
    match euicc.usim_authenticate(&iccid, &v.rand, &v.autn).unwrap() {
        euicc_sim::usim::AuthOutcome::Success { res, ck, ik } => {
            assert_eq!(res, v.xres, "RES == XRES");
            assert_eq!(ck.to_vec(), v.ck);
            assert_eq!(ik.to_vec(), v.ik);
        }
        other => panic!("card refused the HLR's vector: {other:?}"),
    }
    // The same vector again is a replay: the card asks to resynchronise (AUTS).
    assert!(matches!(
        euicc.usim_authenticate(&iccid, &v.rand, &v.autn).unwrap(),
        euicc_sim::usim::AuthOutcome::SyncFailure { .. }
    ));
    // After deactivation the HLR refuses the IMSI (GSUP cause 2, IMSI unknown).
    e.deactivate(&iccid).await;
    e.wait_rows(&iccid, 2, OutboxState::Delivered).await;
    let r = tokio::task::spawn_blocking(move || send_auth_info(ip, &imsi))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), 2, "IMSI unknown");
    // The webhook receiver got each event once, each with a valid signature.
    let want = [
        "profile.created",
        "profile.released",
        "profile.installed",
        "profile.deactivated",
    ];
    let start = Instant::now();
    loop {
        let hits = rx.hits();
        let types: Vec<String> = hits
            .iter()
            .map(|h| h.json()["type"].as_str().unwrap_or_default().to_owned())
            .collect();
        if want.iter().all(|w| types.iter().any(|t| t == w)) {
            for w in want {
                assert_eq!(
                    types.iter().filter(|t| *t == w).count(),
                    1,
                    "{w} once: {types:?}"
                );
            }
            for h in &hits {
                assert_eq!(h.verified, Some(Ok(())), "signature of {h:?}");
                assert_eq!(h.json()["iccid"], json!(iccid));
            }
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{types:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    e.server.stop().await;
}

both_backends!(
    downloaded_profile_authenticates_against_the_hlr,
    released_profile_is_provisioned_and_deactivation_removes_it,
    block_policy_keeps_the_record_without_keys,
    rejects_hlr_down_then_delivers_when_it_is_back,
    rejects_duplicate_imsi_with_other_keys,
);
