//! The forwarded API: admitted users' requests to the backing services (availability,
//! reservations, payment intents). Each handler checks the admission JWT against the event the
//! request is about before any upstream call, then makes exactly one call through
//! [`crate::upstream::Upstream::call`] and shapes its answer as JSON.

use crate::error::ApiError;
use crate::extract::{bearer, request_id, ApiJson};
use crate::upstream::{Upstream, UpstreamError};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use proto::common::v1::{Money, Seat, SeatStatus};
use proto::payment::v1 as pay;
use proto::reservation::v1 as res;
use queue::token::AdmissionClaims;
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Longest accepted `Idempotency-Key` (the backends' limit).
const MAX_IDEMPOTENCY_KEY: usize = 128;

/// `token` verified as an admission to `event_id`: missing is 401; a bad signature, another
/// event or an expired token is 403. Shared by HTTP (the bearer) and gRPC (the request's
/// `reservation_token`).
pub(crate) fn admitted_token(
    st: &AppState, token: Option<&str>, event_id: &str,
) -> Result<AdmissionClaims, ApiError> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated)?;
    st.room
        .signer()
        .verify(token, event_id)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => ApiError::AdmissionExpired,
            _ => ApiError::Forbidden,
        })
}

/// The bearer of `headers`, verified as an admission to `event_id` (see [`admitted_token`]).
fn admitted(
    st: &AppState, headers: &HeaderMap, event_id: &str,
) -> Result<AdmissionClaims, ApiError> {
    let token = bearer(headers.get(header::AUTHORIZATION));
    admitted_token(st, token.as_deref(), event_id)
}

/// 401 before anything else when there is no bearer at all (so an anonymous caller learns
/// nothing about ids or bodies).
fn require_bearer(headers: &HeaderMap) -> Result<(), ApiError> {
    bearer(headers.get(header::AUTHORIZATION))
        .map(|_| ())
        .ok_or(ApiError::Unauthenticated)
}

/// An idempotency key: required, 1 to 128 visible ASCII characters (surrounding blanks
/// trimmed).
fn checked_idempotency_key(key: Option<&str>) -> Result<String, ApiError> {
    key.map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
        .map(str::to_owned)
        .ok_or(ApiError::IdempotencyRequired)
}

/// The `Idempotency-Key` header (see [`checked_idempotency_key`]).
fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    checked_idempotency_key(headers.get("idempotency-key").and_then(|v| v.to_str().ok()))
}

fn upstream<'a>(u: &'a Option<Upstream>, name: &'static str) -> Result<&'a Upstream, ApiError> {
    u.as_ref()
        .ok_or(ApiError::Upstream(UpstreamError::NotConfigured(name)))
}

/// The event an id of the backends embeds: `<prefix><32 hex>_<event_id>`.
pub(crate) fn event_of<'a>(id: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = id.strip_prefix(prefix)?;
    let hex = rest.get(..32)?;
    let event = rest.get(32..)?.strip_prefix('_')?;
    (hex.bytes().all(|b| b.is_ascii_hexdigit()) && !event.is_empty()).then_some(event)
}

fn ts(t: Option<&proto::prost_types::Timestamp>) -> Value {
    t.and_then(|t| {
        OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos),
        )
        .ok()
    })
    .and_then(|t| t.format(&Rfc3339).ok())
    .map_or(Value::Null, Value::String)
}

fn money(m: Option<&Money>) -> Value {
    m.map_or(
        Value::Null,
        |m| json!({"amount_cents": m.amount_cents, "currency": m.currency}),
    )
}

/// An enum's wire name without its prefix (`RESERVATION_STATUS_PENDING` → `PENDING`).
fn name(full: &'static str, prefix: &str) -> &'static str {
    full.strip_prefix(prefix).unwrap_or(full)
}

fn seat(s: &Seat) -> Value {
    let status = SeatStatus::try_from(s.status).unwrap_or_default();
    json!({
        "seat_id": s.seat_id,
        "section": s.section,
        "row": s.row,
        "number": s.number,
        "price": money(s.price.as_ref()),
        "status": name(status.as_str_name(), "SEAT_STATUS_"),
    })
}

fn reservation_status(v: i32) -> &'static str {
    let s = res::ReservationStatus::try_from(v).unwrap_or_default();
    name(s.as_str_name(), "RESERVATION_STATUS_")
}

/// Query of `GET /api/v1/events/{event_id}/availability`.
#[derive(Debug, Deserialize)]
pub struct AvailabilityQuery {
    #[serde(default)]
    quantity: Option<i32>,
    #[serde(default)]
    section: Option<String>,
}

