//! The HTML pages: the waiting room at `/e/{event_id}` in the sale's brand and the buyer's
//! language (with a no-JavaScript path, [`nojs`]), the index, the maintenance and error pages,
//! and the favicon.

pub mod i18n;
pub mod nojs;
pub mod render;

use crate::error::{self, ApiError};
use crate::AppState;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use i18n::Lang;
use queue::ids::EventId;
use queue::model::EventConfig;
use queue::page::{parse_hex_color, PageSettings};
use render::{escape, Template};
use serde::Deserialize;
use serde_json::json;
use std::sync::{Arc, LazyLock};

/// The page around the body (split once at its variables, as are the two templates below).
static ROOM_PAGE: LazyLock<Template<'static>> =
    LazyLock::new(|| Template::parse(include_str!("room.html")));

/// The queue widget: the script's live view, and the server-rendered place for browsers
/// without JavaScript. Placeholders: `{{h}}` (heading level), `{{t_<key>}}` (messages),
/// `{{nojs}}`.
static WIDGET: LazyLock<Template<'static>> = LazyLock::new(|| Template::parse(WIDGET_HTML));
const WIDGET_HTML: &str = r#"<div class="js-only">
<{{h}} id="title">{{t_title_queue}}</{{h}}>
<div id="live" role="status" aria-live="polite" aria-atomic="true">
<p id="lead" class="muted">{{t_lead_joining}}</p>
<p class="big" id="position" data-position=""></p>
<p id="eta" class="muted"></p>
</div>
<div class="bar" id="bar-wrap" role="progressbar" aria-label="{{t_progress}}" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0" hidden><div id="bar"></div></div>
<p id="paused" class="banner warn" hidden>{{t_paused}}</p>
<p id="problem" class="banner bad" role="alert" hidden></p>
<button id="again" type="button" hidden>{{t_again}}</button>
<p class="muted" id="note">{{t_note}}</p>
</div>
<noscript>{{nojs}}</noscript>"#;

/// The body when the event has no template.
static DEFAULT_TEMPLATE: LazyLock<Template<'static>> =
    LazyLock::new(|| Template::parse(DEFAULT_HTML));
const DEFAULT_HTML: &str = r#"<div class="band"></div>
<main id="main">
<div class="card">
{{logo}}{{brand}}{{message_block}}{{queue}}
</div>
</main>"#;

/// The icon of every page (and `/favicon.ico`): a ring in the default accent.
const FAVICON_SVG: &str = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'><circle cx='8' cy='8' r='6' fill='none' stroke='#1f5fd1' stroke-width='3'/></svg>";

/// Query of the page routes.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    /// Overrides `Accept-Language` (`en`, `de`, `pt-BR`, …).
    #[serde(default)]
    pub lang: Option<String>,
}

/// What every route of an event's page reads of its request: the event id in the path, the
/// query, the headers, and the language those ask for.
pub struct PageRequest {
    pub id: String,
    pub q: PageQuery,
    pub headers: HeaderMap,
    pub lang: Lang,
}

impl<S: Send + Sync> FromRequestParts<S> for PageRequest {
    /// The rejections of `Path` and `Query`, as those extractors answer them.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Query(q) = Query::<PageQuery>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let lang = q.lang(&headers);
        Ok(Self {
            id,
            q,
            headers,
            lang,
        })
    }
}

impl PageQuery {
    pub fn lang(&self, headers: &HeaderMap) -> Lang {
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        i18n::negotiate(accept, self.lang.as_deref())
    }

    /// `?lang=…` to carry an explicit choice into the page's own links and forms.
    pub fn suffix(&self) -> String {
        match self.lang.as_deref().and_then(i18n::lookup) {
            Some(l) => format!("?lang={}", l.tag()),
            None => String::new(),
        }
    }
}

/// A fresh per-response CSP nonce.
fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The sources a page may use beyond its own: images from the logo's origin, form posts
/// (followed by redirects) to the target's origin.
#[derive(Default)]
struct Sources<'a> {
    img: Option<&'a str>,
    form: Option<&'a str>,
}

