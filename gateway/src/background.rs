//! The background loops every replica runs: the admission tick and the idle sweep. Both act
//! through the shared store, so any number of replicas admit at the configured rate, not a
//! multiple of it. Both pause while MAINTENANCE_MODE is in force; when it ends, the store is
//! told how long the queue stood still ([`queue::store::Store::resume`], in `admin.rs`), so
//! nobody is expired for not polling a queue API that answered 503.

use crate::metrics::Metrics;
use crate::system::SystemModes;
use queue::ids::EventId;
use queue::room::WaitingRoom;
use queue::QueueError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the list of events is re-read from the store.
const EVENT_REFRESH: Duration = Duration::from_secs(1);
/// Heartbeat buckets (64 tickets each) scanned per sweep step: 1,024 places, about 2 ms of
/// Redis on a 1,000,000-user queue (4,096 took about 12 ms, measured: docs/benchmarks.md, "The
/// idle sweep"). A step is one script call, so this bounds how long a sweep holds the Redis
/// thread, and with it every other request of that primary, at the same total work.
const SWEEP_BUDGET: u32 = 16;

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

/// The rounds of a loop: a tick, then the store's events (re-read at most every
/// [`EVENT_REFRESH`]) to walk, until shutdown; with `paused_by`, no round while
/// MAINTENANCE_MODE is in force.
struct Rounds {
    ticker: Ticker,
    room: WaitingRoom,
    paused_by: Option<Arc<SystemModes>>,
    events: Vec<EventId>,
    read_at: Option<Instant>,
    quiet: Quiet,
}

impl Rounds {
    fn new(
        room: &WaitingRoom, every: Duration, paused_by: Option<Arc<SystemModes>>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            ticker: Ticker::new(every, shutdown),
            room: room.clone(),
            paused_by,
            events: Vec::new(),
            read_at: None,
            quiet: Quiet::default(),
        }
    }

    /// Waits for the next round and refreshes [`Rounds::events`]: false once shutdown is asked
    /// for.
    async fn next(&mut self) -> bool {
        while self.ticker.tick().await {
            if self.paused_by.as_ref().is_some_and(|s| s.maintenance()) {
                continue;
            }
            if self.read_at.is_none_or(|t| t.elapsed() >= EVENT_REFRESH) {
                self.read_at = Some(Instant::now());
                match self.room.store().events().await {
                    Ok(list) => {
                        self.events = list;
                        self.quiet.report("event list", Ok(()));
                    }
                    Err(e) => self.quiet.report("event list", Err(e)),
                }
            }
            return true;
        }
        false
    }
}

/// Whether `info`'s configuration holds admissions on purpose at `now_ms`: STOP_ADMISSIONS, sold
/// out, a rate of 0, or an `opens_at` still ahead (the pre-queue). Full capacity is not a hold:
/// it ends by itself, and `waiting_room_max_active` shows it.
pub fn admissions_held(info: &queue::model::EventInfo, now_ms: u64) -> bool {
    let not_open = info.config.opens_at.is_some_and(|t| {
        let opens_ms = t.unix_timestamp_nanos() / 1_000_000;
        opens_ms > i128::from(now_ms)
    });
    info.stopped || info.sold_out || info.config.admit_per_second == 0 || not_open
}

/// Sets the event's `waiting_room_admissions_held` and `waiting_room_max_active` gauges (once a
/// second, from the event's stored configuration), so that an alert can tell a stalled admission
/// loop from an operator's pause. A failed read leaves the last values.
async fn held(room: &WaitingRoom, metrics: &Metrics, ev: &EventId) {
    if let Ok(info) = room.info(ev.as_str()).await {
        let labels = Metrics::event(ev.as_str());
        let held = admissions_held(&info, room.now_ms());
        metrics
            .admissions_held
            .get_or_create(&labels)
            .set(i64::from(held));
        metrics
            .max_active
            .get_or_create(&labels)
            .set(i64::from(info.config.max_active));
    }
}

/// Refreshes every event's `waiting_room_admissions_held` and `waiting_room_max_active` once a
/// second until `shutdown` turns true. Its own task, not part of the admission tick: a read that
/// waits on a failing Redis primary must not delay the ticks of the other events.
pub async fn held_loop(room: WaitingRoom, metrics: Arc<Metrics>, shutdown: watch::Receiver<bool>) {
    let mut rounds = Rounds::new(&room, EVENT_REFRESH, None, shutdown);
    while rounds.next().await {
        futures::future::join_all(rounds.events.iter().map(|ev| held(&room, &metrics, ev))).await;
    }
}

/// Runs admission ticks every `tick` until `shutdown` turns true.
pub async fn admit_loop(
    room: WaitingRoom, metrics: Arc<Metrics>, tick: Duration, system: Arc<SystemModes>,
    shutdown: watch::Receiver<bool>,
) {
    // Nobody can enter during maintenance: a READY slot granted now would lapse unused.
    let mut rounds = Rounds::new(&room, tick, Some(system), shutdown);
    while rounds.next().await {
        for ev in &rounds.events {
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
                    rounds.quiet.report("admission tick", Ok(()));
                }
                Err(e) => rounds.quiet.report("admission tick", Err(e)),
            }
        }
    }
}

/// How often a paced sweep takes its next steps.
const SWEEP_STEP: Duration = Duration::from_millis(250);
/// Places one sweep step reads: `SWEEP_BUDGET` heartbeat buckets of 64 tickets.
const PLACES_PER_STEP: u64 = SWEEP_BUDGET as u64 * 64;

