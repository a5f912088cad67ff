//! Per-client token buckets on the edge: joins and status reads (WebSocket upgrades included)
//! each get N requests per minute per client address, with bursts of up to N.
//!
//! The client address is the socket peer, or, when the peer is a trusted proxy
//! (`--trusted-proxy`), the right-most address of `X-Forwarded-For` (else `Forwarded: for=`)
//! that is not itself a trusted proxy ([`crate::client_ip`]). IPv6 clients are keyed by their /64: one subscriber line
//! usually gets a whole /64, so keying by /128 would let one client rotate addresses freely.
//!
//! Buckets live in memory, per replica; with `--rate-sync-ms` each replica also sends what it
//! consumed per address to Redis every few hundred milliseconds and charges its buckets with
//! what the other replicas consumed ([`crate::ratesync`], docs/operations.md, "Abuse and
//! identity"), so no request waits on Redis. They
//! are refilled lazily from the injected clock, so tests move time instead of sleeping. This is
//! written by hand rather than with `governor` because the bucket is a few lines of integer
//! math and we need our own bound on the table and the Retry-After value from the same state.

pub use crate::client_ip::client_ip;
use crate::error::ApiError;
use axum::http::HeaderMap;
use ipnet::IpNet;
use queue::clock::Clock;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Shards of the bucket table: requests of different clients rarely contend on one lock.
const SHARDS: usize = 16;

/// Most client addresses tracked per limiter (all shards together): 48 bytes a bucket (key
/// included), up to about twice that with the hash map's slack, so at most ~25 MiB per
/// limiter.
pub const MAX_KEYS: usize = 1 << 18;

/// One token, in bucket units: a bucket of N per minute gains N units per millisecond, so the
/// math is exact in integers.
const TOKEN: i64 = 60_000;

/// The key of a client: an IPv4 address, or the /64 prefix of an IPv6 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpKey {
    /// An IPv4 address (IPv4-mapped IPv6 addresses included).
    V4(u32),
    /// The upper 64 bits of an IPv6 address.
    V6(u64),
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(u32::from(v4)),
            IpAddr::V6(v6) => Self::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens left, in [`TOKEN`] units; below zero while the address owes what other replicas
    /// let through (at most one burst: see [`RateLimiter::apply_global`]).
    level: i64,
    /// When `level` was last brought up to date, in Unix ms.
    at_ms: u64,
    /// Tokens taken here since the last [`RateLimiter::take_pending`] (the cross-replica sync).
    pending: u32,
    /// The sync window of `seen_total`.
    seen_window: u32,
    /// The address's consumption over every replica in `seen_window`, as last reported.
    seen_total: u32,
}

impl Bucket {
    fn full(cap: i64, now_ms: u64) -> Self {
        Self {
            level: cap,
            at_ms: now_ms,
            pending: 0,
            seen_window: 0,
            seen_total: 0,
        }
    }
}

/// One shard of the bucket table.
#[derive(Default)]
struct Shard {
    map: HashMap<IpKey, Bucket>,
    /// Keys whose `pending` went above 0 since the last sync (each once).
    dirty: Vec<IpKey>,
}

/// The consumption of one address over every replica, as the sync reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalCount {
    /// The address.
    pub key: IpKey,
    /// What this replica sent in this sync.
    pub sent: u32,
    /// The total over every replica in the window, this sync's `sent` included.
    pub total: u32,
}

/// A token bucket per client address: `per_minute` requests per minute, bursts of up to
/// `per_minute`.
pub struct RateLimiter {
    per_minute: u64,
    clock: Arc<dyn Clock>,
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
    /// Whether consumption is counted for the cross-replica sync (only while one runs: nothing
    /// else empties the counts).
    tracking: AtomicBool,
    max_per_shard: usize,
}

impl RateLimiter {
    /// A limiter of `per_minute` (at least 1) requests per minute per client, tracking at most
    /// [`MAX_KEYS`] clients.
    pub fn new(per_minute: u32, clock: Arc<dyn Clock>) -> Self {
        Self::with_capacity(per_minute, clock, MAX_KEYS)
    }

    /// As [`new`](Self::new), tracking at most `max_keys` clients (rounded to the shards).
    pub fn with_capacity(per_minute: u32, clock: Arc<dyn Clock>, max_keys: usize) -> Self {
        Self {
            per_minute: u64::from(per_minute.max(1)),
            clock,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            tracking: AtomicBool::new(false),
            max_per_shard: (max_keys / SHARDS).max(8),
        }
    }

    fn capacity(&self) -> i64 {
        // per_minute fits a u32, so this fits easily.
        self.per_minute as i64 * TOKEN
    }

