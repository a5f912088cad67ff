//! The HTTP routes ([`app`], [`router`], [`metrics_router`]) and the admin token check. Every
//! route is added through [`Routes`], which gives it to the router and to the edge's
//! [`RouteTable`] in one call; the edge itself is [`crate::edge`].

use crate::edge::{Edge, RouteInfo, RouteTable};
use crate::ratelimit::Limit;
use crate::{
    access_codes, admin, audit, console, forward, handlers, openapi, page, resv_ws, webhook,
    AppState,
};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The routes of `--metrics-listen`: `/metrics` (everything else 404).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(state)
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

/// Admin endpoints need their own bearer token (compared in constant time) or an operator
/// console session with its CSRF token ([`console::authorize`]); the audit trail records which.
async fn require_admin(State(st): State<AppState>, req: Request, next: Next) -> Response {
    match console::authorize(&st, req.method(), req.headers()) {
        Ok(actor) => audit::with_actor(actor, next.run(req)).await,
        Err(e) => e.into_response(),
    }
}

/// Routes being added: each goes to the router and to the edge's table at once.
pub struct Routes {
    router: Router<AppState>,
    table: Vec<RouteInfo>,
    /// Whether the routes' handlers read the client's address ([`RouteInfo::peer`]).
    peer: bool,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    /// No routes yet.
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
            peer: false,
        }
    }

    /// No routes yet; those added get the client's address as axum's `ConnectInfo` (the
    /// audit trail records it).
    pub fn audited() -> Self {
        Self {
            peer: true,
            ..Self::new()
        }
    }

    /// Adds `pattern` with its methods.
    pub fn route(self, pattern: &'static str, methods: MethodRouter<AppState>) -> Self {
        self.add(pattern, None, methods)
    }

    /// Adds `pattern` with its methods; requests of `method` take the per-client `limit`
    /// (before the handler, so a refused request reads no body).
    pub fn limited(
        self, pattern: &'static str, method: &'static Method, limit: Limit,
        methods: MethodRouter<AppState>,
    ) -> Self {
        self.add(pattern, Some((method, limit)), methods)
    }

    fn add(
        mut self, pattern: &'static str, limit: Option<(&'static Method, Limit)>,
        methods: MethodRouter<AppState>,
    ) -> Self {
        self.router = self.router.route(pattern, methods);
        self.table.push(RouteInfo {
            pattern,
            limit,
            peer: self.peer,
        });
        self
    }

    /// Adds `other`'s routes.
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// Puts `f`'s middleware around the routes added so far (as `Router::route_layer`).
    pub fn wrap(mut self, f: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Self {
        self.router = f(self.router);
        self
    }

    fn build(self, state: AppState) -> (Router, RouteTable) {
        let mut table = RouteTable::default();
        for info in self.table {
            table.insert(info);
        }
        let router = self
            .router
            .fallback(handlers::not_found)
            .method_not_allowed_fallback(handlers::method_not_allowed)
            .with_state(state);
        (router, table)
    }
}

/// The public listener's service: [`router`] behind the [`Edge`].
pub fn app(state: AppState) -> Edge {
    let (router, table) = routes(&state).build(state.clone());
    Edge::new(state, router, table)
}

/// The gateway's routes without the edge (in-process use: the OpenAPI test lists them).
pub fn router(state: AppState) -> Router {
    routes(&state).build(state).0
}

fn routes(state: &AppState) -> Routes {
    let admin = Routes::audited()
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
        .wrap(|r| r.route_layer(middleware::from_fn_with_state(state.clone(), require_admin)));
    // Webhook bodies get their own limit (256 KiB by default), not the global 16 KiB: this
    // route-level layer runs after the edge's and replaces its limit.
    let hook_limit = DefaultBodyLimit::max(
        state
            .webhooks
            .as_ref()
            .map_or(256 * 1024, |w| w.max_body_bytes),
    );
    let (join, status) = (Limit::Join, Limit::Status);
    Routes::new()
        .limited(
            "/api/v1/queue/join",
            &Method::POST,
            join,
            post(handlers::join),
        )
        .limited(
            "/api/v1/queue/status",
            &Method::GET,
            status,
            get(handlers::status),
        )
        .limited(
            "/api/v1/queue/challenge",
            &Method::GET,
            status,
            get(handlers::challenge),
        )
        .route("/api/v1/queue/enter", post(handlers::enter))
        .route("/api/v1/queue", delete(handlers::leave))
        .limited(
            "/api/v1/queue/ws",
            &Method::GET,
            status,
            get(handlers::websocket),
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
        .route(
            "/api/v1/payments/intents",
            post(forward::create_payment_intent),
        )
        .route(
            "/webhooks/payments",
            post(webhook::payments).layer(hook_limit),
        )
        .route("/webhooks/stripe", post(webhook::stripe).layer(hook_limit))
        .route("/.well-known/jwks.json", get(handlers::jwks))
        .route("/e/{event_id}", get(page::room_page))
        .limited(
            "/e/{event_id}/join",
            &Method::POST,
            join,
            post(page::nojs::join),
        )
        .route("/e/{event_id}/enter", post(page::nojs::enter))
        .route("/favicon.ico", get(page::favicon))
        .route("/", get(page::index))
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(admin)
        // The operator console: its page, sign-in and live WebSocket (its own session checks).
        .route("/admin", get(console::page))
        .route("/admin/sign-in", post(console::sign_in))
        .route("/admin/sign-out", post(console::sign_out))
        .route("/admin/ws", get(console::websocket))
        .route("/admin/console.js", get(console::script))
        .route("/admin/console.css", get(console::style))
}
