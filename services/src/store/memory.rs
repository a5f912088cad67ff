//! The in-memory store: one mutex over everything, so every step is atomic like the Lua scripts.

use super::{EventInfo, HoldRequest, IdemKey, IntentRequest, PendingOutcome, SeatState, Store};
use crate::error::{Result, ServiceError};
use crate::model::*;
use crate::updates::ReservationUpdate;
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use tokio::sync::broadcast;

#[derive(Debug)]
struct Event {
    info: EventInfo,
    /// Free seats by score.
    free: BTreeMap<u64, String>,
    /// Every seat: its score and state.
    seats: HashMap<String, (u64, SeatState)>,
    /// Pending holds by deadline.
    holds: BTreeSet<(u64, String)>,
}

#[derive(Debug, Default)]
struct Inner {
    events: HashMap<String, Event>,
    reservations: HashMap<String, Reservation>,
    /// Idempotency slot → (reservation id, fingerprint, forgotten at).
    idem: HashMap<String, Slot>,
    intents: HashMap<String, Intent>,
    /// Intent idempotency slot → (intent id, fingerprint, forgotten at).
    intent_idem: HashMap<String, Slot>,
    /// (event, provider's id) → intent id.
    provider_ids: HashMap<(String, String), String>,
    /// Outcomes not yet reported, by intent.
    outcomes: HashMap<String, PendingOutcome>,
    /// Admission slot (per event) → the reservations made under it (pruned on each hold).
    admissions: HashMap<String, Vec<String>>,
}

/// State in this process's memory (lost on exit).
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Reservation updates, to in-process receivers.
    updates: broadcast::Sender<ReservationUpdate>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            updates: broadcast::channel(UPDATES_BUFFERED).0,
        }
    }
}

/// Updates buffered per receiver of [`MemoryStore::subscribe`].
const UPDATES_BUFFERED: usize = 1024;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A receiver of every reservation update from now on (the in-process counterpart of the
    /// Redis store's channel).
    pub fn subscribe(&self) -> broadcast::Receiver<ReservationUpdate> {
        self.updates.subscribe()
    }

    fn announce(&self, u: ReservationUpdate) {
        let _ = self.updates.send(u);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every step validates first).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Releases to `to` up to `limit` of the event's pending holds whose deadline is at most
    /// `due_by`, earliest first, and announces each; their ids (None: no such event).
    fn release_holds(
        &self, g: &mut Inner, event: &str, due_by: u64, limit: usize, to: ResStatus,
    ) -> Option<Vec<String>> {
        let ids: Vec<String> = g
            .events
            .get(event)?
            .holds
            .iter()
            .take_while(|(t, _)| *t <= due_by)
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect();
        for id in &ids {
            g.release(id, to);
            self.announce(ReservationUpdate::status_of(id, event, to));
        }
        Some(ids)
    }
}

/// An idempotency slot: (record id, fingerprint, forgotten at).
type Slot = (String, String, u64);

/// The slot that remembers `key` for record `id` from `now_ms` on, for the key's window.
fn slot(id: &str, key: &IdemKey, now_ms: u64) -> Slot {
    (id.to_owned(), key.fingerprint.clone(), now_ms + key.ttl_ms)
}

/// The record that a key seen within its window answers with (`slot` in `slots`), or None; a
/// key reused with other parameters (another fingerprint) is a conflict.
fn replay<T: Clone>(
    slots: &HashMap<String, Slot>, records: &HashMap<String, T>, slot: &str, key: &IdemKey,
    now_ms: u64,
) -> Result<Option<T>> {
    match slots.get(slot) {
        Some((_, fp, until)) if *until > now_ms && *fp != key.fingerprint => {
            Err(ServiceError::IdempotencyConflict)
        }
        Some((id, _, until)) if *until > now_ms => Ok(records.get(id).cloned()),
        _ => Ok(None),
    }
}

/// Why a step that needs a pending reservation refuses one in state `s`.
fn not_pending(s: ResStatus) -> ServiceError {
    ServiceError::FailedPrecondition(format!("reservation is {s:?}, not pending"))
}

impl Inner {
    fn event(&self, event: &str) -> Result<&Event> {
        self.events
            .get(event)
            .ok_or_else(|| ServiceError::EventNotFound(event.to_owned()))
    }

    fn reservation(&self, id: &str) -> Result<Reservation> {
        self.reservations
            .get(id)
            .cloned()
            .ok_or_else(|| ServiceError::ReservationNotFound(id.to_owned()))
    }

