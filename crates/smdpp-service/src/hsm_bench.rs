//! `smdpp bench hsm`: the long-term-key operations of a download (ECDSA signatures with
//! SK.DPauth / SK.DPpb / SK.DP.TLS; ECDH, which the server offers through
//! [`rsp_crypto::KeyCustody::ecdh`]) timed with a key on the PKCS#11 token
//! ([`rsp_hsm::HsmKey`], through the session pool of [`rsp_hsm::Token`]) against the
//! software key with the same scalar ([`rsp_crypto::SoftwareKey`]), on 1 thread and on K
//! concurrent threads (by default the number of cores and 4 times that), so that the effect
//! of the pool shows.
//!
//! The token is named as for `serve` (`--pkcs11-module`, `--pkcs11-token`, PIN from
//! `--pkcs11-pin-file` or `SMDPP_PKCS11_PIN`). For each curve a software key is generated,
//! imported under a throwaway label (`smdpp-bench-<curve>-<pid>`) and destroyed at the end;
//! a curve the token cannot import, sign or derive on is reported as not supported and
//! skipped. Nothing secret is printed.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use rsp_crypto::{Curve, KeyCustody, SoftwareKey};
use rsp_hsm::{HsmKey, Token, TokenConfig, admin};

use crate::hsm::Pkcs11Settings;

/// Which curve(s) `smdpp bench hsm` measures.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchCurves {
    /// NIST P-256.
    Nist,
    /// brainpoolP256r1.
    Brainpool,
    /// Both.
    Both,
}

/// What `smdpp bench hsm` measures and on which token.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The token (`None`: not given, an error).
    pub token: Option<Pkcs11Settings>,
    /// Operations per measurement (split over the threads).
    pub iterations: u32,
    /// Which curve(s).
    pub curve: BenchCurves,
    /// Concurrent threads (empty: 1, the number of cores, 4 x cores).
    pub threads: Vec<usize>,
    /// Session pool sizes to compare (empty: 1 and the server's default, the number of
    /// cores, at least 2).
    pub pool_sizes: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Sign,
    Ecdh,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Sign => "ECDSA sign",
            Op::Ecdh => "ECDH",
        }
    }
}

/// One measurement: median and p90 latency per operation, and throughput.
struct Figure {
    median: Duration,
    p90: Duration,
    ops_per_sec: f64,
}

fn measure(
    key: &dyn KeyCustody,
    op: Op,
    total: u32,
    threads: usize,
    peer: &[u8],
) -> Result<Figure> {
    let msg = [0x5au8; 120];
    let one = || -> Result<()> {
        match op {
            Op::Sign => {
                key.sign(&msg).context("sign")?;
            }
            Op::Ecdh => {
                key.ecdh(peer).context("ECDH")?;
            }
        }
        Ok(())
    };
    // Warm-up (sessions, caches).
    for _ in 0..threads.max(4) {
        one()?;
    }
    let per_thread = usize::try_from(total)?.div_ceil(threads).max(1);
    let start = Instant::now();
    let results: Vec<Result<Vec<Duration>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut lat = Vec::with_capacity(per_thread);
                    for _ in 0..per_thread {
                        let t = Instant::now();
                        one()?;
                        lat.push(t.elapsed());
                    }
                    Ok(lat)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a benchmark thread panicked")))
            })
            .collect()
    });
    let wall = start.elapsed();
    let mut all = Vec::with_capacity(per_thread * threads);
    for r in results {
        all.extend(r?);
    }
    all.sort_unstable();
    let at = |q: usize| {
        all.get((all.len() * q / 100).min(all.len().saturating_sub(1)))
            .copied()
    };
    let count = all.len() as f64;
    Ok(Figure {
        median: at(50).unwrap_or_default(),
        p90: at(90).unwrap_or_default(),
        ops_per_sec: count / wall.as_secs_f64(),
    })
}