/// The headers of every HTML page of the gateway (the waiting room's and the console's) but its
/// Content-Security-Policy: never cached, never sniffed, no referrer.
pub(crate) fn html_headers() -> [(header::HeaderName, &'static str); 4] {
    [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ]
}

fn html(status: StatusCode, nonce: Option<&str>, src: Sources<'_>, body: String) -> Response {
    // Scripts run only with this response's nonce: no inline handlers, nothing injected.
    let script = nonce.map_or("'none'".to_owned(), |n| format!("'nonce-{n}'"));
    let img = src.img.map(|o| format!(" {o}")).unwrap_or_default();
    let form = src.form.map(|o| format!(" {o}")).unwrap_or_default();
    let csp = format!(
        "default-src 'none'; script-src {script}; worker-src blob:; style-src 'unsafe-inline'; img-src 'self' data:{img}; connect-src 'self'; base-uri 'none'; form-action 'self'{form}; frame-ancestors 'none'"
    );
    let mut r = (status, html_headers(), body).into_response();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-language"));
    r
}

fn favicon_data_url() -> &'static str {
    static URL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "data:image/svg+xml,{}",
            FAVICON_SVG
                .replace('<', "%3C")
                .replace('>', "%3E")
                .replace('#', "%23")
                .replace(' ', "%20")
        )
    });
    &URL
}

/// A short page: a heading and a paragraph (both already HTML), in `lang`.
pub fn message_page_in(
    status: StatusCode, lang: Lang, title: &str, html_text: &str, head: &str,
) -> Response {
    let (light, dark) = (render::LIGHT.css(None), render::DARK.css(None));
    let body = format!(
        "<!doctype html><html lang=\"{tag}\" dir=\"{dir}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title><link rel=\"icon\" href=\"{icon}\">{head}<style>:root {{ color-scheme: light dark; {light} }} @media (prefers-color-scheme: dark) {{ :root {{ {dark} }} }} body {{ font: 17px/1.5 system-ui, sans-serif; max-width: 34rem; margin: 2rem auto; padding: 0 1rem; color: var(--fg); background: var(--bg); }} a {{ color: inherit; }}</style></head><body><main><h1>{title}</h1><p>{html_text}</p></main></body></html>",
        tag = lang.tag(),
        dir = lang.dir(),
        title = escape(title),
        icon = favicon_data_url(),
    );
    html(status, None, Sources::default(), body)
}

