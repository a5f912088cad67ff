//! One event's state and the steps that mirror the Lua scripts, each on `&mut Ev` under the
//! event's own lock (see `mod.rs` for the locking).

use super::deadlines::Deadlines;
use super::rank::{Member, RankTree};
use crate::error::{QueueError, Result};
use crate::ids::SessionKey;
use crate::model::*;
use crate::store::{CodeHash, JoinRequest, DLOG_MAX, MAX_TICKETS, PRIORITY_DRAW};
use std::collections::{BTreeSet, HashMap, VecDeque};

mod admit;

/// A waiting ticket's score (its place in the queue) and last heartbeat, unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Waiting {
    pub score: i64,
    pub last: u64,
}

/// One event, as the Redis store keeps it in the hash `wr:{id}:ev` and its keys. Fields that
/// mirror a hash field are named for what they hold; the hash's own (shorter) field names are
/// data in Redis and stay: `measured_rate_milli` is `rate_m`, `tokens` is `tokens`,
/// `bucket_refilled_ms` is `tb_ts`, `window_start_ms` is `w_start`, `window_admitted` is
/// `w_cur`, `prev_window_admitted` is `w_prev` and `departure_seq` is `dseq`.
#[derive(Debug)]
pub(super) struct Ev {
    pub cfg: EventConfig,
    pub stopped: bool,
    pub sold: bool,
    /// The measured admission rate in milli-admissions per second, -1 before a measurement.
    pub measured_rate_milli: i64,
    /// The token bucket, in milli-tokens (capacity: one second of admissions).
    tokens: i64,
    /// When the bucket was last refilled (Unix ms); time only moves it forward.
    bucket_refilled_ms: u64,
    admitted: u64,
    entered: u64,
    /// Start of the current 30-second rate window (Unix ms; 0 before the first tick).
    window_start_ms: u64,
    /// Admissions in the current rate window.
    window_admitted: i64,
    /// Admissions in the previous rate window, -1 while there was none.
    prev_window_admitted: i64,
    seq: u64,
    /// The waiting queue in Redis's zset order, with O(log n) rank.
    queue: RankTree,
    /// Every ticket in `queue`, with its score and last heartbeat.
    pub waiting: HashMap<u64, Waiting>,
    /// (last heartbeat second, ticket) of every waiting ticket: the sweep reads the idle ones
    /// from the front instead of scanning everyone.
    pub by_heartbeat: BTreeSet<(u64, u64)>,
    ready: Deadlines,
    active: Deadlines,
    sessions: HashMap<SessionKey, u64>,
    dlog: VecDeque<Departure>,
    /// The departure log's sequence number (entries ever logged).
    pub departure_seq: u64,
    /// Bumped by every change that can alter the place of a ticket other than the one the call
    /// names, besides departures (counted by `departure_seq`): flags, configuration, the admission tick,
    /// READY and ADMITTED changes. A join is not one: it never moves anyone already waiting.
    epoch: u64,
    /// The last pause recorded by `resume` (its begin, Unix ms), its end (Unix s) and the
    /// seconds of every pause added up (resume.lua's p_from, p_end, p_len).
    p_from: Option<u64>,
    p_end: u64,
    p_len: u64,
    /// The event's epoch, random, chosen when it was created (configure.lua's `epoch`): what
    /// waiting tokens carry, and the lottery's seed. (`epoch` above is a change counter.)
    token_epoch: u64,
    /// Access codes by hash: None while unspent, else the session that spent it (codes.lua).
    codes: HashMap<CodeHash, Option<SessionKey>>,
    /// The lottery generator's state (admit.lua's `rnd`), None before its first draw.
    rnd: Option<u64>,
    /// The last admission tick (admit.lua's `tick_ts`).
    tick_ts: Option<u64>,
}

/// MINSTD's modulus (lib.lua's `random_draw`).
const MINSTD: u64 = 2_147_483_647;