fn micros(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

/// Runs the benchmark and returns the report.
pub fn run(args: &BenchOptions) -> Result<String> {
    if args.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    if args.threads.contains(&0) {
        bail!("--threads must be at least 1");
    }
    if args.pool_sizes.contains(&0) {
        bail!("--pool-size must be at least 1");
    }
    let settings = args
        .token
        .clone()
        .ok_or_else(|| anyhow::anyhow!("give --pkcs11-module and --pkcs11-token"))?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool_sizes = if args.pool_sizes.is_empty() {
        let mut p = vec![1, cores.max(2)];
        p.dedup();
        p
    } else {
        args.pool_sizes.clone()
    };
    // One handle (one pool of sessions) per size; the first also imports the keys.
    let pin = TokenConfig::read_pin(settings.pin_file.as_deref())?;
    let mut tokens = Vec::new();
    for &pool_size in &pool_sizes {
        tokens.push(Token::open(&TokenConfig {
            module: settings.module.clone(),
            token_label: settings.token.clone(),
            pin: pin.clone(),
            pool_size,
        })?);
    }
    let token = Arc::clone(&tokens[0]);
    let threads = if args.threads.is_empty() {
        let mut t = vec![1, cores, 4 * cores];
        t.dedup();
        t
    } else {
        args.threads.clone()
    };
    let curves = match args.curve {
        BenchCurves::Nist => vec![Curve::NistP256],
        BenchCurves::Brainpool => vec![Curve::BrainpoolP256r1],
        BenchCurves::Both => vec![Curve::NistP256, Curve::BrainpoolP256r1],
    };
    let mut out = String::new();
    writeln!(
        out,
        "token {:?}, session pools {pool_sizes:?} (cores {cores}; serve uses {}), {} operations per row",
        token.label(),
        cores.max(2),
        args.iterations
    )?;
    writeln!(
        out,
        "{:<16} {:<10} {:<12} {:>7} {:>11} {:>11} {:>10}",
        "curve", "operation", "key", "threads", "median µs", "p90 µs", "ops/s"
    )?;
    for curve in curves {
        let short = match curve {
            Curve::NistP256 => "p256",
            Curve::BrainpoolP256r1 => "brainpool",
        };
        let label = format!("smdpp-bench-{short}-{}", std::process::id());
        let soft = SoftwareKey::generate(curve)?;
        let pem = zeroize::Zeroizing::new(soft.to_pkcs8_pem());
        let peer = SoftwareKey::generate(curve)?;
        let peer = peer.public_key().to_vec();
        let imported = admin::import_pem(&token, &label, &pem)
            .and_then(|_| HsmKey::open(Arc::clone(&token), &label));
        let hsm = match imported {
            Ok(first) => {
                let mut keys = vec![first];
                for t in &tokens[1..] {
                    keys.push(HsmKey::open(Arc::clone(t), &label)?);
                }
                keys
            }
            Err(e) => {
                let _ = admin::destroy(&token, &label);
                writeln!(out, "{:<16} not supported by this token: {e}", curve.name())?;
                continue;
            }
        };
        let mut rows = String::new();
        let result = (|| -> Result<()> {
            for op in [Op::Sign, Op::Ecdh] {
                // One call first: a mechanism the token lacks is reported, not timed.
                let probe = match op {
                    Op::Sign => hsm[0].sign(b"probe").map(|_| ()),
                    Op::Ecdh => hsm[0].ecdh(&peer).map(|_| ()),
                };
                if let Err(e) = probe {
                    writeln!(
                        rows,
                        "{:<16} {:<10} not supported by this token ({e})",
                        curve.name(),
                        op.name()
                    )?;
                    continue;
                }
                for &k in &threads {
                    let mut keys: Vec<(String, &dyn KeyCustody)> =
                        vec![("software".to_owned(), &soft)];
                    for (key, size) in hsm.iter().zip(&pool_sizes) {
                        keys.push((format!("hsm pool {size}"), key));
                    }
                    for (kind, key) in keys {
                        let f = measure(key, op, args.iterations, k, &peer)?;
                        writeln!(
                            rows,
                            "{:<16} {:<10} {:<12} {:>7} {:>11} {:>11} {:>10.0}",
                            curve.name(),
                            op.name(),
                            kind,
                            k,
                            micros(f.median),
                            micros(f.p90),
                            f.ops_per_sec
                        )?;
                    }
                }
            }
            Ok(())
        })();
        let destroyed = admin::destroy(&token, &label);
        out.push_str(&rows);
        result?;
        destroyed.with_context(|| format!("removing the benchmark key {label}"))?;
    }
    writeln!(
        out,
        "signatures made on the token: {}, key agreements: {}",
        tokens.iter().map(|t| t.signatures()).sum::<u64>(),
        tokens.iter().map(|t| t.derivations()).sum::<u64>()
    )?;
    Ok(out)
}
