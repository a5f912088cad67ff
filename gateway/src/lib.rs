//! The hyper edge of the admission gateway: the queue API, the admin API, JWKS, health and
//! metrics over HTTP, the forwarded API to the backing services (gRPC upstreams), the gRPC
//! QueueService, plus the background admission loops.
//!
//! [`Gateway::build`] turns a [`Config`] into a running set of parts; [`Gateway::serve`] serves
//! them on an already-bound listener until a shutdown future resolves, so tests bind port 0
//! and the binary only wires. Redis is reached only through the `queue` crate.

pub mod admission;
pub mod config;
pub mod error;
pub mod extract;
pub mod forward;
pub mod grpc;
pub mod handlers;
pub mod metrics;
pub mod ratelimit;
pub mod server;
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
use queue::token::{AdmissionSigner, WaitingTokens};
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
    /// Join challenges (proof of work) of the events that ask for one.
    pub challenges: Arc<queue::challenge::Challenges>,
}

/// A built gateway: state plus what the background loops need.
pub struct Gateway {
    /// Shared state (also handy for tests).
    pub state: AppState,
    tick: Duration,
    sweep_every: Duration,
    grpc: Option<TcpListener>,
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
        let challenges = Arc::new(queue::challenge::Challenges::new(
            store.clone(),
            clock.clone(),
            &waiting,
            config.join_challenge_ttl_seconds,
        ));
        let room = WaitingRoom::new(store, clock, waiting, signer);
        let limits = config.limits();
        let metrics = Arc::new(Metrics::new());
        let upstreams = Arc::new(upstream::Upstreams::from_config(config, metrics.clone())?);
        let webhooks = webhook::Webhooks::from_config(config, metrics.clone()).await?;
        // Bound here, not in serve, so that `--grpc-listen 127.0.0.1:0` has a known port.
        let grpc = match config.grpc_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("binding --grpc-listen {addr}: {e}"))?,
            ),
            None => None,
        };
        let state = AppState {
            hub: ws::Hub::new(room.clone(), config.hub()),
            permits: Arc::new(tokio::sync::Semaphore::new(limits.max_connections)),
            upstreams,
            webhooks,
            rate_limits,
            challenges,
            room,
            metrics,
            admin_token_hash: config
                .admin_token
                .as_deref()
                .map(|t| Sha256::digest(t.as_bytes()).into()),
            limits,
        };
        Ok(Self {
            state,
            tick: Duration::from_millis(config.admission_tick_ms.max(1)),
            sweep_every: Duration::from_millis(config.sweep_interval_ms.max(1)),
            grpc,
        })
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
        let admit = tokio::spawn(admission::admit_loop(
            room.clone(),
            self.state.metrics.clone(),
            self.tick,
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
            stop_rx.clone(),
        ));
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
        // One shutdown future, two servers: HTTP awaits it and tells gRPC through a watch.
        let (grpc_stop, mut grpc_stopped) = watch::channel(false);
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
        let grpc = async {
            match self.grpc.take() {
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
        let (http, grpc) = tokio::join!(http, grpc);
        http?;
        grpc?;
        // WebSockets outlive the HTTP drain: close them so clients reconnect to another replica.
        self.state.hub.close_all();
        let _ = stop_tx.send(true);
        let _ = admit.await;
        let _ = sweep.await;
        let _ = held.await;
        for c in consumers {
            let _ = c.await;
        }
        Ok(())
    }
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

/// Admin endpoints need their own bearer token, compared in constant time.
async fn require_admin(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let given = extract::bearer(req.headers().get(axum::http::header::AUTHORIZATION));
    let ok = match (st.admin_token_hash, given) {
        (Some(want), Some(given)) => {
            let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
            bool::from(want.ct_eq(&given))
        }
        _ => false,
    };
    if ok {
        next.run(req).await
    } else {
        ApiError::Unauthorized.into_response()
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
            post(handlers::post_action),
        )
        .route("/admin/v1/dlq", get(webhook::dlq_list))
        .route("/admin/v1/dlq/{id}", get(webhook::dlq_get))
        .route("/admin/v1/dlq/{id}/retry", post(webhook::dlq_retry))
        .route("/admin/v1/dlq/{id}/resolve", post(webhook::dlq_resolve))
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
        .route("/metrics", get(handlers::metrics))
        .merge(admin)
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
