//! Response components: answers several operations share.

use serde_json::{json, Map, Value};

/// Response components with the `Error` body, one a line:
/// `Name: "description", [headers], media;` (the arguments of [`error_answer`]).
macro_rules! error_answers {
    ($($name:ident: $description:expr, [$($header:expr),*], $media:expr;)+) => {
        $(value_response!($name, error_answer($description, &[$($header),*], $media));)+
    };
}

mod webhooks;
pub use webhooks::*;

/// An answer with the `Error` body: its description, its headers (none, or [`request_id`]
/// and others) and what stands next to the schema ([`example`], [`examples`] or
/// [`no_example`]).
fn error_answer(description: &str, headers: &[(&str, Value)], media: Value) -> Value {
    let mut content = json!({"schema": {"$ref": "#/components/schemas/Error"}});
    content
        .as_object_mut()
        .expect("an object")
        .extend(media.as_object().cloned().unwrap_or_default());
    let mut answer = json!({"description": description, "content": {"application/json": content}});
    if !headers.is_empty() {
        let headers: Map<String, Value> = headers
            .iter()
            .map(|(name, header)| (name.to_string(), header.clone()))
            .collect();
        answer["headers"] = Value::Object(headers);
    }
    answer
}

/// The `x-request-id` header every answer carries.
fn request_id() -> (&'static str, Value) {
    let header = json!({"description": "The request's x-request-id, or a generated one.", "schema": {"type": "string"}});
    ("x-request-id", header)
}

/// `Retry-After: 1`, the header of a JSON 503 and of the other answers that ask for a retry.
fn retry_after_one() -> (&'static str, Value) {
    let schema = json!({"type": "integer", "enum": [1]});
    (
        "Retry-After",
        json!({"description": "Seconds to wait before retrying (always 1).", "schema": schema}),
    )
}

