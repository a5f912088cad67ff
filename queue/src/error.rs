//! The queue's error type: every failure a caller of this crate can see.

/// What went wrong in a waiting-room operation; the gateway maps each variant to one HTTP status
/// and one gRPC code in a single place.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    /// The request is malformed or a value is out of range.
    #[error("{0}")]
    InvalidArgument(String),
    /// No event with this id is configured.
    #[error("event '{0}' does not exist")]
    EventNotFound(String),
    /// The event takes no new joins (sold out).
    #[error("event '{0}' is closed")]
    EventClosed(String),
    /// The event's queueing method is `reject`: it takes no joins.
    #[error("event '{0}' takes no joins now (queueing method reject)")]
    QueueClosed(String),
    /// A join's `access_code` is unknown, revoked, or was spent by another session.
    #[error("the access code is invalid, revoked or already used")]
    InvalidAccessCode,
    /// A waiting token failed its signature check or does not parse.
    #[error("the waiting token is invalid")]
    InvalidToken,
    /// `enter` was called before the place became READY.
    #[error("not ready: the place is still in the queue")]
    NotReady,
    /// The place is gone: left, idle too long, READY too long, or the admission ran out.
    #[error("the place is gone: the token has expired")]
    TokenExpired,
    /// A join's `user_assertion` failed verification (the reason names the check, never a key).
    #[error("the user assertion is invalid: {0}")]
    InvalidAssertion(&'static str),
    /// A join carried a `user_assertion`, but no `--user-assertion-key` is configured.
    #[error("this gateway verifies no user assertions (no --user-assertion-key is configured); join without user_assertion")]
    AssertionsDisabled,
    /// The admission was given up (leave) or ran out in the store: it no longer creates holds.
    #[error("the admission has ended (left or expired); queue again")]
    AdmissionEnded,
    /// The event asks for a proof of work (`join_challenge`) and the join carried none.
    #[error("this event requires a solved join challenge (GET /api/v1/queue/challenge)")]
    ChallengeRequired,
    /// The join's challenge solution is not valid: forged, for another event, expired, already
    /// used, or the nonce does not give enough leading zero bits. Get a new challenge.
    #[error("the join challenge failed: {0}; get a new challenge")]
    ChallengeFailed(&'static str),
    /// The store cannot be reached or did not answer in time; retrying later may succeed.
    #[error("the queue store is unavailable: {0}")]
    Unavailable(String),
    /// Too many requests are already waiting for this event's next batch (the group commit's
    /// bound, `--redis-batch-pending`); retrying shortly may succeed.
    #[error("too many requests are waiting for the queue store; retry shortly")]
    Overloaded,
    /// A write was applied on the Redis primary, but fewer replicas than required
    /// (`--redis-wait-replicas`) confirmed it within the wait timeout, so it could be lost in a
    /// failover and is not acknowledged. Retrying is safe: join and enter are idempotent.
    #[error("the write was confirmed by {acked} of {wanted} required replica(s) in time")]
    NotReplicated {
        /// Replicas required.
        wanted: u32,
        /// Replicas that confirmed in time.
        acked: u32,
    },
    /// The store answered something this code does not understand (a bug, not bad input).
    #[error("unexpected answer from the queue store: {0}")]
    Protocol(String),
    /// Key material (token secret or signing key) is unusable.
    #[error("invalid key material: {0}")]
    Key(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = QueueError> = std::result::Result<T, E>;

redis_layer::from_redis_error!(QueueError, config: QueueError::InvalidArgument);

impl From<redis_layer::Full> for QueueError {
    fn from(_: redis_layer::Full) -> Self {
        Self::Overloaded
    }
}
