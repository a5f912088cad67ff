//! Requests and reads the suites share.

use super::{Harness, Kind, Options, Receiver};
use anyhow::{bail, ensure, Context, Result};
use proto::common::v1::ErrorCode;
use proto::payment::v1::{
    CreatePaymentIntentRequest, CreatePaymentIntentResponse, GetPaymentStatusRequest,
    PaymentScenario, PaymentStatus,
};
use proto::reservation::v1::{
    CheckAvailabilityRequest, CheckAvailabilityResponse, CreateReservationRequest,
    CreateReservationResponse, GetReservationRequest, PaymentResult, ProcessPaymentRequest,
    ProcessPaymentResponse, Reservation, ReservationStatus,
};
use std::time::Duration;
use tonic::Code;

pub fn reserve(event: &str, qty: i32, user: &str, key: &str) -> CreateReservationRequest {
    CreateReservationRequest {
        event_id: event.into(),
        quantity: qty,
        user_id: user.into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

/// `req` for these seats by id.
pub fn with_seats(seats: &[&str], req: CreateReservationRequest) -> CreateReservationRequest {
    CreateReservationRequest {
        seat_ids: seats.iter().map(|&s| s.into()).collect(),
        ..req
    }
}

pub fn intent(
    reservation_id: &str, scenario: PaymentScenario, key: &str,
) -> CreatePaymentIntentRequest {
    CreatePaymentIntentRequest {
        reservation_id: reservation_id.into(),
        scenario: scenario as i32,
        idempotency_key: key.into(),
        ..Default::default()
    }
}

/// The ProcessPaymentResult request for an approved payment.
pub fn approval(intent_id: &str, reservation_id: &str) -> ProcessPaymentRequest {
    ProcessPaymentRequest {
        payment_intent_id: intent_id.into(),
        reservation_id: reservation_id.into(),
        result: PaymentResult::Approved as i32,
        ..Default::default()
    }
}

/// An availability check of `event`, of these seats by id (none: the whole event).
pub fn availability(event: &str, seats: &[&str]) -> CheckAvailabilityRequest {
    CheckAvailabilityRequest {
        event_id: event.into(),
        seat_ids: seats.iter().map(|&s| s.into()).collect(),
        ..Default::default()
    }
}

/// A reservation read as `user` (empty: as the services themselves).
pub fn lookup(id: &str, user: &str) -> GetReservationRequest {
    GetReservationRequest {
        reservation_id: id.into(),
        user_id: user.into(),
    }
}

/// The default options with these events seeded instead.
pub fn seeded(events: Vec<(&'static str, u64, i64)>) -> Options {
    Options {
        events,
        ..Default::default()
    }
}

/// A receiver that answers 500 to its first `fail_first` valid requests, and a harness of
/// `kind` with `opts` whose webhooks are delivered to it.
pub async fn with_receiver(
    kind: Kind, fail_first: usize, opts: Options,
) -> Result<(Receiver, Harness)> {
    let rx = Receiver::start(fail_first).await?;
    let h = Harness::start(
        kind,
        Options {
            webhook_url: Some(rx.url.clone()),
            ..opts
        },
    )
    .await?;
    Ok((rx, h))
}

/// Two helpers for one call: `$answered` makes it and returns the answer; `$refused` returns
/// the error it is refused with (and fails if it is answered).
macro_rules! call {
    ($answered:ident, $refused:ident: $client:ident.$method:ident($req:ty) -> $resp:ty) => {
        pub async fn $answered(h: &Harness, req: $req) -> Result<$resp> {
            Ok(h.$client().$method(req).await?.into_inner())
        }

        pub async fn $refused(h: &Harness, req: $req) -> Result<tonic::Status> {
            refusal(h.$client().$method(req).await)
        }
    };
}

// Creates a reservation.
call!(hold, hold_refused: reservations.create_reservation(CreateReservationRequest) -> CreateReservationResponse);
// Creates a payment intent.
call!(pay, pay_refused: payments.create_payment_intent(CreatePaymentIntentRequest) -> CreatePaymentIntentResponse);
// Applies a payment result through WorkerService.
call!(process, process_refused: worker.process_payment_result(ProcessPaymentRequest) -> ProcessPaymentResponse);

/// Checks availability.
pub async fn check(
    h: &Harness, req: CheckAvailabilityRequest,
) -> Result<CheckAvailabilityResponse> {
    Ok(h.inventory().check_availability(req).await?.into_inner())
}

pub async fn free_seats(h: &Harness, event: &str) -> Result<i32> {
    Ok(check(h, availability(event, &[]))
        .await?
        .remaining_in_section)
}

/// A reservation as the services see it.
pub async fn reservation_of(h: &Harness, id: &str) -> Result<Reservation> {
    h.reservations()
        .get_reservation(lookup(id, ""))
        .await?
        .into_inner()
        .reservation
        .context("no reservation")
}

pub async fn status_of(h: &Harness, id: &str) -> Result<ReservationStatus> {
    Ok(reservation_of(h, id).await?.status())
}

/// The error a reservation read is refused with (fails if it is answered).
pub async fn lookup_refused(h: &Harness, req: GetReservationRequest) -> Result<tonic::Status> {
    refusal(h.reservations().get_reservation(req).await)
}

pub async fn payment_status(h: &Harness, intent_id: &str) -> Result<PaymentStatus> {
    Ok(h.payments()
        .get_payment_status(GetPaymentStatusRequest {
            payment_intent_id: intent_id.into(),
        })
        .await?
        .into_inner()
        .status())
}

/// The error a call was refused with (fails, with the answer, if it was answered).
pub fn refusal<T: std::fmt::Debug>(
    answer: Result<tonic::Response<T>, tonic::Status>,
) -> Result<tonic::Status> {
    match answer {
        Ok(r) => bail!("not refused: {:?}", r.get_ref()),
        Err(e) => Ok(e),
    }
}

/// The error code in a status's details.
pub fn code_of(e: &tonic::Status) -> Option<ErrorCode> {
    proto::error_of(e).and_then(|e| ErrorCode::try_from(e.code).ok())
}

/// Asserts a refusal's gRPC code and the error code in its details.
#[track_caller]
pub fn assert_refusal(e: &tonic::Status, code: Code, error: ErrorCode) {
    assert_eq!(e.code(), code, "{e:?}");
    assert_eq!(code_of(e), Some(error), "{e:?}");
}

/// Polls `done` every `every` until it answers true, failing with `what` after `within`.
pub async fn wait_for(
    within: Duration, every: Duration, what: &str, mut done: impl AsyncFnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while !done().await? {
        ensure!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(every).await;
    }
    Ok(())
}

/// Waits until the simulator has approved `intent_id`, for at most `within`.
pub async fn approved(h: &Harness, intent_id: &str, within: Duration) -> Result<()> {
    wait_for(
        within,
        Duration::from_millis(5),
        "payment not approved",
        async || Ok(payment_status(h, intent_id).await? == PaymentStatus::Approved),
    )
    .await
}

/// Pays `reservation_id` with the simulator's APPROVE and applies the approval: the result.
pub async fn pay_and_confirm(
    h: &Harness, reservation_id: &str, key: &str,
) -> Result<ProcessPaymentResponse> {
    let pi = pay(h, intent(reservation_id, PaymentScenario::Approve, key)).await?;
    approved(h, &pi.payment_intent_id, Duration::from_secs(5)).await?;
    process(h, approval(&pi.payment_intent_id, reservation_id)).await
}

/// Sends every request at once, each on its own task: the answers, in order.
pub async fn all_at_once(
    h: &Harness, reqs: impl IntoIterator<Item = CreateReservationRequest>,
) -> Result<Vec<Result<CreateReservationResponse, tonic::Status>>> {
    let tasks: Vec<_> = reqs
        .into_iter()
        .map(|req| {
            let mut c = h.reservations();
            tokio::spawn(async move { c.create_reservation(req).await })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for t in tasks {
        answers.push(t.await?.map(tonic::Response::into_inner));
    }
    Ok(answers)
}
