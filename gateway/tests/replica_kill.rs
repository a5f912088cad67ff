//! A gateway replica dies (SIGKILL) under load, with real parts only: three `gateway`
//! processes on one redis-server, the `backends` services in this process over gRPC on
//! loopback, WebSocket clients (tokio-tungstenite) and a provider flooding signed webhooks.
//!
//! One kill proves three things a user would notice:
//! - the WebSocket clients of the dead replica reconnect to another with the same token and
//!   find their place: exactly the old one minus those admitted in between (the queue lives in
//!   Redis, not in a replica; `replica_kill/clients.rs`);
//! - admissions keep flowing after the kill as before it, and never faster than the configured
//!   rate allows (the token bucket is in Redis; the surviving replicas' ticks draw from it, so
//!   no replica admits on its own account);
//! - every webhook answered 2xx, and every one that failed on the dead replica and was re-sent
//!   elsewhere, is applied by the backends exactly once, including those the dead replica had
//!   read and was forwarding (taken over by another consumer after `--webhook-claim-idle-ms`;
//!   `replica_kill/flood.rs`).
//!
//! The figures (reconnect time, rates, webhook counts, takeover delay) are printed, not
//! asserted beyond correctness: a wall-clock tolerance on the rate fails on a loaded machine
//! (ticks run late) for reasons no user would see, while a count above rate × time is a
//! second bucket whatever the load.

#[path = "replica_kill/clients.rs"]
mod clients;
mod common;
#[path = "replica_kill/flood.rs"]
mod flood;

use clients::admitted;
use common::backends::WEBHOOK_SECRET;
use common::*;
use futures::StreamExt;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::RedisServer;

/// Admissions per second of the queue event.
const RATE: f64 = 50.0;
/// Users queued ahead of the WebSocket clients: more than the test admits (about 20 s × RATE).
const FILLER: usize = 1200;
/// WebSocket clients, all connected to the replica that is killed.
const CLIENTS: usize = 40;
/// Webhook deliveries in the flood, one per reservation.
const WEBHOOKS: usize = 450;
/// How long the (real) worker takes per payment result, so that the killed replica is
/// surely in the middle of forwarding some when it dies.
const WORKER_DELAY: Duration = Duration::from_millis(200);
/// The measurement windows, before and after the kill.
const WINDOW: Duration = Duration::from_secs(6);

/// Three replicas on the Redis at `url` with the same secrets and keys, as behind one load
/// balancer, forwarding payment results to `backends`. The takeover idle is shortened from
/// 30 s to 2 s (still above the 1 s forward deadline, so a slow forward is not duplicated by a
/// takeover).
fn replicas(url: &str, backends: &str) -> Vec<GatewayProcess> {
    (0..3)
        .map(|i| {
            GatewayProcess::spawn(&[
                "--redis-url",
                url,
                "--ws-tick-ms",
                "50",
                "--webhook-secret",
                WEBHOOK_SECRET,
                "--payment-result-url",
                backends,
                "--webhook-forward-timeout-ms",
                "1000",
                "--webhook-claim-idle-ms",
                "2000",
                "--webhook-consumer-name",
                &format!("gw-{i}"),
            ])
        })
        .collect()
}

/// Sets the `room` event's rate (0: nobody admitted yet).
async fn admit_per_second(base: &str, rate: u64) -> Resp {
    let config = json!({"admit_per_second": rate, "max_active": 1000000});
    put_event(base, "room", config).await
}

/// The backlog, joined through all three replicas, then the followed clients behind it:
/// their waiting tokens.
async fn queue_up(bases: &[String]) -> Vec<String> {
    let filler = futures::stream::iter(0..FILLER)
        .map(|i| {
            let base = bases[i % 3].clone();
            async move { join(&base, "room", &format!("filler-{i}")).await.status }
        })
        .buffer_unordered(32)
        .collect::<Vec<u16>>()
        .await;
    assert!(filler.iter().all(|s| *s == 201), "every filler joined");
    let mut tokens = Vec::new();
    for i in 0..CLIENTS {
        let r = join(&bases[i % 3], "room", &format!("client-{i}")).await;
        assert_eq!(r.status, 201, "{}", r.body);
        tokens.push(r.body["waiting_token"].as_str().unwrap().to_owned());
    }
    tokens
}

