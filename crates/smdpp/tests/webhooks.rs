//! Signed webhooks end to end against a REAL receiver on 127.0.0.1 (our own hyper server,
//! HTTPS with a CA of its own or plain HTTP, see `common/webhook_receiver.rs`) that checks
//! every request with `smdpp_core::webhook::verify`: `smdpp webhooks test`, the delivery
//! of an outbox row with a retry, the permanent failures, the CLI's refusals, and the
//! verification examples of docs/WEBHOOKS.md (Python and openssl) run on a real delivery.
//! On SQLite and (when `SMDPP_TEST_PG_URL` is set) PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../smdpp-service/tests/common/mod.rs"]
mod common;
#[path = "../../smdpp-service/tests/common/webhook_receiver.rs"]
mod webhook_receiver;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use common::{Db, both_backends};
use smdpp::cli::DataArgs;
use smdpp::webhooks_cli::{
    WebhookAddArgs, WebhooksCommand, add_webhook, format_webhooks, webhooks_command,
};
use smdpp_service::factory::Factory;
use smdpp_service::webhooks::{WebhookTls, deliver_row, send_test};
use smdpp_store::{EventRecord, NewProfile, OutboxKind, OutboxRow, Store};
use webhook_receiver::{Hit, WebhookReceiver};

const TIMEOUT: Duration = Duration::from_secs(10);

fn data(dir: &Path, db: &Db) -> DataArgs {
    DataArgs {
        data_dir: Some(dir.to_path_buf()),
        database_url: Some(db.url.clone()),
        config: None,
        kek_file: None,
    }
}

fn add_args(dir: &Path, db: &Db, url: &str) -> WebhookAddArgs {
    WebhookAddArgs {
        data: data(dir, db),
        url: url.to_owned(),
        events: "*".into(),
        operator: None,
        ca: None,
        secret_file: None,
    }
}

/// The store and factory of the data in `dir` / `db` (as `serve` would open them).
async fn open(dir: &Path, db: &Db) -> (Store, Arc<Factory>) {
    std::fs::create_dir_all(dir).unwrap();
    let store = Store::connect(&db.url).await.unwrap();
    let factory = smdpp_service::assembly::open_factory(&store, &dir.join("vault.kek"))
        .await
        .unwrap();
    (store, factory)
}

fn assert_signed(hit: &Hit) {
    assert_eq!(hit.verified, Some(Ok(())), "signature of {hit:?}");
    assert_eq!(hit.method, "POST");
    assert_eq!(hit.header("content-type"), Some("application/json"));
    let body = hit.json();
    assert_eq!(hit.header("smdpp-event-id"), body["id"].as_str());
    assert_eq!(hit.header("smdpp-event-type"), body["type"].as_str());
}

/// The webhook rows the store queued, oldest first.
async fn webhook_rows(store: &Store) -> Vec<OutboxRow> {
    store
        .list_outbox(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == OutboxKind::Webhook)
        .collect()
}

// ------------------------------------------------------------------------------ tests

