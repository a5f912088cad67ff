//! The admin audit trail: every admin change is logged (tracing, at info, target `audit`) with
//! its state before and after, the peer and the request id, and appended to a bounded Redis
//! stream (`wr:audit`, `XADD MAXLEN ~ --audit-max-entries`) that `GET /admin/v1/audit` lists,
//! newest first. With the embedded in-memory store the trail is an in-memory ring of the same
//! size (one process, gone with it).
//!
//! Recording is one call, for any code that changes something on an operator's behalf:
//!
//! ```ignore
//! async fn handler(State(st): State<AppState>, who: AuditContext, ...) {
//!     // ... read `before`, make the change, read `after` ...
//!     st.audit.record(who.entry("event.update", Some(&id), before, after)).await;
//! }
//! ```
//!
//! [`Audit::record`] never fails the caller: the change it describes has already happened, so
//! a trail that cannot be written (Redis down) is logged at warn and counted
//! (`gateway_audit_write_failures_total`); the info log line is written first in any case.
//! Values under keys that name a secret (`secret`, `token`, `password`, `authorization`,
//! `private_key`, `api_key`, any case) are replaced by `"[redacted]"` before anything is logged
//! or stored, so a secret never reaches the trail even if a caller passes one.

use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::Json;
use queue::clock::Clock;
use redis_layer::commands::StreamsInterface;
use redis_layer::{slot_of, Redis, RedisError, Value as RedisValue};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The Redis stream of the trail (one key, outside every event's slot).
pub const AUDIT_KEY: &str = "wr:audit";

/// Entries `GET /admin/v1/audit` returns without `?limit=`.
pub const DEFAULT_LIMIT: usize = 100;

/// Most entries one `GET /admin/v1/audit` returns.
pub const MAX_LIMIT: usize = 1000;

/// Longest request id kept (a client may send its own `x-request-id`).
const MAX_REQUEST_ID: usize = 200;

/// One admin change, as a caller describes it ([`AuditContext::entry`] fills `peer` and
/// `request_id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// What was done, `<object>.<verb>`: `event.create`, `event.update`, `event.action`,
    /// `dlq.retry`, `dlq.resolve`, ...
    pub action: String,
    /// The event concerned, if any.
    pub event_id: Option<String>,
    /// The state before the change (`null` when there was none).
    pub before: Value,
    /// The state after the change.
    pub after: Value,
    /// The socket peer of the request (`ip:port`).
    pub peer: Option<String>,
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
}

/// One entry of the trail as stored and listed: the change, with its id, time and actor
/// around it (its fields side by side in the JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The entry's id (the Redis stream id; in memory `<ms>-<n>` alike), increasing.
    pub id: String,
    /// When it was recorded (RFC 3339, UTC, the gateway's clock).
    pub time: String,
    /// The change, its `before` and `after` redacted ([`redact`]).
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// Who signed the request: `admin-token` (the bearer) or `console:<session>` (an operator
    /// console session); absent for changes made outside an admin HTTP request (gRPC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

tokio::task_local! {
    /// The actor of the admin request being served, set around the handler by the admin
    /// routes' authentication (so that no handler has to pass it along).
    static ACTOR: String;
}

/// Runs `fut` (an admin handler) with `actor` recorded in every audit entry it writes.
pub async fn with_actor<F: std::future::Future>(actor: String, fut: F) -> F::Output {
    ACTOR.scope(actor, fut).await
}

/// Who made a request, for the trail: an extractor any admin handler can take.
#[derive(Debug, Clone, Default)]
pub struct AuditContext {
    /// The socket peer (`ip:port`), when the server loop gave one.
    pub peer: Option<String>,
    /// The request's `x-request-id` (set by the router when the client sent none).
    pub request_id: Option<String>,
}

impl AuditContext {
    /// An entry of this request.
    pub fn entry(
        &self, action: &str, event_id: Option<&str>, before: Value, after: Value,
    ) -> AuditEntry {
        AuditEntry {
            action: action.to_owned(),
            event_id: event_id.map(str::to_owned),
            before,
            after,
            peer: self.peer.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuditContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.to_string());
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(MAX_REQUEST_ID).collect());
        Ok(Self { peer, request_id })
    }
}

