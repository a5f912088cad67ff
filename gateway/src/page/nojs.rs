//! The waiting room without JavaScript. A form posts to `POST /e/{event_id}/join`, which joins
//! and keeps the waiting token in an HttpOnly cookie scoped to the event's page; the page then
//! reads the place server-side on every load (a status read is the heartbeat) and reloads
//! itself with a meta refresh well within the idle timeout, so the place is held as long as the
//! tab is open. Each answer for a waiting place also keeps its poll hint in a cookie, so most
//! reloads are answered without Redis (as a hinted status read). When READY, a form posts to
//! `POST /e/{event_id}/enter`, which redirects to the target with the reservation token, as the
//! script does.

use super::i18n::Lang;
use super::render::escape;
use super::{config_of, message_page_in, room, unavailable, PageQuery, PageRequest};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use queue::model::{EventConfig, QueueingMethod, Status};
use queue::QueueError;

const TOKEN_COOKIE: &str = "wr_token";
const SESSION_COOKIE: &str = "wr_session";
/// The last answer's poll hint, so that a reload of a waiting place is answered from the
/// departure log this replica follows instead of Redis, as `GET /api/v1/queue/status?hint=`.
const HINT_COOKIE: &str = "wr_hint";

/// Most seconds between two reloads of a no-JS page.
const MAX_REFRESH_SECONDS: u32 = 20;

/// The reload interval for an event: at most 20 s and at most a third of the idle timeout, so
/// that a slow reload or two still lands within it.
pub fn refresh_seconds(idle_timeout_seconds: u32) -> u32 {
    (idle_timeout_seconds / 3).clamp(1, MAX_REFRESH_SECONDS)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v)
}

/// A cookie for the event's page and its forms only; `value` None deletes it.
fn set_cookie(headers: &HeaderMap, id: &str, name: &str, value: Option<&str>) -> HeaderValue {
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let secure = if https { "; Secure" } else { "" };
    let age = if value.is_none() { "; Max-Age=0" } else { "" };
    let v = format!(
        "{name}={}; Path=/e/{id}; HttpOnly; SameSite=Lax{secure}{age}",
        value.unwrap_or("")
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("wr_invalid=1"))
}

/// A cookie value the browser keeps as is (tokens are base64url with dots).
fn cookie_safe(v: &str) -> bool {
    v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
}

fn join_form(id: &str, lang: Lang, q: &PageQuery) -> String {
    format!(
        "<form method=\"post\" action=\"/e/{id}/join{}\"><button type=\"submit\">{}</button></form>",
        q.suffix(),
        escape(lang.msg("join"))
    )
}

fn block(heading: &str, lines: &[String]) -> String {
    let mut out = format!(
        "<div id=\"nojs\" role=\"status\"><h2>{}</h2>",
        escape(heading)
    );
    for l in lines {
        out.push_str(l);
    }
    out.push_str("</div>");
    out
}

fn p(text: &str) -> String {
    format!("<p>{}</p>", escape(text))
}

fn eta_text(lang: Lang, eta: i64) -> String {
    if eta < 0 {
        return lang.msg("eta_paused").to_owned();
    }
    if eta < 60 {
        return lang.msg("eta_soon").to_owned();
    }
    let m = (eta + 30) / 60;
    if m < 60 {
        return lang.fmt("eta_minutes", &[("n", &lang.number(m as u64))]);
    }
    lang.fmt(
        "eta_hours",
        &[
            ("h", &lang.number((m / 60) as u64)),
            ("m", &lang.number((m % 60) as u64)),
        ],
    )
}

