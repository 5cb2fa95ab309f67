//! The command-line code of the `smdpp` command: the clap arguments of its subcommands and
//! their handlers, over the engine crates (`smdpp-service`, `smdpp-store`, ...). The
//! binary (`src/main.rs`) mounts these; integration tests drive them in process.
//!
//! - [`cli`]: `smdpp serve` (flags and environment over the configuration file, resolved
//!   by [`smdpp_service::assembly`]) and `smdpp profiles ...`.
//! - [`factory_cli`]: `smdpp profiles import`, `smdpp types ...`, `smdpp keys ...`.
//! - [`es2_cli`]: `smdpp operators ...` and `smdpp orders ...`, which go through the same
//!   ES2+ engine functions as ES2+ itself.
//! - [`operator_cli`]: generating types (`smdpp types generator`, `smdpp profiles
//!   generate`) and core networks (`smdpp types core-network`, `smdpp core-networks ...`).
//! - [`hsm_cli`]: the PKCS#11 token flags and `smdpp keys hsm ...`; [`hsm_bench_cli`]:
//!   `smdpp bench hsm`.
//! - [`audit_cli`]: `smdpp audit list|verify`, and [`audit_cli::record`], with which the
//!   state-changing commands append their audit record.
//! - [`export_cli`]: `smdpp subscribers export|decrypt`.
//! - [`webhooks_cli`]: `smdpp webhooks add|list|remove|test`.
//! - [`outbox_cli`]: `smdpp outbox list`.
//! - [`console_cli`]: `smdpp console users add|list|remove`.
//!
//! CLI errors are reported with `anyhow` (this is the outermost layer).

pub mod audit_cli;
pub mod cli;
pub mod console_cli;
pub mod es2_cli;
pub mod export_cli;
pub mod factory_cli;
pub mod hsm_bench_cli;
pub mod hsm_cli;
pub mod operator_cli;
pub mod outbox_cli;
pub mod webhooks_cli;
