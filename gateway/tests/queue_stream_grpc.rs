//! gRPC `WebSocketService.StreamQueueUpdates` end to end: a real gateway on a real
//! redis-server, a real gRPC stream fed by the same per-event watcher as the queue WebSocket.

mod common;

use common::*;
use proto::gateway::v1 as gw;
use proto::gateway::v1::web_socket_service_client::WebSocketServiceClient;
use serde_json::json;
use std::time::Duration;
use testkit::RedisServer;

async fn client(g: &TestGateway) -> WebSocketServiceClient<tonic::transport::Channel> {
    let ch = tonic::transport::Channel::from_shared(format!("http://{}", g.grpc.unwrap()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    WebSocketServiceClient::new(ch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_updates_stream_until_admission_ready() {
    let redis = RedisServer::start().unwrap();
    let g = TestGateway::start(&[
        "--redis-url",
        &redis.url(),
        "--admission-tick-ms",
        "20",
        "--ws-tick-ms",
        "50",
        "--grpc-listen",
        "127.0.0.1:0",
    ])
    .await;
    let base = g.url("");
    // Nobody is admitted until the event is resumed: the first message is the position.
    let r = put_event(
        &base,
        "gig",
        json!({"admit_per_second": 10000, "max_active": 100000}),
    )
    .await;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);
    let stop = send(
        reqwest::Client::new()
            .post(format!("{base}/admin/v1/events/gig/actions"))
            .bearer_auth(ADMIN)
            .json(&json!({"action": "STOP_ADMISSIONS", "confirm": true})),
    )
    .await;
    assert_eq!(stop.status, 200, "{}", stop.body);
    let j = join(&base, "gig", "s1").await;
    assert_eq!(j.status, 201, "{}", j.body);
    let token = j.body["waiting_token"].as_str().unwrap().to_owned();

    let mut c = client(&g).await;
    let mut stream = c
        .stream_queue_updates(gw::StreamQueueRequest {
            waiting_token: token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let next = async |s: &mut tonic::Streaming<gw::QueueUpdateEvent>| {
        tokio::time::timeout(Duration::from_secs(20), s.message())
            .await
            .expect("a message in time")
            .unwrap()
            .expect("the stream goes on")
    };
    let first = next(&mut stream).await;
    assert_eq!(first.r#type(), gw::EventType::QueueEventTypePositionChanged);
    let q = first.queue_update.unwrap();
    assert_eq!(q.status(), gw::QueueStatus::Waiting);
    assert_eq!(q.position, 1);
    let paused = next(&mut stream).await;
    assert_eq!(
        paused.r#type(),
        gw::EventType::SystemEventTypeAdmissionsPaused
    );

    let resume = send(
        reqwest::Client::new()
            .post(format!("{base}/admin/v1/events/gig/actions"))
            .bearer_auth(ADMIN)
            .json(&json!({"action": "RESUME_ADMISSIONS", "confirm": true})),
    )
    .await;
    assert_eq!(resume.status, 200, "{}", resume.body);
    loop {
        let m = next(&mut stream).await;
        if m.r#type() == gw::EventType::QueueEventTypeAdmissionReady {
            break;
        }
    }
    // Refusals: no token, a forged one, another event.
    let e = c
        .stream_queue_updates(gw::StreamQueueRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    let e = c
        .stream_queue_updates(gw::StreamQueueRequest {
            waiting_token: format!("{token}x"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    let e = c
        .stream_queue_updates(gw::StreamQueueRequest {
            waiting_token: token,
            event_id: "other".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    drop(stream);
    drop(c);
    g.shutdown().await;
}