    /// The bucket's level at `now_ms`.
    fn refilled(&self, b: &Bucket, now_ms: u64) -> i64 {
        let gained = now_ms
            .saturating_sub(b.at_ms)
            .saturating_mul(self.per_minute);
        let gained = i64::try_from(gained).unwrap_or(i64::MAX);
        b.level.saturating_add(gained).min(self.capacity())
    }

    /// Takes one token for `key`; `Err(seconds)` when none is left, with the whole seconds
    /// (at least 1) until one is.
    pub fn check(&self, key: IpKey) -> Result<(), u64> {
        let now = self.clock.now_ms();
        let mut shard = self.shard(key);
        let b = self.bucket(&mut shard.map, key, now);
        if b.level >= TOKEN {
            b.level -= TOKEN;
            if self.tracking.load(Ordering::Relaxed) {
                b.pending = b.pending.saturating_add(1);
                if b.pending == 1 {
                    shard.dirty.push(key);
                }
            }
            Ok(())
        } else {
            let missing_ms = (TOKEN - b.level).unsigned_abs().div_ceil(self.per_minute);
            Err(missing_ms.div_ceil(1000).max(1))
        }
    }

    // A poisoned lock only means another request panicked mid-update; the map is still a
    // valid map of buckets.
    fn shard(&self, key: IpKey) -> std::sync::MutexGuard<'_, Shard> {
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        shard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `key`'s bucket brought up to `now` (a full one when it had none).
    fn bucket<'a>(
        &self, map: &'a mut HashMap<IpKey, Bucket>, key: IpKey, now: u64,
    ) -> &'a mut Bucket {
        if !map.contains_key(&key) && map.len() >= self.max_per_shard {
            self.evict(map, now);
        }
        let b = map.entry(key).or_insert(Bucket::full(self.capacity(), now));
        b.level = self.refilled(b, now);
        // A clock that steps back must not refill twice: keep the latest time seen.
        b.at_ms = b.at_ms.max(now);
        b
    }

    /// Starts counting consumption per address for [`take_pending`](Self::take_pending).
    pub fn track_pending(&self) {
        self.tracking.store(true, Ordering::Relaxed);
    }

    /// Takes what this replica consumed per address since the last call, to send to the
    /// other replicas (each address once, with its count).
    pub fn take_pending(&self) -> Vec<(IpKey, u32)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            let Shard { map, dirty } = &mut *shard;
            for key in dirty.drain(..) {
                if let Some(b) = map.get_mut(&key) {
                    if b.pending > 0 {
                        out.push((key, std::mem::take(&mut b.pending)));
                    }
                }
            }
        }
        out
    }

    /// Gives back counts that [`take_pending`](Self::take_pending) took but could not send,
    /// for the next sync.
    pub fn restore_pending(&self, counts: &[(IpKey, u32)]) {
        let now = self.clock.now_ms();
        for &(key, n) in counts {
            let mut shard = self.shard(key);
            let b = self.bucket(&mut shard.map, key, now);
            let was = b.pending;
            b.pending = b.pending.saturating_add(n);
            if was == 0 && n > 0 {
                shard.dirty.push(key);
            }
        }
    }

    /// Charges each address's bucket with what the other replicas consumed since the last
    /// report of `window`: its `total` less what was seen before and what this replica sent.
    /// The bucket may go below empty, so that tokens the other replicas let through before
    /// they knew are paid back from later refills (otherwise R replicas would each keep
    /// refilling and let R times the rate through); the debt is capped at one burst.
    pub fn apply_global(&self, window: u32, counts: &[GlobalCount]) {
        let now = self.clock.now_ms();
        for c in counts {
            let mut shard = self.shard(c.key);
            let b = self.bucket(&mut shard.map, c.key, now);
            let seen = if b.seen_window == window {
                b.seen_total
            } else {
                0
            };
            let others = c.total.saturating_sub(seen).saturating_sub(c.sent);
            b.seen_window = window;
            b.seen_total = seen.max(c.total);
            b.level = b
                .level
                .saturating_sub(i64::from(others) * TOKEN)
                .max(-self.capacity());
        }
    }

    /// Makes room in a full shard: drops every bucket that has refilled completely (it is the
    /// same as no bucket) and has nothing left to sync. If that frees less than an eighth of the shard, arbitrary buckets go
    /// too, down to seven eighths, so the next sweep is that many inserts away (amortised O(1)
    /// per insert). Those clients start over with a full bucket: under a flood of distinct
    /// addresses the limit weakens for some of them rather than memory growing without bound.
    fn evict(&self, map: &mut HashMap<IpKey, Bucket>, now: u64) {
        let cap = self.capacity();
        map.retain(|_, b| b.pending > 0 || self.refilled(b, now) < cap);
        let target = self.max_per_shard - self.max_per_shard / 8;
        if map.len() > target {
            let excess = map.len() - target;
            let victims: Vec<IpKey> = map.keys().take(excess).copied().collect();
            for k in victims {
                map.remove(&k);
            }
        }
    }

    /// Client addresses tracked now (all shards).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).map.len())
            .sum()
    }

    /// Whether no client is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The edge's limiters and the proxies whose forwarding headers are believed.
