//! Sale invariants: no seat sold twice, every payment settled.

use super::Check;
use serde_json::json;
use std::collections::HashSet;

/// A reservation as the backends report it after the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// `r_…`.
    pub reservation_id: String,
    /// `CONFIRMED`, `CANCELLED`, `PENDING`, `EXPIRED`.
    pub status: String,
    /// `(seat_id, seat status)`: `SOLD` for a confirmed reservation.
    pub seats: Vec<(String, String)>,
}

/// No oversell: every confirmed order has at least one seat, every one of them `SOLD`; no seat
/// belongs to two confirmed orders; and no more seats were sold than were free when the run
/// began (`free_at_start`, from the inventory service).
pub fn no_oversell(orders: &[Order], free_at_start: u64) -> Check {
    let mut seen = HashSet::new();
    let (mut sold, mut double_sold, mut seatless, mut not_sold_status) = (0u64, 0u64, 0u64, 0u64);
    for o in orders.iter().filter(|o| o.status == "CONFIRMED") {
        if o.seats.is_empty() {
            seatless += 1;
        }
        for (seat, st) in &o.seats {
            sold += 1;
            if !seen.insert(seat.as_str()) {
                double_sold += 1;
            }
            if st != "SOLD" {
                not_sold_status += 1;
            }
        }
    }
    let confirmed = orders.iter().filter(|o| o.status == "CONFIRMED").count();
    Check::new(
        "no_oversell",
        double_sold == 0 && seatless == 0 && not_sold_status == 0 && sold <= free_at_start,
        json!({
            "confirmed_orders": confirmed,
            "seats_sold": sold,
            "free_at_start": free_at_start,
            "seats_in_two_orders": double_sold,
            "confirmed_without_seat": seatless,
            "confirmed_seat_not_sold": not_sold_status,
        }),
    )
}

/// Every reservation that got a payment intent ends `CONFIRMED` or `CANCELLED`.
pub fn payments_settled(orders: &[Order]) -> Check {
    let count = |s: &str| orders.iter().filter(|o| o.status == s).count();
    let unsettled: Vec<&str> = orders
        .iter()
        .filter(|o| o.status != "CONFIRMED" && o.status != "CANCELLED")
        .map(|o| o.reservation_id.as_str())
        .take(5)
        .collect();
    Check::new(
        "payments_settled",
        unsettled.is_empty(),
        json!({
            "payments": orders.len(),
            "confirmed": count("CONFIRMED"),
            "cancelled": count("CANCELLED"),
            "pending": count("PENDING"),
            "expired": count("EXPIRED"),
            "unsettled_examples": unsettled,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str, status: &str, seats: &[&str]) -> Order {
        Order {
            reservation_id: id.into(),
            status: status.into(),
            seats: seats
                .iter()
                .map(|s| {
                    let st = if status == "CONFIRMED" {
                        "SOLD"
                    } else {
                        "AVAILABLE"
                    };
                    (s.to_string(), st.to_string())
                })
                .collect(),
        }
    }

    #[test]
    fn oversell_is_caught() {
        let good = [
            order("r1", "CONFIRMED", &["A-1"]),
            order("r2", "CONFIRMED", &["A-2"]),
            order("r3", "CANCELLED", &["A-1"]),
        ];
        assert!(no_oversell(&good, 2).pass);
        // More sold than was free.
        assert!(!no_oversell(&good, 1).pass);
        // One seat in two confirmed orders.
        let twice = [
            order("r1", "CONFIRMED", &["A-1"]),
            order("r2", "CONFIRMED", &["A-1"]),
        ];
        let c = no_oversell(&twice, 10);
        assert!(!c.pass);
        assert_eq!(c.detail["seats_in_two_orders"], 1);
        // A confirmed order without a seat, or with a seat not sold.
        assert!(!no_oversell(&[order("r1", "CONFIRMED", &[])], 10).pass);
        let mut held = order("r1", "CONFIRMED", &["A-1"]);
        held.seats[0].1 = "HELD".into();
        assert!(!no_oversell(&[held], 10).pass);
    }

    #[test]
    fn unsettled_payments_fail() {
        let ok = [
            order("r1", "CONFIRMED", &["A-1"]),
            order("r2", "CANCELLED", &[]),
        ];
        assert!(payments_settled(&ok).pass);
        let pending = [
            order("r1", "CONFIRMED", &["A-1"]),
            order("r2", "PENDING", &[]),
        ];
        let c = payments_settled(&pending);
        assert!(!c.pass);
        assert_eq!(c.detail["unsettled_examples"][0], "r2");
    }
}
