//! Webhook invariants: each accepted webhook processed exactly once, per the gateway's metrics.

use super::Check;
use serde::Serialize;
use serde_json::json;

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

/// Forwarding keeps up with intake (issue 13's target): webhooks forwarded per second, from the
/// start of the flood until the consumer has forwarded the last accepted one, at least
/// `min_ratio` of webhooks accepted per second over the flood itself. A backlog left when the
/// flood stops stretches the forwarding time, so the ratio falls below 1 by exactly the share
/// of the run the consumer needed to catch up. Rates over the whole run, ramp-up included.
pub fn forwarding_keeps_up(
    accepted: u64, flood: std::time::Duration, forwarded: u64,
    until_forwarded: std::time::Duration, min_ratio: f64,
) -> Check {
    let per_s = |n: u64, d: std::time::Duration| n as f64 / d.as_secs_f64().max(1e-3);
    let accepted_per_s = per_s(accepted, flood);
    let forwarded_per_s = per_s(forwarded, until_forwarded.max(flood));
    let ratio = if accepted_per_s > 0.0 {
        forwarded_per_s / accepted_per_s
    } else {
        0.0
    };
    Check::new(
        "forwarding_keeps_up_with_intake",
        accepted > 0 && forwarded >= accepted && ratio >= min_ratio,
        json!({
            "accepted": accepted,
            "accepted_per_s": accepted_per_s.round(),
            "flood_s": (flood.as_secs_f64() * 10.0).round() / 10.0,
            "forwarded": forwarded,
            "forwarded_per_s": forwarded_per_s.round(),
            "until_forwarded_s": (until_forwarded.as_secs_f64() * 10.0).round() / 10.0,
            "ratio": (ratio * 1000.0).round() / 1000.0,
            "min_ratio": min_ratio,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // The honest run's numbers with one change.
        let tallied = |change: fn(&mut WebhookTally)| {
            let mut t = tally();
            change(&mut t);
            t
        };
        let counted = |change: fn(&mut WebhookCounters)| {
            let mut d = delta();
            change(&mut d);
            d
        };
        let once = "webhooks_processed_exactly_once";
        for (what, t, d, fails) in [
            // One accepted webhook never forwarded.
            ("lost", tally(), counted(|d| d.forwarded = 99), once),
            ("doubled", tally(), counted(|d| d.forwarded = 101), once),
            // Dead-lettered instead of processed.
            (
                "dead-lettered",
                tally(),
                counted(|d| (d.dead_lettered, d.forwarded) = (1, 99)),
                once,
            ),
            // A repeat stored again.
            (
                "repeat stored",
                tallied(|t| t.duplicate_answered_accepted = 1),
                delta(),
                "webhook_duplicates_not_applied",
            ),
            // A forged webhook accepted.
            (
                "forged accepted",
                tallied(|t| t.forged_rejected = 5),
                counted(|d| d.rejected_bad_signature = 5),
                "forged_and_stale_rejected",
            ),
        ] {
            assert_eq!(failing(t, d), [fails], "{what}");
        }
    }

    #[test]
    fn forwarding_that_trails_intake_fails_the_rate_check() {
        use std::time::Duration;
        let s = Duration::from_secs;
        // Drained one second after a 30 s flood: 30/31 = 0.968.
        let kept_up = forwarding_keeps_up(30_000, s(30), 30_000, s(31), 0.9);
        assert!(kept_up.pass, "{:?}", kept_up.detail);
        assert_eq!(kept_up.detail["ratio"], 0.968);
        // A backlog that takes 10 s more to drain: 30/40 = 0.75.
        let trailed = forwarding_keeps_up(30_000, s(30), 30_000, s(40), 0.9);
        assert!(!trailed.pass);
        assert_eq!(trailed.detail["ratio"], 0.75);
        // Never drained: fails whatever the time.
        assert!(!forwarding_keeps_up(30_000, s(30), 29_000, s(30), 0.9).pass);
        // Nothing accepted: nothing shown.
        assert!(!forwarding_keeps_up(0, s(30), 0, s(30), 0.9).pass);
    }
}
