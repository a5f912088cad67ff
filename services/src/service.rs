//! The four gRPC services over one [`Backends`] core: validation, the store, the payment
//! simulator and the hold-expiry sweep.

use crate::clock::Clock;
use crate::error::{Result, ServiceError};
use crate::model::*;
use crate::store::{AdmissionLimit, HoldRequest, IntentRequest, PendingOutcome, SeatState, Store};
use crate::webhook::WebhookSender;
use proto::common::v1::{Money, Seat, SeatStatus};
use proto::payment::v1 as pay;
use proto::reservation::v1 as res;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// Most seats listed by one CheckAvailability answer.
pub const MAX_LISTED_SEATS: usize = 100;

/// Holds expired per event by one step of the sweep.
const EXPIRY_BATCH: usize = 1000;

/// Behaviour settings of the services.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a reservation holds its seats unpaid.
    pub hold: Duration,
    /// How long an idempotency key is remembered.
    pub idempotency_window: Duration,
    /// Most seats one reservation may take.
    pub max_seats_per_reservation: u32,
    /// Multiplies the simulator's delays (1.0: APPROVE takes 2–5 s; 0.001: 2–5 ms).
    pub sim_time_scale: f64,
    /// Chance in percent that RANDOM approves.
    pub random_approve_percent: u32,
    /// Most active (PENDING, unexpired) holds per admission, counted for requests that name
    /// their `admission_id` (the gateway always does); 0: no limit.
    pub holds_per_admission: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            hold: Duration::from_secs(60),
            idempotency_window: Duration::from_secs(300),
            max_seats_per_reservation: 10,
            sim_time_scale: 1.0,
            random_approve_percent: 70,
            holds_per_admission: 1,
        }
    }
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    webhooks: Option<WebhookSender>,
    /// Intents whose outcome has a timer in this process (so a resume does not add another).
    timers: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// The backing services' core; clones share it. Implements the tonic server traits of
/// ReservationService, Inventory, PaymentService and WorkerService.
#[derive(Clone)]
pub struct Backends(Arc<Inner>);

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("settings", &self.0.settings)
            .finish_non_exhaustive()
    }
}

fn ts(ms: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

fn money(cents: i64, currency: &str) -> Money {
    Money {
        amount_cents: cents,
        currency: currency.to_owned(),
    }
}

fn seat(id: &str, price: i64, currency: &str, status: SeatStatus) -> Seat {
    let (row, number) = match SeatRef::parse(id) {
        Ok(s) => (s.row, s.number as i32),
        Err(_) => (String::new(), 0),
    };
    Seat {
        seat_id: id.to_owned(),
        section: row.clone(),
        row,
        number,
        price: Some(money(price, currency)),
        status: status as i32,
    }
}

fn seats_of(r: &Reservation, status: SeatStatus) -> Vec<Seat> {
    r.seats
        .iter()
        .map(|s| seat(s, r.price_cents, &r.currency, status))
        .collect()
}

fn seat_status_of(st: ResStatus) -> SeatStatus {
    match st {
        ResStatus::Pending => SeatStatus::Held,
        ResStatus::Confirmed => SeatStatus::Sold,
        ResStatus::Cancelled | ResStatus::Expired => SeatStatus::Available,
    }
}

/// The proto view of a reservation at `now_ms`.
fn reservation_msg(r: &Reservation, now_ms: u64) -> res::Reservation {
    let st = r.status_at(now_ms);
    res::Reservation {
        reservation_id: r.id.clone(),
        event_id: r.event_id.clone(),
        user_id: r.user_id.clone(),
        status: st as i32,
        seats: seats_of(r, seat_status_of(st)),
        quantity: r.seats.len() as i32,
        total_amount: Some(money(r.amount_cents(), &r.currency)),
        created_at: Some(ts(r.created_ms)),
        hold_expires_at: Some(ts(r.hold_expires_ms)),
        order_id: r.order_id.clone().unwrap_or_default(),
        payment_intent_id: r.payment_intent_id.clone().unwrap_or_default(),
        confirmed_at: r.confirmed_ms.map(ts),
    }
}

fn check_reservation_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(ServiceError::InvalidArgument(
            "reservation_id is required".into(),
        ));
    }
    reservation_event(id).map(|_| ())
}