async fn test_command_delivers_a_valid_signed_request(dir: &Path, db: &Db) {
    let rx = WebhookReceiver::https(dir).await;
    let mut a = add_args(dir, db, &rx.url("/hooks/smdpp"));
    a.ca = rx.ca_file.clone();
    a.events = "installed, deleted".into();
    let added = add_webhook(&a).await.unwrap();
    assert!(added.id.starts_with("wh_"));
    assert_eq!(added.events, "installed,deleted");
    let secret = added.secret.expect("a generated secret is shown once");
    assert!(secret.starts_with("whsec_"));
    rx.set_secret(secret.as_bytes());

    // `smdpp webhooks test ID`, as the binary runs it.
    webhooks_command(WebhooksCommand::Test {
        data: data(dir, db),
        id: added.id.clone(),
    })
    .await
    .unwrap();
    let hits = rx.hits();
    assert_eq!(hits.len(), 1);
    assert_signed(&hits[0]);
    assert_eq!(hits[0].path, "/hooks/smdpp");
    assert_eq!(hits[0].status, 200);
    let body = hits[0].json();
    assert_eq!(body["type"], "webhook.test");
    assert!(body["id"].as_str().unwrap().starts_with("test:"));
    assert!(body["occurredAt"].as_str().unwrap().ends_with('Z'));
    assert!(body.get("iccid").is_none());

    // The same through the library, with the status; another id each time.
    let (store, factory) = open(dir, db).await;
    let tls = WebhookTls::new(None).unwrap();
    assert_eq!(
        send_test(&factory, &store, &tls, &added.id, TIMEOUT)
            .await
            .unwrap(),
        200
    );
    let hits = rx.hits();
    assert_eq!(hits.len(), 2);
    assert_signed(&hits[1]);
    assert_ne!(hits[0].json()["id"], hits[1].json()["id"]);

    // The secret is nowhere in the clear: not in the row, not in the listing.
    let hook = store.get_webhook(&added.id).await.unwrap().unwrap();
    assert!(
        !hook
            .secret_sealed
            .windows(secret.len())
            .any(|w| w == secret.as_bytes())
    );
    assert_eq!(hook.ca, rx.ca_pem);
    let listing = format_webhooks(&store.list_webhooks().await.unwrap());
    assert!(listing.contains(&added.id) && listing.contains("installed,deleted"));
    assert!(listing.contains("\town\t"));
    assert!(!listing.contains(secret.as_str()));
    store.close().await;

    // A receiver that does not trust our TLS (no --ca, system roots only) is never reached.
    let b = add_webhook(&add_args(dir, db, &rx.url("/other")))
        .await
        .unwrap();
    let err = webhooks_command(WebhooksCommand::Test {
        data: data(dir, db),
        id: b.id.clone(),
    })
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").starts_with(&format!("webhook {}: TLS handshake: ", b.id)),
        "{err:#}"
    );
    assert_eq!(rx.hits().len(), 2);
}

async fn rejects_receiver_500_then_200(dir: &Path, db: &Db) {
    let rx = WebhookReceiver::https(dir).await;
    let secret_file = dir.join("secret.txt");
    std::fs::write(&secret_file, "my-own-webhook-secret-0123\n").unwrap();
    let mut a = add_args(dir, db, &rx.url("/billing"));
    a.ca = rx.ca_file.clone();
    a.events = "created".into();
    a.secret_file = Some(secret_file);
    let added = add_webhook(&a).await.unwrap();
    assert!(added.secret.is_none(), "a given secret is not printed");
    rx.set_secret(b"my-own-webhook-secret-0123");

    // A profile is created: the store queues the event for the webhook.
    let (store, factory) = open(dir, db).await;
    store
        .insert_profile(
            &NewProfile::available("8988247000000000018", Some("retail")),
            &EventRecord::by("test").with_cause("imported"),
        )
        .await
        .unwrap();
    let rows = webhook_rows(&store).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row.target.as_deref(), Some(added.id.as_str()));

    rx.answer(&[500]);
    let tls = WebhookTls::new(None).unwrap();
    let first = deliver_row(&factory, &store, &tls, row, TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(first.status(), Some(500));
    assert!(!first.is_permanent(), "a 5xx is retried");
    assert_eq!(first.to_string(), "the receiver answered HTTP 500");
    let second = deliver_row(&factory, &store, &tls, row, TIMEOUT).await;
    assert_eq!(second.unwrap(), 200);

    let hits = rx.hits();
    assert_eq!(
        hits.iter().map(|h| h.status).collect::<Vec<_>>(),
        [500, 200]
    );
    for h in &hits {
        assert_signed(h);
        assert_eq!(h.header("smdpp-event-id"), Some(row.id.as_str()));
    }
    // Both attempts carry the same event.
    assert_eq!(hits[0].json(), hits[1].json());
    let body = hits[1].json();
    assert_eq!(body["id"], row.id.as_str());
    assert_eq!(body["type"], "profile.created");
    assert_eq!(body["iccid"], "8988247000000000018");
    assert_eq!(body["profileType"], "retail");
    assert_eq!(body["state"], "available");
    assert!(body.get("operatorId").is_none());
    store.close().await;
}

