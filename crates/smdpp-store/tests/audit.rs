//! The audit trail (`audit_log`, `audit_head`) on a fresh SQLite file and, when
//! `SMDPP_TEST_PG_URL` is set, a fresh PostgreSQL database per test (`SMDPP_REQUIRE_PG=1`
//! makes a missing URL a failure): state changes append their record in their own
//! transaction, many concurrent writers keep the chain linear, and `verify_audit` names the
//! first altered, removed or moved record.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicU32, Ordering};

use smdpp_store::*;
use sqlx::{AssertSqlSafe, Connection};

struct TestDb {
    store: Store,
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("URL has a scheme");
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or(before_query);
    match query {
        Some(q) => format!("{scheme}://{authority}/{db}?{q}"),
        None => format!("{scheme}://{authority}/{db}"),
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("smdpp.db").display());
        let store = Store::connect(&url).await.unwrap();
        TestDb {
            store,
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    async fn postgres(test: &str) -> Option<TestDb> {
        let admin = match std::env::var("SMDPP_TEST_PG_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => {
                if std::env::var("SMDPP_REQUIRE_PG").as_deref() == Ok("1") {
                    panic!("SMDPP_REQUIRE_PG=1 but SMDPP_TEST_PG_URL is not set");
                }
                eprintln!("SKIPPED postgres::{test}: SMDPP_TEST_PG_URL not set");
                return None;
            }
        };
        let name = format!(
            "smdpp_a_{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            test
        );
        let mut conn = sqlx::postgres::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let url = with_database(&admin, &name);
        let mut options = StoreOptions::default();
        options.max_connections = 16;
        let store = Store::connect_with(&url, &options).await.unwrap();
        Some(TestDb {
            store,
            url,
            _dir: None,
            pg: Some((admin, name)),
        })
    }

    /// Runs `sql` on the database directly, as someone tampering with it would.
    async fn tamper(&self, sql: &str) {
        let mut conn = sqlx::AnyConnection::connect(&self.url).await.unwrap();
        for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
            sqlx::query(AssertSqlSafe(statement.to_owned()))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
    }

