//! Payment webhooks end to end, with real parts only: gateways over a real redis-server (in
//! this process on port 0, and real `gateway` processes), the real `backends` services (from
//! the `services` crate) over gRPC on loopback with their payment simulator sending signed
//! webhooks, and a layer that counts every gRPC call the backends receive.

mod common;
// Real providers' deliveries (Stripe events, Ed25519 v1a) beside the simulator's, in their own
// file; the `webhooks/` folder is no test target of its own.
#[path = "webhooks/providers.rs"]
mod providers;
// The forwarding window, batched acknowledgements and readiness of the inbox.
#[path = "webhooks/forwarding.rs"]
mod forwarding;

use common::backends::*;
use common::*;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testkit::RedisServer;
use webhooks::{StandardWebhooks, Stripe};

const SECRET: &str = WEBHOOK_SECRET;
const OLD_SECRET: &str = "whsec_dGhpcyBpcyB0aGUgb2xkIHNlY3JldCBrZXkh";
const STRIPE_SECRET: &str = "whsec_stripe_test_secret";

/// A gateway in this process on an already-bound listener (so its URL can be given to the
/// backends' simulator before it starts).
struct Gw {
    base: String,
    /// The `/metrics` listener's base URL.
    metrics: String,
    gw: TestGateway,
}

impl Gw {
    async fn start(
        listener: tokio::net::TcpListener,
        redis: &RedisServer,
        extra: &[String],
    ) -> Self {
        Self::start_at(listener, &redis.url(), extra).await
    }

    /// Like [`Gw::start`], with any `--redis-url` (a cluster's).
    async fn start_at(listener: tokio::net::TcpListener, url: &str, extra: &[String]) -> Self {
        let mut args = vec!["--redis-url", url, "--admission-tick-ms", "20"];
        args.extend(extra.iter().map(String::as_str));
        let gw = TestGateway::start_on(listener, &args).await;
        Self {
            base: gw.url(""),
            metrics: gw.metrics_url(""),
            gw,
        }
    }

    async fn on_free_port(redis: &RedisServer, extra: &[String]) -> Self {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start(l, redis, extra).await
    }

