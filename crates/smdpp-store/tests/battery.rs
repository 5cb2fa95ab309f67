//! The same repository tests, run against a fresh SQLite file and, when
//! `SMDPP_TEST_PG_URL` is set, a fresh PostgreSQL database per test.
//!
//! `SMDPP_TEST_PG_URL` is an admin URL (e.g. from `scripts/pg-test.sh`); each
//! test creates and afterwards drops its own uniquely named database. With
//! `SMDPP_REQUIRE_PG=1` and no URL, the PostgreSQL tests fail instead of
//! being skipped.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used, missing_docs)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};

use smdpp_store::*;
use sqlx::{AssertSqlSafe, Connection};

const T0: EpochMillis = 1_700_000_000_000;

struct TestDb {
    store: Store,
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>, // (admin url, database name)
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
        let path = dir.path().join("smdpp.db");
        let url = format!("sqlite://{}", path.display());
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        assert!(path.exists(), "SQLite file created");
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
                    panic!(
                        "SMDPP_REQUIRE_PG=1 but SMDPP_TEST_PG_URL is not set: start a server with \
                         `source scripts/pg-test.sh` (or eval \"$(scripts/pg-test.sh start)\")"
                    );
                }
                eprintln!("SKIPPED postgres::{test}: SMDPP_TEST_PG_URL not set");
                return None;
            }
        };
        let name = format!(
            "smdpp_t_{}_{}_{}",
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
        let url = with_database(&admin, &name);
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.backend(), Backend::Postgres);
        Some(TestDb {
            store,
            url,
            _dir: None,
            pg: Some((admin, name)),
        })
    }

    async fn reconnect(&self) -> Store {
        Store::connect(&self.url).await.unwrap()
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

macro_rules! battery {
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

battery!(
    profile_round_trip,
    duplicate_iccid_and_matching_id_refused,
    cas_transition_conflict,
    refused_transition_writes_no_event,
    transition_patches_and_counter_ops,
    claim_available_basics,
    concurrent_claims_exactly_one_winner_per_profile,
    concurrent_transition_single_winner,
    concurrent_version_cas_single_winner,
    concurrent_counters_exact,
    session_lifecycle_and_expiry,
    concurrent_session_cas_single_winner,
    notification_replay_detected,
    list_profiles_filters_and_pagination,
    reopen_keeps_data,
    profile_types_insert_get_list_duplicate,
    vault_deks_insert_duplicate_rewrap_delete,
    import_changed_secrets_and_type_template_cas,
    import_outcomes,
    import_rollback_and_commit,
    import_batch_larger_than_a_chunk,
    sealed_secrets_paging_and_reseal_cas,
    stored_upps_paging_and_replace_cas,
    count_profiles_of_type_by_state,
    settings_set_get_replace_and_survive_reconnect,
);

fn iccid(n: u32) -> String {
    format!("89049032{n:011}")
}

fn full_profile(n: u32) -> NewProfile {
    NewProfile {
        iccid: iccid(n),
        operator_id: Some("op-1".into()),
        profile_type: Some("T1".into()),
        state: ProfileState::Available,
        matching_id: Some(format!("MID-{n}")),
        eid: Some("89049032123451234512345678901235".into()),
        cc_hash: Some(vec![0xAB; 32]),
        cc_attempt_limit: Some(3),
        download_attempt_limit: Some(5),
        upp: Some((0..=255u8).collect()),
        smds_address: Some("smds.example".into()),
        expires_at: Some(T0 + 86_400_000),
    }
}

fn ev(actor: &str) -> EventRecord {
    EventRecord::by(actor)
}

async fn seed(store: &Store, from: u32, count: u32, ptype: &str) {
    for n in from..from + count {
        store
            .insert_profile(&NewProfile::available(iccid(n), Some(ptype)), &ev("seed"))
            .await
            .unwrap();
    }
}

async fn profile_round_trip(db: &TestDb) {
    let s = &db.store;
    let np = full_profile(1);
    let p = s.insert_profile(&np, &ev("test")).await.unwrap();
    assert_eq!(p.iccid, np.iccid);
    assert_eq!(p.state, ProfileState::Available);
    assert_eq!(p.version, 0);
    assert_eq!(p.cc_attempts, 0);
    assert_eq!(p.download_attempts, 0);
    assert_eq!(p.cc_hash, np.cc_hash);
    assert_eq!(p.upp, np.upp);
    assert_eq!(p.expires_at, np.expires_at);
    assert!(p.created_at > T0 && p.created_at == p.updated_at);

    let got = s.get_profile(&np.iccid).await.unwrap().unwrap();
    assert_eq!(got, p);
    // Lookup normalises the padding nibble.
    let got_f = s
        .get_profile(&format!("{}F", np.iccid))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got_f, p);
    let by_mid = s
        .find_profile_by_matching_id("MID-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_mid, p);
    assert!(
        s.find_profile_by_matching_id("nope")
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.get_profile(&iccid(999)).await.unwrap().is_none());

    // A minimal profile keeps its NULLs.
    let m = s
        .insert_profile(&NewProfile::available(iccid(2), None), &ev("test"))
        .await
        .unwrap();
    assert_eq!(m.profile_type, None);
    assert_eq!(m.matching_id, None);
    assert_eq!(m.cc_hash, None);
    assert_eq!(m.upp, None);
    assert_eq!(m.cc_attempt_limit, None);

    let events = s.events_for(&np.iccid).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].from_state, None);
    assert_eq!(events[0].to_state, ProfileState::Available);
    assert_eq!(events[0].actor, "test");

    // Invalid ICCIDs are refused before touching the database.
    assert!(matches!(
        s.insert_profile(&NewProfile::available("12AB", None), &ev("t"))
            .await,
        Err(StoreError::InvalidInput(_))
    ));
    s.ping().await.unwrap();
}

async fn duplicate_iccid_and_matching_id_refused(db: &TestDb) {
    let s = &db.store;
    s.insert_profile(&full_profile(1), &ev("t")).await.unwrap();

    // Same ICCID (also with trailing F), different matching id.
    let mut dup = full_profile(1);
    dup.iccid = format!("{}F", dup.iccid);
    dup.matching_id = Some("OTHER".into());
    match s.insert_profile(&dup, &ev("t")).await {
        Err(StoreError::Duplicate { key }) => assert_eq!(key, "iccid"),
        other => panic!("expected Duplicate iccid, got {other:?}"),
    }
    // Different ICCID, same matching id.
    let mut dup = full_profile(2);
    dup.matching_id = Some("MID-1".into());
    match s.insert_profile(&dup, &ev("t")).await {
        Err(StoreError::Duplicate { key }) => assert_eq!(key, "matching_id"),
        other => panic!("expected Duplicate matching_id, got {other:?}"),
    }
    // The refused insert left nothing behind (no row, no event).
    assert!(s.get_profile(&iccid(2)).await.unwrap().is_none());
    assert!(s.events_for(&iccid(2)).await.unwrap().is_empty());

    // Taking a used matching id in a transition is refused atomically.
    let p3 = s
        .insert_profile(&NewProfile::available(iccid(3), None), &ev("t"))
        .await
        .unwrap();
    let upd = ProfileUpdate {
        state: Some(ProfileState::Allocated),
        matching_id: Patch::Set("MID-1".into()),
        ..Default::default()
    };
    match s
        .transition(&iccid(3), &Expect::any(), &upd, &ev("t"))
        .await
    {
        Err(StoreError::Duplicate { key }) => assert_eq!(key, "matching_id"),
        other => panic!("expected Duplicate matching_id, got {other:?}"),
    }
    let after = s.get_profile(&iccid(3)).await.unwrap().unwrap();
    assert_eq!(after, p3);
    assert_eq!(s.events_for(&iccid(3)).await.unwrap().len(), 1);

    // Sessions: duplicate transaction id.
    let ns = NewSession {
        transaction_id: "AA".into(),
        state: "s".into(),
        eid: None,
        iccid: None,
        data: vec![],
        created_at: T0,
        expires_at: T0 + 1,
    };
    s.put_session(&ns).await.unwrap();
    match s.put_session(&ns).await {
        Err(StoreError::Duplicate { key }) => assert_eq!(key, "transaction_id"),
        other => panic!("expected Duplicate transaction_id, got {other:?}"),
    }
}

