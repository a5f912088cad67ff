//! The consumer: reads the inbox as one member of the consumer group (every replica runs one,
//! each under its own name), forwards each entry, acknowledges on success, retries failures
//! with exponential backoff and full jitter, takes over entries a crashed consumer left
//! pending, and dead-letters an entry after its last attempt.
//!
//! Forwards run in a sliding window (see [`Consumer::run`]) and acknowledgements are batched.
//!
//! Delivery is at least once: an entry is acknowledged only after the forward succeeded, so a
//! crash between the two forwards it again. The receiver must be idempotent (the backends'
//! ProcessPaymentResult is: a repeated result answers ALREADY_PROCESSED and changes nothing).

use crate::inbox::{Entry, Failed, Inbox};
use crate::Envelope;
use async_trait::async_trait;
use futures::stream::{FuturesUnordered, StreamExt};
use rand::Rng;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Why a forward failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ForwardError {
    /// Worth retrying (the receiver is down, slow, overloaded).
    #[error("{0}")]
    Retryable(String),
    /// Retrying cannot help (the receiver refused the content): dead-lettered at once.
    #[error("{0}")]
    Permanent(String),
}

/// Where entries go: the gateway plugs in WorkerService.ProcessPaymentResult; tests a closure.
#[async_trait]
pub trait Forward: Send + Sync {
    /// Delivers one envelope; Ok once the receiver has applied it (or had before).
    async fn forward(&self, envelope: &Envelope) -> Result<(), ForwardError>;
}

/// A [`Forward`] from an async closure.
pub struct ForwardFn<F>(pub F);

#[async_trait]
impl<F, Fut> Forward for ForwardFn<F>
where
    F: Fn(Envelope) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), ForwardError>> + Send,
{
    async fn forward(&self, envelope: &Envelope) -> Result<(), ForwardError> {
        (self.0)(envelope.clone()).await
    }
}

/// Retry policy: attempt n (from 1) that fails waits a uniformly random time in
/// `[0, min(max_delay, base_delay * 2^(n-1))]` ("full jitter", so retries of many entries
/// that failed together spread out instead of hitting a recovering receiver in waves).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per entry, the first included (default 8), then the dead-letter stream.
    pub max_attempts: u32,
    /// Cap of the first retry's delay (default 500 ms).
    pub base_delay: Duration,
    /// Cap of any delay (default 60 s).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the delay after failed attempt `attempt` (from 1).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        exp.min(self.max_delay)
    }

    /// A random delay after failed attempt `attempt`, in `[0, ceiling]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let c = self.ceiling(attempt).as_millis() as u64;
        Duration::from_millis(rand::thread_rng().gen_range(0..=c))
    }
}

/// Settings of one consumer.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// This consumer's name in the group: unique per replica (a crashed replica's name is
    /// never reused by another live one, or the two would share pending entries).
    pub name: String,
    /// Most forwards in flight at once (default [`DEFAULT_WINDOW`]). A sliding window: as soon
    /// as one forward finishes, the next entry starts; a slow forward holds back only itself.
    pub window: usize,
    /// Poll interval when idle (default 100 ms; a local append wakes it at once).
    pub poll_interval: Duration,
    /// An entry pending this long with another consumer is taken over (default 30 s); keep it
    /// above the forward deadline, or slow forwards get duplicated.
    pub claim_idle: Duration,
    /// How often to look for such entries (default 5 s).
    pub claim_every: Duration,
    /// The retry policy.
    pub retry: RetryPolicy,
}

/// Default of [`ConsumerConfig::window`]. 512, not 256: when the consumer shares the CPU with
/// the intake, each forward waits longer for it, and at 256 in flight the forwards fell behind
/// the intake of a saturated 2-core machine (the `webhook_flood` scenario, docs/benchmarks.md,
/// "The webhook flood's forwarding window").
pub const DEFAULT_WINDOW: usize = 512;

/// Most entry ids one acknowledgement call carries.
const MAX_ACK_BATCH: usize = 512;

impl ConsumerConfig {
    /// Defaults with this consumer name.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            window: DEFAULT_WINDOW,
            poll_interval: Duration::from_millis(100),
            claim_idle: Duration::from_secs(30),
            claim_every: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }
}

