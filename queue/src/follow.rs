//! Following events' departure logs, so that a status read with a position hint
//! ([`crate::token::PositionHint`]) is answered from memory: its position then, moved by every
//! departure logged since, is its position now, exactly as the store would rank it.
//!
//! One task per followed event reads the event's [`Pulse`] every tick (one small script call,
//! however many people poll) and keeps the last [`FOLLOW_ENTRIES`] log entries. An event is
//! followed from the first hint issued for it until nobody has used it for
//! [`FOLLOW_IDLE`]. A reader never waits for the store: what the follower cannot answer (the
//! event not followed yet, a snapshot older than two ticks, a hint older than the entries
//! kept, a departure that concerns the reader) is answered by the store as before.

use crate::clock::Clock;
use crate::ids::EventId;
use crate::model::{Departure, Pulse};
use crate::store::Store;
use crate::token::PositionHint;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// How often a followed event's pulse is read (default 250 ms, the WebSocket fan-out's tick):
/// a derived position is at most this much older than one read from the store.
pub const FOLLOW_TICK: Duration = Duration::from_millis(250);
/// An event nobody derived a position of for this long stops being followed (60 s).
pub const FOLLOW_IDLE: Duration = Duration::from_secs(60);
/// Log entries kept per followed event: the store's own log length (1,024), so a hint is
/// usable as long as the store could still describe what happened since.
pub const FOLLOW_ENTRIES: usize = 1024;

/// A position derived from the log, with the event's state as of the same pulse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// The position now (1-based).
    pub position: u64,
    /// The log sequence it is exact at.
    pub seq: u64,
    /// The pulse it was derived with (its `departures` are not kept: None).
    pub pulse: Pulse,
}

/// The departure logs of the events this process answers hinted status reads for. Cheap to
/// clone.
#[derive(Clone)]
pub struct Follower {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    tick: Duration,
    /// Read on every hinted status read and every hint issued, written only when an event
    /// starts or stops being followed: a read lock, so readers on many threads never queue.
    events: RwLock<HashMap<EventId, Arc<Followed>>>,
}

/// One followed event.
#[derive(Default)]
struct Followed {
    snap: RwLock<Option<Snapshot>>,
    /// The clock's ms at the last use: the task ends when it is FOLLOW_IDLE old.
    used_ms: AtomicU64,
}

struct Snapshot {
    read_ms: u64,
    pulse: Pulse,
    /// Entries `(first, pulse.seq]`, oldest first.
    first: u64,
    entries: VecDeque<Departure>,
}

impl Snapshot {
    /// The snapshot of a first read: where the log stands, nothing of what came before.
    fn start(p: Pulse, now_ms: u64) -> Self {
        Self {
            read_ms: now_ms,
            first: p.seq,
            entries: VecDeque::new(),
            pulse: Pulse {
                departures: None,
                ..p
            },
        }
    }

    /// Takes in a pulse read since this snapshot's sequence.
    fn advance(&mut self, p: Pulse, now_ms: u64) {
        match &p.departures {
            Some(d) if p.epoch == self.pulse.epoch && self.pulse.seq + d.len() as u64 == p.seq => {
                self.entries.extend(d.iter().copied());
                while self.entries.len() > FOLLOW_ENTRIES {
                    self.entries.pop_front();
                    self.first += 1;
                }
                self.pulse = Pulse {
                    departures: None,
                    ..p
                };
                self.read_ms = now_ms;
            }
            // Too far behind, or the event was recreated: start over from here.
            _ => *self = Self::start(p, now_ms),
        }
    }
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.events().len();
        f.debug_struct("Follower").field("events", &n).finish()
    }
}

