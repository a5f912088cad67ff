//! `gateway.v1.GatewayService` over real gRPC: a gateway on port 0 over a real redis-server,
//! the real `backends` services on loopback, admission tokens from real admissions.

mod common;

use common::backends::*;
use common::*;
use proto::common::v1::ErrorCode;
use proto::gateway::v1 as gw;
use proto::gateway::v1::gateway_service_client::GatewayServiceClient;
use testkit::RedisServer;
use tonic::transport::Channel;

async fn client(gw: &TestGateway) -> GatewayServiceClient<Channel> {
    let url = format!("http://{}", gw.grpc.unwrap());
    GatewayServiceClient::new(Channel::from_shared(url).unwrap().connect().await.unwrap())
}

fn validate(token: &str, scope: &str) -> gw::ValidateTokenRequest {
    gw::ValidateTokenRequest {
        token: token.into(),
        required_scope: scope.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_token_answers_the_user_scopes_and_expiry() {
    let redis = RedisServer::start().unwrap();
    let gw = gateway_with_grpc(&redis, NO_FLAGS).await;
    let base = gw.url("");
    open_event(&base, "gala").await;
    let token = admission(&base, "gala", "sess-validate").await;
    let mut c = client(&gw).await;

    let v = c.validate_token(validate(&token, "")).await.unwrap();
    let v = v.into_inner();
    assert!(v.valid, "{v:?}");
    let user = v.user.unwrap();
    assert_eq!(
        user.user_id, "sess-validate",
        "no user id: the session is the subject"
    );
    assert_eq!(user.event_id, "gala");
    assert_eq!(user.claims["aud"], "gala");
    assert!(
        v.scopes.contains(&"event:gala".to_owned()),
        "{:?}",
        v.scopes
    );
    assert!(v.scopes.contains(&"reservations:write".to_owned()));
    let exp = v.expires_at.unwrap().seconds as u64;
    assert!(exp > now_s() && exp <= now_s() + 3600, "{exp}");
    assert!(v.error.is_none());

    // A scope the token grants, and one it does not: still the user and scopes, not valid.
    let v = c
        .validate_token(validate(&token, "event:gala"))
        .await
        .unwrap();
    assert!(v.into_inner().valid);
    let v = c
        .validate_token(validate(&token, "event:other"))
        .await
        .unwrap()
        .into_inner();
    assert!(!v.valid);
    assert_eq!(v.error.unwrap().code, ErrorCode::Forbidden as i32);
    assert_eq!(v.user.unwrap().user_id, "sess-validate");

    // Another key, an expired token, garbage: not valid, with the reason.
    let forged = mint(None, "gala", "mallory", now_s() + 300);
    let v = c.validate_token(validate(&forged, "")).await.unwrap();
    let v = v.into_inner();
    assert!(!v.valid && v.user.is_none() && v.scopes.is_empty());
    assert_eq!(v.error.unwrap().code, ErrorCode::Unauthenticated as i32);
    let expired = mint(Some(PEM), "gala", "u1", now_s() - 10);
    let v = c.validate_token(validate(&expired, "")).await.unwrap();
    let e = v.into_inner().error.unwrap();
    assert_eq!(e.code, ErrorCode::ReservationExpired as i32);
    assert_eq!(e.details[0].reason, "ADMISSION_EXPIRED");
    let v = c.validate_token(validate("not.a.jwt", "")).await.unwrap();
    assert!(!v.into_inner().valid);
    let s = c.validate_token(validate("", "")).await.unwrap_err();
    assert_eq!(s.code(), tonic::Code::InvalidArgument);
    gw.shutdown().await;
}

fn reservation(token: &str, event: &str, quantity: i32, key: &str) -> gw::CreateReservationRequest {
    gw::CreateReservationRequest {
        event_id: event.into(),
        quantity,
        reservation_token: token.into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_reservation_holds_seats_and_maps_errors_to_grpc_codes() {
    let redis = RedisServer::start().unwrap();
    let backends = Backends::start(None, &[("gala", 5)]).await;
    let gw = gateway_with_grpc(&redis, &backends.flags()).await;
    let base = gw.url("");
    open_event(&base, "gala").await;
    open_event(&base, "other").await;
    let token = admission(&base, "gala", "sess-buyer").await;
    let mut c = client(&gw).await;

    // The spec's flow: token checked, seats held for 60 s, a payment URL.
    let r = c
        .create_reservation(reservation(&token, "gala", 2, "k-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(r.reservation_id.starts_with("r_"), "{r:?}");
    assert_eq!(
        r.status,
        proto::reservation::v1::ReservationStatus::Pending as i32
    );
    assert_eq!(r.reserved_seats.len(), 2);
    assert_eq!(r.total_amount.as_ref().unwrap().amount_cents, 2 * PRICE);
    let hold = r.hold_expires_at.as_ref().unwrap().seconds as u64;
    assert!(hold > now_s() + 30 && hold <= now_s() + 61, "{hold}");
    assert_eq!(r.payment_url, "/api/v1/payments/intents");
    // The same key is the same reservation (and the HTTP API sees the same hold).
    let again = c
        .create_reservation(reservation(&token, "gala", 2, "k-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.reservation_id, r.reservation_id);
    let http = send(
        common::client()
            .get(gw.url(&format!("/api/v1/reservations/{}", r.reservation_id)))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(http.status, 200, "{}", http.body);
    assert_eq!(http.body["status"], "PENDING");

    // A second hold of the same admission: the backends allow one (--holds-per-admission).
    let s = c
        .create_reservation(reservation(&token, "gala", 1, "k-2"))
        .await
        .unwrap_err();
    assert_eq!(s.code(), tonic::Code::FailedPrecondition, "{s:?}");
    assert_eq!(reason(&s), "HOLD_LIMIT");
    // Four seats when three are left (another buyer): the backend's answer keeps its code.
    let other = admission(&base, "gala", "sess-other").await;
    let s = c
        .create_reservation(reservation(&other, "gala", 4, "k-3"))
        .await
        .unwrap_err();
    assert_eq!(s.code(), tonic::Code::FailedPrecondition, "{s:?}");
    assert_eq!(
        proto::error_of(&s).unwrap().code,
        ErrorCode::InventoryConflict as i32
    );
    assert_eq!(reason(&s), "INVENTORY_CONFLICT");
    // The same key with other parameters: ALREADY_EXISTS, as the backend says it.
    let s = c
        .create_reservation(reservation(&token, "gala", 1, "k-1"))
        .await
        .unwrap_err();
    assert_eq!(s.code(), tonic::Code::AlreadyExists, "{s:?}");
    assert_eq!(reason(&s), "IDEMPOTENCY_CONFLICT");

    // Refused by the gateway, before any backend call.
    let calls = backends.calls();
    let s = c
        .create_reservation(reservation("", "gala", 1, "k-3"))
        .await
        .unwrap_err();
    assert_eq!(s.code(), tonic::Code::Unauthenticated);
    let s = c
        .create_reservation(reservation(&token, "other", 1, "k-3"))
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), reason(&s).as_str()),
        (tonic::Code::PermissionDenied, "FORBIDDEN")
    );
    let expired = mint(Some(PEM), "gala", "sess-buyer", now_s() - 1);
    let s = c
        .create_reservation(reservation(&expired, "gala", 1, "k-3"))
        .await
        .unwrap_err();
    assert_eq!(reason(&s), "ADMISSION_EXPIRED");
    let s = c
        .create_reservation(reservation(&token, "gala", 1, ""))
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), reason(&s).as_str()),
        (tonic::Code::InvalidArgument, "IDEMPOTENCY_REQUIRED")
    );
    let mut other_user = reservation(&token, "gala", 1, "k-3");
    other_user.user_id = "someone-else".into();
    let s = c.create_reservation(other_user).await.unwrap_err();
    assert_eq!(s.code(), tonic::Code::PermissionDenied);
    assert_eq!(backends.calls(), calls, "no refused call reached a backend");

    // The token as bearer metadata works as well as the field (the other buyer's first hold).
    let mut req = tonic::Request::new(reservation("", "gala", 1, "k-4"));
    req.metadata_mut()
        .insert("authorization", format!("Bearer {other}").parse().unwrap());
    let r = c.create_reservation(req).await.unwrap().into_inner();
    assert_eq!(r.reserved_seats.len(), 1);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_reservation_without_backends_is_unavailable_then_circuit_open() {
    let redis = RedisServer::start().unwrap();
    // Nothing listens on port 1: every call fails UNAVAILABLE; two failures open the circuit.
    let flags: Vec<String> = [
        "--reservation-url",
        "http://127.0.0.1:1",
        "--breaker-failures",
        "2",
        "--breaker-open-ms",
        "60000",
    ]
    .map(String::from)
    .to_vec();
    let gw = gateway_with_grpc(&redis, &flags).await;
    let base = gw.url("");
    open_event(&base, "gala").await;
    let token = admission(&base, "gala", "sess-x").await;
    let mut c = client(&gw).await;
    for key in ["a", "b"] {
        let s = c
            .create_reservation(reservation(&token, "gala", 1, key))
            .await
            .unwrap_err();
        assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}");
        assert_eq!(reason(&s), "UPSTREAM_UNAVAILABLE");
    }
    let s = c
        .create_reservation(reservation(&token, "gala", 1, "c"))
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), reason(&s).as_str()),
        (tonic::Code::Unavailable, "CIRCUIT_OPEN")
    );
    gw.shutdown().await;
}
