//! The flags keep their names and environment variables; bad values are refused.

use super::*;
use clap::error::ErrorKind;

#[test]
fn every_flag_keeps_its_gateway_environment_variable() {
    let cmd = Config::command();
    let mut flags = 0;
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let want = format!("GATEWAY_{}", long.to_uppercase().replace('-', "_"));
        assert_eq!(
            arg.get_env().and_then(|e| e.to_str()),
            Some(want.as_str()),
            "--{long}"
        );
        flags += 1;
    }
    assert!(flags >= 61, "{flags} flags");
}

#[test]
fn a_value_that_was_silently_raised_is_refused_with_its_flag_named() {
    // Most take at least 1 (0 is refused); two have a higher floor.
    let at_least_one = [
        "--redis-timeout-ms",
        "--redis-pool-size",
        "--max-connections",
        "--idle-timeout-ms",
        "--ws-per-token",
        "--admission-tick-ms",
        "--upstream-max-in-flight",
        "--breaker-failures",
        "--webhook-max-attempts",
        "--webhook-backoff-ms",
    ]
    .map(|flag| (flag, "0", "1"));
    let higher = [
        ("--max-header-bytes", "4096", "8192"),
        ("--ws-tick-ms", "5", "10"),
    ];
    for (flag, bad, least) in at_least_one.into_iter().chain(higher) {
        let e = Config::from_args_no_env(["gateway", flag, bad]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation, "{flag}");
        let msg = e.to_string();
        assert!(msg.contains(flag) && msg.contains(least), "{flag}: {msg}");
        let ok = Config::from_args_no_env(["gateway", flag, least]);
        assert!(ok.is_ok(), "{flag} {least}: {:?}", ok.err());
    }
}

#[test]
fn the_parts_get_the_documented_defaults() {
    let c = Config::default();
    let limits = c.server.limits();
    assert_eq!(limits.max_header_bytes, 16 * 1024);
    assert_eq!(
        limits.http2_keepalive_interval,
        Some(Duration::from_secs(20))
    );
    let opts = RedisConfig {
        redis_url: Some("redis://127.0.0.1:6379".into()),
        ..RedisConfig::default()
    }
    .options()
    .expect("a URL gives options");
    assert_eq!(opts.command_timeout, Duration::from_millis(1000));
    assert_eq!((opts.pool_size, opts.wait_replicas), (4, 0));
    assert!(c.redis.options().is_none());
    assert_eq!(c.ws.hub().tick, Duration::from_millis(250));
    assert_eq!(
        c.server.metrics_listen,
        Some("127.0.0.1:9464".parse().unwrap())
    );
}
