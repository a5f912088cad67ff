//! The services' data: validated ids, the seat layout, reservations and payment intents.

use crate::error::{Result, ServiceError};
use sha2::{Digest, Sha256};

/// Seats per row: seat `i` (0-based) of an event is row `i / ROW_SEATS`, number
/// `i % ROW_SEATS + 1`.
pub const ROW_SEATS: u64 = 20;

/// Longest accepted user id or idempotency key, in bytes.
pub const MAX_CLIENT_ID_BYTES: usize = 128;

/// Whether `s` is 1 to `max` bytes of `[A-Za-z0-9_-]`: safe in a key and in a hash tag.
fn key_safe(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks an event id: `[A-Za-z0-9_-]{1,64}` (the gateway's rule), safe in a key's hash tag.
pub fn check_event_id(s: &str) -> Result<()> {
    if key_safe(s, 64) {
        Ok(())
    } else {
        Err(ServiceError::InvalidArgument(
            "event_id must match [A-Za-z0-9_-]{1,64}".into(),
        ))
    }
}

/// Checks a required user id (1 to 128 bytes).
pub fn check_user_id(s: &str) -> Result<()> {
    if s.is_empty() || s.len() > MAX_CLIENT_ID_BYTES {
        return Err(ServiceError::InvalidArgument(format!(
            "user_id must be 1 to {MAX_CLIENT_ID_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Checks an optional admission id (at most 128 bytes; empty: none).
pub fn check_admission_id(s: &str) -> Result<()> {
    if s.len() > MAX_CLIENT_ID_BYTES {
        return Err(ServiceError::InvalidArgument(format!(
            "admission_id must be at most {MAX_CLIENT_ID_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Checks a required idempotency key (1 to 128 bytes).
pub fn check_idempotency_key(s: &str) -> Result<()> {
    if s.is_empty() || s.len() > MAX_CLIENT_ID_BYTES {
        return Err(ServiceError::IdempotencyRequired);
    }
    Ok(())
}

/// The label of row `idx` (0-based): A…Z, then AA, AB, … (bijective base 26).
pub fn row_label(mut idx: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (idx % 26) as u8);
        if idx < 26 {
            break;
        }
        idx = idx / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The row index of a label such as `A` or `AB` (1 to 4 capital letters).
pub fn row_index(label: &str) -> Option<u64> {
    if label.is_empty() || label.len() > 4 || !label.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut idx: u64 = 0;
    for b in label.bytes() {
        idx = idx * 26 + u64::from(b - b'A') + 1;
    }
    Some(idx - 1)
}

/// The id of seat `i` (0-based) of an event, e.g. `A-1`, `B-20`.
pub fn seat_id(i: u64) -> String {
    format!("{}-{}", row_label(i / ROW_SEATS), i % ROW_SEATS + 1)
}

/// A seat's sort score: `row * 10_000 + number`; a section (row) is a contiguous score range.
pub fn seat_score(row: u64, number: u64) -> u64 {
    row * 10_000 + number
}

/// The score range `[min, max]` of a section (row label).
pub fn section_range(section: &str) -> Result<(u64, u64)> {
    let row = row_index(section).ok_or_else(|| {
        ServiceError::InvalidArgument("section must be a row label such as \"A\" or \"AB\"".into())
    })?;
    Ok((seat_score(row, 0), seat_score(row, 9_999)))
}

/// A parsed seat id: its row label and number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRef {
    /// The row (and section) label.
    pub row: String,
    /// The seat number within the row, from 1.
    pub number: u64,
}

impl SeatRef {
    /// Parses `ROW-NUMBER` (`[A-Z]{1,4}-[1-9][0-9]{0,3}`).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            ServiceError::InvalidArgument(format!(
                "seat id '{}' is not ROW-NUMBER",
                s.escape_debug()
            ))
        };
        let (row, num) = s.split_once('-').ok_or_else(bad)?;
        row_index(row).ok_or_else(bad)?;
        if num.is_empty()
            || num.len() > 4
            || num.starts_with('0')
            || !num.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let number = num.parse().map_err(|_| bad())?;
        Ok(Self {
            row: row.to_owned(),
            number,
        })
    }

    /// The seat's sort score.
    pub fn score(&self) -> u64 {
        seat_score(row_index(&self.row).unwrap_or(0), self.number)
    }
}

/// A reservation's lifecycle state; the numbers are `reservation.v1.ReservationStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResStatus {
    /// Seats held, awaiting payment.
    Pending = 1,
    /// Paid; the seats are sold.
    Confirmed = 2,
    /// Payment failed or cancelled; the seats are free again.
    Cancelled = 3,
    /// The hold ran out unpaid; the seats are free again.
    Expired = 4,
}

/// `from_code`, the inverse of `as i64`, for an enum whose variants are their protocol numbers;
/// `0 => V` names the variant that an unset (0) field means, where there is one.
macro_rules! from_code {
    ($t:ident: $($v:ident),+ $(; 0 => $unset:ident)?) => {
        impl $t {
            /// The variant with this number (None for an unknown one).
            pub fn from_code(c: i64) -> Option<Self> {
                $(if c == 0 {
                    return Some(Self::$unset);
                })?
                [$(Self::$v),+].into_iter().find(|v| *v as i64 == c)
            }
        }
    };
}

from_code!(ResStatus: Pending, Confirmed, Cancelled, Expired);

/// A reservation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// `r_<32 hex>_<event_id>`.
    pub id: String,
    /// The event.
    pub event_id: String,
    /// Who holds it.
    pub user_id: String,
    /// Where it stands (as stored: a PENDING hold past its deadline reads EXPIRED via
    /// [`Reservation::status_at`]).
    pub status: ResStatus,
    /// The seats, in the order they were held.
    pub seats: Vec<String>,
    /// Price of one seat, in cents.
    pub price_cents: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// Creation time, Unix ms.
    pub created_ms: u64,
    /// Hold deadline, Unix ms.
    pub hold_expires_ms: u64,
    /// Set once confirmed.
    pub order_id: Option<String>,
    /// The payment that confirmed it.
    pub payment_intent_id: Option<String>,
    /// Confirmation time, Unix ms.
    pub confirmed_ms: Option<u64>,
}

impl Reservation {
    /// The total amount in cents.
    pub fn amount_cents(&self) -> i64 {
        self.price_cents * self.seats.len() as i64
    }

    /// The status at `now_ms`: a pending hold past its deadline is expired even before the
    /// worker released it.
    pub fn status_at(&self, now_ms: u64) -> ResStatus {
        if self.status == ResStatus::Pending && now_ms >= self.hold_expires_ms {
            ResStatus::Expired
        } else {
            self.status
        }
    }
}

/// A new reservation id for `event`.
pub fn new_reservation_id(event: &str) -> String {
    format!("r_{}_{event}", uuid::Uuid::new_v4().simple())
}

/// A new payment intent id for `event`.
pub fn new_intent_id(event: &str) -> String {
    format!("pi_{}_{event}", uuid::Uuid::new_v4().simple())
}

/// A new order id.
pub fn new_order_id() -> String {
    format!("ord_{}", uuid::Uuid::new_v4().simple())
}

fn event_of(id: &str, prefix: &str, what: &str) -> Result<String> {
    let bad = || ServiceError::InvalidArgument(format!("{what} is malformed"));
    let rest = id.strip_prefix(prefix).ok_or_else(bad)?;
    if rest.len() < 34 || !rest.is_char_boundary(32) {
        return Err(bad());
    }
    let (hex, ev) = rest.split_at(32);
    let ev = ev.strip_prefix('_').ok_or_else(bad)?;
    if !hex
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(bad());
    }
    check_event_id(ev).map_err(|_| bad())?;
    Ok(ev.to_owned())
}

/// The event id embedded in a reservation id (INVALID_ARGUMENT when malformed).
pub fn reservation_event(id: &str) -> Result<String> {
    event_of(id, "r_", "reservation_id")
}

/// The event id embedded in a payment intent id (INVALID_ARGUMENT when malformed).
pub fn intent_event(id: &str) -> Result<String> {
    event_of(id, "pi_", "payment_intent_id")
}

/// Checks a payment provider's own id for an intent (Stripe's `pi_3MtwBw…`, `cs_…`):
/// `[A-Za-z0-9_-]{1,255}`, and not of our intents' form, so that an id names one kind of intent.
pub fn check_provider_intent_id(id: &str) -> Result<()> {
    if key_safe(id, 255) && intent_event(id).is_err() {
        return Ok(());
    }
    Err(ServiceError::InvalidArgument(
        "provider_intent_id must match [A-Za-z0-9_-]{1,255} and not be one of our ids".into(),
    ))
}

/// A short, key-safe digest of client-chosen strings (idempotency keys, fingerprints).
pub fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A payment scenario of the simulator; the numbers are `payment.v1.PaymentScenario`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Approves after 2–5 s.
    Approve = 1,
    /// Fails after 1–3 s.
    Fail = 2,
    /// Approves after 10–30 s.
    Delay = 3,
    /// Approves 70 % of the time, else fails, after 1–5 s.
    Random = 4,
    /// Never reports; the intent reads EXPIRED after its deadline.
    Timeout = 5,
}

// 0, unspecified, is APPROVE.
from_code!(Scenario: Approve, Fail, Delay, Random, Timeout; 0 => Approve);

/// Where a payment intent stands; the numbers are `payment.v1.PaymentStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentStatus {
    /// Awaiting the outcome.
    Pending = 1,
    /// Approved.
    Approved = 2,
    /// Failed.
    Failed = 3,
    /// Cancelled.
    Cancelled = 4,
}

from_code!(IntentStatus: Pending, Approved, Failed, Cancelled);

/// A payment intent as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// `pi_<32 hex>_<event_id>`.
    pub id: String,
    /// The reservation it pays.
    pub reservation_id: String,
    /// The amount in cents.
    pub amount_cents: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// The simulated outcome.
    pub scenario: Scenario,
    /// Where it stands.
    pub status: IntentStatus,
    /// Why it failed, when it did.
    pub failure_code: Option<String>,
    /// Creation time, Unix ms.
    pub created_ms: u64,
    /// Deadline (the reservation's hold expiry), Unix ms.
    pub expires_ms: u64,
    /// The payment provider's own id for it (Stripe's `pi_…`) when it was created at the
    /// provider, which then settles it (nothing simulated); None for a simulated intent.
    pub provider_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_layout_round_trips() {
        assert_eq!(seat_id(0), "A-1");
        assert_eq!(seat_id(19), "A-20");
        assert_eq!(seat_id(20), "B-1");
        assert_eq!(row_label(25), "Z");
        assert_eq!(row_label(26), "AA");
        // The largest event (1,000,000 seats) still has parseable seat ids.
        assert_eq!(
            SeatRef::parse(&seat_id(999_999)).ok().map(|s| s.number),
            Some(20)
        );
        for i in [0u64, 25, 26, 27, 701, 702, 5000, 18_278, 49_999] {
            assert_eq!(row_index(&row_label(i)), Some(i));
        }
        let s = SeatRef::parse("AB-7").unwrap();
        assert_eq!(s.score(), seat_score(27, 7));
        for bad in [
            "", "A", "A-0", "a-1", "A-01", "A-12345", "ABCDE-1", "A-1-2", "A-x",
        ] {
            assert!(SeatRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn codes_read_back_as_their_variant() {
        for s in [
            ResStatus::Pending,
            ResStatus::Confirmed,
            ResStatus::Cancelled,
            ResStatus::Expired,
        ] {
            assert_eq!(ResStatus::from_code(s as i64), Some(s));
        }
        assert_eq!(IntentStatus::from_code(3), Some(IntentStatus::Failed));
        assert_eq!(Scenario::from_code(5), Some(Scenario::Timeout));
        // An unset scenario is APPROVE; an unset status is no status.
        assert_eq!(Scenario::from_code(0), Some(Scenario::Approve));
        assert_eq!(ResStatus::from_code(0), None);
        assert_eq!(IntentStatus::from_code(5), None);
        assert_eq!(Scenario::from_code(-1), None);
    }

    #[test]
    fn ids_embed_their_event() {
        let id = new_reservation_id("spring_sale-1");
        assert_eq!(reservation_event(&id).unwrap(), "spring_sale-1");
        assert!(reservation_event("r_xyz_ev").is_err());
        assert!(reservation_event(&id.replace("r_", "pi_")).is_err());
        assert!(intent_event(&new_intent_id("e")).is_ok());
        assert!(reservation_event("r_ééééééééééééééééééééééééééééééééé_e").is_err());
    }
}
