//! The hyper edge of the admission gateway: the queue API, the admin API (with its audit trail),
//! JWKS and health over HTTP, metrics on their own listener, the forwarded API to the backing services (gRPC upstreams), the gRPC
//! QueueService, plus the background admission loops.
//!
//! [`Gateway::build`] turns a [`Config`] into a running set of parts; [`Gateway::serve`] serves
//! them on an already-bound listener until a shutdown future resolves, so tests bind port 0
//! and the binary only wires. Redis is reached through the `queue` and `webhooks` crates, and
//! for the audit trail and the rate-limit sync through `redis-layer` directly.

pub mod access_codes;
pub mod admin;
pub mod admin_health;
pub mod audit;
pub mod background;
mod build;
pub mod client_ip;
pub mod config;
pub mod console;
pub mod edge;
pub mod error;
pub mod extract;
pub mod forward;
pub mod grpc;
pub mod handlers;
pub mod metrics;
pub mod openapi;
pub mod page;
pub mod ratelimit;
pub mod ratesync;
pub mod resv;
pub mod resv_ws;
pub mod routes;
pub mod server;
pub mod system;
pub mod upstream;
pub mod webhook;

pub use config::{Config, Limits};
pub use routes::{admin_token_ok, app, metrics_router, router};

use axum::Router;
use metrics::Metrics;
use queue::room::WaitingRoom;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The id of the event preconfigured in the embedded in-memory store.
pub const DEMO_EVENT: &str = "demo";

/// What every handler shares: one `Arc`, because axum clones the state for every request (once
/// for the handler, and once per `from_fn_with_state` layer of the admin routes). As a struct
/// of ~14 `Arc`s that cost ~14 atomic increments and decrements per clone, bouncing cache lines
/// between the runtime's threads; `perf` of a `/healthz` run put `drop_in_place<AppState>` and
/// the clones at ~15 % of the gateway's CPU. Fields read through `Deref`, as before.
#[derive(Clone)]
pub struct AppState(Arc<State>);

impl AppState {
    /// Wraps the shared parts.
    pub fn new(state: State) -> Self {
        Self(Arc::new(state))
    }
}

impl std::ops::Deref for AppState {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct State {
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
    /// The events' configurations as this replica keeps them (a second at most), for the
    /// waiting page and the join challenges; changing an event here forgets its entry.
    pub configs: Arc<queue::configs::EventConfigs>,
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
    sweep_per_second: u32,
    grpc: Option<TcpListener>,
    metrics_listener: Option<TcpListener>,
}

impl Gateway {
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

    /// The HTTP routes without the edge (in-process use).
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// The public listener's service: the routes behind the edge.
    pub fn app(&self) -> edge::Edge {
        app(self.state.clone())
    }

    /// Serves HTTP on `listener` (and the gRPC QueueService when configured) and runs the
    /// admission loops until `shutdown` resolves; then drains both.
    pub async fn serve(
        mut self, listener: TcpListener, shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let room = self.state.room.clone();
        let system = self.state.system.clone();
        let admit = tokio::spawn(background::admit_loop(
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
        let held = tokio::spawn(background::held_loop(
            room.clone(),
            self.state.metrics.clone(),
            stop_rx.clone(),
        ));
        let sweep = tokio::spawn(background::sweep_loop(
            room,
            self.sweep_every,
            self.sweep_per_second,
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
        let app = self.app();
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

/// Tells this replica's WebSocket clients when MAINTENANCE_MODE begins and ends (every
/// replica follows the shared mode, so every client hears it).
async fn announce_modes(
    hub: ws::Hub, system: Arc<system::SystemModes>, mut stop: watch::Receiver<bool>,
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
