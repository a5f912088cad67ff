//! The gateway's AdminService, one implementation for both edges (HTTP under `/admin/v1`,
//! gRPC `common.v1.AdminService` in [`crate::admin_grpc`]): the system health report
//! ([`system_health`]) and the emergency actions ([`execute`]).
//!
//! Emergency actions: STOP_ADMISSIONS (per event), CANCEL_RESERVATIONS (forwarded to the
//! backends' AdminService, per event or for all), CIRCUIT_BREAKER and MAINTENANCE_MODE
//! (system-wide, kept in Redis by [`crate::system`] so that every replica follows them). Each
//! needs the confirmation flag; each has a way back (RESUME_ADMISSIONS, END_CIRCUIT_BREAKER,
//! END_MAINTENANCE_MODE; a cancelled hold is not restored, the seats are simply free again),
//! which needs none. Every action, refused or not, passes the one audit call site in
//! [`execute`].

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::system::{Mode, Modes};
use crate::upstream::{Upstream, UpstreamError};
use crate::AppState;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use proto::common::v1::{self as common, EmergencyActionType};
use queue::model::Action;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
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

fn modes_json(m: &Modes) -> Value {
    json!({
        "maintenance": m.maintenance(),
        "maintenance_since": m.maintenance_since_ms.map_or(Value::Null, rfc3339_ms),
        "circuit_breaker": m.circuit_breaker(),
        "circuit_breaker_since": m.circuit_breaker_since_ms.map_or(Value::Null, rfc3339_ms),
    })
}

/// An emergency action or its way back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emergency {
    /// Nobody more is admitted to the event (joins continue).
    StopAdmissions(String),
    /// Undoes STOP_ADMISSIONS.
    ResumeAdmissions(String),
    /// The event is sold out (its own per-event action; no confirmation, as before).
    SoldOut(String),
    /// Every pending hold of the event (of every event when None) is cancelled by the backends.
    CancelReservations(Option<String>),
    /// Every upstream circuit held open, on every replica.
    CircuitBreaker,
    /// Undoes CIRCUIT_BREAKER (each breaker then goes on from its own state).
    EndCircuitBreaker,
    /// The queue API and pages closed, places kept, on every replica.
    MaintenanceMode,
    /// Undoes MAINTENANCE_MODE.
    EndMaintenanceMode,
}

impl Emergency {
    /// The action's name as the APIs spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::StopAdmissions(_) => "STOP_ADMISSIONS",
            Self::ResumeAdmissions(_) => "RESUME_ADMISSIONS",
            Self::SoldOut(_) => "SOLD_OUT",
            Self::CancelReservations(_) => "CANCEL_RESERVATIONS",
            Self::CircuitBreaker => "CIRCUIT_BREAKER",
            Self::EndCircuitBreaker => "END_CIRCUIT_BREAKER",
            Self::MaintenanceMode => "MAINTENANCE_MODE",
            Self::EndMaintenanceMode => "END_MAINTENANCE_MODE",
        }
    }

    /// The event it is limited to.
    pub fn event(&self) -> Option<&str> {
        match self {
            Self::StopAdmissions(e) | Self::ResumeAdmissions(e) | Self::SoldOut(e) => Some(e),
            Self::CancelReservations(e) => e.as_deref(),
            _ => None,
        }
    }

    /// The four emergency actions of the spec need the confirmation flag; their ways back
    /// (and SOLD_OUT, a per-event action that never needed one) do not.
    pub fn needs_confirmation(&self) -> bool {
        matches!(
            self,
            Self::StopAdmissions(_)
                | Self::CancelReservations(_)
                | Self::CircuitBreaker
                | Self::MaintenanceMode
        )
    }
}

/// Who asked, for the audit line.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The socket peer.
    pub peer: Option<SocketAddr>,
    /// The request's correlation id (`x-request-id`).
    pub request_id: String,
    /// `operator_id` of the request, when given.
    pub operator: String,
    /// `reason` of the request, when given.
    pub reason: String,
    /// `http` or `grpc`.
    pub via: &'static str,
}

/// What an executed action did.
#[derive(Debug, Clone)]
pub struct Executed {
    /// A new id per execution (`act_<uuid>`), also in the audit line.
    pub action_id: String,
    /// When it was done.
    pub executed_at: OffsetDateTime,
    /// What it did, in words.
    pub message: String,
    /// The system-wide modes after it.
    pub modes: Modes,
}