/// The whole scenario around one SIGKILL (see the file's header).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_replica_loses_no_place_no_admission_rate_and_no_webhook() {
    let redis = RedisServer::start().unwrap();
    let (backends_url, core, log) = flood::start_backends().await;
    let paid = flood::paid_reservations(&core, WEBHOOKS).await;
    let gws = replicas(&redis.url(), &backends_url);
    let bases: Vec<String> = gws.iter().map(|g| g.url("")).collect();
    let (x, y) = (&bases[0], &bases[1]);
    let r = admit_per_second(y, 0).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let tokens = queue_up(&bases).await;

    // Every client on replica X; its place read while nobody has been admitted.
    let killed_at = Arc::new(Mutex::new(None::<Instant>));
    let others = [gws[1].addr, gws[2].addr];
    let followers = clients::follow_all(gws[0].addr, others, &tokens, FILLER, &killed_at).await;

    // Admissions start; the window before the kill begins after a settling second.
    admit_per_second(y, RATE as u64).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s0 = Instant::now();
    let a0 = admitted(y).await;
    let t0 = Instant::now();

    // The webhook flood starts a second before the kill and lasts about two after it: ~150
    // deliveries per second.
    tokio::time::sleep(WINDOW - Duration::from_secs(1)).await;
    let senders = flood::flood(paid, &bases, x);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // SIGKILL replica X, at a moment it is forwarding webhooks (its consumer reads a batch,
    // forwards it for WORKER_DELAY, then reads the next: between two batches it may hold none).
    let pending_x_now = || flood::pending_with(redis.port(), "gw-0");
    let deadline = Instant::now() + Duration::from_secs(1);
    while pending_x_now() < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t1 = Instant::now();
    *killed_at.lock().unwrap() = Some(t1);
    gws[0].signal("KILL");
    let a1 = admitted(y).await;
    let s1 = Instant::now();
    // What X held stays pending with it until another consumer takes it over.
    let pending_x = pending_x_now();

    // The window after the kill, measured on the survivors.
    let mut takeover: Option<Duration> = None;
    while t1.elapsed() < WINDOW {
        if takeover.is_none() && pending_x_now() == 0 {
            takeover = Some(t1.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let a2 = admitted(y).await;
    let t2 = Instant::now();

    // (b) The admission rate, before and after.
    let before = (a1 - a0) as f64 / (t1 - t0).as_secs_f64();
    let after = (a2 - a1) as f64 / (t2 - t1).as_secs_f64();
    eprintln!(
        "admission rate: {before:.1}/s before the kill ({} in {:.2} s), {after:.1}/s after ({} in {:.2} s); configured {RATE}/s",
        a1 - a0,
        (t1 - t0).as_secs_f64(),
        a2 - a1,
        (t2 - t1).as_secs_f64()
    );
    // Each window's count against the time from the start of the read before it to the end
    // of the read after it (so at least the time between the two counts, however slow the
    // reads), plus the bucket's one-second burst.
    for (name, count, within) in [("before", a1 - a0, s1 - s0), ("after", a2 - a1, t2 - t1)] {
        assert!(count > 0, "no admission {name} the kill");
        let allowed = RATE * (within.as_secs_f64() + 1.0);
        assert!(
            count as f64 <= allowed,
            "{count} admitted {name} the kill in {within:?}: more than {RATE}/s allows"
        );
    }

    // (a) Every client came back, at its place minus those admitted in between.
    clients::assert_back_in_place(followers).await;

    // (c) Every webhook applied exactly once, the taken-over ones included.
    flood::assert_applied_once(senders, &log, redis.port(), pending_x, takeover).await;
}
