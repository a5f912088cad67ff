//! The gateway's AdminService, one implementation for both edges (HTTP under `/admin/v1`,
//! gRPC `common.v1.AdminService` in [`crate::grpc::admin`]): the system health report
//! ([`crate::admin_health::system_health`]) and the emergency actions ([`execute`]).
//!
//! Emergency actions: STOP_ADMISSIONS (per event), CANCEL_RESERVATIONS (forwarded to the
//! backends' AdminService, per event or for all), CIRCUIT_BREAKER and MAINTENANCE_MODE
//! (system-wide, kept in Redis by [`crate::system`] so that every replica follows them). Each
//! needs the confirmation flag; each has a way back (RESUME_ADMISSIONS, END_CIRCUIT_BREAKER,
//! END_MAINTENANCE_MODE; a cancelled hold is not restored, the seats are simply free again),
//! which needs none. Every action, refused or not, passes the one audit call site in
//! [`execute`].

use crate::admin_health::{modes_json, report_json, system_health};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::system::{Mode, Modes};
use crate::upstream::UpstreamError;
use crate::AppState;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use proto::common::v1::{self as common, EmergencyActionType};
use queue::model::Action;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

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

    /// The audit trail's object: `event` for per-event actions, `system` otherwise.
    pub fn audit_object(&self) -> &'static str {
        match self {
            Self::StopAdmissions(_) | Self::ResumeAdmissions(_) | Self::SoldOut(_) => "event",
            Self::CancelReservations(Some(_)) => "event",
            _ => "system",
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
    st: &AppState, action: Emergency, confirm: bool, caller: &Caller,
) -> Result<Executed, ApiError> {
    let action_id = format!("act_{}", uuid::Uuid::new_v4().simple());
    let before = audit_state(st, &action).await;
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
    // The single call site of every admin emergency action (HTTP and gRPC): a log line, and an
    // entry of the audit trail for everything but a refusal for want of confirmation.
    audit(&action_id, &action, caller, &result);
    if !matches!(result, Err(ApiError::ConfirmationRequired)) {
        let after = audit_state(st, &action).await;
        let entry = crate::audit::AuditEntry {
            action: format!(
                "{}.{}",
                action.audit_object(),
                action.name().to_ascii_lowercase()
            ),
            event_id: action.event().map(str::to_owned),
            before,
            after,
            peer: caller.peer.map(|p| p.to_string()),
            request_id: Some(caller.request_id.clone()),
        };
        st.audit.record(entry).await;
    }
    result
}

/// What an action changes, for the audit trail: the event's state for per-event actions, the
/// system-wide modes otherwise.
async fn audit_state(st: &AppState, action: &Emergency) -> Value {
    match action.event() {
        Some(id) => match st.room.info(id).await {
            Ok(info) => crate::handlers::event_audit_state(&info),
            Err(_) => Value::Null,
        },
        None => modes_json(&st.system.modes()),
    }
}

/// The audit line (tracing, target `audit`, level info): action, event, peer, request id,
/// operator, reason, edge and outcome. Never a token.
fn audit(
    action_id: &str, action: &Emergency, caller: &Caller, result: &Result<Executed, ApiError>,
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
            // Before the mode lifts (sweeps and admissions stay paused meanwhile): nobody's idle
            // timeout counts the pause, READY deadlines move on by it. Idempotent per pause, so
            // an END that failed half-way is simply sent again.
            let mut events = 0;
            if let Some(since) = st.system.modes().maintenance_since_ms {
                let store = st.room.store();
                let now = st.room.now_ms();
                for ev in store.events().await? {
                    store.resume(&ev, since, now).await?;
                    events += 1;
                }
            }
            set(Mode::Maintenance, false).await?;
            format!("maintenance mode ended; {events} events resumed with the pause credited")
        }
    })
}

/// CANCEL_RESERVATIONS, forwarded to the backends' AdminService on the reservation upstream's
/// channel. It bypasses the forwarded API's breaker (an operator may cancel while
/// CIRCUIT_BREAKER holds it open) and gets the request timeout as its deadline: cancelling
/// many holds takes longer than one forwarded call.
async fn cancel_reservations(
    st: &AppState, event: Option<&str>, caller: &Caller,
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

/// Body of both action endpoints (`POST /admin/v1/events/{event_id}/actions` and `POST
/// /admin/v1/actions`); which actions each takes is its handler's business.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    action: String,
    #[serde(default)]
    confirm: bool,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    operator_id: Option<String>,
}

/// Executes `action` for an HTTP caller (peer, `x-request-id`, the body's operator and
/// reason) and says what was done.
async fn execute_http(
    st: &AppState, action: Emergency, body: ActionBody,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>, headers: &HeaderMap,
) -> Result<Value, ApiError> {
    let caller = Caller {
        peer: peer.map(|Extension(ConnectInfo(p))| p),
        request_id: crate::extract::request_id(headers),
        operator: body.operator_id.unwrap_or_default(),
        reason: body.reason.unwrap_or_default(),
        via: "http",
    };
    let name = action.name();
    let done = execute(st, action, body.confirm, &caller).await?;
    Ok(json!({
        "action_id": done.action_id,
        "action": name,
        "executed": true,
        "executed_at": done.executed_at.format(&Rfc3339).ok(),
        "message": done.message,
        "modes": modes_json(&done.modes),
    }))
}

/// `POST /admin/v1/events/{event_id}/actions`: STOP_ADMISSIONS and CANCEL_RESERVATIONS (with
/// `"confirm": true`), RESUME_ADMISSIONS and SOLD_OUT. Answers the event (as `GET
/// /admin/v1/events/{event_id}`) with what was done under `action`.
pub async fn post_event_action(
    State(st): State<AppState>, Path(id): Path<String>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>, headers: HeaderMap,
    ApiJson(body): ApiJson<ActionBody>,
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
    let done = execute_http(&st, action, body, peer, &headers).await?;
    let info = st.room.info(&id).await?;
    let mut out = crate::handlers::event_json(&id, &info);
    out["action"] = done;
    Ok(Json(out))
}

/// `POST /admin/v1/actions`: MAINTENANCE_MODE and CIRCUIT_BREAKER (with `"confirm": true`),
/// END_MAINTENANCE_MODE and END_CIRCUIT_BREAKER.
pub async fn post_system_action(
    State(st): State<AppState>, peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap, ApiJson(body): ApiJson<ActionBody>,
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
    Ok(Json(execute_http(&st, action, body, peer, &headers).await?))
}

/// `GET /admin/v1/health`: GetSystemHealth as JSON (200 whatever the verdict).
pub async fn get_health(State(st): State<AppState>) -> Json<Value> {
    Json(report_json(&system_health(&st).await))
}
