//! The listener: accepts TCP connections, does TLS, serves HTTP/1.1 and HTTP/2 with hyper, and
//! shuts down gracefully.
//!
//! lpac opens a new TCP and TLS connection for every ES9+ call, so handshakes are frequent and
//! connections short; the limits below bound what a slow or hostile client can hold:
//!
//! - the TLS handshake must finish within [`ServeOptions::tls_handshake_timeout`];
//! - a connection with no request in progress (before its first request, including the
//!   HTTP/1-or-HTTP/2 sniff of the first bytes, and between requests) is closed after
//!   [`ServeOptions::idle_timeout`]; a request is in progress from the moment its headers are
//!   parsed until its response body has been handed to the connection;
//! - HTTP/1.1 request headers must arrive within [`ServeOptions::header_read_timeout`];
//! - HTTP/2 peers are pinged ([`ServeOptions::h2_keep_alive_interval`]) and dropped when they do
//!   not answer within [`ServeOptions::h2_keep_alive_timeout`];
//! - every connection is asked to close gracefully (HTTP/2 GOAWAY, HTTP/1.1 `Connection: close`
//!   after the current response) once it is [`ServeOptions::max_connection_age`] old, and is
//!   dropped [`ServeOptions::shutdown_grace`] later if it has not closed by then.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use openssl::ssl::SslAcceptor;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::es2::ClientCertificate;

/// How connections are secured.
#[derive(Clone)]
pub enum ListenMode {
    /// HTTPS with rustls and this configuration (see [`crate::tls::server_config`]). The
    /// normal mode: SGP.22 section 6.1 requires TLS on ES9+.
    Tls(Arc<ServerConfig>),
    /// HTTPS with OpenSSL (see [`crate::tls_openssl`]): adds the CBC-SHA256 suite and
    /// brainpoolP256r1 of SGP.22 2.6.6.
    OpenSsl(Arc<SslAcceptor>),
    /// Plain HTTP, without TLS. Only for tests and for running behind a TLS-terminating proxy;
    /// must be asked for explicitly.
    PlainHttp,
}

impl std::fmt::Debug for ListenMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ListenMode::Tls(_) => "ListenMode::Tls",
            ListenMode::OpenSsl(_) => "ListenMode::OpenSsl",
            ListenMode::PlainHttp => "ListenMode::PlainHttp",
        })
    }
}

/// A TLS configuration of either backend.
#[derive(Clone)]
pub enum TlsConfig {
    /// rustls (the default backend).
    Rustls(Arc<ServerConfig>),
    /// OpenSSL (`--tls-backend openssl`).
    OpenSsl(Arc<SslAcceptor>),
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsConfig::Rustls(_) => "TlsConfig::Rustls",
            TlsConfig::OpenSsl(_) => "TlsConfig::OpenSsl",
        })
    }
}

impl From<TlsConfig> for ListenMode {
    fn from(t: TlsConfig) -> ListenMode {
        match t {
            TlsConfig::Rustls(c) => ListenMode::Tls(c),
            TlsConfig::OpenSsl(a) => ListenMode::OpenSsl(a),
        }
    }
}

