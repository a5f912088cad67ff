//! Group commit: joins (and status reads) of one event that arrive close together go to the
//! store as one call ([`Store::join_many`], [`Store::status_many`]), so a burst of N requests
//! costs one Redis round trip, one script call and one `WAIT` instead of N.
//!
//! How a batch forms (no timer): each event has a lane per operation. A request joins the
//! lane's pending list; if fewer than `max_in_flight` batches of that lane are running, it also
//! starts a drain task. A drain task takes up to `max_batch` pending requests, runs them as one
//! call, answers each, and repeats until nothing is pending. While a batch is in flight the next
//! arrivals gather behind it, so batches grow with the load and a lone request is sent at once:
//! a request waits at most for the batch ahead of it (itself bounded by the Redis command
//! timeout) plus its own. The drain runs in its own task, not in a requester's future, because
//! a client that hangs up drops its future, and a batch half sent would strand the others.
//!
//! Bounded memory: a lane holds at most `max_pending` requests; the next one is refused with
//! [`QueueError::Overloaded`] (HTTP 503 + `Retry-After`). A failed batch gives each of its
//! requests the error it would have had alone (the store's error is the whole call's: every
//! request of one event fails the same way for an unknown event, a closed event, Redis
//! unavailable, or a `WAIT` that fell short).

use super::{JoinRequest, StatusRequest, Store};
use crate::error::{QueueError, Result};
use crate::ids::{EventId, SessionKey};
use crate::model::*;
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Bounds of the group commit, per event and operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Most requests in one store call.
    pub max_batch: usize,
    /// Most requests waiting for a batch; more are refused with [`QueueError::Overloaded`].
    pub max_pending: usize,
    /// Batches of one event and operation in flight at once (on different connections).
    pub max_in_flight: usize,
}

impl Default for BatchOptions {
    /// 256 per batch, 8,192 pending, 2 in flight: the defaults measured in docs/benchmarks.md.
    fn default() -> Self {
        Self {
            max_batch: 256,
            max_pending: 8192,
            max_in_flight: 2,
        }
    }
}

/// A request waiting for its batch, and where its answer goes.
type Waiter<Req, Resp> = (Req, u64, oneshot::Sender<Result<Resp>>);

/// The requests of one event and operation waiting for a batch.
struct Lane<Req, Resp> {
    state: Mutex<LaneState<Req, Resp>>,
}

struct LaneState<Req, Resp> {
    pending: VecDeque<Waiter<Req, Resp>>,
    in_flight: usize,
}

impl<Req: Send + 'static, Resp: Send + 'static> Lane<Req, Resp> {
    fn new() -> Self {
        Self {
            state: Mutex::new(LaneState {
                pending: VecDeque::new(),
                in_flight: 0,
            }),
        }
    }

    /// Queues `req` and waits for its answer; starts a drain task when the lane has room for
    /// another batch in flight.
    async fn submit<F, Fut>(
        self: &Arc<Self>,
        opts: BatchOptions,
        req: Req,
        now_ms: u64,
        run: F,
    ) -> Result<Resp>
    where
        F: Fn(Vec<Req>, u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Resp>>> + Send,
    {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut st = self.state.lock().expect("lane");
            if st.pending.len() >= opts.max_pending {
                return Err(QueueError::Overloaded);
            }
            st.pending.push_back((req, now_ms, tx));
            let start = st.in_flight < opts.max_in_flight.max(1);
            if start {
                st.in_flight += 1;
            }
            start
        };
        if start {
            let lane = self.clone();
            tokio::spawn(async move { lane.drain(opts.max_batch.max(1), run).await });
        }
        rx.await
            .unwrap_or_else(|_| Err(QueueError::Unavailable("batch abandoned".into())))
    }

