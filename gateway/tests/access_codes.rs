//! Queueing methods, admission at once and priority access codes over the HTTP API: a gateway on
//! port 0 over a real redis-server. Admissions run at `admit_per_second` 0 where an order is
//! checked, so no tick changes what is asserted.

mod common;

use common::http::*;
use common::*;
use serde_json::{json, Value};

/// The settings of an event that admits nobody yet, queueing by `method`.
fn queueing(method: &str) -> Value {
    json!({"admit_per_second": 0, "max_active": 10, "queueing_method": method})
}

async fn join_with(base: &str, event: &str, session: &str, code: &str) -> Resp {
    join_body(
        base,
        json!({"event_id": event, "session_id": session, "access_code": code}),
    )
    .await
}

async fn mint(base: &str, event: &str, body: Value) -> Resp {
    admin_post(
        &format!("{base}/admin/v1/events/{event}/access-codes"),
        body,
    )
    .await
}

async fn revoke(base: &str, event: &str, codes: &[&str]) -> Resp {
    let url = format!("{base}/admin/v1/events/{event}/access-codes/revoke");
    admin_post(&url, json!({ "codes": codes })).await
}

#[tokio::test]
async fn queueing_methods_over_http() {
    let (_redis, gw) = redis_gateway(&["--admission-tick-ms", "20"]).await;
    let base = gw.url("");
    let r = put_event(&base, "lotto", queueing("random")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["queueing_method"], "random");
    let stored = get_event(&base, "lotto").await;
    assert_eq!(stored["queueing_method"], "random");
    let bad = put_event(&base, "lotto", queueing("lifo")).await;
    assert_eq!((bad.status, bad.code()), (400, "INVALID_ARGUMENT"));
    // The default is fifo.
    let r = put_event(&base, "plain", rate(0, 10)).await;
    assert_eq!(r.body["queueing_method"], "fifo");

    join(&base, "lotto", "first").await;
    let j = join(&base, "lotto", "second").await;
    assert_eq!(j.status, 201);
    assert_eq!(j.body["queueing_method"], "random");
    assert_eq!(j.body["status"], "WAITING");
    assert_eq!(j.body["position"], 0, "a lottery shows no position");
    let token = j.body["waiting_token"].as_str().unwrap().to_owned();
    let s = status(&base, &token).await;
    assert_eq!(s.body["queueing_method"], "random");
    assert_eq!(s.body["position"], 0);

    // reject: no new joins; the waiting keep their place and their status reads.
    let r = put_event(&base, "lotto", queueing("reject")).await;
    assert_eq!(r.status, 200);
    let refused = join(&base, "lotto", "late").await;
    assert_eq!((refused.status, refused.code()), (403, "QUEUE_CLOSED"));
    let s = status(&base, &token).await;
    assert_eq!((s.status, &s.body["status"]), (200, &json!("WAITING")));
    assert_eq!(s.body["queueing_method"], "reject");
    // Back to fifo: the arrival order shows again.
    put_event(&base, "lotto", queueing("fifo")).await;
    assert_eq!(status(&base, &token).await.body["position"], 2);

    // passthrough: READY in the join's own reply while there is room, then a queue.
    let passthrough =
        json!({"admit_per_second": 0, "max_active": 1, "queueing_method": "passthrough"});
    put_event(&base, "open", passthrough).await;
    let a = join(&base, "open", "a").await;
    assert_eq!((a.status, &a.body["status"]), (201, &json!("READY")));
    assert_eq!(a.body["queueing_method"], "passthrough");
    let b = join(&base, "open", "b").await;
    assert_eq!(
        (&b.body["status"], &b.body["position"]),
        (&json!("WAITING"), &json!(1))
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn access_codes_over_http() {
    let (_redis, gw) = redis_gateway(&["--admission-tick-ms", "20"]).await;
    let base = gw.url("");
    put_event(&base, "vip", rate(0, 10)).await;
    let g = join(&base, "vip", "general").await;
    assert_eq!(g.body["position"], 1);

    let m = mint(&base, "vip", json!({"count": 3})).await;
    assert_eq!(m.status, 201, "{}", m.body);
    assert_eq!(m.headers["cache-control"], "no-store");
    let codes: Vec<String> = m.body["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 3);
    for bad in [json!({"count": 0}), json!({"count": 10_001}), json!({})] {
        let r = mint(&base, "vip", bad.clone()).await;
        assert_eq!((r.status, r.code()), (400, "INVALID_ARGUMENT"), "{bad}");
    }
    let r = mint(&base, "nosuch", json!({"count": 1})).await;
    assert_eq!((r.status, r.code()), (404, "EVENT_NOT_FOUND"));
    let r = send(
        client()
            .post(gw.url("/admin/v1/events/vip/access-codes"))
            .json(&json!({"count": 1})),
    )
    .await;
    assert_eq!(r.status, 401, "admin only");

    // A code takes the priority lane, ahead of those already waiting.
    let p = join_with(&base, "vip", "p", &codes[0]).await;
    assert_eq!((p.status, &p.body["position"]), (201, &json!(1)));
    let token = g.body["waiting_token"].as_str().unwrap();
    assert_eq!(status(&base, token).await.body["position"], 2);
    // Spent: refused for anyone else; the same session's refresh keeps its place.
    let thief = join_with(&base, "vip", "thief", &codes[0]).await;
    assert_eq!((thief.status, thief.code()), (403, "INVALID_ACCESS_CODE"));
    let again = join_with(&base, "vip", "p", &codes[0]).await;
    assert_eq!((again.status, &again.body["position"]), (200, &json!(1)));
    let unknown = join_with(&base, "vip", "u", "not-a-minted-code").await;
    assert_eq!(unknown.code(), "INVALID_ACCESS_CODE");

    // Revoked: an unspent code no longer works.
    let r = revoke(&base, "vip", &[&codes[1], "never-minted"]).await;
    assert_eq!((r.status, &r.body["revoked"]), (200, &json!(1)));
    let late = join_with(&base, "vip", "late", &codes[1]).await;
    assert_eq!((late.status, late.code()), (403, "INVALID_ACCESS_CODE"));
    let ok = join_with(&base, "vip", "q", &codes[2]).await;
    assert_eq!(
        ok.body["position"], 2,
        "behind p, ahead of the general queue"
    );

    // The trail counts codes and never shows one.
    let r = send(client().get(gw.url("/admin/v1/audit")).bearer_auth(ADMIN)).await;
    let trail = r.body.to_string();
    assert!(trail.contains("access_codes.mint"), "{trail}");
    assert!(trail.contains("access_codes.revoke"), "{trail}");
    for c in &codes {
        assert!(!trail.contains(c.as_str()), "a code in the audit trail");
    }
    gw.shutdown().await;
}

/// The gRPC QueueService takes the same code, and says the method, as the HTTP API does.
#[tokio::test]
async fn access_codes_and_the_method_over_grpc() {
    use proto::gateway::v1 as gw;
    use proto::gateway::v1::queue_service_client::QueueServiceClient;
    let (_redis, g) = redis_gateway(&["--grpc-listen", "127.0.0.1:0"]).await;
    let base = g.url("");
    put_event(&base, "grpcvip", queueing("fifo")).await;
    assert_eq!(join(&base, "grpcvip", "general").await.status, 201);
    let m = mint(&base, "grpcvip", json!({"count": 1})).await;
    let code = m.body["codes"][0].as_str().unwrap().to_owned();
    let mut q = QueueServiceClient::new(channel(&g).await);
    let join = |session: &str| gw::JoinQueueRequest {
        event_id: "grpcvip".into(),
        session_id: session.into(),
        access_code: code.clone(),
        ..Default::default()
    };
    let vip = q.join_queue(join("vip")).await.unwrap().into_inner();
    assert_eq!(
        (vip.position_hint, vip.queueing_method.as_str()),
        (1, "fifo"),
        "ahead of the general queue"
    );
    let e = q.join_queue(join("thief")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(format!("{e:?}").contains("INVALID_ACCESS_CODE"), "{e:?}");

    // Switched live to a lottery: status shows no position, and says why.
    put_event(&base, "grpcvip", queueing("random")).await;
    let s = q
        .get_queue_status(gw::GetQueueStatusRequest {
            waiting_token: vip.waiting_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (s.position, s.eta_seconds, s.queueing_method.as_str()),
        (0, -1, "random")
    );
    g.shutdown().await;
}
