//! The test harness: the backends over real gRPC on loopback, with the in-memory store or a real
//! redis-server, a manual clock, and a real HTTP webhook receiver that checks signatures with the
//! gateway's verifier.

#![allow(dead_code)]

mod requests;

pub use requests::*;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use proto::common::v1::admin_service_client::AdminServiceClient;
use proto::payment::v1::payment_service_client::PaymentServiceClient;
use proto::reservation::v1::inventory_client::InventoryClient;
use proto::reservation::v1::reservation_service_client::ReservationServiceClient;
use proto::reservation::v1::worker_service_client::WorkerServiceClient;
use services::{
    Backends, ManualClock, MemoryStore, RedisOptions, RedisStore, Settings, Store, WebhookConfig,
    WebhookSecret, WebhookSender,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, Mutex};
use tonic::transport::Channel;
use webhooks::{Scheme, StandardWebhooks};

/// Which store the backends run on.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Memory,
    Redis,
    /// A local 3-primary Redis Cluster.
    Cluster,
}

/// The secret every test signs with (`whsec_` + base64 of 24 bytes).
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Runs the backends for one test.
pub struct Harness {
    pub clock: ManualClock,
    pub backends: Backends,
    pub channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    redis: Option<Redis>,
}

/// The Redis a harness runs on.
pub enum Redis {
    Server(testkit::RedisServer),
    Cluster(testkit::RedisCluster),
}

/// How to start a harness.
pub struct Options {
    pub settings: Settings,
    pub webhook_url: Option<String>,
    pub webhook_attempts: u32,
    pub events: Vec<(&'static str, u64, i64)>,
    pub expiry_every: Duration,
    /// Redis command timeout (generous: the suites run in parallel on busy machines).
    pub redis_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            settings: Settings {
                // Simulated payments settle in 2–5 ms instead of 2–5 s.
                sim_time_scale: 0.001,
                ..Settings::default()
            },
            webhook_url: None,
            webhook_attempts: 5,
            events: vec![("show", 10, 2500)],
            // Long enough that only explicit expire_due calls expire holds, unless a test asks.
            expiry_every: Duration::from_secs(3600),
            redis_timeout: Duration::from_secs(5),
        }
    }
}

impl Harness {
    pub async fn start(kind: Kind, opts: Options) -> Result<Self> {
        let (store, redis): (Arc<dyn Store>, _) = match kind {
            Kind::Memory => (Arc::new(MemoryStore::new()), None),
            Kind::Redis => {
                let server = testkit::RedisServer::start()?;
                let store = RedisStore::connect(&RedisOptions {
                    command_timeout: opts.redis_timeout,
                    ..RedisOptions::new(server.url())
                })
                .await?;
                (Arc::new(store), Some(Redis::Server(server)))
            }
            Kind::Cluster => {
                let cluster = testkit::RedisCluster::start(3, 0)?;
                let store = RedisStore::connect(&RedisOptions {
                    command_timeout: opts.redis_timeout,
                    ..RedisOptions::new(cluster.url())
                })
                .await?;
                (Arc::new(store), Some(Redis::Cluster(cluster)))
            }
        };
        let clock = ManualClock::at_system_now();
        let webhooks = opts.webhook_url.map(|url| {
            WebhookSender::new(WebhookConfig {
                url,
                secret: WebhookSecret::parse(SECRET).expect("test secret"),
                max_attempts: opts.webhook_attempts,
                backoff_base: Duration::from_millis(5),
                backoff_max: Duration::from_millis(50),
                attempt_timeout: Duration::from_secs(5),
            })
        });
        let backends = Backends::new(store, Arc::new(clock.clone()), opts.settings, webhooks);
        for (id, seats, price) in opts.events {
            backends.seed(id, seats, price, "USD").await?;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let b = backends.clone();
        let every = opts.expiry_every;
        let task = tokio::spawn(async move {
            let _ = services::serve(b, listener, every, async {
                let _ = stopped.await;
            })
            .await;
        });
        let channel = Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await
            .context("connecting to the backends")?;
        Ok(Self {
            clock,
            backends,
            channel,
            stop: Some(stop),
            task: Some(task),
            redis,
        })
    }

    pub fn health(&self) -> tonic_health::pb::health_client::HealthClient<Channel> {
        tonic_health::pb::health_client::HealthClient::new(self.channel.clone())
    }

    pub fn reservations(&self) -> ReservationServiceClient<Channel> {
        ReservationServiceClient::new(self.channel.clone())
    }

    pub fn inventory(&self) -> InventoryClient<Channel> {
        InventoryClient::new(self.channel.clone())
    }

    pub fn payments(&self) -> PaymentServiceClient<Channel> {
        PaymentServiceClient::new(self.channel.clone())
    }

    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    pub fn worker(&self) -> WorkerServiceClient<Channel> {
        WorkerServiceClient::new(self.channel.clone())
    }

    /// The standalone redis-server, if the harness runs on one.
    pub fn redis_server(&mut self) -> Option<&mut testkit::RedisServer> {
        match &mut self.redis {
            Some(Redis::Server(s)) => Some(s),
            _ => None,
        }
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), t).await??;
        }
        Ok(())
    }
}

