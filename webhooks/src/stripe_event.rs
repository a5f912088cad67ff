//! Real Stripe events (<https://docs.stripe.com/api/events/object>) mapped to our payment
//! outcomes. A Stripe event is `{"id": "evt_…", "object": "event", "type", "created", "data":
//! {"object": …}, …}`; the reservation is found through the `metadata.reservation_id` that our
//! integration puts on the PaymentIntent (or on the Checkout Session). Only the fields below are
//! read; everything else is ignored here and kept in the stored body.
//!
//! | Stripe `type` | outcome | `payment_intent_id` | `amount_cents` | `failure_code` |
//! |---|---|---|---|---|
//! | `payment_intent.succeeded` | approved | `object.id` | `amount_received`, else `amount` | none |
//! | `payment_intent.payment_failed` | failed | `object.id` | `amount` | `last_payment_error.code`, else `.decline_code` |
//! | `payment_intent.canceled` | cancelled | `object.id` | `amount` | `cancellation_reason` |
//! | `checkout.session.completed` (`payment_status` `paid` or `no_payment_required`) | approved | `payment_intent`, else the session id | `amount_total` | none |
//! | `checkout.session.async_payment_succeeded` | approved | as above | `amount_total` | none |
//! | `checkout.session.async_payment_failed` | failed | as above | `amount_total` | `async_payment_failed` |
//! | `checkout.session.expired` | cancelled | as above | `amount_total` | `expired` |
//!
//! In every case `reservation_id` is `object.metadata.reservation_id`, `currency` is
//! `object.currency` upper-cased (Stripe sends `usd`), `timestamp` is the event's `created`,
//! and the event `id` is the dedup key. An object without `metadata.reservation_id` is not ours
//! ([`IgnoreReason::NoReservation`]); a completed session that is still `unpaid` is not an
//! outcome yet ([`IgnoreReason::NotSettled`]).
//!
//! `payment_intent_id` is passed on as Stripe sends it: with a real integration that is Stripe's
//! own id (`pi_3MtwBwLkdIwHu7ix28a3tqPa`, or a session's `cs_…`), never one of ours. The worker
//! resolves it to the intent that was created with it as `provider_intent_id`, within the
//! event of the reservation named here (docs/api.md, "Stripe's own ids").

use crate::payload::{
    IgnoreReason, Ignored, Parsed, PayloadError, PaymentData, PaymentEvent, PaymentEventType,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// The Stripe event types mapped to an outcome; any other is acknowledged and ignored.
pub const MAPPED_TYPES: [&str; 7] = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
];

/// The metadata key our payment intents and checkout sessions carry.
pub const RESERVATION_KEY: &str = "reservation_id";

#[derive(Deserialize)]
struct Event<T> {
    id: String,
    created: i64,
    data: Data<T>,
}

#[derive(Deserialize)]
struct Data<T> {
    object: T,
}

type Metadata = serde_json::Map<String, serde_json::Value>;

/// The fields of a PaymentIntent we read (all optional here, so that a missing reservation is
/// told apart from a malformed object).
#[derive(Deserialize)]
struct Intent {
    id: Option<String>,
    amount: Option<i64>,
    amount_received: Option<i64>,
    currency: Option<String>,
    metadata: Option<Metadata>,
    last_payment_error: Option<LastError>,
    cancellation_reason: Option<String>,
}

#[derive(Deserialize)]
struct LastError {
    code: Option<String>,
    decline_code: Option<String>,
}

