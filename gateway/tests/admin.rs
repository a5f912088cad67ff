//! The gateway's AdminService over real gRPC and HTTP: gateways on port 0 over a real
//! redis-server (two replicas where an action must reach every one), the real `backends`
//! services on loopback. Each emergency action has an effect, a way back, and is refused
//! without confirmation (MAINTENANCE_MODE: tests/maintenance.rs); the health report follows
//! dependencies that die.

mod common;

use common::admin_http::{admin_get, event_action};
use common::backends::*;
use common::*;
use proto::common::v1::{self as pc, EmergencyActionType as T};
use proto::gateway::v1 as gw;
use proto::gateway::v1::gateway_service_client::GatewayServiceClient;
use proto::AdminClient;
use serde_json::{json, Value};
use testkit::RedisServer;
use tonic::{Code, Status};

type ActionResponse = pc::EmergencyActionResponse;

/// An AdminService call with the admin token as metadata.
fn authed<T>(msg: T) -> tonic::Request<T> {
    bearer(msg, ADMIN)
}

fn action(a: T, event: &str, confirm: bool) -> pc::EmergencyActionRequest {
    pc::EmergencyActionRequest {
        action: a as i32,
        event_id: event.into(),
        reason: "test".into(),
        operator_id: "ops@test".into(),
        confirm,
    }
}

/// EmergencyAction `a` over gRPC with the admin token, which must be done.
async fn executed(admin: &mut AdminClient, a: T, event: &str, confirm: bool) -> ActionResponse {
    let req = authed(action(a, event, confirm));
    admin.emergency_action(req).await.unwrap().into_inner()
}

/// EmergencyAction `a` over gRPC with the admin token, which must be refused: the status.
async fn refused(admin: &mut AdminClient, a: T, event: &str, confirm: bool) -> Status {
    let req = authed(action(a, event, confirm));
    admin.emergency_action(req).await.unwrap_err()
}

/// GetSystemHealth over gRPC with the admin token (the dependencies when `include_dependencies`).
async fn grpc_health(
    admin: &mut AdminClient, include_dependencies: bool,
) -> pc::SystemHealthResponse {
    let req = authed(pc::SystemHealthRequest {
        include_dependencies,
    });
    admin.get_system_health(req).await.unwrap().into_inner()
}

/// `GET /admin/v1/health`: the report.
async fn health(base: &str) -> Value {
    let r = admin_get(base, "/admin/v1/health").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn dependency<'a>(h: &'a Value, name: &str) -> &'a Value {
    h["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no dependency {name} in {h}"))
}

/// "gala" with `rate` admissions per second and room for `max_active`.
async fn gala(base: &str, rate: u32, max_active: u32) {
    let config = json!({"admit_per_second": rate, "max_active": max_active});
    let r = put_event(base, "gala", config).await;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);
}

