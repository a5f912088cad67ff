//! Inventory: availability, and committing or releasing a hold.

use super::convert::{check_matches, released_seats, seat, seats_of};
use super::{Backends, Handle, MAX_LISTED_SEATS};
use crate::error::{Result, ServiceError};
use crate::model::*;
use crate::store::SeatState;
use proto::common::v1::{Seat, SeatStatus};
use proto::reservation::v1 as res;

impl Handle<res::CheckAvailabilityRequest> for Backends {
    type Reply = res::CheckAvailabilityResponse;

    async fn handle(&self, req: res::CheckAvailabilityRequest) -> Result<Self::Reply> {
        check_event_id(&req.event_id)?;
        if req.quantity < 0 {
            return Err(ServiceError::InvalidArgument(
                "quantity must not be negative".into(),
            ));
        }
        let info = self
            .0
            .store
            .event(&req.event_id)
            .await?
            .ok_or_else(|| ServiceError::EventNotFound(req.event_id.clone()))?;
        let range = if req.section.is_empty() {
            None
        } else {
            Some(section_range(&req.section)?)
        };
        let (remaining, first) = self
            .0
            .store
            .free_seats(
                &req.event_id,
                range,
                (req.quantity as usize).min(MAX_LISTED_SEATS),
            )
            .await?;
        let mut available_seats: Vec<Seat> = first
            .iter()
            .map(|s| seat(s, info.price_cents, &info.currency, SeatStatus::Available))
            .collect();
        let mut unavailable = Vec::new();
        let available = if req.seat_ids.is_empty() {
            remaining >= u64::from(req.quantity.max(1) as u32)
        } else {
            if req.seat_ids.len() > MAX_LISTED_SEATS {
                return Err(ServiceError::InvalidArgument(format!(
                    "at most {MAX_LISTED_SEATS} seat_ids"
                )));
            }
            for s in &req.seat_ids {
                SeatRef::parse(s)?;
            }
            let states = self
                .0
                .store
                .seat_states(&req.event_id, &req.seat_ids)
                .await?;
            available_seats.clear();
            for (s, st) in req.seat_ids.iter().zip(states) {
                if st == Some(SeatState::Free) {
                    available_seats.push(seat(
                        s,
                        info.price_cents,
                        &info.currency,
                        SeatStatus::Available,
                    ));
                } else {
                    unavailable.push(s.clone());
                }
            }
            unavailable.is_empty()
        };
        Ok(res::CheckAvailabilityResponse {
            available,
            available_seats,
            unavailable_seat_ids: unavailable,
            remaining_in_section: remaining.min(i32::MAX as u64) as i32,
            error: None,
        })
    }
}

impl Handle<res::CommitReservationRequest> for Backends {
    type Reply = res::CommitReservationResponse;

    async fn handle(&self, req: res::CommitReservationRequest) -> Result<Self::Reply> {
        if req.payment_intent_id.is_empty() {
            return Err(ServiceError::InvalidArgument(
                "payment_intent_id is required".into(),
            ));
        }
        let r = self.load(&req.reservation_id, &req.user_id).await?;
        check_matches(&r, &req.event_id, &req.seat_ids)?;
        if req.quantity != 0 && req.quantity as usize != r.seats.len() {
            return Err(ServiceError::InvalidArgument(
                "quantity does not match the reservation".into(),
            ));
        }
        let (r, _) = self.confirm(&r.id, &req.payment_intent_id).await?;
        Ok(res::CommitReservationResponse {
            order_id: r.order_id.clone().unwrap_or_default(),
            committed_seats: seats_of(&r, SeatStatus::Sold),
            status: r.status as i32,
            error: None,
        })
    }
}

impl Handle<res::ReleaseHoldRequest> for Backends {
    type Reply = res::ReleaseHoldResponse;

    /// The client's release: CANCELLED, whether or not the hold has run out.
    async fn handle(&self, req: res::ReleaseHoldRequest) -> Result<Self::Reply> {
        let (id, seats) = (&req.reservation_id, &req.seat_ids);
        let cancel = self.release_checked(id, &req.event_id, seats, ResStatus::Cancelled, false);
        let (r, changed) = cancel.await?;
        Ok(res::ReleaseHoldResponse {
            released_seats: released_seats(&r, changed),
            status: r.status as i32,
            error: None,
        })
    }
}