impl Ev {
    pub fn new(cfg: EventConfig, token_epoch: u64, now: u64) -> Self {
        Self {
            cfg,
            stopped: false,
            sold: false,
            measured_rate_milli: -1,
            tokens: 0,
            bucket_refilled_ms: now,
            admitted: 0,
            entered: 0,
            window_start_ms: 0,
            window_admitted: 0,
            prev_window_admitted: -1,
            seq: 0,
            queue: RankTree::new(),
            waiting: HashMap::new(),
            by_heartbeat: BTreeSet::new(),
            ready: Deadlines::default(),
            active: Deadlines::default(),
            sessions: HashMap::new(),
            dlog: VecDeque::new(),
            departure_seq: 0,
            epoch: 0,
            p_from: None,
            p_end: 0,
            p_len: 0,
            token_epoch,
            codes: HashMap::new(),
            rnd: None,
            tick_ts: None,
        }
    }

    /// Mirror of join.lua's check of a batch's codes before anything is applied (a sold-out or
    /// `reject` event refuses the batch for that, first, in `join`).
    pub fn check_codes(&self, joins: &[JoinRequest]) -> Result<()> {
        if self.sold || self.cfg.queueing_method == QueueingMethod::Reject {
            return Ok(());
        }
        let mut owner_of: HashMap<CodeHash, SessionKey> = HashMap::new();
        for j in joins {
            let Some(h) = j.access_code else { continue };
            let owner = match owner_of.get(&h) {
                Some(o) => Some(Some(*o)),
                None => self.codes.get(&h).copied(),
            };
            match owner {
                Some(None) => {}
                Some(Some(o)) if o == j.session => {}
                _ => return Err(QueueError::InvalidAccessCode),
            }
            owner_of.insert(h, j.session);
        }
        Ok(())
    }

    /// Mirror of codes.lua's `add`.
    pub fn add_codes(&mut self, codes: &[CodeHash]) -> u64 {
        let mut n = 0;
        for h in codes {
            if !self.codes.contains_key(h) {
                self.codes.insert(*h, None);
                n += 1;
            }
        }
        n
    }

    /// Mirror of codes.lua's `del`.
    pub fn revoke_codes(&mut self, codes: &[CodeHash]) -> u64 {
        codes
            .iter()
            .filter(|h| self.codes.remove(*h).is_some())
            .count() as u64
    }

    /// Mirror of `random_draw` in lib.lua: (draw, next state).
    fn random_draw(&self, state: Option<u64>) -> (u64, u64) {
        let mut x = state.unwrap_or(self.token_epoch % (MINSTD - 1) + 1);
        x = x * 48271 % MINSTD;
        let hi = x - 1;
        x = x * 48271 % MINSTD;
        (hi * 2_097_152 + (x - 1) / 1024, x)
    }

    /// Mirror of `bucket` in lib.lua: the token bucket refilled to `now` (not stored).
    fn bucket(&self, now: u64) -> (i64, u64) {
        let aps = i64::from(self.cfg.admit_per_second);
        let cap = aps * 1000;
        let (mut tokens, mut tb_ts) = (self.tokens, self.bucket_refilled_ms);
        if now > tb_ts {
            tokens = cap.min(tokens + (now - tb_ts) as i64 * aps);
            tb_ts = now;
        }
        (tokens.min(cap), tb_ts)
    }

    /// Mirror of `held` in lib.lua.
    fn held(&self, now: u64) -> u64 {
        self.ready.live(now) + self.active.live(now)
    }

