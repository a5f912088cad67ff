//! `GetSystemHealth`: the gateway's health report, for HTTP (`GET /admin/v1/health`) and gRPC
//! alike. Every dependency is checked at once, each within its own timeout: each Redis primary
//! (a PING per primary), each upstream (its breaker's state and a `grpc.health.v1` probe that
//! bypasses the breaker) and the webhook consumer (its lag and dead letters).

use crate::system::Modes;
use crate::upstream::Upstream;
use crate::AppState;
use proto::common::v1 as common;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A health verdict, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// Working.
    Healthy,
    /// Working with a part down, held, or needing attention.
    Degraded,
    /// Not working.
    Unhealthy,
}

impl Health {
    /// `HEALTHY`, `DEGRADED` or `UNHEALTHY`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "HEALTHY",
            Self::Degraded => "DEGRADED",
            Self::Unhealthy => "UNHEALTHY",
        }
    }

    /// The `common.v1` enum value.
    pub fn proto(self) -> common::SystemHealthStatus {
        match self {
            Self::Healthy => common::SystemHealthStatus::Healthy,
            Self::Degraded => common::SystemHealthStatus::Degraded,
            Self::Unhealthy => common::SystemHealthStatus::Unhealthy,
        }
    }
}

/// One dependency of the gateway as the report shows it.
#[derive(Debug, Clone)]
pub struct Dependency {
    /// `redis:<host:port>`, `store:memory`, `upstream:<name>` or `webhooks`.
    pub name: String,
    /// `redis_primary`, `store`, `upstream` or `webhook_consumer`.
    pub kind: &'static str,
    /// The verdict.
    pub status: Health,
    /// How long the check took, when it answered.
    pub latency_ms: Option<u64>,
    /// What was found, in words.
    pub message: String,
    /// Kind-specific fields (`breaker`, `backlog`, `dead_letters`).
    pub extra: serde_json::Map<String, Value>,
}

/// One of the gateway's own services.
#[derive(Debug, Clone)]
pub struct ServiceHealth {
    /// `queue_api` (the waiting room, HTTP and gRPC) or `forwarded_api`.
    pub name: &'static str,
    /// The verdict.
    pub status: Health,
    /// Why, in words.
    pub message: String,
}

/// `GetSystemHealth`'s answer.
#[derive(Debug, Clone)]
pub struct Report {
    /// UNHEALTHY when the queue store cannot serve at all (every Redis primary down);
    /// DEGRADED when anything else is not HEALTHY; else HEALTHY.
    pub overall: Health,
    /// The gateway's own services.
    pub services: Vec<ServiceHealth>,
    /// Each dependency.
    pub dependencies: Vec<Dependency>,
    /// When the checks ran.
    pub checked_at: OffsetDateTime,
    /// The system-wide modes in force.
    pub modes: Modes,
}

fn ms(d: Duration) -> Option<u64> {
    Some(d.as_millis() as u64)
}

