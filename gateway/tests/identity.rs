//! Identity and bounded holds end to end, with real parts only: gateways on port 0 over a real
//! redis-server, the real `backends` services over gRPC on loopback, and user assertions signed
//! here the way an origin signs them (HS256 under the shared key).
//!
//! A client's `user_id` never becomes the admission's `sub`; a verified assertion does; a
//! re-join never re-labels a ticket; one admission holds once at a time; a left admission
//! holds nothing.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::backends::*;
use common::http::*;
use common::*;
use hmac::{Hmac, Mac};
use proto::reservation::v1 as res;
use serde_json::{json, Value};
use std::time::Duration;
use testkit::RedisServer;

/// The key the origin and the gateway share (≥ 32 bytes, no comma).
const KEY: &str = "the origin's assertion key: 32+ bytes";
/// The key the origin rotates to.
const NEXT_KEY: &str = "the origin's next assertion key (also long)";
/// A key the gateway does not have.
const STRANGER: &str = "somebody else's key that is long enough";

/// An HS256 JWT over `claims` under `key`, as an origin's JWT library makes it.
fn assertion(key: &str, claims: Value) -> String {
    let signed = format!(
        "{}.{}",
        B64.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        B64.encode(claims.to_string())
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    format!("{signed}.{}", B64.encode(mac.finalize().into_bytes()))
}

/// An assertion for `user` valid for a minute.
fn vouch(key: &str, user: &str) -> String {
    assertion(key, json!({"sub": user, "exp": now_s() + 60}))
}

/// Waits for READY and enters: the reservation token.
async fn admit(base: &str, waiting: &str) -> String {
    wait_status(base, waiting, "READY", Duration::from_secs(10)).await;
    let e = enter(base, waiting).await;
    assert_eq!(e.status, 200, "{}", e.body);
    e.body["reservation_token"].as_str().unwrap().to_owned()
}

/// The claims of a JWT (the signature is the gateway's business; tests/upstream.rs and the
/// queue's tests check it).
fn claims_of(jwt: &str) -> Value {
    let body = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(body).unwrap()).unwrap()
}

/// A gateway over its own redis-server with `flags`, and the event `show` open there: the
/// server, the gateway and its base URL.
async fn show(flags: &[&str]) -> (RedisServer, TestGateway, String) {
    let redis = RedisServer::start().unwrap();
    let gw = gateway(&redis, flags).await;
    let base = gw.url("");
    open_event(&base, "show").await;
    (redis, gw, base)
}

