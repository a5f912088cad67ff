//! The requests of each second of the run: counts and latency percentiles.

use crate::csv::Request;
use std::collections::BTreeMap;

/// The requests that started in one second of the run.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Second {
    /// Successful requests.
    pub(crate) ok: u64,
    /// Failed requests.
    pub(crate) failed: u64,
    /// Latency percentiles of all of them, in milliseconds.
    pub(crate) p50_ms: f64,
    /// See `p50_ms`.
    pub(crate) p99_ms: f64,
}

/// The nearest-rank percentile `p` (0..=100) of sorted values; 0 for none.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Groups requests by the second they started in, from second 0 to the last one with a request
/// (seconds without any request are kept, as zeros, so a stall shows).
pub(crate) fn per_second(requests: &[Request]) -> Vec<Second> {
    let mut buckets: BTreeMap<u64, (u64, u64, Vec<u64>)> = BTreeMap::new();
    for r in requests {
        let b = buckets.entry(r.elapsed_ms / 1000).or_default();
        if r.ok {
            b.0 += 1;
        } else {
            b.1 += 1;
        }
        b.2.push(r.latency_us);
    }
    let last = buckets.keys().next_back().copied().unwrap_or(0);
    (0..=last)
        .map(|s| match buckets.get_mut(&s) {
            None => Second::default(),
            Some((ok, failed, lat)) => {
                lat.sort_unstable();
                Second {
                    ok: *ok,
                    failed: *failed,
                    p50_ms: percentile(lat, 50.0) as f64 / 1000.0,
                    p99_ms: percentile(lat, 99.0) as f64 / 1000.0,
                }
            }
        })
        .collect()
}
