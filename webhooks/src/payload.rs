//! The payment webhook payload, Standard Webhooks' recommended shape, exactly as the payment
//! simulator sends it. Parsed only after the signature is verified.

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
    /// The wire name (`payment.approved`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Approved => "payment.approved",
            Self::Failed => "payment.failed",
            Self::Cancelled => "payment.cancelled",
        }
    }
}

/// `data` of a payment webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// A payment webhook: `{"type", "timestamp", "data"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// Parses and checks a verified body: known type, RFC 3339 timestamp, non-empty ids and
    /// currency, a non-negative amount.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let e: Self = serde_json::from_slice(body).map_err(|e| PayloadError(e.to_string()))?;
        let d = &e.data;
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
        Ok(e)
    }

    /// `occurred_at` of the envelope: the event's timestamp, RFC 3339.
    pub fn occurred_at(&self) -> String {
        self.timestamp
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    }
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

    #[test]
    fn refuses_what_is_not_exactly_that() {
        for bad in [
            &br#"not json"#[..],
            br#"{"type":"payment.refunded","timestamp":"2026-11-24T08:00:00Z","data":{"payment_intent_id":"pi","reservation_id":"r","amount_cents":1,"currency":"USD"}}"#,
            br#"{"type":"payment.approved","timestamp":"yesterday","data":{"payment_intent_id":"pi","reservation_id":"r","amount_cents":1,"currency":"USD"}}"#,
            br#"{"type":"payment.approved","timestamp":"2026-11-24T08:00:00Z","data":{"payment_intent_id":"","reservation_id":"r","amount_cents":1,"currency":"USD"}}"#,
            br#"{"type":"payment.approved","timestamp":"2026-11-24T08:00:00Z","data":{"payment_intent_id":"pi","reservation_id":"r","amount_cents":-1,"currency":"USD"}}"#,
            br#"{"type":"payment.approved","timestamp":"2026-11-24T08:00:00Z","data":{"payment_intent_id":"pi","reservation_id":"r","amount_cents":1,"currency":"DOLLARS"}}"#,
            br#"{"type":"payment.approved","timestamp":"2026-11-24T08:00:00Z","data":{"reservation_id":"r","amount_cents":1,"currency":"USD"}}"#,
            br#"{"type":"payment.approved","timestamp":"2026-11-24T08:00:00Z","data":{"payment_intent_id":"pi","reservation_id":"r","amount_cents":1,"currency":"USD"},"extra":1}"#,
        ] {
            assert!(PaymentEvent::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
