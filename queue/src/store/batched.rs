//! Group commit of the queue: joins (and status reads) of one event that arrive close
//! together go to the store as one call ([`Store::join_many`], [`Store::status_many`]), so a
//! burst of N requests costs one Redis round trip, one script call and one `WAIT` instead of N.
//! What joins a batch is a lone request, as [`Store::join`] and [`Store::status`] send it; a
//! batch the caller made goes through as it is.
//! How batches form, their bounds, and what a failed batch answers: [`redis_layer::group`].
//! A full lane answers [`QueueError::Overloaded`] (HTTP 503 + `Retry-After`).

use super::{CodeHash, Holder, JoinRequest, StatusRequest, Store};
use crate::error::{QueueError, Result};
use crate::ids::EventId;
use crate::model::*;
use redis_layer::Group;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Bounds of the group commit, per event and operation (`max_batch`, `max_pending`,
/// `max_in_flight`; defaults 256, 8,192 and 1).
pub use redis_layer::GroupOptions as BatchOptions;

/// A store whose joins and status reads are group-committed (see the module docs); every other
/// operation goes straight through.
pub struct Batched {
    inner: Arc<dyn Store>,
    opts: BatchOptions,
    joins: Group<EventId, JoinRequest, Joined, QueueError>,
    reads: Group<EventId, StatusRequest, Place, QueueError>,
}

redis_layer::debug_some!(Batched, |b| opts = b.opts);

impl Batched {
    /// Group-commits `inner`'s joins and status reads within `opts`.
    pub fn new(inner: Arc<dyn Store>, opts: BatchOptions) -> Self {
        Self {
            inner,
            opts,
            joins: Group::new(opts),
            reads: Group::new(opts),
        }
    }
}

/// A store call that answered a different number of requests than it was given: a bug.
fn short(got: usize, want: usize) -> QueueError {
    QueueError::Protocol(format!("{got} answers for {want} requests"))
}

/// One of the inner store's batch calls ([`Store::join_many`] or [`Store::status_many`]).
type Many<Req, Resp> = for<'a> fn(
    &'a dyn Store,
    &'a EventId,
    &'a [Req],
    u64,
) -> Pin<Box<dyn Future<Output = Result<Vec<Resp>>> + Send + 'a>>;

impl Batched {
    /// Sends `reqs` as `many` of the inner store: a lone request that may share a batch
    /// (`alone` false) through `group`, so that it joins the others of its event, and anything
    /// else straight.
    async fn send<Req, Resp>(
        &self, group: &Group<EventId, Req, Resp, QueueError>, event: &EventId, reqs: &[Req],
        alone: bool, now_ms: u64, many: Many<Req, Resp>,
    ) -> Result<Vec<Resp>>
    where
        Req: Copy + Send + Sync + 'static,
        Resp: Send + 'static,
    {
        let req = match reqs {
            [req] if !alone => *req,
            _ => return many(&*self.inner, event, reqs, now_ms).await,
        };
        let inner = self.inner.clone();
        let ev = event.clone();
        let batch = move |reqs: Vec<Req>, now| {
            let inner = inner.clone();
            let ev = ev.clone();
            async move { many(&*inner, &ev, &reqs, now).await }
        };
        Ok(vec![group.submit(event, req, now_ms, batch, short).await?])
    }
}

crate::forward_store!(Batched, inner, [
    fn configure_with_epoch(event: &EventId, config: &EventConfig, epoch: u64, now_ms: u64) -> bool;
    fn info(event: &EventId, now_ms: u64) -> Option<EventInfo>;
    fn act(event: &EventId, action: Action) -> ();
    fn events() -> Vec<EventId>;
    fn enter(event: &EventId, holder: Holder, now_ms: u64) -> EnterOutcome;
    fn leave(event: &EventId, holder: Holder, now_ms: u64) -> bool;
    fn admit(event: &EventId, now_ms: u64) -> AdmitReport;
    fn sweep(event: &EventId, budget: u32, now_ms: u64) -> SweepReport;
    fn pulse(event: &EventId, since: u64) -> Pulse;
    fn resume(event: &EventId, from_ms: u64, until_ms: u64) -> bool;
    fn places(event: &EventId, holders: &[Holder], heartbeat: bool, now_ms: u64) -> (u64, Vec<Place>);
    fn ping() -> ();
    fn add_access_codes(event: &EventId, codes: &[CodeHash]) -> u64;
    fn revoke_access_codes(event: &EventId, codes: &[CodeHash]) -> u64;
    fn claim_once(event: &EventId, id: &str, until_ms: u64, now_ms: u64) -> bool;
], {
    /// A join with an access code goes alone: one wrong code refuses its whole batch, which
    /// must not take other people's joins with it.
    async fn join_many(
        &self,
        event: &EventId,
        joins: &[JoinRequest],
        now_ms: u64,
    ) -> Result<Vec<Joined>> {
        let coded = joins.iter().any(|j| j.access_code.is_some());
        let many: Many<JoinRequest, Joined> = |s, e, r, n| s.join_many(e, r, n);
        self.send(&self.joins, event, joins, coded, now_ms, many)
            .await
    }

    async fn status_many(
        &self,
        event: &EventId,
        reads: &[StatusRequest],
        now_ms: u64,
    ) -> Result<Vec<Place>> {
        let many: Many<StatusRequest, Place> = |s, e, r, n| s.status_many(e, r, n);
        self.send(&self.reads, event, reads, false, now_ms, many)
            .await
    }
});
