//! The users' HTTP through goose: transactions, measured requests, their answers.

use super::Ctx;
use goose::goose::{GooseMethod, GooseRequest, GooseUser, Transaction, TransactionError};
use goose::prelude::TransactionResult;
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A goose transaction that calls `f` with the shared context.
pub(crate) fn transaction(
    ctx: &Arc<Ctx>, name: &str, f: for<'r> fn(Arc<Ctx>, &'r mut GooseUser) -> BoxFuture<'r>,
) -> Transaction {
    fn hr<F>(f: F) -> F
    where
        F: for<'r> Fn(&'r mut GooseUser) -> BoxFuture<'r> + Send + Sync,
    {
        f
    }
    let ctx = ctx.clone();
    Transaction::new(Arc::new(hr(move |user| f(ctx.clone(), user)))).set_name(name)
}

/// The future of a transaction.
pub(crate) type BoxFuture<'r> = Pin<Box<dyn Future<Output = TransactionResult> + Send + 'r>>;

/// An HTTP answer: status and JSON body (Null when empty or not JSON).
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

impl Answer {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// `POST /api/v1/queue/join` of `session` to the run's event, recorded as `join`; only 201 (a
/// new place) counts as a success.
pub(crate) async fn join_as(
    ctx: &Ctx, user: &mut GooseUser, session: &str,
) -> Result<Answer, Box<TransactionError>> {
    let body = json!({"event_id": ctx.event, "session_id": session});
    call(
        user,
        GooseMethod::Post,
        "/api/v1/queue/join",
        "join",
        |rb| rb.json(&body),
        &[201],
    )
    .await
}

/// One request through goose (so it is measured and logged), named `name`; statuses in `ok`
/// count as successes, any other as a failure.
pub(crate) async fn call(
    user: &mut GooseUser, method: GooseMethod, path: &str, name: &str,
    build: impl FnOnce(goose_reqwest::RequestBuilder) -> goose_reqwest::RequestBuilder, ok: &[u16],
) -> Result<Answer, Box<TransactionError>> {
    let rb = build(user.get_request_builder(&method, path)?);
    let mut req = GooseRequest::builder()
        .method(method)
        .path(path)
        .name(name)
        .set_request_builder(rb);
    // Goose judges the first expected status itself, when the request is recorded; a later
    // set_success is an update that can land after goose reset its metrics (end of the ramp)
    // and then leaves a failure counted.
    if let Some(first) = ok.first() {
        req = req.expect_status_code(*first);
    }
    let req = req.build();
    let mut g = user.request(req).await?;
    let resp = match g.response {
        Ok(r) => r,
        Err(e) => return Err(Box::new(TransactionError::Reqwest(e))),
    };
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let expected = ok.contains(&status);
    if expected && !g.request.success {
        user.set_success(&mut g.request)?;
    } else if !expected && g.request.success {
        // set_failure records the failure and answers Err to end the transaction; the caller
        // decides that from the status instead.
        let _ = user.set_failure(&format!("unexpected {status}"), &mut g.request, None, None);
    }
    Ok(Answer { status, body })
}

/// What a page does with its place in the queue, with the place's waiting token.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place {
    /// `GET /api/v1/queue/status`, recorded as `status`.
    Status,
    /// `POST /api/v1/queue/enter` once admitted, recorded as `enter`.
    Enter,
    /// `DELETE /api/v1/queue`: gives the place up, recorded as `leave`.
    Leave,
}

/// One of the [`Place`] calls for the place `token` names; its one success status (200, or
/// 204 for `Leave`) counts as a success.
pub(crate) async fn place(
    user: &mut GooseUser, token: &str, what: Place,
) -> Result<Answer, Box<TransactionError>> {
    let (method, path, name, ok) = match what {
        Place::Status => (GooseMethod::Get, "/api/v1/queue/status", "status", 200),
        Place::Enter => (GooseMethod::Post, "/api/v1/queue/enter", "enter", 200),
        Place::Leave => (GooseMethod::Delete, "/api/v1/queue", "leave", 204),
    };
    call(user, method, path, name, |rb| rb.bearer_auth(token), &[ok]).await
}

/// A duration goose did not time itself (a WebSocket's connect, a wait), recorded as the
/// request `method name`; a failure when `error` says why.
pub(crate) async fn record(
    user: &mut GooseUser, method: &str, name: &str, took: Duration, error: Option<&str>,
) -> TransactionResult {
    user.record_custom_request_duration(method, name, took, error.is_none(), None, error)
        .await
}

/// A custom error that ends a transaction.
pub(crate) fn fail(msg: impl Into<String>) -> Box<TransactionError> {
    Box::new(TransactionError::Custom(msg.into()))
}
