//! The forwarded API and the gRPC QueueService end to end, with real parts only: gateways on
//! port 0 over a real redis-server, the real `backends` services (from the `services` crate)
//! served over gRPC on loopback behind a layer that counts every call they receive, a real
//! webhook receiver that checks Standard Webhooks signatures, and hand-written gRPC servers
//! that are slow on purpose.

mod common;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::backends::*;
use common::*;
use hmac::{Hmac, Mac};
use proto::gateway::v1 as gw;
use proto::gateway::v1::queue_service_client::QueueServiceClient;
use proto::reservation::v1 as res;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::RedisServer;
use tokio::sync::mpsc;

fn availability(base: &str, event: &str, token: Option<&str>) -> reqwest::RequestBuilder {
    let r = client().get(format!(
        "{base}/api/v1/events/{event}/availability?quantity=2"
    ));
    match token {
        Some(t) => r.bearer_auth(t),
        None => r,
    }
}

fn reserve(
    base: &str,
    token: Option<&str>,
    key: Option<&str>,
    body: Value,
) -> reqwest::RequestBuilder {
    let mut r = client()
        .post(format!("{base}/api/v1/reservations"))
        .json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(k) = key {
        r = r.header("Idempotency-Key", k);
    }
    r
}

fn pay(base: &str, token: Option<&str>, key: Option<&str>, body: Value) -> reqwest::RequestBuilder {
    let mut r = client()
        .post(format!("{base}/api/v1/payments/intents"))
        .json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(k) = key {
        r = r.header("Idempotency-Key", k);
    }
    r
}

fn get_reservation(base: &str, id: &str, token: &str) -> reqwest::RequestBuilder {
    client()
        .get(format!("{base}/api/v1/reservations/{id}"))
        .bearer_auth(token)
}

