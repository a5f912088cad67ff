//! Reservation updates: what the stores publish after a reservation changes status
//! (PENDING → CONFIRMED, CANCELLED or EXPIRED), from the step that applies the change. The Redis
//! store PUBLISHes each as JSON on [`channel`] (`bk:{event_id}:resv`, the event's hash tag) for
//! the gateways to push to clients; the memory store hands them to in-process receivers
//! ([`crate::MemoryStore::subscribe`]). Delivery is at most once: a listener reads the current
//! state when it starts and treats updates as news of a change.

use crate::model::{ResStatus, Reservation};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The pub/sub channel of an event's reservation updates.
pub fn channel(event_id: &str) -> String {
    format!("bk:{{{event_id}}}:resv")
}

/// The pattern every event's channel matches (what a gateway subscribes to).
pub const CHANNEL_PATTERN: &str = "bk:{*}:resv";

/// One status change, as published (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationUpdate {
    /// The reservation.
    pub reservation_id: String,
    /// Its event.
    pub event_id: String,
    /// The new status: `PENDING`, `CONFIRMED`, `CANCELLED` or `EXPIRED`.
    pub status: String,
    /// The order, once CONFIRMED.
    pub order_id: Option<String>,
    /// The hold's deadline (RFC 3339), when known.
    pub hold_expires_at: Option<String>,
}

/// The wire name of a status.
pub fn status_name(s: ResStatus) -> &'static str {
    match s {
        ResStatus::Pending => "PENDING",
        ResStatus::Confirmed => "CONFIRMED",
        ResStatus::Cancelled => "CANCELLED",
        ResStatus::Expired => "EXPIRED",
    }
}

fn rfc3339(ms: u64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
}

impl ReservationUpdate {
    /// The update that says `r` is now as stored.
    pub fn of(r: &Reservation) -> Self {
        Self {
            reservation_id: r.id.clone(),
            event_id: r.event_id.clone(),
            status: status_name(r.status).to_owned(),
            order_id: r.order_id.clone(),
            hold_expires_at: rfc3339(r.hold_expires_ms),
        }
    }

    /// A status change known only by id (a batch of expired or cancelled holds).
    pub fn status_of(reservation_id: &str, event_id: &str, status: ResStatus) -> Self {
        Self {
            reservation_id: reservation_id.to_owned(),
            event_id: event_id.to_owned(),
            status: status_name(status).to_owned(),
            order_id: None,
            hold_expires_at: None,
        }
    }

    /// The JSON text published.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_carry_the_event_hash_tag() {
        assert_eq!(channel("concert-1"), "bk:{concert-1}:resv");
        let u = ReservationUpdate::status_of("r_x_ev", "ev", ResStatus::Expired);
        let back: ReservationUpdate = serde_json::from_str(&u.to_json()).unwrap();
        assert_eq!(back, u);
        assert!(u.to_json().contains(r#""status":"EXPIRED""#));
    }
}
