//! The one place where errors become answers: ONE table ([`Kind`]) gives each kind of error
//! its HTTP status, gRPC code, stable code (the JSON `error.code`, the gRPC reason), the
//! message clients see, and whether retrying can help (and after how long). The JSON body
//! `{"error": {"code", "message"}}` and its `Retry-After`, the gRPC statuses
//! ([`ApiError::to_grpc_status`]), the HTML message pages ([`page`]) and the WebSocket close
//! frames ([`ws_close`]) all read it; nothing else decides a status. Upstream gRPC statuses map
//! into the same table ([`Kind::of_upstream`]).

use crate::upstream::UpstreamError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use proto::common::v1::ErrorCode;
use queue::QueueError;
use tonic::Code;

/// Why a webhook or dead-letter request failed (mapped by the table below).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No secret is configured for this endpoint.
    #[error("webhooks are not enabled on this gateway")]
    Disabled,
    /// Signature or timestamp check failed; the reason is for metrics only, never shown.
    #[error("invalid webhook signature")]
    InvalidSignature(webhooks::VerifyError),
    /// Well signed, but not a payment event; stored as a dead letter.
    #[error("malformed webhook payload: {0}")]
    Malformed(String),
    /// The body is over `--webhook-max-body-bytes`.
    #[error("the webhook body is over the size limit")]
    TooLarge,
    /// The body could not be read.
    #[error("could not read the body")]
    Body,
    /// The inbox failed, or a dead-letter operation was refused.
    #[error(transparent)]
    Inbox(#[from] webhooks::InboxError),
}

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

/// What clients are told for a kind of error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Public {
    /// This text: the error's own can name hosts, keys or replicas (it is logged instead).
    Text(&'static str),
    /// The error's own text (an upstream's: its status message), which names nothing internal.
    Own,
    /// "the <upstream> service failed; retry shortly" (the upstream's message is logged).
    UpstreamFailed,
}

/// One row of the error table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// The stable code (`error.code` in JSON, `details[0].reason` over gRPC). Other tools
    /// depend on these: never rename one. Several rows may share a code (they differ in what
    /// clients are told).
    pub code: &'static str,
    /// The HTTP status.
    pub http: StatusCode,
    /// The gRPC code.
    pub grpc: Code,
    /// The `common.v1.Error` code of gRPC details.
    pub proto: ErrorCode,
    /// What clients are told.
    pub public: Public,
    /// Seconds a client should wait before it retries: the `Retry-After` header (pages and
    /// WebSocket close codes follow it too). None: retrying cannot help, and nothing says
    /// otherwise.
    pub retry_after: Option<u64>,
}

/// Retry-After (seconds) of answers during MAINTENANCE_MODE: maintenance lasts minutes, not a
/// second, and a client polling every second only adds load (places are kept meanwhile).
pub const MAINTENANCE_RETRY_AFTER_SECS: u64 = 30;

/// [`MAINTENANCE_RETRY_AFTER_SECS`] as header text.
pub const MAINTENANCE_RETRY_AFTER: &str = "30";

/// Defines the rows as constants of [`Kind`] and lists them all in [`Kind::ALL`].
macro_rules! table {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $http:ident, $grpc:ident, $proto:ident, $public:expr, $retry:expr;)*) => {
        impl Kind {
            $($(#[$doc])* pub const $name: Kind = Kind {
                code: $code,
                http: StatusCode::$http,
                grpc: Code::$grpc,
                proto: ErrorCode::$proto,
                public: $public,
                retry_after: $retry,
            };)*
            /// Every row.
            pub const ALL: &'static [Kind] = &[$(Kind::$name),*];
        }
    };
}

use Public::{Own, Text, UpstreamFailed};

