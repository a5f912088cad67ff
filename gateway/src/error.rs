//! The one place where errors become responses: every failure maps to a status, a stable code
//! and the JSON body `{"error": {"code", "message"}}`; upstream gRPC statuses map to HTTP here
//! ([`ApiError::status_and_code`]), and gateway errors to gRPC statuses for the gateway's own
//! gRPC service ([`ApiError::to_grpc_status`]).

use crate::upstream::UpstreamError;
use crate::webhook::WebhookError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use queue::QueueError;

/// An error as the HTTP edge reports it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A waiting-room failure.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The request itself is malformed (JSON, types, fields).
    #[error("{0}")]
    BadRequest(String),
    /// The body exceeds the limit.
    #[error("the request body is over the size limit (--max-body-bytes)")]
    PayloadTooLarge,
    /// No bearer token where one is required.
    #[error("an Authorization: Bearer token is required")]
    Unauthenticated,
    /// The admin token is missing or wrong (or the admin API is disabled).
    #[error("a valid admin token is required")]
    Unauthorized,
    /// An operator console session made a change without its CSRF token (`X-CSRF-Token`).
    #[error("this change needs the console session's X-CSRF-Token header; reload the console")]
    CsrfFailed,
    /// No such route.
    #[error("no such resource")]
    NotFound,
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request ran past the request timeout.
    #[error("the request timed out")]
    Timeout,
    /// The connection limit is reached (a WebSocket upgrade cannot get a permit).
    #[error("too many connections; retry shortly")]
    TooManyConnections,
    /// The client stopped sending its request body before the request timeout.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// The waiting token already has `--ws-per-token` WebSockets open on this replica.
    #[error("too many WebSockets for this waiting token; close one first")]
    TooManySockets,
    /// This client address is over its per-minute limit for this route (`--join-rate-per-ip`,
    /// `--status-rate-per-ip`); a token is back in `retry_after_secs`.
    #[error("too many requests from this address; retry in {retry_after_secs} s")]
    RateLimited {
        /// Whole seconds (at least 1) until the next request can pass: the Retry-After value.
        retry_after_secs: u64,
    },
    /// The admission token is not valid for this request (bad signature, other event).
    #[error("the admission token is not valid for this event")]
    Forbidden,
    /// The admission token has expired: queue again.
    #[error("the admission token has expired")]
    AdmissionExpired,
    /// A mutating forwarded call came without an `Idempotency-Key` header.
    #[error("an Idempotency-Key header (1 to 128 visible characters) is required")]
    IdempotencyRequired,
    /// A backing service failed or could not be called.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A payment webhook was refused, or the webhook inbox or dead-letter queue failed.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    // --- System-wide modes and emergency actions (AdminService). ---
    /// MAINTENANCE_MODE is in force: the queue API and pages are closed until it ends.
    #[error("the waiting room is down for maintenance; your place is kept, retry later")]
    Maintenance,
    /// An emergency action came without `"confirm": true` (the gRPC confirmation flag).
    #[error("this emergency action needs \"confirm\": true")]
    ConfirmationRequired,
}

