//! The operators' admin API (`GET /smdpp/admin/v1/orders/{iccid}/...`) over REAL mutual-TLS
//! HTTPS on SQLite: the Activation Code and its QR codes, identical to `smdpp orders qr`;
//! tenant isolation, client authentication and order state. Negative tests are `rejects_*`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../smdpp-service/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use rsp_crypto::Curve;
use serde_json::{Value, json};
use smdpp::cli::DataArgs;
use smdpp::es2_cli::{OrderScope, OrdersCommand, orders};
use smdpp_service::assembly::activation_code;
use smdpp_service::inventory::import_inventory;
use smdpp_service::operators::add_operator;
use smdpp_service::upp::demo_upp;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

struct Env {
    db: Db,
    server: Server,
    op_a: ClientCert,
    op_b: ClientCert,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn next() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

async fn env(dir: &Path) -> Env {
    let db = Db::sqlite(dir);
    let (_, s) = pki_settings(dir, &db, Curve::NistP256);
    let server = Server::start_lpa(s).await;
    let op_a = client_cert("operator-a.example");
    let op_b = client_cert("operator-b.example");
    add_operator(server.store(), "op-a", &op_a.cert_der, None)
        .await
        .unwrap();
    add_operator(server.store(), "op-b", &op_b.cert_der, None)
        .await
        .unwrap();
    Env {
        db,
        server,
        op_a,
        op_b,
    }
}

impl Env {
    fn cert(&self, operator: &str) -> &ClientCert {
        if operator == "op-a" {
            &self.op_a
        } else {
            &self.op_b
        }
    }

    /// An ES2+ call that must succeed.
    async fn es2(&self, operator: &str, function: &str, body: Value) -> Value {
        let v = es2_call(&self.server, operator, self.cert(operator), function, body).await;
        assert_es2_success(function, &v);
        v
    }

    /// A new Available profile of `operator`.
    async fn inventory(&self, operator: &str) -> String {
        let side = self.server.sidecar().await;
        let upp = demo_upp(&format!("8999902{:012}", next())).unwrap();
        let iccid = import_inventory(
            self.server.store(),
            &side,
            self.server.factory(),
            operator,
            &upp,
            "T",
            "SP",
            None,
        )
        .await
        .unwrap();
        side.close().await;
        iccid
    }

    /// A new order of `operator`: downloadOrder then, when `confirm`, confirmOrder
    /// (released).
    async fn order(&self, operator: &str, confirm: bool, cc: Option<&str>) -> String {
        let iccid = self.inventory(operator).await;
        self.es2(operator, "downloadOrder", json!({"iccid": iccid}))
            .await;
        if confirm {
            let mut body = json!({"iccid": iccid, "releaseFlag": true});
            if let Some(cc) = cc {
                body["confirmationCode"] = json!(cc);
            }
            self.es2(operator, "confirmOrder", body).await;
        }
        iccid
    }

    async fn get(&self, path: &str, client: Option<&ClientCert>) -> (u16, Vec<u8>) {
        https_request(
            self.server.addr,
            &self.server.tls_leaf,
            "GET",
            &format!("/smdpp/admin/v1/orders/{path}"),
            "",
            client,
        )
        .await
    }