/// The availability of a seat of "gala" with the admission `token`.
async fn availability(base: &str, token: &str) -> Resp {
    let url = format!("{base}/api/v1/events/gala/availability?quantity=1");
    send(client().get(url).bearer_auth(token)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_service_needs_the_admin_token() {
    let (_redis, gw, base) = grpc_stack(NO_FLAGS).await;
    let mut admin = AdminClient::new(channel(&gw).await);
    let anonymous = pc::SystemHealthRequest::default();
    let s = admin.get_system_health(anonymous).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    let wrong = bearer(pc::SystemHealthRequest::default(), "not-the-token");
    let s = admin.get_system_health(wrong).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    let maintenance = action(T::MaintenanceMode, "", true);
    let s = admin.emergency_action(maintenance).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    // Nothing was done: the queue API still answers.
    let joined = join(&base, "nothing", "s").await;
    assert_ne!(joined.code(), "MAINTENANCE");
    let ok = grpc_health(&mut admin, false).await;
    assert_eq!(ok.overall_status, pc::SystemHealthStatus::Healthy as i32);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_names_each_dependency_and_follows_the_ones_that_die() {
    let mut redis = RedisServer::start().unwrap();
    let backends = Backends::start(None, &[("gala", 10)]).await;
    let mut flags = backends.flags();
    let more = [
        "--webhook-secret",
        WEBHOOK_SECRET,
        "--redis-timeout-ms",
        "300",
    ];
    flags.extend(more.map(String::from));
    let gw = gateway_with_grpc(&redis, &flags).await;
    let base = gw.url("");
    let mut admin = AdminClient::new(channel(&gw).await);

    let h = health(&base).await;
    assert_eq!(h["overall_status"], "HEALTHY", "{h}");
    let primary = format!("redis:127.0.0.1:{}", redis.port());
    assert_eq!(dependency(&h, &primary)["status"], "HEALTHY");
    assert_eq!(dependency(&h, &primary)["kind"], "redis_primary");
    for up in ["reservation", "inventory", "payment", "worker"] {
        let d = dependency(&h, &format!("upstream:{up}"));
        let (state, breaker) = (d["status"].as_str(), d["breaker"].as_str());
        assert_eq!((state, breaker), (Some("HEALTHY"), Some("CLOSED")), "{d}");
    }
    let hooks = dependency(&h, "webhooks");
    let backlog = (hooks["backlog"].as_u64(), hooks["dead_letters"].as_u64());
    assert_eq!(backlog, (Some(0), Some(0)));
    assert_eq!(h["modes"]["maintenance"], false);

    // The same report over gRPC; the dependencies only when asked for.
    let g = grpc_health(&mut admin, true).await;
    assert_eq!(g.overall_status, pc::SystemHealthStatus::Healthy as i32);
    let timed = |d: &pc::DependencyStatus| d.name == primary && d.latency_ms >= 0;
    assert!(g.dependencies.iter().any(timed));
    let short = grpc_health(&mut admin, false).await;
    assert!(short.dependencies.is_empty() && short.services.len() == 2);

    // The backends stop: their upstreams are unhealthy, the gateway degraded (the queue works).
    drop(backends);
    until("upstreams unhealthy", async || {
        let h = health(&base).await;
        h["overall_status"] == "DEGRADED"
            && dependency(&h, "upstream:inventory")["status"] == "UNHEALTHY"
    })
    .await;

    // Redis dies: the queue cannot serve, the gateway is unhealthy.
    redis.stop();
    until("redis unhealthy", async || {
        let h = health(&base).await;
        h["overall_status"] == "UNHEALTHY"
            && dependency(&h, &primary)["status"] == "UNHEALTHY"
            && dependency(&h, "webhooks")["status"] == "UNHEALTHY"
    })
    .await;
    let g = grpc_health(&mut admin, false).await;
    assert_eq!(g.overall_status, pc::SystemHealthStatus::Unhealthy as i32);
    redis.restart().unwrap();
    until("redis back", async || {
        dependency(&health(&base).await, &primary)["status"] == "HEALTHY"
    })
    .await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn circuit_breaker_holds_every_upstream_open_on_every_replica_until_released() {
    let redis = RedisServer::start().unwrap();
    let backends = Backends::start(None, &[("gala", 10)]).await;
    let a = gateway_with_grpc(&redis, &backends.flags()).await;
    let b = gateway_with_grpc(&redis, &backends.flags()).await;
    let (base_a, base_b) = (a.url(""), b.url(""));
    gala(&base_a, 10000, 1000).await;
    let token = admission(&base_a, "gala", "buyer").await;
    let waiter = join(&base_a, "gala", "waiter").await;
    let waiting = waiter.body["waiting_token"].as_str().unwrap();
    assert_eq!(availability(&base_b, &token).await.status, 200);

    // Refused without confirmation: nothing changes.
    for body in [
        json!({"action": "CIRCUIT_BREAKER"}),
        json!({"action": "CIRCUIT_BREAKER", "confirm": false}),
    ] {
        let r = system_action(&base_a, body).await;
        let refusal = (r.status, r.code());
        assert_eq!(refusal, (400, "CONFIRMATION_REQUIRED"), "{}", r.body);
    }
    let mut admin_b = AdminClient::new(channel(&b).await);
    let s = refused(&mut admin_b, T::CircuitBreaker, "", false).await;
    let refusal = (s.code(), reason(&s));
    assert_eq!(
        refusal,
        (Code::InvalidArgument, "CONFIRMATION_REQUIRED".into())
    );
    assert_eq!(availability(&base_a, &token).await.status, 200);

    let on = json!({"action": "CIRCUIT_BREAKER", "confirm": true});
    let r = system_action(&base_a, on).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["modes"]["circuit_breaker"], true);
    let r = availability(&base_a, &token).await;
    assert_eq!((r.status, r.code()), (503, "CIRCUIT_OPEN"));
    assert!(r.headers.contains_key("retry-after"));
    // The other replica follows the shared mode, over HTTP and gRPC alike.
    until("replica B holds its circuits open", async || {
        availability(&base_b, &token).await.code() == "CIRCUIT_OPEN"
    })
    .await;
    let calls = backends.calls();
    let r = availability(&base_a, &token).await;
    assert_eq!((r.status, r.code()), (503, "CIRCUIT_OPEN"));
    let mut bff = GatewayServiceClient::new(channel(&b).await);
    let hold = gw::CreateReservationRequest {
        event_id: "gala".into(),
        quantity: 1,
        reservation_token: token.clone(),
        idempotency_key: "k".into(),
        ..Default::default()
    };
    let s = bff.create_reservation(hold).await.unwrap_err();
    let refusal = (s.code(), reason(&s));
    assert_eq!(refusal, (Code::Unavailable, "CIRCUIT_OPEN".into()));
    assert_eq!(backends.calls(), calls, "no call reached the backends");
    // Places and admissions are untouched.
    assert_eq!(status(&base_b, waiting).await.status, 200);
    let h = health(&base_b).await;
    let inventory = dependency(&h, "upstream:inventory");
    assert_eq!(inventory["breaker"], "FORCED_OPEN");
    assert_eq!(h["overall_status"], "DEGRADED");

    // The way back (no confirmation needed), over gRPC on B.
    let r = executed(&mut admin_b, T::EndCircuitBreaker, "", false).await;
    assert!(r.executed && r.action_id.starts_with("act_"), "{r:?}");
    assert_eq!(availability(&base_b, &token).await.status, 200);
    until("replica A releases its circuits", async || {
        availability(&base_a, &token).await.status == 200
    })
    .await;
    assert!(backends.calls() > calls);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_reservations_frees_the_event_holds_at_the_backends() {
    let backends = Backends::start(None, &[("gala", 10)]).await;
    let (_redis, gw, base) = grpc_stack(&backends.flags()).await;
    gala(&base, 10000, 1000).await;
    let token = admission(&base, "gala", "buyer").await;
    let hold = client()
        .post(format!("{base}/api/v1/reservations"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "k1");
    let held = send(hold.json(&json!({"event_id": "gala", "quantity": 3}))).await;
    assert_eq!(held.status, 201, "{}", held.body);
    let id = held.body["reservation_id"].as_str().unwrap().to_owned();
    let reservation = async || {
        let url = format!("{base}/api/v1/reservations/{id}");
        send(client().get(url).bearer_auth(&token)).await.body["status"].clone()
    };
    let remaining = async || availability(&base, &token).await.body["remaining_in_section"].clone();
    assert_eq!(remaining().await, 7);

    // Refused without confirmation, over both edges: the hold stands.
    let r = event_action(&base, "gala", json!({"action": "CANCEL_RESERVATIONS"})).await;
    assert_eq!((r.status, r.code()), (400, "CONFIRMATION_REQUIRED"));
    let mut admin = AdminClient::new(channel(&gw).await);
    let cancel = T::CancelReservations;
    let s = refused(&mut admin, cancel, "gala", false).await;
    assert_eq!(reason(&s), "CONFIRMATION_REQUIRED");
    assert_eq!(reservation().await, "PENDING");

    let confirmed = json!({"action": "CANCEL_RESERVATIONS", "confirm": true, "reason": "test"});
    let r = event_action(&base, "gala", confirmed).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["action"]["action"], "CANCEL_RESERVATIONS");
    let message = r.body["action"]["message"].as_str().unwrap();
    assert!(message.contains('1'), "{}", r.body);
    assert_eq!(reservation().await, "CANCELLED");
    assert_eq!(remaining().await, 10, "the seats are free again");
    // Over gRPC, for an event the queue does not know: NOT_FOUND, nothing forwarded.
    let s = refused(&mut admin, cancel, "nope", true).await;
    assert_eq!(s.code(), Code::NotFound);
    let r = executed(&mut admin, cancel, "gala", true).await;
    assert!(r.executed, "{r:?}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_admissions_over_grpc_needs_confirmation_and_resumes() {
    let (_redis, gw, base) = grpc_stack(NO_FLAGS).await;
    gala(&base, 10, 10).await;
    let mut admin = AdminClient::new(channel(&gw).await);
    let stopped = async || get_event(&base, "gala").await["admissions_stopped"].clone();

    let s = refused(&mut admin, T::StopAdmissions, "gala", false).await;
    let refusal = (s.code(), reason(&s));
    assert_eq!(
        refusal,
        (Code::InvalidArgument, "CONFIRMATION_REQUIRED".into())
    );
    assert_eq!(stopped().await, false);
    let s = refused(&mut admin, T::StopAdmissions, "", true).await;
    assert_eq!(s.code(), Code::InvalidArgument, "event_id is required");
    let s = refused(&mut admin, T::StopAdmissions, "nope", true).await;
    assert_eq!(s.code(), Code::NotFound);

    executed(&mut admin, T::StopAdmissions, "gala", true).await;
    assert_eq!(stopped().await, true);
    executed(&mut admin, T::ResumeAdmissions, "gala", false).await;
    assert_eq!(stopped().await, false);
    // Over HTTP too: refused without confirmation.
    let r = event_action(&base, "gala", json!({"action": "STOP_ADMISSIONS"})).await;
    assert_eq!((r.status, r.code()), (400, "CONFIRMATION_REQUIRED"));
    assert_eq!(stopped().await, false);
    gw.shutdown().await;
}
