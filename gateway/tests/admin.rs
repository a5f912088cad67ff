//! The gateway's AdminService over real gRPC and HTTP: gateways on port 0 over a real
//! redis-server (two replicas where an action must reach every one), the real `backends`
//! services on loopback. Each emergency action has an effect, a way back, and is refused
//! without confirmation (MAINTENANCE_MODE: tests/maintenance.rs); the health report follows
//! dependencies that die.

mod common;

use common::backends::*;
use common::*;
use proto::common::v1::{self as pc, EmergencyActionType as T};
use proto::gateway::v1 as gw;
use proto::AdminClient;
use serde_json::{json, Value};
use testkit::RedisServer;

/// An AdminService call with the admin token as metadata.
fn authed<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
    r
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

/// `POST /admin/v1/events/{event}/actions`.
async fn event_action(base: &str, event: &str, body: Value) -> Resp {
    send(
        client()
            .post(format!("{base}/admin/v1/events/{event}/actions"))
            .bearer_auth(ADMIN)
            .json(&body),
    )
    .await
}

async fn health(base: &str) -> Value {
    let r = send(
        client()
            .get(format!("{base}/admin/v1/health"))
            .bearer_auth(ADMIN),
    )
    .await;
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

async fn open_event(base: &str, id: &str, config: Value) {
    let r = put_event(base, id, config).await;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);
}

