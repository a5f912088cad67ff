//! Incoming payment webhooks: `POST /webhooks/payments` (Standard Webhooks) and
//! `POST /webhooks/stripe` read the raw body (256 KiB at most), verify its signature before any
//! parsing, and store the envelope in the durable inbox of the `webhooks` crate before they
//! answer 2xx. The consumer started by [`crate::Gateway::serve`] forwards each stored webhook
//! to `WorkerService.ProcessPaymentResult` through the same upstream machinery as the forwarded
//! API (deadline, concurrency limit, circuit breaker). Also: the dead-letter admin handlers and
//! the webhook metrics as OpenMetrics text.

use crate::audit::AuditContext;
use crate::config::Config;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::extract::ApiQuery;
use crate::metrics::Metrics as GatewayMetrics;
use crate::upstream::{Upstream, UpstreamError, UpstreamSettings};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use proto::reservation::v1 as res;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use webhooks::{
    Appended, ConsumerConfig, Envelope, Forward, ForwardError, Inbox, InboxOptions, Parsed,
    PaymentEventType, RetryPolicy, Scheme, StandardWebhooks, Stripe,
};

/// Why a webhook or dead-letter request failed (mapped to HTTP in [`crate::error`]).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No secret is configured for this endpoint.
    #[error("webhooks are not enabled on this gateway")]
    Disabled,
    /// Signature or timestamp check failed; the reason is for metrics only, never shown.
    #[error("invalid webhook signature")]
    InvalidSignature(webhooks::VerifyError),
    /// Well signed, but not a payment event; stored as a dead letter.
    #[error("malformed webhook payload: {0}")]
    Malformed(String),
    /// The body is over `--webhook-max-body-bytes`.
    #[error("the webhook body is over the size limit")]
    TooLarge,
    /// The body could not be read.
    #[error("could not read the body")]
    Body,
    /// The inbox failed, or a dead-letter operation was refused.
    #[error(transparent)]
    Inbox(#[from] webhooks::InboxError),
}

/// The webhook side of the gateway: schemes, inbox and the upstream the consumer calls.
pub struct Webhooks {
    /// The durable inbox.
    pub inbox: Inbox,
    /// `--webhook-secret` and `--webhook-public-key`: Standard Webhooks on
    /// `/webhooks/payments`.
    pub standard: Option<StandardWebhooks>,
    /// `--stripe-webhook-secret`: Stripe on `/webhooks/stripe`.
    pub stripe: Option<Stripe>,
    /// WorkerService (`--payment-result-url`, else `--reservation-url`); None: stored, not
    /// forwarded.
    pub worker: Option<Upstream>,
    /// The consumers' settings (`--webhook-consumers` of them; names unique to this process).
    pub consumers: Vec<ConsumerConfig>,
    /// Largest webhook body.
    pub max_body_bytes: usize,
}