/// The fields of a Checkout Session we read.
#[derive(Deserialize)]
struct Session {
    id: Option<String>,
    /// An id, or the PaymentIntent itself when the sender expanded it; null until the session
    /// has one (an expired session may never get one).
    payment_intent: Option<IdOrObject>,
    amount_total: Option<i64>,
    currency: Option<String>,
    metadata: Option<Metadata>,
    payment_status: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IdOrObject {
    Id(String),
    Object { id: String },
}

/// The event in `body` and the reservation named in its object's metadata (which `metadata`
/// reads); None when the object names none: it is not ours.
fn ours<T: DeserializeOwned>(
    body: &[u8], metadata: impl FnOnce(&T) -> Option<&Metadata>,
) -> Result<Option<(Event<T>, String)>, PayloadError> {
    let ev: Event<T> =
        serde_json::from_slice(body).map_err(|e| PayloadError(format!("stripe event: {e}")))?;
    let reservation = metadata(&ev.data.object)
        .and_then(|m| m.get(RESERVATION_KEY)?.as_str())
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    Ok(reservation.map(|r| (ev, r)))
}

fn required<T>(v: Option<T>, what: &str) -> Result<T, PayloadError> {
    v.ok_or_else(|| PayloadError(format!("stripe event: missing {what}")))
}

fn outcome(
    event_id: String, created: i64, kind: PaymentEventType, data: PaymentData,
) -> Result<Parsed, PayloadError> {
    let timestamp = time::OffsetDateTime::from_unix_timestamp(created)
        .map_err(|_| PayloadError("stripe event: created is out of range".into()))?;
    let e = PaymentEvent {
        id: Some(event_id),
        kind,
        timestamp,
        data,
    };
    e.check()?;
    Ok(Parsed::Payment(e))
}

fn ignored(kind: &str, reason: IgnoreReason) -> Parsed {
    Parsed::Ignored(Ignored {
        event_type: kind.to_owned(),
        reason,
    })
}

/// Maps the verified Stripe event `body` of type `kind`: None when `kind` is not one of
/// [`MAPPED_TYPES`].
pub(crate) fn map(kind: &str, body: &[u8]) -> Result<Option<Parsed>, PayloadError> {
    use PaymentEventType as T;
    let parsed = match kind {
        "payment_intent.succeeded"
        | "payment_intent.payment_failed"
        | "payment_intent.canceled" => {
            let Some((ev, reservation_id)) = ours(body, |o: &Intent| o.metadata.as_ref())? else {
                return Ok(Some(ignored(kind, IgnoreReason::NoReservation)));
            };
            let pi = ev.data.object;
            let (out, amount, failure_code) = match kind {
                "payment_intent.succeeded" => (T::Approved, pi.amount_received.or(pi.amount), None),
                "payment_intent.payment_failed" => (
                    T::Failed,
                    pi.amount,
                    pi.last_payment_error
                        .and_then(|e| e.code.or(e.decline_code)),
                ),
                _ => (T::Cancelled, pi.amount, pi.cancellation_reason),
            };
            let data = PaymentData {
                payment_intent_id: required(pi.id, "data.object.id")?,
                reservation_id,
                amount_cents: required(amount, "data.object.amount")?,
                currency: required(pi.currency, "data.object.currency")?.to_ascii_uppercase(),
                failure_code,
            };
            outcome(ev.id, ev.created, out, data)?
        }
        "checkout.session.completed"
        | "checkout.session.async_payment_succeeded"
        | "checkout.session.async_payment_failed"
        | "checkout.session.expired" => {
            let Some((ev, reservation_id)) = ours(body, |o: &Session| o.metadata.as_ref())? else {
                return Ok(Some(ignored(kind, IgnoreReason::NoReservation)));
            };
            let cs = ev.data.object;
            let (out, failure_code) = match kind {
                "checkout.session.completed" => {
                    let paid = matches!(
                        cs.payment_status.as_deref(),
                        Some("paid" | "no_payment_required")
                    );
                    if !paid {
                        return Ok(Some(ignored(kind, IgnoreReason::NotSettled)));
                    }
                    (T::Approved, None)
                }
                "checkout.session.async_payment_succeeded" => (T::Approved, None),
                "checkout.session.async_payment_failed" => {
                    (T::Failed, Some("async_payment_failed".to_owned()))
                }
                _ => (T::Cancelled, Some("expired".to_owned())),
            };
            let session_id = required(cs.id, "data.object.id")?;
            let payment_intent_id = match cs.payment_intent {
                Some(IdOrObject::Id(id) | IdOrObject::Object { id }) => id,
                None => session_id,
            };
            let data = PaymentData {
                payment_intent_id,
                reservation_id,
                amount_cents: required(cs.amount_total, "data.object.amount_total")?,
                currency: required(cs.currency, "data.object.currency")?.to_ascii_uppercase(),
                failure_code,
            };
            outcome(ev.id, ev.created, out, data)?
        }
        _ => return Ok(None),
    };
    Ok(Some(parsed))
}