/// Runs `action` for `caller`: refused with CONFIRMATION_REQUIRED (400 / INVALID_ARGUMENT)
/// when it needs the confirmation flag and `confirm` is false. Every call, refused, failed or
/// done, is audited here and only here.
pub async fn execute(
    st: &AppState,
    action: Emergency,
    confirm: bool,
    caller: &Caller,
) -> Result<Executed, ApiError> {
    let action_id = format!("act_{}", uuid::Uuid::new_v4().simple());
    let result = if action.needs_confirmation() && !confirm {
        Err(ApiError::ConfirmationRequired)
    } else {
        run(st, &action, caller).await.map(|message| Executed {
            action_id: action_id.clone(),
            executed_at: OffsetDateTime::now_utc(),
            message,
            modes: st.system.modes(),
        })
    };
    // AUDIT: the single call site of every admin emergency action (HTTP and gRPC). Point the
    // audit recorder here.
    audit(&action_id, &action, caller, &result);
    result
}

/// The audit line (tracing, target `audit`, level info): action, event, peer, request id,
/// operator, reason, edge and outcome. Never a token.
fn audit(
    action_id: &str,
    action: &Emergency,
    caller: &Caller,
    result: &Result<Executed, ApiError>,
) {
    let outcome = match result {
        Ok(_) => "executed",
        Err(ApiError::ConfirmationRequired) => "refused: confirmation required",
        Err(_) => "failed",
    };
    tracing::info!(
        target: "audit",
        action_id,
        action = action.name(),
        event = action.event().unwrap_or(""),
        peer = %caller.peer.map(|p| p.to_string()).unwrap_or_default(),
        request_id = %caller.request_id,
        operator = %caller.operator,
        reason = %caller.reason,
        via = caller.via,
        outcome,
        "admin emergency action"
    );
}

async fn run(st: &AppState, action: &Emergency, caller: &Caller) -> Result<String, ApiError> {
    let set = |mode, on| async move {
        st.system
            .set(mode, on)
            .await
            .map_err(|e| ApiError::Queue(e.into()))
    };
    Ok(match action {
        Emergency::StopAdmissions(ev) => {
            st.room.act(ev, Action::StopAdmissions).await?;
            format!("admissions to {ev} stopped")
        }
        Emergency::ResumeAdmissions(ev) => {
            st.room.act(ev, Action::ResumeAdmissions).await?;
            format!("admissions to {ev} resumed")
        }
        Emergency::SoldOut(ev) => {
            st.room.act(ev, Action::SoldOut).await?;
            format!("{ev} marked sold out")
        }
        Emergency::CancelReservations(ev) => cancel_reservations(st, ev.as_deref(), caller).await?,
        Emergency::CircuitBreaker => {
            set(Mode::CircuitBreaker, true).await?;
            "every upstream circuit is held open until END_CIRCUIT_BREAKER".into()
        }
        Emergency::EndCircuitBreaker => {
            set(Mode::CircuitBreaker, false).await?;
            "upstream circuits released".into()
        }
        Emergency::MaintenanceMode => {
            set(Mode::Maintenance, true).await?;
            "maintenance mode: the queue API and pages answer 503; places are kept".into()
        }
        Emergency::EndMaintenanceMode => {
            set(Mode::Maintenance, false).await?;
            "maintenance mode ended".into()
        }
    })
}

/// CANCEL_RESERVATIONS, forwarded to the backends' AdminService on the reservation upstream's
/// channel. It bypasses the forwarded API's breaker (an operator may cancel while
/// CIRCUIT_BREAKER holds it open) and gets the request timeout as its deadline: cancelling
/// many holds takes longer than one forwarded call.
async fn cancel_reservations(
    st: &AppState,
    event: Option<&str>,
    caller: &Caller,
) -> Result<String, ApiError> {
    let u = st.upstreams.reservation.as_ref().ok_or(ApiError::Upstream(
        UpstreamError::NotConfigured("reservation"),
    ))?;
    let deadline = st
        .limits
        .request_timeout
        .saturating_sub(Duration::from_millis(100));
    let mut req = tonic::Request::new(common::EmergencyActionRequest {
        action: EmergencyActionType::CancelReservations as i32,
        event_id: event.unwrap_or_default().to_owned(),
        reason: caller.reason.clone(),
        operator_id: caller.operator.clone(),
        confirm: true,
    });
    req.set_timeout(deadline);
    if let Ok(id) = caller.request_id.parse() {
        req.metadata_mut().insert("x-request-id", id);
    }
    let mut client = proto::AdminClient::new(u.channel());
    let call = client.emergency_action(req);
    match tokio::time::timeout(deadline, call).await {
        Err(_) => Err(UpstreamError::Timeout("reservation").into()),
        Ok(Err(status)) if status.code() == tonic::Code::DeadlineExceeded => {
            Err(UpstreamError::Timeout("reservation").into())
        }
        Ok(Err(status)) => Err(UpstreamError::Status {
            upstream: "reservation",
            status,
        }
        .into()),
        Ok(Ok(r)) => Ok(r.into_inner().message),
    }
}

