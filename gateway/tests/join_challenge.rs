//! Proof of work before a join (`join_challenge` in an event's configuration): over real
//! sockets, against a real Redis shared by two gateway replicas, and on the in-memory store
//! with an injected clock for expiry.

mod common;

use common::http::*;
use common::*;
use queue::challenge::solve;
use queue::clock::ManualClock;
use serde_json::{json, Value};
use std::sync::Arc;

/// Bits the HTTP tests ask for: enough to be a real puzzle, cheap enough for a test.
const BITS: u32 = 10;

/// The settings of an event with the `join_challenge` setting `setting`, admitting nobody yet.
fn challenged(setting: Value) -> Value {
    json!({"admit_per_second": 0, "max_active": 10, "join_challenge": setting})
}

/// [`challenged`] at `bits` of difficulty.
fn with_bits(n: u32) -> Value {
    challenged(json!({"difficulty_bits": n}))
}

async fn challenge(base: &str, event: &str) -> Resp {
    send(client().get(format!("{base}/api/v1/queue/challenge?event_id={event}"))).await
}

/// A solved challenge of `event` as a join carries it.
async fn solved(base: &str, event: &str) -> Value {
    let c = challenge(base, event).await;
    assert_eq!(c.status, 200, "{}", c.body);
    assert_eq!(c.body["required"], true);
    let token = c.body["token"].as_str().unwrap().to_owned();
    let bits = c.body["difficulty_bits"].as_u64().unwrap() as u32;
    json!({"token": token, "nonce": solve(&token, bits)})
}

async fn join_with(base: &str, event: &str, session: &str, answer: Option<&Value>) -> Resp {
    let mut body = json!({"event_id": event, "session_id": session});
    if let Some(a) = answer {
        body["challenge"] = a.clone();
    }
    join_body(base, body).await
}

/// A nonce that does not solve `token` at `bits`.
fn wrong_nonce(token: &str, bits: u32) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|n| !queue::challenge::solves(token, n, bits))
        .unwrap()
}