impl ApiError {
    /// The HTTP status and the stable error code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use QueueError as Q;
        match self {
            Self::Queue(e) => match e {
                Q::InvalidArgument(_) => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
                Q::EventNotFound(_) => (StatusCode::NOT_FOUND, "EVENT_NOT_FOUND"),
                Q::EventClosed(_) => (StatusCode::GONE, "EVENT_CLOSED"),
                Q::InvalidToken => (StatusCode::UNAUTHORIZED, "INVALID_TOKEN"),
                Q::NotReady => (StatusCode::CONFLICT, "NOT_READY"),
                Q::TokenExpired => (StatusCode::GONE, "TOKEN_EXPIRED"),
                Q::InvalidAssertion(_) => (StatusCode::FORBIDDEN, "INVALID_ASSERTION"),
                Q::AssertionsDisabled => (StatusCode::BAD_REQUEST, "ASSERTIONS_DISABLED"),
                Q::AdmissionEnded => (StatusCode::FORBIDDEN, "ADMISSION_ENDED"),
                Q::Unavailable(_) | Q::NotReplicated { .. } => {
                    (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
                }
                Q::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "OVERLOADED"),
                Q::ChallengeRequired => (StatusCode::FORBIDDEN, "CHALLENGE_REQUIRED"),
                Q::ChallengeFailed(_) => (StatusCode::FORBIDDEN, "CHALLENGE_FAILED"),
                Q::Protocol(_) | Q::Key(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
            },
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            Self::CsrfFailed => (StatusCode::FORBIDDEN, "CSRF_FAILED"),
            Self::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
            Self::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "TIMEOUT"),
            Self::TooManyConnections => (StatusCode::SERVICE_UNAVAILABLE, "TOO_MANY_CONNECTIONS"),
            Self::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT"),
            Self::TooManySockets => (StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_SOCKETS"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            Self::AdmissionExpired => (StatusCode::FORBIDDEN, "ADMISSION_EXPIRED"),
            Self::IdempotencyRequired => (StatusCode::BAD_REQUEST, "IDEMPOTENCY_REQUIRED"),
            Self::Upstream(e) => upstream_status_and_code(e),
            Self::Webhook(e) => webhook_status_and_code(e),
            Self::Maintenance => (StatusCode::SERVICE_UNAVAILABLE, "MAINTENANCE"),
            Self::ConfirmationRequired => (StatusCode::BAD_REQUEST, "CONFIRMATION_REQUIRED"),
        }
    }

    /// The gRPC column of the table: the code a gRPC caller gets. An upstream's client-class
    /// answer keeps its own code (ALREADY_EXISTS stays ALREADY_EXISTS where HTTP says 409);
    /// everything else follows the HTTP status.
    pub fn grpc_code(&self) -> tonic::Code {
        use tonic::Code as C;
        if let Self::Upstream(UpstreamError::Status { status, .. }) = self {
            let (http, _) = self.status_and_code();
            if http.is_client_error() {
                return status.code();
            }
        }
        match self.status_and_code().0 {
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => C::InvalidArgument,
            StatusCode::UNAUTHORIZED => C::Unauthenticated,
            StatusCode::FORBIDDEN => C::PermissionDenied,
            StatusCode::NOT_FOUND => C::NotFound,
            StatusCode::CONFLICT | StatusCode::GONE => C::FailedPrecondition,
            StatusCode::TOO_MANY_REQUESTS => C::ResourceExhausted,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => C::Unavailable,
            StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => C::DeadlineExceeded,
            StatusCode::NOT_IMPLEMENTED => C::Unimplemented,
            _ => C::Internal,
        }
    }

