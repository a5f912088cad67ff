//! Payments end to end over real gRPC, on the in-memory store and on a real Redis: pay through
//! the simulator and its signed webhook, confirm or cancel, the simulator's scenarios, payments
//! made at a provider under its own ids, and bounded webhook delivery.

mod common;

use anyhow::{Context, Result};
use common::{
    approval, availability, check, free_seats, hold, intent, pay, pay_refused, payment_status,
    process, process_refused, reserve, seeded, status_of, wait_for, with_receiver, with_seats,
    Harness, Kind, Options, Received,
};
use proto::common::v1::Money;
use proto::payment::v1::{
    CreatePaymentIntentRequest, GetPaymentStatusRequest, PaymentScenario, PaymentStatus,
};
use proto::reservation::v1::{
    PaymentResult, ProcessPaymentRequest, ProcessingStatus, ReservationStatus,
};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tonic::Code;

/// The ProcessPaymentResult request the gateway would make from a verified webhook.
fn from_webhook(w: &Received) -> Result<ProcessPaymentRequest> {
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

/// Applies the webhook's result a second time: nothing changes.
async fn already_processed(h: &Harness, w: &Received) -> Result<String> {
    let again = process(h, from_webhook(w)?).await?;
    assert_eq!(again.status(), ProcessingStatus::AlreadyProcessed);
    Ok(again.order_id)
}

both_stores!(approved_payment_confirms_via_signed_webhook + cluster);
async fn approved_payment_confirms_via_signed_webhook(kind: Kind) -> Result<()> {
    // The receiver refuses the first delivery: the simulator must retry with the same id.
    let (mut rx, h) = with_receiver(kind, 1, Options::default()).await?;
    let r = hold(&h, reserve("show", 2, "alice", "k1")).await?;
    assert_eq!(r.status(), ReservationStatus::Pending);
    assert_eq!(r.reserved_seats.len(), 2);
    assert_eq!(r.reserved_seats[0].seat_id, "A-1");
    assert_eq!(r.total_amount.as_ref().map(|m| m.amount_cents), Some(5000));
    assert_eq!(free_seats(&h, "show").await?, 8);

    let pi = pay(
        &h,
        intent(&r.reservation_id, PaymentScenario::Approve, "p1"),
    )
    .await?;
    assert_eq!(pi.status(), PaymentStatus::Pending);

    let w = rx.next().await?;
    let data = &w.payload["data"];
    assert_eq!(w.payload["type"], "payment.approved");
    assert_eq!(data["payment_intent_id"], pi.payment_intent_id.as_str());
    assert_eq!(data["reservation_id"], r.reservation_id.as_str());
    assert_eq!(data["amount_cents"], 5000);
    assert_eq!(data["currency"], "USD");
    assert!(data.get("failure_code").is_none());
    let ts = w.payload["timestamp"].as_str().context("timestamp")?;
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)?;
    assert_eq!(rx.invalid.load(Ordering::SeqCst), 0);
    let ids = rx.ids.lock().await.clone();
    assert_eq!(ids.len(), 2, "one refused attempt, one retry: {ids:?}");
    assert_eq!(ids[0], ids[1], "a retry keeps its webhook-id");

    assert_eq!(
        payment_status(&h, &pi.payment_intent_id).await?,
        PaymentStatus::Approved
    );

    let done = process(&h, from_webhook(&w)?).await?;
    assert_eq!(done.status(), ProcessingStatus::Success);
    assert_eq!(done.reservation_status(), ReservationStatus::Confirmed);
    assert!(done.order_id.starts_with("ord_"));
    assert_eq!(
        status_of(&h, &r.reservation_id).await?,
        ReservationStatus::Confirmed
    );

    // The same result again changes nothing.
    assert_eq!(already_processed(&h, &w).await?, done.order_id);
    // Sold seats stay sold, even past the hold deadline.
    h.clock.advance_ms(120_000);
    h.backends.expire_due().await?;
    assert_eq!(
        status_of(&h, &r.reservation_id).await?,
        ReservationStatus::Confirmed
    );
    let a = check(&h, availability("show", &["A-1", "A-2", "A-3"])).await?;
    assert!(!a.available);
    assert_eq!(a.unavailable_seat_ids, vec!["A-1", "A-2"]);
    assert_eq!(free_seats(&h, "show").await?, 8);
    h.stop().await
}

