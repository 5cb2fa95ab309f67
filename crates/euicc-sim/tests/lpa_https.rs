//! The LPA against the in-test SM-DP+ over real HTTPS (and plain HTTP).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use euicc_sim::lpa::{DownloadOptions, Lpa, LpaError, Step, Tamper, Transport};
use rsp_asn1::common::{Iccid, ProfileIdentifier};

const ICCID: &str = "8944000000000000017";

async fn setup(
    tls: bool,
) -> (
    Arc<Mutex<MiniDp>>,
    String,
    euicc_sim::Euicc,
    Arc<rsp_pki::TestPki>,
) {
    let pki = Arc::new(loopback_pki());
    let dp = Arc::new(Mutex::new(MiniDp::new(pki.clone())));
    dp.lock().unwrap().orders.insert(
        "MATCH-1".into(),
        Order {
            iccid: ICCID.into(),
            cc: None,
        },
    );
    dp.lock().unwrap().orders.insert(
        "MATCH-CC".into(),
        Order {
            iccid: "8944000000000000025".into(),
            cc: Some("4711".into()),
        },
    );
    let addr = serve(dp.clone(), tls).await;
    let euicc = euicc_for(&pki);
    (dp, format!("127.0.0.1:{}", addr.port()), euicc, pki)
}

fn verified(pki: &rsp_pki::TestPki) -> Lpa {
    Lpa::new(Transport::Https(pki.trust_store().unwrap())).unwrap()
}

#[tokio::test]
async fn download_over_verified_https_installs_and_delivers_pir() {
    let (dp, addr, mut euicc, pki) = setup(true).await;
    let lpa = verified(&pki);
    let out = lpa
        .download(
            &mut euicc,
            &format!("LPA:1${addr}$MATCH-1"),
            &DownloadOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.iccid, ICCID);
    assert_eq!(out.isdp_aid, "A0000005591010FFFFFFFF8900001000");
    assert!(out.notification_sent, "{:?}", out.notification_error);
    assert_eq!(euicc.state().profiles.len(), 1);
    assert!(
        euicc.state().notifications.is_empty(),
        "PIR removed after 2xx"
    );
    assert_eq!(dp.lock().unwrap().notifications.len(), 1);
    assert!(dp.lock().unwrap().cancels.is_empty());

    // Enable → notification → process_notifications delivers it to the profile's address.
    let id = ProfileIdentifier::Iccid(Iccid::from_digits(ICCID).unwrap());
    euicc.enable_profile(&id);
    let d = lpa.process_notifications(&mut euicc).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].error, None);
    assert_eq!(d[0].operation, "enable");
    assert_eq!(dp.lock().unwrap().notifications.len(), 2);
    assert!(euicc.state().notifications.is_empty());
}

#[tokio::test]
async fn tls_certificate_of_another_ci_is_refused_unless_insecure() {
    let (_dp, addr, mut euicc, _pki) = setup(true).await;
    let other = pki();
    let lpa = Lpa::new(Transport::Https(other.trust_store().unwrap())).unwrap();
    let ac = format!("LPA:1${addr}$MATCH-1");
    let e = lpa
        .download(&mut euicc, &ac, &DownloadOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, LpaError::Transport(ref m) if m.contains("TLS")),
        "{e}"
    );
    let insecure = Lpa::new(Transport::HttpsInsecure).unwrap();
    // The eUICC still checks DPauth/DPpb against its own CIs: this one works.
    insecure
        .download(&mut euicc, &ac, &DownloadOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn plain_http_transport_works() {
    let (_dp, addr, mut euicc, _pki) = setup(false).await;
    let lpa = Lpa::new(Transport::Http).unwrap();
    let out = lpa
        .download(
            &mut euicc,
            &format!("1${addr}$MATCH-1"),
            &DownloadOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.iccid, ICCID);
}

#[tokio::test]
async fn server_error_is_typed_and_session_cancelled() {
    let (dp, addr, mut euicc, pki) = setup(true).await;
    let lpa = verified(&pki);
    let e = lpa
        .download(
            &mut euicc,
            &format!("LPA:1${addr}$UNKNOWN"),
            &DownloadOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.server_code(), Some(("8.2.6", "3.8")), "{e}");
    let LpaError::Server(s) = &e else { panic!() };
    assert_eq!(s.message.as_deref(), Some("unknown matching ID"));
    // ES10b + ES9+ CancelSession were sent with a signed response.
    let cancels = dp.lock().unwrap().cancels.clone();
    assert_eq!(cancels.len(), 1);
    assert_eq!(&cancels[0][..2], &[0xBF, 0x41]);
    assert!(euicc.session_info().is_none());
}

#[tokio::test]
async fn confirmation_code_missing_wrong_and_right() {
    let (dp, addr, mut euicc, pki) = setup(true).await;
    let lpa = verified(&pki);
    let ac = format!("LPA:1${addr}$MATCH-CC");
    let e = lpa
        .download(&mut euicc, &ac, &DownloadOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, LpaError::ConfirmationCodeRequired), "{e}");
    assert_eq!(
        dp.lock().unwrap().cancels.len(),
        1,
        "cancelled (endUserRejection)"
    );
    let wrong = DownloadOptions {
        confirmation_code: Some("0000".into()),
        ..Default::default()
    };
    let e = lpa.download(&mut euicc, &ac, &wrong).await.unwrap_err();
    assert_eq!(e.server_code(), Some(("8.2.7", "3.8")), "{e}");
    let right = DownloadOptions {
        confirmation_code: Some("4711".into()),
        ..Default::default()
    };
    lpa.download(&mut euicc, &ac, &right).await.unwrap();
    // The AC flag alone makes the LPA refuse locally, before any call.
    let e = lpa
        .download(
            &mut euicc,
            &format!("LPA:1${addr}$MATCH-CC$$1"),
            &DownloadOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, LpaError::ConfirmationCodeRequired));
}

