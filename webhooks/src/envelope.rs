//! The event envelope stored in the inbox (after `event-contracts.md`): `event_id` (the webhook
//! id), `event_type`, `source`, `occurred_at`, `received_at`, `schema_version` and `payload`
//! (the verified body, verbatim), stored as the fields of one stream entry.

use serde::{Deserialize, Serialize};

/// The envelope's schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// One verified webhook, as stored and forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The provider's message id (the dedup key).
    pub event_id: String,
    /// The payment outcome (`payment.approved`, …): the payload's `type`, or the outcome a
    /// provider's event maps to (a Stripe `payment_intent.succeeded` is `payment.approved`;
    /// its own type stays in `payload`); `invalid` for a malformed payload.
    pub event_type: String,
    /// The scheme that verified it (`standard-webhooks`, `stripe`).
    pub source: String,
    /// When it happened, per the payload (RFC 3339); empty when unknown.
    pub occurred_at: String,
    /// When this gateway accepted it (RFC 3339, ms precision).
    pub received_at: String,
    /// Milliseconds since the Unix epoch of `received_at` (for the end-to-end latency).
    pub received_ms: i64,
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The body as received, fields we do not read included (UTF-8; invalid sequences
    /// replaced only in malformed dead letters).
    pub payload: String,
}

impl Envelope {
    /// The stream entry's field/value pairs.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("event_id", self.event_id.clone()),
            ("event_type", self.event_type.clone()),
            ("source", self.source.clone()),
            ("occurred_at", self.occurred_at.clone()),
            ("received_at", self.received_at.clone()),
            ("received_ms", self.received_ms.to_string()),
            ("schema_version", self.schema_version.to_string()),
            ("payload", self.payload.clone()),
        ]
    }

    /// Rebuilds an envelope from an entry's fields; None when one is missing.
    pub fn from_fields(fields: &[(String, String)]) -> Option<Self> {
        let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
        Some(Self {
            event_id: get("event_id")?,
            event_type: get("event_type")?,
            source: get("source")?,
            occurred_at: get("occurred_at").unwrap_or_default(),
            received_at: get("received_at").unwrap_or_default(),
            received_ms: get("received_ms").and_then(|v| v.parse().ok()).unwrap_or(0),
            schema_version: get("schema_version")
                .and_then(|v| v.parse().ok())
                .unwrap_or(SCHEMA_VERSION),
            payload: get("payload")?,
        })
    }
}

/// RFC 3339 with milliseconds of `ms` since the epoch.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let e = Envelope {
            event_id: "msg_1".into(),
            event_type: "payment.approved".into(),
            source: "standard-webhooks".into(),
            occurred_at: "2026-11-24T08:00:00Z".into(),
            received_at: rfc3339_ms(1_795_000_000_123),
            received_ms: 1_795_000_000_123,
            schema_version: SCHEMA_VERSION,
            payload: "{}".into(),
        };
        let fields: Vec<(String, String)> = e
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(Envelope::from_fields(&fields), Some(e.clone()));
        assert!(e.received_at.ends_with(".123Z"), "{}", e.received_at);
        assert_eq!(Envelope::from_fields(&fields[1..]), None);
    }
}
