//! The durable inbox in Redis: verified webhooks are deduplicated and appended to a stream in
//! one Lua script, read by a consumer group (any replica), retried on a schedule, and moved to
//! a dead-letter stream after the last attempt.
//!
//! Keys, all under one hash tag so that a Redis Cluster keeps them in one slot (the scripts
//! touch several at once): with namespace `payments`,
//!
//! | key | type | holds |
//! |---|---|---|
//! | `wh:{payments}:seen:<webhook id>` | string, TTL (7 days by default) | the entry id of the first delivery |
//! | `wh:{payments}:seen-malformed:<webhook id>` | string, same TTL | the dead letter of a malformed delivery |
//! | `wh:{payments}:inbox` | stream, group `forwarders` | envelopes not yet forwarded (deleted once acknowledged) |
//! | `wh:{payments}:retry` | sorted set | entry id → when its next attempt is due (ms) |
//! | `wh:{payments}:attempts` | hash | entry id → failed attempts so far |
//! | `wh:{payments}:dlq` | stream | dead letters (envelope + attempts, last_error, failed_at) |
//! | `wh:{payments}:dlq:state` | hash | dead-letter id → JSON of its retry / resolution |
//!
//! Durability is Redis's: an answer of "new" means the entry is in Redis's memory and, with
//! `appendonly yes` and `appendfsync always` (or `everysec`, losing at most a second on a power
//! cut), on disk; with replicas, Redis Cluster failover can lose the last writes that had not
//! replicated yet, unless [`InboxOptions::wait_replicas`] is set: then an append is answered
//! only once that many replicas have it (`WAIT`), and [`InboxError::NotReplicated`] otherwise.

use crate::envelope::{rfc3339_ms, Envelope};
use crate::error::{InboxError, Result};
use crate::metrics::Metrics;
use redis_layer::commands::StreamsInterface;
use redis_layer::{Group, GroupOptions, Redis, RedisOptions, Script, Value};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

mod append;
mod claim;
mod dlq;

/// Default lifetime of a dedup mark: 7 days, longer than any provider retries a webhook
/// (Standard Webhooks senders and Stripe retry for up to about 3 days).
pub const DEFAULT_DEDUP_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Most entry ids per acknowledgement script call (ack.lua unpacks them onto Lua's stack,
/// which holds about 8,000 values).
pub const ACK_CHUNK: usize = 1000;

/// Default of [`InboxOptions::stale_consumer`]: one hour.
pub const STALE_CONSUMER: Duration = Duration::from_secs(3600);

/// Settings of the inbox.
#[derive(Debug, Clone)]
pub struct InboxOptions {
    /// `redis://host:port[/db]` or `redis-cluster://host:port?node=host:port&...`.
    pub url: String,
    /// Per Redis command, reconnection included.
    pub command_timeout: Duration,
    /// Connections in the pool (pipelined).
    pub pool_size: usize,
    /// The hash tag of every key (letters, digits, `-`, `_`; 1 to 64).
    pub namespace: String,
    /// How long a webhook id is remembered.
    pub dedup_ttl: Duration,
    /// The consumer group name.
    pub group: String,
    /// A consumer silent this long with nothing pending is removed from the group (consumer
    /// names are per process, so every restart of a replica would leave one behind).
    pub stale_consumer: Duration,
    /// The group commit of appends: deliveries arriving together are stored by one script call
    /// (and one `WAIT`).
    pub batch: GroupOptions,
    /// Replicas that must have an append (Redis `WAIT`) before it is answered; 0: off.
    pub wait_replicas: u32,
    /// How long that `WAIT` waits.
    pub wait_timeout: Duration,
}

impl InboxOptions {
    /// Defaults: 1 s timeout, a pool of 2, namespace `payments`, 7-day dedup, group `forwarders`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            command_timeout: Duration::from_millis(1000),
            pool_size: 2,
            namespace: "payments".into(),
            dedup_ttl: DEFAULT_DEDUP_TTL,
            group: "forwarders".into(),
            stale_consumer: STALE_CONSUMER,
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(100),
            batch: GroupOptions::default(),
        }
    }
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored as the entry with this id.
    New(String),
    /// Already stored (this id's first delivery has this entry id).
    Duplicate(String),
}

/// An inbox entry handed to a consumer.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The stream entry id.
    pub id: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The envelope; None if the entry is corrupt (then it is dead-lettered at once).
    pub envelope: Option<Envelope>,
}

