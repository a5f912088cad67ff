//! `gateway.v1.GatewayService` over gRPC (`--grpc-listen`): the backend-for-frontend calls.
//! `ValidateToken` checks an admission (reservation) token; `CreateReservation` is the HTTP
//! forwarded API's [`forward::reserve`], the same function, so both edges share one set of
//! checks, limits, deadlines, breakers and one error table ([`ApiError::to_grpc_status`]).

use crate::error::ApiError;
use crate::forward::{self, ReserveInput};
use crate::AppState;
use proto::common::v1::{Error as ProtoError, ErrorCode, ErrorDetail};
use proto::gateway::v1 as gw;
use proto::gateway::v1::gateway_service_server::GatewayService;
use queue::token::AdmissionClaims;
use tonic::{Request, Response};

/// What an admission token allows: the forwarded API's operations, plus `event:<event_id>` for
/// the one event it admits to. `required_scope` of `ValidateToken` is checked against these.
pub const SCOPES: [&str; 5] = [
    "queue:admitted",
    "availability:read",
    "reservations:write",
    "reservations:read",
    "payments:write",
];

/// The scopes of a token admitting to `event_id`.
pub fn scopes_of(event_id: &str) -> Vec<String> {
    SCOPES
        .iter()
        .map(|s| (*s).to_owned())
        .chain(std::iter::once(format!("event:{event_id}")))
        .collect()
}

/// The GatewayService implementation over the gateway's state.
#[derive(Clone)]
pub struct GatewayGrpc {
    state: AppState,
}

impl GatewayGrpc {
    /// A service over `state`.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

fn timestamp_s(secs: u64) -> proto::prost_types::Timestamp {
    proto::prost_types::Timestamp {
        seconds: i64::try_from(secs).unwrap_or(i64::MAX),
        nanos: 0,
    }
}

/// A `common.v1.Error` for an answer that is not a failed call (`valid: false`), with the
/// HTTP API's code as `details[0].reason`.
fn soft_error(code: ErrorCode, reason: &str, message: &str) -> ProtoError {
    ProtoError {
        code: code as i32,
        message: message.to_owned(),
        details: vec![ErrorDetail {
            reason: reason.to_owned(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn user_of(c: &AdmissionClaims) -> gw::UserContext {
    gw::UserContext {
        user_id: c.sub.clone(),
        session_id: String::new(),
        event_id: c.aud.clone(),
        claims: [
            ("iss", c.iss.clone()),
            ("aud", c.aud.clone()),
            ("sub", c.sub.clone()),
            ("exp", c.exp.to_string()),
            ("jti", c.jti.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    }
}

/// The correlation id of a call: the `x-request-id` metadata, else the request's own
/// `metadata.request_id`, else a new one.
fn request_id<T>(req: &Request<T>, own: Option<&str>) -> String {
    req.metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .or(own.filter(|v| !v.is_empty()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

#[tonic::async_trait]
impl GatewayService for GatewayGrpc {
    /// A well-formed answer for every token: `valid` with the user, scopes and expiry, or
    /// `valid: false` with `error` saying why (UNAUTHENTICATED: bad signature, unknown key,
    /// other issuer; RESERVATION_EXPIRED: expired; FORBIDDEN: `required_scope` not granted, the
    /// user and scopes still given). Only an empty token is INVALID_ARGUMENT.
    async fn validate_token(
        &self, request: Request<gw::ValidateTokenRequest>,
    ) -> Result<Response<gw::ValidateTokenResponse>, tonic::Status> {
        let r = request.into_inner();
        if r.token.trim().is_empty() {
            return Err(ApiError::BadRequest("token is required".into()).to_grpc_status());
        }
        let claims = match self.state.room.signer().verify_any_event(r.token.trim()) {
            Ok(c) => c,
            Err(e) => {
                let error = match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => soft_error(
                        ErrorCode::ReservationExpired,
                        "ADMISSION_EXPIRED",
                        "the admission token has expired",
                    ),
                    _ => soft_error(
                        ErrorCode::Unauthenticated,
                        "INVALID_TOKEN",
                        "the token is not a valid admission token",
                    ),
                };
                return Ok(Response::new(gw::ValidateTokenResponse {
                    valid: false,
                    error: Some(error),
                    ..Default::default()
                }));
            }
        };
        let scopes = scopes_of(&claims.aud);
        let required = r.required_scope.trim();
        let granted = required.is_empty() || scopes.iter().any(|s| s == required);
        Ok(Response::new(gw::ValidateTokenResponse {
            valid: granted,
            user: Some(user_of(&claims)),
            scopes,
            expires_at: Some(timestamp_s(claims.exp)),
            error: (!granted).then(|| {
                soft_error(
                    ErrorCode::Forbidden,
                    "SCOPE_NOT_GRANTED",
                    &format!("the token does not grant the scope {required:?}"),
                )
            }),
        }))
    }

    /// [`forward::reserve`]: the token is `reservation_token` (or the `authorization: Bearer`
    /// metadata when that is empty); `user_id`, when set, must be the token's subject.
    async fn create_reservation(
        &self, request: Request<gw::CreateReservationRequest>,
    ) -> Result<Response<gw::CreateReservationResponse>, tonic::Status> {
        let own_id = request
            .get_ref()
            .metadata
            .as_ref()
            .map(|m| m.request_id.clone());
        let request_id = request_id(&request, own_id.as_deref());
        let bearer = super::convert::bearer(request.metadata()).map(str::to_owned);
        let r = request.into_inner();
        let token = Some(r.reservation_token)
            .filter(|t| !t.is_empty())
            .or(bearer);
        let input = ReserveInput {
            token,
            event_id: r.event_id,
            quantity: r.quantity,
            seat_ids: r.seat_ids,
            idempotency_key: Some(r.idempotency_key),
            user_id: Some(r.user_id),
            request_id,
        };
        let (r, _) = forward::reserve(&self.state, input)
            .await
            .map_err(|e| e.to_grpc_status())?;
        Ok(Response::new(gw::CreateReservationResponse {
            reservation_id: r.reservation_id,
            status: r.status,
            hold_expires_at: r.hold_expires_at,
            reserved_seats: r.reserved_seats,
            total_amount: r.total_amount,
            payment_url: r.payment_url,
            error: None,
        }))
    }
}
