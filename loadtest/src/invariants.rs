//! The invariants checked after a load-test run: pure functions over what the scenarios
//! recorded and what the gateway, its admin API and the backends report afterwards. Each
//! returns a [`Check`] (name, pass or fail, and the numbers behind the verdict) so that the
//! harness can print them as one `LOADTEST_JSON` line and a human summary.

use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

/// The verdict of one invariant.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable name, e.g. `positions_unique_gap_free`.
    pub name: String,
    /// Whether the invariant held.
    pub pass: bool,
    /// The numbers behind the verdict.
    pub detail: Value,
}

impl Check {
    /// A check named `name` with its verdict and numbers.
    pub fn new(name: &str, pass: bool, detail: Value) -> Self {
        Self {
            name: name.to_owned(),
            pass,
            detail,
        }
    }
}

/// `observed == expected`, as the check `name`.
pub fn equal(name: &str, expected: u64, observed: u64) -> Check {
    Check::new(
        name,
        expected == observed,
        json!({"expected": expected, "observed": observed}),
    )
}

/// Positions handed out while nobody can leave the queue (admissions paused, no departures)
/// must be exactly `base+1 ..= base+N`: every one unique, none skipped.
pub fn positions_unique_gap_free(positions: &[u64], base: u64) -> Check {
    let mut sorted = positions.to_vec();
    sorted.sort_unstable();
    let mut duplicates = 0u64;
    let mut seen = HashSet::with_capacity(sorted.len());
    for p in &sorted {
        if !seen.insert(*p) {
            duplicates += 1;
        }
    }
    let n = sorted.len() as u64;
    // Every expected position that nobody got.
    let missing = (base + 1..=base + n).filter(|p| !seen.contains(p)).count() as u64;
    let pass = duplicates == 0 && missing == 0;
    Check::new(
        "positions_unique_gap_free",
        pass,
        json!({
            "joins": n,
            "base": base,
            "min": sorted.first(),
            "max": sorted.last(),
            "duplicates": duplicates,
            "missing": missing,
        }),
    )
}

/// One join as the client saw it: when the request left, when its answer came back (time
/// since the run started) and the position it got.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimedJoin {
    /// When the request was sent.
    pub sent: Duration,
    /// When the answer was received.
    pub received: Duration,
    /// The position in the answer.
    pub position: u64,
}

/// Arrival order: a join whose answer came back before another join was even sent must have
/// the smaller position (with no departures, a later ticket can never rank ahead). Counts the
/// joins that rank at or ahead of one that finished before they started.
pub fn positions_in_join_order(joins: &[TimedJoin]) -> Check {
    let mut by_received: Vec<&TimedJoin> = joins.iter().collect();
    by_received.sort_by_key(|j| j.received);
    let mut by_sent: Vec<&TimedJoin> = joins.iter().collect();
    by_sent.sort_by_key(|j| j.sent);
    let mut i = 0;
    let mut max_done: Option<u64> = None;
    let mut violations = 0u64;
    for j in by_sent {
        // Every join answered before this one was sent.
        while i < by_received.len() && by_received[i].received < j.sent {
            max_done = max_done.max(Some(by_received[i].position));
            i += 1;
        }
        if max_done.is_some_and(|m| j.position <= m) {
            violations += 1;
        }
    }
    Check::new(
        "positions_in_join_order",
        violations == 0,
        json!({"joins": joins.len(), "out_of_order": violations}),
    )
}

/// Whether a sequence of positions pushed to one client never goes up: without new joins ahead
/// of it (there are none: joins go to the back), a place can only move forward.
pub fn non_increasing(seq: &[u64]) -> bool {
    seq.windows(2).all(|w| w[1] <= w[0])
}

/// One sample of the event's counters from the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateSample {
    /// Seconds since the run started.
    pub t: f64,
    /// `stats.admitted_total`.
    pub admitted_total: u64,
    /// `stats.waiting`.
    pub waiting: u64,
}

