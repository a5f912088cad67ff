//! What the gateway answers without a backend, or instead of a slow one: requests without a
//! valid admission, an upstream not configured or down, a deadline that passes (and the
//! circuit breaker behind it), and more calls in flight than the limit.

use super::common::backends::*;
use super::*;
use proto::reservation::v1 as res;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::RedisServer;

/// An admission token of alice for "show", signed by hand with the gateways' key.
fn alice_token() -> String {
    mint(Some(PEM), "show", "alice", now_s() + 300)
}

/// The availability of "show" as `who`, refused with `want` (status, code): the answer, and
/// how long it took.
async fn refused(who: Buyer<'_>, want: (u16, &str)) -> (Resp, Duration) {
    let t = Instant::now();
    let r = availability(who, "show").await;
    assert_eq!((r.status, r.code()), want, "{}", r.body);
    (r, t.elapsed())
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
    let anonymous = Buyer {
        base: &base,
        token: None,
    };
    let with_bad_tokens = bad_tokens
        .iter()
        .map(|(w, t)| (Some(*w), Buyer::new(&base, t)));
    for (what, who) in [(None, anonymous)].into_iter().chain(with_bad_tokens) {
        let want = if who.token.is_none() { 401 } else { 403 };
        let rs = [
            availability(who, "show").await,
            reserve(who, "k", seats(1)).await,
            pay(who, "k", &rid, None).await,
            reservation(who, &rid).await,
        ];
        for r in rs {
            assert_eq!(r.status, want, "{what:?}: {}", r.body);
        }
    }
    let expired = availability(Buyer::new(&base, &bad_tokens[1].1), "show").await;
    assert_eq!(expired.code(), "ADMISSION_EXPIRED");
    assert_eq!(
        availability(anonymous, "show").await.code(),
        "UNAUTHENTICATED"
    );
    let calls = backends.calls();
    assert_eq!(calls, 0, "no backend call without a valid admission");

    // A genuine admission goes through: exactly one call per request.
    open_event(&base, "show").await;
    let token = admission(&base, "show", "alice").await;
    let alice = Buyer::new(&base, &token);
    assert_eq!(availability(alice, "show").await.status, 200);
    assert_eq!(backends.calls(), 1);
    // The token of "show" does not open "other".
    let r = availability(alice, "other").await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"));
    assert_eq!(backends.calls(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn an_unconfigured_upstream_is_501_and_a_down_one_503_quickly() {
    let redis = RedisServer::start().unwrap();
    let token = alice_token();
    let gw = gateway(&redis, NO_FLAGS).await;
    let base = gw.url("");
    let alice = Buyer::new(&base, &token);
    // Not configured is permanent: 501 without Retry-After, so clients do not retry.
    let (r, _) = refused(alice, (501, "UPSTREAM_NOT_CONFIGURED")).await;
    assert!(!r.headers.contains_key("retry-after"));
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("not configured"), "{message}");
    let r = reserve(alice, "k", seats(1)).await;
    assert_eq!((r.status, r.code()), (501, "UPSTREAM_NOT_CONFIGURED"));
    assert!(!r.headers.contains_key("retry-after"));
    gw.shutdown().await;

    // A closed port: connection refused, well within the deadline; then the circuit opens.
    let down = format!("http://127.0.0.1:{}", testkit::free_port().unwrap());
    let flags = ["--inventory-url", &down, "--breaker-failures", "3"];
    let gw = gateway(&redis, &flags).await;
    let base = gw.url("");
    let alice = Buyer::new(&base, &token);
    for _ in 0..3 {
        let (r, took) = refused(alice, (503, "UPSTREAM_UNAVAILABLE")).await;
        assert!(took < Duration::from_millis(500), "{took:?}");
        assert_eq!(r.headers["retry-after"], "1");
    }
    refused(alice, (503, "CIRCUIT_OPEN")).await;
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
        &self, req: tonic::Request<res::CheckAvailabilityRequest>,
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
        &self, _: tonic::Request<res::CommitReservationRequest>,
    ) -> Result<tonic::Response<res::CommitReservationResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("test server"))
    }

    async fn release_hold(
        &self, _: tonic::Request<res::ReleaseHoldRequest>,
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

/// A gateway over a redis-server of its own whose inventory is a [`SlowInventory`].
struct SlowStack {
    inv: SlowInventory,
    gw: TestGateway,
    base: String,
    token: String,
    _redis: RedisServer,
}

impl SlowStack {
    /// The inventory answers after `delay`; `limits` are the gateway's flags, as typed.
    async fn start(delay: Duration, limits: &str) -> Self {
        let (inv, url) = SlowInventory::start(delay).await;
        let redis = RedisServer::start().unwrap();
        let mut flags = vec!["--inventory-url", &url];
        flags.extend(limits.split_whitespace());
        let gw = gateway(&redis, &flags).await;
        let (base, token) = (gw.url(""), alice_token());
        Self {
            inv,
            gw,
            base,
            token,
            _redis: redis,
        }
    }

    fn alice(&self) -> Buyer<'_> {
        Buyer::new(&self.base, &self.token)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_upstream_gives_504_at_the_deadline_and_the_circuit_opens() {
    let limits = "--inventory-timeout-ms 300 --breaker-failures 3 --breaker-open-ms 2000";
    let s = SlowStack::start(Duration::from_secs(3), limits).await;
    let (inv, alice) = (&s.inv, s.alice());
    for _ in 0..3 {
        let (_, took) = refused(alice, (504, "UPSTREAM_TIMEOUT")).await;
        let deadline = Duration::from_millis(300)..Duration::from_millis(1000);
        assert!(deadline.contains(&took), "{took:?}");
    }
    assert_eq!(inv.calls.load(Ordering::SeqCst), 3);
    // The deadline travels as grpc-timeout (tonic writes it in microseconds or milliseconds).
    let (sent, id) = inv.deadlines.lock().unwrap()[0].clone();
    assert!(sent == "300000u" || sent == "300m", "grpc-timeout {sent:?}");
    assert!(!id.is_empty(), "the request id travels upstream");
    // Open: refused at once (well under the 300 ms deadline), the upstream is not called.
    let opened = Instant::now();
    for _ in 0..5 {
        let (_, took) = refused(alice, (503, "CIRCUIT_OPEN")).await;
        assert!(took < Duration::from_millis(200), "{took:?}");
    }
    assert_eq!(inv.calls.load(Ordering::SeqCst), 3);
    let m = send(client().get(s.gw.metrics_url("/metrics"))).await.body;
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
    let r = availability(alice, "show").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(availability(alice, "show").await.status, 200);
    assert_eq!(inv.calls.load(Ordering::SeqCst), 5);
    s.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_the_concurrency_limit_requests_get_503_at_once() {
    let limits = "--inventory-timeout-ms 5000 --upstream-max-in-flight 2";
    let s = SlowStack::start(Duration::from_millis(1500), limits).await;
    let (inv, alice) = (&s.inv, s.alice());
    // Warm the channel's connection so that the first calls are not slowed by connecting.
    inv.slow.store(false, Ordering::SeqCst);
    assert_eq!(availability(alice, "show").await.status, 200);
    inv.slow.store(true, Ordering::SeqCst);
    let first: Vec<_> = (0..2)
        .map(|_| tokio::spawn(availability(alice, "show")))
        .collect();
    // Both are in flight once the upstream has seen them.
    while inv.calls.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = Instant::now();
    let over = futures::future::join_all((0..4).map(|_| availability(alice, "show"))).await;
    assert!(
        t.elapsed() < Duration::from_millis(700),
        "answered at once, not after the 1.5 s upstream: {:?}",
        t.elapsed()
    );
    for r in over {
        let refusal = (r.status, r.code());
        assert_eq!(refusal, (503, "UPSTREAM_OVERLOADED"), "{}", r.body);
    }
    for f in first {
        assert_eq!(f.await.unwrap().status, 200);
    }
    assert_eq!(inv.calls.load(Ordering::SeqCst), 3);
    s.gw.shutdown().await;
}
