//! The position stream end to end: real gateways on port 0, a real redis-server, real
//! WebSocket connections.

mod common;

use common::http::*;
use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testkit::RedisServer;
use tokio_tungstenite::tungstenite::Message;

/// A gateway over its own redis-server that admits and streams every 50 ms.
async fn ws_gateway() -> (RedisServer, TestGateway) {
    redis_gateway(&["--admission-tick-ms", "50", "--ws-tick-ms", "50"]).await
}

async fn connect(gw: &TestGateway, token: &str) -> Ws {
    let url = format!("ws://{}/api/v1/queue/ws?token={token}", gw.addr);
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects")
        .0
}

async fn tokens(base: &str, event: &str, n: usize) -> Vec<String> {
    let mut v = Vec::new();
    for i in 0..n {
        let r = join(base, event, &format!("ws-{i}")).await;
        assert_eq!(r.status, 201, "{}", r.body);
        v.push(r.body["waiting_token"].as_str().unwrap().to_owned());
    }
    v
}

/// Sets `event` up on `base` with `config` and joins `n` sessions there; the last one connects
/// to `gw`. Its tokens, its socket and the socket's first message.
async fn last_in_line(
    base: &str, gw: &TestGateway, event: &str, config: Value, n: usize,
) -> (Vec<String>, Ws, Value) {
    put_event(base, event, config).await;
    let toks = tokens(base, event, n).await;
    let mut ws = connect(gw, &toks[n - 1]).await;
    let first = next_json(&mut ws, Duration::from_secs(5)).await;
    (toks, ws, first)
}

/// Asserts that `ws` is closed next, with `code`.
async fn assert_closed(ws: &mut Ws, code: u16) {
    assert_eq!(next_json(ws, Duration::from_secs(2)).await["closed"], code);
}

/// A socket of a new place in the demo event, past its first message.
async fn demo_socket(gw: &TestGateway, session: &str) -> Ws {
    let tok = waiting_token(&gw.url(""), "demo", session).await;
    let mut ws = connect(gw, &tok).await;
    next_json(&mut ws, Duration::from_secs(2)).await;
    ws
}

#[tokio::test]
async fn positions_stream_in_order_until_admission() {
    let (_redis, gw) = ws_gateway().await;
    let base = gw.url("");
    let (toks, mut ws, first) = last_in_line(&base, &gw, "wsflow", rate(0, 100), 5).await;
    assert_eq!(
        (first["type"].as_str(), first["position"].as_u64()),
        (Some("POSITION_CHANGED"), Some(5)),
        "{first}"
    );
    assert_eq!(first["status"], "WAITING");
    assert!(first["timestamp"].is_string() && first["eta_seconds"].is_i64());

    put_event(&base, "wsflow", rate(4, 100)).await;
    let mut seen = Vec::new();
    loop {
        let m = next_json(&mut ws, Duration::from_secs(5)).await;
        match m["type"].as_str() {
            Some("POSITION_CHANGED") => seen.push(m["position"].as_u64().unwrap()),
            Some("ADMISSION_READY") => break,
            _ => panic!("unexpected {m}"),
        }
    }
    assert!(
        !seen.is_empty() && seen.windows(2).all(|w| w[0] > w[1]),
        "positions fall in order: {seen:?}"
    );
    assert!(seen.iter().all(|&p| (1..5).contains(&p)), "{seen:?}");
    assert_eq!(enter(&base, &toks[4]).await.status, 200);
    gw.shutdown().await;
}