    fn release(&mut self, id: &str, to: ResStatus) {
        let Some(r) = self.reservations.get_mut(id) else {
            return;
        };
        if let Some(ev) = self.events.get_mut(&r.event_id) {
            for s in &r.seats {
                if let Some((score, st)) = ev.seats.get_mut(s) {
                    if *st == SeatState::Held(id.to_owned()) {
                        *st = SeatState::Free;
                        ev.free.insert(*score, s.clone());
                    }
                }
            }
            ev.holds.remove(&(r.hold_expires_ms, id.to_owned()));
        }
        r.status = to;
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn seed(&self, event: &str, seats: u64, price_cents: i64, currency: &str) -> Result<()> {
        let mut g = self.lock();
        let ev = g.events.entry(event.to_owned()).or_insert_with(|| Event {
            info: EventInfo {
                price_cents,
                currency: currency.to_owned(),
                total: 0,
            },
            free: BTreeMap::new(),
            seats: HashMap::new(),
            holds: BTreeSet::new(),
        });
        for i in 0..seats {
            let id = seat_id(i);
            if !ev.seats.contains_key(&id) {
                let score = seat_score(i / ROW_SEATS, i % ROW_SEATS + 1);
                ev.seats.insert(id.clone(), (score, SeatState::Free));
                ev.free.insert(score, id);
                ev.info.total += 1;
            }
        }
        Ok(())
    }

    async fn event(&self, event: &str) -> Result<Option<EventInfo>> {
        Ok(self.lock().events.get(event).map(|e| e.info.clone()))
    }

    async fn free_seats(
        &self, event: &str, range: Option<(u64, u64)>, limit: usize,
    ) -> Result<(u64, Vec<String>)> {
        let g = self.lock();
        let ev = g.event(event)?;
        let (lo, hi) = range.unwrap_or((0, u64::MAX));
        let count = match range {
            None => ev.free.len() as u64,
            Some(_) => ev.free.range(lo..=hi).count() as u64,
        };
        let first = ev
            .free
            .range(lo..=hi)
            .take(limit)
            .map(|(_, s)| s.clone())
            .collect();
        Ok((count, first))
    }

    async fn seat_states(&self, event: &str, seats: &[String]) -> Result<Vec<Option<SeatState>>> {
        let g = self.lock();
        let ev = g.event(event)?;
        Ok(seats
            .iter()
            .map(|s| ev.seats.get(s).map(|(_, st)| st.clone()))
            .collect())
    }

    async fn hold(&self, req: &HoldRequest, now_ms: u64) -> Result<(Reservation, bool)> {
        let mut g = self.lock();
        let g = &mut *g;
        if !g.events.contains_key(&req.event_id) {
            return Err(ServiceError::EventNotFound(req.event_id.clone()));
        }
        let idem_key = format!("{}:{}", req.event_id, req.idem.slot);
        if let Some(r) = replay(&g.idem, &g.reservations, &idem_key, &req.idem, now_ms)? {
            return Ok((r, true));
        }
        // As hold.lua: only PENDING holds before their deadline count against the admission.
        let admission_key = req
            .admission
            .as_ref()
            .map(|a| (format!("{}:{}", req.event_id, a.slot), a.limit));
        if let Some((key, limit)) = &admission_key {
            let reservations = &g.reservations;
            let held = g.admissions.entry(key.clone()).or_default();
            held.retain(|rid| {
                reservations
                    .get(rid)
                    .is_some_and(|r| r.status == ResStatus::Pending && r.hold_expires_ms > now_ms)
            });
            if held.len() >= *limit as usize {
                return Err(ServiceError::HoldLimit(*limit));
            }
        }
        let Some(ev) = g.events.get_mut(&req.event_id) else {
            return Err(ServiceError::EventNotFound(req.event_id.clone()));
        };
        let seats: Vec<String> = if req.seats.is_empty() {
            if (ev.free.len() as u64) < u64::from(req.quantity) {
                return Err(ServiceError::SeatsUnavailable(Vec::new()));
            }
            let picked: Vec<(u64, String)> = ev
                .free
                .iter()
                .take(req.quantity as usize)
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            for (k, _) in &picked {
                ev.free.remove(k);
            }
            picked.into_iter().map(|(_, s)| s).collect()
        } else {
            let bad: Vec<String> = req
                .seats
                .iter()
                .filter(|s| !matches!(ev.seats.get(*s), Some((_, SeatState::Free))))
                .cloned()
                .collect();
            if !bad.is_empty() {
                return Err(ServiceError::SeatsUnavailable(bad));
            }
            for s in &req.seats {
                if let Some((score, _)) = ev.seats.get(s) {
                    ev.free.remove(score);
                }
            }
            req.seats.clone()
        };
        for s in &seats {
            if let Some((_, st)) = ev.seats.get_mut(s) {
                *st = SeatState::Held(req.reservation_id.clone());
            }
        }
        let hold_expires_ms = now_ms + req.hold_ms;
        ev.holds
            .insert((hold_expires_ms, req.reservation_id.clone()));
        let r = Reservation {
            id: req.reservation_id.clone(),
            event_id: req.event_id.clone(),
            user_id: req.user_id.clone(),
            status: ResStatus::Pending,
            seats,
            price_cents: ev.info.price_cents,
            currency: ev.info.currency.clone(),
            created_ms: now_ms,
            hold_expires_ms,
            order_id: None,
            payment_intent_id: None,
            confirmed_ms: None,
        };
        g.reservations.insert(r.id.clone(), r.clone());
        if let Some((key, _)) = admission_key {
            g.admissions.entry(key).or_default().push(r.id.clone());
        }
        g.idem.insert(idem_key, slot(&r.id, &req.idem, now_ms));
        Ok((r, false))
    }

    async fn reservation(&self, id: &str) -> Result<Option<Reservation>> {
        Ok(self.lock().reservations.get(id).cloned())
    }

    async fn commit(
        &self, id: &str, intent_id: &str, order_id: &str, now_ms: u64,
    ) -> Result<(Reservation, bool)> {
        let mut g = self.lock();
        let r = g.reservation(id)?;
        match r.status {
            ResStatus::Confirmed => return Ok((r, false)),
            ResStatus::Pending => {}
            s => return Err(not_pending(s)),
        }
        if r.hold_expires_ms <= now_ms {
            g.release(id, ResStatus::Expired);
            self.announce(ReservationUpdate::status_of(
                id,
                &r.event_id,
                ResStatus::Expired,
            ));
            return Err(ServiceError::ReservationExpired(id.to_owned()));
        }
        let ev = g
            .events
            .get_mut(&r.event_id)
            .ok_or_else(|| ServiceError::EventNotFound(r.event_id.clone()))?;
        let held = SeatState::Held(id.to_owned());
        if let Some(s) = r
            .seats
            .iter()
            .find(|s| ev.seats.get(*s).map(|(_, st)| st) != Some(&held))
        {
            return Err(ServiceError::SeatsUnavailable(vec![s.clone()]));
        }
        for s in &r.seats {
            if let Some((_, st)) = ev.seats.get_mut(s) {
                *st = SeatState::Sold(id.to_owned());
            }
        }
        ev.holds.remove(&(r.hold_expires_ms, id.to_owned()));
        let stored = g
            .reservations
            .get_mut(id)
            .ok_or_else(|| ServiceError::ReservationNotFound(id.to_owned()))?;
        stored.status = ResStatus::Confirmed;
        stored.order_id = Some(order_id.to_owned());
        stored.payment_intent_id = Some(intent_id.to_owned());
        stored.confirmed_ms = Some(now_ms);
        let stored = stored.clone();
        self.announce(ReservationUpdate::of(&stored));
        Ok((stored, true))
    }

    async fn release(
        &self, id: &str, to: ResStatus, only_if_due: bool, now_ms: u64,
    ) -> Result<(Reservation, bool)> {
        let mut g = self.lock();
        let r = g.reservation(id)?;
        match r.status {
            ResStatus::Cancelled | ResStatus::Expired => return Ok((r, false)),
            ResStatus::Confirmed => {
                return Err(ServiceError::FailedPrecondition(
                    "reservation is already confirmed".into(),
                ))
            }
            ResStatus::Pending => {}
        }
        if only_if_due && r.hold_expires_ms > now_ms {
            return Err(ServiceError::FailedPrecondition(
                "the hold has not expired yet".into(),
            ));
        }
        g.release(id, to);
        let r = g.reservation(id)?;
        self.announce(ReservationUpdate::of(&r));
        Ok((r, true))
    }

    async fn expire_due(&self, event: &str, now_ms: u64, limit: usize) -> Result<Vec<String>> {
        let mut g = self.lock();
        let Some(due) = self.release_holds(&mut g, event, now_ms, limit, ResStatus::Expired) else {
            return Ok(Vec::new());
        };
        // Forget idempotency keys past their window.
        g.idem.retain(|_, (_, _, until)| *until > now_ms);
        g.intent_idem.retain(|_, (_, _, until)| *until > now_ms);
        Ok(due)
    }

    async fn cancel_holds(&self, event: &str, _now_ms: u64, limit: usize) -> Result<Vec<String>> {
        let mut g = self.lock();
        let ids = self.release_holds(&mut g, event, u64::MAX, limit, ResStatus::Cancelled);
        Ok(ids.unwrap_or_default())
    }

    async fn events(&self) -> Result<Vec<String>> {
        let mut v: Vec<String> = self.lock().events.keys().cloned().collect();
        v.sort();
        Ok(v)
    }

    async fn create_intent(&self, req: &IntentRequest, now_ms: u64) -> Result<(Intent, bool)> {
        let mut g = self.lock();
        if let Some(i) = replay(
            &g.intent_idem,
            &g.intents,
            &req.idem.slot,
            &req.idem,
            now_ms,
        )? {
            return Ok((i, true));
        }
        let r = g
            .reservations
            .get(&req.reservation_id)
            .ok_or_else(|| ServiceError::ReservationNotFound(req.reservation_id.clone()))?;
        match r.status_at(now_ms) {
            ResStatus::Pending => {}
            ResStatus::Expired => return Err(ServiceError::ReservationExpired(r.id.clone())),
            s => return Err(not_pending(s)),
        }
        let pid = req.provider_id.clone().map(|p| (r.event_id.clone(), p));
        if pid.as_ref().is_some_and(|k| g.provider_ids.contains_key(k)) {
            return Err(super::taken_provider_id());
        }
        let i = Intent {
            id: req.intent_id.clone(),
            reservation_id: r.id.clone(),
            amount_cents: r.amount_cents(),
            currency: r.currency.clone(),
            scenario: req.scenario,
            status: IntentStatus::Pending,
            failure_code: None,
            created_ms: now_ms,
            expires_ms: r.hold_expires_ms,
            provider_id: req.provider_id.clone(),
        };
        if let Some(k) = pid {
            g.provider_ids.insert(k, i.id.clone());
        }
        g.intents.insert(i.id.clone(), i.clone());
        g.intent_idem
            .insert(req.idem.slot.clone(), slot(&i.id, &req.idem, now_ms));
        Ok((i, false))
    }

    async fn intent(&self, id: &str) -> Result<Option<Intent>> {
        Ok(self.lock().intents.get(id).cloned())
    }

    async fn provider_intent(&self, event: &str, provider_id: &str) -> Result<Option<Intent>> {
        let g = self.lock();
        let key = (event.to_owned(), provider_id.to_owned());
        Ok(g.provider_ids
            .get(&key)
            .and_then(|id| g.intents.get(id))
            .cloned())
    }

    async fn settle_intent(
        &self, id: &str, status: IntentStatus, failure_code: Option<&str>, _now_ms: u64,
    ) -> Result<(Intent, bool)> {
        let mut g = self.lock();
        let i = g
            .intents
            .get_mut(id)
            .ok_or_else(|| ServiceError::IntentNotFound(id.to_owned()))?;
        if i.status != IntentStatus::Pending {
            return Ok((i.clone(), false));
        }
        i.status = status;
        i.failure_code = failure_code.map(str::to_owned);
        Ok((i.clone(), true))
    }

    async fn outcome_put(&self, outcome: &PendingOutcome, keep_existing: bool) -> Result<bool> {
        let mut g = self.lock();
        if keep_existing && g.outcomes.contains_key(&outcome.intent_id) {
            return Ok(false);
        }
        g.outcomes
            .insert(outcome.intent_id.clone(), outcome.clone());
        Ok(true)
    }

    async fn outcomes(
        &self, event: &str, due_by_ms: u64, offset: usize, limit: usize,
    ) -> Result<Vec<PendingOutcome>> {
        let g = self.lock();
        let mut due: Vec<PendingOutcome> = g
            .outcomes
            .values()
            .filter(|o| {
                o.due_ms <= due_by_ms && intent_event(&o.intent_id).ok().as_deref() == Some(event)
            })
            .cloned()
            .collect();
        due.sort_by(|a, b| (a.due_ms, &a.intent_id).cmp(&(b.due_ms, &b.intent_id)));
        Ok(due.into_iter().skip(offset).take(limit).collect())
    }

    async fn outcome_done(&self, intent_id: &str) -> Result<()> {
        self.lock().outcomes.remove(intent_id);
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
