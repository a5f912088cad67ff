//! PaymentService: payment intents, settled by the [simulator](super::simulator).

use super::convert::{check_intent_id, money, ts};
use super::{Backends, Handle};
use crate::error::{Result, ServiceError};
use crate::model::*;
use crate::store::IntentRequest;
use proto::payment::v1 as pay;

impl Handle<pay::CreatePaymentIntentRequest> for Backends {
    type Reply = pay::CreatePaymentIntentResponse;

    async fn handle(&self, req: pay::CreatePaymentIntentRequest) -> Result<Self::Reply> {
        check_idempotency_key(&req.idempotency_key)?;
        let scenario = Scenario::from_code(i64::from(req.scenario))
            .ok_or_else(|| ServiceError::InvalidArgument("unknown scenario".into()))?;
        let provider_id = Some(req.provider_intent_id.as_str()).filter(|p| !p.is_empty());
        if let Some(p) = provider_id {
            check_provider_intent_id(p)?;
        }
        let r = self.load(&req.reservation_id, &req.user_id).await?;
        if let Some(m) = &req.amount {
            if m.amount_cents != r.amount_cents()
                || (!m.currency.is_empty() && m.currency != r.currency)
            {
                return Err(ServiceError::InvalidArgument(format!(
                    "amount must be the reservation's total, {} {}",
                    r.amount_cents(),
                    r.currency
                )));
            }
        }
        // The provider's id is a parameter only when given, so that the fingerprints of intents
        // without one are those stored before it existed.
        let fingerprint = match provider_id {
            None => digest(&[&(scenario as i32).to_string()]),
            Some(p) => digest(&[&(scenario as i32).to_string(), p]),
        };
        let ir = IntentRequest {
            intent_id: new_intent_id(&r.event_id),
            reservation_id: r.id.clone(),
            scenario,
            idem: self.idem_key(&r.id, &req.idempotency_key, fingerprint),
            provider_id: provider_id.map(str::to_owned),
        };
        let (intent, replayed) = self.0.store.create_intent(&ir, self.now()).await?;
        if !replayed {
            tracing::info!(payment_intent_id = %intent.id, ?scenario, "payment intent created");
        }
        // Answered only once its outcome is kept: a replay (the client retrying after an error
        // here) keeps the one kept before, or decides it now if there was none. The provider
        // settles an intent created with its id: nothing is simulated for it.
        if intent.status == IntentStatus::Pending && intent.provider_id.is_none() {
            self.simulate(&intent, replayed).await?;
        }
        Ok(pay::CreatePaymentIntentResponse {
            payment_intent_id: intent.id.clone(),
            status: self.intent_status(&intent) as i32,
            client_secret: format!("{}_secret", intent.id),
            payment_url: String::new(),
            expires_at: Some(ts(intent.expires_ms)),
            error: None,
            replayed,
        })
    }
}

impl Handle<pay::GetPaymentStatusRequest> for Backends {
    type Reply = pay::GetPaymentStatusResponse;

    async fn handle(&self, req: pay::GetPaymentStatusRequest) -> Result<Self::Reply> {
        check_intent_id(&req.payment_intent_id)?;
        let i = self
            .0
            .store
            .intent(&req.payment_intent_id)
            .await?
            .ok_or_else(|| ServiceError::IntentNotFound(req.payment_intent_id.clone()))?;
        Ok(pay::GetPaymentStatusResponse {
            payment_intent_id: i.id.clone(),
            reservation_id: i.reservation_id.clone(),
            status: self.intent_status(&i) as i32,
            amount: Some(money(i.amount_cents, &i.currency)),
            scenario: i.scenario as i32,
            failure_code: i.failure_code.clone().unwrap_or_default(),
            created_at: Some(ts(i.created_ms)),
            expires_at: Some(ts(i.expires_ms)),
            error: None,
            provider_intent_id: i.provider_id.clone().unwrap_or_default(),
        })
    }
}

impl Backends {
    /// The intent's status as PaymentService reports it (a pending one past its deadline reads
    /// EXPIRED).
    fn intent_status(&self, i: &Intent) -> pay::PaymentStatus {
        match i.status {
            IntentStatus::Pending if self.now() >= i.expires_ms => pay::PaymentStatus::Expired,
            IntentStatus::Pending => pay::PaymentStatus::Pending,
            IntentStatus::Approved => pay::PaymentStatus::Approved,
            IntentStatus::Failed => pay::PaymentStatus::Failed,
            IntentStatus::Cancelled => pay::PaymentStatus::Cancelled,
        }
    }
}
