//! Real `gateway` processes: three replicas sharing one Redis admit at the configured rate
//! (not three times it), and SIGTERM drains in-flight requests before exiting.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use testkit::RedisServer;

async fn admitted_total(base: &str, event: &str) -> u64 {
    let r = send(
        client()
            .get(format!("{base}/admin/v1/events/{event}"))
            .bearer_auth(ADMIN),
    )
    .await;
    r.body["stats"]["admitted_total"].as_u64().expect("stats")
}

#[tokio::test]
async fn three_replicas_admit_at_the_configured_rate() {
    let redis = RedisServer::start().unwrap();
    let url = redis.url();
    let gws: Vec<GatewayProcess> = (0..3)
        .map(|_| GatewayProcess::spawn(&["--redis-url", &url]))
        .collect();
    let base0 = gws[0].url("");
    let r = put_event(
        &base0,
        "rate",
        json!({"admit_per_second": 0, "max_active": 100000}),
    )
    .await;
    assert_eq!(r.status, 201);
    // A backlog far larger than 10 s of admissions, joined through all three replicas.
    let mut joins = Vec::new();
    for i in 0..900 {
        let base = gws[i % 3].url("");
        joins.push(tokio::spawn(async move {
            join(&base, "rate", &format!("user-{i}")).await.status
        }));
    }
    for j in joins {
        assert_eq!(j.await.unwrap(), 201);
    }
    put_event(
        &base0,
        "rate",
        json!({"admit_per_second": 50, "max_active": 100000}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // past the first second's burst
    let before = admitted_total(&base0, "rate").await;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = admitted_total(&gws[1].url(""), "rate").await;
    let secs = t0.elapsed().as_secs_f64();
    let expected = 50.0 * secs;
    let got = (after - before) as f64;
    eprintln!(
        "three replicas: {got} admitted in {secs:.2} s (configured 50/s, expected {expected:.0})"
    );
    assert!(
        (got - expected).abs() <= expected * 0.05,
        "three replicas admitted {got} in {secs:.2} s; expected {expected:.0} ± 5%"
    );
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests() {
    let redis = RedisServer::start().unwrap();
    let gw = GatewayProcess::spawn(&[
        "--redis-url",
        &redis.url(),
        "--redis-timeout-ms",
        "1500",
        "--drain-grace-seconds",
        "10",
    ]);
    let base = gw.url("");
    put_event(
        &base,
        "drain",
        json!({"admit_per_second": 0, "max_active": 1}),
    )
    .await;
    // Freeze Redis so that a join is in flight when SIGTERM arrives.
    let pid = redis.pid().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();
    let inflight = tokio::spawn({
        let base = base.clone();
        async move { join(&base, "drain", "s").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
    let r = inflight.await.unwrap();
    assert!(
        r.status == 201 || r.status == 503,
        "the in-flight request got an answer: {} {}",
        r.status,
        r.body
    );
    // The process exits by itself, cleanly, and stops accepting.
    let mut gw = gw;
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = gw.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "gateway did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    assert!(
        std::net::TcpStream::connect(gw.addr).is_err(),
        "still accepting after drain"
    );
}
