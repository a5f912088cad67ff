//! The operations surface: `/metrics` on its own listener (not the public port) and the admin
//! audit trail in a real Redis stream at `GET /admin/v1/audit`.

mod common;

use common::http::{event_action, rate, redis_gateway};
use common::{client, put_event, send, TestGateway, ADMIN};
use serde_json::{json, Value};

#[tokio::test]
async fn metrics_are_served_on_the_metrics_listener_and_not_on_the_public_port() {
    let gw = TestGateway::start(&[]).await;
    common::join(&gw.url(""), "demo", "m1").await;

    let public = send(client().get(gw.url("/metrics"))).await;
    assert_eq!((public.status, public.code()), (404, "NOT_FOUND"));

    let url = gw.metrics_url("/metrics");
    let m = client().get(url).send().await.unwrap();
    assert_eq!(m.status(), 200);
    assert!(m.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = m.text().await.unwrap();
    assert!(
        text.contains("waiting_room_joins_total{event=\"demo\"} 1"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"));
    // The metrics listener serves nothing else.
    let api = send(client().get(gw.metrics_url("/healthz"))).await;
    assert_eq!(api.status, 404);
    gw.shutdown().await;
}

#[tokio::test]
async fn an_empty_metrics_listen_turns_the_listener_off() {
    let gw = TestGateway::start(&["--metrics-listen", ""]).await;
    assert!(gw.metrics.is_none());
    assert_eq!(send(client().get(gw.url("/metrics"))).await.status, 404);
    gw.shutdown().await;
}

async fn audit(gw: &TestGateway, query: &str, token: Option<&str>) -> common::Resp {
    let mut req = client().get(gw.url(&format!("/admin/v1/audit{query}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    send(req).await
}

fn entries(r: &common::Resp) -> &Vec<Value> {
    r.body["entries"].as_array().expect("entries")
}

#[tokio::test]
async fn an_event_update_is_in_the_trail_with_before_after_peer_and_request_id() {
    let (_redis, gw) = redis_gateway(&[]).await;
    let base = gw.url("");
    let r = put_event(&base, "sale", rate(5, 50)).await;
    assert_eq!(r.status, 201);
    let r = send(
        client()
            .put(gw.url("/admin/v1/events/sale"))
            .bearer_auth(ADMIN)
            .header("x-request-id", "change-42")
            .json(&json!({
                "admit_per_second": 9,
                "max_active": 50,
                "target_url": "https://shop.example/sale"
            })),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = event_action(&base, "sale", "STOP_ADMISSIONS").await;
    assert_eq!(r.status, 200);

    let r = audit(&gw, "", Some(ADMIN)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let e = entries(&r);
    assert_eq!(e.len(), 3, "{}", r.body);
    // Newest first.
    let actions: Vec<&str> = e.iter().map(|x| x["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["event.stop_admissions", "event.update", "event.create"]
    );
    let update = &e[1];
    assert_eq!(update["event_id"], "sale");
    assert_eq!(update["request_id"], "change-42");
    assert_eq!(update["before"]["admit_per_second"], 5);
    assert_eq!(update["before"]["target_url"], Value::Null);
    assert_eq!(update["after"]["admit_per_second"], 9);
    assert_eq!(update["after"]["target_url"], "https://shop.example/sale");
    let peer: std::net::SocketAddr = update["peer"].as_str().unwrap().parse().unwrap();
    assert!(peer.ip().is_loopback());
    assert!(update["time"].as_str().unwrap().ends_with('Z'));
    assert!(update["id"].as_str().unwrap().contains('-'));
    // The creation has no before; a request without an id gets the router's.
    assert_eq!(e[2]["before"], Value::Null);
    assert!(!e[2]["request_id"].as_str().unwrap().is_empty());
    // The action's before and after differ in the flag it changed.
    assert_eq!(e[0]["before"]["admissions_stopped"], false);
    assert_eq!(e[0]["after"]["admissions_stopped"], true);
    // Never a secret: the admin token appears nowhere.
    assert!(!r.body.to_string().contains(ADMIN));

    // ?limit= takes the newest.
    let r = audit(&gw, "?limit=1", Some(ADMIN)).await;
    assert_eq!(entries(&r).len(), 1);
    assert_eq!(entries(&r)[0]["action"], "event.stop_admissions");
    for bad in ["?limit=0", "?limit=1001", "?limit=x"] {
        let r = audit(&gw, bad, Some(ADMIN)).await;
        assert_eq!((r.status, r.code()), (400, "INVALID_ARGUMENT"), "{bad}");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn the_trail_needs_the_admin_token() {
    let (_redis, gw) = redis_gateway(&[]).await;
    put_event(&gw.url(""), "e", rate(1, 1)).await;
    for token in [None, Some("not-the-admin-token")] {
        let r = audit(&gw, "", token).await;
        assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{token:?}");
        assert!(r.body.get("entries").is_none());
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn the_trail_in_redis_is_bounded() {
    let (redis, gw) = redis_gateway(&["--audit-max-entries", "20"]).await;
    let base = gw.url("");
    for i in 0..300 {
        let r = put_event(&base, "b", rate(i, 1)).await;
        assert!(r.status == 200 || r.status == 201);
    }
    // XADD MAXLEN ~ trims whole stream nodes (100 entries each by default): at least 20 stay,
    // never much more than 20 + 100 of the 300.
    let len: u64 = testkit::raw_command(redis.port(), "XLEN wr:audit")
        .unwrap()
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap();
    assert!((20..=120).contains(&len), "{len} entries");
    let r = audit(&gw, "?limit=1000", Some(ADMIN)).await;
    assert_eq!(entries(&r).len() as u64, len);
    assert_eq!(entries(&r)[0]["after"]["admit_per_second"], 299);
    gw.shutdown().await;
}