/// A webhook receiver on a free port that checks each request against the Standard Webhooks
/// scheme itself (HMAC-SHA256 of "id.timestamp.body" under the base64 key of the secret).
async fn webhook_receiver() -> (String, mpsc::UnboundedReceiver<(bool, Value)>) {
    use axum::http::HeaderMap;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/webhooks/payments",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
                let (id, ts, sigs) = (
                    h("webhook-id"),
                    h("webhook-timestamp"),
                    h("webhook-signature"),
                );
                let key = B64
                    .decode(WEBHOOK_SECRET.trim_start_matches("whsec_"))
                    .unwrap();
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
                mac.update(format!("{id}.{ts}.").as_bytes());
                mac.update(&body);
                let want = format!("v1,{}", B64.encode(mac.finalize().into_bytes()));
                let fresh = ts.parse::<u64>().is_ok_and(|t| t.abs_diff(now_s()) <= 300);
                let valid = fresh && id.starts_with("msg_") && sigs.split(' ').any(|s| s == want);
                let payload = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let _ = tx.send((valid, payload));
                if valid {
                    axum::http::StatusCode::NO_CONTENT
                } else {
                    axum::http::StatusCode::BAD_REQUEST
                }
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/webhooks/payments"), rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sale_end_to_end() {
    let (hook_url, mut hooks) = webhook_receiver().await;
    let backends = Backends::start(Some(hook_url), &[("show", 10)]).await;
    let redis = RedisServer::start().unwrap();
    let gw = gateway(&redis, &backends.flags()).await;
    let base = gw.url("");
    open_event(&base, "show").await;
    let token = admission(&base, "show", "alice").await;

    let a = send(availability(&base, "show", Some(&token))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["available"], true);
    assert_eq!(a.body["remaining_in_section"], 10);
    assert_eq!(a.body["available_seats"][0]["seat_id"], "A-1");
    assert_eq!(a.body["available_seats"][0]["status"], "AVAILABLE");
    assert_eq!(a.body["available_seats"][0]["price"]["amount_cents"], PRICE);

    let r = send(reserve(
        &base,
        Some(&token),
        Some("k1"),
        json!({"event_id": "show", "quantity": 2}),
    ))
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["status"], "PENDING");
    assert_eq!(r.body["replayed"], false);
    assert!(r.body["hold_expires_at"].is_string());
    assert_eq!(r.body["reserved_seats"].as_array().unwrap().len(), 2);
    assert_eq!(
        r.body["total_amount"],
        json!({"amount_cents": 2 * PRICE, "currency": "USD"})
    );
    let rid = r.body["reservation_id"].as_str().unwrap().to_owned();
    assert!(rid.starts_with("r_") && rid.ends_with("_show"), "{rid}");
    // The same key answers the same reservation and holds nothing more.
    let again = send(reserve(
        &base,
        Some(&token),
        Some("k1"),
        json!({"event_id": "show", "quantity": 2}),
    ))
    .await;
    assert_eq!(
        (again.status, &again.body["reservation_id"]),
        (200, &json!(rid))
    );
    assert_eq!(again.body["replayed"], true);
    let other = send(reserve(
        &base,
        Some(&token),
        Some("k1"),
        json!({"event_id": "show", "quantity": 3}),
    ))
    .await;
    assert_eq!((other.status, other.code()), (409, "IDEMPOTENCY_CONFLICT"));
    let a = send(availability(&base, "show", Some(&token))).await;
    assert_eq!(a.body["remaining_in_section"], 8);

    // Upstream refusals keep their meaning and the backend's error code.
    let big = send(reserve(
        &base,
        Some(&token),
        Some("k2"),
        json!({"event_id": "show", "quantity": 11}),
    ))
    .await;
    assert_eq!(
        (big.status, big.code()),
        (400, "INVALID_ARGUMENT"),
        "{}",
        big.body
    );
    // One active hold per admission (the backends' default): alice holds k1 already.
    let second = send(reserve(
        &base,
        Some(&token),
        Some("k3"),
        json!({"event_id": "show", "seat_ids": ["A-3"]}),
    ))
    .await;
    assert_eq!(
        (second.status, second.code()),
        (409, "HOLD_LIMIT"),
        "{}",
        second.body
    );
    let bob = admission(&base, "show", "bob").await;
    let gone = send(reserve(
        &base,
        Some(&bob),
        Some("k3"),
        json!({"event_id": "show", "seat_ids": ["A-1"]}),
    ))
    .await;
    assert_eq!(
        (gone.status, gone.code()),
        (409, "INVENTORY_CONFLICT"),
        "{}",
        gone.body
    );
    let missing = send(reserve(
        &base,
        Some(&token),
        None,
        json!({"event_id": "show", "quantity": 1}),
    ))
    .await;
    assert_eq!(
        (missing.status, missing.code()),
        (400, "IDEMPOTENCY_REQUIRED")
    );
    let bad = send(reserve(
        &base,
        Some(&token),
        Some("k4"),
        json!({"event_id": "show", "quantity": "two"}),
    ))
    .await;
    assert_eq!((bad.status, bad.code()), (400, "INVALID_ARGUMENT"));

    // Another admitted user of the same event cannot see or pay for it.
    let peek = send(get_reservation(&base, &rid, &bob)).await;
    assert_eq!(
        (peek.status, peek.code()),
        (404, "NOT_FOUND"),
        "{}",
        peek.body
    );
    let steal = send(pay(
        &base,
        Some(&bob),
        Some("p0"),
        json!({"reservation_id": rid}),
    ))
    .await;
    assert_eq!(
        (steal.status, steal.code()),
        (404, "NOT_FOUND"),
        "{}",
        steal.body
    );

    let p = send(pay(
        &base,
        Some(&token),
        Some("p1"),
        json!({"reservation_id": rid, "scenario": "APPROVE"}),
    ))
    .await;
    assert_eq!(p.status, 201, "{}", p.body);
    assert_eq!(p.body["status"], "PENDING");
    assert!(p.body["expires_at"].is_string());
    let intent = p.body["payment_intent_id"].as_str().unwrap().to_owned();
    let replay = send(pay(
        &base,
        Some(&token),
        Some("p1"),
        json!({"reservation_id": rid}),
    ))
    .await;
    assert_eq!(
        (replay.status, &replay.body["payment_intent_id"]),
        (200, &json!(intent))
    );
    let odd = send(pay(
        &base,
        Some(&token),
        Some("p2"),
        json!({"reservation_id": rid, "scenario": "MAYBE"}),
    ))
    .await;
    assert_eq!((odd.status, odd.code()), (400, "INVALID_ARGUMENT"));

    // The simulator reports the approval by a signed webhook…
    let (valid, hook) = tokio::time::timeout(Duration::from_secs(10), hooks.recv())
        .await
        .expect("a webhook within 10 s")
        .unwrap();
    assert!(
        valid,
        "the webhook's Standard Webhooks signature verifies: {hook}"
    );
    assert_eq!(hook["type"], "payment.approved");
    assert_eq!(hook["data"]["payment_intent_id"], json!(intent));
    assert_eq!(hook["data"]["reservation_id"], json!(rid));
    assert_eq!(hook["data"]["amount_cents"], 2 * PRICE);
    let pending = send(get_reservation(&base, &rid, &token)).await;
    assert_eq!(
        (pending.status, &pending.body["status"]),
        (200, &json!("PENDING"))
    );

    // …and the worker, told the result (the gateway's webhook endpoint is the next issue),
    // confirms the reservation.
    let mut worker = res::worker_service_client::WorkerServiceClient::new(backends.channel().await);
    let done = worker
        .process_payment_result(res::ProcessPaymentRequest {
            payment_intent_id: intent.clone(),
            reservation_id: rid.clone(),
            result: res::PaymentResult::Approved as i32,
            webhook_id: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        done.reservation_status,
        res::ReservationStatus::Confirmed as i32
    );
    let confirmed = send(get_reservation(&base, &rid, &token)).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_eq!(confirmed.body["status"], "CONFIRMED");
    assert_eq!(confirmed.body["event_id"], "show");
    assert_eq!(confirmed.body["order_id"], json!(done.order_id));
    assert_eq!(confirmed.body["payment_intent_id"], json!(intent));
    assert_eq!(confirmed.body["seats"][0]["status"], "SOLD");
    assert!(confirmed.body["confirmed_at"].is_string());
    let a = send(availability(&base, "show", Some(&token))).await;
    assert_eq!(a.body["remaining_in_section"], 8, "sold seats stay taken");

    // A declined card: the webhook says so, the worker cancels, the seat is free again.
    let r = send(reserve(
        &base,
        Some(&token),
        Some("k5"),
        json!({"event_id": "show", "quantity": 1}),
    ))
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let rid2 = r.body["reservation_id"].as_str().unwrap().to_owned();
    let p = send(pay(
        &base,
        Some(&token),
        Some("p3"),
        json!({"reservation_id": rid2, "scenario": "fail"}),
    ))
    .await;
    assert_eq!(p.status, 201, "{}", p.body);
    let (valid, hook) = tokio::time::timeout(Duration::from_secs(10), hooks.recv())
        .await
        .expect("a webhook within 10 s")
        .unwrap();
    assert!(valid, "{hook}");
    assert_eq!(hook["type"], "payment.failed");
    assert_eq!(hook["data"]["failure_code"], "card_declined");
    let done = worker
        .process_payment_result(res::ProcessPaymentRequest {
            payment_intent_id: p.body["payment_intent_id"].as_str().unwrap().to_owned(),
            reservation_id: rid2.clone(),
            result: res::PaymentResult::Failed as i32,
            failure_code: "card_declined".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        done.reservation_status,
        res::ReservationStatus::Cancelled as i32
    );
    let cancelled = send(get_reservation(&base, &rid2, &token)).await;
    assert_eq!(cancelled.body["status"], "CANCELLED");
    let late = send(pay(
        &base,
        Some(&token),
        Some("p4"),
        json!({"reservation_id": rid2}),
    ))
    .await;
    assert_eq!(
        (late.status, late.code()),
        (409, "FAILED_PRECONDITION"),
        "{}",
        late.body
    );
    let a = send(availability(&base, "show", Some(&token))).await;
    assert_eq!(
        a.body["remaining_in_section"], 8,
        "the cancelled seat is free again"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_without_a_valid_admission_never_reach_a_backend() {
    let backends = Backends::start(None, &[("show", 10), ("other", 10)]).await;
    let redis = RedisServer::start().unwrap();
    let gw = gateway(&redis, &backends.flags()).await;
    let base = gw.url("");
    let later = now_s() + 300;
    let rid = format!("r_{}_show", "0".repeat(32));
    let bad_tokens = [
        ("forged", mint(None, "show", "mallory", later)),
        ("expired", mint(Some(PEM), "show", "mallory", now_s() - 5)),
        ("other event", mint(Some(PEM), "other", "mallory", later)),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, tok) in [(None, None)]
        .into_iter()
        .chain(bad_tokens.iter().map(|(w, t)| (Some(*w), Some(t.as_str()))))
    {
        let want = if tok.is_none() { 401 } else { 403 };
        let rs = [
            send(availability(&base, "show", tok)).await,
            send(reserve(
                &base,
                tok,
                Some("k"),
                json!({"event_id": "show", "quantity": 1}),
            ))
            .await,
            send(pay(&base, tok, Some("k"), json!({"reservation_id": rid}))).await,
            send({
                let r = client().get(format!("{base}/api/v1/reservations/{rid}"));
                match tok {
                    Some(t) => r.bearer_auth(t),
                    None => r,
                }
            })
            .await,
        ];
        for r in rs {
            assert_eq!(r.status, want, "{what:?}: {}", r.body);
        }
    }
    let expired = send(availability(&base, "show", Some(&bad_tokens[1].1))).await;
    assert_eq!(expired.code(), "ADMISSION_EXPIRED");
    let anonymous = send(availability(&base, "show", None)).await;
    assert_eq!(anonymous.code(), "UNAUTHENTICATED");
    assert_eq!(
        backends.calls(),
        0,
        "no backend call without a valid admission"
    );

    // A genuine admission goes through: exactly one call per request.
    open_event(&base, "show").await;
    let token = admission(&base, "show", "alice").await;
    assert_eq!(
        send(availability(&base, "show", Some(&token))).await.status,
        200
    );
    assert_eq!(backends.calls(), 1);
    // The token of "show" does not open "other".
    let r = send(availability(&base, "other", Some(&token))).await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"));
    assert_eq!(backends.calls(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn an_unconfigured_upstream_is_501_and_a_down_one_503_quickly() {
    let redis = RedisServer::start().unwrap();
    let token = mint(Some(PEM), "show", "alice", now_s() + 300);
    let gw = gateway(&redis, NO_FLAGS).await;
    // Not configured is permanent: 501 without Retry-After, so clients do not retry.
    let r = send(availability(&gw.url(""), "show", Some(&token))).await;
    assert_eq!(
        (r.status, r.code()),
        (501, "UPSTREAM_NOT_CONFIGURED"),
        "{}",
        r.body
    );
    assert!(!r.headers.contains_key("retry-after"));
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not configured"));
    let r = send(reserve(
        &gw.url(""),
        Some(&token),
        Some("k"),
        json!({"event_id": "show", "quantity": 1}),
    ))
    .await;
    assert_eq!((r.status, r.code()), (501, "UPSTREAM_NOT_CONFIGURED"));
    assert!(!r.headers.contains_key("retry-after"));
    gw.shutdown().await;

    // A closed port: connection refused, well within the deadline; then the circuit opens.
    let port = testkit::free_port().unwrap();
    let down = format!("http://127.0.0.1:{port}");
    let gw = gateway(
        &redis,
        &[
            "--inventory-url".into(),
            down,
            "--breaker-failures".into(),
            "3".into(),
        ],
    )
    .await;
    let base = gw.url("");
    for _ in 0..3 {
        let t = Instant::now();
        let r = send(availability(&base, "show", Some(&token))).await;
        assert_eq!(
            (r.status, r.code()),
            (503, "UPSTREAM_UNAVAILABLE"),
            "{}",
            r.body
        );
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(r.headers["retry-after"], "1");
    }
    let r = send(availability(&base, "show", Some(&token))).await;
    assert_eq!((r.status, r.code()), (503, "CIRCUIT_OPEN"));
    gw.shutdown().await;
}

/// An Inventory that answers after `delay` (while `slow` is set), counting calls.
#[derive(Clone)]
struct SlowInventory {
    delay: Duration,
    slow: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    /// The `grpc-timeout` and `x-request-id` headers of each call.
    deadlines: Arc<Mutex<Vec<(String, String)>>>,
}

#[tonic::async_trait]
impl res::inventory_server::Inventory for SlowInventory {
    async fn check_availability(
        &self,
        req: tonic::Request<res::CheckAvailabilityRequest>,
    ) -> Result<tonic::Response<res::CheckAvailabilityResponse>, tonic::Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let header = |n| {
            req.metadata()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let seen = (header("grpc-timeout"), header("x-request-id"));
        self.deadlines.lock().unwrap().push(seen);
        if self.slow.load(Ordering::SeqCst) {
            tokio::time::sleep(self.delay).await;
        }
        Ok(tonic::Response::new(res::CheckAvailabilityResponse {
            available: true,
            remaining_in_section: 1,
            ..Default::default()
        }))
    }

    async fn commit_reservation(
        &self,
        _: tonic::Request<res::CommitReservationRequest>,
    ) -> Result<tonic::Response<res::CommitReservationResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("test server"))
    }

    async fn release_hold(
        &self,
        _: tonic::Request<res::ReleaseHoldRequest>,
    ) -> Result<tonic::Response<res::ReleaseHoldResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("test server"))
    }
}

impl SlowInventory {
    async fn start(delay: Duration) -> (Self, String) {
        let inv = Self {
            delay,
            slow: Arc::new(AtomicBool::new(true)),
            calls: Arc::new(AtomicUsize::new(0)),
            deadlines: Arc::new(Mutex::new(Vec::new())),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let svc = res::inventory_server::InventoryServer::new(inv.clone());
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await;
        });
        (inv, url)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_upstream_gives_504_at_the_deadline_and_the_circuit_opens() {
    let (inv, url) = SlowInventory::start(Duration::from_secs(3)).await;
    let redis = RedisServer::start().unwrap();
    let token = mint(Some(PEM), "show", "alice", now_s() + 300);
    let flags: Vec<String> = [
        "--inventory-url",
        &url,
        "--inventory-timeout-ms",
        "300",
        "--breaker-failures",
        "3",
        "--breaker-open-ms",
        "2000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let gw = gateway(&redis, &flags).await;
    let base = gw.url("");
    for _ in 0..3 {
        let t = Instant::now();
        let r = send(availability(&base, "show", Some(&token))).await;
        let took = t.elapsed();
        assert_eq!(
            (r.status, r.code()),
            (504, "UPSTREAM_TIMEOUT"),
            "{}",
            r.body
        );
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_millis(1000),
            "{took:?}"
        );
    }
    assert_eq!(inv.calls.load(Ordering::SeqCst), 3);
    // The deadline travels as grpc-timeout (tonic writes it in microseconds or milliseconds).
    let (sent, id) = inv.deadlines.lock().unwrap()[0].clone();
    assert!(sent == "300000u" || sent == "300m", "grpc-timeout {sent:?}");
    assert!(!id.is_empty(), "the request id travels upstream");
    // Open: refused at once (well under the 300 ms deadline), the upstream is not called.
    let opened = Instant::now();
    for _ in 0..5 {
        let t = Instant::now();
        let r = send(availability(&base, "show", Some(&token))).await;
        assert_eq!((r.status, r.code()), (503, "CIRCUIT_OPEN"));
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
    }
    assert_eq!(inv.calls.load(Ordering::SeqCst), 3);
    let m = send(client().get(gw.metrics_url("/metrics"))).await.body;
    let m = m.as_str().unwrap();
    for line in [
        r#"gateway_upstream_calls_total{upstream="inventory",outcome="timeout"} 3"#,
        r#"gateway_upstream_calls_total{upstream="inventory",outcome="circuit_open"} 5"#,
        r#"gateway_upstream_circuit_open{upstream="inventory"} 1"#,
    ] {
        assert!(m.contains(line), "{line} not in {m}");
    }
    // After the open period one probe goes through; the upstream has recovered, so it closes.
    inv.slow.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(opened.elapsed())).await;
    let r = send(availability(&base, "show", Some(&token))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        send(availability(&base, "show", Some(&token))).await.status,
        200
    );
    assert_eq!(inv.calls.load(Ordering::SeqCst), 5);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_the_concurrency_limit_requests_get_503_at_once() {
    let (inv, url) = SlowInventory::start(Duration::from_millis(1500)).await;
    let redis = RedisServer::start().unwrap();
    let token = mint(Some(PEM), "show", "alice", now_s() + 300);
    let flags: Vec<String> = [
        "--inventory-url",
        &url,
        "--inventory-timeout-ms",
        "5000",
        "--upstream-max-in-flight",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let gw = gateway(&redis, &flags).await;
    let base = gw.url("");
    // Warm the channel's connection so that the first calls are not slowed by connecting.
    inv.slow.store(false, Ordering::SeqCst);
    assert_eq!(
        send(availability(&base, "show", Some(&token))).await.status,
        200
    );
    inv.slow.store(true, Ordering::SeqCst);
    let first: Vec<_> = (0..2)
        .map(|_| tokio::spawn(send(availability(&base, "show", Some(&token)))))
        .collect();
    // Both are in flight once the upstream has seen them.
    while inv.calls.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = Instant::now();
    let over =
        futures::future::join_all((0..4).map(|_| send(availability(&base, "show", Some(&token)))))
            .await;
    assert!(
        t.elapsed() < Duration::from_millis(700),
        "answered at once, not after the 1.5 s upstream: {:?}",
        t.elapsed()
    );
    for r in over {
        assert_eq!(
            (r.status, r.code()),
            (503, "UPSTREAM_OVERLOADED"),
            "{}",
            r.body
        );
    }
    for f in first {
        assert_eq!(f.await.unwrap().status, 200);
    }
    assert_eq!(inv.calls.load(Ordering::SeqCst), 3);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn two_thousand_buyers_for_a_hundred_seats_get_exactly_a_hundred_holds() {
    const BUYERS: usize = 2000;
    let backends = Backends::start(None, &[("drop", 100)]).await;
    let redis = RedisServer::start().unwrap();
    let mut flags = backends.flags();
    // Every buyer at once: the limit and deadline are raised so that the outcome is decided
    // by the inventory, not by load shedding.
    flags.extend(
        [
            "--upstream-max-in-flight",
            "4096",
            "--upstream-timeout-ms",
            "20000",
            "--request-timeout-ms",
            "30000",
        ]
        .map(String::from),
    );
    let gw = gateway(&redis, &flags).await;
    let base = gw.url("");
    open_event(&base, "drop").await;
    // Real admissions for every buyer: join, READY, enter (100 at a time).
    use futures::StreamExt;
    let tokens: Vec<String> = futures::stream::iter(0..BUYERS)
        .map(|i| {
            let base = base.clone();
            async move { admission(&base, "drop", &format!("buyer-{i}")).await }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let calls_before = backends.calls();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(BUYERS)
        .build()
        .unwrap();
    let start = tokio::sync::Barrier::new(BUYERS);
    let start = Arc::new(start);
    let tasks: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let (http, base, start) = (http.clone(), base.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                send(
                    http.post(format!("{base}/api/v1/reservations"))
                        .bearer_auth(t)
                        .header("Idempotency-Key", format!("buy-{i}"))
                        .json(&json!({"event_id": "drop", "quantity": 1})),
                )
                .await
            })
        })
        .collect();
    let t = Instant::now();
    let mut held = 0;
    let mut conflicts = 0;
    let mut seats = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        match (r.status, r.code()) {
            (201, _) => {
                held += 1;
                assert!(seats.insert(
                    r.body["reserved_seats"][0]["seat_id"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                ));
            }
            (409, "INVENTORY_CONFLICT") => conflicts += 1,
            other => panic!("unexpected answer {other:?}: {}", r.body),
        }
    }
    eprintln!(
        "{BUYERS} concurrent reservations answered in {:?}",
        t.elapsed()
    );
    assert_eq!((held, conflicts), (100, BUYERS - 100));
    assert_eq!(
        backends.calls() - calls_before,
        BUYERS,
        "one upstream call per buyer"
    );
    let token = mint(Some(PEM), "drop", "late", now_s() + 300);
    let a = send(availability(&base, "drop", Some(&token))).await;
    assert_eq!(
        (
            a.body["available"].as_bool(),
            a.body["remaining_in_section"].as_i64()
        ),
        (Some(false), Some(0))
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_health_follows_the_store_and_reflection_lists_the_services() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let mut redis = RedisServer::start().unwrap();
    let flags: Vec<String> = ["--grpc-listen", "127.0.0.1:0", "--redis-timeout-ms", "300"]
        .map(String::from)
        .to_vec();
    let gw = gateway(&redis, &flags).await;
    let url = format!("http://{}", gw.grpc.unwrap());
    let channel = tonic::transport::Channel::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    let check = |service: &str| HealthCheckRequest {
        service: service.into(),
    };
    let status_of = async |h: &mut HealthClient<_>, s: &str| {
        h.check(check(s)).await.map(|r| r.into_inner().status)
    };
    // The first status is set right after the server starts (a store PING).
    for s in ["", "gateway.v1.QueueService"] {
        until("SERVING", async || {
            status_of(&mut health, s).await.ok() == Some(ServingStatus::Serving as i32)
        })
        .await;
    }
    // Redis dies: the health status follows readiness within a few seconds.
    redis.stop();
    until("NOT_SERVING", async || {
        status_of(&mut health, "gateway.v1.QueueService").await.ok()
            == Some(ServingStatus::NotServing as i32)
    })
    .await;
    redis.restart().unwrap();
    until("SERVING again", async || {
        status_of(&mut health, "").await.ok() == Some(ServingStatus::Serving as i32)
    })
    .await;

    let mut reflection = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let first = replies.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("not a service list: {first:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "common.v1.AdminService",
            "gateway.v1.GatewayService",
            "gateway.v1.QueueService",
            "gateway.v1.WebSocketService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection"
        ],
        "what this server serves, nothing else"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_status_names_the_pre_queue_and_sold_out_as_http_does() {
    let redis = RedisServer::start().unwrap();
    let flags: Vec<String> = ["--grpc-listen", "127.0.0.1:0"].map(String::from).to_vec();
    let gw = gateway(&redis, &flags).await;
    let base = gw.url("");
    let r = put_event(
        &base,
        "later",
        json!({"admit_per_second": 0, "max_active": 10, "opens_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(r.status, 201);
    let mut q = QueueServiceClient::connect(format!("http://{}", gw.grpc.unwrap()))
        .await
        .unwrap();
    let joined = q
        .join_queue(gw::JoinQueueRequest {
            event_id: "later".into(),
            session_id: "early-bird".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(joined.status, gw::QueueStatus::PreQueue as i32);
    assert_eq!(
        status(&base, &joined.waiting_token).await.body["status"],
        "PRE_QUEUE"
    );
    let sold = client()
        .post(gw.url("/admin/v1/events/later/actions"))
        .bearer_auth(ADMIN)
        .json(&json!({"action": "SOLD_OUT"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sold.status(), 200);
    let st = q
        .get_queue_status(gw::GetQueueStatusRequest {
            waiting_token: joined.waiting_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.status, gw::QueueStatus::SoldOut as i32);
    assert_eq!(
        status(&base, &joined.waiting_token).await.body["status"],
        "SOLD_OUT"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_queue_service_over_grpc() {
    let backends = Backends::start(None, &[("show", 10)]).await;
    let redis = RedisServer::start().unwrap();
    let mut flags = backends.flags();
    flags.extend(["--grpc-listen", "127.0.0.1:0"].map(String::from));
    let gw = gateway(&redis, &flags).await;
    let base = gw.url("");
    let r = put_event(
        &base,
        "show",
        json!({"admit_per_second": 0, "max_active": 10}),
    )
    .await;
    assert_eq!(r.status, 201);
    let addr = gw.grpc.expect("--grpc-listen binds");
    let mut q = QueueServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();

    let joined = q
        .join_queue(gw::JoinQueueRequest {
            event_id: "show".into(),
            session_id: "g1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(joined.status, gw::QueueStatus::Waiting as i32);
    assert_eq!(joined.position_hint, 1);
    assert!(joined.expires_at.is_some());
    let token = joined.waiting_token;
    // The same place over HTTP: one waiting room behind both APIs.
    assert_eq!(status(&base, &token).await.body["position"], 1);

    let st = q
        .get_queue_status(gw::GetQueueStatusRequest {
            waiting_token: token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (st.status, st.position, st.admission_ready),
        (gw::QueueStatus::Waiting as i32, 1, false)
    );

    let early = q
        .request_admission(gw::RequestAdmissionRequest {
            waiting_token: token.clone(),
            event_id: "show".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(early.code(), tonic::Code::FailedPrecondition);
    let detail = proto::error_of(&early).expect("common.v1.Error in the details");
    assert_eq!(detail.details[0].reason, "NOT_READY");

    let bad = q
        .get_queue_status(gw::GetQueueStatusRequest {
            waiting_token: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::Unauthenticated);
    let unknown = q
        .join_queue(gw::JoinQueueRequest {
            event_id: "nosuch".into(),
            session_id: "g1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    open_event(&base, "show").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = q
            .get_queue_status(gw::GetQueueStatusRequest {
                waiting_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if st.admission_ready {
            assert_eq!(st.status, gw::QueueStatus::Ready as i32);
            break;
        }
        assert!(Instant::now() < deadline, "never READY");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let wrong = q
        .request_admission(gw::RequestAdmissionRequest {
            waiting_token: token.clone(),
            event_id: "other".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::InvalidArgument);
    let granted = q
        .request_admission(gw::RequestAdmissionRequest {
            waiting_token: token.clone(),
            event_id: "show".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(granted.admission, gw::AdmissionStatus::Granted as i32);
    assert!(granted.ttl_seconds > 0 && granted.valid_until.is_some());
    // The gRPC grant opens the forwarded HTTP API.
    let a = send(availability(
        &base,
        "show",
        Some(&granted.reservation_token),
    ))
    .await;
    assert_eq!(a.status, 200, "{}", a.body);

    let other = q
        .join_queue(gw::JoinQueueRequest {
            event_id: "show".into(),
            session_id: "g2".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let left = q
        .leave_queue(gw::LeaveQueueRequest {
            waiting_token: other.waiting_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(left.left);
    let after = q
        .get_queue_status(gw::GetQueueStatusRequest {
            waiting_token: other.waiting_token,
        })
        .await;
    match after {
        Ok(s) => assert_eq!(s.into_inner().status, gw::QueueStatus::Expired as i32),
        Err(e) => assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}"),
    }
    drop(q);
    // Shutdown stops both servers.
    let t = Instant::now();
    gw.shutdown().await;
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the gRPC listener is closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_binary_serves_grpc_and_forwards_then_exits_on_sigterm() {
    let backends = Backends::start(None, &[("demo", 10)]).await;
    let grpc_port = testkit::free_port().unwrap();
    let grpc_addr = format!("127.0.0.1:{grpc_port}");
    let mut flags = vec!["--grpc-listen".to_owned(), grpc_addr.clone()];
    flags.extend(backends.flags());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    // The embedded store's demo event admits 2 per second.
    let mut gw = GatewayProcess::spawn(&flags);
    let mut q = QueueServiceClient::connect(format!("http://{grpc_addr}"))
        .await
        .unwrap();
    let joined = q
        .join_queue(gw::JoinQueueRequest {
            event_id: "demo".into(),
            session_id: "proc".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let deadline = Instant::now() + Duration::from_secs(10);
    let grant = loop {
        match q
            .request_admission(gw::RequestAdmissionRequest {
                waiting_token: joined.waiting_token.clone(),
                ..Default::default()
            })
            .await
        {
            Ok(g) => break g.into_inner(),
            Err(e) => assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}"),
        }
        assert!(Instant::now() < deadline, "never admitted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let a = send(availability(
        &gw.url(""),
        "demo",
        Some(&grant.reservation_token),
    ))
    .await;
    assert_eq!(
        (a.status, &a.body["remaining_in_section"]),
        (200, &json!(10))
    );
    assert_eq!(backends.calls(), 1);
    drop(q);
    gw.signal("TERM");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = gw.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(tokio::net::TcpStream::connect(&grpc_addr).await.is_err());
}
