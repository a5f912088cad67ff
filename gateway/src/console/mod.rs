//! The operator console at `/admin`: an HTML page on the public listener that shows every
//! event's numbers live and changes them through the admin API.
//!
//! - Sign-in is a form POST of the admin token (never in a URL) to `/admin/sign-in`, which sets
//!   a session cookie (HttpOnly, SameSite=Strict, Path=/admin; Secure when the request came
//!   with `X-Forwarded-Proto: https`). Sessions are stateless signed cookies ([`session`]).
//! - The page calls the admin API (`/admin/v1/...`) itself: [`authorize`] accepts the bearer
//!   token or the session cookie, and with the cookie every unsafe method needs the session's
//!   CSRF token in `X-CSRF-Token` (else 403 `CSRF_FAILED`). So every change goes through the
//!   admin API's handlers and its audit trail, with the actor `console:<session>`.
//! - `/admin/ws` pushes the numbers ([`stats`]): a `history` message of the last 15 minutes,
//!   then a `sample` message every second.

pub mod session;
pub mod stats;

use crate::error::ApiError;
use crate::extract::bearer;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use session::{Keys, Session, COOKIE};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const PAGE: &str = include_str!("console.html");
const SIGN_IN: &str = include_str!("sign_in.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The audit trail's actor of a bearer-token request.
pub const TOKEN_ACTOR: &str = "admin-token";

/// How long one frame may take to be sent before the console is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The WebSocket close code when the session ends (the page then shows the sign-in form).
const CLOSE_SESSION_ENDED: u16 = 4001;

/// The console's share of the state.
#[derive(Debug)]
pub struct Console {
    /// The sampled numbers.
    pub stats: stats::Stats,
    keys: Option<Keys>,
    ttl_s: u64,
    /// Set when the replica shuts down: open consoles are told to reconnect elsewhere.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Console {
    /// The console of the admin token whose SHA-256 is `admin_hash` (None: the console, like the
    /// admin API, is off), with sessions of `ttl_s` seconds.
    pub fn new(admin_hash: Option<&[u8; 32]>, ttl_s: u64) -> Self {
        Self {
            stats: stats::Stats::default(),
            keys: admin_hash.map(Keys::from_admin_hash),
            ttl_s,
            closing: tokio::sync::watch::channel(false).0,
        }
    }

    /// Closes every open console socket with 1001 (going away), as a draining replica does;
    /// the pages reconnect (to another replica) by themselves.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// The valid session of the request's cookie, if any.
    fn session(&self, headers: &HeaderMap, now_s: u64) -> Option<Session> {
        let keys = self.keys.as_ref()?;
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| session::cookie(v, COOKIE))
            .find_map(|v| keys.verify(v, now_s))
    }
}

fn now_s(st: &AppState) -> u64 {
    st.room.now_ms() / 1000
}

/// The admin routes' authentication: the admin token as a bearer, or a console session (whose
/// unsafe requests must carry its CSRF token). Returns the audit trail's actor.
pub fn authorize(st: &AppState, method: &Method, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(given) = bearer(headers.get(header::AUTHORIZATION)) {
        return if crate::admin_token_ok(st, Some(&given)) {
            Ok(TOKEN_ACTOR.to_owned())
        } else {
            Err(ApiError::Unauthorized)
        };
    }
    let s = st
        .console
        .session(headers, now_s(st))
        .ok_or(ApiError::Unauthorized)?;
    if !method.is_safe() {
        let given = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let keys = st.console.keys.as_ref().ok_or(ApiError::Unauthorized)?;
        if !keys.csrf_ok(&s, given) {
            return Err(ApiError::CsrfFailed);
        }
    }
    Ok(s.actor())
}

/// What the console's pages allow: their own script and style, connections to this origin
/// (the admin API and the WebSocket), forms to this origin, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn html(status: StatusCode, body: String, cookie: Option<String>) -> Response {
    let csp = [(header::CONTENT_SECURITY_POLICY, CSP)];
    let mut r = (status, crate::page::html_headers(), csp, body).into_response();
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

/// `GET /admin/console.js`.
pub async fn script() -> Response {
    asset(SCRIPT, "text/javascript")
}

/// `GET /admin/console.css`.
pub async fn style() -> Response {
    asset(STYLE, "text/css")
}

fn asset(body: &'static str, ctype: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

fn sign_in_page(status: StatusCode, message: &str, cookie: Option<String>) -> Response {
    let note = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" role=\"alert\" id=\"sign-in-error\">{message}</p>")
    };
    html(status, SIGN_IN.replace("__MESSAGE__", &note), cookie)
}

