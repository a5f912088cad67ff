//! Live reservation updates end to end, with real parts only: two gateways on one
//! redis-server, the real backends (from the `services` crate) on a `RedisStore` over that same
//! Redis, served over gRPC on loopback; real WebSockets and a real gRPC stream. A purchase
//! confirmed by the simulator's signed webhook applied on replica A reaches the streams held on
//! replica B.

mod common;

use common::backends::*;
use common::webhook_http::{pay, reservation, reserve, webhook_listener};
use common::*;
use proto::gateway::v1 as gw;
use proto::gateway::v1::web_socket_service_client::WebSocketServiceClient;
use proto::reservation::v1 as res;
use serde_json::{json, Value};
use std::time::Duration;
use testkit::RedisServer;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How long a stream may take to send its next frame.
const FRAME_WAIT: Duration = Duration::from_secs(20);

/// A gateway over `redis` and the backends, with gRPC, warning 58 s before a hold runs out (the
/// backends hold for 60 s: the warning comes about 2 s after the hold is made).
async fn gateway(redis: &RedisServer, backends: &Backends) -> TestGateway {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    gateway_on(l, redis, backends, false).await
}

/// As [`gateway`], on `listener`; with `webhooks`, it takes (and alone applies) the
/// simulator's signed payment webhooks.
async fn gateway_on(
    listener: tokio::net::TcpListener, redis: &RedisServer, backends: &Backends, webhooks: bool,
) -> TestGateway {
    let url = redis.url();
    let mut args: Vec<String> = vec![
        "--redis-url".into(),
        url,
        "--admission-tick-ms".into(),
        "20".into(),
        "--grpc-listen".into(),
        "127.0.0.1:0".into(),
        "--hold-warning-seconds".into(),
        "58".into(),
    ];
    if webhooks {
        args.extend(["--webhook-secret".into(), WEBHOOK_SECRET.into()]);
    }
    args.extend(backends.flags());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    TestGateway::start_on(listener, &args).await
}

