//! The forwarded API and the gRPC QueueService end to end, with real parts only: gateways on
//! port 0 over a real redis-server, the real `backends` services (from the `services` crate)
//! served over gRPC on loopback behind a layer that counts every call they receive, a real
//! webhook receiver that checks Standard Webhooks signatures, and hand-written gRPC servers
//! that are slow on purpose.

mod common;
// A sale from availability to the payment's signed webhook, and two thousand buyers at once;
// the `upstream/` folder is no test target of its own.
#[path = "upstream/sale.rs"]
mod sale;
// What is answered without (or instead of) a backend: no valid admission, no upstream or a
// dead one, a slow one (deadline and circuit breaker), too many calls in flight.
#[path = "upstream/refusals.rs"]
mod refusals;
// The QueueService, health and reflection over gRPC, in this process and in the binary.
#[path = "upstream/grpc.rs"]
mod grpc;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::future::Future;

/// Who calls the forwarded API (`/api/v1/…`): a gateway's base URL and an admission token
/// (None: no Authorization header at all).
#[derive(Clone, Copy)]
struct Buyer<'a> {
    base: &'a str,
    token: Option<&'a str>,
}

impl<'a> Buyer<'a> {
    fn new(base: &'a str, token: &'a str) -> Self {
        let token = Some(token);
        Self { base, token }
    }

    fn request(self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let r = client().request(method, format!("{}/api/v1/{path}", self.base));
        match self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }
}

/// The availability of two seats of `event`. The future owns its request: it can be spawned.
fn availability(who: Buyer<'_>, event: &str) -> impl Future<Output = Resp> {
    let path = format!("events/{event}/availability?quantity=2");
    send(who.request(Method::GET, &path))
}

/// `POST /api/v1/{path}` with the JSON `body` and, when given, an Idempotency-Key.
async fn post(who: Buyer<'_>, path: &str, key: Option<&str>, body: Value) -> Resp {
    let mut r = who.request(Method::POST, path).json(&body);
    if let Some(k) = key {
        r = r.header("Idempotency-Key", k);
    }
    send(r).await
}

/// Holds seats: `POST /api/v1/reservations` with `body` under the Idempotency-Key `key`.
async fn reserve(who: Buyer<'_>, key: &str, body: Value) -> Resp {
    post(who, "reservations", Some(key), body).await
}

/// A reservation of `quantity` seats of "show" (not a number: to see it refused).
fn seats(quantity: impl Into<Value>) -> Value {
    json!({"event_id": "show", "quantity": quantity.into()})
}

/// Pays for reservation `rid` under the Idempotency-Key `key`, in the simulator's `scenario`
/// when given.
async fn pay(who: Buyer<'_>, key: &str, rid: &str, scenario: Option<&str>) -> Resp {
    let mut body = json!({ "reservation_id": rid });
    if let Some(s) = scenario {
        body["scenario"] = s.into();
    }
    post(who, "payments/intents", Some(key), body).await
}

/// `GET /api/v1/reservations/{id}`.
async fn reservation(who: Buyer<'_>, id: &str) -> Resp {
    send(who.request(Method::GET, &format!("reservations/{id}"))).await
}