/// `GET /api/v1/events/{event_id}/availability?quantity=&section=` → Inventory.CheckAvailability.
pub async fn availability(
    State(st): State<AppState>, Path(event_id): Path<String>, headers: HeaderMap,
    query: Result<Query<AvailabilityQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    admitted(&st, &headers, &event_id)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
    let inventory = upstream(&st.upstreams.inventory, "inventory")?;
    let req = res::CheckAvailabilityRequest {
        event_id: event_id.clone(),
        quantity: q.quantity.unwrap_or(0),
        section: q.section.unwrap_or_default(),
        ..Default::default()
    };
    let a = inventory
        .call(req, &request_id(&headers), |ch, r| async move {
            proto::InventoryClient::new(ch).check_availability(r).await
        })
        .await?;
    Ok(Json(json!({
        "event_id": event_id,
        "available": a.available,
        "available_seats": a.available_seats.iter().map(seat).collect::<Vec<_>>(),
        "unavailable_seat_ids": a.unavailable_seat_ids,
        "remaining_in_section": a.remaining_in_section,
    })))
}

/// Body of `POST /api/v1/reservations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveBody {
    event_id: String,
    #[serde(default)]
    quantity: i32,
    #[serde(default)]
    seat_ids: Vec<String>,
}

/// A CreateReservation as either edge received it (HTTP `POST /api/v1/reservations`, gRPC
/// `gateway.v1.GatewayService/CreateReservation`).
#[derive(Debug, Clone, Default)]
pub struct ReserveInput {
    /// The admission (reservation) token; None or empty is 401 UNAUTHENTICATED.
    pub token: Option<String>,
    /// The event the token must admit to.
    pub event_id: String,
    /// Seats wanted (may be 0 when `seat_ids` names them).
    pub quantity: i32,
    /// Specific seats, or none.
    pub seat_ids: Vec<String>,
    /// The idempotency key (required, 1 to 128 visible characters).
    pub idempotency_key: Option<String>,
    /// When set, must be the token's subject (else 403 FORBIDDEN): gRPC's `user_id`.
    pub user_id: Option<String>,
    /// Correlation id passed on to the backend.
    pub request_id: String,
}

/// Where the buyer pays for a reservation: the backend's `payment_url` when it gives one,
/// else the gateway's own payment-intent endpoint (`POST` it with the `reservation_id`).
pub const PAYMENT_PATH: &str = "/api/v1/payments/intents";

/// The orchestration of CreateReservation, one function for HTTP and gRPC: the admission
/// token is verified against the event (signature, expiry, audience) before anything else,
/// then the idempotency key, then exactly one ReservationService.CreateReservation call through
/// the upstream's deadline, concurrency limit and circuit breaker. The backend checks the
/// seats' availability and takes the 60-second hold in one atomic step (a separate
/// CheckAvailability first would be a second call and still racy), and the answer gets its
/// `payment_url`.
pub async fn reserve(
    st: &AppState, input: ReserveInput,
) -> Result<(res::CreateReservationResponse, AdmissionClaims), ApiError> {
    let claims = admitted_token(st, input.token.as_deref(), &input.event_id)?;
    if input
        .user_id
        .as_deref()
        .is_some_and(|u| !u.is_empty() && u != claims.sub)
    {
        return Err(ApiError::Forbidden);
    }
    let key = checked_idempotency_key(input.idempotency_key.as_deref())?;
    let reservations = upstream(&st.upstreams.reservation, "reservation")?;
    // A left or expired admission holds nothing: one store read, before any upstream call.
    st.room.admission_stands(&claims).await?;
    let req = res::CreateReservationRequest {
        event_id: input.event_id,
        seat_ids: input.seat_ids,
        quantity: input.quantity,
        user_id: claims.sub.clone(),
        // The token was checked here; the backends have no use for it and should not see it.
        reservation_token: String::new(),
        idempotency_key: key,
        // The backends count active holds per admission (--holds-per-admission).
        admission_id: claims.admission_id(),
        metadata: Some(res::ReservationMetadata {
            request_id: input.request_id.clone(),
            ..Default::default()
        }),
    };
    let mut r = reservations
        .call(req, &input.request_id, |ch, r| async move {
            proto::ReservationClient::new(ch)
                .create_reservation(r)
                .await
        })
        .await?;
    if r.payment_url.is_empty() {
        r.payment_url = PAYMENT_PATH.to_owned();
    }
    Ok((r, claims))
}

/// `POST /api/v1/reservations` → [`reserve`]: 201 with a new hold, 200 when the same
/// `Idempotency-Key` already made it (`replayed: true`). Only while the admission stands in the
/// queue's store (403 ADMISSION_ENDED after a leave or its expiry).
pub async fn create_reservation(
    State(st): State<AppState>, headers: HeaderMap, body: Result<ApiJson<ReserveBody>, ApiError>,
) -> Result<Response, ApiError> {
    require_bearer(&headers)?;
    let ApiJson(body) = body?;
    let input = ReserveInput {
        token: bearer(headers.get(header::AUTHORIZATION)),
        event_id: body.event_id,
        quantity: body.quantity,
        seat_ids: body.seat_ids,
        idempotency_key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        user_id: None,
        request_id: request_id(&headers),
    };
    let (r, _) = reserve(&st, input).await?;
    let code = if r.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = json!({
        "reservation_id": r.reservation_id,
        "status": reservation_status(r.status),
        "hold_expires_at": ts(r.hold_expires_at.as_ref()),
        "reserved_seats": r.reserved_seats.iter().map(seat).collect::<Vec<_>>(),
        "total_amount": money(r.total_amount.as_ref()),
        "payment_url": r.payment_url,
        "replayed": r.replayed,
    });
    Ok((code, Json(body)).into_response())
}

