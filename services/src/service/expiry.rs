//! Hold expiry: the sweep that expires holds past their deadline, and the emergency
//! cancellation of every pending hold.

use super::Backends;
use crate::error::Result;
use crate::model::check_event_id;
use std::time::Duration;

/// Holds expired per event by one step of the sweep.
const EXPIRY_BATCH: usize = 1000;

impl Backends {
    /// Expires every hold past its deadline, in every event; how many.
    pub async fn expire_due(&self) -> Result<usize> {
        let now = self.now();
        let mut n = 0;
        for ev in self.0.store.events().await? {
            loop {
                let ids = self.0.store.expire_due(&ev, now, EXPIRY_BATCH).await?;
                n += ids.len();
                for id in &ids {
                    tracing::info!(reservation_id = %id, "hold expired");
                }
                if ids.len() < EXPIRY_BATCH {
                    break;
                }
            }
        }
        Ok(n)
    }

    /// Runs [`Backends::expire_due`] every `every` until `shutdown` resolves.
    pub async fn run_expiry(
        &self, every: Duration, shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => {
                    if let Err(e) = self.expire_due().await {
                        tracing::warn!(error = %e, "expiry sweep failed");
                    }
                }
            }
        }
    }

    /// Cancels every pending hold of `event` (of every event when empty); how many.
    pub async fn cancel_all_holds(&self, event: &str) -> Result<usize> {
        let events = if event.is_empty() {
            self.0.store.events().await?
        } else {
            check_event_id(event)?;
            vec![event.to_owned()]
        };
        let mut n = 0;
        for ev in events {
            loop {
                let ids = self
                    .0
                    .store
                    .cancel_holds(&ev, self.now(), EXPIRY_BATCH)
                    .await?;
                n += ids.len();
                if ids.len() < EXPIRY_BATCH {
                    break;
                }
            }
        }
        Ok(n)
    }
}
