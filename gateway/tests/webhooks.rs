//! Payment webhooks end to end, with real parts only: gateways over a real redis-server (in
//! this process on port 0, and real `gateway` processes), the real `backends` services (from
//! the `services` crate) over gRPC on loopback with their payment simulator sending signed
//! webhooks, and a layer that counts every gRPC call the backends receive.
//!
//! By job, in the `webhooks/` folder (no test target of its own): the door (`intake.rs`),
//! deliveries applied once across crashes, storms and outages (`delivery.rs`), the forwarding
//! window and readiness (`forwarding.rs`), and real providers' deliveries (`providers.rs`).

mod common;
#[path = "webhooks/delivery.rs"]
mod delivery;
#[path = "webhooks/forwarding.rs"]
mod forwarding;
#[path = "webhooks/intake.rs"]
mod intake;
#[path = "webhooks/providers.rs"]
mod providers;

use common::backends::*;
use common::webhook_http::*;
use common::*;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use testkit::RedisServer;
use webhooks::Stripe;

const SECRET: &str = WEBHOOK_SECRET;
const OLD_SECRET: &str = "whsec_dGhpcyBpcyB0aGUgb2xkIHNlY3JldCBrZXkh";
const STRIPE_SECRET: &str = "whsec_stripe_test_secret";

/// A gateway in this process, with the base URLs of its API and of its `/metrics` listener.
struct Gw {
    base: String,
    metrics: String,
    gw: TestGateway,
}

impl Gw {
    /// On an already-bound `listener` (so that its URL can be given to the backends' simulator
    /// before it starts), over the Redis at `url` (a server's or a cluster's).
    async fn start_at(
        listener: tokio::net::TcpListener, url: &str, extra: &[impl AsRef<str>],
    ) -> Self {
        let mut args = vec!["--redis-url", url, "--admission-tick-ms", "20"];
        args.extend(extra.iter().map(AsRef::as_ref));
        Self::of(TestGateway::start_on(listener, &args).await)
    }

    async fn on_free_port(redis: &RedisServer, extra: &[impl AsRef<str>]) -> Self {
        Self::of(gateway(redis, extra).await)
    }

    fn of(gw: TestGateway) -> Self {
        Self {
            base: gw.url(""),
            metrics: gw.metrics_url(""),
            gw,
        }
    }

    async fn shutdown(self) {
        self.gw.shutdown().await
    }
}

/// The flags of a gateway that forwards to `backends` and verifies `SECRET`, then `extra`.
fn shop_flags(backends: &Backends, extra: &[&str]) -> Vec<String> {
    let mut flags = backends.flags();
    flags.extend(["--webhook-secret", SECRET].into_iter().map(String::from));
    flags.extend(extra.iter().map(|s| s.to_string()));
    flags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_simulators_signed_webhook_confirms_a_purchase_and_a_decline_frees_the_seats() {
    let redis = RedisServer::start().unwrap();
    let (listener, hook) = webhook_listener().await;
    let backends = Backends::start(Some(hook), &[("show", 10)]).await;
    let gw = Gw::start_at(listener, &redis.url(), &shop_flags(&backends, &[])).await;
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
async fn nothing_is_acknowledged_that_was_not_stored() {
    let mut redis = RedisServer::start().unwrap();
    let gw = Gw::on_free_port(
        &redis,
        &["--webhook-secret", SECRET, "--redis-timeout-ms", "300"],
    )
    .await;
    let body = approved_body("pi_1_show", "r_1_show", 5000);
    let post = || {
        send(signed(
            &gw.base,
            SECRET,
            "msg_outage",
            webhook_now(),
            &body,
            None,
        ))
    };
    // Redis is down: the webhook cannot be stored, so it is not acknowledged (the provider
    // retries a 503).
    redis.stop();
    let r = post().await;
    assert_eq!((r.status, r.code()), (503, "UNAVAILABLE"), "{}", r.body);
    assert_eq!(r.headers["retry-after"], "1");
    // Back up: the provider's retry is stored.
    redis.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = post().await;
        if r.status == 200 {
            assert_eq!(r.body["status"], "accepted");
            break;
        }
        assert!(Instant::now() < deadline, "never stored: {}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gw.shutdown().await;
}
