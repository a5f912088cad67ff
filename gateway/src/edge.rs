//! The edge of every public HTTP request, in one function ([`Edge::handle`]): the request id,
//! the `http` span, the body limit, the maintenance gate, the per-client rate limits, the
//! request timeout and the latency metric, around the router.
//!
//! Written by hand rather than as tower layers because it measurably costs less: axum applies
//! `Router::layer` and `route_layer` to every route separately, so each layer added a boxed
//! service clone per request, and `from_fn` a boxed future, a state clone and a `Next`. With
//! tower-http's request-id and trace layers and two `from_fn` layers, a `/healthz` took 26,900
//! instructions in the gateway against 7,450 for a bare hyper server (callgrind;
//! docs/benchmarks.md, "The edge in one function").
//!
//! The edge knows a route before the router runs from [`RouteTable`], which `routes.rs` fills
//! with the same calls that add the routes to the router, so the two cannot differ.

use crate::error::ApiError;
use crate::metrics::{self, HttpLabels};
use crate::ratelimit::Limit;
use crate::server::{App, BodyWait};
use crate::{page, AppState};
use axum::body::HttpBody;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, HeaderValue, Method, Version};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::future::{Either, FutureExt};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt;
use tracing::Instrument;

/// The request id header: kept when the client sent one, else a new UUID v4; the answer
/// carries it back, and logs and the audit trail name it.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the edge knows of a route before the router runs.
#[derive(Debug, Clone, Copy)]
pub struct RouteInfo {
    /// The route's pattern (the metrics label), e.g. `/admin/v1/events/{event_id}`.
    pub pattern: &'static str,
    /// The per-client rate limit of one method of the route, if any.
    pub limit: Option<(&'static Method, Limit)>,
    /// Whether its handlers read the client's address (axum's `ConnectInfo`: the admin routes'
    /// audit trail). Only these requests carry it: an extension costs an allocation and a
    /// hash-map insert per request, which the hot routes do not pay.
    pub peer: bool,
}

/// The routes' patterns, matched as the router matches them (axum uses the same matchit).
#[derive(Default)]
pub struct RouteTable(matchit::Router<RouteInfo>);

impl RouteTable {
    /// Adds a route; panics on a pattern the router would refuse too (a programming error).
    pub fn insert(&mut self, info: RouteInfo) {
        if let Err(e) = self.0.insert(info.pattern, info) {
            panic!("route {}: {e}", info.pattern);
        }
    }

    /// The route `path` takes, if any.
    pub fn at(&self, path: &str) -> Option<RouteInfo> {
        self.0.at(path).ok().map(|m| *m.value)
    }
}

/// The public listener's service: the router behind the edge.
#[derive(Clone)]
pub struct Edge(Arc<Inner>);

struct Inner {
    st: AppState,
    router: Router,
    routes: RouteTable,
    body_limit: DefaultBodyLimit,
}

impl Edge {
    /// `router` behind the edge; `routes` must be the table filled with its routes.
    pub fn new(st: AppState, router: Router, routes: RouteTable) -> Self {
        let body_limit = DefaultBodyLimit::max(st.limits.max_body_bytes);
        Self(Arc::new(Inner {
            st,
            router,
            routes,
            body_limit,
        }))
    }

    /// Answers one request from `peer`; `wait` tells whether its handler is waiting for body
    /// bytes.
    ///
    /// What can be done before the router runs is done here, outside the returned future, and
    /// the router's part is a plain combinator future: the future is moved into the connection's
    /// box once per request, and kept under mimalloc's small-size limit (1 KiB) it costs a copy
    /// and an allocation less (callgrind: `memcpy` was a tenth of a `/healthz`).
    pub fn handle(
        &self, mut req: Request, wait: BodyWait, peer: SocketAddr,
    ) -> impl Future<Output = Response> + Send + 'static {
        let start = Instant::now();
        let route = self.0.routes.at(req.uri().path());
        let id = request_id(&mut req);
        let span = tracing::info_span!(
            "http",
            method = %req.method(),
            // The path only: query strings can carry tokens, and headers are never logged.
            path = %req.uri().path(),
            request_id = id.to_str().unwrap_or(""),
        );
        let method = metrics::method_label(req.method());
        // Routes that set their own (the webhooks) replace this one, as axum's layers did. A
        // request without a body (most of them: status reads, health checks) needs none.
        if req.body().size_hint().upper() != Some(0) {
            self.0.body_limit.apply(&mut req);
        }
        if route.is_some_and(|r| r.peer) {
            req.extensions_mut().insert(ConnectInfo(peer));
        }
        let answer = self
            .0
            .answer(route, req, wait, peer)
            .instrument(span.clone());
        let edge = self.0.clone();
        async move {
            let mut resp = answer.await;
            resp.headers_mut().entry(X_REQUEST_ID).or_insert(id);
            let status = resp.status();
            let elapsed = start.elapsed();
            let labels = HttpLabels {
                method,
                route: route.map_or("unmatched", |r| r.pattern),
                status: status.as_u16(),
            };
            edge.st
                .metrics
                .http
                .get_or_create(&labels)
                .observe(elapsed.as_secs_f64());
            let _entered = span.enter();
            let latency_ms = elapsed.as_millis() as u64;
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), latency_ms, "response failed");
            } else {
                tracing::debug!(
                    status = status.as_u16(),
                    latency_ms,
                    "finished processing request"
                );
            }
            resp
        }
    }
}

impl App for Edge {
    fn handle(
        &self, req: Request, wait: BodyWait, peer: SocketAddr,
    ) -> impl Future<Output = Response> + Send + 'static {
        Edge::handle(self, req, wait, peer)
    }
}

impl Inner {
    /// The gates of a routed request, then the router within the request timeout.
    fn answer(
        &self, route: Option<RouteInfo>, req: Request, wait: BodyWait, peer: SocketAddr,
    ) -> impl Future<Output = Response> + Send + 'static {
        if let Some(refused) = route.and_then(|r| self.gate(r, &req, peer)) {
            return Either::Left(std::future::ready(refused));
        }
        let http1 = req.version() <= Version::HTTP_11;
        let routed = self.router.clone().oneshot(req);
        let timed = tokio::time::timeout(self.st.limits.request_timeout, routed);
        Either::Right(timed.map(move |answer| match answer {
            Ok(Ok(r)) => r,
            Ok(Err(never)) => match never {},
            // The handler was waiting for body bytes: the client is late, not the gateway. The
            // unread rest of the body makes the HTTP/1 connection unusable, so it closes.
            Err(_) if wait.waiting() => {
                let mut r = ApiError::RequestTimeout.into_response();
                if http1 {
                    r.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                r
            }
            Err(_) => ApiError::Timeout.into_response(),
        }))
    }

    /// The maintenance gate and the route's rate limit: an answer refuses the request.
    fn gate(&self, route: RouteInfo, req: &Request, peer: SocketAddr) -> Option<Response> {
        if let Some(r) = maintenance_answer(&self.st, req) {
            return Some(r);
        }
        let (method, limit) = route.limit?;
        if req.method() != method {
            return None;
        }
        self.st
            .rate_limits
            .check(limit, peer, req.headers())
            .err()
            .map(IntoResponse::into_response)
    }
}

/// The request's id, set on the request when the client sent none.
fn request_id(req: &mut Request) -> HeaderValue {
    if let Some(id) = req.headers().get(&X_REQUEST_ID) {
        return id.clone();
    }
    let mut buf = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    let id = HeaderValue::from_str(text).expect("a UUID is a valid header value");
    req.headers_mut().insert(X_REQUEST_ID, id.clone());
    id
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