impl Webhooks {
    /// From the configuration: None when no webhook secret or public key is set. Needs
    /// `--redis-url`.
    pub async fn from_config(
        config: &Config,
        metrics: Arc<GatewayMetrics>,
    ) -> anyhow::Result<Option<Arc<Self>>> {
        let standard_keys =
            !config.webhook_secret.is_empty() || !config.webhook_public_key.is_empty();
        if !standard_keys && config.stripe_webhook_secret.is_empty() {
            return Ok(None);
        }
        let Some(url) = &config.redis_url else {
            anyhow::bail!("--webhook-secret, --webhook-public-key and --stripe-webhook-secret need --redis-url: webhooks are stored in Redis before they are acknowledged");
        };
        // Secrets are parsed here and never printed: the errors name the flag, not the value.
        let standard = if standard_keys {
            // The message says which kind of key is wrong (whsec_ or whpk_), never its value.
            Some(
                StandardWebhooks::with_keys(&config.webhook_secret, &config.webhook_public_key)
                    .map_err(|e| anyhow::anyhow!("--webhook-secret / --webhook-public-key: {e}"))?,
            )
        } else {
            None
        };
        let stripe = if config.stripe_webhook_secret.is_empty() {
            None
        } else {
            Some(
                Stripe::new(&config.stripe_webhook_secret)
                    .map_err(|e| anyhow::anyhow!("--stripe-webhook-secret: {e}"))?,
            )
        };
        let mut opts = InboxOptions::new(url.clone());
        opts.command_timeout = Duration::from_millis(config.redis_timeout_ms.max(1));
        opts.pool_size = config.redis_pool_size.max(1);
        opts.dedup_ttl = Duration::from_secs(config.webhook_dedup_ttl_seconds.max(1));
        opts.wait_replicas = config.redis_wait_replicas;
        opts.wait_timeout = Duration::from_millis(config.redis_wait_timeout_ms.max(1));
        opts.batch = redis_layer::GroupOptions {
            max_batch: config.redis_batch_max as usize,
            max_pending: config.redis_batch_pending as usize,
            max_in_flight: config.redis_batch_in_flight as usize,
        };
        let inbox = Inbox::connect(&opts, Arc::new(webhooks::Metrics::new())).await?;
        let window = config.webhook_forward_window.clamp(1, 4096) as usize;
        let consumers = config.webhook_consumers.clamp(1, 64) as usize;
        let settings = UpstreamSettings {
            // The consumers' windows bound the forwards already; a smaller limit here would
            // only turn forwards the window allows into "overloaded" failures and retries.
            max_in_flight: window * consumers,
            breaker_failures: config.breaker_failures.max(1),
            breaker_open: Duration::from_millis(config.breaker_open_ms),
            metrics: Some(metrics),
        };
        let worker = config
            .payment_result_url
            .as_deref()
            .or(config.reservation_url.as_deref())
            .map(|u| {
                Upstream::new(
                    "worker",
                    u,
                    Duration::from_millis(config.webhook_forward_timeout_ms.max(1)),
                    &settings,
                )
            })
            .transpose()?;
        if worker.is_none() {
            tracing::warn!("webhooks are stored but not forwarded: no --payment-result-url or --reservation-url");
        }
        let name = config
            .webhook_consumer_name
            .clone()
            .unwrap_or_else(|| format!("gw-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
        let mut consumer = ConsumerConfig::new(name.clone());
        consumer.window = window;
        consumer.claim_idle = Duration::from_millis(config.webhook_claim_idle_ms.max(1));
        consumer.claim_every =
            (consumer.claim_idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(5));
        consumer.retry = RetryPolicy {
            max_attempts: config.webhook_max_attempts.max(1),
            base_delay: Duration::from_millis(config.webhook_backoff_ms.max(1)),
            max_delay: Duration::from_millis(config.webhook_backoff_max_ms.max(1)),
        };
        let consumers = (0..consumers)
            .map(|i| {
                let mut c = consumer.clone();
                if i > 0 {
                    c.name = format!("{name}-{i}");
                }
                c
            })
            .collect();
        Ok(Some(Arc::new(Self {
            inbox,
            standard,
            stripe,
            worker,
            consumers,
            max_body_bytes: config.webhook_max_body_bytes,
        })))
    }

    /// The consumer loops (none when there is no upstream to forward to).
    pub fn consumers(&self) -> Vec<webhooks::Consumer> {
        let Some(worker) = self.worker.clone() else {
            return Vec::new();
        };
        let forward: Arc<dyn Forward> = Arc::new(WorkerForward { worker });
        self.consumers
            .iter()
            .map(|c| webhooks::Consumer::new(self.inbox.clone(), forward.clone(), c.clone()))
            .collect()
    }
}

/// Request headers as a verification scheme reads them.
struct HeaderView<'a>(&'a HeaderMap);

impl webhooks::Headers for HeaderView<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name)?.to_str().ok()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `POST /webhooks/payments`.
pub async fn payments(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let wh = st.webhooks.clone().ok_or(WebhookError::Disabled)?;
    let scheme = wh.standard.clone().ok_or(WebhookError::Disabled)?;
    ingest(&wh, &scheme, req).await
}

/// `POST /webhooks/stripe`.
pub async fn stripe(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let wh = st.webhooks.clone().ok_or(WebhookError::Disabled)?;
    let scheme = wh.stripe.clone().ok_or(WebhookError::Disabled)?;
    ingest(&wh, &scheme, req).await
}