    async fn cleanup(self) {
        self.store.close().await;
        if let Some((admin, name)) = self.pg {
            let mut conn = sqlx::postgres::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
    }
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::TestDb::sqlite().await;
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = super::TestDb::postgres(stringify!($name)).await else {
                        return;
                    };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

both!(
    state_changes_are_recorded_and_chain_verifies,
    refused_transition_appends_nothing,
    import_run_is_one_record,
    list_filters_and_limit,
    rejects_altered_audit_record,
    rejects_removed_audit_record,
    rejects_reordered_audit_record,
    rejects_removed_last_audit_record,
    rejects_forged_head,
    concurrent_writers_keep_the_chain_linear,
);

fn iccid(n: u32) -> String {
    format!("89049032{n:011}")
}

/// Ten records: five profiles created, three transitions, two operator actions.
async fn ten_records(store: &Store) {
    for n in 0..5 {
        store
            .insert_profile(
                &NewProfile::available(iccid(n), Some("T1")),
                &EventRecord::by("cli:alice").with_cause("profiles add"),
            )
            .await
            .unwrap();
    }
    for n in 0..3 {
        store
            .transition(
                &iccid(n),
                &Expect::state(ProfileState::Available),
                &ProfileUpdate {
                    state: Some(ProfileState::Allocated),
                    ..ProfileUpdate::default()
                },
                &EventRecord::by("es2:op-1")
                    .with_cause("DownloadOrder")
                    .with_detail("matchingId=SECRETMATCH-1 origin=test"),
            )
            .await
            .unwrap();
    }
    for id in ["op-1", "op-2"] {
        store
            .append_audit(
                &AuditEntry::new("cli:alice", "operator.add", id)
                    .with_details(serde_json::json!({ "certSha256": "ab12" })),
            )
            .await
            .unwrap();
    }
}

async fn expect_fault(store: &Store, message: &str) {
    let report = store.verify_audit().await.unwrap();
    let fault = report.fault.expect("verify finds the defect");
    assert_eq!(fault.to_string(), message);
}

async fn state_changes_are_recorded_and_chain_verifies(db: &TestDb) {
    let store = &db.store;
    assert_eq!(
        store.verify_audit().await.unwrap(),
        AuditReport {
            records: 0,
            fault: None
        }
    );
    ten_records(store).await;
    let report = store.verify_audit().await.unwrap();
    assert_eq!(report.fault, None);
    assert_eq!(report.records, 10);

    let all = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(all[0].prev_hash, GENESIS_HASH);
    for w in all.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
        assert!(w[1].at >= w[0].at);
    }
    let first = &all[0];
    assert_eq!(first.actor, "cli:alice");
    assert_eq!(first.action, "profile.state");
    assert_eq!(first.subject, iccid(0));
    assert_eq!(first.reason, "profiles add");
    let details: serde_json::Value = serde_json::from_str(&first.details).unwrap();
    assert_eq!(
        details,
        serde_json::json!({ "from": null, "to": "available" })
    );
    let moved = &all[5];
    assert_eq!(moved.actor, "es2:op-1");
    assert_eq!(moved.reason, "DownloadOrder");
    let details: serde_json::Value = serde_json::from_str(&moved.details).unwrap();
    assert_eq!(
        details,
        serde_json::json!({
            "from": "available",
            "to": "allocated",
            "detail": "matchingId=SECR**** origin=test",
        })
    );
    assert!(
        all.iter().all(|r| !r.details.contains("SECRETMATCH")),
        "MatchingIDs are masked"
    );
    assert_eq!(all[9].action, "operator.add");
    assert_eq!(all[9].subject, "op-2");
    assert_eq!(all[9].hash, all[9].expected_hash());

    // The chain survives a reconnect (the head is in the database).
    let again = Store::connect(&db.url).await.unwrap();
    again
        .append_audit(&AuditEntry::new("system", "test", ""))
        .await
        .unwrap();
    assert_eq!(again.verify_audit().await.unwrap().records, 11);
    again.close().await;
}

async fn refused_transition_appends_nothing(db: &TestDb) {
    let store = &db.store;
    ten_records(store).await;
    let err = store
        .transition(
            &iccid(0),
            &Expect::state(ProfileState::Available),
            &ProfileUpdate {
                state: Some(ProfileState::Released),
                ..ProfileUpdate::default()
            },
            &EventRecord::by("es2:op-1"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let report = store.verify_audit().await.unwrap();
    assert_eq!((report.records, report.fault), (10, None));
}

async fn import_run_is_one_record(db: &TestDb) {
    let store = &db.store;
    let rows: Vec<ImportRow> = (0..3)
        .map(|n| ImportRow {
            secrets: SealedSecrets {
                iccid: iccid(100 + n),
                imsi: format!("00101{:010}", 100 + n),
                dek_id: 1,
                sealed: vec![1, 2, 3],
            },
            profile_type: "T1".into(),
            operator_id: None,
            cc_attempt_limit: None,
            download_attempt_limit: None,
        })
        .collect();
    store
        .insert_vault_dek(&DekRecord {
            dek_id: 1,
            kek_id: "file:t".into(),
            wrapped: b"wrapped".to_vec(),
        })
        .await
        .unwrap();
    let mut tx = store.begin_import().await.unwrap();
    let outcomes = tx.insert_batch(&rows).await.unwrap();
    assert_eq!(outcomes, vec![ImportOutcome::Inserted; 3]);
    tx.audit(
        &AuditEntry::new("cli:alice", "profiles.import", "T1")
            .with_details(serde_json::json!({ "inserted": 3 })),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let all = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].action, "profiles.import");
    // A rolled-back import leaves no record and no gap.
    let mut tx = store.begin_import().await.unwrap();
    tx.audit(&AuditEntry::new("cli:alice", "profiles.import", "T1"))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    store
        .append_audit(&AuditEntry::new("cli:alice", "x", ""))
        .await
        .unwrap();
    let report = store.verify_audit().await.unwrap();
    assert_eq!((report.records, report.fault), (2, None));
}

async fn list_filters_and_limit(db: &TestDb) {
    let store = &db.store;
    ten_records(store).await;
    let f = |subject: Option<&str>, actor: Option<&str>, limit: Option<i64>| AuditFilter {
        subject: subject.map(str::to_owned),
        actor: actor.map(str::to_owned),
        limit,
        ..AuditFilter::default()
    };
    let seqs = |v: Vec<AuditRecord>| v.iter().map(|r| r.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(
            store
                .list_audit(&f(Some(&iccid(1)), None, None))
                .await
                .unwrap()
        ),
        vec![2, 7]
    );
    assert_eq!(
        seqs(
            store
                .list_audit(&f(None, Some("es2:op-1"), None))
                .await
                .unwrap()
        ),
        vec![6, 7, 8]
    );
    assert_eq!(
        seqs(store.list_audit(&f(None, None, Some(3))).await.unwrap()),
        vec![8, 9, 10]
    );
    let future = AuditFilter {
        since: Some(now_ms() + 60_000),
        ..AuditFilter::default()
    };
    assert!(store.list_audit(&future).await.unwrap().is_empty());
    let err = store.list_audit(&f(None, None, Some(0))).await.unwrap_err();
    assert_eq!(err.to_string(), "invalid input: limit must be at least 1");
}

async fn rejects_altered_audit_record(db: &TestDb) {
    ten_records(&db.store).await;
    db.tamper("UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 7")
        .await;
    expect_fault(&db.store, "record 7 altered (hash mismatch)").await;
    let report = db.store.verify_audit().await.unwrap();
    assert_eq!(report.records, 6, "records before the fault");
}

async fn rejects_removed_audit_record(db: &TestDb) {
    ten_records(&db.store).await;
    db.tamper("DELETE FROM audit_log WHERE seq = 4").await;
    expect_fault(&db.store, "record 4 missing (seq 3 is followed by 5)").await;
    db.tamper("DELETE FROM audit_log WHERE seq = 1").await;
    expect_fault(&db.store, "record 1 missing (the log starts at seq 2)").await;
}

async fn rejects_reordered_audit_record(db: &TestDb) {
    ten_records(&db.store).await;
    db.tamper(
        "UPDATE audit_log SET seq = -1 WHERE seq = 5; \
         UPDATE audit_log SET seq = 5 WHERE seq = 6; \
         UPDATE audit_log SET seq = 6 WHERE seq = -1",
    )
    .await;
    expect_fault(
        &db.store,
        "record 5 out of order (its prev_hash is not the hash of record 4)",
    )
    .await;
}

async fn rejects_removed_last_audit_record(db: &TestDb) {
    ten_records(&db.store).await;
    db.tamper("DELETE FROM audit_log WHERE seq >= 9").await;
    expect_fault(
        &db.store,
        "head at seq 10 but the last record is 8 (record 9 missing)",
    )
    .await;
    db.tamper("DELETE FROM audit_log").await;
    expect_fault(&db.store, "head at seq 10 but the log is empty").await;
}

async fn rejects_forged_head(db: &TestDb) {
    ten_records(&db.store).await;
    // A record appended by hand, with a correct hash but without the head.
    let all = db.store.list_audit(&AuditFilter::default()).await.unwrap();
    let last = &all[9];
    let hash = audit_hash(11, last.at, "x", "y", "", "", "{}", &last.hash);
    db.tamper(&format!(
        "INSERT INTO audit_log (seq, at, actor, action, subject, reason, details, prev_hash, \
         hash) VALUES (11, {}, 'x', 'y', '', '', '{{}}', '{}', '{hash}')",
        last.at, last.hash
    ))
    .await;
    expect_fault(
        &db.store,
        "record 11 not in the chain (the head is at seq 10)",
    )
    .await;
    db.tamper("DELETE FROM audit_log WHERE seq = 11; UPDATE audit_head SET hash = 'ff'")
        .await;
    expect_fault(&db.store, "head hash does not match record 10").await;
    db.tamper("DELETE FROM audit_head").await;
    expect_fault(&db.store, "head missing (table audit_head is empty)").await;
}

async fn concurrent_writers_keep_the_chain_linear(db: &TestDb) {
    const TASKS: u32 = 16;
    const EACH: u32 = 10;
    let store = &db.store;
    for n in 0..TASKS {
        store
            .insert_profile(
                &NewProfile::available(iccid(n), None),
                &EventRecord::by("seed"),
            )
            .await
            .unwrap();
    }
    // Several "nodes": independent pools on the same database.
    let mut nodes = vec![store.clone()];
    for _ in 0..2 {
        nodes.push(Store::connect(&db.url).await.unwrap());
    }
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let s = nodes[(t as usize) % nodes.len()].clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                if i % 2 == 0 {
                    s.append_audit(&AuditEntry::new(format!("task:{t}"), "test", ""))
                        .await
                        .unwrap();
                } else {
                    // A state change and back (Available -> Allocated -> Available).
                    let (from, to) = if i % 4 == 1 {
                        (ProfileState::Available, ProfileState::Allocated)
                    } else {
                        (ProfileState::Allocated, ProfileState::Available)
                    };
                    s.transition(
                        &iccid(t),
                        &Expect::state(from),
                        &ProfileUpdate {
                            state: Some(to),
                            ..ProfileUpdate::default()
                        },
                        &EventRecord::by(format!("task:{t}")),
                    )
                    .await
                    .unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = i64::from(TASKS + TASKS * EACH);
    let report = store.verify_audit().await.unwrap();
    assert_eq!((report.records, report.fault), (total, None));
    let all = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>(),
        "seq is gap-free"
    );
    for node in &nodes[1..] {
        node.close().await;
    }
}