// The one table. A retry delay is given only where waiting can help; a 503 without one would
// be a lie (configuration is 501, a bug 500).
table! {
    // --- Requests and the waiting room. ---
    /// Malformed input: JSON, types, fields, ids, values.
    INVALID_ARGUMENT = "INVALID_ARGUMENT", BAD_REQUEST, InvalidArgument, InvalidArgument, Own, None;
    /// The body is over the size limit.
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE", PAYLOAD_TOO_LARGE, InvalidArgument, InvalidArgument, Own, None;
    /// No bearer token where one is required.
    UNAUTHENTICATED = "UNAUTHENTICATED", UNAUTHORIZED, Unauthenticated, Unauthenticated, Own, None;
    /// The admin token is missing or wrong (or the admin API is disabled).
    UNAUTHORIZED = "UNAUTHORIZED", UNAUTHORIZED, Unauthenticated, Unauthenticated, Own, None;
    /// A console session's change without its `X-CSRF-Token`: reloading the console helps,
    /// retrying the same request does not.
    CSRF_FAILED = "CSRF_FAILED", FORBIDDEN, PermissionDenied, Forbidden, Own, None;
    /// No such route (or dead letter).
    NOT_FOUND = "NOT_FOUND", NOT_FOUND, NotFound, NotFound, Own, None;
    /// The route exists but not with this method.
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED", METHOD_NOT_ALLOWED, Internal, Internal, Own, None;
    /// The request ran past the request timeout.
    TIMEOUT = "TIMEOUT", SERVICE_UNAVAILABLE, Unavailable, Timeout, Own, Some(1);
    /// The client stopped sending its body: waiting does not help.
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT", REQUEST_TIMEOUT, DeadlineExceeded, Timeout, Own, None;
    /// The connection limit is reached.
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS", SERVICE_UNAVAILABLE, Unavailable, Unavailable, Own, Some(1);
    /// The waiting token has `--ws-per-token` WebSockets open here.
    TOO_MANY_SOCKETS = "TOO_MANY_SOCKETS", TOO_MANY_REQUESTS, ResourceExhausted, Unavailable, Own, Some(1);
    /// Over a per-client rate limit; the limiter's delay replaces this one
    /// ([`ApiError::retry_after`]).
    RATE_LIMITED = "RATE_LIMITED", TOO_MANY_REQUESTS, ResourceExhausted, Unavailable, Own, Some(1);
    /// The admission token is not valid for this request.
    FORBIDDEN = "FORBIDDEN", FORBIDDEN, PermissionDenied, Forbidden, Own, None;
    /// The admission token has expired.
    ADMISSION_EXPIRED = "ADMISSION_EXPIRED", FORBIDDEN, PermissionDenied, Forbidden, Own, None;
    /// A mutating forwarded call without `Idempotency-Key`.
    IDEMPOTENCY_REQUIRED = "IDEMPOTENCY_REQUIRED", BAD_REQUEST, InvalidArgument, IdempotencyRequired, Own, None;
    /// MAINTENANCE_MODE is in force.
    MAINTENANCE = "MAINTENANCE", SERVICE_UNAVAILABLE, Unavailable, Unavailable, Own, Some(MAINTENANCE_RETRY_AFTER_SECS);
    /// An emergency action without `"confirm": true`.
    CONFIRMATION_REQUIRED = "CONFIRMATION_REQUIRED", BAD_REQUEST, InvalidArgument, InvalidArgument, Own, None;
    /// The event does not exist.
    EVENT_NOT_FOUND = "EVENT_NOT_FOUND", NOT_FOUND, NotFound, NotFound, Own, None;
    /// The event is sold out.
    EVENT_CLOSED = "EVENT_CLOSED", GONE, FailedPrecondition, FailedPrecondition, Own, None;
    /// The event's queueing method is `reject`: it takes no joins now.
    QUEUE_CLOSED = "QUEUE_CLOSED", FORBIDDEN, FailedPrecondition, Forbidden, Own, None;
    /// A join's access code is unknown, revoked or spent by another session.
    INVALID_ACCESS_CODE = "INVALID_ACCESS_CODE", FORBIDDEN, PermissionDenied, Forbidden, Own, None;
    /// The waiting token does not verify.
    INVALID_TOKEN = "INVALID_TOKEN", UNAUTHORIZED, Unauthenticated, Unauthenticated, Own, None;
    /// *enter* before READY.
    NOT_READY = "NOT_READY", CONFLICT, FailedPrecondition, FailedPrecondition, Own, None;
    /// The place is gone.
    TOKEN_EXPIRED = "TOKEN_EXPIRED", GONE, FailedPrecondition, FailedPrecondition, Own, None;
    /// The user assertion does not verify.
    INVALID_ASSERTION = "INVALID_ASSERTION", FORBIDDEN, PermissionDenied, Forbidden, Own, None;
    /// A user assertion, but no key to verify it.
    ASSERTIONS_DISABLED = "ASSERTIONS_DISABLED", BAD_REQUEST, InvalidArgument, InvalidArgument, Own, None;
    /// The admission was given up or ran out.
    ADMISSION_ENDED = "ADMISSION_ENDED", FORBIDDEN, PermissionDenied, Forbidden, Own, None;
    /// A join without the event's challenge.
    CHALLENGE_REQUIRED = "CHALLENGE_REQUIRED", FORBIDDEN, PermissionDenied, Forbidden, Own, None;
    /// A join with a bad challenge solution.
    CHALLENGE_FAILED = "CHALLENGE_FAILED", FORBIDDEN, PermissionDenied, Forbidden, Own, None;
    /// The queue store cannot be reached or is too slow.
    STORE_UNAVAILABLE = "UNAVAILABLE", SERVICE_UNAVAILABLE, Unavailable, Unavailable, Text("the queue is temporarily unavailable; retry shortly"), Some(1);
    /// A queue write not confirmed by enough replicas in time.
    STORE_NOT_REPLICATED = "UNAVAILABLE", SERVICE_UNAVAILABLE, Unavailable, Unavailable, Text("the queue could not store this durably yet; retry shortly"), Some(1);
    /// Too many requests wait for the event's next Redis batch.
    OVERLOADED = "OVERLOADED", SERVICE_UNAVAILABLE, Unavailable, Unavailable, Own, Some(1);
    /// A bug (or unusable key material): never client input.
    INTERNAL = "INTERNAL", INTERNAL_SERVER_ERROR, Internal, Internal, Text("internal error"), None;
    // --- Webhooks and dead letters. Every signature failure is the same 401 (the reason goes
    // to metrics only), so a forger learns nothing from the answer. ---
    /// No webhook secret for this endpoint: configuration, so 501, not 503.
    WEBHOOKS_DISABLED = "WEBHOOKS_DISABLED", NOT_IMPLEMENTED, Unimplemented, Internal, Own, None;
    /// A webhook's signature or timestamp does not verify.
    INVALID_SIGNATURE = "INVALID_SIGNATURE", UNAUTHORIZED, Unauthenticated, Unauthenticated, Own, None;
    /// A well-signed webhook that is not a payment event.
    INVALID_PAYLOAD = "INVALID_PAYLOAD", BAD_REQUEST, InvalidArgument, InvalidArgument, Own, None;
    /// The webhook inbox cannot be reached or is too slow.
    INBOX_UNAVAILABLE = "UNAVAILABLE", SERVICE_UNAVAILABLE, Unavailable, Unavailable, Text("the webhook inbox is temporarily unavailable; retry shortly"), Some(1);
    /// A webhook not confirmed by enough replicas in time.
    INBOX_NOT_REPLICATED = "UNAVAILABLE", SERVICE_UNAVAILABLE, Unavailable, Unavailable, Text("the webhook inbox could not store this durably yet; retry shortly"), Some(1);
    /// The dead letter was resolved before.
    ALREADY_RESOLVED = "ALREADY_RESOLVED", CONFLICT, FailedPrecondition, FailedPrecondition, Own, None;
    // --- Upstreams (the forwarded API). ---
    /// No URL for this upstream: configuration, so 501, not 503.
    UPSTREAM_NOT_CONFIGURED = "UPSTREAM_NOT_CONFIGURED", NOT_IMPLEMENTED, Unimplemented, Internal, Own, None;
    /// `--upstream-max-in-flight` calls in flight: not called.
    UPSTREAM_OVERLOADED = "UPSTREAM_OVERLOADED", SERVICE_UNAVAILABLE, Unavailable, Unavailable, Own, Some(1);
    /// The upstream's circuit is open: not called.
    CIRCUIT_OPEN = "CIRCUIT_OPEN", SERVICE_UNAVAILABLE, Unavailable, Unavailable, Own, Some(1);
    /// No answer within the deadline.
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT", GATEWAY_TIMEOUT, DeadlineExceeded, UpstreamTimeout, Own, None;
    /// The upstream answered DEADLINE_EXCEEDED.
    UPSTREAM_DEADLINE = "UPSTREAM_TIMEOUT", GATEWAY_TIMEOUT, DeadlineExceeded, UpstreamTimeout, UpstreamFailed, None;
    /// The upstream answered UNAVAILABLE.
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE", SERVICE_UNAVAILABLE, Unavailable, Unavailable, UpstreamFailed, Some(1);
    /// Any other failure of the upstream.
    UPSTREAM_ERROR = "UPSTREAM_ERROR", BAD_GATEWAY, Unavailable, Unavailable, UpstreamFailed, None;
    /// The upstream answered ALREADY_EXISTS.
    ALREADY_EXISTS = "ALREADY_EXISTS", CONFLICT, AlreadyExists, AlreadyExists, Own, None;
    /// The upstream answered FAILED_PRECONDITION.
    FAILED_PRECONDITION = "FAILED_PRECONDITION", CONFLICT, FailedPrecondition, FailedPrecondition, Own, None;
    /// The upstream answered RESOURCE_EXHAUSTED.
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED", TOO_MANY_REQUESTS, ResourceExhausted, Unavailable, Own, Some(1);
    // The backends' own codes of client-class answers (`common.v1.Error`): their status and
    // message follow the upstream's gRPC code (the row above it names), only the code is theirs.
    /// Seats taken.
    INVENTORY_CONFLICT = "INVENTORY_CONFLICT", CONFLICT, FailedPrecondition, InventoryConflict, Own, None;
    /// An idempotency key reused with other parameters.
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT", CONFLICT, AlreadyExists, IdempotencyConflict, Own, None;
    /// The hold ran out.
    RESERVATION_EXPIRED = "RESERVATION_EXPIRED", CONFLICT, FailedPrecondition, ReservationExpired, Own, None;
    /// The admission already has its active hold.
    HOLD_LIMIT = "HOLD_LIMIT", CONFLICT, FailedPrecondition, HoldLimit, Own, None;
}

