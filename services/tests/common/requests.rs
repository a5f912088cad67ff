//! Requests and reads the suites share.

use super::Harness;
use anyhow::{ensure, Context, Result};
use proto::common::v1::ErrorCode;
use proto::payment::v1::{
    CreatePaymentIntentRequest, GetPaymentStatusRequest, PaymentScenario, PaymentStatus,
};
use proto::reservation::v1::{
    CheckAvailabilityRequest, CreateReservationRequest, GetReservationRequest, ReservationStatus,
};
use std::time::Duration;

pub fn reserve(event: &str, qty: i32, user: &str, key: &str) -> CreateReservationRequest {
    CreateReservationRequest {
        event_id: event.into(),
        quantity: qty,
        user_id: user.into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

pub fn intent(
    reservation_id: &str,
    scenario: PaymentScenario,
    key: &str,
) -> CreatePaymentIntentRequest {
    CreatePaymentIntentRequest {
        reservation_id: reservation_id.into(),
        scenario: scenario as i32,
        idempotency_key: key.into(),
        ..Default::default()
    }
}

pub async fn free_seats(h: &Harness, event: &str) -> Result<i32> {
    Ok(h.inventory()
        .check_availability(CheckAvailabilityRequest {
            event_id: event.into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .remaining_in_section)
}

pub async fn status_of(h: &Harness, id: &str) -> Result<ReservationStatus> {
    let r = h
        .reservations()
        .get_reservation(GetReservationRequest {
            reservation_id: id.into(),
            user_id: String::new(),
        })
        .await?
        .into_inner()
        .reservation
        .context("no reservation")?;
    Ok(r.status())
}

/// The error code in a status's details.
pub fn code_of(e: &tonic::Status) -> Option<ErrorCode> {
    proto::error_of(e).and_then(|e| ErrorCode::try_from(e.code).ok())
}

/// Waits until the simulator has approved `intent_id`, for at most `within`.
pub async fn approved(h: &Harness, intent_id: &str, within: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while h
        .payments()
        .get_payment_status(GetPaymentStatusRequest {
            payment_intent_id: intent_id.into(),
        })
        .await?
        .into_inner()
        .status()
        != PaymentStatus::Approved
    {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "payment not approved"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