async fn ingest(wh: &Webhooks, scheme: &dyn Scheme, req: Request) -> Result<Response, ApiError> {
    let metrics = wh.inbox.metrics();
    let headers = req.headers().clone();
    // The route's own DefaultBodyLimit (not the global 16 KiB) bounds this read.
    let body = Bytes::from_request(req, &()).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            metrics.rejected("too_large");
            WebhookError::TooLarge
        } else {
            WebhookError::Body
        }
    })?;
    let now = now_ms();
    // The signature is checked over the raw bytes, before anything reads them.
    let verified = scheme
        .verify(&HeaderView(&headers), &body, now.div_euclid(1000))
        .map_err(|e| {
            metrics.rejected(e.reason());
            tracing::debug!(
                reason = e.reason(),
                source = scheme.name(),
                "webhook refused"
            );
            WebhookError::InvalidSignature(e)
        })?;
    // Verified: only a body that is not a payment event at all is refused from here on. Fields
    // we do not know are kept (the envelope stores the body verbatim); a type we do not act on
    // is acknowledged, so the provider stops retrying it, and counted, not stored.
    match webhooks::parse_verified(scheme.name(), &body) {
        Ok(Parsed::Payment(event)) => {
            let env = webhooks::envelope_of(&verified, scheme.name(), Some(&event), &body, now);
            let status = match wh.inbox.append(&env).await.map_err(WebhookError::Inbox)? {
                Appended::New(_) => "accepted",
                Appended::Duplicate(_) => "duplicate",
            };
            Ok(Json(json!({"status": status, "webhook_id": verified.id})).into_response())
        }
        Ok(Parsed::Ignored(ignored)) => {
            metrics.ignored(&ignored.event_type, ignored.reason.as_str());
            tracing::info!(
                webhook_id = %verified.id,
                event_type = %ignored.event_type,
                reason = ignored.reason.as_str(),
                source = scheme.name(),
                "verified webhook ignored"
            );
            Ok(Json(json!({"status": "ignored", "webhook_id": verified.id})).into_response())
        }
        Err(e) => {
            metrics.rejected("malformed");
            let env = webhooks::envelope_of(&verified, scheme.name(), None, &body, now);
            wh.inbox
                .dead_letter_malformed(&env, &e.to_string())
                .await
                .map_err(WebhookError::Inbox)?;
            Err(WebhookError::Malformed(e.0).into())
        }
    }
}

/// Forwards inbox entries to `WorkerService.ProcessPaymentResult`.
struct WorkerForward {
    worker: Upstream,
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
            Err(UpstreamError::Status { status, .. }) if is_refusal(status.code()) => Err(
                ForwardError::Permanent(format!("{:?}: {}", status.code(), status.message())),
            ),
            Err(e) => Err(ForwardError::Retryable(e.to_string())),
        }
    }
}

/// Answers that retrying cannot change: the worker refused this result.
fn is_refusal(code: tonic::Code) -> bool {
    use tonic::Code as C;
    matches!(
        code,
        C::InvalidArgument
            | C::NotFound
            | C::AlreadyExists
            | C::FailedPrecondition
            | C::OutOfRange
            | C::PermissionDenied
            | C::Unauthenticated
            | C::Unimplemented
    )
}

/// Query of `GET /admin/v1/dlq`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// 1 to 1,000 (default 50); text, so that a bad value gets the JSON 400 of this API rather
    /// than the framework's plain-text rejection.
    pub limit: Option<String>,
}

fn inbox(st: &AppState) -> Result<&Inbox, WebhookError> {
    st.webhooks
        .as_deref()
        .map(|w| &w.inbox)
        .ok_or(WebhookError::Disabled)
}

/// `GET /admin/v1/dlq?limit=`: newest first.
pub async fn dlq_list(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = match q.limit.as_deref() {
        None => 50,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::BadRequest("limit must be 1 to 1000".into()))?,
    };
    let items = inbox(&st)?
        .dlq_list(limit)
        .await
        .map_err(WebhookError::Inbox)?;
    Ok(Json(json!({"dead_letters": items})))
}

/// `GET /admin/v1/dlq/{id}`.
pub async fn dlq_get(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<webhooks::DeadLetter>, ApiError> {
    Ok(Json(
        inbox(&st)?
            .dlq_get(&id)
            .await
            .map_err(WebhookError::Inbox)?,
    ))
}

/// `POST /admin/v1/dlq/{id}/retry`: 202 when enqueued now, 200 when an earlier retry had.
pub async fn dlq_retry(
    State(st): State<AppState>,
    who: AuditContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let before = dlq_audit_state(&st, &id).await;
    let r = inbox(&st)?
        .dlq_retry(&id)
        .await
        .map_err(WebhookError::Inbox)?;
    if r.enqueued {
        let after = dlq_audit_state(&st, &id).await;
        st.audit
            .record(who.entry("dlq.retry", None, before, after))
            .await;
    }
    let code = if r.enqueued {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        code,
        Json(json!({"id": id, "stream_id": r.stream_id, "enqueued": r.enqueued})),
    )
        .into_response())
}