pub struct RateLimits {
    /// `POST /api/v1/queue/join` (None: off).
    pub join: Option<RateLimiter>,
    /// `GET /api/v1/queue/status` and the WebSocket upgrade (None: off).
    pub status: Option<RateLimiter>,
    /// `--trusted-proxy` ranges.
    pub trusted: Vec<IpNet>,
}

impl RateLimits {
    /// Limiters of `join` and `status` requests per minute per client (0: off).
    pub fn new(join: u32, status: u32, trusted: Vec<IpNet>, clock: Arc<dyn Clock>) -> Self {
        Self {
            join: (join > 0).then(|| RateLimiter::new(join, clock.clone())),
            status: (status > 0).then(|| RateLimiter::new(status, clock)),
            trusted,
        }
    }

    /// Whether the client of a request (from `peer`, with `headers`) may make one more request
    /// under `limit` (429 `RATE_LIMITED` with the seconds until its next token if not). Called
    /// by the edge for the routes that take a limit.
    pub fn check(
        &self, limit: Limit, peer: SocketAddr, headers: &HeaderMap,
    ) -> Result<(), ApiError> {
        let limiter = match limit {
            Limit::Join => self.join.as_ref(),
            Limit::Status => self.status.as_ref(),
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        let ip = client_ip(peer.ip(), headers, &self.trusted);
        limiter
            .check(IpKey::from(ip))
            .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })
    }
}

/// The per-client limit a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `--join-rate-per-ip`: joins (API and no-JS page).
    Join,
    /// `--status-rate-per-ip`: status reads, challenges and the queue WebSocket upgrade.
    Status,
}

#[cfg(test)]
mod tests {
    use super::*;
    use queue::clock::ManualClock;

    fn limiter(n: u32) -> (RateLimiter, ManualClock) {
        let clock = ManualClock::new(1_000_000);
        (RateLimiter::new(n, Arc::new(clock.clone())), clock)
    }

    fn key(s: &str) -> IpKey {
        IpKey::from(s.parse::<IpAddr>().unwrap())
    }

    /// Takes `n` tokens of `k`'s bucket, each of them allowed.
    fn allowed(l: &RateLimiter, k: IpKey, n: u32) {
        for _ in 0..n {
            assert_eq!(l.check(k), Ok(()));
        }
    }

    /// A limiter of `n` a minute whose client (192.0.2.1, the key returned) has just taken its
    /// whole burst, each token allowed.
    fn burst_spent(n: u32) -> (RateLimiter, ManualClock, IpKey) {
        let (l, clock) = limiter(n);
        let k = key("192.0.2.1");
        allowed(&l, k, n);
        (l, clock, k)
    }

    #[test]
    fn a_bucket_allows_n_then_says_when_the_next_token_comes() {
        let (l, clock, k) = burst_spent(3);
        // 3 per minute: one token per 20 s.
        assert_eq!(l.check(k), Err(20));
        clock.advance_ms(19_001);
        assert_eq!(l.check(k), Err(1));
        clock.advance_ms(999);
        assert_eq!(l.check(k), Ok(()));
        assert_eq!(l.check(k), Err(20));
        // A long pause refills to the burst, not beyond.
        clock.advance_ms(10 * 60_000);
        allowed(&l, k, 3);
        assert!(l.check(k).is_err());
        // Another client has its own bucket.
        assert_eq!(l.check(key("192.0.2.2")), Ok(()));
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        let (l, _clock, k) = burst_spent(6000);
        // A token every 10 ms: still "1", never "0".
        assert_eq!(l.check(k), Err(1));
    }