/// The measured admission rate must be within `tolerance` (0.05 = 5 %) of `configured`, over
/// the longest stretch of samples during which a backlog existed (someone waiting at every
/// sample), leaving out its first `skip` seconds: the token bucket starts full and lets up to a
/// second's worth through at once. Fails when no such stretch of at least `min_window` exists,
/// since the rate then cannot be judged.
pub fn admission_rate(
    samples: &[RateSample],
    configured: f64,
    tolerance: f64,
    skip: f64,
    min_window: f64,
) -> Check {
    // Longest run of consecutive samples with a backlog.
    let (mut best, mut start) = ((0usize, 0usize), None::<usize>);
    for (i, s) in samples.iter().enumerate() {
        if s.waiting > 0 {
            let st = *start.get_or_insert(i);
            if i - st > best.1 - best.0 {
                best = (st, i);
            }
        } else {
            start = None;
        }
    }
    let (a, b) = best;
    let window = samples.get(a).map(|first| {
        let from = samples[a..=b]
            .iter()
            .find(|s| s.t >= first.t + skip)
            .copied();
        (from, samples[b])
    });
    let (rate, secs, admitted) = match window {
        Some((Some(from), to)) if to.t - from.t >= min_window => {
            let secs = to.t - from.t;
            let n = to.admitted_total.saturating_sub(from.admitted_total);
            (Some(n as f64 / secs), secs, n)
        }
        Some((Some(from), to)) => (None, to.t - from.t, 0),
        _ => (None, 0.0, 0),
    };
    let error = rate.map(|r| (r - configured).abs() / configured.max(f64::MIN_POSITIVE));
    Check::new(
        "admission_rate_within_tolerance",
        error.is_some_and(|e| e <= tolerance),
        json!({
            "configured_per_second": configured,
            "measured_per_second": rate,
            "relative_error": error,
            "tolerance": tolerance,
            "window_seconds": secs,
            "admitted_in_window": admitted,
            "samples": samples.len(),
        }),
    )
}

/// A reservation as the backends report it after the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// `r_…`.
    pub reservation_id: String,
    /// `CONFIRMED`, `CANCELLED`, `PENDING`, `EXPIRED`.
    pub status: String,
    /// `(seat_id, seat status)`: `SOLD` for a confirmed reservation.
    pub seats: Vec<(String, String)>,
}

/// No oversell: every confirmed order has at least one seat, every one of them `SOLD`; no seat
/// belongs to two confirmed orders; and no more seats were sold than were free when the run
/// began (`free_at_start`, from the inventory service).
pub fn no_oversell(orders: &[Order], free_at_start: u64) -> Check {
    let mut seen = HashSet::new();
    let (mut sold, mut double_sold, mut seatless, mut not_sold_status) = (0u64, 0u64, 0u64, 0u64);
    for o in orders.iter().filter(|o| o.status == "CONFIRMED") {
        if o.seats.is_empty() {
            seatless += 1;
        }
        for (seat, st) in &o.seats {
            sold += 1;
            if !seen.insert(seat.as_str()) {
                double_sold += 1;
            }
            if st != "SOLD" {
                not_sold_status += 1;
            }
        }
    }
    let confirmed = orders.iter().filter(|o| o.status == "CONFIRMED").count();
    Check::new(
        "no_oversell",
        double_sold == 0 && seatless == 0 && not_sold_status == 0 && sold <= free_at_start,
        json!({
            "confirmed_orders": confirmed,
            "seats_sold": sold,
            "free_at_start": free_at_start,
            "seats_in_two_orders": double_sold,
            "confirmed_without_seat": seatless,
            "confirmed_seat_not_sold": not_sold_status,
        }),
    )
}

/// Every reservation that got a payment intent ends `CONFIRMED` or `CANCELLED`.
pub fn payments_settled(orders: &[Order]) -> Check {
    let count = |s: &str| orders.iter().filter(|o| o.status == s).count();
    let unsettled: Vec<&str> = orders
        .iter()
        .filter(|o| o.status != "CONFIRMED" && o.status != "CANCELLED")
        .map(|o| o.reservation_id.as_str())
        .take(5)
        .collect();
    Check::new(
        "payments_settled",
        unsettled.is_empty(),
        json!({
            "payments": orders.len(),
            "confirmed": count("CONFIRMED"),
            "cancelled": count("CANCELLED"),
            "pending": count("PENDING"),
            "expired": count("EXPIRED"),
            "unsettled_examples": unsettled,
        }),
    )
}

/// What the webhook flood sent and how the gateway answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WebhookTally {
    /// Fresh ids answered `200 {"status":"accepted"}`.
    pub accepted: u64,
    /// Fresh ids answered anything else (a 503 under overload: not stored, not owed).
    pub unique_not_accepted: u64,
    /// Fresh ids answered `duplicate`: a webhook lost as if seen before.
    pub unique_answered_duplicate: u64,
    /// Repeats of accepted ids answered `duplicate`.
    pub duplicates: u64,
    /// Repeats answered `accepted`: one webhook stored twice.
    pub duplicate_answered_accepted: u64,
    /// Stale-timestamp webhooks sent, and how many got a 4xx.
    pub stale_sent: u64,
    /// ... of which answered 4xx.
    pub stale_rejected: u64,
    /// Webhooks signed with a wrong key sent.
    pub forged_sent: u64,
    /// ... of which answered 4xx.
    pub forged_rejected: u64,
}

