//! The operator console (`/admin`): sign-in, the session cookie and its CSRF token over HTTP,
//! the live feed over its WebSocket, and the page itself in a real headless Chromium (Debian's
//! `chromium` and `chromium-driver`, as in tests/browser.rs) following a queue under load and
//! pausing admissions. Screenshots go to `<target dir>/console-screenshots/`.

mod common;
#[path = "console/page.rs"]
mod page;
#[path = "console/session.rs"]
mod session;

use common::admin_http::newest_audit;
use common::*;
use fantoccini::Locator;
use page::*;
use queue::clock::ManualClock;
use serde_json::{json, Value};
use session::*;
use std::sync::Arc;
use std::time::Duration;
use testkit::RedisServer;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The console's event "cons" as the admin API shows it.
async fn cons(base: &str) -> Value {
    get_event(base, "cons").await
}

#[tokio::test]
async fn sign_in_sets_a_strict_cookie_and_changes_need_the_csrf_token() {
    let redis = RedisServer::start().unwrap();
    let clock = Arc::new(ManualClock::at_system_now());
    let url = redis.url();
    let flags = ["--redis-url", &url, "--console-session-ttl-seconds", "3600"];
    let gw = TestGateway::start_with_clock(&flags, clock.clone()).await;
    let base = gw.url("");
    let config = json!({"admit_per_second": 3, "max_active": 50});
    assert_eq!(put_event(&base, "cons", config).await.status, 201);

    // A wrong token: refused, no cookie; a browser gets the form again.
    let r = sign_in(&base, "not-the-token", &[]).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    let r = sign_in(&base, "not-the-token", &[("accept", "text/html")]).await;
    assert_eq!(r.status(), 401);
    let form = r.text().await.unwrap();
    assert!(form.contains("That is not the admin token"));

    // The right token: 303 to /admin (no token in it) with an HttpOnly, SameSite=Strict
    // cookie for /admin that does not carry the token either.
    let r = sign_in(&base, ADMIN, &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/admin");
    let (cookie, header) = set_cookie(r.headers());
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=3600"] {
        assert!(header.contains(attr), "{attr} in {header}");
    }
    assert!(!header.contains("Secure"), "plain http: {header}");
    assert!(!header.contains(ADMIN), "{header}");
    let https = sign_in(&base, ADMIN, &[("x-forwarded-proto", "https")]).await;
    assert!(set_cookie(https.headers()).1.contains("; Secure"));

    // Without a session the page is the sign-in form, a form that posts (no token in a URL).
    let anon = client().get(gw.url("/admin")).send().await.unwrap();
    let csp = anon.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let form = anon.text().await.unwrap();
    assert!(form.contains("method=\"post\" action=\"/admin/sign-in\""));
    assert!(!form.contains("csrf-token"));
    let csrf = csrf_of(&base, &cookie).await;
    let me = Console {
        base: &base,
        cookie: &cookie,
    };

    // Reads need only the cookie.
    let r = console_get(me, "/admin/v1/events/cons").await;
    assert_eq!(r.status, 200, "{}", r.body);

    // A change with the cookie but no or a wrong CSRF token: 403, nothing changed.
    let change = json!({"admit_per_second": 9, "max_active": 50});
    let stop = json!({"action": "STOP_ADMISSIONS", "confirm": true});
    let others = csrf_of(&base, &sign_in_cookie(&base).await).await;
    for token in [None, Some("0".repeat(64)), Some(others)] {
        let r = console_put(me, "/admin/v1/events/cons", token.as_deref(), &change).await;
        assert_eq!(r.status, 403, "{token:?}: {}", r.body);
        assert_eq!(r.code(), "CSRF_FAILED");
        assert_eq!(cons(&base).await["admit_per_second"], 3);
    }
    let actions = "/admin/v1/events/cons/actions";
    let r = console_post(me, actions, None, Some(&stop)).await;
    assert_eq!(r.code(), "CSRF_FAILED");
    assert_eq!(cons(&base).await["admissions_stopped"], false);

    // With it: done, and in the audit trail as the console session's change.
    let r = console_put(me, "/admin/v1/events/cons", Some(&csrf), &change).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(cons(&base).await["admit_per_second"], 9);
    let entry = newest_audit(&base).await;
    assert_eq!(entry["action"], "event.update", "{entry}");
    assert_eq!(entry["after"]["admit_per_second"], 9);
    let actor = entry["actor"].as_str().unwrap().to_owned();
    assert!(actor.starts_with("console:"), "{entry}");
    let r = console_post(me, actions, Some(&csrf), Some(&stop)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(newest_audit(&base).await["actor"], actor.as_str());
    // The bearer token's changes say so.
    let config = json!({"admit_per_second": 4, "max_active": 50});
    put_event(&base, "cons", config).await;
    assert_eq!(newest_audit(&base).await["actor"], "admin-token");

    // A tampered cookie is no session.
    let last = if cookie.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &cookie[..cookie.len() - 1]);
    let cookie = forged.as_str();
    let r = console_get(Console { cookie, ..me }, "/admin/v1/events/cons").await;
    assert_eq!(r.code(), "UNAUTHORIZED");

    // The live feed: the history, then samples that show the event.
    let anonymous = send(client().get(gw.url("/admin/ws"))).await;
    assert_eq!(anonymous.code(), "UNAUTHORIZED");
    let mut req = gw
        .url("/admin/ws")
        .replace("http", "ws")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("cookie", me.cookie.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let within = Duration::from_secs(10);
    let first = next_json(&mut ws, within).await;
    assert_eq!(first["type"], "history");
    assert_eq!(first["interval_ms"], 1000);
    assert_eq!(join(&base, "cons", "someone").await.status, 201);
    let sample = loop {
        let m = next_json(&mut ws, within).await;
        assert_eq!(m["type"], "sample");
        let events = m["events"].as_array().unwrap();
        let e = events.iter().find(|e| e["event_id"] == "cons").cloned();
        if let Some(e) = e.filter(|e| e["waiting"] == 1) {
            break e;
        }
    };
    assert_eq!(sample["admit_per_second"], 4);
    assert_eq!(sample["admissions_stopped"], true);
    assert_eq!(sample["eta_last_seconds"], -1, "paused: no estimate");

    // Sign-out needs the CSRF token too, then clears the cookie.
    let r = console_post(me, "/admin/sign-out", None, None).await;
    assert_eq!(r.status, 403);
    let r = console_post(me, "/admin/sign-out", Some(&csrf), None).await;
    assert_eq!(r.status, 204);
    assert!(set_cookie(&r.headers).1.contains("Max-Age=0"));

    // Sessions end after --console-session-ttl-seconds.
    clock.advance_ms(3_600_000);
    let r = console_get(me, "/admin/v1/events/cons").await;
    assert_eq!(r.code(), "UNAUTHORIZED", "an expired session");
    // A replica that shuts down closes the consoles' sockets (going away: they reconnect).
    gw.shutdown().await;
    let close = loop {
        let m = next_json(&mut ws, within).await;
        if let Some(code) = m.get("closed") {
            break code.clone();
        }
    };
    assert_eq!(close, 1001);
}

#[tokio::test]
async fn the_console_follows_a_queue_under_load_and_pauses_admissions() {
    let redis = RedisServer::start().unwrap();
    let gw = TestGateway::start(&["--redis-url", &redis.url(), "--admission-tick-ms", "50"]).await;
    let base = gw.url("");
    for (id, rate, max) in [("spring-sale", 0, 1000), ("autumn-tour", 5, 100)] {
        let config = json!({"admit_per_second": rate, "max_active": max});
        put_event(&base, id, config).await;
    }

    let (_driver, b, profile) = start_browser("console", (1280, 1100)).await;
    sign_in_on_page(&b, &gw.url("/admin"), Some("sign-in.png")).await;
    until("the console after sign-in", async || {
        b.find(Locator::Id("stat-waiting")).await.is_ok()
    })
    .await;
    let url = b.current_url().await.unwrap();
    assert_eq!(url.as_str(), gw.url("/admin"), "no token in the URL");
    b.goto(&gw.url("/admin#e=spring-sale")).await.unwrap();
    until("the event on the page", async || {
        value(&b, "stat-waiting").await == Some(0.0)
    })
    .await;

    // Load: people join while the console is open; the page follows without a reload.
    for i in 0..40 {
        let fan = format!("fan-{i}");
        assert_eq!(join(&base, "spring-sale", &fan).await.status, 201);
    }
    until("40 waiting on the page", async || {
        value(&b, "stat-waiting").await == Some(40.0)
    })
    .await;

    // The API's refusals reach the operator (and change nothing).
    type_into(&b, "f-rate", "2000000").await;
    click(&b, Locator::Id("save")).await;
    until("the API's error on the page", async || {
        text_of(&b, "errors").await.contains("INVALID_ARGUMENT")
    })
    .await;
    assert_eq!(get_event(&base, "spring-sale").await["admit_per_second"], 0);

    // Open the gate from the console's form: 2 per second.
    type_into(&b, "f-rate", "2").await;
    click(&b, Locator::Id("save")).await;
    until("admissions on the page", async || {
        value(&b, "stat-admitted").await.is_some_and(|n| n >= 2.0)
            && value(&b, "stat-waiting").await.is_some_and(|n| n < 40.0)
    })
    .await;
    let e = get_event(&base, "spring-sale").await;
    assert_eq!(e["admit_per_second"], 2, "saved through the admin API");
    let actor = newest_audit(&base).await["actor"].clone();
    assert!(actor.as_str().unwrap().starts_with("console:"), "{actor}");
    // A few seconds of admissions for the picture (docs/img/console.png comes from it).
    until("six admitted", async || {
        value(&b, "stat-admitted").await.is_some_and(|n| n >= 6.0)
    })
    .await;
    shot(&b, "console.png").await;

    // Pause: admissions stop, on the page and in the API.
    click(&b, Locator::Id("pause")).await;
    until("paused on the page", async || {
        let ev = b.find(Locator::Id("event")).await.unwrap();
        ev.attr("data-stopped").await.unwrap().as_deref() == Some("true")
    })
    .await;
    let paused = get_event(&base, "spring-sale").await;
    assert_eq!(paused["admissions_stopped"], true);
    let admitted = paused["stats"]["admitted_total"].as_u64().unwrap();
    let waiting = paused["stats"]["waiting"].as_u64().unwrap();
    assert!(waiting > 0, "people still wait: {paused}");
    // Three more samples (seconds at the configured rate of 2 per second) and nobody more.
    let seen = samples(&b).await;
    until("three more samples", async || samples(&b).await >= seen + 3).await;
    let on_page = value(&b, "stat-admitted").await;
    assert_eq!(on_page, Some(admitted as f64), "the page");
    let after = get_event(&base, "spring-sale").await;
    let in_api = after["stats"]["admitted_total"].as_u64();
    assert_eq!(in_api, Some(admitted), "the API");
    let text = text_of(&b, "event-flags").await;
    assert!(text.contains("Admissions paused"), "{text}");
    assert_eq!(newest_audit(&base).await["action"], "event.stop_admissions");
    shot(&b, "console-paused.png").await;

    // On a phone: one column, same numbers.
    b.set_window_size(412, 915).await.unwrap();
    shot(&b, "console-phone.png").await;

    // The other event is one click away.
    click(&b, Locator::Css("button[data-event=autumn-tour]")).await;
    until("the other event", async || {
        text_of(&b, "event-title").await == "autumn-tour"
    })
    .await;
    b.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    gw.shutdown().await;
}

#[test]
fn the_docs_describe_the_console_routes() {
    let openapi =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml"))
            .unwrap();
    let api_md =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).unwrap();
    for (method, path) in [
        ("get", "/admin"),
        ("post", "/admin/sign-in"),
        ("post", "/admin/sign-out"),
        ("get", "/admin/ws"),
    ] {
        let block = openapi
            .split(&format!("\n  {path}:\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("{path} missing from openapi.yaml"));
        let block = format!("\n{}", block.split("\n  /").next().unwrap());
        assert!(
            block.contains(&format!("\n    {method}:")),
            "{method} {path} in openapi.yaml"
        );
        assert!(
            api_md.contains(&format!("### {} {path}\n", method.to_uppercase())),
            "{method} {path} in api.md"
        );
    }
    assert!(api_md.contains("`CSRF_FAILED`") && openapi.contains("- CSRF_FAILED"));
}

#[tokio::test]
async fn the_console_retries_and_resolves_dead_letters() {
    let redis = RedisServer::start().unwrap();
    let gw = gateway(&redis, &["--webhook-secret", backends::WEBHOOK_SECRET]).await;
    let base = gw.url("");
    dead_letter(&base, "msg_one").await;
    dead_letter(&base, "msg_two").await;
    let letters = dlq(&base).await;
    assert_eq!(letters.len(), 2);
    let id = |i: usize| letters[i]["id"].as_str().unwrap().to_owned();
    let (newest, oldest) = (id(0), id(1));

    let (_driver, b, profile) = start_browser("console-dlq", (412, 915)).await;
    sign_in_on_page(&b, &gw.url("/admin"), None).await;
    until("two dead letters on the page", async || {
        let listed = b.find_all(Locator::Css("#dlq li[data-id]")).await.unwrap();
        value(&b, "stat-dead").await == Some(2.0) && listed.len() == 2
    })
    .await;
    let li = |id: &str| format!("#dlq li[data-id=\"{id}\"]");
    click(&b, Locator::Css(&format!("{} button", li(&newest)))).await;
    type_into(&b, "dlq-by", "ops on call").await;
    click(
        &b,
        Locator::Css(&format!("{} button.secondary", li(&oldest))),
    )
    .await;
    until("both handled in the API", async || {
        let l = dlq(&base).await;
        let status = |id: &str| {
            l.iter()
                .find(|d| d["id"] == id)
                .map(|d| d["status"].as_str().unwrap_or("").to_owned())
        };
        status(&newest).as_deref() == Some("retried")
            && status(&oldest).as_deref() == Some("resolved")
    })
    .await;
    let letters = dlq(&base).await;
    let resolved = letters.iter().find(|d| d["id"] == oldest.as_str()).unwrap();
    assert_eq!(resolved["resolved_by"], "ops on call");
    let entry = newest_audit(&base).await;
    let action = entry["action"].as_str().unwrap();
    assert!(action.starts_with("dlq."), "{entry}");
    assert!(entry["actor"].as_str().unwrap().starts_with("console:"));
    // (The retried webhook may come back as a new dead letter once its forwards fail: only
    // these two are looked at.)
    until("neither offers buttons any more on the page", async || {
        let mut none = true;
        for id in [&newest, &oldest] {
            let sel = format!("{} button", li(id));
            none &= b.find_all(Locator::Css(&sel)).await.unwrap().is_empty();
        }
        none
    })
    .await;
    shot(&b, "console-dlq.png").await;
    b.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    gw.shutdown().await;
}