both_stores!(failed_payment_cancels_and_frees_the_seats);
async fn failed_payment_cancels_and_frees_the_seats(kind: Kind) -> Result<()> {
    let (mut rx, h) = with_receiver(kind, 0, seeded(vec![("show", 40, 2500)])).await?;
    let seats = ["B-3", "B-4"];
    let r = hold(&h, with_seats(&seats, reserve("show", 0, "bob", "k"))).await?;
    assert_eq!(
        r.reserved_seats
            .iter()
            .map(|s| s.seat_id.as_str())
            .collect::<Vec<_>>(),
        seats
    );
    assert!(!check(&h, availability("show", &seats)).await?.available);

    pay(&h, intent(&r.reservation_id, PaymentScenario::Fail, "p")).await?;
    let w = rx.next().await?;
    assert_eq!(w.payload["type"], "payment.failed");
    assert_eq!(w.payload["data"]["failure_code"], "card_declined");
    // An approval that the provider never reported is refused.
    let forged = ProcessPaymentRequest {
        result: PaymentResult::Approved as i32,
        ..from_webhook(&w)?
    };
    assert_eq!(
        process_refused(&h, forged).await?.code(),
        Code::FailedPrecondition
    );

    let done = process(&h, from_webhook(&w)?).await?;
    assert_eq!(done.reservation_status(), ReservationStatus::Cancelled);
    assert_eq!(
        status_of(&h, &r.reservation_id).await?,
        ReservationStatus::Cancelled
    );
    let a = check(&h, availability("show", &seats)).await?;
    assert!(a.available, "{a:?}");
    assert_eq!(a.available_seats.len(), 2);
    assert_eq!(free_seats(&h, "show").await?, 40);
    already_processed(&h, &w).await?;
    assert_eq!(free_seats(&h, "show").await?, 40);
    // A cancelled reservation takes no new payment.
    let e = pay_refused(
        &h,
        intent(&r.reservation_id, PaymentScenario::Approve, "p2"),
    )
    .await?;
    assert_eq!(e.code(), Code::FailedPrecondition);
    h.stop().await
}

both_stores!(timeout_scenario_never_reports);
async fn timeout_scenario_never_reports(kind: Kind) -> Result<()> {
    let (rx, h) = with_receiver(kind, 0, Options::default()).await?;
    let r = hold(&h, reserve("show", 1, "hal", "k")).await?;
    let pi = pay(&h, intent(&r.reservation_id, PaymentScenario::Timeout, "p")).await?;
    // APPROVE would have reported within ~5 ms at this time scale.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.hits.load(Ordering::SeqCst), 0);
    assert_eq!(
        payment_status(&h, &pi.payment_intent_id).await?,
        PaymentStatus::Pending
    );
    h.clock.advance_ms(60_000);
    assert_eq!(
        payment_status(&h, &pi.payment_intent_id).await?,
        PaymentStatus::Expired
    );
    h.stop().await
}

