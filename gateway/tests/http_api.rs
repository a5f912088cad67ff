//! The HTTP API end to end: real gateways on port 0, a real redis-server, real HTTP.

mod common;

use common::http::*;
use common::*;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Debug, serde::Deserialize)]
struct Claims {
    aud: String,
    sub: String,
    exp: u64,
    jti: String,
    iss: String,
}

/// Verifies a reservation token the way an origin would: with the JWKS only.
async fn verify_with_jwks(base: &str, token: &str, event: &str) -> Claims {
    let jwks = send(client().get(format!("{base}/.well-known/jwks.json")))
        .await
        .body;
    let header = jsonwebtoken::decode_header(token).unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"].as_str() == header.kid.as_deref())
        .expect("kid in JWKS");
    let dk = DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_audience(&[event]);
    jsonwebtoken::decode::<Claims>(token, &dk, &v)
        .expect("valid JWT")
        .claims
}

#[tokio::test]
async fn the_queue_flow_over_http() {
    let (_redis, gw) = redis_gateway(&["--admission-tick-ms", "20"]).await;
    let base = gw.url("");
    let r = put_event(&base, "flow", rate(0, 10)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["stats"]["waiting"], 0);
    assert_eq!(put_event(&base, "flow", rate(0, 10)).await.status, 200);

    let a = join(&base, "flow", "alice").await;
    assert_eq!(a.status, 201);
    assert_eq!(
        (a.body["status"].as_str(), a.body["position"].as_u64()),
        (Some("WAITING"), Some(1))
    );
    assert!(a.body["expires_at"].is_string() && a.body["eta_seconds"].is_i64());
    let b = join(&base, "flow", "bob").await;
    assert_eq!(b.body["position"], 2);
    let again = join(&base, "flow", "alice").await;
    assert_eq!(again.status, 200, "a refresh keeps the place");
    // The same place; the token may be a newer one (its issue time), and both stay valid.
    assert_eq!(again.body["position"], 1);
    let again_token = again.body["waiting_token"].as_str().unwrap();
    assert_eq!(status(&base, again_token).await.body["position"], 1);
    let ta = a.body["waiting_token"].as_str().unwrap().to_owned();
    let tb = b.body["waiting_token"].as_str().unwrap().to_owned();

    let e = enter(&base, &ta).await;
    assert_eq!((e.status, e.code()), (409, "NOT_READY"));

    // Open the gate: one per second, so alice (first) becomes READY, bob still waits.
    put_event(&base, "flow", rate(1, 10)).await;
    let s = wait_status(&base, &ta, "READY", Duration::from_secs(5)).await;
    assert_eq!(
        (
            s.body["position"].as_u64(),
            s.body["admission_ready"].as_bool()
        ),
        (Some(0), Some(true))
    );
    let g = enter(&base, &ta).await;
    assert_eq!(g.status, 200, "{}", g.body);
    assert_eq!(g.body["admission"], "GRANTED");
    assert_eq!(g.body["ttl_seconds"], 300);
    let jwt = g.body["reservation_token"].as_str().unwrap();
    let claims = verify_with_jwks(&base, jwt, "flow").await;
    assert_eq!(
        (
            claims.aud.as_str(),
            claims.sub.as_str(),
            claims.iss.as_str()
        ),
        ("flow", "alice", "admission-gateway")
    );
    assert!(!claims.jti.is_empty() && claims.exp > 0);
    let g2 = enter(&base, &ta).await;
    assert_eq!(g2.body, g.body, "entering twice returns the same grant");
    assert_eq!(status(&base, &ta).await.body["status"], "ADMITTED");

    let info = get_event(&base, "flow").await;
    assert_eq!(info["stats"]["entered_total"], 1);
    assert_eq!(info["stats"]["joined_total"], 2);

    assert_eq!(leave(&base, &tb).await.status, 204);
    assert_eq!(status(&base, &tb).await.body["status"], "EXPIRED");
    let gone = enter(&base, &tb).await;
    assert_eq!((gone.status, gone.code()), (410, "TOKEN_EXPIRED"));

    let lost = send(client().get(format!("{base}/no/such/page"))).await;
    assert_eq!((lost.status, lost.code()), (404, "NOT_FOUND"));
    let m = send(client().get(gw.metrics_url("/metrics"))).await;
    let text = m.body.as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("waiting_room_joins_total{event=\"flow\"} 2"),
        "{text}"
    );
    assert!(text.contains("gateway_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/queue/join\",status=\"201\"} 2"));
    // A route with a parameter is labelled by its pattern, never by the raw path (one series
    // per event id would be unbounded), and a path no route takes by `unmatched`.
    assert!(
        text.contains("gateway_http_request_duration_seconds_count{method=\"GET\",route=\"/admin/v1/events/{event_id}\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(!text.contains("route=\"/admin/v1/events/flow\""), "{text}");
    assert!(
        text.contains("gateway_http_request_duration_seconds_count{method=\"GET\",route=\"unmatched\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(text.contains("waiting_room_queue_depth{event=\"flow\"}"));
    gw.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_json_error() {
    let (_redis, gw, base) = redis_event(&[], "bad", rate(0, 1)).await;
    let c = client();
    let post = |body: &'static str| {
        c.post(gw.url("/api/v1/queue/join"))
            .header("content-type", "application/json")
            .body(body)
    };
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (post("{not json"), 400, "INVALID_ARGUMENT"),
        (
            post(r#"{"event_id": 5, "session_id": "s"}"#),
            400,
            "INVALID_ARGUMENT",
        ),
        (post(r#"{"event_id": "bad"}"#), 400, "INVALID_ARGUMENT"),
        (
            post(r#"{"event_id": "no such", "session_id": "s"}"#),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            post(r#"{"event_id": "missing", "session_id": "s"}"#),
            404,
            "EVENT_NOT_FOUND",
        ),
        (post(""), 400, "INVALID_ARGUMENT"),
        (
            c.post(gw.url("/api/v1/queue/join")).body(format!(
                r#"{{"event_id":"bad","session_id":"{}"}}"#,
                "s".repeat(20_000)
            )),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            c.post(gw.url("/api/v1/queue/join")).body(format!(
                r#"{{"event_id":"bad","session_id":"{}"}}"#,
                "s".repeat(129)
            )),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            c.get(gw.url("/api/v1/queue/status")),
            401,
            "UNAUTHENTICATED",
        ),
        (
            c.get(gw.url("/api/v1/queue/status"))
                .header("authorization", "Basic abc"),
            401,
            "UNAUTHENTICATED",
        ),
        (
            c.get(gw.url("/api/v1/queue/status")).bearer_auth("x.y"),
            401,
            "INVALID_TOKEN",
        ),
        (
            c.post(gw.url("/api/v1/queue/enter")).bearer_auth("garbage"),
            401,
            "INVALID_TOKEN",
        ),
        (
            c.delete(gw.url("/api/v1/queue"))
                .bearer_auth("a".repeat(5000)),
            401,
            "INVALID_TOKEN",
        ),
        (c.get(gw.url("/admin/v1/events/bad")), 401, "UNAUTHORIZED"),
        (
            c.get(gw.url("/admin/v1/events/bad")).bearer_auth("wrong"),
            401,
            "UNAUTHORIZED",
        ),
        (
            c.get(gw.url("/admin/v1/events/nope")).bearer_auth(ADMIN),
            404,
            "EVENT_NOT_FOUND",
        ),
        (
            c.put(gw.url("/admin/v1/events/bad"))
                .bearer_auth(ADMIN)
                .json(&json!({"admit_per_second": 1, "max_active": 1, "idle_timeout_seconds": 0})),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            c.put(gw.url("/admin/v1/events/bad"))
                .bearer_auth(ADMIN)
                .json(&json!({"admit_per_second": 1, "max_active": 1, "surprise": 1})),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            c.put(gw.url("/admin/v1/events/bad"))
                .bearer_auth(ADMIN)
                .json(&json!({"admit_per_second": 1, "max_active": 1, "opens_at": "tomorrow"})),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            c.put(gw.url("/admin/v1/events/a%20b"))
                .bearer_auth(ADMIN)
                .json(&json!({"admit_per_second": 1, "max_active": 1})),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            c.post(gw.url("/admin/v1/events/bad/actions"))
                .bearer_auth(ADMIN)
                .json(&json!({"action": "EXPLODE"})),
            400,
            "INVALID_ARGUMENT",
        ),
        (c.get(gw.url("/no/such/route")), 404, "NOT_FOUND"),
        (
            c.put(gw.url("/api/v1/queue/join")),
            405,
            "METHOD_NOT_ALLOWED",
        ),
    ];
    for (i, (req, want, code)) in cases.into_iter().enumerate() {
        let r = send(req).await;
        assert_eq!((r.status, r.code()), (want, code), "case {i}: {}", r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "case {i}"
        );
        assert!(r.headers.contains_key("x-request-id"), "case {i}");
    }
    // A tampered token: one byte of the claims changed.
    let tok = waiting_token(&base, "bad", "s").await;
    let mut bytes = tok.into_bytes();
    bytes[2] = if bytes[2] == b'A' { b'B' } else { b'A' };
    let r = status(&base, &String::from_utf8(bytes).unwrap()).await;
    assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN"));
    // Nothing was lost: the event still holds its one user.
    assert_eq!(get_event(&base, "bad").await["stats"]["waiting"], 1);
    // A request id sent by the client comes back.
    let r = send(
        client()
            .get(gw.url("/healthz"))
            .header("x-request-id", "abc-123"),
    )
    .await;
    assert_eq!(r.headers["x-request-id"], "abc-123");
    gw.shutdown().await;
}

#[tokio::test]
async fn redis_down_is_a_fast_503_and_recovers() {
    let (mut redis, gw) = redis_gateway(&["--redis-timeout-ms", "300"]).await;
    let base = gw.url("");
    put_event(&base, "down", rate(0, 1)).await;
    let tok = waiting_token(&base, "down", "s").await;

    // A hung Redis (SIGSTOP) and a dead one (killed) both give a 503 with Retry-After in time.
    redis.signal("STOP").unwrap();
    let start = Instant::now();
    let r = join(&base, "down", "t").await;
    assert_eq!((r.status, r.code()), (503, "UNAVAILABLE"), "{}", r.body);
    assert_eq!(r.headers["retry-after"], "1");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
    redis.signal("CONT").unwrap();

    redis.stop();
    for _ in 0..3 {
        let start = Instant::now();
        let r = status(&base, &tok).await;
        assert_eq!((r.status, r.code()), (503, "UNAVAILABLE"), "{}", r.body);
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "took {:?}",
            start.elapsed()
        );
    }
    let ready = async || send(client().get(gw.url("/readyz"))).await.status;
    assert_eq!(ready().await, 503);
    assert_eq!(send(client().get(gw.url("/healthz"))).await.status, 200);

    // Back up (empty: no persistence in this test): the gateway reconnects by itself.
    redis.restart().unwrap();
    poll_for("ready again", Duration::from_secs(15), 200, ready).await;
    assert_eq!(put_event(&base, "down", rate(0, 1)).await.status, 201);
    assert_eq!(join(&base, "down", "u").await.status, 201);
    gw.shutdown().await;
}

#[tokio::test]
async fn actions_over_http() {
    let (_redis, gw, base) = redis_event(&[], "acts", rate(0, 5)).await;
    let tok = waiting_token(&base, "acts", "s").await;
    let act = async |a: &str| event_action(&base, "acts", a).await;
    let r = act("STOP_ADMISSIONS").await;
    assert_eq!(
        (r.status, r.body["admissions_stopped"].as_bool()),
        (200, Some(true))
    );
    let resumed = act("RESUME_ADMISSIONS").await;
    assert_eq!(resumed.body["admissions_stopped"], false);
    assert_eq!(act("SOLD_OUT").await.body["sold_out"], true);
    let j = join(&base, "acts", "late").await;
    assert_eq!((j.status, j.code()), (410, "EVENT_CLOSED"));
    assert_eq!(status(&base, &tok).await.body["status"], "SOLD_OUT");
    gw.shutdown().await;
}

#[tokio::test]
async fn tokens_work_on_every_replica_and_after_a_restart() {
    let redis = testkit::RedisServer::start().unwrap();
    let a = gateway(&redis, NO_FLAGS).await;
    let b = gateway(&redis, NO_FLAGS).await;
    put_event(&a.url(""), "rep", rate(50, 10)).await;
    let tok = waiting_token(&a.url(""), "rep", "s").await;
    wait_status(&b.url(""), &tok, "READY", Duration::from_secs(5)).await;
    let g = enter(&b.url(""), &tok).await;
    assert_eq!(g.status, 200);
    a.shutdown().await;
    let a2 = TestGateway::start(&["--redis-url", &redis.url()]).await;
    assert_eq!(
        status(&a2.url(""), &tok).await.body["status"],
        "ADMITTED",
        "the waiting token survives a restart"
    );
    let claims = verify_with_jwks(
        &a2.url(""),
        g.body["reservation_token"].as_str().unwrap(),
        "rep",
    )
    .await;
    assert_eq!(claims.sub, "s", "the signing key survives a restart");
    b.shutdown().await;
    a2.shutdown().await;
}

#[tokio::test]
async fn embedded_default_serves_a_demo_event() {
    let gw = TestGateway::start(&[]).await;
    let r = join(&gw.url(""), "demo", "newcomer").await;
    assert_eq!(r.status, 201, "{}", r.body);
    let tok = r.body["waiting_token"].as_str().unwrap().to_owned();
    wait_status(&gw.url(""), &tok, "READY", Duration::from_secs(5)).await;
    assert_eq!(enter(&gw.url(""), &tok).await.status, 200);
    assert_eq!(send(client().get(gw.url("/readyz"))).await.status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn limits_on_connections_and_headers() {
    use std::io::{Read, Write};
    let gw = TestGateway::start(&["--max-connections", "2", "--max-header-bytes", "8192"]).await;
    let addr = gw.addr;
    tokio::task::spawn_blocking(move || {
        let _a = std::net::TcpStream::connect(addr).unwrap();
        let _b = std::net::TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
        let mut buf = [0u8; 64];
        assert_eq!(
            c.read(&mut buf).unwrap_or(0),
            0,
            "a connection over the limit is closed"
        );
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = client()
        .get(gw.url("/healthz"))
        .header("x-big", "v".repeat(10_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 431, "oversized request head");
    assert_eq!(
        send(client().get(gw.url("/healthz"))).await.status,
        200,
        "the server still serves"
    );
    gw.shutdown().await;
}

/// The value of the first `/metrics` sample whose name and labels are exactly `series`.
async fn metric(base: &str, series: &str) -> Option<String> {
    let text = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
}

/// Waits (up to 5 s: the gauges follow the configuration once a second) for `series` to read
/// `want`.
async fn wait_metric(base: &str, series: &str, want: &str) {
    let within = Duration::from_secs(5);
    poll_for(series, within, Some(want.to_owned()), async || {
        metric(base, series).await
    })
    .await
}

#[tokio::test]
async fn metrics_tell_a_held_event_from_a_stalled_one() {
    let (_redis, gw) = redis_gateway(&[]).await;
    let base = gw.url("");
    let mbase = gw.metrics_url("");
    put_event(&base, "hold", rate(5, 7)).await;
    let held = "waiting_room_admissions_held{event=\"hold\"}";
    wait_metric(&mbase, held, "0").await;
    wait_metric(&mbase, "waiting_room_max_active{event=\"hold\"}", "7").await;

    for (action, now_held) in [("STOP_ADMISSIONS", "1"), ("RESUME_ADMISSIONS", "0")] {
        assert_eq!(event_action(&base, "hold", action).await.status, 200);
        wait_metric(&mbase, held, now_held).await;
    }

    // Not open yet (the pre-queue) holds admissions too; a rate of 0 as well.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let pre_queue = json!({"admit_per_second": 5, "max_active": 9, "opens_at": later});
    put_event(&base, "hold", pre_queue).await;
    wait_metric(&mbase, held, "1").await;
    wait_metric(&mbase, "waiting_room_max_active{event=\"hold\"}", "9").await;
    for (config, now_held) in [(rate(0, 9), "1"), (rate(3, 9), "0")] {
        put_event(&base, "hold", config).await;
        wait_metric(&mbase, held, now_held).await;
    }
    gw.shutdown().await;
}
