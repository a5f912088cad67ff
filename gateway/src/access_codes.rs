//! The admin API of priority access codes: minting (`POST /admin/v1/events/{id}/access-codes`)
//! and revocation (`POST /admin/v1/events/{id}/access-codes/revoke`). A code is a random
//! single-use pass into the event's priority lane (see docs/api.md, "Access codes"); the stores
//! keep only its SHA-256, and the audit trail only counts: a code is shown once, in the answer
//! that mints it.

use crate::audit::AuditContext;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

/// Body of a mint request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintBody {
    /// How many codes, 1 to [`queue::store::MAX_ACCESS_CODES_PER_CALL`].
    count: usize,
}

/// Body of a revoke request (the codes are credentials: not in the `Debug` form).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    codes: Vec<String>,
}

impl std::fmt::Debug for RevokeBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeBody")
            .field("codes", &self.codes.len())
            .finish()
    }
}

/// `POST /admin/v1/events/{event_id}/access-codes` `{"count": n}`: 201
/// `{"event_id", "count", "codes": [...]}`, not cached anywhere.
pub async fn mint(
    State(st): State<AppState>, who: AuditContext, Path(id): Path<String>,
    ApiJson(body): ApiJson<MintBody>,
) -> Result<Response, ApiError> {
    let codes = st.room.mint_access_codes(&id, body.count).await?;
    st.audit
        .record(who.entry(
            "access_codes.mint",
            Some(&id),
            serde_json::Value::Null,
            json!({"minted": codes.len()}),
        ))
        .await;
    let reply = json!({"event_id": id, "count": codes.len(), "codes": codes});
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(reply),
    )
        .into_response())
}

/// `POST /admin/v1/events/{event_id}/access-codes/revoke` `{"codes": [...]}`: 200
/// `{"revoked": n}`, n the codes that existed (spent or not). Idempotent. A place already taken
/// with a revoked code stays.
pub async fn revoke(
    State(st): State<AppState>, who: AuditContext, Path(id): Path<String>,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let revoked = st.room.revoke_access_codes(&id, &body.codes).await?;
    st.audit
        .record(who.entry(
            "access_codes.revoke",
            Some(&id),
            serde_json::Value::Null,
            json!({"requested": body.codes.len(), "revoked": revoked}),
        ))
        .await;
    Ok(Json(json!({"event_id": id, "revoked": revoked})))
}
