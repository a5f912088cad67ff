//! Tests build their configuration with `Config::from_args_no_env` (or `Config::default()`):
//! what the developer's shell exports must not change what a test tests.
//!
//! One test in this binary, alone: it changes the process environment, which no other test
//! may read at the same time.

use clap::Parser;
use gateway::Config;

#[test]
fn an_exported_gateway_variable_reaches_the_binary_but_not_a_test_built_config() {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GATEWAY_") {
            std::env::remove_var(name);
        }
    }
    // In a clean environment the binary's parse and the defaults agree, field by field.
    let parsed = Config::try_parse_from(["gateway"]).expect("the defaults parse");
    assert_eq!(Config::default(), parsed);

    std::env::set_var("GATEWAY_REDIS_URL", "redis://127.0.0.1:1");
    std::env::set_var("GATEWAY_MAX_CONNECTIONS", "7");
    let binary = Config::try_parse_from(["gateway"]).expect("the environment parses");
    assert_eq!(
        binary.redis.redis_url.as_deref(),
        Some("redis://127.0.0.1:1")
    );
    assert_eq!(binary.server.max_connections, 7);

    let built = Config::from_args_no_env(["gateway", "--ws-tick-ms", "20"]).unwrap();
    assert_eq!(
        built.redis.redis_url, None,
        "the in-memory store, as the test asked"
    );
    assert_eq!(built.server.max_connections, 100_000);
    assert_eq!(built.ws.ws_tick_ms, 20);
    assert_eq!(
        Config::default(),
        parsed,
        "Config::default() ignores the environment"
    );
}
