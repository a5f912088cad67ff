//! The hyper edge of the admission gateway: the queue API, the admin API (with its audit trail),
//! JWKS and health over HTTP, metrics on their own listener, the forwarded API to the backing services (gRPC upstreams), the gRPC
//! QueueService, plus the background admission loops.
//!
//! [`Gateway::build`] turns a [`Config`] into a running set of parts; [`Gateway::serve`] serves
//! them on an already-bound listener until a shutdown future resolves, so tests bind port 0
//! and the binary only wires. Redis is reached through the `queue` and `webhooks` crates, and
//! for the audit trail and the rate-limit sync through `redis-layer` directly.

pub mod admin;
pub mod admin_grpc;
pub mod admin_health;
pub mod admission;
pub mod audit;
pub mod bff;
pub mod config;
pub mod console;
pub mod error;
pub mod extract;
pub mod forward;
pub mod grpc;
pub mod handlers;
pub mod metrics;
pub mod ratelimit;
pub mod ratesync;
pub mod resv;
pub mod resv_grpc;
pub mod resv_ws;
pub mod server;
pub mod system;
pub mod upstream;
pub mod webhook;

pub use config::{Config, Limits};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use error::ApiError;
use metrics::{HttpLabels, Metrics};
use queue::clock::{Clock, SystemClock};
use queue::model::EventConfig;
use queue::room::WaitingRoom;
use queue::store::{BatchOptions, Batched, MemoryStore, RedisOptions, RedisStore, Store};
use queue::token::{AdmissionSigner, UserAssertions, WaitingTokens};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// The id of the event preconfigured in the embedded in-memory store.
pub const DEMO_EVENT: &str = "demo";

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The waiting room.
    pub room: WaitingRoom,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// SHA-256 of the admin token; None disables the admin API.
    pub admin_token_hash: Option<[u8; 32]>,
    /// Server limits.
    pub limits: Limits,
    /// The WebSocket fan-out.
    pub hub: ws::Hub,
    /// Connection permits (HTTP connections and WebSockets alike).
    pub permits: Arc<tokio::sync::Semaphore>,
    /// The backing services the forwarded API calls (behind an Arc: the state is cloned per
    /// request, the channels need not be).
    pub upstreams: Arc<upstream::Upstreams>,
    /// Payment webhooks (None without a webhook secret).
    pub webhooks: Option<Arc<webhook::Webhooks>>,
    /// Per-client rate limits of joins and status reads.
    pub rate_limits: Arc<ratelimit::RateLimits>,
    /// The admin audit trail: every admin change goes through [`audit::Audit::record`].
    pub audit: Arc<audit::Audit>,
    /// The cross-replica sync of the rate limits (None: off, or no Redis).
    pub rate_sync: Option<Arc<ratesync::RateSync>>,
    /// The system-wide modes (MAINTENANCE_MODE, CIRCUIT_BREAKER) that every replica follows.
    pub system: Arc<system::SystemModes>,
    /// Join challenges (proof of work) of the events that ask for one.
    pub challenges: Arc<queue::challenge::Challenges>,
    /// Live reservation updates: the replica's one subscription and its watchers.
    pub resv: Arc<resv::ResvUpdates>,
    /// The operator console (`/admin`): its session keys and sampled numbers.
    pub console: Arc<console::Console>,
}

/// A built gateway: state plus what the background loops need.
pub struct Gateway {
    /// Shared state (also handy for tests).
    pub state: AppState,
    tick: Duration,
    sweep_every: Duration,
    grpc: Option<TcpListener>,
    metrics_listener: Option<TcpListener>,
}

