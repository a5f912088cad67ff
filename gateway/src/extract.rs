//! Request extractors whose every rejection is an [`ApiError`], so bad input always gets the
//! JSON error body.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

/// A JSON body: over the size limit is 413, anything that does not parse is 400.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(format!("could not read the body: {rejection}"))
            }
        })?;
        match serde_json::from_slice(&bytes) {
            Ok(v) => Ok(ApiJson(v)),
            Err(e) => {
                // JSON does not tell 4 from 4.0, and JSON Schema's `integer` takes both: a
                // whole number written with a fraction is read as the integer it is.
                let mut value: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|_| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
                if !whole_floats_to_integers(&mut value) {
                    return Err(ApiError::BadRequest(format!("invalid JSON body: {e}")));
                }
                T::deserialize(value)
                    .map(ApiJson)
                    .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
            }
        }
    }
}

/// Rewrites every number with a zero fraction (`4.0`) that fits an i64 or u64 as that integer;
/// whether it changed anything.
fn whole_floats_to_integers(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            let whole = f.fract() == 0.0 && f.is_finite();
            if whole && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                *v = Value::from(f as i64);
                true
            } else if whole && f >= 0.0 && f < u64::MAX as f64 {
                *v = Value::from(f as u64);
                true
            } else {
                false
            }
        }
        Value::Array(a) => a
            .iter_mut()
            .fold(false, |c, x| whole_floats_to_integers(x) | c),
        Value::Object(o) => o
            .values_mut()
            .fold(false, |c, x| whole_floats_to_integers(x) | c),
        _ => false,
    }
}

/// A query string: anything that does not parse is 400 with the JSON error body (axum's own
/// `Query` answers such requests in plain text).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub struct Bearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        bearer(parts.headers.get(header::AUTHORIZATION))
            .map(Bearer)
            .ok_or(ApiError::Unauthenticated)
    }
}

/// The token of a Bearer authorization header value, if it is one.
pub fn bearer(value: Option<&header::HeaderValue>) -> Option<String> {
    let v = value?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// The `x-request-id` header as sent, or empty (the id a caller's request is known by upstream and
/// in the audit log).
pub fn request_id(headers: &header::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::whole_floats_to_integers;
    use serde_json::json;

    #[test]
    fn whole_floats_read_as_integers_and_others_stay() {
        let mut v = json!({"a": 4.0, "b": [1.0, -2.0], "c": 1.5, "d": "4.0", "e": 7});
        assert!(whole_floats_to_integers(&mut v));
        assert_eq!(
            v,
            json!({"a": 4, "b": [1, -2], "c": 1.5, "d": "4.0", "e": 7})
        );
        let mut v = json!({"c": 1.5});
        assert!(!whole_floats_to_integers(&mut v), "nothing to rewrite");
    }
}