#[tokio::test]
async fn joins_of_a_challenged_event_need_a_fresh_solution_on_any_replica() {
    let (redis, a) = redis_gateway(&[]).await;
    let b = TestGateway::start(&["--redis-url", &redis.url()]).await;
    let (ba, bb) = (a.url(""), b.url(""));

    let r = put_event(&ba, "pow", with_bits(BITS)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["join_challenge"], json!({"difficulty_bits": BITS}));
    let got = get_event(&bb, "pow").await;
    assert_eq!(got["join_challenge"], json!({"difficulty_bits": BITS}));
    for bad in [json!({"difficulty_bits": 33}), json!({"bits": 3})] {
        let r = put_event(&ba, "pow", challenged(bad.clone())).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "INVALID_ARGUMENT"),
            "{bad}: {}",
            r.body
        );
    }

    // No solution: refused, on both replicas, and nobody got a place.
    for base in [&ba, &bb] {
        let r = join(base, "pow", "alice").await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(r.code(), "CHALLENGE_REQUIRED");
    }

    // What the endpoint hands out.
    let c = challenge(&ba, "pow").await;
    assert_eq!(c.status, 200);
    assert_eq!(
        c.headers.get("cache-control").unwrap(),
        "no-store",
        "a challenge is never cached"
    );
    assert_eq!(c.body["difficulty_bits"], BITS);
    let token = c.body["token"].as_str().unwrap().to_owned();
    let expires = time::OffsetDateTime::parse(
        c.body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::seconds(60) && left <= time::Duration::seconds(120),
        "the default lifetime is 120 s: {left}"
    );

    // A wrong nonce fails and does not use the challenge up.
    let wrong = json!({"token": token, "nonce": wrong_nonce(&token, BITS)});
    let r = join_with(&ba, "pow", "alice", Some(&wrong)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "CHALLENGE_FAILED");
    let garbled = json!({"token": format!("{token}x"), "nonce": "1"});
    assert_eq!(
        join_with(&ba, "pow", "alice", Some(&garbled)).await.code(),
        "CHALLENGE_FAILED"
    );

    // Solved: joins (a challenge of replica A, spent on replica B).
    let answer = json!({"token": token, "nonce": solve(&token, BITS)});
    let r = join_with(&bb, "pow", "alice", Some(&answer)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["position"], 1);

    // Used once: refused on either replica, even for another session.
    for (base, who) in [(&ba, "bob"), (&bb, "bob"), (&bb, "alice")] {
        let r = join_with(base, "pow", who, Some(&answer)).await;
        assert_error(&r, 403, "CHALLENGE_FAILED", "already used");
    }
    // The claim is one key in the event's slot that lapses with the challenge.
    let keys = testkit::raw_command(redis.port(), "KEYS wr:{pow}:claim:*").unwrap();
    assert!(keys.starts_with("*1\r\n"), "{keys:?}");
    let key = keys.lines().nth(2).unwrap().to_owned();
    let pttl: i64 = testkit::raw_command(redis.port(), &format!("PTTL {key}"))
        .unwrap()
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap();
    assert!(pttl > 0 && pttl <= 120_000, "PTTL {pttl}");

    // A re-join of a standing place needs a solution too, and keeps the place.
    assert_eq!(join(&bb, "pow", "alice").await.code(), "CHALLENGE_REQUIRED");
    let again = solved(&bb, "pow").await;
    let r = join_with(&ba, "pow", "alice", Some(&again)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["position"], 1);

    // Another event's challenge does not open this one.
    put_event(&ba, "pow2", with_bits(BITS)).await;
    let other = solved(&ba, "pow2").await;
    let r = join_with(&ba, "pow", "carol", Some(&other)).await;
    assert_error(&r, 403, "CHALLENGE_FAILED", "another event");
    // ... and, not spent there, still joins its own event.
    let own = join_with(&ba, "pow2", "carol", Some(&other)).await;
    assert_eq!(own.status, 201);

    // A raise voids challenges issued at the lower difficulty.
    let easy = solved(&ba, "pow").await;
    put_event(&ba, "pow", with_bits(BITS + 1)).await;
    let r = join_with(&ba, "pow", "dave", Some(&easy)).await;
    assert_eq!(r.code(), "CHALLENGE_FAILED");

    // Events without a challenge: joins as before, and the endpoint says so.
    put_event(&ba, "free", rate(0, 10)).await;
    assert_eq!(join(&bb, "free", "erin").await.status, 201);
    let c = challenge(&bb, "free").await;
    assert_eq!(
        (c.status, c.body.clone()),
        (200, json!({"required": false}))
    );
    assert_eq!(get_event(&ba, "free").await["join_challenge"], Value::Null);
    // A solution sent to such an event is ignored.
    assert_eq!(
        join_with(&ba, "free", "erin", Some(&answer)).await.status,
        200
    );
    assert_eq!(challenge(&ba, "nope").await.code(), "EVENT_NOT_FOUND");
    assert_eq!(challenge(&ba, "no%20such").await.code(), "INVALID_ARGUMENT");

    // Turning it off (0 bits) applies at once on the replica that made the change, and on the
    // other one within a second (it caches the setting that long).
    let r = put_event(&ba, "pow", with_bits(0)).await;
    assert_eq!(r.body["join_challenge"], Value::Null, "0 bits is off");
    assert_eq!(join(&ba, "pow", "frank").await.status, 201);
    until("replica B sees the challenge turned off", async || {
        join(&bb, "pow", "grace").await.status == 201
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn an_expired_challenge_fails_and_the_memory_store_uses_each_once() {
    let clock = ManualClock::new(1_800_000_000_000);
    // The in-memory store, on the manual clock.
    let gw = TestGateway::start_with_clock(
        &["--join-challenge-ttl-seconds", "30"],
        Arc::new(clock.clone()),
    )
    .await;
    let base = gw.url("");
    let r = put_event(&base, "mem", with_bits(BITS)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let c = challenge(&base, "mem").await;
    assert_eq!(c.body["expires_at"], "2027-01-15T08:00:30Z", "now + 30 s");

    // Solved in time: joins once.
    let first = solved(&base, "mem").await;
    assert_eq!(join_with(&base, "mem", "a", Some(&first)).await.status, 201);
    let r = join_with(&base, "mem", "b", Some(&first)).await;
    assert_eq!(r.code(), "CHALLENGE_FAILED");

    // Solved, then presented 30 s after issue: expired.
    let late = solved(&base, "mem").await;
    clock.advance_ms(29_999);
    let on_time = solved(&base, "mem").await;
    clock.advance_ms(1);
    let r = join_with(&base, "mem", "c", Some(&late)).await;
    assert_error(&r, 403, "CHALLENGE_FAILED", "expired");
    // One issued later is still good.
    let later = join_with(&base, "mem", "c", Some(&on_time)).await;
    assert_eq!(later.status, 201);
    gw.shutdown().await;
}

#[tokio::test]
async fn grpc_joins_of_a_challenged_event_are_refused() {
    use proto::gateway::v1 as gw;
    use proto::gateway::v1::queue_service_client::QueueServiceClient;
    let g = TestGateway::start(&["--grpc-listen", "127.0.0.1:0"]).await;
    put_event(&g.url(""), "pow", with_bits(BITS)).await;
    let mut q = QueueServiceClient::new(channel(&g).await);
    let request = |event: &str| gw::JoinQueueRequest {
        event_id: event.into(),
        session_id: "s".into(),
        ..Default::default()
    };
    let e = q.join_queue(request("pow")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    // The demo event (no challenge) still joins over gRPC.
    let ok = q.join_queue(request("demo")).await;
    assert!(ok.is_ok(), "{ok:?}");
    g.shutdown().await;
}
