//! The backing services end to end over real gRPC, on the in-memory store and on a real Redis:
//! reserve, pay through the simulator and its signed webhook, confirm or cancel, expiry,
//! idempotency, zero oversell under concurrency, and bad input.

mod common;

use anyhow::{ensure, Context, Result};
use common::{
    approved, code_of, free_seats, intent, reserve, status_of, Harness, Kind, Options, Receiver,
};
use proto::common::v1::ErrorCode;
use proto::payment::v1::{GetPaymentStatusRequest, PaymentScenario, PaymentStatus};
use proto::reservation::v1::{
    CheckAvailabilityRequest, CreateReservationRequest, CreateReservationResponse,
    GetReservationRequest, PaymentResult, ProcessPaymentRequest, ProcessingStatus,
    ReservationStatus,
};
use std::time::Duration;
use tonic::Code;

/// The ProcessPaymentResult request the gateway would make from a verified webhook.
fn from_webhook(w: &common::Received) -> Result<ProcessPaymentRequest> {
    let d = &w.payload["data"];
    let result = match w.payload["type"].as_str() {
        Some("payment.approved") => PaymentResult::Approved,
        Some("payment.failed") => PaymentResult::Failed,
        Some("payment.cancelled") => PaymentResult::Cancelled,
        other => anyhow::bail!("unexpected type {other:?}"),
    };
    Ok(ProcessPaymentRequest {
        payment_intent_id: d["payment_intent_id"].as_str().context("intent id")?.into(),
        reservation_id: d["reservation_id"]
            .as_str()
            .context("reservation id")?
            .into(),
        result: result as i32,
        failure_code: d["failure_code"].as_str().unwrap_or_default().into(),
        webhook_id: w.id.clone(),
        ..Default::default()
    })
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

both_stores!(approved_payment_confirms_via_signed_webhook);
async fn approved_payment_confirms_via_signed_webhook(kind: Kind) -> Result<()> {
    // The receiver refuses the first delivery: the simulator must retry with the same id.
    let mut rx = Receiver::start(1).await?;
    let h = Harness::start(
        kind,
        Options {
            webhook_url: Some(rx.url.clone()),
            ..Default::default()
        },
    )
    .await?;
    let r = h
        .reservations()
        .create_reservation(reserve("show", 2, "alice", "k1"))
        .await?
        .into_inner();
    assert_eq!(r.status(), ReservationStatus::Pending);
    assert_eq!(r.reserved_seats.len(), 2);
    assert_eq!(r.reserved_seats[0].seat_id, "A-1");
    assert_eq!(r.total_amount.as_ref().map(|m| m.amount_cents), Some(5000));
    assert_eq!(free_seats(&h, "show").await?, 8);

    let pi = h
        .payments()
        .create_payment_intent(intent(&r.reservation_id, PaymentScenario::Approve, "p1"))
        .await?
        .into_inner();
    assert_eq!(pi.status(), PaymentStatus::Pending);

    let w = rx.next().await?;
    assert_eq!(w.payload["type"], "payment.approved");
    assert_eq!(
        w.payload["data"]["payment_intent_id"],
        pi.payment_intent_id.as_str()
    );
    assert_eq!(
        w.payload["data"]["reservation_id"],
        r.reservation_id.as_str()
    );
    assert_eq!(w.payload["data"]["amount_cents"], 5000);
    assert_eq!(w.payload["data"]["currency"], "USD");
    assert!(w.payload["data"].get("failure_code").is_none());
    let ts = w.payload["timestamp"].as_str().context("timestamp")?;
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)?;
    assert_eq!(rx.invalid.load(std::sync::atomic::Ordering::SeqCst), 0);
    let ids = rx.ids.lock().await.clone();
    assert_eq!(ids.len(), 2, "one refused attempt, one retry: {ids:?}");
    assert_eq!(ids[0], ids[1], "a retry keeps its webhook-id");

    let status = h
        .payments()
        .get_payment_status(GetPaymentStatusRequest {
            payment_intent_id: pi.payment_intent_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(status.status(), PaymentStatus::Approved);

    let done = h
        .worker()
        .process_payment_result(from_webhook(&w)?)
        .await?
        .into_inner();
    assert_eq!(done.status(), ProcessingStatus::Success);
    assert_eq!(done.reservation_status(), ReservationStatus::Confirmed);
    assert!(done.order_id.starts_with("ord_"));
    assert_eq!(
        status_of(&h, &r.reservation_id).await?,
        ReservationStatus::Confirmed
    );

    // The same result again changes nothing.
    let again = h
        .worker()
        .process_payment_result(from_webhook(&w)?)
        .await?
        .into_inner();
    assert_eq!(again.status(), ProcessingStatus::AlreadyProcessed);
    assert_eq!(again.order_id, done.order_id);
    // Sold seats stay sold, even past the hold deadline.
    h.clock.advance_ms(120_000);
    h.backends.expire_due().await?;
    assert_eq!(
        status_of(&h, &r.reservation_id).await?,
        ReservationStatus::Confirmed
    );
    let a = h
        .inventory()
        .check_availability(CheckAvailabilityRequest {
            event_id: "show".into(),
            seat_ids: vec!["A-1".into(), "A-2".into(), "A-3".into()],
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(!a.available);
    assert_eq!(a.unavailable_seat_ids, vec!["A-1", "A-2"]);
    assert_eq!(free_seats(&h, "show").await?, 8);
    h.stop().await
}

both_stores!(failed_payment_cancels_and_frees_the_seats);
async fn failed_payment_cancels_and_frees_the_seats(kind: Kind) -> Result<()> {
    let mut rx = Receiver::start(0).await?;
    let h = Harness::start(
        kind,
        Options {
            webhook_url: Some(rx.url.clone()),
            events: vec![("show", 40, 2500)],
            ..Default::default()
        },
    )
    .await?;
    let r = h
        .reservations()
        .create_reservation(CreateReservationRequest {
            seat_ids: vec!["B-3".into(), "B-4".into()],
            ..reserve("show", 0, "bob", "k")
        })
        .await?
        .into_inner();
    assert_eq!(
        r.reserved_seats
            .iter()
            .map(|s| s.seat_id.as_str())
            .collect::<Vec<_>>(),
        ["B-3", "B-4"]
    );
    let check = CheckAvailabilityRequest {
        event_id: "show".into(),
        seat_ids: vec!["B-3".into(), "B-4".into()],
        ..Default::default()
    };
    assert!(
        !h.inventory()
            .check_availability(check.clone())
            .await?
            .into_inner()
            .available
    );

    h.payments()
        .create_payment_intent(intent(&r.reservation_id, PaymentScenario::Fail, "p"))
        .await?;
    let w = rx.next().await?;
    assert_eq!(w.payload["type"], "payment.failed");
    assert_eq!(w.payload["data"]["failure_code"], "card_declined");
    // An approval that the provider never reported is refused.
    let mut forged = from_webhook(&w)?;
    forged.result = PaymentResult::Approved as i32;
    let e = h.worker().process_payment_result(forged).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    let done = h
        .worker()
        .process_payment_result(from_webhook(&w)?)
        .await?
        .into_inner();
    assert_eq!(done.reservation_status(), ReservationStatus::Cancelled);
    assert_eq!(
        status_of(&h, &r.reservation_id).await?,
        ReservationStatus::Cancelled
    );
    let a = h.inventory().check_availability(check).await?.into_inner();
    assert!(a.available, "{a:?}");
    assert_eq!(a.available_seats.len(), 2);
    assert_eq!(free_seats(&h, "show").await?, 40);
    let again = h
        .worker()
        .process_payment_result(from_webhook(&w)?)
        .await?
        .into_inner();
    assert_eq!(again.status(), ProcessingStatus::AlreadyProcessed);
    assert_eq!(free_seats(&h, "show").await?, 40);
    // A cancelled reservation takes no new payment.
    let e = h
        .payments()
        .create_payment_intent(intent(&r.reservation_id, PaymentScenario::Approve, "p2"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    h.stop().await
}

both_stores!(unpaid_hold_expires_and_frees_its_seats);
async fn unpaid_hold_expires_and_frees_its_seats(kind: Kind) -> Result<()> {
    let h = Harness::start(
        kind,
        Options {
            events: vec![("tiny", 3, 1000)],
            ..Default::default()
        },
    )
    .await?;
    let r = h
        .reservations()
        .create_reservation(reserve("tiny", 3, "carol", "k"))
        .await?
        .into_inner();
    let e = h
        .reservations()
        .create_reservation(reserve("tiny", 1, "dave", "k"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(code_of(&e), Some(ErrorCode::InventoryConflict));

    h.clock.advance_ms(59_000);
    assert_eq!(h.backends.expire_due().await?, 0, "not yet due");
    assert_eq!(
        status_of(&h, &r.reservation_id).await?,
        ReservationStatus::Pending
    );
    h.clock.advance_ms(1_000);
    // Past the deadline a payment is refused even before the sweep ran.
    let e = h
        .payments()
        .create_payment_intent(intent(&r.reservation_id, PaymentScenario::Approve, "p"))
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), Some(ErrorCode::ReservationExpired));
    assert_eq!(h.backends.expire_due().await?, 1);
    assert_eq!(
        status_of(&h, &r.reservation_id).await?,
        ReservationStatus::Expired
    );
    assert_eq!(free_seats(&h, "tiny").await?, 3);
    assert_eq!(h.backends.expire_due().await?, 0, "expiring is done once");
    let r2 = h
        .reservations()
        .create_reservation(reserve("tiny", 3, "dave", "k"))
        .await?
        .into_inner();
    assert_eq!(r2.reserved_seats.len(), 3);

    // An approval that arrives after the deadline does not sell the seats.
    let pi = h
        .payments()
        .create_payment_intent(intent(&r2.reservation_id, PaymentScenario::Approve, "p"))
        .await?
        .into_inner();
    approved(&h, &pi.payment_intent_id, Duration::from_secs(5)).await?;
    h.clock.advance_ms(60_000);
    let e = h
        .worker()
        .process_payment_result(ProcessPaymentRequest {
            payment_intent_id: pi.payment_intent_id.clone(),
            reservation_id: r2.reservation_id.clone(),
            result: PaymentResult::Approved as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
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
            events: vec![("tiny", 2, 1000)],
            expiry_every: Duration::from_millis(10),
            ..Default::default()
        },
    )
    .await?;
    h.reservations()
        .create_reservation(reserve("tiny", 2, "erin", "k"))
        .await?;
    assert_eq!(free_seats(&h, "tiny").await?, 0);
    h.clock.advance_ms(60_000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while free_seats(&h, "tiny").await? != 2 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the sweep did not free the seats"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.stop().await
}

both_stores!(create_reservation_is_idempotent);
async fn create_reservation_is_idempotent(kind: Kind) -> Result<()> {
    let h = Harness::start(kind, Options::default()).await?;
    let mut c = h.reservations();
    let a: CreateReservationResponse = c
        .create_reservation(reserve("show", 2, "fay", "same"))
        .await?
        .into_inner();
    let b = c
        .create_reservation(reserve("show", 2, "fay", "same"))
        .await?
        .into_inner();
    assert_eq!(a.reservation_id, b.reservation_id);
    assert!(!a.replayed && b.replayed);
    assert_eq!(a.reserved_seats, b.reserved_seats);
    assert_eq!(
        free_seats(&h, "show").await?,
        8,
        "the replay held nothing more"
    );

    let e = c
        .create_reservation(reserve("show", 3, "fay", "same"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert_eq!(code_of(&e), Some(ErrorCode::IdempotencyConflict));

    // Keys are per user.
    let other = c
        .create_reservation(reserve("show", 2, "gus", "same"))
        .await?
        .into_inner();
    assert_ne!(other.reservation_id, a.reservation_id);
    assert_eq!(free_seats(&h, "show").await?, 6);

    // Intents are idempotent too.
    let p1 = h
        .payments()
        .create_payment_intent(intent(&a.reservation_id, PaymentScenario::Timeout, "pk"))
        .await?
        .into_inner();
    let p2 = h
        .payments()
        .create_payment_intent(intent(&a.reservation_id, PaymentScenario::Timeout, "pk"))
        .await?
        .into_inner();
    assert_eq!(p1.payment_intent_id, p2.payment_intent_id);
    assert!(p2.replayed);
    let e = h
        .payments()
        .create_payment_intent(intent(&a.reservation_id, PaymentScenario::Fail, "pk"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);

    // After the 5-minute window the key makes a new reservation.
    h.clock.advance_ms(300_000);
    h.backends.expire_due().await?;
    let later = c
        .create_reservation(reserve("show", 2, "fay", "same"))
        .await?
        .into_inner();
    assert_ne!(later.reservation_id, a.reservation_id);
    assert!(!later.replayed);
    h.stop().await
}

both_stores!(timeout_scenario_never_reports);
async fn timeout_scenario_never_reports(kind: Kind) -> Result<()> {
    let rx = Receiver::start(0).await?;
    let h = Harness::start(
        kind,
        Options {
            webhook_url: Some(rx.url.clone()),
            ..Default::default()
        },
    )
    .await?;
    let r = h
        .reservations()
        .create_reservation(reserve("show", 1, "hal", "k"))
        .await?
        .into_inner();
    let pi = h
        .payments()
        .create_payment_intent(intent(&r.reservation_id, PaymentScenario::Timeout, "p"))
        .await?
        .into_inner();
    // APPROVE would have reported within ~5 ms at this time scale.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    let get = GetPaymentStatusRequest {
        payment_intent_id: pi.payment_intent_id.clone(),
    };
    assert_eq!(
        h.payments()
            .get_payment_status(get.clone())
            .await?
            .into_inner()
            .status(),
        PaymentStatus::Pending
    );
    h.clock.advance_ms(60_000);
    assert_eq!(
        h.payments()
            .get_payment_status(get)
            .await?
            .into_inner()
            .status(),
        PaymentStatus::Expired
    );
    h.stop().await
}

both_stores!(no_oversell_under_concurrency);
async fn no_oversell_under_concurrency(kind: Kind) -> Result<()> {
    // 2,000 buyers of one seat at once for 100 seats: exactly 100 holds.
    let h = Harness::start(
        kind,
        Options {
            events: vec![("hot", 100, 1000)],
            ..Default::default()
        },
    )
    .await?;
    let mut tasks = Vec::new();
    for i in 0..2000 {
        let mut c = h.reservations();
        tasks.push(tokio::spawn(async move {
            c.create_reservation(reserve("hot", 1, &format!("u{i}"), "k"))
                .await
        }));
    }
    let mut held = Vec::new();
    let mut ids = Vec::new();
    for t in tasks {
        match t.await? {
            Ok(r) => {
                let r = r.into_inner();
                ids.push(r.reservation_id.clone());
                held.extend(r.reserved_seats.into_iter().map(|s| s.seat_id));
            }
            Err(e) => {
                assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
                assert_eq!(code_of(&e), Some(ErrorCode::InventoryConflict));
            }
        }
    }
    assert_eq!(held.len(), 100);
    held.sort();
    held.dedup();
    assert_eq!(held.len(), 100, "a seat was held twice");
    assert_eq!(free_seats(&h, "hot").await?, 0);

    // Mixed sizes never exceed the seats either.
    let h3 = Harness::start(
        kind,
        Options {
            events: vec![("mixed", 25, 1000)],
            ..Default::default()
        },
    )
    .await?;
    let mut tasks = Vec::new();
    for i in 0..300 {
        let mut c = h3.reservations();
        tasks.push(tokio::spawn(async move {
            c.create_reservation(reserve("mixed", 1 + (i % 3), &format!("u{i}"), "k"))
                .await
        }));
    }
    let mut n = 0;
    for t in tasks {
        if let Ok(r) = t.await? {
            n += r.into_inner().reserved_seats.len();
        }
    }
    assert!((23..=25).contains(&n), "{n} seats held of 25");
    assert_eq!(free_seats(&h3, "mixed").await? as usize, 25 - n);
    h3.stop().await?;

    // 50 buyers of the same seat: exactly one gets it.
    let h2 = Harness::start(
        kind,
        Options {
            events: vec![("one", 5, 1000)],
            ..Default::default()
        },
    )
    .await?;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let mut c = h2.reservations();
        tasks.push(tokio::spawn(async move {
            c.create_reservation(CreateReservationRequest {
                seat_ids: vec!["A-3".into()],
                ..reserve("one", 1, &format!("u{i}"), "k")
            })
            .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await?.is_ok());
    }
    assert_eq!(ok, 1);
    h2.stop().await?;

    // Paying every reservation sells exactly the 100 seats.
    let mut intents = Vec::new();
    for id in &ids {
        intents.push(
            h.payments()
                .create_payment_intent(intent(id, PaymentScenario::Approve, "p"))
                .await?
                .into_inner()
                .payment_intent_id,
        );
    }
    for (id, pi) in ids.iter().zip(&intents) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let st = h
                .payments()
                .get_payment_status(GetPaymentStatusRequest {
                    payment_intent_id: pi.clone(),
                })
                .await?
                .into_inner();
            if st.status() == PaymentStatus::Approved {
                break;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "payment not approved"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let done = h
            .worker()
            .process_payment_result(ProcessPaymentRequest {
                payment_intent_id: pi.clone(),
                reservation_id: id.clone(),
                result: PaymentResult::Approved as i32,
                ..Default::default()
            })
            .await?
            .into_inner();
        assert_eq!(done.reservation_status(), ReservationStatus::Confirmed);
    }
    let mut sold = 0;
    for id in &ids {
        let r = h
            .reservations()
            .get_reservation(GetReservationRequest {
                reservation_id: id.clone(),
                user_id: String::new(),
            })
            .await?
            .into_inner()
            .reservation
            .context("r")?;
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

both_stores!(scenarios_delay_and_random);
async fn scenarios_delay_and_random(kind: Kind) -> Result<()> {
    let mut rx = Receiver::start(0).await?;
    let h = Harness::start(
        kind,
        Options {
            webhook_url: Some(rx.url.clone()),
            settings: services::Settings {
                sim_time_scale: 0.001,
                random_approve_percent: 0,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await?;
    // DELAY approves after 10–30 s (10–30 ms at this scale).
    let r = h
        .reservations()
        .create_reservation(reserve("show", 1, "jo", "k1"))
        .await?
        .into_inner();
    let t0 = std::time::Instant::now();
    h.payments()
        .create_payment_intent(intent(&r.reservation_id, PaymentScenario::Delay, "p"))
        .await?;
    let w = rx.next().await?;
    assert!(
        t0.elapsed() >= Duration::from_millis(10),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(w.payload["type"], "payment.approved");
    // RANDOM with a 0 % approval rate fails.
    let r = h
        .reservations()
        .create_reservation(reserve("show", 1, "jo", "k2"))
        .await?
        .into_inner();
    h.payments()
        .create_payment_intent(intent(&r.reservation_id, PaymentScenario::Random, "p"))
        .await?;
    let w = rx.next().await?;
    assert_eq!(w.payload["type"], "payment.failed");
    assert_eq!(
        w.payload["data"]["reservation_id"],
        r.reservation_id.as_str()
    );
    h.stop().await
}

both_stores!(bad_input_is_invalid_argument);
async fn bad_input_is_invalid_argument(kind: Kind) -> Result<()> {
    let h = Harness::start(kind, Options::default()).await?;
    let mut c = h.reservations();
    let bad = [
        reserve("", 1, "u", "k"),
        reserve("no spaces", 1, "u", "k"),
        reserve(&"x".repeat(65), 1, "u", "k"),
        reserve("show", 0, "u", "k"),
        reserve("show", -1, "u", "k"),
        reserve("show", 11, "u", "k"),
        reserve("show", 1, "", "k"),
        CreateReservationRequest {
            seat_ids: vec!["A-1".into(), "A-1".into()],
            ..reserve("show", 0, "u", "k")
        },
        CreateReservationRequest {
            seat_ids: vec!["a-1".into()],
            ..reserve("show", 0, "u", "k")
        },
        CreateReservationRequest {
            seat_ids: vec!["A-1".into()],
            ..reserve("show", 2, "u", "k")
        },
    ];
    for req in bad {
        let e = c.create_reservation(req.clone()).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{req:?}: {e:?}");
        assert_eq!(code_of(&e), Some(ErrorCode::InvalidArgument));
    }
    let e = c
        .create_reservation(reserve("show", 1, "u", ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(code_of(&e), Some(ErrorCode::IdempotencyRequired));
    let e = c
        .create_reservation(reserve("nope", 1, "u", "k"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    for id in [
        "",
        "r_",
        "r_123_show",
        "x_00000000000000000000000000000000_show",
        "r_00000000000000000000000000000000_bad event",
    ] {
        let e = c
            .get_reservation(GetReservationRequest {
                reservation_id: id.into(),
                user_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{id}");
    }
    let e = c
        .get_reservation(GetReservationRequest {
            reservation_id: "r_00000000000000000000000000000000_show".into(),
            user_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let r = c
        .create_reservation(reserve("show", 1, "u", "k"))
        .await?
        .into_inner();
    // Someone else's reservation is not found.
    let e = c
        .get_reservation(GetReservationRequest {
            reservation_id: r.reservation_id.clone(),
            user_id: "mallory".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let mut p = h.payments();
    let mut unknown = intent(&r.reservation_id, PaymentScenario::Approve, "p");
    unknown.scenario = 99;
    assert_eq!(
        p.create_payment_intent(unknown).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        p.create_payment_intent(intent(&r.reservation_id, PaymentScenario::Approve, ""))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    let mut wrong_amount = intent(&r.reservation_id, PaymentScenario::Approve, "p");
    wrong_amount.amount = Some(proto::common::v1::Money {
        amount_cents: 1,
        currency: "USD".into(),
    });
    assert_eq!(
        p.create_payment_intent(wrong_amount)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        p.get_payment_status(GetPaymentStatusRequest {
            payment_intent_id: "pi_zz".into()
        })
        .await
        .unwrap_err()
        .code(),
        Code::InvalidArgument
    );

    let mut w = h.worker();
    let e = w
        .process_payment_result(ProcessPaymentRequest {
            reservation_id: r.reservation_id.clone(),
            payment_intent_id: "pi_00000000000000000000000000000000_show".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "unspecified result");
    let e = w
        .process_payment_result(ProcessPaymentRequest {
            reservation_id: r.reservation_id.clone(),
            payment_intent_id: "pi_00000000000000000000000000000000_show".into(),
            result: PaymentResult::Approved as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let mut i = h.inventory();
    for req in [
        CheckAvailabilityRequest {
            event_id: "show".into(),
            section: "a".into(),
            ..Default::default()
        },
        CheckAvailabilityRequest {
            event_id: "show".into(),
            quantity: -1,
            ..Default::default()
        },
        CheckAvailabilityRequest {
            event_id: "show".into(),
            seat_ids: vec!["A-1-2".into()],
            ..Default::default()
        },
    ] {
        assert_eq!(
            i.check_availability(req).await.unwrap_err().code(),
            Code::InvalidArgument
        );
    }
    let by_section = i
        .check_availability(CheckAvailabilityRequest {
            event_id: "show".into(),
            section: "A".into(),
            quantity: 3,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(by_section.available);
    assert_eq!(
        by_section.remaining_in_section, 9,
        "10 seats in row A, one held"
    );
    assert_eq!(by_section.available_seats.len(), 3);
    h.stop().await
}

#[tokio::test]
async fn webhook_delivery_gives_up_after_bounded_attempts() -> Result<()> {
    // Every delivery is refused; the sender stops after its 3 attempts.
    let rx = Receiver::start(usize::MAX).await?;
    let h = Harness::start(
        Kind::Memory,
        Options {
            webhook_url: Some(rx.url.clone()),
            webhook_attempts: 3,
            ..Default::default()
        },
    )
    .await?;
    let r = h
        .reservations()
        .create_reservation(reserve("show", 1, "ivy", "k"))
        .await?
        .into_inner();
    h.payments()
        .create_payment_intent(intent(&r.reservation_id, PaymentScenario::Approve, "p"))
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while rx.hits.load(std::sync::atomic::Ordering::SeqCst) < 3 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "fewer than 3 attempts"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.hits.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(rx.invalid.load(std::sync::atomic::Ordering::SeqCst), 0);
    h.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_runs_the_same_flows() -> Result<()> {
    approved_payment_confirms_via_signed_webhook(Kind::Cluster).await?;
    unpaid_hold_expires_and_frees_its_seats(Kind::Cluster).await?;
    create_reservation_is_idempotent(Kind::Cluster).await
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
    let r = h
        .reservations()
        .create_reservation(reserve("show", 1, "kim", "k1"))
        .await?
        .into_inner();
    h.redis_server().context("redis")?.stop();
    let t0 = std::time::Instant::now();
    let e = h
        .reservations()
        .create_reservation(reserve("show", 1, "kim", "k2"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(code_of(&e), Some(ErrorCode::Unavailable));
    let health = h
        .admin()
        .get_system_health(proto::common::v1::SystemHealthRequest::default())
        .await?
        .into_inner();
    assert_eq!(
        health.overall_status(),
        proto::common::v1::SystemHealthStatus::Unhealthy
    );
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    // Without persistence the restarted server is empty: the event is gone, and says so.
    h.redis_server().context("redis")?.restart()?;
    // Generous: under a full parallel test run the reconnect backoff and a loaded CPU add up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match h
            .reservations()
            .get_reservation(GetReservationRequest {
                reservation_id: r.reservation_id.clone(),
                user_id: String::new(),
            })
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
    use proto::common::v1::{
        EmergencyActionRequest, EmergencyActionType, SystemHealthRequest, SystemHealthStatus,
    };
    let h = Harness::start(
        kind,
        Options {
            events: vec![("show", 10, 100), ("other", 5, 100)],
            ..Default::default()
        },
    )
    .await?;
    let health = h
        .admin()
        .get_system_health(SystemHealthRequest::default())
        .await?
        .into_inner();
    assert_eq!(health.overall_status(), SystemHealthStatus::Healthy);
    assert_eq!(health.services.len(), 4);

    let a = h
        .reservations()
        .create_reservation(reserve("show", 4, "u1", "k"))
        .await?
        .into_inner();
    let b = h
        .reservations()
        .create_reservation(reserve("other", 2, "u2", "k"))
        .await?
        .into_inner();
    let paid = h
        .reservations()
        .create_reservation(reserve("show", 1, "u3", "k"))
        .await?
        .into_inner();
    // Confirm one reservation first: a sold seat is not touched by the emergency cancel.
    let pi = h
        .payments()
        .create_payment_intent(intent(&paid.reservation_id, PaymentScenario::Approve, "p"))
        .await?
        .into_inner();
    approved(&h, &pi.payment_intent_id, Duration::from_secs(5)).await?;
    h.worker()
        .process_payment_result(ProcessPaymentRequest {
            payment_intent_id: pi.payment_intent_id,
            reservation_id: paid.reservation_id.clone(),
            result: PaymentResult::Approved as i32,
            ..Default::default()
        })
        .await?;

    let unconfirmed = EmergencyActionRequest {
        action: EmergencyActionType::CancelReservations as i32,
        event_id: "show".into(),
        ..Default::default()
    };
    assert_eq!(
        h.admin()
            .emergency_action(unconfirmed.clone())
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    let stop = EmergencyActionRequest {
        action: EmergencyActionType::StopAdmissions as i32,
        confirm: true,
        ..Default::default()
    };
    assert_eq!(
        h.admin().emergency_action(stop).await.unwrap_err().code(),
        Code::InvalidArgument
    );

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
