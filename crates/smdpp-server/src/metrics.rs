//! Prometheus metrics and the health endpoints of the admin listener.
//!
//! [`global`] is the process's one registry. The HTTP layer records every request
//! ([`Metrics::request`], called by the logging middleware of the ES9+, ES2+ and admin
//! routers) and every TLS handshake; the engine records download results
//! ([`Metrics::download`]). Gauges that describe the database (profiles by state and type,
//! outbox depth, pool use) are refreshed at scrape time by an [`OpsProbe`], so they are true
//! for all nodes sharing the database, while counters are per process.
//!
//! [`ops_router`] serves, on the admin listener only (never on the ES9+/ES2+ one):
//! - `GET /metrics`: the Prometheus text format (version 0.0.4);
//! - `GET /healthz`: `ok` while the process runs;
//! - `GET /readyz`: `ready` (200) when [`OpsProbe::ready`] succeeds (database reachable, keys
//!   loaded), otherwise 503 with the reason.
//!
//! Names follow the Prometheus conventions: `smdpp_` prefix, `_total` counters, `_seconds`
//! units; the process metrics keep their standard `process_` names. Label values come from a
//! fixed set (function names of the routes, result words, SGP.22 code strings), never from
//! free text of a request, so an attacker cannot grow the series without bound: an unknown
//! path is counted as `function="other"`.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode as HttpStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use smdpp_core::status::StatusCode;

/// Latency buckets, seconds: from 1 ms (a cached call) to 10 s (the request time-out region).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The server's metrics (see the module docs for what each one means).
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    failures: IntCounterVec,
    downloads: IntCounterVec,
    tls: IntCounterVec,
    /// `smdpp_profiles{state, profile_type}`.
    pub profiles: IntGaugeVec,
    /// `smdpp_outbox_rows{state}` (pending, failed).
    pub outbox_rows: IntGaugeVec,
    /// `smdpp_outbox_oldest_pending_age_seconds`.
    pub outbox_oldest_age: GaugeVec,
    /// `smdpp_db_pool_connections{state}` (idle, in_use).
    pub pool: IntGaugeVec,
    /// `smdpp_db_pool_max_connections`.
    pub pool_max: IntGauge,
    process: ProcessGauges,
}

struct ProcessGauges {
    cpu: GaugeVec,
    rss: IntGauge,
    fds: IntGauge,
    threads: IntGauge,
    start: GaugeVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable_metric(name, &e));
    register(registry, Box::new(c.clone()), name);
    c
}

fn int_gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable_metric(name, &e));
    register(registry, Box::new(g.clone()), name);
    g
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable_metric(name, &e));
    register(registry, Box::new(g.clone()), name);
    g
}

fn int_gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| unreachable_metric(name, &e));
    register(registry, Box::new(g.clone()), name);
    g
}

fn register(registry: &Registry, c: Box<dyn prometheus::core::Collector>, name: &str) {
    if let Err(e) = registry.register(c) {
        unreachable_metric(name, &e)
    }
}

/// The metric definitions are constants of this module; an invalid one is a programming
/// error found by the unit test below on the first run.
#[allow(clippy::panic)]
fn unreachable_metric(name: &str, e: &prometheus::Error) -> ! {
    panic!("metric {name} is invalid: {e}")
}