impl Gateway {
    /// Builds the store, keys and state from `config` (connecting to Redis when configured).
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`build`](Self::build), with an injected clock.
    pub async fn build_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let store: Arc<dyn Store> = match &config.redis_url {
            Some(url) => {
                let mut opts = RedisOptions::new(url.clone());
                opts.command_timeout = Duration::from_millis(config.redis_timeout_ms.max(1));
                opts.pool_size = config.redis_pool_size;
                opts.wait_replicas = config.redis_wait_replicas;
                opts.wait_timeout = Duration::from_millis(config.redis_wait_timeout_ms.max(1));
                let redis: Arc<dyn Store> = Arc::new(RedisStore::connect(&opts).await?);
                // Joins and status reads of one event are group-committed: one script call and
                // one round trip per batch instead of per request.
                Arc::new(Batched::new(
                    redis,
                    BatchOptions {
                        max_batch: config.redis_batch_max as usize,
                        max_pending: config.redis_batch_pending as usize,
                        max_in_flight: config.redis_batch_in_flight as usize,
                    },
                ))
            }
            None => {
                let store = MemoryStore::new();
                let demo = queue::ids::EventId::parse(DEMO_EVENT)?;
                store
                    .configure(&demo, &EventConfig::new(2, 100), clock.now_ms())
                    .await?;
                tracing::info!(
                    event = DEMO_EVENT,
                    "no --redis-url: embedded in-memory store with a demo event"
                );
                Arc::new(store)
            }
        };
        let waiting = if config.token_secret.is_empty() {
            tracing::warn!(
                "no --token-secret: waiting tokens use an ephemeral key and die with this process"
            );
            WaitingTokens::ephemeral()
        } else {
            WaitingTokens::from_secrets(&config.token_secret).map_err(|e| {
                anyhow::anyhow!(
                    "--token-secret: {e} (values are split on commas: a secret cannot contain one)"
                )
            })?
        }
        .with_clock(clock.clone());
        let pems = config.signing_key_pems()?;
        let signer = if pems.is_empty() {
            tracing::warn!(
                "no --signing-key: admission tokens use an ephemeral key and die with this process"
            );
            AdmissionSigner::ephemeral()
        } else {
            AdmissionSigner::from_pems(&pems)?
        };
        // Key ids, not keys: they are public (in every token) and tell a rotation's steps apart.
        tracing::info!(
            waiting_token_kids = ?waiting.key_ids(),
            signing_kids = ?signer.kids(),
            "keys loaded (the first of each issues, all verify)"
        );
        if config.admin_token.is_none() {
            tracing::warn!("no --admin-token: the admin API is disabled");
        }
        let rate_limits = Arc::new(ratelimit::RateLimits::new(
            config.join_rate_per_ip,
            config.status_rate_per_ip,
            config.trusted_proxy.clone(),
            clock.clone(),
        ));
        // The audit trail and the rate-limit sync share one small connection of their own.
        let ops_redis = match &config.redis_url {
            Some(url) => {
                let mut opts = RedisOptions::new(url.clone());
                opts.command_timeout = Duration::from_millis(config.redis_timeout_ms.max(1));
                opts.pool_size = 1;
                opts.wait_replicas = config.redis_wait_replicas;
                opts.wait_timeout = Duration::from_millis(config.redis_wait_timeout_ms.max(1));
                Some(Arc::new(redis_layer::Redis::connect(&opts).await?))
            }
            None => None,
        };
        let audit = Arc::new(match &ops_redis {
            Some(r) => audit::Audit::redis(r.clone(), config.audit_max_entries, clock.clone()),
            None => audit::Audit::memory(config.audit_max_entries, clock.clone()),
        });
        let rate_sync = match &ops_redis {
            Some(r)
                if config.rate_sync_ms > 0
                    && (rate_limits.join.is_some() || rate_limits.status.is_some()) =>
            {
                Some(Arc::new(ratesync::RateSync::new(
                    r.clone(),
                    rate_limits.clone(),
                    clock.clone(),
                    Duration::from_millis(config.rate_sync_ms),
                )))
            }
            _ => None,
        };
        let challenges = Arc::new(queue::challenge::Challenges::new(
            store.clone(),
            clock.clone(),
            &waiting,
            config.join_challenge_ttl_seconds,
        ));
        let mut room = WaitingRoom::new(store, clock.clone(), waiting, signer);
        if !config.user_assertion_key.is_empty() {
            let assertions = UserAssertions::from_keys(&config.user_assertion_key).map_err(|e| {
                anyhow::anyhow!(
                    "--user-assertion-key: {e} (values are split on commas: a key cannot contain one)"
                )
            })?;
            // A count, never the keys.
            tracing::info!(
                keys = assertions.key_count(),
                "user assertions verified (HS256)"
            );
            room = room.with_user_assertions(assertions);
        }
        let limits = config.limits();
        let metrics = Arc::new(Metrics::new());
        let upstreams = Arc::new(upstream::Upstreams::from_config(config, metrics.clone())?);
        let webhooks = webhook::Webhooks::from_config(config, metrics.clone()).await?;
        let system_redis = config.redis_url.as_ref().map(|url| {
            let mut opts = RedisOptions::new(url.clone());
            opts.command_timeout = Duration::from_millis(config.redis_timeout_ms.max(1));
            opts.wait_replicas = config.redis_wait_replicas;
            opts.wait_timeout = Duration::from_millis(config.redis_wait_timeout_ms.max(1));
            opts
        });
        let system = Arc::new(
            system::SystemModes::connect(
                system_redis,
                upstreams.forced_open.clone(),
                clock.clone(),
            )
            .await?,
        );
        // One subscription to every event's reservation updates, shared by all streams.
        let resv_redis = config.redis_url.as_ref().map(|url| {
            let mut opts = RedisOptions::new(url.clone());
            opts.command_timeout = Duration::from_millis(config.redis_timeout_ms.max(1));
            opts
        });
        let resv = Arc::new(
            resv::ResvUpdates::connect(resv_redis.as_ref(), &config.hold_warning_seconds).await?,
        );
        // Bound here, not in serve, so that `--grpc-listen 127.0.0.1:0` has a known port.
        let grpc = match config.grpc_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("binding --grpc-listen {addr}: {e}"))?,
            ),
            None => None,
        };
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!(
                    "binding --metrics-listen {addr}: {e} (another gateway on this host? \
                             give each its own port, or an empty value for no metrics listener)"
                )
            })?),
            None => None,
        };
        let admin_token_hash: Option<[u8; 32]> = config
            .admin_token
            .as_deref()
            .map(|t| Sha256::digest(t.as_bytes()).into());
        let state = AppState {
            console: Arc::new(console::Console::new(
                admin_token_hash.as_ref(),
                config.console_session_ttl_seconds,
            )),
            hub: ws::Hub::new(room.clone(), config.hub()),
            permits: Arc::new(tokio::sync::Semaphore::new(limits.max_connections)),
            upstreams,
            webhooks,
            rate_limits,
            audit,
            rate_sync,
            system,
            challenges,
            resv,
            room,
            metrics,
            admin_token_hash,
            limits,
        };
        Ok(Self {
            state,
            tick: Duration::from_millis(config.admission_tick_ms.max(1)),
            sweep_every: Duration::from_millis(config.sweep_interval_ms.max(1)),
            grpc,
            metrics_listener,
        })
    }

    /// The address of the `/metrics` listener, when `--metrics-listen` is set.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The address of the gRPC QueueService listener, when `--grpc-listen` is set.
    pub fn grpc_addr(&self) -> Option<std::net::SocketAddr> {
        self.grpc.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The HTTP router.
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Serves HTTP on `listener` (and the gRPC QueueService when configured) and runs the
    /// admission loops until `shutdown` resolves; then drains both.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let room = self.state.room.clone();
        let system = self.state.system.clone();
        let admit = tokio::spawn(admission::admit_loop(
            room.clone(),
            self.state.metrics.clone(),
            self.tick,
            system.clone(),
            stop_rx.clone(),
        ));
        let console = tokio::spawn(console::stats::run(self.state.clone(), stop_rx.clone()));
        let follow = tokio::spawn(system.clone().follow(stop_rx.clone()));
        let announce = tokio::spawn(announce_modes(
            self.state.hub.clone(),
            system.clone(),
            stop_rx.clone(),
        ));
        let held = tokio::spawn(admission::held_loop(
            room.clone(),
            self.state.metrics.clone(),
            stop_rx.clone(),
        ));
        let sweep = tokio::spawn(admission::sweep_loop(
            room,
            self.sweep_every,
            system,
            stop_rx.clone(),
        ));
        // The cross-replica rate-limit sync, when on.
        let rate_sync = self
            .state
            .rate_sync
            .clone()
            .map(|s| tokio::spawn(s.run(stop_rx.clone())));
        // The webhook consumers: forward stored webhooks until shutdown, then let the forwards
        // in flight finish (what they had not acknowledged stays pending and another replica,
        // or this one restarted, takes it over).
        let consumers: Vec<_> = self
            .state
            .webhooks
            .as_ref()
            .map(|w| w.consumers())
            .unwrap_or_default()
            .into_iter()
            .map(|c| tokio::spawn(c.run(stop_rx.clone())))
            .collect();
        let app = self.router();
        let limits = self.state.limits.clone();
        // One shutdown future, three servers: HTTP awaits it and tells gRPC and the metrics
        // listener through a watch.
        let (grpc_stop, grpc_stopped) = watch::channel(false);
        let mut metrics_stopped = grpc_stopped.clone();
        let mut grpc_stopped = grpc_stopped;
        let http = server::serve(
            listener,
            app,
            limits,
            self.state.permits.clone(),
            async move {
                shutdown.await;
                let _ = grpc_stop.send(true);
            },
        );
        let grpc_listener = self.grpc.take();
        let metrics_listener = self.metrics_listener.take();
        let grpc = async {
            match grpc_listener {
                Some(l) => {
                    tracing::info!(addr = ?l.local_addr().ok(), "gRPC QueueService listening");
                    grpc::serve(self.state.clone(), l, async move {
                        let _ = grpc_stopped.wait_for(|s| *s).await;
                    })
                    .await
                }
                None => Ok(()),
            }
        };
        let metrics = async {
            match metrics_listener {
                Some(l) => {
                    tracing::info!(addr = ?l.local_addr().ok(), "metrics listening");
                    // Scrapers only: a few connections, the public port's timeouts.
                    server::serve(
                        l,
                        metrics_router(self.state.clone()),
                        limits_for_metrics(&self.state.limits),
                        Arc::new(tokio::sync::Semaphore::new(METRICS_CONNECTIONS)),
                        async move {
                            let _ = metrics_stopped.wait_for(|s| *s).await;
                        },
                    )
                    .await
                }
                None => Ok(()),
            }
        };
        let (http, grpc, metrics) = tokio::join!(http, grpc, metrics);
        http?;
        grpc?;
        metrics?;
        // WebSockets outlive the HTTP drain: close them so clients reconnect to another replica.
        self.state.hub.close_all();
        self.state.console.close_all();
        let _ = stop_tx.send(true);
        let _ = admit.await;
        let _ = sweep.await;
        let _ = held.await;
        if let Some(s) = rate_sync {
            let _ = s.await;
        }
        let _ = follow.await;
        let _ = console.await;
        let _ = announce.await;
        for c in consumers {
            let _ = c.await;
        }
        Ok(())
    }
}

