//! ReservationService: hold seats, read, confirm and cancel a reservation.

use super::convert::{money, released_seats, reservation_msg, seat_status_of, seats_of, ts};
use super::{Backends, Handle};
use crate::error::{Result, ServiceError};
use crate::model::*;
use crate::store::{AdmissionLimit, HoldRequest};
use proto::common::v1::SeatStatus;
use proto::reservation::v1 as res;

impl Handle<res::CreateReservationRequest> for Backends {
    type Reply = res::CreateReservationResponse;

    async fn handle(&self, req: res::CreateReservationRequest) -> Result<Self::Reply> {
        check_event_id(&req.event_id)?;
        check_user_id(&req.user_id)?;
        check_idempotency_key(&req.idempotency_key)?;
        check_admission_id(&req.admission_id)?;
        let max = self.0.settings.max_seats_per_reservation;
        let mut seats = Vec::with_capacity(req.seat_ids.len());
        for s in &req.seat_ids {
            SeatRef::parse(s)?;
            if seats.contains(s) {
                return Err(ServiceError::InvalidArgument(format!(
                    "seat '{s}' is listed twice"
                )));
            }
            seats.push(s.clone());
        }
        let quantity = if seats.is_empty() {
            req.quantity
        } else if req.quantity == 0 || req.quantity as usize == seats.len() {
            seats.len() as i32
        } else {
            return Err(ServiceError::InvalidArgument(
                "quantity does not match seat_ids".into(),
            ));
        };
        if quantity < 1 || quantity as u32 > max {
            return Err(ServiceError::InvalidArgument(format!(
                "quantity must be 1 to {max}"
            )));
        }
        let mut sorted = seats.clone();
        sorted.sort();
        let q = quantity.to_string();
        let mut fp_parts = vec![q.as_str()];
        fp_parts.extend(sorted.iter().map(String::as_str));
        let hold = HoldRequest {
            event_id: req.event_id.clone(),
            reservation_id: new_reservation_id(&req.event_id),
            user_id: req.user_id.clone(),
            idem: self.idem_key(&req.user_id, &req.idempotency_key, digest(&fp_parts)),
            quantity: quantity as u32,
            seats,
            hold_ms: self.0.settings.hold.as_millis() as u64,
            admission: (!req.admission_id.is_empty() && self.0.settings.holds_per_admission > 0)
                .then(|| AdmissionLimit {
                    slot: digest(&[&req.admission_id]),
                    limit: self.0.settings.holds_per_admission,
                }),
        };
        let now = self.now();
        let (r, replayed) = self.0.store.hold(&hold, now).await?;
        if !replayed {
            tracing::info!(reservation_id = %r.id, seats = r.seats.len(), "seats held");
        }
        let st = r.status_at(now);
        Ok(res::CreateReservationResponse {
            reservation_id: r.id.clone(),
            status: st as i32,
            hold_expires_at: Some(ts(r.hold_expires_ms)),
            reserved_seats: seats_of(&r, seat_status_of(st)),
            total_amount: Some(money(r.amount_cents(), &r.currency)),
            payment_url: String::new(),
            error: None,
            replayed,
        })
    }
}

impl Handle<res::GetReservationRequest> for Backends {
    type Reply = res::GetReservationResponse;

    async fn handle(&self, req: res::GetReservationRequest) -> Result<Self::Reply> {
        let r = self.load(&req.reservation_id, &req.user_id).await?;
        Ok(res::GetReservationResponse {
            reservation: Some(reservation_msg(&r, self.now())),
            error: None,
        })
    }
}

impl Handle<res::ConfirmReservationRequest> for Backends {
    type Reply = res::ConfirmReservationResponse;

    async fn handle(&self, req: res::ConfirmReservationRequest) -> Result<Self::Reply> {
        let r = self.load(&req.reservation_id, &req.user_id).await?;
        let intent = self
            .0
            .store
            .intent(&req.payment_intent_id)
            .await?
            .filter(|i| i.reservation_id == r.id)
            .ok_or_else(|| ServiceError::IntentNotFound(req.payment_intent_id.clone()))?;
        if intent.status != IntentStatus::Approved {
            return Err(ServiceError::FailedPrecondition(format!(
                "the payment is {:?}, not approved",
                intent.status
            )));
        }
        let (r, _) = self.confirm(&r.id, &intent.id).await?;
        Ok(res::ConfirmReservationResponse {
            order_id: r.order_id.clone().unwrap_or_default(),
            status: r.status as i32,
            confirmed_at: r.confirmed_ms.map(ts),
            confirmed_seats: seats_of(&r, SeatStatus::Sold),
            error: None,
        })
    }
}

impl Handle<res::CancelReservationRequest> for Backends {
    type Reply = res::CancelReservationResponse;

    async fn handle(&self, req: res::CancelReservationRequest) -> Result<Self::Reply> {
        let r = self.load(&req.reservation_id, &req.user_id).await?;
        let (r, changed) = self.release(&r.id, ResStatus::Cancelled, false).await?;
        Ok(res::CancelReservationResponse {
            status: r.status as i32,
            released_seats: released_seats(&r, changed),
            error: None,
        })
    }
}