impl Metrics {
    fn new() -> Metrics {
        let r = Registry::new();
        let requests = counter(
            &r,
            "smdpp_requests_total",
            "HTTP requests by interface (es9, es2, admin), function and HTTP status",
            &["interface", "function", "status"],
        );
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "smdpp_request_duration_seconds",
                "Time from request to response, by interface and function",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["interface", "function"],
        )
        .unwrap_or_else(|e| unreachable_metric("smdpp_request_duration_seconds", &e));
        register(
            &r,
            Box::new(latency.clone()),
            "smdpp_request_duration_seconds",
        );
        let failures = counter(
            &r,
            "smdpp_function_failures_total",
            "ES9+/ES2+ functions that ended with a failed status, by SGP.22 subjectCode and reasonCode",
            &["interface", "function", "subject_code", "reason_code"],
        );
        let downloads = counter(
            &r,
            "smdpp_downloads_total",
            "Profile downloads ended by a ProfileInstallationResult, by result (success, failure)",
            &["result"],
        );
        let tls = counter(
            &r,
            "smdpp_tls_handshakes_total",
            "TLS handshakes on the ES9+/ES2+ listener by result (success, failure, timeout)",
            &["result"],
        );
        let profiles = int_gauge_vec(
            &r,
            "smdpp_profiles",
            "Profiles in the database by state and profile type",
            &["state", "profile_type"],
        );
        let outbox_rows = int_gauge_vec(
            &r,
            "smdpp_outbox_rows",
            "Outbound calls (callbacks, core network, webhooks) by state (pending, failed)",
            &["state"],
        );
        let outbox_oldest_age = gauge_vec(
            &r,
            "smdpp_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbound call (0 when none is pending)",
            &[],
        );
        let pool = int_gauge_vec(
            &r,
            "smdpp_db_pool_connections",
            "Database pool connections of this process by state (idle, in_use)",
            &["state"],
        );
        let pool_max = int_gauge(
            &r,
            "smdpp_db_pool_max_connections",
            "Configured maximum of the database pool",
        );
        let build = int_gauge_vec(
            &r,
            "smdpp_build_info",
            "Always 1; the version of this server",
            &["version"],
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let process = ProcessGauges {
            cpu: gauge_vec(
                &r,
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds",
                &[],
            ),
            rss: int_gauge(
                &r,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
            ),
            fds: int_gauge(&r, "process_open_fds", "Number of open file descriptors"),
            threads: int_gauge(&r, "process_threads", "Number of OS threads"),
            start: gauge_vec(
                &r,
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                &[],
            ),
        };
        Metrics {
            registry: r,
            requests,
            latency,
            failures,
            downloads,
            tls,
            profiles,
            outbox_rows,
            outbox_oldest_age,
            pool,
            pool_max,
            process,
        }
    }

    /// Records one HTTP request: its path (mapped to interface and function), status,
    /// duration and, for a failed ES9+/ES2+ function, its SGP.22 code.
    pub fn request(&self, path: &str, status: u16, seconds: f64, failure: Option<&StatusCode>) {
        let (interface, function) = classify(path);
        let status = status.to_string();
        self.requests
            .with_label_values(&[interface, function, status.as_str()])
            .inc();
        self.latency
            .with_label_values(&[interface, function])
            .observe(seconds);
        if let Some(code) = failure {
            self.failures
                .with_label_values(&[interface, function, code.subject(), code.reason()])
                .inc();
        }
    }

    /// Records the end of a download by a ProfileInstallationResult (`success` or `failure`).
    pub fn download(&self, result: &'static str) {
        self.downloads.with_label_values(&[result]).inc();
    }

    /// Records a TLS handshake result.
    pub fn tls_handshake(&self, result: &'static str) {
        self.tls.with_label_values(&[result]).inc();
    }

    /// This process's failures by code since start, as `(interface, function, subject,
    /// reason, count)`, largest first (for the console's dashboard).
    pub fn failures_by_code(&self) -> Vec<(String, String, String, String, u64)> {
        let mut out = Vec::new();
        for family in prometheus::core::Collector::collect(&self.failures) {
            for m in family.get_metric() {
                let label = |name: &str| {
                    m.get_label()
                        .iter()
                        .find(|l| l.name() == name)
                        .map(|l| l.value().to_owned())
                        .unwrap_or_default()
                };
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let n = m.get_counter().get_value() as u64;
                out.push((
                    label("interface"),
                    label("function"),
                    label("subject_code"),
                    label("reason_code"),
                    n,
                ));
            }
        }
        out.sort_by_key(|b| std::cmp::Reverse(b.4));
        out
    }

    fn refresh_process(&self) {
        let p = process_stats();
        self.process
            .cpu
            .with_label_values(&[] as &[&str])
            .set(p.cpu_seconds);
        self.process.rss.set(p.rss_bytes);
        self.process.fds.set(p.open_fds);
        self.process.threads.set(p.threads);
        self.process
            .start
            .with_label_values(&[] as &[&str])
            .set(p.start_time);
    }