    /// The message shown to clients: store, key and upstream internals are logged, not shown
    /// (they can name hosts).
    fn public_message(&self) -> String {
        match self {
            Self::Queue(QueueError::Unavailable(detail)) => {
                tracing::warn!(%detail, "store unavailable");
                "the queue is temporarily unavailable; retry shortly".to_owned()
            }
            Self::Queue(e @ QueueError::NotReplicated { .. }) => {
                tracing::warn!(error = %e, "write not confirmed by the replicas in time");
                "the queue could not store this durably yet; retry shortly".to_owned()
            }
            Self::Queue(e @ (QueueError::Protocol(_) | QueueError::Key(_))) => {
                tracing::error!(error = %e, "internal error");
                "internal error".to_owned()
            }
            Self::Upstream(UpstreamError::Status { upstream, status }) => {
                use tonic::Code as C;
                match status.code() {
                    C::InvalidArgument
                    | C::NotFound
                    | C::AlreadyExists
                    | C::FailedPrecondition
                    | C::ResourceExhausted
                    | C::PermissionDenied
                    | C::Unauthenticated
                    | C::OutOfRange => status.message().to_owned(),
                    code => {
                        tracing::warn!(
                            upstream,
                            ?code,
                            message = status.message(),
                            "upstream failed"
                        );
                        format!("the {upstream} service failed; retry shortly")
                    }
                }
            }
            Self::Upstream(e) => {
                tracing::debug!(error = %e, "upstream call not made or not answered");
                e.to_string()
            }
            Self::Webhook(WebhookError::Inbox(webhooks::InboxError::Unavailable(detail))) => {
                tracing::warn!(%detail, "webhook inbox unavailable");
                "the webhook inbox is temporarily unavailable; retry shortly".to_owned()
            }
            Self::Webhook(WebhookError::Inbox(e @ webhooks::InboxError::NotReplicated { .. })) => {
                tracing::warn!(error = %e, "webhook not confirmed by the replicas in time");
                "the webhook inbox could not store this durably yet; retry shortly".to_owned()
            }
            Self::Webhook(WebhookError::Inbox(
                e @ (webhooks::InboxError::Protocol(_) | webhooks::InboxError::Config(_)),
            )) => {
                tracing::error!(error = %e, "webhook inbox error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The same error as a gRPC status (for `gateway.v1.QueueService`): the code follows the
    /// HTTP status, and the details carry a `common.v1.Error` whose `details[0].reason` is the
    /// HTTP API's error code (such as `NOT_READY`), so both APIs report the same thing.
    pub fn to_grpc_status(&self) -> tonic::Status {
        use proto::common::v1::{Error, ErrorCode, ErrorDetail};
        use tonic::Code as C;
        let (_, code) = self.status_and_code();
        let grpc = self.grpc_code();
        let error_code =
            ErrorCode::from_str_name(&format!("ERROR_CODE_{code}")).unwrap_or(match grpc {
                C::InvalidArgument => ErrorCode::InvalidArgument,
                C::Unauthenticated => ErrorCode::Unauthenticated,
                C::PermissionDenied => ErrorCode::Forbidden,
                C::NotFound => ErrorCode::NotFound,
                C::AlreadyExists => ErrorCode::AlreadyExists,
                C::FailedPrecondition => ErrorCode::FailedPrecondition,
                C::Unavailable | C::ResourceExhausted => ErrorCode::Unavailable,
                C::DeadlineExceeded => ErrorCode::Timeout,
                _ => ErrorCode::Internal,
            });
        let message = self.public_message();
        let error = Error {
            code: error_code as i32,
            message: message.clone(),
            details: vec![ErrorDetail {
                reason: code.to_owned(),
                ..Default::default()
            }],
            ..Default::default()
        };
        proto::status_with_error(grpc, message, error)
    }
}

/// Webhook and dead-letter failures → HTTP. Every signature or timestamp failure is the same
/// 401 (the reason goes to metrics only), so a forger learns nothing from the answer.
fn webhook_status_and_code(e: &WebhookError) -> (StatusCode, &'static str) {
    use webhooks::InboxError as I;
    match e {
        // Configuration, not a passing state: retrying does not help, so no 503.
        WebhookError::Disabled => (StatusCode::NOT_IMPLEMENTED, "WEBHOOKS_DISABLED"),
        WebhookError::InvalidSignature(_) => (StatusCode::UNAUTHORIZED, "INVALID_SIGNATURE"),
        WebhookError::Malformed(_) => (StatusCode::BAD_REQUEST, "INVALID_PAYLOAD"),
        WebhookError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
        WebhookError::Body => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        WebhookError::Inbox(i) => match i {
            I::Unavailable(_) | I::NotReplicated { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
            }
            I::InvalidId | I::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            I::AlreadyResolved => (StatusCode::CONFLICT, "ALREADY_RESOLVED"),
            I::Protocol(_) | I::Config(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        },
    }
}

/// gRPC status of an upstream → HTTP: the one table of the forwarded API. The JSON code is the
/// `common.v1.Error` code of the status details when the upstream sent one (such as
/// `INVENTORY_CONFLICT`).
fn upstream_status_and_code(e: &UpstreamError) -> (StatusCode, &'static str) {
    use tonic::Code as C;
    let status = match e {
        // Configuration, not a passing state: retrying does not help, so no 503.
        UpstreamError::NotConfigured(_) => {
            return (StatusCode::NOT_IMPLEMENTED, "UPSTREAM_NOT_CONFIGURED")
        }
        UpstreamError::Overloaded(_) => {
            return (StatusCode::SERVICE_UNAVAILABLE, "UPSTREAM_OVERLOADED")
        }
        UpstreamError::CircuitOpen(_) => return (StatusCode::SERVICE_UNAVAILABLE, "CIRCUIT_OPEN"),
        UpstreamError::Timeout(_) => return (StatusCode::GATEWAY_TIMEOUT, "UPSTREAM_TIMEOUT"),
        UpstreamError::Status { status, .. } => status,
    };
    let (http, fallback) = match status.code() {
        C::InvalidArgument | C::OutOfRange => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        C::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        C::AlreadyExists => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
        C::FailedPrecondition => (StatusCode::CONFLICT, "FAILED_PRECONDITION"),
        C::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED"),
        C::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UPSTREAM_UNAVAILABLE"),
        C::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "UPSTREAM_TIMEOUT"),
        C::PermissionDenied => (StatusCode::FORBIDDEN, "FORBIDDEN"),
        C::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
        _ => return (StatusCode::BAD_GATEWAY, "UPSTREAM_ERROR"),
    };
    // Only client-class answers carry the upstream's own code: a 5xx is the gateway's report.
    let detailed = http
        .is_client_error()
        .then(|| proto::error_of(status))
        .flatten()
        .and_then(|d| proto::common::v1::ErrorCode::try_from(d.code).ok())
        .filter(|c| *c != proto::common::v1::ErrorCode::Unspecified)
        .and_then(|c| c.as_str_name().strip_prefix("ERROR_CODE_"));
    (http, detailed.unwrap_or(fallback))
}

/// Retry-After (seconds) of answers during MAINTENANCE_MODE.
pub const MAINTENANCE_RETRY_AFTER: &str = "30";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = self.public_message();
        let body = serde_json::json!({"error": {"code": code, "message": message}});
        let mut resp = (status, axum::Json(body)).into_response();
        if matches!(self, Self::Maintenance) {
            // Maintenance lasts minutes, not a second: a client polling every second only
            // adds load. Places are kept whatever the client does meanwhile.
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(MAINTENANCE_RETRY_AFTER),
            );
        } else if let Self::RateLimited { retry_after_secs } = self {
            // The limiter knows when the next token comes: that, not a generic second.
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        } else if status == StatusCode::SERVICE_UNAVAILABLE
            || status == StatusCode::TOO_MANY_REQUESTS
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::common::v1::{Error, ErrorCode};
    use tonic::Code as C;

    fn upstream(status: tonic::Status) -> ApiError {
        ApiError::Upstream(UpstreamError::Status {
            upstream: "inventory",
            status,
        })
    }

    #[test]
    fn grpc_statuses_map_to_http_in_one_table() {
        let cases = [
            (C::InvalidArgument, 400, "INVALID_ARGUMENT"),
            (C::NotFound, 404, "NOT_FOUND"),
            (C::AlreadyExists, 409, "ALREADY_EXISTS"),
            (C::FailedPrecondition, 409, "FAILED_PRECONDITION"),
            (C::ResourceExhausted, 429, "RESOURCE_EXHAUSTED"),
            (C::Unavailable, 503, "UPSTREAM_UNAVAILABLE"),
            (C::DeadlineExceeded, 504, "UPSTREAM_TIMEOUT"),
            (C::PermissionDenied, 403, "FORBIDDEN"),
            (C::Unauthenticated, 401, "UNAUTHENTICATED"),
            (C::Internal, 502, "UPSTREAM_ERROR"),
            (C::Unknown, 502, "UPSTREAM_ERROR"),
            (C::Unimplemented, 502, "UPSTREAM_ERROR"),
        ];
        for (code, http, name) in cases {
            let (s, c) = upstream(tonic::Status::new(code, "x")).status_and_code();
            assert_eq!((s.as_u16(), c), (http, name), "{code:?}");
        }
        for (e, http, name) in [
            (
                UpstreamError::NotConfigured("payment"),
                501,
                "UPSTREAM_NOT_CONFIGURED",
            ),
            (
                UpstreamError::Overloaded("payment"),
                503,
                "UPSTREAM_OVERLOADED",
            ),
            (UpstreamError::CircuitOpen("payment"), 503, "CIRCUIT_OPEN"),
            (UpstreamError::Timeout("payment"), 504, "UPSTREAM_TIMEOUT"),
        ] {
            let (s, c) = ApiError::Upstream(e).status_and_code();
            assert_eq!((s.as_u16(), c), (http, name));
        }
    }

    #[test]
    fn the_backend_error_code_names_client_errors_only() {
        let with = |code, ec: ErrorCode| {
            let detail = Error {
                code: ec as i32,
                message: "m".into(),
                ..Default::default()
            };
            upstream(proto::status_with_error(code, "m", detail)).status_and_code()
        };
        let (s, c) = with(C::FailedPrecondition, ErrorCode::InventoryConflict);
        assert_eq!((s.as_u16(), c), (409, "INVENTORY_CONFLICT"));
        let (s, c) = with(C::AlreadyExists, ErrorCode::IdempotencyConflict);
        assert_eq!((s.as_u16(), c), (409, "IDEMPOTENCY_CONFLICT"));
        let (s, c) = with(C::FailedPrecondition, ErrorCode::HoldLimit);
        assert_eq!((s.as_u16(), c), (409, "HOLD_LIMIT"));
        // A 5xx keeps the gateway's own code: the backend's UNAVAILABLE is about its store.
        let (s, c) = with(C::Unavailable, ErrorCode::Unavailable);
        assert_eq!((s.as_u16(), c), (503, "UPSTREAM_UNAVAILABLE"));
    }

    #[test]
    fn internal_upstream_messages_are_not_shown() {
        let r =
            upstream(tonic::Status::internal("redis at 10.0.0.7:6379 refused")).public_message();
        assert!(!r.contains("10.0.0.7"), "{r}");
        let r = upstream(tonic::Status::failed_precondition("seats taken: A-1")).public_message();
        assert_eq!(r, "seats taken: A-1");
    }

    #[test]
    fn gateway_errors_become_grpc_statuses_with_the_http_code_as_reason() {
        let s = ApiError::Queue(QueueError::NotReady).to_grpc_status();
        assert_eq!(s.code(), C::FailedPrecondition);
        let e = proto::error_of(&s).unwrap();
        assert_eq!(e.code, ErrorCode::FailedPrecondition as i32);
        assert_eq!(e.details[0].reason, "NOT_READY");
        let s = ApiError::Queue(QueueError::InvalidToken).to_grpc_status();
        assert_eq!(s.code(), C::Unauthenticated);
        let s = ApiError::Queue(QueueError::InvalidAssertion("it has expired")).to_grpc_status();
        assert_eq!(s.code(), C::PermissionDenied);
        assert_eq!(
            proto::error_of(&s).unwrap().details[0].reason,
            "INVALID_ASSERTION"
        );
        let s = ApiError::Queue(QueueError::AssertionsDisabled).to_grpc_status();
        assert_eq!(s.code(), C::InvalidArgument);
        assert_eq!(
            proto::error_of(&s).unwrap().details[0].reason,
            "ASSERTIONS_DISABLED"
        );
        let s = ApiError::Queue(QueueError::EventNotFound("x".into())).to_grpc_status();
        assert_eq!(s.code(), C::NotFound);
        let s = ApiError::Queue(QueueError::Unavailable("redis".into())).to_grpc_status();
        assert_eq!(s.code(), C::Unavailable);
        assert!(!s.message().contains("redis"));
        let e = ApiError::Queue(QueueError::NotReplicated {
            wanted: 1,
            acked: 0,
        });
        assert_eq!(
            e.status_and_code(),
            (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
        );
        assert_eq!(ApiError::Timeout.to_grpc_status().code(), C::Unavailable);
        let s = ApiError::Upstream(UpstreamError::Timeout("inventory")).to_grpc_status();
        assert_eq!(s.code(), C::DeadlineExceeded);
        assert_eq!(
            proto::error_of(&s).unwrap().code,
            ErrorCode::UpstreamTimeout as i32
        );
    }

    #[test]
    fn the_grpc_column_keeps_the_upstream_client_codes_and_names_the_admin_ones() {
        let s = upstream(tonic::Status::already_exists("key reused")).to_grpc_status();
        assert_eq!(
            s.code(),
            C::AlreadyExists,
            "HTTP says 409, gRPC keeps the code"
        );
        let s = upstream(tonic::Status::internal("x")).to_grpc_status();
        assert_eq!(
            s.code(),
            C::Unavailable,
            "a 5xx is the gateway's report (502)"
        );
        let s = ApiError::Upstream(UpstreamError::CircuitOpen("inventory")).to_grpc_status();
        assert_eq!(s.code(), C::Unavailable);
        assert_eq!(
            proto::error_of(&s).unwrap().details[0].reason,
            "CIRCUIT_OPEN"
        );
        let m = ApiError::Maintenance;
        assert_eq!(
            m.status_and_code(),
            (StatusCode::SERVICE_UNAVAILABLE, "MAINTENANCE")
        );
        assert_eq!(m.to_grpc_status().code(), C::Unavailable);
        let r = ApiError::Maintenance.into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], MAINTENANCE_RETRY_AFTER);
        let c = ApiError::ConfirmationRequired;
        assert_eq!(
            c.status_and_code(),
            (StatusCode::BAD_REQUEST, "CONFIRMATION_REQUIRED")
        );
        assert_eq!(c.to_grpc_status().code(), C::InvalidArgument);
    }

    #[test]
    fn webhook_failures_map_to_one_generic_401_and_hide_inbox_details() {
        use webhooks::{InboxError as I, VerifyError as V};
        for v in [
            V::MissingHeader,
            V::BadTimestamp,
            V::Stale,
            V::Future,
            V::BadSignature,
        ] {
            let e = ApiError::Webhook(WebhookError::InvalidSignature(v));
            assert_eq!(
                e.status_and_code(),
                (StatusCode::UNAUTHORIZED, "INVALID_SIGNATURE")
            );
            assert_eq!(e.public_message(), "invalid webhook signature");
        }
        let cases = [
            (WebhookError::Disabled, 501, "WEBHOOKS_DISABLED"),
            (WebhookError::Malformed("x".into()), 400, "INVALID_PAYLOAD"),
            (WebhookError::TooLarge, 413, "PAYLOAD_TOO_LARGE"),
            (WebhookError::Inbox(I::NotFound), 404, "NOT_FOUND"),
            (WebhookError::Inbox(I::InvalidId), 404, "NOT_FOUND"),
            (
                WebhookError::Inbox(I::AlreadyResolved),
                409,
                "ALREADY_RESOLVED",
            ),
            (
                WebhookError::Inbox(I::Unavailable("10.0.0.7".into())),
                503,
                "UNAVAILABLE",
            ),
            (
                WebhookError::Inbox(I::Protocol("10.0.0.7".into())),
                500,
                "INTERNAL",
            ),
        ];
        for (e, http, code) in cases {
            let e = ApiError::Webhook(e);
            let (s, c) = e.status_and_code();
            assert_eq!((s.as_u16(), c), (http, code));
            assert!(!e.public_message().contains("10.0.0.7"));
        }
    }
}
