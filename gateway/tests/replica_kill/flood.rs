//! The webhook side of the kill: the backends with a recording worker, paid reservations made
//! straight on them, a provider flooding signed deliveries over the replicas (re-sending on a
//! failure, as providers do), and the check that each one was applied exactly once.

use super::{WEBHOOKS, WORKER_DELAY};
use crate::common::backends::{PRICE, WEBHOOK_SECRET};
use crate::common::webhook_http::{approved_body, sign, webhook_now, webhook_post};
use proto::payment::v1 as pay;
use proto::reservation::v1 as res;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};

/// One ProcessPaymentResult the backends answered: webhook id, ProcessingStatus, when.
pub type Applied = (String, i32, Instant);

/// The real WorkerService of the backends, slowed by [`WORKER_DELAY`], recording every
/// payment result it answered (the only way to count per webhook).
#[derive(Clone)]
struct RecordingWorker {
    inner: services::Backends,
    log: Arc<Mutex<Vec<Applied>>>,
}

#[tonic::async_trait]
impl res::worker_service_server::WorkerService for RecordingWorker {
    async fn process_reservation_expiry(
        &self, request: Request<res::ProcessExpiryRequest>,
    ) -> Result<Response<res::ProcessExpiryResponse>, Status> {
        self.inner.process_reservation_expiry(request).await
    }

    async fn process_payment_result(
        &self, request: Request<res::ProcessPaymentRequest>,
    ) -> Result<Response<res::ProcessPaymentResponse>, Status> {
        tokio::time::sleep(WORKER_DELAY).await;
        let id = request.get_ref().webhook_id.clone();
        let answer = self.inner.process_payment_result(request).await;
        let status = match &answer {
            Ok(r) => r.get_ref().status,
            Err(_) => -1,
        };
        self.log.lock().unwrap().push((id, status, Instant::now()));
        answer
    }
}

/// The backends on a free loopback port, their worker recorded; returns the URL, the core (for
/// setup calls) and the log.
pub async fn start_backends() -> (String, services::Backends, Arc<Mutex<Vec<Applied>>>) {
    let settings = services::Settings {
        sim_time_scale: 0.001,
        hold: Duration::from_secs(600),
        ..services::Settings::default()
    };
    let core = services::Backends::new(
        Arc::new(services::MemoryStore::new()),
        Arc::new(services::SystemClock),
        settings,
        None,
    );
    core.seed("show", WEBHOOKS as u64, PRICE, "USD")
        .await
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let worker = RecordingWorker {
        inner: core.clone(),
        log: log.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(res::worker_service_server::WorkerServiceServer::new(worker))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    (format!("http://{addr}"), core, log)
}

/// `n` held reservations of one seat, each with an approved payment intent: (reservation,
/// intent), created directly on the backends (the gateway's reservation path is not under test).
pub async fn paid_reservations(core: &services::Backends, n: usize) -> Vec<(String, String)> {
    use pay::payment_service_server::PaymentService;
    use res::reservation_service_server::ReservationService;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let r = core
            .create_reservation(Request::new(res::CreateReservationRequest {
                event_id: "show".into(),
                quantity: 1,
                user_id: format!("buyer-{i}"),
                idempotency_key: format!("hold-{i}"),
                ..Default::default()
            }))
            .await
            .expect("hold")
            .into_inner();
        let p = core
            .create_payment_intent(Request::new(pay::CreatePaymentIntentRequest {
                reservation_id: r.reservation_id.clone(),
                scenario: pay::PaymentScenario::Approve as i32,
                idempotency_key: format!("pay-{i}"),
                ..Default::default()
            }))
            .await
            .expect("intent")
            .into_inner();
        out.push((r.reservation_id, p.payment_intent_id));
    }
    out
}

/// How one webhook delivery ended.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Its final answer was 2xx with `status` "accepted" (else "duplicate").
    accepted: bool,
    /// Attempts that failed on the killed replica with a connection error.
    failed_on_x: usize,
    /// Attempts in all.
    attempts: usize,
}