/// What a failed attempt led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// Scheduled again; the attempts so far.
    Retry(u32),
    /// Moved to the dead-letter stream under this id.
    Dead(String),
    /// Already acknowledged by another consumer; nothing to do.
    Gone,
}

/// What a dead-letter retry did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retried {
    /// The inbox entry id of the re-enqueued envelope.
    pub stream_id: String,
    /// False when an earlier retry had already enqueued it (nothing was enqueued now).
    pub enqueued: bool,
}

/// A dead letter, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// Its id in the dead-letter stream.
    pub id: String,
    /// `active`, `retried` or `resolved`.
    pub status: &'static str,
    /// The envelope.
    pub envelope: Envelope,
    /// Attempts made before it was dead-lettered (0: malformed, never forwarded).
    pub attempts: u32,
    /// The last error.
    pub last_error: String,
    /// When it was dead-lettered (RFC 3339).
    pub failed_at: String,
    /// The dead letter this envelope came from, when it was re-enqueued from one before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
    /// When an operator re-enqueued it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retried_at: Option<String>,
    /// The inbox entry of that retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_stream_id: Option<String>,
    /// When it was resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    /// Who resolved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// The resolution note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What the scripts that copy an entry between streams share.
const LIB: &str = include_str!("../lua/lib.lua");

redis_layer::scripts! {
    /// The inbox's Lua scripts, one file each.
    struct Scripts in "../lua/" {
        prelude LIB => [fail, dlq_retry];
        prelude "" => [append, group, read, claim, ack, dlq_read, dlq_resolve];
    }
}

/// The inbox's keys.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
    inbox: String,
    retry: String,
    attempts: String,
    dlq: String,
    dlq_state: String,
}

impl Keys {
    fn new(ns: &str) -> Self {
        let p = format!("wh:{{{ns}}}:");
        Self {
            inbox: format!("{p}inbox"),
            retry: format!("{p}retry"),
            attempts: format!("{p}attempts"),
            dlq: format!("{p}dlq"),
            dlq_state: format!("{p}dlq:state"),
            prefix: p,
        }
    }

    fn seen(&self, id: &str) -> String {
        format!("{}seen:{id}", self.prefix)
    }

    /// The dedup mark of malformed deliveries: kept apart from [`seen`](Self::seen), so that a
    /// malformed delivery never makes a later well-formed one with the same id a "duplicate".
    fn seen_malformed(&self, id: &str) -> String {
        format!("{}seen-malformed:{id}", self.prefix)
    }
}

/// The durable webhook inbox (cheap to clone: clones share the pool).
#[derive(Clone)]
pub struct Inbox {
    /// The shared Redis layer's connection (per-primary pools in a cluster, so a dead primary
    /// elsewhere in the cluster does not stall webhook intake).
    redis: Arc<Redis>,
    scripts: Arc<Scripts>,
    keys: Arc<Keys>,
    group: Arc<str>,
    dedup_ttl_secs: i64,
    stale_consumer_ms: i64,
    appended: Arc<Notify>,
    metrics: Arc<Metrics>,
    /// Appends waiting to be stored together (one lane: the inbox's one hash tag).
    appends: Arc<Group<(), Append, Appended, InboxError>>,
}

/// One append of a batch: the dedup key, the stream, and the entry's fields.
struct Append {
    seen: String,
    stream: String,
    fields: Vec<(String, String)>,
}

redis_layer::debug_some!(Inbox, |i| prefix = i.keys.prefix);

