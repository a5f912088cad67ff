//! `webhook_flood`: signed Standard Webhooks POSTed to `/webhooks/payments` as a payment
//! provider would, with a share of duplicates (an accepted id sent again, re-signed), stale
//! ones (timestamp 10 minutes old) and forged ones (signed with another key). Each fresh one
//! reports `payment.cancelled` for one of the pending payments the set-up created at the
//! backends (scenario `TIMEOUT`, so the simulator itself never reports them), so the
//! gateway's consumer forwards every one to `WorkerService.ProcessPaymentResult`, which
//! accepts it (the first cancels the reservation, the later ones are already processed).
//! Afterwards the gateway's webhook counters and the backends' record must show each accepted
//! webhook processed exactly once.

use super::purchase_journey::{channel, orders};
use super::{call, Admin, BoxFuture, Ctx, LoadTestError, WebhookTarget};
use crate::invariants::{self, Check, WebhookCounters};
use goose::goose::{GooseMethod, GooseUser};
use proto::payment::v1 as pay;
use proto::reservation::v1 as res;
use rand::Rng;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use webhooks::StandardWebhooks;

/// Forwarded/s over accepted/s that the flood must reach (issue 13: forwarding at intake speed).
const MIN_FORWARD_RATIO: f64 = 0.9;

/// A key that is not the gateway's, for forged signatures.
const FORGED_SECRET: &str = "whsec_bG9hZHRlc3QgZm9yZ2VkIGtleSwgbm90IHRoZSBnYXRld2F5IG9uZQ==";

/// Creates the payments the flood reports on (one-seat reservations of the event with a
/// pending `TIMEOUT` intent, straight at the backends) and reads the gateway's webhook
/// counters.
pub async fn setup(
    ctx: &Ctx, admin: &Admin,
) -> Result<(Vec<WebhookTarget>, WebhookCounters), LoadTestError> {
    StandardWebhooks::new(&[ctx.settings.webhook_secret.as_str()]).map_err(|e| {
        LoadTestError::Setting {
            name: "LOADTEST_WEBHOOK_SECRET".into(),
            value: "(hidden)".into(),
            reason: e.to_string(),
        }
    })?;
    let ch = channel(ctx)?;
    let mut reservations = proto::ReservationClient::new(ch.clone());
    let mut payments = proto::PaymentClient::new(ch);
    let mut targets = Vec::with_capacity(ctx.settings.webhook_intents);
    for i in 0..ctx.settings.webhook_intents.max(1) {
        let user = format!("lt-webhook-{}-{i}", ctx.run_id);
        let r = reservations
            .create_reservation(res::CreateReservationRequest {
                event_id: ctx.event.clone(),
                quantity: 1,
                user_id: user.clone(),
                idempotency_key: format!("lt-{}-{i}", ctx.run_id),
                ..Default::default()
            })
            .await
            .map_err(|s| {
                LoadTestError::Backends(format!(
                    "CreateReservation on event {:?} (seed it with backends --event {}:SEATS): {}",
                    ctx.event,
                    ctx.event,
                    s.message()
                ))
            })?
            .into_inner();
        let money = r.total_amount.clone().unwrap_or_default();
        let p = payments
            .create_payment_intent(pay::CreatePaymentIntentRequest {
                reservation_id: r.reservation_id.clone(),
                user_id: user,
                scenario: pay::PaymentScenario::Timeout as i32,
                idempotency_key: format!("lt-pay-{}-{i}", ctx.run_id),
                ..Default::default()
            })
            .await
            .map_err(|s| LoadTestError::Backends(format!("CreatePaymentIntent: {}", s.message())))?
            .into_inner();
        targets.push(WebhookTarget {
            payment_intent_id: p.payment_intent_id,
            reservation_id: r.reservation_id,
            amount_cents: money.amount_cents,
            currency: if money.currency.is_empty() {
                "USD".into()
            } else {
                money.currency
            },
        });
    }
    let before = WebhookCounters::parse(&admin.metrics().await?);
    Ok((targets, before))
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What one webhook is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Fresh,
    Duplicate,
    Stale,
    Forged,
}

