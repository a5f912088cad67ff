//! Real `gateway` processes: three replicas sharing one Redis admit at the configured rate
//! (not three times it), and SIGTERM drains in-flight requests before exiting.

mod common;

use common::http::*;
use common::*;
use std::time::{Duration, Instant};
use testkit::RedisServer;

async fn admitted_total(base: &str, event: &str) -> u64 {
    let info = get_event(base, event).await;
    info["stats"]["admitted_total"].as_u64().expect("stats")
}

#[tokio::test]
async fn three_replicas_admit_at_the_configured_rate() {
    let redis = RedisServer::start().unwrap();
    let url = redis.url();
    let gws: Vec<GatewayProcess> = (0..3)
        .map(|_| GatewayProcess::spawn(&["--redis-url", &url]))
        .collect();
    let base0 = gws[0].url("");
    let r = put_event(&base0, "rate", rate(0, 100000)).await;
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
    put_event(&base0, "rate", rate(50, 100000)).await;
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
    let (redis, gw) = redis_process(&["--redis-timeout-ms", "1500", "--drain-grace-seconds", "10"]);
    let base = gw.url("");
    put_event(&base, "drain", rate(0, 1)).await;
    // Freeze Redis so that a join is in flight when SIGTERM arrives.
    redis.signal("STOP").unwrap();
    let inflight = tokio::spawn({
        let base = base.clone();
        async move { join(&base, "drain", "s").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.signal("CONT").unwrap();
    let r = inflight.await.unwrap();
    assert!(
        r.status == 201 || r.status == 503,
        "the in-flight request got an answer: {} {}",
        r.status,
        r.body
    );
    // The process exits by itself, cleanly, and stops accepting.
    let mut gw = gw;
    let exit = async || gw.child.try_wait().unwrap().ok_or("running");
    let status = poll(
        "the gateway exiting after SIGTERM",
        Duration::from_secs(10),
        exit,
    )
    .await;
    assert!(status.success(), "exit status {status}");
    assert!(
        std::net::TcpStream::connect(gw.addr).is_err(),
        "still accepting after drain"
    );
}
