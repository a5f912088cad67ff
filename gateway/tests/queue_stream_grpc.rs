//! gRPC `WebSocketService.StreamQueueUpdates` end to end: a real gateway on a real
//! redis-server, a real gRPC stream fed by the same per-event watcher as the queue WebSocket.

mod common;

use common::admin_http::event_action;
use common::*;
use proto::gateway::v1 as gw;
use proto::gateway::v1::web_socket_service_client::WebSocketServiceClient;
use serde_json::json;
use std::time::Duration;
use testkit::RedisServer;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_updates_stream_until_admission_ready() {
    let redis = RedisServer::start().unwrap();
    let g = gateway_with_grpc(&redis, &["--ws-tick-ms", "50"]).await;
    let base = g.url("");
    // Nobody is admitted until the event is resumed: the first message is the position.
    open_event(&base, "gig").await;
    let pause = json!({"action": "STOP_ADMISSIONS", "confirm": true});
    let stop = event_action(&base, "gig", pause).await;
    assert_eq!(stop.status, 200, "{}", stop.body);
    let j = join(&base, "gig", "s1").await;
    assert_eq!(j.status, 201, "{}", j.body);
    let token = j.body["waiting_token"].as_str().unwrap().to_owned();

    let mut c = WebSocketServiceClient::new(channel(&g).await);
    let req = gw::StreamQueueRequest {
        waiting_token: token.clone(),
        ..Default::default()
    };
    let mut stream = c.stream_queue_updates(req).await.unwrap().into_inner();
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
    let paused_type = gw::EventType::SystemEventTypeAdmissionsPaused;
    assert_eq!(paused.r#type(), paused_type);

    let resume = json!({"action": "RESUME_ADMISSIONS", "confirm": true});
    let resumed = event_action(&base, "gig", resume).await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    loop {
        let m = next(&mut stream).await;
        if m.r#type() == gw::EventType::QueueEventTypeAdmissionReady {
            break;
        }
    }
    // Refusals: no token, a forged one, another event.
    let forged = format!("{token}x");
    for (waiting_token, event_id, want) in [
        (String::new(), "", Code::Unauthenticated),
        (forged, "", Code::Unauthenticated),
        (token, "other", Code::PermissionDenied),
    ] {
        let req = gw::StreamQueueRequest {
            waiting_token,
            event_id: event_id.into(),
            ..Default::default()
        };
        let e = c.stream_queue_updates(req.clone()).await.unwrap_err();
        assert_eq!(e.code(), want, "{req:?}: {e:?}");
    }
    drop(stream);
    drop(c);
    g.shutdown().await;
}