    async fn shutdown(self) {
        self.gw.shutdown().await
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The current Unix second, waiting first for a fresh one to begin: a timestamp just past the
/// window in the future (now + 301) is then judged within the same second by the gateway, not
/// one second later, when it would be back inside the window.
async fn at_second_start() -> i64 {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    tokio::time::sleep(Duration::from_nanos(
        1_000_000_000 - u64::from(t.subsec_nanos()),
    ))
    .await;
    now_s()
}

/// Reserves `quantity` seats of `show` (idempotency key `r-{key}`): the reservation id.
async fn reserve(base: &str, token: &str, key: &str, quantity: u32) -> String {
    let r = send(
        client()
            .post(format!("{base}/api/v1/reservations"))
            .bearer_auth(token)
            .header("Idempotency-Key", format!("r-{key}"))
            .json(&json!({"event_id": "show", "quantity": quantity})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["reservation_id"].as_str().unwrap().to_owned()
}

/// Reserves `quantity` seats and creates a payment intent with `scenario`: (reservation, intent).
async fn buy(
    base: &str,
    token: &str,
    key: &str,
    quantity: u32,
    scenario: &str,
) -> (String, String) {
    let rid = reserve(base, token, key, quantity).await;
    let p = send(
        client()
            .post(format!("{base}/api/v1/payments/intents"))
            .bearer_auth(token)
            .header("Idempotency-Key", format!("p-{key}"))
            .json(&json!({"reservation_id": rid, "scenario": scenario})),
    )
    .await;
    assert_eq!(p.status, 201, "{}", p.body);
    (
        rid,
        p.body["payment_intent_id"].as_str().unwrap().to_owned(),
    )
}

async fn reservation(base: &str, token: &str, rid: &str) -> Value {
    let r = send(
        client()
            .get(format!("{base}/api/v1/reservations/{rid}"))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn wait_reservation(
    base: &str,
    token: &str,
    rid: &str,
    want: &str,
    within: Duration,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let r = reservation(base, token, rid).await;
        if r["status"] == want {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "reservation never became {want}: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn remaining(base: &str, token: &str) -> Value {
    let a = send(
        client()
            .get(format!("{base}/api/v1/events/show/availability?quantity=1"))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["remaining_in_section"].clone()
}

fn approved_body(intent: &str, rid: &str, amount: i64) -> String {
    json!({
        "type": "payment.approved",
        "timestamp": "2026-11-24T08:00:00Z",
        "data": {"payment_intent_id": intent, "reservation_id": rid, "amount_cents": amount, "currency": "USD"}
    })
    .to_string()
}

/// A Standard Webhooks POST of `body` signed by `secret` at `ts` (headers can be left out).
fn signed(
    base: &str,
    secret: &str,
    id: &str,
    ts: i64,
    body: &str,
    skip: Option<&str>,
) -> reqwest::RequestBuilder {
    let sig = StandardWebhooks::new(&[secret])
        .unwrap()
        .sign(id, ts, body.as_bytes());
    let mut r = client()
        .post(format!("{base}/webhooks/payments"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sig),
    ] {
        if skip != Some(k) {
            r = r.header(k, v);
        }
    }
    r
}

async fn metric(base: &str, line_prefix: &str) -> u64 {
    let text = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(line_prefix)
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("{line_prefix} missing from /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_simulators_signed_webhook_confirms_a_purchase_and_a_decline_frees_the_seats() {
    let redis = RedisServer::start().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!(
        "http://{}/webhooks/payments",
        listener.local_addr().unwrap()
    );
    let backends = Backends::start(Some(hook), &[("show", 10)]).await;
    let mut flags = backends.flags();
    flags.extend(strings(&["--webhook-secret", SECRET]));
    let gw = Gw::start(listener, &redis, &flags).await;
    let base = gw.base.clone();
    let token = open_and_admit(&base, "show", "alice").await;

    // APPROVE: the simulator approves, POSTs its signed webhook to the gateway, which stores it
    // and forwards it to WorkerService.ProcessPaymentResult: the reservation is CONFIRMED.
    let (rid, intent) = buy(&base, &token, "1", 2, "APPROVE").await;
    let r = wait_reservation(&base, &token, &rid, "CONFIRMED", Duration::from_secs(15)).await;
    assert_eq!(r["payment_intent_id"], json!(intent));
    assert!(r["order_id"].as_str().unwrap().starts_with("ord_"), "{r}");
    assert_eq!(r["seats"][0]["status"], "SOLD");
    assert_eq!(remaining(&base, &token).await, 8);

    // FAIL: the decline arrives the same way; the reservation is CANCELLED, the seat is back.
    let (rid2, _) = buy(&base, &token, "2", 1, "FAIL").await;
    // The seat is held until the decline is applied; the simulator declines within a few
    // milliseconds (time scale 0.001), so on a fast run the decline may already be through.
    // Either way, 7 or 8 left and never anything else, and CANCELLED below.
    let held = remaining(&base, &token).await;
    assert!(
        held == 7 || held == 8,
        "{held} seats left after reserving one"
    );
    wait_reservation(&base, &token, &rid2, "CANCELLED", Duration::from_secs(15)).await;
    assert_eq!(remaining(&base, &token).await, 8);

    assert_eq!(backends.processed(), 2, "each outcome was applied once");
    assert_eq!(metric(&gw.metrics, "webhooks_forwarded_total ").await, 2);
    assert_eq!(metric(&gw.metrics, "webhooks_received_total ").await, 2);
    assert!(metric(&gw.metrics, "webhooks_end_to_end_latency_seconds_count ").await >= 2);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_well_signed_fresh_webhooks_are_accepted() {
    let redis = RedisServer::start().unwrap();
    // No worker: webhooks are stored, not forwarded (this test is about the door).
    let gw = Gw::on_free_port(
        &redis,
        &strings(&[
            "--webhook-secret",
            SECRET,
            "--webhook-secret",
            OLD_SECRET,
            "--stripe-webhook-secret",
            STRIPE_SECRET,
        ]),
    )
    .await;
    let base = gw.base.clone();
    let body = approved_body("pi_1_show", "r_1_show", 5000);
    let now = now_s();

    let ok = send(signed(&base, SECRET, "msg_ok", now, &body, None)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        ok.body,
        json!({"status": "accepted", "webhook_id": "msg_ok"})
    );
    let again = send(signed(&base, SECRET, "msg_ok", now, &body, None)).await;
    assert_eq!(
        (again.status, &again.body["status"]),
        (200, &json!("duplicate"))
    );
    // Rotation: the old secret still verifies while it is configured.
    let old = send(signed(&base, OLD_SECRET, "msg_old", now, &body, None)).await;
    assert_eq!(old.status, 200, "{}", old.body);
    // Within the window either way.
    for (id, ts) in [("msg_early", now - 290), ("msg_late", now + 290)] {
        assert_eq!(
            send(signed(&base, SECRET, id, ts, &body, None))
                .await
                .status,
            200
        );
    }

    let wrong = "whsec_d3Jvbmcgc2VjcmV0IGtleSBmb3IgdGVzdHM=";
    let mut refusals = vec![
        send(signed(&base, wrong, "msg_wrong", now, &body, None)).await,
        send(signed(&base, SECRET, "msg_stale", now - 301, &body, None)).await,
        send(signed(
            &base,
            SECRET,
            "msg_future",
            at_second_start().await + 301,
            &body,
            None,
        ))
        .await,
        send(signed(
            &base,
            SECRET,
            "msg_noid",
            now,
            &body,
            Some("webhook-id"),
        ))
        .await,
        send(signed(
            &base,
            SECRET,
            "msg_nots",
            now,
            &body,
            Some("webhook-timestamp"),
        ))
        .await,
        send(signed(
            &base,
            SECRET,
            "msg_nosig",
            now,
            &body,
            Some("webhook-signature"),
        ))
        .await,
    ];
    // Tampered: a valid signature over another body, amount changed.
    let sig = StandardWebhooks::new(&[SECRET])
        .unwrap()
        .sign("msg_tamper", now, body.as_bytes());
    let tampered = body.replace("5000", "1");
    let forged = [
        (sig.clone(), tampered.clone()),
        (
            "v1,Zm9yZ2VkIHNpZ25hdHVyZSBvZiB0aGlydHkgdHdvIGJ5dGVzIQ==".into(),
            body.clone(),
        ),
        ("v1a,whatever v2,abc".into(), body.clone()),
    ];
    for (sig, b) in forged {
        refusals.push(
            send(
                client()
                    .post(format!("{base}/webhooks/payments"))
                    .header("webhook-id", "msg_tamper")
                    .header("webhook-timestamp", now.to_string())
                    .header("webhook-signature", sig)
                    .body(b),
            )
            .await,
        );
    }
    let first_message = refusals[0].body["error"]["message"].clone();
    for r in &refusals {
        assert_eq!(
            (r.status, r.code()),
            (401, "INVALID_SIGNATURE"),
            "{}",
            r.body
        );
        // One generic answer: nothing tells a forger which check failed.
        assert_eq!(r.body["error"]["message"], first_message);
    }

    // Near the 256 KiB limit: accepted; past it: 413.
    let pad = |n: usize| {
        let mut v: Value = serde_json::from_str(&body).unwrap();
        let base_len = body.len() + r#","failure_code":"""#.len();
        v["data"]["failure_code"] = json!("x".repeat(n - base_len));
        let s = v.to_string();
        assert_eq!(s.len(), n);
        s
    };
    let big = pad(256 * 1024 - 16);
    let r = send(signed(&base, SECRET, "msg_big", now, &big, None)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let huge = pad(256 * 1024 + 1);
    let r = send(signed(&base, SECRET, "msg_huge", now, &huge, None)).await;
    assert_eq!(
        (r.status, r.code()),
        (413, "PAYLOAD_TOO_LARGE"),
        "{}",
        r.body
    );

    // Forward compatibility: a field we do not know (at the top or in `data`) is no reason to
    // refuse a verified webhook; it is stored with the rest of the body, verbatim.
    let extended = body.replacen(
        r#""currency":"USD""#,
        r#""currency":"USD","note":"gift for Ada""#,
        1,
    );
    let extended = extended.replacen('{', r#"{"api_version":"2027-01-01","#, 1);
    assert!(extended.contains("note") && extended.contains("api_version"));
    let r = send(signed(&base, SECRET, "msg_extra", now, &extended, None)).await;
    assert_eq!(
        (r.status, &r.body),
        (
            200,
            &json!({"status": "accepted", "webhook_id": "msg_extra"})
        )
    );
    let stored =
        testkit::raw_command(redis.port(), "XREVRANGE wh:{payments}:inbox + - COUNT 1").unwrap();
    assert!(
        stored.contains("msg_extra") && stored.contains(&extended),
        "{stored}"
    );

    // A verified event of a type we do not act on is acknowledged (so the provider stops
    // retrying it), counted, and neither stored nor dead-lettered.
    let refund = r#"{"type":"payment.refunded","timestamp":"2026-11-24T08:00:00Z","data":{"payment_intent_id":"pi_1_show"}}"#;
    for _ in 0..2 {
        let r = send(signed(&base, SECRET, "msg_refund", now, refund, None)).await;
        assert_eq!(
            (r.status, &r.body),
            (
                200,
                &json!({"status": "ignored", "webhook_id": "msg_refund"})
            )
        );
    }

    // Well signed but not a payment event (not JSON, or one of our types without its data):
    // 400 and a dead letter.
    let junk = r#"{"type":"payment.approved","data":{}}"#;
    let r = send(signed(&base, SECRET, "msg_junk", now, junk, None)).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_PAYLOAD"), "{}", r.body);
    let r = send(signed(&base, SECRET, "msg_text", now, "approved!", None)).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_PAYLOAD"), "{}", r.body);
    let dlq = send(
        client()
            .get(format!("{base}/admin/v1/dlq"))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(dlq.status, 200, "{}", dlq.body);
    let letters = dlq.body["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 2, "{}", dlq.body);
    assert_eq!(letters[0]["envelope"]["event_id"], "msg_text");
    assert_eq!(letters[0]["envelope"]["payload"], "approved!");
    assert_eq!(letters[1]["envelope"]["event_id"], "msg_junk");
    assert_eq!(letters[1]["envelope"]["payload"], junk);
    assert_eq!(letters[1]["attempts"], 0);
    assert_eq!(letters[1]["status"], "active");

    // Stripe's scheme on its own route.
    let stripe = Stripe::new(&[STRIPE_SECRET]).unwrap();
    let sbody = approved_body("pi_2_show", "r_2_show", 5000).replacen('{', r#"{"id":"evt_1","#, 1);
    let ok = send(
        client()
            .post(format!("{base}/webhooks/stripe"))
            .header("Stripe-Signature", stripe.sign(now, sbody.as_bytes()))
            .body(sbody.clone()),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["webhook_id"], "evt_1");
    let bad = send(
        client()
            .post(format!("{base}/webhooks/stripe"))
            .header("Stripe-Signature", stripe.sign(now - 301, sbody.as_bytes()))
            .body(sbody),
    )
    .await;
    assert_eq!((bad.status, bad.code()), (401, "INVALID_SIGNATURE"));

    assert_eq!(
        metric(&gw.metrics, "webhooks_rejected_total{reason=\"stale\"} ").await,
        2
    );
    assert_eq!(
        metric(&gw.metrics, "webhooks_rejected_total{reason=\"future\"} ").await,
        1
    );
    assert_eq!(
        metric(
            &gw.metrics,
            "webhooks_rejected_total{reason=\"missing_header\"} "
        )
        .await,
        3
    );
    assert_eq!(
        metric(
            &gw.metrics,
            "webhooks_rejected_total{reason=\"bad_signature\"} "
        )
        .await,
        4
    );
    assert_eq!(
        metric(
            &gw.metrics,
            "webhooks_rejected_total{reason=\"too_large\"} "
        )
        .await,
        1
    );
    assert_eq!(
        metric(
            &gw.metrics,
            "webhooks_rejected_total{reason=\"malformed\"} "
        )
        .await,
        2
    );
    assert_eq!(
        metric(
            &gw.metrics,
            "webhooks_ignored_total{type=\"payment.refunded\",reason=\"unhandled_type\"} "
        )
        .await,
        2
    );
    assert_eq!(metric(&gw.metrics, "webhooks_duplicates_total ").await, 1);
    gw.shutdown().await;

    // A gateway without webhook secrets has no webhook door.
    let plain = TestGateway::start(&[]).await;
    let r = send(signed(&plain.url(""), SECRET, "msg_x", now, &body, None)).await;
    assert_eq!((r.status, r.code()), (501, "WEBHOOKS_DISABLED"));
    assert!(!r.headers.contains_key("retry-after"));
    plain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_acknowledged_just_before_a_sigkill_is_applied_after_the_restart() {
    let redis = RedisServer::start().unwrap();
    let backends = Backends::start(None, &[("show", 10)]).await;
    let shop = Gw::on_free_port(&redis, &backends.flags()).await;
    let token = open_and_admit(&shop.base, "show", "alice").await;
    let (rid, intent) = buy(&shop.base, &token, "1", 1, "APPROVE").await;
    // The simulator settles in milliseconds (it reports to nobody here).
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A gateway process whose worker is unreachable acknowledges the webhook (stored in
    // Redis), then is SIGKILLed: nothing was applied.
    let url = redis.url();
    let nowhere = format!("http://127.0.0.1:{}", testkit::free_port().unwrap());
    let common = [
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
    ];
    let mut first =
        GatewayProcess::spawn(&[&common[..], &["--payment-result-url", nowhere.as_str()]].concat());
    let body = approved_body(&intent, &rid, PRICE);
    let r = send(signed(
        &first.url(""),
        SECRET,
        "msg_kill",
        now_s(),
        &body,
        None,
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    assert_eq!(
        reservation(&shop.base, &token, &rid).await["status"],
        "PENDING"
    );
    assert_eq!(backends.processed(), 0);

    // A new process (another consumer) finds the entry and applies it.
    let backend_url = backends.url();
    let second = GatewayProcess::spawn(
        &[&common[..], &["--payment-result-url", backend_url.as_str()]].concat(),
    );
    wait_reservation(
        &shop.base,
        &token,
        &rid,
        "CONFIRMED",
        Duration::from_secs(20),
    )
    .await;
    // The provider's retry of the same webhook is a duplicate.
    let r = send(signed(
        &second.url(""),
        SECRET,
        "msg_kill",
        now_s(),
        &body,
        None,
    ))
    .await;
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
    let mut flags = backends.flags();
    flags.extend(strings(&["--webhook-secret", SECRET]));
    let a = Gw::on_free_port(&redis, &flags).await;
    let b = Gw::on_free_port(&redis, &flags).await;
    let token = open_and_admit(&a.base, "show", "alice").await;
    let (rid, intent) = buy(&a.base, &token, "1", 2, "APPROVE").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let body = approved_body(&intent, &rid, 2 * PRICE);
    let ts = now_s();
    let http = client();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let sig = StandardWebhooks::new(&[SECRET])
            .unwrap()
            .sign("msg_storm", ts, body.as_bytes());
        let req = http
            .post(format!("{base}/webhooks/payments"))
            .header("webhook-id", "msg_storm")
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body.clone());
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
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_down_backend_makes_webhooks_retry_then_dead_letter_and_an_admin_retry_applies_them() {
    let redis = RedisServer::start().unwrap();
    let backends = Backends::start(None, &[("show", 10)]).await;
    let mut flags = backends.flags();
    flags.extend(strings(&[
        "--webhook-secret",
        SECRET,
        "--webhook-max-attempts",
        "3",
        "--webhook-backoff-ms",
        "20",
        "--webhook-backoff-max-ms",
        "100",
        "--breaker-failures",
        "100",
    ]));
    let gw = Gw::on_free_port(&redis, &flags).await;
    let base = gw.base.clone();
    let token = open_and_admit(&base, "show", "alice").await;
    let (rid, intent) = buy(&base, &token, "1", 1, "APPROVE").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    backends.down.store(true, Ordering::SeqCst);
    let body = approved_body(&intent, &rid, PRICE);
    let r = send(signed(&base, SECRET, "msg_down", now_s(), &body, None)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let admin = |req: reqwest::RequestBuilder| req.bearer_auth(ADMIN);
    let deadline = Instant::now() + Duration::from_secs(15);
    let letter = loop {
        let l = send(admin(client().get(format!("{base}/admin/v1/dlq?limit=10")))).await;
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
    assert_eq!(metric(&gw.metrics, "webhooks_retried_total ").await, 2);
    assert_eq!(
        metric(&gw.metrics, "webhooks_dead_lettered_total ").await,
        1
    );
    assert_eq!(reservation(&base, &token, &rid).await["status"], "PENDING");
    let id = letter["id"].as_str().unwrap().to_owned();
    let one = send(admin(client().get(format!("{base}/admin/v1/dlq/{id}")))).await;
    assert_eq!((one.status, &one.body), (200, &letter));

    // The admin API needs the admin token.
    let anon = send(client().post(format!("{base}/admin/v1/dlq/{id}/retry"))).await;
    assert_eq!((anon.status, anon.code()), (401, "UNAUTHORIZED"));

    // Back up: an operator retries (twice; the second changes nothing) and it is applied once.
    backends.down.store(false, Ordering::SeqCst);
    let r1 = send(admin(
        client().post(format!("{base}/admin/v1/dlq/{id}/retry")),
    ))
    .await;
    assert_eq!(
        (r1.status, &r1.body["enqueued"]),
        (202, &json!(true)),
        "{}",
        r1.body
    );
    let r2 = send(admin(
        client().post(format!("{base}/admin/v1/dlq/{id}/retry")),
    ))
    .await;
    assert_eq!(
        (r2.status, &r2.body["enqueued"]),
        (200, &json!(false)),
        "{}",
        r2.body
    );
    assert_eq!(r1.body["stream_id"], r2.body["stream_id"]);
    wait_reservation(&base, &token, &rid, "CONFIRMED", Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(backends.processed(), 4);

    // Resolve: once, with who and why.
    let resolve = |body: Value| {
        send(admin(
            client()
                .post(format!("{base}/admin/v1/dlq/{id}/resolve"))
                .json(&body),
        ))
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
    let missing = send(admin(client().get(format!("{base}/admin/v1/dlq/1-0")))).await;
    assert_eq!((missing.status, missing.code()), (404, "NOT_FOUND"));
    let bad = send(admin(client().get(format!("{base}/admin/v1/dlq/nope")))).await;
    assert_eq!(bad.status, 404);
    for bad in ["0", "1001", "ten"] {
        let limit = send(admin(
            client().get(format!("{base}/admin/v1/dlq?limit={bad}")),
        ))
        .await;
        assert_eq!((limit.status, limit.code()), (400, "INVALID_ARGUMENT"));
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_acknowledged_that_was_not_stored() {
    let mut redis = RedisServer::start().unwrap();
    let gw = Gw::on_free_port(
        &redis,
        &strings(&["--webhook-secret", SECRET, "--redis-timeout-ms", "300"]),
    )
    .await;
    let body = approved_body("pi_1_show", "r_1_show", 5000);
    // Redis is down: the webhook cannot be stored, so it is not acknowledged (the provider
    // retries a 503).
    redis.stop();
    let r = send(signed(&gw.base, SECRET, "msg_outage", now_s(), &body, None)).await;
    assert_eq!((r.status, r.code()), (503, "UNAVAILABLE"), "{}", r.body);
    assert_eq!(r.headers["retry-after"], "1");
    // Back up: the provider's retry is stored.
    redis.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = send(signed(&gw.base, SECRET, "msg_outage", now_s(), &body, None)).await;
        if r.status == 200 {
            assert_eq!(r.body["status"], "accepted");
            break;
        }
        assert!(Instant::now() < deadline, "never stored: {}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gw.shutdown().await;
}
