//! The two ways the `smdpp` binary can mount [`BenchArgs`], checked with clap: as
//! `smdpp bench load --url ...` next to `smdpp bench crypto`, or in the issue's form
//! `smdpp bench --url ...` (flags directly on `bench`) while keeping `smdpp bench crypto`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use clap::{CommandFactory, Parser, Subcommand};
use smdpp_bench::BenchArgs;

mod as_subcommand {
    use super::*;

    #[derive(Parser, Debug)]
    #[command(name = "smdpp")]
    pub struct Cli {
        #[command(subcommand)]
        pub command: Command,
    }

    #[derive(Subcommand, Debug)]
    pub enum Command {
        /// Benchmarks.
        Bench {
            #[command(subcommand)]
            command: BenchCommand,
        },
    }

    // Parsed once per process: the size difference between variants does not matter.
    #[allow(clippy::large_enum_variant)]
    #[derive(Subcommand, Debug)]
    pub enum BenchCommand {
        /// The crypto floor.
        Crypto {
            #[arg(long, default_value_t = 2000)]
            iterations: u32,
        },
        /// Load a running SM-DP+ with N virtual devices and M downloads.
        Load(BenchArgs),
    }
}

mod issue_form {
    use super::*;

    #[derive(Parser, Debug)]
    #[command(name = "smdpp")]
    pub struct Cli {
        #[command(subcommand)]
        pub command: Command,
    }

    #[derive(Subcommand, Debug)]
    pub enum Command {
        /// Benchmarks: `smdpp bench --url URL ...` loads a server; `smdpp bench crypto` prints
        /// the crypto floor.
        #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
        Bench {
            #[command(subcommand)]
            command: Option<BenchCommand>,
            #[command(flatten)]
            load: Option<BenchArgs>,
        },
    }

    #[derive(Subcommand, Debug)]
    pub enum BenchCommand {
        /// The crypto floor.
        Crypto {
            #[arg(long, default_value_t = 2000)]
            iterations: u32,
        },
    }
}

#[test]
fn mounted_as_bench_load() {
    use as_subcommand::*;
    Cli::command().debug_assert();
    let cli = Cli::try_parse_from([
        "smdpp",
        "bench",
        "load",
        "--url",
        "https://127.0.0.1:8443",
        "--devices",
        "200",
        "--downloads",
        "3000",
        "--data-dir",
        "/tmp/d",
        "--json",
    ])
    .unwrap();
    let Command::Bench {
        command: BenchCommand::Load(a),
    } = cli.command
    else {
        panic!("not load")
    };
    assert_eq!((a.devices, a.downloads, a.json), (200, 3000, true));
    assert_eq!(a.data_dir.as_deref(), Some(std::path::Path::new("/tmp/d")));
    assert!(Cli::try_parse_from(["smdpp", "bench", "crypto"]).is_ok());
    // --url is required.
    assert!(Cli::try_parse_from(["smdpp", "bench", "load", "--devices", "2"]).is_err());
}

#[test]
fn mounted_in_the_issue_form() {
    use issue_form::*;
    Cli::command().debug_assert();
    let cli = Cli::try_parse_from([
        "smdpp",
        "bench",
        "--url",
        "https://127.0.0.1:8443",
        "--devices",
        "200",
        "--downloads",
        "3000",
    ])
    .unwrap();
    let Command::Bench {
        command: None,
        load: Some(a),
    } = cli.command
    else {
        panic!("not load")
    };
    assert_eq!((a.devices, a.downloads), (200, 3000));
    let cli = Cli::try_parse_from(["smdpp", "bench", "crypto", "--iterations", "5"]).unwrap();
    let Command::Bench {
        command: Some(BenchCommand::Crypto { iterations: 5 }),
        load: None,
    } = cli.command
    else {
        panic!("not crypto")
    };
    // `smdpp bench` alone asks for --url; mixing load flags and `crypto` is refused.
    let e = Cli::try_parse_from(["smdpp", "bench"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("--url"), "{e}");
    assert!(Cli::try_parse_from(["smdpp", "bench", "--url", "https://h", "crypto"]).is_err());
}
