//! Counters of the webhook path, plain atomics so that any exporter (the gateway's /metrics)
//! can read them: received, rejected by reason, ignored by type and reason, duplicates,
//! forwarded, retried, dead-lettered, and a histogram of the end-to-end latency (accepted →
//! forwarded).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Upper bounds (seconds) of the end-to-end latency buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0, 300.0,
];

/// Reasons a webhook is rejected, the label of `rejected`.
pub const REJECT_REASONS: [&str; 7] = [
    "missing_header",
    "bad_timestamp",
    "stale",
    "future",
    "bad_signature",
    "malformed",
    "too_large",
];

/// Most distinct event types `ignored` keeps apart; later ones count as `other`. The types
/// come from verified senders, but Stripe alone has hundreds: this bounds the label set.
pub const MAX_IGNORED_TYPES: usize = 64;

/// The counters (shared behind an `Arc`).
#[derive(Debug, Default)]
pub struct Metrics {
    received: AtomicU64,
    rejected: [AtomicU64; REJECT_REASONS.len()],
    duplicates: AtomicU64,
    forwarded: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    // A mutex, not atomics: the label set is open (bounded by MAX_IGNORED_TYPES) and ignored
    // events are not on the hot path of payment outcomes.
    ignored: Mutex<BTreeMap<(String, &'static str), u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

/// A consistent-enough copy of the counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Verified webhooks accepted (new and duplicate).
    pub received: u64,
    /// Rejections by reason, in [`REJECT_REASONS`] order.
    pub rejected: Vec<(&'static str, u64)>,
    /// Verified deliveries of an id already stored.
    pub duplicates: u64,
    /// Entries the consumer forwarded successfully.
    pub forwarded: u64,
    /// Failed attempts that were scheduled for a retry.
    pub retried: u64,
    /// Entries moved to the dead-letter stream (malformed payloads included).
    pub dead_lettered: u64,
    /// Verified events acknowledged but not acted on: (event type, reason, count), sorted.
    pub ignored: Vec<(String, &'static str, u64)>,
    /// Cumulative latency bucket counts, in [`LATENCY_BUCKETS`] order.
    pub latency_buckets: Vec<(f64, u64)>,
    /// Observed latencies.
    pub latency_count: u64,
    /// Their sum, seconds.
    pub latency_sum_seconds: f64,
}

impl Metrics {
    /// Fresh counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// A verified webhook accepted.
    pub fn received(&self) {
        self.received.fetch_add(1, Relaxed);
    }

    /// A rejection; `reason` is one of [`REJECT_REASONS`] (others are ignored).
    pub fn rejected(&self, reason: &str) {
        if let Some(i) = REJECT_REASONS.iter().position(|r| *r == reason) {
            self.rejected[i].fetch_add(1, Relaxed);
        }
    }

    /// A verified event of type `kind` acknowledged but not acted on, for `reason`. A type
    /// that is not a plain label (letters, digits, `._:-`, at most 64) or beyond the first
    /// [`MAX_IGNORED_TYPES`] counts as `other`.
    pub fn ignored(&self, kind: &str, reason: &'static str) {
        let plain = !kind.is_empty()
            && kind.len() <= 64
            && kind
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        let mut map = self.ignored.lock().unwrap_or_else(|p| p.into_inner());
        let known = map.contains_key(&(kind.to_owned(), reason));
        let label = if plain && (known || map.len() < MAX_IGNORED_TYPES) {
            kind
        } else {
            "other"
        };
        *map.entry((label.to_owned(), reason)).or_default() += 1;
    }

    /// A duplicate delivery.
    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Relaxed);
    }

    /// A forwarded entry and its end-to-end latency in milliseconds.
    pub fn forwarded(&self, latency_ms: i64) {
        self.forwarded.fetch_add(1, Relaxed);
        let secs = latency_ms.max(0) as f64 / 1000.0;
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.latency_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_micros
            .fetch_add(latency_ms.max(0) as u64 * 1000, Relaxed);
    }

    /// A failed attempt scheduled for retry.
    pub fn retried(&self) {
        self.retried.fetch_add(1, Relaxed);
    }

    /// An entry dead-lettered.
    pub fn dead_lettered(&self) {
        self.dead_lettered.fetch_add(1, Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            received: self.received.load(Relaxed),
            rejected: REJECT_REASONS
                .iter()
                .zip(&self.rejected)
                .map(|(r, c)| (*r, c.load(Relaxed)))
                .collect(),
            duplicates: self.duplicates.load(Relaxed),
            forwarded: self.forwarded.load(Relaxed),
            retried: self.retried.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            ignored: self
                .ignored
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|((k, r), c)| (k.clone(), *r, *c))
                .collect(),
            latency_buckets: LATENCY_BUCKETS
                .iter()
                .zip(&self.latency_buckets)
                .map(|(b, c)| (*b, c.load(Relaxed)))
                .collect(),
            latency_count: self.latency_count.load(Relaxed),
            latency_sum_seconds: self.latency_sum_micros.load(Relaxed) as f64 / 1e6,
        }
    }
}

impl Snapshot {
    /// Rejections for `reason`.
    pub fn rejected_for(&self, reason: &str) -> u64 {
        self.rejected
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, c)| *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_types_are_counted_apart_up_to_a_bound() {
        let m = Metrics::new();
        m.ignored("charge.succeeded", "unhandled_type");
        m.ignored("charge.succeeded", "unhandled_type");
        m.ignored("payment_intent.succeeded", "no_reservation");
        m.ignored("bad\"label\n", "unhandled_type");
        let s = m.snapshot();
        assert_eq!(
            s.ignored,
            vec![
                ("charge.succeeded".to_owned(), "unhandled_type", 2),
                ("other".to_owned(), "unhandled_type", 1),
                ("payment_intent.succeeded".to_owned(), "no_reservation", 1),
            ]
        );
        for i in 0..2 * MAX_IGNORED_TYPES {
            m.ignored(&format!("t{i}"), "unhandled_type");
        }
        // The label set stops growing; nothing is lost from the total.
        let s = m.snapshot();
        assert_eq!(s.ignored.len(), MAX_IGNORED_TYPES);
        let total: u64 = s.ignored.iter().map(|(_, _, c)| c).sum();
        assert_eq!(total, 4 + 2 * MAX_IGNORED_TYPES as u64);
        // A type seen before the bound keeps its own line.
        m.ignored("charge.succeeded", "unhandled_type");
        assert!(m.snapshot().ignored.contains(&(
            "charge.succeeded".to_owned(),
            "unhandled_type",
            3
        )));
    }

    #[test]
    fn buckets_are_cumulative() {
        let m = Metrics::new();
        m.forwarded(3);
        m.forwarded(700);
        m.rejected("stale");
        m.rejected("nonsense");
        let s = m.snapshot();
        assert_eq!(s.forwarded, 2);
        assert_eq!(s.latency_buckets[0], (0.005, 1));
        assert_eq!(s.latency_buckets[7], (1.0, 2));
        assert_eq!(s.rejected_for("stale"), 1);
        assert!((s.latency_sum_seconds - 0.703).abs() < 1e-9);
    }
}