/// Checks that optional `event_id` and `seat_ids` of a request match the reservation.
fn check_matches(r: &Reservation, event_id: &str, seat_ids: &[String]) -> Result<()> {
    if !event_id.is_empty() && event_id != r.event_id {
        return Err(ServiceError::InvalidArgument(
            "event_id does not match the reservation".into(),
        ));
    }
    if !seat_ids.is_empty() {
        let mut a = seat_ids.to_vec();
        let mut b = r.seats.clone();
        a.sort();
        b.sort();
        if a != b {
            return Err(ServiceError::InvalidArgument(
                "seat_ids are not the reservation's seats".into(),
            ));
        }
    }
    Ok(())
}

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
    /// A core over `store`, with time from `clock`; `webhooks` None records outcomes without
    /// reporting them.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: Settings,
        webhooks: Option<WebhookSender>,
    ) -> Self {
        Self(Arc::new(Inner {
            store,
            clock,
            settings,
            webhooks,
            timers: Default::default(),
        }))
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    fn now(&self) -> u64 {
        self.0.clock.now_ms()
    }

    /// Seeds an event: `seats` seats `A-1`…, each at `price_cents`.
    pub async fn seed(
        &self,
        event: &str,
        seats: u64,
        price_cents: i64,
        currency: &str,
    ) -> Result<()> {
        check_event_id(event)?;
        self.0.store.seed(event, seats, price_cents, currency).await
    }

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
        &self,
        every: Duration,
        shutdown: impl std::future::Future<Output = ()>,
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

    async fn create_reservation_inner(
        &self,
        req: res::CreateReservationRequest,
    ) -> Result<res::CreateReservationResponse> {
        check_event_id(&req.event_id)?;
        check_user_id(&req.user_id)?;
        check_idempotency_key(&req.idempotency_key)?;
        check_admission_id(&req.admission_id)?;
        let max = self.0.settings.max_seats_per_reservation;
        let mut seats = Vec::with_capacity(req.seat_ids.len());
        for s in &req.seat_ids {
            SeatRef::parse(s)?;
            if seats.contains(s) {
                return Err(ServiceError::InvalidArgument(format!(
                    "seat '{s}' is listed twice"
                )));
            }
            seats.push(s.clone());
        }
        let quantity = if seats.is_empty() {
            req.quantity
        } else if req.quantity == 0 || req.quantity as usize == seats.len() {
            seats.len() as i32
        } else {
            return Err(ServiceError::InvalidArgument(
                "quantity does not match seat_ids".into(),
            ));
        };
        if quantity < 1 || quantity as u32 > max {
            return Err(ServiceError::InvalidArgument(format!(
                "quantity must be 1 to {max}"
            )));
        }
        let mut sorted = seats.clone();
        sorted.sort();
        let q = quantity.to_string();
        let mut fp_parts = vec![q.as_str()];
        fp_parts.extend(sorted.iter().map(String::as_str));
        let hold = HoldRequest {
            event_id: req.event_id.clone(),
            reservation_id: new_reservation_id(&req.event_id),
            user_id: req.user_id.clone(),
            idem: digest(&[&req.user_id, &req.idempotency_key]),
            fingerprint: digest(&fp_parts),
            quantity: quantity as u32,
            seats,
            hold_ms: self.0.settings.hold.as_millis() as u64,
            idem_ms: self.0.settings.idempotency_window.as_millis() as u64,
            admission: (!req.admission_id.is_empty() && self.0.settings.holds_per_admission > 0)
                .then(|| AdmissionLimit {
                    slot: digest(&[&req.admission_id]),
                    limit: self.0.settings.holds_per_admission,
                }),
        };
        let now = self.now();
        let (r, replayed) = self.0.store.hold(&hold, now).await?;
        if !replayed {
            tracing::info!(reservation_id = %r.id, seats = r.seats.len(), "seats held");
        }
        let st = r.status_at(now);
        Ok(res::CreateReservationResponse {
            reservation_id: r.id.clone(),
            status: st as i32,
            hold_expires_at: Some(ts(r.hold_expires_ms)),
            reserved_seats: seats_of(&r, seat_status_of(st)),
            total_amount: Some(money(r.amount_cents(), &r.currency)),
            payment_url: String::new(),
            error: None,
            replayed,
        })
    }

    /// The reservation, NOT_FOUND when absent or (with `user_id`) someone else's.
    async fn load(&self, id: &str, user_id: &str) -> Result<Reservation> {
        check_reservation_id(id)?;
        match self.0.store.reservation(id).await? {
            Some(r) if user_id.is_empty() || r.user_id == user_id => Ok(r),
            _ => Err(ServiceError::ReservationNotFound(id.to_owned())),
        }
    }

    /// Confirms a reservation paid by an approved intent (idempotent).
    async fn confirm(&self, id: &str, intent_id: &str) -> Result<(Reservation, bool)> {
        let (r, changed) = self
            .0
            .store
            .commit(id, intent_id, &new_order_id(), self.now())
            .await?;
        if changed {
            tracing::info!(reservation_id = %id, order_id = ?r.order_id, "reservation confirmed");
        }
        Ok((r, changed))
    }

    async fn check_availability_inner(
        &self,
        req: res::CheckAvailabilityRequest,
    ) -> Result<res::CheckAvailabilityResponse> {
        check_event_id(&req.event_id)?;
        if req.quantity < 0 {
            return Err(ServiceError::InvalidArgument(
                "quantity must not be negative".into(),
            ));
        }
        let info = self
            .0
            .store
            .event(&req.event_id)
            .await?
            .ok_or_else(|| ServiceError::EventNotFound(req.event_id.clone()))?;
        let range = if req.section.is_empty() {
            None
        } else {
            Some(section_range(&req.section)?)
        };
        let (remaining, first) = self
            .0
            .store
            .free_seats(
                &req.event_id,
                range,
                (req.quantity as usize).min(MAX_LISTED_SEATS),
            )
            .await?;
        let mut available_seats: Vec<Seat> = first
            .iter()
            .map(|s| seat(s, info.price_cents, &info.currency, SeatStatus::Available))
            .collect();
        let mut unavailable = Vec::new();
        let available = if req.seat_ids.is_empty() {
            remaining >= u64::from(req.quantity.max(1) as u32)
        } else {
            if req.seat_ids.len() > MAX_LISTED_SEATS {
                return Err(ServiceError::InvalidArgument(format!(
                    "at most {MAX_LISTED_SEATS} seat_ids"
                )));
            }
            for s in &req.seat_ids {
                SeatRef::parse(s)?;
            }
            let states = self
                .0
                .store
                .seat_states(&req.event_id, &req.seat_ids)
                .await?;
            available_seats.clear();
            for (s, st) in req.seat_ids.iter().zip(states) {
                if st == Some(SeatState::Free) {
                    available_seats.push(seat(
                        s,
                        info.price_cents,
                        &info.currency,
                        SeatStatus::Available,
                    ));
                } else {
                    unavailable.push(s.clone());
                }
            }
            unavailable.is_empty()
        };
        Ok(res::CheckAvailabilityResponse {
            available,
            available_seats,
            unavailable_seat_ids: unavailable,
            remaining_in_section: remaining.min(i32::MAX as u64) as i32,
            error: None,
        })
    }

    async fn create_intent_inner(
        &self,
        req: pay::CreatePaymentIntentRequest,
    ) -> Result<pay::CreatePaymentIntentResponse> {
        check_idempotency_key(&req.idempotency_key)?;
        let scenario = Scenario::from_code(i64::from(req.scenario))
            .ok_or_else(|| ServiceError::InvalidArgument("unknown scenario".into()))?;
        let r = self.load(&req.reservation_id, &req.user_id).await?;
        if let Some(m) = &req.amount {
            if m.amount_cents != r.amount_cents()
                || (!m.currency.is_empty() && m.currency != r.currency)
            {
                return Err(ServiceError::InvalidArgument(format!(
                    "amount must be the reservation's total, {} {}",
                    r.amount_cents(),
                    r.currency
                )));
            }
        }
        let ir = IntentRequest {
            intent_id: new_intent_id(&r.event_id),
            reservation_id: r.id.clone(),
            scenario,
            idem: digest(&[&r.id, &req.idempotency_key]),
            fingerprint: digest(&[&(scenario as i32).to_string()]),
            idem_ms: self.0.settings.idempotency_window.as_millis() as u64,
        };
        let (intent, replayed) = self.0.store.create_intent(&ir, self.now()).await?;
        if !replayed {
            tracing::info!(payment_intent_id = %intent.id, ?scenario, "payment intent created");
        }
        // Answered only once its outcome is kept: a replay (the client retrying after an error
        // here) keeps the one kept before, or decides it now if there was none.
        if intent.status == IntentStatus::Pending {
            self.simulate(&intent, replayed).await?;
        }
        Ok(pay::CreatePaymentIntentResponse {
            payment_intent_id: intent.id.clone(),
            status: self.intent_status(&intent) as i32,
            client_secret: format!("{}_secret", intent.id),
            payment_url: String::new(),
            expires_at: Some(ts(intent.expires_ms)),
            error: None,
            replayed,
        })
    }

    fn intent_status(&self, i: &Intent) -> pay::PaymentStatus {
        match i.status {
            IntentStatus::Pending if self.now() >= i.expires_ms => pay::PaymentStatus::Expired,
            IntentStatus::Pending => pay::PaymentStatus::Pending,
            IntentStatus::Approved => pay::PaymentStatus::Approved,
            IntentStatus::Failed => pay::PaymentStatus::Failed,
            IntentStatus::Cancelled => pay::PaymentStatus::Cancelled,
        }
    }

    /// Decides the intent's outcome and when it is due, and keeps it in the store (so that a
    /// restart loses nothing: see [`Backends::resume_outcomes`]); a timer then records and
    /// reports it. With `keep_existing`, an outcome kept before stays as it was.
    async fn simulate(&self, intent: &Intent, keep_existing: bool) -> Result<()> {
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

    async fn process_payment_inner(
        &self,
        req: res::ProcessPaymentRequest,
    ) -> Result<res::ProcessPaymentResponse> {
        check_reservation_id(&req.reservation_id)?;
        if req.payment_intent_id.is_empty() {
            return Err(ServiceError::InvalidArgument(
                "payment_intent_id is required".into(),
            ));
        }
        intent_event(&req.payment_intent_id)?;
        let result = res::PaymentResult::try_from(req.result)
            .ok()
            .filter(|r| *r != res::PaymentResult::Unspecified)
            .ok_or_else(|| {
                ServiceError::InvalidArgument("result must be APPROVED, FAILED or CANCELLED".into())
            })?;
        let intent = self
            .0
            .store
            .intent(&req.payment_intent_id)
            .await?
            .ok_or_else(|| ServiceError::IntentNotFound(req.payment_intent_id.clone()))?;
        if intent.reservation_id != req.reservation_id {
            return Err(ServiceError::InvalidArgument(
                "the intent pays another reservation".into(),
            ));
        }
        if let Some(m) = &req.amount {
            if m.amount_cents != intent.amount_cents {
                return Err(ServiceError::InvalidArgument(
                    "amount does not match the intent".into(),
                ));
            }
        }
        // The result must agree with the provider's record (what a signed webhook reports).
        let agrees = match result {
            res::PaymentResult::Approved => intent.status == IntentStatus::Approved,
            _ => intent.status != IntentStatus::Approved,
        };
        if !agrees {
            return Err(ServiceError::FailedPrecondition(format!(
                "the payment is {:?}, not {:?}",
                intent.status, result
            )));
        }
        let (r, changed) = if result == res::PaymentResult::Approved {
            self.confirm(&req.reservation_id, &intent.id).await?
        } else {
            if intent.status == IntentStatus::Pending {
                let st = if result == res::PaymentResult::Cancelled {
                    IntentStatus::Cancelled
                } else {
                    IntentStatus::Failed
                };
                let code = (!req.failure_code.is_empty()).then_some(req.failure_code.as_str());
                self.0
                    .store
                    .settle_intent(&intent.id, st, code, self.now())
                    .await?;
            }
            let (r, changed) = self
                .0
                .store
                .release(&req.reservation_id, ResStatus::Cancelled, false, self.now())
                .await?;
            if changed {
                tracing::info!(reservation_id = %r.id, "payment failed; reservation cancelled");
            }
            (r, changed)
        };
        let st = r.status_at(self.now());
        Ok(res::ProcessPaymentResponse {
            status: if changed {
                res::ProcessingStatus::Success
            } else {
                res::ProcessingStatus::AlreadyProcessed
            } as i32,
            reservation_status: st as i32,
            order_id: r.order_id.clone().unwrap_or_default(),
            processed_at: Some(ts(self.now())),
            seats: seats_of(&r, seat_status_of(st)),
            error: None,
        })
    }
}

fn answer<T>(r: Result<T>) -> std::result::Result<Response<T>, Status> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl res::reservation_service_server::ReservationService for Backends {
    async fn create_reservation(
        &self,
        request: Request<res::CreateReservationRequest>,
    ) -> std::result::Result<Response<res::CreateReservationResponse>, Status> {
        answer(self.create_reservation_inner(request.into_inner()).await)
    }

    async fn get_reservation(
        &self,
        request: Request<res::GetReservationRequest>,
    ) -> std::result::Result<Response<res::GetReservationResponse>, Status> {
        let req = request.into_inner();
        answer(self.load(&req.reservation_id, &req.user_id).await.map(|r| {
            res::GetReservationResponse {
                reservation: Some(reservation_msg(&r, self.now())),
                error: None,
            }
        }))
    }

    async fn confirm_reservation(
        &self,
        request: Request<res::ConfirmReservationRequest>,
    ) -> std::result::Result<Response<res::ConfirmReservationResponse>, Status> {
        let req = request.into_inner();
        let out = async {
            let r = self.load(&req.reservation_id, &req.user_id).await?;
            let intent = self
                .0
                .store
                .intent(&req.payment_intent_id)
                .await?
                .filter(|i| i.reservation_id == r.id)
                .ok_or_else(|| ServiceError::IntentNotFound(req.payment_intent_id.clone()))?;
            if intent.status != IntentStatus::Approved {
                return Err(ServiceError::FailedPrecondition(format!(
                    "the payment is {:?}, not approved",
                    intent.status
                )));
            }
            let (r, _) = self.confirm(&r.id, &intent.id).await?;
            Ok(res::ConfirmReservationResponse {
                order_id: r.order_id.clone().unwrap_or_default(),
                status: r.status as i32,
                confirmed_at: r.confirmed_ms.map(ts),
                confirmed_seats: seats_of(&r, SeatStatus::Sold),
                error: None,
            })
        }
        .await;
        answer(out)
    }

    async fn cancel_reservation(
        &self,
        request: Request<res::CancelReservationRequest>,
    ) -> std::result::Result<Response<res::CancelReservationResponse>, Status> {
        let req = request.into_inner();
        let out = async {
            let r = self.load(&req.reservation_id, &req.user_id).await?;
            let (r, changed) = self
                .0
                .store
                .release(&r.id, ResStatus::Cancelled, false, self.now())
                .await?;
            Ok(res::CancelReservationResponse {
                status: r.status as i32,
                released_seats: if changed {
                    seats_of(&r, SeatStatus::Available)
                } else {
                    Vec::new()
                },
                error: None,
            })
        }
        .await;
        answer(out)
    }
}

#[tonic::async_trait]
impl res::inventory_server::Inventory for Backends {
    async fn check_availability(
        &self,
        request: Request<res::CheckAvailabilityRequest>,
    ) -> std::result::Result<Response<res::CheckAvailabilityResponse>, Status> {
        answer(self.check_availability_inner(request.into_inner()).await)
    }

    async fn commit_reservation(
        &self,
        request: Request<res::CommitReservationRequest>,
    ) -> std::result::Result<Response<res::CommitReservationResponse>, Status> {
        let req = request.into_inner();
        let out = async {
            if req.payment_intent_id.is_empty() {
                return Err(ServiceError::InvalidArgument(
                    "payment_intent_id is required".into(),
                ));
            }
            let r = self.load(&req.reservation_id, &req.user_id).await?;
            check_matches(&r, &req.event_id, &req.seat_ids)?;
            if req.quantity != 0 && req.quantity as usize != r.seats.len() {
                return Err(ServiceError::InvalidArgument(
                    "quantity does not match the reservation".into(),
                ));
            }
            let (r, _) = self.confirm(&r.id, &req.payment_intent_id).await?;
            Ok(res::CommitReservationResponse {
                order_id: r.order_id.clone().unwrap_or_default(),
                committed_seats: seats_of(&r, SeatStatus::Sold),
                status: r.status as i32,
                error: None,
            })
        }
        .await;
        answer(out)
    }

    async fn release_hold(
        &self,
        request: Request<res::ReleaseHoldRequest>,
    ) -> std::result::Result<Response<res::ReleaseHoldResponse>, Status> {
        let req = request.into_inner();
        let out = async {
            let r = self.load(&req.reservation_id, "").await?;
            check_matches(&r, &req.event_id, &req.seat_ids)?;
            let (r, changed) = self
                .0
                .store
                .release(&r.id, ResStatus::Cancelled, false, self.now())
                .await?;
            Ok(res::ReleaseHoldResponse {
                released_seats: if changed {
                    seats_of(&r, SeatStatus::Available)
                } else {
                    Vec::new()
                },
                status: r.status as i32,
                error: None,
            })
        }
        .await;
        answer(out)
    }
}

#[tonic::async_trait]
impl res::worker_service_server::WorkerService for Backends {
    async fn process_reservation_expiry(
        &self,
        request: Request<res::ProcessExpiryRequest>,
    ) -> std::result::Result<Response<res::ProcessExpiryResponse>, Status> {
        let req = request.into_inner();
        let out = async {
            let r = self.load(&req.reservation_id, "").await?;
            check_matches(&r, &req.event_id, &req.seat_ids)?;
            let (r, changed) = self
                .0
                .store
                .release(&r.id, ResStatus::Expired, true, self.now())
                .await?;
            Ok(res::ProcessExpiryResponse {
                status: if changed {
                    res::ProcessingStatus::Success
                } else {
                    res::ProcessingStatus::AlreadyProcessed
                } as i32,
                released_seats: if changed {
                    seats_of(&r, SeatStatus::Available)
                } else {
                    Vec::new()
                },
                processed_at: Some(ts(self.now())),
                next_action: "completed".into(),
                error: None,
            })
        }
        .await;
        answer(out)
    }

    async fn process_payment_result(
        &self,
        request: Request<res::ProcessPaymentRequest>,
    ) -> std::result::Result<Response<res::ProcessPaymentResponse>, Status> {
        answer(self.process_payment_inner(request.into_inner()).await)
    }
}

#[tonic::async_trait]
impl pay::payment_service_server::PaymentService for Backends {
    async fn create_payment_intent(
        &self,
        request: Request<pay::CreatePaymentIntentRequest>,
    ) -> std::result::Result<Response<pay::CreatePaymentIntentResponse>, Status> {
        answer(self.create_intent_inner(request.into_inner()).await)
    }

    async fn get_payment_status(
        &self,
        request: Request<pay::GetPaymentStatusRequest>,
    ) -> std::result::Result<Response<pay::GetPaymentStatusResponse>, Status> {
        let req = request.into_inner();
        let out = async {
            if req.payment_intent_id.is_empty() {
                return Err(ServiceError::InvalidArgument(
                    "payment_intent_id is required".into(),
                ));
            }
            intent_event(&req.payment_intent_id)?;
            let i = self
                .0
                .store
                .intent(&req.payment_intent_id)
                .await?
                .ok_or_else(|| ServiceError::IntentNotFound(req.payment_intent_id.clone()))?;
            Ok(pay::GetPaymentStatusResponse {
                payment_intent_id: i.id.clone(),
                reservation_id: i.reservation_id.clone(),
                status: self.intent_status(&i) as i32,
                amount: Some(money(i.amount_cents, &i.currency)),
                scenario: i.scenario as i32,
                failure_code: i.failure_code.clone().unwrap_or_default(),
                created_at: Some(ts(i.created_ms)),
                expires_at: Some(ts(i.expires_ms)),
                error: None,
            })
        }
        .await;
        answer(out)
    }
}

impl Backends {
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

#[tonic::async_trait]
impl proto::common::v1::admin_service_server::AdminService for Backends {
    async fn get_system_health(
        &self,
        _request: Request<proto::common::v1::SystemHealthRequest>,
    ) -> std::result::Result<Response<proto::common::v1::SystemHealthResponse>, Status> {
        use proto::common::v1::{DependencyStatus, ServiceHealthStatus, SystemHealthStatus as H};
        let t0 = std::time::Instant::now();
        let ping = self.0.store.ping().await;
        let status = if ping.is_ok() {
            H::Healthy
        } else {
            H::Unhealthy
        };
        let services = [
            "reservation.v1.ReservationService",
            "reservation.v1.Inventory",
            "payment.v1.PaymentService",
            "reservation.v1.WorkerService",
        ]
        .iter()
        .map(|name| ServiceHealthStatus {
            name: (*name).to_owned(),
            status: status as i32,
            message: String::new(),
        })
        .collect();
        Ok(Response::new(proto::common::v1::SystemHealthResponse {
            overall_status: status as i32,
            services,
            dependencies: vec![DependencyStatus {
                name: "store".into(),
                status: status as i32,
                latency_ms: t0.elapsed().as_millis() as i64,
                message: ping.err().map(|e| e.to_string()).unwrap_or_default(),
            }],
            checked_at: Some(ts(self.now())),
            error: None,
        }))
    }

    async fn emergency_action(
        &self,
        request: Request<proto::common::v1::EmergencyActionRequest>,
    ) -> std::result::Result<Response<proto::common::v1::EmergencyActionResponse>, Status> {
        use proto::common::v1::EmergencyActionType as A;
        let req = request.into_inner();
        let out = async {
            if !req.confirm {
                return Err(ServiceError::InvalidArgument("confirm must be true".into()));
            }
            match A::try_from(req.action) {
                Ok(A::CancelReservations) => {}
                _ => {
                    return Err(ServiceError::InvalidArgument(
                        "the backends take only CANCEL_RESERVATIONS; the other actions are the gateway's"
                            .into(),
                    ))
                }
            }
            let n = self.cancel_all_holds(&req.event_id).await?;
            tracing::warn!(event_id = %req.event_id, operator = %req.operator_id, reason = %req.reason, cancelled = n, "emergency: pending reservations cancelled");
            Ok(proto::common::v1::EmergencyActionResponse {
                executed: true,
                action_id: format!("act_{}", uuid::Uuid::new_v4().simple()),
                executed_at: Some(ts(self.now())),
                message: format!("cancelled {n} pending reservations"),
                error: None,
            })
        }
        .await;
        answer(out)
    }
}
