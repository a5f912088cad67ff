//! The in-memory store: one process, same semantics as the Redis scripts, step for step.
//!
//! Each method mirrors its Lua script (same order of checks, same integer arithmetic) because
//! the property test requires identical answers from both. Ranks cost O(n) here; this store is
//! for demos, tests and single-node trials, not for a million waiting users.

use super::{Store, DLOG_MAX};
use crate::error::{QueueError, Result};
use crate::ids::{EventId, SessionKey};
use crate::model::*;
use async_trait::async_trait;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

/// A zset member as Redis orders it: by score, then by the member's bytes (decimal ticket).
type Member = (i64, String);

#[derive(Debug)]
struct Ev {
    cfg: EventConfig,
    stopped: bool,
    sold: bool,
    rate_m: i64,
    tokens: i64,
    tb_ts: u64,
    admitted: u64,
    entered: u64,
    w_start: u64,
    w_cur: i64,
    w_prev: i64,
    seq: u64,
    queue: BTreeSet<Member>,
    score: HashMap<u64, i64>,
    heartbeat: HashMap<u64, u64>,
    ready: HashMap<u64, u64>,
    active: HashMap<u64, u64>,
    sessions: HashMap<SessionKey, u64>,
    dlog: VecDeque<Departure>,
    dseq: u64,
}

impl Ev {
    fn new(cfg: EventConfig, now: u64) -> Self {
        Self {
            cfg,
            stopped: false,
            sold: false,
            rate_m: -1,
            tokens: 0,
            tb_ts: now,
            admitted: 0,
            entered: 0,
            w_start: 0,
            w_cur: 0,
            w_prev: -1,
            seq: 0,
            queue: BTreeSet::new(),
            score: HashMap::new(),
            heartbeat: HashMap::new(),
            ready: HashMap::new(),
            active: HashMap::new(),
            sessions: HashMap::new(),
            dlog: VecDeque::new(),
            dseq: 0,
        }
    }

    fn pre_queue(&self, now: u64) -> bool {
        self.cfg.opens_at_ms().is_some_and(|o| now < o)
    }

    fn member(&self, t: u64) -> Option<Member> {
        self.score.get(&t).map(|s| (*s, t.to_string()))
    }

    /// Mirror of `log_departure` in lib.lua.
    fn log_departure(&mut self, d: Departure) {
        self.dlog.push_front(d);
        self.dlog.truncate(DLOG_MAX);
        self.dseq += 1;
    }

    fn rank(&self, m: &Member) -> u64 {
        self.queue.range(..m.clone()).count() as u64
    }

    /// Removes a waiting ticket at 0-based `rank` (mirror of `drop_waiting`).
    fn drop_waiting(&mut self, t: u64, rank: u64) {
        if let Some(m) = self.member(t) {
            self.queue.remove(&m);
            self.score.remove(&t);
        }
        self.heartbeat.remove(&t);
        self.log_departure(Departure::Rank(rank + 1));
    }

    fn place_of(&self, t: u64, status: Status, position: u64, expires_at_ms: u64) -> Place {
        Place {
            ticket: t,
            status,
            position,
            expires_at_ms,
            measured_rate_milli: self.rate_m,
            admit_per_second: self.cfg.admit_per_second,
            stopped: self.stopped,
            opens_at_ms: self.cfg.opens_at_ms(),
        }
    }

    /// Mirror of `place` in lib.lua.
    fn place(&mut self, t: u64, heartbeat: bool, now: u64) -> Place {
        let now_s = now / 1000;
        let idle = u64::from(self.cfg.idle_timeout_seconds);
        if let Some(m) = self.member(t) {
            let rank = self.rank(&m);
            let last = self.heartbeat.get(&t).copied();
            let last = match last {
                Some(l) if now_s.saturating_sub(l) < idle => l,
                _ => {
                    self.drop_waiting(t, rank);
                    return self.place_of(t, Status::Expired, 0, 0);
                }
            };
            if self.sold {
                return self.place_of(t, Status::SoldOut, 0, 0);
            }
            let mut last = last;
            if heartbeat && last != now_s {
                self.heartbeat.insert(t, now_s);
                last = now_s;
            }
            let expires = (last + idle) * 1000;
            if self.pre_queue(now) {
                return self.place_of(t, Status::PreQueue, 0, expires);
            }
            return self.place_of(t, Status::Waiting, rank + 1, expires);
        }
        if let Some(&deadline) = self.ready.get(&t) {
            if deadline <= now {
                self.ready.remove(&t);
                return self.place_of(t, Status::Expired, 0, 0);
            }
            if self.sold {
                return self.place_of(t, Status::SoldOut, 0, 0);
            }
            return self.place_of(t, Status::Ready, 0, deadline);
        }
        match self.active.get(&t) {
            Some(&until) if until > now => self.place_of(t, Status::Admitted, 0, until),
            _ => self.place_of(t, Status::Expired, 0, 0),
        }
    }
}

