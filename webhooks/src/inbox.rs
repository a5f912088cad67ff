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

#[derive(Debug, Default, serde::Deserialize)]
struct DlqState {
    retried_at: Option<String>,
    retry_stream_id: Option<String>,
    resolved_at: Option<String>,
    resolved_by: Option<String>,
    note: Option<String>,
}

struct Scripts {
    append: Script,
    group: Script,
    read: Script,
    claim: Script,
    ack: Script,
    fail: Script,
    dlq_read: Script,
    dlq_retry: Script,
    dlq_resolve: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            append: Script::new("", include_str!("lua/append.lua")),
            group: Script::new("", include_str!("lua/group.lua")),
            read: Script::new("", include_str!("lua/read.lua")),
            claim: Script::new("", include_str!("lua/claim.lua")),
            ack: Script::new("", include_str!("lua/ack.lua")),
            fail: Script::new("", include_str!("lua/fail.lua")),
            dlq_read: Script::new("", include_str!("lua/dlq_read.lua")),
            dlq_retry: Script::new("", include_str!("lua/dlq_retry.lua")),
            dlq_resolve: Script::new("", include_str!("lua/dlq_resolve.lua")),
        }
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

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("prefix", &self.keys.prefix)
            .finish_non_exhaustive()
    }
}

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

    /// Dedups and appends a batch in one script call; the answers in order.
    async fn append_many(&self, batch: Vec<Append>) -> Result<Vec<Appended>> {
        let mut keys = Vec::with_capacity(2 * batch.len());
        let mut args = vec![Value::from(self.dedup_ttl_secs)];
        for a in &batch {
            keys.push(a.seen.clone());
            keys.push(a.stream.clone());
            args.push(Value::from(2 * a.fields.len() as i64));
            for (k, v) in &a.fields {
                args.push(Value::from(k.as_str()));
                args.push(Value::from(v.as_str()));
            }
        }
        // With --redis-wait-replicas, answered once the replicas have it (`WAIT` on the node
        // that took the write; a duplicate rewrites its mark so the WAIT covers the first one).
        let reply: Value = self
            .redis
            .eval_durable(&self.scripts.append, keys, args)
            .await?;
        let r = strings(reply, "append")?;
        if r.len() != 2 * batch.len() {
            return Err(proto_err("append"));
        }
        r.chunks_exact(2)
            .map(|p| match p[0].as_str() {
                "new" => Ok(Appended::New(p[1].clone())),
                "duplicate" => Ok(Appended::Duplicate(p[1].clone())),
                _ => Err(proto_err("append")),
            })
            .collect()
    }

    async fn append_to(
        &self,
        seen: String,
        stream: &str,
        env: &Envelope,
        extra: &[(&str, String)],
    ) -> Result<Appended> {
        let fields = env
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .chain(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())))
            .collect();
        let one = Append {
            seen,
            stream: stream.to_owned(),
            fields,
        };
        if stream != self.keys.inbox {
            let mut r = self.append_many(vec![one]).await?;
            return r.pop().ok_or_else(|| proto_err("append"));
        }
        // Deliveries to the inbox are group-committed: one script call per burst.
        let inbox = self.clone();
        self.appends
            .submit(
                &(),
                one,
                0,
                move |batch, _| {
                    let inbox = inbox.clone();
                    async move { inbox.append_many(batch).await }
                },
                |_, _| proto_err("append"),
            )
            .await
    }

    /// Stores a verified envelope unless its `event_id` was stored before (atomically), and
    /// wakes this process's consumer. Counts `received` and `duplicates`.
    pub async fn append(&self, env: &Envelope) -> Result<Appended> {
        let r = self
            .append_to(self.keys.seen(&env.event_id), &self.keys.inbox, env, &[])
            .await?;
        self.metrics.received();
        match &r {
            Appended::New(_) => self.appended.notify_one(),
            Appended::Duplicate(_) => self.metrics.duplicate(),
        }
        Ok(r)
    }

    /// Stores a well-signed but malformed webhook straight in the dead-letter stream (deduped
    /// like any other, so a provider's retries make one dead letter). Counts `dead_lettered`.
    pub async fn dead_letter_malformed(&self, env: &Envelope, error: &str) -> Result<Appended> {
        let extra = [
            ("attempts", "0".to_owned()),
            ("last_error", error.to_owned()),
            ("failed_at", rfc3339_ms(now_ms())),
        ];
        let r = self
            .append_to(
                self.keys.seen_malformed(&env.event_id),
                &self.keys.dlq,
                env,
                &extra,
            )
            .await?;
        if matches!(r, Appended::New(_)) {
            self.metrics.dead_lettered();
        }
        Ok(r)
    }

    /// Resolves when an append in this process may have added work (or at once, if one did
    /// since the last call).
    pub async fn appended(&self) {
        self.appended.notified().await
    }

    fn is_nogroup(e: &InboxError) -> bool {
        matches!(e, InboxError::Protocol(m) if m.contains("NOGROUP"))
    }

    /// Up to `count` entries for `consumer`: due retries first, then new entries.
    pub async fn read(&self, consumer: &str, now_ms: i64, count: usize) -> Result<Vec<Entry>> {
        let keys = vec![
            self.keys.inbox.clone(),
            self.keys.retry.clone(),
            self.keys.attempts.clone(),
        ];
        let args = vec![
            Value::from(&*self.group),
            Value::from(consumer),
            Value::from(now_ms),
            Value::from(count.max(1) as i64),
        ];
        let v = match self
            .eval(&self.scripts.read, keys.clone(), args.clone())
            .await
        {
            // The stream vanished (Redis restarted without persistence, or was flushed).
            Err(e) if Self::is_nogroup(&e) => {
                self.ensure_group().await?;
                self.eval(&self.scripts.read, keys, args).await?
            }
            r => r?,
        };
        v.into_array()
            .into_iter()
            .map(|row| entry_of(strings(row, "read")?, "read"))
            .collect()
    }

    /// Claims for `consumer` up to `count` entries that other consumers left pending for more
    /// than `min_idle` (XAUTOCLAIM from `cursor`; pass "0-0" to start). Returns the next cursor
    /// ("0-0" once the scan wrapped) and the entries to forward. When a scan wraps, consumers
    /// silent for [`InboxOptions::stale_consumer`] with nothing pending are removed from the group.
    pub async fn claim(
        &self,
        consumer: &str,
        min_idle: Duration,
        cursor: &str,
        count: usize,
    ) -> Result<(String, Vec<Entry>)> {
        let keys = vec![
            self.keys.inbox.clone(),
            self.keys.retry.clone(),
            self.keys.attempts.clone(),
        ];
        let args = vec![
            Value::from(&*self.group),
            Value::from(consumer),
            Value::from(min_idle.as_millis() as i64),
            Value::from(cursor),
            Value::from(count.max(1) as i64),
            Value::from(self.stale_consumer_ms),
        ];
        let mut rows = self
            .eval(&self.scripts.claim, keys, args)
            .await?
            .into_array()
            .into_iter();
        let next = rows
            .next()
            .and_then(|v| v.into_string())
            .ok_or_else(|| proto_err("claim"))?;
        let entries = rows
            .map(|row| entry_of(strings(row, "claim")?, "claim"))
            .collect::<Result<_>>()?;
        Ok((next, entries))
    }

    /// Acknowledges a forwarded entry (and deletes it). False if it was already acknowledged.
    pub async fn ack(&self, id: &str) -> Result<bool> {
        Ok(self.ack_many(&[id]).await? == 1)
    }

    /// Acknowledges (and deletes) forwarded entries, [`ACK_CHUNK`] per script call; how many
    /// were acknowledged now (entries another consumer had already acknowledged are not
    /// counted). Not atomic across chunks: on an error, the chunks before it stay acknowledged
    /// and the rest stay pending (to be forwarded again, which the receiver tolerates).
    pub async fn ack_many<S: AsRef<str>>(&self, ids: &[S]) -> Result<u64> {
        let mut acked = 0;
        for chunk in ids.chunks(ACK_CHUNK) {
            let mut args = Vec::with_capacity(chunk.len() + 1);
            args.push(Value::from(&*self.group));
            args.extend(chunk.iter().map(|id| Value::from(id.as_ref())));
            let v = self
                .eval(
                    &self.scripts.ack,
                    vec![
                        self.keys.inbox.clone(),
                        self.keys.retry.clone(),
                        self.keys.attempts.clone(),
                    ],
                    args,
                )
                .await?;
            acked += v.as_i64().unwrap_or(0).max(0) as u64;
        }
        Ok(acked)
    }

    /// Records a failed attempt: schedules the next one `delay` from `now_ms`, or, when this
    /// was attempt `max_attempts` or `permanent`, moves the entry to the dead-letter stream.
    pub async fn fail(
        &self,
        id: &str,
        now_ms: i64,
        max_attempts: u32,
        delay: Duration,
        error: &str,
        permanent: bool,
    ) -> Result<Failed> {
        let keys = vec![
            self.keys.inbox.clone(),
            self.keys.retry.clone(),
            self.keys.attempts.clone(),
            self.keys.dlq.clone(),
        ];
        let args = vec![
            Value::from(&*self.group),
            Value::from(id),
            Value::from(now_ms),
            Value::from(max_attempts.max(1) as i64),
            Value::from(delay.as_millis() as i64),
            Value::from(error),
            Value::from(if permanent { "1" } else { "0" }),
            Value::from(rfc3339_ms(now_ms)),
        ];
        let r = strings(self.eval(&self.scripts.fail, keys, args).await?, "fail")?;
        match (r.first().map(String::as_str), r.get(1)) {
            (Some("retry"), Some(n)) => Ok(Failed::Retry(n.parse().unwrap_or(0))),
            (Some("dead"), Some(id)) => Ok(Failed::Dead(id.clone())),
            (Some("gone"), _) => Ok(Failed::Gone),
            _ => Err(proto_err("fail")),
        }
    }

    async fn dlq_read(
        &self,
        rev: bool,
        from: &str,
        to: &str,
        count: usize,
    ) -> Result<Vec<DeadLetter>> {
        let v = self
            .eval(
                &self.scripts.dlq_read,
                vec![self.keys.dlq.clone(), self.keys.dlq_state.clone()],
                vec![
                    Value::from(if rev { "1" } else { "0" }),
                    Value::from(from),
                    Value::from(to),
                    Value::from(count.max(1) as i64),
                ],
            )
            .await?;
        v.into_array()
            .into_iter()
            .map(|row| {
                let row = strings(row, "dlq")?;
                if row.len() < 2 {
                    return Err(proto_err("dlq"));
                }
                let fields = pairs(&row[2..]);
                let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
                let envelope = Envelope::from_fields(&fields).ok_or_else(|| proto_err("dlq"))?;
                let st: DlqState = if row[1].is_empty() {
                    DlqState::default()
                } else {
                    serde_json::from_str(&row[1]).map_err(|_| proto_err("dlq state"))?
                };
                let status = if st.resolved_at.is_some() {
                    "resolved"
                } else if st.retry_stream_id.is_some() {
                    "retried"
                } else {
                    "active"
                };
                Ok(DeadLetter {
                    id: row[0].clone(),
                    status,
                    envelope,
                    attempts: get("attempts").and_then(|a| a.parse().ok()).unwrap_or(0),
                    last_error: get("last_error").unwrap_or_default(),
                    failed_at: get("failed_at").unwrap_or_default(),
                    retry_of: get("retry_of"),
                    retried_at: st.retried_at,
                    retry_stream_id: st.retry_stream_id,
                    resolved_at: st.resolved_at,
                    resolved_by: st.resolved_by,
                    note: st.note,
                })
            })
            .collect()
    }

    /// The newest `limit` dead letters (1 to 1,000), newest first.
    pub async fn dlq_list(&self, limit: usize) -> Result<Vec<DeadLetter>> {
        self.dlq_read(true, "+", "-", limit.clamp(1, 1000)).await
    }

    /// One dead letter.
    pub async fn dlq_get(&self, id: &str) -> Result<DeadLetter> {
        if !is_stream_id(id) {
            return Err(InboxError::InvalidId);
        }
        self.dlq_read(false, id, id, 1)
            .await?
            .into_iter()
            .next()
            .ok_or(InboxError::NotFound)
    }

    /// Re-enqueues a dead letter's envelope into the inbox, once: a second call answers the
    /// first one's entry with `enqueued: false`. A resolved letter is `AlreadyResolved`.
    pub async fn dlq_retry(&self, id: &str) -> Result<Retried> {
        if !is_stream_id(id) {
            return Err(InboxError::InvalidId);
        }
        let r = strings(
            self.eval(
                &self.scripts.dlq_retry,
                vec![
                    self.keys.dlq.clone(),
                    self.keys.dlq_state.clone(),
                    self.keys.inbox.clone(),
                ],
                vec![Value::from(id), Value::from(rfc3339_ms(now_ms()))],
            )
            .await?,
            "dlq retry",
        )?;
        match (r.first().map(String::as_str), r.get(1)) {
            (Some("retried"), Some(sid)) => {
                self.appended.notify_one();
                Ok(Retried {
                    stream_id: sid.clone(),
                    enqueued: true,
                })
            }
            (Some("already"), Some(sid)) => Ok(Retried {
                stream_id: sid.clone(),
                enqueued: false,
            }),
            (Some("resolved"), _) => Err(InboxError::AlreadyResolved),
            (Some("missing"), _) => Err(InboxError::NotFound),
            _ => Err(proto_err("dlq retry")),
        }
    }

    /// Marks a dead letter resolved by `resolved_by` (1 to 200 characters) with an optional
    /// note (at most 2,000); one-shot: a second resolve is `AlreadyResolved`.
    pub async fn dlq_resolve(
        &self,
        id: &str,
        resolved_by: &str,
        note: Option<&str>,
    ) -> Result<DeadLetter> {
        if !is_stream_id(id) {
            return Err(InboxError::InvalidId);
        }
        let v = self
            .eval(
                &self.scripts.dlq_resolve,
                vec![self.keys.dlq.clone(), self.keys.dlq_state.clone()],
                vec![
                    Value::from(id),
                    Value::from(resolved_by),
                    Value::from(note.unwrap_or("")),
                    Value::from(rfc3339_ms(now_ms())),
                ],
            )
            .await?;
        match v.as_str().as_deref() {
            Some("resolved") => self.dlq_get(id).await,
            Some("already") => Err(InboxError::AlreadyResolved),
            Some("missing") => Err(InboxError::NotFound),
            _ => Err(proto_err("dlq resolve")),
        }
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