    #[test]
    fn a_clock_stepping_back_does_not_refill() {
        let (l, clock) = limiter(1);
        let k = key("192.0.2.1");
        assert_eq!(l.check(k), Ok(()));
        clock.set_ms(0);
        assert_eq!(l.check(k), Err(60));
        clock.set_ms(1_000_000 + 30_000);
        assert_eq!(l.check(k), Err(30));
    }

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        let (l, _clock) = limiter(1);
        assert_eq!(l.check(key("2001:db8::1")), Ok(()));
        assert!(l.check(key("2001:db8::2")).is_err());
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_active_buckets_when_it_can() {
        let clock = ManualClock::new(0);
        let l = RateLimiter::with_capacity(2, Arc::new(clock.clone()), 16 * 64);
        for i in 0..10_000u32 {
            let _ = l.check(IpKey::V4(i));
        }
        assert!(l.len() <= 16 * 64, "{} keys", l.len());
        // Buckets that refilled completely are dropped first.
        clock.advance_ms(60_000);
        let k = IpKey::V4(1 << 31);
        assert_eq!(l.check(k), Ok(()));
        assert_eq!(l.check(k), Ok(()));
        assert!(l.check(k).is_err());
        assert!(l.len() <= 16 * 64);
    }

    /// Two replicas' limiters and a stand-in for the sync script: a total per address.
    fn sync(l: &RateLimiter, window: u32, totals: &mut HashMap<IpKey, u32>) {
        let counts: Vec<GlobalCount> = l
            .take_pending()
            .into_iter()
            .map(|(key, sent)| {
                let t = totals.entry(key).or_default();
                *t += sent;
                GlobalCount {
                    key,
                    sent,
                    total: *t,
                }
            })
            .collect();
        l.apply_global(window, &counts);
    }

    #[test]
    fn replicas_that_exchange_counts_share_one_bucket() {
        let clock = ManualClock::new(1_000_000);
        let a = RateLimiter::new(10, Arc::new(clock.clone()));
        let b = RateLimiter::new(10, Arc::new(clock.clone()));
        a.track_pending();
        b.track_pending();
        let k = key("192.0.2.1");
        let mut totals = HashMap::new();
        let mut ok = 0;
        for i in 0..40 {
            let l = if i % 2 == 0 { &a } else { &b };
            ok += usize::from(l.check(k).is_ok());
            sync(l, 7, &mut totals);
        }
        // Each replica is charged for the other's joins at its own next sync: N + 1, not 2N.
        assert_eq!(ok, 11);
        // Then N per minute over both, not N per replica: a token (6 s) at a time, the debt of
        // what one let through before the other knew is paid from the next refill.
        for round in 0..6 {
            clock.advance_ms(6_000);
            let mut ok = 0;
            for i in 0..4 {
                let l = if i % 2 == 0 { &a } else { &b };
                ok += usize::from(l.check(k).is_ok());
                sync(l, 7, &mut totals);
            }
            assert_eq!(ok, 1, "round {round}");
        }
        // Nothing is left pending, and without tracking nothing is counted.
        assert!(a.take_pending().is_empty());
        let c = RateLimiter::new(10, Arc::new(clock));
        assert_eq!(c.check(k), Ok(()));
        assert!(c.take_pending().is_empty());
    }

    #[test]
    fn counts_not_sent_are_sent_next_time_and_a_new_window_starts_from_zero() {
        let clock = ManualClock::new(1_000_000);
        let a = RateLimiter::new(100, Arc::new(clock.clone()));
        a.track_pending();
        let k = key("192.0.2.1");
        for _ in 0..3 {
            a.check(k).unwrap();
        }
        let p = a.take_pending();
        assert_eq!(p, [(k, 3)]);
        a.restore_pending(&p);
        a.check(k).unwrap();
        assert_eq!(a.take_pending(), [(k, 4)]);
        // 4 sent, the window's total 10: 6 were the others'.
        a.apply_global(
            1,
            &[GlobalCount {
                key: k,
                sent: 4,
                total: 10,
            }],
        );
        a.check(k).unwrap();
        // Same window: only what was added since (12 - 10 - 1 = 1) is charged.
        a.apply_global(
            1,
            &[GlobalCount {
                key: k,
                sent: 1,
                total: 12,
            }],
        );
        // A new window's total counts from zero: 3 - 1 = 2 more.
        a.apply_global(
            2,
            &[GlobalCount {
                key: k,
                sent: 1,
                total: 3,
            }],
        );
        // 100 - 4 - 6 - 1 - 1 - 2 = 86 left.
        allowed(&a, k, 86);
        assert_eq!(a.check(k), Err(1));
        // The others' excess is owed, up to one burst: 100 owed is 101 tokens away at 100 a
        // minute.
        a.apply_global(
            2,
            &[GlobalCount {
                key: k,
                sent: 0,
                total: 1_000,
            }],
        );
        assert_eq!(a.check(k), Err(61));
    }
}
