//! What the HTTP, WebSocket and page tests set up the same way: a gateway (in this process or
//! as a process) over a redis-server of its own, plain event settings, waiting tokens, the
//! admin calls they make, and a poll that waits for what a user would see.

use super::{client, join, put_event, send, GatewayProcess, Resp, TestGateway, ADMIN};
use serde_json::{json, Value};
use std::fmt::Debug;
use std::time::{Duration, Instant};
use testkit::RedisServer;

/// A redis-server and the `--redis-url` flag pointing at it, before `extra`.
fn redis_and_flags(extra: &[&str]) -> (RedisServer, Vec<String>) {
    let redis = RedisServer::start().unwrap();
    let mut flags = vec!["--redis-url".to_owned(), redis.url()];
    flags.extend(extra.iter().map(|f| f.to_string()));
    (redis, flags)
}

fn as_strs(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}

/// A gateway in this process over a redis-server of its own (which lives as long as the
/// returned server), with `extra` flags.
pub async fn redis_gateway(extra: &[&str]) -> (RedisServer, TestGateway) {
    let (redis, flags) = redis_and_flags(extra);
    let gw = TestGateway::start(&as_strs(&flags)).await;
    (redis, gw)
}

/// As [`redis_gateway`], with `event` set up with `config`; also the gateway's base URL.
pub async fn redis_event(
    extra: &[&str], event: &str, config: Value,
) -> (RedisServer, TestGateway, String) {
    let (redis, gw) = redis_gateway(extra).await;
    let base = gw.url("");
    put_event(&base, event, config).await;
    (redis, gw, base)
}

/// As [`redis_gateway`], a real `gateway` process.
pub fn redis_process(extra: &[&str]) -> (RedisServer, GatewayProcess) {
    let (redis, flags) = redis_and_flags(extra);
    let gw = GatewayProcess::spawn(&as_strs(&flags));
    (redis, gw)
}

/// The settings of an event that admits `admit_per_second` and lets `max_active` in at once,
/// with nothing else set.
pub fn rate(admit_per_second: u32, max_active: u32) -> Value {
    json!({"admit_per_second": admit_per_second, "max_active": max_active})
}

/// Joins `event` as `session` (a new place or the same one again): the waiting token.
pub async fn waiting_token(base: &str, event: &str, session: &str) -> String {
    let r = join(base, event, session).await;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);
    r.body["waiting_token"].as_str().unwrap().to_owned()
}

/// `POST /api/v1/queue/join` with `body` (which may carry more than the event and session).
pub async fn join_body(base: &str, body: Value) -> Resp {
    let url = format!("{base}/api/v1/queue/join");
    send(client().post(url).json(&body)).await
}

/// `POST {url}` with the admin token and the JSON `body`.
pub async fn admin_post(url: &str, body: Value) -> Resp {
    send(client().post(url).bearer_auth(ADMIN).json(&body)).await
}

/// `POST /admin/v1/events/{event}/actions`: `action`, confirmed.
pub async fn event_action(base: &str, event: &str, action: &str) -> Resp {
    let url = format!("{base}/admin/v1/events/{event}/actions");
    admin_post(&url, json!({"action": action, "confirm": true})).await
}

/// Polls `check` every 100 ms until it gives `Ok`, and returns what it gave; after `within`,
/// fails the test naming `what` and the last thing `check` saw instead.
pub async fn poll<T, E: Debug>(
    what: &str, within: Duration, mut check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let seen = match check().await {
            Ok(done) => return done,
            Err(seen) => seen,
        };
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?} (last seen {seen:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`poll`]s `read` until it reads `want`.
pub async fn poll_for<T: PartialEq + Debug>(
    what: &str, within: Duration, want: T, mut read: impl AsyncFnMut() -> T,
) {
    poll(what, within, async || {
        let got = read().await;
        if got == want {
            Ok(())
        } else {
            Err(got)
        }
    })
    .await
}

/// `DELETE /api/v1/queue`: the holder of `token` leaves.
pub async fn leave(base: &str, token: &str) -> Resp {
    let url = format!("{base}/api/v1/queue");
    send(client().delete(url).bearer_auth(token)).await
}

/// Asserts that `r` is the error `status` with `code`.
pub fn assert_code(r: &Resp, status: u16, code: &str) {
    assert_eq!((r.status, r.code()), (status, code), "{}", r.body);
}

/// As [`assert_code`], and its message mentions `words`.
pub fn assert_error(r: &Resp, status: u16, code: &str, words: &str) {
    assert_code(r, status, code);
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "{message:?} mentions {words:?}");
}

/// The script calls `redis` ran while `run` did (the gateway's background loops' own included:
/// a few a second).
pub async fn script_calls_during(redis: &RedisServer, run: impl AsyncFnOnce()) -> u64 {
    let before = testkit::script_calls(redis.port()).unwrap();
    run().await;
    testkit::script_calls(redis.port()).unwrap() - before
}
