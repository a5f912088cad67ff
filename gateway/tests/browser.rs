//! The waiting-room page in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by scripts/test.sh): it joins, shows the live position as the
//! queue advances, and ends on the event's `target_url` carrying a valid reservation token.

mod common;

use common::chrome::*;
use common::http::*;
use common::*;
use fantoccini::Locator;
use serde_json::json;
use std::time::Duration;

/// A stand-in for the shop: serves the page admitted users land on.
async fn landing_server() -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/landing",
        axum::routing::get(|| async {
            axum::response::Html(
                "<!doctype html><title>Shop</title><h1 id=\"landed\">Welcome to the sale</h1>",
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Waits up to `within` for the browser to land on a page whose URL starts with `prefix`,
/// noting on the way each place the waiting page shows after those in `seen`: the query of the
/// URL it landed on (name, value pairs) and the places seen.
async fn land(
    browser: &fantoccini::Client, prefix: &str, within: Duration, mut seen: Vec<u32>,
) -> (Vec<(String, String)>, Vec<u32>) {
    let what = format!("landing on {prefix}, places seen");
    let query = poll(&what, within, async || {
        let url = browser.current_url().await.unwrap();
        if url.as_str().starts_with(prefix) {
            return Ok(url.query().unwrap_or_default().to_owned());
        }
        if let Some(p) = position(browser).await.and_then(|p| p.parse().ok()) {
            if seen.last() != Some(&p) {
                seen.push(p);
            }
        }
        Err(seen.clone())
    })
    .await;
    let pairs = form_urlencoded::parse(query.as_bytes()).into_owned();
    (pairs.collect(), seen)
}

#[tokio::test]
async fn the_page_follows_the_queue_and_lands_on_the_target_with_a_valid_token() {
    let (_redis, gw) = redis_gateway(&["--admission-tick-ms", "50", "--ws-tick-ms", "100"]).await;
    let base = gw.url("");
    let shop = landing_server().await;
    let target = format!("http://{shop}/landing");
    let shut = json!({"admit_per_second": 0, "max_active": 100, "target_url": target});
    let r = put_event(&base, "pagetest", shut).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["target_url"], target.as_str());
    for i in 0..3 {
        let ahead = join(&base, "pagetest", &format!("ahead-{i}")).await;
        assert_eq!(ahead.status, 201);
    }

    let (_driver, browser, profile) = start_browser_at("main", &gw.url("/e/pagetest")).await;
    wait_for_position(&browser, "4", Duration::from_secs(15)).await;
    let live = browser.find(Locator::Id("live")).await.unwrap();
    assert_eq!(
        live.attr("aria-live").await.unwrap().as_deref(),
        Some("polite"),
        "the position is announced"
    );
    assert_eq!(text(&browser, "#position").await, "4");
    screenshot(&browser, "waiting-room.png").await;

    // Open the gate: one admission per second. The page must show the position falling.
    let open = json!({"admit_per_second": 1, "max_active": 100, "target_url": target});
    put_event(&base, "pagetest", open).await;
    let (query, seen) = land(&browser, &target, Duration::from_secs(20), vec![4]).await;
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "positions only fall: {seen:?}"
    );
    assert!(seen.len() >= 3, "the page followed the queue: {seen:?}");
    let token = query
        .into_iter()
        .find(|(k, _)| k == "reservation_token")
        .map(|(_, v)| v)
        .expect("token in the target URL");
    let jwks = send(client().get(gw.url("/.well-known/jwks.json")))
        .await
        .body;
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.set_audience(&["pagetest"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v)
        .expect("a valid reservation token")
        .claims;
    assert_eq!(claims["aud"], "pagetest");
    assert_eq!(text(&browser, "#landed").await, "Welcome to the sale");
    screenshot(&browser, "landed.png").await;
    close_browser(browser, profile).await;
    gw.shutdown().await;
}

/// A reverse proxy that refuses WebSocket upgrades, as some corporate proxies do, and counts
/// the status polls that pass through it.
async fn proxy_without_websockets(
    upstream: String, polls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> std::net::SocketAddr {
    use axum::extract::Request;
    use axum::response::IntoResponse;
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: Request| {
        let (http, upstream, polls) = (http.clone(), upstream.clone(), polls.clone());
        async move {
            let path = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            if req.uri().path() == "/api/v1/queue/ws" {
                return (
                    axum::http::StatusCode::FORBIDDEN,
                    "WebSockets are blocked here",
                )
                    .into_response();
            }
            if req.uri().path() == "/api/v1/queue/status" {
                polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let mut out = http.request(req.method().clone(), format!("{upstream}{path}"));
            for name in [
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
            ] {
                if let Some(v) = req.headers().get(&name) {
                    out = out.header(name, v.clone());
                }
            }
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            match out.body(body).send().await {
                Ok(r) => {
                    let status = r.status();
                    let ctype = r.headers().get(axum::http::header::CONTENT_TYPE).cloned();
                    let bytes = r.bytes().await.unwrap_or_default();
                    let mut resp = (status, bytes).into_response();
                    if let Some(c) = ctype {
                        resp.headers_mut()
                            .insert(axum::http::header::CONTENT_TYPE, c);
                    }
                    resp
                }
                Err(_) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn with_websockets_blocked_the_page_falls_back_to_polling() {
    let (_redis, gw) = redis_gateway(&["--admission-tick-ms", "50"]).await;
    let base = gw.url("");
    let shop = landing_server().await;
    let target = format!("http://{shop}/landing?from=queue");
    let config =
        |aps: u32| json!({"admit_per_second": aps, "max_active": 100, "target_url": target});
    put_event(&base, "polling", config(0)).await;
    assert_eq!(join(&base, "polling", "ahead").await.status, 201);
    let polls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let proxy = proxy_without_websockets(base.clone(), polls.clone()).await;

    let page = format!("http://{proxy}/e/polling");
    let (_driver, browser, profile) = start_browser_at("polling", &page).await;
    wait_for_position(&browser, "2", Duration::from_secs(15)).await;
    put_event(&base, "polling", config(1)).await;
    // Admitted without WebSockets.
    let shop_page = format!("http://{shop}/landing");
    let (pairs, _) = land(&browser, &shop_page, Duration::from_secs(40), vec![2]).await;
    assert!(
        polls.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the page polled /status"
    );
    assert_eq!(
        pairs[0],
        ("from".to_owned(), "queue".to_owned()),
        "the target's own query survives"
    );
    assert_eq!(pairs[1].0, "reservation_token");
    close_browser(browser, profile).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn the_page_solves_a_16_bit_join_challenge_in_a_worker_and_joins() {
    let (_redis, gw) = redis_gateway(&["--ws-tick-ms", "100"]).await;
    let base = gw.url("");
    let challenged = json!({"admit_per_second": 0, "max_active": 100, "join_challenge": {"difficulty_bits": 16}});
    let r = put_event(&base, "powpage", challenged).await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Without a solution nobody gets in: the page's place can only come from solving.
    assert_eq!(
        join(&base, "powpage", "script").await.code(),
        "CHALLENGE_REQUIRED"
    );

    let (_driver, browser, profile) = start_browser_at("pow", &gw.url("/e/powpage")).await;
    // Position 1: the page joined.
    wait_for_position(&browser, "1", Duration::from_secs(60)).await;
    let info = get_event(&base, "powpage").await;
    assert_eq!(info["stats"]["joined_total"], 1, "{info}");
    let lead = browser.find(Locator::Id("lead")).await.unwrap();
    let solve_ms = lead.attr("data-solve-ms").await.unwrap();
    assert!(solve_ms.is_some(), "the page solved a challenge");
    // ... in a Web Worker (the page's own fallback would say "page"), which the page's CSP
    // allows (blob: workers only).
    assert_eq!(
        lead.attr("data-solved-in").await.unwrap().as_deref(),
        Some("worker")
    );
    let csp = client()
        .get(gw.url("/e/powpage"))
        .send()
        .await
        .unwrap()
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("worker-src blob:"), "{csp}");
    close_browser(browser, profile).await;
    gw.shutdown().await;
}

/// Benchmark, not a test: the median time the page's Web Worker takes to solve challenges of
/// 12, 16 and 20 bits in headless Chromium (docs/operations.md, "Abuse and identity"). Run with
/// `cargo test --release -p gateway --test browser -- --ignored --nocapture solve_time`.
#[tokio::test]
#[ignore]
async fn solve_time_per_difficulty_in_chromium() {
    let (_redis, gw) = redis_gateway(&[]).await;
    let base = gw.url("");
    let (_driver, browser, profile) = start_browser("pow-bench").await;
    const RUNS: usize = 21;
    for bits in [12u32, 16, 20] {
        let event = format!("bench{bits}");
        put_event(
            &base,
            &event,
            json!({"admit_per_second": 0, "max_active": 100, "join_challenge": {"difficulty_bits": bits}}),
        )
        .await;
        // The page of an event whose setting asks for solving: its worker is what is timed.
        browser.goto(&gw.url(&format!("/e/{event}"))).await.unwrap();
        let mut ms = Vec::new();
        let mut hashes = Vec::new();
        for _ in 0..RUNS {
            let c =
                send(client().get(gw.url(&format!("/api/v1/queue/challenge?event_id={event}"))))
                    .await;
            let token = c.body["token"].as_str().unwrap().to_owned();
            let r = browser
                .execute_async(
                    "const [token, bits, done] = arguments; const t = performance.now();
                     window.waitingRoom.solveChallenge(token, bits).then(n => done([n, performance.now() - t]));",
                    vec![json!(token), json!(bits)],
                )
                .await
                .unwrap();
            let nonce = r[0].as_str().unwrap().to_owned();
            assert!(
                queue::challenge::solves(&token, &nonce, bits),
                "a real solution"
            );
            hashes.push(nonce.parse::<u64>().unwrap() + 1);
            ms.push(r[1].as_f64().unwrap());
        }
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        hashes.sort_unstable();
        let rate: f64 = hashes.iter().sum::<u64>() as f64 / ms.iter().sum::<f64>() / 1000.0;
        println!(
            "chromium worker, {bits} bits: median {:.0} ms over {RUNS} runs (min {:.0}, max {:.0}), median {} hashes, {rate:.2} M hashes/s",
            ms[RUNS / 2], ms[0], ms[RUNS - 1], hashes[RUNS / 2]
        );
    }
    close_browser(browser, profile).await;
    gw.shutdown().await;
}
