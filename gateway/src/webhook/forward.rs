//! Forwarding stored webhooks to `WorkerService.ProcessPaymentResult`: which answers are
//! retried and which dead-letter the entry at once.

use crate::error::Kind;
use crate::upstream::{Upstream, UpstreamError};
use proto::reservation::v1 as res;
use webhooks::{Envelope, Forward, ForwardError, Parsed, PaymentEventType};

/// Forwards inbox entries to `WorkerService.ProcessPaymentResult`.
pub(super) struct WorkerForward {
    pub(super) worker: Upstream,
}

#[async_trait::async_trait]
impl Forward for WorkerForward {
    async fn forward(&self, env: &Envelope) -> Result<(), ForwardError> {
        // The stored body is read as the intake read it (our shape, or a provider's event).
        let event = match webhooks::parse_verified(&env.source, env.payload.as_bytes()) {
            Ok(Parsed::Payment(event)) => event,
            // The intake does not store these; an entry stored by an earlier version (a dead
            // letter of a then-unknown type, retried by an operator) is acknowledged the same way.
            Ok(Parsed::Ignored(i)) => {
                tracing::info!(webhook_id = %env.event_id, event_type = %i.event_type, "stored webhook ignored");
                return Ok(());
            }
            Err(e) => return Err(ForwardError::Permanent(e.to_string())),
        };
        let result = match event.kind {
            PaymentEventType::Approved => res::PaymentResult::Approved,
            PaymentEventType::Failed => res::PaymentResult::Failed,
            PaymentEventType::Cancelled => res::PaymentResult::Cancelled,
        };
        let req = res::ProcessPaymentRequest {
            payment_intent_id: event.data.payment_intent_id.clone(),
            reservation_id: event.data.reservation_id.clone(),
            result: result as i32,
            amount: Some(proto::common::v1::Money {
                amount_cents: event.data.amount_cents,
                currency: event.data.currency.clone(),
            }),
            failure_code: event.data.failure_code.clone().unwrap_or_default(),
            webhook_id: env.event_id.clone(),
            correlation_id: env.event_id.clone(),
        };
        let answer = self
            .worker
            .call(req, &env.event_id, |ch, r| async move {
                proto::WorkerClient::new(ch).process_payment_result(r).await
            })
            .await;
        match answer {
            Ok(a) if a.status == res::ProcessingStatus::Retry as i32 => Err(
                ForwardError::Retryable("the worker asked for a retry".into()),
            ),
            Ok(a) if a.status == res::ProcessingStatus::Failed as i32 => {
                Err(ForwardError::Permanent(
                    a.error
                        .map(|e| e.message)
                        .unwrap_or_else(|| "the worker failed it".into()),
                ))
            }
            // SUCCESS, or ALREADY_PROCESSED: applied now or before.
            Ok(_) => Ok(()),
            Err(e @ UpstreamError::Status { .. }) if is_refusal(&e) => {
                Err(ForwardError::Permanent(match &e {
                    UpstreamError::Status { status, .. } => {
                        format!("{:?}: {}", status.code(), status.message())
                    }
                    other => other.to_string(),
                }))
            }
            Err(e) => Err(ForwardError::Retryable(e.to_string())),
        }
    }
}

/// Answers that retrying cannot change, read from the error table: the worker refused this
/// result (a client-class answer that names no retry delay), or it has no such method.
fn is_refusal(e: &UpstreamError) -> bool {
    let UpstreamError::Status { status, .. } = e else {
        return false;
    };
    let kind = Kind::of_upstream(e);
    status.code() == tonic::Code::Unimplemented
        || (kind.http.is_client_error() && kind.retry_after.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code as C;

    #[test]
    fn the_worker_refusals_are_the_client_class_answers_retrying_cannot_change() {
        let all = [
            C::Cancelled,
            C::Unknown,
            C::InvalidArgument,
            C::DeadlineExceeded,
            C::NotFound,
            C::AlreadyExists,
            C::PermissionDenied,
            C::ResourceExhausted,
            C::FailedPrecondition,
            C::Aborted,
            C::OutOfRange,
            C::Unimplemented,
            C::Internal,
            C::Unavailable,
            C::DataLoss,
            C::Unauthenticated,
        ];
        let refused: Vec<C> = all
            .into_iter()
            .filter(|c| {
                is_refusal(&UpstreamError::Status {
                    upstream: "worker",
                    status: tonic::Status::new(*c, "x"),
                })
            })
            .collect();
        // Dead-lettered at once; everything else (ResourceExhausted, Unavailable, deadlines,
        // internal errors) is retried on the consumer's schedule.
        assert_eq!(
            refused,
            [
                C::InvalidArgument,
                C::NotFound,
                C::AlreadyExists,
                C::PermissionDenied,
                C::FailedPrecondition,
                C::OutOfRange,
                C::Unimplemented,
                C::Unauthenticated,
            ]
        );
        assert!(!is_refusal(&UpstreamError::Timeout("worker")));
    }
}