enum Backend {
    Redis(Arc<Redis>),
    Memory(Mutex<Ring>),
}

#[derive(Default)]
struct Ring {
    entries: VecDeque<AuditRecord>,
    /// Last id handed out, `(ms, n)`.
    last: (u64, u64),
}

/// The trail: where entries go and how many are kept.
pub struct Audit {
    backend: Backend,
    max_entries: u64,
    clock: Arc<dyn Clock>,
    failures: AtomicU64,
}

redis_layer::debug_some!(Audit, |a| max_entries = a.max_entries);

/// Keys whose values are never logged nor stored (matched case-insensitively, as parts).
const SECRET_KEYS: [&str; 6] = [
    "secret",
    "token",
    "password",
    "authorization",
    "private_key",
    "api_key",
];

/// `v` with every value under a secret-naming key replaced by `"[redacted]"`, at any depth.
pub fn redact(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    if SECRET_KEYS.iter().any(|s| lower.contains(s)) {
                        (k, Value::String("[redacted]".into()))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

impl Audit {
    /// A trail in the Redis stream [`AUDIT_KEY`], trimmed to about `max_entries`.
    pub fn redis(redis: Arc<Redis>, max_entries: u64, clock: Arc<dyn Clock>) -> Self {
        Self::with(Backend::Redis(redis), max_entries, clock)
    }

    /// A trail in this process's memory, exactly `max_entries` long at most.
    pub fn memory(max_entries: u64, clock: Arc<dyn Clock>) -> Self {
        Self::with(Backend::Memory(Mutex::default()), max_entries, clock)
    }

    fn with(backend: Backend, max_entries: u64, clock: Arc<dyn Clock>) -> Self {
        Self {
            backend,
            max_entries: max_entries.max(1),
            clock,
            failures: AtomicU64::new(0),
        }
    }

    /// Entries that could not be stored since start.
    pub fn write_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Logs `entry` at info and appends it to the trail; never fails (see the module doc).
    /// Returns the stored entry's id, or None when it could not be stored.
    pub async fn record(&self, entry: AuditEntry) -> Option<String> {
        let now_ms = self.clock.now_ms();
        let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
        let entry = AuditEntry {
            before: redact(entry.before),
            after: redact(entry.after),
            ..entry
        };
        tracing::info!(
            target: "audit",
            action = %entry.action,
            event_id = entry.event_id.as_deref().unwrap_or(""),
            before = %entry.before,
            after = %entry.after,
            peer = entry.peer.as_deref().unwrap_or(""),
            request_id = entry.request_id.as_deref().unwrap_or(""),
            actor = ACTOR.try_with(Clone::clone).unwrap_or_default(),
            "admin change"
        );
        let mut rec = AuditRecord {
            id: String::new(),
            time,
            entry,
            actor: ACTOR.try_with(Clone::clone).ok(),
        };
        let stored = match &self.backend {
            Backend::Memory(ring) => {
                let mut ring = ring.lock().unwrap_or_else(|p| p.into_inner());
                let (ms, n) = ring.last;
                let next = if now_ms > ms {
                    (now_ms, 0)
                } else {
                    (ms, n + 1)
                };
                ring.last = next;
                rec.id = format!("{}-{}", next.0, next.1);
                ring.entries.push_back(rec.clone());
                while ring.entries.len() as u64 > self.max_entries {
                    ring.entries.pop_front();
                }
                Ok(rec.id.clone())
            }
            Backend::Redis(redis) => self.append(redis, &rec).await,
        };
        match stored {
            Ok(id) => Some(id),
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    target: "audit",
                    error = %e,
                    action = %rec.entry.action,
                    request_id = rec.entry.request_id.as_deref().unwrap_or(""),
                    "admin change not stored in the audit trail"
                );
                None
            }
        }
    }

    /// `XADD wr:audit MAXLEN ~ max * e <json>` (followed by `WAIT` under
    /// `--redis-wait-replicas`, like every acknowledged write).
    async fn append(&self, redis: &Redis, rec: &AuditRecord) -> Result<String, RedisError> {
        let body = json!({
            "time": rec.time,
            "action": rec.entry.action,
            "event_id": rec.entry.event_id,
            "before": rec.entry.before,
            "after": rec.entry.after,
            "peer": rec.entry.peer,
            "request_id": rec.entry.request_id,
            "actor": rec.actor,
        });
        let args = vec![
            RedisValue::from(AUDIT_KEY),
            RedisValue::from("MAXLEN"),
            RedisValue::from("~"),
            RedisValue::from(self.max_entries as i64),
            RedisValue::from("*"),
            RedisValue::from("e"),
            RedisValue::from(body.to_string()),
        ];
        let id = redis.durably(slot_of(AUDIT_KEY), "XADD", args).await?;
        Ok(id.as_string().unwrap_or_default())
    }

    /// The newest `limit` entries, newest first.
    pub async fn list(&self, limit: usize) -> Result<Vec<AuditRecord>, RedisError> {
        match &self.backend {
            Backend::Memory(ring) => {
                let ring = ring.lock().unwrap_or_else(|p| p.into_inner());
                Ok(ring.entries.iter().rev().take(limit).cloned().collect())
            }
            Backend::Redis(redis) => {
                let client = redis.client(AUDIT_KEY)?;
                let rows: Vec<(String, HashMap<String, String>)> = client
                    .xrevrange(AUDIT_KEY, "+", "-", Some(limit as u64))
                    .await
                    .map_err(|e| redis.fail(e))?;
                Ok(rows
                    .into_iter()
                    .filter_map(|(id, fields)| decode(id, fields.get("e")?))
                    .collect())
            }
        }
    }
}