/// Joins with `body` and returns (waiting token, reservation token's `sub`).
async fn sub_after(base: &str, body: Value) -> (String, String) {
    let j = join_body(base, body).await;
    assert!(j.status == 201 || j.status == 200, "{}", j.body);
    let waiting = j.body["waiting_token"].as_str().unwrap().to_owned();
    let admission = admit(base, &waiting).await;
    let sub = claims_of(&admission)["sub"].as_str().unwrap().to_owned();
    (waiting, sub)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_a_verified_assertion_names_the_user() {
    let keys = [
        "--user-assertion-key",
        NEXT_KEY,
        "--user-assertion-key",
        KEY,
    ];
    let (_redis, gw, base) = show(&keys).await;

    // A forged user_id is ignored: the admission is the session's.
    let (_, sub) = sub_after(
        &base,
        json!({"event_id": "show", "session_id": "s-forger", "user_id": "victim"}),
    )
    .await;
    assert_eq!(sub, "s-forger");

    // The origin's assertion names the user, under either configured key (a rotation), and
    // with aud and sid bound to this join.
    let (_, sub) = sub_after(
        &base,
        json!({"event_id": "show", "session_id": "s-a", "user_assertion": vouch(KEY, "alice")}),
    )
    .await;
    assert_eq!(sub, "alice");
    let bound = assertion(
        NEXT_KEY,
        json!({"sub": "bob", "exp": now_s() + 60, "aud": "show", "sid": "s-b"}),
    );
    let (_, sub) = sub_after(
        &base,
        json!({"event_id": "show", "session_id": "s-b", "user_assertion": bound, "user_id": "victim"}),
    )
    .await;
    assert_eq!(sub, "bob");

    // Refused, and no place taken: another key's, expired, another event's, another
    // session's, and one that is not a JWT.
    let refused = [
        vouch(STRANGER, "alice"),
        assertion(KEY, json!({"sub": "alice", "exp": now_s() - 1})),
        assertion(
            KEY,
            json!({"sub": "alice", "exp": now_s() + 60, "aud": "other"}),
        ),
        assertion(
            KEY,
            json!({"sub": "alice", "exp": now_s() + 60, "sid": "s-a"}),
        ),
        "not-a-jwt".to_owned(),
    ];
    for a in refused {
        let r = join_body(
            &base,
            json!({"event_id": "show", "session_id": "s-x", "user_assertion": a}),
        )
        .await;
        assert_error(&r, 403, "INVALID_ASSERTION", "invalid");
    }
    let info = get_event(&base, "show").await;
    assert_eq!(info["stats"]["joined_total"], 3, "{info}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_key_an_assertion_is_refused_and_user_id_is_ignored() {
    let (_redis, gw, base) = show(&[]).await;
    let r = join_body(
        &base,
        json!({"event_id": "show", "session_id": "s1", "user_assertion": vouch(KEY, "alice")}),
    )
    .await;
    assert_code(&r, 400, "ASSERTIONS_DISABLED");
    let (_, sub) = sub_after(
        &base,
        json!({"event_id": "show", "session_id": "s1", "user_id": "victim"}),
    )
    .await;
    assert_eq!(sub, "s1");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rejoin_never_changes_the_identity_bound_to_a_ticket() {
    let (_redis, gw, base) = show(&["--user-assertion-key", KEY]).await;
    let as_alice =
        json!({"event_id": "show", "session_id": "shared", "user_assertion": vouch(KEY, "alice")});
    let (alice_waiting, sub) = sub_after(&base, as_alice.clone()).await;
    assert_eq!(sub, "alice");
    let alice_admission = enter(&base, &alice_waiting).await.body["reservation_token"].clone();

    // The same session re-joins as bob, then with a forged user_id, then anonymously: each is
    // a place of its own (201), named after who verifiably joined.
    for (body, want) in [
        (
            json!({"event_id": "show", "session_id": "shared", "user_assertion": vouch(KEY, "bob")}),
            "bob",
        ),
        (
            json!({"event_id": "show", "session_id": "shared", "user_id": "alice"}),
            "shared",
        ),
    ] {
        let j = join_body(&base, body.clone()).await;
        assert_eq!(j.status, 201, "{}", j.body);
        let (_, sub) = sub_after(&base, body).await;
        assert_eq!(sub, want);
    }

    // Alice's ticket is still alice's: re-joining as alice is her place (200), and entering
    // with her token gives the very same admission, sub alice.
    let again = join_body(&base, as_alice).await;
    assert_eq!(
        (again.status, &again.body["status"]),
        (200, &json!("ADMITTED"))
    );
    let e = enter(&base, &alice_waiting).await;
    assert_eq!(e.body["reservation_token"], alice_admission);
    let token = alice_admission.as_str().unwrap();
    assert_eq!(claims_of(token)["sub"], "alice");

    // Leaving under bob's assertion leaves bob's place, not alice's.
    let bob = join_body(
        &base,
        json!({"event_id": "show", "session_id": "shared", "user_assertion": vouch(KEY, "bob")}),
    )
    .await;
    let left = leave(&base, bob.body["waiting_token"].as_str().unwrap()).await;
    assert_eq!(left.status, 204);
    let alice = status(&base, &alice_waiting).await;
    assert_eq!(alice.body["status"], "ADMITTED", "{}", alice.body);
    gw.shutdown().await;
}

/// `POST /api/v1/reservations` for one seat with `key`.
async fn hold(base: &str, token: &str, key: &str) -> Resp {
    send(
        client()
            .post(format!("{base}/api/v1/reservations"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({"event_id": "show", "quantity": 1})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_admission_holds_once_at_a_time_and_a_left_one_not_at_all() {
    let backends = Backends::start(None, &[("show", 10)]).await;
    let flags = backends.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (_redis, gw, base) = show(&flags).await;
    let waiting = waiting_token(&base, "show", "alice").await;
    let token = admit(&base, &waiting).await;

    let first = hold(&base, &token, "k1").await;
    assert_eq!(first.status, 201, "{}", first.body);
    let rid = first.body["reservation_id"].as_str().unwrap().to_owned();
    // A second hold under the same admission is refused while the first is pending…
    let second = hold(&base, &token, "k2").await;
    assert_code(&second, 409, "HOLD_LIMIT");
    // …but the first one's key still answers the first hold (idempotency before the limit).
    let replay = hold(&base, &token, "k1").await;
    assert_eq!(
        (
            replay.status,
            &replay.body["reservation_id"],
            &replay.body["replayed"]
        ),
        (200, &json!(rid), &json!(true))
    );
    // Released (cancelled at the backends), it stops counting.
    let mut reservations =
        res::reservation_service_client::ReservationServiceClient::new(backends.channel().await);
    reservations
        .cancel_reservation(res::CancelReservationRequest {
            reservation_id: rid.clone(),
            user_id: "alice".into(),
            reason: "test".into(),
        })
        .await
        .unwrap();
    let after = hold(&base, &token, "k2").await;
    assert_eq!(after.status, 201, "{}", after.body);
    assert_ne!(after.body["reservation_id"], json!(rid));

    // Another admission holds on its own account.
    let bob_waiting = waiting_token(&base, "show", "bob").await;
    let bob = admit(&base, &bob_waiting).await;
    assert_eq!(hold(&base, &bob, "b1").await.status, 201);

    // Once alice leaves, her admission token, still within its exp, holds nothing, and the
    // backends never hear of it.
    assert_eq!(leave(&base, &waiting).await.status, 204);
    let calls = backends.calls();
    for key in ["k2", "k3"] {
        assert_code(&hold(&base, &token, key).await, 403, "ADMISSION_ENDED");
    }
    assert_eq!(
        backends.calls(),
        calls,
        "no upstream call for an ended admission"
    );
    // Reading what it holds still works.
    let get = send(
        client()
            .get(format!("{base}/api/v1/reservations/{rid}"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(
        (get.status, &get.body["status"]),
        (200, &json!("CANCELLED"))
    );
    gw.shutdown().await;
}
