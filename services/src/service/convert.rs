//! Proto views of the model and the checks several services share.

use crate::error::{Result, ServiceError};
use crate::model::*;
use proto::common::v1::{Money, Seat, SeatStatus};
use proto::reservation::v1 as res;

pub(super) fn ts(ms: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

pub(super) fn money(cents: i64, currency: &str) -> Money {
    Money {
        amount_cents: cents,
        currency: currency.to_owned(),
    }
}

pub(super) fn seat(id: &str, price: i64, currency: &str, status: SeatStatus) -> Seat {
    let (row, number) = match SeatRef::parse(id) {
        Ok(s) => (s.row, s.number as i32),
        Err(_) => (String::new(), 0),
    };
    Seat {
        seat_id: id.to_owned(),
        section: row.clone(),
        row,
        number,
        price: Some(money(price, currency)),
        status: status as i32,
    }
}

pub(super) fn seats_of(r: &Reservation, status: SeatStatus) -> Vec<Seat> {
    r.seats
        .iter()
        .map(|s| seat(s, r.price_cents, &r.currency, status))
        .collect()
}

pub(super) fn seat_status_of(st: ResStatus) -> SeatStatus {
    match st {
        ResStatus::Pending => SeatStatus::Held,
        ResStatus::Confirmed => SeatStatus::Sold,
        ResStatus::Cancelled | ResStatus::Expired => SeatStatus::Available,
    }
}

/// The proto view of a reservation at `now_ms`.
pub(super) fn reservation_msg(r: &Reservation, now_ms: u64) -> res::Reservation {
    let st = r.status_at(now_ms);
    res::Reservation {
        reservation_id: r.id.clone(),
        event_id: r.event_id.clone(),
        user_id: r.user_id.clone(),
        status: st as i32,
        seats: seats_of(r, seat_status_of(st)),
        quantity: r.seats.len() as i32,
        total_amount: Some(money(r.amount_cents(), &r.currency)),
        created_at: Some(ts(r.created_ms)),
        hold_expires_at: Some(ts(r.hold_expires_ms)),
        order_id: r.order_id.clone().unwrap_or_default(),
        payment_intent_id: r.payment_intent_id.clone().unwrap_or_default(),
        confirmed_at: r.confirmed_ms.map(ts),
    }
}

pub(super) fn check_reservation_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(ServiceError::InvalidArgument(
            "reservation_id is required".into(),
        ));
    }
    reservation_event(id).map(|_| ())
}

/// Checks that optional `event_id` and `seat_ids` of a request match the reservation.
pub(super) fn check_matches(r: &Reservation, event_id: &str, seat_ids: &[String]) -> Result<()> {
    if !event_id.is_empty() && event_id != r.event_id {
        return Err(ServiceError::InvalidArgument(
            "event_id does not match the reservation".into(),
        ));
    }
    if !seat_ids.is_empty() {
        let mut a = seat_ids.to_vec();
        let mut b = r.seats.clone();
        a.sort();
        b.sort();
        if a != b {
            return Err(ServiceError::InvalidArgument(
                "seat_ids are not the reservation's seats".into(),
            ));
        }
    }
    Ok(())
}

/// The seats a release freed: the reservation's, when it changed it.
pub(super) fn released_seats(r: &Reservation, changed: bool) -> Vec<Seat> {
    if changed {
        seats_of(r, SeatStatus::Available)
    } else {
        Vec::new()
    }
}

/// SUCCESS when the call changed something, ALREADY_PROCESSED when it repeated one that did.
pub(super) fn processing(changed: bool) -> i32 {
    let status = if changed {
        res::ProcessingStatus::Success
    } else {
        res::ProcessingStatus::AlreadyProcessed
    };
    status as i32
}

/// A payment intent id named by a request: present and of a well-formed id.
pub(super) fn check_intent_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(ServiceError::InvalidArgument(
            "payment_intent_id is required".into(),
        ));
    }
    intent_event(id).map(|_| ())
}
