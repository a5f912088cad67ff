//! The system-wide modes that the AdminService's emergency actions set: MAINTENANCE_MODE and
//! CIRCUIT_BREAKER. With `--redis-url` they live in Redis (the hash `gw:system`, fields
//! `maintenance` and `circuit_breaker` holding the Unix ms they began), so that every replica
//! follows an action taken on any one: each replica re-reads the hash every
//! [`FOLLOW_INTERVAL`] and keeps the answer in atomics that the request paths read for free.
//! The replica that takes the action applies it at once; the others follow within
//! `FOLLOW_INTERVAL` plus one Redis round trip (a replica that cannot read Redis keeps the last
//! modes it read). Without Redis (the embedded store: one process) they live in this process.

use redis_layer::commands::HashesInterface;
use redis_layer::{PrimaryPing, Redis, RedisError, RedisOptions};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The key of the modes (no hash tag: one key, outside every event's slot).
pub const KEY: &str = "gw:system";
/// How often each replica re-reads the modes: the most a replica lags behind an action taken
/// on another (plus one Redis round trip).
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// The modes in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modes {
    /// MAINTENANCE_MODE since this Unix ms (None: not in force).
    pub maintenance_since_ms: Option<u64>,
    /// CIRCUIT_BREAKER since this Unix ms (None: not in force).
    pub circuit_breaker_since_ms: Option<u64>,
}

impl Modes {
    /// MAINTENANCE_MODE is in force.
    pub fn maintenance(&self) -> bool {
        self.maintenance_since_ms.is_some()
    }

    /// CIRCUIT_BREAKER is in force.
    pub fn circuit_breaker(&self) -> bool {
        self.circuit_breaker_since_ms.is_some()
    }
}

/// One of the two system-wide modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The queue API and pages answer 503 MAINTENANCE; places are kept.
    Maintenance,
    /// Every upstream circuit is held open.
    CircuitBreaker,
}

impl Mode {
    fn field(self) -> &'static str {
        match self {
            Self::Maintenance => "maintenance",
            Self::CircuitBreaker => "circuit_breaker",
        }
    }
}

/// The modes of this replica, following the shared ones.
pub struct SystemModes {
    redis: Option<Redis>,
    maintenance_since: AtomicU64,
    /// Shared with [`crate::upstream::Upstreams::forced_open`].
    breaker: Arc<AtomicBool>,
    breaker_since: AtomicU64,
    changes: watch::Sender<Modes>,
    /// The room's clock: a mode's start is on the timeline the queue's timeouts run on, so that
    /// the end of maintenance credits the waiting places exactly the time it lasted.
    clock: Arc<dyn queue::clock::Clock>,
}

impl SystemModes {
    /// Modes kept in Redis at `redis` (a connection of its own, one pooled connection), or in
    /// this process when None. `breaker` is the upstreams' switch.
    pub async fn connect(
        redis: Option<RedisOptions>, breaker: Arc<AtomicBool>, clock: Arc<dyn queue::clock::Clock>,
    ) -> anyhow::Result<Self> {
        let redis = match redis {
            Some(mut opts) => {
                opts.pool_size = 1;
                Some(Redis::connect(&opts).await?)
            }
            None => None,
        };
        let me = Self {
            redis,
            maintenance_since: AtomicU64::new(0),
            breaker,
            breaker_since: AtomicU64::new(0),
            changes: watch::channel(Modes::default()).0,
            clock,
        };
        // A replica that starts during maintenance must not serve a single request as if it
        // were not; if Redis does not answer now, the follower catches up.
        if let Err(e) = me.refresh().await {
            tracing::warn!(error = %e, "system modes not readable yet; following in the background");
        }
        Ok(me)
    }

    /// The modes this replica follows now.
    pub fn modes(&self) -> Modes {
        let since = |a: &AtomicU64| Some(a.load(Ordering::Relaxed)).filter(|v| *v != 0);
        Modes {
            maintenance_since_ms: since(&self.maintenance_since),
            circuit_breaker_since_ms: since(&self.breaker_since),
        }
    }

    /// MAINTENANCE_MODE is in force (one atomic load: the request paths' check).
    pub fn maintenance(&self) -> bool {
        self.maintenance_since.load(Ordering::Relaxed) != 0
    }

    /// Every change of the modes this replica sees (for the WebSocket announcements).
    pub fn subscribe(&self) -> watch::Receiver<Modes> {
        self.changes.subscribe()
    }

    fn apply(&self, m: Modes) {
        self.maintenance_since
            .store(m.maintenance_since_ms.unwrap_or(0), Ordering::Relaxed);
        self.breaker_since
            .store(m.circuit_breaker_since_ms.unwrap_or(0), Ordering::Relaxed);
        self.breaker.store(m.circuit_breaker(), Ordering::Relaxed);
        self.changes.send_if_modified(|old| {
            // Only an on/off change is news (a since that moved is the same mode).
            let changed = (old.maintenance(), old.circuit_breaker())
                != (m.maintenance(), m.circuit_breaker());
            *old = m;
            changed
        });
    }

    /// Turns `mode` on or off for every replica (idempotent: turning on what is on keeps its
    /// start). Written with `WAIT` like the queue's configuration when
    /// `--redis-wait-replicas` is set.
    pub async fn set(&self, mode: Mode, on: bool) -> Result<Modes, RedisError> {
        if let Some(redis) = &self.redis {
            let slot = redis_layer::slot_of(KEY);
            let args = if on {
                vec![
                    KEY.into(),
                    mode.field().into(),
                    (self.clock.now_ms() as i64).into(),
                ]
            } else {
                vec![KEY.into(), mode.field().into()]
            };
            let cmd = if on { "HSETNX" } else { "HDEL" };
            redis.durably(slot, cmd, args).await?;
            return self.refresh().await;
        }
        let mut m = self.modes();
        let field = match mode {
            Mode::Maintenance => &mut m.maintenance_since_ms,
            Mode::CircuitBreaker => &mut m.circuit_breaker_since_ms,
        };
        *field = if on {
            field.or(Some(self.clock.now_ms()))
        } else {
            None
        };
        self.apply(m);
        Ok(m)
    }

    /// Reads the shared modes and applies them here.
    pub async fn refresh(&self) -> Result<Modes, RedisError> {
        let Some(redis) = &self.redis else {
            return Ok(self.modes());
        };
        let client = redis.client(KEY)?;
        let raw: HashMap<String, String> = client.hgetall(KEY).await.map_err(|e| redis.fail(e))?;
        let since = |f: Mode| raw.get(f.field()).and_then(|v| v.parse::<u64>().ok());
        let m = Modes {
            maintenance_since_ms: since(Mode::Maintenance).map(|v| v.max(1)),
            circuit_breaker_since_ms: since(Mode::CircuitBreaker).map(|v| v.max(1)),
        };
        self.apply(m);
        Ok(m)
    }

    /// Follows the shared modes until `stop` turns true (a no-op loop without Redis).
    pub async fn follow(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        if self.redis.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(FOLLOW_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            match self.refresh().await {
                Ok(_) if failing => {
                    failing = false;
                    tracing::info!("system modes readable again");
                }
                Ok(_) => {}
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "system modes not readable; keeping the last ones");
                }
                Err(_) => {}
            }
        }
    }

    /// Each Redis primary's PING (None without Redis).
    pub async fn ping_primaries(&self) -> Option<Vec<PrimaryPing>> {
        match &self.redis {
            Some(r) => Some(r.ping_primaries().await),
            None => None,
        }
    }
}