/// Every stable code of the table, each once (for the API reference and the OpenAPI schema).
pub fn codes() -> impl Iterator<Item = &'static str> {
    Kind::ALL
        .iter()
        .enumerate()
        .filter(|(i, k)| !Kind::ALL[..*i].iter().any(|e| e.code == k.code))
        .map(|(_, k)| k.code)
}

impl Kind {
    /// The row of a waiting-room failure.
    pub fn of_queue(e: &QueueError) -> Kind {
        use QueueError as Q;
        match e {
            Q::InvalidArgument(_) => Kind::INVALID_ARGUMENT,
            Q::EventNotFound(_) => Kind::EVENT_NOT_FOUND,
            Q::EventClosed(_) => Kind::EVENT_CLOSED,
            Q::QueueClosed(_) => Kind::QUEUE_CLOSED,
            Q::InvalidAccessCode => Kind::INVALID_ACCESS_CODE,
            Q::InvalidToken => Kind::INVALID_TOKEN,
            Q::NotReady => Kind::NOT_READY,
            Q::TokenExpired => Kind::TOKEN_EXPIRED,
            Q::InvalidAssertion(_) => Kind::INVALID_ASSERTION,
            Q::AssertionsDisabled => Kind::ASSERTIONS_DISABLED,
            Q::AdmissionEnded => Kind::ADMISSION_ENDED,
            Q::Unavailable(_) => Kind::STORE_UNAVAILABLE,
            Q::NotReplicated { .. } => Kind::STORE_NOT_REPLICATED,
            Q::Overloaded => Kind::OVERLOADED,
            Q::ChallengeRequired => Kind::CHALLENGE_REQUIRED,
            Q::ChallengeFailed(_) => Kind::CHALLENGE_FAILED,
            Q::Protocol(_) | Q::Key(_) => Kind::INTERNAL,
        }
    }