/// The page of `/` and `/e/{event_id}` during MAINTENANCE_MODE: 503 with Retry-After, both
/// from the error table; the page reloads itself after that long (a meta refresh: no script
/// needed).
pub fn maintenance_page() -> Response {
    let p = error::page(&ApiError::Maintenance);
    let secs = p.retry_after.unwrap_or(error::MAINTENANCE_RETRY_AFTER_SECS);
    let mut r = message_page_in(
        p.status,
        Lang::EN,
        p.title,
        &format!("{} It reloads itself every {secs} seconds.", p.text),
        &format!("<meta http-equiv=\"refresh\" content=\"{secs}\">"),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// The page for an event that cannot be read; status and `Retry-After` come from the error
/// table ([`error::page`]): 404, a "please wait" 503, or (a bug) a 500 that says reloading
/// will not help.
fn unavailable(lang: Lang, e: &queue::QueueError) -> Response {
    let api = ApiError::from(e.clone());
    let p = error::page(&api);
    let (title, text) = if p.status == StatusCode::NOT_FOUND {
        (lang.msg("not_found_title"), escape(lang.msg("not_found")))
    } else if p.retry_after.is_some() {
        (lang.msg("busy_title"), escape(lang.msg("busy_page")))
    } else {
        // A bug, not a passing state: no translation, the table's words.
        (p.title, p.text.to_owned())
    };
    if p.status != StatusCode::NOT_FOUND {
        tracing::warn!(error = %e, "waiting-room page unavailable");
    }
    let mut r = message_page_in(p.status, lang, title, &text, "");
    if let Some(secs) = p.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// The waiting-room page of an event, with `nojs` as what browsers without JavaScript see in
/// the widget and `refresh` (seconds) as their reload interval, if any.
fn room(
    status: StatusCode, id: &str, config: &EventConfig, lang: Lang, nojs: &str,
    refresh: Option<u32>,
) -> Response {
    // Borrowed, not cloned: an operator's template may be 32 KiB.
    let default = PageSettings::default();
    let page = config.page.as_ref().unwrap_or(&default);
    let accent = page.accent_color.as_deref().and_then(parse_hex_color);
    let branded = page.title.is_some() || page.template.is_some();
    let widget = WIDGET.fill(|k| match k {
        "h" => if branded { "h2" } else { "h1" }.to_owned(),
        "nojs" => nojs.to_owned(),
        k => k
            .strip_prefix("t_")
            .map(|k| escape(lang.msg(k)))
            .unwrap_or_default(),
    });
    let body = render_body(page, lang, &widget);
    let nonce = nonce();
    let script_config = json!({
        "event_id": id,
        "target_url": config.target_url,
        "challenge_bits": config.challenge_bits(),
        "lang": lang.tag(),
        "brand": page.title,
    });
    // Inside <script>, "<" must not open a tag: JSON allows the escape. The messages, the same
    // for every page of a language, are spliced in as made once (`messages_json`).
    let mut script_config = script_config.to_string().replace('<', "\\u003c");
    script_config.pop();
    script_config.push_str(",\"messages\":");
    script_config.push_str(lang.messages_json());
    script_config.push('}');
    let doc_title = match &page.title {
        Some(t) => format!("{} \u{2013} {t}", lang.msg("title_queue")),
        None => lang.msg("title_queue").to_owned(),
    };
    let out = ROOM_PAGE.fill(|k| match k {
        "lang" => lang.tag().to_owned(),
        "dir" => lang.dir().to_owned(),
        "doc_title" => escape(&doc_title),
        "favicon" => favicon_data_url().to_owned(),
        "light" => render::LIGHT.css(accent),
        "dark" => render::DARK.css(accent),
        "refresh" => refresh
            .map(|n| format!("<meta http-equiv=\"refresh\" content=\"{n}\">"))
            .unwrap_or_default(),
        "body" => body.clone(),
        "config" => script_config.clone(),
        "nonce" => nonce.clone(),
        _ => String::new(),
    });
    let src = Sources {
        img: page.logo_url.as_deref().and_then(render::origin),
        form: config.target_url.as_deref().and_then(render::origin),
    };
    html(status, Some(&nonce), src, out)
}

/// The page's body: the operator's template (or the default one) with its variables filled,
/// every value HTML-escaped, `{{queue}}` the widget.
fn render_body(page: &PageSettings, lang: Lang, widget: &str) -> String {
    let opt = |v: &Option<String>| v.as_deref().map(escape).unwrap_or_default();
    let operators = page.template.as_deref().map(Template::parse);
    operators
        .as_ref()
        .unwrap_or(&DEFAULT_TEMPLATE)
        .fill(|k| match k {
            "queue" => widget.to_owned(),
            "title" => opt(&page.title),
            "message" => opt(&page.message),
            "logo_url" => opt(&page.logo_url),
            "accent_color" => opt(&page.accent_color),
            "lang" => lang.tag().to_owned(),
            // The default template's own parts (operators' templates cannot name them).
            "logo" => page
                .logo_url
                .as_deref()
                .map(|u| format!("<img class=\"logo\" src=\"{}\" alt=\"\">", escape(u)))
                .unwrap_or_default(),
            "brand" => page
                .title
                .as_deref()
                .map(|t| format!("<h1 class=\"brand\" id=\"brand\">{}</h1>", escape(t)))
                .unwrap_or_default(),
            "message_block" => page
                .message
                .as_deref()
                .map(|m| format!("<p class=\"message\">{}</p>", escape(m)))
                .unwrap_or_default(),
            _ => String::new(),
        })
}

/// `GET /e/{event_id}`: the waiting-room page.
pub async fn room_page(State(st): State<AppState>, req: PageRequest) -> Response {
    match config_of(&st, &req.id).await {
        Ok(config) => nojs::page(&st, &req, &config).await,
        Err(e) => unavailable(req.lang, &e),
    }
}

/// The event's configuration as this replica keeps it ([`queue::configs::EventConfigs`]: read
/// from the store at most once a second), so that a page load is not a store call.
async fn config_of(st: &AppState, id: &str) -> queue::error::Result<Arc<EventConfig>> {
    st.configs.get(&EventId::parse(id)?).await
}

/// `GET /favicon.ico`: the pages' icon (SVG), so that browsers asking for it get one.
pub async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        FAVICON_SVG,
    )
        .into_response()
}

/// `GET /`: a short index; with the embedded store it links the demo waiting room.
pub async fn index(State(st): State<AppState>) -> Response {
    let demo = config_of(&st, crate::DEMO_EVENT).await.is_ok();
    let link = if demo {
        "<p>Try the demo waiting room: <a href=\"/e/demo\">/e/demo</a>.</p>"
    } else {
        ""
    };
    message_page_in(
        StatusCode::OK,
        Lang::EN,
        "Admission gateway",
        &format!("A fair virtual waiting room. The HTTP API is under <code>/api/v1</code>; waiting-room pages are at <code>/e/&lt;event_id&gt;</code>.</p>{link}<p>"),
        "",
    )
}