impl Follower {
    /// A follower reading `store` every `tick`, timing by `clock`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, tick: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                tick,
                events: RwLock::new(HashMap::new()),
            }),
        }
    }

    fn events(&self) -> RwLockReadGuard<'_, HashMap<EventId, Arc<Followed>>> {
        self.inner.events.read().unwrap_or_else(|p| p.into_inner())
    }

    fn events_mut(&self) -> RwLockWriteGuard<'_, HashMap<EventId, Arc<Followed>>> {
        self.inner.events.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The followed event, its last use set to `now`.
    fn used(&self, event: &EventId, now: u64) -> Option<Arc<Followed>> {
        let f = self.events().get(event).cloned()?;
        f.used_ms.store(now, Ordering::Relaxed);
        Some(f)
    }

    /// Follows `event` from now on (a task on the current tokio runtime), if not yet.
    pub fn follow(&self, event: &EventId) {
        let now = self.inner.clock.now_ms();
        if self.used(event, now).is_some() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut events = self.events_mut();
        // Another thread may have started following between the two locks.
        if let Some(f) = events.get(event) {
            f.used_ms.store(now, Ordering::Relaxed);
            return;
        }
        let f = Arc::new(Followed::default());
        f.used_ms.store(now, Ordering::Relaxed);
        events.insert(event.clone(), f.clone());
        rt.spawn(self.clone().run(event.clone(), f));
    }

    async fn run(self, event: EventId, f: Arc<Followed>) {
        let mut interval = tokio::time::interval(self.inner.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let idle = FOLLOW_IDLE.as_millis() as u64;
        loop {
            interval.tick().await;
            let now = self.inner.clock.now_ms();
            if now.saturating_sub(f.used_ms.load(Ordering::Relaxed)) >= idle {
                let mut events = self.events_mut();
                if events.get(&event).is_some_and(|g| Arc::ptr_eq(g, &f)) {
                    events.remove(&event);
                }
                return;
            }
            // A failed read leaves the snapshot to age: readers then go to the store, which
            // reports the failure to them as it would without hints.
            let _ = Self::read(&self.inner, &event, &f).await;
        }
    }

    async fn read(inner: &Inner, event: &EventId, f: &Followed) -> crate::error::Result<()> {
        let since = f
            .snap
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|s| s.pulse.seq);
        let p = inner.store.pulse(event, since.unwrap_or(0)).await?;
        let now = inner.clock.now_ms();
        let mut snap = f.snap.write().unwrap_or_else(|p| p.into_inner());
        match snap.as_mut() {
            Some(s) if since == Some(s.pulse.seq) => s.advance(p, now),
            // The first read, or another read advanced the snapshot meanwhile (a test's
            // refresh beside the task): this pulse's entries may not follow on, so restart.
            _ => *snap = Some(Snapshot::start(p, now)),
        }
        Ok(())
    }

    /// Reads `event`'s pulse now, as the task does every tick (for tests, which step the
    /// clock and want the follower current without waiting for a tick). Follows the event.
    pub async fn refresh(&self, event: &EventId) -> crate::error::Result<()> {
        self.follow(event);
        let f = self.events().get(event).cloned();
        match f {
            Some(f) => Self::read(&self.inner, event, &f).await,
            None => Ok(()),
        }
    }

    /// The position now of the place `hint` describes, if the log followed here says it:
    /// None when the event is not followed yet (it is from now on), the last pulse is older
    /// than two ticks, the hint is older than the entries kept (or from another incarnation of
    /// the event's log), or an entry since concerns the place itself (it left the queue, or
    /// positions moved in a way the log does not describe).
    pub fn derive(&self, event: &EventId, hint: &PositionHint) -> Option<Derived> {
        let now = self.inner.clock.now_ms();
        let Some(f) = self.used(event, now) else {
            self.follow(event);
            return None;
        };
        let snap = f.snap.read().unwrap_or_else(|p| p.into_inner());
        let s = snap.as_ref()?;
        if now.saturating_sub(s.read_ms) > 2 * self.inner.tick.as_millis() as u64 {
            return None;
        }
        if hint.seq < s.first || hint.seq > s.pulse.seq {
            return None;
        }
        let skip = (hint.seq - s.first) as usize;
        let mut position = hint.position;
        for d in s.entries.iter().skip(skip) {
            position = d.apply(position)?;
        }
        Some(Derived {
            position,
            seq: s.pulse.seq,
            pulse: s.pulse.clone(),
        })
    }
}
