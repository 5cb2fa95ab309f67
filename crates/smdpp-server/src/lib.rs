#![recursion_limit = "256"]
//! The SM-DP+ HTTP layer: the ES9+ JSON binding of SGP.22 v2.2 section 6 over HTTPS.
//!
//! This crate holds no protocol logic. It
//! - defines [`Es9Service`], the interface the SM-DP+ core implements (one async method per
//!   ES9+ function, typed requests and responses from [`smdpp_core::es9_json`]);
//! - builds the axum [`Router`](axum::Router) that checks the transport (headers, body size,
//!   JSON shape), calls the service and writes SGP.22 responses ([`http`]; the status codes for
//!   malformed input are documented there);
//! - builds the rustls server configuration required by SGP.22 section 2.6.6 ([`tls`], with
//!   what rustls cannot do);
//! - serves ES2+ (operator → SM-DP+) over mutual TLS on the same listener ([`es2`], with the
//!   [`Es2Service`] trait) and its OpenAPI document ([`openapi`]);
//! - runs the listener with connection limits and graceful shutdown ([`listen`]).
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn demo<S: smdpp_server::Es9Service>(service: S) -> Result<(), Box<dyn std::error::Error>> {
//! let tls = smdpp_server::tls::server_config_from_pem_files("dptls-chain.pem", "dptls-key.pem")?;
//! let router = smdpp_server::router(Arc::new(service), smdpp_server::Es9HttpConfig::default());
//! let listener = smdpp_server::bind("0.0.0.0:443".parse()?).await?;
//! smdpp_server::serve(listener, smdpp_server::ListenMode::Tls(tls), router, async {
//!     // e.g. wait for SIGTERM here
//!     std::future::pending::<()>().await;
//! })
//! .await?;
//! # Ok(()) }
//! ```

pub mod abuse;
pub mod admin;
pub mod es2;
pub mod http;
pub mod listen;
pub mod metrics;
pub mod openapi;
pub mod service;
pub mod tls;
pub mod tls_openssl;

pub use admin::{AdminError, AdminService, OrderActivationCode, admin_router};
pub use es2::{ClientCertificate, Es2Caller, Es2Service, es2_router};
pub use http::{Es9HttpConfig, router};
pub use listen::{ListenMode, ServeOptions, TlsConfig, bind, serve, serve_with};
pub use service::Es9Service;
