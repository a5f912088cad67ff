//! The HTTP handlers: the queue API, the admin API and the operational endpoints. Each one
//! parses, calls the waiting room, and shapes the JSON; errors go through [`ApiError`].

use crate::audit::AuditContext;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Bearer};
use crate::metrics::Metrics;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use queue::model::{EventConfig, EventInfo};
use queue::room::PlaceView;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn rfc3339(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

/// What a join and a status reply both say of the place, in their JSON order. Typed structs,
/// not `json!`: a reply is serialised straight into the response bytes, without building a map
/// of owned keys per request (the hot path).
#[derive(Serialize)]
struct PlaceFields {
    eta_seconds: i64,
    expires_at: Option<String>,
    poll_hint: Option<String>,
    position: u64,
    queueing_method: &'static str,
    status: &'static str,
}

impl PlaceFields {
    fn of(p: &PlaceView, poll_hint: Option<String>) -> Self {
        Self {
            poll_hint,
            eta_seconds: p.eta_seconds,
            expires_at: p.expires_at.and_then(|t| t.format(&Rfc3339).ok()),
            position: p.position,
            queueing_method: p.queueing_method.as_str(),
            status: p.status.as_str(),
        }
    }
}

/// The body of a status reply.
#[derive(Serialize)]
struct PlaceReply {
    admission_ready: bool,
    #[serde(flatten)]
    place: PlaceFields,
}

impl PlaceReply {
    fn of(p: &PlaceView, poll_hint: Option<String>) -> Self {
        Self {
            admission_ready: p.admission_ready,
            place: PlaceFields::of(p, poll_hint),
        }
    }
}

/// The body of a join reply.
#[derive(Serialize)]
struct JoinReply {
    #[serde(flatten)]
    place: PlaceFields,
    waiting_token: String,
}

/// Body of `POST /api/v1/queue/join` (unknown fields such as the seed's `metadata` are ignored,
/// and so is `user_id`: a client's word is not an identity, only a verified `user_assertion`).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = JoinRequest)]
pub struct JoinBody {
    #[schema(value_type = crate::openapi::schemas::EventId)]
    event_id: String,
    /// 1-128 bytes.
    #[schema(min_length = 1)]
    session_id: String,
    /// The origin's word for who the user is: a compact JWT, alg HS256, signed with a key
    /// shared with the gateway (--user-assertion-key). Claims: sub (required, 1-128 bytes: the
    /// user id), exp (required, Unix seconds; expired is refused), nbf (optional), aud
    /// (optional; when present it must name event_id) and sid (optional; when present it must
    /// equal session_id). When it verifies, sub becomes the reservation token's sub. Invalid:
    /// 403 INVALID_ASSERTION; sent to a gateway without --user-assertion-key: 400
    /// ASSERTIONS_DISABLED. Empty or null counts as absent.
    #[serde(default)]
    #[schema(max_length = 4096)]
    user_assertion: Option<String>,
    /// Accepted for compatibility and ignored; it never becomes sub (send user_assertion).
    #[serde(default)]
    #[schema(deprecated)]
    #[allow(dead_code)]
    user_id: Option<String>,
    /// A solved challenge: required when the event has a join_challenge (then from a fresh
    /// GET /api/v1/queue/challenge), ignored otherwise; null counts as absent.
    #[serde(default)]
    challenge: Option<ChallengeAnswer>,
    /// A priority access code (POST /admin/v1/events/{event_id}/access-codes): a new place
    /// takes the priority lane, ahead of the general queue, and spends the code atomically; a
    /// session that already holds a place keeps it and does not spend the code. Unknown,
    /// malformed, revoked or spent by another session: 403 INVALID_ACCESS_CODE, no place taken.
    /// Empty or null counts as absent.
    #[serde(default)]
    access_code: Option<String>,
}

impl std::fmt::Debug for JoinBody {
    /// Without the assertion: it is a credential and never reaches logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinBody")
            .field("event_id", &self.event_id)
            .field("session_id", &self.session_id)
            .field("user_assertion", &self.user_assertion.as_ref().map(|_| "…"))
            .field("challenge", &self.challenge.is_some())
            .field("access_code", &self.access_code.as_ref().map(|_| "…"))
            .finish()
    }
}

/// A solved challenge (single-use): the challenge as issued and the nonce found for it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = JoinChallengeAnswer)]
pub struct ChallengeAnswer {
    /// The token from GET /api/v1/queue/challenge, unchanged.
    token: String,
    /// SHA-256(token ":" nonce) starts with difficulty_bits zero bits.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    nonce: String,
}

/// Query of `GET /api/v1/queue/challenge`.
#[derive(Debug, Deserialize)]
pub struct ChallengeQuery {
    event_id: String,
}

/// The body of a challenge reply when one is required.
#[derive(Serialize)]
struct ChallengeReply {
    required: bool,
    token: String,
    difficulty_bits: u32,
    expires_at: Value,
}

