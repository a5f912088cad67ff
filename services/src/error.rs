//! The services' error type, and the one function that turns it into a gRPC status.

use proto::common::v1::{Error as ProtoError, ErrorCode, ErrorDetail};
use tonic::{Code, Status};

/// What went wrong in a backing-service operation.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed or a value is out of range.
    #[error("{0}")]
    InvalidArgument(String),
    /// A mutating call came without an idempotency key.
    #[error("an idempotency_key is required (1 to 128 bytes)")]
    IdempotencyRequired,
    /// No event with this id is seeded.
    #[error("event '{0}' does not exist")]
    EventNotFound(String),
    /// No reservation with this id (or not this user's).
    #[error("reservation '{0}' does not exist")]
    ReservationNotFound(String),
    /// No payment intent with this id.
    #[error("payment intent '{0}' does not exist")]
    IntentNotFound(String),
    /// The idempotency key was used before with different parameters.
    #[error("the idempotency key was already used with different parameters")]
    IdempotencyConflict,
    /// Some requested seats are held or sold (listed), or too few seats are left (empty list).
    #[error("not enough seats available")]
    SeatsUnavailable(Vec<String>),
    /// The reservation's hold ran out before the operation.
    #[error("the hold of reservation '{0}' has expired")]
    ReservationExpired(String),
    /// The resource's state does not allow the operation (e.g. confirming a cancelled one).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The admission already has this many active holds (`--holds-per-admission`).
    #[error("this admission already has {0} active hold(s): pay for it, or let it be released or expire, before holding again")]
    HoldLimit(u32),
    /// The store cannot be reached or did not answer in time.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected store answer.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl From<redis_layer::RedisError> for ServiceError {
    fn from(e: redis_layer::RedisError) -> Self {
        use redis_layer::RedisError as R;
        match e {
            R::Unavailable(_) | R::NotReplicated { .. } => Self::Unavailable(e.to_string()),
            R::Bug(m) => Self::Internal(m),
            R::Config(m) => Self::InvalidArgument(format!("redis {m}")),
        }
    }
}

/// The gRPC status of an error, its details carrying the matching `common.v1.Error`
/// (decode with `proto::error_of`). This is the only place errors become statuses.
pub fn to_status(e: &ServiceError) -> Status {
    let (code, ecode) = match e {
        ServiceError::InvalidArgument(_) => (Code::InvalidArgument, ErrorCode::InvalidArgument),
        ServiceError::IdempotencyRequired => {
            (Code::InvalidArgument, ErrorCode::IdempotencyRequired)
        }
        ServiceError::EventNotFound(_)
        | ServiceError::ReservationNotFound(_)
        | ServiceError::IntentNotFound(_) => (Code::NotFound, ErrorCode::NotFound),
        ServiceError::IdempotencyConflict => (Code::AlreadyExists, ErrorCode::IdempotencyConflict),
        ServiceError::SeatsUnavailable(_) => {
            (Code::FailedPrecondition, ErrorCode::InventoryConflict)
        }
        ServiceError::ReservationExpired(_) => {
            (Code::FailedPrecondition, ErrorCode::ReservationExpired)
        }
        ServiceError::FailedPrecondition(_) => {
            (Code::FailedPrecondition, ErrorCode::FailedPrecondition)
        }
        ServiceError::HoldLimit(_) => (Code::FailedPrecondition, ErrorCode::HoldLimit),
        ServiceError::Unavailable(_) => (Code::Unavailable, ErrorCode::Unavailable),
        ServiceError::Internal(_) => (Code::Internal, ErrorCode::Internal),
    };
    let details = match e {
        ServiceError::SeatsUnavailable(seats) => seats
            .iter()
            .map(|s| ErrorDetail {
                field: "seat_ids".into(),
                reason: "unavailable".into(),
                value: s.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let message = e.to_string();
    let error = ProtoError {
        code: ecode as i32,
        message: message.clone(),
        trace_id: String::new(),
        details,
    };
    proto::status_with_error(code, message, error)
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        to_status(&e)
    }
}
