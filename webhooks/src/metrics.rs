//! Metrics of the webhook path as `prometheus-client` metrics, registered by the exporter in
//! its one registry ([`Metrics::register`]): received, rejected by reason, ignored by type and
//! reason, duplicates, forwarded, retried, dead-lettered, and a histogram of the end-to-end
//! latency (accepted → forwarded).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashSet;
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

/// Labels of `webhooks_rejected_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    reason: &'static str,
}

/// Labels of `webhooks_ignored_total` (in this order on the wire: `type`, `reason`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IgnoredLabels {
    r#type: String,
    reason: &'static str,
}

/// The metrics (shared behind an `Arc`; the handles are cheap clones of the same values, so
/// registering them elsewhere shares the counts).
#[derive(Debug)]
pub struct Metrics {
    received: Counter,
    rejected: Family<RejectLabels, Counter>,
    duplicates: Counter,
    forwarded: Counter,
    retried: Counter,
    dead_lettered: Counter,
    ignored: Family<IgnoredLabels, Counter>,
    // The label pairs `ignored` has, to bound them (the family does not count its members).
    // A mutex: ignored events are not on the hot path of payment outcomes.
    ignored_labels: Mutex<HashSet<(String, &'static str)>>,
    latency: Histogram,
}

/// A copy of the counters (for tests and operations; the exporter reads the registry).
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
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics, every rejection reason at 0 (so that each is exported from the start).
    pub fn new() -> Self {
        let rejected = Family::<RejectLabels, Counter>::default();
        for reason in REJECT_REASONS {
            let _ = rejected.get_or_create(&RejectLabels { reason });
        }
        Self {
            received: Counter::default(),
            rejected,
            duplicates: Counter::default(),
            forwarded: Counter::default(),
            retried: Counter::default(),
            dead_lettered: Counter::default(),
            ignored: Family::default(),
            ignored_labels: Mutex::new(HashSet::new()),
            latency: Histogram::new(LATENCY_BUCKETS),
        }
    }

    /// Registers every metric in `registry` under its exported name (`webhooks_*`).
    pub fn register(&self, registry: &mut Registry) {
        let counters = [
            (
                "webhooks_received",
                "Verified webhooks accepted (new and duplicates)",
                &self.received,
            ),
            (
                "webhooks_duplicates",
                "Verified deliveries of a webhook id already stored",
                &self.duplicates,
            ),
            (
                "webhooks_forwarded",
                "Stored webhooks forwarded to the worker",
                &self.forwarded,
            ),
            (
                "webhooks_retried",
                "Failed forwards scheduled for a retry",
                &self.retried,
            ),
            (
                "webhooks_dead_lettered",
                "Webhooks moved to the dead-letter stream",
                &self.dead_lettered,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        let by_reason = "Webhooks refused, by reason";
        registry.register("webhooks_rejected", by_reason, self.rejected.clone());
        let by_type = "Verified webhooks acknowledged but not acted on, by event type and reason";
        registry.register("webhooks_ignored", by_type, self.ignored.clone());
        let latency = "From acceptance to a successful forward";
        registry.register(
            "webhooks_end_to_end_latency_seconds",
            latency,
            self.latency.clone(),
        );
    }

    /// A verified webhook accepted.
    pub fn received(&self) {
        self.received.inc();
    }

    /// A rejection; `reason` is one of [`REJECT_REASONS`] (others are ignored).
    pub fn rejected(&self, reason: &str) {
        if let Some(reason) = REJECT_REASONS.iter().find(|r| **r == reason) {
            self.rejected.get_or_create(&RejectLabels { reason }).inc();
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
        let mut labels = self
            .ignored_labels
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let known = labels.contains(&(kind.to_owned(), reason));
        let label = if plain && (known || labels.len() < MAX_IGNORED_TYPES) {
            kind
        } else {
            "other"
        };
        labels.insert((label.to_owned(), reason));
        self.ignored
            .get_or_create(&IgnoredLabels {
                r#type: label.to_owned(),
                reason,
            })
            .inc();
    }

    /// A duplicate delivery.
    pub fn duplicate(&self) {
        self.duplicates.inc();
    }

    /// A forwarded entry and its end-to-end latency in milliseconds.
    pub fn forwarded(&self, latency_ms: i64) {
        self.forwarded.inc();
        self.latency.observe(latency_ms.max(0) as f64 / 1000.0);
    }

    /// A failed attempt scheduled for retry.
    pub fn retried(&self) {
        self.retried.inc();
    }

    /// An entry dead-lettered.
    pub fn dead_lettered(&self) {
        self.dead_lettered.inc();
    }

    /// The current counts.
    pub fn snapshot(&self) -> Snapshot {
        let mut ignored: Vec<_> = self
            .ignored_labels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(kind, reason)| {
                let labels = IgnoredLabels {
                    r#type: kind.clone(),
                    reason,
                };
                let n = self.ignored.get(&labels).map_or(0, |c| c.get());
                (kind.clone(), *reason, n)
            })
            .collect();
        ignored.sort();
        Snapshot {
            received: self.received.get(),
            rejected: REJECT_REASONS
                .iter()
                .map(|reason| {
                    let n = self
                        .rejected
                        .get(&RejectLabels { reason })
                        .map_or(0, |c| c.get());
                    (*reason, n)
                })
                .collect(),
            duplicates: self.duplicates.get(),
            forwarded: self.forwarded.get(),
            retried: self.retried.get(),
            dead_lettered: self.dead_lettered.get(),
            ignored,
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
    fn the_registry_exports_cumulative_buckets_and_every_reason() {
        let m = Metrics::new();
        m.forwarded(3);
        m.forwarded(700);
        m.rejected("stale");
        m.rejected("nonsense");
        m.ignored("payment.refunded", "unhandled_type");
        let s = m.snapshot();
        assert_eq!(s.forwarded, 2);
        assert_eq!(s.rejected_for("stale"), 1);
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "webhooks_forwarded_total 2",
            "webhooks_end_to_end_latency_seconds_bucket{le=\"0.005\"} 1",
            "webhooks_end_to_end_latency_seconds_bucket{le=\"0.5\"} 1",
            "webhooks_end_to_end_latency_seconds_bucket{le=\"1.0\"} 2",
            "webhooks_end_to_end_latency_seconds_bucket{le=\"+Inf\"} 2",
            "webhooks_end_to_end_latency_seconds_count 2",
            "webhooks_end_to_end_latency_seconds_sum 0.703",
            "webhooks_rejected_total{reason=\"stale\"} 1",
            "webhooks_rejected_total{reason=\"bad_signature\"} 0",
            "webhooks_ignored_total{type=\"payment.refunded\",reason=\"unhandled_type\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
        assert!(!text.contains("nonsense"));
    }
}