#[tokio::test]
async fn tamper_hooks_forge_signatures_replay_and_corrupt_bpp() {
    let (dp, addr, mut euicc, pki) = setup(true).await;
    let lpa = verified(&pki);
    let ac = format!("LPA:1${addr}$MATCH-1");
    let opts = DownloadOptions::default();

    let mut t = Tamper {
        forge_euicc_signature1: true,
        ..Default::default()
    };
    let e = lpa
        .download_with(&mut euicc, &ac, &opts, &mut t)
        .await
        .unwrap_err();
    assert_eq!(e.server_code(), Some(("8.1", "6.1")), "{e}");

    let mut t = Tamper {
        forge_euicc_signature2: true,
        ..Default::default()
    };
    let e = lpa
        .download_with(&mut euicc, &ac, &opts, &mut t)
        .await
        .unwrap_err();
    assert_eq!(e.server_code(), Some(("8.1", "6.1")), "{e}");

    // Corrupted BPP: the card answers with a PIR error, which is delivered.
    let mut t = Tamper {
        corrupt_bpp_mac: true,
        ..Default::default()
    };
    let n_before = dp.lock().unwrap().notifications.len();
    let e = lpa
        .download_with(&mut euicc, &ac, &opts, &mut t)
        .await
        .unwrap_err();
    let LpaError::InstallFailed {
        error_reason,
        bpp_command_id,
        notification_sent,
        ..
    } = e
    else {
        panic!("{e}")
    };
    assert_eq!((bpp_command_id, error_reason), (5, 8));
    assert!(notification_sent);
    assert_eq!(dp.lock().unwrap().notifications.len(), n_before + 1);
    let old_tid = t.sent_get_bound_profile_package.unwrap().transaction_id;

    // Replay of a used transactionId in getBoundProfilePackage.
    let mut t = Tamper {
        transaction_id: Some(old_tid.clone()),
        ..Default::default()
    };
    let e = lpa
        .download_with(&mut euicc, &ac, &opts, &mut t)
        .await
        .unwrap_err();
    assert_eq!(e.server_code(), Some(("8.10.1", "3.9")), "{e}");

    // Stop before getBoundProfilePackage: session left open; out-of-order raw call.
    let mut t = Tamper {
        stop_before: Some(Step::GetBoundProfilePackage),
        ..Default::default()
    };
    let e = lpa
        .download_with(&mut euicc, &ac, &opts, &mut t)
        .await
        .unwrap_err();
    let LpaError::Stopped {
        step,
        transaction_id: Some(tid),
    } = e
    else {
        panic!("{e}")
    };
    assert_eq!(step, Step::GetBoundProfilePackage);
    assert!(euicc.session_info().unwrap().prepared);
    let bad = smdpp_core::es9_json::GetBoundProfilePackageRequest {
        header: None,
        transaction_id: tid,
        prepare_download_response: vec![0xBF, 0x21, 0x00],
    };
    let e = lpa
        .client()
        .call::<_, smdpp_core::es9_json::GetBoundProfilePackageResponse>(
            &addr,
            smdpp_core::es9_json::Es9Function::GetBoundProfilePackage,
            &bad,
        )
        .await
        .unwrap_err();
    assert_eq!(e.server_code(), Some(("1.3.1", "2.1")), "{e}");

    // Finally a clean download still works on the same card.
    lpa.download(&mut euicc, &ac, &opts).await.unwrap();
}

#[tokio::test]
async fn many_devices_share_one_client() {
    let (_dp, addr, _euicc, pki) = setup(true).await;
    let lpa = verified(&pki);
    let dir = tempfile::tempdir().unwrap();
    pki.write_to(dir.path()).unwrap();
    let prov = euicc_sim::Provisioning::from_pki_dir(dir.path()).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut e = euicc_sim::Euicc::generate(&prov, None).unwrap();
        let lpa = lpa.clone();
        let ac = format!("LPA:1${addr}$MATCH-1");
        tasks.push(tokio::spawn(async move {
            lpa.download(&mut e, &ac, &DownloadOptions::default())
                .await
                .map(|o| o.iccid)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), ICCID);
    }
}

#[tokio::test]
async fn rejects_tls_certificate_without_the_dialled_ip_address() {
    // CERT.DP.TLS names testsmdpplus1.example.com only; the LPA dials 127.0.0.1.
    let pki = Arc::new(pki());
    let dp = Arc::new(Mutex::new(MiniDp::new(pki.clone())));
    dp.lock().unwrap().orders.insert(
        "MATCH-1".into(),
        Order {
            iccid: ICCID.into(),
            cc: None,
        },
    );
    let addr = serve(dp.clone(), true).await;
    let mut euicc = euicc_for(&pki);
    let e = verified(&pki)
        .download(
            &mut euicc,
            &format!("LPA:1$127.0.0.1:{}$MATCH-1", addr.port()),
            &DownloadOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("NotValidForName"),
        "expected a name mismatch, got {e}"
    );
    assert!(euicc.state().profiles.is_empty());
}