/// The reservation WebSocket with the token as a bearer.
async fn connect(gw: &TestGateway, id: &str, token: &str) -> Ws {
    let mut req = format!("ws://{}/api/v1/reservations/{id}/ws", gw.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket connects")
        .0
}

/// Frames until one of type `want` (the ones before it are returned too).
async fn until_type(ws: &mut Ws, want: &str) -> (Vec<Value>, Value) {
    let mut before = Vec::new();
    loop {
        let m = next_json(ws, FRAME_WAIT).await;
        if m["type"] == want {
            return (before, m);
        }
        assert!(
            m.get("closed").is_none(),
            "closed before {want}: {before:?}"
        );
        before.push(m);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confirmation_reaches_the_websocket_and_grpc_stream_on_another_replica() {
    let redis = RedisServer::start().unwrap();
    // Replica A takes the simulator's webhooks.
    let (listener, hook) = webhook_listener().await;
    let backends = Backends::start_on_redis(&redis.url(), Some(hook), &[("show", 10)]).await;
    let a = gateway_on(listener, &redis, &backends, true).await;
    let b = gateway(&redis, &backends).await;
    let token = open_and_admit(&a.url(""), "show", "alice").await;
    let id = reserve(&a.url(""), &token, "k1", 1).await;

    // On replica B: the state first, then a hold-expiry warning before the hold runs out.
    let mut ws = connect(&b, &id, &token).await;
    let first = next_json(&mut ws, FRAME_WAIT).await;
    assert_eq!(first["type"], "RESERVATION_STATUS", "{first}");
    assert_eq!(first["reservation_id"], id.as_str());
    assert_eq!(first["status"], "PENDING");
    assert!(first["hold_expires_at"].is_string(), "{first}");
    assert_eq!(first["order_id"], Value::Null);
    let (before, warning) = until_type(&mut ws, "HOLD_EXPIRING").await;
    assert!(before.is_empty(), "{before:?}");
    let left = warning["seconds_left"].as_u64().unwrap();
    assert!((1..=58).contains(&left), "{warning}");
    assert_eq!(warning["hold_expires_at"], first["hold_expires_at"]);

    // The gRPC stream on replica B, the token as metadata.
    let grpc = tonic::transport::Channel::from_shared(format!("http://{}", b.grpc.unwrap()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut req = tonic::Request::new(gw::StreamReservationRequest {
        reservation_id: id.clone(),
        reservation_token: String::new(),
    });
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let mut stream = WebSocketServiceClient::new(grpc.clone())
        .stream_reservation_updates(req)
        .await
        .unwrap()
        .into_inner();
    let g0 = stream.message().await.unwrap().unwrap();
    assert_eq!(g0.r#type(), gw::ReservationEventType::Status);
    assert_eq!(g0.status(), res::ReservationStatus::Pending);
    assert_eq!(g0.reservation_id, id);
    // One pattern subscription per replica, however many streams are open (two on B here).
    let clients = testkit::raw_command(redis.port(), "CLIENT LIST").unwrap();
    assert_eq!(clients.matches(" psub=1 ").count(), 2, "{clients}");

    // The replicas' subscriber connections are cut: each reconnects and subscribes again
    // (and its streams re-read their reservation, since updates may have been missed).
    let killed = testkit::raw_command(redis.port(), "CLIENT KILL TYPE pubsub").unwrap();
    assert_eq!(killed, ":2\r\n", "one subscriber connection per replica");
    until("both replicas subscribe again", async || {
        let clients = testkit::raw_command(redis.port(), "CLIENT LIST").unwrap();
        clients.matches(" psub=1 ").count() == 2
    })
    .await;

    // Paid through replica A (APPROVE): the simulator POSTs its signed webhook to A, whose
    // consumer applies it through WorkerService.ProcessPaymentResult (B has no webhook
    // consumer).
    pay(&a.url(""), &token, &format!("pay-{id}"), &id, "APPROVE").await;
    let (_, status) = until_type(&mut ws, "RESERVATION_STATUS").await;
    assert_eq!(status["status"], "CONFIRMED", "{status}");
    let order = status["order_id"].as_str().unwrap().to_owned();
    assert!(order.starts_with("ord_"), "{status}");
    let got = reservation(&a.url(""), &token, &id).await;
    assert_eq!(got["order_id"], order.as_str(), "the stored order");
    let paid = next_json(&mut ws, FRAME_WAIT).await;
    assert_eq!(paid["type"], "PAYMENT_CONFIRMED", "{paid}");
    assert_eq!(paid["order_id"], order.as_str());
    assert_eq!(
        next_json(&mut ws, FRAME_WAIT).await,
        json!({"closed": 1000})
    );

    let mut seen = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        seen.push(m);
    }
    let confirmed = seen
        .iter()
        .find(|m| m.r#type() == gw::ReservationEventType::Status)
        .expect("a status change");
    assert_eq!(confirmed.status(), res::ReservationStatus::Confirmed);
    assert_eq!(confirmed.order_id, order);
    let paid = seen.last().unwrap();
    assert_eq!(paid.r#type(), gw::ReservationEventType::PaymentConfirmed);
    assert_eq!(paid.order_id, order);

    // A client that reconnects (to either replica) is told the final state first.
    let mut again = connect(&a, &id, &token).await;
    let first = next_json(&mut again, FRAME_WAIT).await;
    assert_eq!(first["type"], "RESERVATION_STATUS");
    assert_eq!(first["status"], "CONFIRMED");
    assert_eq!(first["order_id"], order.as_str());
    assert_eq!(
        next_json(&mut again, FRAME_WAIT).await,
        json!({"closed": 1000})
    );

    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_need_the_reservations_own_admission() {
    let redis = RedisServer::start().unwrap();
    let backends = Backends::start_on_redis(&redis.url(), None, &[("show", 10)]).await;
    let a = gateway(&redis, &backends).await;
    let base = a.url("");
    let token = open_and_admit(&base, "show", "alice").await;
    let id = reserve(&base, &token, "k1", 1).await;
    let url = |q: &str| format!("{base}/api/v1/reservations/{id}/ws{q}");
    let upgrade = |u: String| {
        client()
            .get(u)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    };
    let none = send(upgrade(url(""))).await;
    assert_eq!((none.status, none.code()), (401, "UNAUTHENTICATED"));
    let other = open_and_admit(&base, "show", "bob").await;
    let r = send(upgrade(url(&format!("?token={other}")))).await;
    assert_eq!(r.status, 404, "another user's reservation: {}", r.body);
    let bad = send(upgrade(format!(
        "{base}/api/v1/reservations/r_nothex_show/ws?token={token}"
    )))
    .await;
    assert_eq!(bad.status, 404, "{}", bad.body);
    // The owner with ?token= is upgraded.
    let ok = send(upgrade(url(&format!("?token={token}")))).await;
    assert_eq!(ok.status, 101, "{}", ok.body);
    a.shutdown().await;
}
