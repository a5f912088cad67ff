//! Group commit: requests for one key (an event, a webhook namespace) that arrive close together
//! run as one store call, so a burst of N costs one Redis round trip, one script call and one
//! `WAIT` instead of N.
//!
//! How a batch forms (no timer): each key has a lane. A request joins the lane's pending list;
//! if fewer than `max_in_flight` batches of that lane are running, it also starts a drain task.
//! A drain task takes up to `max_batch` pending requests, runs them as one call, answers each,
//! and repeats until nothing is pending. While a batch is in flight the next arrivals gather
//! behind it, so batches grow with the load and a lone request is sent at once: a request waits
//! at most for the batch ahead of it (itself bounded by the Redis command timeout) plus its own.
//! That is the time bound; `max_batch` is the count bound. The drain runs in its own task, not
//! in a requester's future: a client that hangs up drops its future, and a batch half sent
//! would strand the others.
//!
//! Bounded memory: a lane holds at most `max_pending` requests; the next one is refused at once
//! with [`Full`] (an HTTP 503 + `Retry-After` for the caller). A failed batch gives each of its
//! requests the error it would have had alone: the call's error is the whole batch's, and a
//! batch only ever holds requests of one key.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Bounds of a group commit, per lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupOptions {
    /// Most requests in one store call.
    pub max_batch: usize,
    /// Most requests waiting for a batch; more are refused with [`Full`].
    pub max_pending: usize,
    /// Batches of one lane in flight at once (on different connections).
    pub max_in_flight: usize,
}

impl Default for GroupOptions {
    /// 256 per batch, 8,192 pending, 1 in flight (the defaults measured in docs/benchmarks.md).
    fn default() -> Self {
        Self {
            max_batch: 256,
            max_pending: 8192,
            max_in_flight: 1,
        }
    }
}

/// A lane was full: the request was not queued (nothing was stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// A request waiting for its batch, its clock, and where its answer goes.
type Waiter<Req, Resp, E> = (Req, u64, oneshot::Sender<Result<Resp, E>>);

struct Lane<Req, Resp, E> {
    state: Mutex<LaneState<Req, Resp, E>>,
}

struct LaneState<Req, Resp, E> {
    pending: VecDeque<Waiter<Req, Resp, E>>,
    in_flight: usize,
}

impl<Req: Send + 'static, Resp: Send + 'static, E: Clone + Send + 'static> Lane<Req, Resp, E> {
    fn new() -> Self {
        Self {
            state: Mutex::new(LaneState {
                pending: VecDeque::new(),
                in_flight: 0,
            }),
        }
    }

    /// Runs batches until nothing is pending.
    async fn drain<F, Fut>(&self, max_batch: usize, run: F, short: impl Fn(usize, usize) -> E)
    where
        F: Fn(Vec<Req>, u64) -> Fut,
        Fut: Future<Output = Result<Vec<Resp>, E>>,
    {
        loop {
            let batch: Vec<Waiter<Req, Resp, E>> = {
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
                    let e = short(answers.len(), n);
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

    fn idle(&self) -> bool {
        let st = self.state.lock().expect("lane");
        st.pending.is_empty() && st.in_flight == 0
    }
}

/// The lanes of one operation, by key.
pub struct Group<K, Req, Resp, E> {
    opts: GroupOptions,
    lanes: Mutex<Lanes<K, Req, Resp, E>>,
}

/// One lane per key (per event): batches never mix keys.
type Lanes<K, Req, Resp, E> = HashMap<K, Arc<Lane<Req, Resp, E>>>;

impl<K, Req, Resp, E> std::fmt::Debug for Group<K, Req, Resp, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// Lanes kept before idle ones are forgotten: keys come from clients (any event id can be
/// named), so the map must not grow with them.
const LANES_KEPT: usize = 1024;

impl<K, Req, Resp, E> Group<K, Req, Resp, E>
where
    K: Hash + Eq + Clone + Send + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
    E: Clone + From<Full> + Send + 'static,
{
    /// Lanes within `opts`.
    pub fn new(opts: GroupOptions) -> Self {
        Self {
            opts,
            lanes: Mutex::new(HashMap::new()),
        }
    }

    /// Queues `req` in `key`'s lane and waits for its answer. `run` makes one store call of a
    /// batch at a clock; `short` is the error when it answers fewer or more than it was given.
    pub async fn submit<F, Fut, S>(
        &self, key: &K, req: Req, now_ms: u64, run: F, short: S,
    ) -> Result<Resp, E>
    where
        F: Fn(Vec<Req>, u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Resp>, E>> + Send,
        S: Fn(usize, usize) -> E + Send + Sync + 'static,
    {
        let lane = self.lane(key);
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut st = lane.state.lock().expect("lane");
            if st.pending.len() >= self.opts.max_pending {
                return Err(E::from(Full));
            }
            st.pending.push_back((req, now_ms, tx));
            let start = st.in_flight < self.opts.max_in_flight.max(1);
            if start {
                st.in_flight += 1;
            }
            start
        };
        if start {
            let max_batch = self.opts.max_batch.max(1);
            tokio::spawn(async move { lane.drain(max_batch, run, short).await });
        }
        match rx.await {
            Ok(r) => r,
            // Only a panicking store call drops a sender unanswered.
            Err(_) => Err(E::from(Full)),
        }
    }

    fn lane(&self, key: &K) -> Arc<Lane<Req, Resp, E>> {
        let mut lanes = self.lanes.lock().expect("lanes");
        if let Some(lane) = lanes.get(key) {
            return lane.clone();
        }
        if lanes.len() >= LANES_KEPT {
            lanes.retain(|_, lane| !lane.idle());
        }
        let lane = Arc::new(Lane::new());
        lanes.insert(key.clone(), lane.clone());
        lane
    }
}
