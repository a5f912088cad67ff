//! The Redis store: every mutating step one Lua script (EVALSHA, reloaded on NOSCRIPT), so each
//! is atomic and conditional. Works against a single server or a Redis Cluster: every key of an
//! event carries the hash tag `{event_id}` (reservation and intent ids embed their event).

use super::{EventInfo, HoldRequest, IntentRequest, PendingOutcome, SeatState, Store};
use crate::error::{Result, ServiceError};
use crate::model::*;
use crate::updates::{channel, ReservationUpdate};
use async_trait::async_trait;
use decode::{
    decode_intent, decode_reservation, int, num, opt, protocol, script_error, split_reply, text,
};
use redis_layer::commands::{HashesInterface, SetsInterface, SortedSetsInterface};
use redis_layer::{Redis, Script, Value};
use std::collections::HashMap;

pub use redis_layer::RedisOptions;

mod decode;

/// The set of seeded events (outside any event's slot).
const EVENTS_KEY: &str = "bk:events";

/// Seats added per seeding script call.
const SEED_BATCH: u64 = 1000;

const LIB: &str = include_str!("lua/lib.lua");

redis_layer::scripts! {
    #[derive(Debug)]
    struct Scripts in "lua/" {
        prelude LIB => [seed, hold, commit, release, expire, intent, settle];
        prelude "" => [outcome_put, outcome_list, outcome_done];
    }
}

/// Reservations, seats and intents in Redis, shared by every `backends` process.
#[derive(Debug)]
pub struct RedisStore {
    /// The shared Redis layer's connection (per-primary pools in a cluster).
    redis: Redis,
    scripts: Scripts,
}

fn prefix(event: &str) -> String {
    format!("bk:{{{event}}}:")
}

/// The keys of an event's outcomes not yet reported: due set and outcome hash.
fn outcome_keys(event: &str) -> Vec<String> {
    let p = prefix(event);
    vec![format!("{p}outcomes"), format!("{p}outcome")]
}

impl RedisStore {
    /// The fields of the hash at `key` (empty when absent).
    async fn hash(&self, key: String) -> Result<HashMap<String, String>> {
        Ok(self
            .redis
            .client(&key)?
            .hgetall(key)
            .await
            .map_err(|e| self.redis.fail(e))?)
    }

    /// The record in the hash at `key`, decoded; None when there is none.
    async fn record<T>(
        &self, key: String, decode: impl FnOnce(&HashMap<String, String>) -> Result<T>,
    ) -> Result<Option<T>> {
        let m = self.hash(key).await?;
        if m.is_empty() {
            return Ok(None);
        }
        decode(&m).map(Some)
    }

    /// Connects (waiting up to `command_timeout` for the first connection; if Redis is down the
    /// store still starts, reconnects in the background, and answers UNAVAILABLE meanwhile).
    pub async fn connect(opts: &RedisOptions) -> Result<Self> {
        Ok(Self {
            redis: Redis::connect(opts).await?,
            scripts: Scripts::new(),
        })
    }

    async fn run(
        &self, script: &Script, event: &str, now_ms: u64, rest: Vec<Value>,
    ) -> Result<Vec<Value>> {
        let p = prefix(event);
        // The script's keys all derive from the prefix; naming one lets a cluster route it.
        let keys = vec![format!("{p}ev")];
        let mut args = vec![Value::from(p), Value::from(now_ms as i64)];
        args.extend(rest);
        Ok(self.redis.eval(script, keys, args).await?)
    }

    /// Runs `script` on reservation `id` (with `rest` after the id) and announces its change.
    async fn reservation_step(
        &self, script: &Script, id: &str, now_ms: u64, rest: Vec<Value>,
    ) -> Result<(Reservation, bool)> {
        let event = reservation_event(id)?;
        let mut args = vec![Value::from(id)];
        args.extend(rest);
        let r = self.run(script, &event, now_ms, args).await?;
        let r = match split_reply("reservation", &r)? {
            Ok((m, changed)) => Ok((decode_reservation(&m)?, changed)),
            Err((code, rest)) => Err(script_error(code, rest, id, &event)),
        };
        self.announced(r).await
    }

