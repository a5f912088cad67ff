//! Deliveries applied exactly once whatever happens around them: a gateway SIGKILLed right
//! after acknowledging one, a thousand copies at once over two replicas, and a backend that is
//! down (retries, a dead letter, an operator's retry and resolve through the admin API).

use super::*;

/// Three attempts 20 to 100 ms apart, the circuit breaker out of the way: a webhook the worker
/// refuses is dead-lettered within a second.
const RETRY_QUICKLY: &[&str] = &[
    "--webhook-max-attempts",
    "3",
    "--webhook-backoff-ms",
    "20",
    "--webhook-backoff-max-ms",
    "100",
    "--breaker-failures",
    "100",
];

/// An admitted user of `show` on `base` with one seat held and paid with APPROVE: (token,
/// reservation, intent).
async fn approved_purchase(base: &str) -> (String, String, String) {
    let token = open_and_admit(base, "show", "alice").await;
    let (rid, intent) = buy(base, &token, "1", 1, "APPROVE").await;
    // The simulator settles in milliseconds (it reports to nobody here): the worker checks the
    // webhook's outcome against it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    (token, rid, intent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_acknowledged_just_before_a_sigkill_is_applied_after_the_restart() {
    let redis = RedisServer::start().unwrap();
    let backends = Backends::start(None, &[("show", 10)]).await;
    let shop = Gw::on_free_port(&redis, &backends.flags()).await;
    let (token, rid, intent) = approved_purchase(&shop.base).await;

    // A gateway process whose worker is unreachable acknowledges the webhook (stored in
    // Redis), then is SIGKILLed: nothing was applied.
    let url = redis.url();
    let nowhere = format!("http://127.0.0.1:{}", testkit::free_port().unwrap());
    let consumer = |worker: &str| {
        GatewayProcess::spawn(&[
            "--redis-url",
            url.as_str(),
            "--webhook-secret",
            SECRET,
            "--webhook-backoff-ms",
            "50",
            "--webhook-backoff-max-ms",
            "200",
            "--webhook-max-attempts",
            "1000",
            "--webhook-claim-idle-ms",
            "500",
            "--payment-result-url",
            worker,
        ])
    };
    let body = approved_body(&intent, &rid, PRICE);
    let deliver = |p: &GatewayProcess| {
        send(signed(
            &p.url(""),
            SECRET,
            "msg_kill",
            webhook_now(),
            &body,
            None,
        ))
    };
    let mut first = consumer(&nowhere);
    let r = deliver(&first).await;
    assert_eq!(r.status, 200, "{}", r.body);
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    assert_eq!(
        reservation(&shop.base, &token, &rid).await["status"],
        "PENDING"
    );
    assert_eq!(backends.processed(), 0);

    // A new process (another consumer) finds the entry and applies it.
    let second = consumer(&backends.url());
    wait_reservation(
        &shop.base,
        &token,
        &rid,
        "CONFIRMED",
        Duration::from_secs(20),
    )
    .await;
    // The provider's retry of the same webhook is a duplicate.
    let r = deliver(&second).await;
    assert_eq!((r.status, &r.body["status"]), (200, &json!("duplicate")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(backends.processed(), 1);
    drop(second);
    shop.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_deliveries_across_two_replicas_apply_once() {
    let redis = RedisServer::start().unwrap();
    let backends = Backends::start(None, &[("show", 10)]).await;
    // A thousand appends at once on a loaded machine may queue past the default 1 s Redis
    // timeout; this test is about applying once, not about latency.
    let flags = shop_flags(&backends, &["--redis-timeout-ms", "5000"]);
    let a = Gw::on_free_port(&redis, &flags).await;
    let b = Gw::on_free_port(&redis, &flags).await;
    let token = open_and_admit(&a.base, "show", "alice").await;
    let (rid, intent) = buy(&a.base, &token, "1", 2, "APPROVE").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let body = approved_body(&intent, &rid, 2 * PRICE);
    let ts = webhook_now();
    let sig = sign(SECRET, "msg_storm", ts, &body);
    let http = client();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let base = [&a.base, &b.base][i % 2];
        let req = webhook_post(&http, base, "msg_storm", ts, &body, &sig);
        tasks.push(tokio::spawn(async move { send(req).await }));
    }
    let mut accepted = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["status"] == "accepted" {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1, "one delivery stored, 999 duplicates");
    wait_reservation(&a.base, &token, &rid, "CONFIRMED", Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(backends.processed(), 1, "applied once");
    let dups = metric(&a.metrics, "webhooks_duplicates_total ").await
        + metric(&b.metrics, "webhooks_duplicates_total ").await;
    assert_eq!(dups, 999);
    for gw in [a, b] {
        gw.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_down_backend_makes_webhooks_retry_then_dead_letter_and_an_admin_retry_applies_them() {
    let redis = RedisServer::start().unwrap();
    let backends = Backends::start(None, &[("show", 10)]).await;
    let gw = Gw::on_free_port(&redis, &shop_flags(&backends, RETRY_QUICKLY)).await;
    let base = gw.base.clone();
    let (token, rid, intent) = approved_purchase(&base).await;

    backends.down.store(true, Ordering::SeqCst);
    let body = approved_body(&intent, &rid, PRICE);
    let r = send(signed(
        &base,
        SECRET,
        "msg_down",
        webhook_now(),
        &body,
        None,
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let admin = |method: reqwest::Method, path: &str| {
        send(
            client()
                .request(method, format!("{base}/admin/v1/dlq{path}"))
                .bearer_auth(ADMIN),
        )
    };
    let get = |path: &str| admin(reqwest::Method::GET, path);
    let post = |path: &str| admin(reqwest::Method::POST, path);
    let deadline = Instant::now() + Duration::from_secs(15);
    let letter = loop {
        let l = get("?limit=10").await;
        assert_eq!(l.status, 200, "{}", l.body);
        if let Some(first) = l.body["dead_letters"].as_array().unwrap().first() {
            break first.clone();
        }
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["envelope"]["event_id"], "msg_down");
    assert_eq!(letter["envelope"]["event_type"], "payment.approved");
    assert!(
        letter["last_error"].as_str().unwrap().contains("worker"),
        "{letter}"
    );
    assert_eq!(
        backends.processed(),
        3,
        "three attempts reached the (down) worker"
    );
    assert_metrics(
        &gw.metrics,
        &[
            ("webhooks_retried_total ", 2),
            ("webhooks_dead_lettered_total ", 1),
        ],
    )
    .await;
    assert_eq!(reservation(&base, &token, &rid).await["status"], "PENDING");
    let id = letter["id"].as_str().unwrap().to_owned();
    let one = get(&format!("/{id}")).await;
    assert_eq!((one.status, &one.body), (200, &letter));

    // The admin API needs the admin token.
    let anon = send(client().post(format!("{base}/admin/v1/dlq/{id}/retry"))).await;
    assert_eq!((anon.status, anon.code()), (401, "UNAUTHORIZED"));

    // Back up: an operator retries (twice; the second changes nothing) and it is applied once.
    backends.down.store(false, Ordering::SeqCst);
    let retry = format!("/{id}/retry");
    let mut stream_ids = Vec::new();
    for (status, enqueued) in [(202, true), (200, false)] {
        let r = post(&retry).await;
        assert_eq!(
            (r.status, &r.body["enqueued"]),
            (status, &json!(enqueued)),
            "{}",
            r.body
        );
        stream_ids.push(r.body["stream_id"].clone());
    }
    assert_eq!(stream_ids[0], stream_ids[1]);
    wait_reservation(&base, &token, &rid, "CONFIRMED", Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(backends.processed(), 4);

    // Resolve: once, with who and why.
    let resolve = |body: Value| {
        send(
            client()
                .post(format!("{base}/admin/v1/dlq/{id}/resolve"))
                .bearer_auth(ADMIN)
                .json(&body),
        )
    };
    let r = resolve(json!({"resolved_by": "ops@example.com", "note": "backend outage"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "resolved");
    assert_eq!(r.body["resolved_by"], "ops@example.com");
    assert_eq!(r.body["note"], "backend outage");
    let again = resolve(json!({"resolved_by": "someone"})).await;
    assert_eq!((again.status, again.code()), (409, "ALREADY_RESOLVED"));
    let empty = resolve(json!({"resolved_by": ""})).await;
    assert_eq!(empty.status, 400);
    let missing = get("/1-0").await;
    assert_eq!((missing.status, missing.code()), (404, "NOT_FOUND"));
    let bad = get("/nope").await;
    assert_eq!(bad.status, 404);
    for bad in ["0", "1001", "ten"] {
        let limit = get(&format!("?limit={bad}")).await;
        assert_eq!((limit.status, limit.code()), (400, "INVALID_ARGUMENT"));
    }
    gw.shutdown().await;
}