/// Milliseconds since the Unix epoch: the consumer's clock (injectable for tests).
pub trait Clock: Send + Sync {
    /// Now, ms since the epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// One member of the consumer group.
pub struct Consumer {
    inbox: Inbox,
    forward: Arc<dyn Forward>,
    config: ConsumerConfig,
    clock: Arc<dyn Clock>,
}

/// What one of the consumer's concurrent steps finished with.
enum Done {
    /// A read (`claim: false`) or a takeover scan gave these entries; `asked` is the room it
    /// had reserved in the window.
    Read {
        claim: bool,
        asked: usize,
        result: crate::Result<(Option<String>, Vec<Entry>)>,
    },
    /// An entry was forwarded; it waits for the next acknowledgement call.
    Forwarded { id: String, latency_ms: i64 },
    /// An entry's failure was recorded (or could not be: it stays pending and is claimed later).
    Settled { id: String },
    /// An acknowledgement call for these entries (and their latencies) ended.
    Acked {
        batch: Vec<(String, i64)>,
        result: crate::Result<u64>,
    },
}

type Step<'a> = std::pin::Pin<Box<dyn Future<Output = Done> + Send + 'a>>;

impl Consumer {
    /// A consumer of `inbox` forwarding through `forward`.
    pub fn new(inbox: Inbox, forward: Arc<dyn Forward>, config: ConsumerConfig) -> Self {
        Self {
            inbox,
            forward,
            config,
            clock: Arc::new(SystemClock),
        }
    }

    /// The same consumer with another clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Runs until `stop` turns true (or its sender is dropped), then lets the forwards in flight
    /// finish (each is bounded by the forward's own deadline) and acknowledges them. Redis
    /// errors are logged and retried at the poll interval; they never end the loop.
    ///
    /// Why this shape: a batch barrier (read N, forward all, wait for the slowest, ack each)
    /// caps throughput at N per slowest call. Here everything is one set of concurrent steps
    /// on this task: up to `window` forwards, at most one read (sized to the free room of the
    /// window, so entries never wait in memory unforwarded, and only once a quarter of the
    /// window is free, so a busy consumer does not read one entry at a time), at most one
    /// takeover scan and at most one acknowledgement call. Acknowledgements are group-committed:
    /// while one call is in flight, the forwards finishing meanwhile collect for the next, so
    /// under load one call acknowledges many entries and when idle each goes out at once.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let this = &self;
        let window = self.config.window.max(1);
        let refill = (window / 4).max(1);
        let mut steps: FuturesUnordered<Step<'_>> = FuturesUnordered::new();
        // Entries this consumer holds (forwarding, recording a failure, or waiting for their
        // acknowledgement): a takeover scan that hands one back to us again is not forwarded
        // twice at once.
        let mut held: HashSet<String> = HashSet::new();
        let mut to_ack: Vec<(String, i64)> = Vec::new();
        // Window slots taken: forwards in flight plus the room a read or scan in flight asked for.
        let mut busy = 0usize;
        let (mut reading, mut claiming, mut acking) = (false, false, false);
        let mut cursor = "0-0".to_owned();
        // After a read found nothing: wait for this instant or a local append before reading.
        let mut idle_until: Option<tokio::time::Instant> = None;
        let mut next_claim = tokio::time::Instant::now();
        let mut stopping = *stop.borrow();
        loop {
            let now = tokio::time::Instant::now();
            if !acking && !to_ack.is_empty() {
                acking = true;
                let n = to_ack.len().min(MAX_ACK_BATCH);
                let batch: Vec<(String, i64)> = to_ack.drain(..n).collect();
                steps.push(Box::pin(async move {
                    let ids: Vec<&str> = batch.iter().map(|(id, _)| id.as_str()).collect();
                    let result = this.inbox.ack_many(&ids).await;
                    Done::Acked { batch, result }
                }));
            }
            if !stopping {
                let room = window - busy;
                if !reading && idle_until.is_none() && room >= refill.min(window) {
                    reading = true;
                    busy += room;
                    steps.push(Box::pin(async move {
                        let result = this
                            .inbox
                            .read(&this.config.name, this.clock.now_ms(), room)
                            .await
                            .map(|e| (None, e));
                        Done::Read {
                            claim: false,
                            asked: room,
                            result,
                        }
                    }));
                }
                let room = window - busy;
                if !claiming && room > 0 && now >= next_claim {
                    claiming = true;
                    next_claim = now + self.config.claim_every;
                    busy += room;
                    let from = cursor.clone();
                    steps.push(Box::pin(async move {
                        let result = this
                            .inbox
                            .claim(&this.config.name, this.config.claim_idle, &from, room)
                            .await
                            .map(|(next, e)| (Some(next), e));
                        Done::Read {
                            claim: true,
                            asked: room,
                            result,
                        }
                    }));
                }
            }
            if stopping && steps.is_empty() && to_ack.is_empty() {
                break;
            }
            let can_claim = !stopping && !claiming && busy < window;
            let idle = !stopping && idle_until.is_some();
            let wake = idle_until.unwrap_or(now);
            tokio::select! {
                Some(done) = steps.next(), if !steps.is_empty() => match done {
                    Done::Read { claim, asked, result } => {
                        if claim {
                            claiming = false;
                        } else {
                            reading = false;
                        }
                        busy -= asked;
                        match result {
                            Ok((next, entries)) => {
                                if let Some(next) = next {
                                    cursor = next;
                                    if !entries.is_empty() {
                                        tracing::info!(count = entries.len(), "webhook consumer: took over abandoned entries");
                                    }
                                } else if entries.is_empty() {
                                    idle_until = Some(tokio::time::Instant::now() + self.config.poll_interval);
                                }
                                for entry in entries {
                                    if !held.insert(entry.id.clone()) {
                                        continue;
                                    }
                                    busy += 1;
                                    // Its own task: the forwards' work (encoding, the gRPC
                                    // call, the failure script) spreads over the runtime's
                                    // threads instead of sharing this one.
                                    let id = entry.id.clone();
                                    let task = tokio::spawn(handle(
                                        self.inbox.clone(),
                                        self.forward.clone(),
                                        self.config.retry,
                                        self.clock.clone(),
                                        entry,
                                    ));
                                    steps.push(Box::pin(async move {
                                        // A forward that panicked: the entry stays pending and
                                        // is taken over after the claim idle.
                                        task.await.unwrap_or(Done::Settled { id })
                                    }));
                                }
                            }
                            Err(e) => {
                                let what = if claim { "claim" } else { "poll" };
                                tracing::warn!(error = %e, "webhook consumer: {what} failed");
                                if !claim {
                                    idle_until = Some(tokio::time::Instant::now() + self.config.poll_interval);
                                }
                            }
                        }
                    }
                    Done::Forwarded { id, latency_ms } => {
                        busy -= 1;
                        to_ack.push((id, latency_ms));
                    }
                    Done::Settled { id } => {
                        busy -= 1;
                        held.remove(&id);
                    }
                    Done::Acked { batch, result } => {
                        acking = false;
                        let metrics = self.inbox.metrics();
                        match result {
                            Ok(_) => {
                                for (_, latency) in &batch {
                                    metrics.forwarded(*latency);
                                }
                            }
                            // Not acknowledged: they will be claimed and forwarded again
                            // (harmless, the receiver is idempotent).
                            Err(e) => tracing::warn!(error = %e, count = batch.len(), "webhook consumer: ack failed"),
                        }
                        for (id, _) in &batch {
                            held.remove(id);
                        }
                    }
                },
                _ = tokio::time::sleep_until(wake), if idle => idle_until = None,
                _ = self.inbox.appended(), if idle => idle_until = None,
                _ = tokio::time::sleep_until(next_claim), if can_claim => {}
                r = stop.changed(), if !stopping => {
                    if r.is_err() || *stop.borrow() {
                        stopping = true;
                    }
                }
            }
        }
    }
}

