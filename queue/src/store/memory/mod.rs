//! The in-memory store: one process, same semantics as the Redis scripts, step for step.
//!
//! Each method mirrors its Lua script (same order of checks, same integer arithmetic) because
//! the property test requires identical answers from both. It scales like Redis does: a rank
//! is O(log n) (an order-statistic tree over the queue, `rank.rs`), and the idle sweep reads the
//! idle tickets off an index by last heartbeat, so it costs what expired, not the queue.
//!
//! Locking: each event has its own mutex, so events never contend, and the map of events is
//! locked only to find one. A call that is one Lua script holds its event's lock throughout,
//! which is what makes it atomic as the script is; each such call does O(log n) work a ticket it
//! touches. The two calls whose work has no small bound release the lock between chunks:
//! `sweep` (Redis splits it into budgeted calls too) and `places` (see there for how it stays
//! one consistent snapshot).

use super::{CodeHash, Holder, JoinRequest, StatusRequest, Store};
use crate::error::{QueueError, Result};
use crate::ids::EventId;
use crate::model::*;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

mod claims;
mod deadlines;
mod event;
mod rank;
#[cfg(test)]
mod tests;

use self::event::Ev;

/// Tickets handled per lock hold by `places` and `sweep`: short enough that a join or status
/// call waiting for the event's lock is delayed by tens of microseconds, not by the batch.
const CHUNK: usize = 256;

type Shared = Arc<Mutex<Ev>>;

/// Queue state in this process's memory (the embedded default).
#[derive(Debug, Default)]
pub struct MemoryStore {
    events: RwLock<HashMap<EventId, Shared>>,
    claims: Mutex<claims::Claims>,
}

