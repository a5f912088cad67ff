//! The OpenAPI document, generated from code: `GET /openapi.json` serves it and
//! docs/openapi.yaml is this document as YAML (tests/openapi.rs fails when that file is stale;
//! `UPDATE_OPENAPI=1 cargo test -p gateway --test openapi` or
//! `cargo run -p gateway --example openapi > docs/openapi.yaml` rewrites it).
//!
//! Adding an endpoint:
//! 1. declare it with `operation!` (`paths/common.rs`: a `#[utoipa::path]` doc function) in
//!    `paths.rs` (or `paths/<module>.rs`), in the module and with the name of its handler
//!    (`paths::handlers::join` documents `handlers::join`, `paths::page::nojs::join` documents
//!    `page::nojs::join`);
//! 2. list that function in `paths(...)` of [`ApiDoc`] below, and any new schema in
//!    `schemas/` (a `json_schema!` for a body built with `json!`, or `#[derive(ToSchema)]` on
//!    the real type) in `components(schemas(...))`;
//! 3. route it in `routes.rs`: tests/openapi.rs fails while the
//!    documented (method, path) set and the routed one differ;
//! 4. regenerate docs/openapi.yaml and run the API fuzzer (tests/api_fuzz.rs).
//!
//! Request bodies, queries and paths must be as strict in the schema as in the server: the
//! fuzzer sends every value the schema allows and expects it accepted (and the reverse).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;

use utoipa::openapi::{self, RefOr};
use utoipa::{Modify, OpenApi};

/// `GET /openapi.json`: [`document`] as JSON, built once.
pub async fn openapi_json() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOC.get_or_init(|| {
        document()
            .to_json()
            .expect("the OpenAPI document serialises")
    });
    ([(header::CONTENT_TYPE, "application/json")], body.as_str()).into_response()
}

/// A schema component written as JSON Schema, for a body the server builds with `json!` or
/// that is only parsed in part (webhooks): the type exists for the document alone.
macro_rules! json_schema {
    ($name:ident, $json:expr) => {
        pub struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                serde_json::from_str($json).expect(concat!(stringify!($name), " is a schema"))
            }
        }
        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }
    };
}

/// A response component (an answer several operations share): an OpenAPI response object
/// that `$parse` makes of `$input`.
macro_rules! response_component {
    ($name:ident, $parse:path, $input:expr) => {
        pub struct $name;
        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, utoipa::openapi::RefOr<utoipa::openapi::Response>) {
                let r = $parse($input).expect(concat!(stringify!($name), " is a response"));
                (stringify!($name), r)
            }
        }
    };
}

/// A response component built as a `serde_json::Value` (by the helpers of `responses.rs`).
macro_rules! value_response {
    ($name:ident, $value:expr) => {
        response_component!($name, serde_json::from_value, $value);
    };
}

/// A response component written as JSON text, parsed straight into the response (through a
/// `Value`, whose map sorts keys, the properties would lose their order).
macro_rules! json_response {
    ($name:ident, $json:expr) => {
        response_component!($name, serde_json::from_str, $json);
    };
}

mod paths;
pub mod responses;
pub mod schemas;

use schemas::*;

