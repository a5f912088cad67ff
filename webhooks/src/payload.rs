//! The payment webhook payload, Standard Webhooks' recommended shape, as the payment simulator
//! sends it, and what a verified body can be: a payment outcome ([`Parsed::Payment`]), an event
//! we do not act on ([`Parsed::Ignored`]: acknowledged and counted, never stored) or not a
//! payment event at all ([`PayloadError`]). [`crate::classify`] decides which; parsed only after
//! the signature is verified.
//!
//! Forward compatibility: fields we do not know are ignored here and kept in the stored
//! envelope, whose `payload` is the verified body verbatim; an event type we do not know is
//! [`Parsed::Ignored`], not an error.

use serde::{Deserialize, Serialize};

/// What happened to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentEventType {
    /// The payment went through: the seats are sold.
    #[serde(rename = "payment.approved")]
    Approved,
    /// The payment was declined: the seats are freed.
    #[serde(rename = "payment.failed")]
    Failed,
    /// The payment was cancelled: the seats are freed.
    #[serde(rename = "payment.cancelled")]
    Cancelled,
}

impl PaymentEventType {
    /// Every type, for lookups by wire name.
    pub const ALL: [Self; 3] = [Self::Approved, Self::Failed, Self::Cancelled];

    /// The wire name (`payment.approved`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Approved => "payment.approved",
            Self::Failed => "payment.failed",
            Self::Cancelled => "payment.cancelled",
        }
    }

    /// The type of wire name `name`, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// `data` of a payment webhook. Fields not listed here are ignored (and kept in the stored
/// body), so a sender may add some without breaking us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentData {
    /// The payment intent (`pi_…`).
    pub payment_intent_id: String,
    /// The reservation it pays (`r_…`).
    pub reservation_id: String,
    /// Amount in minor units.
    pub amount_cents: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// Why it failed (`card_declined`), for failed and cancelled payments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
}

/// A payment webhook: `{"type", "timestamp", "data"}` (other top-level fields are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentEvent {
    /// The provider's own event id, when the body carries one (Stripe events do; Standard
    /// Webhooks carry theirs in the `webhook-id` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: PaymentEventType,
    /// When it happened (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: time::OffsetDateTime,
    /// The payment.
    pub data: PaymentData,
}

/// Why a verified body is not a payment event.
#[derive(Debug, thiserror::Error)]
#[error("malformed payment webhook: {0}")]
pub struct PayloadError(pub String);

impl PaymentEvent {
    /// Parses and checks a verified body in our shape: one of our types, RFC 3339 timestamp,
    /// non-empty ids and currency, a non-negative amount. Unknown fields are ignored.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let e: Self = serde_json::from_slice(body).map_err(|e| PayloadError(e.to_string()))?;
        e.check()?;
        Ok(e)
    }

    /// The checks of [`parse`](Self::parse), also applied to events mapped from a provider's.
    pub(crate) fn check(&self) -> Result<(), PayloadError> {
        let d = &self.data;
        if d.payment_intent_id.is_empty() || d.reservation_id.is_empty() {
            return Err(PayloadError(
                "empty payment_intent_id or reservation_id".into(),
            ));
        }
        if d.currency.len() != 3 || !d.currency.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(PayloadError("currency must be a 3-letter code".into()));
        }
        if d.amount_cents < 0 {
            return Err(PayloadError("negative amount_cents".into()));
        }
        Ok(())
    }

    /// `occurred_at` of the envelope: the event's timestamp, RFC 3339.
    pub fn occurred_at(&self) -> String {
        self.timestamp
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    }
}

/// Why a verified event is acknowledged but not acted on (the `reason` label of
/// `webhooks_ignored_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// A type we do not act on (`payment.refunded`, `charge.succeeded`, …).
    UnhandledType,
    /// A Stripe event whose object has no `metadata.reservation_id`: a payment of another
    /// integration on the same Stripe account, not one of our reservations.
    NoReservation,
    /// A Checkout Session completed but not paid yet (a delayed payment method): the outcome
    /// comes later, as `checkout.session.async_payment_succeeded` or `…_failed`.
    NotSettled,
}

impl IgnoreReason {
    /// A short stable label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::UnhandledType => "unhandled_type",
            Self::NoReservation => "no_reservation",
            Self::NotSettled => "not_settled",
        }
    }
}

/// A verified event we acknowledge without storing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The event's `type`, as sent.
    pub event_type: String,
    /// Why it is not acted on.
    pub reason: IgnoreReason,
}

/// What a verified body asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A payment outcome: stored and forwarded.
    Payment(PaymentEvent),
    /// Acknowledged, counted, not stored.
    Ignored(Ignored),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_simulators_shape() {
        let body = br#"{"type":"payment.failed","timestamp":"2026-11-24T08:00:00Z","data":{"payment_intent_id":"pi_1_demo","reservation_id":"r_1_demo","amount_cents":5000,"currency":"USD","failure_code":"card_declined"}}"#;
        let e = PaymentEvent::parse(body).unwrap();
        assert_eq!(e.kind, PaymentEventType::Failed);
        assert_eq!(e.data.failure_code.as_deref(), Some("card_declined"));
        assert_eq!(e.occurred_at(), "2026-11-24T08:00:00Z");
        let ok = br#"{"type":"payment.approved","timestamp":"2026-11-24T08:00:00.5+01:00","data":{"payment_intent_id":"pi","reservation_id":"r","amount_cents":1,"currency":"EUR"}}"#;
        assert_eq!(PaymentEvent::parse(ok).unwrap().data.failure_code, None);
    }
}
