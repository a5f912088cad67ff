//! What a verified webhook body asks of us ([`parse_verified`]): our own payment shape
//! ([`crate::payload`]) on any route, a real Stripe event ([`crate::stripe_event`]) on the
//! Stripe route, or an event we acknowledge and ignore. Kept apart from both so that neither
//! needs the other.

use crate::payload::{IgnoreReason, Ignored, Parsed, PayloadError, PaymentEvent, PaymentEventType};
use serde::Deserialize;

/// Decides what the verified `body` that scheme `source` (`standard-webhooks`, `stripe`; see
/// [`crate::Scheme::name`]) accepted asks of us:
///
/// - not JSON, not an object, or no string `type`: [`PayloadError`];
/// - one of our types (`payment.approved`, …) on any route: our shape, checked as by
///   [`PaymentEvent::parse`] (a bad one is a [`PayloadError`]);
/// - on `stripe`, a Stripe event type we map (see [`crate::stripe_event`]): the mapped outcome,
///   or [`Parsed::Ignored`] when it is not one of our reservations or not settled;
/// - any other type: [`Parsed::Ignored`] ([`IgnoreReason::UnhandledType`]).
pub fn parse_verified(source: &str, body: &[u8]) -> Result<Parsed, PayloadError> {
    // A first pass reads only `type` (serde skips the rest, still checking it is valid JSON);
    // the typed pass below reads the body again. Bodies are at most 256 KiB and this runs once
    // per delivery, so two passes cost less than building a `serde_json::Value` tree.
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    let head: Head = serde_json::from_slice(body).map_err(|e| PayloadError(e.to_string()))?;
    let kind = head
        .kind
        .ok_or_else(|| PayloadError("missing field `type`".into()))?;
    if PaymentEventType::from_name(&kind).is_some() {
        return PaymentEvent::parse(body).map(Parsed::Payment);
    }
    if source == "stripe" {
        if let Some(parsed) = crate::stripe_event::map(&kind, body)? {
            return Ok(parsed);
        }
    }
    Ok(Parsed::Ignored(Ignored {
        event_type: kind,
        reason: IgnoreReason::UnhandledType,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_we_do_not_know_are_ignored() {
        let body = br#"{"type":"payment.approved","timestamp":"2026-11-24T08:00:00Z","version":2,"data":{"payment_intent_id":"pi","reservation_id":"r","amount_cents":1,"currency":"USD","note":"gift","card":{"last4":"4242"}}}"#;
        let e = PaymentEvent::parse(body).unwrap();
        assert_eq!(e.data.reservation_id, "r");
        for source in ["standard-webhooks", "stripe"] {
            assert_eq!(
                parse_verified(source, body).unwrap(),
                Parsed::Payment(e.clone())
            );
        }
    }

    #[test]
    fn types_we_do_not_act_on_are_ignored_not_errors() {
        let refund = br#"{"type":"payment.refunded","timestamp":"2026-11-24T08:00:00Z","data":{}}"#;
        let stripe_type =
            br#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{}}}"#;
        for (source, body, kind) in [
            ("standard-webhooks", &refund[..], "payment.refunded"),
            ("stripe", &refund[..], "payment.refunded"),
            // Stripe's types mean nothing on the Standard Webhooks route.
            (
                "standard-webhooks",
                &stripe_type[..],
                "payment_intent.succeeded",
            ),
            (
                "stripe",
                br#"{"id":"evt_2","type":"charge.succeeded"}"#,
                "charge.succeeded",
            ),
        ] {
            assert_eq!(
                parse_verified(source, body).unwrap(),
                Parsed::Ignored(Ignored {
                    event_type: kind.into(),
                    reason: IgnoreReason::UnhandledType
                }),
                "{source} {}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn refuses_what_is_not_a_payment_event() {
        for bad in [
            &br#"not json"#[..],
            br#"[1,2]"#,
            br#"{"data":{}}"#,
            br#"{"type":7}"#,
            br#"{"type":"payment.approved","timestamp":"yesterday","data":{"payment_intent_id":"pi","reservation_id":"r","amount_cents":1,"currency":"USD"}}"#,
            br#"{"type":"payment.approved","timestamp":"2026-11-24T08:00:00Z","data":{"payment_intent_id":"","reservation_id":"r","amount_cents":1,"currency":"USD"}}"#,
            br#"{"type":"payment.approved","timestamp":"2026-11-24T08:00:00Z","data":{"payment_intent_id":"pi","reservation_id":"r","amount_cents":-1,"currency":"USD"}}"#,
            br#"{"type":"payment.approved","timestamp":"2026-11-24T08:00:00Z","data":{"payment_intent_id":"pi","reservation_id":"r","amount_cents":1,"currency":"DOLLARS"}}"#,
            br#"{"type":"payment.approved","timestamp":"2026-11-24T08:00:00Z","data":{"reservation_id":"r","amount_cents":1,"currency":"USD"}}"#,
            br#"{"type":"payment.approved","timestamp":"2026-11-24T08:00:00Z","data":{}}"#,
        ] {
            for source in ["standard-webhooks", "stripe"] {
                assert!(
                    parse_verified(source, bad).is_err(),
                    "{source} {}",
                    String::from_utf8_lossy(bad)
                );
            }
        }
        // Ours but of an unknown type: PaymentEvent::parse itself still refuses it.
        assert!(PaymentEvent::parse(br#"{"type":"payment.refunded","timestamp":"2026-11-24T08:00:00Z","data":{"payment_intent_id":"pi","reservation_id":"r","amount_cents":1,"currency":"USD"}}"#).is_err());
    }
}
