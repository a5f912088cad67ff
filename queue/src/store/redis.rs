//! The Redis store: every step one Lua script (EVALSHA, reloaded on NOSCRIPT), so each is atomic
//! and every gateway replica sharing the Redis sees one queue. Works against a single server
//! or a Redis Cluster: all keys of one event carry the hash tag `{event_id}`.
//!
//! In a cluster, commands do not go through fred's cluster client: its router stops every
//! command, whatever its slot, while it cannot connect to a node that the topology still lists
//! (a dead primary, for the seconds until its replica is promoted). The cluster client only
//! keeps the slot map; each primary gets its own pool of plain connections, so a dead primary
//! stalls only its own events (see [`RedisStore::client_for`]).
//!
//! With [`RedisOptions::wait_replicas`] above 0, the writes a user is told about (join, enter,
//! the event's configuration) are followed by `WAIT` on the same connection and node, and are
//! acknowledged only once that many replicas have them (see [`QueueError::NotReplicated`]).

use super::Store;
use crate::error::{QueueError, Result};
use crate::ids::{EventId, SessionKey};
use crate::model::*;
use async_trait::async_trait;
use fred::prelude::*;
use fred::types::config::{Options, Server};
use fred::types::scripts::Script;
use fred::types::{Builder, ClusterHash, CustomCommand, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// The key of the set of configured events (outside any event's slot).
const EVENTS_KEY: &str = "wr:events";

const LIB: &str = include_str!("lua/lib.lua");

/// Connection settings of the Redis store.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://host:port[/db]`, or `redis-cluster://host:port?node=host:port&...`.
    pub url: String,
    /// How long one command may take, reconnection included, before the caller gets
    /// `Unavailable` (and HTTP 503).
    pub command_timeout: Duration,
    /// Connections in the pool (commands are pipelined on each).
    pub pool_size: usize,
    /// Replicas that must confirm a join, an enter or an event's configuration before it is
    /// acknowledged (`WAIT`); 0 acknowledges what the primary alone has (asynchronous
    /// replication: a failover can lose it).
    pub wait_replicas: u32,
    /// How long `WAIT` waits for those replicas; past it the caller gets
    /// [`QueueError::NotReplicated`] (HTTP 503). Blocks the connection's later commands meanwhile.
    pub wait_timeout: Duration,
}

impl RedisOptions {
    /// Options with the documented defaults: 1 s command timeout, a pool of 4, no `WAIT` (its
    /// timeout 100 ms when turned on).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            command_timeout: Duration::from_millis(1000),
            pool_size: 4,
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(100),
        }
    }
}

struct Scripts {
    join: Script,
    status: Script,
    enter: Script,
    leave: Script,
    admit: Script,
    sweep: Script,
    info: Script,
    configure: Script,
    action: Script,
    pulse: Script,
    places: Script,
}

impl Scripts {
    fn new() -> Self {
        let s = |body: &str| Script::from_lua(format!("{LIB}\n{body}"));
        Self {
            join: s(include_str!("lua/join.lua")),
            status: s(include_str!("lua/status.lua")),
            enter: s(include_str!("lua/enter.lua")),
            leave: s(include_str!("lua/leave.lua")),
            admit: s(include_str!("lua/admit.lua")),
            sweep: s(include_str!("lua/sweep.lua")),
            info: s(include_str!("lua/info.lua")),
            configure: s(include_str!("lua/configure.lua")),
            action: s(include_str!("lua/action.lua")),
            pulse: s(include_str!("lua/departures.lua")),
            places: s(include_str!("lua/places.lua")),
        }
    }
}