/// The handshake side of a listener.
#[derive(Clone)]
enum Acceptor {
    Rustls(TlsAcceptor),
    OpenSsl(Arc<SslAcceptor>),
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
    /// A connection with no request in progress for this long is closed: one that sends
    /// nothing after the TLS handshake, or a kept-alive one between requests (default 30 s).
    pub idle_timeout: Duration,
    /// Age after which a connection is asked to close gracefully; it is dropped
    /// [`Self::shutdown_grace`] later if still open (default 10 minutes).
    pub max_connection_age: Duration,
    /// Interval of HTTP/2 keep-alive pings (default 20 s; `None` disables them).
    pub h2_keep_alive_interval: Option<Duration>,
    /// An HTTP/2 connection whose keep-alive ping is not acknowledged within this time is
    /// closed (default 20 s).
    pub h2_keep_alive_timeout: Duration,
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
            idle_timeout: Duration::from_secs(30),
            max_connection_age: Duration::from_secs(600),
            h2_keep_alive_interval: Some(Duration::from_secs(20)),
            h2_keep_alive_timeout: Duration::from_secs(20),
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
/// [`ServeOptions::shutdown_grace`], drops the connections still open, and returns.
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
        ListenMode::Tls(config) => Some(Acceptor::Rustls(TlsAcceptor::from(Arc::clone(config)))),
        ListenMode::OpenSsl(a) => Some(Acceptor::OpenSsl(Arc::clone(a))),
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
        .max_concurrent_streams(options.h2_max_concurrent_streams)
        .keep_alive_interval(options.h2_keep_alive_interval)
        .keep_alive_timeout(options.h2_keep_alive_timeout);
    let builder = Arc::new(builder);
    // Semaphore permits are counted in u32 by `acquire_many`; no deployment needs more.
    let max_connections = u32::try_from(options.max_connections.max(1)).unwrap_or(u32::MAX);
    let connections = Arc::new(Semaphore::new(max_connections as usize));
    let (signal, signal_rx) = watch::channel(Signal::Run);
    let limits = ConnLimits {
        handshake_timeout: options.tls_handshake_timeout,
        idle_timeout: options.idle_timeout,
        max_age: options.max_connection_age,
        age_grace: options.shutdown_grace,
    };
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
            signal: signal_rx.clone(),
            limits: limits.clone(),
        };
        tokio::spawn(async move {
            conn.run().await;
            drop(permit);
        });
    }

    drop(listener);
    tracing::info!("ES9+ listener stopping; draining connections");
    signal.send_replace(Signal::Drain);
    // Every open connection holds a permit: all of them back means all connections closed.
    if tokio::time::timeout(
        options.shutdown_grace,
        connections.acquire_many(max_connections),
    )
    .await
    .is_err()
    {
        tracing::warn!("shutdown grace period elapsed with connections still open; dropping them");
        signal.send_replace(Signal::Abort);
    }
    Ok(())
}

/// What the listener tells its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    /// Serve normally.
    Run,
    /// Finish the current requests, then close (graceful shutdown).
    Drain,
    /// Close now (the shutdown grace period is over).
    Abort,
}

/// The per-connection part of [`ServeOptions`].
#[derive(Clone, Debug)]
struct ConnLimits {
    handshake_timeout: Duration,
    idle_timeout: Duration,
    max_age: Duration,
    age_grace: Duration,
}

/// Requests in progress on one connection, and since when it has had none.
#[derive(Debug)]
struct Activity {
    state: Mutex<ActivityState>,
}

#[derive(Debug)]
struct ActivityState {
    in_progress: usize,
    idle_since: Instant,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(ActivityState {
                in_progress: 0,
                idle_since: Instant::now(),
            }),
        })
    }

    /// Marks a request in progress until the returned guard is dropped.
    fn begin(self: &Arc<Self>) -> InProgress {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .in_progress += 1;
        InProgress(Arc::clone(self))
    }

    /// Since when the connection has had no request in progress; `None` while one is.
    fn idle_since(&self) -> Option<Instant> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (state.in_progress == 0).then_some(state.idle_since)
    }
}

/// A request in progress (see [`Activity::begin`]).
#[derive(Debug)]
struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.in_progress = state.in_progress.saturating_sub(1);
        if state.in_progress == 0 {
            state.idle_since = Instant::now();
        }
    }
}

/// The router as a hyper service that records its requests in an [`Activity`]: a request is in
/// progress from the service call until its response body is dropped (sent or abandoned).
#[derive(Clone)]
struct TrackedService {
    inner: TowerToHyperService<Router>,
    activity: Arc<Activity>,
    client: crate::abuse::ClientAddr,
}

impl Service<Request<Incoming>> for TrackedService {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Self::Error>> + Send>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        let guard = self.activity.begin();
        // The peer address, for the per-client limits (crate::abuse); never from the request.
        request.extensions_mut().insert(self.client);
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    // Moved into the body: the request stays in progress until it is dropped.
                    let _in_progress: &InProgress = &guard;
                    frame
                }))
            }))
        })
    }
}

struct ConnectionTask {
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: Option<Acceptor>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    signal: watch::Receiver<Signal>,
    limits: ConnLimits,
}

