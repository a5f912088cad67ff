//! The waiting page over plain HTTP: per-event page settings, language negotiation, the
//! security headers, and the no-JavaScript path (join form, cookie, refresh as heartbeat,
//! enter) with a hand-kept cookie jar. The script's behaviour is in tests/page_browser.rs.

mod common;

use common::http::*;
use common::*;
use queue::clock::ManualClock;
use serde_json::{json, Value};
use std::sync::Arc;
use testkit::RedisServer;

/// A client that does not follow redirects: the 303s are what is checked.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A `method` request to `url` as a browser without JavaScript sends it, with `cookies` and
/// the languages `lang` (each left out when empty).
async fn browse(
    method: reqwest::Method, url: &str, cookies: &str, lang: &str,
) -> reqwest::Response {
    let mut req = no_redirects().request(method, url);
    for (name, value) in [("cookie", cookies), ("accept-language", lang)] {
        if !value.is_empty() {
            req = req.header(name, value);
        }
    }
    req.send().await.unwrap()
}

async fn page(url: &str, cookies: &str, lang: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = browse(reqwest::Method::GET, url, cookies, lang).await;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

/// Posts a no-JS form to `url`, not following the redirect.
async fn post_form(url: &str, cookies: &str, lang: &str) -> reqwest::Response {
    browse(reqwest::Method::POST, url, cookies, lang).await
}

/// The settings of an event with the page settings `page`, admitting nobody yet.
fn branded(page: Value) -> Value {
    json!({"admit_per_second": 0, "max_active": 5, "page": page})
}

/// `name=value` of every Set-Cookie, joined as a Cookie header.
fn cookie_jar(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The number the no-JS page shows as the visitor's place.
fn nojs_position(html: &str) -> Option<u64> {
    let i = html.find("id=\"nojs-position\" data-position=\"")? + 34;
    html[i..].split('"').next()?.parse().ok()
}

#[tokio::test]
async fn page_settings_are_validated_stored_and_rendered_escaped() {
    let (_redis, gw) = redis_gateway(&[]).await;
    let base = gw.url("");
    for (page, field) in [
        (json!({"accent_color": "blue"}), "page.accent_color"),
        (json!({"logo_url": "javascript:alert(1)"}), "page.logo_url"),
        (json!({"title": "x".repeat(121)}), "page.title"),
        (
            json!({"template": "<script>alert(1)</script>{{queue}}"}),
            "page.template",
        ),
        (
            json!({"template": "<img src=x onerror=alert(1)>{{queue}}"}),
            "page.template",
        ),
        (
            json!({"template": "<a href='javascript:alert(1)'>x</a>{{queue}}"}),
            "page.template",
        ),
        (json!({"template": "<p>{{title}}</p>"}), "page.template"),
        (json!({"colour": "#000000"}), "colour"),
    ] {
        let r = put_event(&base, "brand", branded(page)).await;
        assert_error(&r, 400, "INVALID_ARGUMENT", field);
    }
    let settings = json!({
        "title": "<img src=x onerror=alert(1)>Spring sale",
        "message": "Doors at 10:00 & not before",
        "logo_url": "https://cdn.example/logo.png",
        "accent_color": "#ffd700",
    });
    let r = put_event(
        &base,
        "brand",
        json!({"admit_per_second": 0, "max_active": 5, "page": settings, "target_url": "https://shop.example/buy"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["page"], settings);
    let got = get_event(&base, "brand").await;
    assert_eq!(got["page"], settings, "read back from Redis");

    let (status, headers, html) = page(&gw.url("/e/brand"), "", "en").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;Spring sale"),
        "title escaped"
    );
    assert!(!html.contains("<img src=x"), "no markup from the title");
    assert!(html.contains("Doors at 10:00 &amp; not before"));
    assert!(html.contains("<img class=\"logo\" src=\"https://cdn.example/logo.png\""));
    // Gold is too light for white text: the page picks black for text on the accent.
    assert!(
        html.contains("--accent: #ffd700; --on-accent: #000000;"),
        "readable text on the accent"
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("a script nonce");
    assert!(
        !csp.contains("unsafe-inline'; worker") && !csp.contains("script-src 'unsafe-inline'"),
        "{csp}"
    );
    assert!(
        csp.contains("img-src 'self' data: https://cdn.example;"),
        "{csp}"
    );
    assert!(
        csp.contains("form-action 'self' https://shop.example;"),
        "{csp}"
    );
    assert_eq!(
        html.matches(&format!("nonce=\"{nonce}\"")).count(),
        2,
        "both script elements carry it"
    );
    let (_, again, _) = page(&gw.url("/e/brand"), "", "en").await;
    assert_ne!(
        again["content-security-policy"], headers["content-security-policy"],
        "a nonce per response"
    );

    // A template places the widget; its variables are escaped.
    let template = json!({
        "title": "Sale <b>now</b>",
        "template": "<header class=\"shop\"><h1>{{title}}</h1><p lang=\"{{lang}}\">{{message}}</p></header><section>{{queue}}</section>"
    });
    let r = put_event(&base, "brand", branded(template)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, _, html) = page(&gw.url("/e/brand?lang=fr"), "", "en").await;
    assert!(html.contains("<header class=\"shop\"><h1>Sale &lt;b&gt;now&lt;/b&gt;</h1><p lang=\"fr\"></p></header><section><div class=\"js-only\">"), "{html}");
    assert!(
        html.contains("<h2 id=\"title\">Vous êtes dans la file d’attente</h2>"),
        "the widget under the brand's h1"
    );

    let icon = client().get(gw.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    gw.shutdown().await;
}

#[tokio::test]
async fn accept_language_picks_the_language_and_lang_overrides_it() {
    let gw = TestGateway::start(&[]).await;
    put_event(&gw.url(""), "langs", rate(0, 5)).await;
    let url = gw.url("/e/langs");
    let cases = [
        (
            "",
            "de-AT,de;q=0.9,en;q=0.5",
            "<html lang=\"de\" dir=\"ltr\">",
            "Sie sind in der Warteschlange",
        ),
        (
            "",
            "en;q=0.3, ja;q=0.8",
            "<html lang=\"ja\" dir=\"ltr\">",
            "順番待ちの列に並んでいます",
        ),
        (
            "",
            "pt",
            "<html lang=\"pt-BR\" dir=\"ltr\">",
            "Você está na fila",
        ),
        (
            "",
            "zh-TW, en;q=0.1",
            "<html lang=\"zh-CN\" dir=\"ltr\">",
            "您正在排队",
        ),
        (
            "",
            "nl, *;q=0.1",
            "<html lang=\"en\" dir=\"ltr\">",
            "You are in the queue",
        ),
        (
            "?lang=ar",
            "de",
            "<html lang=\"ar\" dir=\"rtl\">",
            "أنت في قائمة الانتظار",
        ),
        (
            "?lang=ko",
            "",
            "<html lang=\"ko\" dir=\"ltr\">",
            "대기열에 있습니다",
        ),
    ];
    for (query, accept, root, heading) in cases {
        let (status, headers, html) = page(&format!("{url}{query}"), "", accept).await;
        assert_eq!(status, 200);
        assert!(html.contains(root), "{accept} {query}: {}", &html[..120]);
        assert!(html.contains(heading), "{accept} {query}");
        assert_eq!(headers["vary"], "accept-language");
    }
    let (status, _, html) = page(&gw.url("/e/nosuchevent"), "", "es").await;
    assert_eq!(status, 404);
    assert!(html.contains("Esta sala de espera no existe."));
    gw.shutdown().await;
}

#[tokio::test]
async fn without_javascript_a_form_joins_and_each_refresh_holds_the_place() {
    let redis = RedisServer::start().unwrap();
    let clock = Arc::new(ManualClock::at_system_now());
    let gw = TestGateway::start_with_clock(
        &["--redis-url", &redis.url(), "--admission-tick-ms", "20"],
        clock.clone(),
    )
    .await;
    let base = gw.url("");
    let target = "https://shop.example/buy?from=queue";
    let config = |aps: u32| json!({"admit_per_second": aps, "max_active": 5, "idle_timeout_seconds": 30, "target_url": target});
    let r = put_event(&base, "nojs", config(0)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let url = gw.url("/e/nojs");

    // A first visit offers the form, and no reload yet.
    let (_, _, html) = page(&url, "", "de").await;
    assert!(html.contains("<form method=\"post\" action=\"/e/nojs/join\"><button type=\"submit\">Anstellen</button></form>"));
    assert!(!html.contains("http-equiv=\"refresh\""));

    let joined = post_form(&gw.url("/e/nojs/join"), "", "de").await;
    assert_eq!(joined.status(), 303);
    assert_eq!(joined.headers()["location"], "/e/nojs");
    let set: Vec<&str> = joined
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(set.len(), 2, "{set:?}");
    for c in &set {
        assert!(c.ends_with("; Path=/e/nojs; HttpOnly; SameSite=Lax"), "{c}");
    }
    let jar = cookie_jar(joined.headers());
    // Someone joins after, through the API, and never comes back.
    let idle = waiting_token(&base, "nojs", "idle-visitor").await;

    let (_, _, html) = page(&url, &jar, "de").await;
    assert_eq!(nojs_position(&html), Some(1), "the place is shown");
    // Each reload comes well within the 30 s idle timeout.
    assert!(html.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
    assert!(html.contains("Diese Seite lädt sich alle 10 Sekunden neu"));
    // Posting the form again (a double click) keeps the same place.
    let again = post_form(&gw.url("/e/nojs/join"), &jar, "").await;
    assert_eq!(again.status(), 303);
    assert_eq!(
        cookie_jar(again.headers()),
        jar,
        "the same session and token"
    );

    // Refreshes every 10 s for 60 s: twice the idle timeout, and the place holds.
    for _ in 0..6 {
        clock.advance_ms(10_000);
        let (status, _, html) = page(&url, &jar, "de").await;
        assert_eq!(status, 200);
        assert_eq!(nojs_position(&html), Some(1), "{html}");
    }
    assert_eq!(
        status(&base, &idle).await.body["status"],
        "EXPIRED",
        "without reloads a place lapses"
    );

    // Admissions open: the page offers to enter, and entering lands on the target.
    put_event(&base, "nojs", config(10)).await;
    clock.advance_ms(1_000);
    until("the no-JS page offers to enter", async || {
        page(&url, &jar, "en")
            .await
            .2
            .contains("id=\"nojs-enter\">Enter now</button>")
    })
    .await;
    let entered = post_form(&gw.url("/e/nojs/enter"), &jar, "").await;
    assert_eq!(entered.status(), 303);
    let location = entered.headers()["location"].to_str().unwrap();
    let token = location
        .strip_prefix("https://shop.example/buy?from=queue&reservation_token=")
        .unwrap_or_else(|| panic!("{location}"));
    assert_eq!(token.split('.').count(), 3, "a JWT");

    // A place that is gone offers the form again and drops the token cookie.
    let (_, headers, html) = page(&url, "wr_token=not-a-token", "en").await;
    assert!(html.contains("Your place has expired"));
    assert!(html.contains("action=\"/e/nojs/join\""));
    let cleared = headers["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("wr_token=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn without_javascript_a_challenge_event_says_javascript_is_needed() {
    let gw = TestGateway::start(&[]).await;
    let challenged =
        json!({"admit_per_second": 0, "max_active": 5, "join_challenge": {"difficulty_bits": 8}});
    put_event(&gw.url(""), "pow", challenged).await;
    let r = post_form(&gw.url("/e/pow/join?lang=it"), "", "").await;
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    let html = r.text().await.unwrap();
    assert!(html.contains("Questa sala d’attesa richiede JavaScript."));
    gw.shutdown().await;
}

#[tokio::test]
async fn without_javascript_a_lottery_shows_no_place_and_a_closed_queue_takes_nobody() {
    let gw = TestGateway::start(&[]).await;
    let base = gw.url("");
    let lottery = json!({"admit_per_second": 0, "max_active": 5, "queueing_method": "random"});
    assert_eq!(put_event(&base, "draw", lottery).await.status, 201);
    // Two ahead, so that a position would be shown if one were.
    join(&base, "draw", "ahead-1").await;
    join(&base, "draw", "ahead-2").await;
    let joined = post_form(&gw.url("/e/draw/join?lang=fr"), "", "").await;
    assert_eq!(joined.status(), 303);
    let jar = cookie_jar(joined.headers());
    let (status, _, html) = page(&gw.url("/e/draw?lang=fr"), &jar, "en").await;
    assert_eq!(status, 200);
    assert!(html.contains("Vous participez au tirage au sort"), "{html}");
    assert_eq!(nojs_position(&html), None, "a lottery shows no place");
    // Still a heartbeat: the page reloads itself.
    assert!(html.contains("http-equiv=\"refresh\""));

    let closed = json!({"admit_per_second": 5, "max_active": 5, "queueing_method": "reject"});
    assert_eq!(put_event(&base, "shut", closed).await.status, 201);
    let r = post_form(&gw.url("/e/shut/join?lang=fr"), "", "").await;
    assert_eq!(r.status(), 403);
    assert!(
        r.headers().get("set-cookie").is_none(),
        "no place, no cookie"
    );
    assert!(r.text().await.unwrap().contains("La file est fermée"));
    gw.shutdown().await;
}

/// The `wr_hint` cookie a page of the event `hinted` sets: Some(value), Some("") when it deletes
/// it, None when it leaves it alone.
fn hint_cookie(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let c = headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("wr_hint="))?;
    assert!(
        c.contains("; Path=/e/hinted; HttpOnly; SameSite=Lax"),
        "{c}"
    );
    let value = c["wr_hint=".len()..].split(';').next().unwrap();
    assert_eq!(value.is_empty(), c.contains("Max-Age=0"), "{c}");
    Some(value.to_owned())
}

#[tokio::test]
async fn without_javascript_reloads_carry_the_poll_hint_and_skip_redis() {
    // Nobody is admitted yet: the position moves only when someone ahead leaves.
    let idle = json!({"admit_per_second": 0, "max_active": 5, "idle_timeout_seconds": 3600});
    let (redis, gw, base) = redis_event(&[], "hinted", idle).await;
    let ahead = waiting_token(&base, "hinted", "ahead").await;
    let joined = post_form(&gw.url("/e/hinted/join"), "", "").await;
    assert_eq!(joined.status(), 303);
    let jar = cookie_jar(joined.headers());
    let url = gw.url("/e/hinted");

    // The first load reads Redis and hands out the hint with the place.
    let (_, headers, html) = page(&url, &jar, "").await;
    assert_eq!(nojs_position(&html), Some(2), "{html}");
    let mut hint = hint_cookie(&headers).expect("a waiting place's page sets wr_hint");
    assert!(!hint.is_empty());
    // A reload with it may still go to Redis (the replica starts following the event's log);
    // from then on reloads are answered from the log.
    let reload = async |hint: &mut String| {
        let (status, headers, html) = page(&url, &format!("{jar}; wr_hint={hint}"), "").await;
        assert_eq!(status, 200);
        if let Some(next) = hint_cookie(&headers) {
            *hint = next;
        }
        nojs_position(&html)
    };
    assert_eq!(reload(&mut hint).await, Some(2));
    let hinted_calls = script_calls_during(&redis, async || {
        for _ in 0..200 {
            assert_eq!(reload(&mut hint).await, Some(2));
        }
    })
    .await;
    let plain_calls = script_calls_during(&redis, async || {
        for _ in 0..200 {
            assert_eq!(nojs_position(&page(&url, &jar, "").await.2), Some(2));
        }
    })
    .await;
    // A page load reads the place (one script call, unless the hint answers it); the event's
    // settings come from what the replica keeps of them (read at most once a second). The
    // background loops add a few calls a second.
    assert!(
        plain_calls >= 200,
        "200 reloads without the hint made {plain_calls} script calls"
    );
    assert!(
        hinted_calls < 60,
        "200 hinted reloads made {hinted_calls} script calls (without the hint: {plain_calls})"
    );

    // Someone ahead leaves: the hinted reloads see it.
    assert_eq!(leave(&base, &ahead).await.status, 204);
    until("the hinted page to show the place moved up", async || {
        reload(&mut hint).await == Some(1)
    })
    .await;
    // A hint that does not verify is ignored and replaced.
    let mut forged = "forged".to_owned();
    assert_eq!(reload(&mut forged).await, Some(1));
    assert_ne!(forged, "forged", "a new hint replaces the forged one");

    // Admissions open: the place is READY and the page drops the hint.
    put_event(
        &base,
        "hinted",
        json!({"admit_per_second": 10, "max_active": 5}),
    )
    .await;
    until("the no-JS page offers to enter", async || {
        reload(&mut hint).await.is_none()
    })
    .await;
    assert_eq!(hint, "", "a place that no longer waits deletes wr_hint");
    let (_, _, html) = page(&url, &jar, "en").await;
    assert!(
        html.contains("id=\"nojs-enter\">Enter now</button>"),
        "{html}"
    );
    gw.shutdown().await;
}
