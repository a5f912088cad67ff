//! The operator console at /admin (gateway::console): its page, sign-in and sign-out, its
//! live numbers and its static script and style.

use super::*;

operation! {
    get "/admin" => page, "consolePage", tag "console", optional_console, "The operator console, or its sign-in form without a session", [description = "The console (HTML) for a request with a valid wr_console session cookie,\nthe sign-in form otherwise (and, without --admin-token, a form that says the\nadmin API is disabled). The console carries its session's CSRF token in\n`<meta name=\"csrf-token\">` and calls the admin API with it. Headers:\nCache-Control: no-store, X-Content-Type-Options: nosniff, Referrer-Policy:\nno-referrer and a Content-Security-Policy that allows only the console's own\nscript, style and connections, and no framing.\n", params(RequestId)],
    200 => html[("Cache-Control" = String), ("Content-Security-Policy" = String, description = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")]("The console, or the sign-in form."),
    405 => MethodNotAllowed,
}

operation! {
    post "/admin/sign-in" => sign_in, "consoleSignIn", tag "console", public, "Sign in to the operator console with the admin token (form post)", [description = "The admin token travels only in this body, never in a URL. The session is\na stateless signed cookie (`<id>.<expiry>.<HMAC-SHA256>`, keyed from the admin\ntoken's SHA-256): every replica accepts it, and changing --admin-token ends\nevery session. It lasts --console-session-ttl-seconds (28800 by default).\n", params(RequestId), request_body(content = ConsoleSignIn, content_type = "application/x-www-form-urlencoded")],
    303 => echoed[("Location" = String, description = "/admin"), ("Set-Cookie" = String, description = "wr_console=<session>; Max-Age=<--console-session-ttl-seconds>; Path=/admin; HttpOnly; SameSite=Strict, plus ; Secure when the request came with X-Forwarded-Proto: https."), ("Cache-Control" = String, description = "no-store")](description = "Signed in: to /admin, with the session cookie."),
    401 => echoed(description = "UNAUTHORIZED - not the admin token, or the admin API is disabled (no --admin-token): the sign-in form again with a message for a request that accepts text/html, the JSON error otherwise.", content((String = "text/html; charset=utf-8"), (Error = "application/json"))),
    405 => MethodNotAllowed, BodyFailures,
}

operation! {
    post "/admin/sign-out" => sign_out, "consoleSignOut", tag "console", optional_console, "Sign out of the operator console (clears the cookie)", [description = "With a valid session cookie the session's X-CSRF-Token is needed (403\nCSRF_FAILED without it); without a valid session the cookie is cleared all\nthe same. Sessions are stateless: a copy of the cookie taken earlier stays\nvalid until it expires.\n", params(("X-CSRF-Token" = Option<String>, Header, description = "The session's CSRF token (the console page's <meta name=\"csrf-token\">); needed with a valid session cookie."), RequestId)],
    204 => echoed[("Set-Cookie" = String, description = "wr_console=; Max-Age=0; Path=/admin; HttpOnly; SameSite=Strict")](description = "Signed out (no body)."),
    403 => CsrfFailed, 405 => MethodNotAllowed,
}

operation! {
    get "/admin/ws" => websocket, "consoleWebSocket", tag "console", console, "The console's live numbers (WebSocket upgrade)", [description = "Upgrades to a WebSocket (version 13) of JSON text frames (union\n`ConsoleMessage`): first a `ConsoleHistory` (the last 15 minutes of samples\nthis replica kept, per event as columns), then a `ConsoleSample` every second.\nA console that falls behind skips samples. Before the upgrade: 401\nUNAUTHORIZED (no valid session cookie), 403 FORBIDDEN (the request's Origin\nis not this gateway's host), 400 INVALID_ARGUMENT (not a WebSocket upgrade),\n503 TOO_MANY_CONNECTIONS, in that order. Close codes: 4001 when the session\nexpires (sign in again), 1001 when the replica shuts down (reconnect).\n", params(RequestId)],
    101 => echoed[("Upgrade" = String), ("Connection" = String), ("Sec-WebSocket-Accept" = String, description = "Derived from the request's Sec-WebSocket-Key.")](description = "Switching Protocols; frames of ConsoleMessage follow."),
    401 => echoed(description = "UNAUTHORIZED - no valid console session cookie.", content_type = "application/json", body = Error),
    403 => echoed(description = "FORBIDDEN - the browser's Origin is not this gateway's host.", content_type = "application/json", body = Error),
    400 => InvalidArgument, 405 => MethodNotAllowed, 503 => TooManyConnections,
}

operation! {
    get "/admin/console.js" => script, "consoleScript", tag "console", public, "The console's script", [params(RequestId)],
    200 => echoed[("Cache-Control" = String)](description = "JavaScript (Cache-Control: no-cache).", content_type = "text/javascript", body = String),
    405 => MethodNotAllowed,
}

operation! {
    get "/admin/console.css" => style, "consoleStyle", tag "console", public, "The console's style sheet", [params(RequestId)],
    200 => echoed[("Cache-Control" = String)](description = "CSS (Cache-Control: no-cache).", content_type = "text/css", body = String),
    405 => MethodNotAllowed,
}
