//! The HTTP routes ([`router`], [`metrics_router`]) and their middleware: the edge's timing
//! and request timeout, the maintenance gate and the admin token.

use crate::{
    access_codes, admin, audit, console, error, forward, handlers, metrics, page, ratelimit,
    resv_ws, server, webhook, AppState,
};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use error::ApiError;
use metrics::HttpLabels;
use sha2::{Digest, Sha256};
use std::time::Instant;
use subtle::ConstantTimeEq;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// The routes of `--metrics-listen`: `/metrics` (everything else 404).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(state)
}

/// Latency metrics, the maintenance gate and the request timeout, around every routed
/// request. One middleware rather than one each: every `from_fn` layer costs a request a boxed
/// future and a clone of the state.
async fn edge(
    State(st): State<AppState>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = metrics::method_label(req.method());
    let route = matched.map_or("unmatched", |m| metrics::route_label(m.as_str()));
    let resp = match maintenance_answer(&st, &req) {
        Some(r) => r,
        None => timed(&st, next, req).await,
    };
    let labels = HttpLabels {
        method,
        route,
        status: resp.status().as_u16(),
    };
    st.metrics
        .http
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    resp
}

/// The rest of the request's handling, within the request timeout.
async fn timed(st: &AppState, next: Next, req: Request) -> Response {
    let body_wait = req.extensions().get::<server::BodyWait>().cloned();
    let http1 = req.version() <= axum::http::Version::HTTP_11;
    match tokio::time::timeout(st.limits.request_timeout, next.run(req)).await {
        Ok(r) => r,
        // The handler was waiting for body bytes: the client is late, not the gateway. The
        // unread rest of the body makes the HTTP/1 connection unusable, so it closes.
        Err(_) if body_wait.is_some_and(|w| w.waiting()) => {
            let mut r = ApiError::RequestTimeout.into_response();
            if http1 {
                r.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
            }
            r
        }
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// Whether `given` is the admin token (compared in constant time, as SHA-256 digests); false
/// when the admin API is disabled (no `--admin-token`).
pub fn admin_token_ok(st: &AppState, given: Option<&str>) -> bool {
    match (st.admin_token_hash, given) {
        (Some(want), Some(given)) => {
            let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
            bool::from(want.ct_eq(&given))
        }
        _ => false,
    }
}

/// The maintenance gate: while MAINTENANCE_MODE is in force, the queue API
/// (`/api/v1/queue...`) answers 503 `MAINTENANCE` with Retry-After, and the pages (`/`,
/// `/e/...`) a maintenance page; None lets the request through.
fn maintenance_answer(st: &AppState, req: &Request) -> Option<Response> {
    if !st.system.maintenance() {
        return None;
    }
    let path = req.uri().path();
    if path.starts_with("/api/v1/queue") {
        Some(ApiError::Maintenance.into_response())
    } else if path == "/" || path.starts_with("/e/") {
        Some(page::maintenance_page())
    } else {
        None
    }
}

/// Admin endpoints need their own bearer token (compared in constant time) or an operator
/// console session with its CSRF token ([`console::authorize`]); the audit trail records which.
async fn require_admin(State(st): State<AppState>, req: Request, next: Next) -> Response {
    match console::authorize(&st, req.method(), req.headers()) {
        Ok(actor) => audit::with_actor(actor, next.run(req)).await,
        Err(e) => e.into_response(),
    }
}

/// The gateway's routes with their middleware.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route(
            "/admin/v1/events/{event_id}",
            put(handlers::put_event).get(handlers::get_event),
        )
        .route(
            "/admin/v1/events/{event_id}/actions",
            post(admin::post_event_action),
        )
        .route(
            "/admin/v1/events/{event_id}/access-codes",
            post(access_codes::mint),
        )
        .route(
            "/admin/v1/events/{event_id}/access-codes/revoke",
            post(access_codes::revoke),
        )
        .route("/admin/v1/actions", post(admin::post_system_action))
        .route("/admin/v1/health", get(admin::get_health))
        .route("/admin/v1/dlq", get(webhook::dlq_list))
        .route("/admin/v1/dlq/{id}", get(webhook::dlq_get))
        .route("/admin/v1/dlq/{id}/retry", post(webhook::dlq_retry))
        .route("/admin/v1/dlq/{id}/resolve", post(webhook::dlq_resolve))
        .route("/admin/v1/audit", get(audit::list))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    let limits = state.limits.clone();
    // Webhook bodies get their own limit (256 KiB by default), not the global 16 KiB: this
    // route-level layer runs after the router-wide one and replaces its limit.
    let hook_limit = DefaultBodyLimit::max(
        state
            .webhooks
            .as_ref()
            .map_or(256 * 1024, |w| w.max_body_bytes),
    );
    // Per-route, inside `edge`: a 429 is timed and counted like any other answer.
    let rl = state.rate_limits.clone();
    let join_limit = middleware::from_fn_with_state(rl.clone(), ratelimit::limit_join);
    let status_limit = middleware::from_fn_with_state(rl, ratelimit::limit_status);
    Router::new()
        .route(
            "/api/v1/queue/join",
            post(handlers::join).route_layer(join_limit.clone()),
        )
        .route(
            "/api/v1/queue/status",
            get(handlers::status).route_layer(status_limit.clone()),
        )
        .route(
            "/api/v1/queue/challenge",
            get(handlers::challenge).route_layer(status_limit.clone()),
        )
        .route("/api/v1/queue/enter", post(handlers::enter))
        .route("/api/v1/queue", delete(handlers::leave))
        .route(
            "/api/v1/queue/ws",
            get(handlers::websocket).route_layer(status_limit),
        )
        .route(
            "/api/v1/events/{event_id}/availability",
            get(forward::availability),
        )
        .route("/api/v1/reservations", post(forward::create_reservation))
        .route(
            "/api/v1/reservations/{reservation_id}/ws",
            get(resv_ws::websocket),
        )
        .route(
            "/api/v1/reservations/{reservation_id}",
            get(forward::get_reservation),
        )
        .route("/api/v1/payments/intents", post(forward::create_payment_intent))
        .route(
            "/webhooks/payments",
            post(webhook::payments).layer(hook_limit),
        )
        .route("/webhooks/stripe", post(webhook::stripe).layer(hook_limit))
        .route("/.well-known/jwks.json", get(handlers::jwks))
        .route("/e/{event_id}", get(page::room_page))
        .route(
            "/e/{event_id}/join",
            post(page::nojs::join).route_layer(join_limit.clone()),
        )
        .route("/e/{event_id}/enter", post(page::nojs::enter))
        .route("/favicon.ico", get(page::favicon))
        .route("/", get(page::index))
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/openapi.json", get(handlers::openapi_json))
        .merge(admin)
        .merge(console::routes())
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .route_layer(middleware::from_fn_with_state(state.clone(), edge))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    // The path only: query strings can carry tokens, and headers are never logged.
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
        .with_state(state)
}
