//! The `webhooks` table and the matching of events to webhooks, on a fresh SQLite file and,
//! when `SMDPP_TEST_PG_URL` is set (see `tests/battery.rs`), a fresh PostgreSQL database per
//! test. With `SMDPP_REQUIRE_PG=1` and no URL the PostgreSQL tests fail instead of being
//! skipped.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicU32, Ordering};

use smdpp_store::*;
use sqlx::{AssertSqlSafe, Connection};

struct TestDb {
    store: Store,
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
    let mut out = format!("{scheme}://{authority}/{db}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("smdpp.db").display());
        TestDb {
            store: Store::connect(&url).await.unwrap(),
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
            "smdpp_wh_{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            test
        );
        let mut conn = sqlx::postgres::PgConnection::connect(&admin)
            .await
            .expect("connect to SMDPP_TEST_PG_URL");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let store = Store::connect(&with_database(&admin, &name)).await.unwrap();
        assert_eq!(store.backend(), Backend::Postgres);
        Some(TestDb {
            store,
            _dir: None,
            pg: Some((admin, name)),
        })
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
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::TestDb::sqlite().await;
                    super::$name(&db.store).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = super::TestDb::postgres(stringify!($name)).await else {
                        return;
                    };
                    super::$name(&db.store).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

both!(
    webhooks_insert_list_get_delete,
    rejects_duplicate_and_malformed_webhooks,
    webhooks_match_events_and_operators,
    profile_events_queue_rows_for_matching_webhooks,
);

fn hook(id: &str, events: &str, operator: Option<&str>) -> Webhook {
    Webhook {
        id: id.into(),
        url: format!("https://billing.example/{id}"),
        events: events.into(),
        operator_id: operator.map(str::to_owned),
        dek_id: 1,
        secret_sealed: vec![1, 2, 3, 4],
        ca: None,
        created_at: 0,
    }
}

async fn webhooks_insert_list_get_delete(store: &Store) {
    assert!(store.list_webhooks().await.unwrap().is_empty());
    let mut a = hook("wh_b", " Installed, deleted ", Some("op-a"));
    a.ca = Some("-----BEGIN CERTIFICATE-----\n...".into());
    store.insert_webhook(&a).await.unwrap();
    store
        .insert_webhook(&hook("wh_a", "*", None))
        .await
        .unwrap();
    let list = store.list_webhooks().await.unwrap();
    assert_eq!(
        list.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(),
        ["wh_a", "wh_b"]
    );
    let got = store.get_webhook("wh_b").await.unwrap().unwrap();
    assert_eq!(got.events, "installed,deleted", "stored normalized");
    assert_eq!(got.operator_id.as_deref(), Some("op-a"));
    assert_eq!(got.secret_sealed, vec![1, 2, 3, 4]);
    assert_eq!(got.ca, a.ca);
    assert_eq!(got.dek_id, 1);
    assert!(got.created_at > 1_700_000_000_000, "set to now");
    assert!(
        !format!("{got:?}").contains("[1, 2, 3, 4]"),
        "Debug leaves the sealed secret out"
    );
    assert!(store.get_webhook("wh_c").await.unwrap().is_none());
    assert!(store.delete_webhook("wh_b").await.unwrap());
    assert!(!store.delete_webhook("wh_b").await.unwrap());
    assert!(store.get_webhook("wh_b").await.unwrap().is_none());
    assert_eq!(store.list_webhooks().await.unwrap().len(), 1);
}

async fn rejects_duplicate_and_malformed_webhooks(store: &Store) {
    store
        .insert_webhook(&hook("wh_1", "*", None))
        .await
        .unwrap();
    assert!(matches!(
        store.insert_webhook(&hook("wh_1", "installed", None)).await,
        Err(StoreError::Duplicate { .. })
    ));
    for bad in ["", "installed,", "in%", "*,installed"] {
        assert!(
            matches!(
                store.insert_webhook(&hook("wh_2", bad, None)).await,
                Err(StoreError::InvalidInput(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        store.insert_webhook(&hook("", "*", None)).await,
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        store.webhooks_for_event(None, "inst%").await,
        Err(StoreError::InvalidInput(_))
    ));
    assert_eq!(store.list_webhooks().await.unwrap().len(), 1);
}

async fn webhooks_match_events_and_operators(store: &Store) {
    store.insert_webhook(&hook("all", "*", None)).await.unwrap();
    store
        .insert_webhook(&hook("inst", "installed", None))
        .await
        .unwrap();
    store
        .insert_webhook(&hook("opa", "created,installed,deleted", Some("op-a")))
        .await
        .unwrap();
    store
        .insert_webhook(&hook("opb", "*", Some("op-b")))
        .await
        .unwrap();
    // A name that is a part of another must not match it ("installed" vs "install").
    store
        .insert_webhook(&hook("dis", "disabled", None))
        .await
        .unwrap();
    let m = |op: Option<&'static str>, e: &'static str| async move {
        store.webhooks_for_event(op, e).await.unwrap()
    };
    assert_eq!(m(None, "installed").await, ["all", "inst"]);
    assert_eq!(m(Some("op-a"), "installed").await, ["all", "inst", "opa"]);
    assert_eq!(m(Some("op-a"), "deleted").await, ["all", "opa"]);
    assert_eq!(m(Some("op-a"), "created").await, ["all", "opa"]);
    assert_eq!(m(Some("op-b"), "released").await, ["all", "opb"]);
    assert_eq!(m(Some("op-c"), "enabled").await, ["all"]);
    assert_eq!(m(None, "disabled").await, ["all", "dis"]);
    assert_eq!(m(None, "abled").await, ["all"]);
    assert_eq!(m(None, "install").await, ["all"]);
}

async fn profile_events_queue_rows_for_matching_webhooks(store: &Store) {
    store
        .insert_webhook(&hook("mine", "created", Some("op-a")))
        .await
        .unwrap();
    store
        .insert_webhook(&hook("other", "created", Some("op-b")))
        .await
        .unwrap();
    store
        .insert_webhook(&hook("late", "installed", None))
        .await
        .unwrap();
    let mut p = NewProfile::available("8988247000000000018", Some("retail"));
    p.operator_id = Some("op-a".into());
    store
        .insert_profile(&p, &EventRecord::by("test"))
        .await
        .unwrap();
    let rows: Vec<_> = store
        .list_outbox(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == OutboxKind::Webhook)
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].target.as_deref(), Some("mine"));
    assert_eq!(rows[0].iccid.as_deref(), Some("8988247000000000018"));
    assert!(!rows[0].body.is_empty());
}