async fn cas_transition_conflict(db: &TestDb) {
    let s = &db.store;
    seed(s, 1, 1, "T").await;
    let id = iccid(1);

    let p = s
        .transition(
            &id,
            &Expect::state(ProfileState::Available),
            &ProfileUpdate::to_state(ProfileState::Allocated),
            &ev("es2"),
        )
        .await
        .unwrap();
    assert_eq!(p.state, ProfileState::Allocated);
    assert_eq!(p.version, 1);

    // Same precondition again: refused with the current state and version.
    let err = s
        .transition(
            &id,
            &Expect::state(ProfileState::Available),
            &ProfileUpdate::to_state(ProfileState::Linked),
            &ev("es2"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Conflict {
            state: "allocated".into(),
            version: 1
        }
    );

    // Version CAS.
    let err = s
        .transition(
            &id,
            &Expect::version(0),
            &ProfileUpdate::to_state(ProfileState::Confirmed),
            &ev("es2"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { version: 1, .. }));
    let p = s
        .transition(
            &id,
            &Expect::states(&[ProfileState::Allocated, ProfileState::Linked]).and_version(1),
            &ProfileUpdate::to_state(ProfileState::Confirmed),
            &ev("es2"),
        )
        .await
        .unwrap();
    assert_eq!((p.state, p.version), (ProfileState::Confirmed, 2));

    // Unknown profile.
    let err = s
        .transition(
            &iccid(77),
            &Expect::any(),
            &ProfileUpdate::to_state(ProfileState::Allocated),
            &ev("x"),
        )
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::NotFound);
}

async fn refused_transition_writes_no_event(db: &TestDb) {
    let s = &db.store;
    seed(s, 1, 1, "T").await;
    let id = iccid(1);
    s.transition(
        &id,
        &Expect::state(ProfileState::Available),
        &ProfileUpdate::to_state(ProfileState::Allocated),
        &EventRecord::by("es2:op-1")
            .with_cause("download-order")
            .with_detail("order 42"),
    )
    .await
    .unwrap();
    let before = s.events_for(&id).await.unwrap();
    assert_eq!(before.len(), 2);
    let e = &before[1];
    assert_eq!(e.from_state, Some(ProfileState::Available));
    assert_eq!(e.to_state, ProfileState::Allocated);
    assert_eq!(e.actor, "es2:op-1");
    assert_eq!(e.cause.as_deref(), Some("download-order"));
    assert_eq!(e.detail.as_deref(), Some("order 42"));
    assert!(e.id > before[0].id);

    for _ in 0..3 {
        assert!(matches!(
            s.transition(
                &id,
                &Expect::state(ProfileState::Released),
                &ProfileUpdate::to_state(ProfileState::Downloaded),
                &ev("es9"),
            )
            .await,
            Err(StoreError::Conflict { .. })
        ));
    }
    assert_eq!(s.events_for(&id).await.unwrap(), before);
    let p = s.get_profile(&id).await.unwrap().unwrap();
    assert_eq!((p.state, p.version), (ProfileState::Allocated, 1));
}

async fn transition_patches_and_counter_ops(db: &TestDb) {
    let s = &db.store;
    s.insert_profile(&full_profile(1), &ev("t")).await.unwrap();
    let id = iccid(1);
    let upd = ProfileUpdate {
        state: Some(ProfileState::Error),
        eid: Patch::Clear,
        matching_id: Patch::Set("NEW-MID".into()),
        cc_hash: Patch::Clear,
        cc_attempts: CounterOp::Add(2),
        download_attempts: CounterOp::Set(7),
        download_attempt_limit: Patch::Set(9),
        upp: Patch::Set(vec![1, 2, 3]),
        error_cause: Patch::Set("cc-limit".into()),
        expires_at: Patch::Clear,
        ..Default::default()
    };
    let p = s
        .transition(&id, &Expect::any(), &upd, &ev("t"))
        .await
        .unwrap();
    assert_eq!(p.state, ProfileState::Error);
    assert_eq!(p.eid, None);
    assert_eq!(p.matching_id.as_deref(), Some("NEW-MID"));
    assert_eq!(p.cc_hash, None);
    assert_eq!(p.cc_attempts, 2);
    assert_eq!(p.cc_attempt_limit, Some(3)); // kept
    assert_eq!(p.download_attempts, 7);
    assert_eq!(p.download_attempt_limit, Some(9));
    assert_eq!(p.upp, Some(vec![1, 2, 3]));
    assert_eq!(p.error_cause.as_deref(), Some("cc-limit"));
    assert_eq!(p.expires_at, None);
    assert_eq!(p.operator_id.as_deref(), Some("op-1")); // kept
    assert_eq!(p.version, 1);
    assert!(p.updated_at >= p.created_at);
    assert!(
        s.find_profile_by_matching_id("MID-1")
            .await
            .unwrap()
            .is_none()
    );

    // State unchanged (None) still bumps the version and records an event.
    let p2 = s
        .transition(
            &id,
            &Expect::version(1),
            &ProfileUpdate {
                cc_attempts: CounterOp::Set(0),
                ..Default::default()
            },
            &ev("t"),
        )
        .await
        .unwrap();
    assert_eq!(
        (p2.state, p2.version, p2.cc_attempts),
        (ProfileState::Error, 2, 0)
    );
    let evs = s.events_for(&id).await.unwrap();
    assert_eq!(evs.len(), 3);
    assert_eq!(evs[2].from_state, Some(ProfileState::Error));
    assert_eq!(evs[2].to_state, ProfileState::Error);
}

