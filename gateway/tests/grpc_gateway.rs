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
use tonic::{Code, IntoRequest, Response, Status};

type Client = GatewayServiceClient<Channel>;
type Req = gw::CreateReservationRequest;

/// A gateway with its gRPC services (and `flags`) over its own redis-server, with "gala" open
/// to everyone and a real admission of `session` to it. (Taken apart, `_redis` must be bound:
/// dropping it stops the redis-server.)
struct Gala {
    gw: TestGateway,
    base: String,
    c: Client,
    token: String,
    _redis: RedisServer,
}

impl Gala {
    async fn start(flags: &[impl AsRef<str>], session: &str) -> Self {
        let (_redis, gw, base) = grpc_stack(flags).await;
        let token = open_and_admit(&base, "gala", session).await;
        let c = GatewayServiceClient::new(channel(&gw).await);
        Self {
            gw,
            base,
            c,
            token,
            _redis,
        }
    }
}

/// ValidateToken of `token`, for `scope` ("": none required).
async fn validate(
    c: &mut Client, token: &str, scope: &str,
) -> Result<gw::ValidateTokenResponse, Status> {
    let req = gw::ValidateTokenRequest {
        token: token.into(),
        required_scope: scope.into(),
    };
    c.validate_token(req).await.map(Response::into_inner)
}

