//! Queue invariants: unique, gap-free positions in join order, and the admission rate.

use super::Check;
use serde::Serialize;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

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
    samples: &[RateSample], configured: f64, tolerance: f64, skip: f64, min_window: f64,
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
}
