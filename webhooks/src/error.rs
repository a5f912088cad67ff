//! Errors of the inbox, the consumer and the dead-letter operations.

/// A failure of the webhook inbox.
#[derive(Debug, Clone, thiserror::Error)]
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

redis_layer::from_redis_error!(InboxError, config: InboxError::Config);

impl From<redis_layer::Full> for InboxError {
    /// Too many webhooks already wait for the next batch: answered 503 (the provider retries),
    /// nothing was stored.
    fn from(_: redis_layer::Full) -> Self {
        Self::Unavailable("too many webhooks waiting to be stored".into())
    }
}
