//! The admin HTTP API as the tests call it: with the admin token as the bearer.

use super::{client, send, Resp, ADMIN};
use serde_json::Value;

/// `GET {base}{path}` with the admin token.
pub async fn admin_get(base: &str, path: &str) -> Resp {
    send(client().get(format!("{base}{path}")).bearer_auth(ADMIN)).await
}

/// `POST {base}{path}` with the admin token and the JSON `body`.
pub async fn admin_post(base: &str, path: &str, body: Value) -> Resp {
    let req = client().post(format!("{base}{path}")).bearer_auth(ADMIN);
    send(req.json(&body)).await
}

/// `POST /admin/v1/events/{event}/actions` (STOP_ADMISSIONS, SOLD_OUT, …).
pub async fn event_action(base: &str, event: &str, body: Value) -> Resp {
    admin_post(base, &format!("/admin/v1/events/{event}/actions"), body).await
}

/// The newest entry of the audit trail (`GET /admin/v1/audit?limit=1`).
pub async fn newest_audit(base: &str) -> Value {
    let r = admin_get(base, "/admin/v1/audit?limit=1").await;
    r.body["entries"][0].clone()
}
