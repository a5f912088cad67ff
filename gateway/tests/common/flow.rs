//! Steps that many tests take the same way: a gateway over a real redis-server, an event that
//! admits everyone at once, a real admission (join, READY, enter), admission tokens signed by
//! hand, and the small gRPC and admin calls.

use super::admin_http::{admin_get, admin_post};
use super::{enter, join, put_event, wait_status, Resp, TestGateway};
use futures::StreamExt;
use queue::token::{AdmissionClaims, AdmissionSigner, ISSUER};
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testkit::RedisServer;
use tokio_tungstenite::tungstenite::Message;
use tonic::transport::Channel;

/// A client WebSocket.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// No extra flags (an empty list whose type the helpers below can infer).
pub const NO_FLAGS: &[&str] = &[];

/// A gateway over `redis` (admission tick 20 ms) with `extra` flags.
pub async fn gateway(redis: &RedisServer, extra: &[impl AsRef<str>]) -> TestGateway {
    let url = redis.url();
    let mut args = vec!["--redis-url", &url, "--admission-tick-ms", "20"];
    args.extend(extra.iter().map(AsRef::as_ref));
    TestGateway::start(&args).await
}

/// As [`gateway`], with the gRPC services on a free port (`TestGateway::grpc`).
pub async fn gateway_with_grpc(redis: &RedisServer, extra: &[impl AsRef<str>]) -> TestGateway {
    let mut args = vec!["--grpc-listen", "127.0.0.1:0"];
    args.extend(extra.iter().map(AsRef::as_ref));
    gateway(redis, &args).await
}

/// A redis-server of its own and [`gateway_with_grpc`] over it, with the gateway's base URL.
/// (Keep the server bound: dropping it stops it.)
pub async fn grpc_stack(extra: &[impl AsRef<str>]) -> (RedisServer, TestGateway, String) {
    let redis = RedisServer::start().unwrap();
    let gw = gateway_with_grpc(&redis, extra).await;
    let base = gw.url("");
    (redis, gw, base)
}

/// An event that admits everyone at once.
pub async fn open_event(base: &str, id: &str) {
    let r = put_event(
        base,
        id,
        json!({"admit_per_second": 10000, "max_active": 100000}),
    )
    .await;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);
}

/// Joins, waits for READY, enters: the reservation token of a real admission.
pub async fn admission(base: &str, event: &str, session: &str) -> String {
    let j = join(base, event, session).await;
    assert!(j.status == 201 || j.status == 200, "{}", j.body);
    let token = j.body["waiting_token"].as_str().unwrap().to_owned();
    wait_status(base, &token, "READY", Duration::from_secs(10)).await;
    let e = enter(base, &token).await;
    assert_eq!(e.status, 200, "{}", e.body);
    e.body["reservation_token"].as_str().unwrap().to_owned()
}

/// [`open_event`], then [`admission`].
pub async fn open_and_admit(base: &str, event: &str, session: &str) -> String {
    open_event(base, event).await;
    admission(base, event, session).await
}

/// Now, in whole seconds since the Unix epoch.
pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An admission token signed with `pem`'s key (or a random one when None).
pub fn mint(pem: Option<&str>, event: &str, sub: &str, exp: u64) -> String {
    let signer = match pem {
        Some(p) => AdmissionSigner::from_pem(p).unwrap(),
        None => AdmissionSigner::ephemeral(),
    };
    signer
        .sign(&AdmissionClaims {
            iss: ISSUER.into(),
            aud: event.into(),
            sub: sub.into(),
            exp,
            jti: "test".into(),
            tkt: None,
            sk: None,
        })
        .unwrap()
}

/// A connected channel to the gateway's gRPC listener.
pub async fn channel(gw: &TestGateway) -> Channel {
    let url = format!("http://{}", gw.grpc.unwrap());
    Channel::from_shared(url).unwrap().connect().await.unwrap()
}

/// The HTTP API's code that a failed gRPC call carries in its `common.v1.Error` details.
pub fn reason(s: &tonic::Status) -> String {
    proto::error_of(s)
        .and_then(|e| e.details.first().map(|d| d.reason.clone()))
        .unwrap_or_default()
}

/// A gRPC request carrying `token` as its bearer (`authorization` metadata).
pub fn bearer<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    let value = format!("Bearer {token}").parse().unwrap();
    r.metadata_mut().insert("authorization", value);
    r
}

/// `POST /admin/v1/actions`.
pub async fn system_action(base: &str, body: Value) -> Resp {
    admin_post(base, "/admin/v1/actions", body).await
}

/// `GET /admin/v1/events/{id}`: the body.
pub async fn get_event(base: &str, id: &str) -> Value {
    let path = format!("/admin/v1/events/{id}");
    admin_get(base, &path).await.body
}

/// The next JSON text frame (pings are skipped), `{"closed": code}` for a close; panics after
/// `within`.
pub async fn next_json(ws: &mut Ws, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).unwrap(),
            Ok(Some(Ok(Message::Close(f)))) => {
                return json!({"closed": f.map(|f| u16::from(f.code))})
            }
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("stream ended: {other:?}"),
            Err(_) => panic!("no frame within {within:?}"),
        }
    }
}
