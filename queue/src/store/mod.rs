//! Where queue state lives: one trait, two stores with the same semantics.
//!
//! [`RedisStore`] runs every multi-key step as one Lua script, so it is atomic and shared by
//! every gateway replica; [`MemoryStore`] is the embedded default for a single process and the
//! model that the property test holds Redis to.

use crate::error::Result;
use crate::ids::{EventId, SessionKey};
use crate::model::{
    Action, AdmitReport, EnterOutcome, EventConfig, EventInfo, Joined, Place, Pulse, SweepReport,
};
use async_trait::async_trait;
use rand::Rng;

mod batched;
mod forward;
mod memory;
mod redis;

pub use self::batched::{BatchOptions, Batched};
pub use self::memory::MemoryStore;
pub use self::redis::{RedisOptions, RedisStore};
/// The attribute [`forward_store!`](crate::forward_store) puts on the impl it writes.
#[doc(hidden)]
pub use async_trait::async_trait as __async_trait;

/// Lowest score a pre-queue draw may take: the draw is in `[-2^23 + 1, -1]`, below every
/// ticket. Redis keeps `draw * 2^30 + ticket` as the score, exact in a double (see lib.lua);
/// equal draws (about one pair in 8 million draws) keep arrival order.
pub const PRE_SCORE_MIN: i64 = -(1 << 23) + 1;

/// The draw of every priority place (access codes): below every pre-queue draw, so the
/// priority lane sorts ahead of the pre-queue and of every ticket, in arrival order.
pub const PRIORITY_DRAW: i64 = -(1 << 23);

/// Most access codes one [`Store::add_access_codes`] call (and one admin request) takes.
pub const MAX_ACCESS_CODES_PER_CALL: usize = 10_000;

/// An access code as the stores keep it: its SHA-256, never the code.
pub type CodeHash = [u8; 32];

/// Tickets an event hands out at most (2^30 - 1, about 1.07 billion places); past it joins are
/// refused as if the event were closed.
pub const MAX_TICKETS: u64 = (1 << 30) - 1;

/// Entries kept in an event's departure log (`DLOG_MAX` in lib.lua).
pub const DLOG_MAX: usize = 1024;

/// Most tickets one [`Store::places`] call reads (callers split bigger batches).
pub const PLACES_BATCH: usize = 4096;

/// Largest event epoch, 2^53 - 1: an epoch stays exact as a Lua number (a double) in the
/// scripts and as a JSON number wherever a waiting token's claims are read.
pub const MAX_EPOCH: u64 = (1 << 53) - 1;

/// A new event's epoch, uniform in `[1, MAX_EPOCH]`: neither the epoch nor the lottery seeded
/// from it follows from when the event was created, and an event created again (its data lost)
/// gets another one, so tokens of the old queue are refused. (0 is the epoch of events from
/// before epochs.)
pub fn new_epoch() -> u64 {
    rand::thread_rng().gen_range(1..=MAX_EPOCH)
}

/// One join of a batch ([`Store::join_many`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinRequest {
    /// Who joins.
    pub session: SessionKey,
    /// The secret draw used when the event is not yet open, in `[PRE_SCORE_MIN, -1]`.
    pub pre_score: i64,
    /// The SHA-256 of the join's access code: a new place takes the priority lane and spends
    /// the code; an unknown code, or one another session spent, refuses the join (the batch).
    pub access_code: Option<CodeHash>,
}

impl JoinRequest {
    /// A join without an access code.
    pub fn new(session: SessionKey, pre_score: i64) -> Self {
        Self {
            session,
            pre_score,
            access_code: None,
        }
    }
}

/// A place as the store's calls name it: its ticket and the session the ticket was given to.
/// The two travel together (a waiting token carries both) because each store finds a place by
/// one of them: memory by ticket, Redis by session (see lib.lua).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// The place's ticket.
    pub ticket: u64,
    /// The session the ticket was given to.
    pub session: SessionKey,
}

/// One status read of a batch ([`Store::status_many`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRequest {
    /// Whose place.
    pub holder: Holder,
    /// Whether the read keeps a waiting place alive.
    pub heartbeat: bool,
}

