//! Errors of the inbox, the consumer and the dead-letter operations.

/// A failure of the webhook inbox.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// Redis is unreachable or slow; the caller should answer 503 (the provider retries).
    #[error("webhook inbox unavailable: {0}")]
    Unavailable(String),
    /// The webhook was stored on the Redis primary, but fewer replicas than required
    /// (`--redis-wait-replicas`) confirmed it in time: it could be lost in a failover, so it is
    /// not acknowledged (503; the provider's retry is deduplicated against it).
    #[error("webhook confirmed by {acked} of {wanted} required replica(s) in time")]
    NotReplicated {
        /// Replicas required.
        wanted: u32,
        /// Replicas that confirmed in time.
        acked: u32,
    },
    /// Redis answered something unexpected.
    #[error("webhook inbox protocol error: {0}")]
    Protocol(String),
    /// Bad configuration (URL, namespace).
    #[error("webhook inbox configuration: {0}")]
    Config(String),
    /// A dead-letter id that is not a stream id.
    #[error("invalid dead-letter id")]
    InvalidId,
    /// No such dead letter.
    #[error("no such dead letter")]
    NotFound,
    /// The dead letter is already resolved (resolution is one-shot; a resolved letter cannot be
    /// retried).
    #[error("the dead letter is already resolved")]
    AlreadyResolved,
}

/// Result of inbox operations.
pub type Result<T, E = InboxError> = std::result::Result<T, E>;

pub(crate) fn map_redis(e: fred::error::Error) -> InboxError {
    use fred::error::ErrorKind as K;
    match e.kind() {
        K::IO | K::Timeout | K::Canceled | K::Cluster | K::Routing | K::Backpressure => {
            InboxError::Unavailable(e.to_string())
        }
        // Servers that will answer later: failing over, loading, out of memory (a sale's
        // dead letters can fill a small Redis), unable to persist, or short of replicas.
        _ if [
            "LOADING",
            "CLUSTERDOWN",
            "TRYAGAIN",
            "MASTERDOWN",
            "BUSY",
            "READONLY",
            "OOM",
            "MISCONF",
            "NOREPLICAS",
        ]
        .iter()
        .any(|p| e.details().starts_with(p)) =>
        {
            InboxError::Unavailable(e.to_string())
        }
        _ => InboxError::Protocol(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fred::error::{Error, ErrorKind};

    #[test]
    fn retryable_server_replies_are_unavailable_and_bugs_are_not() {
        for reply in [
            "OOM command not allowed when used memory > 'maxmemory'.",
            "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.",
            "NOREPLICAS Not enough good replicas to write.",
            "CLUSTERDOWN The cluster is down",
        ] {
            let e = map_redis(Error::new(ErrorKind::Unknown, reply));
            assert!(matches!(e, InboxError::Unavailable(_)), "{reply}: {e:?}");
        }
        let e = map_redis(Error::new(ErrorKind::Unknown, "NOGROUP No such key"));
        assert!(matches!(e, InboxError::Protocol(_)), "{e:?}");
    }
}
