//! Holds over real gRPC, on the in-memory store and on a real Redis: expiry (on demand and by
//! the background sweep), idempotency of reservations and intents, and zero oversell under
//! concurrency.

mod common;

use anyhow::Result;
use common::{
    all_at_once, approval, approved, assert_refusal, code_of, free_seats, hold, hold_refused,
    intent, pay, pay_refused, process, process_refused, reservation_of, reserve, seeded, status_of,
    wait_for, with_seats, Harness, Kind, Options,
};
use proto::common::v1::ErrorCode;
use proto::payment::v1::PaymentScenario;
use proto::reservation::v1::ReservationStatus;
use std::time::Duration;
use tonic::Code;

both_stores!(unpaid_hold_expires_and_frees_its_seats + cluster);
async fn unpaid_hold_expires_and_frees_its_seats(kind: Kind) -> Result<()> {
    let h = Harness::start(kind, seeded(vec![("tiny", 3, 1000)])).await?;
    let r = hold(&h, reserve("tiny", 3, "carol", "k")).await?;
    let e = hold_refused(&h, reserve("tiny", 1, "dave", "k")).await?;
    assert_refusal(&e, Code::FailedPrecondition, ErrorCode::InventoryConflict);

    h.clock.advance_ms(59_000);
    assert_eq!(h.backends.expire_due().await?, 0, "not yet due");
    assert_eq!(
        status_of(&h, &r.reservation_id).await?,
        ReservationStatus::Pending
    );
    h.clock.advance_ms(1_000);
    // Past the deadline a payment is refused even before the sweep ran.
    let e = pay_refused(&h, intent(&r.reservation_id, PaymentScenario::Approve, "p")).await?;
    assert_eq!(code_of(&e), Some(ErrorCode::ReservationExpired));
    assert_eq!(h.backends.expire_due().await?, 1);
    assert_eq!(
        status_of(&h, &r.reservation_id).await?,
        ReservationStatus::Expired
    );
    assert_eq!(free_seats(&h, "tiny").await?, 3);
    assert_eq!(h.backends.expire_due().await?, 0, "expiring is done once");
    let r2 = hold(&h, reserve("tiny", 3, "dave", "k")).await?;
    assert_eq!(r2.reserved_seats.len(), 3);

    // An approval that arrives after the deadline does not sell the seats.
    let pi = pay(
        &h,
        intent(&r2.reservation_id, PaymentScenario::Approve, "p"),
    )
    .await?;
    approved(&h, &pi.payment_intent_id, Duration::from_secs(5)).await?;
    h.clock.advance_ms(60_000);
    let e = process_refused(&h, approval(&pi.payment_intent_id, &r2.reservation_id)).await?;
    assert_eq!(code_of(&e), Some(ErrorCode::ReservationExpired));
    assert_eq!(
        status_of(&h, &r2.reservation_id).await?,
        ReservationStatus::Expired
    );
    assert_eq!(free_seats(&h, "tiny").await?, 3);
    h.stop().await
}

both_stores!(background_sweep_expires_holds);
async fn background_sweep_expires_holds(kind: Kind) -> Result<()> {
    let h = Harness::start(
        kind,
        Options {
            expiry_every: Duration::from_millis(10),
            ..seeded(vec![("tiny", 2, 1000)])
        },
    )
    .await?;
    hold(&h, reserve("tiny", 2, "erin", "k")).await?;
    assert_eq!(free_seats(&h, "tiny").await?, 0);
    h.clock.advance_ms(60_000);
    wait_for(
        Duration::from_secs(5),
        Duration::from_millis(10),
        "the sweep did not free the seats",
        async || Ok(free_seats(&h, "tiny").await? == 2),
    )
    .await?;
    h.stop().await
}