/// Forwards one entry; on failure records it (a retry, or a dead letter).
async fn handle(
    inbox: Inbox, forward: Arc<dyn Forward>, retry: RetryPolicy, clock: Arc<dyn Clock>,
    entry: Entry,
) -> Done {
    let metrics = inbox.metrics();
    let outcome = match &entry.envelope {
        Some(env) => forward.forward(env).await,
        None => Err(ForwardError::Permanent("corrupt inbox entry".into())),
    };
    let now = clock.now_ms();
    let e = match outcome {
        Ok(()) => {
            let latency_ms = entry
                .envelope
                .as_ref()
                .map_or(0, |e| now.saturating_sub(e.received_ms));
            return Done::Forwarded {
                id: entry.id,
                latency_ms,
            };
        }
        Err(e) => e,
    };
    let permanent = matches!(e, ForwardError::Permanent(_));
    let attempt = entry.attempts + 1;
    let delay = retry.delay(attempt);
    let recorded = inbox
        .fail(
            &entry.id,
            now,
            retry.max_attempts,
            delay,
            &e.to_string(),
            permanent,
        )
        .await;
    match recorded {
        Ok(Failed::Retry(_)) => {
            metrics.retried();
            tracing::debug!(entry = %entry.id, attempt, error = %e, "webhook forward failed; will retry");
        }
        Ok(Failed::Dead(dlq)) => {
            metrics.dead_lettered();
            tracing::warn!(entry = %entry.id, dead_letter = %dlq, attempt, error = %e, "webhook dead-lettered");
        }
        Ok(Failed::Gone) => {}
        Err(err) => {
            // The failure was not recorded; the entry stays pending and is claimed later.
            tracing::warn!(error = %err, entry = %entry.id, "webhook consumer: recording a failure failed");
        }
    }
    Done::Settled { id: entry.id }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_stay_in_range() {
        let p = RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        };
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(5), Duration::from_millis(1600));
        assert_eq!(p.ceiling(6), Duration::from_secs(2));
        assert_eq!(p.ceiling(40), Duration::from_secs(2));
        for a in 1..30 {
            assert!(p.delay(a) <= p.ceiling(a));
        }
    }
}
