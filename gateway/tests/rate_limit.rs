//! Per-client rate limits of a real gateway on port 0 (in-memory store, the `demo` event; two
//! replicas on one real Redis for the shared limit), with a manual clock so that refills are
//! moved, not waited for. Clients on other addresses
//! bind 127.0.0.2 (all of 127.0.0.0/8 is loopback on Linux).

mod common;

use common::{send, Resp, TestGateway, ADMIN};
use gateway::ratesync::RateSync;
use gateway::{Config, DEMO_EVENT};
use queue::clock::ManualClock;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

struct Gw {
    gw: TestGateway,
    clock: ManualClock,
    /// The cross-replica sync, when started with `--redis-url`.
    sync: Option<Arc<RateSync>>,
}

impl Gw {
    async fn start(extra: &[&str]) -> Self {
        Self::start_with_clock(extra, ManualClock::at_system_now()).await
    }

    async fn start_with_clock(extra: &[&str], clock: ManualClock) -> Self {
        // The shared harness turns the per-address limits off unless a flag names them; here
        // the ones not named keep the binary's defaults.
        let defaults = Config::default().rate_limits;
        let join = defaults.join_rate_per_ip.to_string();
        let status = defaults.status_rate_per_ip.to_string();
        let mut args = extra.to_vec();
        if !extra.contains(&"--join-rate-per-ip") {
            args.extend(["--join-rate-per-ip", &join]);
        }
        if !extra.contains(&"--status-rate-per-ip") {
            args.extend(["--status-rate-per-ip", &status]);
        }
        let gw = TestGateway::start_with_clock(&args, Arc::new(clock.clone())).await;
        let sync = gw.state.rate_sync.clone();
        Self { gw, clock, sync }
    }

    fn url(&self, path: &str) -> String {
        self.gw.url(path)
    }
}

/// A client whose connections come from `local` (a loopback address).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .local_address(local.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn join_as(gw: &Gw, c: &reqwest::Client, session: &str, xff: Option<&str>) -> Resp {
    let mut req = c
        .post(gw.url("/api/v1/queue/join"))
        .json(&serde_json::json!({"event_id": DEMO_EVENT, "session_id": session}));
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    send(req).await
}

async fn status_as(gw: &Gw, c: &reqwest::Client, token: &str) -> Resp {
    send(c.get(gw.url("/api/v1/queue/status")).bearer_auth(token)).await
}

fn assert_limited(r: &Resp, retry_after: &str) {
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(r.code(), "RATE_LIMITED");
    assert!(!r.body["error"]["message"].as_str().unwrap().is_empty());
    assert_eq!(
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some(retry_after)
    );
}