/// A stream id `ms-seq` (admin input is checked before it reaches a command).
pub fn is_stream_id(id: &str) -> bool {
    let mut parts = id.split('-');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

fn proto_err(what: &str) -> InboxError {
    InboxError::Protocol(format!("unexpected reply to {what}"))
}

fn strings(v: Value, what: &str) -> Result<Vec<String>> {
    v.into_array()
        .into_iter()
        .map(|x| x.into_string().ok_or_else(|| proto_err(what)))
        .collect()
}

fn pairs(rest: &[String]) -> Vec<(String, String)> {
    rest.chunks_exact(2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect()
}

fn entry_of(row: Vec<String>, what: &str) -> Result<Entry> {
    if row.len() < 2 {
        return Err(proto_err(what));
    }
    Ok(Entry {
        attempts: row[1].parse().unwrap_or(0),
        envelope: Envelope::from_fields(&pairs(&row[2..])),
        id: row[0].clone(),
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Inbox {
    /// Connects (waiting up to the command timeout for the first connection; if Redis is down
    /// the inbox still starts, reconnects in the background and answers `Unavailable`
    /// meanwhile) and creates the consumer group when Redis is reachable.
    pub async fn connect(opts: &InboxOptions, metrics: Arc<Metrics>) -> Result<Self> {
        let ns = &opts.namespace;
        if ns.is_empty()
            || ns.len() > 64
            || !ns
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(InboxError::Config(
                "namespace must be 1 to 64 letters, digits, - or _".into(),
            ));
        }
        let redis = Redis::connect(&RedisOptions {
            url: opts.url.clone(),
            command_timeout: opts.command_timeout,
            pool_size: opts.pool_size,
            wait_replicas: opts.wait_replicas,
            wait_timeout: opts.wait_timeout,
        })
        .await?;
        let reachable = redis.connected_at_start();
        let inbox = Self {
            redis: Arc::new(redis),
            scripts: Arc::new(Scripts::new()),
            keys: Arc::new(Keys::new(ns)),
            group: opts.group.as_str().into(),
            dedup_ttl_secs: opts.dedup_ttl.as_secs().max(1) as i64,
            stale_consumer_ms: opts.stale_consumer.as_millis() as i64,
            appended: Arc::new(Notify::new()),
            metrics,
            appends: Arc::new(Group::new(opts.batch)),
        };
        if !reachable {
            tracing::warn!("webhook inbox: redis not reachable yet; retrying in the background");
        } else if let Err(e) = inbox.ensure_group().await {
            tracing::warn!(error = %e, "webhook inbox: consumer group not created yet");
        }
        Ok(inbox)
    }

    /// The metrics this inbox and its consumers count into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    async fn eval(&self, script: &Script, keys: Vec<String>, args: Vec<Value>) -> Result<Value> {
        Ok(self.redis.eval(script, keys, args).await?)
    }

    /// Creates the consumer group (and stream) if missing.
    pub async fn ensure_group(&self) -> Result<()> {
        self.eval(
            &self.scripts.group,
            vec![self.keys.inbox.clone()],
            vec![Value::from(&*self.group)],
        )
        .await
        .map(|_| ())
    }

    /// Checks that the node serving the inbox's slot answers (`PING` there): in a cluster the
    /// other primaries may answer while this one is down, and then no webhook can be stored.
    pub async fn ping(&self) -> Result<()> {
        use redis_layer::commands::ClientLike;
        let _: Value = self
            .redis
            .client(&self.keys.inbox)?
            .ping(None)
            .await
            .map_err(|e| self.redis.fail(e))?;
        Ok(())
    }

    /// Entries in the inbox stream (not yet forwarded, or waiting for a retry).
    pub async fn backlog(&self) -> Result<u64> {
        self.redis
            .client(&self.keys.inbox)?
            .xlen(&self.keys.inbox)
            .await
            .map_err(|e| self.redis.fail(e).into())
    }

    /// The names of the consumer group's members (for operations and tests).
    pub async fn consumers(&self) -> Result<Vec<String>> {
        let v: Value = self
            .redis
            .client(&self.keys.inbox)?
            .xinfo_consumers(&self.keys.inbox, &*self.group)
            .await
            .map_err(|e| self.redis.fail(e))?;
        let mut names = Vec::new();
        for c in v.into_array() {
            let f = c.into_array();
            for pair in f.chunks(2) {
                if pair[0].as_str().as_deref() == Some("name") {
                    if let Some(n) = pair.get(1).and_then(|n| n.as_string()) {
                        names.push(n);
                    }
                }
            }
        }
        Ok(names)
    }

    /// Entries in the dead-letter stream (resolved ones included).
    pub async fn dead_letters(&self) -> Result<u64> {
        self.redis
            .client(&self.keys.dlq)?
            .xlen(&self.keys.dlq)
            .await
            .map_err(|e| self.redis.fail(e).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_checked() {
        assert!(is_stream_id("1700000000000-0"));
        assert!(is_stream_id("1-12"));
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1-2-3",
            "abc-1",
            "+",
            "1700000000000",
            "1 -0",
        ] {
            assert!(!is_stream_id(bad), "{bad}");
        }
    }

    #[test]
    fn every_key_shares_the_hash_tag() {
        let k = Keys::new("payments");
        for key in [
            &k.inbox,
            &k.retry,
            &k.attempts,
            &k.dlq,
            &k.dlq_state,
            &k.seen("msg_1"),
        ] {
            assert!(key.starts_with("wh:{payments}:"), "{key}");
        }
    }
}