both_stores!(provider_ids_name_payments_made_at_the_provider);
/// A payment made at the provider (Stripe's `pi_…`): its intent is created with the provider's
/// id and nothing is simulated; a result naming that id (a verified Stripe event, forwarded)
/// finds it within the reservation's event, and the first one settles it, once.
async fn provider_ids_name_payments_made_at_the_provider(kind: Kind) -> Result<()> {
    let (rx, h) = with_receiver(kind, 0, Options::default()).await?;
    let r = hold(&h, reserve("show", 2, "alice", "k1")).await?;
    let other = hold(&h, reserve("show", 1, "bob", "k2")).await?;
    let stripe = "pi_3MtwBwLkdIwHu7ix28a3tqPa";
    let at_stripe = |rid: &str, key: &str, id: &str| CreatePaymentIntentRequest {
        provider_intent_id: id.into(),
        ..intent(rid, PaymentScenario::Approve, key)
    };
    let pi = pay(&h, at_stripe(&r.reservation_id, "p1", stripe)).await?;
    assert_eq!(pi.status(), PaymentStatus::Pending);
    let again = pay(&h, at_stripe(&r.reservation_id, "p1", stripe)).await?;
    assert_eq!(again.payment_intent_id, pi.payment_intent_id);
    // One provider id names one intent; ours, or a malformed one, is no provider id.
    let e = pay_refused(&h, at_stripe(&other.reservation_id, "p2", stripe)).await?;
    assert_eq!(e.code(), Code::FailedPrecondition);
    for bad in [pi.payment_intent_id.as_str(), "pi_3Mtw BwLk"] {
        let e = pay_refused(&h, at_stripe(&r.reservation_id, "p3", bad)).await?;
        assert_eq!(e.code(), Code::InvalidArgument, "{bad}");
    }

    // What the gateway forwards from a verified Stripe event: Stripe's id, the reservation of
    // its metadata, the amount and currency. Refused: an id no intent was created with,
    // another reservation, another amount or currency.
    let paid = |rid: &str, id: &str, cents: i64, currency: &str| ProcessPaymentRequest {
        amount: Some(Money {
            amount_cents: cents,
            currency: currency.into(),
        }),
        ..approval(id, rid)
    };
    let rid = r.reservation_id.as_str();
    let unknown = "pi_3MtwBwLkdIwHu7ix0000000a";
    let e = process_refused(&h, paid(rid, unknown, 5000, "USD")).await?;
    assert_eq!(e.code(), Code::NotFound);
    for wrong in [
        paid(&other.reservation_id, stripe, 2500, "USD"),
        paid(rid, stripe, 4999, "USD"),
        paid(rid, stripe, 5000, "EUR"),
    ] {
        let e = process_refused(&h, wrong.clone()).await?;
        assert_eq!(e.code(), Code::InvalidArgument, "{wrong:?}");
    }
    // APPROVE would have reported within ~5 ms at this time scale: the provider settles it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.hits.load(Ordering::SeqCst), 0);
    let status = h
        .payments()
        .get_payment_status(GetPaymentStatusRequest {
            payment_intent_id: pi.payment_intent_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(
        (status.status(), status.provider_intent_id.as_str()),
        (PaymentStatus::Pending, stripe)
    );

    let done = process(&h, paid(rid, stripe, 5000, "USD")).await?;
    assert_eq!(done.reservation_status(), ReservationStatus::Confirmed);
    assert_eq!(
        payment_status(&h, &pi.payment_intent_id).await?,
        PaymentStatus::Approved
    );
    let twice = process(&h, paid(rid, stripe, 5000, "USD")).await?;
    assert_eq!(twice.status(), ProcessingStatus::AlreadyProcessed);
    assert_eq!(twice.order_id, done.order_id);
    // A later result that contradicts the first is refused; the sale stands.
    let failed = ProcessPaymentRequest {
        result: PaymentResult::Failed as i32,
        ..paid(rid, stripe, 5000, "USD")
    };
    let e = process_refused(&h, failed).await?;
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(status_of(&h, rid).await?, ReservationStatus::Confirmed);
    assert_eq!(free_seats(&h, "show").await?, 7);
    h.stop().await
}

both_stores!(scenarios_delay_and_random);
async fn scenarios_delay_and_random(kind: Kind) -> Result<()> {
    let opts = Options {
        settings: services::Settings {
            sim_time_scale: 0.001,
            random_approve_percent: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    let (mut rx, h) = with_receiver(kind, 0, opts).await?;
    // DELAY approves after 10–30 s (10–30 ms at this scale).
    let r = hold(&h, reserve("show", 1, "jo", "k1")).await?;
    let t0 = std::time::Instant::now();
    pay(&h, intent(&r.reservation_id, PaymentScenario::Delay, "p")).await?;
    let w = rx.next().await?;
    assert!(
        t0.elapsed() >= Duration::from_millis(10),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(w.payload["type"], "payment.approved");
    // RANDOM with a 0 % approval rate fails.
    let r = hold(&h, reserve("show", 1, "jo", "k2")).await?;
    pay(&h, intent(&r.reservation_id, PaymentScenario::Random, "p")).await?;
    let w = rx.next().await?;
    assert_eq!(w.payload["type"], "payment.failed");
    assert_eq!(
        w.payload["data"]["reservation_id"],
        r.reservation_id.as_str()
    );
    h.stop().await
}

#[tokio::test]
async fn webhook_delivery_gives_up_after_bounded_attempts() -> Result<()> {
    // Every delivery is refused; the sender stops after its 3 attempts.
    let opts = Options {
        webhook_attempts: 3,
        ..Default::default()
    };
    let (rx, h) = with_receiver(Kind::Memory, usize::MAX, opts).await?;
    let r = hold(&h, reserve("show", 1, "ivy", "k")).await?;
    pay(&h, intent(&r.reservation_id, PaymentScenario::Approve, "p")).await?;
    wait_for(
        Duration::from_secs(5),
        Duration::from_millis(10),
        "fewer than 3 attempts",
        async || Ok(rx.hits.load(Ordering::SeqCst) >= 3),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.hits.load(Ordering::SeqCst), 3);
    assert_eq!(rx.invalid.load(Ordering::SeqCst), 0);
    h.stop().await
}
