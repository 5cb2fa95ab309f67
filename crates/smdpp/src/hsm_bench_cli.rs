//! `smdpp bench hsm` from the command line: its clap arguments, turned into the
//! [`smdpp_service::hsm_bench::BenchOptions`] of the benchmark.

use anyhow::Result;
use clap::Args;

use smdpp_service::hsm_bench::{BenchCurves, BenchOptions};

/// `smdpp bench hsm ...`.
#[derive(Args, Debug, Clone)]
pub struct HsmBenchArgs {
    /// The token.
    #[command(flatten)]
    pub token: crate::hsm_cli::Pkcs11Args,
    /// Operations per measurement (split over the threads).
    #[arg(long, default_value_t = 2000)]
    pub iterations: u32,
    /// Which curve(s).
    #[arg(long, value_enum, default_value_t = BenchCurves::Both)]
    pub curve: BenchCurves,
    /// Concurrent threads, repeatable (default: 1, the number of cores, 4 x cores).
    #[arg(long = "threads")]
    pub threads: Vec<usize>,
    /// Session pool sizes to compare, repeatable (default: 1 and the server's default,
    /// the number of cores, at least 2).
    #[arg(long = "pool-size")]
    pub pool_sizes: Vec<usize>,
}

/// Runs the benchmark and returns the report ([`smdpp_service::hsm_bench::run`]).
pub fn run(args: &HsmBenchArgs) -> Result<String> {
    smdpp_service::hsm_bench::run(&BenchOptions {
        token: args.token.resolve(None, None, None)?,
        iterations: args.iterations,
        curve: args.curve,
        threads: args.threads.clone(),
        pool_sizes: args.pool_sizes.clone(),
    })
}