/// Queue state in this process's memory (the embedded default).
#[derive(Debug, Default)]
pub struct MemoryStore {
    events: Mutex<HashMap<EventId, Ev>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, event: &EventId, f: impl FnOnce(&mut Ev) -> Result<T>) -> Result<T> {
        // A poisoned lock only means another caller panicked mid-step; the maps stay usable.
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        match events.get_mut(event) {
            Some(ev) => f(ev),
            None => Err(QueueError::EventNotFound(event.to_string())),
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn configure(&self, event: &EventId, config: &EventConfig, now_ms: u64) -> Result<bool> {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        match events.get_mut(event) {
            Some(ev) => {
                ev.cfg = config.clone();
                Ok(false)
            }
            None => {
                events.insert(event.clone(), Ev::new(config.clone(), now_ms));
                Ok(true)
            }
        }
    }

    async fn info(&self, event: &EventId, now_ms: u64) -> Result<Option<EventInfo>> {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        Ok(events.get(event).map(|ev| EventInfo {
            config: ev.cfg.clone(),
            stopped: ev.stopped,
            sold_out: ev.sold,
            measured_rate_milli: ev.rate_m,
            stats: EventStats {
                waiting: ev.queue.len() as u64,
                ready: ev.ready.values().filter(|&&d| d > now_ms).count() as u64,
                active: ev.active.values().filter(|&&d| d > now_ms).count() as u64,
                joined_total: ev.seq,
                admitted_total: ev.admitted,
                entered_total: ev.entered,
            },
        }))
    }

    async fn act(&self, event: &EventId, action: Action) -> Result<()> {
        self.with(event, |ev| {
            match action {
                Action::StopAdmissions => ev.stopped = true,
                Action::ResumeAdmissions => ev.stopped = false,
                Action::SoldOut => ev.sold = true,
            }
            Ok(())
        })
    }

    async fn events(&self) -> Result<Vec<EventId>> {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<EventId> = events.keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }

    async fn join(
        &self,
        event: &EventId,
        session: SessionKey,
        pre_score: i64,
        now_ms: u64,
    ) -> Result<Joined> {
        self.with(event, |ev| {
            if ev.sold {
                return Err(QueueError::EventClosed(event.to_string()));
            }
            if let Some(&old) = ev.sessions.get(&session) {
                let p = ev.place(old, true, now_ms);
                if p.status != Status::Expired {
                    return Ok(Joined {
                        created: false,
                        place: p,
                    });
                }
            }
            ev.seq += 1;
            let t = ev.seq;
            let score = if ev.pre_queue(now_ms) {
                pre_score
            } else {
                t as i64
            };
            ev.queue.insert((score, t.to_string()));
            ev.score.insert(t, score);
            ev.sessions.insert(session, t);
            ev.heartbeat.insert(t, now_ms / 1000);
            Ok(Joined {
                created: true,
                place: ev.place(t, false, now_ms),
            })
        })
    }

    async fn status(
        &self,
        event: &EventId,
        ticket: u64,
        heartbeat: bool,
        now_ms: u64,
    ) -> Result<Place> {
        self.with(event, |ev| Ok(ev.place(ticket, heartbeat, now_ms)))
    }

    async fn enter(&self, event: &EventId, ticket: u64, now_ms: u64) -> Result<Entry> {
        self.with(event, |ev| {
            if let Some(&until) = ev.active.get(&ticket) {
                if until > now_ms {
                    return Ok(Entry::Granted(ev.place_of(
                        ticket,
                        Status::Admitted,
                        0,
                        until,
                    )));
                }
            }
            let p = ev.place(ticket, true, now_ms);
            if p.status != Status::Ready {
                return Ok(Entry::Refused(p));
            }
            let until = now_ms + u64::from(ev.cfg.admission_ttl_seconds) * 1000;
            ev.ready.remove(&ticket);
            ev.active.insert(ticket, until);
            ev.entered += 1;
            Ok(Entry::Granted(ev.place_of(
                ticket,
                Status::Admitted,
                0,
                until,
            )))
        })
    }

    async fn leave(
        &self,
        event: &EventId,
        ticket: u64,
        session: SessionKey,
        _now_ms: u64,
    ) -> Result<bool> {
        self.with(event, |ev| {
            let ready = ev.ready.remove(&ticket).is_some();
            let active = ev.active.remove(&ticket).is_some();
            let waiting = match ev.member(ticket) {
                Some(m) => {
                    let rank = ev.rank(&m);
                    ev.drop_waiting(ticket, rank);
                    true
                }
                None => false,
            };
            if ev.sessions.get(&session) == Some(&ticket) {
                ev.sessions.remove(&session);
            }
            Ok(waiting || ready || active)
        })
    }

    async fn admit(&self, event: &EventId, now_ms: u64) -> Result<AdmitReport> {
        self.with(event, |ev| {
            let now = now_ms;
            let before = ev.ready.len();
            ev.ready.retain(|_, d| *d > now);
            let ready_expired = (before - ev.ready.len()) as u64;
            ev.active.retain(|_, d| *d > now);
            let aps = i64::from(ev.cfg.admit_per_second);
            let dt = now.saturating_sub(ev.tb_ts);
            let cap = aps * 1000;
            if now > ev.tb_ts {
                ev.tokens = cap.min(ev.tokens + (now - ev.tb_ts) as i64 * aps);
                ev.tb_ts = now;
            }
            ev.tokens = ev.tokens.min(cap);
            let mut n: i64 = 0;
            let paused = ev.stopped || ev.sold || aps == 0 || ev.pre_queue(now);
            if !paused {
                let room =
                    i64::from(ev.cfg.max_active) - ev.ready.len() as i64 - ev.active.len() as i64;
                let want = (ev.tokens / 1000).min(room);
                let deadline = now + u64::from(ev.cfg.ready_timeout_seconds) * 1000;
                let idle = u64::from(ev.cfg.idle_timeout_seconds);
                let now_s = now / 1000;
                let mut gone = 0;
                while want > n {
                    let Some(first) = ev.queue.pop_first() else {
                        break;
                    };
                    gone += 1;
                    let t: u64 = first
                        .1
                        .parse()
                        .map_err(|_| QueueError::Protocol("ticket".into()))?;
                    ev.score.remove(&t);
                    let last = ev.heartbeat.remove(&t);
                    if last.is_some_and(|l| now_s.saturating_sub(l) < idle) {
                        ev.ready.insert(t, deadline);
                        n += 1;
                    }
                }
                if gone > 0 {
                    ev.log_departure(Departure::Head(gone));
                }
                ev.tokens -= n * 1000;
                ev.admitted += n as u64;
            }
            let waiting = ev.queue.len() as u64;
            // Mirror of the sliding-window rate in admit.lua (f64 where Lua divides).
            const W: u64 = 30_000;
            if ev.w_start == 0 {
                (ev.w_start, ev.w_cur, ev.w_prev) = (now, 0, -1);
            }
            if waiting == 0 && n == 0 {
                ev.w_start += dt;
            } else {
                ev.w_cur += n;
            }
            let mut el = now.saturating_sub(ev.w_start);
            if el >= W {
                (ev.w_prev, ev.w_cur, ev.w_start, el) = (ev.w_cur, 0, now, 0);
            }
            if ev.w_prev >= 0 {
                let x = ev.w_prev as f64 * (W - el) as f64 + ev.w_cur as f64 * W as f64;
                ev.rate_m = (x / 900.0).floor() as i64;
            } else if el >= 1000 {
                ev.rate_m = (ev.w_cur as f64 * 1_000_000.0 / el as f64).floor() as i64;
            }
            Ok(AdmitReport {
                admitted: n as u64,
                ready_expired,
                waiting,
                ready: ev.ready.len() as u64,
                active: ev.active.len() as u64,
            })
        })
    }

    async fn sweep(&self, event: &EventId, _budget: u32, now_ms: u64) -> Result<SweepReport> {
        self.with(event, |ev| {
            let now_s = now_ms / 1000;
            let idle = u64::from(ev.cfg.idle_timeout_seconds);
            let mut stale: Vec<u64> = ev
                .heartbeat
                .iter()
                .filter(|(_, &l)| now_s.saturating_sub(l) >= idle)
                .map(|(&t, _)| t)
                .collect();
            stale.sort_unstable();
            for t in &stale {
                match ev.member(*t) {
                    Some(m) => {
                        let rank = ev.rank(&m);
                        ev.drop_waiting(*t, rank);
                    }
                    None => {
                        ev.heartbeat.remove(t);
                    }
                }
            }
            Ok(SweepReport {
                expired: stale.len() as u64,
                done: true,
            })
        })
    }

    async fn pulse(&self, event: &EventId, since: u64) -> Result<Pulse> {
        self.with(event, |ev| {
            let n = ev.dseq.checked_sub(since).map(|n| n as usize);
            let departures = match n {
                Some(n) if n <= DLOG_MAX => Some(ev.dlog.iter().take(n).rev().copied().collect()),
                _ => None,
            };
            Ok(Pulse {
                seq: ev.dseq,
                departures,
                stopped: ev.stopped,
                sold_out: ev.sold,
                opens_at_ms: ev.cfg.opens_at_ms(),
                measured_rate_milli: ev.rate_m,
                admit_per_second: ev.cfg.admit_per_second,
                idle_timeout_seconds: ev.cfg.idle_timeout_seconds,
            })
        })
    }

    async fn places(
        &self,
        event: &EventId,
        tickets: &[u64],
        heartbeat: bool,
        now_ms: u64,
    ) -> Result<(u64, Vec<Place>)> {
        self.with(event, |ev| {
            let places = tickets
                .iter()
                .map(|&t| ev.place(t, heartbeat, now_ms))
                .collect();
            Ok((ev.dseq, places))
        })
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
