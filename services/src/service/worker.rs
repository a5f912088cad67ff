//! WorkerService: expire a reservation, apply a payment result.

use super::convert::{
    check_intent_id, check_matches, check_reservation_id, processing, released_seats,
    seat_status_of, seats_of, ts,
};
use super::{answer, Backends};
use crate::error::{Result, ServiceError};
use crate::model::*;
use proto::reservation::v1 as res;
use tonic::{Request, Response, Status};

impl Backends {
    async fn process_payment_inner(
        &self,
        req: res::ProcessPaymentRequest,
    ) -> Result<res::ProcessPaymentResponse> {
        check_reservation_id(&req.reservation_id)?;
        check_intent_id(&req.payment_intent_id)?;
        let result = res::PaymentResult::try_from(req.result)
            .ok()
            .filter(|r| *r != res::PaymentResult::Unspecified)
            .ok_or_else(|| {
                ServiceError::InvalidArgument("result must be APPROVED, FAILED or CANCELLED".into())
            })?;
        let intent = self
            .0
            .store
            .intent(&req.payment_intent_id)
            .await?
            .ok_or_else(|| ServiceError::IntentNotFound(req.payment_intent_id.clone()))?;
        if intent.reservation_id != req.reservation_id {
            return Err(ServiceError::InvalidArgument(
                "the intent pays another reservation".into(),
            ));
        }
        if let Some(m) = &req.amount {
            if m.amount_cents != intent.amount_cents {
                return Err(ServiceError::InvalidArgument(
                    "amount does not match the intent".into(),
                ));
            }
        }
        // The result must agree with the provider's record (what a signed webhook reports).
        let agrees = match result {
            res::PaymentResult::Approved => intent.status == IntentStatus::Approved,
            _ => intent.status != IntentStatus::Approved,
        };
        if !agrees {
            return Err(ServiceError::FailedPrecondition(format!(
                "the payment is {:?}, not {:?}",
                intent.status, result
            )));
        }
        let (r, changed) = if result == res::PaymentResult::Approved {
            self.confirm(&req.reservation_id, &intent.id).await?
        } else {
            if intent.status == IntentStatus::Pending {
                let st = if result == res::PaymentResult::Cancelled {
                    IntentStatus::Cancelled
                } else {
                    IntentStatus::Failed
                };
                let code = (!req.failure_code.is_empty()).then_some(req.failure_code.as_str());
                self.0
                    .store
                    .settle_intent(&intent.id, st, code, self.now())
                    .await?;
            }
            let (r, changed) = self
                .release(&req.reservation_id, ResStatus::Cancelled, false)
                .await?;
            if changed {
                tracing::info!(reservation_id = %r.id, "payment failed; reservation cancelled");
            }
            (r, changed)
        };
        let st = r.status_at(self.now());
        Ok(res::ProcessPaymentResponse {
            status: processing(changed),
            reservation_status: st as i32,
            order_id: r.order_id.clone().unwrap_or_default(),
            processed_at: Some(ts(self.now())),
            seats: seats_of(&r, seat_status_of(st)),
            error: None,
        })
    }
}

#[tonic::async_trait]
impl res::worker_service_server::WorkerService for Backends {
    async fn process_reservation_expiry(
        &self,
        request: Request<res::ProcessExpiryRequest>,
    ) -> std::result::Result<Response<res::ProcessExpiryResponse>, Status> {
        let req = request.into_inner();
        let out = async {
            let r = self.load(&req.reservation_id, "").await?;
            check_matches(&r, &req.event_id, &req.seat_ids)?;
            let (r, changed) = self.release(&r.id, ResStatus::Expired, true).await?;
            Ok(res::ProcessExpiryResponse {
                status: processing(changed),
                released_seats: released_seats(&r, changed),
                processed_at: Some(ts(self.now())),
                next_action: "completed".into(),
                error: None,
            })
        }
        .await;
        answer(out)
    }

    async fn process_payment_result(
        &self,
        request: Request<res::ProcessPaymentRequest>,
    ) -> std::result::Result<Response<res::ProcessPaymentResponse>, Status> {
        answer(self.process_payment_inner(request.into_inner()).await)
    }
}