async fn rejects_refused_and_removed_webhooks(dir: &Path, db: &Db) {
    let rx = WebhookReceiver::http().await;
    let added = add_webhook(&add_args(dir, db, &rx.url("/h")))
        .await
        .unwrap();
    rx.set_secret(added.secret.as_ref().unwrap().as_bytes());
    let (store, factory) = open(dir, db).await;
    store
        .insert_profile(
            &NewProfile::available("8988247000000000026", None),
            &EventRecord::by("test"),
        )
        .await
        .unwrap();
    let row = webhook_rows(&store).await.remove(0);
    let tls = WebhookTls::new(None).unwrap();

    for (status, permanent) in [(404, true), (410, true), (429, false), (503, false)] {
        rx.answer(&[status]);
        let e = deliver_row(&factory, &store, &tls, &row, TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(status));
        assert_eq!(e.is_permanent(), permanent, "{status}");
    }
    assert!(rx.hits().iter().all(|h| h.verified == Some(Ok(()))));

    // Removed after the event was queued: the row fails for good, and says why.
    assert!(store.delete_webhook(&added.id).await.unwrap());
    let e = deliver_row(&factory, &store, &tls, &row, TIMEOUT)
        .await
        .unwrap_err();
    assert!(e.is_permanent());
    assert_eq!(
        e.to_string(),
        format!(
            "webhook {} was removed; the event is not delivered",
            added.id
        )
    );
    assert_eq!(rx.hits().len(), 4, "nothing sent for a removed webhook");

    // Nobody listening: retried.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let gone = add_webhook(&add_args(dir, db, &format!("http://127.0.0.1:{closed}/x")))
        .await
        .unwrap();
    let err = send_test(&factory, &store, &tls, &gone.id, TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("webhook {}: connect: ", gone.id)),
        "{err}"
    );
    store.close().await;
}

/// `smdpp webhooks ...` as parsed by clap.
#[derive(Parser, Debug)]
struct Cli {
    #[command(subcommand)]
    command: WebhooksCommand,
}

async fn run_cli(dir: &Path, db: &Db, args: &[&str]) -> Result<(), String> {
    let mut argv = vec!["webhooks"];
    argv.extend_from_slice(args);
    let d = dir.display().to_string();
    argv.extend(["--data-dir", &d, "--database-url", &db.url]);
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    webhooks_command(cli.command)
        .await
        .map_err(|e| format!("{e:#}"))
}

async fn rejects_bad_cli_arguments(dir: &Path, db: &Db) {
    let short = dir.join("short.txt");
    std::fs::write(&short, "too-short\n").unwrap();
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let (s, p) = (short.display().to_string(), not_pem.display().to_string());
    let url = "https://billing.example/hook";
    for (args, message) in [
        (
            vec!["add", "--url", "http://billing.example/hook"],
            "--url: http:// is only allowed to 127.0.0.1, [::1] or localhost (use https://)"
                .to_owned(),
        ),
        (
            vec!["add", "--url", "ftp://billing.example/hook"],
            "--url: not an https:// URL".to_owned(),
        ),
        (
            vec!["add", "--url", "https://user:pw@billing.example/"],
            "--url: user information is not allowed in it".to_owned(),
        ),
        (
            vec!["add", "--url", url, "--events", "installed,instaled"],
            "--events: unknown event \"instaled\" (expected * or a comma-separated list of \
             created, released, installed, enabled, disabled, deleted, deactivated)"
                .to_owned(),
        ),
        (
            vec!["add", "--url", url, "--events", "test"],
            "--events: \"test\" cannot be subscribed to: test requests are sent by \
             `smdpp webhooks test`"
                .to_owned(),
        ),
        (
            vec!["add", "--url", url, "--events", "*,deleted"],
            "--events: * cannot be combined with event names".to_owned(),
        ),
        (
            vec!["add", "--url", url, "--events", ""],
            "--events: the event list is empty or has an empty item".to_owned(),
        ),
        (
            vec!["add", "--url", url, "--secret-file", &s],
            format!(
                "--secret-file {s}: the secret must be 16 to 512 visible ASCII characters \
                 (no spaces)"
            ),
        ),
        (
            vec!["add", "--url", url, "--ca", &p],
            format!("--ca {p}: no certificate in it"),
        ),
        (
            vec!["add", "--url", url, "--operator", "op-nobody"],
            "unknown operator \"op-nobody\" (register it with `smdpp operators add`)".to_owned(),
        ),
        (
            vec!["remove", "wh_nothere"],
            "no webhook \"wh_nothere\"".to_owned(),
        ),
        (
            vec!["test", "wh_nothere"],
            "no webhook \"wh_nothere\"".to_owned(),
        ),
    ] {
        assert_eq!(
            run_cli(dir, db, &args).await.unwrap_err(),
            message,
            "{args:?}"
        );
    }
    // --url is required (clap's own refusal).
    let e = run_cli(dir, db, &["add"]).await.unwrap_err();
    assert!(e.contains("--url <URL>"), "{e}");
    // Nothing was stored by the refused commands.
    let (store, _f) = open(dir, db).await;
    assert!(store.list_webhooks().await.unwrap().is_empty());
    store.close().await;
    // The accepted form, and its removal.
    run_cli(dir, db, &["add", "--url", url, "--events", "released"])
        .await
        .unwrap();
    let (store, _f) = open(dir, db).await;
    let list = store.list_webhooks().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].events, "released");
    run_cli(dir, db, &["remove", &list[0].id]).await.unwrap();
    assert!(store.list_webhooks().await.unwrap().is_empty());
    store.close().await;
}

