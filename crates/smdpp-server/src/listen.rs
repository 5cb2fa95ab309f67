//! The listener: accepts TCP connections, does TLS, serves HTTP/1.1 and HTTP/2 with hyper, and
//! shuts down gracefully.
//!
//! lpac opens a new TCP and TLS connection for every ES9+ call, so handshakes are frequent and
//! connections short; the limits below bound what a slow or hostile client can hold.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::es2::ClientCertificate;

/// How connections are secured.
#[derive(Clone, Debug)]
pub enum ListenMode {
    /// HTTPS with this configuration (see [`crate::tls::server_config`]). The normal mode:
    /// SGP.22 section 6.1 requires TLS on ES9+.
    Tls(Arc<ServerConfig>),
    /// Plain HTTP, without TLS. Only for tests and for running behind a TLS-terminating proxy;
    /// must be asked for explicitly.
    PlainHttp,
}

/// Connection-level limits of [`serve_with`]. [`Default`] gives production-sane values.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Connections open at the same time; further connections wait in the accept backlog
    /// (default 1024).
    pub max_connections: usize,
    /// Time allowed for the TLS handshake (default 10 s).
    pub tls_handshake_timeout: Duration,
    /// Time allowed to receive the request headers on HTTP/1.1 (default 10 s).
    pub header_read_timeout: Duration,
    /// Concurrent streams per HTTP/2 connection (default 32).
    pub h2_max_concurrent_streams: u32,
    /// After shutdown is signalled, how long open connections may finish their requests
    /// (default 10 s); then they are dropped.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            h2_max_concurrent_streams: 32,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Binds a TCP listener, e.g. `127.0.0.1:0` in tests; read the chosen port with
/// [`TcpListener::local_addr`].
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// [`serve_with`] with [`ServeOptions::default`].
pub async fn serve(
    listener: TcpListener,
    mode: ListenMode,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    serve_with(listener, mode, router, shutdown, ServeOptions::default()).await
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets open
/// connections finish (HTTP/2 GOAWAY, HTTP/1.1 close after the current response) for at most
/// [`ServeOptions::shutdown_grace`], and returns.
///
/// Errors on single connections (handshake failures, resets) are logged at debug level and do
/// not stop the server; an error from `accept` itself is logged and retried after a short pause
/// (e.g. when out of file descriptors).
pub async fn serve_with(
    listener: TcpListener,
    mode: ListenMode,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
    options: ServeOptions,
) -> io::Result<()> {
    let acceptor = match &mode {
        ListenMode::Tls(config) => Some(TlsAcceptor::from(Arc::clone(config))),
        ListenMode::PlainHttp => None,
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(options.h2_max_concurrent_streams);
    let builder = Arc::new(builder);
    let connections = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tracing::info!(
        addr = ?listener.local_addr().ok(),
        tls = acceptor.is_some(),
        "ES9+ listener started"
    );

    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(p) => p,
                // The semaphore is never closed; treat it like shutdown anyway.
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let conn = ConnectionTask {
            stream,
            peer,
            acceptor: acceptor.clone(),
            builder: Arc::clone(&builder),
            router: router.clone(),
            watcher: graceful.watcher(),
            handshake_timeout: options.tls_handshake_timeout,
        };
        tokio::spawn(async move {
            conn.run().await;
            drop(permit);
        });
    }

    drop(listener);
    tracing::info!("ES9+ listener stopping; draining connections");
    if tokio::time::timeout(options.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period elapsed with connections still open");
    }
    Ok(())
}

struct ConnectionTask {
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    watcher: Watcher,
    handshake_timeout: Duration,
}

impl ConnectionTask {
    async fn run(self) {
        let Self {
            stream,
            peer,
            acceptor,
            builder,
            router,
            watcher,
            handshake_timeout,
        } = self;
        // Small request/response exchanges: do not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let result = match acceptor {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                watcher.watch(conn.into_owned()).await
            }
            Some(acceptor) => {
                let tls =
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                // The client certificate (ES2+ mutual TLS, SGP.22 section 6.1) goes to the
                // handlers as a request extension; it cannot come from the wire.
                let client_cert = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|c| ClientCertificate(Arc::from(c.as_ref())));
                let service = match client_cert {
                    Some(c) => TowerToHyperService::new(router.layer(axum::Extension(c))),
                    None => service,
                };
                let conn = builder.serve_connection(TokioIo::new(tls), service);
                watcher.watch(conn.into_owned()).await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}