fn reservation(token: &str, event: &str, quantity: i32, key: &str) -> Req {
    Req {
        event_id: event.into(),
        quantity,
        reservation_token: token.into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

/// CreateReservation, which must hold seats.
async fn held(c: &mut Client, req: impl IntoRequest<Req>) -> gw::CreateReservationResponse {
    c.create_reservation(req).await.unwrap().into_inner()
}

/// CreateReservation, which must be refused: the status.
async fn refused(c: &mut Client, req: impl IntoRequest<Req>) -> Status {
    c.create_reservation(req).await.unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_token_answers_the_user_scopes_and_expiry() {
    let Gala {
        gw,
        mut c,
        token,
        _redis,
        ..
    } = Gala::start(NO_FLAGS, "sess-validate").await;

    let v = validate(&mut c, &token, "").await.unwrap();
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
    assert!(validate(&mut c, &token, "event:gala").await.unwrap().valid);
    let v = validate(&mut c, &token, "event:other").await.unwrap();
    assert!(!v.valid);
    assert_eq!(v.error.unwrap().code, ErrorCode::Forbidden as i32);
    assert_eq!(v.user.unwrap().user_id, "sess-validate");

    // Another key, an expired token, garbage: not valid, with the reason.
    let forged = mint(None, "gala", "mallory", now_s() + 300);
    let v = validate(&mut c, &forged, "").await.unwrap();
    assert!(!v.valid && v.user.is_none() && v.scopes.is_empty());
    assert_eq!(v.error.unwrap().code, ErrorCode::Unauthenticated as i32);
    let expired = mint(Some(PEM), "gala", "u1", now_s() - 10);
    let e = validate(&mut c, &expired, "").await.unwrap().error.unwrap();
    assert_eq!(e.code, ErrorCode::ReservationExpired as i32);
    assert_eq!(e.details[0].reason, "ADMISSION_EXPIRED");
    assert!(!validate(&mut c, "not.a.jwt", "").await.unwrap().valid);
    let s = validate(&mut c, "", "").await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_reservation_holds_seats_and_maps_errors_to_grpc_codes() {
    let backends = Backends::start(None, &[("gala", 5)]).await;
    let Gala {
        gw,
        base,
        mut c,
        token,
        _redis,
    } = Gala::start(&backends.flags(), "sess-buyer").await;
    open_event(&base, "other").await;

    // The spec's flow: token checked, seats held for 60 s, a payment URL.
    let r = held(&mut c, reservation(&token, "gala", 2, "k-1")).await;
    assert!(r.reservation_id.starts_with("r_"), "{r:?}");
    let pending = proto::reservation::v1::ReservationStatus::Pending;
    assert_eq!(r.status, pending as i32);
    assert_eq!(r.reserved_seats.len(), 2);
    assert_eq!(r.total_amount.as_ref().unwrap().amount_cents, 2 * PRICE);
    let until = r.hold_expires_at.as_ref().unwrap().seconds as u64;
    assert!(until > now_s() + 30 && until <= now_s() + 61, "{until}");
    assert_eq!(r.payment_url, "/api/v1/payments/intents");
    // The same key is the same reservation (and the HTTP API sees the same hold).
    let again = held(&mut c, reservation(&token, "gala", 2, "k-1")).await;
    assert_eq!(again.reservation_id, r.reservation_id);
    let path = format!("/api/v1/reservations/{}", r.reservation_id);
    let http = send(client().get(gw.url(&path)).bearer_auth(&token)).await;
    assert_eq!(http.status, 200, "{}", http.body);
    assert_eq!(http.body["status"], "PENDING");

    // A second hold of the same admission: the backends allow one (--holds-per-admission).
    let s = refused(&mut c, reservation(&token, "gala", 1, "k-2")).await;
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    assert_eq!(reason(&s), "HOLD_LIMIT");
    // Four seats when three are left (another buyer): the backend's answer keeps its code.
    let other = admission(&base, "gala", "sess-other").await;
    let s = refused(&mut c, reservation(&other, "gala", 4, "k-3")).await;
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    let conflict = ErrorCode::InventoryConflict as i32;
    assert_eq!(proto::error_of(&s).unwrap().code, conflict);
    assert_eq!(reason(&s), "INVENTORY_CONFLICT");
    // The same key with other parameters: ALREADY_EXISTS, as the backend says it.
    let s = refused(&mut c, reservation(&token, "gala", 1, "k-1")).await;
    assert_eq!(s.code(), Code::AlreadyExists, "{s:?}");
    assert_eq!(reason(&s), "IDEMPOTENCY_CONFLICT");

    // Refused by the gateway, before any backend call.
    let calls = backends.calls();
    let expired = mint(Some(PEM), "gala", "sess-buyer", now_s() - 1);
    let mut other_user = reservation(&token, "gala", 1, "k-3");
    other_user.user_id = "someone-else".into();
    let token_of_other = reservation(&token, "other", 1, "k-3");
    let expired = reservation(&expired, "gala", 1, "k-3");
    let no_key = reservation(&token, "gala", 1, "");
    for (req, code, why) in [
        (reservation("", "gala", 1, "k-3"), Code::Unauthenticated, ""),
        (token_of_other, Code::PermissionDenied, "FORBIDDEN"),
        (expired, Code::PermissionDenied, "ADMISSION_EXPIRED"),
        (no_key, Code::InvalidArgument, "IDEMPOTENCY_REQUIRED"),
        (other_user, Code::PermissionDenied, ""),
    ] {
        let s = refused(&mut c, req.clone()).await;
        assert_eq!(s.code(), code, "{req:?}: {s:?}");
        // ("": the reason is not part of what is checked.)
        assert!(why.is_empty() || reason(&s) == why, "{req:?}: {s:?}");
    }
    assert_eq!(backends.calls(), calls, "no refused call reached a backend");

    // The token as bearer metadata works as well as the field (the other buyer's first hold).
    let req = bearer(reservation("", "gala", 1, "k-4"), &other);
    let r = held(&mut c, req).await;
    assert_eq!(r.reserved_seats.len(), 1);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_reservation_without_backends_is_unavailable_then_circuit_open() {
    // Nothing listens on port 1: every call fails UNAVAILABLE; two failures open the circuit.
    let flags = [
        "--reservation-url",
        "http://127.0.0.1:1",
        "--breaker-failures",
        "2",
        "--breaker-open-ms",
        "60000",
    ];
    let Gala {
        gw,
        mut c,
        token,
        _redis,
        ..
    } = Gala::start(&flags, "sess-x").await;
    for key in ["a", "b"] {
        let s = refused(&mut c, reservation(&token, "gala", 1, key)).await;
        assert_eq!(s.code(), Code::Unavailable, "{s:?}");
        assert_eq!(reason(&s), "UPSTREAM_UNAVAILABLE");
    }
    let s = refused(&mut c, reservation(&token, "gala", 1, "c")).await;
    let refusal = (s.code(), reason(&s));
    assert_eq!(refusal, (Code::Unavailable, "CIRCUIT_OPEN".into()));
    gw.shutdown().await;
}