/// One webhook the receiver accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub payload: serde_json::Value,
}

/// A webhook receiver on a free loopback port that verifies every request as the gateway does
/// (the signer's independent check is the specification's test vector in `payment_webhooks`).
pub struct Receiver {
    pub url: String,
    /// Requests seen, valid or not.
    pub hits: Arc<AtomicUsize>,
    /// Requests whose signature, id or timestamp did not verify.
    pub invalid: Arc<AtomicUsize>,
    /// webhook-id of every request, in arrival order.
    pub ids: Arc<Mutex<Vec<String>>>,
    rx: mpsc::UnboundedReceiver<Received>,
}

/// Checks a delivery as the gateway does: with the `webhooks` crate's Standard Webhooks scheme
/// (`webhook-id`, `webhook-timestamp` within 5 minutes, `webhook-signature` `v1` HMAC).
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let Ok(scheme) = StandardWebhooks::new(&[secret]) else {
        return false;
    };
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    scheme.verify(&headers, body, now).is_ok()
}

impl Receiver {
    /// Starts a receiver that answers 500 to the first `fail_first` valid requests.
    pub async fn start(fail_first: usize) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let hits = Arc::new(AtomicUsize::new(0));
        let invalid = Arc::new(AtomicUsize::new(0));
        let ids = Arc::new(Mutex::new(Vec::new()));
        let valid = Arc::new(AtomicUsize::new(0));
        let (h, inv, idl) = (hits.clone(), invalid.clone(), ids.clone());
        let app = axum::Router::new().route(
            "/webhooks/payments",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (tx, h, inv, idl, valid) = (
                    tx.clone(),
                    h.clone(),
                    inv.clone(),
                    idl.clone(),
                    valid.clone(),
                );
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    idl.lock().await.push(id.clone());
                    if !verify(SECRET, &headers, &body) {
                        inv.fetch_add(1, Ordering::SeqCst);
                        return StatusCode::BAD_REQUEST;
                    }
                    if valid.fetch_add(1, Ordering::SeqCst) < fail_first {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    match serde_json::from_slice(&body) {
                        Ok(payload) => {
                            let _ = tx.send(Received { id, payload });
                            StatusCode::NO_CONTENT
                        }
                        Err(_) => StatusCode::BAD_REQUEST,
                    }
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: format!("http://{addr}/webhooks/payments"),
            hits,
            invalid,
            ids,
            rx,
        })
    }

    /// The next accepted webhook (fails after 10 s).
    pub async fn next(&mut self) -> Result<Received> {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .context("no webhook within 10 s")?
            .context("receiver closed")
    }
}

/// Runs an async test body once per store kind, as two tests named `memory` and `redis`;
/// `both_stores!(name + cluster)` adds a third, `cluster`, on a local Redis Cluster.
#[macro_export]
macro_rules! both_stores {
    ($name:ident) => {
        $crate::store_tests!($name: memory Memory, redis Redis);
    };
    ($name:ident + cluster) => {
        $crate::store_tests!($name: memory Memory, redis Redis, cluster Cluster);
    };
}

/// One test per `test Kind` pair, each running the body `name` on that store.
#[macro_export]
macro_rules! store_tests {
    ($name:ident: $($test:ident $kind:ident),+) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() -> anyhow::Result<()> {
                    super::$name(super::common::Kind::$kind).await
                }
            )+
        }
    };
}
