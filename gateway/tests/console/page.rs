//! The console tests' helpers: a headless Chromium through chromedriver (as in
//! tests/browser.rs), screenshots, reading the page, and dead letters to show.

use super::common::{backends, client, send, ADMIN};
use fantoccini::{ClientBuilder, Locator};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start_chromedriver() -> (Driver, u16) {
    let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let port = testkit::free_port().unwrap();
    let child = Command::new(&bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {bin} (is chromium-driver installed?): {e}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Driver(child), port)
}

/// A headless Chromium session with a window of `size` and its own empty profile.
pub async fn start_browser(
    name: &str,
    size: &str,
) -> (Driver, fantoccini::Client, std::path::PathBuf) {
    let (driver, port) = start_chromedriver();
    let profile = std::env::temp_dir().join(format!("chromium-{name}-{}", std::process::id()));
    let caps = json!({"goog:chromeOptions": {
        "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 format!("--window-size={size}"), format!("--user-data-dir={}", profile.display())]
    }});
    let caps = caps.as_object().unwrap().clone().into_iter().collect();
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let browser = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a chromium session");
    (driver, browser, profile)
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

pub async fn shot(b: &fantoccini::Client, name: &str) {
    b.execute(
        "document.activeElement.blur(); window.scrollTo(0, 0);",
        vec![],
    )
    .await
    .unwrap();
    let png = b.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join(name), png).unwrap();
}

/// The `data-value` of element `id` as a number (None while empty).
pub async fn value(b: &fantoccini::Client, id: &str) -> Option<f64> {
    let el = b.find(Locator::Id(id)).await.ok()?;
    el.attr("data-value").await.ok()??.parse().ok()
}

/// Samples the page has received so far.
pub async fn samples(b: &fantoccini::Client) -> u64 {
    b.find(Locator::Css("body"))
        .await
        .unwrap()
        .attr("data-samples")
        .await
        .unwrap()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
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
    let r = send(
        client()
            .post(format!("{base}/webhooks/payments"))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body),
    )
    .await;
    assert_eq!(r.code(), "INVALID_PAYLOAD", "{}", r.body);
}

pub async fn dlq(base: &str) -> Vec<Value> {
    let r = send(
        client()
            .get(format!("{base}/admin/v1/dlq"))
            .bearer_auth(ADMIN),
    )
    .await;
    r.body["dead_letters"].as_array().unwrap().clone()
}