/// `GET /admin`: the console for a signed-in operator, else the sign-in form.
pub async fn page(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if st.console.keys.is_none() {
        return sign_in_page(
            StatusCode::OK,
            "The admin API is disabled: start the gateway with --admin-token.",
            None,
        );
    }
    match (st.console.session(&headers, now_s(&st)), &st.console.keys) {
        (Some(s), Some(keys)) => html(
            StatusCode::OK,
            PAGE.replace("__CSRF__", &keys.csrf(&s))
                .replace("__EXPIRES__", &s.expires.to_string()),
            None,
        ),
        _ => sign_in_page(StatusCode::OK, "", None),
    }
}

/// The attributes every console cookie carries; `Secure` when the client came over https
/// (as a TLS-terminating proxy says with `X-Forwarded-Proto`).
fn cookie_attrs(headers: &HeaderMap) -> &'static str {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    if https {
        "Path=/admin; HttpOnly; SameSite=Strict; Secure"
    } else {
        "Path=/admin; HttpOnly; SameSite=Strict"
    }
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// `POST /admin/sign-in` (form field `token`): 303 to `/admin` with the session cookie, or
/// 401 (the form again for a browser, the JSON error otherwise).
pub async fn sign_in(
    State(st): State<AppState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>,
) -> Response {
    // As the JSON routes do (`extract::ApiJson`): a body over the limit is the JSON 413.
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::PayloadTooLarge.into_response()
        }
        Err(r) => {
            return ApiError::BadRequest(format!("could not read the body: {r}")).into_response()
        }
    };
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    let keys = match &st.console.keys {
        Some(k) if crate::admin_token_ok(&st, token.as_deref()) => k,
        _ if wants_html(&headers) => {
            return sign_in_page(
                StatusCode::UNAUTHORIZED,
                "That is not the admin token.",
                None,
            )
        }
        _ => return ApiError::Unauthorized.into_response(),
    };
    let expires = now_s(&st) + st.console.ttl_s;
    let (s, value) = keys.issue(expires);
    tracing::info!(target: "audit", actor = %s.actor(), "console sign-in");
    let cookie = format!(
        "{COOKIE}={value}; Max-Age={}; {}",
        st.console.ttl_s,
        cookie_attrs(&headers)
    );
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/admin")]).into_response();
    if let Ok(c) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /admin/sign-out` (with `X-CSRF-Token`): 204, and the cookie is cleared.
pub async fn sign_out(State(st): State<AppState>, req: Request) -> Response {
    let headers = req.headers();
    if st.console.session(headers, now_s(&st)).is_some() {
        if let Err(e) = authorize(&st, &Method::POST, headers) {
            return e.into_response();
        }
    }
    let cookie = format!("{COOKIE}=; Max-Age=0; {}", cookie_attrs(headers));
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(c) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

/// Whether the request's `Origin` (when a browser sent one) is this host: a page of another
/// site cannot open the console's socket with the operator's cookie.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, h)| !host.is_empty() && h == host)
}

/// `GET /admin/ws`: the live numbers, for a signed-in console.
pub async fn websocket(State(st): State<AppState>, mut req: Request) -> Result<Response, ApiError> {
    let s = st
        .console
        .session(req.headers(), now_s(&st))
        .ok_or(ApiError::Unauthorized)?;
    if !same_origin(req.headers()) {
        return Err(ApiError::Forbidden);
    }
    let upgrade = crate::handlers::websocket_upgrade(&mut req)?;
    let permit = crate::handlers::socket_permit(&st)?;
    let left = Duration::from_millis((s.expires * 1000).saturating_sub(st.room.now_ms()));
    Ok(upgrade.accept(permit, move |io| async move { serve(io, &st, left).await }))
}

/// The history, then every sample, until the console leaves or its session ends.
async fn serve(io: ws::Io, st: &AppState, session_left: Duration) {
    let socket = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    let (mut sink, mut stream) = socket.split();
    let mut feed = st.console.stats.subscribe();
    let mut closing = st.console.closing.subscribe();
    let history = Message::text(st.console.stats.history());
    let Ok(Ok(())) = tokio::time::timeout(SEND_TIMEOUT, sink.send(history)).await else {
        return;
    };
    let ends = tokio::time::sleep(session_left);
    tokio::pin!(ends);
    loop {
        let msg = tokio::select! {
            m = feed.recv() => match m {
                Ok(m) => Message::text(m.to_string()),
                // A console that fell behind skips samples; the next one has every number.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
            _ = &mut ends => Message::Close(Some(CloseFrame {
                code: CLOSE_SESSION_ENDED.into(),
                reason: "session ended".into(),
            })),
            _ = closing.wait_for(|c| *c) => Message::Close(Some(CloseFrame {
                code: CloseCode::Away,
                reason: "server shutting down".into(),
            })),
            m = stream.next() => match m {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
        };
        let close = matches!(msg, Message::Close(_));
        let sent = tokio::time::timeout(SEND_TIMEOUT, sink.send(msg)).await;
        if close || !matches!(sent, Ok(Ok(()))) {
            return;
        }
    }
}
