//! The Redis store: every step one Lua script (EVALSHA, reloaded on NOSCRIPT), so each is atomic
//! and every gateway replica sharing the Redis sees one queue. Works against a single server
//! or a Redis Cluster: all keys of one event carry the hash tag `{event_id}`.
//!
//! Connections, per-primary routing in a cluster, `EVALSHA` and `WAIT` are the shared
//! [`redis_layer`]'s; this file holds only the queue's keys, arguments and replies.
//!
//! With [`RedisOptions::wait_replicas`] above 0, the writes a user is told about (join, enter,
//! the event's configuration) are followed by `WAIT` on the same connection and node, and are
//! acknowledged only once that many replicas have them (see [`QueueError::NotReplicated`]).

use super::{CodeHash, Holder, JoinRequest, StatusRequest, Store};
use crate::error::{QueueError, Result};
use crate::ids::{EventId, SessionKey};
use crate::model::*;
use async_trait::async_trait;
use redis_layer::commands::SetsInterface;
use redis_layer::{slot_of, Redis, Script, Value};

pub use redis_layer::RedisOptions;

mod decode;
mod scripts;

use decode::{decode_place, u};
use scripts::Scripts;

/// The key of the set of configured events (outside any event's slot).
const EVENTS_KEY: &str = "wr:events";

/// Queue state in Redis, shared by every replica.
#[derive(Debug)]
pub struct RedisStore {
    /// The connection (a pool, or one per primary in a cluster).
    redis: Redis,
    /// The Lua scripts (sent by hash, loaded on NOSCRIPT).
    scripts: Scripts,
}

/// The keys and arguments of a script on `event`: the five keys every script gets, then the
/// arguments: the key prefix (from which a script derives the bucket keys), the time and
/// `rest`.
fn call(
    event: &EventId, now_ms: u64, rest: impl IntoIterator<Item = Value>,
) -> (Vec<String>, Vec<Value>) {
    let p = format!("wr:{{{}}}:", event.as_str());
    let keys = ["ev", "seq", "q", "r", "a"]
        .iter()
        .map(|k| format!("{p}{k}"))
        .collect();
    let mut args = vec![Value::from(p), Value::from(now_ms as i64)];
    args.extend(rest);
    (keys, args)
}

fn member(s: SessionKey) -> Value {
    Value::Bytes(s.bytes().to_vec().into())
}

/// A join's arguments to join.lua: session, draw, access code hash ('' for none).
fn join_args(j: &JoinRequest) -> [Value; 3] {
    let code = match &j.access_code {
        Some(h) => Value::Bytes(h.to_vec().into()),
        None => Value::from(""),
    };
    let draw = j.pre_score.clamp(super::PRE_SCORE_MIN, -1);
    [member(j.session), Value::from(draw), code]
}

/// How every script on a place takes it: ticket, then session.
fn holder_args(h: Holder) -> [Value; 2] {
    [Value::from(h.ticket as i64), member(h.session)]
}

/// A status read's arguments to status.lua: ticket, session, heartbeat (0 or 1).
fn read_args(r: &StatusRequest) -> [Value; 3] {
    let [ticket, session] = holder_args(r.holder);
    [ticket, session, Value::from(i64::from(r.heartbeat))]
}

impl RedisStore {
    /// Connects (waiting up to `command_timeout` for the first connection; if Redis is down the
    /// store still starts, reconnects in the background, and answers `Unavailable` meanwhile).
    pub async fn connect(opts: &RedisOptions) -> Result<Self> {
        Ok(Self {
            redis: Redis::connect(opts).await?,
            scripts: Scripts::new(),
        })
    }

    async fn run(&self, script: &Script, keys: Vec<String>, args: Vec<Value>) -> Result<Vec<i64>> {
        Ok(self.redis.eval(script, keys, args).await?)
    }

    /// Runs `script` and, when `--redis-wait-replicas` is set, answers only once the replicas
    /// have its writes (the join, enter and configure scripts always write, so that the WAIT
    /// also covers the earlier writes they answer about).
    async fn run_durable(
        &self, script: &Script, keys: Vec<String>, args: Vec<Value>,
    ) -> Result<Vec<i64>> {
        Ok(self.redis.eval_durable(script, keys, args).await?)
    }

    /// Adds or removes access codes (codes.lua), waited for like a join: a minted code lost in
    /// a failover would be refused after it was handed out.
    async fn codes(&self, event: &EventId, op: &str, codes: &[CodeHash]) -> Result<u64> {
        if codes.len() > super::MAX_ACCESS_CODES_PER_CALL {
            return Err(QueueError::InvalidArgument(format!(
                "at most {} access codes a call",
                super::MAX_ACCESS_CODES_PER_CALL
            )));
        }
        let (keys, args) = call(
            event,
            0,
            std::iter::once(Value::from(op))
                .chain(codes.iter().map(|h| Value::Bytes(h.to_vec().into()))),
        );
        let r = self.run_durable(&self.scripts.codes, keys, args).await?;
        match r.first() {
            Some(-1) => Err(Self::not_found(event)),
            Some(&n) => Ok(u(n)),
            None => Err(QueueError::Protocol("empty codes reply".into())),
        }
    }