/// A poisoned lock only means another caller panicked mid-step; the state stays usable.
fn lock(ev: &Mutex<Ev>) -> MutexGuard<'_, Ev> {
    ev.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, event: &EventId) -> Result<Shared> {
        let events = self.events.read().unwrap_or_else(|p| p.into_inner());
        events
            .get(event)
            .cloned()
            .ok_or_else(|| QueueError::EventNotFound(event.to_string()))
    }

    fn with<T>(&self, event: &EventId, f: impl FnOnce(&mut Ev) -> Result<T>) -> Result<T> {
        let ev = self.get(event)?;
        let mut ev = lock(&ev);
        f(&mut ev)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn configure_with_epoch(
        &self, event: &EventId, config: &EventConfig, epoch: u64, now_ms: u64,
    ) -> Result<bool> {
        // Stored as Redis stores it: a 0-bit challenge is no challenge.
        let normal;
        let config = if config.join_challenge.is_some() && config.challenge_bits() == 0 {
            normal = EventConfig {
                join_challenge: None,
                ..config.clone()
            };
            &normal
        } else {
            config
        };
        if let Ok(ev) = self.get(event) {
            lock(&ev).configure(config);
            return Ok(false);
        }
        let mut events = self.events.write().unwrap_or_else(|p| p.into_inner());
        match events.get(event) {
            // Created by a concurrent call between the two locks.
            Some(ev) => {
                lock(ev).configure(config);
                Ok(false)
            }
            None => {
                let ev = Ev::new(config.clone(), epoch, now_ms);
                events.insert(event.clone(), Arc::new(Mutex::new(ev)));
                Ok(true)
            }
        }
    }

    async fn info(&self, event: &EventId, now_ms: u64) -> Result<Option<EventInfo>> {
        match self.get(event) {
            Ok(ev) => Ok(Some(lock(&ev).info(now_ms))),
            Err(QueueError::EventNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn act(&self, event: &EventId, action: Action) -> Result<()> {
        self.with(event, |ev| {
            ev.act(action);
            Ok(())
        })
    }

    async fn events(&self) -> Result<Vec<EventId>> {
        let events = self.events.read().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<EventId> = events.keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }

    async fn add_access_codes(&self, event: &EventId, codes: &[CodeHash]) -> Result<u64> {
        self.with(event, |ev| Ok(ev.add_codes(codes)))
    }

    async fn revoke_access_codes(&self, event: &EventId, codes: &[CodeHash]) -> Result<u64> {
        self.with(event, |ev| Ok(ev.revoke_codes(codes)))
    }

    /// One join each, under one lock hold (one script in Redis); a batch refused for a code is
    /// refused before any of it is applied, as join.lua checks every code first.
    async fn join_many(
        &self, event: &EventId, joins: &[JoinRequest], now_ms: u64,
    ) -> Result<Vec<Joined>> {
        self.with(event, |ev| {
            ev.check_codes(joins)?;
            joins
                .iter()
                .map(|j| {
                    ev.join(
                        event.as_str(),
                        j.session,
                        j.pre_score,
                        j.access_code,
                        now_ms,
                    )
                })
                .collect()
        })
    }

    /// Under one lock hold, as status.lua reads a batch in one script. Tickets are unique
    /// within an event and a ticket is only ever its session's, so the ticket alone names the
    /// place here (Redis files places by session, see lib.lua).
    async fn status_many(
        &self, event: &EventId, reads: &[StatusRequest], now_ms: u64,
    ) -> Result<Vec<Place>> {
        self.with(event, |ev| {
            let places = reads
                .iter()
                .map(|r| ev.place(r.holder.ticket, r.heartbeat, now_ms));
            Ok(places.collect())
        })
    }

    async fn enter(&self, event: &EventId, holder: Holder, now_ms: u64) -> Result<EnterOutcome> {
        self.with(event, |ev| Ok(ev.enter(holder.ticket, now_ms)))
    }

    async fn leave(&self, event: &EventId, holder: Holder, _now_ms: u64) -> Result<bool> {
        self.with(event, |ev| Ok(ev.leave(holder.ticket, holder.session)))
    }

    async fn admit(&self, event: &EventId, now_ms: u64) -> Result<AdmitReport> {
        // One script in Redis: the whole tick under the lock. Its work is O(log n) for each
        // READY or ADMITTED slot that expired and for each ticket it pops.
        self.with(event, |ev| Ok(ev.admit(now_ms)))
    }

    /// A whole pass in one call (`done` is always true), in the order sweep.lua's pass takes:
    /// the idle tickets in queue order, each logged at its rank when it goes. The
    /// lock is held for one chunk at a time, so the pass interleaves with other calls the way
    /// Redis's budgeted calls do; each removal re-checks that its ticket is still idle then,
    /// exactly as a status call would before expiring it.
    async fn sweep(&self, event: &EventId, _budget: u32, now_ms: u64) -> Result<SweepReport> {
        let shared = self.get(event)?;
        let now_s = now_ms / 1000;
        // Idle means now_s - last >= idle (saturating), i.e. last <= now_s - idle.
        let upto = {
            let ev = lock(&shared);
            match u64::from(ev.cfg.idle_timeout_seconds) {
                0 => Some(u64::MAX),
                idle => now_s.checked_sub(idle),
            }
        };
        let Some(upto) = upto else {
            return Ok(SweepReport {
                expired: 0,
                done: true,
            });
        };
        // Read the candidates off the front of the heartbeat index, a chunk per lock hold.
        let mut stale: Vec<(u64, u64)> = Vec::new();
        loop {
            let before = stale.len();
            lock(&shared).idle_candidates(upto, stale.last().copied(), CHUNK, &mut stale);
            if stale.len() - before < CHUNK {
                break;
            }
            tokio::task::yield_now().await;
        }
        // In queue order (score, then ticket), a chunk of lookups per lock hold.
        let mut order: Vec<(i64, u64)> = Vec::with_capacity(stale.len());
        for (i, chunk) in stale.chunks(CHUNK).enumerate() {
            if i > 0 {
                tokio::task::yield_now().await;
            }
            let ev = lock(&shared);
            order.extend(
                chunk
                    .iter()
                    .filter_map(|&(_, t)| ev.waiting.get(&t).map(|w| (w.score, t))),
            );
        }
        order.sort_unstable();
        let tickets: Vec<u64> = order.into_iter().map(|(_, t)| t).collect();
        let mut expired = 0;
        for (i, chunk) in tickets.chunks(CHUNK).enumerate() {
            if i > 0 {
                tokio::task::yield_now().await;
            }
            let mut ev = lock(&shared);
            for &t in chunk {
                let Some(w) = ev.waiting.get(&t).copied() else {
                    continue; // admitted, left or expired by a status call meanwhile
                };
                if !ev.idle(w.last, now_s) {
                    continue; // heartbeat meanwhile
                }
                if let Some(rank) = ev.rank_of(t) {
                    ev.drop_waiting(t, rank);
                    expired += 1;
                }
            }
        }
        Ok(SweepReport {
            expired,
            done: true,
        })
    }

    async fn pulse(&self, event: &EventId, since: u64) -> Result<Pulse> {
        self.with(event, |ev| Ok(ev.pulse(since)))
    }

    /// places.lua is one atomic script; here the tickets are read a chunk per lock hold, and the
    /// answers are kept only if nothing that could move another ticket happened between chunks
    /// (the event's stamp: departures and every non-join change). Joins may interleave freely:
    /// a join never moves anyone already waiting. Otherwise the batch is read again, chunked,
    /// up to `PLACES_TRIES` times, then in one hold (at most `PLACES_BATCH` tickets, O(log n)
    /// each) so that a busy event cannot starve it. Re-reading is safe: at the same `now` a
    /// place read twice gives the same answer, its heartbeat and lazy expiry being done once.
    async fn places(
        &self, event: &EventId, holders: &[Holder], heartbeat: bool, now_ms: u64,
    ) -> Result<(u64, Vec<Place>)> {
        const PLACES_TRIES: usize = 3;
        let shared = self.get(event)?;
        let mut out = Vec::with_capacity(holders.len());
        'tries: for _ in 0..PLACES_TRIES {
            out.clear();
            let mut stamp = None;
            for chunk in holders.chunks(CHUNK) {
                let mut ev = lock(&shared);
                if stamp.is_some_and(|s| s != ev.stamp()) {
                    continue 'tries;
                }
                out.extend(chunk.iter().map(|h| ev.place(h.ticket, heartbeat, now_ms)));
                stamp = Some(ev.stamp());
            }
            let departure_seq = match stamp {
                Some((departure_seq, _)) => departure_seq,
                None => lock(&shared).departure_seq,
            };
            return Ok((departure_seq, out));
        }
        let mut ev = lock(&shared);
        out.clear();
        out.extend(
            holders
                .iter()
                .map(|h| ev.place(h.ticket, heartbeat, now_ms)),
        );
        Ok((ev.departure_seq, out))
    }

    async fn resume(&self, event: &EventId, from_ms: u64, until_ms: u64) -> Result<bool> {
        self.with(event, |ev| Ok(ev.resume(from_ms, until_ms)))
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn claim_once(
        &self, event: &EventId, id: &str, until_ms: u64, now_ms: u64,
    ) -> Result<bool> {
        super::check_claim_id(id)?;
        let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
        claims.claim(event, id, until_ms, now_ms)
    }
}
