//! The operator console at /admin (gateway::console): its page, sign-in and sign-out, its
//! live numbers and its static script and style.

use super::*;

#[utoipa::path(
    get,
    path = "/admin",
    operation_id = "consolePage",
    tag = "console",
    summary = "The operator console, or its sign-in form without a session",
    description = "The console (HTML) for a request with a valid wr_console session cookie,\nthe sign-in form otherwise (and, without --admin-token, a form that says the\nadmin API is disabled). The console carries its session's CSRF token in\n`<meta name=\"csrf-token\">` and calls the admin API with it. Headers:\nCache-Control: no-store, X-Content-Type-Options: nosniff, Referrer-Policy:\nno-referrer and a Content-Security-Policy that allows only the console's own\nscript, style and connections, and no framing.\n",
    params(RequestId),
    security((), ("consoleSession" = [])),
    responses((status = 200, description = "The console, or the sign-in form.", content_type = "text/html; charset=utf-8", body = String, headers(("x-request-id" = String, description = "The request's x-request-id, or a generated one."), ("Cache-Control" = String), ("Content-Security-Policy" = String, description = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"))),
    (status = 405, response = responses::MethodNotAllowed))
)]
pub fn page() {}

#[utoipa::path(
    post,
    path = "/admin/sign-in",
    operation_id = "consoleSignIn",
    tag = "console",
    summary = "Sign in to the operator console with the admin token (form post)",
    description = "The admin token travels only in this body, never in a URL. The session is\na stateless signed cookie (`<id>.<expiry>.<HMAC-SHA256>`, keyed from the admin\ntoken's SHA-256): every replica accepts it, and changing --admin-token ends\nevery session. It lasts --console-session-ttl-seconds (28800 by default).\n",
    params(RequestId),
    request_body(content = ConsoleSignIn, content_type = "application/x-www-form-urlencoded"),
    security(()),
    responses((status = 303, description = "Signed in: to /admin, with the session cookie.", headers(("Location" = String, description = "/admin"), ("Set-Cookie" = String, description = "wr_console=<session>; Max-Age=<--console-session-ttl-seconds>; Path=/admin; HttpOnly; SameSite=Strict, plus ; Secure when the request came with X-Forwarded-Proto: https."), ("Cache-Control" = String, description = "no-store"), ("x-request-id" = String, description = "The request's x-request-id, or a generated one."))),
    (status = 401, description = "UNAUTHORIZED - not the admin token, or the admin API is disabled (no --admin-token): the sign-in form again with a message for a request that accepts text/html, the JSON error otherwise.", content((String = "text/html; charset=utf-8"), (Error = "application/json")), headers(("x-request-id" = String, description = "The request's x-request-id, or a generated one."))),
    (status = 405, response = responses::MethodNotAllowed),
    BodyFailures)
)]
pub fn sign_in() {}

#[utoipa::path(
    post,
    path = "/admin/sign-out",
    operation_id = "consoleSignOut",
    tag = "console",
    summary = "Sign out of the operator console (clears the cookie)",
    description = "With a valid session cookie the session's X-CSRF-Token is needed (403\nCSRF_FAILED without it); without a valid session the cookie is cleared all\nthe same. Sessions are stateless: a copy of the cookie taken earlier stays\nvalid until it expires.\n",
    params(("X-CSRF-Token" = Option<String>, Header, description = "The session's CSRF token (the console page's <meta name=\"csrf-token\">); needed with a valid session cookie."), RequestId),
    security((), ("consoleSession" = [])),
    responses((status = 204, description = "Signed out (no body).", headers(("Set-Cookie" = String, description = "wr_console=; Max-Age=0; Path=/admin; HttpOnly; SameSite=Strict"), ("x-request-id" = String, description = "The request's x-request-id, or a generated one."))),
    (status = 403, response = responses::CsrfFailed),
    (status = 405, response = responses::MethodNotAllowed))
)]
pub fn sign_out() {}

#[utoipa::path(
    get,
    path = "/admin/ws",
    operation_id = "consoleWebSocket",
    tag = "console",
    summary = "The console's live numbers (WebSocket upgrade)",
    description = "Upgrades to a WebSocket (version 13) of JSON text frames (union\n`ConsoleMessage`): first a `ConsoleHistory` (the last 15 minutes of samples\nthis replica kept, per event as columns), then a `ConsoleSample` every second.\nA console that falls behind skips samples. Before the upgrade: 401\nUNAUTHORIZED (no valid session cookie), 403 FORBIDDEN (the request's Origin\nis not this gateway's host), 400 INVALID_ARGUMENT (not a WebSocket upgrade),\n503 TOO_MANY_CONNECTIONS, in that order. Close codes: 4001 when the session\nexpires (sign in again), 1001 when the replica shuts down (reconnect).\n",
    params(RequestId),
    security(("consoleSession" = [])),
    responses((status = 101, description = "Switching Protocols; frames of ConsoleMessage follow.", headers(("Upgrade" = String), ("Connection" = String), ("Sec-WebSocket-Accept" = String, description = "Derived from the request's Sec-WebSocket-Key."), ("x-request-id" = String, description = "The request's x-request-id, or a generated one."))),
    (status = 400, response = responses::InvalidArgument),
    (status = 401, description = "UNAUTHORIZED - no valid console session cookie.", content_type = "application/json", body = Error, headers(("x-request-id" = String, description = "The request's x-request-id, or a generated one."))),
    (status = 403, description = "FORBIDDEN - the browser's Origin is not this gateway's host.", content_type = "application/json", body = Error, headers(("x-request-id" = String, description = "The request's x-request-id, or a generated one."))),
    (status = 405, response = responses::MethodNotAllowed),
    (status = 503, response = responses::TooManyConnections))
)]
pub fn websocket() {}

#[utoipa::path(
    get,
    path = "/admin/console.js",
    operation_id = "consoleScript",
    tag = "console",
    summary = "The console's script",
    params(RequestId),
    security(()),
    responses((status = 200, description = "JavaScript (Cache-Control: no-cache).", content_type = "text/javascript", body = String, headers(("Cache-Control" = String), ("x-request-id" = String, description = "The request's x-request-id, or a generated one."))),
    (status = 405, response = responses::MethodNotAllowed))
)]
pub fn script() {}

#[utoipa::path(
    get,
    path = "/admin/console.css",
    operation_id = "consoleStyle",
    tag = "console",
    summary = "The console's style sheet",
    params(RequestId),
    security(()),
    responses((status = 200, description = "CSS (Cache-Control: no-cache).", content_type = "text/css", body = String, headers(("Cache-Control" = String), ("x-request-id" = String, description = "The request's x-request-id, or a generated one."))),
    (status = 405, response = responses::MethodNotAllowed))
)]
pub fn style() {}