    fn not_found(event: &EventId) -> QueueError {
        QueueError::EventNotFound(event.to_string())
    }

    /// The code that leads a script's reply (`what` names the script in the error); -1 means
    /// the event does not exist.
    fn reply_code(event: &EventId, r: &[i64], what: &str) -> Result<i64> {
        match r.first() {
            Some(-1) => Err(Self::not_found(event)),
            Some(&code) => Ok(code),
            None => Err(QueueError::Protocol(format!("empty {what} reply"))),
        }
    }
}

/// The event's `page` settings as stored in its hash ('' for none).
fn page_json(config: &EventConfig) -> String {
    config
        .page
        .as_ref()
        .and_then(|p| serde_json::to_string(p).ok())
        .unwrap_or_default()
}

#[async_trait]
impl Store for RedisStore {
    async fn configure_with_epoch(
        &self, event: &EventId, config: &EventConfig, epoch: u64, now_ms: u64,
    ) -> Result<bool> {
        let opens = config
            .opens_at_ms()
            .map(|o| o.to_string())
            .unwrap_or_default();
        let (keys, args) = call(
            event,
            now_ms,
            [
                Value::from(config.admit_per_second as i64),
                Value::from(config.max_active as i64),
                Value::from(config.admission_ttl_seconds as i64),
                Value::from(config.idle_timeout_seconds as i64),
                Value::from(config.ready_timeout_seconds as i64),
                Value::from(opens),
                Value::from(config.target_url.clone().unwrap_or_default()),
                Value::from(i64::from(config.challenge_bits())),
                Value::from(config.queueing_method.code()),
                Value::from(page_json(config)),
                Value::from(epoch as i64),
            ],
        );
        let r = self
            .run_durable(&self.scripts.configure, keys, args)
            .await?;
        // The registry of events lives in another slot, so it cannot join the script; adding to
        // a set is idempotent, and the admission loop finds the event at its next refresh. A
        // registry entry lost in a failover would stop the event's admissions, so it is waited
        // for like the configuration itself.
        self.redis
            .durably(
                slot_of(EVENTS_KEY),
                "SADD",
                vec![Value::from(EVENTS_KEY), Value::from(event.as_str())],
            )
            .await?;
        Ok(r.first() == Some(&1))
    }

    async fn info(&self, event: &EventId, now_ms: u64) -> Result<Option<EventInfo>> {
        let (keys, args) = call(event, now_ms, []);
        let raw: Vec<String> = self.redis.eval(&self.scripts.info, keys, args).await?;
        if raw.first().map(String::as_str) != Some("1") {
            return Ok(None);
        }
        decode::info(&raw).map(Some)
    }

    async fn act(&self, event: &EventId, action: Action) -> Result<()> {
        let (flag, value) = match action {
            Action::StopAdmissions => ("stopped", "1"),
            Action::ResumeAdmissions => ("stopped", "0"),
            Action::SoldOut => ("sold", "1"),
        };
        let (keys, args) = call(event, 0, [Value::from(flag), Value::from(value)]);
        let r = self.run(&self.scripts.action, keys, args).await?;
        if r.first() == Some(&-1) {
            return Err(Self::not_found(event));
        }
        Ok(())
    }

    async fn events(&self) -> Result<Vec<EventId>> {
        let client = self.redis.client(EVENTS_KEY)?;
        let ids: Vec<String> = client
            .smembers(EVENTS_KEY)
            .await
            .map_err(|e| self.redis.fail(e))?;
        let mut ids: Vec<EventId> = ids.iter().filter_map(|s| EventId::parse(s).ok()).collect();
        ids.sort();
        Ok(ids)
    }

    async fn join_many(
        &self, event: &EventId, joins: &[JoinRequest], now_ms: u64,
    ) -> Result<Vec<Joined>> {
        let (keys, args) = call(event, now_ms, joins.iter().flat_map(join_args));
        let r = self.run_durable(&self.scripts.join, keys, args).await?;
        match r.as_slice() {
            [-1] => return Err(Self::not_found(event)),
            [-2] => return Err(QueueError::EventClosed(event.to_string())),
            [-3] => return Err(QueueError::QueueClosed(event.to_string())),
            [-4] => return Err(QueueError::InvalidAccessCode),
            _ => {}
        }
        // The event's fields, then per join: created, ticket, status, position, expiry, log seq.
        let (shared, rows) = decode::split(&r, 5, 6, joins.len(), "join")?;
        rows.map(|j| {
            Ok(Joined {
                created: j[0] == 1,
                place: decode::place_row(j[1], &j[2..], shared)?,
            })
        })
        .collect()
    }