/// The page for a visitor: the script's page, with the no-JS view of the visitor's place (read
/// now, which is the heartbeat) when the cookie holds one.
pub(super) async fn page(st: &AppState, req: &PageRequest, config: &EventConfig) -> Response {
    let PageRequest {
        id,
        q,
        headers,
        lang,
    } = req;
    let (id, lang) = (id.as_str(), *lang);
    let refresh = refresh_seconds(config.idle_timeout_seconds);
    let Some(token) = cookie(headers, TOKEN_COOKIE) else {
        let view = block(
            lang.msg("title_queue"),
            &[p(lang.msg("nojs_intro")), join_form(id, lang, q)],
        );
        return room(StatusCode::OK, id, config, lang, &view, None);
    };
    let refresh_note = || {
        format!(
            "<p class=\"muted\">{}</p>",
            escape(&lang.fmt("nojs_refresh", &[("n", &lang.number(u64::from(refresh)))]))
        )
    };
    let hint = cookie(headers, HINT_COOKIE);
    let (place, next_hint) = match st.room.status_hinted(token, hint).await {
        Ok(answer) => {
            if answer.from_log {
                st.metrics.status_reads_from_log.inc();
            }
            (answer.place, answer.poll_hint)
        }
        Err(
            QueueError::Unavailable(_) | QueueError::Overloaded | QueueError::NotReplicated { .. },
        ) => {
            let view = block(
                lang.msg("busy_title"),
                &[p(lang.msg("busy_page")), refresh_note()],
            );
            return room(StatusCode::OK, id, config, lang, &view, Some(refresh));
        }
        // Unknown, expired or from an earlier incarnation of the event: the place is gone.
        Err(_) => return expired(id, config, lang, q, headers),
    };
    let (view, refresh) = match place.status {
        // A lottery shows no position: everyone waiting has the same chance at each draw.
        Status::Waiting if place.queueing_method == QueueingMethod::Random => (
            block(
                lang.msg("title_lottery"),
                &[p(lang.msg("lead_lottery")), refresh_note()],
            ),
            Some(refresh),
        ),
        Status::Waiting => (
            block(
                lang.msg("title_queue"),
                &[
                    p(lang.msg("lead_place")),
                    format!(
                        "<p class=\"big\" id=\"nojs-position\" data-position=\"{}\">{}</p>",
                        place.position,
                        escape(&lang.number(place.position))
                    ),
                    format!(
                        "<p class=\"muted\">{}</p>",
                        escape(&eta_text(lang, place.eta_seconds))
                    ),
                    refresh_note(),
                ],
            ),
            Some(refresh),
        ),
        Status::PreQueue => {
            let opens = if place.eta_seconds > 0 {
                let mins = (place.eta_seconds as u64).div_ceil(60);
                lang.fmt("opens_in", &[("n", &lang.number(mins))])
            } else {
                lang.msg("opening_now").to_owned()
            };
            let lines = [p(lang.msg("lead_prequeue")), p(&opens), refresh_note()];
            (block(lang.msg("title_prequeue"), &lines), Some(refresh))
        }
        Status::Ready | Status::Admitted => {
            let form = format!(
                "<form method=\"post\" action=\"/e/{id}/enter{}\"><button type=\"submit\" id=\"nojs-enter\">{}</button></form>",
                q.suffix(),
                escape(lang.msg("enter"))
            );
            // No reload here: it could interrupt the visitor on the way to the button.
            (
                block(lang.msg("turn_title"), &[p(lang.msg("ready_lead")), form]),
                None,
            )
        }
        Status::Expired => return expired(id, config, lang, q, headers),
        Status::SoldOut => (
            block(lang.msg("sold_out_title"), &[p(lang.msg("sold_out_wait"))]),
            None,
        ),
    };
    let mut r = room(StatusCode::OK, id, config, lang, &view, refresh);
    // The next reload's hint; a place that no longer waits drops the old one.
    let next_hint = next_hint.filter(|h| cookie_safe(h));
    if next_hint.is_some() || hint.is_some() {
        let v = set_cookie(headers, id, HINT_COOKIE, next_hint.as_deref());
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn expired(
    id: &str, config: &EventConfig, lang: Lang, q: &PageQuery, headers: &HeaderMap,
) -> Response {
    let view = block(
        lang.msg("expired_title"),
        &[p(lang.msg("expired")), join_form(id, lang, q)],
    );
    let mut r = room(StatusCode::OK, id, config, lang, &view, None);
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(headers, id, TOKEN_COOKIE, None),
    );
    r
}

fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /e/{event_id}/join`: joins (or finds the standing place of this browser's session),
/// keeps the waiting token in a cookie and redirects to the page (303).
pub async fn join(State(st): State<AppState>, req: PageRequest) -> Response {
    let PageRequest {
        id,
        q,
        headers,
        lang,
    } = req;
    let config = match config_of(&st, &id).await {
        Ok(config) => config,
        Err(e) => return unavailable(lang, &e),
    };
    let outcome = match st.challenges.check(&id, None).await {
        Ok(()) => {
            let session = cookie(&headers, SESSION_COOKIE)
                .filter(|s| cookie_safe(s) && s.len() <= 64)
                .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
            st.room
                .join(&id, &session, None)
                .await
                .map(|j| (j, session))
                .map_err(ApiError::from)
        }
        Err(e) => Err(ApiError::from(e)),
    };
    match outcome {
        Ok((joined, session)) if cookie_safe(&joined.waiting_token) => {
            if joined.created {
                st.metrics.joins.get_or_create(&Metrics::event(&id)).inc();
            }
            let mut r = see_other(&format!("/e/{id}{}", q.suffix()));
            for (name, value) in [
                (TOKEN_COOKIE, &joined.waiting_token),
                (SESSION_COOKIE, &session),
            ] {
                r.headers_mut().append(
                    header::SET_COOKIE,
                    set_cookie(&headers, &id, name, Some(value)),
                );
            }
            r
        }
        Ok(_) => {
            tracing::warn!("waiting token not cookie-safe");
            unavailable(lang, &QueueError::Unavailable("token".into()))
        }
        Err(e) => {
            let (status, code) = e.status_and_code();
            let (title, text, again) = match code {
                "QUEUE_CLOSED" => ("closed_title", "closed", false),
                "EVENT_CLOSED" => ("sold_out_title", "sold_out", false),
                "CHALLENGE_REQUIRED" | "CHALLENGE_FAILED" => ("title_queue", "needs_js", false),
                "EVENT_NOT_FOUND" => ("not_found_title", "not_found", false),
                _ => ("busy_title", "busy_page", true),
            };
            let mut lines = vec![p(lang.msg(text))];
            if again {
                lines.push(join_form(&id, lang, &q));
            }
            let view = block(lang.msg(title), &lines);
            let mut r = room(status, &id, &config, lang, &view, None);
            if let Some(retry) = e.into_response().headers().get(header::RETRY_AFTER) {
                r.headers_mut().insert(header::RETRY_AFTER, retry.clone());
            }
            r
        }
    }
}

/// `POST /e/{event_id}/enter`: takes the admission of the cookie's place and redirects to the
/// event's `target_url` with `reservation_token` appended (303); without a target, a page
/// saying until when the admission holds. Anything else goes back to the page, which shows
/// where the place stands.
pub async fn enter(State(st): State<AppState>, req: PageRequest) -> Response {
    let PageRequest {
        id,
        q,
        headers,
        lang,
    } = req;
    let back = format!("/e/{id}{}", q.suffix());
    let Some(token) = cookie(&headers, TOKEN_COOKIE) else {
        return see_other(&back);
    };
    let grant = match st.room.enter(token).await {
        Ok(g) => g,
        Err(_) => return see_other(&back),
    };
    let target = match config_of(&st, &id).await {
        Ok(config) => config.target_url.clone(),
        Err(e) => return unavailable(lang, &e),
    };
    match target {
        Some(t) => {
            let sep = if t.contains('?') { '&' } else { '?' };
            see_other(&format!(
                "{t}{sep}reservation_token={}",
                grant.reservation_token
            ))
        }
        None => {
            let fmt = time::macros::format_description!("[hour]:[minute] UTC");
            let until = grant.valid_until.format(&fmt).unwrap_or_default();
            message_page_in(
                StatusCode::OK,
                lang,
                lang.msg("in_title"),
                &escape(&lang.fmt("in_until", &[("time", &until)])),
                "",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloads_come_well_within_the_idle_timeout() {
        assert_eq!(refresh_seconds(3600), 20);
        assert_eq!(refresh_seconds(30), 10);
        assert_eq!(refresh_seconds(2), 1);
    }
}
