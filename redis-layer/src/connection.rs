//! The connection to Redis: a pool on a single server, one pool per primary in a cluster.
//!
//! In a cluster, commands do not go through fred's cluster client: its router stops every
//! command, whatever its slot, while it cannot connect to a node that the topology still lists
//! (a dead primary, for the seconds until its replica is promoted). The cluster client only
//! keeps the slot map; each primary gets its own pool of plain connections, so a dead primary
//! stalls only the keys it serves (see [`Redis::client_for_slot`]).

use crate::error::{classify, is_noscript, RedisError};
use crate::options::RedisOptions;
use crate::script::Script;
use crate::Result;
use fred::prelude::*;
use fred::types::config::{Options, Server};
use fred::types::{Builder, ClusterHash, CustomCommand, FromValue, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// A connection to a Redis server or cluster, shared by everything in a process that uses it.
pub struct Redis {
    /// A single server: every command. A cluster: the slot map (and the fallback route while
    /// the map is empty).
    pool: Pool,
    /// In a cluster, one pool per primary, created on first use.
    nodes: Option<NodePools>,
    /// Whether the first connection came up within the command timeout.
    connected_at_start: bool,
    /// [`RedisOptions::wait_replicas`].
    wait_replicas: u32,
    /// [`RedisOptions::wait_timeout`].
    wait_timeout: Duration,
    /// [`RedisOptions::command_timeout`] (a waited write may take it plus `wait_timeout`).
    command_timeout: Duration,
}

crate::debug_some!(
    Redis,
    |r| clustered = r.nodes.is_some(),
    wait_replicas = r.wait_replicas
);

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

/// Builds a pool with the layer's timeouts and reconnection policy.
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
        .map_err(|e| RedisError::Config(e.details().to_string()))
}

/// The cluster slot of a key (its hash tag's, when it has one).
pub fn slot_of(key: &str) -> u16 {
    fred::util::redis_keyslot(key.as_bytes())
}

