//! The one place where errors become responses: every failure maps to a status, a stable code
//! and the JSON body `{"error": {"code", "message"}}`.

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
                Q::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
                Q::Protocol(_) | Q::Key(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
            },
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            Self::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
            Self::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "TIMEOUT"),
            Self::TooManyConnections => (StatusCode::SERVICE_UNAVAILABLE, "TOO_MANY_CONNECTIONS"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            // Store and key failures are logged here, not shown: they can name hosts.
            Self::Queue(QueueError::Unavailable(detail)) => {
                tracing::warn!(%detail, "store unavailable");
                "the queue is temporarily unavailable; retry shortly".to_owned()
            }
            Self::Queue(e @ (QueueError::Protocol(_) | QueueError::Key(_))) => {
                tracing::error!(error = %e, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let body = serde_json::json!({"error": {"code": code, "message": message}});
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}
