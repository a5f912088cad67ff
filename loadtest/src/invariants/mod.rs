//! The invariants checked after a load-test run: pure functions over what the scenarios
//! recorded and what the gateway, its admin API and the backends report afterwards. Each
//! returns a [`Check`] (name, pass or fail, and the numbers behind the verdict) so that the
//! harness can print them as one `LOADTEST_JSON` line and a human summary.
//!
//! By what they judge: [`queue`] (positions and the admission rate), [`sales`] (seats and
//! payments) and [`webhooks`] (exactly-once processing, from the gateway's metrics).

mod queue;
mod sales;
mod webhooks;

pub use queue::{
    admission_rate, non_increasing, positions_in_join_order, positions_unique_gap_free, RateSample,
    TimedJoin,
};
pub use sales::{no_oversell, payments_settled, Order};
pub use webhooks::{
    forwarding_keeps_up, metric_value, webhooks_exactly_once, WebhookCounters, WebhookTally,
};

use serde::Serialize;
use serde_json::{json, Value};

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