    /// The registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        self.refresh_process();
        let mut buf = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// The process's metrics registry.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// `(interface, function)` of a request path; only known routes give their own labels.
fn classify(path: &str) -> (&'static str, &'static str) {
    const ES9: &[&str] = &[
        "initiateAuthentication",
        "authenticateClient",
        "getBoundProfilePackage",
        "handleNotification",
        "cancelSession",
    ];
    const ES2: &[&str] = &[
        "downloadOrder",
        "confirmOrder",
        "cancelOrder",
        "releaseProfile",
        "handleDownloadProgressInfo",
    ];
    let pick = |list: &[&'static str], name: &str| {
        list.iter().copied().find(|f| *f == name).unwrap_or("other")
    };
    if let Some(f) = path.strip_prefix("/gsma/rsp2/es9plus/") {
        ("es9", pick(ES9, f))
    } else if let Some(f) = path.strip_prefix("/gsma/rsp2/es2plus/") {
        ("es2", pick(ES2, f))
    } else if path.starts_with(crate::admin::ADMIN_PREFIX) {
        ("admin", "orders")
    } else if path == "/healthz" {
        ("other", "healthz")
    } else if path == "/openapi.json" {
        ("other", "openapi")
    } else {
        ("other", "other")
    }
}

struct ProcessStats {
    cpu_seconds: f64,
    rss_bytes: i64,
    open_fds: i64,
    threads: i64,
    start_time: f64,
}

/// Reads `/proc/self` (Linux; zeros elsewhere). Clock ticks are `USER_HZ`, which Linux fixes
/// at 100 for everything it exports in `/proc`.
fn process_stats() -> ProcessStats {
    const TICKS: f64 = 100.0;
    let mut p = ProcessStats {
        cpu_seconds: 0.0,
        rss_bytes: 0,
        open_fds: 0,
        threads: 0,
        start_time: 0.0,
    };
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some((_, rest)) = stat.rsplit_once(')')
    {
        // Fields after the command name, numbered from 3 (state) as in proc(5).
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| {
            f.get(i - 3)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        p.cpu_seconds = (num(14) + num(15)) / TICKS;
        #[allow(clippy::cast_possible_truncation)]
        {
            p.threads = num(20) as i64;
        }
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        });
        if let Some(boot) = boot {
            p.start_time = boot + num(22) / TICKS;
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        p.rss_bytes = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            .map_or(0, |kb| kb * 1024);
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        p.open_fds = i64::try_from(dir.count()).unwrap_or(i64::MAX);
    }
    p
}

/// What the admin listener asks the server at `/readyz` and at each scrape.
pub trait OpsProbe: Send + Sync + 'static {
    /// `Ok` when the server can serve: database reachable, keys loaded; otherwise why not.
    fn ready(&self) -> impl Future<Output = Result<(), String>> + Send;
    /// Sets the database gauges of `metrics` (profiles, outbox, pool) before a scrape.
    fn refresh(&self, metrics: &'static Metrics) -> impl Future<Output = ()> + Send;
}

/// `/metrics`, `/healthz` and `/readyz` (see the module docs).
pub fn ops_router<P: OpsProbe>(probe: Arc<P>) -> Router {
    Router::new()
        .route("/metrics", get(scrape::<P>))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz::<P>))
        .with_state(probe)
}

async fn scrape<P: OpsProbe>(State(probe): State<Arc<P>>) -> Response {
    let m = global();
    probe.refresh(m).await;
    (
        HttpStatus::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        m.encode(),
    )
        .into_response()
}

async fn readyz<P: OpsProbe>(State(probe): State<Arc<P>>) -> Response {
    match probe.ready().await {
        Ok(()) => (HttpStatus::OK, "ready").into_response(),
        Err(why) => (HttpStatus::SERVICE_UNAVAILABLE, format!("not ready: {why}")).into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_valid_and_named_by_convention() {
        let m = global();
        m.request(
            "/gsma/rsp2/es9plus/initiateAuthentication",
            200,
            0.002,
            None,
        );
        let code = StatusCode::parse("8.1.1", "3.8").unwrap();
        m.request("/gsma/rsp2/es2plus/downloadOrder", 200, 0.01, Some(&code));
        m.download("success");
        m.tls_handshake("success");
        let text = m.encode();
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split_whitespace().nth(2).unwrap();
            assert!(
                name.starts_with("smdpp_") || name.starts_with("process_"),
                "{name}"
            );
        }
        assert!(text.contains(
            r#"smdpp_requests_total{function="initiateAuthentication",interface="es9",status="200"}"#
        ));
        assert!(text.contains(
            r#"smdpp_function_failures_total{function="downloadOrder",interface="es2",reason_code="3.8",subject_code="8.1.1"} "#
        ));
        assert!(text.contains("process_resident_memory_bytes"));
    }

    #[test]
    fn rejects_unknown_paths_as_label_values() {
        assert_eq!(classify("/gsma/rsp2/es9plus/x%00y"), ("es9", "other"));
        assert_eq!(classify("/anything/else"), ("other", "other"));
        assert_eq!(
            classify("/gsma/rsp2/es2plus/confirmOrder"),
            ("es2", "confirmOrder")
        );
    }
}
