//! What the inbox tests build the same way: the envelope of a verified payment webhook, as the
//! gateway's intake stores it.
#![allow(dead_code)]

use webhooks::Envelope;

/// Milliseconds since the Unix epoch (the inbox's clock).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The stored form of an approved payment's webhook `id`, received now (the received time only
/// feeds the end-to-end latency).
pub fn envelope(id: &str) -> Envelope {
    let body = format!(
        r#"{{"type":"payment.approved","timestamp":"2026-11-24T08:00:00Z","data":{{"payment_intent_id":"pi_{id}","reservation_id":"r_{id}","amount_cents":5000,"currency":"USD"}}}}"#
    );
    let v = webhooks::Verified {
        id: id.to_owned(),
        timestamp: 0,
    };
    let ev = webhooks::PaymentEvent::parse(body.as_bytes()).unwrap();
    webhooks::envelope_of(
        &v,
        "standard-webhooks",
        Some(&ev),
        body.as_bytes(),
        now_ms(),
    )
}
