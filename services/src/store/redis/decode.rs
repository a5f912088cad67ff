//! Decoding the Lua scripts' replies: `{code, changed, field, value, ...}` into the model, and a
//! script's non-zero code into its error.

use crate::error::{Result, ServiceError};
use crate::model::*;
use redis_layer::Value;
use std::collections::HashMap;

pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        Value::Integer(i) => Some(i.to_string()),
        Value::Double(d) => Some(d.to_string()),
        _ => None,
    }
}

pub(super) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        other => text(other).and_then(|s| s.parse().ok()),
    }
}

pub(super) fn protocol(what: &str, r: &[Value]) -> ServiceError {
    ServiceError::Internal(format!("unexpected {what} reply {r:?}"))
}

/// Splits `{code, changed, field, value, ...}`: Ok((fields, changed)) when code is 0, else
/// Err((code, the rest as text)).
pub(super) type Split = std::result::Result<(HashMap<String, String>, bool), (i64, Vec<String>)>;

pub(super) fn split_reply(what: &str, r: &[Value]) -> Result<Split> {
    let code = r.first().and_then(int).ok_or_else(|| protocol(what, r))?;
    if code != 0 {
        return Ok(Err((code, r[1..].iter().filter_map(text).collect())));
    }
    let changed = r.get(1).and_then(int).ok_or_else(|| protocol(what, r))? == 1;
    let mut m = HashMap::new();
    for pair in r[2..].chunks(2) {
        if let [k, v] = pair {
            if let (Some(k), Some(v)) = (text(k), text(v)) {
                m.insert(k, v);
            }
        }
    }
    Ok(Ok((m, changed)))
}

pub(super) fn num(m: &HashMap<String, String>, k: &str) -> Result<i64> {
    m.get(k)
        .and_then(|v| v.parse::<f64>().ok())
        .map(|f| f as i64)
        .ok_or_else(|| {
            ServiceError::Internal(format!("stored field '{k}' missing or not a number"))
        })
}

pub(super) fn opt(m: &HashMap<String, String>, k: &str) -> Option<String> {
    m.get(k).filter(|v| !v.is_empty()).cloned()
}

pub(super) fn decode_reservation(m: &HashMap<String, String>) -> Result<Reservation> {
    let status = ResStatus::from_code(num(m, "st")?)
        .ok_or_else(|| ServiceError::Internal("stored reservation status".into()))?;
    Ok(Reservation {
        id: opt(m, "id").unwrap_or_default(),
        event_id: opt(m, "ev").unwrap_or_default(),
        user_id: opt(m, "user").unwrap_or_default(),
        status,
        seats: m
            .get("seats")
            .map(|s| {
                s.split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        price_cents: num(m, "price")?,
        currency: opt(m, "cur").unwrap_or_default(),
        created_ms: num(m, "cat")? as u64,
        hold_expires_ms: num(m, "exp")? as u64,
        order_id: opt(m, "oid"),
        payment_intent_id: opt(m, "pid"),
        confirmed_ms: num(m, "cfat").ok().map(|v| v as u64),
    })
}

pub(super) fn decode_intent(m: &HashMap<String, String>) -> Result<Intent> {
    Ok(Intent {
        id: opt(m, "id").unwrap_or_default(),
        reservation_id: opt(m, "res").unwrap_or_default(),
        amount_cents: num(m, "amt")?,
        currency: opt(m, "cur").unwrap_or_default(),
        scenario: Scenario::from_code(num(m, "scn")?)
            .ok_or_else(|| ServiceError::Internal("stored scenario".into()))?,
        status: IntentStatus::from_code(num(m, "st")?)
            .ok_or_else(|| ServiceError::Internal("stored intent status".into()))?,
        failure_code: opt(m, "fc"),
        created_ms: num(m, "cat")? as u64,
        expires_ms: num(m, "exp")? as u64,
        provider_id: opt(m, "pid"),
    })
}

/// The error of a non-zero script code.
pub(super) fn script_error(code: i64, rest: Vec<String>, id: &str, event: &str) -> ServiceError {
    match code {
        -1 => ServiceError::EventNotFound(event.to_owned()),
        -2 => ServiceError::IdempotencyConflict,
        -3 => ServiceError::SeatsUnavailable(rest),
        -4 => ServiceError::ReservationNotFound(id.to_owned()),
        -5 => ServiceError::ReservationExpired(id.to_owned()),
        -6 => {
            let st = rest
                .first()
                .and_then(|s| s.parse().ok())
                .and_then(ResStatus::from_code);
            match st {
                Some(ResStatus::Confirmed) => {
                    ServiceError::FailedPrecondition("reservation is already confirmed".into())
                }
                Some(s) => {
                    ServiceError::FailedPrecondition(format!("reservation is {s:?}, not pending"))
                }
                None => ServiceError::FailedPrecondition("reservation is not pending".into()),
            }
        }
        -7 => ServiceError::FailedPrecondition("the hold has not expired yet".into()),
        -8 => ServiceError::HoldLimit(rest.first().and_then(|s| s.parse().ok()).unwrap_or(0)),
        -9 => super::super::taken_provider_id(),
        c => ServiceError::Internal(format!("script answered {c}")),
    }
}
