//! The branded, translated waiting page in headless Chromium: the browser's languages pick the
//! page's, numbers are grouped as the locale writes them, Arabic reads right to left, text from
//! the operator never runs as script, the console stays free of errors, and with JavaScript
//! turned off the page still joins and holds the place.

mod common;

use common::chrome::*;
use common::http::*;
use common::*;
use fantoccini::Locator;
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;

/// How long the page may take to show its place.
const PLACE_WITHIN: Duration = Duration::from_secs(20);

const TITLE: &str = "<img src=x onerror=\"window.pwned=1\">Frühjahrs-Sale";

#[tokio::test]
async fn the_branded_page_speaks_the_browsers_language_and_runs_no_injected_script() {
    let gw = TestGateway::start(&["--ws-tick-ms", "100"]).await;
    let base = gw.url("");
    let r = put_event(
        &base,
        "sale",
        json!({"admit_per_second": 0, "max_active": 5, "page": {
            "title": TITLE,
            "message": "<script>window.pwned=2</script>Einlass ab 10 Uhr.\nBitte haben Sie etwas Geduld.",
            "accent_color": "#ffd700",
        }}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // 1,233 people ahead: the browser's place is 1,234, a number every locale groups.
    let joins = futures::stream::iter(0..1233)
        .map(|i| {
            let base = base.clone();
            async move { join(&base, "sale", &format!("ahead-{i}")).await.status }
        })
        .buffer_unordered(16)
        .collect::<Vec<u16>>()
        .await;
    assert!(joins.iter().all(|&s| s == 201));

    let (driver, browser, profile) = start_browser_with(
        "i18n",
        &[],
        json!({"intl": {"accept_languages": "de-DE,de,en-US;q=0.5"}}),
    )
    .await;
    browser.goto(&gw.url("/e/sale")).await.unwrap();
    wait_for_position(&browser, "1234", PLACE_WITHIN).await;
    let root = browser.find(Locator::Css("html")).await.unwrap();
    assert_eq!(root.attr("lang").await.unwrap().as_deref(), Some("de"));
    assert_eq!(
        text(&browser, "#position").await,
        "1.234",
        "German grouping"
    );
    assert_eq!(
        text(&browser, "#title").await,
        "Sie sind in der Warteschlange"
    );
    assert_eq!(text(&browser, "#lead").await, "Ihr Platz in der Schlange");
    // The operator's text shows as text, and none of it ran.
    assert_eq!(text(&browser, "#brand").await, TITLE);
    assert!(text(&browser, ".message")
        .await
        .starts_with("<script>window.pwned=2</script>Einlass"));
    let pwned = browser
        .execute("return typeof window.pwned;", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, "undefined");
    // Gold is too light for white: text on the accent turns black.
    let on_accent = browser
        .execute(
            "return getComputedStyle(document.documentElement).getPropertyValue('--on-accent').trim();",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(on_accent, "#000000");
    let live = browser.find(Locator::Id("live")).await.unwrap();
    assert_eq!(
        live.attr("aria-live").await.unwrap().as_deref(),
        Some("polite")
    );
    assert_eq!(
        console_errors(&driver, &browser).await,
        Vec::<String>::new(),
        "no console errors (favicon, CSP, script)"
    );
    // The README's picture (docs/img/page.png): the same page with a friendlier brand.
    put_event(
        &base,
        "sale",
        json!({"admit_per_second": 0, "max_active": 5, "page": {
            "title": "Frühjahrs-Sale",
            "message": "Einlass ab 10 Uhr. Bitte haben Sie etwas Geduld.",
            "accent_color": "#ffd700",
        }}),
    )
    .await;
    browser.refresh().await.unwrap();
    wait_for_position(&browser, "1234", PLACE_WITHIN).await;
    screenshot(&browser, "page-de.png").await;

    // ?lang= overrides the browser's languages; Arabic is laid out right to left. The same
    // browser session keeps its place.
    browser.goto(&gw.url("/e/sale?lang=ar")).await.unwrap();
    wait_for_position(&browser, "1234", PLACE_WITHIN).await;
    let root = browser.find(Locator::Css("html")).await.unwrap();
    assert_eq!(root.attr("lang").await.unwrap().as_deref(), Some("ar"));
    assert_eq!(root.attr("dir").await.unwrap().as_deref(), Some("rtl"));
    assert_eq!(text(&browser, "#title").await, "أنت في قائمة الانتظار");
    let direction = browser
        .execute("return getComputedStyle(document.body).direction;", vec![])
        .await
        .unwrap();
    assert_eq!(direction, "rtl");
    assert_eq!(
        console_errors(&driver, &browser).await,
        Vec::<String>::new()
    );
    screenshot(&browser, "page-ar.png").await;

    // The log does catch errors: a page that fails to load shows up in it.
    browser.goto(&gw.url("/api/v1/nowhere")).await.unwrap();
    let errors = console_errors(&driver, &browser).await;
    assert!(errors.iter().any(|e| e.contains("404")), "{errors:?}");

    let favicon = client().get(gw.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(
        favicon.status(),
        200,
        "a browser asking for /favicon.ico gets an icon"
    );
    close_browser(browser, profile).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn with_javascript_off_the_page_joins_by_form_and_keeps_the_place_on_reload() {
    let gw = TestGateway::start(&[]).await;
    let base = gw.url("");
    put_event(&base, "plain", rate(0, 5)).await;
    assert_eq!(join(&base, "plain", "ahead").await.status, 201);

    let (_driver, browser, profile) =
        start_browser_with("nojs", &["--blink-settings=scriptEnabled=false"], json!({})).await;
    browser.goto(&gw.url("/e/plain")).await.unwrap();
    let live = browser.find(Locator::Id("live")).await.unwrap();
    assert!(
        !live.is_displayed().await.unwrap(),
        "the script's view is hidden"
    );
    let join_button = browser.find(Locator::Css("#nojs form button")).await;
    join_button.unwrap().click().await.unwrap();
    let position = match browser
        .wait()
        .for_element(Locator::Id("nojs-position"))
        .await
    {
        Ok(p) => p,
        Err(e) => panic!("{e}: {}", browser.source().await.unwrap()),
    };
    assert_eq!(position.text().await.unwrap(), "2");
    screenshot(&browser, "page-nojs.png").await;
    browser.refresh().await.unwrap();
    assert_eq!(
        text(&browser, "#nojs-position").await,
        "2",
        "the same place after a reload"
    );
    let info = get_event(&base, "plain").await;
    assert_eq!(
        info["stats"]["joined_total"], 2,
        "one place for the browser"
    );
    close_browser(browser, profile).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn a_lottery_page_shows_no_place_and_a_closed_queue_says_so() {
    let gw = TestGateway::start(&["--ws-tick-ms", "100"]).await;
    let base = gw.url("");
    let lottery = json!({"admit_per_second": 0, "max_active": 5, "queueing_method": "random"});
    assert_eq!(put_event(&base, "draw", lottery).await.status, 201);
    for i in 0..3 {
        assert_eq!(join(&base, "draw", &format!("ahead-{i}")).await.status, 201);
    }
    let (driver, browser, profile) = start_browser_at("lottery", &gw.url("/e/draw?lang=en")).await;
    wait_for_text(&browser, "#title", "You are in the draw").await;
    // Joined, and the socket's first word is in: still no place to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(text(&browser, "#position").await, "");
    let info = get_event(&base, "draw").await;
    assert_eq!(info["stats"]["joined_total"], 4, "the browser joined");
    assert_eq!(
        console_errors(&driver, &browser).await,
        Vec::<String>::new()
    );

    let closed = json!({"admit_per_second": 5, "max_active": 5, "queueing_method": "reject"});
    assert_eq!(put_event(&base, "shut", closed).await.status, 201);
    browser.goto(&gw.url("/e/shut?lang=en")).await.unwrap();
    wait_for_text(&browser, "#title", "The queue is closed").await;
    assert_eq!(text(&browser, "#position").await, "");
    screenshot(&browser, "page-closed.png").await;
    close_browser(browser, profile).await;
    gw.shutdown().await;
}
