//! The operator console (`/admin`): sign-in, the session cookie and its CSRF token over HTTP,
//! the live feed over its WebSocket, and the page itself in a real headless Chromium (Debian's
//! `chromium` and `chromium-driver`, as in tests/browser.rs) following a queue under load and
//! pausing admissions. Screenshots go to `<target dir>/console-screenshots/`.

mod common;
#[path = "console/page.rs"]
mod page;

use common::*;
use fantoccini::Locator;
use futures::StreamExt;
use page::*;
use queue::clock::ManualClock;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use testkit::RedisServer;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Signs in with `token`: the response.
async fn sign_in(base: &str, token: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut req = no_redirects()
        .post(format!("{base}/admin/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", urlencode(token)));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `name=value` part of the response's Set-Cookie, and the whole header.
fn set_cookie(r: &reqwest::Response) -> (String, String) {
    let h = r
        .headers()
        .get("set-cookie")
        .expect("a Set-Cookie")
        .to_str()
        .unwrap()
        .to_owned();
    (h.split(';').next().unwrap().to_owned(), h)
}

/// The CSRF token the console page carries.
async fn csrf_of(base: &str, cookie: &str) -> String {
    let page = client()
        .get(format!("{base}/admin"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let needle = "name=\"csrf-token\" content=\"";
    let at = page.find(needle).expect("the console page") + needle.len();
    page[at..at + 64].to_owned()
}

async fn event(base: &str, id: &str) -> Value {
    send(
        client()
            .get(format!("{base}/admin/v1/events/{id}"))
            .bearer_auth(ADMIN),
    )
    .await
    .body
}

async fn newest_audit(base: &str) -> Value {
    let r = send(
        client()
            .get(format!("{base}/admin/v1/audit?limit=1"))
            .bearer_auth(ADMIN),
    )
    .await;
    r.body["entries"][0].clone()
}

#[tokio::test]
async fn sign_in_sets_a_strict_cookie_and_changes_need_the_csrf_token() {
    let redis = RedisServer::start().unwrap();
    let clock = Arc::new(ManualClock::at_system_now());
    let gw = TestGateway::start_with_clock(
        &[
            "--redis-url",
            &redis.url(),
            "--console-session-ttl-seconds",
            "3600",
        ],
        clock.clone(),
    )
    .await;
    let base = gw.url("");
    assert_eq!(
        put_event(
            &base,
            "cons",
            json!({"admit_per_second": 3, "max_active": 50})
        )
        .await
        .status,
        201
    );

    // A wrong token: refused, no cookie; a browser gets the form again.
    let r = sign_in(&base, "not-the-token", &[]).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    let r = sign_in(&base, "not-the-token", &[("accept", "text/html")]).await;
    assert_eq!(r.status(), 401);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("That is not the admin token"));

    // The right token: 303 to /admin (no token in it) with an HttpOnly, SameSite=Strict
    // cookie for /admin that does not carry the token either.
    let r = sign_in(&base, ADMIN, &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/admin");
    let (cookie, header) = set_cookie(&r);
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=3600"] {
        assert!(header.contains(attr), "{attr} in {header}");
    }
    assert!(!header.contains("Secure"), "plain http: {header}");
    assert!(!header.contains(ADMIN), "{header}");
    let https = sign_in(&base, ADMIN, &[("x-forwarded-proto", "https")]).await;
    assert!(set_cookie(&https).1.contains("; Secure"));

    // Without a session the page is the sign-in form, a form that posts (no token in a URL).
    let anon = client().get(gw.url("/admin")).send().await.unwrap();
    let csp = anon.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let form = anon.text().await.unwrap();
    assert!(form.contains("method=\"post\" action=\"/admin/sign-in\""));
    assert!(!form.contains("csrf-token"));
    let csrf = csrf_of(&base, &cookie).await;

    // Reads need only the cookie.
    let r = send(
        client()
            .get(gw.url("/admin/v1/events/cons"))
            .header("cookie", &cookie),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // A change with the cookie but no or a wrong CSRF token: 403, nothing changed.
    let change = json!({"admit_per_second": 9, "max_active": 50});
    for token in [
        None,
        Some("0".repeat(64)),
        Some(csrf_of(&base, &sign_in_cookie(&base).await).await),
    ] {
        let mut req = client()
            .put(gw.url("/admin/v1/events/cons"))
            .header("cookie", &cookie)
            .json(&change);
        if let Some(t) = &token {
            req = req.header("x-csrf-token", t);
        }
        let r = send(req).await;
        assert_eq!(r.status, 403, "{token:?}: {}", r.body);
        assert_eq!(r.code(), "CSRF_FAILED");
        assert_eq!(event(&base, "cons").await["admit_per_second"], 3);
    }
    let r = send(
        client()
            .post(gw.url("/admin/v1/events/cons/actions"))
            .header("cookie", &cookie)
            .json(&json!({"action": "STOP_ADMISSIONS", "confirm": true})),
    )
    .await;
    assert_eq!(r.code(), "CSRF_FAILED");
    assert_eq!(event(&base, "cons").await["admissions_stopped"], false);

    // With it: done, and in the audit trail as the console session's change.
    let r = send(
        client()
            .put(gw.url("/admin/v1/events/cons"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .json(&change),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(event(&base, "cons").await["admit_per_second"], 9);
    let entry = newest_audit(&base).await;
    assert_eq!(entry["action"], "event.update", "{entry}");
    assert_eq!(entry["after"]["admit_per_second"], 9);
    let actor = entry["actor"].as_str().unwrap().to_owned();
    assert!(actor.starts_with("console:"), "{entry}");
    let r = send(
        client()
            .post(gw.url("/admin/v1/events/cons/actions"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .json(&json!({"action": "STOP_ADMISSIONS", "confirm": true})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(newest_audit(&base).await["actor"], actor.as_str());
    // The bearer token's changes say so.
    put_event(
        &base,
        "cons",
        json!({"admit_per_second": 4, "max_active": 50}),
    )
    .await;
    assert_eq!(newest_audit(&base).await["actor"], "admin-token");

    // A tampered cookie is no session.
    let last = if cookie.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &cookie[..cookie.len() - 1]);
    let r = send(
        client()
            .get(gw.url("/admin/v1/events/cons"))
            .header("cookie", forged),
    )
    .await;
    assert_eq!(r.code(), "UNAUTHORIZED");

    // The live feed: the history, then samples that show the event.
    assert_eq!(
        send(client().get(gw.url("/admin/ws"))).await.code(),
        "UNAUTHORIZED"
    );
    let mut req = gw
        .url("/admin/ws")
        .replace("http", "ws")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let first: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(first["type"], "history");
    assert_eq!(first["interval_ms"], 1000);
    assert_eq!(join(&base, "cons", "someone").await.status, 201);
    let sample = loop {
        let m: Value =
            serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
        assert_eq!(m["type"], "sample");
        let e = m["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event_id"] == "cons")
            .cloned();
        if let Some(e) = e.filter(|e| e["waiting"] == 1) {
            break e;
        }
    };
    assert_eq!(sample["admit_per_second"], 4);
    assert_eq!(sample["admissions_stopped"], true);
    assert_eq!(sample["eta_last_seconds"], -1, "paused: no estimate");

    // Sign-out needs the CSRF token too, then clears the cookie.
    let r = no_redirects()
        .post(gw.url("/admin/sign-out"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = no_redirects()
        .post(gw.url("/admin/sign-out"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(set_cookie(&r).1.contains("Max-Age=0"));

    // Sessions end after --console-session-ttl-seconds.
    clock.advance_ms(3_600_000);
    let r = send(
        client()
            .get(gw.url("/admin/v1/events/cons"))
            .header("cookie", &cookie),
    )
    .await;
    assert_eq!(r.code(), "UNAUTHORIZED", "an expired session");
    // A replica that shuts down closes the consoles' sockets (going away: they reconnect).
    gw.shutdown().await;
    let close = loop {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
        match next.expect("the socket is closed on shutdown") {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(c))) => break c,
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1001));
}

/// The cookie of a fresh sign-in (another session).
async fn sign_in_cookie(base: &str) -> String {
    set_cookie(&sign_in(base, ADMIN, &[]).await).0
}

#[tokio::test]
async fn the_console_follows_a_queue_under_load_and_pauses_admissions() {
    let redis = RedisServer::start().unwrap();
    let gw = TestGateway::start(&["--redis-url", &redis.url(), "--admission-tick-ms", "50"]).await;
    let base = gw.url("");
    put_event(
        &base,
        "spring-sale",
        json!({"admit_per_second": 0, "max_active": 1000}),
    )
    .await;
    put_event(
        &base,
        "autumn-tour",
        json!({"admit_per_second": 5, "max_active": 100}),
    )
    .await;

    let (_driver, b, profile) = start_browser("console", "1280,1100").await;
    b.goto(&gw.url("/admin")).await.unwrap();
    b.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(ADMIN)
        .await
        .unwrap();
    shot(&b, "sign-in.png").await;
    b.find(Locator::Css("#sign-in button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
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
        assert_eq!(
            join(&base, "spring-sale", &format!("fan-{i}")).await.status,
            201
        );
    }
    until("40 waiting on the page", async || {
        value(&b, "stat-waiting").await == Some(40.0)
    })
    .await;

    // The API's refusals reach the operator (and change nothing).
    let rate = b.find(Locator::Id("f-rate")).await.unwrap();
    rate.clear().await.unwrap();
    rate.send_keys("2000000").await.unwrap();
    b.find(Locator::Id("save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the API's error on the page", async || {
        let t = b
            .find(Locator::Id("errors"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        t.contains("INVALID_ARGUMENT")
    })
    .await;
    assert_eq!(event(&base, "spring-sale").await["admit_per_second"], 0);

    // Open the gate from the console's form: 2 per second.
    rate.clear().await.unwrap();
    rate.send_keys("2").await.unwrap();
    b.find(Locator::Id("save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("admissions on the page", async || {
        value(&b, "stat-admitted").await.is_some_and(|n| n >= 2.0)
            && value(&b, "stat-waiting").await.is_some_and(|n| n < 40.0)
    })
    .await;
    let e = event(&base, "spring-sale").await;
    assert_eq!(e["admit_per_second"], 2, "saved through the admin API");
    assert!(newest_audit(&base).await["actor"]
        .as_str()
        .unwrap()
        .starts_with("console:"));
    // A few seconds of admissions for the picture (docs/img/console.png comes from it).
    until("six admitted", async || {
        value(&b, "stat-admitted").await.is_some_and(|n| n >= 6.0)
    })
    .await;
    shot(&b, "console.png").await;

    // Pause: admissions stop, on the page and in the API.
    b.find(Locator::Id("pause"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("paused on the page", async || {
        let ev = b.find(Locator::Id("event")).await.unwrap();
        ev.attr("data-stopped").await.unwrap().as_deref() == Some("true")
    })
    .await;
    let paused = event(&base, "spring-sale").await;
    assert_eq!(paused["admissions_stopped"], true);
    let admitted = paused["stats"]["admitted_total"].as_u64().unwrap();
    assert!(
        paused["stats"]["waiting"].as_u64().unwrap() > 0,
        "people still wait: {paused}"
    );
    // Three more samples (seconds at the configured rate of 2 per second) and nobody more.
    let seen = samples(&b).await;
    until("three more samples", async || samples(&b).await >= seen + 3).await;
    assert_eq!(
        value(&b, "stat-admitted").await,
        Some(admitted as f64),
        "the page"
    );
    let after = event(&base, "spring-sale").await;
    assert_eq!(
        after["stats"]["admitted_total"].as_u64(),
        Some(admitted),
        "the API"
    );
    let text = b
        .find(Locator::Id("event-flags"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("Admissions paused"), "{text}");
    assert_eq!(newest_audit(&base).await["action"], "event.stop_admissions");
    shot(&b, "console-paused.png").await;

    // On a phone: one column, same numbers.
    b.set_window_size(412, 915).await.unwrap();
    shot(&b, "console-phone.png").await;

    // The other event is one click away.
    b.find(Locator::Css("button[data-event=autumn-tour]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the other event", async || {
        b.find(Locator::Id("event-title"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            == "autumn-tour"
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
    let gw = TestGateway::start(&[
        "--redis-url",
        &redis.url(),
        "--webhook-secret",
        backends::WEBHOOK_SECRET,
    ])
    .await;
    let base = gw.url("");
    dead_letter(&base, "msg_one").await;
    dead_letter(&base, "msg_two").await;
    let letters = dlq(&base).await;
    assert_eq!(letters.len(), 2);
    let (newest, oldest) = (
        letters[0]["id"].as_str().unwrap().to_owned(),
        letters[1]["id"].as_str().unwrap().to_owned(),
    );

    let (_driver, b, profile) = start_browser("console-dlq", "412,915").await;
    b.goto(&gw.url("/admin")).await.unwrap();
    b.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(ADMIN)
        .await
        .unwrap();
    b.find(Locator::Css("#sign-in button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("two dead letters on the page", async || {
        value(&b, "stat-dead").await == Some(2.0)
            && b.find_all(Locator::Css("#dlq li[data-id]"))
                .await
                .unwrap()
                .len()
                == 2
    })
    .await;
    let li = |id: &str| format!("#dlq li[data-id=\"{id}\"]");
    b.find(Locator::Css(&format!("{} button", li(&newest))))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.find(Locator::Id("dlq-by"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    b.find(Locator::Id("dlq-by"))
        .await
        .unwrap()
        .send_keys("ops on call")
        .await
        .unwrap();
    b.find(Locator::Css(&format!("{} button.secondary", li(&oldest))))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
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
    let resolved = dlq(&base)
        .await
        .into_iter()
        .find(|d| d["id"] == oldest.as_str())
        .unwrap();
    assert_eq!(resolved["resolved_by"], "ops on call");
    let entry = newest_audit(&base).await;
    assert!(
        entry["action"].as_str().unwrap().starts_with("dlq."),
        "{entry}"
    );
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
