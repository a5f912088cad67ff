//! Holds per admission over real gRPC, on the in-memory store and on a real Redis (the limit is
//! checked inside hold.lua, atomically with the hold): a second active hold under one admission
//! is refused with HOLD_LIMIT, a replayed key still answers its hold, and a hold that is
//! cancelled, expired or paid stops counting.

mod common;

use anyhow::{ensure, Result};
use common::{all_at_once, code_of, hold, hold_refused, pay_and_confirm, Harness, Kind, Options};
use proto::common::v1::ErrorCode;
use proto::reservation::v1::{
    CancelReservationRequest, CreateReservationRequest, ReservationStatus,
};
use services::Settings;
use tonic::Code;

fn reserve(user: &str, key: &str, admission: &str) -> CreateReservationRequest {
    CreateReservationRequest {
        admission_id: admission.into(),
        ..common::reserve("show", 1, user, key)
    }
}

fn options(holds_per_admission: u32) -> Options {
    let mut o = Options::default();
    o.settings = Settings {
        holds_per_admission,
        ..o.settings
    };
    o
}

/// Creates a hold; its reservation id.
async fn held(h: &Harness, req: CreateReservationRequest) -> Result<String> {
    Ok(hold(h, req).await?.reservation_id)
}

/// Asserts that `req` is refused with HOLD_LIMIT (FAILED_PRECONDITION).
async fn refused(h: &Harness, req: CreateReservationRequest) -> Result<()> {
    let e = hold_refused(h, req).await?;
    ensure!(e.code() == Code::FailedPrecondition, "{e:?}");
    ensure!(code_of(&e) == Some(ErrorCode::HoldLimit), "{e:?}");
    Ok(())
}

both_stores!(one_active_hold_per_admission);
async fn one_active_hold_per_admission(kind: Kind) -> Result<()> {
    let h = Harness::start(kind, options(1)).await?;
    let first = held(&h, reserve("ann", "k1", "adm-1")).await?;
    refused(&h, reserve("ann", "k2", "adm-1")).await?;
    // The same key replays its hold: idempotency is answered before the limit.
    let replay = hold(&h, reserve("ann", "k1", "adm-1")).await?;
    assert_eq!(
        (replay.reservation_id.as_str(), replay.replayed),
        (first.as_str(), true)
    );
    // Other admissions, and calls that name none (older gateways, direct callers), are not
    // held back by it.
    held(&h, reserve("ann", "k3", "adm-2")).await?;
    held(&h, reserve("ann", "k4", "")).await?;

    // Cancelled: it stops counting.
    h.reservations()
        .cancel_reservation(CancelReservationRequest {
            reservation_id: first.clone(),
            user_id: "ann".into(),
            reason: "changed my mind".into(),
        })
        .await?;
    let second = held(&h, reserve("ann", "k2", "adm-1")).await?;
    refused(&h, reserve("ann", "k5", "adm-1")).await?;

    // Expired (past its deadline, before any sweep): it stops counting.
    h.clock.advance_ms(60_000);
    let third = held(&h, reserve("ann", "k5", "adm-1")).await?;
    assert_ne!(second, third);
    refused(&h, reserve("ann", "k6", "adm-1")).await?;

    // Paid and confirmed: it stops counting.
    let done = pay_and_confirm(&h, &third, "p").await?;
    assert_eq!(done.reservation_status(), ReservationStatus::Confirmed);
    held(&h, reserve("ann", "k6", "adm-1")).await?;
    h.stop().await
}

both_stores!(the_limit_is_configurable);
async fn the_limit_is_configurable(kind: Kind) -> Result<()> {
    let h = Harness::start(kind, options(2)).await?;
    held(&h, reserve("bo", "k1", "adm")).await?;
    held(&h, reserve("bo", "k2", "adm")).await?;
    refused(&h, reserve("bo", "k3", "adm")).await?;
    h.stop().await?;

    // 0: no limit.
    let h = Harness::start(kind, options(0)).await?;
    for k in ["k1", "k2", "k3"] {
        held(&h, reserve("bo", k, "adm")).await?;
    }
    h.stop().await
}

both_stores!(concurrent_holds_of_one_admission_get_one_seat);
async fn concurrent_holds_of_one_admission_get_one_seat(kind: Kind) -> Result<()> {
    let h = Harness::start(kind, options(1)).await?;
    let results = all_at_once(&h, (0..16).map(|i| reserve("cy", &format!("k{i}"), "adm"))).await?;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "exactly one of 16 concurrent holds is made");
    for e in results.into_iter().filter_map(|r| r.err()) {
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    }
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_admission_id_is_invalid() -> Result<()> {
    let h = Harness::start(Kind::Memory, options(1)).await?;
    let e = hold_refused(&h, reserve("di", "k", &"a".repeat(129))).await?;
    assert_eq!(e.code(), Code::InvalidArgument);
    h.stop().await
}