/// A `random` queue is a lottery: the stream shows no position (0, no ETA), as *status* does,
/// while others are drawn before this one.
#[tokio::test]
async fn a_lottery_streams_no_positions() {
    let (_redis, gw) = ws_gateway().await;
    let base = gw.url("");
    let config =
        |aps: u32| json!({"admit_per_second": aps, "max_active": 100, "queueing_method": "random"});
    let (_, mut ws, first) = last_in_line(&base, &gw, "wslottery", config(0), 8).await;
    assert_eq!(
        (
            first["type"].as_str(),
            first["status"].as_str(),
            first["position"].as_u64(),
            first["eta_seconds"].as_i64()
        ),
        (Some("POSITION_CHANGED"), Some("WAITING"), Some(0), Some(-1)),
        "{first}"
    );
    // Two a second: the draws take the others one by one, and this socket hears nothing of
    // them until its own turn.
    put_event(&base, "wslottery", config(2)).await;
    let m = next_json(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(
        m["type"], "ADMISSION_READY",
        "a lottery shows no positions, only the turn: {m}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn admission_on_another_replica_reaches_this_one_within_a_second() {
    // Replica `b` holds the sockets and never admits; replica `a` admits.
    let (redis, a) = redis_gateway(&["--admission-tick-ms", "20"]).await;
    let url = redis.url();
    let b = TestGateway::start(&["--redis-url", &url, "--admission-tick-ms", "3600000"]).await;
    let (toks, mut ws, first) = last_in_line(&a.url(""), &b, "xrep", rate(0, 100), 4).await;
    assert_eq!(first["position"], 4);

    // Someone ahead leaves through replica `a`: seen on `b`.
    let t0 = Instant::now();
    leave(&a.url(""), &toks[0]).await;
    let m = next_json(&mut ws, Duration::from_secs(2)).await;
    assert_eq!(
        (m["type"].as_str(), m["position"].as_u64()),
        (Some("POSITION_CHANGED"), Some(3)),
        "{m}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "leave seen after {:?}",
        t0.elapsed()
    );

    // Replica `a` admits one: seen on `b` within a second.
    let t0 = Instant::now();
    put_event(&a.url(""), "xrep", rate(1, 100)).await;
    let m = next_json(&mut ws, Duration::from_secs(3)).await;
    assert_eq!(m["position"], 2, "{m}");
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "admission seen after {:?}",
        t0.elapsed()
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn an_open_socket_is_a_heartbeat_and_ready_timeouts_expire() {
    let (_redis, gw) = redis_gateway(&["--sweep-interval-ms", "200", "--ws-tick-ms", "100"]).await;
    let base = gw.url("");
    let beat = |aps: u32| json!({"admit_per_second": aps, "max_active": 1, "idle_timeout_seconds": 3, "ready_timeout_seconds": 1});
    let (toks, mut ws, first) = last_in_line(&base, &gw, "beat", beat(0), 2).await;
    assert_eq!(first["position"], 2);
    // The first user has no socket and sends no status: expired after 3 s, swept; the second,
    // silent but connected, moves up and stays.
    let m = next_json(&mut ws, Duration::from_secs(6)).await;
    assert_eq!(
        (m["type"].as_str(), m["position"].as_u64()),
        (Some("POSITION_CHANGED"), Some(1)),
        "{m}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(status(&base, &toks[0]).await.body["status"], "EXPIRED");
    assert_eq!(
        status(&base, &toks[1]).await.body["status"],
        "WAITING",
        "the open socket kept the place"
    );

    // READY but never entering: after ready_timeout_seconds the place is gone.
    put_event(&base, "beat", beat(5)).await;
    assert_eq!(
        next_json(&mut ws, Duration::from_secs(3)).await["type"],
        "ADMISSION_READY"
    );
    assert_eq!(
        next_json(&mut ws, Duration::from_secs(35)).await["type"],
        "TOKEN_EXPIRED"
    );
    assert_closed(&mut ws, 1000).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn reconnecting_resumes_the_same_place() {
    let (_redis, gw) = redis_gateway(&[]).await;
    let (toks, mut ws, first) = last_in_line(&gw.url(""), &gw, "resume", rate(0, 1), 3).await;
    assert_eq!(first["position"], 3);
    ws.close(None).await.unwrap();
    drop(ws);
    let mut again = connect(&gw, &toks[2]).await;
    assert_eq!(
        next_json(&mut again, Duration::from_secs(2)).await["position"],
        3
    );
    assert_eq!(
        join(&gw.url(""), "resume", "ws-2").await.body["position"],
        3
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn bad_tokens_are_refused_before_the_upgrade() {
    let gw = TestGateway::start(&[]).await;
    for (q, code) in [("?token=forged.token", 401), ("", 401), ("?token=", 401)] {
        let url = format!("ws://{}/api/v1/queue/ws{q}", gw.addr);
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), code, "{q}");
                let body: Value =
                    serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
                assert!(body["error"]["code"].is_string(), "{body}");
            }
            other => panic!("{q}: expected a refusal, got {other:?}"),
        }
    }
    // A plain GET with a valid token but no upgrade headers is a 400, not a hang.
    let tok = waiting_token(&gw.url(""), "demo", "plain").await;
    let r = send(client().get(gw.url(&format!("/api/v1/queue/ws?token={tok}")))).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_ARGUMENT"));
    gw.shutdown().await;
}

#[tokio::test]
async fn oversized_client_frames_close_the_socket() {
    let gw = TestGateway::start(&[]).await;
    let mut ws = demo_socket(&gw, "big").await;
    ws.send(Message::text("small is fine")).await.unwrap();
    ws.send(Message::text("x".repeat(5000))).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let m = next_json(&mut ws, deadline.saturating_duration_since(Instant::now())).await;
        if m.get("closed").is_some() {
            assert_eq!(m["closed"], 1009, "message too big");
            break;
        }
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn system_updates_reach_waiting_clients() {
    let (_redis, gw) = redis_gateway(&["--ws-tick-ms", "50"]).await;
    let base = gw.url("");
    let (_, mut ws, _) = last_in_line(&base, &gw, "sys", rate(0, 1), 1).await;
    for (action, heard) in [
        ("STOP_ADMISSIONS", "ADMISSIONS_PAUSED"),
        ("RESUME_ADMISSIONS", "ADMISSIONS_RESUMED"),
        ("SOLD_OUT", "EVENT_SOLD_OUT"),
    ] {
        let r = event_action(&base, "sys", action).await;
        assert_eq!(r.status, 200, "{action}: {}", r.body);
        let m = next_json(&mut ws, Duration::from_secs(2)).await;
        assert_eq!(m["type"], heard, "{action}: {m}");
    }
    assert_closed(&mut ws, 1000).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_dropped() {
    let gw = TestGateway::start(&["--ws-ping-seconds", "1", "--ws-tick-ms", "50"]).await;
    let mut ws = demo_socket(&gw, "silent").await;
    // Not reading means not answering pings: the server gives up after two intervals. (The
    // client may not get to read the 1008 close frame: its late pong can meet a closed socket,
    // and the reset discards what was queued. So the server's side is what is checked.)
    tokio::time::sleep(Duration::from_secs(4)).await;
    let metrics = send(client().get(gw.metrics_url("/metrics"))).await.body;
    let text = metrics.as_str().unwrap_or_default().to_owned();
    assert!(text.contains("gateway_websocket_dropped_total 1"), "{text}");
    assert!(text.contains("gateway_websocket_connections 0"), "{text}");
    let mut closed = Some(1008);
    while let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
        match frame {
            Ok(Message::Close(f)) => {
                closed = f.map(|f| u16::from(f.code));
                break;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    assert_eq!(
        closed,
        Some(1008),
        "if a close frame arrives, it says unresponsive"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_socket_whose_event_is_not_here_is_told_not_to_reconnect() {
    // Two gateways with the same token secret, each with its own embedded store: the event
    // exists on one only, as after its data was lost.
    let (a, b) = (TestGateway::start(&[]).await, TestGateway::start(&[]).await);
    let (_, _ws, first) = last_in_line(&a.url(""), &b, "only-on-a", rate(0, 10), 1).await;
    // 4404, from the error table: not 1013 ("try again later"), which retrying never ends.
    assert_eq!(first, json!({"closed": 4404}));
    a.shutdown().await;
    b.shutdown().await;
}