/// Body of `POST /admin/v1/dlq/{id}/resolve`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// Who resolved it (1 to 200 characters).
    pub resolved_by: String,
    /// Why (at most 2,000 characters).
    pub note: Option<String>,
}

/// `POST /admin/v1/dlq/{id}/resolve`.
pub async fn dlq_resolve(
    State(st): State<AppState>,
    who: AuditContext,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ResolveBody>,
) -> Result<Json<webhooks::DeadLetter>, ApiError> {
    // The length is that of the value sent, as the schema's maxLength counts it.
    let by = body.resolved_by.trim();
    if by.is_empty() || body.resolved_by.chars().count() > 200 {
        return Err(ApiError::BadRequest(
            "resolved_by must be 1 to 200 characters".into(),
        ));
    }
    if body.note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(ApiError::BadRequest(
            "note must be at most 2000 characters".into(),
        ));
    }
    let before = dlq_audit_state(&st, &id).await;
    let dl = inbox(&st)?
        .dlq_resolve(&id, by, body.note.as_deref())
        .await
        .map_err(WebhookError::Inbox)?;
    st.audit
        .record(who.entry("dlq.resolve", None, before, dead_letter_audit(&dl)))
        .await;
    Ok(Json(dl))
}

/// What the audit trail keeps of a dead letter: everything but the webhook's payload (the
/// envelope, which can be large and is the provider's data), plus its id.
fn dead_letter_audit(dl: &webhooks::DeadLetter) -> serde_json::Value {
    let mut v = serde_json::to_value(dl).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(m) = &mut v {
        m.remove("envelope");
    }
    v
}

/// A dead letter's audit state now (`null` when it cannot be read: the change still goes on).
async fn dlq_audit_state(st: &AppState, id: &str) -> serde_json::Value {
    match inbox(st) {
        Ok(inbox) => match inbox.dlq_get(id).await {
            Ok(dl) => dead_letter_audit(&dl),
            Err(_) => serde_json::Value::Null,
        },
        Err(_) => serde_json::Value::Null,
    }
}

/// The webhook metrics as OpenMetrics text (appended to `/metrics` before its `# EOF`).
pub fn encode_metrics(m: &webhooks::metrics::Snapshot) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = write!(
            o,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name}_total {v}\n"
        );
    };
    counter(
        "webhooks_received",
        "Verified webhooks accepted (new and duplicates)",
        m.received,
    );
    counter(
        "webhooks_duplicates",
        "Verified deliveries of a webhook id already stored",
        m.duplicates,
    );
    counter(
        "webhooks_forwarded",
        "Stored webhooks forwarded to the worker",
        m.forwarded,
    );
    counter(
        "webhooks_retried",
        "Failed forwards scheduled for a retry",
        m.retried,
    );
    counter(
        "webhooks_dead_lettered",
        "Webhooks moved to the dead-letter stream",
        m.dead_lettered,
    );
    let _ = write!(
        o,
        "# HELP webhooks_rejected Webhooks refused, by reason\n# TYPE webhooks_rejected counter\n"
    );
    for (reason, v) in &m.rejected {
        let _ = writeln!(o, "webhooks_rejected_total{{reason=\"{reason}\"}} {v}");
    }
    let _ = write!(
        o,
        "# HELP webhooks_ignored Verified webhooks acknowledged but not acted on, by event type and reason\n# TYPE webhooks_ignored counter\n"
    );
    // The types are plain labels (letters, digits, `._:-`): the webhooks crate counts any
    // other as `other`, so nothing here needs escaping.
    for (kind, reason, v) in &m.ignored {
        let _ = writeln!(
            o,
            "webhooks_ignored_total{{type=\"{kind}\",reason=\"{reason}\"}} {v}"
        );
    }
    let name = "webhooks_end_to_end_latency_seconds";
    let _ = write!(
        o,
        "# HELP {name} From acceptance to a successful forward\n# TYPE {name} histogram\n"
    );
    for (le, c) in &m.latency_buckets {
        let _ = writeln!(o, "{name}_bucket{{le=\"{le}\"}} {c}");
    }
    let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {}", m.latency_count);
    let _ = writeln!(o, "{name}_sum {}", m.latency_sum_seconds);
    let _ = writeln!(o, "{name}_count {}", m.latency_count);
    o
}
