//! The background loops every replica runs: the admission tick and the idle sweep. Both act
//! through the shared store, so any number of replicas admit at the configured rate, not a
//! multiple of it.

use crate::metrics::Metrics;
use queue::ids::EventId;
use queue::room::WaitingRoom;
use queue::QueueError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the list of events is re-read from the store.
const EVENT_REFRESH: Duration = Duration::from_secs(1);
/// Heartbeat buckets (128 tickets each) scanned per sweep step.
const SWEEP_BUDGET: u32 = 64;

/// Logs a store failure once when it starts, not on every tick while it lasts.
#[derive(Default)]
struct Quiet {
    failing: bool,
}

impl Quiet {
    fn report(&mut self, what: &str, r: Result<(), QueueError>) {
        match r {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!(what, "recovered");
            }
            Ok(()) | Err(QueueError::EventNotFound(_)) => {}
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::warn!(what, error = %e, "failing (logged once until it recovers)");
            }
            Err(_) => {}
        }
    }
}

async fn events(
    room: &WaitingRoom,
    cached: &mut Vec<EventId>,
    at: &mut Option<Instant>,
    quiet: &mut Quiet,
) {
    if at.is_some_and(|t| t.elapsed() < EVENT_REFRESH) {
        return;
    }
    *at = Some(Instant::now());
    match room.store().events().await {
        Ok(list) => {
            *cached = list;
            quiet.report("event list", Ok(()));
        }
        Err(e) => quiet.report("event list", Err(e)),
    }
}

/// Runs admission ticks every `tick` until `shutdown` turns true.
pub async fn admit_loop(
    room: WaitingRoom,
    metrics: Arc<Metrics>,
    tick: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut list, mut at, mut quiet) = (Vec::new(), None, Quiet::default());
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => break,
        }
        events(&room, &mut list, &mut at, &mut quiet).await;
        for ev in &list {
            let labels = Metrics::event(ev.as_str());
            match room.admit(ev).await {
                Ok(r) => {
                    metrics.admissions.get_or_create(&labels).inc_by(r.admitted);
                    metrics
                        .queue_depth
                        .get_or_create(&labels)
                        .set(r.waiting as i64);
                    metrics.ready.get_or_create(&labels).set(r.ready as i64);
                    metrics.active.get_or_create(&labels).set(r.active as i64);
                    quiet.report("admission tick", Ok(()));
                }
                Err(e) => quiet.report("admission tick", Err(e)),
            }
        }
    }
}

/// Sweeps idle users out of every event every `every` until `shutdown` turns true.
pub async fn sweep_loop(room: WaitingRoom, every: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut list, mut at, mut quiet) = (Vec::new(), None, Quiet::default());
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => break,
        }
        events(&room, &mut list, &mut at, &mut quiet).await;
        for ev in &list {
            match room.sweep(ev, SWEEP_BUDGET).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::debug!(event = %ev, expired = n, "idle users swept");
                    }
                    quiet.report("sweep", Ok(()));
                }
                Err(e) => quiet.report("sweep", Err(e)),
            }
        }
    }
}