    async fn get_json(&self, path: &str, client: Option<&ClientCert>) -> (u16, Value) {
        let (st, bytes) = self.get(path, client).await;
        (st, serde_json::from_slice(&bytes).unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_gets_activation_code_and_qr_codes() {
    let dir = tempfile::tempdir().unwrap();
    let env = env(dir.path()).await;
    for cc in [None, Some("12345678")] {
        let iccid = env.order("op-a", true, cc).await;
        let profile = env.server.profile(&iccid).await;
        let mid = profile.matching_id.clone().unwrap();
        let expected = activation_code(&env.server.address(), &mid, cc.is_some());
        assert_eq!(expected.ends_with("$$1"), cc.is_some());

        // With and without the trailing F.
        for path_iccid in [iccid.clone(), format!("{iccid}F")] {
            let (st, v) = env
                .get_json(&format!("{path_iccid}/activation-code"), Some(&env.op_a))
                .await;
            assert_eq!(st, 200, "{v}");
            assert_eq!(
                v,
                json!({"iccid": iccid, "state": "released", "activationCode": expected})
            );
        }
        assert_eq!(
            expected,
            format!(
                "LPA:1${}${mid}{}",
                env.server.address(),
                if cc.is_some() { "$$1" } else { "" }
            )
        );

        let (st, png) = env.get(&format!("{iccid}/qr.png"), Some(&env.op_a)).await;
        assert_eq!(st, 200);
        assert!(png.starts_with(PNG_SIGNATURE));
        let (st, svg) = env.get(&format!("{iccid}/qr.svg"), Some(&env.op_a)).await;
        assert_eq!(st, 200);
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("<svg"), "{svg}");

        // `smdpp orders qr` draws the very same QR codes.
        let png_path = dir.path().join("qr.png");
        let svg_path = dir.path().join("qr.svg");
        orders(OrdersCommand::Qr {
            scope: OrderScope {
                data: DataArgs {
                    data_dir: Some(dir.path().join("data")),
                    database_url: Some(env.db.url.clone()),
                    config: None,
                    kek_file: None,
                },
                operator: "op-a".into(),
            },
            iccid: iccid.clone(),
            smdp_address: Some(env.server.address()),
            png: Some(png_path.clone()),
            svg: Some(svg_path.clone()),
        })
        .await
        .unwrap();
        assert_eq!(std::fs::read(&png_path).unwrap(), png);
        assert_eq!(std::fs::read_to_string(&svg_path).unwrap(), svg);
    }
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_other_operators_order() {
    let dir = tempfile::tempdir().unwrap();
    let env = env(dir.path()).await;
    let theirs = env.order("op-b", true, None).await;
    let (st, unknown) = env
        .get("8999909999999999999/activation-code", Some(&env.op_a))
        .await;
    assert_eq!(st, 404);
    for suffix in ["activation-code", "qr.png", "qr.svg"] {
        let (st, body) = env
            .get(&format!("{theirs}/{suffix}"), Some(&env.op_a))
            .await;
        assert_eq!(st, 404, "{suffix}");
        assert_eq!(body, unknown, "{suffix}: same answer as an unknown ICCID");
    }
    let v: Value = serde_json::from_slice(&unknown).unwrap();
    assert_eq!(v["error"], "not_found");
    // A malformed ICCID is not told apart either.
    let (st, body) = env
        .get("not-an-iccid/activation-code", Some(&env.op_a))
        .await;
    assert_eq!((st, body), (404, unknown));
    // The owner gets it.
    let (st, _) = env
        .get(&format!("{theirs}/activation-code"), Some(&env.op_b))
        .await;
    assert_eq!(st, 200);
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_without_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let env = env(dir.path()).await;
    let iccid = env.order("op-a", true, None).await;
    for suffix in ["activation-code", "qr.png", "qr.svg"] {
        let (st, v) = env.get_json(&format!("{iccid}/{suffix}"), None).await;
        assert_eq!(st, 401, "{suffix}");
        assert_eq!(v["error"], "unauthenticated");
    }
    // A certificate of no registered operator.
    let stranger = client_cert("stranger.example");
    let (st, v) = env
        .get_json(&format!("{iccid}/activation-code"), Some(&stranger))
        .await;
    assert_eq!(st, 403);
    assert_eq!(v["error"], "forbidden");
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_order_not_released() {
    let dir = tempfile::tempdir().unwrap();
    let env = env(dir.path()).await;
    let available = env.inventory("op-a").await;
    let allocated = env.order("op-a", false, None).await;
    for iccid in [available, allocated] {
        for suffix in ["activation-code", "qr.png", "qr.svg"] {
            let (st, v) = env
                .get_json(&format!("{iccid}/{suffix}"), Some(&env.op_a))
                .await;
            assert_eq!(st, 409, "{suffix}: {v}");
            assert_eq!(v["error"], "conflict");
            assert!(
                v["message"]
                    .as_str()
                    .unwrap()
                    .contains("no Activation Code"),
                "{v}"
            );
        }
    }
    env.server.stop().await;
}