/// The body of an error with this code and message.
fn error_body(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

/// One example error.
fn example(code: &str, message: &str) -> Value {
    json!({"example": error_body(code, message)})
}

/// Named example errors: `(name, code, message)`.
fn examples(named: &[(&str, &str, &str)]) -> Value {
    let named: Map<String, Value> = named
        .iter()
        .map(|(name, code, message)| {
            (
                name.to_string(),
                json!({"value": error_body(code, message)}),
            )
        })
        .collect();
    json!({"examples": named})
}

/// No example: the schema alone.
fn no_example() -> Value {
    json!({})
}

error_answers! {
    RequestTimeout: "REQUEST_TIMEOUT - the request body did not arrive within --request-timeout-ms\n(5000 ms by default): the client stopped sending before Content-Length was\nreached. No Retry-After; on HTTP/1 the connection is closed (Connection: close).\n", [], no_example();
    ChallengeRefused: "CHALLENGE_REQUIRED - the event has a join_challenge and the join carried no\n`challenge`; CHALLENGE_FAILED - the solution is forged, for another event,\nexpired, already used, issued at a lower difficulty than the event now asks,\nor the nonce has too few leading zero bits. Get a new challenge.\n", [], examples(&[("required", "CHALLENGE_REQUIRED", "this event requires a solved join challenge (GET /api/v1/queue/challenge)"), ("failed", "CHALLENGE_FAILED", "the join challenge failed: already used; get a new challenge")]);
    RateLimited: "RATE_LIMITED - this client address is over its per-minute limit\n(join: --join-rate-per-ip, 600 by default; status and WebSocket\nupgrades: --status-rate-per-ip, 6000 by default), counted per replica.\nThe client is the TCP peer, or the right-most untrusted\nX-Forwarded-For / Forwarded address when the peer is a --trusted-proxy;\nIPv6 clients are counted by their /64.\n", [request_id(), ("Retry-After", json!({"description": "Whole seconds until the client's next token (at least 1).", "schema": {"type": "integer", "minimum": 1}}))], example("RATE_LIMITED", "too many requests from this address; retry in 20 s");
    TooManySockets: "TOO_MANY_SOCKETS - this waiting token already has --ws-per-token (4 by\ndefault) WebSockets open on this replica; close one first.\n", [request_id(), retry_after_one()], no_example();
    ForwardedError: "An error of the forwarded API: the gateway's own (UNAUTHENTICATED 401,\nFORBIDDEN, ADMISSION_EXPIRED or (holds) ADMISSION_ENDED 403, IDEMPOTENCY_REQUIRED or INVALID_ARGUMENT\n400, UPSTREAM_NOT_CONFIGURED 501 (no URL configured for that upstream;\npermanent, no Retry-After), UPSTREAM_UNAVAILABLE, UPSTREAM_OVERLOADED or CIRCUIT_OPEN 503,\nUPSTREAM_TIMEOUT 504) or the upstream's gRPC status mapped to HTTP\n(INVALID_ARGUMENT 400, NOT_FOUND 404, ALREADY_EXISTS and FAILED_PRECONDITION\n409, RESOURCE_EXHAUSTED 429, PERMISSION_DENIED 403, UNAUTHENTICATED 401,\nUNAVAILABLE 503, DEADLINE_EXCEEDED 504, others 502 UPSTREAM_ERROR), with the\nbackend's common.v1.Error code when it sent one (INVENTORY_CONFLICT,\nRESERVATION_EXPIRED, IDEMPOTENCY_CONFLICT, HOLD_LIMIT, ...). 503 and 429 carry Retry-After 1.\n", [request_id()], examples(&[("taken", "INVENTORY_CONFLICT", "not enough free seats"), ("holdLimit", "HOLD_LIMIT", "this admission already has 1 active hold(s): pay for it, or let it be released or expire, before holding again"), ("ended", "ADMISSION_ENDED", "the admission has ended (left or expired); queue again"), ("forbidden", "FORBIDDEN", "the admission token is not valid for this event"), ("circuit", "CIRCUIT_OPEN", "the inventory service is unavailable; retry shortly")]);
    TooManyConnections: "TOO_MANY_CONNECTIONS - the connection limit (--max-connections) is reached.", [request_id(), retry_after_one()], example("TOO_MANY_CONNECTIONS", "too many connections; retry shortly");
    InvalidAssertion: "INVALID_ASSERTION - the join's user_assertion does not verify (signature, alg, exp, nbf, aud, sid or sub); the message names the failed check. No place is taken.", [request_id()], example("INVALID_ASSERTION", "the user assertion is invalid: it has expired");
    InvalidArgument: "INVALID_ARGUMENT - malformed JSON, wrong types, missing or unknown fields, bad ids or values; on join also ASSERTIONS_DISABLED (a user_assertion sent to a gateway without --user-assertion-key).", [request_id()], example("INVALID_ARGUMENT", "event_id must match [A-Za-z0-9_-]{1,64}");
    BadWaitingToken: "UNAUTHENTICATED (no Authorization Bearer header) or INVALID_TOKEN (tampered or foreign waiting token).", [request_id()], examples(&[("missing", "UNAUTHENTICATED", "missing bearer token"), ("invalid", "INVALID_TOKEN", "invalid waiting token")]);
    Unauthorized: "UNAUTHORIZED - neither the admin token (a wrong bearer token is refused even with a\nvalid console session cookie) nor a valid console session, or the admin API is\ndisabled (no --admin-token).\n", [request_id()], example("UNAUTHORIZED", "admin token required");
    CsrfFailed: "CSRF_FAILED - a change (any method but GET and HEAD) made with an operator console\nsession cookie without the session's X-CSRF-Token header, or with a wrong one\n(another session's). Nothing was changed; reload the console.\n", [request_id()], example("CSRF_FAILED", "this change needs the console session's X-CSRF-Token header; reload the console");
    EventNotFound: "EVENT_NOT_FOUND - no such event.", [request_id()], example("EVENT_NOT_FOUND", "event not found");
    NotFound: "NOT_FOUND - no such route.", [request_id()], example("NOT_FOUND", "no such route");
    MethodNotAllowed: "METHOD_NOT_ALLOWED - the route does not accept this method.", [request_id()], example("METHOD_NOT_ALLOWED", "method not allowed");
    EventClosed: "EVENT_CLOSED - the event is sold out.", [request_id()], example("EVENT_CLOSED", "the event is sold out");
    PayloadTooLarge: "PAYLOAD_TOO_LARGE - body over --max-body-bytes (16384 by default).", [request_id()], example("PAYLOAD_TOO_LARGE", "request body too large");
    Internal: "INTERNAL - a bug in the gateway; never caused by client input.", [request_id()], example("INTERNAL", "internal error");
    Unavailable: "UNAVAILABLE - Redis unreachable or too slow; OVERLOADED - too many\nrequests of this event already wait for the next Redis batch\n(--redis-batch-pending, 8192 by default); or TIMEOUT - the request\nexceeded --request-timeout-ms (5000 by default).\n", [request_id(), retry_after_one()], examples(&[("unavailable", "UNAVAILABLE", "store unavailable"), ("timeout", "TIMEOUT", "request timed out")]);
}