fn availability(base: &str, event: &str, token: &str) -> reqwest::RequestBuilder {
    client()
        .get(format!(
            "{base}/api/v1/events/{event}/availability?quantity=1"
        ))
        .bearer_auth(token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_service_needs_the_admin_token() {
    let redis = RedisServer::start().unwrap();
    let gw = gateway_with_grpc(&redis, NO_FLAGS).await;
    let mut admin = AdminClient::new(channel(&gw).await);
    let s = admin
        .get_system_health(pc::SystemHealthRequest::default())
        .await
        .unwrap_err();
    assert_eq!(s.code(), tonic::Code::Unauthenticated);
    let mut wrong = tonic::Request::new(pc::SystemHealthRequest::default());
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer not-the-token".parse().unwrap());
    let s = admin.get_system_health(wrong).await.unwrap_err();
    assert_eq!(s.code(), tonic::Code::Unauthenticated);
    let s = admin
        .emergency_action(action(T::MaintenanceMode, "", true))
        .await
        .unwrap_err();
    assert_eq!(s.code(), tonic::Code::Unauthenticated);
    // Nothing was done: the queue API still answers.
    assert_ne!(
        join(&gw.url(""), "nothing", "s").await.code(),
        "MAINTENANCE"
    );
    let ok = admin
        .get_system_health(authed(pc::SystemHealthRequest::default()))
        .await
        .unwrap();
    assert_eq!(
        ok.into_inner().overall_status,
        pc::SystemHealthStatus::Healthy as i32
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_names_each_dependency_and_follows_the_ones_that_die() {
    let mut redis = RedisServer::start().unwrap();
    let backends = Backends::start(None, &[("gala", 10)]).await;
    let mut flags = backends.flags();
    flags.extend(
        [
            "--webhook-secret",
            WEBHOOK_SECRET,
            "--redis-timeout-ms",
            "300",
        ]
        .map(String::from),
    );
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
        assert_eq!(
            (d["status"].as_str(), d["breaker"].as_str()),
            (Some("HEALTHY"), Some("CLOSED")),
            "{d}"
        );
    }
    let hooks = dependency(&h, "webhooks");
    assert_eq!(
        (hooks["backlog"].as_u64(), hooks["dead_letters"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(h["modes"]["maintenance"], false);

    // The same report over gRPC; the dependencies only when asked for.
    let g = admin
        .get_system_health(authed(pc::SystemHealthRequest {
            include_dependencies: true,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.overall_status, pc::SystemHealthStatus::Healthy as i32);
    assert!(g
        .dependencies
        .iter()
        .any(|d| d.name == primary && d.latency_ms >= 0));
    let short = admin
        .get_system_health(authed(pc::SystemHealthRequest::default()))
        .await
        .unwrap()
        .into_inner();
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
    let g = admin
        .get_system_health(authed(pc::SystemHealthRequest::default()))
        .await
        .unwrap()
        .into_inner();
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
    open_event(
        &base_a,
        "gala",
        json!({"admit_per_second": 10000, "max_active": 1000}),
    )
    .await;
    let token = admission(&base_a, "gala", "buyer").await;
    let waiting = join(&base_a, "gala", "waiter").await.body["waiting_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        send(availability(&base_b, "gala", &token)).await.status,
        200
    );

    // Refused without confirmation: nothing changes.
    for body in [
        json!({"action": "CIRCUIT_BREAKER"}),
        json!({"action": "CIRCUIT_BREAKER", "confirm": false}),
    ] {
        let r = system_action(&base_a, body).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "CONFIRMATION_REQUIRED"),
            "{}",
            r.body
        );
    }
    let mut admin_b = AdminClient::new(channel(&b).await);
    let s = admin_b
        .emergency_action(authed(action(T::CircuitBreaker, "", false)))
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), reason(&s).as_str()),
        (tonic::Code::InvalidArgument, "CONFIRMATION_REQUIRED")
    );
    assert_eq!(
        send(availability(&base_a, "gala", &token)).await.status,
        200
    );

    let r = system_action(
        &base_a,
        json!({"action": "CIRCUIT_BREAKER", "confirm": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["modes"]["circuit_breaker"], true);
    let r = send(availability(&base_a, "gala", &token)).await;
    assert_eq!((r.status, r.code()), (503, "CIRCUIT_OPEN"));
    assert!(r.headers.contains_key("retry-after"));
    // The other replica follows the shared mode, over HTTP and gRPC alike.
    until("replica B holds its circuits open", async || {
        send(availability(&base_b, "gala", &token)).await.code() == "CIRCUIT_OPEN"
    })
    .await;
    let calls = backends.calls();
    let r = send(availability(&base_a, "gala", &token)).await;
    assert_eq!((r.status, r.code()), (503, "CIRCUIT_OPEN"));
    let mut bff =
        proto::gateway::v1::gateway_service_client::GatewayServiceClient::new(channel(&b).await);
    let s = bff
        .create_reservation(gw::CreateReservationRequest {
            event_id: "gala".into(),
            quantity: 1,
            reservation_token: token.clone(),
            idempotency_key: "k".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), reason(&s).as_str()),
        (tonic::Code::Unavailable, "CIRCUIT_OPEN")
    );
    assert_eq!(backends.calls(), calls, "no call reached the backends");
    // Places and admissions are untouched.
    assert_eq!(status(&base_b, &waiting).await.status, 200);
    let h = health(&base_b).await;
    assert_eq!(
        dependency(&h, "upstream:inventory")["breaker"],
        "FORCED_OPEN"
    );
    assert_eq!(h["overall_status"], "DEGRADED");

    // The way back (no confirmation needed), over gRPC on B.
    let r = admin_b
        .emergency_action(authed(action(T::EndCircuitBreaker, "", false)))
        .await
        .unwrap()
        .into_inner();
    assert!(r.executed && r.action_id.starts_with("act_"), "{r:?}");
    assert_eq!(
        send(availability(&base_b, "gala", &token)).await.status,
        200
    );
    until("replica A releases its circuits", async || {
        send(availability(&base_a, "gala", &token)).await.status == 200
    })
    .await;
    assert!(backends.calls() > calls);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_reservations_frees_the_event_holds_at_the_backends() {
    let redis = RedisServer::start().unwrap();
    let backends = Backends::start(None, &[("gala", 10)]).await;
    let gw = gateway_with_grpc(&redis, &backends.flags()).await;
    let base = gw.url("");
    open_event(
        &base,
        "gala",
        json!({"admit_per_second": 10000, "max_active": 1000}),
    )
    .await;
    let token = admission(&base, "gala", "buyer").await;
    let held = send(
        client()
            .post(format!("{base}/api/v1/reservations"))
            .bearer_auth(&token)
            .header("Idempotency-Key", "k1")
            .json(&json!({"event_id": "gala", "quantity": 3})),
    )
    .await;
    assert_eq!(held.status, 201, "{}", held.body);
    let id = held.body["reservation_id"].as_str().unwrap().to_owned();
    let reservation = async || {
        send(
            client()
                .get(format!("{base}/api/v1/reservations/{id}"))
                .bearer_auth(&token),
        )
        .await
        .body["status"]
            .clone()
    };
    let remaining = async || {
        send(availability(&base, "gala", &token)).await.body["remaining_in_section"].clone()
    };
    assert_eq!(remaining().await, 7);

    // Refused without confirmation, over both edges: the hold stands.
    let r = event_action(&base, "gala", json!({"action": "CANCEL_RESERVATIONS"})).await;
    assert_eq!((r.status, r.code()), (400, "CONFIRMATION_REQUIRED"));
    let mut admin = AdminClient::new(channel(&gw).await);
    let s = admin
        .emergency_action(authed(action(T::CancelReservations, "gala", false)))
        .await
        .unwrap_err();
    assert_eq!(reason(&s), "CONFIRMATION_REQUIRED");
    assert_eq!(reservation().await, "PENDING");

    let r = event_action(
        &base,
        "gala",
        json!({"action": "CANCEL_RESERVATIONS", "confirm": true, "reason": "test"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["action"]["action"], "CANCEL_RESERVATIONS");
    assert!(
        r.body["action"]["message"].as_str().unwrap().contains('1'),
        "{}",
        r.body
    );
    assert_eq!(reservation().await, "CANCELLED");
    assert_eq!(remaining().await, 10, "the seats are free again");
    // Over gRPC, for an event the queue does not know: NOT_FOUND, nothing forwarded.
    let s = admin
        .emergency_action(authed(action(T::CancelReservations, "nope", true)))
        .await
        .unwrap_err();
    assert_eq!(s.code(), tonic::Code::NotFound);
    let r = admin
        .emergency_action(authed(action(T::CancelReservations, "gala", true)))
        .await
        .unwrap()
        .into_inner();
    assert!(r.executed, "{r:?}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_admissions_over_grpc_needs_confirmation_and_resumes() {
    let redis = RedisServer::start().unwrap();
    let gw = gateway_with_grpc(&redis, NO_FLAGS).await;
    let base = gw.url("");
    open_event(
        &base,
        "gala",
        json!({"admit_per_second": 10, "max_active": 10}),
    )
    .await;
    let mut admin = AdminClient::new(channel(&gw).await);
    let stopped = async || get_event(&base, "gala").await["admissions_stopped"].clone();

    let s = admin
        .emergency_action(authed(action(T::StopAdmissions, "gala", false)))
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), reason(&s).as_str()),
        (tonic::Code::InvalidArgument, "CONFIRMATION_REQUIRED")
    );
    assert_eq!(stopped().await, false);
    let s = admin
        .emergency_action(authed(action(T::StopAdmissions, "", true)))
        .await
        .unwrap_err();
    assert_eq!(
        s.code(),
        tonic::Code::InvalidArgument,
        "event_id is required"
    );
    let s = admin
        .emergency_action(authed(action(T::StopAdmissions, "nope", true)))
        .await
        .unwrap_err();
    assert_eq!(s.code(), tonic::Code::NotFound);

    admin
        .emergency_action(authed(action(T::StopAdmissions, "gala", true)))
        .await
        .unwrap();
    assert_eq!(stopped().await, true);
    admin
        .emergency_action(authed(action(T::ResumeAdmissions, "gala", false)))
        .await
        .unwrap();
    assert_eq!(stopped().await, false);
    // Over HTTP too: refused without confirmation.
    let r = event_action(&base, "gala", json!({"action": "STOP_ADMISSIONS"})).await;
    assert_eq!((r.status, r.code()), (400, "CONFIRMATION_REQUIRED"));
    assert_eq!(stopped().await, false);
    gw.shutdown().await;
}
