//! The dead-letter admin handlers (`/admin/v1/dlq`): list, read, retry and resolve, each
//! change recorded in the audit trail.

use super::WebhookError;
use crate::audit::AuditContext;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::extract::ApiQuery;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use webhooks::Inbox;

/// Query of `GET /admin/v1/dlq`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// 1 to 1,000 (default 50); text, so that a bad value gets the JSON 400 of this API rather
    /// than the framework's plain-text rejection.
    pub limit: Option<String>,
}

fn inbox(st: &AppState) -> Result<&Inbox, WebhookError> {
    st.webhooks
        .as_deref()
        .map(|w| &w.inbox)
        .ok_or(WebhookError::Disabled)
}

/// `GET /admin/v1/dlq?limit=`: newest first.
pub async fn dlq_list(
    State(st): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = match q.limit.as_deref() {
        None => 50,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::BadRequest("limit must be 1 to 1000".into()))?,
    };
    let items = inbox(&st)?
        .dlq_list(limit)
        .await
        .map_err(WebhookError::Inbox)?;
    Ok(Json(json!({"dead_letters": items})))
}

/// `GET /admin/v1/dlq/{id}`.
pub async fn dlq_get(
    State(st): State<AppState>, Path(id): Path<String>,
) -> Result<Json<webhooks::DeadLetter>, ApiError> {
    Ok(Json(
        inbox(&st)?
            .dlq_get(&id)
            .await
            .map_err(WebhookError::Inbox)?,
    ))
}

/// `POST /admin/v1/dlq/{id}/retry`: 202 when enqueued now, 200 when an earlier retry had.
pub async fn dlq_retry(
    State(st): State<AppState>, who: AuditContext, Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let before = dlq_audit_state(&st, &id).await;
    let r = inbox(&st)?
        .dlq_retry(&id)
        .await
        .map_err(WebhookError::Inbox)?;
    if r.enqueued {
        let after = dlq_audit_state(&st, &id).await;
        st.audit
            .record(who.entry("dlq.retry", None, before, after))
            .await;
    }
    let code = if r.enqueued {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        code,
        Json(json!({"id": id, "stream_id": r.stream_id, "enqueued": r.enqueued})),
    )
        .into_response())
}

/// Body of `POST /admin/v1/dlq/{id}/resolve`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// Who resolved it (1 to 200 characters).
    pub resolved_by: String,
    /// Why (at most 2,000 characters).
    pub note: Option<String>,
}

/// `POST /admin/v1/dlq/{id}/resolve`.
pub async fn dlq_resolve(
    State(st): State<AppState>, who: AuditContext, Path(id): Path<String>,
    ApiJson(body): ApiJson<ResolveBody>,
) -> Result<Json<webhooks::DeadLetter>, ApiError> {
    // The length is that of the value sent, as the schema's maxLength counts it.
    let by = body.resolved_by.trim();
    if by.is_empty() || body.resolved_by.chars().count() > 200 {
        return Err(ApiError::BadRequest(
            "resolved_by must be 1 to 200 characters".into(),
        ));
    }
    if body.note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(ApiError::BadRequest(
            "note must be at most 2000 characters".into(),
        ));
    }
    let before = dlq_audit_state(&st, &id).await;
    let dl = inbox(&st)?
        .dlq_resolve(&id, by, body.note.as_deref())
        .await
        .map_err(WebhookError::Inbox)?;
    st.audit
        .record(who.entry("dlq.resolve", None, before, dead_letter_audit(&dl)))
        .await;
    Ok(Json(dl))
}

/// What the audit trail keeps of a dead letter: everything but the webhook's payload (the
/// envelope, which can be large and is the provider's data), plus its id.
fn dead_letter_audit(dl: &webhooks::DeadLetter) -> serde_json::Value {
    let mut v = serde_json::to_value(dl).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(m) = &mut v {
        m.remove("envelope");
    }
    v
}

/// A dead letter's audit state now (`null` when it cannot be read: the change still goes on).
async fn dlq_audit_state(st: &AppState, id: &str) -> serde_json::Value {
    match inbox(st) {
        Ok(inbox) => match inbox.dlq_get(id).await {
            Ok(dl) => dead_letter_audit(&dl),
            Err(_) => serde_json::Value::Null,
        },
        Err(_) => serde_json::Value::Null,
    }
}