async fn claim_available_basics(db: &TestDb) {
    let s = &db.store;
    let upd = ProfileUpdate {
        state: Some(ProfileState::Linked),
        eid: Patch::Set("EID-1".into()),
        operator_id: Patch::Set("op-9".into()),
        ..Default::default()
    };
    let filter = ClaimFilter {
        profile_type: Some("T".into()),
        operator_id: None,
    };
    assert_eq!(
        s.claim_available(&filter, &upd, &ev("es2")).await.unwrap(),
        None
    );
    // A target state of Available (or none) is refused.
    assert!(matches!(
        s.claim_available(&filter, &ProfileUpdate::default(), &ev("es2"))
            .await,
        Err(StoreError::InvalidInput(_))
    ));
    seed(s, 1, 2, "T").await;
    seed(s, 10, 1, "U").await;
    let p = s
        .claim_available(&filter, &upd, &ev("es2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.state, ProfileState::Linked);
    assert_eq!(p.eid.as_deref(), Some("EID-1"));
    assert_eq!(p.operator_id.as_deref(), Some("op-9"));
    assert_eq!(p.profile_type.as_deref(), Some("T"));
    assert_eq!(p.version, 1);
    let evs = s.events_for(&p.iccid).await.unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[1].from_state, Some(ProfileState::Available));
    assert_eq!(evs[1].to_state, ProfileState::Linked);

    let q = s
        .claim_available(&filter, &upd, &ev("es2"))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(p.iccid, q.iccid);
    assert_eq!(
        s.claim_available(&filter, &upd, &ev("es2")).await.unwrap(),
        None
    );
    // Operator filter.
    let by_op = ClaimFilter {
        profile_type: None,
        operator_id: Some("nobody".into()),
    };
    assert_eq!(
        s.claim_available(&by_op, &upd, &ev("es2")).await.unwrap(),
        None
    );
    // No filter takes the remaining U profile.
    let u = s
        .claim_available(&ClaimFilter::default(), &upd, &ev("es2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.profile_type.as_deref(), Some("U"));
}

async fn concurrent_claims_exactly_one_winner_per_profile(db: &TestDb) {
    let s = &db.store;
    seed(s, 1, 10, "A").await;
    seed(s, 100, 5, "B").await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let upd = ProfileUpdate {
                state: Some(ProfileState::Allocated),
                matching_id: Patch::Set(format!("M-{i}")),
                ..Default::default()
            };
            let f = ClaimFilter {
                profile_type: Some("A".into()),
                operator_id: None,
            };
            s.claim_available(&f, &upd, &ev(&format!("task-{i}")))
                .await
                .unwrap()
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        if let Some(p) = t.await.unwrap() {
            winners.push(p);
        }
    }
    assert_eq!(winners.len(), 10, "exactly 10 winners");
    let ids: HashSet<_> = winners.iter().map(|p| p.iccid.clone()).collect();
    assert_eq!(ids.len(), 10, "no profile claimed twice");
    for p in &winners {
        assert_eq!(p.profile_type.as_deref(), Some("A"));
        let stored = s.get_profile(&p.iccid).await.unwrap().unwrap();
        assert_eq!(stored.matching_id, p.matching_id);
        assert_eq!(stored.version, 1);
        let evs = s.events_for(&p.iccid).await.unwrap();
        assert_eq!(evs.len(), 2, "one claim event per profile");
        assert_eq!(
            Some(&evs[1].actor[5..]),
            p.matching_id.as_deref().map(|m| &m[2..])
        );
    }
    let left_b = s
        .list_profiles(&ProfileFilter {
            state: Some(ProfileState::Available),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(left_b.len(), 5);
    assert!(
        left_b
            .iter()
            .all(|p| p.profile_type.as_deref() == Some("B"))
    );
}

async fn concurrent_transition_single_winner(db: &TestDb) {
    let s = &db.store;
    seed(s, 1, 1, "T").await;
    let id = iccid(1);
    s.transition(
        &id,
        &Expect::any(),
        &ProfileUpdate::to_state(ProfileState::Released),
        &ev("setup"),
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let s = s.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let upd = ProfileUpdate {
                state: Some(ProfileState::Downloaded),
                eid: Patch::Set(format!("EID-{i}")),
                ..Default::default()
            };
            s.transition(
                &id,
                &Expect::state(ProfileState::Released),
                &upd,
                &ev(&format!("task-{i}")),
            )
            .await
        }));
    }
    let mut ok = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(p) => ok.push(p),
            Err(StoreError::Conflict { state, .. }) => {
                assert_eq!(state, "downloaded");
                conflicts += 1;
            }
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(ok.len(), 1, "exactly one winner");
    assert_eq!(conflicts, 49);
    let p = s.get_profile(&id).await.unwrap().unwrap();
    assert_eq!(p.eid, ok[0].eid);
    assert_eq!(p.version, 2);
    let evs = s.events_for(&id).await.unwrap();
    assert_eq!(evs.len(), 3, "creation, setup, one winner");
    assert_eq!(
        Some(evs[2].actor[5..].to_string()),
        p.eid.map(|e| e[4..].to_string())
    );
}

async fn concurrent_version_cas_single_winner(db: &TestDb) {
    let s = &db.store;
    seed(s, 1, 1, "T").await;
    let id = iccid(1);
    // Every task read version 0 and tries to write from it.
    let mut tasks = Vec::new();
    for i in 0..30 {
        let s = s.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let upd = ProfileUpdate {
                error_cause: Patch::Set(format!("w{i}")),
                ..Default::default()
            };
            s.transition(&id, &Expect::version(0), &upd, &ev("t")).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(p) => {
                wins += 1;
                assert_eq!(p.version, 1);
            }
            Err(StoreError::Conflict { version, .. }) => assert_eq!(version, 1),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(s.events_for(&id).await.unwrap().len(), 2);
}

async fn concurrent_counters_exact(db: &TestDb) {
    let s = &db.store;
    let mut np = NewProfile::available(iccid(1), None);
    np.cc_attempt_limit = Some(3);
    s.insert_profile(&np, &ev("t")).await.unwrap();
    let id = iccid(1);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let s = s.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..4 {
                let v = s
                    .increment_counter(&id, Counter::CcAttempts, &Expect::any())
                    .await
                    .unwrap();
                assert_eq!(v.limit, Some(3));
                assert_eq!(v.state, ProfileState::Available);
                seen.push(v.value);
            }
            let d = s
                .increment_counter(
                    &id,
                    Counter::DownloadAttempts,
                    &Expect::state(ProfileState::Available),
                )
                .await
                .unwrap();
            seen.push(-d.value);
            seen
        }));
    }
    let mut cc = Vec::new();
    let mut dl = Vec::new();
    for t in tasks {
        for v in t.await.unwrap() {
            if v > 0 { cc.push(v) } else { dl.push(-v) }
        }
    }
    cc.sort_unstable();
    dl.sort_unstable();
    assert_eq!(
        cc,
        (1..=200).collect::<Vec<i64>>(),
        "each increment saw a distinct value"
    );
    assert_eq!(dl, (1..=50).collect::<Vec<i64>>());
    let p = s.get_profile(&id).await.unwrap().unwrap();
    assert_eq!(p.cc_attempts, 200);
    assert_eq!(p.download_attempts, 50);
    assert_eq!(p.version, 250);
    // Counter increments write no events.
    assert_eq!(s.events_for(&id).await.unwrap().len(), 1);

    // Precondition failure and missing profile.
    assert_eq!(
        s.increment_counter(
            &id,
            Counter::CcAttempts,
            &Expect::state(ProfileState::Released)
        )
        .await
        .unwrap_err(),
        StoreError::Conflict {
            state: "available".into(),
            version: 250
        }
    );
    assert_eq!(
        s.increment_counter(&iccid(2), Counter::CcAttempts, &Expect::any())
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
    assert_eq!(s.get_profile(&id).await.unwrap().unwrap().cc_attempts, 200);
}