/// The gateway's webhook counters (`/metrics`), read before and after the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WebhookCounters {
    /// `webhooks_received_total`.
    pub received: u64,
    /// `webhooks_duplicates_total`.
    pub duplicates: u64,
    /// `webhooks_forwarded_total`.
    pub forwarded: u64,
    /// `webhooks_dead_lettered_total`.
    pub dead_lettered: u64,
    /// `webhooks_rejected_total{reason="stale"}`.
    pub rejected_stale: u64,
    /// `webhooks_rejected_total{reason="bad_signature"}`.
    pub rejected_bad_signature: u64,
}

impl WebhookCounters {
    /// Reads them from OpenMetrics text (missing counters read 0).
    pub fn parse(text: &str) -> Self {
        let get = |name: &str, label: Option<(&str, &str)>| {
            metric_value(text, name, label).unwrap_or(0.0) as u64
        };
        Self {
            received: get("webhooks_received_total", None),
            duplicates: get("webhooks_duplicates_total", None),
            forwarded: get("webhooks_forwarded_total", None),
            dead_lettered: get("webhooks_dead_lettered_total", None),
            rejected_stale: get("webhooks_rejected_total", Some(("reason", "stale"))),
            rejected_bad_signature: get(
                "webhooks_rejected_total",
                Some(("reason", "bad_signature")),
            ),
        }
    }

    /// `self - before`, field by field.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            received: self.received.saturating_sub(before.received),
            duplicates: self.duplicates.saturating_sub(before.duplicates),
            forwarded: self.forwarded.saturating_sub(before.forwarded),
            dead_lettered: self.dead_lettered.saturating_sub(before.dead_lettered),
            rejected_stale: self.rejected_stale.saturating_sub(before.rejected_stale),
            rejected_bad_signature: self
                .rejected_bad_signature
                .saturating_sub(before.rejected_bad_signature),
        }
    }
}

/// The value of the sample `name` (with `label` = value, when given) in Prometheus/OpenMetrics
/// text.
pub fn metric_value(text: &str, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => {
                let (labels, v) = r.split_once('}')?;
                (labels, v)
            }
            None if rest.starts_with(' ') => ("", rest),
            None => return None,
        };
        if let Some((k, v)) = label {
            let want = format!("{k}=\"{v}\"");
            if !labels.split(',').any(|l| l.trim() == want) {
                return None;
            }
        }
        value.split_whitespace().next()?.parse().ok()
    })
}

