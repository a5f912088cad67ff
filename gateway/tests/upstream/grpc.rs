//! The QueueService over gRPC: one waiting room behind both APIs, the same statuses as over
//! HTTP, the grant that opens the forwarded API; health that follows the store, reflection;
//! and the `gateway` binary serving it all until SIGTERM.

use super::common::admin_http::event_action;
use super::common::backends::*;
use super::*;
use proto::gateway::v1 as gw;
use proto::gateway::v1::queue_service_client::QueueServiceClient;
use std::time::{Duration, Instant};
use testkit::RedisServer;
use tonic::{Code, Response};

/// A unary call `q.rpc(request)`: its message, or the status that refused it.
macro_rules! unary {
    ($q:ident.$rpc:ident($req:expr)) => {
        $q.$rpc($req).await.map(Response::into_inner)
    };
}

/// JoinQueue: `session` joins `event`.
fn joining(event: &str, session: &str) -> gw::JoinQueueRequest {
    gw::JoinQueueRequest {
        event_id: event.into(),
        session_id: session.into(),
        ..Default::default()
    }
}

/// GetQueueStatus of the place that `token` holds.
fn place(token: &str) -> gw::GetQueueStatusRequest {
    hinted(token, "")
}

/// GetQueueStatus of the place that `token` holds, with the last answer's `poll_hint`.
fn hinted(token: &str, hint: &str) -> gw::GetQueueStatusRequest {
    gw::GetQueueStatusRequest {
        waiting_token: token.into(),
        poll_hint: hint.into(),
    }
}