async fn session_lifecycle_and_expiry(db: &TestDb) {
    let s = &db.store;
    let ns = NewSession {
        transaction_id: "0102030405060708090A0B0C0D0E0F10".into(),
        state: "initiated".into(),
        eid: None,
        iccid: None,
        data: vec![0, 1, 2, 255],
        created_at: T0,
        expires_at: T0 + 60_000,
    };
    let put = s.put_session(&ns).await.unwrap();
    assert_eq!(put.version, 0);
    assert_eq!(put.data, ns.data);
    let tid = ns.transaction_id.as_str();

    assert_eq!(s.get_session(tid, T0 + 1).await.unwrap(), Some(put.clone()));
    assert_eq!(
        s.get_session(tid, T0 + 60_000).await.unwrap(),
        None,
        "expired at expires_at"
    );
    assert_eq!(s.get_session("FF", T0).await.unwrap(), None);

    let upd = SessionUpdate {
        state: "authenticated".into(),
        data: vec![9; 1000],
        eid: Patch::Set("EID".into()),
        iccid: Patch::Set(iccid(1)),
        expires_at: Some(T0 + 120_000),
    };
    let s1 = s.update_session_cas(tid, 0, &upd, T0 + 10).await.unwrap();
    assert_eq!(s1.version, 1);
    assert_eq!(s1.state, "authenticated");
    assert_eq!(s1.eid.as_deref(), Some("EID"));
    assert_eq!(s1.data.len(), 1000);
    assert_eq!(s1.updated_at, T0 + 10);
    assert_eq!(s1.created_at, T0);
    assert_eq!(s1.expires_at, T0 + 120_000);

    // Stale version.
    assert_eq!(
        s.update_session_cas(tid, 0, &upd, T0 + 20)
            .await
            .unwrap_err(),
        StoreError::Conflict {
            state: "authenticated".into(),
            version: 1
        }
    );
    // Expired (even with the right version): nothing written.
    assert_eq!(
        s.update_session_cas(tid, 1, &upd, T0 + 120_000)
            .await
            .unwrap_err(),
        StoreError::Expired
    );
    assert_eq!(
        s.update_session_cas("nope", 0, &upd, T0).await.unwrap_err(),
        StoreError::NotFound
    );
    assert_eq!(
        s.get_session(tid, T0 + 30).await.unwrap().unwrap().version,
        1
    );

    // A second and a third session; purge removes only the expired ones.
    for (tid2, exp) in [("B1", T0 + 5), ("B2", T0 + 500_000)] {
        s.put_session(&NewSession {
            transaction_id: tid2.into(),
            state: "x".into(),
            eid: None,
            iccid: None,
            data: vec![],
            created_at: T0,
            expires_at: exp,
        })
        .await
        .unwrap();
    }
    assert_eq!(s.purge_expired(T0 + 130_000).await.unwrap(), 2);
    assert!(s.get_session("B2", T0 + 130_000).await.unwrap().is_some());
    assert!(s.delete_session("B2").await.unwrap());
    assert!(!s.delete_session("B2").await.unwrap());
    assert_eq!(s.purge_expired(i64::MAX).await.unwrap(), 0);
}

async fn concurrent_session_cas_single_winner(db: &TestDb) {
    let s = &db.store;
    s.put_session(&NewSession {
        transaction_id: "T1".into(),
        state: "a".into(),
        eid: None,
        iccid: None,
        data: vec![],
        created_at: T0,
        expires_at: T0 + 60_000,
    })
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..30u8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let upd = SessionUpdate {
                state: "b".into(),
                data: vec![i],
                eid: Patch::Keep,
                iccid: Patch::Keep,
                expires_at: None,
            };
            s.update_session_cas("T1", 0, &upd, T0 + 1).await
        }));
    }
    let mut wins = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(x) => wins.push(x),
            Err(StoreError::Conflict { version: 1, .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(wins.len(), 1);
    let now = s.get_session("T1", T0 + 2).await.unwrap().unwrap();
    assert_eq!(now.data, wins[0].data);
    assert_eq!(now.version, 1);
}

async fn notification_replay_detected(db: &TestDb) {
    let s = &db.store;
    let n = NewNotification {
        eid: "EID-1".into(),
        seq_number: 7,
        iccid: Some(iccid(1)),
        event: "install".into(),
        raw: vec![0xBF, 0x37, 0x00],
        received_at: T0,
    };
    let first = s.record_notification(&n).await.unwrap();
    assert!(matches!(first, RecordOutcome::Inserted(_)));
    let replay = NewNotification {
        raw: vec![1],
        received_at: T0 + 5,
        ..n.clone()
    };
    assert_eq!(
        s.record_notification(&replay).await.unwrap(),
        RecordOutcome::Duplicate
    );
    // Other seq number, or other EID with the same seq number: new.
    let n8 = NewNotification {
        seq_number: 8,
        event: "delete".into(),
        iccid: None,
        ..n.clone()
    };
    assert!(matches!(
        s.record_notification(&n8).await.unwrap(),
        RecordOutcome::Inserted(_)
    ));
    let other = NewNotification {
        eid: "EID-2".into(),
        ..n.clone()
    };
    assert!(matches!(
        s.record_notification(&other).await.unwrap(),
        RecordOutcome::Inserted(_)
    ));

    let list = s.list_notifications("EID-1").await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].seq_number, 7);
    assert_eq!(list[0].raw, n.raw, "replay did not overwrite");
    assert_eq!(list[0].received_at, T0);
    assert_eq!(list[1].event, "delete");
    assert_eq!(list[1].iccid, None);
    if let RecordOutcome::Inserted(id) = first {
        assert_eq!(list[0].id, id);
    }

    // Concurrent replays: exactly one insert.
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let s = s.clone();
        let n = NewNotification {
            seq_number: 100,
            ..n.clone()
        };
        tasks.push(tokio::spawn(async move {
            s.record_notification(&n).await.unwrap()
        }));
    }
    let mut inserted = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), RecordOutcome::Inserted(_)) {
            inserted += 1;
        }
    }
    assert_eq!(inserted, 1);
    assert_eq!(s.list_notifications("EID-1").await.unwrap().len(), 3);
}