/// The gateway's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        paths::handlers::join,
        paths::handlers::challenge,
        paths::handlers::status,
        paths::handlers::enter,
        paths::handlers::leave,
        paths::handlers::websocket,
        paths::forward::availability,
        paths::forward::create_reservation,
        paths::forward::get_reservation,
        paths::resv_ws::websocket,
        paths::forward::create_payment_intent,
        paths::handlers::jwks,
        paths::page::room_page,
        paths::page::nojs::join,
        paths::page::nojs::enter,
        paths::page::favicon,
        paths::page::index,
        paths::handlers::put_event,
        paths::handlers::get_event,
        paths::access_codes::mint,
        paths::access_codes::revoke,
        paths::admin::post_event_action,
        paths::admin::post_system_action,
        paths::admin::get_health,
        paths::webhook::payments,
        paths::webhook::stripe,
        paths::webhook::dlq_list,
        paths::webhook::dlq_get,
        paths::webhook::dlq_retry,
        paths::webhook::dlq_resolve,
        paths::audit::list,
        paths::console::page,
        paths::console::sign_in,
        paths::console::sign_out,
        paths::console::websocket,
        paths::console::script,
        paths::console::style,
        paths::handlers::healthz,
        paths::handlers::readyz,
        paths::handlers::metrics,
        paths::openapi::openapi_json
    ),
    components(
        schemas(PaymentWebhook, StripeEvent, WebhookEnvelope, AuditEntry, DeadLetter, EventId, Timestamp, Status, Position, EtaSeconds, ExpiresAt, Error, crate::handlers::JoinBody, JoinResponse, StatusResponse, EnterResponse, Jwks, EventConfig, QueueingMethod, PageSettings, JoinChallenge, JoinChallengeIssued, crate::handlers::ChallengeAnswer, TargetUrl, EventView, EventStats, ActionRequest, SystemActionRequest, SystemModes, ActionResult, HealthStatus, SystemHealth, WsMessage, WsPositionChanged, WsAdmissionReady, WsAdmissionsPaused, WsAdmissionsResumed, WsReservationMessage, WsReservationStatus, WsHoldExpiring, WsPaymentConfirmed, WsTokenExpired, WsEventSoldOut, WsMaintenance, WsMaintenanceEnded, Money, Seat, AvailabilityResponse, ReservationStatus, ReservationRequest, ReservationResponse, Reservation, PaymentIntentRequest, PaymentIntentResponse, ActionResponse, StripeWebhook, DeadLetterList, ResolveRequest, AuditList, MintAccessCodesRequest, AccessCodesMinted, RevokeAccessCodesRequest, AccessCodesRevoked, ConsoleSignIn, ConsoleMessage, ConsoleHistory, ConsoleSample, Healthz, Readiness),
        responses(responses::WebhookAccepted, responses::InvalidSignature, responses::InvalidPayload, responses::WebhooksDisabled, responses::RequestTimeout, responses::ChallengeRefused, responses::RateLimited, responses::TooManySockets, responses::WebhookUnavailable, responses::DeadLetterRetried, responses::AlreadyResolved, responses::ForwardedError, responses::TooManyConnections, responses::InvalidAssertion, responses::InvalidArgument, responses::BadWaitingToken, responses::Unauthorized, responses::CsrfFailed, responses::EventNotFound, responses::NotFound, responses::MethodNotAllowed, responses::EventClosed, responses::PayloadTooLarge, responses::Internal, responses::Unavailable)
    ),
    modifiers(&Document)
)]
pub struct ApiDoc;

/// The document as served and committed.
pub fn document() -> openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as docs/openapi.yaml holds it.
pub fn yaml() -> String {
    document().to_yaml().expect("the document serialises")
}

/// What the derive cannot say: info, servers, tags, security schemes, the metrics
/// listener's own server, and the error codes (from [`crate::error::codes`]).
struct Document;