impl Redis {
    /// Connects, waiting up to the command timeout for the first connection. If Redis is down
    /// the connection still starts, reconnects in the background, and calls answer
    /// [`RedisError::Unavailable`] meanwhile.
    pub async fn connect(opts: &RedisOptions) -> Result<Self> {
        let config = Config::from_url(&opts.url)
            .map_err(|e| RedisError::Config(format!("url: {}", e.details())))?;
        let clustered = config.server.is_clustered();
        let nodes = clustered.then(|| NodePools {
            config: config.clone(),
            opts: opts.clone(),
            pools: RwLock::new(HashMap::new()),
            last_sync_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        // The cluster client only keeps the slot map: one connection is enough.
        let mut main_opts = opts.clone();
        if clustered {
            main_opts.pool_size = 1;
        }
        let pool = build_pool(config, &main_opts)?;
        pool.connect();
        let connected_at_start =
            tokio::time::timeout(opts.command_timeout, pool.wait_for_connect())
                .await
                .is_ok_and(|r| r.is_ok());
        if !connected_at_start {
            tracing::warn!("redis not reachable yet; retrying in the background");
        }
        Ok(Self {
            pool,
            nodes,
            connected_at_start,
            wait_replicas: opts.wait_replicas,
            wait_timeout: opts.wait_timeout,
            command_timeout: opts.command_timeout,
        })
    }

    /// Whether the first connection came up within the command timeout.
    pub fn connected_at_start(&self) -> bool {
        self.connected_at_start
    }

    /// Replicas a durable write waits for (0: none).
    pub fn wait_replicas(&self) -> u32 {
        self.wait_replicas
    }

    /// A connection for `key`; see [`Self::client_for_slot`].
    pub fn client(&self, key: &str) -> Result<Client> {
        self.client_for_slot(slot_of(key))
    }

    /// A connection for the keys in `slot`: on a single server, the next of the pool; in a
    /// cluster, the next of the pool of the primary that the slot map says serves it.
    ///
    /// Why not fred's cluster client: when a primary dies, its router re-syncs the topology and
    /// holds every queued command, whatever its slot, until it can connect to every primary that
    /// CLUSTER SLOTS lists, i.e. until the replica is promoted. Plain per-node clients each
    /// reconnect on their own, so only the dead primary's keys wait (and answer 503). The
    /// cluster client still follows the topology: its re-sync after a lost connection updates
    /// the slot map even while one node is unreachable, and [`Self::fail`] asks it to re-sync
    /// after a MOVED.
    pub fn client_for_slot(&self, slot: u16) -> Result<Client> {
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

    /// Classifies a fred error; after one that says the slot map is stale (MOVED, ASK,
    /// CLUSTERDOWN, a redirection limit, a lost connection) it also has the cluster client
    /// re-sync the map in the background, at most every 200 ms.
    pub fn fail(&self, e: fred::error::Error) -> RedisError {
        self.refresh_slots(&e);
        classify(e)
    }

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

    /// Runs `script` (`EVALSHA`, loading it on NOSCRIPT) on the node that serves `keys[0]`'s
    /// slot. Every key must share that slot (one hash tag).
    pub async fn eval<R: FromValue>(
        &self, script: &Script, keys: Vec<String>, args: Vec<Value>,
    ) -> Result<R> {
        let client = self.client(keys.first().map_or("", String::as_str))?;
        script
            .0
            .evalsha_with_reload::<R, _, _>(&client, keys, args)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Like [`Self::eval`], and when [`RedisOptions::wait_replicas`] is set, answered only once
    /// that many replicas have the script's writes (`WAIT` right behind it; see
    /// [`Self::durably`]). The script must write something on every call, even when it changes
    /// nothing, so that the `WAIT` also covers earlier writes it answers about.
    pub async fn eval_durable<R: FromValue>(
        &self, script: &Script, keys: Vec<String>, args: Vec<Value>,
    ) -> Result<R> {
        if self.wait_replicas == 0 {
            return self.eval(script, keys, args).await;
        }
        let slot = slot_of(keys.first().map_or("", String::as_str));
        let client = self.client_for_slot(slot)?;
        let mut evalsha: Vec<Value> = Vec::with_capacity(2 + keys.len() + args.len());
        evalsha.push(Value::from(script.sha1()));
        evalsha.push(Value::from(keys.len() as i64));
        evalsha.extend(keys.into_iter().map(Value::from));
        evalsha.extend(args);
        let mut reloaded = false;
        loop {
            match self.waited(&client, slot, "EVALSHA", evalsha.clone()).await {
                Err(Waited::NoScript) if !reloaded => {
                    reloaded = true;
                    script.0.load(&client).await.map_err(|e| self.fail(e))?;
                }
                Err(Waited::NoScript) => {
                    return Err(RedisError::Bug("NOSCRIPT after SCRIPT LOAD".into()))
                }
                Err(Waited::Failed(e)) => return Err(e),
                Ok(v) => return R::from_value(v).map_err(classify),
            }
        }
    }

    /// Sends `cmd` then `WAIT`, pinned to the node that serves `slot`, and returns `cmd`'s reply
    /// once enough replicas confirmed it; without `wait_replicas` it just sends `cmd` there.
    pub async fn durably(&self, slot: u16, cmd: &'static str, args: Vec<Value>) -> Result<Value> {
        let client = self.client_for_slot(slot)?;
        if self.wait_replicas == 0 {
            return client
                .custom(
                    CustomCommand::new_static(cmd, ClusterHash::Custom(slot), false),
                    args,
                )
                .await
                .map_err(|e| self.fail(e));
        }
        match self.waited(&client, slot, cmd, args).await {
            Ok(v) => Ok(v),
            Err(Waited::Failed(e)) => Err(e),
            Err(Waited::NoScript) => Err(RedisError::Bug("NOSCRIPT".into())),
        }
    }

    /// Sends `cmd` then `WAIT wait_replicas wait_timeout` as one pipeline, both pinned to the
    /// node that owns `slot` in the client's routing table.
    ///
    /// Why pinned and not retried: WAIT counts the replicas that acknowledged the offset of the
    /// *connection's* last write. Sent to another node (a routing table refreshed in between) or
    /// on a fresh connection (a reconnection in between), it would find no write of ours and
    /// answer at once, confirming nothing. So both commands go to one explicit node, written
    /// back to back, each tried once; a MOVED (the slot moved in a failover) is not followed to
    /// the new owner but answered as `Unavailable`, and the routing table refreshed for the next
    /// call. A connection that breaks fails both commands.
    async fn waited(
        &self, client: &Client, slot: u16, cmd: &'static str, args: Vec<Value>,
    ) -> std::result::Result<Value, Waited> {
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
        let failed = |e| Waited::Failed(self.fail(e));
        let _: () = pipeline
            .custom(CustomCommand::new_static(cmd, hash.clone(), false), args)
            .await
            .map_err(failed)?;
        let _: () = pipeline
            .custom(
                CustomCommand::new_static("WAIT", hash, false),
                vec![
                    Value::from(i64::from(self.wait_replicas)),
                    Value::from(self.wait_timeout.as_millis().max(1) as i64),
                ],
            )
            .await
            .map_err(failed)?;
        let mut replies = pipeline.try_all::<Value>().await.into_iter();
        let (reply, acked) = match (replies.next(), replies.next()) {
            (Some(reply), Some(acked)) => (reply, acked),
            // The pipeline failed as a whole (timed out, connection lost): one error for both.
            (Some(Err(e)), None) => return Err(failed(e)),
            _ => {
                return Err(Waited::Failed(RedisError::Bug(
                    "short WAIT pipeline reply".into(),
                )))
            }
        };
        let reply = match reply {
            Err(e) if is_noscript(&e) => return Err(Waited::NoScript),
            other => other.map_err(failed)?,
        };
        let acked: i64 = acked.and_then(|v| v.convert::<i64>()).map_err(failed)?;
        if acked < i64::from(self.wait_replicas) {
            return Err(Waited::Failed(RedisError::NotReplicated {
                wanted: self.wait_replicas,
                acked: u32::try_from(acked.max(0)).unwrap_or(0),
            }));
        }
        Ok(reply)
    }

    /// Checks that Redis answers. A cluster answers while any primary does: the other
    /// primaries' keys are served while one primary is down, so a replica stays ready.
    pub async fn ping(&self) -> Result<()> {
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
            let _: String = self.pool.next().ping(None).await.map_err(classify)?;
            return Ok(());
        }
        let mut pings = tokio::task::JoinSet::new();
        for slot in first_slots {
            let client = self.client_for_slot(slot)?;
            pings.spawn(async move { client.ping::<String>(None).await });
        }
        let mut last = None;
        while let Some(r) = pings.join_next().await {
            match r {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => last = Some(classify(e)),
                Err(e) => last = Some(RedisError::Unavailable(e.to_string())),
            }
        }
        Err(last.unwrap_or_else(|| RedisError::Unavailable("no primary answered".into())))
    }
}

/// One primary's answer to [`Redis::ping_primaries`].
#[derive(Debug, Clone)]
pub struct PrimaryPing {
    /// `host:port` of the primary (for a single server, the server).
    pub node: String,
    /// How long its PING took, or why it did not answer within the command timeout.
    pub result: std::result::Result<Duration, RedisError>,
}

impl Redis {
    /// PINGs every primary at once (each within the command timeout): a single server is one
    /// primary; a cluster's come from the slot map (a cluster without one yet answers as one
    /// entry named `cluster`). For health reports that name each primary, where
    /// [`Redis::ping`] answers whether any serves.
    pub async fn ping_primaries(&self) -> Vec<PrimaryPing> {
        let mut targets: Vec<(String, u16)> = Vec::new();
        if self.nodes.is_some() {
            if let Some(state) = self.pool.next().cached_cluster_state() {
                let mut seen = std::collections::HashSet::new();
                for range in state.slots() {
                    if seen.insert(range.primary.clone()) {
                        targets.push((range.primary.to_string(), range.start));
                    }
                }
            }
        }
        let timeout = self.command_timeout;
        let timed = move |client: Client| async move {
            let started = Instant::now();
            match tokio::time::timeout(timeout, client.ping::<String>(None)).await {
                Ok(Ok(_)) => Ok(started.elapsed()),
                Ok(Err(e)) => Err(classify(e)),
                Err(_) => Err(RedisError::Unavailable("PING timed out".into())),
            }
        };
        if targets.is_empty() {
            let client = self.pool.next().clone();
            let node = match &client.client_config().server {
                fred::types::config::ServerConfig::Centralized { server } => server.to_string(),
                _ => "cluster".to_owned(),
            };
            return vec![PrimaryPing {
                node,
                result: timed(client).await,
            }];
        }
        let mut pings = tokio::task::JoinSet::new();
        for (i, (node, slot)) in targets.into_iter().enumerate() {
            let client = self.client_for_slot(slot);
            pings.spawn(async move {
                let result = match client {
                    Ok(c) => timed(c).await,
                    Err(e) => Err(e),
                };
                (i, PrimaryPing { node, result })
            });
        }
        let mut out = Vec::new();
        while let Some(r) = pings.join_next().await {
            if let Ok(p) = r {
                out.push(p);
            }
        }
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, p)| p).collect()
    }
}

/// Why a waited write did not give a reply.
enum Waited {
    /// The script is not loaded on that node (the caller loads it and retries once).
    NoScript,
    /// Any other failure, classified.
    Failed(RedisError),
}

impl Drop for Redis {
    /// Closes every pool, so that a dropped connection (a test's store, a replaced client)
    /// leaves no reconnect loop running.
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut pools = vec![self.pool.clone()];
        if let Some(nodes) = &self.nodes {
            if let Ok(map) = nodes.pools.read() {
                pools.extend(map.values().cloned());
            }
        }
        runtime.spawn(async move {
            for pool in pools {
                let _ = pool.quit().await;
            }
        });
    }
}