/// One webhook.
pub fn webhook(ctx: Arc<Ctx>, user: &mut GooseUser) -> BoxFuture<'_> {
    Box::pin(async move {
        let s = &ctx.settings;
        let kind = {
            let x: f64 = rand::thread_rng().gen();
            if x < s.duplicate_share {
                Kind::Duplicate
            } else if x < s.duplicate_share + s.stale_share {
                Kind::Stale
            } else if x < s.duplicate_share + s.stale_share + s.forged_share {
                Kind::Forged
            } else {
                Kind::Fresh
            }
        };
        // A duplicate repeats an accepted webhook; before there is one, send a fresh one.
        let repeat = (kind == Kind::Duplicate)
            .then(|| {
                let pool = ctx.accepted.lock().unwrap();
                (!pool.is_empty())
                    .then(|| pool[rand::thread_rng().gen_range(0..pool.len())].clone())
            })
            .flatten();
        let kind = if kind == Kind::Duplicate && repeat.is_none() {
            Kind::Fresh
        } else {
            kind
        };
        let (id, body) = repeat.unwrap_or_else(|| {
            let n = ctx.next_id();
            let t = &ctx.targets[n as usize % ctx.targets.len()];
            let body = json!({
                "type": "payment.cancelled",
                "timestamp": "2026-11-24T08:00:00Z",
                "data": {
                    "payment_intent_id": t.payment_intent_id,
                    "reservation_id": t.reservation_id,
                    "amount_cents": t.amount_cents,
                    "currency": t.currency,
                }
            })
            .to_string();
            (format!("msg_lt_{}_{n}", ctx.run_id), body)
        });
        let secret = if kind == Kind::Forged {
            FORGED_SECRET
        } else {
            s.webhook_secret.as_str()
        };
        let signer = StandardWebhooks::new(&[secret]).map_err(|e| super::fail(e.to_string()))?;
        let ts = if kind == Kind::Stale {
            now_s() - 600
        } else {
            now_s()
        };
        let sig = signer.sign(&id, ts, body.as_bytes());
        let (name, ok): (&str, &[u16]) = match kind {
            Kind::Fresh => ("fresh", &[200]),
            Kind::Duplicate => ("duplicate", &[200]),
            Kind::Stale => ("stale", &[401]),
            Kind::Forged => ("forged", &[401]),
        };
        let a = call(
            user,
            GooseMethod::Post,
            "/webhooks/payments",
            name,
            |rb| {
                rb.header("content-type", "application/json")
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", &sig)
                    .body(body.clone())
            },
            ok,
        )
        .await?;
        let answer = a.body["status"].as_str().unwrap_or("");
        let rejected = (400..500).contains(&a.status);
        let mut t = ctx.webhooks.lock().unwrap();
        match kind {
            Kind::Fresh if a.status == 200 && answer == "accepted" => {
                t.accepted += 1;
                drop(t);
                ctx.accepted.lock().unwrap().push((id, body));
            }
            Kind::Fresh if a.status == 200 && answer == "duplicate" => {
                t.unique_answered_duplicate += 1
            }
            Kind::Fresh => t.unique_not_accepted += 1,
            Kind::Duplicate if a.status == 200 && answer == "duplicate" => t.duplicates += 1,
            Kind::Duplicate if a.status == 200 => t.duplicate_answered_accepted += 1,
            // A repeat answered 503 (overload) was not stored again either; not counted.
            Kind::Duplicate => {}
            Kind::Stale => {
                t.stale_sent += 1;
                t.stale_rejected += u64::from(rejected);
            }
            Kind::Forged => {
                t.forged_sent += 1;
                t.forged_rejected += u64::from(rejected);
            }
        }
        Ok(())
    })
}

/// Waits for the consumer to drain (forwarded + dead-lettered reach the accepted count, then
/// a moment more so that a doubled forward would show), then checks the counters and that the
/// backends cancelled every payment a webhook was accepted for.
pub async fn check(
    ctx: &Ctx, admin: &Admin, before: WebhookCounters,
) -> Result<Vec<Check>, LoadTestError> {
    let tally = ctx.webhooks.lock().unwrap().clone();
    // The flood is over when the checks start; the consumer may still be forwarding.
    let flood = ctx.started.elapsed();
    let deadline = Instant::now() + ctx.settings.settle_timeout;
    let mut delta;
    loop {
        delta = WebhookCounters::parse(&admin.metrics().await?).since(&before);
        if delta.forwarded + delta.dead_lettered >= tally.accepted || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let until_forwarded = ctx.started.elapsed();
    let forwarded = delta.forwarded;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delta = WebhookCounters::parse(&admin.metrics().await?).since(&before);
    let mut checks = invariants::webhooks_exactly_once(&tally, &delta);
    checks.push(invariants::forwarding_keeps_up(
        tally.accepted,
        flood,
        forwarded,
        until_forwarded,
        MIN_FORWARD_RATIO,
    ));

    // The backends' side: every payment with an accepted webhook is now CANCELLED.
    let reported: HashSet<String> = {
        let pool = ctx.accepted.lock().unwrap();
        let by_intent: Vec<String> = ctx
            .targets
            .iter()
            .map(|t| t.payment_intent_id.clone())
            .collect();
        pool.iter()
            .filter_map(|(_, body)| {
                let v: serde_json::Value = serde_json::from_str(body).ok()?;
                let pi = v["data"]["payment_intent_id"].as_str()?.to_owned();
                by_intent
                    .contains(&pi)
                    .then(|| v["data"]["reservation_id"].as_str().map(str::to_owned))?
            })
            .collect()
    };
    let ids: Vec<String> = reported.into_iter().collect();
    let recorded = orders(ctx, &ids).await?;
    let not_cancelled: Vec<&str> = recorded
        .iter()
        .filter(|o| o.status != "CANCELLED")
        .map(|o| o.reservation_id.as_str())
        .collect();
    checks.push(Check::new(
        "backends_applied_webhooks",
        not_cancelled.is_empty(),
        json!({
            "payments_reported": ids.len(),
            "not_cancelled": not_cancelled.len(),
            "examples": not_cancelled.iter().take(3).collect::<Vec<_>>(),
        }),
    ));
    Ok(checks)
}
