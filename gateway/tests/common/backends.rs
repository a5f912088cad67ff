//! The `backends` services (from the `services` crate) in this process, for the gateway's
//! tests of forwarding and webhooks: served over gRPC on loopback behind a layer that records
//! every call, with a switch that makes the WorkerService answer as if it were down.

use proto::reservation::v1 as res;
use res::worker_service_server::WorkerService;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// The Standard Webhooks secret the simulator signs with.
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Price of every seeded seat, in cents.
pub const PRICE: i64 = 2500;
/// The gRPC path of WorkerService.ProcessPaymentResult.
pub const PROCESS: &str = "/reservation.v1.WorkerService/ProcessPaymentResult";

/// The backends in this process on a free port: every gRPC call is recorded, while `down`
/// is set the WorkerService answers UNAVAILABLE (as a backend that is down does), and
/// ProcessPaymentResult for the reservation in `hold` waits until it is released.
pub struct Backends {
    pub addr: SocketAddr,
    pub calls: Arc<Mutex<Vec<String>>>,
    /// While set, the WorkerService answers UNAVAILABLE.
    pub down: Arc<AtomicBool>,
    /// A reservation whose payment results are held back.
    pub hold: Arc<Hold>,
    stop: Option<oneshot::Sender<()>>,
}

/// Holds back ProcessPaymentResult for one reservation (a slow call) until released.
#[derive(Default)]
pub struct Hold {
    reservation: Mutex<Option<String>>,
    released: tokio::sync::watch::Sender<bool>,
    /// Calls for that reservation waiting now.
    pub waiting: std::sync::atomic::AtomicUsize,
}

impl Hold {
    /// Holds the results of `reservation_id` from now on.
    pub fn hold(&self, reservation_id: &str) {
        *self.reservation.lock().unwrap() = Some(reservation_id.to_owned());
        self.released.send_replace(false);
    }

    /// Lets the held calls (and later ones) through.
    pub fn release(&self) {
        self.released.send_replace(true);
    }

    async fn pass(&self, reservation_id: &str) {
        if self.reservation.lock().unwrap().as_deref() != Some(reservation_id) {
            return;
        }
        let mut rx = self.released.subscribe();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _ = rx.wait_for(|r| *r).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The real WorkerService with the test's switches in front.
#[derive(Clone)]
struct Worker {
    inner: services::Backends,
    down: Arc<AtomicBool>,
    hold: Arc<Hold>,
}

impl Worker {
    /// UNAVAILABLE while `down` is set, as a backend that is down answers.
    fn up(&self) -> Result<(), tonic::Status> {
        if self.down.load(Ordering::SeqCst) {
            return Err(tonic::Status::unavailable("down for the test"));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl WorkerService for Worker {
    async fn process_reservation_expiry(
        &self, request: tonic::Request<res::ProcessExpiryRequest>,
    ) -> Result<tonic::Response<res::ProcessExpiryResponse>, tonic::Status> {
        self.up()?;
        self.inner.process_reservation_expiry(request).await
    }

    async fn process_payment_result(
        &self, request: tonic::Request<res::ProcessPaymentRequest>,
    ) -> Result<tonic::Response<res::ProcessPaymentResponse>, tonic::Status> {
        self.up()?;
        self.hold.pass(&request.get_ref().reservation_id).await;
        self.inner.process_payment_result(request).await
    }
}

impl Backends {
    /// Starts them with the payment simulator posting to `webhook_url`, seeding `events`, with
    /// the default limit of one active hold per admission.
    pub async fn start(webhook_url: Option<String>, events: &[(&str, u64)]) -> Self {
        Self::start_with_hold_limit(webhook_url, events, 1).await
    }

    /// As [`Backends::start`], with `holds_per_admission` active holds per admission (0: no
    /// limit), for tests that make several holds under one admission on purpose.
    pub async fn start_with_hold_limit(
        webhook_url: Option<String>, events: &[(&str, u64)], holds_per_admission: u32,
    ) -> Self {
        let store = Arc::new(services::MemoryStore::new());
        Self::start_on(store, webhook_url, events, holds_per_admission).await
    }

    /// As [`Backends::start`], on a `RedisStore` over `redis_url` (shared with the gateways:
    /// the reservation updates they subscribe to are published there).
    pub async fn start_on_redis(
        redis_url: &str, webhook_url: Option<String>, events: &[(&str, u64)],
    ) -> Self {
        let store = services::RedisStore::connect(&services::RedisOptions {
            command_timeout: Duration::from_secs(5),
            ..services::RedisOptions::new(redis_url)
        })
        .await
        .unwrap();
        Self::start_on(Arc::new(store), webhook_url, events, 1).await
    }

    async fn start_on(
        store: Arc<dyn services::Store>, webhook_url: Option<String>, events: &[(&str, u64)],
        holds_per_admission: u32,
    ) -> Self {
        let settings = services::Settings {
            // Simulated payments settle in 2–5 ms instead of 2–5 s.
            sim_time_scale: 0.001,
            holds_per_admission,
            ..services::Settings::default()
        };
        let webhooks = webhook_url.map(|url| {
            services::WebhookSender::new(services::WebhookConfig {
                url,
                secret: services::WebhookSecret::parse(WEBHOOK_SECRET).unwrap(),
                max_attempts: 5,
                backoff_base: Duration::from_millis(5),
                backoff_max: Duration::from_millis(50),
                attempt_timeout: Duration::from_secs(5),
            })
        });
        let backends =
            services::Backends::new(store, Arc::new(services::SystemClock), settings, webhooks);
        for (id, seats) in events {
            backends.seed(id, *seats, PRICE, "USD").await.unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        let count = tower::util::MapRequestLayer::new(move |req: http::Request<_>| {
            seen.lock().unwrap().push(req.uri().path().to_owned());
            req
        });
        let down = Arc::new(AtomicBool::new(false));
        let hold = Arc::new(Hold::default());
        let (stop, stopped) = oneshot::channel::<()>();
        use proto::common::v1::admin_service_server::AdminServiceServer;
        use proto::payment::v1::payment_service_server::PaymentServiceServer;
        use res::inventory_server::InventoryServer;
        use res::reservation_service_server::ReservationServiceServer;
        use res::worker_service_server::WorkerServiceServer;
        let worker = WorkerServiceServer::new(Worker {
            inner: backends.clone(),
            down: down.clone(),
            hold: hold.clone(),
        });
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .layer(count)
                .add_service(ReservationServiceServer::new(backends.clone()))
                .add_service(AdminServiceServer::new(backends.clone()))
                .add_service(InventoryServer::new(backends.clone()))
                .add_service(PaymentServiceServer::new(backends))
                .add_service(worker)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await;
        });
        Self {
            addr,
            calls,
            down,
            hold,
            stop: Some(stop),
        }
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The gateway flags that point every upstream here (the worker through
    /// `--reservation-url`, the same process).
    pub fn flags(&self) -> Vec<String> {
        let u = self.url();
        vec![
            "--reservation-url".into(),
            u.clone(),
            "--inventory-url".into(),
            u.clone(),
            "--payment-url".into(),
            u,
        ]
    }

    /// Every gRPC call received so far.
    pub fn calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// A client channel that bypasses the gateway (the worker is never reached through it).
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// ProcessPaymentResult calls received so far.
    pub fn processed(&self) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == PROCESS)
            .count()
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
