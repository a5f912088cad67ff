//! Load tests of the waiting-room core.
//!
//! * `fill` (a binary) joins N unique sessions to a queue straight through
//!   [`queue::store::RedisStore`] and reports joins per second and Redis memory per waiting user.
//! * `bench-queue.sh` drives a release gateway over HTTP with wrk (scripts in `wrk/`) and prints
//!   a Markdown summary; see `docs/benchmarks.md`.
//! * `loadtest` (the default binary) runs the goose scenarios of [`scenarios`] and checks the
//!   [`invariants`] after each run; see `loadtest/README.md`.

pub mod invariants;
pub mod scenarios;

/// Reads a numeric field (`used_memory`, `used_memory_rss`, ...) from an `INFO` reply.
pub fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == name).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Bytes with a binary-unit suffix, for humans (`1.5 MiB`).
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut i = 0;
    while v.abs() >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_are_parsed() {
        let info = "# Memory\r\nused_memory:123456\r\nused_memory_human:120.56K\r\nused_memory_rss:999\r\n";
        assert_eq!(info_field(info, "used_memory"), Some(123_456));
        assert_eq!(info_field(info, "used_memory_rss"), Some(999));
        assert_eq!(info_field(info, "used_memory_human"), None);
        assert_eq!(info_field(info, "missing"), None);
    }

    #[test]
    fn bytes_are_humanised() {
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0), "3.0 MiB");
    }
}