    /// Mirror of `at_once` in join.lua: the READY deadline when ticket `t` is admitted at once.
    fn at_once(&mut self, t: u64, prio: bool, now: u64) -> Option<u64> {
        if self.pre_queue(now) || self.stopped || self.held(now) >= u64::from(self.cfg.max_active) {
            return None;
        }
        let ahead = if prio {
            self.queue.rank(&Member {
                score: PRIORITY_DRAW + 1,
                ticket: 0,
            })
        } else {
            self.queue.len() as u64
        };
        if ahead > 0 {
            return None;
        }
        if self.cfg.queueing_method != QueueingMethod::Passthrough {
            let (tokens, tb_ts) = self.bucket(now);
            if tokens < 1000 {
                return None;
            }
            (self.tokens, self.bucket_refilled_ms) = (tokens - 1000, tb_ts);
        }
        let deadline = now + u64::from(self.cfg.ready_timeout_seconds) * 1000;
        self.ready.insert(t, deadline);
        self.admitted += 1;
        self.epoch += 1;
        Some(deadline)
    }

    /// Equal stamps mean every place answer other than lazy heartbeats is unchanged.
    pub fn stamp(&self) -> (u64, u64) {
        (self.departure_seq, self.epoch)
    }

    /// Mirror of configure.lua on an existing event.
    pub fn configure(&mut self, cfg: &EventConfig) {
        if self.cfg.opens_at_ms() != cfg.opens_at_ms() {
            self.log_departure(Departure::Reset);
        }
        self.cfg = cfg.clone();
        self.epoch += 1;
    }

    pub fn act(&mut self, action: Action) {
        match action {
            Action::StopAdmissions => self.stopped = true,
            Action::ResumeAdmissions => self.stopped = false,
            Action::SoldOut => self.sold = true,
        }
        self.epoch += 1;
    }

    pub fn info(&self, now_ms: u64) -> EventInfo {
        EventInfo {
            config: self.cfg.clone(),
            stopped: self.stopped,
            sold_out: self.sold,
            measured_rate_milli: self.measured_rate_milli,
            stats: EventStats {
                waiting: self.queue.len() as u64,
                ready: self.ready.live(now_ms),
                active: self.active.live(now_ms),
                joined_total: self.seq,
                admitted_total: self.admitted,
                entered_total: self.entered,
            },
        }
    }

    pub fn pulse(&self, since: u64) -> Pulse {
        let n = self.departure_seq.checked_sub(since).map(|n| n as usize);
        let departures = match n {
            Some(n) if n <= DLOG_MAX => Some(self.dlog.iter().take(n).rev().copied().collect()),
            _ => None,
        };
        Pulse {
            seq: self.departure_seq,
            departures,
            stopped: self.stopped,
            sold_out: self.sold,
            opens_at_ms: self.cfg.opens_at_ms(),
            measured_rate_milli: self.measured_rate_milli,
            admit_per_second: self.cfg.admit_per_second,
            idle_timeout_seconds: self.cfg.idle_timeout_seconds,
            queueing_method: self.cfg.queueing_method,
            epoch: self.token_epoch,
            pause_end_s: self.p_end,
            pause_len_s: self.p_len,
        }
    }

    fn pre_queue(&self, now: u64) -> bool {
        self.cfg.opens_at_ms().is_some_and(|o| now < o)
    }

    fn member(&self, t: u64) -> Option<Member> {
        self.waiting.get(&t).map(|w| Member {
            score: w.score,
            ticket: t,
        })
    }

    /// Mirror of `beat` in lib.lua: a heartbeat as the idle timeout counts it.
    fn beat(&self, last: u64) -> u64 {
        if last < self.p_end {
            (last + self.p_len).min(self.p_end)
        } else {
            last
        }
    }

    /// Whether a heartbeat at `last` is too old at `now_s` (the test in lib.lua's `place`).
    pub fn idle(&self, last: u64, now_s: u64) -> bool {
        now_s.saturating_sub(self.beat(last)) >= u64::from(self.cfg.idle_timeout_seconds)
    }