impl ConnectionTask {
    async fn run(self) {
        let Self {
            stream,
            peer,
            acceptor,
            builder,
            router,
            signal,
            limits,
        } = self;
        let opened = Instant::now();
        // Small request/response exchanges: do not wait for Nagle.
        let _ = stream.set_nodelay(true);
        match acceptor {
            None => serve_io(stream, router, &builder, signal, &limits, opened, peer).await,
            Some(Acceptor::Rustls(acceptor)) => {
                let tls = match handshake(&limits, peer, acceptor.accept(stream)).await {
                    Some(tls) => tls,
                    None => return,
                };
                // The client certificate (ES2+ mutual TLS, SGP.22 section 6.1) goes to the
                // handlers as a request extension; it cannot come from the wire.
                let client_cert = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|c| ClientCertificate(Arc::from(c.as_ref())));
                let router = with_client_cert(router, client_cert);
                serve_io(tls, router, &builder, signal, &limits, opened, peer).await;
            }
            Some(Acceptor::OpenSsl(acceptor)) => {
                let accept = async {
                    let ssl = openssl::ssl::Ssl::new(acceptor.context())
                        .map_err(|e| io::Error::other(e.to_string()))?;
                    let mut tls = tokio_openssl::SslStream::new(ssl, stream)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                    Pin::new(&mut tls)
                        .accept()
                        .await
                        .map_err(|e| io::Error::other(e.to_string()))?;
                    Ok::<_, io::Error>(tls)
                };
                let Some(tls) = handshake(&limits, peer, accept).await else {
                    return;
                };
                let client_cert = tls
                    .ssl()
                    .peer_certificate()
                    .and_then(|c| c.to_der().ok())
                    .map(|der| ClientCertificate(Arc::from(der.as_slice())));
                let router = with_client_cert(router, client_cert);
                serve_io(tls, router, &builder, signal, &limits, opened, peer).await;
            }
        }
    }
}

/// Runs a TLS handshake within the handshake timeout, counting its outcome.
async fn handshake<T>(
    limits: &ConnLimits,
    peer: SocketAddr,
    accept: impl Future<Output = io::Result<T>>,
) -> Option<T> {
    match tokio::time::timeout(limits.handshake_timeout, accept).await {
        Ok(Ok(tls)) => {
            crate::metrics::global().tls_handshake("success");
            Some(tls)
        }
        Ok(Err(e)) => {
            crate::metrics::global().tls_handshake("failure");
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            crate::metrics::global().tls_handshake("timeout");
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// The client certificate as a request extension of every request of the connection.
fn with_client_cert(router: Router, cert: Option<ClientCertificate>) -> Router {
    match cert {
        Some(c) => router.layer(axum::Extension(c)),
        None => router,
    }
}

/// Serves HTTP on one connection until it ends, is idle for too long, reaches its maximum age
/// (graceful close, then drop after the grace period) or the listener says so.
async fn serve_io<I>(
    io: I,
    router: Router,
    builder: &auto::Builder<TokioExecutor>,
    mut signal: watch::Receiver<Signal>,
    limits: &ConnLimits,
    opened: Instant,
    peer: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let service = TrackedService {
        inner: TowerToHyperService::new(router),
        activity: Arc::clone(&activity),
        client: crate::abuse::ClientAddr(peer.ip()),
    };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let idle = tokio::time::sleep(limits.idle_timeout);
    tokio::pin!(idle);
    let age = tokio::time::sleep_until(opened + limits.max_age);
    tokio::pin!(age);
    let mut draining = false;
    let mut signal_open = true;
    // A shutdown signalled before this connection was accepted is not a "change".
    let mut pending = *signal.borrow_and_update();
    loop {
        match pending {
            Signal::Run => {}
            Signal::Drain if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
            Signal::Drain => {}
            Signal::Abort => {
                tracing::debug!(%peer, "connection dropped at the end of the shutdown grace");
                return;
            }
        }
        pending = Signal::Run;
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            changed = signal.changed(), if signal_open => match changed {
                Ok(()) => pending = *signal.borrow_and_update(),
                Err(_) => signal_open = false,
            },
            () = &mut age => {
                if draining {
                    tracing::debug!(%peer, "connection did not close after its maximum age; dropped");
                    return;
                }
                tracing::debug!(%peer, "connection reached its maximum age; closing gracefully");
                conn.as_mut().graceful_shutdown();
                draining = true;
                age.as_mut().reset(Instant::now() + limits.age_grace);
            }
            () = &mut idle => match activity.idle_since() {
                Some(since) if since.elapsed() >= limits.idle_timeout => {
                    tracing::debug!(%peer, "idle connection closed");
                    return;
                }
                Some(since) => idle.as_mut().reset(since + limits.idle_timeout),
                None => idle.as_mut().reset(Instant::now() + limits.idle_timeout),
            },
        }
    }
}
