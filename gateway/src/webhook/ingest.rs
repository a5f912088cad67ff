//! Receiving webhooks: the raw body is read within its limit, its signature verified before
//! anything parses it, and a payment event stored in the inbox before the 2xx.

use super::{WebhookError, Webhooks};
use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};
use webhooks::{Appended, Parsed, Scheme};

/// Request headers as a verification scheme reads them.
struct HeaderView<'a>(&'a HeaderMap);

impl webhooks::Headers for HeaderView<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name)?.to_str().ok()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `POST /webhooks/payments`.
pub async fn payments(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let wh = st.webhooks.clone().ok_or(WebhookError::Disabled)?;
    let scheme = wh.standard.clone().ok_or(WebhookError::Disabled)?;
    ingest(&wh, &scheme, req).await
}

/// `POST /webhooks/stripe`.
pub async fn stripe(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let wh = st.webhooks.clone().ok_or(WebhookError::Disabled)?;
    let scheme = wh.stripe.clone().ok_or(WebhookError::Disabled)?;
    ingest(&wh, &scheme, req).await
}

async fn ingest(wh: &Webhooks, scheme: &dyn Scheme, req: Request) -> Result<Response, ApiError> {
    let metrics = wh.inbox.metrics();
    let headers = req.headers().clone();
    // The route's own DefaultBodyLimit (not the global 16 KiB) bounds this read.
    let body = Bytes::from_request(req, &()).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            metrics.rejected("too_large");
            WebhookError::TooLarge
        } else {
            WebhookError::Body
        }
    })?;
    let now = now_ms();
    // The signature is checked over the raw bytes, before anything reads them.
    let verified = scheme
        .verify(&HeaderView(&headers), &body, now.div_euclid(1000))
        .map_err(|e| {
            metrics.rejected(e.reason());
            tracing::debug!(
                reason = e.reason(),
                source = scheme.name(),
                "webhook refused"
            );
            WebhookError::InvalidSignature(e)
        })?;
    // Verified: only a body that is not a payment event at all is refused from here on. Fields
    // we do not know are kept (the envelope stores the body verbatim); a type we do not act on
    // is acknowledged, so the provider stops retrying it, and counted, not stored.
    match webhooks::parse_verified(scheme.name(), &body) {
        Ok(Parsed::Payment(event)) => {
            let env = webhooks::envelope_of(&verified, scheme.name(), Some(&event), &body, now);
            let status = match wh.inbox.append(&env).await.map_err(WebhookError::Inbox)? {
                Appended::New(_) => "accepted",
                Appended::Duplicate(_) => "duplicate",
            };
            Ok(Json(json!({"status": status, "webhook_id": verified.id})).into_response())
        }
        Ok(Parsed::Ignored(ignored)) => {
            metrics.ignored(&ignored.event_type, ignored.reason.as_str());
            tracing::info!(
                webhook_id = %verified.id,
                event_type = %ignored.event_type,
                reason = ignored.reason.as_str(),
                source = scheme.name(),
                "verified webhook ignored"
            );
            Ok(Json(json!({"status": "ignored", "webhook_id": verified.id})).into_response())
        }
        Err(e) => {
            metrics.rejected("malformed");
            let env = webhooks::envelope_of(&verified, scheme.name(), None, &body, now);
            wh.inbox
                .dead_letter_malformed(&env, &e.to_string())
                .await
                .map_err(WebhookError::Inbox)?;
            Err(WebhookError::Malformed(e.0).into())
        }
    }
}