    /// Mirror of resume.lua.
    pub fn resume(&mut self, from_ms: u64, until_ms: u64) -> bool {
        if self.p_from == Some(from_ms) || until_ms <= from_ms {
            return false;
        }
        self.p_from = Some(from_ms);
        self.p_end = until_ms / 1000;
        self.p_len += until_ms / 1000 - from_ms / 1000;
        self.ready.shift(until_ms - from_ms);
        self.epoch += 1;
        true
    }

    /// Mirror of `log_departure` in lib.lua.
    fn log_departure(&mut self, d: Departure) {
        self.dlog.push_front(d);
        self.dlog.truncate(DLOG_MAX);
        self.departure_seq += 1;
    }

    fn add_waiting(&mut self, t: u64, score: i64, now_s: u64) {
        self.queue.insert(Member { score, ticket: t });
        self.waiting.insert(t, Waiting { score, last: now_s });
        self.by_heartbeat.insert((now_s, t));
    }

    fn remove_waiting(&mut self, t: u64) -> Option<Waiting> {
        let w = self.waiting.remove(&t)?;
        self.queue.remove(&Member {
            score: w.score,
            ticket: t,
        });
        self.by_heartbeat.remove(&(w.last, t));
        Some(w)
    }

    fn rank(&self, m: &Member) -> u64 {
        self.queue.rank(m)
    }

    /// The 0-based rank of `t` when it is waiting.
    pub fn rank_of(&self, t: u64) -> Option<u64> {
        self.member(t).map(|m| self.rank(&m))
    }

    /// Removes a waiting ticket at 0-based `rank` (mirror of `drop_waiting`).
    pub fn drop_waiting(&mut self, t: u64, rank: u64) {
        self.remove_waiting(t);
        self.log_departure(Departure::Rank(rank + 1));
    }

    pub fn place_of(&self, t: u64, status: Status, position: u64, expires_at_ms: u64) -> Place {
        Place {
            ticket: t,
            status,
            position,
            expires_at_ms,
            measured_rate_milli: self.measured_rate_milli,
            admit_per_second: self.cfg.admit_per_second,
            stopped: self.stopped,
            opens_at_ms: self.cfg.opens_at_ms(),
            epoch: self.token_epoch,
            method: self.cfg.queueing_method,
            log_seq: self.departure_seq,
        }
    }

    /// Mirror of `place` in lib.lua.
    pub fn place(&mut self, t: u64, heartbeat: bool, now: u64) -> Place {
        let now_s = now / 1000;
        let idle = u64::from(self.cfg.idle_timeout_seconds);
        if let Some(m) = self.member(t) {
            let rank = self.rank(&m);
            let last = self.waiting[&t].last;
            if self.idle(last, now_s) {
                self.drop_waiting(t, rank);
                return self.place_of(t, Status::Expired, 0, 0);
            }
            if self.sold {
                return self.place_of(t, Status::SoldOut, 0, 0);
            }
            let raw = last;
            let mut last = self.beat(raw);
            if heartbeat && last != now_s {
                self.by_heartbeat.remove(&(raw, t));
                self.by_heartbeat.insert((now_s, t));
                if let Some(w) = self.waiting.get_mut(&t) {
                    w.last = now_s;
                }
                last = now_s;
            }
            let expires = (last + idle) * 1000;
            if self.pre_queue(now) {
                return self.place_of(t, Status::PreQueue, 0, expires);
            }
            return self.place_of(t, Status::Waiting, rank + 1, expires);
        }
        if let Some(deadline) = self.ready.get(t) {
            if deadline <= now {
                self.ready.remove(t);
                self.epoch += 1;
                return self.place_of(t, Status::Expired, 0, 0);
            }
            if self.sold {
                return self.place_of(t, Status::SoldOut, 0, 0);
            }
            return self.place_of(t, Status::Ready, 0, deadline);
        }
        match self.active.get(t) {
            Some(until) if until > now => self.place_of(t, Status::Admitted, 0, until),
            _ => self.place_of(t, Status::Expired, 0, 0),
        }
    }