/// Delivers one signed webhook as a provider does: to `targets[first]`, and on a connection
/// error or a non-2xx answer again to the next replica, until a 2xx.
async fn deliver(
    http: &reqwest::Client, targets: &[String], first: usize, x: &str, id: &str, body: &str,
) -> Delivery {
    let mut d = Delivery::default();
    for k in 0..12 {
        let base = &targets[(first + k) % targets.len()];
        d.attempts += 1;
        let ts = webhook_now();
        let signature = sign(WEBHOOK_SECRET, id, ts, body);
        match webhook_post(http, base, id, ts, body, &signature)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                let v: Value = r.json().await.unwrap();
                d.accepted = v["status"] == "accepted";
                assert!(
                    d.accepted || v["status"] == "duplicate",
                    "unexpected 2xx body {v}"
                );
                return d;
            }
            Ok(r) => {
                let s = r.status();
                let text = r.text().await.unwrap_or_default();
                eprintln!("webhook {id} answered {s} by {base}: {text}; re-sent");
            }
            Err(e) => {
                assert_eq!(base, x, "a connection error from a live replica: {e}");
                d.failed_on_x += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("webhook {id} never got a 2xx");
}

/// The flood: 12 concurrent senders, round robin over the replicas `bases` (`x` the one to be
/// killed), each delivering the next of `paid`'s approvals and pausing 80 ms; each sender's
/// deliveries by webhook id.
pub fn flood(
    paid: Vec<(String, String)>, bases: &[String], x: &str,
) -> Vec<JoinHandle<Vec<(String, Delivery)>>> {
    let next = Arc::new(AtomicUsize::new(0));
    let paid = Arc::new(paid);
    let http = crate::common::client();
    (0..12)
        .map(|_| {
            let (next, paid, bases, x, http) = (
                next.clone(),
                paid.clone(),
                bases.to_vec(),
                x.to_owned(),
                http.clone(),
            );
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= paid.len() {
                        break done;
                    }
                    let (rid, intent) = &paid[i];
                    let body = approved_body(intent, rid, PRICE);
                    let id = format!("msg_{i}");
                    let d = deliver(&http, &bases, i % 3, &x, &id, &body).await;
                    done.push((id, d));
                    tokio::time::sleep(Duration::from_millis(80)).await;
                }
            })
        })
        .collect()
}

/// The inbox entries pending with consumer `name` (read, not yet acknowledged).
pub fn pending_with(redis_port: u16, name: &str) -> usize {
    let out = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis_port.to_string(),
            "XPENDING",
            "wh:{payments}:inbox",
            "forwarders",
            "-",
            "+",
            "100000",
            name,
        ])
        .output()
        .expect("redis-cli");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // Flat output: id, consumer, idle ms, deliveries per entry.
    text.lines().filter(|l| !l.trim().is_empty()).count() / 4
}

/// Every webhook applied exactly once, the ones X held (`pending_x` at the kill, taken over
/// `takeover` after it) included, and nothing left pending with any replica.
pub async fn assert_applied_once(
    senders: Vec<JoinHandle<Vec<(String, Delivery)>>>, log: &Mutex<Vec<Applied>>, redis_port: u16,
    pending_x: usize, takeover: Option<Duration>,
) {
    let mut deliveries = Vec::new();
    for s in senders {
        deliveries.extend(s.await.expect("sender"));
    }
    assert_eq!(deliveries.len(), WEBHOOKS);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let applied = log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s, _)| *s == res::ProcessingStatus::Success as i32)
            .count();
        if applied >= WEBHOOKS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {applied} of {WEBHOOKS} webhooks applied; pending with X at the kill: {pending_x}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Anything still in flight (a re-forward) lands before the count.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = log.lock().unwrap().clone();
    let mut per_id: HashMap<&str, (usize, usize)> = HashMap::new();
    for (id, status, _) in &log {
        let e = per_id.entry(id.as_str()).or_default();
        if *status == res::ProcessingStatus::Success as i32 {
            e.0 += 1;
        } else {
            assert_eq!(
                *status,
                res::ProcessingStatus::AlreadyProcessed as i32,
                "webhook {id} failed at the worker"
            );
            e.1 += 1;
        }
    }
    for (id, _) in &deliveries {
        assert_eq!(
            per_id.get(id.as_str()).map(|e| e.0),
            Some(1),
            "webhook {id} applied exactly once"
        );
    }
    assert_eq!(
        per_id.len(),
        WEBHOOKS,
        "nothing but the flood was forwarded"
    );
    let reforwards: usize = per_id.values().map(|e| e.1).sum();
    assert!(
        reforwards <= pending_x,
        "{reforwards} re-forwards, more than the {pending_x} entries X held"
    );
    let accepted = deliveries.iter().filter(|(_, d)| d.accepted).count();
    let failed_on_x: usize = deliveries.iter().map(|(_, d)| d.failed_on_x).sum();
    let resent_dups = deliveries
        .iter()
        .filter(|(_, d)| d.failed_on_x > 0 && !d.accepted)
        .count();
    assert!(
        deliveries
            .iter()
            .all(|(_, d)| d.accepted || d.failed_on_x > 0),
        "a duplicate answer only for a delivery X had stored before its connection died"
    );
    assert!(
        pending_x > 0,
        "X held no webhook when killed: the takeover was not exercised"
    );
    assert_eq!(
        pending_with(redis_port, "gw-0"),
        0,
        "what X held was taken over and acknowledged"
    );
    for name in ["gw-1", "gw-2"] {
        assert_eq!(pending_with(redis_port, name), 0, "{name} acknowledged all");
    }
    let takeover = takeover.expect("X's pending webhooks were taken over within the window");
    eprintln!(
        "webhooks: {WEBHOOKS} delivered with a 2xx ({accepted} stored once; {failed_on_x} attempts failed on X with a connection error and were re-sent, {resent_dups} of them already stored by X); {} forwards, {} applied exactly once each, {reforwards} re-forwarded after the takeover (answered ALREADY_PROCESSED); {pending_x} pending with X at the kill, taken over {:.2} s after it (claim idle 2 s)",
        log.len(),
        per_id.len(),
        takeover.as_secs_f64()
    );
}
