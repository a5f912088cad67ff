//! WorkerService: expire a reservation, apply a payment result.

use super::convert::{
    check_intent_id, check_reservation_id, processing, released_seats, seat_status_of, seats_of, ts,
};
use super::{Backends, Handle};
use crate::error::{Result, ServiceError};
use crate::model::*;
use proto::reservation::v1 as res;

impl Handle<res::ProcessExpiryRequest> for Backends {
    type Reply = res::ProcessExpiryResponse;

    /// The expiry worker's release: EXPIRED, and only once the hold has run out.
    async fn handle(&self, req: res::ProcessExpiryRequest) -> Result<Self::Reply> {
        let (id, seats) = (&req.reservation_id, &req.seat_ids);
        let expire = self.release_checked(id, &req.event_id, seats, ResStatus::Expired, true);
        let (r, changed) = expire.await?;
        Ok(res::ProcessExpiryResponse {
            status: processing(changed),
            released_seats: released_seats(&r, changed),
            processed_at: Some(ts(self.now())),
            next_action: "completed".into(),
            error: None,
        })
    }
}

impl Handle<res::ProcessPaymentRequest> for Backends {
    type Reply = res::ProcessPaymentResponse;

    async fn handle(&self, req: res::ProcessPaymentRequest) -> Result<Self::Reply> {
        check_reservation_id(&req.reservation_id)?;
        // Our id, or the provider's own (Stripe's `pi_…`) for an intent created with it.
        let by_provider = match check_intent_id(&req.payment_intent_id) {
            Ok(()) => false,
            Err(e) => {
                check_provider_intent_id(&req.payment_intent_id).map_err(|_| e)?;
                true
            }
        };
        let result = res::PaymentResult::try_from(req.result)
            .ok()
            .filter(|r| *r != res::PaymentResult::Unspecified)
            .ok_or_else(|| {
                ServiceError::InvalidArgument("result must be APPROVED, FAILED or CANCELLED".into())
            })?;
        let id = &req.payment_intent_id;
        let found = if by_provider {
            let event = reservation_event(&req.reservation_id)?;
            self.0.store.provider_intent(&event, id).await?
        } else {
            self.0.store.intent(id).await?
        };
        let intent = found.ok_or_else(|| ServiceError::IntentNotFound(id.clone()))?;
        if intent.reservation_id != req.reservation_id {
            return Err(ServiceError::InvalidArgument(
                "the intent pays another reservation".into(),
            ));
        }
        if let Some(m) = &req.amount {
            // An approval in another currency sells nothing; a refusal only releases the hold,
            // whatever currency the provider names.
            let approval = result == res::PaymentResult::Approved;
            let other_currency = !m.currency.is_empty() && m.currency != intent.currency;
            if m.amount_cents != intent.amount_cents || (approval && other_currency) {
                return Err(ServiceError::InvalidArgument(
                    "amount does not match the intent".into(),
                ));
            }
        }
        // The intent's record decides, settled first so that two results racing see one
        // record. A simulated intent's record is the simulator's: a refusal settles it while
        // pending, an approval must find it approved. An intent the provider settles (created
        // with the provider's id) has no record but the verified events reported for it: the
        // first result settles it, and a later one that contradicts it is refused.
        let intent = if intent.status == IntentStatus::Pending
            && (intent.provider_id.is_some() || result != res::PaymentResult::Approved)
        {
            let st = match result {
                res::PaymentResult::Approved => IntentStatus::Approved,
                res::PaymentResult::Cancelled => IntentStatus::Cancelled,
                _ => IntentStatus::Failed,
            };
            let code = (!req.failure_code.is_empty()).then_some(req.failure_code.as_str());
            let settled = self.0.store.settle_intent(&intent.id, st, code, self.now());
            settled.await?.0
        } else {
            intent
        };
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