/// Connections the metrics listener holds at once.
const METRICS_CONNECTIONS: usize = 64;

/// The metrics listener's limits: the public port's, with a short drain (a scrape is quick).
fn limits_for_metrics(l: &Limits) -> Limits {
    Limits {
        max_connections: METRICS_CONNECTIONS,
        drain_grace: l.drain_grace.min(Duration::from_secs(1)),
        ..l.clone()
    }
}

/// The routes of `--metrics-listen`: `/metrics` (everything else 404).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(state)
}

/// Latency metrics and the request timeout, around every routed request.
async fn edge(
    State(st): State<AppState>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = metrics::method_label(req.method());
    let route = matched.map_or("unmatched", |m| metrics::route_label(m.as_str()));
    let body_wait = req.extensions().get::<server::BodyWait>().cloned();
    let http1 = req.version() <= axum::http::Version::HTTP_11;
    let resp = match tokio::time::timeout(st.limits.request_timeout, next.run(req)).await {
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

/// Tells this replica's WebSocket clients when MAINTENANCE_MODE begins and ends (every
/// replica follows the shared mode, so every client hears it).
async fn announce_modes(
    hub: ws::Hub,
    system: Arc<system::SystemModes>,
    mut stop: watch::Receiver<bool>,
) {
    let mut changes = system.subscribe();
    let mut maintenance = system.maintenance();
    loop {
        tokio::select! {
            r = changes.changed() => if r.is_err() { return },
            _ = stop.changed() => return,
        }
        let now = changes.borrow_and_update().maintenance();
        if now != maintenance {
            maintenance = now;
            let retry: u64 = error::MAINTENANCE_RETRY_AFTER.parse().unwrap_or(30);
            hub.broadcast(if now {
                ws::messages::maintenance(retry)
            } else {
                ws::messages::maintenance_ended()
            });
        }
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

/// While MAINTENANCE_MODE is in force, the queue API (`/api/v1/queue...`) answers 503
/// `MAINTENANCE` with Retry-After, and the pages (`/`, `/e/...`) a maintenance page.
async fn maintenance_gate(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if !st.system.maintenance() {
        return next.run(req).await;
    }
    let path = req.uri().path();
    if path.starts_with("/api/v1/queue") {
        ApiError::Maintenance.into_response()
    } else if path == "/" || path.starts_with("/e/") {
        handlers::maintenance_page()
    } else {
        next.run(req).await
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
            post(handlers::join).route_layer(join_limit),
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
        .route("/e/{event_id}", get(handlers::room_page))
        .route("/", get(handlers::index))
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .merge(admin)
        .merge(console::routes())
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            maintenance_gate,
        ))
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