/// `GET /api/v1/reservations/{reservation_id}` → ReservationService.GetReservation, for the
/// token's user only (another user's reservation is 404).
pub async fn get_reservation(
    State(st): State<AppState>, Path(reservation_id): Path<String>, headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_bearer(&headers)?;
    let event = event_of(&reservation_id, "r_").ok_or(ApiError::NotFound)?;
    let claims = admitted(&st, &headers, event)?;
    let reservations = upstream(&st.upstreams.reservation, "reservation")?;
    let req = res::GetReservationRequest {
        reservation_id: reservation_id.clone(),
        user_id: claims.sub,
    };
    let answer = reservations
        .call(req, &request_id(&headers), |ch, r| async move {
            proto::ReservationClient::new(ch).get_reservation(r).await
        })
        .await?;
    let r = answer.reservation.unwrap_or_default();
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Ok(Json(json!({
        "reservation_id": r.reservation_id,
        "event_id": r.event_id,
        "status": reservation_status(r.status),
        "seats": r.seats.iter().map(seat).collect::<Vec<_>>(),
        "quantity": r.quantity,
        "total_amount": money(r.total_amount.as_ref()),
        "created_at": ts(r.created_at.as_ref()),
        "hold_expires_at": ts(r.hold_expires_at.as_ref()),
        "order_id": text(&r.order_id),
        "payment_intent_id": text(&r.payment_intent_id),
        "confirmed_at": ts(r.confirmed_at.as_ref()),
    })))
}

/// Body of `POST /api/v1/payments/intents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentBody {
    reservation_id: String,
    /// The simulator's scenario: APPROVE (default), FAIL, DELAY, RANDOM or TIMEOUT.
    #[serde(default)]
    scenario: Option<String>,
}

/// `POST /api/v1/payments/intents` → PaymentService.CreatePaymentIntent: 201 with a new
/// intent, 200 when the same `Idempotency-Key` already made it.
pub async fn create_payment_intent(
    State(st): State<AppState>, headers: HeaderMap, body: Result<ApiJson<IntentBody>, ApiError>,
) -> Result<Response, ApiError> {
    require_bearer(&headers)?;
    let ApiJson(body) = body?;
    let event = event_of(&body.reservation_id, "r_")
        .ok_or_else(|| ApiError::BadRequest("reservation_id is malformed".into()))?;
    let claims = admitted(&st, &headers, event)?;
    let key = idempotency_key(&headers)?;
    let scenario = match body.scenario.as_deref() {
        None | Some("") => pay::PaymentScenario::Approve,
        Some(s) => pay::PaymentScenario::from_str_name(&format!(
            "PAYMENT_SCENARIO_{}",
            s.to_ascii_uppercase()
        ))
        .filter(|s| *s != pay::PaymentScenario::Unspecified)
        .ok_or_else(|| {
            ApiError::BadRequest("scenario must be APPROVE, FAIL, DELAY, RANDOM or TIMEOUT".into())
        })?,
    };
    let payments = upstream(&st.upstreams.payment, "payment")?;
    let req = pay::CreatePaymentIntentRequest {
        reservation_id: body.reservation_id,
        // The backend refuses an intent for another user's reservation.
        user_id: claims.sub,
        scenario: scenario as i32,
        idempotency_key: key,
        ..Default::default()
    };
    let p = payments
        .call(req, &request_id(&headers), |ch, r| async move {
            proto::PaymentClient::new(ch).create_payment_intent(r).await
        })
        .await?;
    let code = if p.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let status = pay::PaymentStatus::try_from(p.status).unwrap_or_default();
    let body = json!({
        "payment_intent_id": p.payment_intent_id,
        "status": name(status.as_str_name(), "PAYMENT_STATUS_"),
        "expires_at": ts(p.expires_at.as_ref()),
        "client_secret": p.client_secret,
        "replayed": p.replayed,
    });
    Ok((code, Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_event() {
        let id = format!("r_{}_spring-sale", "0123456789abcdef0123456789abcdef");
        assert_eq!(event_of(&id, "r_"), Some("spring-sale"));
        assert_eq!(event_of(&id, "pi_"), None);
        assert_eq!(event_of("r_short_x", "r_"), None);
        assert_eq!(event_of(&format!("r_{}_", "a".repeat(32)), "r_"), None);
        assert_eq!(event_of(&format!("r_{}_e", "g".repeat(32)), "r_"), None);
        assert_eq!(
            event_of("r_ééééééééééééééééééééééééééééééééé_e", "r_"),
            None
        );
    }
}