/// The queue's state operations. Every method takes the caller's clock (`now_ms`) so that time
/// is injected, and every method on an unknown event fails with `EventNotFound`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates an event with a fresh random epoch ([`new_epoch`]) or updates one; true when it
    /// was created.
    async fn configure(&self, event: &EventId, config: &EventConfig, now_ms: u64) -> Result<bool> {
        self.configure_with_epoch(event, config, new_epoch(), now_ms)
            .await
    }
    /// Creates an event whose epoch is `epoch` (in `[1, MAX_EPOCH]`) or updates one, which keeps
    /// the epoch it has; true when it was created. The epoch is an input, not drawn here, so
    /// that a store is a function of its inputs: the property test gives both stores the same.
    async fn configure_with_epoch(
        &self, event: &EventId, config: &EventConfig, epoch: u64, now_ms: u64,
    ) -> Result<bool>;
    /// The event's configuration and counters, or None.
    async fn info(&self, event: &EventId, now_ms: u64) -> Result<Option<EventInfo>>;
    /// Applies an emergency action.
    async fn act(&self, event: &EventId, action: Action) -> Result<()>;
    /// Every configured event.
    async fn events(&self) -> Result<Vec<EventId>>;
    // `join` and `status` below are alike in shape only: two calls, each a batch of one of its
    // own batch method; what they share, answering a batch of one, is `only`.
    /// Joins `session` (or returns its standing place). `pre_score` in
    /// `[PRE_SCORE_MIN, -1]` is the secret draw used when the event is not yet open. A batch of
    /// one [`Store::join_many`], so that each store writes its join once.
    async fn join(
        &self, event: &EventId, session: SessionKey, pre_score: i64, now_ms: u64,
    ) -> Result<Joined> {
        let joins = [JoinRequest::new(session, pre_score)];
        only(self.join_many(event, &joins, now_ms).await?, "join")
    }
    /// Joins of one event applied in order, with exactly the answers of as many [`Store::join`]
    /// calls at `now_ms`; an error is the whole batch's (each join would have had it alone).
    async fn join_many(
        &self, event: &EventId, joins: &[JoinRequest], now_ms: u64,
    ) -> Result<Vec<Joined>>;
    /// Where `ticket` (given to `session`) stands; with `heartbeat` the call also keeps a
    /// waiting place alive. A batch of one [`Store::status_many`].
    async fn status(
        &self, event: &EventId, holder: Holder, heartbeat: bool, now_ms: u64,
    ) -> Result<Place> {
        let reads = [StatusRequest { holder, heartbeat }];
        only(self.status_many(event, &reads, now_ms).await?, "status")
    }
    /// Status reads of one event applied in order, with exactly the answers of as many
    /// [`Store::status`] calls at `now_ms`; an error is the whole batch's.
    async fn status_many(
        &self, event: &EventId, reads: &[StatusRequest], now_ms: u64,
    ) -> Result<Vec<Place>>;
    /// Turns a READY place into an admission (idempotent).
    async fn enter(&self, event: &EventId, holder: Holder, now_ms: u64) -> Result<EnterOutcome>;
    /// Gives up the place (waiting, ready or admitted); true when something was held.
    async fn leave(&self, event: &EventId, holder: Holder, now_ms: u64) -> Result<bool>;
    /// One admission tick: expire stale READY slots and admissions, then admit within rate and
    /// capacity.
    async fn admit(&self, event: &EventId, now_ms: u64) -> Result<AdmitReport>;
    /// One bounded step of the idle sweep (reads at most `budget` x 64 waiting places).
    async fn sweep(&self, event: &EventId, budget: u32, now_ms: u64) -> Result<SweepReport>;
    /// The event's [`Pulse`]: its flags and the departures since log sequence `since`.
    async fn pulse(&self, event: &EventId, since: u64) -> Result<Pulse>;
    /// Where each of `holders` (at most [`PLACES_BATCH`]) stands, in order, and the departure
    /// log sequence at which those positions are exact; with `heartbeat` every waiting one is
    /// kept alive, as a status call would.
    async fn places(
        &self, event: &EventId, holders: &[Holder], heartbeat: bool, now_ms: u64,
    ) -> Result<(u64, Vec<Place>)>;
    /// Records that the event's queue stood still from `from_ms` to `until_ms` (MAINTENANCE_MODE:
    /// nobody could poll or be admitted): nobody's idle timeout counts that time, and every
    /// READY deadline moves on by it. Idempotent per `from_ms`; true when applied.
    async fn resume(&self, event: &EventId, from_ms: u64, until_ms: u64) -> Result<bool>;
    /// Checks that the store answers.
    async fn ping(&self) -> Result<()>;
    /// Adds unspent access codes (by hash, at most [`MAX_ACCESS_CODES_PER_CALL`]) to the event;
    /// a hash already there keeps its state. Returns how many were added.
    async fn add_access_codes(&self, event: &EventId, codes: &[CodeHash]) -> Result<u64>;
    /// Removes access codes (spent or not); a place already taken with one stays. Returns how
    /// many were there.
    async fn revoke_access_codes(&self, event: &EventId, codes: &[CodeHash]) -> Result<u64>;
    /// Records `id` (at most [`CLAIM_ID_MAX`] characters of `[A-Za-z0-9_-]`) as used within
    /// `event` until `until_ms`; true for the first claim, false when it was already claimed
    /// and has not lapsed. What makes a join challenge single-use across replicas. The one
    /// method that does not look the event up (its caller has).
    async fn claim_once(
        &self, event: &EventId, id: &str, until_ms: u64, now_ms: u64,
    ) -> Result<bool>;
}

/// The one answer to a batch of one request; `what` names the call in the error.
fn only<T>(answers: Vec<T>, what: &str) -> Result<T> {
    match <[T; 1]>::try_from(answers) {
        Ok([answer]) => Ok(answer),
        Err(answers) => Err(crate::error::QueueError::Protocol(format!(
            "{} {what} answers for one request",
            answers.len()
        ))),
    }
}

/// Longest id [`Store::claim_once`] takes.
pub const CLAIM_ID_MAX: usize = 64;

/// Checks an id for [`Store::claim_once`] (it becomes part of a Redis key).
pub(crate) fn check_claim_id(id: &str) -> Result<()> {
    if crate::ids::is_key_safe(id, CLAIM_ID_MAX) {
        Ok(())
    } else {
        Err(crate::error::QueueError::InvalidArgument(format!(
            "a claim id must match [A-Za-z0-9_-]{{1,{CLAIM_ID_MAX}}}"
        )))
    }
}