async fn list_profiles_filters_and_pagination(db: &TestDb) {
    let s = &db.store;
    seed(s, 1, 25, "A").await;
    seed(s, 50, 5, "B").await;
    s.transition(
        &iccid(3),
        &Expect::any(),
        &ProfileUpdate {
            state: Some(ProfileState::Linked),
            eid: Patch::Set("E1".into()),
            operator_id: Patch::Set("op".into()),
            ..Default::default()
        },
        &ev("t"),
    )
    .await
    .unwrap();

    let all = s.list_profiles(&ProfileFilter::default()).await.unwrap();
    assert_eq!(all.len(), 30);
    assert!(all.windows(2).all(|w| w[0].iccid < w[1].iccid));

    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .list_profiles(&ProfileFilter {
                profile_type: Some("A".into()),
                after_iccid: after.clone(),
                limit: Some(10),
                ..Default::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|p| p.iccid.clone());
        pages.push(page.len());
    }
    assert_eq!(pages, vec![10, 10, 5]);

    let linked = s
        .list_profiles(&ProfileFilter {
            state: Some(ProfileState::Linked),
            eid: Some("E1".into()),
            operator_id: Some("op".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].iccid, iccid(3));
}

/// `server_settings`: absent until set, replaced by a second set (one row per name),
/// independent names, any UTF-8 value, kept across a reconnect; bad names refused.
async fn settings_set_get_replace_and_survive_reconnect(db: &TestDb) {
    let s = &db.store;
    assert_eq!(s.get_setting("public_address").await.unwrap(), None);
    s.set_setting("public_address", "127.0.0.1:39556")
        .await
        .unwrap();
    assert_eq!(
        s.get_setting("public_address").await.unwrap().as_deref(),
        Some("127.0.0.1:39556")
    );
    s.set_setting("public_address", "smdp.example.com")
        .await
        .unwrap();
    s.set_setting("other", "wert ä '; --").await.unwrap();
    assert_eq!(
        s.get_setting("public_address").await.unwrap().as_deref(),
        Some("smdp.example.com"),
        "replaced"
    );
    assert_eq!(
        s.get_setting("other").await.unwrap().as_deref(),
        Some("wert ä '; --")
    );
    for bad in ["", &"n".repeat(129)] {
        assert!(matches!(
            s.set_setting(bad, "v").await,
            Err(StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            s.get_setting(bad).await,
            Err(StoreError::InvalidInput(_))
        ));
    }
    s.close().await;
    let s2 = db.reconnect().await;
    assert_eq!(
        s2.get_setting("public_address").await.unwrap().as_deref(),
        Some("smdp.example.com")
    );
    s2.close().await;
}

async fn reopen_keeps_data(db: &TestDb) {
    let s = &db.store;
    s.insert_profile(&full_profile(1), &ev("t")).await.unwrap();
    s.transition(
        &iccid(1),
        &Expect::any(),
        &ProfileUpdate::to_state(ProfileState::Released),
        &ev("t"),
    )
    .await
    .unwrap();
    let before = s.get_profile(&iccid(1)).await.unwrap().unwrap();
    s.close().await;

    // Reconnecting re-runs the (already applied) migrations and sees the data.
    let s2 = db.reconnect().await;
    assert_eq!(s2.get_profile(&iccid(1)).await.unwrap(), Some(before));
    assert_eq!(s2.events_for(&iccid(1)).await.unwrap().len(), 2);
    s2.close().await;
    let s3 = db.reconnect().await;
    assert!(s3.get_profile(&iccid(1)).await.unwrap().is_some());
    s3.close().await;
}

// ---------------------------------------------------------------- profile factory

fn profile_type(name: &str) -> ProfileType {
    ProfileType {
        name: name.into(),
        template: "name = \"t\"\n".into(),
        service_provider_name: "SPN".into(),
        profile_name: format!("Profile {name}"),
        profile_class: Some(2),
        icon_type: Some(1),
        icon: Some(vec![0x89, b'P', b'N', b'G', 0, 0xFF]),
        notification_events: 0b1001,
        ppr_bits: Some(0b110),
        cc_attempt_limit: Some(3),
        download_attempt_limit: Some(7),
        created_at: T0,
        on_delete: smdpp_store::OnDelete::Reuse,
    }
}

fn imsi(n: u32) -> String {
    format!("00101{n:010}")
}

/// An import row: ICCID `n`, IMSI `imsi_n`, a sealed blob naming both.
fn import_row(n: u32, imsi_n: u32, ptype: &str, op: Option<&str>) -> ImportRow {
    ImportRow {
        secrets: SealedSecrets {
            iccid: iccid(n),
            imsi: imsi(imsi_n),
            dek_id: 1,
            sealed: format!("sealed {n} {imsi_n}").into_bytes(),
        },
        profile_type: ptype.into(),
        operator_id: op.map(str::to_owned),
        cc_attempt_limit: Some(4),
        download_attempt_limit: Some(6),
    }
}

/// The DEK records 1, 2 and 3 (`profile_secrets.dek_id` references them), unless present.
async fn deks(s: &Store) {
    for id in 1..=3 {
        let d = DekRecord {
            dek_id: id,
            kek_id: "file:t".into(),
            wrapped: format!("wrapped {id}").into_bytes(),
        };
        match s.insert_vault_dek(&d).await {
            Ok(()) | Err(StoreError::Duplicate { .. }) => {}
            Err(e) => panic!("DEK {id}: {e:?}"),
        }
    }
}

/// Imports `rows` in one transaction and commits (DEKs 1 to 3 present).
async fn import(s: &Store, rows: &[ImportRow]) -> Vec<ImportOutcome> {
    deks(s).await;
    let mut tx = s.begin_import().await.unwrap();
    let out = tx.insert_batch(rows).await.unwrap();
    tx.commit().await.unwrap();
    out
}

async fn profile_types_insert_get_list_duplicate(db: &TestDb) {
    let s = &db.store;
    assert!(s.list_profile_types().await.unwrap().is_empty());
    assert_eq!(s.get_profile_type("T1").await.unwrap(), None);

    let t1 = profile_type("T1");
    s.insert_profile_type(&t1).await.unwrap();
    assert_eq!(s.get_profile_type("T1").await.unwrap(), Some(t1.clone()));
    // A minimal type keeps its NULLs.
    let t0 = ProfileType {
        profile_class: None,
        icon_type: None,
        icon: None,
        ppr_bits: None,
        cc_attempt_limit: None,
        download_attempt_limit: None,
        ..profile_type("A0")
    };
    s.insert_profile_type(&t0).await.unwrap();
    assert_eq!(s.get_profile_type("A0").await.unwrap(), Some(t0.clone()));
    assert_eq!(
        s.list_profile_types().await.unwrap(),
        vec![t0.clone(), t1.clone()],
        "by name"
    );

    // The name is unique; the refused insert changes nothing.
    let other = ProfileType {
        service_provider_name: "Other".into(),
        ..profile_type("T1")
    };
    match s.insert_profile_type(&other).await {
        Err(StoreError::Duplicate { key }) => assert_eq!(key, "profile type name"),
        r => panic!("expected Duplicate, got {r:?}"),
    }
    assert_eq!(s.get_profile_type("T1").await.unwrap(), Some(t1.clone()));
    assert_eq!(s.list_profile_types().await.unwrap(), vec![t0, t1]);
    // Names are exact (no case folding).
    assert_eq!(s.get_profile_type("t1").await.unwrap(), None);
}

async fn vault_deks_insert_duplicate_rewrap_delete(db: &TestDb) {
    let s = &db.store;
    let dek = |id: i64, kek: &str| DekRecord {
        dek_id: id,
        kek_id: kek.into(),
        wrapped: format!("{kek} wraps {id}").into_bytes(),
    };
    assert!(s.vault_deks().await.unwrap().is_empty());
    s.insert_vault_dek(&dek(2, "file:a")).await.unwrap();
    s.insert_vault_dek(&dek(1, "file:a")).await.unwrap();
    assert_eq!(
        s.vault_deks().await.unwrap(),
        vec![dek(1, "file:a"), dek(2, "file:a")],
        "by id"
    );
    match s.insert_vault_dek(&dek(1, "file:z")).await {
        Err(StoreError::Duplicate { key }) => assert_eq!(key, "dek_id"),
        r => panic!("expected Duplicate, got {r:?}"),
    }
    assert_eq!(s.vault_deks().await.unwrap()[0], dek(1, "file:a"));

    // Re-wrap: every record replaced.
    s.rewrap_vault_deks(&[dek(1, "file:b"), dek(2, "file:b")])
        .await
        .unwrap();
    assert_eq!(
        s.vault_deks().await.unwrap(),
        vec![dek(1, "file:b"), dek(2, "file:b")]
    );
    // All or nothing: a record for a missing DEK (here the last one) changes nothing.
    assert_eq!(
        s.rewrap_vault_deks(&[dek(1, "file:c"), dek(2, "file:c"), dek(9, "file:c")])
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
    assert_eq!(
        s.vault_deks().await.unwrap(),
        vec![dek(1, "file:b"), dek(2, "file:b")]
    );
    s.rewrap_vault_deks(&[]).await.unwrap();

    assert!(s.delete_vault_dek(1).await.unwrap());
    assert!(!s.delete_vault_dek(1).await.unwrap());
    assert!(!s.delete_vault_dek(77).await.unwrap());
    assert_eq!(s.vault_deks().await.unwrap(), vec![dek(2, "file:b")]);
    // A deleted id can be used again (a new DEK 1 after a rollback of a rotation).
    s.insert_vault_dek(&dek(1, "file:b")).await.unwrap();
    assert_eq!(s.vault_deks().await.unwrap().len(), 2);

    // profile_secrets.dek_id references vault_deks: a DEK in use is not deleted (false,
    // still listed), and no record is stored under a DEK that does not exist.
    let mut row = import_row(1, 1, "T1", None);
    row.secrets.dek_id = 2;
    let mut tx = s.begin_import().await.unwrap();
    assert_eq!(
        tx.insert_batch(&[row]).await.unwrap(),
        vec![ImportOutcome::Inserted]
    );
    tx.commit().await.unwrap();
    assert!(!s.delete_vault_dek(2).await.unwrap());
    assert_eq!(
        s.vault_deks().await.unwrap(),
        vec![dek(1, "file:b"), dek(2, "file:b")]
    );
    assert!(s.delete_vault_dek(1).await.unwrap());
    let mut orphan = import_row(2, 2, "T1", None);
    orphan.secrets.dek_id = 77;
    let mut tx = s.begin_import().await.unwrap();
    assert!(tx.insert_batch(&[orphan]).await.is_err());
    tx.rollback().await.unwrap();
    assert_eq!(s.get_profile(&iccid(2)).await.unwrap(), None);
}

async fn import_changed_secrets_and_type_template_cas(db: &TestDb) {
    use ImportOutcome::*;
    let s = &db.store;
    s.insert_profile_type(&profile_type("T1")).await.unwrap();
    assert_eq!(
        import(s, &[import_row(1, 1, "T1", None)]).await,
        vec![Inserted]
    );
    // The same ICCID, IMSI, type and operator: AlreadyPresent or ChangedSecrets as the
    // caller's comparison with the stored record says; nothing written either way.
    let mut other = import_row(1, 1, "T1", None);
    other.secrets.sealed = b"other secrets".to_vec();
    let stored = import_row(1, 1, "T1", None).secrets.sealed;
    for (same, want) in [(true, AlreadyPresent), (false, ChangedSecrets)] {
        let mut tx = s.begin_import().await.unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        let out = tx
            .insert_batch_checked(&[other.clone(), import_row(2, 2, "T1", None)], |r, st| {
                seen.lock()
                    .unwrap()
                    .push((r.secrets.iccid.clone(), st.to_vec()));
                same
            })
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(out, vec![want, Inserted]);
        assert_eq!(seen.into_inner().unwrap(), vec![(iccid(1), stored.clone())]);
    }
    assert_eq!(
        s.get_sealed_secrets(&iccid(1)).await.unwrap(),
        Some(import_row(1, 1, "T1", None).secrets)
    );

    // A type's template is replaced only if it is still the old one.
    let old = profile_type("T1").template;
    assert!(s.replace_type_template("T1", &old, b"new").await.unwrap());
    assert!(!s.replace_type_template("T1", &old, b"again").await.unwrap());
    assert!(!s.replace_type_template("T9", b"new", b"x").await.unwrap());
    let t = s.get_profile_type("T1").await.unwrap().unwrap();
    assert_eq!(t.template, b"new".to_vec());
    assert_eq!(
        t,
        ProfileType {
            template: b"new".to_vec(),
            ..profile_type("T1")
        }
    );
}

async fn import_outcomes(db: &TestDb) {
    use ImportOutcome::*;
    let s = &db.store;
    // A profile that was not imported (uploaded package, no secrets).
    s.insert_profile(&NewProfile::available(iccid(100), Some("T1")), &ev("t"))
        .await
        .unwrap();
    assert_eq!(
        import(
            s,
            &[
                import_row(1, 1, "T1", None),
                import_row(2, 2, "T1", Some("OP")),
            ]
        )
        .await,
        vec![Inserted, Inserted]
    );

    let mut padded = import_row(1, 1, "T1", None);
    padded.secrets.iccid = format!("{}F", iccid(1));
    padded.secrets.sealed = b"another sealing of the same values".to_vec();
    let rows = [
        import_row(1, 1, "T1", None),        // 0: a re-run
        padded,                              // 1: the same, padded ICCID, other blob
        import_row(2, 2, "T1", Some("OP")),  // 2: a re-run with its operator
        import_row(2, 2, "T1", None),        // 3: other operator
        import_row(2, 2, "T1", Some("OP2")), // 4: other operator
        import_row(1, 1, "T2", None),        // 5: other type
        import_row(1, 9, "T1", None),        // 6: other IMSI
        import_row(100, 100, "T1", None),    // 7: a profile that was not imported
        import_row(3, 1, "T1", None),        // 8: IMSI of ICCID 1
        import_row(4, 4, "T1", None),        // 9: new
        import_row(4, 5, "T1", None),        // 10: ICCID of row 9
        import_row(5, 4, "T1", None),        // 11: IMSI of row 9
        import_row(4, 4, "T1", None),        // 12: row 9 again
        import_row(6, 6, "T1", Some("OP")),  // 13: new
    ];
    let out = import(s, &rows).await;
    assert_eq!(
        out,
        vec![
            AlreadyPresent,
            AlreadyPresent,
            AlreadyPresent,
            DuplicateIccid,
            DuplicateIccid,
            DuplicateIccid,
            DuplicateIccid,
            DuplicateIccid,
            DuplicateImsi,
            Inserted,
            DuplicateIccid,
            DuplicateImsi,
            DuplicateIccid,
            Inserted,
        ]
    );

    // What was inserted, with the values of its row.
    let p4 = s.get_profile(&iccid(4)).await.unwrap().unwrap();
    assert_eq!(p4.state, ProfileState::Available);
    assert_eq!(p4.profile_type.as_deref(), Some("T1"));
    assert_eq!(p4.operator_id, None);
    assert_eq!(p4.cc_attempt_limit, Some(4));
    assert_eq!(p4.download_attempt_limit, Some(6));
    assert_eq!(p4.upp, None);
    assert_eq!(p4.version, 0);
    assert_eq!(
        s.get_sealed_secrets(&iccid(4)).await.unwrap(),
        Some(rows[9].secrets.clone())
    );
    let p6 = s.get_profile(&iccid(6)).await.unwrap().unwrap();
    assert_eq!(p6.operator_id.as_deref(), Some("OP"));
    // Nothing else: the refused rows wrote nothing, the re-runs changed nothing.
    assert_eq!(s.get_profile(&iccid(3)).await.unwrap(), None);
    assert_eq!(s.get_profile(&iccid(5)).await.unwrap(), None);
    assert_eq!(s.get_sealed_secrets(&iccid(100)).await.unwrap(), None);
    assert_eq!(
        s.get_sealed_secrets(&iccid(1)).await.unwrap(),
        Some(import_row(1, 1, "T1", None).secrets)
    );
    assert_eq!(
        s.get_profile(&iccid(2))
            .await
            .unwrap()
            .unwrap()
            .operator_id
            .as_deref(),
        Some("OP")
    );
    assert_eq!(
        s.list_profiles(&ProfileFilter::default())
            .await
            .unwrap()
            .len(),
        5
    );
    assert_eq!(s.events_for(&iccid(1)).await.unwrap().len(), 1);
    // The padded ICCID finds the stored one.
    assert_eq!(
        s.get_sealed_secrets(&format!("{}F", iccid(4)))
            .await
            .unwrap()
            .map(|x| x.iccid),
        Some(iccid(4))
    );

    // An invalid ICCID fails the whole call, before anything is written.
    let mut tx = s.begin_import().await.unwrap();
    let mut bad = import_row(7, 7, "T1", None);
    bad.secrets.iccid = "12AB".into();
    assert!(matches!(
        tx.insert_batch(&[import_row(8, 8, "T1", None), bad]).await,
        Err(StoreError::InvalidInput(_))
    ));
    tx.rollback().await.unwrap();
    assert_eq!(s.get_profile(&iccid(8)).await.unwrap(), None);
    // An empty batch is fine.
    assert_eq!(import(s, &[]).await, vec![]);
}

async fn import_rollback_and_commit(db: &TestDb) {
    let s = &db.store;
    deks(s).await;
    let rows: Vec<ImportRow> = (1..=3).map(|n| import_row(n, n, "T1", None)).collect();
    let nothing = |s: &Store| {
        let s = s.clone();
        async move {
            for n in 1..=3 {
                assert_eq!(s.get_profile(&iccid(n)).await.unwrap(), None);
                assert_eq!(s.get_sealed_secrets(&iccid(n)).await.unwrap(), None);
                assert!(s.events_for(&iccid(n)).await.unwrap().is_empty());
            }
            assert!(s.count_profiles_of_type("T1").await.unwrap().is_empty());
        }
    };

    // Rolled back: nothing, even after two batches.
    let mut tx = s.begin_import().await.unwrap();
    assert_eq!(
        tx.insert_batch(&rows[..2]).await.unwrap(),
        vec![ImportOutcome::Inserted; 2]
    );
    // Within the transaction, a later batch sees the earlier one.
    assert_eq!(
        tx.insert_batch(&rows).await.unwrap(),
        vec![
            ImportOutcome::AlreadyPresent,
            ImportOutcome::AlreadyPresent,
            ImportOutcome::Inserted
        ]
    );
    // Not visible to others before the commit.
    nothing(s).await;
    tx.rollback().await.unwrap();
    nothing(s).await;

    // Dropped without commit: rolled back as well.
    let mut tx = s.begin_import().await.unwrap();
    tx.insert_batch(&rows).await.unwrap();
    drop(tx);
    nothing(s).await;

    // Committed: every row visible, with its creation event.
    let before = now_ms();
    let mut tx = s.begin_import().await.unwrap();
    assert_eq!(
        tx.insert_batch(&rows).await.unwrap(),
        vec![ImportOutcome::Inserted; 3]
    );
    tx.commit().await.unwrap();
    for (n, row) in (1..=3).zip(&rows) {
        let p = s.get_profile(&iccid(n)).await.unwrap().unwrap();
        assert_eq!(p.state, ProfileState::Available);
        assert!(p.created_at >= before && p.created_at == p.updated_at);
        assert_eq!(
            s.get_sealed_secrets(&iccid(n)).await.unwrap().as_ref(),
            Some(&row.secrets)
        );
        let evs = s.events_for(&iccid(n)).await.unwrap();
        assert_eq!(evs.len(), 1, "{evs:?}");
        let e = &evs[0];
        assert_eq!(e.iccid, iccid(n));
        assert_eq!(e.from_state, None);
        assert_eq!(e.to_state, ProfileState::Available);
        assert_eq!(e.actor, "import");
        assert_eq!(e.cause.as_deref(), Some("imported"));
        assert_eq!(e.detail, None);
        assert_eq!(e.at, p.created_at);
    }
    // Other writers are not blocked after the commit.
    s.insert_profile(&NewProfile::available(iccid(50), None), &ev("t"))
        .await
        .unwrap();
    assert_eq!(
        s.count_profiles_of_type("T1").await.unwrap(),
        vec![(ProfileState::Available, 3)]
    );
}

async fn import_batch_larger_than_a_chunk(db: &TestDb) {
    use ImportOutcome::*;
    let s = &db.store;
    let n = (2 * IMPORT_CHUNK + 7) as u32;
    let mut rows: Vec<ImportRow> = (1..=n).map(|i| import_row(i, i, "BULK", None)).collect();
    // In the second chunk: the ICCID of a row of the first chunk with another IMSI, the
    // IMSI of a row of the first chunk, and a row of the first chunk repeated.
    let second = IMPORT_CHUNK + 5;
    rows[second] = import_row(3, 90_001, "BULK", None);
    rows[second + 1] = import_row(90_002, 4, "BULK", None);
    rows[second + 2] = import_row(5, 5, "BULK", None);
    let out = import(s, &rows).await;
    assert_eq!(out.len(), rows.len());
    for (i, o) in out.iter().enumerate() {
        let want = match i {
            i if i == second => DuplicateIccid,
            i if i == second + 1 => DuplicateImsi,
            i if i == second + 2 => DuplicateIccid,
            _ => Inserted,
        };
        assert_eq!(o, &want, "row {i}");
    }
    let inserted = i64::from(n) - 3;
    assert_eq!(
        s.count_profiles_of_type("BULK").await.unwrap(),
        vec![(ProfileState::Available, inserted)]
    );
    // Every profile has its secrets and its event (spot checks at the chunk edges).
    for i in [
        1,
        IMPORT_CHUNK as u32,
        IMPORT_CHUNK as u32 + 1,
        2 * IMPORT_CHUNK as u32 + 1,
        n,
    ] {
        assert_eq!(
            s.get_sealed_secrets(&iccid(i))
                .await
                .unwrap()
                .map(|x| x.imsi),
            Some(imsi(i)),
            "row {i}"
        );
        assert_eq!(s.events_for(&iccid(i)).await.unwrap().len(), 1, "row {i}");
    }
    let mut all = 0;
    let mut after = None;
    loop {
        let page = s
            .sealed_secrets_not_under(99, after.as_deref(), 10_000)
            .await
            .unwrap();
        all += page.len();
        match page.last() {
            Some(x) => after = Some(x.iccid.clone()),
            None => break,
        }
    }
    assert_eq!(all as i64, inserted);
    // A re-run of the whole batch: nothing inserted, so the repeated row is already
    // present like its original; the two others are refused as before.
    let again = import(s, &rows).await;
    for (i, o) in again.iter().enumerate() {
        let want = match i {
            i if i == second => DuplicateIccid,
            i if i == second + 1 => DuplicateImsi,
            _ => AlreadyPresent,
        };
        assert_eq!(o, &want, "re-run row {i}");
    }
}

async fn sealed_secrets_paging_and_reseal_cas(db: &TestDb) {
    let s = &db.store;
    let rows: Vec<ImportRow> = (1..=25)
        .map(|n| {
            let mut r = import_row(n, n, "T1", None);
            r.secrets.dek_id = if n <= 10 { 1 } else { 2 };
            r
        })
        .collect();
    import(s, &rows).await;

    // Paging by ICCID.
    let mut pages = Vec::new();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s
            .sealed_secrets_not_under(3, after.as_deref(), 10)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        pages.push(page.len());
        after = page.last().map(|x| x.iccid.clone());
        seen.extend(page);
    }
    assert_eq!(pages, vec![10, 10, 5]);
    assert_eq!(
        seen,
        rows.iter().map(|r| r.secrets.clone()).collect::<Vec<_>>()
    );
    // Only the rows not under the given DEK.
    let not_2 = s.sealed_secrets_not_under(2, None, 100).await.unwrap();
    assert_eq!(
        not_2.iter().map(|x| x.iccid.clone()).collect::<Vec<_>>(),
        (1..=10).map(iccid).collect::<Vec<_>>()
    );
    let not_1 = s
        .sealed_secrets_not_under(1, Some(&iccid(20)), 100)
        .await
        .unwrap();
    assert_eq!(
        not_1.iter().map(|x| x.iccid.clone()).collect::<Vec<_>>(),
        (21..=25).map(iccid).collect::<Vec<_>>()
    );
    assert_eq!(
        s.sealed_secrets_not_under(1, None, 0).await.unwrap().len(),
        1
    );

    // Re-seal: compare-and-set on the old blob.
    let stale = SealedSecrets {
        sealed: b"not what is stored".to_vec(),
        ..rows[1].secrets.clone()
    };
    let missing = import_row(99, 99, "T1", None).secrets;
    let updates = vec![
        (rows[0].secrets.clone(), b"new 1".to_vec(), 3),
        (stale, b"new 2".to_vec(), 3),
        (missing, b"new 99".to_vec(), 3),
        (rows[12].secrets.clone(), b"new 13".to_vec(), 3),
    ];
    assert_eq!(s.reseal_secrets(&updates).await.unwrap(), 2);
    let got = |n| {
        let s = s.clone();
        async move { s.get_sealed_secrets(&iccid(n)).await.unwrap().unwrap() }
    };
    let r1 = got(1).await;
    assert_eq!((r1.dek_id, r1.sealed.as_slice()), (3, &b"new 1"[..]));
    assert_eq!(r1.imsi, imsi(1));
    assert_eq!(
        got(2).await,
        rows[1].secrets,
        "stale old blob: not replaced"
    );
    assert_eq!(got(13).await.dek_id, 3);
    assert_eq!(s.get_sealed_secrets(&iccid(99)).await.unwrap(), None);
    // Replaying the same updates: every old blob is stale now.
    assert_eq!(s.reseal_secrets(&updates).await.unwrap(), 0);
    assert_eq!(got(1).await.sealed, b"new 1".to_vec());
    assert_eq!(s.reseal_secrets(&[]).await.unwrap(), 0);
    assert_eq!(
        s.sealed_secrets_not_under(3, None, 100)
            .await
            .unwrap()
            .len(),
        23
    );
    // Re-sealing changes neither the profile's version nor its history.
    let p = s.get_profile(&iccid(1)).await.unwrap().unwrap();
    assert_eq!(p.version, 0);
    assert_eq!(s.events_for(&iccid(1)).await.unwrap().len(), 1);
}

async fn stored_upps_paging_and_replace_cas(db: &TestDb) {
    let s = &db.store;
    for n in 1..=8u32 {
        let mut np = NewProfile::available(iccid(n), None);
        if n != 4 {
            np.upp = Some(vec![0xA0, n as u8]);
        }
        s.insert_profile(&np, &ev("t")).await.unwrap();
    }
    // Imported profiles have no stored package.
    import(s, &[import_row(9, 9, "T1", None)]).await;

    let mut pages = Vec::new();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.stored_upps(after.as_deref(), 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        pages.push(page.len());
        after = page.last().map(|x| x.0.clone());
        seen.extend(page);
    }
    assert_eq!(pages, vec![3, 3, 1]);
    assert_eq!(
        seen,
        [1, 2, 3, 5, 6, 7, 8]
            .iter()
            .map(|&n| (iccid(n), vec![0xA0, n as u8]))
            .collect::<Vec<_>>()
    );
    assert_eq!(s.stored_upps(None, 0).await.unwrap().len(), 1);

    // Compare-and-set on the old package.
    let before = s.get_profile(&iccid(1)).await.unwrap().unwrap();
    assert!(
        s.replace_stored_upp(&iccid(1), &[0xA0, 1], b"\x01sealed")
            .await
            .unwrap()
    );
    let after_p = s.get_profile(&iccid(1)).await.unwrap().unwrap();
    assert_eq!(after_p.upp, Some(b"\x01sealed".to_vec()));
    assert_eq!(after_p.version, before.version, "version not bumped");
    assert_eq!(s.events_for(&iccid(1)).await.unwrap().len(), 1);
    // Stale old value, no package, no profile: not replaced.
    assert!(
        !s.replace_stored_upp(&iccid(1), &[0xA0, 1], b"\x01again")
            .await
            .unwrap()
    );
    assert_eq!(
        s.get_profile(&iccid(1)).await.unwrap().unwrap().upp,
        Some(b"\x01sealed".to_vec())
    );
    assert!(
        !s.replace_stored_upp(&iccid(4), &[0xA0, 4], b"x")
            .await
            .unwrap()
    );
    assert_eq!(s.get_profile(&iccid(4)).await.unwrap().unwrap().upp, None);
    assert!(
        !s.replace_stored_upp(&iccid(77), &[0xA0, 1], b"x")
            .await
            .unwrap()
    );
    assert_eq!(
        s.stored_upps(None, 100).await.unwrap()[0],
        (iccid(1), b"\x01sealed".to_vec())
    );
    // The packages in the clear (first byte A0), by ICCID, up to the limit.
    let clear = |ns: &[u32]| -> Vec<(String, Vec<u8>)> {
        ns.iter()
            .map(|&n| (iccid(n), vec![0xA0, n as u8]))
            .collect()
    };
    assert_eq!(
        s.plaintext_upps(100).await.unwrap(),
        clear(&[2, 3, 5, 6, 7, 8])
    );
    assert_eq!(s.plaintext_upps(2).await.unwrap(), clear(&[2, 3]));
    assert!(
        s.replace_stored_upp(&iccid(2), &[0xA0, 2], b"\x01sealed 2")
            .await
            .unwrap()
    );
    assert_eq!(s.plaintext_upps(2).await.unwrap(), clear(&[3, 5]));
}

async fn count_profiles_of_type_by_state(db: &TestDb) {
    let s = &db.store;
    assert!(s.count_profiles_of_type("A").await.unwrap().is_empty());
    seed(s, 1, 3, "A").await;
    seed(s, 10, 1, "B").await;
    s.insert_profile(&NewProfile::available(iccid(20), None), &ev("t"))
        .await
        .unwrap();
    for (n, state) in [(1, ProfileState::Released), (2, ProfileState::Allocated)] {
        s.transition(
            &iccid(n),
            &Expect::any(),
            &ProfileUpdate::to_state(state),
            &ev("t"),
        )
        .await
        .unwrap();
    }
    import(
        s,
        &[
            import_row(30, 30, "A", None),
            import_row(31, 31, "A", Some("OP")),
        ],
    )
    .await;
    assert_eq!(
        s.count_profiles_of_type("A").await.unwrap(),
        vec![
            (ProfileState::Allocated, 1),
            (ProfileState::Available, 3),
            (ProfileState::Released, 1),
        ],
        "by state name, states with none left out"
    );
    assert_eq!(
        s.count_profiles_of_type("B").await.unwrap(),
        vec![(ProfileState::Available, 1)]
    );
    assert!(s.count_profiles_of_type("a").await.unwrap().is_empty());
    assert!(s.count_profiles_of_type("").await.unwrap().is_empty());
}

// ---------------------------------------------------------------- non-battery

#[tokio::test]
async fn unsupported_url_does_not_echo_secrets() {
    let err = Store::connect("mysql://u:hunter2@db/x").await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)));
    assert!(!err.to_string().contains("hunter2"));
    // Nothing listens on port 1: a connection error, still without the password.
    let mut opts = StoreOptions::default();
    opts.acquire_timeout = std::time::Duration::from_secs(2);
    let err = Store::connect_with("postgres://u:hunter2@127.0.0.1:1/x", &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory_works_with_one_connection() {
    let s = Store::connect("sqlite::memory:").await.unwrap();
    seed(&s, 1, 3, "A").await;
    assert_eq!(
        s.list_profiles(&ProfileFilter::default())
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn sqlite_open_path_with_special_characters_and_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a dir#1").join("x?y.db");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let s = Store::open_sqlite(&path, &StoreOptions::default())
        .await
        .unwrap();
    seed(&s, 1, 1, "A").await;
    assert!(path.exists());
    let wal = path.with_file_name("x?y.db-wal");
    assert!(wal.exists(), "WAL journal in use");
    s.close().await;
}

#[test]
fn with_database_rewrites_the_path() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "d"),
        "postgres://postgres@127.0.0.1:5432/d"
    );
    assert_eq!(
        with_database("postgres://p@localhost/postgres?host=/tmp/x", "d"),
        "postgres://p@localhost/d?host=/tmp/x"
    );
    assert_eq!(with_database("postgres://p@h:1", "d"), "postgres://p@h:1/d");
}
