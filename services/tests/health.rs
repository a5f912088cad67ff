//! Health and operations over real gRPC: gRPC health and the admin health that follow the
//! store, a Redis outage answered UNAVAILABLE and recovered from, and the emergency cancel.

mod common;

use anyhow::{ensure, Context, Result};
use common::{
    assert_refusal, free_seats, hold, hold_refused, lookup, pay_and_confirm, refusal, reserve,
    seeded, status_of, Harness, Kind, Options,
};
use proto::common::v1::{
    EmergencyActionRequest, EmergencyActionType, ErrorCode, SystemHealthRequest,
    SystemHealthResponse, SystemHealthStatus,
};
use proto::reservation::v1::ReservationStatus;
use std::time::Duration;
use tonic::Code;

/// The backends' AdminService health report.
async fn system_health(h: &Harness) -> Result<SystemHealthResponse> {
    Ok(h.admin()
        .get_system_health(SystemHealthRequest::default())
        .await?
        .into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_follows_the_store() -> Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::HealthCheckRequest;
    let mut h = Harness::start(Kind::Redis, Options::default()).await?;
    let mut health = h.health();
    let status = async |health: &mut tonic_health::pb::health_client::HealthClient<_>, s: &str| {
        health
            .check(HealthCheckRequest { service: s.into() })
            .await
            .map(|r| r.into_inner().status)
            .ok()
    };
    // The first status is set right after the server starts (a store PING).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for s in [
        "",
        "reservation.v1.ReservationService",
        "payment.v1.PaymentService",
    ] {
        while status(&mut health, s).await != Some(ServingStatus::Serving as i32) {
            ensure!(std::time::Instant::now() < deadline, "{s} never SERVING");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    h.redis_server().context("redis")?.stop();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while status(&mut health, "reservation.v1.Inventory").await
        != Some(ServingStatus::NotServing as i32)
    {
        ensure!(
            std::time::Instant::now() < deadline,
            "still SERVING with Redis down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_is_unavailable_and_recovers() -> Result<()> {
    let mut h = Harness::start(
        Kind::Redis,
        Options {
            redis_timeout: Duration::from_millis(500),
            ..Default::default()
        },
    )
    .await?;
    let r = hold(&h, reserve("show", 1, "kim", "k1")).await?;
    h.redis_server().context("redis")?.stop();
    let t0 = std::time::Instant::now();
    let e = hold_refused(&h, reserve("show", 1, "kim", "k2")).await?;
    assert_refusal(&e, Code::Unavailable, ErrorCode::Unavailable);
    let health = system_health(&h).await?;
    assert_eq!(health.overall_status(), SystemHealthStatus::Unhealthy);
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    // Without persistence the restarted server is empty: the event is gone, and says so.
    h.redis_server().context("redis")?.restart()?;
    // Generous: under a full parallel test run the reconnect backoff and a loaded CPU add up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match h
            .reservations()
            .get_reservation(lookup(&r.reservation_id, ""))
            .await
        {
            Err(e) if e.code() == Code::NotFound => break,
            other => {
                ensure!(
                    tokio::time::Instant::now() < deadline,
                    "no recovery: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // Each pooled connection reconnects on its own: until all have, a call may still time out.
    while let Err(e) = h.backends.seed("show", 10, 2500, "USD").await {
        ensure!(tokio::time::Instant::now() < deadline, "no recovery: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loop {
        match h
            .reservations()
            .create_reservation(reserve("show", 1, "kim", "k2"))
            .await
        {
            Ok(_) => break,
            Err(e) if e.code() == Code::Unavailable => {
                ensure!(tokio::time::Instant::now() < deadline, "no recovery: {e:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    h.stop().await
}

both_stores!(admin_health_and_emergency_cancel);
async fn admin_health_and_emergency_cancel(kind: Kind) -> Result<()> {
    let h = Harness::start(kind, seeded(vec![("show", 10, 100), ("other", 5, 100)])).await?;
    let health = system_health(&h).await?;
    assert_eq!(health.overall_status(), SystemHealthStatus::Healthy);
    assert_eq!(health.services.len(), 4);

    let a = hold(&h, reserve("show", 4, "u1", "k")).await?;
    let b = hold(&h, reserve("other", 2, "u2", "k")).await?;
    let paid = hold(&h, reserve("show", 1, "u3", "k")).await?;
    // Confirm one reservation first: a sold seat is not touched by the emergency cancel.
    pay_and_confirm(&h, &paid.reservation_id, "p").await?;

    let unconfirmed = EmergencyActionRequest {
        action: EmergencyActionType::CancelReservations as i32,
        event_id: "show".into(),
        ..Default::default()
    };
    let stop = EmergencyActionRequest {
        action: EmergencyActionType::StopAdmissions as i32,
        confirm: true,
        ..Default::default()
    };
    for refused in [unconfirmed.clone(), stop] {
        let e = refusal(h.admin().emergency_action(refused).await)?;
        assert_eq!(e.code(), Code::InvalidArgument);
    }

    let done = h
        .admin()
        .emergency_action(EmergencyActionRequest {
            confirm: true,
            ..unconfirmed
        })
        .await?
        .into_inner();
    assert!(done.executed);
    assert_eq!(done.message, "cancelled 1 pending reservations");
    assert_eq!(
        status_of(&h, &a.reservation_id).await?,
        ReservationStatus::Cancelled
    );
    assert_eq!(
        status_of(&h, &b.reservation_id).await?,
        ReservationStatus::Pending,
        "another event is untouched"
    );
    assert_eq!(
        status_of(&h, &paid.reservation_id).await?,
        ReservationStatus::Confirmed
    );
    assert_eq!(
        free_seats(&h, "show").await?,
        9,
        "the 4 held seats are back; the sold one is not"
    );
    h.stop().await
}