/// A stored entry; one that does not parse (written by something else) is skipped.
fn decode(id: String, body: &str) -> Option<AuditRecord> {
    let mut v: Value = serde_json::from_str(body).ok()?;
    let obj = v.as_object_mut()?;
    obj.insert("id".into(), Value::String(id));
    serde_json::from_value(v).ok()
}

/// Query of `GET /admin/v1/audit`.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    limit: Option<String>,
}

/// `GET /admin/v1/audit?limit=`: the newest entries first, [`DEFAULT_LIMIT`] by default, at
/// most [`MAX_LIMIT`].
pub async fn list(
    State(st): State<AppState>, ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = match q.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| ApiError::BadRequest(format!("limit must be 1 to {MAX_LIMIT}")))?,
    };
    let entries = st
        .audit
        .list(limit)
        .await
        .map_err(|e| ApiError::Queue(e.into()))?;
    Ok(Json(json!({ "entries": entries })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use queue::clock::ManualClock;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let v = json!({
            "target_url": "https://shop.example/",
            "webhook_secret": "whsec_abc",
            "nested": [{"Admin_Token": "t", "keep": 1}],
            "authorization": {"deep": "x"},
        });
        assert_eq!(
            redact(v),
            json!({
                "target_url": "https://shop.example/",
                "webhook_secret": "[redacted]",
                "nested": [{"Admin_Token": "[redacted]", "keep": 1}],
                "authorization": "[redacted]",
            })
        );
    }

    #[tokio::test]
    async fn the_memory_trail_is_bounded_newest_first_with_increasing_ids() {
        let clock = ManualClock::new(1_700_000_000_000);
        let audit = Audit::memory(3, Arc::new(clock.clone()));
        for i in 0..5 {
            let e = AuditEntry {
                action: format!("a{i}"),
                ..AuditEntry::default()
            };
            assert!(audit.record(e).await.is_some());
            if i == 2 {
                clock.advance_ms(1);
            }
        }
        let got = audit.list(10).await.unwrap();
        let actions: Vec<_> = got.iter().map(|r| r.entry.action.as_str()).collect();
        assert_eq!(actions, ["a4", "a3", "a2"]);
        assert_eq!(got[0].id, "1700000000001-1");
        assert_eq!(got[2].id, "1700000000000-2");
        assert_eq!(got[0].time, "2023-11-14T22:13:20.001Z");
        assert_eq!(audit.list(1).await.unwrap().len(), 1);
    }
}