    /// Publishes `u` on its event's channel, after the change is applied. A failure is logged:
    /// the change stands, and a listener that missed it reads the state when it reconnects.
    async fn announce(&self, u: &ReservationUpdate) {
        if let Err(e) = self
            .redis
            .publish(&channel(&u.event_id), &u.to_json())
            .await
        {
            tracing::warn!(reservation_id = %u.reservation_id, error = %e, "reservation update not published");
        }
    }

    /// Announces a step's change, if it made one.
    async fn announced(&self, r: Result<(Reservation, bool)>) -> Result<(Reservation, bool)> {
        match &r {
            Ok((res, true)) => self.announce(&ReservationUpdate::of(res)).await,
            // A commit that found the hold run out expired it.
            Err(ServiceError::ReservationExpired(id)) => {
                if let Ok(ev) = reservation_event(id) {
                    let u = ReservationUpdate::status_of(id, &ev, ResStatus::Expired);
                    self.announce(&u).await;
                }
            }
            _ => {}
        }
        r
    }

    /// Releases to `to` up to `limit` of the event's pending holds whose deadline is at most
    /// `due_by` (a score: `+inf` for all), earliest first, and announces each; their ids.
    async fn release_holds(
        &self, event: &str, now_ms: u64, limit: usize, due_by: Value, to: ResStatus,
    ) -> Result<Vec<String>> {
        let args = vec![Value::from(limit as i64), due_by, Value::from(to as i64)];
        let r = self.run(&self.scripts.expire, event, now_ms, args).await?;
        let ids: Vec<String> = r.iter().filter_map(text).collect();
        for id in &ids {
            self.announce(&ReservationUpdate::status_of(id, event, to))
                .await;
        }
        Ok(ids)
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn seed(&self, event: &str, seats: u64, price_cents: i64, currency: &str) -> Result<()> {
        let mut start = 0;
        loop {
            let end = (start + SEED_BATCH).min(seats);
            let mut args = vec![
                Value::from(event),
                Value::from(price_cents),
                Value::from(currency),
            ];
            for i in start..end {
                args.push(Value::from(seat_id(i)));
                args.push(Value::from(
                    seat_score(i / ROW_SEATS, i % ROW_SEATS + 1) as i64
                ));
            }
            self.run(&self.scripts.seed, event, 0, args).await?;
            start = end;
            if start >= seats {
                break;
            }
        }
        // The registry lives in another slot, so it cannot join the script; SADD is idempotent.
        let _: i64 = self
            .redis
            .client(EVENTS_KEY)?
            .sadd(EVENTS_KEY, event)
            .await
            .map_err(|e| self.redis.fail(e))?;
        Ok(())
    }

    async fn event(&self, event: &str) -> Result<Option<EventInfo>> {
        let key = format!("{}ev", prefix(event));
        self.record(key, |m| {
            Ok(EventInfo {
                price_cents: num(m, "price")?,
                currency: opt(m, "cur").unwrap_or_default(),
                total: num(m, "total")?.max(0) as u64,
            })
        })
        .await
    }

    async fn free_seats(
        &self, event: &str, range: Option<(u64, u64)>, limit: usize,
    ) -> Result<(u64, Vec<String>)> {
        if self.event(event).await?.is_none() {
            return Err(ServiceError::EventNotFound(event.to_owned()));
        }
        let key = format!("{}free", prefix(event));
        let (lo, hi) = match range {
            Some((lo, hi)) => (lo as f64, hi as f64),
            None => (0.0, 1e15),
        };
        let c = self.redis.client(&key)?;
        let count: i64 = c
            .zcount(&key, lo, hi)
            .await
            .map_err(|e| self.redis.fail(e))?;
        let first: Vec<String> = if limit == 0 {
            Vec::new()
        } else {
            c.zrangebyscore(&key, lo, hi, false, Some((0, limit as i64)))
                .await
                .map_err(|e| self.redis.fail(e))?
        };
        Ok((count.max(0) as u64, first))
    }

    async fn seat_states(&self, event: &str, seats: &[String]) -> Result<Vec<Option<SeatState>>> {
        if self.event(event).await?.is_none() {
            return Err(ServiceError::EventNotFound(event.to_owned()));
        }
        if seats.is_empty() {
            return Ok(Vec::new());
        }
        let key = format!("{}seat", prefix(event));
        let vals: Vec<Option<String>> = self
            .redis
            .client(&key)?
            .hmget(key, seats.to_vec())
            .await
            .map_err(|e| self.redis.fail(e))?;
        Ok(vals
            .into_iter()
            .map(|v| {
                v.map(|s| match s.split_once(':') {
                    Some(("H", r)) => SeatState::Held(r.to_owned()),
                    Some(("S", r)) => SeatState::Sold(r.to_owned()),
                    _ => SeatState::Free,
                })
            })
            .collect())
    }

    async fn hold(&self, req: &HoldRequest, now_ms: u64) -> Result<(Reservation, bool)> {
        let mut args = vec![
            Value::from(req.reservation_id.as_str()),
            Value::from(req.event_id.as_str()),
            Value::from(req.user_id.as_str()),
            Value::from(req.idem.slot.as_str()),
            Value::from(req.idem.fingerprint.as_str()),
            Value::from(i64::from(req.quantity)),
            Value::from(req.hold_ms as i64),
            Value::from(req.idem.ttl_ms.max(1) as i64),
            Value::from(req.admission.as_ref().map_or("", |a| a.slot.as_str())),
            Value::from(req.admission.as_ref().map_or(0, |a| i64::from(a.limit))),
        ];
        args.extend(req.seats.iter().map(|s| Value::from(s.as_str())));
        let r = self
            .run(&self.scripts.hold, &req.event_id, now_ms, args)
            .await?;
        match split_reply("hold", &r)? {
            Ok((m, changed)) => Ok((decode_reservation(&m)?, !changed)),
            Err((code, rest)) => Err(script_error(code, rest, &req.reservation_id, &req.event_id)),
        }
    }

    async fn reservation(&self, id: &str) -> Result<Option<Reservation>> {
        let key = format!("{}r:{id}", prefix(&reservation_event(id)?));
        self.record(key, decode_reservation).await
    }

    async fn commit(
        &self, id: &str, intent_id: &str, order_id: &str, now_ms: u64,
    ) -> Result<(Reservation, bool)> {
        let args = vec![Value::from(intent_id), Value::from(order_id)];
        self.reservation_step(&self.scripts.commit, id, now_ms, args)
            .await
    }

    async fn release(
        &self, id: &str, to: ResStatus, only_if_due: bool, now_ms: u64,
    ) -> Result<(Reservation, bool)> {
        let args = vec![
            Value::from(to as i64),
            Value::from(if only_if_due { "1" } else { "0" }),
        ];
        self.reservation_step(&self.scripts.release, id, now_ms, args)
            .await
    }

    async fn expire_due(&self, event: &str, now_ms: u64, limit: usize) -> Result<Vec<String>> {
        let due_by = Value::from(now_ms as i64);
        self.release_holds(event, now_ms, limit, due_by, ResStatus::Expired)
            .await
    }

    async fn cancel_holds(&self, event: &str, now_ms: u64, limit: usize) -> Result<Vec<String>> {
        let due_by = Value::from("+inf");
        self.release_holds(event, now_ms, limit, due_by, ResStatus::Cancelled)
            .await
    }

    async fn events(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = self
            .redis
            .client(EVENTS_KEY)?
            .smembers(EVENTS_KEY)
            .await
            .map_err(|e| self.redis.fail(e))?;
        ids.retain(|e| check_event_id(e).is_ok());
        ids.sort();
        Ok(ids)
    }

    async fn create_intent(&self, req: &IntentRequest, now_ms: u64) -> Result<(Intent, bool)> {
        let event = reservation_event(&req.reservation_id)?;
        let args = vec![
            Value::from(req.intent_id.as_str()),
            Value::from(req.reservation_id.as_str()),
            Value::from(req.scenario as i64),
            Value::from(req.idem.slot.as_str()),
            Value::from(req.idem.fingerprint.as_str()),
            Value::from(req.idem.ttl_ms.max(1) as i64),
            Value::from(req.provider_id.as_deref().unwrap_or("")),
        ];
        let r = self.run(&self.scripts.intent, &event, now_ms, args).await?;
        match split_reply("intent", &r)? {
            Ok((m, changed)) => Ok((decode_intent(&m)?, !changed)),
            Err((code, rest)) => Err(script_error(code, rest, &req.reservation_id, &event)),
        }
    }

    async fn intent(&self, id: &str) -> Result<Option<Intent>> {
        let key = format!("{}pi:{id}", prefix(&intent_event(id)?));
        self.record(key, decode_intent).await
    }

    async fn provider_intent(&self, event: &str, provider_id: &str) -> Result<Option<Intent>> {
        let key = format!("{}ppi", prefix(event));
        let id: Option<String> = self
            .redis
            .client(&key)?
            .hget(key, provider_id)
            .await
            .map_err(|e| self.redis.fail(e))?;
        match id {
            Some(id) => self.intent(&id).await,
            None => Ok(None),
        }
    }

    async fn settle_intent(
        &self, id: &str, status: IntentStatus, failure_code: Option<&str>, now_ms: u64,
    ) -> Result<(Intent, bool)> {
        let event = intent_event(id)?;
        let args = vec![
            Value::from(id),
            Value::from(status as i64),
            Value::from(failure_code.unwrap_or("")),
        ];
        let r = self.run(&self.scripts.settle, &event, now_ms, args).await?;
        match split_reply("settle", &r)? {
            Ok((m, changed)) => Ok((decode_intent(&m)?, changed)),
            Err(_) => Err(ServiceError::IntentNotFound(id.to_owned())),
        }
    }

    async fn outcome_put(&self, outcome: &PendingOutcome, keep_existing: bool) -> Result<bool> {
        let value = format!("{}|{}", u8::from(outcome.approve), outcome.webhook_id);
        let r: Value = self
            .redis
            .eval(
                &self.scripts.outcome_put,
                outcome_keys(&intent_event(&outcome.intent_id)?),
                vec![
                    Value::from(outcome.intent_id.as_str()),
                    Value::from(outcome.due_ms as i64),
                    Value::from(value),
                    Value::from(if keep_existing { "1" } else { "0" }),
                ],
            )
            .await?;
        Ok(int(&r) == Some(1))
    }

    async fn outcomes(
        &self, event: &str, due_by_ms: u64, offset: usize, limit: usize,
    ) -> Result<Vec<PendingOutcome>> {
        let r: Value = self
            .redis
            .eval(
                &self.scripts.outcome_list,
                outcome_keys(event),
                vec![
                    Value::from(due_by_ms.min(i64::MAX as u64) as i64),
                    Value::from(offset as i64),
                    Value::from(limit.max(1) as i64),
                ],
            )
            .await?;
        let mut out = Vec::new();
        for row in r.into_array() {
            let row = row.into_array();
            let (Some(id), Some(due), Some(v)) = (
                row.first().and_then(text),
                row.get(1)
                    .and_then(text)
                    .and_then(|d| d.parse::<f64>().ok()),
                row.get(2).and_then(text),
            ) else {
                return Err(protocol("outcomes", &row));
            };
            let Some((approve, webhook_id)) = v.split_once('|') else {
                // Half-written or foreign: not ours to report.
                continue;
            };
            out.push(PendingOutcome {
                intent_id: id,
                due_ms: due as u64,
                approve: approve == "1",
                webhook_id: webhook_id.to_owned(),
            });
        }
        Ok(out)
    }

    async fn outcome_done(&self, intent_id: &str) -> Result<()> {
        let _: Value = self
            .redis
            .eval(
                &self.scripts.outcome_done,
                outcome_keys(&intent_event(intent_id)?),
                vec![Value::from(intent_id)],
            )
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        Ok(self.redis.ping().await?)
    }
}
