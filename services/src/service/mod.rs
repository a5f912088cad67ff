//! The gRPC services over one [`Backends`] core, one file a service: [`reservation`]
//! (ReservationService), [`inventory`] (Inventory), [`payment`] (PaymentService), [`worker`]
//! (WorkerService) and [`admin`] (AdminService); beside them the payment [`simulator`] that
//! settles intents and reports them by webhook, and the hold [`expiry`] sweep. What they share
//! (loading and confirming a reservation, the proto views) stays here and in [`convert`].

/// The tonic impls of gRPC services on [`Backends`]: each method answers its request message
/// with the [`Handle`] impl for that message (in the service's file), an error as its gRPC
/// status.
macro_rules! grpc_services {
    ($($service:path { $($method:ident($req:ty) -> $resp:ty;)+ })+) => {
        $(
            #[tonic::async_trait]
            impl $service for Backends {
                $(
                    async fn $method(
                        &self,
                        request: tonic::Request<$req>,
                    ) -> std::result::Result<tonic::Response<$resp>, tonic::Status> {
                        answer(Handle::<$req>::handle(self, request.into_inner()).await)
                    }
                )+
            }
        )+
    };
}

/// How [`Backends`] answers one gRPC request message `Req`: one impl a method of
/// [`grpc_services!`], in its service's file.
trait Handle<Req> {
    /// The method's response message.
    type Reply;
    /// Answers `req`.
    async fn handle(&self, req: Req) -> Result<Self::Reply>;
}

mod admin;
mod convert;
mod expiry;
mod inventory;
mod payment;
mod reservation;
mod simulator;
mod worker;

pub use simulator::webhook_payload;

use crate::clock::Clock;
use crate::error::{Result, ServiceError};
use crate::model::*;
use crate::payment_webhooks::WebhookSender;
use crate::store::{IdemKey, Store};
use convert::{check_matches, check_reservation_id};
use proto::payment::v1 as pay;
use proto::reservation::v1 as res;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Response, Status};

// The gRPC surface: every method of four services (AdminService is written out in admin.rs).
grpc_services! {
    res::reservation_service_server::ReservationService {
        create_reservation(res::CreateReservationRequest) -> res::CreateReservationResponse;
        get_reservation(res::GetReservationRequest) -> res::GetReservationResponse;
        confirm_reservation(res::ConfirmReservationRequest) -> res::ConfirmReservationResponse;
        cancel_reservation(res::CancelReservationRequest) -> res::CancelReservationResponse;
    }
    res::inventory_server::Inventory {
        check_availability(res::CheckAvailabilityRequest) -> res::CheckAvailabilityResponse;
        commit_reservation(res::CommitReservationRequest) -> res::CommitReservationResponse;
        release_hold(res::ReleaseHoldRequest) -> res::ReleaseHoldResponse;
    }
    pay::payment_service_server::PaymentService {
        create_payment_intent(pay::CreatePaymentIntentRequest) -> pay::CreatePaymentIntentResponse;
        get_payment_status(pay::GetPaymentStatusRequest) -> pay::GetPaymentStatusResponse;
    }
    res::worker_service_server::WorkerService {
        process_reservation_expiry(res::ProcessExpiryRequest) -> res::ProcessExpiryResponse;
        process_payment_result(res::ProcessPaymentRequest) -> res::ProcessPaymentResponse;
    }
}

/// Most seats listed by one CheckAvailability answer.
pub const MAX_LISTED_SEATS: usize = 100;

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

redis_layer::debug_some!(Backends, |b| settings = b.0.settings);

impl Backends {
    /// A core over `store`, with time from `clock`; `webhooks` None records outcomes without
    /// reporting them.
    pub fn new(
        store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: Settings,
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

    /// The idempotency key of a request: its slot the digest of (`owner`, the client's `key`),
    /// remembered for the configured window.
    fn idem_key(&self, owner: &str, key: &str, fingerprint: String) -> IdemKey {
        IdemKey {
            slot: digest(&[owner, key]),
            fingerprint,
            ttl_ms: self.0.settings.idempotency_window.as_millis() as u64,
        }
    }

    /// Seeds an event: `seats` seats `A-1`…, each at `price_cents`.
    pub async fn seed(
        &self, event: &str, seats: u64, price_cents: i64, currency: &str,
    ) -> Result<()> {
        check_event_id(event)?;
        self.0.store.seed(event, seats, price_cents, currency).await
    }

    /// The reservation, NOT_FOUND when absent or (with `user_id`) someone else's.
    async fn load(&self, id: &str, user_id: &str) -> Result<Reservation> {
        check_reservation_id(id)?;
        match self.0.store.reservation(id).await? {
            Some(r) if user_id.is_empty() || r.user_id == user_id => Ok(r),
            _ => Err(ServiceError::ReservationNotFound(id.to_owned())),
        }
    }

    /// Releases the reservation `id` names, after checking that `event_id` and `seat_ids` (where
    /// given) are its own: ReleaseHold's and ProcessExpiry's step.
    async fn release_checked(
        &self, id: &str, event_id: &str, seat_ids: &[String], to: ResStatus, only_if_due: bool,
    ) -> Result<(Reservation, bool)> {
        let r = self.load(id, "").await?;
        check_matches(&r, event_id, seat_ids)?;
        self.release(&r.id, to, only_if_due).await
    }

    /// Releases a reservation's seats now, as `to` (with `only_if_due`, only a hold that ran
    /// out); whether it changed.
    async fn release(
        &self, id: &str, to: ResStatus, only_if_due: bool,
    ) -> Result<(Reservation, bool)> {
        self.0.store.release(id, to, only_if_due, self.now()).await
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
}

fn answer<T>(r: Result<T>) -> std::result::Result<Response<T>, Status> {
    r.map(Response::new).map_err(Status::from)
}