/// RequestAdmission for the place that `token` holds, in `event` ("": the token's own).
fn asking(token: &str, event: &str) -> gw::RequestAdmissionRequest {
    gw::RequestAdmissionRequest {
        waiting_token: token.into(),
        event_id: event.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_health_follows_the_store_and_reflection_lists_the_services() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let mut redis = RedisServer::start().unwrap();
    let gw = gateway_with_grpc(&redis, &["--redis-timeout-ms", "300"]).await;
    let channel = channel(&gw).await;
    let mut health = HealthClient::new(channel.clone());
    let status_of = async |h: &mut HealthClient<_>, s: &str| {
        let check = HealthCheckRequest { service: s.into() };
        h.check(check).await.map(|r| r.into_inner().status)
    };
    let serving = Some(ServingStatus::Serving as i32);
    // The first status is set right after the server starts (a store PING).
    for s in ["", "gateway.v1.QueueService"] {
        until("SERVING", async || {
            status_of(&mut health, s).await.ok() == serving
        })
        .await;
    }
    // Redis dies: the health status follows readiness within a few seconds.
    redis.stop();
    until("NOT_SERVING", async || {
        status_of(&mut health, "gateway.v1.QueueService").await.ok()
            == Some(ServingStatus::NotServing as i32)
    })
    .await;
    redis.restart().unwrap();
    until("SERVING again", async || {
        status_of(&mut health, "").await.ok() == serving
    })
    .await;

    let mut reflection = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let replies = reflection.server_reflection_info(tokio_stream::iter([req]));
    let mut replies = replies.await.unwrap().into_inner();
    let first = replies.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("not a service list: {first:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "common.v1.AdminService",
            "gateway.v1.GatewayService",
            "gateway.v1.QueueService",
            "gateway.v1.WebSocketService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection"
        ],
        "what this server serves, nothing else"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_status_names_the_pre_queue_and_sold_out_as_http_does() {
    let (_redis, gw, base) = grpc_stack(NO_FLAGS).await;
    let opens_at = "2099-01-01T00:00:00Z";
    let later = json!({"admit_per_second": 0, "max_active": 10, "opens_at": opens_at});
    assert_eq!(put_event(&base, "later", later).await.status, 201);
    let mut q = QueueServiceClient::new(channel(&gw).await);
    let joined = unary!(q.join_queue(joining("later", "early-bird"))).unwrap();
    assert_eq!(joined.status, gw::QueueStatus::PreQueue as i32);
    let over_http = async || status(&base, &joined.waiting_token).await.body["status"].clone();
    assert_eq!(over_http().await, "PRE_QUEUE");
    let sold = event_action(&base, "later", json!({"action": "SOLD_OUT"})).await;
    assert_eq!(sold.status, 200, "{}", sold.body);
    let st = unary!(q.get_queue_status(place(&joined.waiting_token))).unwrap();
    assert_eq!(st.status, gw::QueueStatus::SoldOut as i32);
    assert_eq!(over_http().await, "SOLD_OUT");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_status_reads_with_the_poll_hint_follow_the_queue_without_a_script_call_each() {
    // Nobody is admitted: the position moves only when someone ahead leaves.
    let (redis, gw, base) = grpc_stack(NO_FLAGS).await;
    let gated = json!({"admit_per_second": 0, "max_active": 10});
    assert_eq!(put_event(&base, "hinted", gated).await.status, 201);
    let mut q = QueueServiceClient::new(channel(&gw).await);
    let ahead = unary!(q.join_queue(joining("hinted", "ahead"))).unwrap();
    let joined = unary!(q.join_queue(joining("hinted", "me"))).unwrap();
    assert_eq!(joined.position_hint, 2);
    assert!(
        !joined.poll_hint.is_empty(),
        "a waiting join carries a poll_hint"
    );
    let token = joined.waiting_token;

    // The first hinted read may still go to Redis (the replica starts following the event's
    // log); from then on the reads are answered from the log.
    let st = unary!(q.get_queue_status(hinted(&token, &joined.poll_hint))).unwrap();
    assert_eq!(
        (st.status, st.position),
        (gw::QueueStatus::Waiting as i32, 2)
    );
    let mut hint = st.poll_hint;
    let calls = super::common::http::script_calls_during(&redis, async || {
        for _ in 0..200 {
            let st = unary!(q.get_queue_status(hinted(&token, &hint))).unwrap();
            assert_eq!(st.position, 2);
            assert!(
                !st.poll_hint.is_empty(),
                "each waiting answer carries the next hint"
            );
            hint = st.poll_hint;
        }
    })
    .await;
    // The background loops call a few scripts a second; 200 plain reads would add 200.
    assert!(
        calls < 60,
        "200 hinted gRPC reads made {calls} script calls"
    );

    // Someone ahead leaves: the hinted reads see it.
    let waiting_token = ahead.waiting_token;
    assert!(
        unary!(q.leave_queue(gw::LeaveQueueRequest { waiting_token }))
            .unwrap()
            .left
    );
    until("the hinted gRPC position to move up", async || {
        let st = unary!(q.get_queue_status(hinted(&token, &hint))).unwrap();
        hint = st.poll_hint;
        st.position == 1
    })
    .await;
    // A hint that does not verify is ignored, not refused; a read without one answers too.
    let st = unary!(q.get_queue_status(hinted(&token, "not-a-hint"))).unwrap();
    assert_eq!(st.position, 1);
    let st = unary!(q.get_queue_status(place(&token))).unwrap();
    assert_eq!(st.position, 1);
    assert!(!st.poll_hint.is_empty());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_queue_service_over_grpc() {
    let backends = Backends::start(None, &[("show", 10)]).await;
    let (_redis, gw, base) = grpc_stack(&backends.flags()).await;
    let gated = json!({"admit_per_second": 0, "max_active": 10});
    assert_eq!(put_event(&base, "show", gated).await.status, 201);
    let addr = gw.grpc.expect("--grpc-listen binds");
    let mut q = QueueServiceClient::new(channel(&gw).await);

    let joined = unary!(q.join_queue(joining("show", "g1"))).unwrap();
    assert_eq!(joined.status, gw::QueueStatus::Waiting as i32);
    assert_eq!(joined.position_hint, 1);
    assert!(joined.expires_at.is_some());
    let token = joined.waiting_token;
    // The same place over HTTP: one waiting room behind both APIs.
    assert_eq!(status(&base, &token).await.body["position"], 1);

    let st = unary!(q.get_queue_status(place(&token))).unwrap();
    assert_eq!(
        (st.status, st.position, st.admission_ready),
        (gw::QueueStatus::Waiting as i32, 1, false)
    );

    let early = unary!(q.request_admission(asking(&token, "show"))).unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    let detail = proto::error_of(&early).expect("common.v1.Error in the details");
    assert_eq!(detail.details[0].reason, "NOT_READY");

    let bad = unary!(q.get_queue_status(place("nope"))).unwrap_err();
    assert_eq!(bad.code(), Code::Unauthenticated);
    let unknown = unary!(q.join_queue(joining("nosuch", "g1"))).unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    open_event(&base, "show").await;
    until("READY over gRPC", async || {
        let st = unary!(q.get_queue_status(place(&token))).unwrap();
        if st.admission_ready {
            assert_eq!(st.status, gw::QueueStatus::Ready as i32);
        }
        st.admission_ready
    })
    .await;
    let wrong = unary!(q.request_admission(asking(&token, "other"))).unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument);
    let granted = unary!(q.request_admission(asking(&token, "show"))).unwrap();
    assert_eq!(granted.admission, gw::AdmissionStatus::Granted as i32);
    assert!(granted.ttl_seconds > 0 && granted.valid_until.is_some());
    // The gRPC grant opens the forwarded HTTP API.
    let a = availability(Buyer::new(&base, &granted.reservation_token), "show").await;
    assert_eq!(a.status, 200, "{}", a.body);

    let other = unary!(q.join_queue(joining("show", "g2"))).unwrap();
    let waiting_token = other.waiting_token.clone();
    let left = q.leave_queue(gw::LeaveQueueRequest { waiting_token }).await;
    assert!(left.unwrap().into_inner().left);
    match unary!(q.get_queue_status(place(&other.waiting_token))) {
        Ok(s) => assert_eq!(s.status, gw::QueueStatus::Expired as i32),
        Err(e) => assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}"),
    }
    drop(q);
    // Shutdown stops both servers.
    let t = Instant::now();
    gw.shutdown().await;
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the gRPC listener is closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_binary_serves_grpc_and_forwards_then_exits_on_sigterm() {
    let backends = Backends::start(None, &[("demo", 10)]).await;
    let grpc_addr = format!("127.0.0.1:{}", testkit::free_port().unwrap());
    let mut flags = vec!["--grpc-listen".to_owned(), grpc_addr.clone()];
    flags.extend(backends.flags());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    // The embedded store's demo event admits 2 per second.
    let mut gw = GatewayProcess::spawn(&flags);
    let url = format!("http://{grpc_addr}");
    let mut q = QueueServiceClient::connect(url).await.unwrap();
    let joined = unary!(q.join_queue(joining("demo", "proc"))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let grant = loop {
        match unary!(q.request_admission(asking(&joined.waiting_token, ""))) {
            Ok(g) => break g,
            Err(e) => assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}"),
        }
        assert!(Instant::now() < deadline, "never admitted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let base = gw.url("");
    let a = availability(Buyer::new(&base, &grant.reservation_token), "demo").await;
    let left = &a.body["remaining_in_section"];
    assert_eq!((a.status, left), (200, &json!(10)));
    assert_eq!(backends.calls(), 1);
    drop(q);
    gw.signal("TERM");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = gw.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(tokio::net::TcpStream::connect(&grpc_addr).await.is_err());
}
