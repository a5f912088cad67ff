//! What the queue's integration tests share (each test file uses a part of it).
#![allow(dead_code)]

use queue::clock::ManualClock;
use queue::room::WaitingRoom;
use queue::store::{RedisOptions, RedisStore, Store};
use queue::token::{AdmissionSigner, WaitingTokens};
use std::sync::Arc;
use testkit::RedisServer;

/// A `RedisStore` on a fresh redis-server, which stops when the returned server is dropped.
pub async fn redis_store() -> (RedisServer, RedisStore) {
    let server = RedisServer::start().unwrap();
    let store = RedisStore::connect(&RedisOptions::new(server.url()))
        .await
        .unwrap();
    (server, store)
}

/// The secret of [`room`]'s waiting tokens (a test that reads a token's claims needs it).
pub const SECRET: &[u8] = b"epoch test secret 0123456789";

/// A waiting room over `store` whose waiting tokens and admissions run on the manual `clock`.
pub fn room(store: Arc<dyn Store>, clock: &ManualClock) -> WaitingRoom {
    let tokens = WaitingTokens::from_secret(SECRET)
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    WaitingRoom::new(
        store,
        Arc::new(clock.clone()),
        tokens,
        AdmissionSigner::ephemeral(),
    )
}

/// A proptest runner of `PROPTEST_CASES` cases, `default` when that is not set.
pub fn runner(default: u32) -> proptest::test_runner::TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases,
        ..proptest::test_runner::Config::default()
    })
}