/// The webhook invariants: every accepted fresh webhook processed exactly once (forwarded once
/// to the worker, nothing dead-lettered, none lost as a false duplicate), every repeat answered
/// as a duplicate and not stored again, and every forged or stale one rejected. `delta` is the
/// change of the gateway's counters over the run, read once the consumer has drained.
pub fn webhooks_exactly_once(tally: &WebhookTally, delta: &WebhookCounters) -> Vec<Check> {
    vec![
        Check::new(
            "webhooks_processed_exactly_once",
            tally.unique_answered_duplicate == 0
                && delta.forwarded == tally.accepted
                && delta.dead_lettered == 0,
            json!({
                "accepted": tally.accepted,
                "forwarded": delta.forwarded,
                "dead_lettered": delta.dead_lettered,
                "fresh_answered_duplicate": tally.unique_answered_duplicate,
                "fresh_not_accepted": tally.unique_not_accepted,
            }),
        ),
        Check::new(
            "webhook_duplicates_not_applied",
            tally.duplicate_answered_accepted == 0 && delta.duplicates == tally.duplicates,
            json!({
                "duplicates_sent_and_answered_duplicate": tally.duplicates,
                "duplicates_answered_accepted": tally.duplicate_answered_accepted,
                "gateway_duplicates": delta.duplicates,
            }),
        ),
        Check::new(
            "forged_and_stale_rejected",
            tally.stale_rejected == tally.stale_sent
                && tally.forged_rejected == tally.forged_sent
                && delta.rejected_stale == tally.stale_sent
                && delta.rejected_bad_signature == tally.forged_sent,
            json!({
                "stale_sent": tally.stale_sent,
                "stale_rejected": tally.stale_rejected,
                "forged_sent": tally.forged_sent,
                "forged_rejected": tally.forged_rejected,
                "gateway_rejected_stale": delta.rejected_stale,
                "gateway_rejected_bad_signature": delta.rejected_bad_signature,
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_free_positions_pass_and_broken_ones_fail() {
        assert!(positions_unique_gap_free(&[3, 1, 2], 0).pass);
        assert!(positions_unique_gap_free(&[11, 12], 10).pass);
        assert!(positions_unique_gap_free(&[], 5).pass);
        let dup = positions_unique_gap_free(&[1, 2, 2], 0);
        assert!(!dup.pass);
        assert_eq!(dup.detail["duplicates"], 1);
        assert_eq!(dup.detail["missing"], 1);
        let gap = positions_unique_gap_free(&[1, 2, 4], 0);
        assert!(!gap.pass);
        assert_eq!(gap.detail["missing"], 1);
        // Right count and unique, but not starting after the base.
        assert!(!positions_unique_gap_free(&[2, 3], 0).pass);
    }

    fn tj(sent: u64, received: u64, position: u64) -> TimedJoin {
        TimedJoin {
            sent: Duration::from_millis(sent),
            received: Duration::from_millis(received),
            position,
        }
    }

    #[test]
    fn join_order_is_checked_only_between_non_overlapping_joins() {
        // Overlapping joins may come out in any order.
        assert!(positions_in_join_order(&[tj(0, 10, 2), tj(5, 8, 1)]).pass);
        assert!(positions_in_join_order(&[tj(0, 10, 1), tj(11, 20, 2), tj(12, 13, 3)]).pass);
        // A join sent after another was answered got a place ahead of it.
        let bad = positions_in_join_order(&[tj(0, 10, 2), tj(11, 20, 1)]);
        assert!(!bad.pass);
        assert_eq!(bad.detail["out_of_order"], 1);
        // The same place twice is out of order too.
        assert!(!positions_in_join_order(&[tj(0, 10, 1), tj(11, 20, 1)]).pass);
    }

    #[test]
    fn positions_must_not_go_up() {
        assert!(non_increasing(&[5, 5, 3, 1]));
        assert!(non_increasing(&[]));
        assert!(!non_increasing(&[5, 3, 4]));
    }

    fn samples(rate: f64, secs: f64, waiting: impl Fn(f64) -> u64) -> Vec<RateSample> {
        (0..=(secs * 4.0) as usize)
            .map(|i| {
                let t = i as f64 / 4.0;
                RateSample {
                    t,
                    admitted_total: (rate * t) as u64 + 50,
                    waiting: waiting(t),
                }
            })
            .collect()
    }

    #[test]
    fn admission_rate_is_judged_over_the_backlog_window() {
        let ok = admission_rate(&samples(100.0, 10.0, |_| 10), 100.0, 0.05, 1.0, 2.0);
        assert!(ok.pass, "{}", ok.detail);
        // 10 % too fast fails a 5 % tolerance.
        let fast = admission_rate(&samples(110.0, 10.0, |_| 10), 100.0, 0.05, 1.0, 2.0);
        assert!(!fast.pass, "{}", fast.detail);
        let slow = admission_rate(&samples(90.0, 10.0, |_| 10), 100.0, 0.05, 1.0, 2.0);
        assert!(!slow.pass);
        // No backlog at all: the rate cannot be judged, which is a failure.
        let idle = admission_rate(&samples(0.0, 10.0, |_| 0), 100.0, 0.05, 1.0, 2.0);
        assert!(!idle.pass);
        assert!(idle.detail["measured_per_second"].is_null());
        // Only the backlog stretch counts: an empty queue later does not dilute the rate.
        let mut s = samples(100.0, 6.0, |_| 10);
        let last = *s.last().unwrap();
        s.extend((1..20).map(|i| RateSample {
            t: last.t + i as f64 / 4.0,
            admitted_total: last.admitted_total,
            waiting: 0,
        }));
        let part = admission_rate(&s, 100.0, 0.05, 1.0, 2.0);
        assert!(part.pass, "{}", part.detail);
    }

    fn order(id: &str, status: &str, seats: &[&str]) -> Order {
        Order {
            reservation_id: id.into(),
            status: status.into(),
            seats: seats
                .iter()
                .map(|s| {
                    let st = if status == "CONFIRMED" {
                        "SOLD"
                    } else {
                        "AVAILABLE"
                    };
                    (s.to_string(), st.to_string())
                })
                .collect(),
        }
    }

    #[test]
    fn oversell_is_caught() {
        let good = [
            order("r1", "CONFIRMED", &["A-1"]),
            order("r2", "CONFIRMED", &["A-2"]),
            order("r3", "CANCELLED", &["A-1"]),
        ];
        assert!(no_oversell(&good, 2).pass);
        // More sold than was free.
        assert!(!no_oversell(&good, 1).pass);
        // One seat in two confirmed orders.
        let twice = [
            order("r1", "CONFIRMED", &["A-1"]),
            order("r2", "CONFIRMED", &["A-1"]),
        ];
        let c = no_oversell(&twice, 10);
        assert!(!c.pass);
        assert_eq!(c.detail["seats_in_two_orders"], 1);
        // A confirmed order without a seat, or with a seat not sold.
        assert!(!no_oversell(&[order("r1", "CONFIRMED", &[])], 10).pass);
        let mut held = order("r1", "CONFIRMED", &["A-1"]);
        held.seats[0].1 = "HELD".into();
        assert!(!no_oversell(&[held], 10).pass);
    }

    #[test]
    fn unsettled_payments_fail() {
        let ok = [
            order("r1", "CONFIRMED", &["A-1"]),
            order("r2", "CANCELLED", &[]),
        ];
        assert!(payments_settled(&ok).pass);
        let pending = [
            order("r1", "CONFIRMED", &["A-1"]),
            order("r2", "PENDING", &[]),
        ];
        let c = payments_settled(&pending);
        assert!(!c.pass);
        assert_eq!(c.detail["unsettled_examples"][0], "r2");
    }

    #[test]
    fn metrics_are_read_from_openmetrics_text() {
        let text = "# TYPE webhooks_received_total counter\nwebhooks_received_total 12\n\
                    webhooks_rejected_total{reason=\"stale\"} 3\n\
                    webhooks_rejected_total{reason=\"bad_signature\"} 4\n\
                    webhooks_forwarded_total 9\nwebhooks_forwarded_totalx 100\n";
        let c = WebhookCounters::parse(text);
        assert_eq!(c.received, 12);
        assert_eq!(c.rejected_stale, 3);
        assert_eq!(c.rejected_bad_signature, 4);
        assert_eq!(c.forwarded, 9);
        assert_eq!(c.duplicates, 0);
        assert_eq!(
            metric_value(text, "webhooks_rejected_total", Some(("reason", "missing"))),
            None
        );
    }

    fn tally() -> WebhookTally {
        WebhookTally {
            accepted: 100,
            duplicates: 20,
            stale_sent: 5,
            stale_rejected: 5,
            forged_sent: 6,
            forged_rejected: 6,
            ..Default::default()
        }
    }

    fn delta() -> WebhookCounters {
        WebhookCounters {
            received: 120,
            duplicates: 20,
            forwarded: 100,
            dead_lettered: 0,
            rejected_stale: 5,
            rejected_bad_signature: 6,
        }
    }

    #[test]
    fn webhook_checks_pass_when_each_is_processed_once() {
        assert!(webhooks_exactly_once(&tally(), &delta())
            .iter()
            .all(|c| c.pass));
    }

    #[test]
    fn lost_doubled_or_forged_webhooks_fail() {
        let failing = |t: WebhookTally, d: WebhookCounters| -> Vec<String> {
            webhooks_exactly_once(&t, &d)
                .into_iter()
                .filter(|c| !c.pass)
                .map(|c| c.name)
                .collect()
        };
        // Lost: one accepted webhook never forwarded.
        let lost = WebhookCounters {
            forwarded: 99,
            ..delta()
        };
        assert_eq!(failing(tally(), lost), ["webhooks_processed_exactly_once"]);
        // Doubled: forwarded twice.
        let doubled = WebhookCounters {
            forwarded: 101,
            ..delta()
        };
        assert_eq!(
            failing(tally(), doubled),
            ["webhooks_processed_exactly_once"]
        );
        // Dead-lettered instead of processed.
        let dead = WebhookCounters {
            dead_lettered: 1,
            forwarded: 99,
            ..delta()
        };
        assert_eq!(failing(tally(), dead), ["webhooks_processed_exactly_once"]);
        // A repeat stored again.
        let t = WebhookTally {
            duplicate_answered_accepted: 1,
            ..tally()
        };
        assert_eq!(failing(t, delta()), ["webhook_duplicates_not_applied"]);
        // A forged webhook accepted.
        let t = WebhookTally {
            forged_rejected: 5,
            ..tally()
        };
        let d = WebhookCounters {
            rejected_bad_signature: 5,
            ..delta()
        };
        assert_eq!(failing(t, d), ["forged_and_stale_rejected"]);
    }
}
