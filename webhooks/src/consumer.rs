//! The consumer: reads the inbox as one member of the consumer group (every replica runs one,
//! each under its own name), forwards each entry, acknowledges on success, retries failures
//! with exponential backoff and full jitter, takes over entries a crashed consumer left
//! pending, and dead-letters an entry after its last attempt.
//!
//! Delivery is at least once: an entry is acknowledged only after the forward succeeded, so a
//! crash between the two forwards it again. The receiver must be idempotent (the backends'
//! ProcessPaymentResult is: a repeated result answers ALREADY_PROCESSED and changes nothing).

use crate::inbox::{Entry, Failed, Inbox};
use crate::Envelope;
use async_trait::async_trait;
use rand::Rng;
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
    /// Entries per poll, forwarded concurrently (default 64).
    pub batch: usize,
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

impl ConsumerConfig {
    /// Defaults with this consumer name.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            batch: 64,
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
    cursor: String,
}

impl Consumer {
    /// A consumer of `inbox` forwarding through `forward`.
    pub fn new(inbox: Inbox, forward: Arc<dyn Forward>, config: ConsumerConfig) -> Self {
        Self {
            inbox,
            forward,
            config,
            clock: Arc::new(SystemClock),
            cursor: "0-0".into(),
        }
    }

    /// The same consumer with another clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Runs until `stop` turns true (or its sender is dropped). Redis errors are logged and
    /// retried at the poll interval; they never end the loop.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut next_claim = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                break;
            }
            let mut worked = match self.poll().await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook consumer: poll failed");
                    false
                }
            };
            if tokio::time::Instant::now() >= next_claim {
                next_claim = tokio::time::Instant::now() + self.config.claim_every;
                match self.claim().await {
                    Ok(n) => worked |= n > 0,
                    Err(e) => tracing::warn!(error = %e, "webhook consumer: claim failed"),
                }
            }
            if !worked {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                    _ = self.inbox.appended() => {}
                    r = stop.changed() => if r.is_err() { break },
                }
            }
        }
    }

    /// Reads one batch (due retries, then new entries) and handles it; the number handled.
    pub async fn poll(&mut self) -> crate::Result<usize> {
        let entries = self
            .inbox
            .read(&self.config.name, self.clock.now_ms(), self.config.batch)
            .await?;
        let n = entries.len();
        self.handle_all(entries).await;
        Ok(n)
    }

    /// Takes over one batch of entries abandoned by other consumers and handles it; the number
    /// handled.
    pub async fn claim(&mut self) -> crate::Result<usize> {
        let (next, entries) = self
            .inbox
            .claim(
                &self.config.name,
                self.config.claim_idle,
                &self.cursor,
                self.config.batch,
            )
            .await?;
        self.cursor = next;
        let n = entries.len();
        if n > 0 {
            tracing::info!(count = n, "webhook consumer: took over abandoned entries");
        }
        self.handle_all(entries).await;
        Ok(n)
    }

    async fn handle_all(&self, entries: Vec<Entry>) {
        futures::future::join_all(entries.into_iter().map(|e| self.handle(e))).await;
    }

    async fn handle(&self, entry: Entry) {
        let metrics = self.inbox.metrics();
        let outcome = match &entry.envelope {
            Some(env) => self.forward.forward(env).await,
            None => Err(ForwardError::Permanent("corrupt inbox entry".into())),
        };
        let now = self.clock.now_ms();
        let result = match outcome {
            Ok(()) => {
                let latency = entry
                    .envelope
                    .as_ref()
                    .map_or(0, |e| now.saturating_sub(e.received_ms));
                match self.inbox.ack(&entry.id).await {
                    Ok(_) => {
                        metrics.forwarded(latency);
                        return;
                    }
                    Err(e) => {
                        // Not acknowledged: it will be claimed and forwarded again (harmless,
                        // the receiver is idempotent).
                        tracing::warn!(error = %e, entry = %entry.id, "webhook consumer: ack failed");
                        return;
                    }
                }
            }
            Err(e) => {
                let permanent = matches!(e, ForwardError::Permanent(_));
                let attempt = entry.attempts + 1;
                let delay = self.config.retry.delay(attempt);
                self.inbox
                    .fail(
                        &entry.id,
                        now,
                        self.config.retry.max_attempts,
                        delay,
                        &e.to_string(),
                        permanent,
                    )
                    .await
                    .map(|f| (f, e, attempt))
            }
        };
        match result {
            Ok((Failed::Retry(_), e, attempt)) => {
                metrics.retried();
                tracing::debug!(entry = %entry.id, attempt, error = %e, "webhook forward failed; will retry");
            }
            Ok((Failed::Dead(dlq), e, attempt)) => {
                metrics.dead_lettered();
                tracing::warn!(entry = %entry.id, dead_letter = %dlq, attempt, error = %e, "webhook dead-lettered");
            }
            Ok((Failed::Gone, ..)) => {}
            Err(e) => {
                // The failure was not recorded; the entry stays pending and is claimed later.
                tracing::warn!(error = %e, entry = %entry.id, "webhook consumer: recording a failure failed");
            }
        }
    }
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
