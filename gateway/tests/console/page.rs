//! The console tests' helpers: a headless Chromium (tests/common/chrome.rs) at a given window
//! size, screenshots, using and reading the page, and dead letters to show.

use super::common::admin_http::admin_get;
use super::common::{backends, chrome, client, send, until, ADMIN};
use fantoccini::{Client, Locator};
use serde_json::Value;

/// A headless Chromium session with a window of `width` × `height` and its own empty profile.
pub async fn start_browser(
    name: &str, (width, height): (u32, u32),
) -> (chrome::Driver, Client, std::path::PathBuf) {
    let (driver, b, profile) = chrome::start_browser(name).await;
    b.set_window_size(width, height).await.unwrap();
    (driver, b, profile)
}

/// `<target dir>/console-screenshots` (CARGO_TARGET_TMPDIR is `<target dir>/tmp`).
pub fn screenshot_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn shot(b: &Client, name: &str) {
    b.execute(
        "document.activeElement.blur(); window.scrollTo(0, 0);",
        vec![],
    )
    .await
    .unwrap();
    let png = b.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join(name), png).unwrap();
}

/// Clicks the element at `at`, found again when the page redrew it in between (the console
/// redraws its lists with every sample).
pub async fn click(b: &Client, at: Locator<'_>) {
    until("a click on an element still on the page", async || {
        let clicked = b.find(at).await.unwrap().click().await;
        match clicked {
            Ok(()) => true,
            Err(e) if e.is_stale_element_reference() => false,
            Err(e) => panic!("clicking {at:?}: {e}"),
        }
    })
    .await;
}

/// Replaces what the input `id` holds with `text`, as typed.
pub async fn type_into(b: &Client, id: &str, text: &str) {
    let input = b.find(Locator::Id(id)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

/// The text of the element `id`.
pub async fn text_of(b: &Client, id: &str) -> String {
    b.find(Locator::Id(id)).await.unwrap().text().await.unwrap()
}

/// Opens the console at `url` and types the admin token into its sign-in form (a screenshot
/// `shot_name` of the form, when given), then submits it.
pub async fn sign_in_on_page(b: &Client, url: &str, shot_name: Option<&str>) {
    b.goto(url).await.unwrap();
    type_into(b, "token", ADMIN).await;
    if let Some(name) = shot_name {
        shot(b, name).await;
    }
    click(b, Locator::Css("#sign-in button[type=submit]")).await;
}

/// The `data-value` of element `id` as a number (None while empty).
pub async fn value(b: &Client, id: &str) -> Option<f64> {
    let el = b.find(Locator::Id(id)).await.ok()?;
    el.attr("data-value").await.ok()??.parse().ok()
}

/// Samples the page has received so far.
pub async fn samples(b: &Client) -> u64 {
    let body = b.find(Locator::Css("body")).await.unwrap();
    let n = body.attr("data-samples").await.unwrap();
    n.and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// A webhook well signed with `common::backends::WEBHOOK_SECRET` that is not a payment event:
/// the gateway stores it as a dead letter.
pub async fn dead_letter(base: &str, id: &str) {
    let body = r#"{"type":"payment.approved","data":{}}"#;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sig = webhooks::StandardWebhooks::new(&[backends::WEBHOOK_SECRET])
        .unwrap()
        .sign(id, ts, body.as_bytes());
    let mut req = client()
        .post(format!("{base}/webhooks/payments"))
        .body(body);
    for (name, value) in [
        ("content-type", "application/json".to_owned()),
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sig),
    ] {
        req = req.header(name, value);
    }
    let r = send(req).await;
    assert_eq!(r.code(), "INVALID_PAYLOAD", "{}", r.body);
}

/// The dead letters, newest first.
pub async fn dlq(base: &str) -> Vec<Value> {
    let r = admin_get(base, "/admin/v1/dlq").await;
    r.body["dead_letters"].as_array().unwrap().clone()
}