    async fn status_many(
        &self, event: &EventId, reads: &[StatusRequest], now_ms: u64,
    ) -> Result<Vec<Place>> {
        let (keys, args) = call(event, now_ms, reads.iter().flat_map(read_args));
        let r = self.run(&self.scripts.status, keys, args).await?;
        if r == [-1] {
            return Err(Self::not_found(event));
        }
        // The event's fields, then per read: status, position, expiry, log seq.
        let (shared, rows) = decode::split(&r, 5, 4, reads.len(), "status")?;
        reads
            .iter()
            .zip(rows)
            .map(|(q, row)| decode::place_row(q.holder.ticket as i64, row, shared))
            .collect()
    }

    async fn enter(&self, event: &EventId, holder: Holder, now_ms: u64) -> Result<EnterOutcome> {
        let (keys, args) = call(event, now_ms, holder_args(holder));
        let r = self.run_durable(&self.scripts.enter, keys, args).await?;
        Ok(match Self::reply_code(event, &r, "enter")? {
            1 => EnterOutcome::Granted(decode_place(&r)?),
            _ => EnterOutcome::Refused(decode_place(&r)?),
        })
    }

    async fn leave(&self, event: &EventId, holder: Holder, now_ms: u64) -> Result<bool> {
        let (keys, args) = call(event, now_ms, holder_args(holder));
        let r = self.run(&self.scripts.leave, keys, args).await?;
        Ok(Self::reply_code(event, &r, "leave")? == 1)
    }

    async fn admit(&self, event: &EventId, now_ms: u64) -> Result<AdmitReport> {
        let (keys, args) = call(event, now_ms, []);
        let r = self.run(&self.scripts.admit, keys, args).await?;
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
        let (keys, args) = call(event, now_ms, [Value::from(i64::from(budget.max(1)))]);
        let r = self.run(&self.scripts.sweep, keys, args).await?;
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
        let (keys, args) = call(event, 0, [Value::from(since as i64)]);
        let r: Vec<String> = self.redis.eval(&self.scripts.pulse, keys, args).await?;
        if r.first().map(String::as_str) != Some("1") {
            return Err(Self::not_found(event));
        }
        decode::pulse(&r)
    }

    async fn places(
        &self, event: &EventId, holders: &[Holder], heartbeat: bool, now_ms: u64,
    ) -> Result<(u64, Vec<Place>)> {
        let (keys, args) = call(
            event,
            now_ms,
            std::iter::once(Value::from(i64::from(heartbeat)))
                .chain(holders.iter().flat_map(|&h| holder_args(h))),
        );
        let r = self.run(&self.scripts.places, keys, args).await?;
        if r.first() == Some(&-1) {
            return Err(Self::not_found(event));
        }
        // {1, rate_m, aps, flags, opens, departure seq, epoch}, then per ticket: status,
        // position, expiry, log seq.
        let (head, rows) = decode::split(&r, 7, 4, holders.len(), "places")?;
        let shared = [head[1], head[2], head[3], head[4], head[6]];
        let places = holders
            .iter()
            .zip(rows)
            .map(|(h, row)| decode::place_row(h.ticket as i64, row, &shared))
            .collect::<Result<Vec<_>>>()?;
        Ok((u(head[5]), places))
    }

    async fn resume(&self, event: &EventId, from_ms: u64, until_ms: u64) -> Result<bool> {
        let (keys, args) = call(
            event,
            until_ms,
            [Value::from(from_ms as i64), Value::from(until_ms as i64)],
        );
        let r = self.run_durable(&self.scripts.resume, keys, args).await?;
        Ok(Self::reply_code(event, &r, "resume")? == 1)
    }

    async fn ping(&self) -> Result<()> {
        Ok(self.redis.ping().await?)
    }

    async fn add_access_codes(&self, event: &EventId, codes: &[CodeHash]) -> Result<u64> {
        self.codes(event, "add", codes).await
    }

    async fn revoke_access_codes(&self, event: &EventId, codes: &[CodeHash]) -> Result<u64> {
        self.codes(event, "del", codes).await
    }

    /// `SET wr:{event}:claim:<id> 1 NX PX <until - now>`: one command, atomic on its own, in
    /// the event's slot; the key lapses with what it guards. Waited for like a join when
    /// `--redis-wait-replicas` is set, so a failover cannot forget a claim and let it be
    /// claimed twice.
    async fn claim_once(
        &self, event: &EventId, id: &str, until_ms: u64, now_ms: u64,
    ) -> Result<bool> {
        super::check_claim_id(id)?;
        let key = format!("wr:{{{}}}:claim:{id}", event.as_str());
        let ttl = until_ms.saturating_sub(now_ms).max(1);
        let reply = self
            .redis
            .durably(
                slot_of(&key),
                "SET",
                vec![
                    Value::from(key),
                    Value::from("1"),
                    Value::from("NX"),
                    Value::from("PX"),
                    Value::from(ttl as i64),
                ],
            )
            .await?;
        Ok(!matches!(reply, Value::Null))
    }
}
