//! The result of a run: the `LOADTEST_JSON` document and the human summary.

use super::Kind;
use crate::invariants::Check;
use goose::metrics::GooseMetrics;
use serde::Serialize;
use std::collections::BTreeMap;

/// Request counts of one goose request name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestCounts {
    /// Successes.
    pub ok: usize,
    /// Failures.
    pub fail: usize,
}

/// The result of a run: the `LOADTEST_JSON` document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario.
    pub scenario: &'static str,
    /// The event.
    pub event: String,
    /// Whether every invariant held.
    pub passed: bool,
    /// The invariants.
    pub invariants: Vec<Check>,
    /// Goose's request counts by `METHOD name` (since the ramp ended, unless
    /// `--no-reset-metrics`).
    pub requests: BTreeMap<String, RequestCounts>,
    /// Goose's failed requests by error text, with how often each happened.
    pub errors: BTreeMap<String, usize>,
    /// Run duration (goose's measured part), seconds.
    pub duration_seconds: usize,
    /// Most users at once.
    pub users: usize,
    /// Goose's error, when the attack ended with one (a failed `--threshold`, ...).
    pub goose_error: Option<String>,
}

impl Report {
    /// The human summary (stderr).
    pub fn summary(&self) -> String {
        let mut s = format!(
            "loadtest {} on event {}: {} ({} s, {} users)\n",
            self.scenario,
            self.event,
            if self.passed { "PASSED" } else { "FAILED" },
            self.duration_seconds,
            self.users
        );
        for c in &self.invariants {
            s += &format!(
                "  [{}] {}: {}\n",
                if c.pass { "ok" } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        for (name, r) in &self.requests {
            s += &format!("  {name}: {} ok, {} failed\n", r.ok, r.fail);
        }
        for (e, n) in &self.errors {
            s += &format!("  error {n}x: {e}\n");
        }
        if let Some(e) = &self.goose_error {
            s += &format!("  goose: {e}\n");
        }
        s
    }
}

/// The report of a run of `kind` from goose's metrics and the invariants.
pub(crate) fn report(
    kind: Kind, event: &str, invariants: Vec<Check>, m: &GooseMetrics, goose_error: Option<String>,
) -> Report {
    let requests = m
        .requests
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                RequestCounts {
                    ok: v.success_count,
                    fail: v.fail_count,
                },
            )
        })
        .collect();
    // Goose lists an error when the answer came, even if the scenario then counted it a
    // success (a 409 sold out): list only errors of requests that have failures.
    let failing = |method: &str, name: &str| {
        m.requests
            .get(&format!("{method} {name}"))
            .is_none_or(|r| r.fail_count > 0)
    };
    let errors = m
        .errors
        .values()
        .filter(|e| failing(&e.method.to_string(), &e.name))
        .map(|e| {
            (
                format!("{} {}: {}", e.method, e.name, e.error),
                e.occurrences,
            )
        })
        .collect();
    Report {
        scenario: kind.name(),
        event: event.to_owned(),
        passed: invariants.iter().all(|c| c.pass),
        invariants,
        requests,
        errors,
        duration_seconds: m.duration,
        users: m.maximum_users,
        goose_error,
    }
}
