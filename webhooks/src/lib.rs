//! Signed payment webhooks, from raw bytes to the receiving service, knowing nothing of HTTP
//! frameworks:
//!
//! - [`scheme`]: signature schemes ([`StandardWebhooks`] with HMAC `v1` and Ed25519 `v1a`,
//!   [`Stripe`]) behind the small [`Scheme`] trait, checked over the raw body (HMACs in
//!   constant time) with a 5-minute window;
//! - [`payload`]: the payment event, parsed only after verification;
//! - [`classify`]: [`parse_verified`], which tells a payment outcome (ours, or a mapped Stripe
//!   event) from an event we acknowledge and ignore;
//! - [`stripe_event`]: real Stripe events mapped to our payment outcomes;
//! - [`inbox`]: the durable inbox in Redis (dedup of the webhook id and append to a stream in
//!   one Lua script), the consumer group's reads and claims, and the dead-letter stream with
//!   list, get, retry and resolve;
//! - [`consumer`]: the loop that forwards entries, retrying with exponential backoff and full
//!   jitter, then dead-lettering;
//! - [`metrics`]: counters an exporter reads.

pub mod classify;
pub mod consumer;
pub mod envelope;
pub mod error;
pub mod inbox;
pub mod metrics;
pub mod payload;
pub mod scheme;
pub mod stripe_event;

pub use classify::parse_verified;
pub use consumer::{
    Clock, Consumer, ConsumerConfig, Forward, ForwardError, ForwardFn, RetryPolicy, DEFAULT_WINDOW,
};
pub use envelope::{Envelope, SCHEMA_VERSION};
pub use error::{InboxError, Result};
pub use inbox::{Appended, DeadLetter, Inbox, InboxOptions, Retried};
pub use metrics::Metrics;
pub use payload::{IgnoreReason, Ignored, Parsed, PaymentData, PaymentEvent, PaymentEventType};
pub use scheme::{Ed25519Signer, Headers, Scheme, StandardWebhooks, Stripe, Verified, VerifyError};

/// Builds the envelope of a verified webhook: `payload` is the verified body; `event_type` and
/// `occurred_at` come from the parsed event when there is one.
pub fn envelope_of(
    verified: &Verified, source: &str, event: Option<&PaymentEvent>, body: &[u8], received_ms: i64,
) -> Envelope {
    Envelope {
        event_id: verified.id.clone(),
        event_type: event.map_or("invalid", |e| e.kind.as_str()).to_owned(),
        source: source.to_owned(),
        occurred_at: event.map(PaymentEvent::occurred_at).unwrap_or_default(),
        received_at: envelope::rfc3339_ms(received_ms),
        received_ms,
        schema_version: SCHEMA_VERSION,
        payload: String::from_utf8_lossy(body).into_owned(),
    }
}
