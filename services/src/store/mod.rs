//! Where reservations, seats and payment intents live: one trait, two stores with the same
//! semantics. [`RedisStore`] runs every multi-key step as one Lua script (atomic, shared by any
//! number of `backends` processes); [`MemoryStore`] is the embedded default for one process.

use crate::error::Result;
use crate::model::{Intent, IntentStatus, ResStatus, Reservation, Scenario};
use async_trait::async_trait;

mod memory;
mod redis;

pub use self::memory::MemoryStore;
pub use self::redis::{RedisOptions, RedisStore};

/// A seeded event's fixed facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInfo {
    /// Price of one seat, in cents.
    pub price_cents: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// Seats seeded.
    pub total: u64,
}

/// Where one seat stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatState {
    /// Free to hold.
    Free,
    /// Held by this reservation.
    Held(String),
    /// Sold to this reservation.
    Sold(String),
}

/// A request's idempotency key as the stores keep it: a request that names a slot seen within
/// its window is answered with what that slot made, or refused if its parameters differ.
#[derive(Debug, Clone)]
pub struct IdemKey {
    /// Digest of (owner, idempotency key): the deduplication slot.
    pub slot: String,
    /// Digest of the request's parameters, to detect a reused key.
    pub fingerprint: String,
    /// How long the key is remembered.
    pub ttl_ms: u64,
}

/// A request to hold seats, validated by the caller.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    /// The event.
    pub event_id: String,
    /// The id the reservation gets if it is created.
    pub reservation_id: String,
    /// The holder.
    pub user_id: String,
    /// Its idempotency key: the slot is a digest of (user, idempotency key).
    pub idem: IdemKey,
    /// Seats wanted when `seats` is empty (any free ones, best first).
    pub quantity: u32,
    /// Specific seats (validated ids, no duplicates), or empty.
    pub seats: Vec<String>,
    /// Hold length.
    pub hold_ms: u64,
    /// The admission the hold is made under and its limit; None: not counted.
    pub admission: Option<AdmissionLimit>,
}

/// How many active holds one admission may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionLimit {
    /// Digest of the admission id: the counting slot.
    pub slot: String,
    /// Most active (PENDING and unexpired) holds; at least 1.
    pub limit: u32,
}

/// A request to create a payment intent, validated by the caller.
#[derive(Debug, Clone)]
pub struct IntentRequest {
    /// The id the intent gets if it is created.
    pub intent_id: String,
    /// The reservation it pays.
    pub reservation_id: String,
    /// The simulated outcome.
    pub scenario: Scenario,
    /// Its idempotency key: the slot is a digest of (reservation, idempotency key).
    pub idem: IdemKey,
    /// The provider's own id for it (validated), which then names it within its event.
    pub provider_id: Option<String>,
}

/// A provider id that already names another intent of the event: it must name one.
fn taken_provider_id() -> crate::error::ServiceError {
    crate::error::ServiceError::FailedPrecondition(
        "provider_intent_id already names another intent".into(),
    )
}

/// A simulated payment outcome decided but not yet reported: kept in the store until its
/// webhook is delivered (or given up), so that a restarted process settles and reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOutcome {
    /// The intent it settles.
    pub intent_id: String,
    /// When it is due (Unix ms).
    pub due_ms: u64,
    /// Approved (else failed with `card_declined`).
    pub approve: bool,
    /// The id of its webhook: the same on every delivery, resends included, so the receiver
    /// deduplicates them.
    pub webhook_id: String,
}

/// The services' state operations. Time is injected (`now_ms`); ids are validated by callers.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates the event if needed and adds seats `0..seats` that do not exist yet (a restart
    /// never frees held or sold seats). Price and currency are set when the event is created.
    async fn seed(&self, event: &str, seats: u64, price_cents: i64, currency: &str) -> Result<()>;
    /// The event's facts, or None.
    async fn event(&self, event: &str) -> Result<Option<EventInfo>>;
    /// How many seats are free (within the score range when given) and the first `limit`.
    async fn free_seats(
        &self, event: &str, range: Option<(u64, u64)>, limit: usize,
    ) -> Result<(u64, Vec<String>)>;
    /// The state of each seat, None for a seat that does not exist.
    async fn seat_states(&self, event: &str, seats: &[String]) -> Result<Vec<Option<SeatState>>>;
    /// Holds seats atomically (all or none) and creates a PENDING reservation; a key seen within
    /// its window returns that reservation instead (true = replayed). With an admission, a hold
    /// is refused (`HoldLimit`) while that admission already has `limit` holds PENDING and
    /// unexpired (a replay is answered first: it creates nothing).
    async fn hold(&self, req: &HoldRequest, now_ms: u64) -> Result<(Reservation, bool)>;
    /// One reservation, or None.
    async fn reservation(&self, id: &str) -> Result<Option<Reservation>>;
    /// Sells a pending reservation's seats, only if it still holds all of them; a hold past its
    /// deadline is expired instead. Confirming again changes nothing (false = unchanged).
    async fn commit(
        &self, id: &str, intent_id: &str, order_id: &str, now_ms: u64,
    ) -> Result<(Reservation, bool)>;
    /// Frees a pending reservation's seats and sets `to` (CANCELLED or EXPIRED); with
    /// `only_if_due`, only once its hold has run out. A cancelled or expired one is returned
    /// unchanged (false); a confirmed one is a conflict.
    async fn release(
        &self, id: &str, to: ResStatus, only_if_due: bool, now_ms: u64,
    ) -> Result<(Reservation, bool)>;
    /// Expires up to `limit` of the event's holds that ran out; their ids.
    async fn expire_due(&self, event: &str, now_ms: u64, limit: usize) -> Result<Vec<String>>;
    /// Cancels up to `limit` of the event's pending holds, due or not (an emergency action);
    /// their ids.
    async fn cancel_holds(&self, event: &str, now_ms: u64, limit: usize) -> Result<Vec<String>>;
    /// Every seeded event.
    async fn events(&self) -> Result<Vec<String>>;
    /// Creates a PENDING intent for a pending reservation; a key seen within its window returns
    /// that intent instead (true = replayed). A provider id that already names another intent
    /// of the event is a FAILED_PRECONDITION.
    async fn create_intent(&self, req: &IntentRequest, now_ms: u64) -> Result<(Intent, bool)>;
    /// One intent, or None.
    async fn intent(&self, id: &str) -> Result<Option<Intent>>;
    /// The intent of `event` created with the provider's id `provider_id`, or None.
    async fn provider_intent(&self, event: &str, provider_id: &str) -> Result<Option<Intent>>;
    /// Records a pending intent's outcome (false when it already had one: unchanged).
    async fn settle_intent(
        &self, id: &str, status: IntentStatus, failure_code: Option<&str>, now_ms: u64,
    ) -> Result<(Intent, bool)>;
    /// Keeps `outcome` until [`Store::outcome_done`], replacing one kept for the same intent
    /// unless `keep_existing`; whether it was stored now.
    async fn outcome_put(&self, outcome: &PendingOutcome, keep_existing: bool) -> Result<bool>;
    /// The event's kept outcomes due by `due_by_ms`, earliest first: `limit` from `offset`.
    async fn outcomes(
        &self, event: &str, due_by_ms: u64, offset: usize, limit: usize,
    ) -> Result<Vec<PendingOutcome>>;
    /// Forgets a kept outcome.
    async fn outcome_done(&self, intent_id: &str) -> Result<()>;
    /// Checks that the store answers.
    async fn ping(&self) -> Result<()>;
}
