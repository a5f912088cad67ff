//! MAINTENANCE_MODE end to end: two gateway replicas on port 0 over one real redis-server and
//! one injected clock, real WebSockets and real gRPC. The mode closes the queue API, pages and
//! gRPC QueueService on every replica, tells WebSocket clients, keeps every waiting place alive
//! however long it lasts, and ends.

mod common;

use common::*;
use proto::gateway::v1 as gw;
use queue::clock::ManualClock;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use testkit::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn maintenance_closes_the_queue_on_every_replica_and_keeps_every_place() {
    let redis = RedisServer::start().unwrap();
    let clock = Arc::new(ManualClock::at_system_now());
    let url = redis.url();
    let flags = [
        "--redis-url",
        &url,
        "--grpc-listen",
        "127.0.0.1:0",
        "--ws-tick-ms",
        "50",
    ];
    let a = TestGateway::start_with_clock(&flags, clock.clone()).await;
    let b = TestGateway::start_with_clock(&flags, clock.clone()).await;
    let (base_a, base_b) = (a.url(""), b.url(""));
    // Nobody is admitted: everyone stays waiting; idle users expire after 60 s.
    let r = put_event(
        &base_a,
        "gala",
        json!({"admit_per_second": 0, "max_active": 10, "idle_timeout_seconds": 60}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let t1 = join(&base_a, "gala", "first").await.body["waiting_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let t2 = join(&base_a, "gala", "second").await.body["waiting_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/api/v1/queue/ws?token={t2}", b.addr))
            .await
            .unwrap();
    assert_eq!(
        next_json(&mut ws, Duration::from_secs(5)).await["position"],
        2
    );

    let r = system_action(&base_a, json!({"action": "MAINTENANCE_MODE"})).await;
    assert_eq!((r.status, r.code()), (400, "CONFIRMATION_REQUIRED"));
    assert_eq!(status(&base_a, &t1).await.status, 200);
    let r = system_action(
        &base_a,
        json!({"action": "MAINTENANCE_MODE", "confirm": true, "reason": "db upgrade"}),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["modes"]["maintenance"]),
        (200, &json!(true)),
        "{}",
        r.body
    );

    // The queue API and pages answer 503 with Retry-After, on this replica at once...
    let s = status(&base_a, &t1).await;
    assert_eq!((s.status, s.code()), (503, "MAINTENANCE"));
    assert_eq!(s.headers["retry-after"], "30");
    assert_eq!(join(&base_a, "gala", "third").await.code(), "MAINTENANCE");
    let page = client().get(a.url("/e/gala")).send().await.unwrap();
    assert_eq!(page.status(), 503);
    assert_eq!(page.headers()["retry-after"], "30");
    assert!(page.text().await.unwrap().contains("maintenance"));
    let mut queue_grpc =
        proto::gateway::v1::queue_service_client::QueueServiceClient::new(channel(&a).await);
    let e = queue_grpc
        .get_queue_status(gw::GetQueueStatusRequest {
            waiting_token: t1.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), reason(&e).as_str()),
        (tonic::Code::Unavailable, "MAINTENANCE")
    );
    // ... and on the other one once it follows; its WebSocket clients are told.
    until("replica B in maintenance", async || {
        status(&base_b, &t1).await.code() == "MAINTENANCE"
    })
    .await;
    let m = next_json(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(
        (m["type"].as_str(), m["retry_after_seconds"].as_u64()),
        (Some("MAINTENANCE"), Some(30))
    );
    // The admin API still answers.
    assert_eq!(get_event(&base_b, "gala").await["stats"]["waiting"], 2);

    // 90 s pass (more than the idle timeout) without anyone able to poll. Nothing is swept
    // meanwhile, and when maintenance ends nobody's idle clock counts the pause (below).
    clock.advance_ms(90_000);
    assert_eq!(get_event(&base_a, "gala").await["stats"]["waiting"], 2);

    // The way back: everyone is where they were.
    let r = system_action(&base_b, json!({"action": "END_MAINTENANCE_MODE"})).await;
    assert_eq!(
        (r.status, &r.body["modes"]["maintenance"]),
        (200, &json!(false))
    );
    assert_eq!(
        next_json(&mut ws, Duration::from_secs(5)).await["type"],
        "MAINTENANCE_ENDED"
    );
    until("replica A out of maintenance", async || {
        status(&base_a, &t1).await.status == 200
    })
    .await;
    for (t, pos) in [(&t1, 1), (&t2, 2)] {
        let s = status(&base_a, t).await;
        assert_eq!(
            (s.body["status"].as_str(), s.body["position"].as_u64()),
            (Some("WAITING"), Some(pos)),
            "{}",
            s.body
        );
    }
    // And idleness counts again once it is over.
    clock.advance_ms(61_000);
    assert_eq!(status(&base_a, &t1).await.body["status"], "EXPIRED");
    a.shutdown().await;
    b.shutdown().await;
}