both_stores!(create_reservation_is_idempotent + cluster);
async fn create_reservation_is_idempotent(kind: Kind) -> Result<()> {
    let h = Harness::start(kind, Options::default()).await?;
    let a = hold(&h, reserve("show", 2, "fay", "same")).await?;
    let b = hold(&h, reserve("show", 2, "fay", "same")).await?;
    assert_eq!(a.reservation_id, b.reservation_id);
    assert!(!a.replayed && b.replayed);
    assert_eq!(a.reserved_seats, b.reserved_seats);
    assert_eq!(
        free_seats(&h, "show").await?,
        8,
        "the replay held nothing more"
    );

    let e = hold_refused(&h, reserve("show", 3, "fay", "same")).await?;
    assert_refusal(&e, Code::AlreadyExists, ErrorCode::IdempotencyConflict);

    // Keys are per user.
    let other = hold(&h, reserve("show", 2, "gus", "same")).await?;
    assert_ne!(other.reservation_id, a.reservation_id);
    assert_eq!(free_seats(&h, "show").await?, 6);

    // Intents are idempotent too.
    let timeout = intent(&a.reservation_id, PaymentScenario::Timeout, "pk");
    let p1 = pay(&h, timeout.clone()).await?;
    let p2 = pay(&h, timeout).await?;
    assert_eq!(p1.payment_intent_id, p2.payment_intent_id);
    assert!(p2.replayed);
    let e = pay_refused(&h, intent(&a.reservation_id, PaymentScenario::Fail, "pk")).await?;
    assert_eq!(e.code(), Code::AlreadyExists);

    // After the 5-minute window the key makes a new reservation.
    h.clock.advance_ms(300_000);
    h.backends.expire_due().await?;
    let later = hold(&h, reserve("show", 2, "fay", "same")).await?;
    assert_ne!(later.reservation_id, a.reservation_id);
    assert!(!later.replayed);
    h.stop().await
}

both_stores!(no_oversell_under_concurrency);
async fn no_oversell_under_concurrency(kind: Kind) -> Result<()> {
    // 2,000 buyers of one seat at once for 100 seats: exactly 100 holds.
    let h = Harness::start(kind, seeded(vec![("hot", 100, 1000)])).await?;
    let answers = all_at_once(
        &h,
        (0..2000).map(|i| reserve("hot", 1, &format!("u{i}"), "k")),
    );
    let mut held = Vec::new();
    let mut ids = Vec::new();
    for answer in answers.await? {
        match answer {
            Ok(r) => {
                ids.push(r.reservation_id.clone());
                held.extend(r.reserved_seats.into_iter().map(|s| s.seat_id));
            }
            Err(e) => assert_refusal(&e, Code::FailedPrecondition, ErrorCode::InventoryConflict),
        }
    }
    assert_eq!(held.len(), 100);
    held.sort();
    held.dedup();
    assert_eq!(held.len(), 100, "a seat was held twice");
    assert_eq!(free_seats(&h, "hot").await?, 0);

    // Mixed sizes never exceed the seats either.
    let h3 = Harness::start(kind, seeded(vec![("mixed", 25, 1000)])).await?;
    let reqs = (0..300).map(|i| reserve("mixed", 1 + (i % 3), &format!("u{i}"), "k"));
    let n: usize = all_at_once(&h3, reqs)
        .await?
        .into_iter()
        .flatten()
        .map(|r| r.reserved_seats.len())
        .sum();
    assert!((23..=25).contains(&n), "{n} seats held of 25");
    assert_eq!(free_seats(&h3, "mixed").await? as usize, 25 - n);
    h3.stop().await?;

    // 50 buyers of the same seat: exactly one gets it.
    let h2 = Harness::start(kind, seeded(vec![("one", 5, 1000)])).await?;
    let reqs = (0..50).map(|i| with_seats(&["A-3"], reserve("one", 1, &format!("u{i}"), "k")));
    let ok = all_at_once(&h2, reqs).await?.iter().flatten().count();
    assert_eq!(ok, 1);
    h2.stop().await?;

    // Paying every reservation sells exactly the 100 seats.
    let mut intents = Vec::new();
    for id in &ids {
        intents.push(
            pay(&h, intent(id, PaymentScenario::Approve, "p"))
                .await?
                .payment_intent_id,
        );
    }
    for (id, pi) in ids.iter().zip(&intents) {
        approved(&h, pi, Duration::from_secs(5)).await?;
        let done = process(&h, approval(pi, id)).await?;
        assert_eq!(done.reservation_status(), ReservationStatus::Confirmed);
    }
    let mut sold = 0;
    for id in &ids {
        let r = reservation_of(&h, id).await?;
        assert_eq!(r.status(), ReservationStatus::Confirmed);
        sold += r.seats.len();
    }
    assert_eq!(sold, 100);
    // Nothing a sweep does brings a sold seat back.
    h.clock.advance_ms(3_600_000);
    h.backends.expire_due().await?;
    assert_eq!(free_seats(&h, "hot").await?, 0);
    h.stop().await
}
