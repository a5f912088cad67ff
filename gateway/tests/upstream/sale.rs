//! A sale through the forwarded API: availability, holds, payment, the simulator's signed
//! webhook and the worker's verdict; then two thousand buyers at once for a hundred seats.

use super::common::backends::*;
use super::*;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use proto::reservation::v1 as res;
use proto::reservation::v1::ReservationStatus::{Cancelled, Confirmed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::RedisServer;
use tokio::sync::mpsc;

/// The webhooks received: whether each one's signature verified, and its payload.
type Hooks = mpsc::UnboundedReceiver<(bool, Value)>;

/// A webhook receiver on a free port that checks each request against the Standard Webhooks
/// scheme itself (HMAC-SHA256 of "id.timestamp.body" under the base64 key of the secret).
async fn webhook_receiver() -> (String, Hooks) {
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

/// The next webhook received (within 10 s): whether its signature verified, and its payload.
async fn next_hook(hooks: &mut Hooks) -> (bool, Value) {
    let next = tokio::time::timeout(Duration::from_secs(10), hooks.recv()).await;
    next.expect("a webhook within 10 s").unwrap()
}

/// The payment `result` of `intent` for reservation `rid`, as the worker is told it.
fn payment(intent: &str, rid: &str, result: res::PaymentResult) -> res::ProcessPaymentRequest {
    res::ProcessPaymentRequest {
        payment_intent_id: intent.into(),
        reservation_id: rid.into(),
        result: result as i32,
        ..Default::default()
    }
}

/// Tells the worker a payment's result (the gateway's webhook endpoint is the next issue).
async fn settle(
    worker: &mut proto::WorkerClient, req: res::ProcessPaymentRequest,
) -> res::ProcessPaymentResponse {
    let done = worker.process_payment_result(req).await.unwrap();
    done.into_inner()
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
    let alice = Buyer::new(&base, &token);

    let a = availability(alice, "show").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["available"], true);
    assert_eq!(a.body["remaining_in_section"], 10);
    let first = &a.body["available_seats"][0];
    assert_eq!(first["seat_id"], "A-1");
    assert_eq!(first["status"], "AVAILABLE");
    assert_eq!(first["price"]["amount_cents"], PRICE);

    let r = reserve(alice, "k1", seats(2)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["status"], "PENDING");
    assert_eq!(r.body["replayed"], false);
    assert!(r.body["hold_expires_at"].is_string());
    assert_eq!(r.body["reserved_seats"].as_array().unwrap().len(), 2);
    let total = json!({"amount_cents": 2 * PRICE, "currency": "USD"});
    assert_eq!(r.body["total_amount"], total);
    let rid = r.body["reservation_id"].as_str().unwrap().to_owned();
    assert!(rid.starts_with("r_") && rid.ends_with("_show"), "{rid}");
    // The same key answers the same reservation and holds nothing more.
    let again = reserve(alice, "k1", seats(2)).await;
    let same = &again.body["reservation_id"];
    assert_eq!((again.status, same), (200, &json!(rid)));
    assert_eq!(again.body["replayed"], true);
    let other = reserve(alice, "k1", seats(3)).await;
    assert_eq!((other.status, other.code()), (409, "IDEMPOTENCY_CONFLICT"));
    let a = availability(alice, "show").await;
    assert_eq!(a.body["remaining_in_section"], 8);

    // Upstream refusals keep their meaning and the backend's error code. One active hold per
    // admission (the backends' default): alice holds k1 already.
    let bob_token = admission(&base, "show", "bob").await;
    let bob = Buyer::new(&base, &bob_token);
    let seat = |id: &str| json!({"event_id": "show", "seat_ids": [id]});
    for (who, key, body, want) in [
        (alice, Some("k2"), seats(11), (400, "INVALID_ARGUMENT")),
        (alice, Some("k3"), seat("A-3"), (409, "HOLD_LIMIT")),
        (bob, Some("k3"), seat("A-1"), (409, "INVENTORY_CONFLICT")),
        (alice, None, seats(1), (400, "IDEMPOTENCY_REQUIRED")),
        (alice, Some("k4"), seats("two"), (400, "INVALID_ARGUMENT")),
    ] {
        let r = post(who, "reservations", key, body).await;
        assert_eq!((r.status, r.code()), want, "{}", r.body);
    }

    // Another admitted user of the same event cannot see or pay for it.
    for r in [
        reservation(bob, &rid).await,
        pay(bob, "p0", &rid, None).await,
    ] {
        assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{}", r.body);
    }

    let p = pay(alice, "p1", &rid, Some("APPROVE")).await;
    assert_eq!(p.status, 201, "{}", p.body);
    assert_eq!(p.body["status"], "PENDING");
    assert!(p.body["expires_at"].is_string());
    let intent = p.body["payment_intent_id"].as_str().unwrap().to_owned();
    let replay = pay(alice, "p1", &rid, None).await;
    let replayed = &replay.body["payment_intent_id"];
    assert_eq!((replay.status, replayed), (200, &json!(intent)));
    let odd = pay(alice, "p2", &rid, Some("MAYBE")).await;
    assert_eq!((odd.status, odd.code()), (400, "INVALID_ARGUMENT"));

    // The simulator reports the approval by a signed webhook…
    let (valid, hook) = next_hook(&mut hooks).await;
    assert!(
        valid,
        "the webhook's Standard Webhooks signature verifies: {hook}"
    );
    assert_eq!(hook["type"], "payment.approved");
    assert_eq!(hook["data"]["payment_intent_id"], json!(intent));
    assert_eq!(hook["data"]["reservation_id"], json!(rid));
    assert_eq!(hook["data"]["amount_cents"], 2 * PRICE);
    let pending = reservation(alice, &rid).await;
    assert_eq!(
        (pending.status, &pending.body["status"]),
        (200, &json!("PENDING"))
    );

    // …and the worker, told the result, confirms the reservation.
    let mut worker = proto::WorkerClient::new(backends.channel().await);
    let approved = res::ProcessPaymentRequest {
        webhook_id: "test".into(),
        ..payment(&intent, &rid, res::PaymentResult::Approved)
    };
    let done = settle(&mut worker, approved).await;
    assert_eq!(done.reservation_status, Confirmed as i32);
    let confirmed = reservation(alice, &rid).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    let c = &confirmed.body;
    assert_eq!(c["status"], "CONFIRMED");
    assert_eq!(c["event_id"], "show");
    assert_eq!(c["order_id"], json!(done.order_id));
    assert_eq!(c["payment_intent_id"], json!(intent));
    assert_eq!(c["seats"][0]["status"], "SOLD");
    assert!(c["confirmed_at"].is_string());
    let a = availability(alice, "show").await;
    assert_eq!(a.body["remaining_in_section"], 8, "sold seats stay taken");

    // A declined card: the webhook says so, the worker cancels, the seat is free again.
    let r = reserve(alice, "k5", seats(1)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let rid2 = r.body["reservation_id"].as_str().unwrap().to_owned();
    let p = pay(alice, "p3", &rid2, Some("fail")).await;
    assert_eq!(p.status, 201, "{}", p.body);
    let (valid, hook) = next_hook(&mut hooks).await;
    assert!(valid, "{hook}");
    assert_eq!(hook["type"], "payment.failed");
    assert_eq!(hook["data"]["failure_code"], "card_declined");
    let intent2 = p.body["payment_intent_id"].as_str().unwrap();
    let declined = res::ProcessPaymentRequest {
        failure_code: "card_declined".into(),
        ..payment(intent2, &rid2, res::PaymentResult::Failed)
    };
    let done = settle(&mut worker, declined).await;
    assert_eq!(done.reservation_status, Cancelled as i32);
    let cancelled = reservation(alice, &rid2).await;
    assert_eq!(cancelled.body["status"], "CANCELLED");
    let late = pay(alice, "p4", &rid2, None).await;
    let refusal = (late.status, late.code());
    assert_eq!(refusal, (409, "FAILED_PRECONDITION"), "{}", late.body);
    let a = availability(alice, "show").await;
    let left = &a.body["remaining_in_section"];
    assert_eq!(left, 8, "the cancelled seat is free again");
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
    let a = availability(Buyer::new(&base, &token), "drop").await;
    assert_eq!(
        (
            a.body["available"].as_bool(),
            a.body["remaining_in_section"].as_i64()
        ),
        (Some(false), Some(0))
    );
    gw.shutdown().await;
}