/// The fenced block after `<!-- webhooks-doc:NAME -->` in docs/WEBHOOKS.md.
fn doc_snippet(name: &str) -> String {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/WEBHOOKS.md"),
    )
    .unwrap();
    let marker = format!("<!-- webhooks-doc:{name} -->");
    let after = &doc[doc.find(&marker).expect("marker in the doc") + marker.len()..];
    let start = after.find("```").unwrap();
    let body = &after[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("\n```").unwrap()].to_owned()
}

async fn doc_examples_verify_a_real_delivery(dir: &Path, db: &Db) {
    let rx = WebhookReceiver::http().await;
    let added = add_webhook(&add_args(dir, db, &rx.url("/py")))
        .await
        .unwrap();
    let secret = added.secret.unwrap();
    rx.set_secret(secret.as_bytes());
    run_cli(dir, db, &["test", &added.id]).await.unwrap();
    let hit = rx.hits().remove(0);
    assert_signed(&hit);
    let header = hit.header("smdpp-signature").unwrap().to_owned();
    let body_file = dir.join("body.json");
    std::fs::write(&body_file, &hit.body).unwrap();

    // Python: the function of the doc, run on the request as received.
    let script = format!(
        "{}\n\nimport os, sys\nbody = open(os.environ['BODY_FILE'], 'rb').read()\n\
         ok = verify_smdpp_signature(os.environ['SECRET'], os.environ['SIG'], body)\n\
         tampered = verify_smdpp_signature(os.environ['SECRET'], os.environ['SIG'], body + b' ')\n\
         wrong = verify_smdpp_signature('whsec_wrong', os.environ['SIG'], body)\n\
         stale = verify_smdpp_signature(os.environ['SECRET'], os.environ['SIG'], body, tolerance=-1)\n\
         print(ok, tampered, wrong, stale)\n",
        doc_snippet("python")
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .env("SECRET", secret.as_str())
        .env("SIG", &header)
        .env("BODY_FILE", &body_file)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "True False False False"
    );

    // Shell + openssl, when openssl is installed.
    let shell = doc_snippet("shell");
    let run = |sig: &str| {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(&shell)
            .current_dir(dir)
            .env("SECRET", secret.as_str())
            .env("SIG", sig)
            .output()
            .unwrap()
    };
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let out = run(&header);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "valid",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let forged = format!(
            "{},v1={}",
            header.split(',').next().unwrap(),
            "0".repeat(64)
        );
        assert_eq!(
            String::from_utf8_lossy(&run(&forged).stdout).trim(),
            "invalid"
        );
    } else {
        eprintln!("SKIPPED the openssl example: openssl not installed");
    }
}

both_backends!(
    test_command_delivers_a_valid_signed_request,
    rejects_receiver_500_then_200,
    rejects_refused_and_removed_webhooks;
    sqlite_only: rejects_bad_cli_arguments, doc_examples_verify_a_real_delivery
);