/// Sweep steps (of [`PLACES_PER_STEP`] places) per tick of length `step` that walk at most
/// `per_second` places a second, at least one; `u32::MAX` (a whole pass per tick) for 0.
fn steps_per_tick(per_second: u32, step: Duration) -> u32 {
    if per_second == 0 {
        return u32::MAX;
    }
    let places = f64::from(per_second) * step.as_secs_f64();
    ((places / PLACES_PER_STEP as f64).floor() as u32).max(1)
}

/// One event's sweep: whether a pass is under way, and when the next may start.
struct Pass {
    walking: bool,
    next: tokio::time::Instant,
}

/// Sweeps idle users out of every event until `shutdown` turns true: a pass over each event's
/// queue starts every `every`, and walks at most `per_second` places a second (0: a whole pass at
/// once). A pass walks the whole queue whether or not anyone is idle (with an older event's hash
/// heartbeat buckets about 1 µs of Redis CPU a place with 5,000,000 waiting; string buckets cost
/// about a fifteenth of that in instructions), so unpaced, a large queue's pass arrived as
/// seconds of Redis time at once and took about 40 % off the joins/s of that moment
/// (bench-queue's prefill step); paced, the same work is spread thin. The cursor is in the store, so a pass resumes
/// where it stopped, also across replicas.
pub async fn sweep_loop(
    room: WaitingRoom, every: Duration, per_second: u32, system: Arc<SystemModes>,
    shutdown: watch::Receiver<bool>,
) {
    let step = every.min(SWEEP_STEP);
    let steps = steps_per_tick(per_second, step);
    // Waiting users cannot poll during maintenance: nobody is idle by their own doing.
    let mut rounds = Rounds::new(&room, step, Some(system), shutdown);
    let mut passes: std::collections::HashMap<EventId, Pass> = Default::default();
    while rounds.next().await {
        passes.retain(|ev, _| rounds.events.contains(ev));
        let now = tokio::time::Instant::now();
        for ev in &rounds.events {
            let pass = passes.entry(ev.clone()).or_insert(Pass {
                walking: false,
                next: now,
            });
            if !pass.walking {
                if now < pass.next {
                    continue;
                }
                pass.walking = true;
                pass.next = now + every;
            }
            let mut expired = 0;
            for _ in 0..steps {
                match room.sweep_step(ev, SWEEP_BUDGET).await {
                    Ok(r) => {
                        expired += r.expired;
                        rounds.quiet.report("sweep", Ok(()));
                        if r.done {
                            pass.walking = false;
                            break;
                        }
                    }
                    Err(e) => {
                        rounds.quiet.report("sweep", Err(e));
                        break;
                    }
                }
            }
            if expired > 0 {
                tracing::debug!(event = %ev, expired, "idle users swept");
            }
        }
    }
}

/// An interval (a late tick is delayed, not bunched) that ends when `shutdown` turns true:
/// `while ticker.tick().await { .. }`.
struct Ticker {
    interval: tokio::time::Interval,
    shutdown: watch::Receiver<bool>,
}

impl Ticker {
    fn new(every: Duration, shutdown: watch::Receiver<bool>) -> Self {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self { interval, shutdown }
    }

    /// Waits for the next tick: false once shutdown is asked for.
    async fn tick(&mut self) -> bool {
        tokio::select! {
            _ = self.interval.tick() => true,
            _ = self.shutdown.changed() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{admissions_held, steps_per_tick, PLACES_PER_STEP};
    use queue::model::{EventConfig, EventInfo, EventStats};
    use std::time::Duration;

    #[test]
    fn a_paced_sweep_walks_its_rate_in_whole_steps() {
        let quarter = Duration::from_millis(250);
        // 50,000 places/s in quarter seconds: 12,500 places, twelve steps of 1,024.
        assert_eq!(steps_per_tick(50_000, quarter), 12);
        // A rate below one step a tick still makes progress.
        assert_eq!(steps_per_tick(1, quarter), 1);
        // 0: unpaced, a whole pass each tick.
        assert_eq!(steps_per_tick(0, quarter), u32::MAX);
        // The walk per second stays within the rate.
        let per_s = u64::from(steps_per_tick(1_000_000, quarter)) * PLACES_PER_STEP * 4;
        assert!(per_s <= 1_000_000 && per_s > 900_000, "{per_s}");
    }

    fn info(rate: u32, opens_at_ms: Option<i64>) -> EventInfo {
        let config: EventConfig =
            serde_json::from_value(serde_json::json!({"admit_per_second": rate, "max_active": 5}))
                .unwrap();
        EventInfo {
            config: EventConfig {
                opens_at: opens_at_ms.map(|ms| {
                    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                        .unwrap()
                }),
                ..config
            },
            stopped: false,
            sold_out: false,
            measured_rate_milli: -1,
            stats: EventStats::default(),
        }
    }

    #[test]
    fn only_a_deliberate_hold_counts() {
        let now = 1_800_000_000_000;
        assert!(!admissions_held(&info(10, None), now));
        assert!(!admissions_held(&info(10, Some(now as i64 - 1)), now));
        assert!(admissions_held(&info(10, Some(now as i64 + 1_000)), now));
        assert!(admissions_held(&info(0, None), now));
        assert!(admissions_held(
            &EventInfo {
                stopped: true,
                ..info(10, None)
            },
            now
        ));
        assert!(admissions_held(
            &EventInfo {
                sold_out: true,
                ..info(10, None)
            },
            now
        ));
    }
}
