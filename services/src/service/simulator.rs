//! The payment simulator: decides an intent's outcome, keeps it in the store until it is due,
//! then records it and reports it by signed webhook (surviving restarts).

use super::Backends;
use crate::error::{Result, ServiceError};
use crate::model::*;
use crate::store::PendingOutcome;
use rand::Rng;
use std::time::Duration;

/// The webhook payload of an outcome.
pub fn webhook_payload(intent: &Intent, now_rfc3339: &str) -> serde_json::Value {
    let kind = match intent.status {
        IntentStatus::Approved => "payment.approved",
        IntentStatus::Cancelled => "payment.cancelled",
        _ => "payment.failed",
    };
    let mut data = serde_json::json!({
        "payment_intent_id": intent.id,
        "reservation_id": intent.reservation_id,
        "amount_cents": intent.amount_cents,
        "currency": intent.currency,
    });
    if let (Some(code), Some(obj)) = (&intent.failure_code, data.as_object_mut()) {
        obj.insert("failure_code".into(), serde_json::Value::from(code.clone()));
    }
    serde_json::json!({ "type": kind, "timestamp": now_rfc3339, "data": data })
}

impl Backends {
    /// Decides the intent's outcome and when it is due, and keeps it in the store (so that a
    /// restart loses nothing: see [`Backends::resume_outcomes`]); a timer then records and
    /// reports it. With `keep_existing`, an outcome kept before stays as it was.
    pub(super) async fn simulate(&self, intent: &Intent, keep_existing: bool) -> Result<()> {
        let (lo, hi, approve) = {
            let mut rng = rand::thread_rng();
            match intent.scenario {
                Scenario::Approve => (2_000, 5_000, true),
                Scenario::Fail => (1_000, 3_000, false),
                Scenario::Delay => (10_000, 30_000, true),
                Scenario::Random => (
                    1_000,
                    5_000,
                    rng.gen_range(0..100) < self.0.settings.random_approve_percent,
                ),
                Scenario::Timeout => return Ok(()),
            }
        };
        let ms =
            rand::thread_rng().gen_range(lo..=hi) as f64 * self.0.settings.sim_time_scale.max(0.0);
        let outcome = PendingOutcome {
            intent_id: intent.id.clone(),
            due_ms: self.now() + ms as u64,
            approve,
            webhook_id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
        };
        if self.0.store.outcome_put(&outcome, keep_existing).await? {
            self.schedule(outcome);
        }
        Ok(())
    }

    /// Schedules every kept outcome of every event (those of a process that stopped before
    /// reporting them: due ones at once, the others when due); how many. Run at start.
    pub async fn resume_outcomes(&self) -> Result<usize> {
        const PAGE: usize = 1000;
        let mut n = 0;
        for ev in self.0.store.events().await? {
            let mut offset = 0;
            loop {
                let page = self.0.store.outcomes(&ev, u64::MAX, offset, PAGE).await?;
                offset += page.len();
                let last = page.len() < PAGE;
                for o in page {
                    n += usize::from(self.schedule(o));
                }
                if last {
                    break;
                }
            }
        }
        if n > 0 {
            tracing::info!(count = n, "payment outcomes not yet reported resumed");
        }
        Ok(n)
    }

    /// Starts the timer of a kept outcome, unless one runs in this process; whether it did.
    fn schedule(&self, outcome: PendingOutcome) -> bool {
        let mut timers = self.0.timers.lock().unwrap_or_else(|e| e.into_inner());
        if !timers.insert(outcome.intent_id.clone()) {
            return false;
        }
        drop(timers);
        let this = self.clone();
        tokio::spawn(async move {
            let wait = outcome.due_ms.saturating_sub(this.now());
            tokio::time::sleep(Duration::from_millis(wait)).await;
            this.settle_and_report(&outcome).await;
            this.0
                .timers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&outcome.intent_id);
        });
        true
    }

    /// Records a due outcome and reports it; forgets it once reported (or given up). An outcome
    /// that was recorded before a restart but not reported is reported now (same webhook id).
    async fn settle_and_report(&self, o: &PendingOutcome) {
        let (status, code) = if o.approve {
            (IntentStatus::Approved, None)
        } else {
            (IntentStatus::Failed, Some("card_declined"))
        };
        let store = &self.0.store;
        match store
            .settle_intent(&o.intent_id, status, code, self.now())
            .await
        {
            Ok((i, changed)) if changed || i.status == status => {
                self.report(i, &o.webhook_id).await
            }
            // Settled otherwise meanwhile (a ProcessPaymentResult): nothing of ours to report.
            Ok(_) => {}
            Err(ServiceError::IntentNotFound(_)) => {}
            Err(e) => {
                // Kept: the next start of a process on this store resumes it.
                tracing::warn!(payment_intent_id = %o.intent_id, error = %e, "recording the outcome failed");
                return;
            }
        }
        if let Err(e) = store.outcome_done(&o.intent_id).await {
            tracing::warn!(payment_intent_id = %o.intent_id, error = %e, "forgetting a reported outcome failed; it may be reported again");
        }
    }

    async fn report(&self, intent: Intent, id: &str) {
        let Some(sender) = &self.0.webhooks else {
            tracing::info!(payment_intent_id = %intent.id, status = ?intent.status, "outcome recorded (no --webhook-url)");
            return;
        };
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let body = webhook_payload(&intent, &now).to_string();
        match sender.deliver(id, body.as_bytes()).await {
            Ok(attempts) => {
                tracing::info!(payment_intent_id = %intent.id, webhook_id = %id, attempts, "webhook delivered")
            }
            Err(e) => {
                tracing::warn!(payment_intent_id = %intent.id, webhook_id = %id, error = %e, "webhook undeliverable; giving up")
            }
        }
    }
}
