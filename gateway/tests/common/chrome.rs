//! Headless Chromium for the page tests (Debian's `chromium` and `chromium-driver`, installed
//! by scripts/test.sh), driven through chromedriver with fantoccini.

use super::http::poll_for;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running chromedriver; killed on drop.
pub struct Driver {
    child: Child,
    pub port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_chromedriver() -> Driver {
    let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let port = testkit::free_port().unwrap();
    let child = Command::new(&bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "starting {bin} (is chromium-driver installed? scripts/test.sh installs it): {e}"
            )
        });
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver { child, port }
}

/// A headless Chromium session (phone-sized window) with its own empty profile.
pub async fn start_browser(name: &str) -> (Driver, Client, PathBuf) {
    start_browser_with(name, &[], json!({})).await
}

/// As [`start_browser`], with extra command-line `args` (such as another `--window-size=`) and
/// profile `prefs` (such as `intl.accept_languages`). The browser's console log is kept
/// ([`console_errors`]).
pub async fn start_browser_with(
    name: &str, args: &[&str], prefs: Value,
) -> (Driver, Client, PathBuf) {
    let driver = start_chromedriver();
    let profile = std::env::temp_dir().join(format!("chromium-{name}-{}", std::process::id()));
    let mut all: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // A phone's window unless `args` asks for another.
    if !args.iter().any(|a| a.starts_with("--window-size=")) {
        all.push("--window-size=412,915".into());
    }
    all.push(format!("--user-data-dir={}", profile.display()));
    all.extend(args.iter().map(|s| s.to_string()));
    let caps = json!({
        "goog:chromeOptions": {
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": all,
            "prefs": prefs,
        },
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    let caps = caps.as_object().unwrap().clone().into_iter().collect();
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let browser = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a chromium session");
    (driver, browser, profile)
}

/// As [`start_browser`], on `url`.
pub async fn start_browser_at(name: &str, url: &str) -> (Driver, Client, PathBuf) {
    let (driver, browser, profile) = start_browser(name).await;
    browser.goto(url).await.unwrap();
    (driver, browser, profile)
}

/// Ends the session and removes its profile.
pub async fn close_browser(browser: Client, profile: PathBuf) {
    browser.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
}

/// `target/screenshots` of the workspace: what the page tests saw, for people to look at.
pub fn screenshot_dir() -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves what `b` shows as `name` in [`screenshot_dir`].
pub async fn screenshot(b: &Client, name: &str) {
    let png = b.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join(name), &png).unwrap();
}

/// The text of the element that `css` selects.
pub async fn text(b: &Client, css: &str) -> String {
    b.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The place the waiting page shows (`data-position` of `#position`), if it shows one yet.
pub async fn position(b: &Client) -> Option<String> {
    let el = b.find(Locator::Id("position")).await.ok()?;
    let p = el.attr("data-position").await.ok().flatten();
    p.filter(|p| !p.is_empty())
}

/// Waits up to `within` for the page to show the place `want`.
pub async fn wait_for_position(b: &Client, want: &str, within: Duration) {
    let what = format!("the page showing position {want}");
    poll_for(&what, within, Some(want.to_owned()), async || {
        position(b).await
    })
    .await
}

/// Waits up to 20 s for the element that `css` selects to read `want`.
pub async fn wait_for_text(b: &Client, css: &str, want: &str) {
    let within = Duration::from_secs(20);
    poll_for(css, within, want.to_owned(), async || text(b, css).await).await
}

/// The browser console's errors since the last call (chromedriver's log endpoint): failed
/// loads, uncaught exceptions, CSP violations and `console.error` calls.
pub async fn console_errors(driver: &Driver, browser: &Client) -> Vec<String> {
    let session = browser.session_id().await.unwrap().expect("a session id");
    let r: Value = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/session/{session}/se/log",
            driver.port
        ))
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .expect("chromedriver log endpoint")
        .json()
        .await
        .unwrap();
    r["value"]
        .as_array()
        .unwrap_or_else(|| panic!("a log, not {r}"))
        .iter()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}