/// `GET /api/v1/queue/challenge?event_id=`: a new single-use proof-of-work challenge, or
/// `{"required": false}` for an event that asks for none.
pub async fn challenge(
    State(st): State<AppState>, ApiQuery(q): ApiQuery<ChallengeQuery>,
) -> Result<Response, ApiError> {
    let body = match st.challenges.issue(&q.event_id).await? {
        Some(c) => serde_json::to_value(ChallengeReply {
            required: true,
            token: c.challenge,
            difficulty_bits: c.difficulty_bits,
            expires_at: rfc3339(
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(c.expires_at_ms) * 1_000_000)
                    .ok(),
            ),
        })
        .unwrap_or_default(),
        None => json!({"required": false}),
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// `POST /api/v1/queue/join`: 201 with a new place, 200 with the standing one.
pub async fn join(
    State(st): State<AppState>, ApiJson(body): ApiJson<JoinBody>,
) -> Result<Response, ApiError> {
    let solution = body.challenge.as_ref().map(|c| queue::challenge::Solution {
        challenge: &c.token,
        nonce: &c.nonce,
    });
    st.challenges.check(&body.event_id, solution).await?;
    let joined = st
        .room
        .join_with_code(
            &body.event_id,
            &body.session_id,
            body.user_assertion.as_deref(),
            body.access_code.as_deref(),
        )
        .await?;
    let code = if joined.created {
        st.metrics
            .joins
            .get_or_create(&Metrics::event(&body.event_id))
            .inc();
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = JoinReply {
        place: PlaceFields::of(&joined.place, joined.poll_hint),
        waiting_token: joined.waiting_token,
    };
    Ok((code, Json(body)).into_response())
}

/// Query of `GET /api/v1/queue/status`.
#[derive(Deserialize)]
pub struct StatusQuery {
    /// The `poll_hint` of the last answer for this token (optional).
    #[serde(default)]
    hint: Option<String>,
}

/// `GET /api/v1/queue/status`: where the bearer's place stands (a heartbeat). With the last
/// answer's `poll_hint` the position of a waiting place is derived from the departure log this
/// replica follows, without a Redis operation (see `WaitingRoom::status_hinted`).
pub async fn status(
    State(st): State<AppState>, Bearer(token): Bearer, ApiQuery(q): ApiQuery<StatusQuery>,
) -> Result<Response, ApiError> {
    let hint = q.hint.as_deref().filter(|h| !h.is_empty());
    let answer = st.room.status_hinted(&token, hint).await?;
    if answer.from_log {
        st.metrics.status_reads_from_log.inc();
    }
    Ok(Json(PlaceReply::of(&answer.place, answer.poll_hint)).into_response())
}

/// `POST /api/v1/queue/enter`: the admission grant once READY.
pub async fn enter(
    State(st): State<AppState>, Bearer(token): Bearer,
) -> Result<Json<Value>, ApiError> {
    let g = st.room.enter(&token).await?;
    Ok(Json(json!({
        "admission": "GRANTED",
        "reservation_token": g.reservation_token,
        "ttl_seconds": g.ttl_seconds,
        "valid_until": rfc3339(Some(g.valid_until)),
    })))
}

/// `DELETE /api/v1/queue`: gives up the place.
pub async fn leave(
    State(st): State<AppState>, Bearer(token): Bearer,
) -> Result<StatusCode, ApiError> {
    st.room.leave(&token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /api/v1/queue/ws` (browsers cannot set headers on a WebSocket).
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

/// The checked WebSocket upgrade of `req` (the handshake of every WebSocket route: the queue's,
/// the reservations', the console's), else 400.
pub(crate) fn websocket_upgrade(req: &mut axum::extract::Request) -> Result<ws::Upgrade, ApiError> {
    ws::Upgrade::check(req).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// One of the connection permits, held by a socket for as long as it is open.
pub(crate) fn socket_permit(st: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    st.permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::TooManyConnections)
}

/// `GET /api/v1/queue/ws?token=`: checks the token, then upgrades to the position stream.
pub async fn websocket(
    State(st): State<AppState>, ApiQuery(q): ApiQuery<WsQuery>, mut req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let token = q
        .token
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated)?;
    let (event, ticket, session) = st.room.holder_of(&token)?;
    let upgrade = websocket_upgrade(&mut req)?;
    // Per place, so that a token cannot hold more than its share of the connection permits.
    let slot = st
        .hub
        .claim(&event, ticket)
        .ok_or(ApiError::TooManySockets)?;
    let permit = socket_permit(&st)?;
    let hub = st.hub.clone();
    Ok(upgrade.accept((permit, slot), move |io| async move {
        hub.serve(io, event, ticket, session).await
    }))
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(st): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(st.room.signer().jwks()),
    )
        .into_response()
}

pub(crate) fn event_json(id: &str, e: &EventInfo) -> Value {
    let c = &e.config;
    json!({
        "event_id": id,
        "admit_per_second": c.admit_per_second,
        "max_active": c.max_active,
        "admission_ttl_seconds": c.admission_ttl_seconds,
        "idle_timeout_seconds": c.idle_timeout_seconds,
        "ready_timeout_seconds": c.ready_timeout_seconds,
        "opens_at": rfc3339(c.opens_at),
        "target_url": c.target_url,
        "join_challenge": c.join_challenge,
        "queueing_method": c.queueing_method,
        "page": c.page,
        "admissions_stopped": e.stopped,
        "sold_out": e.sold_out,
        "measured_admit_per_second": (e.measured_rate_milli >= 0).then(|| e.measured_rate_milli as f64 / 1000.0),
        "stats": {
            "waiting": e.stats.waiting,
            "ready": e.stats.ready,
            "active": e.stats.active,
            "joined_total": e.stats.joined_total,
            "admitted_total": e.stats.admitted_total,
            "entered_total": e.stats.entered_total,
        },
    })
}

/// What the audit trail keeps of an event: its configuration and the operator's flags (no
/// counters: they change on their own).
pub fn event_audit_state(e: &EventInfo) -> Value {
    let mut v = serde_json::to_value(&e.config).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("admissions_stopped".into(), Value::Bool(e.stopped));
        m.insert("sold_out".into(), Value::Bool(e.sold_out));
    }
    v
}

/// The event's audit state now, `null` when it does not exist.
async fn audit_state(st: &AppState, id: &str) -> Result<Value, ApiError> {
    match st.room.info(id).await {
        Ok(info) => Ok(event_audit_state(&info)),
        Err(queue::QueueError::EventNotFound(_)) => Ok(Value::Null),
        Err(e) => Err(e.into()),
    }
}

/// `PUT /admin/v1/events/{event_id}`: 201 created, 200 updated.
pub async fn put_event(
    State(st): State<AppState>, who: AuditContext, Path(id): Path<String>,
    ApiJson(config): ApiJson<EventConfig>,
) -> Result<Response, ApiError> {
    let before = audit_state(&st, &id).await?;
    let created = st.room.configure(&id, &config).await?;
    st.configs.forget(&id);
    let info = st.room.info(&id).await?;
    let (code, action) = if created {
        (StatusCode::CREATED, "event.create")
    } else {
        (StatusCode::OK, "event.update")
    };
    let after = event_audit_state(&info);
    st.audit
        .record(who.entry(action, Some(&id), before, after))
        .await;
    Ok((code, Json(event_json(&id, &info))).into_response())
}

/// `GET /admin/v1/events/{event_id}`.
pub async fn get_event(
    State(st): State<AppState>, Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let info = st.room.info(&id).await?;
    Ok(Json(event_json(&id, &info)))
}

/// `GET /healthz`: the process is up.
///
/// A fixed body (written by hand, not serialized per request): `/healthz` is the control of
/// the benchmarks, so it costs what the HTTP stack and the middleware cost, nothing more.
pub async fn healthz() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

/// `GET /readyz`: the store answers, and so does the webhook inbox's Redis node when webhooks
/// are configured (a replica that cannot store webhooks would refuse every delivery).
pub async fn readyz(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    st.room.store().ping().await?;
    let Some(w) = &st.webhooks else {
        return Ok(Json(json!({"status": "ready"})));
    };
    let inbox = |e| crate::webhook::WebhookError::Inbox(e);
    w.inbox.ping().await.map_err(inbox)?;
    // Reported, never a reason to be unready: a backlog drains, and pulling replicas out of the
    // load balancer because of it would only stop intake.
    let backlog = w.inbox.backlog().await.map_err(inbox)?;
    let dead_letters = w.inbox.dead_letters().await.map_err(inbox)?;
    Ok(Json(json!({
        "status": "ready",
        "webhooks": {"backlog": backlog, "dead_letters": dead_letters},
    })))
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics(State(st): State<AppState>) -> Response {
    st.metrics.websockets.set(st.hub.connections() as i64);
    st.metrics
        .websockets_dropped
        .inner()
        .store(st.hub.dropped_slow(), std::sync::atomic::Ordering::Relaxed);
    st.metrics.audit_write_failures.inner().store(
        st.audit.write_failures(),
        std::sync::atomic::Ordering::Relaxed,
    );
    if let Some(s) = &st.rate_sync {
        st.metrics
            .rate_syncs
            .inner()
            .store(s.syncs(), std::sync::atomic::Ordering::Relaxed);
        st.metrics
            .rate_sync_failures
            .inner()
            .store(s.failures(), std::sync::atomic::Ordering::Relaxed);
    }
    for u in st.upstreams.all() {
        st.metrics
            .upstream_circuit_open
            .get_or_create(&crate::metrics::UpstreamName { upstream: u.name() })
            .set(i64::from(u.circuit_open()));
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
        .into_response()
}

/// Any unknown route.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// A known route with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
