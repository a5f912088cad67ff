//! Payment webhooks as a provider posts them (Standard Webhooks headers, the simulator's
//! body), the shop's calls around them (reserve, pay, read a reservation and the seats left)
//! and the gateway's `/metrics` counters.

use super::{client, get_as, send, Resp};
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use webhooks::StandardWebhooks;

/// Now as a webhook timestamp: Unix seconds.
pub fn webhook_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A listener on a free port and the webhook URL on it: the simulator must know where to post
/// before the gateway that takes its webhooks starts.
pub async fn webhook_listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!(
        "http://{}/webhooks/payments",
        listener.local_addr().unwrap()
    );
    (listener, hook)
}

/// The body of the simulator's `payment.approved` event.
pub fn approved_body(intent: &str, rid: &str, amount: i64) -> String {
    payment_body("payment.approved", intent, rid, amount)
}

/// The body of a payment event of type `kind` in the simulator's shape.
pub fn payment_body(kind: &str, intent: &str, rid: &str, amount: i64) -> String {
    json!({
        "type": kind,
        "timestamp": "2026-11-24T08:00:00Z",
        "data": {"payment_intent_id": intent, "reservation_id": rid, "amount_cents": amount, "currency": "USD"}
    })
    .to_string()
}

/// The `webhook-signature` value of `body` under `secret` (a `whsec_` key).
pub fn sign(secret: &str, id: &str, ts: i64, body: &str) -> String {
    StandardWebhooks::new(&[secret])
        .unwrap()
        .sign(id, ts, body.as_bytes())
}

/// A POST of `body` to `{base}/webhooks/payments` with the Standard Webhooks headers, the
/// whole `webhook-signature` value given.
pub fn webhook_post(
    http: &reqwest::Client, base: &str, id: &str, ts: i64, body: &str, signature: &str,
) -> reqwest::RequestBuilder {
    http.post(format!("{base}/webhooks/payments"))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body.to_owned())
}

/// A Standard Webhooks POST of `body` signed by `secret` at `ts`, leaving out the header named
/// `skip` (a delivery missing it).
pub fn signed(
    base: &str, secret: &str, id: &str, ts: i64, body: &str, skip: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut r = client()
        .post(format!("{base}/webhooks/payments"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sign(secret, id, ts, body)),
    ] {
        if skip != Some(k) {
            r = r.header(k, v);
        }
    }
    r
}

/// The value of the `/metrics` line that starts with `line_prefix` on the listener `base`.
pub async fn metric(base: &str, line_prefix: &str) -> u64 {
    // The exposition is no JSON: `send` hands it over as a string.
    let r = send(client().get(format!("{base}/metrics"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(line_prefix)
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("{line_prefix} missing from /metrics"))
}

/// Each `(line prefix, value)` as `/metrics` on `base` reports it.
pub async fn assert_metrics(base: &str, want: &[(&str, u64)]) {
    for (line, value) in want {
        assert_eq!(metric(base, line).await, *value, "{line}");
    }
}

/// Holds `quantity` seats of `show` under the admission `token`: the reservation id.
pub async fn reserve(base: &str, token: &str, key: &str, quantity: u32) -> String {
    let r = send(
        client()
            .post(format!("{base}/api/v1/reservations"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({"event_id": "show", "quantity": quantity})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["reservation_id"].as_str().unwrap().to_owned()
}

/// Creates the payment intent of reservation `rid` with the simulator's `scenario` (it settles
/// and posts its signed webhook on its own): the intent id.
pub async fn pay(base: &str, token: &str, key: &str, rid: &str, scenario: &str) -> String {
    let p = send(
        client()
            .post(format!("{base}/api/v1/payments/intents"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({"reservation_id": rid, "scenario": scenario})),
    )
    .await;
    assert_eq!(p.status, 201, "{}", p.body);
    p.body["payment_intent_id"].as_str().unwrap().to_owned()
}

/// Reserves `quantity` seats and creates a payment intent with `scenario`: (reservation, intent).
pub async fn buy(
    base: &str, token: &str, key: &str, quantity: u32, scenario: &str,
) -> (String, String) {
    let rid = reserve(base, token, &format!("r-{key}"), quantity).await;
    let intent = pay(base, token, &format!("p-{key}"), &rid, scenario).await;
    (rid, intent)
}

/// The availability of `event` as the holder of the admission `jwt` asks for it.
pub async fn availability(base: &str, event: &str, jwt: &str) -> Resp {
    get_as(base, &format!("/api/v1/events/{event}/availability"), jwt).await
}

/// `GET /api/v1/reservations/{rid}`: the body.
pub async fn reservation(base: &str, token: &str, rid: &str) -> Value {
    let r = get_as(base, &format!("/api/v1/reservations/{rid}"), token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// Polls the reservation until its status is `want` (or panics after `within`).
pub async fn wait_reservation(
    base: &str, token: &str, rid: &str, want: &str, within: Duration,
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

/// Seats of `show` left in the section.
pub async fn remaining(base: &str, token: &str) -> Value {
    let a = get_as(base, "/api/v1/events/show/availability?quantity=1", token).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["remaining_in_section"].clone()
}
