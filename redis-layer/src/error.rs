//! The one table that classifies Redis failures: will an answer come later (unavailable), or is
//! it a bug that retrying cannot change.

/// A failure of a Redis call, classified once for every crate.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedisError {
    /// Redis is unreachable, slow, failing over, loading, out of memory or otherwise not serving
    /// now; a retry later may succeed (HTTP 503 + `Retry-After`, gRPC UNAVAILABLE).
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// A write was applied on the primary, but fewer replicas than required confirmed it within
    /// the `WAIT` timeout: a failover could lose it, so it must not be acknowledged. Retrying is
    /// safe for idempotent writes.
    #[error("the write was confirmed by {acked} of {wanted} required replica(s) in time")]
    NotReplicated {
        /// Replicas required.
        wanted: u32,
        /// Replicas that confirmed in time.
        acked: u32,
    },
    /// Redis answered what retrying cannot change: an error inside a script, a wrong type, a
    /// reply that does not parse. A bug, not bad input.
    #[error("unexpected redis answer: {0}")]
    Bug(String),
    /// The URL or settings cannot be used.
    #[error("redis configuration: {0}")]
    Config(String),
}

impl RedisError {
    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::NotReplicated { .. })
    }
}

/// Implements `From<RedisError>` for a crate's error type that keeps the classes apart in its
/// variants `Unavailable(String)`, `NotReplicated { wanted, acked }` and `Protocol(String)` (a
/// bug), with `config` making its error for unusable settings from their message. A macro
/// because the orphan rule forbids a generic impl for other crates' types.
#[macro_export]
macro_rules! from_redis_error {
    ($t:ty, config: $config:expr) => {
        impl From<$crate::RedisError> for $t {
            fn from(e: $crate::RedisError) -> Self {
                match e {
                    $crate::RedisError::Unavailable(m) => Self::Unavailable(m),
                    $crate::RedisError::NotReplicated { wanted, acked } => {
                        Self::NotReplicated { wanted, acked }
                    }
                    $crate::RedisError::Bug(m) => Self::Protocol(m),
                    $crate::RedisError::Config(m) => $config(format!("redis {m}")),
                }
            }
        }
    };
}

/// Error replies that retrying cannot change: a script that fails or does not compile, a key
/// of the wrong type, a stream without its group, a script missing after a reload.
const BUGS: [&str; 6] = [
    "WRONGTYPE",
    "NOGROUP",
    "NOSCRIPT",
    "ERR Error running script",
    "ERR Error compiling script",
    "ERR user_script",
];

/// Classifies a fred error. Only answers that retrying cannot change are a [`RedisError::Bug`]:
/// fred's own parse, argument and protocol errors, and the replies in `BUGS` (script errors
/// also carry `user_script` inside the message). Everything else is
/// [`RedisError::Unavailable`]: no answer at all (IO, timeouts, a cancelled command,
/// redirections after a failover, no slot map yet, client backpressure) and every error reply of
/// a server that is not serving now (LOADING, CLUSTERDOWN, TRYAGAIN, MASTERDOWN, BUSY, READONLY,
/// OOM, MISCONF, NOREPLICAS, "WAIT cannot be used with replica instances" from a demoted
/// primary, "max number of clients reached"). This is the only table of its kind in the
/// workspace: queue, webhooks and services all map from it.
pub fn classify(e: fred::error::Error) -> RedisError {
    use fred::error::ErrorKind as K;
    let details = e.details();
    let bug = matches!(
        e.kind(),
        K::InvalidArgument | K::InvalidCommand | K::Parse | K::NotFound | K::Protocol
    ) || BUGS.iter().any(|p| details.starts_with(p))
        || details.contains("user_script");
    if bug {
        RedisError::Bug(e.to_string())
    } else {
        RedisError::Unavailable(e.to_string())
    }
}

/// Whether the reply says the script cache lacks the script (EVALSHA before SCRIPT LOAD, or a
/// restarted or failed-over server).
pub(crate) fn is_noscript(e: &fred::error::Error) -> bool {
    e.details().starts_with("NOSCRIPT")
}

#[cfg(test)]
mod tests {
    use super::*;
    use fred::error::{Error, ErrorKind};

    #[test]
    fn servers_that_answer_later_are_unavailable_and_bugs_are_not() {
        for reply in [
            "OOM command not allowed when used memory > 'maxmemory'.",
            "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.",
            "NOREPLICAS Not enough good replicas to write.",
            "CLUSTERDOWN The cluster is down",
            "LOADING Redis is loading the dataset in memory",
            "READONLY You can't write against a read only replica.",
            "BUSY Redis is busy running a script.",
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.",
        ] {
            let e = classify(Error::new(ErrorKind::Unknown, reply));
            assert!(matches!(e, RedisError::Unavailable(_)), "{reply}: {e:?}");
            assert!(e.is_retryable());
        }
        for kind in [ErrorKind::IO, ErrorKind::Timeout, ErrorKind::Cluster] {
            assert!(classify(Error::new(kind, "x")).is_retryable());
        }
        for reply in [
            "NOGROUP No such key",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            "ERR user_script:12: Script attempted to access nonexistent global variable 'x'",
        ] {
            let e = classify(Error::new(ErrorKind::Unknown, reply));
            assert!(matches!(e, RedisError::Bug(_)), "{reply}: {e:?}");
            assert!(!e.is_retryable());
        }
    }
}