const INFO: &str = r##"{
 "title": "Admission gateway API",
 "version": "1.0.0",
 "summary": "Virtual waiting room in front of ticket sales.",
 "description": "Queue API for browsers and apps (with a WebSocket stream of positions), the\nwaiting-room page, admin API for operators, and operations endpoints. See\ndocs/api.md for the prose reference.\n\nEvery error response has the body `{\"error\": {\"code\": \"...\", \"message\": \"...\"}}`,\nexcept those of the HTML pages (/e/{event_id}, its no-JS form posts and the\noperator console's /admin), which are HTML.\nEvery response carries an `x-request-id` header (echoed from the request when\nit sent one, otherwise generated). Every 503 JSON error carries `Retry-After: 1`\n(the HTML waiting-room page's 503 carries `Retry-After: 5`), except 503\nMAINTENANCE: while an operator's MAINTENANCE_MODE lasts, every /api/v1/queue\nroute answers 503 MAINTENANCE and the pages (/, /e/{event_id}) an HTML\nmaintenance page, both with `Retry-After: 30`; places are kept.\nTimestamps are RFC 3339 UTC strings.\nA path that matches no route gets 404 NOT_FOUND (response `NotFound`); a\nroute called with the wrong method gets 405 METHOD_NOT_ALLOWED.\n",
 "license": {
  "name": "Apache-2.0",
  "identifier": "Apache-2.0"
 }
}"##;
const SERVERS: &str = r##"[
 {
  "url": "http://127.0.0.1:8080",
  "description": "Local gateway (default settings)"
 }
]"##;
const TAGS: &str = r##"[
 {
  "name": "queue",
  "description": "Public queue API."
 },
 {
  "name": "forwarded",
  "description": "Admitted users' requests forwarded over gRPC to the backing services (reservation token)."
 },
 {
  "name": "pages",
  "description": "The waiting-room page (HTML)."
 },
 {
  "name": "admin",
  "description": "Event configuration and control (admin token, or an operator console session)."
 },
 {
  "name": "console",
  "description": "The operator console at /admin (HTML; a session cookie and CSRF token over the admin API)."
 },
 {
  "name": "webhooks",
  "description": "Signed payment webhooks from providers (verified, stored durably, forwarded)."
 },
 {
  "name": "operations",
  "description": "Health, readiness and metrics."
 }
]"##;
const SECURITY_SCHEMES: &str = r##"{
 "waitingToken": {
  "type": "http",
  "scheme": "bearer",
  "description": "The waiting_token returned by join (opaque, HMAC-SHA256 signed)."
 },
 "admissionToken": {
  "type": "http",
  "scheme": "bearer",
  "bearerFormat": "JWT",
  "description": "The reservation_token returned by enter: an EdDSA JWT whose aud must be the\nevent of the request (checked before any upstream call; missing 401, other\nevent, forged or expired 403).\n"
 },
 "adminToken": {
  "type": "http",
  "scheme": "bearer",
  "description": "The value of the gateway's --admin-token flag. Without it the admin API answers 401."
 },
 "consoleSession": {
  "type": "apiKey",
  "in": "cookie",
  "name": "wr_console",
  "description": "An operator console session (POST /admin/sign-in; HttpOnly, SameSite=Strict,\nPath=/admin). Every /admin/v1 route accepts it instead of the admin token;\nevery method but GET and HEAD then also needs the session's CSRF token in the\nX-CSRF-Token header (the console page's <meta name=\"csrf-token\">), else 403\nCSRF_FAILED and nothing changes. A request with an Authorization bearer is\njudged by that token alone.\n"
 }
}"##;
const METRICS_SERVERS: &str = r##"[
 {
  "url": "http://127.0.0.1:9464",
  "description": "the gateway's --metrics-listen (0.0.0.0:9464 in containers); the public port answers 404"
 }
]"##;

impl Modify for Document {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let parse = |what: &str, json: &str| -> serde_json::Value {
            serde_json::from_str(json).unwrap_or_else(|e| panic!("{what}: {e}"))
        };
        doc.info = serde_json::from_value(parse("info", INFO)).expect("info");
        doc.servers = Some(serde_json::from_value(parse("servers", SERVERS)).expect("servers"));
        doc.tags = Some(serde_json::from_value(parse("tags", TAGS)).expect("tags"));
        let components = doc.components.get_or_insert_with(Default::default);
        components.security_schemes =
            serde_json::from_value(parse("security", SECURITY_SCHEMES)).expect("security");
        components.schemas.insert("Error".into(), error_schema());
        if let Some(item) = doc.paths.paths.get_mut("/metrics") {
            item.servers =
                Some(serde_json::from_value(parse("metrics", METRICS_SERVERS)).expect("servers"));
        }
    }
}

/// `{"error": {"code", "message"}}`, with every code the gateway answers with.
fn error_schema() -> RefOr<openapi::schema::Schema> {
    serde_json::from_value(serde_json::json!({
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Stable; what a client branches on.",
                        "enum": crate::error::codes().collect::<Vec<_>>(),
                    },
                    "message": {"type": "string", "description": "Human-readable; may change."}
                }
            }
        }
    }))
    .expect("the error schema")
}

/// Only so that `Error` can be named in path declarations; [`Document`] fills it in.
pub struct Error;
impl utoipa::PartialSchema for Error {
    fn schema() -> RefOr<openapi::schema::Schema> {
        error_schema()
    }
}
impl utoipa::ToSchema for Error {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Error")
    }
}
