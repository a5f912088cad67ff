//! Headless Chromium for the page tests (Debian's `chromium` and `chromium-driver`, installed
//! by scripts/test.sh), driven through chromedriver with fantoccini.

use fantoccini::ClientBuilder;
use serde_json::{json, Value};
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
pub async fn start_browser(name: &str) -> (Driver, fantoccini::Client, std::path::PathBuf) {
    start_browser_with(name, &[], json!({})).await
}

/// As [`start_browser`], with extra command-line `args` and profile `prefs` (such as
/// `intl.accept_languages`). The browser's console log is kept ([`console_errors`]).
pub async fn start_browser_with(
    name: &str,
    args: &[&str],
    prefs: Value,
) -> (Driver, fantoccini::Client, std::path::PathBuf) {
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
        "--window-size=412,915",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
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

/// The browser console's errors since the last call (chromedriver's log endpoint): failed
/// loads, uncaught exceptions, CSP violations and `console.error` calls.
pub async fn console_errors(driver: &Driver, browser: &fantoccini::Client) -> Vec<String> {
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