/// Queue state in Redis, shared by every replica.
pub struct RedisStore {
    /// A single server: every command. A cluster: the slot map (and the fallback route while
    /// the map is empty).
    pool: Pool,
    /// In a cluster, one pool per primary, created on first use.
    nodes: Option<NodePools>,
    /// The Lua scripts (sent by hash, loaded on NOSCRIPT).
    scripts: Scripts,
    /// [`RedisOptions::wait_replicas`].
    wait_replicas: u32,
    /// [`RedisOptions::wait_timeout`].
    wait_timeout: Duration,
    /// [`RedisOptions::command_timeout`] (a waited write may take it plus `wait_timeout`).
    command_timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

/// Every failure to get an answer, and every error reply of a server that is failing over,
/// loading, out of memory or otherwise not serving now, is `Unavailable` (HTTP 503 and a retry);
/// only answers that retrying cannot change (an error inside a script, a wrong type, a reply
/// that does not parse: bugs) are `Protocol`.
/// The per-primary pools of a cluster.
struct NodePools {
    /// The cluster URL's settings (credentials, timeouts), to derive each node's from.
    config: Config,
    /// Timeouts and pool size of each node's pool.
    opts: RedisOptions,
    /// The pool of each primary met so far (a demoted one is kept, unused, and reconnects).
    pools: RwLock<HashMap<Server, Pool>>,
    /// When the slot map was last refreshed (ms since `epoch`), to refresh at most every 200 ms.
    last_sync_ms: AtomicU64,
    /// The origin of `last_sync_ms`.
    epoch: Instant,
}

/// Builds a pool with the store's timeouts and reconnection policy.
fn build_pool(config: Config, opts: &RedisOptions) -> Result<Pool> {
    Builder::from_config(config)
        .with_performance_config(|p| {
            p.default_command_timeout = opts.command_timeout;
        })
        .with_connection_config(|c| {
            c.connection_timeout = opts.command_timeout;
            c.internal_command_timeout = opts.command_timeout;
            c.max_command_attempts = 3;
            c.unresponsive.max_timeout = Some(opts.command_timeout * 2);
            c.unresponsive.interval = Duration::from_millis(200);
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2))
        .build_pool(opts.pool_size.max(1))
        .map_err(|e| QueueError::InvalidArgument(format!("redis config: {}", e.details())))
}

fn map_err(e: fred::error::Error) -> QueueError {
    use fred::error::ErrorKind as K;
    let details = e.details();
    let is_bug = matches!(
        e.kind(),
        K::InvalidArgument | K::InvalidCommand | K::Parse | K::NotFound | K::Protocol
    ) || details.starts_with("WRONGTYPE")
        || details.contains("user_script")
        || details.contains("Error running script")
        || details.contains("Error compiling script");
    if is_bug {
        QueueError::Protocol(e.to_string())
    } else {
        // IO, Timeout, Canceled, Cluster (MOVED, ASK, CLUSTERDOWN), Routing, Backpressure, and
        // error replies such as LOADING, TRYAGAIN, MASTERDOWN, BUSY, READONLY, OOM, NOREPLICAS
        // or "WAIT cannot be used with replica instances" (a demoted primary).
        QueueError::Unavailable(e.to_string())
    }
}

/// The five keys every script gets, and the prefix from which it derives the bucket keys.
fn base_keys(event: &EventId) -> (Vec<String>, String) {
    let p = format!("wr:{{{}}}:", event.as_str());
    let keys = ["ev", "seq", "q", "r", "a"]
        .iter()
        .map(|k| format!("{p}{k}"))
        .collect();
    (keys, p)
}

fn session_key(prefix: &str, s: SessionKey) -> String {
    format!("{prefix}s:{:04x}", s.bucket)
}

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

/// Decodes `{code, ticket, status, position, expires_at, rate_m, aps, flags, opens}`.
fn decode_place(r: &[i64]) -> Result<Place> {
    if r.len() < 9 {
        return Err(QueueError::Protocol(format!("short place reply {r:?}")));
    }
    let status =
        Status::from_code(r[2]).ok_or_else(|| QueueError::Protocol(format!("status {}", r[2])))?;
    Ok(Place {
        ticket: u(r[1]),
        status,
        position: u(r[3]),
        expires_at_ms: u(r[4]),
        measured_rate_milli: r[5],
        admit_per_second: u32::try_from(r[6]).unwrap_or(0),
        stopped: r[7] & 1 != 0,
        opens_at_ms: (r[8] >= 0).then(|| r[8] as u64),
    })
}

impl RedisStore {
    /// Connects (waiting up to `command_timeout` for the first connection; if Redis is down the
    /// store still starts, reconnects in the background, and answers `Unavailable` meanwhile).
    pub async fn connect(opts: &RedisOptions) -> Result<Self> {
        let config = Config::from_url(&opts.url)
            .map_err(|e| QueueError::InvalidArgument(format!("redis url: {}", e.details())))?;
        let clustered = config.server.is_clustered();
        let nodes = clustered.then(|| NodePools {
            config: config.clone(),
            opts: opts.clone(),
            pools: RwLock::new(HashMap::new()),
            last_sync_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        // The cluster client only keeps the slot map: one connection per primary is enough.
        let mut main_opts = opts.clone();
        if clustered {
            main_opts.pool_size = 1;
        }
        let pool = build_pool(config, &main_opts)?;
        pool.connect();
        if tokio::time::timeout(opts.command_timeout, pool.wait_for_connect())
            .await
            .is_err()
        {
            tracing::warn!("redis not reachable yet; retrying in the background");
        }
        Ok(Self {
            pool,
            nodes,
            scripts: Scripts::new(),
            wait_replicas: opts.wait_replicas,
            wait_timeout: opts.wait_timeout,
            command_timeout: opts.command_timeout,
        })
    }

    async fn run(&self, script: &Script, keys: Vec<String>, args: Vec<Value>) -> Result<Vec<i64>> {
        self.run_as(script, keys, args).await
    }

    /// A connection for the keys in `slot`: on a single server, the next of the pool; in a
    /// cluster, the next of the pool of the primary that the slot map says serves it.
    ///
    /// Why not fred's cluster client: when a primary dies, its router re-syncs the topology and
    /// holds every queued command, whatever its slot, until it can connect to every primary that
    /// CLUSTER SLOTS lists, i.e. until the replica is promoted. Plain per-node clients each
    /// reconnect on their own, so only the dead primary's events wait (and answer 503). The
    /// cluster client still follows the topology: its re-sync after a lost connection updates
    /// the slot map even while one node is unreachable, and [`Self::refresh_slots`] asks it to
    /// re-sync after a MOVED.
    fn client_for(&self, slot: u16) -> Result<Client> {
        let Some(nodes) = &self.nodes else {
            return Ok(self.pool.next().clone());
        };
        let server = self
            .pool
            .next()
            .cached_cluster_state()
            .and_then(|state| state.get_server(slot).cloned());
        let Some(server) = server else {
            return Ok(self.pool.next().clone());
        };
        if let Some(pool) = nodes.pools.read().expect("node pools").get(&server) {
            return Ok(pool.next().clone());
        }
        let mut pools = nodes.pools.write().expect("node pools");
        if let Some(pool) = pools.get(&server) {
            return Ok(pool.next().clone());
        }
        let mut config = nodes.config.clone();
        config.server = fred::types::config::ServerConfig::Centralized {
            server: server.clone(),
        };
        let pool = build_pool(config, &nodes.opts)?;
        pool.connect();
        let client = pool.next().clone();
        pools.insert(server, pool);
        Ok(client)
    }

    /// After an error that says the slot map is stale (MOVED, ASK, CLUSTERDOWN, a redirection
    /// limit, a lost connection), has the cluster client re-sync it in the background, at most
    /// every 200 ms.
    fn refresh_slots(&self, e: &fred::error::Error) {
        use fred::error::ErrorKind as K;
        let Some(nodes) = &self.nodes else { return };
        if !matches!(e.kind(), K::Cluster | K::Routing | K::IO | K::Timeout) {
            return;
        }
        let now = nodes.epoch.elapsed().as_millis() as u64;
        let last = nodes.last_sync_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 200
            || nodes
                .last_sync_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let client = self.pool.next().clone();
        tokio::spawn(async move {
            if let Err(e) = client.sync_cluster().await {
                tracing::debug!(error = %e, "redis cluster slot map refresh failed");
            }
        });
    }

    /// Maps a fred error, refreshing the slot map when the error calls for it.
    fn fail(&self, e: fred::error::Error) -> QueueError {
        self.refresh_slots(&e);
        map_err(e)
    }

    async fn run_as<R: fred::types::FromValue>(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<R> {
        let client = self.client_for(fred::util::redis_keyslot(keys[0].as_bytes()))?;
        script
            .evalsha_with_reload::<R, _, _>(&client, keys, args)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Runs `script` and, when `wait_replicas` is set, `WAIT` right behind it: one pipeline on
    /// one connection to the node that owns the event's slot, so that WAIT counts replicas that
    /// have this very write (Redis waits for the offset of its own connection's last write).
    async fn run_durable(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<Vec<i64>> {
        if self.wait_replicas == 0 {
            return self.run(script, keys, args).await;
        }
        let slot = fred::util::redis_keyslot(keys[0].as_bytes());
        let client = self.client_for(slot)?;
        let mut evalsha: Vec<Value> = Vec::with_capacity(2 + keys.len() + args.len());
        evalsha.push(Value::from(script.sha1().clone()));
        evalsha.push(Value::from(keys.len() as i64));
        evalsha.extend(keys.into_iter().map(Value::from));
        evalsha.extend(args);
        let mut reloaded = false;
        loop {
            let r = self
                .durably(&client, slot, "EVALSHA", evalsha.clone())
                .await;
            match r {
                Err(QueueError::Protocol(m)) if m.contains("NOSCRIPT") && !reloaded => {
                    reloaded = true;
                    script.load(&client).await.map_err(|e| self.fail(e))?;
                }
                Ok(v) => {
                    return <Vec<i64> as fred::types::FromValue>::from_value(v).map_err(map_err)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `cmd` then `WAIT wait_replicas wait_timeout` as one pipeline, both pinned to the
    /// node that owns `slot` in the client's routing table, and returns `cmd`'s reply once
    /// enough replicas confirmed it.
    ///
    /// Why pinned and not retried: WAIT counts the replicas that acknowledged the offset of the
    /// *connection's* last write. Sent to another node (a routing table refreshed in between) or
    /// on a fresh connection (a reconnection in between), it would find no write of ours and
    /// answer at once, confirming nothing. So both commands go to one explicit node, written
    /// back to back, each tried once; a MOVED (the slot moved in a failover) is not followed to
    /// the new owner but answered as `Unavailable`, and the routing table refreshed for the next
    /// call. A connection that breaks fails both commands.
    async fn durably(
        &self,
        client: &Client,
        slot: u16,
        cmd: &'static str,
        args: Vec<Value>,
    ) -> Result<Value> {
        let node: Option<Server> = if client.is_clustered() {
            client
                .cached_cluster_state()
                .and_then(|state| state.get_server(slot).cloned())
        } else {
            None
        };
        let opts = Options {
            cluster_node: node,
            cluster_hash: Some(ClusterHash::Custom(slot)),
            max_attempts: Some(1),
            max_redirections: Some(1),
            timeout: Some(self.command_timeout + self.wait_timeout),
            ..Options::default()
        };
        let pipeline = client.pipeline();
        let pipeline = pipeline.with_options(&opts);
        let hash = ClusterHash::Custom(slot);
        let _: () = pipeline
            .custom(CustomCommand::new_static(cmd, hash.clone(), false), args)
            .await
            .map_err(|e| self.fail(e))?;
        let _: () = pipeline
            .custom(
                CustomCommand::new_static("WAIT", hash, false),
                vec![
                    Value::from(i64::from(self.wait_replicas)),
                    Value::from(self.wait_timeout.as_millis().max(1) as i64),
                ],
            )
            .await
            .map_err(|e| self.fail(e))?;
        let mut replies = pipeline.try_all::<Value>().await.into_iter();
        let (reply, acked) = match (replies.next(), replies.next()) {
            (Some(reply), Some(acked)) => (reply, acked),
            // The pipeline failed as a whole (timed out, connection lost): one error for both.
            (Some(Err(e)), None) => return Err(self.fail(e)),
            _ => return Err(QueueError::Protocol("short WAIT pipeline reply".into())),
        };
        // NOSCRIPT stays recognisable for the caller's reload (map_err would call it Unavailable).
        let reply = reply.map_err(|e| {
            if e.details().starts_with("NOSCRIPT") {
                QueueError::Protocol(e.to_string())
            } else {
                self.fail(e)
            }
        })?;
        let acked: i64 = acked
            .and_then(|v| v.convert::<i64>())
            .map_err(|e| self.fail(e))?;
        if acked < i64::from(self.wait_replicas) {
            return Err(QueueError::NotReplicated {
                wanted: self.wait_replicas,
                acked: u32::try_from(acked.max(0)).unwrap_or(0),
            });
        }
        Ok(reply)
    }

    fn args(prefix: String, now_ms: u64, rest: impl IntoIterator<Item = Value>) -> Vec<Value> {
        let mut v = vec![Value::from(prefix), Value::from(now_ms as i64)];
        v.extend(rest);
        v
    }

    fn not_found(event: &EventId) -> QueueError {
        QueueError::EventNotFound(event.to_string())
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn configure(&self, event: &EventId, config: &EventConfig, now_ms: u64) -> Result<bool> {
        let (keys, p) = base_keys(event);
        let opens = config
            .opens_at_ms()
            .map(|o| o.to_string())
            .unwrap_or_default();
        let args = Self::args(
            p,
            now_ms,
            [
                Value::from(config.admit_per_second as i64),
                Value::from(config.max_active as i64),
                Value::from(config.admission_ttl_seconds as i64),
                Value::from(config.idle_timeout_seconds as i64),
                Value::from(config.ready_timeout_seconds as i64),
                Value::from(opens),
                Value::from(config.target_url.clone().unwrap_or_default()),
            ],
        );
        let r = self
            .run_durable(&self.scripts.configure, keys, args)
            .await?;
        // The registry of events lives in another slot, so it cannot join the script; adding to
        // a set is idempotent, and the admission loop finds the event at its next refresh. A
        // registry entry lost in a failover would stop the event's admissions, so it is waited
        // for like the configuration itself.
        let slot = fred::util::redis_keyslot(EVENTS_KEY.as_bytes());
        let client = self.client_for(slot)?;
        if self.wait_replicas == 0 {
            let _: i64 = client
                .sadd(EVENTS_KEY, event.as_str())
                .await
                .map_err(|e| self.fail(e))?;
        } else {
            self.durably(
                &client,
                slot,
                "SADD",
                vec![Value::from(EVENTS_KEY), Value::from(event.as_str())],
            )
            .await?;
        }
        Ok(r.first() == Some(&1))
    }

    async fn info(&self, event: &EventId, now_ms: u64) -> Result<Option<EventInfo>> {
        let (keys, p) = base_keys(event);
        let raw: Vec<String> = self
            .run_as(&self.scripts.info, keys, Self::args(p, now_ms, []))
            .await?;
        if raw.first().map(String::as_str) != Some("1") {
            return Ok(None);
        }
        if raw.len() < 16 {
            return Err(QueueError::Protocol(format!("short info reply {raw:?}")));
        }
        let r: Vec<i64> = raw[..15].iter().map(|v| v.parse().unwrap_or(0)).collect();
        let target_url = Some(raw[15].clone()).filter(|u| !u.is_empty());
        let secs = |v: i64| u32::try_from(v).unwrap_or(0);
        let opens_at = if r[6] >= 0 {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r[6]) * 1_000_000).ok()
        } else {
            None
        };
        Ok(Some(EventInfo {
            config: EventConfig {
                admit_per_second: secs(r[1]),
                max_active: secs(r[2]),
                admission_ttl_seconds: secs(r[3]),
                idle_timeout_seconds: secs(r[4]),
                ready_timeout_seconds: secs(r[5]),
                opens_at,
                target_url,
            },
            stopped: r[7] & 1 != 0,
            sold_out: r[7] & 2 != 0,
            measured_rate_milli: r[14],
            stats: EventStats {
                joined_total: u(r[8]),
                admitted_total: u(r[9]),
                entered_total: u(r[10]),
                waiting: u(r[11]),
                ready: u(r[12]),
                active: u(r[13]),
            },
        }))
    }

    async fn act(&self, event: &EventId, action: Action) -> Result<()> {
        let (keys, p) = base_keys(event);
        let (flag, value) = match action {
            Action::StopAdmissions => ("stopped", "1"),
            Action::ResumeAdmissions => ("stopped", "0"),
            Action::SoldOut => ("sold", "1"),
        };
        let r = self
            .run(
                &self.scripts.action,
                keys,
                Self::args(p, 0, [Value::from(flag), Value::from(value)]),
            )
            .await?;
        if r.first() == Some(&-1) {
            return Err(Self::not_found(event));
        }
        Ok(())
    }

    async fn events(&self) -> Result<Vec<EventId>> {
        let client = self.client_for(fred::util::redis_keyslot(EVENTS_KEY.as_bytes()))?;
        let ids: Vec<String> = client
            .smembers(EVENTS_KEY)
            .await
            .map_err(|e| self.fail(e))?;
        let mut ids: Vec<EventId> = ids.iter().filter_map(|s| EventId::parse(s).ok()).collect();
        ids.sort();
        Ok(ids)
    }

    async fn join(
        &self,
        event: &EventId,
        session: SessionKey,
        pre_score: i64,
        now_ms: u64,
    ) -> Result<Joined> {
        let (mut keys, p) = base_keys(event);
        keys.push(session_key(&p, session));
        let args = Self::args(
            p,
            now_ms,
            [
                Value::Bytes(session.field.to_vec().into()),
                Value::from(pre_score.clamp(super::PRE_SCORE_MIN, -1)),
            ],
        );
        let r = self.run_durable(&self.scripts.join, keys, args).await?;
        match r.first() {
            Some(-1) => Err(Self::not_found(event)),
            Some(-2) => Err(QueueError::EventClosed(event.to_string())),
            Some(&code) => Ok(Joined {
                created: code == 1,
                place: decode_place(&r)?,
            }),
            None => Err(QueueError::Protocol("empty join reply".into())),
        }
    }

    async fn status(
        &self,
        event: &EventId,
        ticket: u64,
        heartbeat: bool,
        now_ms: u64,
    ) -> Result<Place> {
        let (keys, p) = base_keys(event);
        let args = Self::args(
            p,
            now_ms,
            [
                Value::from(ticket as i64),
                Value::from(i64::from(heartbeat)),
            ],
        );
        let r = self.run(&self.scripts.status, keys, args).await?;
        if r.first() == Some(&-1) {
            return Err(Self::not_found(event));
        }
        decode_place(&r)
    }

    async fn enter(&self, event: &EventId, ticket: u64, now_ms: u64) -> Result<Entry> {
        let (keys, p) = base_keys(event);
        let r = self
            .run_durable(
                &self.scripts.enter,
                keys,
                Self::args(p, now_ms, [Value::from(ticket as i64)]),
            )
            .await?;
        match r.first() {
            Some(-1) => Err(Self::not_found(event)),
            Some(1) => Ok(Entry::Granted(decode_place(&r)?)),
            Some(_) => Ok(Entry::Refused(decode_place(&r)?)),
            None => Err(QueueError::Protocol("empty enter reply".into())),
        }
    }

    async fn leave(
        &self,
        event: &EventId,
        ticket: u64,
        session: SessionKey,
        now_ms: u64,
    ) -> Result<bool> {
        let (mut keys, p) = base_keys(event);
        keys.push(session_key(&p, session));
        let args = Self::args(
            p,
            now_ms,
            [
                Value::from(ticket as i64),
                Value::Bytes(session.field.to_vec().into()),
            ],
        );
        let r = self.run(&self.scripts.leave, keys, args).await?;
        match r.first() {
            Some(-1) => Err(Self::not_found(event)),
            Some(&v) => Ok(v == 1),
            None => Err(QueueError::Protocol("empty leave reply".into())),
        }
    }

    async fn admit(&self, event: &EventId, now_ms: u64) -> Result<AdmitReport> {
        let (keys, p) = base_keys(event);
        let r = self
            .run(&self.scripts.admit, keys, Self::args(p, now_ms, []))
            .await?;
        if r.first() == Some(&-1) {
            return Err(Self::not_found(event));
        }
        if r.len() < 5 {
            return Err(QueueError::Protocol(format!("short admit reply {r:?}")));
        }
        Ok(AdmitReport {
            admitted: u(r[0]),
            ready_expired: u(r[1]),
            waiting: u(r[2]),
            ready: u(r[3]),
            active: u(r[4]),
        })
    }

    async fn sweep(&self, event: &EventId, budget: u32, now_ms: u64) -> Result<SweepReport> {
        let (keys, p) = base_keys(event);
        let r = self
            .run(
                &self.scripts.sweep,
                keys,
                Self::args(p, now_ms, [Value::from(i64::from(budget.max(1)))]),
            )
            .await?;
        match r.as_slice() {
            [-1] => Err(Self::not_found(event)),
            [expired, done, ..] => Ok(SweepReport {
                expired: u(*expired),
                done: *done == 1,
            }),
            _ => Err(QueueError::Protocol(format!("bad sweep reply {r:?}"))),
        }
    }

    async fn pulse(&self, event: &EventId, since: u64) -> Result<Pulse> {
        let (keys, p) = base_keys(event);
        let args = Self::args(p, 0, [Value::from(since as i64)]);
        let r: Vec<String> = self.run_as(&self.scripts.pulse, keys, args).await?;
        if r.first().map(String::as_str) != Some("1") {
            return Err(Self::not_found(event));
        }
        let num = |i: usize| -> Result<i64> {
            r.get(i)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| QueueError::Protocol(format!("bad pulse reply {r:?}")))
        };
        let flags = num(2)?;
        let opens = num(3)?;
        let departures = if num(6)? == 1 {
            None
        } else {
            let d: Option<Vec<Departure>> = r[8..].iter().map(|e| Departure::parse(e)).collect();
            Some(d.ok_or_else(|| QueueError::Protocol(format!("bad departure in {r:?}")))?)
        };
        Ok(Pulse {
            seq: u(num(1)?),
            departures,
            stopped: flags & 1 != 0,
            sold_out: flags & 2 != 0,
            opens_at_ms: (opens >= 0).then_some(opens as u64),
            measured_rate_milli: num(4)?,
            admit_per_second: u32::try_from(num(5)?).unwrap_or(0),
            idle_timeout_seconds: u32::try_from(num(7)?).unwrap_or(0),
        })
    }

    async fn places(
        &self,
        event: &EventId,
        tickets: &[u64],
        heartbeat: bool,
        now_ms: u64,
    ) -> Result<(u64, Vec<Place>)> {
        let (keys, p) = base_keys(event);
        let args = Self::args(
            p,
            now_ms,
            std::iter::once(Value::from(i64::from(heartbeat)))
                .chain(tickets.iter().map(|&t| Value::from(t as i64))),
        );
        let r = self.run(&self.scripts.places, keys, args).await?;
        if r.first() == Some(&-1) {
            return Err(Self::not_found(event));
        }
        if r.len() != 6 + 3 * tickets.len() {
            return Err(QueueError::Protocol(format!(
                "places reply of {} values for {} tickets",
                r.len(),
                tickets.len()
            )));
        }
        let places = tickets
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let at = 6 + 3 * i;
                decode_place(&[
                    0,
                    t as i64,
                    r[at],
                    r[at + 1],
                    r[at + 2],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                ])
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((u(r[5]), places))
    }

    async fn ping(&self) -> Result<()> {
        // A cluster answers while any primary does: the other primaries' events are served
        // while one primary is down, so the replica stays ready.
        let state = self.pool.next().cached_cluster_state();
        let mut first_slots: Vec<u16> = Vec::new();
        if let (Some(_), Some(state)) = (&self.nodes, &state) {
            let mut seen = std::collections::HashSet::new();
            for range in state.slots() {
                if seen.insert(range.primary.clone()) {
                    first_slots.push(range.start);
                }
            }
        }
        if first_slots.is_empty() {
            let _: String = self.pool.next().ping(None).await.map_err(map_err)?;
            return Ok(());
        }
        let mut pings = tokio::task::JoinSet::new();
        for slot in first_slots {
            let client = self.client_for(slot)?;
            pings.spawn(async move { client.ping::<String>(None).await });
        }
        let mut last = None;
        while let Some(r) = pings.join_next().await {
            match r {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => last = Some(map_err(e)),
                Err(e) => last = Some(QueueError::Unavailable(e.to_string())),
            }
        }
        Err(last.unwrap_or_else(|| QueueError::Unavailable("no primary answered".into())))
    }
}
