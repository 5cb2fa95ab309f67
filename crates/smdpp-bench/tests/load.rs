//! `smdpp bench load` against a real SM-DP+ started in this process (TLS and plain HTTP),
//! and its refusals. No timing is asserted: speed is measured by the benchmark, not tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;

use smdpp_bench::{BenchArgs, run_async};
use smdpp_service::assembly::{DataLocation, ServeOptions};
use smdpp_service::assembly::{prepare, run};
use tokio::sync::oneshot;

/// A server on 127.0.0.1:<free port> whose SM-DP+ address is that address.
struct Server {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(data_dir: &Path, plain_http: bool) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let settings = ServeOptions {
            data: DataLocation {
                data_dir: Some(data_dir.to_owned()),
                ..DataLocation::default()
            },
            listen: Some(addr),
            plain_http,
            ..ServeOptions::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(settings.smdp_address, addr.to_string());
        let prepared = prepare(settings).await.unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            run(&prepared, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
            prepared.store.close().await;
        });
        let scheme = if plain_http { "http" } else { "https" };
        Server {
            url: format!("{scheme}://{addr}"),
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap();
    }
}

fn args(url: &str, data_dir: &Path) -> BenchArgs {
    let mut a = BenchArgs::new(url);
    a.devices = 4;
    a.downloads = 12;
    a.floor_iterations = 3;
    a.data_dir = Some(data_dir.to_owned());
    a
}

fn check_report(r: &smdpp_bench::BenchReport, downloads: u64) {
    assert_eq!(r.completed, downloads, "errors: {:?}", r.errors);
    assert_eq!(r.failed, 0);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.curve, "P-256");
    assert!(r.wall_s > 0.0 && r.downloads_per_s > 0.0);
    let names: Vec<&str> = r.latency.iter().map(|l| l.call.as_str()).collect();
    assert_eq!(
        names,
        [
            "InitiateAuthentication",
            "AuthenticateClient",
            "GetBoundProfilePackage",
            "HandleNotification",
            "download"
        ]
    );
    for l in &r.latency {
        assert_eq!(l.count as u64, downloads, "{}", l.call);
        assert!(
            l.p50_ms > 0.0 && l.p50_ms <= l.p99_ms && l.p99_ms <= l.max_ms,
            "{l:?}"
        );
    }
    // The server runs inside this test process: its CPU cannot be told apart.
    assert!(r.server_cpu.is_none());
    assert!(
        r.server_cpu_note.as_deref().unwrap().contains("inside"),
        "{:?}",
        r.server_cpu_note
    );
    assert!(r.server_cpu_over_floor.is_none());
    let floor = r.floor.as_ref().unwrap();
    assert_eq!(floor.iterations, 3);
    assert!(floor.per_download_ms > 0.0);
    assert!(r.client_cpu.is_some());
    // The report prints and serializes.
    let text = r.to_string();
    assert!(text.contains("downloads/s") && text.contains("GetBoundProfilePackage"));
    let json = serde_json::to_value(r).unwrap();
    assert_eq!(json["completed"], downloads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_devices_twelve_downloads_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, false).await;
    let report = run_async(args(&server.url, &data)).await.unwrap();
    check_report(&report, 12);
    assert_eq!(report.devices, 4);
    assert!((20 * 1024 - 8..=20 * 1024 + 8).contains(&report.profile_bytes));

    // A second run against the same database gets fresh ICCIDs and MatchingIDs.
    let mut a = args(&server.url, &data);
    a.devices = 2;
    a.downloads = 3;
    a.profile_bytes = 0;
    let again = run_async(a).await.unwrap();
    check_report(&again, 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_caching_the_dp_chains_validate_each_certificate_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, true).await;
    // Default: no cache, every card check each time.
    let report = run_async(args(&server.url, &data)).await.unwrap();
    check_report(&report, 12);
    assert!(!report.cache_server_certs && report.cert_cache.is_none());
    assert!(
        report
            .to_string()
            .contains("every card check on every download")
    );
    // With the flag: DPauth and DPpb validated in full once for the whole run (4 devices
    // share the cache), every other download's chains are hits.
    let mut a = args(&server.url, &data);
    a.cache_server_certs = true;
    let report = run_async(a).await.unwrap();
    check_report(&report, 12);
    assert!(report.cache_server_certs);
    let c = report.cert_cache.as_ref().unwrap();
    assert_eq!(c.entries, 2, "{c:?}");
    assert_eq!(c.hits + c.misses, 24, "{c:?}");
    assert!(c.misses >= 2 && c.misses <= 8, "{c:?}");
    let text = report.to_string();
    assert!(text.contains("cards: cache the DP chains"), "{text}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["cert_cache"]["entries"], 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_with_more_devices_than_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, true).await;
    let mut a = args(&server.url, &data);
    a.devices = 8;
    a.downloads = 5;
    let report = run_async(a).await.unwrap();
    check_report(&report, 5);
    assert_eq!(report.devices, 5);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_zero_devices_or_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = args("https://127.0.0.1:1", dir.path());
    a.devices = 0;
    let e = run_async(a).await.unwrap_err().to_string();
    assert!(e.contains("--devices must be at least 1"), "{e}");
    let mut a = args("https://127.0.0.1:1", dir.path());
    a.downloads = 0;
    let e = run_async(a).await.unwrap_err().to_string();
    assert!(e.contains("--downloads must be at least 1"), "{e}");
    // Also through the blocking entry point.
    let mut a = args("https://127.0.0.1:1", dir.path());
    a.devices = 0;
    let e = tokio::task::spawn_blocking(move || smdpp_bench::run(a))
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(e.contains("--devices"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_an_unreachable_url_before_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bind, note it, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let data = dir.path().join("data");
    let e = run_async(args(&format!("https://127.0.0.1:{port}"), &data))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot reach the SM-DP+"), "{e}");
    assert!(e.contains("smdpp serve"), "{e}");
    assert!(
        !data.exists(),
        "nothing may be created for an unreachable server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_bad_urls_and_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "127.0.0.1:8443",
        "https://127.0.0.1:8443/gsma/rsp2",
        "https://",
    ] {
        let e = run_async(args(url, dir.path()))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("--url"), "{url}: {e}");
    }
    // Something listens, but the data dir is not the server's: no empty database is created.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let data = dir.path().join("not-the-server");
    std::fs::create_dir_all(&data).unwrap();
    rsp_pki_dir(&data.join("pki"));
    let e = run_async(args(&format!("http://{addr}"), &data))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no server database"), "{e}");
    assert!(!data.join("smdpp.db").exists());
}

/// A PKI directory in the server's layout (so only the database is missing).
fn rsp_pki_dir(dir: &Path) {
    let mut opts = rsp_pki::PkiOptions::new(rsp_crypto::Curve::NistP256);
    opts.smdp_address = "127.0.0.1".into();
    std::fs::create_dir_all(dir).unwrap();
    rsp_pki::generate(opts).unwrap().write_to(dir).unwrap();
}