// --- HTTP ---------------------------------------------------------------------------------

fn http_caller(
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
    operator: Option<String>,
    reason: Option<String>,
) -> Caller {
    Caller {
        peer: peer.map(|Extension(ConnectInfo(p))| p),
        request_id: headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        operator: operator.unwrap_or_default(),
        reason: reason.unwrap_or_default(),
        via: "http",
    }
}

fn executed_json(action: &str, e: &Executed) -> Value {
    json!({
        "action_id": e.action_id,
        "action": action,
        "executed": true,
        "executed_at": e.executed_at.format(&Rfc3339).ok(),
        "message": e.message,
        "modes": modes_json(&e.modes),
    })
}

/// Body of `POST /admin/v1/events/{event_id}/actions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventActionBody {
    action: String,
    #[serde(default)]
    confirm: bool,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    operator_id: Option<String>,
}

/// `POST /admin/v1/events/{event_id}/actions`: STOP_ADMISSIONS and CANCEL_RESERVATIONS (with
/// `"confirm": true`), RESUME_ADMISSIONS and SOLD_OUT. Answers the event (as `GET
/// /admin/v1/events/{event_id}`) with what was done under `action`.
pub async fn post_event_action(
    State(st): State<AppState>,
    Path(id): Path<String>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EventActionBody>,
) -> Result<Json<Value>, ApiError> {
    let action = match body.action.as_str() {
        "STOP_ADMISSIONS" => Emergency::StopAdmissions(id.clone()),
        "RESUME_ADMISSIONS" => Emergency::ResumeAdmissions(id.clone()),
        "SOLD_OUT" => Emergency::SoldOut(id.clone()),
        "CANCEL_RESERVATIONS" => Emergency::CancelReservations(Some(id.clone())),
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown action {other:?}: STOP_ADMISSIONS, RESUME_ADMISSIONS, SOLD_OUT or CANCEL_RESERVATIONS (system-wide actions go to POST /admin/v1/actions)"
            )))
        }
    };
    // An unknown event is 404 before anything is done (the backends know nothing of it).
    st.room.info(&id).await?;
    let name = action.name();
    let caller = http_caller(peer, &headers, body.operator_id, body.reason);
    let done = execute(&st, action, body.confirm, &caller).await?;
    let info = st.room.info(&id).await?;
    let mut out = crate::handlers::event_json(&id, &info);
    out["action"] = executed_json(name, &done);
    Ok(Json(out))
}

/// Body of `POST /admin/v1/actions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemActionBody {
    action: String,
    #[serde(default)]
    confirm: bool,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    operator_id: Option<String>,
}

/// `POST /admin/v1/actions`: MAINTENANCE_MODE and CIRCUIT_BREAKER (with `"confirm": true`),
/// END_MAINTENANCE_MODE and END_CIRCUIT_BREAKER.
pub async fn post_system_action(
    State(st): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SystemActionBody>,
) -> Result<Json<Value>, ApiError> {
    let action = match body.action.as_str() {
        "MAINTENANCE_MODE" => Emergency::MaintenanceMode,
        "END_MAINTENANCE_MODE" => Emergency::EndMaintenanceMode,
        "CIRCUIT_BREAKER" => Emergency::CircuitBreaker,
        "END_CIRCUIT_BREAKER" => Emergency::EndCircuitBreaker,
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown action {other:?}: MAINTENANCE_MODE, END_MAINTENANCE_MODE, CIRCUIT_BREAKER or END_CIRCUIT_BREAKER (per-event actions go to POST /admin/v1/events/{{event_id}}/actions)"
            )))
        }
    };
    let name = action.name();
    let caller = http_caller(peer, &headers, body.operator_id, body.reason);
    let done = execute(&st, action, body.confirm, &caller).await?;
    Ok(Json(executed_json(name, &done)))
}

/// `GET /admin/v1/health`: GetSystemHealth as JSON (200 whatever the verdict).
pub async fn get_health(State(st): State<AppState>) -> Json<Value> {
    Json(report_json(&system_health(&st).await))
}
