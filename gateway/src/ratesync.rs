//! The per-address rate limits across replicas, without a Redis operation per request.
//!
//! Each replica keeps its local token buckets ([`crate::ratelimit`]) and answers every request
//! from them. Every `--rate-sync-ms` it sends, in one script call ([`SCRIPT`]), what each
//! address consumed on it since the last sync, and gets back each address's consumption over
//! every replica in the current window; the part the other replicas consumed since its last
//! report is then taken from its local bucket ([`RateLimiter::apply_global`]). Each replica's
//! bucket thus follows the address's global consumption, one sync interval late.
//!
//! Keys: one hash per 10-second window, `wr:{ratelimit}:<window>`, fields `j:<address>` (joins)
//! and `s:<address>` (status reads), expiring after two windows. The hash tag puts every
//! address in one Redis Cluster slot, so one primary serves the whole sync (documented in
//! docs/operations.md). Replicas' clocks must agree on the window (NTP); a replica whose clock
//! is off writes to another window and its consumption is not seen by the others.

use crate::ratelimit::{GlobalCount, IpKey, RateLimiter, RateLimits};
use queue::clock::Clock;
use redis_layer::{Redis, RedisError, Script, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The sync script.
pub const SCRIPT: &str = include_str!("lua/rate_sync.lua");

/// Length of a counting window, in ms.
pub const WINDOW_MS: u64 = 10_000;

/// Most addresses in one script call (a sync with more makes several calls).
const CHUNK: usize = 2048;

/// The hash of `window`.
pub fn window_key(window: u32) -> String {
    format!("wr:{{ratelimit}}:{window}")
}

/// The hash field of an address in limiter `prefix` (`j` or `s`).
fn field(prefix: char, key: IpKey) -> String {
    match key {
        IpKey::V4(a) => format!("{prefix}:4:{a:x}"),
        IpKey::V6(a) => format!("{prefix}:6:{a:x}"),
    }
}

/// The sync loop's state and counters.
pub struct RateSync {
    redis: Arc<Redis>,
    limits: Arc<RateLimits>,
    clock: Arc<dyn Clock>,
    every: Duration,
    script: Script,
    syncs: AtomicU64,
    failures: AtomicU64,
}

redis_layer::debug_some!(RateSync, |r| every = r.every);

impl RateSync {
    /// A sync of `limits` every `every` through `redis`; starts counting consumption now.
    pub fn new(
        redis: Arc<Redis>, limits: Arc<RateLimits>, clock: Arc<dyn Clock>, every: Duration,
    ) -> Self {
        for l in [&limits.join, &limits.status].into_iter().flatten() {
            l.track_pending();
        }
        Self {
            redis,
            limits,
            clock,
            every,
            script: Script::new("", SCRIPT),
            syncs: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// Syncs completed (with or without anything to send).
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Syncs that failed (Redis unreachable): their counts are sent with the next one.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Syncs every interval until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            match self.sync_once().await {
                Ok(()) => {
                    if failing {
                        tracing::info!("rate-limit sync works again");
                    }
                    failing = false;
                    self.syncs.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    if !failing {
                        tracing::warn!(error = %e, "rate-limit sync failed; limits are per replica until it works again");
                    }
                    failing = true;
                }
            }
        }
    }

    /// One sync: both limiters' counts, in calls of at most [`CHUNK`] addresses. What could
    /// not be sent goes back to the limiters for the next sync.
    pub async fn sync_once(&self) -> Result<(), RedisError> {
        let window = (self.clock.now_ms() / WINDOW_MS) as u32;
        let mut items: Vec<(&RateLimiter, char, IpKey, u32)> = Vec::new();
        for (limiter, prefix) in [(&self.limits.join, 'j'), (&self.limits.status, 's')] {
            if let Some(l) = limiter {
                items.extend(l.take_pending().into_iter().map(|(k, n)| (l, prefix, k, n)));
            }
        }
        let key = window_key(window);
        let ttl = Value::from((2 * WINDOW_MS + 10_000) as i64);
        let mut sent = 0;
        while sent < items.len() {
            let chunk = &items[sent..(sent + CHUNK).min(items.len())];
            let mut args = Vec::with_capacity(1 + 2 * chunk.len());
            args.push(ttl.clone());
            for &(_, prefix, k, n) in chunk {
                args.push(Value::from(field(prefix, k)));
                args.push(Value::from(i64::from(n)));
            }
            let totals = match self
                .redis
                .eval::<Vec<i64>>(&self.script, vec![key.clone()], args)
                .await
            {
                Ok(t) if t.len() == chunk.len() => t,
                Ok(t) => {
                    self.restore(&items[sent..]);
                    return Err(RedisError::Bug(format!(
                        "rate sync: {} totals for {} fields",
                        t.len(),
                        chunk.len()
                    )));
                }
                Err(e) => {
                    self.restore(&items[sent..]);
                    return Err(e);
                }
            };
            for (limiter, _) in [(&self.limits.join, 'j'), (&self.limits.status, 's')] {
                let Some(l) = limiter else { continue };
                let counts: Vec<GlobalCount> = chunk
                    .iter()
                    .zip(&totals)
                    .filter(|((cl, ..), _)| std::ptr::eq(*cl, l))
                    .map(|(&(_, _, key, n), &t)| GlobalCount {
                        key,
                        sent: n,
                        total: u32::try_from(t.max(0)).unwrap_or(u32::MAX),
                    })
                    .collect();
                l.apply_global(window, &counts);
            }
            sent += chunk.len();
        }
        Ok(())
    }

    fn restore(&self, items: &[(&RateLimiter, char, IpKey, u32)]) {
        for (limiter, _) in [(&self.limits.join, 'j'), (&self.limits.status, 's')] {
            let Some(l) = limiter else { continue };
            let counts: Vec<(IpKey, u32)> = items
                .iter()
                .filter(|(cl, ..)| std::ptr::eq(*cl, l))
                .map(|&(_, _, k, n)| (k, n))
                .collect();
            l.restore_pending(&counts);
        }
    }
}
