//! `smdpp bench load` as a stand-alone program, for measuring before the `smdpp` binary
//! mounts it: `cargo run --release -p smdpp-bench --example bench_load -- --url ... `.

use std::process::ExitCode;

use clap::Parser;

/// Load a running SM-DP+ with N virtual devices and M downloads.
#[derive(Parser, Debug)]
#[command(name = "bench_load")]
struct Cli {
    #[command(flatten)]
    args: smdpp_bench::BenchArgs,
}

fn main() -> ExitCode {
    match smdpp_bench::run(Cli::parse().args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
