//! Latency summaries (nearest-rank percentiles) and the error tally.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// Latency summary of one kind of call, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencySummary {
    /// What was measured (an ES9+ function name, or `download` for the whole flow).
    pub call: String,
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile (nearest rank).
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The nearest-rank `p`-th percentile (0 < p <= 100) of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarizes `samples` (sorted in place).
pub fn summarize(call: &str, samples: &mut [Duration]) -> LatencySummary {
    samples.sort_unstable();
    let total: Duration = samples.iter().sum();
    let mean = if samples.is_empty() {
        0.0
    } else {
        ms(total) / samples.len() as f64
    };
    LatencySummary {
        call: call.to_owned(),
        count: samples.len(),
        p50_ms: ms(percentile(samples, 50.0)),
        p99_ms: ms(percentile(samples, 99.0)),
        max_ms: ms(samples.last().copied().unwrap_or_default()),
        mean_ms: mean,
    }
}

/// Failed downloads counted by error key (see [`crate::driver::error_key`]).
pub type ErrorTally = BTreeMap<String, u64>;

/// Adds `other` into `into`.
pub fn merge_tally(into: &mut ErrorTally, other: ErrorTally) {
    for (k, v) in other {
        *into.entry(k).or_default() += v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = summarize("x", &mut v);
        assert_eq!(s.count, 100);
        assert!((s.p50_ms - 50.0).abs() < 1e-9);
        assert!((s.p99_ms - 99.0).abs() < 1e-9);
        assert!((s.max_ms - 100.0).abs() < 1e-9);
        assert!((s.mean_ms - 50.5).abs() < 1e-9);
        let e = summarize("empty", &mut []);
        assert_eq!(e.count, 0);
        assert_eq!(e.p99_ms, 0.0);
        assert_eq!(
            percentile(&[Duration::from_millis(7)], 99.0),
            Duration::from_millis(7)
        );
    }
}
