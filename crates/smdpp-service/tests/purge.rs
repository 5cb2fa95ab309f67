//! The periodic purge that `serve` starts (`smdpp_service::purge`): expired RSP sessions and
//! old ES2+ call records are deleted while the server runs, live ones are kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use smdpp_service::assembly::{DataLocation, ServeOptions};
use smdpp_service::assembly::{prepare, run};
use smdpp_store::{Es2CallOutcome, Es2CallRecord, NewSession, now_ms};
use tokio::sync::oneshot;

fn session(tid: &str, expires_at: i64) -> NewSession {
    NewSession {
        transaction_id: tid.into(),
        state: "test".into(),
        eid: None,
        iccid: None,
        data: vec![1, 2, 3],
        created_at: 1,
        expires_at,
    }
}

fn es2_call(fci: &str, created_at: i64) -> Es2CallRecord {
    Es2CallRecord {
        operator_id: "op1".into(),
        function_call_id: fci.into(),
        function_name: "DownloadOrder".into(),
        request_sha256: vec![0; 32],
        response: "{}".into(),
        created_at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_purges_expired_sessions_and_old_es2_calls_periodically() {
    let dir = tempfile::tempdir().unwrap();
    let args = ServeOptions {
        data: DataLocation {
            data_dir: Some(dir.path().join("data")),
            ..DataLocation::default()
        },
        plain_http: true,
        ..ServeOptions::default()
    };
    let mut settings = args.resolve().unwrap();
    assert_eq!(settings.limits.purge_interval, Duration::from_secs(60));
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.demo_profile = false;
    settings.limits.purge_interval = Duration::from_millis(100);
    settings.limits.es2_call_retention = Duration::from_secs(3600);
    let prepared = prepare(settings).await.unwrap();
    let store = prepared.store.clone();
    let listener = smdpp_server::bind(prepared.settings.listen).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        run(&prepared, listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        prepared
    });

    // Inserted after start: only a later run of the periodic purge can delete them.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let now = now_ms();
    store
        .put_session(&session("EXPIRED", now - 1))
        .await
        .unwrap();
    store
        .put_session(&session("LIVE", now + 3_600_000))
        .await
        .unwrap();
    let old = es2_call("old", now - 2 * 3_600_000);
    let recent = es2_call("recent", now);
    assert_eq!(
        store.record_es2_call(&old).await.unwrap(),
        Es2CallOutcome::Inserted
    );
    assert_eq!(
        store.record_es2_call(&recent).await.unwrap(),
        Es2CallOutcome::Inserted
    );
    // (No check that EXPIRED is still there: the purge runs every 100 ms and may already
    // have deleted it; `put_session` returned its row, so it was inserted.)
    // `get_session(_, 0)` sees a row whatever its expiry: it tells whether the row exists.

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let session_gone = store.get_session("EXPIRED", 0).await.unwrap().is_none();
        let call_gone = store.get_es2_call("op1", "old").await.unwrap().is_none();
        if session_gone && call_gone {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not purged: session gone {session_gone}, old ES2+ call gone {call_gone}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(store.get_session("LIVE", 0).await.unwrap().is_some());
    assert!(store.get_es2_call("op1", "recent").await.unwrap().is_some());

    // The purge task stops with the server: `run` returns.
    stop.send(()).unwrap();
    let prepared = tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("server (and purge task) did not stop")
        .unwrap();
    prepared.store.close().await;
}