    /// The row of a webhook or dead-letter failure.
    pub fn of_webhook(e: &WebhookError) -> Kind {
        use webhooks::InboxError as I;
        match e {
            WebhookError::Disabled => Kind::WEBHOOKS_DISABLED,
            WebhookError::InvalidSignature(_) => Kind::INVALID_SIGNATURE,
            WebhookError::Malformed(_) => Kind::INVALID_PAYLOAD,
            WebhookError::TooLarge => Kind::PAYLOAD_TOO_LARGE,
            WebhookError::Body => Kind::INVALID_ARGUMENT,
            WebhookError::Inbox(i) => match i {
                I::Unavailable(_) => Kind::INBOX_UNAVAILABLE,
                I::NotReplicated { .. } => Kind::INBOX_NOT_REPLICATED,
                I::InvalidId | I::NotFound => Kind::NOT_FOUND,
                I::AlreadyResolved => Kind::ALREADY_RESOLVED,
                I::Protocol(_) | I::Config(_) => Kind::INTERNAL,
            },
        }
    }

    /// The row of an upstream failure: by the upstream's gRPC code, and for a client-class
    /// answer with a `common.v1.Error` detail (such as `INVENTORY_CONFLICT`), that code. A 5xx
    /// keeps the gateway's own code: the backend's UNAVAILABLE is about its store.
    pub fn of_upstream(e: &UpstreamError) -> Kind {
        let status = match e {
            UpstreamError::NotConfigured(_) => return Kind::UPSTREAM_NOT_CONFIGURED,
            UpstreamError::Overloaded(_) => return Kind::UPSTREAM_OVERLOADED,
            UpstreamError::CircuitOpen(_) => return Kind::CIRCUIT_OPEN,
            UpstreamError::Timeout(_) => return Kind::UPSTREAM_TIMEOUT,
            UpstreamError::Status { status, .. } => status,
        };
        let base = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => Kind::INVALID_ARGUMENT,
            Code::NotFound => Kind::NOT_FOUND,
            Code::AlreadyExists => Kind::ALREADY_EXISTS,
            Code::FailedPrecondition => Kind::FAILED_PRECONDITION,
            Code::ResourceExhausted => Kind::RESOURCE_EXHAUSTED,
            Code::Unavailable => return Kind::UPSTREAM_UNAVAILABLE,
            Code::DeadlineExceeded => return Kind::UPSTREAM_DEADLINE,
            Code::PermissionDenied => Kind::FORBIDDEN,
            Code::Unauthenticated => Kind::UNAUTHENTICATED,
            _ => return Kind::UPSTREAM_ERROR,
        };
        let detail = proto::error_of(status)
            .and_then(|d| ErrorCode::try_from(d.code).ok())
            .and_then(Kind::of_backend_code);
        match detail {
            Some(d) => Kind {
                code: d.code,
                proto: d.proto,
                ..base
            },
            None => base,
        }
    }

    /// The row that names a backend's `common.v1.Error` code (None: unspecified).
    fn of_backend_code(c: ErrorCode) -> Option<Kind> {
        use ErrorCode as E;
        Some(match c {
            E::Unspecified => return None,
            E::InvalidArgument => Kind::INVALID_ARGUMENT,
            E::Unauthenticated => Kind::UNAUTHENTICATED,
            E::Forbidden => Kind::FORBIDDEN,
            E::NotFound => Kind::NOT_FOUND,
            E::AlreadyExists => Kind::ALREADY_EXISTS,
            E::IdempotencyRequired => Kind::IDEMPOTENCY_REQUIRED,
            E::ReservationExpired => Kind::RESERVATION_EXPIRED,
            E::InventoryConflict => Kind::INVENTORY_CONFLICT,
            E::FailedPrecondition => Kind::FAILED_PRECONDITION,
            E::IdempotencyConflict => Kind::IDEMPOTENCY_CONFLICT,
            E::HoldLimit => Kind::HOLD_LIMIT,
            E::Internal => Kind::INTERNAL,
            E::Unavailable => Kind::STORE_UNAVAILABLE,
            E::Timeout => Kind::TIMEOUT,
            E::UpstreamTimeout => Kind::UPSTREAM_TIMEOUT,
        })
    }
}