#[tokio::test]
async fn the_join_after_n_in_a_minute_is_refused_until_a_token_is_back() {
    let gw = Gw::start(&["--join-rate-per-ip", "3"]).await;
    let a = client_from("127.0.0.1");
    for i in 0..3 {
        assert_eq!(join_as(&gw, &a, &format!("a{i}"), None).await.status, 201);
    }
    // 3 per minute: one token every 20 s.
    assert_limited(&join_as(&gw, &a, "a3", None).await, "20");
    // Another address has its own bucket.
    let b = client_from("127.0.0.2");
    assert_eq!(join_as(&gw, &b, "b0", None).await.status, 201);
    // A refused join did not take a token; 15 s later one is 5 s away.
    gw.clock.advance_ms(15_000);
    assert_limited(&join_as(&gw, &a, "a3", None).await, "5");
    gw.clock.advance_ms(5_000);
    assert_eq!(join_as(&gw, &a, "a3", None).await.status, 201);
    assert_limited(&join_as(&gw, &a, "a4", None).await, "20");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_client() {
    let gw = Gw::start(&["--join-rate-per-ip", "1", "--trusted-proxy", "127.0.0.0/8"]).await;
    let proxy = client_from("127.0.0.1");
    let r = join_as(&gw, &proxy, "x1", Some("203.0.113.1")).await;
    assert_eq!(r.status, 201);
    let r = join_as(&gw, &proxy, "x2", Some("198.51.100.7, 203.0.113.2")).await;
    assert_eq!(
        r.status, 201,
        "another forwarded address has its own bucket"
    );
    let r = join_as(&gw, &proxy, "x3", Some("203.0.113.1")).await;
    assert_limited(&r, "60");
    // A forged left part does not change the client the proxy appended.
    let r = join_as(&gw, &proxy, "x4", Some("192.0.2.99, 203.0.113.1")).await;
    assert_limited(&r, "60");
    // Without the header the proxy itself is the client.
    assert_eq!(join_as(&gw, &proxy, "x5", None).await.status, 201);
}

#[tokio::test]
async fn without_a_trusted_proxy_a_forged_x_forwarded_for_does_not_escape() {
    let gw = Gw::start(&["--join-rate-per-ip", "1"]).await;
    let c = client_from("127.0.0.1");
    assert_eq!(join_as(&gw, &c, "f0", None).await.status, 201);
    let r = join_as(&gw, &c, "f1", Some("203.0.113.50")).await;
    assert_limited(&r, "60");
    let r = send(
        c.post(gw.url("/api/v1/queue/join"))
            .header("forwarded", "for=203.0.113.51")
            .json(&serde_json::json!({"event_id": DEMO_EVENT, "session_id": "f2"})),
    )
    .await;
    assert_limited(&r, "60");
}

#[tokio::test]
async fn zero_turns_the_limits_off() {
    let gw = Gw::start(&["--join-rate-per-ip", "0", "--status-rate-per-ip", "0"]).await;
    let c = client_from("127.0.0.1");
    let mut token = String::new();
    for i in 0..5 {
        let r = join_as(&gw, &c, &format!("z{i}"), None).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        token = r.body["waiting_token"].as_str().unwrap().to_owned();
    }
    for _ in 0..5 {
        assert_eq!(status_as(&gw, &c, &token).await.status, 200);
    }
}

#[tokio::test]
async fn status_reads_and_websocket_upgrades_share_their_own_limit() {
    let gw = Gw::start(&["--join-rate-per-ip", "1", "--status-rate-per-ip", "3"]).await;
    let c = client_from("127.0.0.1");
    let r = join_as(&gw, &c, "s0", None).await;
    assert_eq!(r.status, 201);
    let token = r.body["waiting_token"].as_str().unwrap().to_owned();
    // The join bucket is empty; the status bucket is not.
    assert_limited(&join_as(&gw, &c, "s1", None).await, "60");
    assert_eq!(status_as(&gw, &c, &token).await.status, 200);
    assert_eq!(status_as(&gw, &c, &token).await.status, 200);
    // A WebSocket GET (here without a token: 401) takes from the same bucket...
    let ws = send(c.get(gw.url("/api/v1/queue/ws"))).await;
    assert_eq!(ws.status, 401);
    // ...so the bucket is now empty, for both.
    assert_limited(&status_as(&gw, &c, &token).await, "20");
    let ws = send(c.get(gw.url("/api/v1/queue/ws"))).await;
    assert_limited(&ws, "20");
    // Other routes are not limited.
    let r = send(c.get(gw.url("/healthz"))).await;
    assert_eq!(r.status, 200);
}

/// Joins from one address alternating between two replicas on one Redis, each join followed by
/// a sync of the replica that took it; returns how many were let through of `tries`.
async fn alternate_joins(a: &Gw, b: &Gw, tries: usize) -> (usize, Vec<u16>) {
    let c = client_from("127.0.0.1");
    let mut accepted = 0;
    let mut statuses = Vec::new();
    for i in 0..tries {
        let gw = if i % 2 == 0 { a } else { b };
        let synced = gw.sync.as_ref().map(|s| s.syncs());
        let r = send(
            c.post(gw.url("/api/v1/queue/join"))
                .json(&serde_json::json!({"event_id": "shared", "session_id": format!("s{i}")})),
        )
        .await;
        match r.status {
            201 => accepted += 1,
            429 => assert_eq!(r.code(), "RATE_LIMITED"),
            s => panic!("join answered {s}: {:?}", r.body),
        }
        statuses.push(r.status);
        // Two completed syncs: one that began after the join, so it carried the join's count.
        if let (Some(s), Some(before)) = (&gw.sync, synced) {
            common::until("a rate-limit sync", async || s.syncs() >= before + 2).await;
        }
    }
    (accepted, statuses)
}

async fn two_replicas(flags: &[&str]) -> (testkit::RedisServer, Gw, Gw) {
    let redis = testkit::RedisServer::start().unwrap();
    let url = redis.url();
    let clock = ManualClock::at_system_now();
    let mut args = vec!["--redis-url", url.as_str(), "--status-rate-per-ip", "0"];
    args.extend_from_slice(flags);
    let a = Gw::start_with_clock(&args, clock.clone()).await;
    let b = Gw::start_with_clock(&args, clock).await;
    let r = send(
        reqwest::Client::new()
            .put(a.url("/admin/v1/events/shared"))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"admit_per_second": 0, "max_active": 1})),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    (redis, a, b)
}

#[tokio::test]
async fn the_per_address_limit_holds_across_replicas() {
    // The clock stands still: no token comes back during the test, so what is let through is
    // the burst, 10, over both replicas together.
    let (_redis, a, b) = two_replicas(&["--join-rate-per-ip", "10", "--rate-sync-ms", "10"]).await;
    assert!(a.sync.is_some() && b.sync.is_some());
    let (accepted, statuses) = alternate_joins(&a, &b, 30).await;
    // Each replica learns of the other's joins at its own next sync, so one join more than
    // the limit can get through (N + replicas - 1), never 2N.
    assert!(
        (10..=11).contains(&accepted),
        "{accepted} let through: {statuses:?}"
    );
    // Once refused, refused on both replicas.
    let first = statuses.iter().position(|s| *s == 429).unwrap();
    assert!(statuses[first..].iter().all(|s| *s == 429), "{statuses:?}");
}

#[tokio::test]
async fn without_the_sync_each_replica_has_its_own_bucket() {
    let (_redis, a, b) = two_replicas(&["--join-rate-per-ip", "10", "--rate-sync-ms", "0"]).await;
    assert!(a.sync.is_none());
    let (accepted, _) = alternate_joins(&a, &b, 30).await;
    assert_eq!(accepted, 20);
}