fn rfc3339_ms(ms: u64) -> Value {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

/// Each Redis primary (the store's), or the embedded store.
async fn store_dependencies(st: &AppState) -> Vec<Dependency> {
    let Some(pings) = st.system.ping_primaries().await else {
        let started = Instant::now();
        let r = st.room.store().ping().await;
        return vec![Dependency {
            name: "store:memory".into(),
            kind: "store",
            status: if r.is_ok() {
                Health::Healthy
            } else {
                Health::Unhealthy
            },
            latency_ms: ms(started.elapsed()),
            message: "embedded in-memory store".into(),
            extra: Default::default(),
        }];
    };
    pings
        .into_iter()
        .map(|p| {
            let (status, latency_ms, message) = match &p.result {
                Ok(d) => (Health::Healthy, ms(*d), "PING answered".to_owned()),
                Err(e) => {
                    // The error can name hosts; the node name is already in the report.
                    tracing::warn!(node = %p.node, error = %e, "health: redis primary not answering");
                    (Health::Unhealthy, None, "PING not answered".to_owned())
                }
            };
            Dependency {
                name: format!("redis:{}", p.node),
                kind: "redis_primary",
                status,
                latency_ms,
                message,
                extra: Default::default(),
            }
        })
        .collect()
}

/// An upstream: its breaker, and a `grpc.health.v1` probe within its deadline that bypasses
/// the breaker (a server without the health service still counts as answering).
async fn upstream_dependency(u: &Upstream) -> Dependency {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let started = Instant::now();
    let mut req = tonic::Request::new(tonic_health::pb::HealthCheckRequest::default());
    req.set_timeout(u.deadline());
    let mut client = HealthClient::new(u.channel());
    let probe = tokio::time::timeout(u.deadline(), client.check(req));
    let probe = match probe.await {
        Err(_) => Err("no answer within the deadline".to_owned()),
        Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32 => Ok(()),
        Ok(Ok(_)) => Err("NOT_SERVING".to_owned()),
        Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => Ok(()),
        Ok(Err(s)) => Err(format!("{:?}", s.code())),
    };
    let breaker = u.breaker_state();
    let (status, message) = match (&probe, breaker) {
        (Err(why), _) => (
            Health::Unhealthy,
            format!("probe failed ({why}); breaker {breaker}"),
        ),
        (Ok(()), "FORCED_OPEN") => (
            Health::Degraded,
            "held open by CIRCUIT_BREAKER: calls refused".to_owned(),
        ),
        (Ok(()), "CLOSED") => (Health::Healthy, "serving; breaker CLOSED".to_owned()),
        (Ok(()), other) => (Health::Degraded, format!("serving; breaker {other}")),
    };
    let mut extra = serde_json::Map::new();
    extra.insert("breaker".into(), breaker.into());
    Dependency {
        name: format!("upstream:{}", u.name()),
        kind: "upstream",
        status,
        latency_ms: probe.is_ok().then(|| started.elapsed().as_millis() as u64),
        message,
        extra,
    }
}

/// The webhook consumer: its inbox answers, how far behind it is (stored, not yet forwarded)
/// and how many dead letters wait for an operator.
async fn webhook_dependency(w: &crate::webhook::Webhooks) -> Dependency {
    let started = Instant::now();
    let counts = async {
        w.inbox.ping().await?;
        Ok::<_, webhooks::InboxError>((w.inbox.backlog().await?, w.inbox.dead_letters().await?))
    };
    let mut extra = serde_json::Map::new();
    let (status, message) = match counts.await {
        Ok((backlog, dead)) => {
            extra.insert("backlog".into(), backlog.into());
            extra.insert("dead_letters".into(), dead.into());
            let status = if dead > 0 {
                Health::Degraded
            } else {
                Health::Healthy
            };
            (
                status,
                format!("lag {backlog} webhook(s); {dead} dead letter(s)"),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "health: webhook inbox not answering");
            (Health::Unhealthy, "webhook inbox not answering".to_owned())
        }
    };
    Dependency {
        name: "webhooks".into(),
        kind: "webhook_consumer",
        status,
        latency_ms: (status != Health::Unhealthy).then(|| started.elapsed().as_millis() as u64),
        message,
        extra,
    }
}

/// Checks every dependency at once (each within its own timeout) and judges.
pub async fn system_health(st: &AppState) -> Report {
    let mut upstreams: Vec<&Upstream> = st.upstreams.all().collect();
    if let Some(w) = st.webhooks.as_ref().and_then(|w| w.worker.as_ref()) {
        upstreams.push(w);
    }
    let (store, ups, hooks) = tokio::join!(
        store_dependencies(st),
        futures::future::join_all(upstreams.into_iter().map(upstream_dependency)),
        async {
            match &st.webhooks {
                Some(w) => Some(webhook_dependency(w).await),
                None => None,
            }
        }
    );
    let modes = st.system.modes();
    let store_down = store.iter().all(|d| d.status == Health::Unhealthy);
    let store_part = store.iter().any(|d| d.status == Health::Unhealthy);
    let queue = if store_down {
        (
            Health::Unhealthy,
            "the queue store does not answer".to_owned(),
        )
    } else if let Some(since) = modes.maintenance_since_ms {
        (
            Health::Degraded,
            format!("MAINTENANCE_MODE since {}", rfc3339_ms(since)),
        )
    } else if store_part {
        (
            Health::Degraded,
            "a Redis primary does not answer: its events are unavailable".to_owned(),
        )
    } else {
        (Health::Healthy, "serving".to_owned())
    };
    let forwarded = if let Some(since) = modes.circuit_breaker_since_ms {
        (
            Health::Degraded,
            format!(
                "CIRCUIT_BREAKER since {}: every call answers 503",
                rfc3339_ms(since)
            ),
        )
    } else if ups.iter().any(|d| d.status != Health::Healthy) {
        (
            Health::Degraded,
            "an upstream is down or its circuit open".to_owned(),
        )
    } else {
        (Health::Healthy, "serving".to_owned())
    };
    let services = vec![
        ServiceHealth {
            name: "queue_api",
            status: queue.0,
            message: queue.1,
        },
        ServiceHealth {
            name: "forwarded_api",
            status: forwarded.0,
            message: forwarded.1,
        },
    ];
    let dependencies: Vec<Dependency> = store.into_iter().chain(ups).chain(hooks).collect();
    let overall = if store_down {
        Health::Unhealthy
    } else if services
        .iter()
        .map(|s| s.status)
        .chain(dependencies.iter().map(|d| d.status))
        .any(|h| h != Health::Healthy)
    {
        Health::Degraded
    } else {
        Health::Healthy
    };
    Report {
        overall,
        services,
        dependencies,
        checked_at: OffsetDateTime::now_utc(),
        modes,
    }
}

/// The report as JSON (`GET /admin/v1/health`).
pub fn report_json(r: &Report) -> Value {
    let deps: Vec<Value> = r
        .dependencies
        .iter()
        .map(|d| {
            let mut o = serde_json::Map::new();
            o.insert("name".into(), d.name.clone().into());
            o.insert("kind".into(), d.kind.into());
            o.insert("status".into(), d.status.as_str().into());
            o.insert("latency_ms".into(), d.latency_ms.into());
            o.insert("message".into(), d.message.clone().into());
            o.extend(d.extra.clone());
            Value::Object(o)
        })
        .collect();
    json!({
        "overall_status": r.overall.as_str(),
        "checked_at": r.checked_at.format(&Rfc3339).ok(),
        "modes": modes_json(&r.modes),
        "services": r.services.iter().map(|s| json!({
            "name": s.name, "status": s.status.as_str(), "message": s.message,
        })).collect::<Vec<_>>(),
        "dependencies": deps,
    })
}

pub(crate) fn modes_json(m: &Modes) -> Value {
    json!({
        "maintenance": m.maintenance(),
        "maintenance_since": m.maintenance_since_ms.map_or(Value::Null, rfc3339_ms),
        "circuit_breaker": m.circuit_breaker(),
        "circuit_breaker_since": m.circuit_breaker_since_ms.map_or(Value::Null, rfc3339_ms),
    })
}