impl ApiError {
    /// This error's row of the table.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Queue(e) => Kind::of_queue(e),
            Self::BadRequest(_) => Kind::INVALID_ARGUMENT,
            Self::PayloadTooLarge => Kind::PAYLOAD_TOO_LARGE,
            Self::Unauthenticated => Kind::UNAUTHENTICATED,
            Self::Unauthorized => Kind::UNAUTHORIZED,
            Self::CsrfFailed => Kind::CSRF_FAILED,
            Self::NotFound => Kind::NOT_FOUND,
            Self::MethodNotAllowed => Kind::METHOD_NOT_ALLOWED,
            Self::Timeout => Kind::TIMEOUT,
            Self::TooManyConnections => Kind::TOO_MANY_CONNECTIONS,
            Self::RequestTimeout => Kind::REQUEST_TIMEOUT,
            Self::TooManySockets => Kind::TOO_MANY_SOCKETS,
            Self::RateLimited { .. } => Kind::RATE_LIMITED,
            Self::Forbidden => Kind::FORBIDDEN,
            Self::AdmissionExpired => Kind::ADMISSION_EXPIRED,
            Self::IdempotencyRequired => Kind::IDEMPOTENCY_REQUIRED,
            Self::Upstream(e) => Kind::of_upstream(e),
            Self::Webhook(e) => Kind::of_webhook(e),
            Self::Maintenance => Kind::MAINTENANCE,
            Self::ConfirmationRequired => Kind::CONFIRMATION_REQUIRED,
        }
    }

    /// The HTTP status and the stable error code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        let k = self.kind();
        (k.http, k.code)
    }

    /// The gRPC column of the table: the code a gRPC caller gets. An upstream's client-class
    /// answer keeps its own code (OUT_OF_RANGE stays OUT_OF_RANGE where HTTP says 400).
    pub fn grpc_code(&self) -> Code {
        let k = self.kind();
        match self {
            Self::Upstream(UpstreamError::Status { status, .. }) if k.http.is_client_error() => {
                status.code()
            }
            _ => k.grpc,
        }
    }

    /// Seconds to wait before retrying (the `Retry-After` header); None when retrying cannot
    /// help. The table's, except a rate limit's: the limiter knows when the next token comes.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } => Some((*retry_after_secs).max(1)),
            _ => self.kind().retry_after,
        }
    }

    /// The message shown to clients (the table's `public` column); what it hides is logged.
    fn public_message(&self) -> String {
        self.log();
        match self.kind().public {
            Text(t) => t.to_owned(),
            UpstreamFailed => match self {
                Self::Upstream(UpstreamError::Status { upstream, .. }) => {
                    format!("the {upstream} service failed; retry shortly")
                }
                other => other.to_string(),
            },
            Own => match self {
                Self::Upstream(UpstreamError::Status { status, .. }) => status.message().to_owned(),
                other => other.to_string(),
            },
        }
    }

    /// Logs what the public message leaves out (store, key and upstream internals can name
    /// hosts).
    fn log(&self) {
        use webhooks::InboxError as I;
        match self {
            Self::Queue(QueueError::Unavailable(detail)) => {
                tracing::warn!(%detail, "store unavailable")
            }
            Self::Queue(e @ QueueError::NotReplicated { .. }) => {
                tracing::warn!(error = %e, "write not confirmed by the replicas in time")
            }
            Self::Queue(e @ (QueueError::Protocol(_) | QueueError::Key(_))) => {
                tracing::error!(error = %e, "internal error")
            }
            Self::Upstream(UpstreamError::Status { upstream, status })
                if self.kind().public == UpstreamFailed =>
            {
                tracing::warn!(
                    upstream,
                    code = ?status.code(),
                    message = status.message(),
                    "upstream failed"
                )
            }
            Self::Upstream(
                e @ (UpstreamError::Overloaded(_)
                | UpstreamError::CircuitOpen(_)
                | UpstreamError::Timeout(_)
                | UpstreamError::NotConfigured(_)),
            ) => {
                tracing::debug!(error = %e, "upstream call not made or not answered")
            }
            Self::Webhook(WebhookError::Inbox(I::Unavailable(detail))) => {
                tracing::warn!(%detail, "webhook inbox unavailable")
            }
            Self::Webhook(WebhookError::Inbox(e @ I::NotReplicated { .. })) => {
                tracing::warn!(error = %e, "webhook not confirmed by the replicas in time")
            }
            Self::Webhook(WebhookError::Inbox(e @ (I::Protocol(_) | I::Config(_)))) => {
                tracing::error!(error = %e, "webhook inbox error")
            }
            _ => {}
        }
    }

    /// The same error as a gRPC status (for the gateway's own gRPC services): the table's
    /// gRPC code, and details carrying a `common.v1.Error` whose `details[0].reason` is the
    /// HTTP API's error code (such as `NOT_READY`), so both APIs report the same thing.
    pub fn to_grpc_status(&self) -> tonic::Status {
        use proto::common::v1::{Error, ErrorDetail};
        let kind = self.kind();
        let message = self.public_message();
        let error = Error {
            code: kind.proto as i32,
            message: message.clone(),
            details: vec![ErrorDetail {
                reason: kind.code.to_owned(),
                ..Default::default()
            }],
            ..Default::default()
        };
        proto::status_with_error(self.grpc_code(), message, error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = self.public_message();
        let body = serde_json::json!({"error": {"code": code, "message": message}});
        let mut resp = (status, axum::Json(body)).into_response();
        // The table alone decides: a status (a 503 included) says nothing about retrying.
        if let Some(secs) = self.retry_after() {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

mod surfaces;
pub use surfaces::{grpc_of_ws_close, page, ws_close, Page, PAGE_RETRY_AFTER_SECS};

#[cfg(test)]
mod tests;