    /// Runs batches until nothing is pending.
    async fn drain<F, Fut>(&self, max_batch: usize, run: F)
    where
        F: Fn(Vec<Req>, u64) -> Fut + Send + Sync,
        Fut: Future<Output = Result<Vec<Resp>>> + Send,
    {
        loop {
            let batch: Vec<Waiter<Req, Resp>> = {
                let mut st = self.state.lock().expect("lane");
                if st.pending.is_empty() {
                    st.in_flight -= 1;
                    return;
                }
                let n = st.pending.len().min(max_batch);
                st.pending.drain(..n).collect()
            };
            // The batch runs at its newest request's clock: time never runs backwards for the
            // store, and every request of the batch is answered as of the same instant.
            let now_ms = batch.iter().map(|w| w.1).max().unwrap_or(0);
            let mut senders = Vec::with_capacity(batch.len());
            let mut reqs = Vec::with_capacity(batch.len());
            for (req, _, tx) in batch {
                reqs.push(req);
                senders.push(tx);
            }
            let n = senders.len();
            match run(reqs, now_ms).await {
                Ok(answers) if answers.len() == n => {
                    for (tx, a) in senders.into_iter().zip(answers) {
                        let _ = tx.send(Ok(a));
                    }
                }
                Ok(answers) => {
                    let e =
                        QueueError::Protocol(format!("{} answers for {n} requests", answers.len()));
                    for tx in senders {
                        let _ = tx.send(Err(e.clone()));
                    }
                }
                Err(e) => {
                    for tx in senders {
                        let _ = tx.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// Whether nothing is pending or running (the lane can be forgotten).
    fn idle(&self) -> bool {
        let st = self.state.lock().expect("lane");
        st.pending.is_empty() && st.in_flight == 0
    }
}

/// The lanes of one operation, by event.
struct Lanes<Req, Resp> {
    map: Mutex<HashMap<EventId, Arc<Lane<Req, Resp>>>>,
}

impl<Req: Send + 'static, Resp: Send + 'static> Lanes<Req, Resp> {
    fn new() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, event: &EventId) -> Arc<Lane<Req, Resp>> {
        let mut map = self.map.lock().expect("lanes");
        if let Some(lane) = map.get(event) {
            return lane.clone();
        }
        // Lanes of unknown events must not pile up (any client can name an event id): before
        // adding one, forget the idle ones once the map has grown past what real sales use.
        if map.len() >= 1024 {
            map.retain(|_, lane| !lane.idle());
        }
        let lane = Arc::new(Lane::new());
        map.insert(event.clone(), lane.clone());
        lane
    }
}

/// A store whose joins and status reads are group-committed (see the module docs); every other
/// operation goes straight through.
pub struct Batched {
    inner: Arc<dyn Store>,
    opts: BatchOptions,
    joins: Lanes<JoinRequest, Joined>,
    reads: Lanes<StatusRequest, Place>,
}

impl std::fmt::Debug for Batched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batched")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Batched {
    /// Group-commits `inner`'s joins and status reads within `opts`.
    pub fn new(inner: Arc<dyn Store>, opts: BatchOptions) -> Self {
        Self {
            inner,
            opts,
            joins: Lanes::new(),
            reads: Lanes::new(),
        }
    }
}

#[async_trait]
impl Store for Batched {
    async fn configure(&self, event: &EventId, config: &EventConfig, now_ms: u64) -> Result<bool> {
        self.inner.configure(event, config, now_ms).await
    }

    async fn info(&self, event: &EventId, now_ms: u64) -> Result<Option<EventInfo>> {
        self.inner.info(event, now_ms).await
    }

    async fn act(&self, event: &EventId, action: Action) -> Result<()> {
        self.inner.act(event, action).await
    }

    async fn events(&self) -> Result<Vec<EventId>> {
        self.inner.events().await
    }

    async fn join(
        &self,
        event: &EventId,
        session: SessionKey,
        pre_score: i64,
        now_ms: u64,
    ) -> Result<Joined> {
        let inner = self.inner.clone();
        let ev = event.clone();
        self.joins
            .get(event)
            .submit(
                self.opts,
                JoinRequest { session, pre_score },
                now_ms,
                move |reqs, now| {
                    let inner = inner.clone();
                    let ev = ev.clone();
                    async move { inner.join_many(&ev, &reqs, now).await }
                },
            )
            .await
    }

    async fn join_many(
        &self,
        event: &EventId,
        joins: &[JoinRequest],
        now_ms: u64,
    ) -> Result<Vec<Joined>> {
        self.inner.join_many(event, joins, now_ms).await
    }

    async fn status(
        &self,
        event: &EventId,
        ticket: u64,
        heartbeat: bool,
        now_ms: u64,
    ) -> Result<Place> {
        let inner = self.inner.clone();
        let ev = event.clone();
        self.reads
            .get(event)
            .submit(
                self.opts,
                StatusRequest { ticket, heartbeat },
                now_ms,
                move |reqs, now| {
                    let inner = inner.clone();
                    let ev = ev.clone();
                    async move { inner.status_many(&ev, &reqs, now).await }
                },
            )
            .await
    }

    async fn status_many(
        &self,
        event: &EventId,
        reads: &[StatusRequest],
        now_ms: u64,
    ) -> Result<Vec<Place>> {
        self.inner.status_many(event, reads, now_ms).await
    }

    async fn enter(&self, event: &EventId, ticket: u64, now_ms: u64) -> Result<Entry> {
        self.inner.enter(event, ticket, now_ms).await
    }

    async fn leave(
        &self,
        event: &EventId,
        ticket: u64,
        session: SessionKey,
        now_ms: u64,
    ) -> Result<bool> {
        self.inner.leave(event, ticket, session, now_ms).await
    }

    async fn admit(&self, event: &EventId, now_ms: u64) -> Result<AdmitReport> {
        self.inner.admit(event, now_ms).await
    }

    async fn sweep(&self, event: &EventId, budget: u32, now_ms: u64) -> Result<SweepReport> {
        self.inner.sweep(event, budget, now_ms).await
    }

    async fn pulse(&self, event: &EventId, since: u64) -> Result<Pulse> {
        self.inner.pulse(event, since).await
    }

    async fn places(
        &self,
        event: &EventId,
        tickets: &[u64],
        heartbeat: bool,
        now_ms: u64,
    ) -> Result<(u64, Vec<Place>)> {
        self.inner.places(event, tickets, heartbeat, now_ms).await
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}