    /// Mirror of join.lua (after its checks for an unknown event).
    pub fn join(
        &mut self, event: &str, session: SessionKey, pre_score: i64, code: Option<CodeHash>,
        now_ms: u64,
    ) -> Result<Joined> {
        if self.sold {
            return Err(QueueError::EventClosed(event.to_string()));
        }
        if self.cfg.queueing_method == QueueingMethod::Reject {
            return Err(QueueError::QueueClosed(event.to_string()));
        }
        if let Some(h) = &code {
            match self.codes.get(h) {
                Some(None) => {}
                Some(Some(owner)) if *owner == session => {}
                _ => return Err(QueueError::InvalidAccessCode),
            }
        }
        if let Some(&old) = self.sessions.get(&session) {
            let p = self.place(old, true, now_ms);
            if p.status != Status::Expired {
                return Ok(Joined {
                    created: false,
                    place: p,
                });
            }
            // A lapsed READY slot or admission ends here (as in join.lua).
            if self.ready.remove(old).is_some() | self.active.remove(old).is_some() {
                self.epoch += 1;
            }
        }
        if self.seq >= MAX_TICKETS {
            return Err(QueueError::EventClosed(event.to_string()));
        }
        self.seq += 1;
        let t = self.seq;
        let mut prio = false;
        if let Some(h) = code {
            if let Some(slot @ None) = self.codes.get_mut(&h) {
                *slot = Some(session);
                prio = true;
            }
        }
        self.sessions.insert(session, t);
        if self.at_once(t, prio, now_ms).is_none() {
            let score = if prio {
                PRIORITY_DRAW
            } else if self.pre_queue(now_ms) {
                pre_score
            } else {
                t as i64
            };
            self.add_waiting(t, score, now_ms / 1000);
            if prio {
                let rank = self.rank_of(t).unwrap_or_default();
                self.log_departure(Departure::Arrival(rank + 1));
            }
        }
        Ok(Joined {
            created: true,
            place: self.place(t, false, now_ms),
        })
    }

    /// Mirror of enter.lua.
    pub fn enter(&mut self, ticket: u64, now_ms: u64) -> EnterOutcome {
        if let Some(until) = self.active.get(ticket) {
            if until > now_ms {
                return EnterOutcome::Granted(self.place_of(ticket, Status::Admitted, 0, until));
            }
        }
        let p = self.place(ticket, true, now_ms);
        if p.status != Status::Ready {
            return EnterOutcome::Refused(p);
        }
        let until = now_ms + u64::from(self.cfg.admission_ttl_seconds) * 1000;
        self.ready.remove(ticket);
        self.active.insert(ticket, until);
        self.entered += 1;
        self.epoch += 1;
        EnterOutcome::Granted(self.place_of(ticket, Status::Admitted, 0, until))
    }

    /// Mirror of leave.lua.
    pub fn leave(&mut self, ticket: u64, session: SessionKey) -> bool {
        let ready = self.ready.remove(ticket).is_some();
        let active = self.active.remove(ticket).is_some();
        let waiting = match self.rank_of(ticket) {
            Some(rank) => {
                self.drop_waiting(ticket, rank);
                true
            }
            None => false,
        };
        if self.sessions.get(&session) == Some(&ticket) {
            self.sessions.remove(&session);
        }
        self.epoch += 1;
        waiting || ready || active
    }

    /// Up to `max` waiting tickets whose last heartbeat is at or before second `upto`, after
    /// `after` in (second, ticket) order: the sweep's candidates, read a chunk at a time.
    pub fn idle_candidates(
        &self, upto: u64, after: Option<(u64, u64)>, max: usize, out: &mut Vec<(u64, u64)>,
    ) {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let lo = match after {
            Some(k) => Excluded(k),
            None => Unbounded,
        };
        out.extend(
            self.by_heartbeat
                .range((lo, Included((upto, u64::MAX))))
                .take(max)
                .copied(),
        );
    }
}
